// The detector's post-processing on synthetic probability maps (no model needed): thresholds,
// unclip, scaling back to image coordinates, corner order, filtering and sorting.

#include "plate/text_detector.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace portcullis::plate {
namespace {

constexpr double kPi = 3.14159265358979323846;

cv::Mat Map(int width, int height) { return cv::Mat::zeros(height, width, CV_32F); }

void Fill(cv::Mat& map, const cv::Rect& r, float value) { map(r).setTo(cv::Scalar(value)); }

// DB's unclip distance for a minimum-area rectangle of w x h: area * ratio / perimeter.
double Unclip(double w, double h, double ratio) { return w * h * ratio / (2.0 * (w + h)); }

// A filled pixel rectangle's contour runs through the centres of its border pixels, so its
// minimum-area rectangle is (width - 1) x (height - 1). The expected box after unclip, in map
// coordinates: {left, top, right, bottom}.
std::array<double, 4> ExpectedBox(const cv::Rect& r, double ratio) {
  const double w = r.width - 1, h = r.height - 1;
  const double d = Unclip(w, h, ratio);
  return {r.x - d, r.y - d, r.x + w + d, r.y + h + d};
}

void ExpectPointNear(const cv::Point2f& got, double x, double y, double tolerance,
                     const char* what) {
  EXPECT_NEAR(got.x, x, tolerance) << what;
  EXPECT_NEAR(got.y, y, tolerance) << what;
}

// Corners ordered by an independent rule that holds for near-horizontal boxes: top-left has the
// smallest x + y, bottom-right the largest, top-right the smallest y - x, bottom-left the largest.
std::array<cv::Point2f, 4> OrderBySums(const std::array<cv::Point2f, 4>& pts) {
  auto pick = [&](auto key, bool smallest) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < pts.size(); ++i) {
      const bool better = smallest ? key(pts[i]) < key(pts[best]) : key(pts[i]) > key(pts[best]);
      if (better) best = i;
    }
    return pts[best];
  };
  auto sum = [](const cv::Point2f& p) { return p.x + p.y; };
  auto diff = [](const cv::Point2f& p) { return p.y - p.x; };
  return {pick(sum, true), pick(diff, true), pick(sum, false), pick(diff, false)};
}

// --- TextBox -----------------------------------------------------------------------------------

TEST(TextBoxTest, WidthAndHeightOfAnAxisAlignedBox) {
  TextBox box;
  box.corners = {cv::Point2f(2, 3), cv::Point2f(12, 3), cv::Point2f(12, 8), cv::Point2f(2, 8)};
  EXPECT_FLOAT_EQ(box.Width(), 10.0f);
  EXPECT_FLOAT_EQ(box.Height(), 5.0f);
  cv::Rect r = box.BoundingRect();
  EXPECT_EQ(r.x, 2);
  EXPECT_EQ(r.y, 3);
  EXPECT_GE(r.width, 10);
  EXPECT_LE(r.width, 11);
  EXPECT_GE(r.height, 5);
  EXPECT_LE(r.height, 6);
}

TEST(TextBoxTest, WidthAndHeightOfARotatedBox) {
  // Edges along (8, 6) (length 10) and (-3, 4) (length 5).
  TextBox box;
  box.corners = {cv::Point2f(0, 0), cv::Point2f(8, 6), cv::Point2f(5, 10), cv::Point2f(-3, 4)};
  EXPECT_NEAR(box.Width(), 10.0f, 1e-5f);
  EXPECT_NEAR(box.Height(), 5.0f, 1e-5f);
}

TEST(TextBoxTest, WidthAndHeightAverageOppositeEdges) {
  // A trapezoid: top 10, bottom 20; left 10, right sqrt(200).
  TextBox box;
  box.corners = {cv::Point2f(0, 0), cv::Point2f(10, 0), cv::Point2f(20, 10), cv::Point2f(0, 10)};
  EXPECT_NEAR(box.Width(), 15.0f, 1e-5f);
  EXPECT_NEAR(box.Height(), static_cast<float>((10.0 + std::sqrt(200.0)) / 2.0), 1e-5f);
  cv::Rect r = box.BoundingRect();
  EXPECT_EQ(r.x, 0);
  EXPECT_EQ(r.y, 0);
  EXPECT_GE(r.br().x, 20);
  EXPECT_GE(r.br().y, 10);
}

// --- BoxesFromProbability ----------------------------------------------------------------------

TEST(TextDetectorTest, OneRectangleGivesOneUnclippedBox) {
  cv::Mat map = Map(200, 100);
  const cv::Rect text(50, 40, 100, 20);
  Fill(map, text, 0.9f);
  DetectorOptions options;
  std::vector<TextBox> boxes = TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, options);
  ASSERT_EQ(boxes.size(), 1u);
  const TextBox& box = boxes[0];
  EXPECT_NEAR(box.score, 0.9f, 1e-5f);

  const auto [left, top, right, bottom] = ExpectedBox(text, options.unclip_ratio);
  ExpectPointNear(box.corners[0], left, top, 0.05, "top-left");
  ExpectPointNear(box.corners[1], right, top, 0.05, "top-right");
  ExpectPointNear(box.corners[2], right, bottom, 0.05, "bottom-right");
  ExpectPointNear(box.corners[3], left, bottom, 0.05, "bottom-left");

  // 99 x 19 grows by 2 * 12.75 (99 * 19 * 1.6 / 236) on each axis.
  const double d = Unclip(99, 19, 1.6);
  EXPECT_NEAR(d, 12.75, 0.01);
  EXPECT_NEAR(box.Width(), 99 + 2 * d, 0.05);
  EXPECT_NEAR(box.Height(), 19 + 2 * d, 0.05);

  const cv::Rect bounds = box.BoundingRect();
  EXPECT_EQ(bounds & text, text) << "the box must contain the text region";
  EXPECT_NEAR(bounds.x, text.x - d, 1.5);
  EXPECT_NEAR(bounds.y, text.y - d, 1.5);
  EXPECT_NEAR(bounds.br().x, text.br().x + d, 1.5);
  EXPECT_NEAR(bounds.br().y, text.br().y + d, 1.5);
}

TEST(TextDetectorTest, UnclipRatioSetsTheGrowth) {
  cv::Mat map = Map(300, 150);
  const cv::Rect text(100, 60, 80, 16);
  Fill(map, text, 0.8f);
  for (float ratio : {1.0f, 1.6f, 2.5f}) {
    DetectorOptions options;
    options.unclip_ratio = ratio;
    std::vector<TextBox> boxes = TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, options);
    ASSERT_EQ(boxes.size(), 1u) << ratio;
    const double d = Unclip(79, 15, ratio);
    EXPECT_NEAR(boxes[0].Width(), 79 + 2 * d, 0.05) << ratio;
    EXPECT_NEAR(boxes[0].Height(), 15 + 2 * d, 0.05) << ratio;
  }
}

TEST(TextDetectorTest, ScaleMapsBackToImageCoordinates) {
  cv::Mat map = Map(200, 100);
  Fill(map, cv::Rect(50, 40, 100, 20), 0.9f);
  DetectorOptions options;
  std::vector<TextBox> unscaled = TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, options);
  // The map was computed on an image shrunk to half: boxes come back at twice the size.
  std::vector<TextBox> half = TextDetector::BoxesFromProbability(map, 0.5f, 0.5f, options);
  // Different factors per axis.
  std::vector<TextBox> mixed = TextDetector::BoxesFromProbability(map, 0.5f, 0.25f, options);
  ASSERT_EQ(unscaled.size(), 1u);
  ASSERT_EQ(half.size(), 1u);
  ASSERT_EQ(mixed.size(), 1u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(half[0].corners[i].x, 2 * unscaled[0].corners[i].x, 1e-3) << i;
    EXPECT_NEAR(half[0].corners[i].y, 2 * unscaled[0].corners[i].y, 1e-3) << i;
    EXPECT_NEAR(mixed[0].corners[i].x, 2 * unscaled[0].corners[i].x, 1e-3) << i;
    EXPECT_NEAR(mixed[0].corners[i].y, 4 * unscaled[0].corners[i].y, 1e-3) << i;
  }
  EXPECT_NEAR(half[0].Width(), 2 * unscaled[0].Width(), 1e-3);
  EXPECT_NEAR(half[0].Height(), 2 * unscaled[0].Height(), 1e-3);
  EXPECT_FLOAT_EQ(half[0].score, unscaled[0].score);
  // Upscaled maps shrink back.
  std::vector<TextBox> doubled = TextDetector::BoxesFromProbability(map, 2.0f, 2.0f, options);
  ASSERT_EQ(doubled.size(), 1u);
  EXPECT_NEAR(doubled[0].corners[0].x, unscaled[0].corners[0].x / 2, 1e-3);
  EXPECT_NEAR(doubled[0].corners[2].y, unscaled[0].corners[2].y / 2, 1e-3);
}

TEST(TextDetectorTest, BoxesAreClampedToTheImage) {
  cv::Mat map = Map(100, 50);
  Fill(map, cv::Rect(0, 0, 60, 12), 0.9f);    // touches the top-left corner
  Fill(map, cv::Rect(70, 38, 30, 12), 0.9f);  // touches the bottom-right corner
  DetectorOptions options;
  for (float scale : {1.0f, 0.5f}) {
    std::vector<TextBox> boxes = TextDetector::BoxesFromProbability(map, scale, scale, options);
    ASSERT_EQ(boxes.size(), 2u);
    for (const TextBox& box : boxes) {
      for (const cv::Point2f& c : box.corners) {
        EXPECT_GE(c.x, 0.0f);
        EXPECT_GE(c.y, 0.0f);
        EXPECT_LE(c.x, 100.0f / scale);
        EXPECT_LE(c.y, 50.0f / scale);
      }
    }
  }
}

TEST(TextDetectorTest, RotatedRectangleCornersFollowTheRotation) {
  for (float angle : {10.0f, -10.0f, 4.0f}) {
    SCOPED_TRACE(angle);
    cv::Mat map = Map(300, 200);
    const cv::RotatedRect drawn(cv::Point2f(150, 100), cv::Size2f(160, 30), angle);
    cv::Point2f pts[4];
    drawn.points(pts);
    std::vector<std::vector<cv::Point>> poly(1);
    for (const cv::Point2f& p : pts) {
      poly[0].emplace_back(static_cast<int>(std::lround(p.x)), static_cast<int>(std::lround(p.y)));
    }
    cv::fillPoly(map, poly, cv::Scalar(0.9));
    DetectorOptions options;
    std::vector<TextBox> boxes = TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, options);
    ASSERT_EQ(boxes.size(), 1u);
    const TextBox& box = boxes[0];
    EXPECT_NEAR(box.score, 0.9f, 1e-5f);

    // The reading direction: top-left -> top-right follows the rotation (y grows downwards, so a
    // positive angle runs down to the right).
    const cv::Point2f top = box.corners[1] - box.corners[0];
    const cv::Point2f bottom = box.corners[2] - box.corners[3];
    EXPECT_NEAR(std::atan2(top.y, top.x) * 180.0 / kPi, angle, 1.0);
    EXPECT_NEAR(std::atan2(bottom.y, bottom.x) * 180.0 / kPi, angle, 1.0);
    // Left edge goes down: bottom-left below top-left.
    EXPECT_GT(box.corners[3].y, box.corners[0].y);
    EXPECT_GT(box.corners[2].y, box.corners[1].y);

    // Size and position: the region's own minimum-area rectangle (of its pixels, which rasterising
    // makes about a pixel larger than drawn), grown by area * ratio / perimeter on every side.
    std::vector<cv::Point> pixels;
    cv::findNonZero(map > 0.5, pixels);
    const cv::RotatedRect region = cv::minAreaRect(pixels);
    const double w = std::max(region.size.width, region.size.height);
    const double h = std::min(region.size.width, region.size.height);
    EXPECT_NEAR(w, 160, 2.0);
    EXPECT_NEAR(h, 30, 2.0);
    const double d = Unclip(w, h, options.unclip_ratio);
    EXPECT_NEAR(box.Width(), w + 2 * d, 0.5);
    EXPECT_NEAR(box.Height(), h + 2 * d, 0.5);
    const cv::RotatedRect grown(
        drawn.center, cv::Size2f(static_cast<float>(w + 2 * d), static_cast<float>(h + 2 * d)),
        angle);
    cv::Point2f g[4];
    grown.points(g);
    const std::array<cv::Point2f, 4> want = OrderBySums({g[0], g[1], g[2], g[3]});
    const char* names[] = {"top-left", "top-right", "bottom-right", "bottom-left"};
    for (std::size_t i = 0; i < 4; ++i) {
      ExpectPointNear(box.corners[i], want[i].x, want[i].y, 2.0, names[i]);
    }
    // The same order as the independent rule.
    const std::array<cv::Point2f, 4> reordered = OrderBySums(box.corners);
    for (std::size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(box.corners[i], reordered[i]) << names[i];
    }
  }
}

TEST(TextDetectorTest, AxisAlignedCornerOrder) {
  cv::Mat map = Map(200, 100);
  Fill(map, cv::Rect(30, 30, 120, 25), 0.95f);
  std::vector<TextBox> boxes = TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, {});
  ASSERT_EQ(boxes.size(), 1u);
  const auto& c = boxes[0].corners;
  EXPECT_LT(c[0].x, c[1].x);  // tl left of tr
  EXPECT_NEAR(c[0].y, c[1].y, 1e-3);
  EXPECT_LT(c[1].y, c[2].y);  // tr above br
  EXPECT_NEAR(c[1].x, c[2].x, 1e-3);
  EXPECT_GT(c[2].x, c[3].x);  // br right of bl
  EXPECT_NEAR(c[0].x, c[3].x, 1e-3);
  const std::array<cv::Point2f, 4> reordered = OrderBySums(c);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(c[i], reordered[i]) << i;
}

TEST(TextDetectorTest, ScoreIsTheMeanProbabilityInside) {
  cv::Mat map = Map(200, 100);
  Fill(map, cv::Rect(40, 30, 50, 20), 0.9f);
  Fill(map, cv::Rect(90, 30, 50, 20), 0.6f);  // same size: the mean is 0.75
  std::vector<TextBox> boxes = TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, {});
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_NEAR(boxes[0].score, 0.75f, 1e-5f);
}

TEST(TextDetectorTest, BoxThresholdDropsFaintRegions) {
  cv::Mat map = Map(300, 200);
  const cv::Rect faint(20, 20, 100, 20);
  const cv::Rect strong(20, 120, 100, 20);
  Fill(map, faint, 0.4f);  // above bin_threshold 0.3, below box_threshold 0.5
  Fill(map, strong, 0.9f);
  DetectorOptions options;
  std::vector<TextBox> boxes = TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, options);
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_NEAR(boxes[0].score, 0.9f, 1e-5f);
  EXPECT_EQ(boxes[0].BoundingRect() & strong, strong);

  options.box_threshold = 0.35f;
  boxes = TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, options);
  ASSERT_EQ(boxes.size(), 2u);
  EXPECT_NEAR(boxes[1].score, 0.4f, 1e-5f);
  EXPECT_EQ(boxes[1].BoundingRect() & faint, faint);

  // Below bin_threshold a region is not text at all, whatever box_threshold says.
  options.box_threshold = 0.0f;
  options.bin_threshold = 0.5f;
  boxes = TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, options);
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_NEAR(boxes[0].score, 0.9f, 1e-5f);
}

TEST(TextDetectorTest, ThinBoxesAreDropped) {
  cv::Mat map = Map(200, 100);
  Fill(map, cv::Rect(50, 40, 40, 3), 0.9f);  // 39 x 2 -> height 2 + 2 * 1.52 = 5.04
  DetectorOptions options;                   // min_height 4
  std::vector<TextBox> boxes = TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, options);
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_NEAR(boxes[0].Height(), 2 + 2 * Unclip(39, 2, 1.6), 0.05);
  // Computed on an image scaled up twice: 2.52 image pixels high.
  EXPECT_TRUE(TextDetector::BoxesFromProbability(map, 1.0f, 2.0f, options).empty());
  // Or a stricter minimum.
  options.min_height = 6.0f;
  EXPECT_TRUE(TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, options).empty());
  // Scaling along x only does not change the height.
  options.min_height = 4.0f;
  EXPECT_EQ(TextDetector::BoxesFromProbability(map, 2.0f, 1.0f, options).size(), 1u);
}

TEST(TextDetectorTest, SpecksAndLinesAreDropped) {
  cv::Mat map = Map(200, 100);
  Fill(map, cv::Rect(10, 10, 1, 1), 0.9f);   // one pixel
  Fill(map, cv::Rect(30, 10, 2, 2), 0.9f);   // 1 x 1 rectangle
  Fill(map, cv::Rect(50, 10, 60, 1), 0.9f);  // a one-pixel line
  Fill(map, cv::Rect(50, 30, 60, 2), 0.9f);  // a two-pixel line: 59 x 1
  Fill(map, cv::Rect(10, 60, 1, 30), 0.9f);  // a vertical line
  DetectorOptions options;
  options.min_height = 0.0f;
  EXPECT_TRUE(TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, options).empty());
}

TEST(TextDetectorTest, SeveralBoxesSortedByScore) {
  const cv::Rect upper(20, 20, 120, 24);
  const cv::Rect lower(60, 120, 100, 20);
  for (bool upper_stronger : {false, true}) {
    SCOPED_TRACE(upper_stronger);
    cv::Mat map = Map(250, 180);
    Fill(map, upper, upper_stronger ? 0.95f : 0.7f);
    Fill(map, lower, upper_stronger ? 0.7f : 0.95f);
    std::vector<TextBox> boxes = TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, {});
    ASSERT_EQ(boxes.size(), 2u);
    EXPECT_NEAR(boxes[0].score, 0.95f, 1e-5f);
    EXPECT_NEAR(boxes[1].score, 0.7f, 1e-5f);
    const cv::Rect& first = upper_stronger ? upper : lower;
    const cv::Rect& second = upper_stronger ? lower : upper;
    EXPECT_EQ(boxes[0].BoundingRect() & first, first);
    EXPECT_EQ(boxes[1].BoundingRect() & second, second);
    // Each box stays on its own line.
    EXPECT_EQ((boxes[0].BoundingRect() & second).area(), 0);
  }
}

TEST(TextDetectorTest, ManyBoxesAllFoundAndSorted) {
  cv::Mat map = Map(400, 400);
  const int n = 6;
  for (int i = 0; i < n; ++i) {
    Fill(map, cv::Rect(40 + 20 * (i % 2), 20 + 60 * i, 200, 20),
         0.55f + 0.07f * static_cast<float>((i * 4) % n));
  }
  std::vector<TextBox> boxes = TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, {});
  ASSERT_EQ(boxes.size(), static_cast<std::size_t>(n));
  for (std::size_t i = 1; i < boxes.size(); ++i) EXPECT_GE(boxes[i - 1].score, boxes[i].score);
}

TEST(TextDetectorTest, WorksOnARegionOfALargerMap) {
  cv::Mat big = Map(400, 300);
  Fill(big, cv::Rect(150, 100, 100, 20), 0.9f);
  cv::Mat view = big(cv::Rect(100, 50, 200, 100));  // not continuous
  ASSERT_FALSE(view.isContinuous());
  std::vector<TextBox> boxes = TextDetector::BoxesFromProbability(view, 1.0f, 1.0f, {});
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_NEAR(boxes[0].score, 0.9f, 1e-5f);
  const auto [left, top, right, bottom] = ExpectedBox(cv::Rect(50, 50, 100, 20), 1.6);
  ExpectPointNear(boxes[0].corners[0], left, top, 0.05, "top-left");
  ExpectPointNear(boxes[0].corners[2], right, bottom, 0.05, "bottom-right");
}

TEST(TextDetectorTest, AHoleInsideATextRegionAddsNoBox) {
  // A few low-probability pixels inside a text line (a dropout between strokes) leave one text
  // line: the hole's own border is not a second text region.
  for (int hole : {1, 2, 3, 4, 6}) {
    SCOPED_TRACE(hole);
    cv::Mat map = Map(200, 100);
    const cv::Rect text(50, 40, 100, 20);
    Fill(map, text, 0.9f);
    Fill(map, cv::Rect(90, 48, hole, hole), 0.0f);
    std::vector<TextBox> boxes = TextDetector::BoxesFromProbability(map, 1.0f, 1.0f, {});
    ASSERT_GE(boxes.size(), 1u);
    EXPECT_EQ(boxes[0].BoundingRect() & text, text);
    EXPECT_EQ(boxes.size(), 1u) << "extra box " << boxes.back().BoundingRect() << " score "
                                << boxes.back().score;
  }
}

TEST(TextDetectorTest, EmptyOrWrongMapsGiveNoBoxes) {
  DetectorOptions options;
  EXPECT_TRUE(TextDetector::BoxesFromProbability(cv::Mat(), 1.0f, 1.0f, options).empty());
  EXPECT_TRUE(TextDetector::BoxesFromProbability(Map(200, 100), 1.0f, 1.0f, options).empty());

  cv::Mat bytes = cv::Mat::zeros(100, 200, CV_8U);
  bytes(cv::Rect(50, 40, 100, 20)).setTo(cv::Scalar(255));
  EXPECT_TRUE(TextDetector::BoxesFromProbability(bytes, 1.0f, 1.0f, options).empty());

  cv::Mat doubles = cv::Mat::zeros(100, 200, CV_64F);
  doubles(cv::Rect(50, 40, 100, 20)).setTo(cv::Scalar(0.9));
  EXPECT_TRUE(TextDetector::BoxesFromProbability(doubles, 1.0f, 1.0f, options).empty());

  cv::Mat two_channel = cv::Mat::zeros(100, 200, CV_32FC2);
  two_channel(cv::Rect(50, 40, 100, 20)).setTo(cv::Scalar(0.9, 0.9));
  EXPECT_TRUE(TextDetector::BoxesFromProbability(two_channel, 1.0f, 1.0f, options).empty());
}

}  // namespace
}  // namespace portcullis::plate
