#include <cmath>
#include <string>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "portcullis/plate_synth.h"

namespace portcullis::plate {
namespace {

bool BoxInside(const Box& b, const cv::Mat& img) {
  return b.x >= 0 && b.y >= 0 && b.width > 0 && b.height > 0 && b.x + b.width <= img.cols &&
         b.y + b.height <= img.rows;
}

TEST(SynthTest, SameSpecGivesIdenticalImage) {
  SynthSpec spec;
  spec.seed = 42;
  spec.tilt_degrees = 4;
  spec.yaw = 0.1f;
  spec.blur_sigma = 1.0f;
  spec.noise_sigma = 6.0f;
  SynthTruth a_truth;
  SynthTruth b_truth;
  const cv::Mat a = RenderVehicleScene(spec, &a_truth);
  const cv::Mat b = RenderVehicleScene(spec, &b_truth);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0.0);
  EXPECT_EQ(a_truth.box.x, b_truth.box.x);
  EXPECT_EQ(a_truth.box.y, b_truth.box.y);
  EXPECT_EQ(a_truth.box.width, b_truth.box.width);
  EXPECT_EQ(a_truth.box.height, b_truth.box.height);
}

TEST(SynthTest, DifferentSeedsDiffer) {
  SynthSpec spec;
  spec.seed = 1;
  const cv::Mat a = RenderVehicleScene(spec, nullptr);
  spec.seed = 2;
  const cv::Mat b = RenderVehicleScene(spec, nullptr);
  EXPECT_GT(cv::norm(a, b, cv::NORM_L1), 0.0);
}

TEST(SynthTest, OutputIsRequestedSizeAndType) {
  SynthSpec spec;
  spec.image_width = 640;
  spec.image_height = 360;
  const cv::Mat img = RenderVehicleScene(spec, nullptr);
  EXPECT_EQ(img.cols, 640);
  EXPECT_EQ(img.rows, 360);
  EXPECT_EQ(img.type(), CV_8UC3);
}

struct StyleCase {
  const char* style;
  double aspect;
};

class SynthStyleTest : public ::testing::TestWithParam<StyleCase> {};

TEST_P(SynthStyleTest, TruthBoxMatchesStyleAndIsVisible) {
  const StyleCase& c = GetParam();
  for (std::uint32_t seed = 1; seed <= 5; ++seed) {
    SCOPED_TRACE(testing::Message() << c.style << " seed " << seed);
    SynthSpec spec;
    spec.style = c.style;
    spec.text = "AB12CDE";
    spec.seed = seed;
    SynthTruth truth;
    const cv::Mat img = RenderVehicleScene(spec, &truth);
    EXPECT_EQ(truth.text, spec.text);
    ASSERT_TRUE(BoxInside(truth.box, img));
    const double aspect = static_cast<double>(truth.box.width) / truth.box.height;
    EXPECT_NEAR(aspect, c.aspect, 0.25 * c.aspect);

    // The plate must stand out from its surroundings: compare its mean colour with a ring around
    // the box (the ring is the box grown by a quarter of the plate height, minus the box).
    const cv::Rect inner(truth.box.x, truth.box.y, truth.box.width, truth.box.height);
    const int grow = std::max(2, truth.box.height / 4);
    const cv::Rect outer =
        cv::Rect(inner.x - grow, inner.y - grow, inner.width + 2 * grow, inner.height + 2 * grow) &
        cv::Rect(0, 0, img.cols, img.rows);
    cv::Mat ring_mask(img.size(), CV_8U, cv::Scalar(0));
    ring_mask(outer).setTo(255);
    ring_mask(inner).setTo(0);
    const cv::Scalar plate_mean = cv::mean(img(inner));
    const cv::Scalar ring_mean = cv::mean(img, ring_mask);
    const double diff = std::abs(plate_mean[0] - ring_mean[0]) +
                        std::abs(plate_mean[1] - ring_mean[1]) +
                        std::abs(plate_mean[2] - ring_mean[2]);
    EXPECT_GT(diff, 60.0) << "plate mean " << plate_mean << " ring mean " << ring_mean;
  }
}

INSTANTIATE_TEST_SUITE_P(Styles, SynthStyleTest,
                         ::testing::Values(StyleCase{"us", 305.0 / 152.0},
                                           StyleCase{"eu", 520.0 / 110.0},
                                           StyleCase{"br", 400.0 / 130.0}),
                         [](const testing::TestParamInfo<StyleCase>& param_info) {
                           return std::string(param_info.param.style);
                         });

TEST(SynthTest, TiltedAndSkewedPlateStaysInside) {
  for (const float tilt : {-12.0f, 7.0f}) {
    for (const float yaw : {-0.3f, 0.3f}) {
      SynthSpec spec;
      spec.tilt_degrees = tilt;
      spec.yaw = yaw;
      spec.plate_width = 400;
      SynthTruth truth;
      const cv::Mat img = RenderVehicleScene(spec, &truth);
      EXPECT_TRUE(BoxInside(truth.box, img)) << "tilt " << tilt << " yaw " << yaw;
    }
  }
}

TEST(SynthTest, ExtremeParametersDoNotCrash) {
  struct Case {
    int width;
    int height;
    int plate_width;
    std::string text;
    float tilt;
    float yaw;
    float blur;
    float noise;
  };
  const Case cases[] = {
      {1280, 720, 5000, "ABC1234", 0, 0, 0, 0},
      {64, 48, 220, "ABC1234", 0, 0, 0, 0},
      {64, 48, 5000, "", 45, 0.3f, 30, 200},
      {640, 480, 200, "", 0, 0, 0, 0},
      {640, 480, 300, "ABC1234", 45, 0.3f, 0, 0},
      {640, 480, 300, "ABC1234", -90, -0.3f, 0, 0},
      {640, 480, 300, "ABC1234", 0, 5.0f, 0, 0},
      {640, 480, 200, "ABC1234", 0, 0, 40, 0},
      {640, 480, 200, "ABC1234", 0, 0, 0, 300},
      {320, 240, 0, "WAYTOOLONGPLATETEXT0123456789", 0, 0, 0, 0},
      {320, 240, -5, "ABC", 0, 0, -1, -1},
      {1, 1, 220, "A", 10, 0.1f, 2, 2},
      {0, -3, 220, "A", 0, 0, 0, 0},
      {320, 240, 200, "abc-12 \xC3\xA9", 0, 0, 0, 0},
      {320, 240, 200, "ABC", NAN, INFINITY, NAN, INFINITY},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << c.width << "x" << c.height << " plate " << c.plate_width);
    SynthSpec spec;
    spec.image_width = c.width;
    spec.image_height = c.height;
    spec.plate_width = c.plate_width;
    spec.text = c.text;
    spec.tilt_degrees = c.tilt;
    spec.yaw = c.yaw;
    spec.blur_sigma = c.blur;
    spec.noise_sigma = c.noise;
    for (const char* style : {"us", "eu", "br", "xx"}) {
      spec.style = style;
      SynthTruth truth;
      const cv::Mat img = RenderVehicleScene(spec, &truth);
      ASSERT_EQ(img.type(), CV_8UC3);
      EXPECT_EQ(img.cols, std::max(1, c.width));
      EXPECT_EQ(img.rows, std::max(1, c.height));
      EXPECT_EQ(truth.text, c.text);
      EXPECT_GE(truth.box.x, 0);
      EXPECT_GE(truth.box.y, 0);
      EXPECT_LE(truth.box.x + truth.box.width, img.cols);
      EXPECT_LE(truth.box.y + truth.box.height, img.rows);
    }
  }
}

TEST(SynthTest, PlateWidthIsCappedAtSixtyPercent) {
  SynthSpec spec;
  spec.plate_width = 5000;
  SynthTruth truth;
  const cv::Mat img = RenderVehicleScene(spec, &truth);
  EXPECT_LE(truth.box.width, static_cast<int>(0.6 * img.cols) + 2);
  EXPECT_GT(truth.box.width, static_cast<int>(0.5 * img.cols));
}

}  // namespace
}  // namespace portcullis::plate
