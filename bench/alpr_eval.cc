// Accuracy and speed of the plate reader on a benchmark in the OpenALPR layout: each image
// NAME.jpg|png beside NAME.txt holding "file<TAB>x<TAB>y<TAB>w<TAB>h<TAB>PLATE".
//
//   alpr_eval --region us ../shared/data/alpr/us [--region eu DIR ...] [--json] [--errors]
//
// Prints, per set: exact-match top-1 and top-5 accuracy, plate-detection recall (IoU >= 0.5) and
// milliseconds per image (p50/p95) on one thread -- wall clock and the reading thread's CPU time,
// which a loaded machine inflates far less -- then the command line that reproduced it, and
// where that CPU time went (detector and recogniser runs per image, their CPU time, the
// recogniser widths used). --reads FILE writes every image's reads as JSON Lines (the `plate
// read --json` plate objects, plus the image's CPU, detector and recogniser milliseconds), so two
// builds can be checked for identical reads and the slow tail traced to its images.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/blas_threads.h"
#include "common/huge_page_allocator.h"
#include "plate/stage_stats.h"
#include "portcullis/env.h"
#include "portcullis/image.h"
#include "portcullis/plate.h"
#include "portcullis/plate_json.h"

namespace {

using portcullis::Env;
using portcullis::Status;
namespace plate = portcullis::plate;

struct Truth {
  std::string image;
  plate::Box box;
  std::string text;
};

struct SetResult {
  std::string name, region;
  int images = 0, top1 = 0, top5 = 0, detected = 0, failed = 0;
  std::vector<double> ms;
  std::vector<double> cpu_ms;  // CLOCK_THREAD_CPUTIME_ID: the reader runs on this thread
  // Per image: detector and recogniser CPU time (plate::StageStats), recogniser runs.
  std::vector<double> detector_ms, recognizer_ms, other_ms, detector_runs, recognizer_runs;
  std::map<int, int> recognizer_widths;
  // truth size / reported size for correct reads: what plate_box_scale should be multiplied by.
  std::vector<double> width_ratio, height_ratio;
};

double Iou(const plate::Box& a, const plate::Box& b) {
  const int x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  const int x1 = std::min(a.x + a.width, b.x + b.width),
            y1 = std::min(a.y + a.height, b.y + b.height);
  if (x1 <= x0 || y1 <= y0) return 0;
  const double inter = static_cast<double>(x1 - x0) * (y1 - y0);
  return inter / (static_cast<double>(a.width) * a.height +
                  static_cast<double>(b.width) * b.height - inter);
}

double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto idx = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

Status LoadTruth(const std::string& dir, std::vector<Truth>* truths) {
  std::vector<std::string> names;
  PORTCULLIS_RETURN_IF_ERROR(Env::Default()->ListDirectory(dir, &names));
  for (const auto& name : names) {
    if (name.size() < 5 || name.substr(name.size() - 4) != ".txt") continue;
    std::ifstream in(dir + "/" + name);
    std::string line;
    if (!std::getline(in, line)) continue;
    std::istringstream fields(line);
    Truth t;
    std::string x, y, w, h;
    if (!std::getline(fields, t.image, '\t') || !std::getline(fields, x, '\t') ||
        !std::getline(fields, y, '\t') || !std::getline(fields, w, '\t') ||
        !std::getline(fields, h, '\t') || !std::getline(fields, t.text)) {
      return Status::Corruption("bad truth line in " + name);
    }
    while (!t.text.empty() && (t.text.back() == '\r' || t.text.back() == ' ')) t.text.pop_back();
    t.box = {std::stoi(x), std::stoi(y), std::stoi(w), std::stoi(h)};
    t.image = dir + "/" + t.image;
    truths->push_back(std::move(t));
  }
  if (truths->empty()) return Status::NotFound("no *.txt truth files in " + dir);
  return Status::Ok();
}

int Usage() {
  std::fprintf(stderr,
               "usage: alpr_eval [--json] [--errors] [--reads FILE] [--limit N] "
               "[--detector-size N] [--detector-pixels N] [--gemm|--no-gemm] [--no-memory-tuning] "
               "[--coarse-size N] "
               "[--proposal-size N] [--second-look S] [--region R] DIR ...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  portcullis::ReexecWithKnownOpenBlasKernels(argv);       // as the product does (src/cli/main.cc)
  std::vector<std::pair<std::string, std::string>> sets;  // region, dir
  std::string region = "auto";
  bool json = false, errors = false, calibrate = false, exhaustive = false;
  int limit = -1;
  int detector_size = plate::PlateReaderOptions{}.detector_max_side;
  int coarse_size = plate::PlateReaderOptions{}.coarse_detector_max_side;
  int proposal_size = plate::PlateReaderOptions{}.detector_proposal_max_side;
  int detector_pixels = plate::PlateReaderOptions{}.detector_max_pixels;
  bool gemm = plate::PlateReaderOptions{}.gemm_convolutions;
  double second_look = plate::PlateReaderOptions{}.second_look_scale;
  bool tune_memory = true;
  std::string command = "alpr_eval";
  std::string reads_path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    command += " " + arg;
    if (arg == "--region" && i + 1 < argc) {
      region = argv[++i];
      command += std::string(" ") + argv[i];
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--errors") {
      errors = true;
    } else if (arg == "--exhaustive") {
      exhaustive = true;
    } else if (arg == "--calibrate") {
      calibrate = true;
    } else if (arg == "--detector-size" && i + 1 < argc) {
      detector_size = std::stoi(argv[++i]);
      command += std::string(" ") + argv[i];
    } else if (arg == "--coarse-size" && i + 1 < argc) {
      coarse_size = std::stoi(argv[++i]);
      command += std::string(" ") + argv[i];
    } else if (arg == "--proposal-size" && i + 1 < argc) {
      proposal_size = std::stoi(argv[++i]);
      command += std::string(" ") + argv[i];
    } else if (arg == "--no-memory-tuning") {
      tune_memory = false;
    } else if (arg == "--gemm" || arg == "--no-gemm") {
      gemm = arg == "--gemm";
    } else if (arg == "--detector-pixels" && i + 1 < argc) {
      detector_pixels = std::stoi(argv[++i]);
      command += std::string(" ") + argv[i];
    } else if (arg == "--second-look" && i + 1 < argc) {
      second_look = std::stod(argv[++i]);
      command += std::string(" ") + argv[i];
    } else if (arg == "--reads" && i + 1 < argc) {
      reads_path = argv[++i];
      command += std::string(" ") + argv[i];
    } else if (arg == "--limit" && i + 1 < argc) {
      limit = std::stoi(argv[++i]);
      command += std::string(" ") + argv[i];
    } else if (arg.rfind("--", 0) == 0) {
      return Usage();
    } else {
      sets.emplace_back(region, arg);
    }
  }
  if (sets.empty()) {
    return Usage();
  }
  if (tune_memory) portcullis::TuneMemoryForNetworks();  // as the product does
  std::vector<SetResult> results;
  std::ofstream reads_out;
  if (!reads_path.empty()) {
    reads_out.open(reads_path);
    if (!reads_out) {
      std::fprintf(stderr, "alpr_eval: cannot write %s\n", reads_path.c_str());
      return 1;
    }
  }
  for (const auto& [set_region, dir] : sets) {
    plate::PlateReaderOptions options;
    options.region = set_region;
    options.threads = 1;
    options.detector_max_side = detector_size;
    options.exhaustive = exhaustive;
    options.coarse_detector_max_side = coarse_size;
    options.detector_proposal_max_side = proposal_size;
    options.detector_max_pixels = detector_pixels;
    options.gemm_convolutions = gemm;
    options.second_look_scale = second_look;
    std::unique_ptr<plate::PlateReader> reader;
    Status s = plate::PlateReader::Open(options, &reader);
    if (!s.ok()) {
      std::fprintf(stderr, "alpr_eval: %s\n", s.ToString().c_str());
      return 1;
    }
    std::vector<Truth> truths;
    s = LoadTruth(dir, &truths);
    if (!s.ok()) {
      std::fprintf(stderr, "alpr_eval: %s\n", s.ToString().c_str());
      return 1;
    }
    if (limit > 0 && truths.size() > static_cast<std::size_t>(limit)) truths.resize(limit);
    SetResult r;
    r.name = dir.substr(dir.find_last_of('/') + 1);
    r.region = set_region;
    for (const auto& t : truths) {
      ++r.images;
      cv::Mat image;
      s = portcullis::ReadImageFile(Env::Default(), t.image, portcullis::ImageLimits{}, &image);
      std::vector<plate::PlateRead> plates;
      if (s.ok()) {
        auto start = std::chrono::steady_clock::now();
        plate::StageStats& stats = plate::ThreadStageStats();
        stats.Reset();
        const double cpu_start = ThreadCpuMs();
        s = reader->Read(image, &plates);
        r.cpu_ms.push_back(ThreadCpuMs() - cpu_start);
        r.detector_ms.push_back(stats.detector_cpu_ms);
        r.recognizer_ms.push_back(stats.recognizer_cpu_ms);
        r.other_ms.push_back(r.cpu_ms.back() - stats.detector_cpu_ms - stats.recognizer_cpu_ms);
        r.detector_runs.push_back(stats.detector_runs);
        r.recognizer_runs.push_back(stats.recognizer_runs);
        for (const auto& [width, runs] : stats.recognizer_widths) {
          r.recognizer_widths[width] += runs;
        }
        r.ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count());
      }
      if (!s.ok()) {
        ++r.failed;
        std::fprintf(stderr, "%s: %s\n", t.image.c_str(), s.ToString().c_str());
        continue;
      }
      if (reads_out.is_open()) {
        // Per-image costs, so a slow tail can be traced to its images (the plate objects are
        // the CLI's contract; these extra keys are the evaluator's own).
        nlohmann::json line = {{"file", t.image},
                               {"plates", nlohmann::json::array()},
                               {"cpu_ms", r.cpu_ms.back()},
                               {"detector_ms", r.detector_ms.back()},
                               {"recognizer_ms", r.recognizer_ms.back()},
                               {"recognizer_runs", r.recognizer_runs.back()}};
        for (const auto& p : plates) line["plates"].push_back(plate::PlateReadToJson(p));
        reads_out << line.dump() << "\n";
      }
      bool top1 = !plates.empty() && plates[0].text == t.text;
      bool top5 = false, detected = false;
      for (const auto& p : plates) {
        detected = detected || Iou(p.box, t.box) >= 0.5;
        for (std::size_t k = 0; k < p.candidates.size() && k < 5; ++k) {
          top5 = top5 || p.candidates[k].text == t.text;
        }
      }
      if (top1 && plates[0].box.width > 0 && plates[0].box.height > 0) {
        r.width_ratio.push_back(static_cast<double>(t.box.width) / plates[0].box.width);
        r.height_ratio.push_back(static_cast<double>(t.box.height) / plates[0].box.height);
      }
      r.top1 += top1 ? 1 : 0;
      r.top5 += top5 ? 1 : 0;
      r.detected += detected ? 1 : 0;
      if (errors && !top1) {
        std::fprintf(stderr, "MISS %s truth=%s got=", t.image.c_str(), t.text.c_str());
        for (const auto& p : plates) {
          std::fprintf(stderr, "%s(%.2f,iou=%.2f)[", p.text.c_str(), p.confidence,
                       Iou(p.box, t.box));
          for (const auto& c : p.candidates) {
            std::fprintf(stderr, "%s:%s:%.2f ", c.text.c_str(), c.format.c_str(), c.confidence);
          }
          std::fprintf(stderr, "] ");
        }
        std::fprintf(stderr, "\n");
      }
    }
    results.push_back(std::move(r));
  }
  auto pct = [](int n, int d) { return d > 0 ? 100.0 * n / d : 0.0; };
  if (json) {
    for (const auto& r : results) {
      nlohmann::json j = {{"set", r.name},
                          {"region", r.region},
                          {"images", r.images},
                          {"top1", pct(r.top1, r.images)},
                          {"top5", pct(r.top5, r.images)},
                          {"detection_recall", pct(r.detected, r.images)},
                          {"ms_p50", Percentile(r.ms, 0.5)},
                          {"ms_p95", Percentile(r.ms, 0.95)},
                          {"cpu_ms_p50", Percentile(r.cpu_ms, 0.5)},
                          {"cpu_ms_p95", Percentile(r.cpu_ms, 0.95)},
                          {"failed", r.failed}};
      std::printf("%s\n", j.dump().c_str());
    }
    return 0;
  }
  std::printf(
      "| set | region | images | top-1 exact | top-5 | detection recall (IoU>=0.5) | ms p50 | ms "
      "p95 | CPU ms p50 | CPU ms p95 |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : results) {
    std::printf("| %s | %s | %d | %.1f%% | %.1f%% | %.1f%% | %.0f | %.0f | %.0f | %.0f |\n",
                r.name.c_str(), r.region.c_str(), r.images, pct(r.top1, r.images),
                pct(r.top5, r.images), pct(r.detected, r.images), Percentile(r.ms, 0.5),
                Percentile(r.ms, 0.95), Percentile(r.cpu_ms, 0.5), Percentile(r.cpu_ms, 0.95));
  }
  std::printf(
      "\nWhere the CPU time went (per image, thread CPU ms; \"other\" = everything outside the "
      "two networks)\n\n| set | detector runs mean | detector p50 | detector mean | recogniser "
      "runs "
      "mean (p50) | recogniser p50 | recogniser mean | other mean | recogniser widths (runs) "
      "|\n|---|---|---|---|---|---|---|---|---|\n");
  auto mean = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
  };
  for (const auto& r : results) {
    std::string widths;
    for (const auto& [width, runs] : r.recognizer_widths) {
      widths += (widths.empty() ? "" : ", ") + std::to_string(width) + ": " + std::to_string(runs);
    }
    std::printf("| %s | %.1f | %.0f | %.0f | %.1f (%.0f) | %.0f | %.0f | %.1f | %s |\n",
                r.name.c_str(), mean(r.detector_runs), Percentile(r.detector_ms, 0.5),
                mean(r.detector_ms), mean(r.recognizer_runs), Percentile(r.recognizer_runs, 0.5),
                Percentile(r.recognizer_ms, 0.5), mean(r.recognizer_ms), mean(r.other_ms),
                widths.c_str());
  }
  if (calibrate) {
    for (const auto& r : results) {
      std::printf("calibrate %s: multiply plate_box_scale by [%.3f, %.3f] (median of %zu reads)\n",
                  r.name.c_str(), Percentile(r.width_ratio, 0.5), Percentile(r.height_ratio, 0.5),
                  r.width_ratio.size());
    }
  }
  const char* blas_core = portcullis::OpenBlasCoreName();
  std::printf("\nreproduce: %s  (one thread, OpenCV dnn CPU, OpenBLAS kernels: %s)\n",
              command.c_str(), blas_core != nullptr ? blas_core : "not OpenBLAS");
  return 0;
}
