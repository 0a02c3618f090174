// Text-line detection with the PP-OCRv4 DB (differentiable binarisation) network.
//
// The network maps an image to a per-pixel "this is text" probability; boxes come from our own
// post-processing (threshold, contours, minimum-area rectangles, unclip), because OpenCV 4.6's
// TextDetectionModel_DB wrapper finds no boxes with this model.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "portcullis/status.h"

namespace portcullis::plate {

struct TextBox {
  // Corners in image pixels: top-left, top-right, bottom-right, bottom-left of the text line
  // (after unclip), so the line reads left to right from corners[0] to corners[1].
  std::array<cv::Point2f, 4> corners{};
  float score = 0;  // mean text probability inside the box
  [[nodiscard]] float Width() const;
  [[nodiscard]] float Height() const;
  [[nodiscard]] cv::Rect BoundingRect() const;
};

struct DetectorOptions {
  int max_side = 960;  // the longer image side is scaled to at most this (multiple of 32)
  // When > 0, the image is also scaled so that the network sees at most about this many pixels
  // (the detector's cost is proportional to them): a square frame at max_side costs 1.8 times a
  // 16:9 one. 0 = no limit beyond max_side.
  int max_pixels = 0;
  // The image may be enlarged by up to this factor to reach max_side (1 = never enlarged): the
  // reader's second look at an image in which it read nothing.
  double max_upscale = 1.0;
  float bin_threshold = 0.3f;  // probability above which a pixel is text
  float box_threshold = 0.5f;  // minimum mean probability of a box
  float unclip_ratio = 1.6f;   // DB shrinks text regions in training; this grows them back
  float min_height = 4.0f;     // boxes thinner than this (in image pixels) are dropped
  // Proposal stage: when > 0 and below max_side, the whole image is first run at this (cheaper)
  // size, and the max_side pass runs only on the regions where that coarse probability map
  // exceeds proposal_threshold (grown by a margin), not on the whole image. Every box still
  // comes from the full-resolution pass, so there is no early exit on a coarse read; the coarse
  // pass only decides where to look. 0 disables it.
  int proposal_max_side = 0;
  float proposal_threshold = 0.05f;
  // Above this fraction of the image, the regions are merged back into one whole-image pass.
  float proposal_max_area = 0.5f;
};

// The regions, in image pixels, that a proposal probability map (CV_32F, computed for the image
// scaled by scale_x, scale_y) asks the full-resolution pass to look at: each connected region
// above options.proposal_threshold, grown by a margin of one text height vertically and two
// horizontally (at least min_margin image pixels), overlapping regions merged, clamped to
// image_size. Sorted top to bottom, left to right.
std::vector<cv::Rect> ProposeRegions(const cv::Mat& probability, float scale_x, float scale_y,
                                     cv::Size image_size, int min_margin,
                                     const DetectorOptions& options);

class TextDetector {
 public:
  // Loads model_path and, when it exists, the proposal-region model beside it
  // (plate_det.onnx -> plate_det_region.onnx). With gemm_convolutions, the networks' dense
  // convolutions run as BLAS products (gemm_convolution.h): the same arithmetic, faster.
  static Status Open(const std::string& model_path, std::unique_ptr<TextDetector>* detector,
                     bool gemm_convolutions = false);

  Status Detect(const cv::Mat& bgr, const DetectorOptions& options, std::vector<TextBox>* boxes);

  // Bounds the cache of per-input-size networks (below): at most max_nets of them, holding at
  // most max_pixels input pixels together (a net's buffers grow with its input: ~85 MB per
  // 0.5 MP). The least recently used go first (or are set up again at the new size); the one in
  // use always stays, however large.
  void SetNetCacheLimits(std::size_t max_nets, std::int64_t max_pixels);
  [[nodiscard]] std::size_t CachedNets() const { return nets_.size(); }
  [[nodiscard]] std::int64_t CachedPixels() const;

  // The post-processing alone, on a probability map (CV_32F, values in [0,1]) computed for an
  // image scaled by (scale_x, scale_y); boxes come back in unscaled image coordinates.
  static std::vector<TextBox> BoxesFromProbability(const cv::Mat& probability, float scale_x,
                                                   float scale_y, const DetectorOptions& options);

 private:
  TextDetector(std::vector<uchar> model, bool gemm_convolutions)
      : model_(std::move(model)),
        gemm_convolutions_(gemm_convolutions),
        // Without our layers a net cannot be set up again at a new size (NetFor): every size
        // keeps a Net of its own, so the cache holds more of them.
        max_nets_(gemm_convolutions ? 4 : 24),
        max_pixels_(std::int64_t{gemm_convolutions ? 4 : 12} << 20) {}
  // The Net for one input size, of the whole-image model or (region) the proposal-region model.
  cv::dnn::Net* NetFor(cv::Size input_size, bool region = false);
  // Runs the network on `bgr` resized to `input` (multiples of 32); *probability is a copy of
  // the output map, input.height x input.width. With pools_out, also returns the squeeze-and-
  // excitation averages of this pass; with pools_in, runs the region model with those averages.
  Status Probability(const cv::Mat& bgr, cv::Size input, cv::Mat* probability,
                     std::vector<cv::Mat>* pools_out = nullptr,
                     const std::vector<cv::Mat>* pools_in = nullptr);
  // The whole image at `scale`; boxes in image coordinates.
  Status DetectAt(const cv::Mat& bgr, double scale, const DetectorOptions& options,
                  std::vector<TextBox>* boxes);

  struct CachedNet {
    cv::dnn::Net net;
    std::uint64_t last_use = 0;
  };
  std::vector<uchar> model_;
  bool gemm_convolutions_ = false;
  // plate_det_region.onnx beside the detector (empty: no proposal stage; Detect then always
  // runs the whole image): the detector with its SE averages as inputs.
  std::vector<uchar> region_model_;
  std::vector<std::string> pool_layers_;  // "onnx_node!se_pool_<k>" in the whole-image model
  // A Net per input size: OpenCV 4.6 sets a net up again (all its buffers) whenever its input
  // size changes. Proposal regions and mixed image sizes come in many sizes, and a second look's
  // are large, so the cache is bounded by count and by pixels (~170 MB of buffers per MP); over
  // the limits the least recently used Net is set up again at the new size (NetFor). With the
  // process's memory tuned (src/common/huge_page_allocator.h) that costs a few ms where reading
  // a new Net cost ~10, so a few Nets are enough: room for two frame sizes and a second look.
  // On the benchmark's 207 images of 44 sizes, 4 Nets and 4 MP against 24 and 12 MP: identical
  // reads, 30 s against 36 s, peak RSS 1.4 GB against 3.0 (docs/benchmarks.md, "One net set up
  // again"). Set in the constructor.
  std::size_t max_nets_;
  std::int64_t max_pixels_;
  std::map<std::tuple<int, int, bool>, CachedNet> nets_;
  std::uint64_t uses_ = 0;
};

// Reads a whole (model) file into memory; shared by the detector and the recogniser.
Status ReadModelFile(const std::string& path, std::vector<uchar>* bytes);

}  // namespace portcullis::plate
