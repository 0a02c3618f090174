#include "plate/text_recognizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>

#include <opencv2/imgproc.hpp>

#include "plate/gemm_convolution.h"
#include "plate/stage_stats.h"
#include "plate/text_detector.h"  // ReadModelFile

namespace portcullis::plate {

Status TextRecognizer::Open(const std::string& model_dir,
                            std::unique_ptr<TextRecognizer>* recognizer, bool gemm_convolutions) {
  std::unique_ptr<TextRecognizer> r(new TextRecognizer());
  for (int width : {160, 320}) {
    std::string path = model_dir + "/plate_rec_w" + std::to_string(width) + ".onnx";
    std::vector<uchar> bytes;
    PORTCULLIS_RETURN_IF_ERROR(ReadModelFile(path, &bytes));
    try {
      cv::dnn::Net net =
          gemm_convolutions ? ReadNetWithGemmConvolutions(bytes) : cv::dnn::readNetFromONNX(bytes);
      if (net.empty()) return Status::Corruption("cannot load recogniser: " + path);
      net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
      r->nets_.emplace(width, std::move(net));
    } catch (const cv::Exception& e) {
      return Status::Corruption("cannot load recogniser " + path + ": " + e.what());
    }
  }
  // rec_keys.txt: line i is network class i + 1 (class 0 is the CTC blank).
  std::string keys_path = model_dir + "/rec_keys.txt";
  std::ifstream keys(keys_path);
  if (!keys) return Status::NotFound("recogniser dictionary missing: " + keys_path);
  r->fold_.push_back(0);
  std::string line;
  while (std::getline(keys, line)) {
    int column = 0;
    if (line.size() == 1 &&
        (line[0] == '-' || line[0] == '/' || line[0] == ':' || line[0] == '.')) {
      r->separator_classes_.push_back(static_cast<int>(r->fold_.size()));
    }
    if (line.size() == 1) {
      auto c = static_cast<char>(std::toupper(static_cast<unsigned char>(line[0])));
      auto pos = kPlateAlphabet.find(c);
      if (pos != std::string_view::npos) column = static_cast<int>(pos) + 1;
    }
    r->fold_.push_back(column);
  }
  if (r->fold_.size() < 100) return Status::Corruption("recogniser dictionary too short");
  *recognizer = std::move(r);
  return Status::Ok();
}

cv::Mat TextRecognizer::RectifyLine(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& corners) {
  const double width = (cv::norm(corners[1] - corners[0]) + cv::norm(corners[2] - corners[3])) / 2;
  const double height = (cv::norm(corners[3] - corners[0]) + cv::norm(corners[2] - corners[1])) / 2;
  if (width < 1 || height < 1) return {};
  // Upscaling (small plates) warps straight to the recogniser's height; downscaling warps at
  // native resolution first and then shrinks with INTER_AREA, which does not alias.
  const double scale = std::min(1.0, kHeight / height);
  const int warp_h = static_cast<int>(std::lround(kHeight / scale));
  const int warp_w = std::clamp(static_cast<int>(std::lround(width * warp_h / height)), 8, 4096);
  const cv::Point2f dst[4] = {{0, 0},
                              {static_cast<float>(warp_w), 0},
                              {static_cast<float>(warp_w), static_cast<float>(warp_h)},
                              {0, static_cast<float>(warp_h)}};
  const cv::Point2f src[4] = {corners[0], corners[1], corners[2], corners[3]};
  cv::Mat transform = cv::getPerspectiveTransform(src, dst);
  cv::Mat line;
  cv::warpPerspective(bgr, line, transform, cv::Size(warp_w, warp_h), cv::INTER_LINEAR,
                      cv::BORDER_REPLICATE);
  if (warp_h != kHeight) {
    const int out_w = std::max(8, static_cast<int>(std::lround(warp_w * scale)));
    cv::resize(line, line, cv::Size(out_w, kHeight), 0, 0, cv::INTER_AREA);
  }
  return line;
}

cv::Mat TextRecognizer::Fold(const cv::Mat& raw) const {
  const int steps = raw.rows;
  const int columns = static_cast<int>(kPlateAlphabet.size()) + 1;
  cv::Mat folded = cv::Mat::zeros(steps, columns, CV_32F);
  const int classes = std::min(raw.cols, static_cast<int>(fold_.size()));
  for (int t = 0; t < steps; ++t) {
    const auto* in = raw.ptr<float>(t);
    auto* out = folded.ptr<float>(t);
    for (int c = 0; c < classes; ++c) out[fold_[static_cast<std::size_t>(c)]] += in[c];
    for (int c = classes; c < raw.cols; ++c) out[0] += in[c];  // the trailing space class
  }
  return folded;
}

cv::Mat TextRecognizer::SeparatorMass(const cv::Mat& raw) const {
  cv::Mat mass = cv::Mat::zeros(raw.rows, 1, CV_32F);
  for (int t = 0; t < raw.rows; ++t) {
    const auto* in = raw.ptr<float>(t);
    float sum = 0;
    for (int c : separator_classes_) {
      if (c < raw.cols) sum += in[c];
    }
    mass.at<float>(t) = sum;
  }
  return mass;
}

Status TextRecognizer::Recognize(const cv::Mat& line_bgr, cv::Mat* probs, cv::Mat* separators) {
  if (line_bgr.empty() || line_bgr.type() != CV_8UC3 || line_bgr.rows != kHeight) {
    return Status::InvalidArgument("recogniser needs a 48-pixel-high 8-bit BGR line");
  }
  // The narrowest network that holds the line; wider lines are squeezed into the widest.
  auto it = nets_.lower_bound(line_bgr.cols);
  if (it == nets_.end()) it = std::prev(nets_.end());
  const int width = it->first;
  StageStats& stats = ThreadStageStats();
  ++stats.recognizer_runs;
  ++stats.recognizer_widths[width];
  const ScopedCpuTimer timer(&stats.recognizer_cpu_ms);
  cv::Mat line = line_bgr;
  if (line.cols > width) cv::resize(line_bgr, line, cv::Size(width, kHeight), 0, 0, cv::INTER_AREA);
  // PaddleOCR's normalisation: (x / 255 - 0.5) / 0.5 in BGR order, zero padding on the right.
  cv::Mat blob(std::vector<int>{1, 3, kHeight, width}, CV_32F, cv::Scalar(0));
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < kHeight; ++y) {
      const auto* src = line.ptr<cv::Vec3b>(y);
      auto* dst = blob.ptr<float>(0, c, y);
      for (int x = 0; x < line.cols; ++x) dst[x] = static_cast<float>(src[x][c]) / 127.5f - 1.0f;
    }
  }
  try {
    cv::dnn::Net& net = it->second;
    net.setInput(blob);
    cv::Mat out = net.forward();  // [1, T, classes]
    if (out.dims != 3 || out.size[0] != 1) return Status::Internal("recogniser: unexpected output");
    cv::Mat raw(out.size[1], out.size[2], CV_32F, out.ptr<float>());
    *probs = Fold(raw);
    if (separators != nullptr) *separators = SeparatorMass(raw);
  } catch (const cv::Exception& e) {
    return Status::Internal(std::string("recogniser: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace portcullis::plate
