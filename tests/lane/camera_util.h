// Test helpers for the camera and pass-detector tests: a local fake network camera (MJPEG over
// HTTP on loopback, plain sockets) that can stall or drop its connection on command, and writers
// for generated video files and synthetic lane clips. No hardware, no network beyond 127.0.0.1.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace portcullis::lane::testing {

// A fake IP camera: answers any HTTP GET with `multipart/x-mixed-replace` JPEG frames (the MJPEG
// format cheap IP cameras serve), cycling through the given frames at `fps`.
class FakeMjpegCamera {
 public:
  enum class Mode {
    kStream,  // send frames
    kStall,   // keep every connection open and send nothing (a hung camera or network)
    kDrop,    // close every connection and refuse new ones (unplugged)
  };

  // Listens on 127.0.0.1 on a free port. frames: BGR images; fps: frames per second sent.
  FakeMjpegCamera(const std::vector<cv::Mat>& frames, double fps);
  ~FakeMjpegCamera();
  FakeMjpegCamera(const FakeMjpegCamera&) = delete;
  FakeMjpegCamera& operator=(const FakeMjpegCamera&) = delete;

  [[nodiscard]] bool ok() const { return listen_fd_ >= 0; }
  [[nodiscard]] std::string url() const;
  void SetMode(Mode mode) { mode_.store(mode); }
  // Serves these bytes instead of frame i's JPEG (a corrupt frame). Call before any client.
  void ReplaceFrameBytes(std::size_t i, std::string bytes) {
    if (i < jpegs_.size()) jpegs_[i] = std::move(bytes);
  }
  // After this many more frames (over all connections) switch to kStall; -1: never.
  void StallAfter(std::int64_t frames) { stall_budget_.store(frames); }
  [[nodiscard]] std::int64_t frames_sent() const { return frames_sent_.load(); }
  [[nodiscard]] int connections() const { return connections_.load(); }

 private:
  void AcceptLoop();
  void Serve(int fd);

  std::vector<std::string> jpegs_;
  int period_ms_ = 40;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<Mode> mode_{Mode::kStream};
  std::atomic<std::int64_t> stall_budget_{-1};
  std::atomic<std::int64_t> frames_sent_{0};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::vector<std::thread> workers_;  // guarded by mu_
  std::thread acceptor_;
};

// A fresh temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Writes frames as an MJPG AVI. False when OpenCV cannot write it.
bool WriteMjpgAvi(const std::string& path, const std::vector<cv::Mat>& frames, double fps);

// Frames of flat grey whose level encodes the frame number (level = 10 + 3 * i, mod 240), so a
// test can tell which frame it got even after JPEG: FrameLevel(frame) recovers it.
std::vector<cv::Mat> NumberedFrames(int count, int width, int height);
int FrameNumber(const cv::Mat& bgr);

// A synthetic lane clip: vehicles (synthetic plate scenes) drive across a static background,
// one after the other, with empty road between them.
struct LaneClipSpec {
  int width = 640;
  int height = 360;
  std::vector<std::string> plates = {"ABC1234"};  // one vehicle per plate, in order
  int frames_per_vehicle = 30;                    // frames a vehicle is in view
  int gap_frames = 15;                            // empty frames before each vehicle and at the end
  int plate_width = 150;                          // in the rendered vehicle
  // false: vehicles cross the frame left to right at a constant size. true: they approach the
  // camera head-on down the middle of the frame, growing from 70% to 100% of their size (what a
  // lane camera sees; the lane benchmark's clip).
  bool approach = false;
  // A face image pasted onto each vehicle's windshield area above the plate (empty: none).
  cv::Mat face;
};
struct LaneClipTruth {
  std::string plate;
  int first_frame = 0;  // first frame the vehicle is in view
  int last_frame = 0;
};
// Renders the clip's frames (BGR). truth gets one entry per vehicle.
std::vector<cv::Mat> RenderLaneClip(const LaneClipSpec& spec, std::vector<LaneClipTruth>* truth);
// The same, one frame at a time (long 1080p clips do not fit in memory).
void RenderLaneClip(const LaneClipSpec& spec, std::vector<LaneClipTruth>* truth,
                    const std::function<void(const cv::Mat&)>& emit);

}  // namespace portcullis::lane::testing
