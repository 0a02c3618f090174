// The licence-plate reader: vehicle image in, ranked plate reads out.
//
//   std::unique_ptr<portcullis::plate::PlateReader> reader;
//   Status s = PlateReader::Open(PlateReaderOptions{}, &reader);
//   std::vector<PlateRead> plates;
//   s = reader->Read(image_bgr, &plates);   // plates[0] is the most confident read
//
// A PlateReader is not thread-safe (its networks hold per-call buffers); use one per thread.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "portcullis/status.h"

namespace portcullis::plate {

struct Point {
  float x = 0;
  float y = 0;
};

struct Box {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
};

// One reading of a plate: the text and how sure we are of it.
struct Candidate {
  std::string text;      // upper-case letters and digits, no spaces or dashes
  float confidence = 0;  // in [0, 1]
  std::string format;    // the grammar pattern it matched ("LLLDDDD"), empty if none
};

struct PlateRead {
  std::string text;                   // best reading
  float confidence = 0;               // in [0, 1]
  std::string region;                 // "us", "eu", "br"; "" when no region's grammar matched
  std::string format;                 // the matched pattern's name, e.g. "mercosur" or "LLLDDDD"
  Box box;                            // axis-aligned plate box in image pixels
  std::array<Point, 4> polygon{};     // plate corners, clockwise from top-left
  std::vector<Candidate> candidates;  // top-N alternatives, best first (candidates[0].text == text)
};

struct PlateReaderOptions {
  std::string model_dir;   // empty: $PORTCULLIS_MODEL_DIR, else the build's configured directory
  std::string region_dir;  // empty: $PORTCULLIS_REGION_DIR, else the build's configured directory
  std::string region = "auto";  // "auto" or a region file's name ("us", "eu", "br", ...)
  int top_n = 5;                // alternatives kept per plate
  int max_plates = 4;           // plates reported per image
  int threads = 1;              // OpenCV dnn threads; 1 keeps runs reproducible and per-core
  // The text detector sees the image scaled so its longer side is at most this. Larger finds
  // smaller plates and costs quadratically more (docs/benchmarks.md has the trade-off).
  int detector_max_side = 960;
  // When > 0, the detector also sees at most about this many pixels: its cost is proportional to
  // them, and a square frame scaled to detector_max_side would cost 1.8 times a 16:9 one. The
  // default is a 4:3 frame at 960 (960 x 720): wider frames are unaffected, squarer ones cost no
  // more than it. 0 = only detector_max_side limits the size. docs/plate-speed.md has numbers.
  int detector_max_pixels = 960 * 720;
  // The detector's and recogniser's dense convolutions run as OpenBLAS matrix products instead
  // of OpenCV 4.6's kernels: the same arithmetic in another order, faster on one core (identical
  // reads on the development set; docs/plate-speed.md). Ignored, OpenCV's kernels used, when
  // the BLAS in use is not OpenBLAS (scripts/install.sh pins OpenBLAS).
  bool gemm_convolutions = true;
  // A first, cheaper detector pass at this size; the detector_max_side pass runs only when it
  // finds no confident plate. 0 (the default) disables it: on the development set a coarse pass
  // at 640 costs US accuracy (early exits on confident misreads); docs/benchmarks.md has numbers.
  int coarse_detector_max_side = 0;
  // Proposal stage: the whole image is first run through the detector at this size, and the
  // detector_max_side pass then looks only at the regions where that coarse map shows text
  // (there is no early exit: every box comes from the full-size pass). 0 disables it.
  int detector_proposal_max_side = 0;
  // Second look: when the detector_max_side pass reads no plate at all, the detector looks once
  // more with its size and pixel budget multiplied by this (enlarging a small image by up to as
  // much), for a plate too small or distant for the first pass. It costs about scale^2 detector
  // passes, on images without a read only, and gave US +3 of 103 on the development set
  // (docs/benchmarks.md). A video or lane stream, where most frames hold no plate, sets 0 (off).
  // 0 or in (1, 4].
  double second_look_scale = 2.0;
  // Lines are recognised most plate-like first. By default reading stops at the first line that
  // reads as a confident, grammatical plate (a lane camera sees one vehicle at a time), which
  // saves most of the recognition cost; exhaustive = true recognises every candidate line, for
  // scenes with several vehicles.
  bool exhaustive = false;
};

class PlateReader {
 public:
  // Loads models and grammars. Errors: NotFound (missing model or grammar), Corruption (a file
  // that does not parse), InvalidArgument (unknown region, bad option).
  static Status Open(const PlateReaderOptions& options, std::unique_ptr<PlateReader>* reader);
  virtual ~PlateReader() = default;

  // Reads the plates in one BGR 8-bit image; plates come out best first. An image with no
  // readable plate is OK with an empty result.
  virtual Status Read(const cv::Mat& bgr, std::vector<PlateRead>* plates) = 0;

  // The regions this reader knows, in the order they were loaded.
  [[nodiscard]] virtual std::vector<std::string> Regions() const = 0;
};

}  // namespace portcullis::plate
