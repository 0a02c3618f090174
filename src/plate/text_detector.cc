#include "plate/text_detector.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <iterator>

#include <opencv2/imgproc.hpp>

#include "plate/area_resize.h"
#include "plate/gemm_convolution.h"
#include "plate/stage_stats.h"

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

Status TextDetector::Open(const std::string& model_path, std::unique_ptr<TextDetector>* detector,
                          bool gemm_convolutions) {
  std::vector<uchar> model;
  PORTCULLIS_RETURN_IF_ERROR(ReadModelFile(model_path, &model));
  std::unique_ptr<TextDetector> result(new TextDetector(std::move(model), gemm_convolutions));
  std::string region_path = model_path;
  if (region_path.size() > 5 && region_path.substr(region_path.size() - 5) == ".onnx") {
    region_path = region_path.substr(0, region_path.size() - 5) + "_region.onnx";
    std::ifstream probe(region_path, std::ios::binary);
    if (probe) PORTCULLIS_RETURN_IF_ERROR(ReadModelFile(region_path, &result->region_model_));
  }
  // Load once now so a corrupt file fails at Open, not at the first image.
  try {
    cv::dnn::Net* net = result->NetFor(cv::Size(640, 640));
    if (net == nullptr) return Status::Corruption("cannot load text detector: " + model_path);
    for (const auto& name : net->getLayerNames()) {
      if (name.rfind("onnx_node!se_pool_", 0) == 0) result->pool_layers_.push_back(name);
    }
    std::sort(result->pool_layers_.begin(), result->pool_layers_.end(),
              [](const std::string& a, const std::string& b) {
                return a.size() != b.size() ? a.size() < b.size() : a < b;  // se_pool_2 < _10
              });
    if (!result->region_model_.empty() &&
        (result->pool_layers_.empty() || result->NetFor(cv::Size(64, 64), true) == nullptr)) {
      return Status::Corruption("cannot load proposal-region detector: " + region_path);
    }
  } catch (const cv::Exception& e) {
    return Status::Corruption("cannot load text detector " + model_path + ": " + e.what());
  }
  *detector = std::move(result);
  return Status::Ok();
}

void TextDetector::SetNetCacheLimits(std::size_t max_nets, std::int64_t max_pixels) {
  max_nets_ = std::max<std::size_t>(1, max_nets);
  max_pixels_ = std::max<std::int64_t>(0, max_pixels);
}

std::int64_t TextDetector::CachedPixels() const {
  std::int64_t pixels = 0;
  for (const auto& [key, cached] : nets_) {
    pixels += static_cast<std::int64_t>(std::get<0>(key)) * std::get<1>(key);
  }
  return pixels;
}

cv::dnn::Net* TextDetector::NetFor(cv::Size input_size, bool region) {
  auto key = std::make_tuple(input_size.width, input_size.height, region);
  auto it = nets_.find(key);
  if (it == nets_.end()) {
    const std::int64_t pixels = static_cast<std::int64_t>(input_size.width) * input_size.height;
    // Over the limits, the least recently used nets go; the first of them that runs the same
    // model is set up again at the new size rather than a new one read from the model (OpenCV
    // reallocates its buffers when the input size changes). Only with our layers: OpenCV 4.6's
    // own transposed convolution gives wrong outputs once set up again, as ours did while it
    // folded its fused layers in a second time (src/plate/gemm_convolution.cc, unsetAttached).
    cv::dnn::Net reused;
    while (!nets_.empty() && (nets_.size() >= max_nets_ || CachedPixels() + pixels > max_pixels_)) {
      auto oldest = std::min_element(nets_.begin(), nets_.end(), [](const auto& a, const auto& b) {
        return a.second.last_use < b.second.last_use;
      });
      if (gemm_convolutions_ && reused.empty() && std::get<2>(oldest->first) == region) {
        reused = oldest->second.net;
      }
      nets_.erase(oldest);
    }
    cv::dnn::Net net = reused;
    if (net.empty()) {
      const std::vector<uchar>& model = region ? region_model_ : model_;
      net =
          gemm_convolutions_ ? ReadNetWithGemmConvolutions(model) : cv::dnn::readNetFromONNX(model);
      if (net.empty()) return nullptr;
      net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    }
    // cv::dnn::Net is a shared handle: the copy is cheap.
    it = nets_.emplace(key, CachedNet{net, 0}).first;
  }
  it->second.last_use = ++uses_;
  return &it->second.net;
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

namespace {

int Round32(double v) { return std::max(32, static_cast<int>(std::lround(v / 32.0)) * 32); }

// Grows [begin, begin + length) (image pixels, within [0, limit)) so that at `scale` it spans a
// multiple of 64 network pixels: proposal regions then come in few distinct sizes, and each size
// needs a Net of its own. Returns {start, length, network length}.
std::array<int, 3> GrowToBucket(int begin, int length, int limit, double scale) {
  const int net = std::max(64, static_cast<int>(std::ceil(length * scale / 64.0)) * 64);
  const int want = static_cast<int>(std::ceil(net / scale));
  if (want >= limit) return {0, limit, Round32(limit * scale)};
  const int start = std::clamp(begin - (want - length) / 2, 0, limit - want);
  return {start, want, net};
}

}  // namespace

std::vector<cv::Rect> ProposeRegions(const cv::Mat& probability, float scale_x, float scale_y,
                                     cv::Size image_size, int min_margin,
                                     const DetectorOptions& options) {
  std::vector<cv::Rect> regions;
  if (probability.empty() || probability.type() != CV_32F || scale_x <= 0 || scale_y <= 0) {
    return regions;
  }
  const cv::Rect image(0, 0, image_size.width, image_size.height);
  cv::Mat mask = probability > options.proposal_threshold;
  cv::Mat labels, stats, centroids;
  const int count = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8, CV_32S);
  const double margin = std::max(1, min_margin);
  for (int i = 1; i < count; ++i) {
    const double x0 = stats.at<int>(i, cv::CC_STAT_LEFT) / static_cast<double>(scale_x);
    const double y0 = stats.at<int>(i, cv::CC_STAT_TOP) / static_cast<double>(scale_y);
    const double x1 = x0 + stats.at<int>(i, cv::CC_STAT_WIDTH) / static_cast<double>(scale_x);
    const double y1 = y0 + stats.at<int>(i, cv::CC_STAT_HEIGHT) / static_cast<double>(scale_y);
    // A text line seen at coarse resolution may be cut short at its ends (the outer characters
    // too faint) and its height underestimated; grow by its height (twice along the line), at
    // least min_margin and at most four times that so one large blob does not take the image.
    const double height = y1 - y0;
    const double my = std::clamp(height, margin, 4 * margin);
    const double mx = std::clamp(2 * height, margin, 4 * margin);
    const cv::Point tl(static_cast<int>(std::floor(x0 - mx)),
                       static_cast<int>(std::floor(y0 - my)));
    const cv::Point br(static_cast<int>(std::ceil(x1 + mx)), static_cast<int>(std::ceil(y1 + my)));
    const cv::Rect region = cv::Rect(tl, br) & image;
    if (!region.empty()) regions.push_back(region);
  }
  // Overlapping regions become one: a line split across two passes would be read as two pieces.
  for (bool merged = true; merged;) {
    merged = false;
    for (std::size_t i = 0; i < regions.size() && !merged; ++i) {
      for (std::size_t j = i + 1; j < regions.size(); ++j) {
        if ((regions[i] & regions[j]).empty()) continue;
        regions[i] |= regions[j];
        regions.erase(regions.begin() + static_cast<std::ptrdiff_t>(j));
        merged = true;
        break;
      }
    }
  }
  std::sort(regions.begin(), regions.end(), [](const cv::Rect& a, const cv::Rect& b) {
    return a.y != b.y ? a.y < b.y : a.x < b.x;
  });
  return regions;
}

namespace {

// PaddleOCR's NormalizeImage, (v / 255 - mean) / std with ImageNet's mean and std applied to
// the channels in BGR order, as the network was trained (PaddleOCR decodes with OpenCV and never
// swaps to RGB), written as three planes. A byte has 256 values, so the formula is evaluated once
// per value into a table: the same floats as evaluating it per pixel, where that and
// cv::dnn::blobFromImage's float copy took 14 ms of the detector at 832x832.
void NormalizeToPlanes(const cv::Mat& bgr, float* planes) {
  static const auto kTable = [] {
    const float mean[3] = {0.485f, 0.456f, 0.406f};
    const float stdev[3] = {0.229f, 0.224f, 0.225f};
    std::array<std::array<float, 256>, 3> table{};
    for (std::size_t c = 0; c < 3; ++c) {
      for (std::size_t v = 0; v < 256; ++v) {
        table[c][v] = (static_cast<float>(v) / 255.0f - mean[c]) / stdev[c];
      }
    }
    return table;
  }();
  const std::size_t plane = static_cast<std::size_t>(bgr.rows) * bgr.cols;
  float* b = planes;
  float* g = planes + plane;
  float* r = planes + 2 * plane;
  for (int y = 0; y < bgr.rows; ++y) {
    const uchar* px = bgr.ptr<uchar>(y);
    for (int x = 0; x < bgr.cols; ++x, px += 3) {
      *b++ = kTable[0][px[0]];
      *g++ = kTable[1][px[1]];
      *r++ = kTable[2][px[2]];
    }
  }
}

}  // namespace

Status TextDetector::Probability(const cv::Mat& bgr, cv::Size input, cv::Mat* probability,
                                 std::vector<cv::Mat>* pools_out,
                                 const std::vector<cv::Mat>* pools_in) {
  StageStats& stats = ThreadStageStats();
  ++stats.detector_runs;
  stats.detector_input_width = input.width;
  stats.detector_input_height = input.height;
  const ScopedCpuTimer timer(&stats.detector_cpu_ms);
  if (bgr.type() != CV_8UC3) return Status::InvalidArgument("text detector needs 8-bit BGR");
  cv::Mat resized;
  ResizeArea(bgr, input, &resized);
  cv::Mat blob(std::vector<int>{1, 3, input.height, input.width}, CV_32F);
  NormalizeToPlanes(resized, blob.ptr<float>());
  cv::dnn::Net* net = NetFor(input, pools_in != nullptr);
  if (net == nullptr) return Status::Internal("text detector network failed to load");
  net->setInput(blob, pools_in != nullptr ? "x" : "");
  if (pools_in != nullptr) {
    if (pools_in->size() != pool_layers_.size()) return Status::Internal("SE averages missing");
    for (std::size_t k = 0; k < pools_in->size(); ++k) {
      net->setInput((*pools_in)[k], "se_pool_" + std::to_string(k));
    }
  }
  cv::Mat out;
  if (pools_out != nullptr) {
    std::vector<cv::String> names = net->getUnconnectedOutLayersNames();
    names.resize(1);
    names.insert(names.end(), pool_layers_.begin(), pool_layers_.end());
    std::vector<cv::Mat> outs;
    net->forward(outs, names);
    out = outs[0];
    pools_out->clear();
    for (std::size_t k = 1; k < outs.size(); ++k) pools_out->push_back(outs[k].clone());
  } else {
    out = net->forward();  // [1, 1, H, W]
  }
  if (out.dims != 4 || out.size[2] != input.height || out.size[3] != input.width) {
    return Status::Internal("text detector: unexpected output shape");
  }
  // A copy: the Net reuses its output buffer at the next forward.
  cv::Mat(input.height, input.width, CV_32F, out.ptr<float>()).copyTo(*probability);
  return Status::Ok();
}

Status TextDetector::DetectAt(const cv::Mat& bgr, double scale, const DetectorOptions& options,
                              std::vector<TextBox>* boxes) {
  const cv::Size input(Round32(bgr.cols * scale), Round32(bgr.rows * scale));
  cv::Mat probability;
  PORTCULLIS_RETURN_IF_ERROR(Probability(bgr, input, &probability));
  auto sx = static_cast<float>(input.width) / static_cast<float>(bgr.cols);
  auto sy = static_cast<float>(input.height) / static_cast<float>(bgr.rows);
  *boxes = BoxesFromProbability(probability, sx, sy, options);
  return Status::Ok();
}

Status TextDetector::Detect(const cv::Mat& bgr, const DetectorOptions& options,
                            std::vector<TextBox>* boxes) {
  boxes->clear();
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    return Status::InvalidArgument("text detector needs a non-empty 8-bit BGR image");
  }
  if (options.max_side < 32 || options.proposal_max_side < 0 || options.max_pixels < 0 ||
      !(options.max_upscale >= 1.0 && options.max_upscale <= 8.0)) {
    return Status::InvalidArgument(
        "text detector: max_side must be >= 32, proposal_max_side and max_pixels >= 0, "
        "max_upscale in [1, 8]");
  }
  // Scale the longer side to max_side and the area to max_pixels (up by at most max_upscale),
  // both sides to multiples of 32 as the network's five stride-2 stages require.
  const int longer = std::max(bgr.cols, bgr.rows);
  double scale = std::min(options.max_upscale, static_cast<double>(options.max_side) / longer);
  if (options.max_pixels > 0) {
    const double area = static_cast<double>(bgr.cols) * bgr.rows;
    scale = std::min(scale, std::sqrt(static_cast<double>(options.max_pixels) / area));
  }
  const double proposal_scale =
      std::min(1.0, static_cast<double>(options.proposal_max_side) / longer);
  try {
    // A proposal pass pays only when it is clearly cheaper than the full pass.
    if (options.proposal_max_side == 0 || proposal_scale > 0.8 * scale || region_model_.empty()) {
      return DetectAt(bgr, scale, options, boxes);
    }
    const cv::Size coarse_input(Round32(bgr.cols * proposal_scale),
                                Round32(bgr.rows * proposal_scale));
    cv::Mat coarse;
    std::vector<cv::Mat> pools;
    PORTCULLIS_RETURN_IF_ERROR(Probability(bgr, coarse_input, &coarse, &pools));
    const auto min_margin = static_cast<int>(std::ceil(32 / scale));
    const std::vector<cv::Rect> regions = ProposeRegions(
        coarse, static_cast<float>(coarse_input.width) / static_cast<float>(bgr.cols),
        static_cast<float>(coarse_input.height) / static_cast<float>(bgr.rows), bgr.size(),
        min_margin, options);
    double area = 0;
    for (const auto& r : regions) area += r.area();
    if (area > static_cast<double>(options.proposal_max_area) * bgr.cols * bgr.rows) {
      return DetectAt(bgr, scale, options, boxes);
    }
    for (const auto& region : regions) {
      const auto [x, width, net_width] = GrowToBucket(region.x, region.width, bgr.cols, scale);
      const auto [y, height, net_height] = GrowToBucket(region.y, region.height, bgr.rows, scale);
      const cv::Rect grown(x, y, width, height);
      cv::Mat probability;
      PORTCULLIS_RETURN_IF_ERROR(
          Probability(bgr(grown), cv::Size(net_width, net_height), &probability, nullptr, &pools));
      std::vector<TextBox> found = BoxesFromProbability(
          probability, static_cast<float>(net_width) / static_cast<float>(width),
          static_cast<float>(net_height) / static_cast<float>(height), options);
      for (auto& box : found) {
        for (auto& c : box.corners) c += cv::Point2f(static_cast<float>(x), static_cast<float>(y));
        // Grown regions may overlap; a line belongs to the (disjoint) region around its centre.
        const cv::Point2f centre = (box.corners[0] + box.corners[2]) * 0.5f;
        if (region.contains(cv::Point(static_cast<int>(centre.x), static_cast<int>(centre.y)))) {
          boxes->push_back(box);
        }
      }
    }
    std::sort(boxes->begin(), boxes->end(),
              [](const TextBox& a, const TextBox& b) { return a.score > b.score; });
  } catch (const cv::Exception& e) {
    boxes->clear();
    return Status::Internal(std::string("text detector: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace portcullis::plate
