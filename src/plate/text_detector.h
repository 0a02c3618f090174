// Text-line detection with the PP-OCRv4 DB (differentiable binarisation) network.
//
// The network maps an image to a per-pixel "this is text" probability; boxes come from our own
// post-processing (threshold, contours, minimum-area rectangles, unclip), because OpenCV 4.6's
// TextDetectionModel_DB wrapper finds no boxes with this model.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
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
  int max_side = 960;          // the longer image side is scaled to at most this (multiple of 32)
  float bin_threshold = 0.3f;  // probability above which a pixel is text
  float box_threshold = 0.5f;  // minimum mean probability of a box
  float unclip_ratio = 1.6f;   // DB shrinks text regions in training; this grows them back
  float min_height = 4.0f;     // boxes thinner than this (in image pixels) are dropped
};

class TextDetector {
 public:
  static Status Open(const std::string& model_path, std::unique_ptr<TextDetector>* detector);

  Status Detect(const cv::Mat& bgr, const DetectorOptions& options, std::vector<TextBox>* boxes);

  // The post-processing alone, on a probability map (CV_32F, values in [0,1]) computed for an
  // image scaled by (scale_x, scale_y); boxes come back in unscaled image coordinates.
  static std::vector<TextBox> BoxesFromProbability(const cv::Mat& probability, float scale_x,
                                                   float scale_y, const DetectorOptions& options);

 private:
  explicit TextDetector(std::vector<uchar> model) : model_(std::move(model)) {}
  cv::dnn::Net* NetFor(cv::Size input_size);

  std::vector<uchar> model_;
  // OpenCV 4.6 returns zeros when one Net is reused with a new input size, so each input size
  // gets its own Net (they share nothing but the serialized model).
  std::map<std::pair<int, int>, cv::dnn::Net> nets_;
};

// Reads a whole (model) file into memory; shared by the detector and the recogniser.
Status ReadModelFile(const std::string& path, std::vector<uchar>* bytes);

}  // namespace portcullis::plate
