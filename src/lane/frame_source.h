// Cameras. A FrameSource yields decoded frames from one camera: a video file, an RTSP/HTTP stream
// or a V4L2 device, through OpenCV VideoCapture. Tests use the same interface over files and a
// local fake MJPEG-over-HTTP camera, so no hardware is needed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <opencv2/core/mat.hpp>

#include "portcullis/status.h"

namespace portcullis::lane {

struct Frame {
  cv::Mat bgr;                        // 8-bit BGR; wiped by the consumer when dropped (hygiene.h)
  std::int64_t index = 0;             // frames decoded from this source since it was opened
  std::int64_t monotonic_micros = 0;  // steady clock at decode: durations, never wall time
  std::int64_t wall_micros = 0;       // wall clock at decode: event times (may jump)
};

struct CameraConfig {
  std::string id;      // "cam0": names the camera in events and metrics
  std::string source;  // a file path, "rtsp://...", "http://...", or "v4l2:N" (device index)
  // Analyse every Nth decoded frame (30 fps -> 15 analysed fps). Applied by the FrameSource:
  // Next() returns only every Nth frame (Frame::index still counts every decoded frame); the
  // frames in between are only grabbed (decoded, never converted to BGR): they cost less and
  // never reach the agent's memory.
  int frame_stride = 2;
  int stall_timeout_ms = 5000;  // no frame for this long: the camera is stalled (health, retry)
  bool loop = false;            // files only: start again at the end (demos and soak tests)
  // Files only: decode at the file's own frame rate (CAP_PROP_FPS, else 30), as a live camera
  // delivers, instead of as fast as the CPU allows (benchmarks of latency, demos).
  bool realtime = false;
  // Reopening an unavailable camera: first wait, doubled per failure up to the cap. A camera that
  // is unplugged for a day costs one open attempt per cap interval, never a busy loop.
  int retry_initial_ms = 250;
  int retry_max_ms = 10000;
  bool faces = false;  // look for occupant faces through the windshield on this camera
  // Region of interest where plates pass, in source pixels (w = 0: the whole frame). Cropping it
  // is the cheapest speed-up there is: the detector's cost grows with the area it sees.
  int roi_x = 0, roi_y = 0, roi_w = 0, roi_h = 0;
  // The plate detector's input size (longer side) for this camera's picture (the ROI when one
  // is set); 0 = the plate engine's default (960, sized for whole photographs). A lane camera's
  // ROI frames plates that are larger in pixels: size this to the ROI and the detector's cost
  // falls with the square (docs/lane-vision.md: 400 for a 1200x800 ROI of a 1080p camera).
  int plate_detector_max_side = 0;
  // The smallest occupant face, in the analysed picture's pixels, that face detection looks for
  // (FaceEngineOptions::min_face_pixels); 0 = HOG's 80 px window. Larger is cheaper.
  int face_min_pixels = 0;
};

enum class CameraState {
  kOk,
  kStalled,      // opened, but no frame for stall_timeout_ms
  kUnavailable,  // cannot be opened (unplugged, refused, no such file); being retried
  kEnded,        // a file reached its end (not looping)
};
const char* CameraStateName(CameraState state);  // "ok", "stalled", "unavailable", "ended"

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // Waits at most timeout_ms for the next frame. OK with a frame; otherwise the status says why
  // and state() says what to report: IOError (stalled or unavailable: the caller retries),
  // NotFound when a file ended. Corrupt frames are skipped and counted, never returned.
  virtual Status Next(int timeout_ms, Frame* frame) = 0;
  [[nodiscard]] virtual CameraState state() const = 0;
  [[nodiscard]] virtual std::int64_t corrupt_frames() const = 0;
  [[nodiscard]] virtual std::int64_t reconnects() const = 0;
  // Live streams only: frames overwritten in the one-slot mailbox because the consumer was busy
  // (latest wins: a lane wants the newest frame, not a growing backlog). Files never drop.
  [[nodiscard]] virtual std::int64_t dropped_frames() const { return 0; }
};

// Opens a camera. Never blocks longer than the stall timeout; an unavailable camera still yields
// a source (state kUnavailable) that keeps retrying with back-off, so a lane computer that boots
// before its camera does not crash-loop.
Status OpenFrameSource(const CameraConfig& config, std::unique_ptr<FrameSource>* source);

}  // namespace portcullis::lane
