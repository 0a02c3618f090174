// Short video clips posted by a lane device: held in a private temporary file only while they
// are decoded, read with the plate video API (one read per vehicle pass), and the crop of each
// pass's best frame cut out on the way, since the frames themselves are never kept.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "portcullis/env.h"
#include "portcullis/plate.h"
#include "portcullis/plate_video.h"
#include "portcullis/status.h"

namespace portcullis::server {

// A file created with mode 0600 under a given directory (never the working directory) and
// removed when the object dies, whichever way the request ends.
class ScratchFile {
 public:
  // Creates <dir>/portcullis-clip-XXXXXX (mkstemp: a fresh, unguessable name, O_EXCL, 0600) and
  // writes bytes to it. IOError when the directory is missing or the disk is full (the partial
  // file is removed).
  static Status Create(const std::string& dir, std::string_view bytes,
                       std::unique_ptr<ScratchFile>* file);
  ~ScratchFile();
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  explicit ScratchFile(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

struct ClipLimits {
  int frame_stride = 2;           // analyse every Nth frame
  std::int64_t max_frames = 900;  // frames decoded at most (30 s at 30 fps); the rest is ignored
  int max_side = 3840;            // frame width/height (4K UHD)
  std::int64_t max_pixels = 3840LL * 2160;
  plate::TrackerOptions tracker;  // how frames' reads are linked into passes
};

// One vehicle pass and the JPEG crop of its plate in the pass's best frame ("" when the crop
// could not be cut, e.g. a box outside the frame).
struct ClipPass {
  plate::PlatePass pass;
  std::string crop_jpeg;
};

// Reads a clip file. Only containers we know (AVI, MP4/MOV, Matroska/WebM, MPEG-TS, by content)
// are handed to the decoder: playlists and other formats that can name further files or URLs
// never reach it. Errors: Unsupported (not such a container, or the decoder cannot open it),
// ResourceExhausted (frames over the limits), Corruption (no decodable frame), Internal (the
// reader failed on every frame).
Status ReadClip(Env* env, plate::PlateReader* reader, const std::string& path,
                const ClipLimits& limits, std::vector<ClipPass>* passes);

// The plate's region of a frame, with a margin, as JPEG (quality 90). Empty when the box does not
// overlap the frame. Never throws.
std::string EncodeCrop(const cv::Mat& bgr, const plate::Box& box);

}  // namespace portcullis::server
