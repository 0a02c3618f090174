// From frames to vehicle passes. The PassDetector decides, per analysed frame, how much work the
// frame deserves (a cheap motion gate first; the plate engine only where something moved, only
// inside the camera's region of interest), tracks plates across frames, and when a vehicle has
// passed emits one LaneEvent: its plate read(s) voted over frames, the best frame and plate
// crop(s) as JPEG attachments, and (lanes configured for it) occupant face chips.
//
// It holds at most a few frames in memory and wipes every frame it drops.
#pragma once

#include <memory>
#include <vector>

#include "frame_source.h"
#include "portcullis/lane_event.h"
#include "portcullis/status.h"

namespace portcullis::plate {
class PlateReader;
}
namespace portcullis::face {
class FaceEngine;
}

namespace portcullis::lane {

struct PassDetectorOptions {
  std::string device;  // copied into every event
  std::string lane;
  CameraConfig camera;
  int jpeg_quality = 90;
  int best_frame_max_side = 1280;  // the best frame is downscaled to this before it is encoded
};

struct PassDetectorStats {
  std::int64_t frames = 0;         // analysed frames seen
  std::int64_t motion_frames = 0;  // frames that passed the motion gate
  std::int64_t plate_reads = 0;    // calls into the plate engine
  std::int64_t passes = 0;         // events emitted
};

class PassDetector {
 public:
  // plates is required; faces only when options.camera.faces. Neither is owned; not thread-safe.
  static Status Create(const PassDetectorOptions& options, plate::PlateReader* plates,
                       face::FaceEngine* faces, std::unique_ptr<PassDetector>* detector);
  virtual ~PassDetector() = default;
  // Analyses one frame; passes it finished are appended to *events (fields event_id, sequence
  // left empty: the agent assigns them). The frame may be wiped by the caller after return.
  virtual Status Analyse(const Frame& frame, std::vector<LaneEvent>* events) = 0;
  // End of stream: finishes every open pass.
  virtual Status Flush(std::vector<LaneEvent>* events) = 0;
  [[nodiscard]] virtual PassDetectorStats stats() const = 0;
};

}  // namespace portcullis::lane
