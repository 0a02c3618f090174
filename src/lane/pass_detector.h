// From frames to vehicle passes. The PassDetector decides, per analysed frame, how much work the
// frame deserves (a cheap motion gate first; the plate engine only where something moved, only
// inside the camera's region of interest), tracks plates across frames, and when a vehicle has
// passed emits one LaneEvent: its plate read(s) voted over frames, the best frame and plate
// crop(s) as JPEG attachments, and (lanes configured for it) occupant face chips.
//
// It holds at most a few frames in memory and wipes every frame it drops. Frame striding is the
// FrameSource's job (CameraConfig::frame_stride): every frame given to Analyse is analysed.
// docs/lane-vision.md has the design and the numbers.
#pragma once

#include <memory>
#include <vector>

#include "frame_source.h"
#include "portcullis/lane_event.h"
#include "portcullis/plate_video.h"
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

  // The motion gate: the ROI is sampled down to motion_side pixels wide, greyed and blurred, and
  // compared with a running background (exponential average, background_alpha per frame). The
  // frame "moved" when more than motion_min_fraction of its pixels differ by motion_threshold
  // grey levels. Costs well under a millisecond at 1080p. The short memory (alpha 0.5: about the
  // last two frames) is deliberate: a long one keeps the imprint of a vehicle that has left, and
  // the engine would read the empty road for a second or more after every pass.
  int motion_side = 160;
  int motion_threshold = 20;
  double motion_min_fraction = 0.004;
  double background_alpha = 0.5;

  // Locking: once a plate has been read with at least lock_min_confidence in lock_after_reads
  // analysed frames with the same text, it is no longer re-read; it is followed by template
  // matching on a downscaled grey patch (~1 ms) until it leaves the ROI or the match score drops
  // below follow_min_score. While a plate is locked the plate engine runs only every
  // reread_every analysed frames (a second vehicle entering, a correction).
  int lock_after_reads = 3;
  float lock_min_confidence = 0.8f;
  int reread_every = 8;
  float follow_min_score = 0.6f;
  // Without motion the engine still runs for this many analysed frames after a plate was last
  // read (a vehicle that stopped at the barrier before its plate was confidently read).
  int read_after_plate_frames = 4;

  plate::TrackerOptions tracker;  // linking per-frame reads into one pass per vehicle
  int max_faces = 4;              // face chips attached per pass (lanes with faces only)
};

struct PassDetectorStats {
  std::int64_t frames = 0;           // analysed frames seen
  std::int64_t motion_frames = 0;    // frames that passed the motion gate
  std::int64_t plate_reads = 0;      // calls into the plate engine
  std::int64_t passes = 0;           // events emitted
  std::int64_t followed_frames = 0;  // frames where a locked plate was followed, not read
  std::int64_t face_runs = 0;        // calls into the face engine
  std::int64_t faces = 0;            // face chips attached
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
