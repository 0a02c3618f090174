// Text-line recognition with the PP-OCRv4 SVTR recogniser, reduced to the plate alphabet.
//
// The network reads a 48-pixel-high line and emits, per time step (8 input pixels), a softmax
// over 6,625 classes (CTC blank, a Chinese/Latin dictionary, space). Plates only hold A-Z and
// 0-9, so the output is folded into 1 + 36 columns: lower-case letters count for their upper-case
// form, and every other class (punctuation, dashes, CJK) counts as blank — a separator emits
// nothing.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "portcullis/status.h"

namespace portcullis::plate {

inline constexpr std::string_view kPlateAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

class TextRecognizer {
 public:
  static constexpr int kHeight = 48;

  // Loads model_dir/plate_rec_w{160,320}.onnx and model_dir/rec_keys.txt. With
  // gemm_convolutions, the networks' dense convolutions run as BLAS products
  // (gemm_convolution.h).
  static Status Open(const std::string& model_dir, std::unique_ptr<TextRecognizer>* recognizer,
                     bool gemm_convolutions = false);

  // Cuts the quadrilateral `corners` (tl, tr, br, bl) out of `bgr`, rectified to a
  // kHeight-pixel-high line.
  static cv::Mat RectifyLine(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& corners);

  // Recognises a rectified line; *probs gets T x (1 + kPlateAlphabet.size()) probabilities.
  // When `separators` is given it gets T x 1: the part of each step's blank column that the
  // network gave to a date/time separator ("-", "/", ":", "."), so that callers can tell a
  // timestamp burned into a frame ("2014-06-12") from a plate, whose reading folds it away.
  Status Recognize(const cv::Mat& line_bgr, cv::Mat* probs, cv::Mat* separators = nullptr);

 private:
  TextRecognizer() = default;
  // Folds the network's [T, classes] output into the plate alphabet.
  [[nodiscard]] cv::Mat Fold(const cv::Mat& raw) const;
  // Per step, the summed probability of the separator classes (T x 1).
  [[nodiscard]] cv::Mat SeparatorMass(const cv::Mat& raw) const;

  std::map<int, cv::dnn::Net> nets_;    // by input width; the narrowest that fits is used
  std::vector<int> fold_;               // network class -> plate column (0 = blank)
  std::vector<int> separator_classes_;  // network classes of "-", "/", ":", "."
};

}  // namespace portcullis::plate
