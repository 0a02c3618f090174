#include "plate/text_detector.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

#include <opencv2/imgproc.hpp>

namespace portcullis::plate {

float TextBox::Width() const {
  return static_cast<float>(
      (cv::norm(corners[1] - corners[0]) + cv::norm(corners[2] - corners[3])) / 2.0);
}

float TextBox::Height() const {
  return static_cast<float>(
      (cv::norm(corners[3] - corners[0]) + cv::norm(corners[2] - corners[1])) / 2.0);
}

cv::Rect TextBox::BoundingRect() const {
  std::vector<cv::Point2f> pts(corners.begin(), corners.end());
  return cv::boundingRect(pts);
}

Status ReadModelFile(const std::string& path, std::vector<uchar>* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("model file missing: " + path + " (run scripts/install.sh)");
  bytes->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (bytes->empty()) return Status::Corruption("model file is empty: " + path);
  return Status::Ok();
}

Status TextDetector::Open(const std::string& model_path, std::unique_ptr<TextDetector>* detector) {
  std::vector<uchar> model;
  PORTCULLIS_RETURN_IF_ERROR(ReadModelFile(model_path, &model));
  std::unique_ptr<TextDetector> result(new TextDetector(std::move(model)));
  // Load once now so a corrupt file fails at Open, not at the first image.
  try {
    if (result->NetFor(cv::Size(640, 640)) == nullptr) {
      return Status::Corruption("cannot load text detector: " + model_path);
    }
  } catch (const cv::Exception& e) {
    return Status::Corruption("cannot load text detector " + model_path + ": " + e.what());
  }
  *detector = std::move(result);
  return Status::Ok();
}

cv::dnn::Net* TextDetector::NetFor(cv::Size input_size) {
  auto key = std::make_pair(input_size.width, input_size.height);
  auto it = nets_.find(key);
  if (it == nets_.end()) {
    cv::dnn::Net net = cv::dnn::readNetFromONNX(model_);
    if (net.empty()) return nullptr;
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    it = nets_.emplace(key, std::move(net)).first;
  }
  return &it->second;
}

namespace {

// Orders the corners as top-left, top-right, bottom-right, bottom-left (PaddleOCR's rule: the two
// leftmost points split by y into top-left/bottom-left, likewise on the right). Plates are close to
// horizontal, where this rule is exact.
std::array<cv::Point2f, 4> OrderCorners(const cv::RotatedRect& rect) {
  cv::Point2f pts[4];
  rect.points(pts);
  std::array<cv::Point2f, 4> p{pts[0], pts[1], pts[2], pts[3]};
  std::sort(p.begin(), p.end(),
            [](const cv::Point2f& a, const cv::Point2f& b) { return a.x < b.x; });
  cv::Point2f tl = p[0], bl = p[1], tr = p[2], br = p[3];
  if (bl.y < tl.y) std::swap(tl, bl);
  if (br.y < tr.y) std::swap(tr, br);
  return {tl, tr, br, bl};
}

}  // namespace

std::vector<TextBox> TextDetector::BoxesFromProbability(const cv::Mat& probability, float scale_x,
                                                        float scale_y,
                                                        const DetectorOptions& options) {
  std::vector<TextBox> boxes;
  if (probability.empty() || probability.type() != CV_32F) return boxes;
  cv::Mat binary = probability > options.bin_threshold;
  std::vector<std::vector<cv::Point>> contours;
  // Outer outlines only: a hole inside a text region (a gap in a character's stroke) is not a
  // line of its own.
  cv::findContours(binary, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
  for (const auto& contour : contours) {
    if (contour.size() < 3) continue;
    cv::RotatedRect rect = cv::minAreaRect(contour);
    if (std::min(rect.size.width, rect.size.height) < 2.0f) continue;
    // Score: mean probability inside the contour (DB's "slow" score, exact for thin lines).
    cv::Rect bounds =
        cv::boundingRect(contour) & cv::Rect(0, 0, probability.cols, probability.rows);
    if (bounds.empty()) continue;
    cv::Mat mask = cv::Mat::zeros(bounds.size(), CV_8U);
    std::vector<std::vector<cv::Point>> shifted(1);
    for (const auto& p : contour) shifted[0].push_back(p - bounds.tl());
    cv::fillPoly(mask, shifted, cv::Scalar(1));
    auto score = static_cast<float>(cv::mean(probability(bounds), mask)[0]);
    if (score < options.box_threshold) continue;
    // Unclip: DB trains on regions shrunk by distance area*(1-r^2)/perimeter; grow back by
    // area*ratio/perimeter on every side.
    double area = rect.size.area();
    double perimeter = 2.0 * (rect.size.width + rect.size.height);
    auto distance = static_cast<float>(area * options.unclip_ratio / perimeter);
    rect.size.width += 2 * distance;
    rect.size.height += 2 * distance;
    TextBox box;
    box.corners = OrderCorners(rect);
    for (auto& c : box.corners) {
      c.x = std::clamp(c.x / scale_x, 0.0f, static_cast<float>(probability.cols) / scale_x);
      c.y = std::clamp(c.y / scale_y, 0.0f, static_cast<float>(probability.rows) / scale_y);
    }
    box.score = score;
    if (box.Height() < options.min_height) continue;
    boxes.push_back(box);
  }
  std::sort(boxes.begin(), boxes.end(),
            [](const TextBox& a, const TextBox& b) { return a.score > b.score; });
  return boxes;
}

Status TextDetector::Detect(const cv::Mat& bgr, const DetectorOptions& options,
                            std::vector<TextBox>* boxes) {
  boxes->clear();
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    return Status::InvalidArgument("text detector needs a non-empty 8-bit BGR image");
  }
  // Scale the longer side to max_side (never up), both sides to multiples of 32 as the network's
  // five stride-2 stages require.
  double scale =
      std::min(1.0, static_cast<double>(options.max_side) / std::max(bgr.cols, bgr.rows));
  auto round32 = [](double v) {
    return std::max(32, static_cast<int>(std::lround(v / 32.0)) * 32);
  };
  cv::Size input(round32(bgr.cols * scale), round32(bgr.rows * scale));
  try {
    cv::Mat resized;
    cv::resize(bgr, resized, input, 0, 0, cv::INTER_AREA);
    // PaddleOCR's NormalizeImage: ImageNet mean/std applied to the channels in BGR order, as the
    // network was trained (PaddleOCR decodes with OpenCV and never swaps to RGB).
    cv::Mat blob = cv::dnn::blobFromImage(resized, 1.0, input, cv::Scalar(), /*swapRB=*/false);
    const float mean[3] = {0.485f, 0.456f, 0.406f};
    const float stdev[3] = {0.229f, 0.224f, 0.225f};
    const int plane = input.width * input.height;
    auto* data = blob.ptr<float>();
    for (int c = 0; c < 3; ++c) {
      float* p = data + static_cast<std::ptrdiff_t>(c) * plane;
      for (int i = 0; i < plane; ++i) p[i] = (p[i] / 255.0f - mean[c]) / stdev[c];
    }
    cv::dnn::Net* net = NetFor(input);
    if (net == nullptr) return Status::Internal("text detector network failed to load");
    net->setInput(blob);
    cv::Mat out = net->forward();  // [1, 1, H, W]
    if (out.dims != 4 || out.size[2] != input.height || out.size[3] != input.width) {
      return Status::Internal("text detector: unexpected output shape");
    }
    cv::Mat probability(input.height, input.width, CV_32F, out.ptr<float>());
    auto sx = static_cast<float>(input.width) / static_cast<float>(bgr.cols);
    auto sy = static_cast<float>(input.height) / static_cast<float>(bgr.rows);
    *boxes = BoxesFromProbability(probability, sx, sy, options);
  } catch (const cv::Exception& e) {
    return Status::Internal(std::string("text detector: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace portcullis::plate
