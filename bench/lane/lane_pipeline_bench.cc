// lane_pipeline_bench: can one core keep up with a lane at 15 analysed frames per second?
//
// Generates a 1080p 30 fps MJPG clip of vehicles approaching a lane camera (synthetic plate
// scenes, known texts; written to a temporary directory and deleted), then runs, on one thread
// (cv::setNumThreads(1), PlateReader threads = 1), FrameSource (stride 2) + PassDetector with
// its gate, ROI and locking, against the baseline of the plate engine on every analysed frame of
// the whole picture (no gate, no ROI, no locking), and prints a Markdown table.
//
//   build-lv/bench/lane/lane_pipeline_bench [--seconds 60] [--vehicles 10] [--detector 640]
//                                           [--lane-detector N (the ROI runs' reader)]
//                                           [--baseline-seconds 20] [--no-ablations]
//                                           [--clip FILE (write it there, or reuse it)]
//                                           [--baseline-only]
//
// ms/frame is the analysing thread's CPU time per analysed frame (CLOCK_THREAD_CPUTIME_ID; the
// plate engine runs on that thread with threads = 1); wall time on a shared machine measures the
// neighbours. CPU s is getrusage(RUSAGE_SELF) user+sys over each run, so it includes the capture
// thread's decoding; "cores for real time" = CPU seconds / seconds of video processed (<= 1: one
// core keeps up).

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

#include "camera_util.h"
#include "lane/frame_source.h"
#include "lane/pass_detector.h"
#include "portcullis/plate.h"
#include "portcullis/plate_video.h"

namespace {

using portcullis::Status;
using portcullis::lane::CameraConfig;
using portcullis::lane::Frame;
using portcullis::lane::FrameSource;
using portcullis::lane::LaneEvent;
using portcullis::lane::PassDetector;
using portcullis::lane::PassDetectorOptions;
using portcullis::lane::testing::LaneClipSpec;
using portcullis::lane::testing::LaneClipTruth;
using Clock = std::chrono::steady_clock;

constexpr double kFps = 30;
constexpr int kStride = 2;
constexpr int kWidth = 1920;
constexpr int kHeight = 1080;

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// CPU time of the calling thread: per-frame costs that a busy, shared machine does not inflate
// the way it inflates wall time.
double ThreadCpuMs() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::lround(p * static_cast<double>(v.size() - 1)));
  return v[i];
}

struct Found {
  std::string text;
  std::int64_t first_frame = 0;
  std::int64_t last_frame = 0;
};

struct Row {
  std::string name;
  double video_seconds = 0;
  std::int64_t frames = 0;
  double wall = 0;
  double cpu = 0;
  std::vector<double> ms;
  std::int64_t reads = 0;
  std::vector<Found> found;
};

// A vehicle counts as found when exactly one pass with its text overlaps its frames; passes
// with a wrong text, or a second pass for the same vehicle, are errors.
struct Score {
  int expected = 0;
  int correct = 0;
  int wrong = 0;  // passes that match no vehicle's text, or duplicate one
};

Score ScoreRun(const std::vector<Found>& found, const std::vector<LaneClipTruth>& truth,
               std::int64_t last_frame) {
  Score s;
  std::vector<int> hits(truth.size(), 0);
  for (const Found& f : found) {
    bool matched = false;
    for (std::size_t v = 0; v < truth.size(); ++v) {
      if (f.text == truth[v].plate && f.first_frame <= truth[v].last_frame + kStride &&
          f.last_frame >= truth[v].first_frame - kStride) {
        ++hits[v];
        matched = hits[v] == 1;
      }
    }
    if (!matched) ++s.wrong;
  }
  for (std::size_t v = 0; v < truth.size(); ++v) {
    if (truth[v].last_frame > last_frame) continue;  // not in the part this run saw
    ++s.expected;
    if (hits[v] >= 1) ++s.correct;
  }
  return s;
}

std::unique_ptr<FrameSource> OpenClip(const std::string& path) {
  CameraConfig camera;
  camera.id = "bench";
  camera.source = path;
  camera.frame_stride = kStride;
  std::unique_ptr<FrameSource> source;
  const Status status = portcullis::lane::OpenFrameSource(camera, &source);
  if (!status.ok()) {
    std::fprintf(stderr, "open: %s\n", status.ToString().c_str());
    std::exit(1);
  }
  return source;
}

// FrameSource + PassDetector.
Row RunLane(const std::string& name, const std::string& path,
            portcullis::plate::PlateReader* reader, const PassDetectorOptions& options) {
  Row row;
  row.name = name;
  std::unique_ptr<PassDetector> detector;
  Status status = PassDetector::Create(options, reader, nullptr, &detector);
  if (!status.ok()) {
    std::fprintf(stderr, "detector: %s\n", status.ToString().c_str());
    std::exit(1);
  }
  const double cpu0 = CpuSeconds();
  const auto wall0 = Clock::now();
  auto source = OpenClip(path);
  std::vector<LaneEvent> events;
  std::int64_t last_index = 0;
  while (true) {
    Frame frame;
    status = source->Next(10000, &frame);
    if (!status.ok()) break;
    last_index = frame.index;
    const double t0 = ThreadCpuMs();
    status = detector->Analyse(frame, &events);
    row.ms.push_back(ThreadCpuMs() - t0);
    if (!status.ok()) std::fprintf(stderr, "analyse: %s\n", status.ToString().c_str());
  }
  (void)detector->Flush(&events);
  row.wall = std::chrono::duration<double>(Clock::now() - wall0).count();
  row.cpu = CpuSeconds() - cpu0;
  row.frames = detector->stats().frames;
  row.reads = detector->stats().plate_reads;
  row.video_seconds = static_cast<double>(last_index + 1) / kFps;
  for (LaneEvent& e : events) {
    // Frame indices of the pass, from its wall-clock times is not possible on a file replay;
    // the bench's detector stamps are real-time, so match passes by order of their times.
    Found f;
    f.text = e.plates.empty() ? "" : e.plates[0].text;
    f.first_frame = e.started_wall_micros;
    f.last_frame = e.ended_wall_micros;
    row.found.push_back(f);
    e.Wipe();
  }
  std::fprintf(stderr, "%s: %lld frames, %lld motion, %lld reads, %lld followed, %lld passes\n",
               name.c_str(), static_cast<long long>(detector->stats().frames),
               static_cast<long long>(detector->stats().motion_frames),
               static_cast<long long>(detector->stats().plate_reads),
               static_cast<long long>(detector->stats().followed_frames),
               static_cast<long long>(detector->stats().passes));
  return row;
}

// The baseline: the plate engine on every analysed frame of the whole picture, PlateTracker.
Row RunBaseline(const std::string& path, portcullis::plate::PlateReader* reader, double seconds) {
  Row row;
  row.name = "baseline: engine on every analysed frame, whole picture";
  portcullis::plate::PlateTracker tracker;
  std::vector<portcullis::plate::PlatePass> passes;
  const double cpu0 = CpuSeconds();
  const auto wall0 = Clock::now();
  auto source = OpenClip(path);
  const auto max_index = static_cast<std::int64_t>(seconds * kFps);
  std::int64_t last_index = 0;
  while (true) {
    Frame frame;
    if (!source->Next(10000, &frame).ok() || frame.index >= max_index) break;
    last_index = frame.index;
    const double t0 = ThreadCpuMs();
    std::vector<portcullis::plate::PlateRead> reads;
    if (!reader->Read(frame.bgr, &reads).ok()) std::fprintf(stderr, "baseline read failed\n");
    tracker.Observe(frame.index, static_cast<double>(frame.index) * 1000.0 / kFps, reads, &passes);
    row.ms.push_back(ThreadCpuMs() - t0);
    ++row.reads;
    ++row.frames;
  }
  source.reset();
  tracker.Flush(&passes);
  row.wall = std::chrono::duration<double>(Clock::now() - wall0).count();
  row.cpu = CpuSeconds() - cpu0;
  row.video_seconds = static_cast<double>(last_index + 1) / kFps;
  for (const auto& p : passes) row.found.push_back({p.best.text, p.first_frame, p.last_frame});
  return row;
}

int IntFlag(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  }
  return fallback;
}

bool BoolFlag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = std::max(5, IntFlag(argc, argv, "--seconds", 60));
  const int vehicles = std::max(1, IntFlag(argc, argv, "--vehicles", 10));
  const int detector_side = IntFlag(argc, argv, "--detector", 640);
  const int lane_detector_side = IntFlag(argc, argv, "--lane-detector", detector_side);
  const int baseline_seconds = IntFlag(argc, argv, "--baseline-seconds", 20);
  const bool ablations = !BoolFlag(argc, argv, "--no-ablations");
  const bool lane_runs = !BoolFlag(argc, argv, "--baseline-only");
  cv::setNumThreads(1);

  // The clip: vehicles 2.5 s in view each, evenly spaced, empty road between.
  const char* texts[] = {"ABC1234", "KTM5082", "HZR7391", "BDX4620", "MLP3857",
                         "RWT9104", "CGN2736", "YFE6419", "JVK8053", "SPU1978"};
  LaneClipSpec spec;
  spec.width = kWidth;
  spec.height = kHeight;
  spec.approach = true;
  spec.plate_width = 220;
  spec.frames_per_vehicle = 75;
  const int total_frames = seconds * static_cast<int>(kFps);
  spec.gap_frames =
      std::max(10, (total_frames - vehicles * spec.frames_per_vehicle) / (vehicles + 1));
  spec.plates.clear();
  for (int v = 0; v < vehicles; ++v) spec.plates.emplace_back(texts[v % 10]);
  // --clip FILE: write the clip there (and keep it), or reuse it when it already exists.
  std::string path;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--clip") == 0) path = argv[i + 1];
  }
  portcullis::lane::testing::TempDir dir;
  if (path.empty()) path = dir.path() + "/lane_1080p30.avi";
  std::vector<LaneClipTruth> truth;
  if (std::ifstream(path).good()) {
    portcullis::lane::testing::RenderLaneClip(spec, &truth, [](const cv::Mat&) {});
    std::fprintf(stderr, "clip: reusing %s\n", path.c_str());
  } else {
    const auto t0 = Clock::now();
    cv::VideoWriter writer(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), kFps,
                           cv::Size(kWidth, kHeight));
    if (!writer.isOpened()) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return 1;
    }
    portcullis::lane::testing::RenderLaneClip(spec, &truth,
                                              [&](const cv::Mat& f) { writer.write(f); });
    writer.release();
    std::fprintf(stderr, "clip: %d frames 1920x1080 @ 30 fps, %d vehicles, written in %.1f s\n",
                 total_frames, vehicles, std::chrono::duration<double>(Clock::now() - t0).count());
  }

  // Decoding alone: what the camera costs before any analysis (the capture thread's share).
  Row decode;
  {
    decode.name = "decode only (FrameSource, stride 2)";
    const double cpu0 = CpuSeconds();
    const auto wall0 = Clock::now();
    auto source = OpenClip(path);
    std::int64_t last_index = 0;
    Frame frame;
    while (source->Next(10000, &frame).ok()) {
      last_index = frame.index;
      ++decode.frames;
      decode.ms.push_back(0);
    }
    decode.wall = std::chrono::duration<double>(Clock::now() - wall0).count();
    decode.cpu = CpuSeconds() - cpu0;
    decode.video_seconds = static_cast<double>(last_index + 1) / kFps;
  }

  portcullis::plate::PlateReaderOptions reader_options;
  reader_options.region = "us";
  reader_options.threads = 1;
  reader_options.detector_max_side = detector_side;
  reader_options.second_look_scale = 0;  // as the lane agent runs it (src/lane/agent_parts.cc)
  std::unique_ptr<portcullis::plate::PlateReader> reader;
  const Status opened = portcullis::plate::PlateReader::Open(reader_options, &reader);
  if (!opened.ok()) {
    std::fprintf(stderr, "plate reader: %s\n", opened.ToString().c_str());
    return 1;
  }

  PassDetectorOptions lane;
  lane.device = "lane:bench";
  lane.lane = "bench";
  lane.camera.id = "bench";
  // The lane: where plates pass in this camera's view (centre 1200 x 800 of the picture).
  lane.camera.roi_x = 360;
  lane.camera.roi_y = 200;
  lane.camera.roi_w = 1200;
  lane.camera.roi_h = 800;

  // The lane's own reader: the ROI is smaller than the picture, so the same pixels per plate
  // need a smaller detector side (--lane-detector; default: the same as --detector).
  std::unique_ptr<portcullis::plate::PlateReader> lane_reader;
  portcullis::plate::PlateReader* lane_engine = reader.get();
  if (lane_detector_side != detector_side) {
    reader_options.detector_max_side = lane_detector_side;
    const Status lane_opened = portcullis::plate::PlateReader::Open(reader_options, &lane_reader);
    if (!lane_opened.ok()) {
      std::fprintf(stderr, "plate reader: %s\n", lane_opened.ToString().c_str());
      return 1;
    }
    lane_engine = lane_reader.get();
  }

  std::printf(
      "\nlane_pipeline_bench: %d s of 1920x1080 @ 30 fps (stride 2 -> 15 analysed fps), "
      "%d vehicles, plate detector max side %d (ROI runs: %d), one thread\n\n",
      seconds, vehicles, detector_side, lane_detector_side);
  std::printf(
      "| run | video s | analysed frames | analysed fps (flat out) | CPU ms/frame p50 | p95 | "
      "max | mean | engine calls/s of video | passes right / expected (wrong) | CPU s | "
      "cores for real time |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  // Each row is printed as soon as its run ends (a long run on a busy machine still leaves the
  // rows it finished).
  const auto print = [&](const Row& r) {
    Score score;
    if (r.name.rfind("decode", 0) == 0) {
      score = Score{};
    } else if (r.name.rfind("baseline", 0) == 0) {
      score = ScoreRun(r.found, truth, static_cast<std::int64_t>(r.video_seconds * kFps) - 1);
    } else {
      // Lane runs stamp passes with the replay's wall clock; compare texts and count instead:
      // each vehicle's text must appear exactly once, in order.
      std::vector<std::string> got;
      for (const Found& f : r.found) got.push_back(f.text);
      score.expected = static_cast<int>(truth.size());
      std::size_t g = 0;
      for (const LaneClipTruth& t : truth) {
        std::size_t k = g;
        while (k < got.size() && got[k] != t.plate) ++k;
        if (k < got.size()) {
          ++score.correct;
          score.wrong += static_cast<int>(k - g);
          g = k + 1;
        }
      }
      score.wrong += static_cast<int>(got.size() - g);
    }
    double mean = 0;
    for (const double m : r.ms) mean += m;
    mean /= static_cast<double>(std::max<std::size_t>(1, r.ms.size()));
    std::printf(
        "| %s | %.0f | %lld | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %d / %d (%d) | "
        "%.1f | %.2f |\n",
        r.name.c_str(), r.video_seconds, static_cast<long long>(r.frames),
        static_cast<double>(r.frames) / std::max(1e-9, r.wall), Percentile(r.ms, 0.5),
        Percentile(r.ms, 0.95), Percentile(r.ms, 1.0), mean,
        static_cast<double>(r.reads) / std::max(1e-9, r.video_seconds), score.correct,
        score.expected, score.wrong, r.cpu, r.cpu / std::max(1e-9, r.video_seconds));
    std::fflush(stdout);
  };
  print(decode);
  if (lane_runs) {
    print(RunLane("lane pipeline: gate + ROI + locking", path, lane_engine, lane));
  }
  if (lane_runs && ablations) {
    PassDetectorOptions no_lock = lane;
    no_lock.lock_after_reads = 1 << 20;
    print(RunLane("gate + ROI, no locking", path, lane_engine, no_lock));
    PassDetectorOptions gate_only = no_lock;
    gate_only.camera.roi_w = 0;
    gate_only.camera.roi_h = 0;
    print(RunLane("gate only (whole picture, no locking)", path, reader.get(), gate_only));
  }
  if (baseline_seconds > 0) {
    print(RunBaseline(path, reader.get(), std::min(seconds, baseline_seconds)));
  }
  return 0;
}
