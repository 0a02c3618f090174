// The detector's proposal stage on synthetic coarse probability maps (no model needed): which
// image regions the full-resolution pass is sent to.

#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "plate/text_detector.h"

namespace portcullis::plate {
namespace {

cv::Mat Map(int width, int height) { return cv::Mat::zeros(height, width, CV_32F); }

bool Contains(const cv::Rect& outer, const cv::Rect& inner) { return (outer & inner) == inner; }

TEST(ProposeRegionsTest, NothingAboveTheThresholdProposesNothing) {
  DetectorOptions options;
  options.proposal_threshold = 0.1f;
  cv::Mat map = Map(160, 90);
  map(cv::Rect(40, 40, 20, 4)).setTo(cv::Scalar(0.09));
  EXPECT_TRUE(ProposeRegions(map, 0.125f, 0.125f, {1280, 720}, 32, options).empty());
  EXPECT_TRUE(ProposeRegions(cv::Mat(), 0.125f, 0.125f, {1280, 720}, 32, options).empty());
  cv::Mat bytes = cv::Mat::zeros(90, 160, CV_8U);
  bytes(cv::Rect(40, 40, 20, 4)).setTo(cv::Scalar(255));
  EXPECT_TRUE(ProposeRegions(bytes, 0.125f, 0.125f, {1280, 720}, 32, options).empty());
}

TEST(ProposeRegionsTest, AWeakLineBecomesItsImageRegionPlusMargins) {
  // A response far below the box threshold (a small plate seen at coarse resolution) is enough.
  DetectorOptions options;
  cv::Mat map = Map(160, 90);  // the 1280x720 image at 1/8
  map(cv::Rect(40, 40, 20, 4)).setTo(cv::Scalar(0.15));
  std::vector<cv::Rect> regions = ProposeRegions(map, 0.125f, 0.125f, {1280, 720}, 32, options);
  ASSERT_EQ(regions.size(), 1u);
  // The line in image pixels: x 320..480, y 320..352 (32 high): margins of 32 up and down, 64
  // left and right.
  EXPECT_EQ(regions[0], cv::Rect(cv::Point(256, 288), cv::Point(544, 384)));
}

TEST(ProposeRegionsTest, MinimumMarginAppliesToThinLinesAndTallBlobsAreCapped) {
  DetectorOptions options;
  cv::Mat map = Map(100, 100);
  map(cv::Rect(10, 10, 10, 1)).setTo(cv::Scalar(0.9));   // 1 px high: the minimum margin, 5
  map(cv::Rect(50, 40, 10, 40)).setTo(cv::Scalar(0.9));  // 40 px high: capped at 4 * 5
  std::vector<cv::Rect> regions = ProposeRegions(map, 1.0f, 1.0f, {100, 100}, 5, options);
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0], cv::Rect(cv::Point(5, 5), cv::Point(25, 16)));
  EXPECT_EQ(regions[1], cv::Rect(cv::Point(30, 20), cv::Point(80, 100)));  // clamped at 100
}

TEST(ProposeRegionsTest, OverlappingRegionsMergeAndDistantOnesStayApartSorted) {
  DetectorOptions options;
  cv::Mat map = Map(200, 100);
  map(cv::Rect(150, 80, 20, 4)).setTo(cv::Scalar(0.5));  // bottom right, alone
  map(cv::Rect(10, 10, 20, 4)).setTo(cv::Scalar(0.5));   // two pieces of one line: 6 px apart,
  map(cv::Rect(36, 10, 20, 4)).setTo(cv::Scalar(0.5));   // so their margins overlap
  std::vector<cv::Rect> regions = ProposeRegions(map, 1.0f, 1.0f, {200, 100}, 4, options);
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_TRUE(Contains(regions[0], cv::Rect(10, 10, 46, 4))) << regions[0];
  EXPECT_TRUE(Contains(regions[1], cv::Rect(150, 80, 20, 4))) << regions[1];
  EXPECT_TRUE((regions[0] & regions[1]).empty());
}

TEST(ProposeRegionsTest, ChainsOfOverlapsMergeTransitively) {
  // a overlaps b, b overlaps c, a does not overlap c: one region.
  DetectorOptions options;
  cv::Mat map = Map(300, 50);
  for (int x : {10, 30, 50}) map(cv::Rect(x, 20, 10, 2)).setTo(cv::Scalar(0.5));
  std::vector<cv::Rect> regions = ProposeRegions(map, 1.0f, 1.0f, {300, 50}, 6, options);
  ASSERT_EQ(regions.size(), 1u);
  EXPECT_TRUE(Contains(regions[0], cv::Rect(10, 20, 50, 2))) << regions[0];
}

TEST(ProposeRegionsTest, RegionsAreClampedToTheImage) {
  DetectorOptions options;
  cv::Mat map = Map(64, 36);
  map(cv::Rect(0, 0, 8, 2)).setTo(cv::Scalar(0.9));
  map(cv::Rect(60, 34, 4, 2)).setTo(cv::Scalar(0.9));
  for (const cv::Rect& r : ProposeRegions(map, 0.05f, 0.05f, {1280, 720}, 64, options)) {
    EXPECT_TRUE(Contains(cv::Rect(0, 0, 1280, 720), r)) << r;
    EXPECT_FALSE(r.empty());
  }
}

}  // namespace
}  // namespace portcullis::plate
