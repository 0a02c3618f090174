// Speed of the plate pipeline's stages on one thread, each beside its baseline in the same run:
// detector input sizes against each other, recogniser widths against each other, and CTC decoding
// against the greedy decoder (the cheapest possible decode).
//
//   build/bench/plate_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <opencv2/imgproc.hpp>

#include "plate/ctc_decoder.h"
#include "plate/gemm_convolution.h"
#include "plate/grammar.h"
#include "plate/junk_slot.h"
#include "plate/text_detector.h"
#include "plate/text_recognizer.h"
#include "portcullis/plate.h"
#include "portcullis/plate_synth.h"

namespace {

using namespace portcullis::plate;  // NOLINT(google-build-using-namespace): bench-local

std::string ModelDir() {
  const char* dir = std::getenv("PORTCULLIS_MODEL_DIR");
  return dir != nullptr ? dir : PORTCULLIS_BENCH_MODEL_DIR;
}

cv::Mat Scene() {
  SynthSpec spec;
  spec.text = "ABC1234";
  spec.plate_width = 200;
  SynthTruth truth;
  return RenderVehicleScene(spec, &truth);
}

// range(1) == 1: the dense convolutions as OpenBLAS products (gemm_convolution.h), against
// OpenCV's own kernels (0) in the same run.
void BM_Detect(benchmark::State& state) {
  cv::setNumThreads(1);
  SetGemmThreads(1);
  std::unique_ptr<TextDetector> detector;
  if (!TextDetector::Open(ModelDir() + "/plate_det.onnx", &detector, state.range(1) == 1).ok()) {
    state.SkipWithError("models missing: run scripts/install.sh");
    return;
  }
  cv::Mat image = Scene();
  DetectorOptions options;
  options.max_side = static_cast<int>(state.range(0));
  std::vector<TextBox> boxes;
  // Outside the timing: the first run at a size builds that size's Net.
  benchmark::DoNotOptimize(detector->Detect(image, options, &boxes));
  for (auto _ : state) {
    benchmark::DoNotOptimize(detector->Detect(image, options, &boxes));
  }
  state.counters["boxes"] = static_cast<double>(boxes.size());
}
BENCHMARK(BM_Detect)
    ->ArgsProduct({{480, 640, 960, 1280}, {0, 1}})
    ->ArgNames({"max_side", "gemm"})
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);

void BM_Recognize(benchmark::State& state) {
  cv::setNumThreads(1);
  SetGemmThreads(1);
  std::unique_ptr<TextRecognizer> recognizer;
  if (!TextRecognizer::Open(ModelDir(), &recognizer, state.range(1) == 1).ok()) {
    state.SkipWithError("models missing: run scripts/install.sh");
    return;
  }
  // A line exactly as wide as the requested network, so each width is measured on its own.
  const int width = static_cast<int>(state.range(0));
  cv::Mat line(TextRecognizer::kHeight, width, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::putText(line, "ABC1234", {4, 38}, cv::FONT_HERSHEY_DUPLEX, 1.2, cv::Scalar(0, 0, 0), 3);
  cv::Mat probs;
  benchmark::DoNotOptimize(recognizer->Recognize(line, &probs));  // first run allocates
  for (auto _ : state) {
    benchmark::DoNotOptimize(recognizer->Recognize(line, &probs));
  }
}
BENCHMARK(BM_Recognize)
    ->ArgsProduct({{160, 320}, {0, 1}})
    ->ArgNames({"width", "gemm"})
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);

void BM_ReadScene(benchmark::State& state) {
  cv::setNumThreads(1);
  PlateReaderOptions options;
  options.region = "us";
  std::unique_ptr<PlateReader> reader;
  if (!PlateReader::Open(options, &reader).ok()) {
    state.SkipWithError("models missing: run scripts/install.sh");
    return;
  }
  cv::Mat image = Scene();
  std::vector<PlateRead> plates;
  for (auto _ : state) {
    benchmark::DoNotOptimize(reader->Read(image, &plates));
  }
}
BENCHMARK(BM_ReadScene)->Unit(benchmark::kMillisecond);

// A recogniser-shaped probability matrix: 40 steps spelling ABC1234 with some noise.
cv::Mat FakeProbs(std::string_view alphabet = kPlateAlphabet) {
  cv::RNG rng(7);
  cv::Mat probs(40, static_cast<int>(alphabet.size()) + 1, CV_32F);
  rng.fill(probs, cv::RNG::UNIFORM, 0.0, 0.02);
  const std::string text = "ABC1234";
  for (int t = 0; t < 40; ++t) {
    const int k = t / 5;
    const int column = (t % 5 < 2 && k < 7) ? static_cast<int>(alphabet.find(text[k])) + 1 : 0;
    probs.at<float>(t, column) += 0.8f;
    probs.row(t) /= cv::sum(probs.row(t))[0];
  }
  return probs;
}

void BM_CtcGreedy(benchmark::State& state) {
  cv::Mat probs = FakeProbs();
  for (auto _ : state) benchmark::DoNotOptimize(CtcGreedy(probs, kPlateAlphabet));
}
BENCHMARK(BM_CtcGreedy);

void BM_CtcBeamSearch(benchmark::State& state) {
  cv::Mat probs = FakeProbs();
  for (auto _ : state) benchmark::DoNotOptimize(CtcBeamSearch(probs, kPlateAlphabet, 10, 10));
}
BENCHMARK(BM_CtcBeamSearch);

void BM_CtcConstrained(benchmark::State& state) {
  cv::Mat probs = FakeProbs();
  const std::string letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", digits = "0123456789";
  std::vector<std::string> sets = {letters, letters, letters, digits, digits, digits, digits};
  CtcPath best;
  for (auto _ : state) {
    benchmark::DoNotOptimize(CtcConstrainedBest(probs, kPlateAlphabet, sets, &best));
  }
}
BENCHMARK(BM_CtcConstrained);

// The US grammar's decoding of one line: every pattern's constrained best path (what the reader
// always does), against the same plus the junk slot's decodes (one any-character position at each
// gap of each gapped pattern).
portcullis::plate::RegionGrammar UsGrammar() {
  std::vector<RegionGrammar> grammars;
  portcullis::Status s = RegionGrammar::LoadDirectory(portcullis::Env::Default(),
                                                      PORTCULLIS_BENCH_REGION_DIR, &grammars);
  for (auto& g : grammars) {
    if (s.ok() && g.region == "us") return g;
  }
  std::abort();  // the shipped grammars are part of the build tree
}

void BM_UsPatterns(benchmark::State& state) {
  const RegionGrammar us = UsGrammar();
  const cv::Mat probs = FakeProbs(us.alphabet);
  const bool junk = state.range(0) != 0;
  CtcPath best;
  for (auto _ : state) {
    for (const auto& pattern : us.patterns) {
      benchmark::DoNotOptimize(CtcConstrainedBest(probs, us.alphabet, pattern.sets, &best));
    }
    if (junk) benchmark::DoNotOptimize(ReadsWithJunkDropped(probs, us));
  }
  state.SetLabel(junk ? "patterns + junk slot" : "patterns (baseline)");
}
BENCHMARK(BM_UsPatterns)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
