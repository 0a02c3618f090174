// FrameSource over OpenCV VideoCapture: files, rtsp:// and http(s):// streams (FFmpeg backend)
// and V4L2 devices ("v4l2:N").
//
// VideoCapture::open and ::read can block for as long as the network lets them, so the capture
// runs on its own thread and hands frames to Next() through a one-slot mailbox:
//   - live sources (streams, devices): latest wins. A busy consumer gets the newest frame and the
//     overwritten one is wiped and counted (dropped_frames), so a slow analysis never builds a
//     backlog of stale frames in memory.
//   - files: the capture thread waits for the slot to empty, so no frame is lost (tests,
//     benchmarks and replays see every frame exactly once).
// Next() never blocks longer than its timeout. Whether the camera is stalled, unavailable or
// ended is computed from what the capture thread last saw (state()), so health can be polled
// without consuming frames.
//
// Failures never throw and never loop hot: a source that cannot be opened, or a live stream that
// drops, is released and reopened from the capture thread with capped exponential back-off.
// FFmpeg's open/read timeouts are set from stall_timeout_ms so that a stalled network read
// returns (and the thread can be joined) instead of hanging forever.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

#include "lane/camera_internal.h"
#include "lane/frame_source.h"
#include "lane/hygiene.h"

namespace portcullis::lane {

const char* CameraStateName(CameraState state) {
  switch (state) {
    case CameraState::kOk:
      return "ok";
    case CameraState::kStalled:
      return "stalled";
    case CameraState::kUnavailable:
      return "unavailable";
    case CameraState::kEnded:
      return "ended";
  }
  return "unknown";
}

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
      .count();
}

std::int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

enum class SourceKind { kFile, kStream, kDevice };

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

SourceKind KindOf(const std::string& source) {
  if (StartsWith(source, "rtsp://") || StartsWith(source, "rtsps://") ||
      StartsWith(source, "http://") || StartsWith(source, "https://")) {
    return SourceKind::kStream;
  }
  if (StartsWith(source, "v4l2:")) return SourceKind::kDevice;
  return SourceKind::kFile;
}

// "v4l2:N" -> N, or -1 when N is not a small non-negative integer.
int DeviceIndex(const std::string& source) {
  const std::string digits = source.substr(5);
  if (digits.empty() || digits.size() > 3) return -1;
  int index = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return -1;
    index = index * 10 + (c - '0');
  }
  return index;
}

class CameraSource final : public FrameSource {
 public:
  explicit CameraSource(CameraConfig config)
      : config_(std::move(config)), kind_(KindOf(config_.source)) {
    thread_ = std::thread([this] { Run(); });
  }

  ~CameraSource() override {
    {
      const std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    if (slot_) WipeMat(&slot_->bgr);
  }

  CameraSource(const CameraSource&) = delete;
  CameraSource& operator=(const CameraSource&) = delete;

  Status Next(int timeout_ms, Frame* frame) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(std::max(0, timeout_ms)),
                 [this] { return slot_.has_value() || ended_; });
    if (slot_) {
      *frame = std::move(*slot_);
      slot_.reset();
      slot_full_.store(false);
      lock.unlock();
      cv_.notify_all();  // a file's capture thread waits for the slot to empty
      return Status::Ok();
    }
    if (ended_) return Status::NotFound("camera " + config_.id + ": end of file");
    lock.unlock();
    switch (state()) {
      case CameraState::kUnavailable:
        return Status::IOError("camera " + config_.id + ": unavailable (reconnecting)");
      case CameraState::kStalled:
        return Status::IOError("camera " + config_.id + ": stalled (no frame for " +
                               std::to_string(config_.stall_timeout_ms) + " ms)");
      default:
        return Status::IOError("camera " + config_.id + ": no frame within " +
                               std::to_string(timeout_ms) + " ms");
    }
  }

  [[nodiscard]] CameraState state() const override {
    if (ended_flag_.load()) return CameraState::kEnded;
    if (!open_.load()) return CameraState::kUnavailable;
    if (slot_full_.load()) return CameraState::kOk;  // a frame is waiting: not stalled
    const std::int64_t idle_micros = SteadyMicros() - last_frame_micros_.load();
    if (idle_micros > std::int64_t{config_.stall_timeout_ms} * 1000) return CameraState::kStalled;
    return CameraState::kOk;
  }
  [[nodiscard]] std::int64_t corrupt_frames() const override { return corrupt_.load(); }
  [[nodiscard]] std::int64_t reconnects() const override { return reconnects_.load(); }
  [[nodiscard]] std::int64_t dropped_frames() const override { return dropped_.load(); }

 private:
  // Sleeps up to ms unless stopped; false when stopped.
  bool SleepUnlessStopped(int ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stop_; });
  }

  bool Stopped() {
    const std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }

  bool Open(cv::VideoCapture* capture) {
    try {
      switch (kind_) {
        case SourceKind::kFile: {
          std::error_code ec;
          if (!std::filesystem::is_regular_file(config_.source, ec)) return false;
          // FFmpeg alone when it is built in (as in Debian's OpenCV): with CAP_ANY a file FFmpeg
          // rejects goes on to every other backend (GStreamer, image sequences, gphoto2), which
          // print noise, throw, and leak libusb device lists on every retry.
          const int api =
              cv::videoio_registry::hasBackend(cv::CAP_FFMPEG) ? cv::CAP_FFMPEG : cv::CAP_ANY;
          return capture->open(config_.source, api) && capture->isOpened();
        }
        case SourceKind::kStream: {
          // Bounded open and read: a stalled socket returns within the timeout instead of
          // blocking the capture thread (and the agent's shutdown) forever. A stall longer than
          // this is reported as stalled first, then unavailable while we reconnect.
          const int timeout = std::max(1000, 2 * config_.stall_timeout_ms);
          const std::vector<int> params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, timeout,
                                           cv::CAP_PROP_READ_TIMEOUT_MSEC, timeout};
          return capture->open(config_.source, cv::CAP_FFMPEG, params) && capture->isOpened();
        }
        case SourceKind::kDevice: {
          const int index = DeviceIndex(config_.source);
          if (index < 0) return false;
          return capture->open(index, cv::CAP_V4L2) && capture->isOpened();
        }
      }
    } catch (const cv::Exception&) {
      return false;
    }
    return false;
  }

  // Reads one frame; false at end of stream or on a read error.
  static bool Read(cv::VideoCapture* capture, cv::Mat* out) {
    try {
      return capture->read(*out);
    } catch (const cv::Exception&) {
      return false;
    }
  }

  static bool Grab(cv::VideoCapture* capture) {
    try {
      return capture->grab();
    } catch (const cv::Exception&) {
      return false;
    }
  }

  // Hands a frame to the consumer. Files wait for the slot (lossless); live sources overwrite
  // (latest wins). False when stopped.
  bool Deliver(Frame frame) {
    std::unique_lock<std::mutex> lock(mu_);
    if (kind_ == SourceKind::kFile) {
      cv_.wait(lock, [this] { return stop_ || !slot_.has_value(); });
      if (stop_) {
        WipeMat(&frame.bgr);
        return false;
      }
    } else if (slot_) {
      WipeMat(&slot_->bgr);
      dropped_.fetch_add(1);
    }
    slot_ = std::move(frame);
    slot_full_.store(true);
    lock.unlock();
    cv_.notify_all();
    return true;
  }

  static double FileFps(cv::VideoCapture* capture) {
    double fps = 0;
    try {
      fps = capture->get(cv::CAP_PROP_FPS);
    } catch (const cv::Exception&) {
      fps = 0;
    }
    return fps >= 1.0 && fps <= 240.0 ? fps : 30.0;
  }

  void MarkEnded() {
    {
      const std::lock_guard<std::mutex> lock(mu_);
      ended_ = true;
    }
    ended_flag_.store(true);
    cv_.notify_all();
  }

  void Run() {
    int backoff_ms = std::max(1, config_.retry_initial_ms);
    const int backoff_cap_ms = std::max(backoff_ms, config_.retry_max_ms);
    bool ever_opened = false;
    std::int64_t decoded = 0;  // frames decoded since this source was created
    const int stride = std::max(1, config_.frame_stride);
    while (!Stopped()) {
      cv::VideoCapture capture;
      if (!Open(&capture)) {
        open_.store(false);
        if (!SleepUnlessStopped(backoff_ms)) return;
        backoff_ms = std::min(backoff_cap_ms, backoff_ms * 2);
        continue;
      }
      if (ever_opened) reconnects_.fetch_add(1);
      ever_opened = true;
      expected_size_ = cv::Size();
      last_frame_micros_.store(SteadyMicros());
      open_.store(true);
      std::int64_t good_this_open = 0;
      // realtime (files): frame k of this opening is due at paced_start + k / fps.
      const bool paced = config_.realtime && kind_ == SourceKind::kFile;
      const double fps = paced ? FileFps(&capture) : 0.0;
      const auto paced_start = Clock::now();
      std::int64_t paced_frames = 0;
      while (!Stopped()) {
        if (paced) {
          const auto due = paced_start + std::chrono::microseconds(static_cast<std::int64_t>(
                                             static_cast<double>(paced_frames) * 1e6 / fps));
          const auto wait =
              std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now());
          if (wait.count() > 0 && !SleepUnlessStopped(static_cast<int>(wait.count()))) return;
          ++paced_frames;
        }
        if (decoded % stride != 0) {
          // A frame the stride skips: grab (demux and decode) without converting it to BGR, so
          // it costs less and its pixels never reach our memory at all.
          if (!Grab(&capture)) break;
          ++decoded;
          ++good_this_open;
          last_frame_micros_.store(SteadyMicros());
          continue;
        }
        cv::Mat image;
        if (!Read(&capture, &image)) break;
        if (!camera_internal::AcceptFrame(image, &expected_size_)) {
          corrupt_.fetch_add(1);
          WipeMat(&image);
          continue;
        }
        const std::int64_t index = decoded++;
        ++good_this_open;
        last_frame_micros_.store(SteadyMicros());
        backoff_ms = std::max(1, config_.retry_initial_ms);  // it works again
        Frame frame;
        frame.bgr = std::move(image);
        frame.index = index;
        frame.monotonic_micros = SteadyMicros();
        frame.wall_micros = WallMicros();
        if (!Deliver(std::move(frame))) return;
      }
      capture.release();
      if (Stopped()) return;
      if (kind_ == SourceKind::kFile) {
        if (!config_.loop) {
          MarkEnded();
          return;
        }
        if (good_this_open > 0) continue;  // loop: start again at once
        // A looping file with no decodable frame: treat like an unavailable source (back off).
      }
      // A live stream dropped (or a looping file yielded nothing): reconnect with back-off.
      open_.store(false);
      if (!SleepUnlessStopped(backoff_ms)) return;
      backoff_ms = std::min(backoff_cap_ms, backoff_ms * 2);
    }
  }

  const CameraConfig config_;
  const SourceKind kind_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;          // guarded by mu_
  bool ended_ = false;         // guarded by mu_
  std::optional<Frame> slot_;  // guarded by mu_

  // Read by state() from any thread.
  std::atomic<bool> open_{false};
  std::atomic<bool> ended_flag_{false};
  std::atomic<bool> slot_full_{false};
  std::atomic<std::int64_t> last_frame_micros_{0};
  std::atomic<std::int64_t> corrupt_{0};
  std::atomic<std::int64_t> reconnects_{0};
  std::atomic<std::int64_t> dropped_{0};

  cv::Size expected_size_;  // capture thread only
  std::thread thread_;      // last: started once everything above is initialised
};

}  // namespace

Status OpenFrameSource(const CameraConfig& config, std::unique_ptr<FrameSource>* source) {
  if (source == nullptr) return Status::InvalidArgument("OpenFrameSource: null output");
  if (config.source.empty()) return Status::InvalidArgument("camera " + config.id + ": no source");
  if (config.frame_stride < 1 || config.frame_stride > 1000) {
    return Status::InvalidArgument("camera " + config.id + ": frame_stride must be in [1, 1000]");
  }
  if (config.stall_timeout_ms < 1) {
    return Status::InvalidArgument("camera " + config.id + ": stall_timeout_ms must be positive");
  }
  if (config.roi_x < 0 || config.roi_y < 0 || config.roi_w < 0 || config.roi_h < 0) {
    return Status::InvalidArgument("camera " + config.id + ": negative region of interest");
  }
  if (KindOf(config.source) == SourceKind::kDevice && DeviceIndex(config.source) < 0) {
    return Status::InvalidArgument("camera " + config.id + ": expected v4l2:N, got " +
                                   config.source);
  }
  try {
    *source = std::make_unique<CameraSource>(config);
  } catch (const std::exception& e) {  // std::system_error: no thread could be started
    return Status::ResourceExhausted(std::string("camera ") + config.id + ": " + e.what());
  }
  return Status::Ok();
}

}  // namespace portcullis::lane
