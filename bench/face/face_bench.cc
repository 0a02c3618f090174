// face_bench: milliseconds per face for one 640x480 capture on one core, by stage (detect,
// landmarks, chip, embed), against baselines in the same run: HOG on a 2x upsampled frame (what
// dlib's examples do) and the whole Enrol call; also a small (250x240) image with and without the
// 2x upsampled first detection pass, and jittered embeddings. Prints thread-CPU ms (the one-core
// cost, robust to a shared machine) and wall ms, median of N. Reproduce with
//   build/bench/face/face_bench [capture.jpg]
// Without an argument the capture is synthetic: a johns chip scaled to a 200 px face on a
// textured 640x480 background (the face size of a gate camera at ~1 m).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/blas_threads.h"
#include "common/huge_page_allocator.h"
#include "face/face_net.h"
#include "portcullis/face.h"

namespace {

struct Timing {
  double wall_ms = 0;  // median wall-clock time
  double cpu_ms = 0;   // median thread CPU time: the one-core cost when the machine is shared
};

double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

Timing Median(int iterations, const std::function<void()>& fn) {
  std::vector<double> wall;
  std::vector<double> cpu;
  fn();  // warm-up
  for (int i = 0; i < iterations; ++i) {
    const double c0 = ThreadCpuMs();
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    wall.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    cpu.push_back(ThreadCpuMs() - c0);
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}

void Row(const char* name, const Timing& t) {
  std::printf("%-44s %8.1f %8.1f\n", name, t.cpu_ms, t.wall_ms);
}

}  // namespace

int Run(int argc, char** argv) {
  using portcullis::face::internal::FaceNet;
  const bool blas_knob = portcullis::face::internal::SetBlasThreads(1);
  cv::Mat capture;
  if (argc > 1) {
    capture = cv::imread(argv[1]);
    if (capture.empty()) {
      std::fprintf(stderr, "face_bench: cannot read %s\n", argv[1]);
      return 1;
    }
    cv::resize(capture, capture, cv::Size(640, 480));
  } else {
    const cv::Mat chip =
        cv::imread("/usr/share/doc/libdlib19.1/examples/johns/John_Salley/000179_02159509.jpg");
    if (chip.empty()) {
      std::fprintf(stderr, "face_bench: libdlib19.1's example chips are missing\n");
      return 1;
    }
    capture.create(480, 640, CV_8UC3);
    cv::randu(capture, 40, 200);
    cv::GaussianBlur(capture, capture, cv::Size(15, 15), 5);
    cv::Mat face;
    cv::resize(chip, face, cv::Size(260, 260));
    face.copyTo(capture(cv::Rect(190, 110, 260, 260)));
  }

  const char* env = std::getenv("PORTCULLIS_MODEL_DIR");
  const std::string models =
      std::string(env != nullptr ? env : PORTCULLIS_BENCH_MODEL_DIR) + "/face";
  std::unique_ptr<FaceNet> net;
  portcullis::Status s = FaceNet::Load(portcullis::Env::Default(), models, &net);
  if (!s.ok()) {
    std::fprintf(stderr, "face_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  std::unique_ptr<portcullis::face::FaceEngine> engine;
  s = portcullis::face::FaceEngine::Open({}, &engine);
  if (!s.ok()) {
    std::fprintf(stderr, "face_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
  dlib::shape_predictor predictor;
  dlib::deserialize("/usr/share/dlib/shape_predictor_68_face_landmarks.dat") >> predictor;

  cv::Mat grey;
  cv::cvtColor(capture, grey, cv::COLOR_BGR2GRAY);
  dlib::cv_image<unsigned char> grey_img(grey);
  dlib::cv_image<dlib::bgr_pixel> bgr_img(capture);
  std::vector<dlib::rectangle> faces = detector(grey_img);
  if (faces.empty()) {
    std::fprintf(stderr, "face_bench: no face in the capture at native size\n");
    return 1;
  }
  const int n = 20;
  std::vector<dlib::rectangle> found;
  const Timing detect = Median(n, [&] { found = detector(grey_img); });
  cv::Mat up;
  const Timing detect_up = Median(5, [&] {
    cv::resize(grey, up, cv::Size(), 2, 2, cv::INTER_LINEAR);
    dlib::cv_image<unsigned char> up_img(up);
    found = detector(up_img);
  });
  const Timing detect_rgb = Median(5, [&] { found = detector(bgr_img); });
  dlib::full_object_detection shape;
  const Timing landmarks = Median(n, [&] { shape = predictor(grey_img, faces[0]); });
  dlib::matrix<dlib::bgr_pixel> aligned;
  cv::Mat chip(150, 150, CV_8UC3);
  const Timing chip_t = Median(n, [&] {
    dlib::extract_image_chip(bgr_img, dlib::get_face_chip_details(shape, 150, 0.25), aligned);
    for (int y = 0; y < 150; ++y) {
      for (int x = 0; x < 150; ++x) {
        const auto& p = aligned(y, x);
        chip.at<cv::Vec3b>(y, x) = cv::Vec3b(p.blue, p.green, p.red);
      }
    }
  });
  portcullis::face::FaceTemplate t;
  const Timing embed = Median(n, [&] { (void)net->Embed(chip, &t); });
  const Timing enrol = Median(n, [&] { (void)engine->Enrol(capture, &t); });
  std::vector<portcullis::face::FaceBox> boxes;
  portcullis::face::DetectStats stats;
  const Timing engine_detect = Median(n, [&] { (void)engine->Detect(capture, &boxes, &stats); });

  // Small images (LFW's 250x250, a document photo): the default upsamples them 2x before
  // detection; the baseline is the native-size first pass. Jitter: N network passes per face.
  cv::Mat small;
  cv::resize(capture(cv::Rect(70, 0, 500, 480)), small, cv::Size(250, 240), 0, 0, cv::INTER_AREA);
  portcullis::face::FaceEngineOptions native_options;
  native_options.upsample_small_images = false;
  std::unique_ptr<portcullis::face::FaceEngine> native;
  s = portcullis::face::FaceEngine::Open(native_options, &native);
  if (!s.ok()) {
    std::fprintf(stderr, "face_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  const Timing enrol_small = Median(n, [&] { (void)engine->Enrol(small, &t); });
  const Timing enrol_small_native = Median(n, [&] { (void)native->Enrol(small, &t); });
  // A gate camera that frames travellers at ~200 px: detection looks only for faces >= N px
  // (FaceEngineOptions::min_face_pixels), on a copy shrunk by 80/N. Measured in the same run as
  // the default Enrol above; the template distance to the default's says what it changes.
  struct MinFaceRow {
    int pixels;
    Timing enrol;
    Timing detect;
    int detection_width;
    float distance;
  };
  std::vector<MinFaceRow> min_face_rows;
  portcullis::face::FaceTemplate reference;
  if (!engine->Enrol(capture, &reference).ok()) {
    std::fprintf(stderr, "face_bench: default Enrol failed on the capture\n");
    return 1;
  }
  for (const int pixels : {120, 160}) {
    portcullis::face::FaceEngineOptions options;
    options.min_face_pixels = pixels;
    std::unique_ptr<portcullis::face::FaceEngine> shrunk;
    if (!portcullis::face::FaceEngine::Open(options, &shrunk).ok()) return 1;
    MinFaceRow row{pixels, {}, {}, 0, 0};
    portcullis::face::FaceTemplate got;
    if (!shrunk->Enrol(capture, &got).ok()) {
      std::fprintf(stderr, "face_bench: no face with min_face_pixels %d\n", pixels);
      return 1;
    }
    row.distance = portcullis::face::Distance(got, reference);
    row.enrol = Median(n, [&] { (void)shrunk->Enrol(capture, &t); });
    row.detect = Median(n, [&] { (void)shrunk->Detect(capture, &boxes, &stats); });
    row.detection_width = stats.detection_width;
    min_face_rows.push_back(row);
  }
  const Timing jitter4 = Median(5, [&] { (void)net->Embed(chip, &t, 4); });
  const Timing jitter10 = Median(3, [&] { (void)net->Embed(chip, &t, 10); });

  std::printf(
      "face_bench: 640x480 capture, one core (OpenBLAS threads pinned to 1: %s; kernels: %s), "
      "median of %d\n",
      blas_knob ? "yes" : "no, not OpenBLAS",
      portcullis::OpenBlasCoreName() != nullptr ? portcullis::OpenBlasCoreName() : "-", n);
  std::printf("%-44s %8s %8s\n", "stage", "cpu ms", "wall ms");
  Row("detect (HOG, grey, native)", detect);
  Row("  baseline: HOG on colour, native", detect_rgb);
  Row("  baseline: HOG grey, 2x upsampled", detect_up);
  Row("landmarks (68 points)", landmarks);
  Row("chip (align 150x150)", chip_t);
  Row("embed (ResNet-29, 128-d)", embed);
  Row("sum of stages", {detect.wall_ms + landmarks.wall_ms + chip_t.wall_ms + embed.wall_ms,
                        detect.cpu_ms + landmarks.cpu_ms + chip_t.cpu_ms + embed.cpu_ms});
  Row("Enrol() end to end (+quality)", enrol);
  std::printf("  Detect() alone: %d view(s), %zu face(s)       %8.1f %8.1f\n", stats.passes,
              boxes.size(), engine_detect.cpu_ms, engine_detect.wall_ms);
  for (const MinFaceRow& row : min_face_rows) {
    char name[96];
    std::snprintf(name, sizeof(name), "Enrol() --min-face %d (HOG on %d px wide)", row.pixels,
                  row.detection_width);
    Row(name, row.enrol);
    std::snprintf(name, sizeof(name), "  Detect() alone; template distance %.4f", row.distance);
    Row(name, row.detect);
  }
  Row("Enrol() 250x240 image, 2x upsampled first", enrol_small);
  Row("  baseline: native size first", enrol_small_native);
  Row("embed, --jitter 4 (document/eval option)", jitter4);
  Row("embed, --jitter 10", jitter10);
  return 0;
}

int main(int argc, char** argv) {
  portcullis::ReexecWithKnownOpenBlasKernels(argv);  // as the product does (src/cli/main.cc)
  portcullis::TuneMemoryForNetworks();               // likewise
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "face_bench: %s\n", e.what());
  }
  return 1;
}
