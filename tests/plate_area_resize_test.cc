// ResizeArea against cv::resize(INTER_AREA): the same averages, summed in another order, so a
// byte may differ by one where an average lies within float rounding of a half -- and nowhere
// by more, and rarely.
#include "plate/area_resize.h"

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

namespace portcullis::plate {
namespace {

// Smooth random content: averages land everywhere between two bytes, as in photographs.
cv::Mat Image(int width, int height, std::uint64_t seed) {
  cv::Mat bgr(height, width, CV_8UC3);
  cv::RNG(seed).fill(bgr, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(bgr, bgr, cv::Size(5, 5), 1.5);
  return bgr;
}

struct Difference {
  double max = 0;
  int differing = 0;
  int total = 0;
};

Difference Compare(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  Difference d;
  cv::minMaxLoc(diff.reshape(1), nullptr, &d.max);
  d.differing = cv::countNonZero(diff.reshape(1));
  d.total = static_cast<int>(diff.total()) * diff.channels();
  return d;
}

TEST(AreaResizeTest, MatchesOpenCvWithinOneLevelAtEveryRatio) {
  // The detector's shapes (1280x720 -> 960x544, 1280x1280 -> 832x832, 4:3 frames), an integer
  // ratio (OpenCV's own path: identical), a one-pixel-wide result, odd sizes, and a ratio close
  // to 1.
  const int cases[][4] = {{1280, 720, 960, 544}, {1280, 1280, 832, 832}, {1280, 960, 960, 704},
                          {640, 480, 320, 240},  {101, 37, 1, 5},        {333, 77, 190, 31},
                          {200, 100, 199, 99},   {64, 64, 64, 64}};
  for (const auto& c : cases) {
    const cv::Mat bgr = Image(c[0], c[1], static_cast<std::uint64_t>(c[0] * 7 + c[2]));
    const cv::Size size(c[2], c[3]);
    cv::Mat expected, got;
    cv::resize(bgr, expected, size, 0, 0, cv::INTER_AREA);
    ResizeArea(bgr, size, &got);
    ASSERT_EQ(got.type(), CV_8UC3);
    ASSERT_EQ(got.size(), size);
    const Difference d = Compare(got, expected);
    EXPECT_LE(d.max, 1.0) << c[0] << "x" << c[1] << " -> " << c[2] << "x" << c[3];
    EXPECT_LE(d.differing, d.total / 100 + 1) << c[0] << "x" << c[1] << " -> " << size;
  }
}

TEST(AreaResizeTest, SameSizeIsACopy) {
  const cv::Mat bgr = Image(97, 41, 3);
  cv::Mat got;
  ResizeArea(bgr, bgr.size(), &got);
  EXPECT_EQ(Compare(got, bgr).differing, 0);
}

TEST(AreaResizeTest, EnlargingAndOtherTypesAreOpenCvs) {
  for (const auto& [source, size] : {std::pair{cv::Size(40, 30), cv::Size(80, 20)},
                                     std::pair{cv::Size(40, 30), cv::Size(20, 60)}}) {
    const cv::Mat bgr = Image(source.width, source.height, 5);
    cv::Mat expected, got;
    cv::resize(bgr, expected, size, 0, 0, cv::INTER_AREA);
    ResizeArea(bgr, size, &got);
    EXPECT_EQ(Compare(got, expected).differing, 0) << size;
  }
  cv::Mat gray(30, 40, CV_8UC1, cv::Scalar(77)), expected, got;
  cv::resize(gray, expected, cv::Size(13, 11), 0, 0, cv::INTER_AREA);
  ResizeArea(gray, cv::Size(13, 11), &got);
  ASSERT_EQ(got.type(), CV_8UC1);
  EXPECT_EQ(cv::countNonZero(got != expected), 0);
}

}  // namespace
}  // namespace portcullis::plate
