// Plates in video: one read per vehicle pass, not one per frame.
//
// A camera at 15-30 fps sees the same plate in dozens of frames. PlateTracker links per-frame reads
// into tracks (by box overlap and text similarity), and when a track has not been seen for a while
// it emits one PlatePass: the text voted over all frames (confidence-weighted) and the frame where
// that text was read most confidently.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "portcullis/env.h"
#include "portcullis/plate.h"
#include "portcullis/status.h"

namespace portcullis::plate {

struct TrackerOptions {
  int max_gap_frames = 15;      // a track unseen for more analysed frames than this is finished
  float min_iou = 0.1f;         // box overlap with the track's last box that links a read ...
  int max_edit_distance = 2;    // ... or text this close to the track's text (plate moved fast)
  int min_frames = 2;           // tracks seen in fewer frames are dropped as noise
  float min_confidence = 0.5f;  // reads below this are not linked into tracks at all
};

struct PlatePass {
  PlateRead best;               // the voted text; box/polygon/candidates from the best frame
  std::int64_t best_frame = 0;  // index of the frame whose read is reported
  double best_time_ms = 0;      // its timestamp
  std::int64_t first_frame = 0;
  std::int64_t last_frame = 0;
  int frames_seen = 0;  // frames in which the plate was read
};

class PlateTracker {
 public:
  explicit PlateTracker(TrackerOptions options = {});
  // Out of line because Track is only complete in plate_tracker.cc.
  ~PlateTracker();
  // Feeds one analysed frame's reads. Passes that finished because of this frame are appended to
  // *finished, oldest first.
  void Observe(std::int64_t frame_index, double time_ms, const std::vector<PlateRead>& reads,
               std::vector<PlatePass>* finished);
  // Ends every open track (end of stream).
  void Flush(std::vector<PlatePass>* finished);

 private:
  struct Track;
  TrackerOptions options_;
  std::vector<Track> tracks_;
  std::int64_t next_id_ = 0;
  // Callers may pass strided frame indices; gaps are measured in analysed frames, so the stride
  // is learned as the smallest positive step between consecutive Observe calls (0 = none yet).
  std::int64_t stride_ = 0;
  std::int64_t last_observed_frame_ = 0;
  bool observed_any_ = false;
};

struct VideoOptions {
  int frame_stride = 2;          // analyse every Nth frame (a 30 fps camera -> 15 analysed fps)
  std::int64_t max_frames = -1;  // stop after this many decoded frames; -1 = whole stream
  TrackerOptions tracker;
};

// Progress callback: frames decoded so far and the total if the container knows it (else -1).
using VideoProgress = std::function<void(std::int64_t done, std::int64_t total)>;

// Reads a video file or stream URL with OpenCV VideoCapture, runs reader on every frame_stride-th
// frame, tracks plates and calls on_pass for each vehicle pass as soon as it is finished.
// Errors: NotFound (no such file), Unsupported (not a file or not a video OpenCV can open at all),
// Corruption (a stream that opens but fails before yielding any frame). A stream that ends
// mid-frame ends the read: the passes seen so far are still reported, and the call returns OK.
Status ReadVideo(PlateReader* reader, const std::string& source, const VideoOptions& options,
                 const std::function<void(const PlatePass&)>& on_pass,
                 const VideoProgress& progress = nullptr);

// True when a path looks like a video we should open with VideoCapture rather than as an image
// (by content: AVI/MP4/MKV/MOV magic; or a URL scheme such as rtsp:// or http://).
bool LooksLikeVideo(Env* env, const std::string& path);

}  // namespace portcullis::plate
