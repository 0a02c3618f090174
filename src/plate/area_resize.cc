#include "plate/area_resize.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/imgproc.hpp>

namespace portcullis::plate {
namespace {

// The source pixels (first, first + 1, ...) under one output pixel, and their weights: each the
// length of its overlap with the output pixel's footprint over the footprint's length.
struct Footprint {
  int first = 0;
  std::vector<float> weights;
};

// INTER_AREA's footprints along one axis of `source` pixels shrunk to `target` (<= source):
// output d covers [d * scale, (d + 1) * scale), scale = source / target; overlaps under 1e-3
// of a pixel are dropped, as OpenCV does.
std::vector<Footprint> Footprints(int source, int target) {
  const double scale = 1.0 / (static_cast<double>(target) / source);  // as OpenCV computes it
  std::vector<Footprint> out(static_cast<std::size_t>(target));
  for (int d = 0; d < target; ++d) {
    const double begin = d * scale, end = begin + scale;
    const double cell = std::min(scale, source - begin);
    const int whole_begin = static_cast<int>(std::ceil(begin));
    const int whole_end = std::min(source, static_cast<int>(std::floor(end)));
    Footprint& f = out[static_cast<std::size_t>(d)];
    f.first = whole_begin;
    if (whole_begin - begin > 1e-3) {
      f.first = whole_begin - 1;
      f.weights.push_back(static_cast<float>((whole_begin - begin) / cell));
    }
    for (int s = whole_begin; s < whole_end; ++s)
      f.weights.push_back(static_cast<float>(1.0 / cell));
    if (whole_end < source && end - whole_end > 1e-3) {
      f.weights.push_back(
          static_cast<float>(std::min(std::min(end - whole_end, 1.0), cell) / cell));
    }
  }
  return out;
}

}  // namespace

void ResizeArea(const cv::Mat& bgr, cv::Size size, cv::Mat* dst) {
  if (bgr.type() != CV_8UC3 || bgr.empty() || size.width <= 0 || size.height <= 0 ||
      size.width > bgr.cols || size.height > bgr.rows ||
      (bgr.cols % size.width == 0 && bgr.rows % size.height == 0)) {
    cv::resize(bgr, *dst, size, 0, 0, cv::INTER_AREA);
    return;
  }
  const std::vector<Footprint> rows = Footprints(bgr.rows, size.height);
  const std::vector<Footprint> columns = Footprints(bgr.cols, size.width);
  dst->create(size, CV_8UC3);
  const int values = bgr.cols * 3;  // per source row
  std::vector<float> row(static_cast<std::size_t>(values));
  for (int y = 0; y < size.height; ++y) {
    // Vertical: the source rows under output row y, weighted, into one float row.
    const Footprint& fy = rows[static_cast<std::size_t>(y)];
    {
      const uchar* s = bgr.ptr<uchar>(fy.first);
      const float w = fy.weights[0];
      for (int i = 0; i < values; ++i) row[static_cast<std::size_t>(i)] = w * s[i];
    }
    for (std::size_t k = 1; k < fy.weights.size(); ++k) {
      const uchar* s = bgr.ptr<uchar>(fy.first + static_cast<int>(k));
      const float w = fy.weights[k];
      for (int i = 0; i < values; ++i) row[static_cast<std::size_t>(i)] += w * s[i];
    }
    // Horizontal: each output pixel's source columns, weighted, rounded as saturate_cast does.
    uchar* out = dst->ptr<uchar>(y);
    for (int x = 0; x < size.width; ++x) {
      const Footprint& fx = columns[static_cast<std::size_t>(x)];
      const float* p = row.data() + static_cast<std::ptrdiff_t>(fx.first) * 3;
      float b = 0.0f, g = 0.0f, r = 0.0f;
      for (std::size_t k = 0; k < fx.weights.size(); ++k, p += 3) {
        b += fx.weights[k] * p[0];
        g += fx.weights[k] * p[1];
        r += fx.weights[k] * p[2];
      }
      uchar* pixel = out + static_cast<std::ptrdiff_t>(x) * 3;
      pixel[0] = cv::saturate_cast<uchar>(b);
      pixel[1] = cv::saturate_cast<uchar>(g);
      pixel[2] = cv::saturate_cast<uchar>(r);
    }
  }
}

}  // namespace portcullis::plate
