// The text detector's input size: the longer side capped by max_side and the area by max_pixels
// (plate::StageStats records the size each run used), enlarged by at most max_upscale, and the
// network runs at that size.
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "plate/stage_stats.h"
#include "plate/text_detector.h"
#include "portcullis/plate_synth.h"

namespace portcullis::plate {
namespace {

std::string ModelDir() {
  const char* env = std::getenv("PORTCULLIS_MODEL_DIR");
  if (env != nullptr && *env != '\0') return env;
  return std::string(PORTCULLIS_SOURCE_DIR) + "/models";
}

class DetectorSizeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const Status s = TextDetector::Open(ModelDir() + "/plate_det.onnx", &detector_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static void TearDownTestSuite() { detector_.reset(); }

  // The network input size Detect used for an image of `size` (grey: no text needed).
  static cv::Size InputFor(cv::Size size, const DetectorOptions& options) {
    const cv::Mat image(size, CV_8UC3, cv::Scalar(120, 120, 120));
    std::vector<TextBox> boxes;
    ThreadStageStats().Reset();
    const Status s = detector_->Detect(image, options, &boxes);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(ThreadStageStats().detector_runs, 1);
    return {ThreadStageStats().detector_input_width, ThreadStageStats().detector_input_height};
  }

  static std::unique_ptr<TextDetector> detector_;
};

std::unique_ptr<TextDetector> DetectorSizeTest::detector_;

TEST_F(DetectorSizeTest, MaxSideAloneScalesTheLongerSide) {
  DetectorOptions options;
  options.max_side = 640;
  EXPECT_EQ(InputFor({1280, 720}, options), cv::Size(640, 352));  // 360 -> multiple of 32
  EXPECT_EQ(InputFor({1000, 1000}, options), cv::Size(640, 640));
  EXPECT_EQ(InputFor({320, 200}, options), cv::Size(320, 192));  // never scaled up
}

TEST_F(DetectorSizeTest, MaxPixelsCapsTheAreaOfSquarerFramesOnly) {
  DetectorOptions options;
  options.max_side = 640;
  options.max_pixels = 640 * 480;
  // 16:9 and 4:3 at 640 are within the budget: unchanged.
  EXPECT_EQ(InputFor({1280, 720}, options), cv::Size(640, 352));
  EXPECT_EQ(InputFor({1280, 960}, options), cv::Size(640, 480));
  // A square frame gets sqrt(640*480) = 554 a side, rounded to 544 (multiple of 32).
  EXPECT_EQ(InputFor({1000, 1000}, options), cv::Size(544, 544));
  // A small image is never scaled up.
  EXPECT_EQ(InputFor({300, 300}, options), cv::Size(288, 288));
}

TEST_F(DetectorSizeTest, MaxUpscaleEnlargesSmallImagesUpToIt) {
  DetectorOptions options;
  options.max_side = 1280;
  options.max_upscale = 2.0;
  EXPECT_EQ(InputFor({320, 200}, options), cv::Size(640, 416));   // x2 (400 -> 416)
  EXPECT_EQ(InputFor({800, 600}, options), cv::Size(1280, 960));  // x1.6: max_side first
  options.max_pixels = 640 * 480;
  EXPECT_EQ(InputFor({320, 240}, options), cv::Size(640, 480));  // x2 fits the budget exactly
  EXPECT_EQ(InputFor({400, 300}, options), cv::Size(640, 480));  // x1.6: the budget first
}

TEST_F(DetectorSizeTest, MaxUpscaleOutsideOneToEightIsInvalidArgument) {
  const cv::Mat image(64, 64, CV_8UC3, cv::Scalar(0, 0, 0));
  std::vector<TextBox> boxes;
  for (const double upscale : {0.5, 0.0, 9.0}) {
    DetectorOptions options;
    options.max_upscale = upscale;
    EXPECT_EQ(detector_->Detect(image, options, &boxes).code(), Status::Code::kInvalidArgument)
        << upscale;
  }
}

// One Net per input size, bounded by count and by pixels; the least recently used goes first.
TEST_F(DetectorSizeTest, NetCacheStaysWithinItsPixelAndCountLimits) {
  std::unique_ptr<TextDetector> detector;  // its own: the limits are per detector
  const Status opened = TextDetector::Open(ModelDir() + "/plate_det.onnx", &detector);
  ASSERT_TRUE(opened.ok()) << opened.ToString();
  DetectorOptions options;
  options.max_side = 4096;  // every square below is its own input size
  const auto detect = [&](int side) {
    const cv::Mat image(side, side, CV_8UC3, cv::Scalar(120, 120, 120));
    std::vector<TextBox> boxes;
    const Status s = detector->Detect(image, options, &boxes);
    EXPECT_TRUE(s.ok()) << s.ToString();
  };
  detector->SetNetCacheLimits(1, std::int64_t{1} << 30);
  detect(256);  // the nets Open built (640 x 640, and the proposal model's 64 x 64) go
  EXPECT_EQ(detector->CachedNets(), 1u);
  EXPECT_EQ(detector->CachedPixels(), 256 * 256);
  detector->SetNetCacheLimits(8, 2 * 256 * 256);  // two 256-px nets fit, three do not
  detect(224);
  EXPECT_EQ(detector->CachedNets(), 2u);
  detect(192);  // 256 + 224 + 192 squared is over: the least recently used (256) goes
  EXPECT_EQ(detector->CachedNets(), 2u);
  EXPECT_EQ(detector->CachedPixels(), 224 * 224 + 192 * 192);
  detect(224);  // cached: nothing changes
  EXPECT_EQ(detector->CachedPixels(), 224 * 224 + 192 * 192);
  detect(512);  // larger than the whole budget: everything else goes, it stays while in use
  EXPECT_EQ(detector->CachedNets(), 1u);
  EXPECT_EQ(detector->CachedPixels(), 512 * 512);

  detector->SetNetCacheLimits(2, std::int64_t{1} << 30);  // now the count binds
  for (int side : {64, 96, 128}) detect(side);
  EXPECT_EQ(detector->CachedNets(), 2u);
  EXPECT_EQ(detector->CachedPixels(), 96 * 96 + 128 * 128);
}

// Over its limits, the cache sets its least recently used net up again at the new size rather
// than reading a new one: the boxes must be those of a net built for that size. (OpenCV fuses a
// net's layers again when it sets it up again; a layer that folded the fused ones into its
// weights twice made the probability map garbage.)
TEST(DetectorNetReuseTest, ANetSetUpAgainAtANewSizeFindsWhatANewNetFinds) {
  std::unique_ptr<TextDetector> reusing;
  const Status opened =
      TextDetector::Open(ModelDir() + "/plate_det.onnx", &reusing, /*gemm_convolutions=*/true);
  ASSERT_TRUE(opened.ok()) << opened.ToString();
  reusing->SetNetCacheLimits(1, std::int64_t{1} << 30);  // one net for every size
  std::unique_ptr<TextDetector> fresh;  // a net of its own for every size, built for it
  ASSERT_TRUE(TextDetector::Open(ModelDir() + "/plate_det.onnx", &fresh, true).ok());
  fresh->SetNetCacheLimits(16, std::int64_t{1} << 30);
  DetectorOptions options;
  options.max_side = 4096;
  for (const cv::Size size :
       {cv::Size(1280, 720), cv::Size(960, 640), cv::Size(800, 800), cv::Size(1280, 720)}) {
    SynthSpec spec;
    spec.text = "7KQM482";
    spec.image_width = size.width;
    spec.image_height = size.height;
    spec.seed = static_cast<std::uint32_t>(size.height);
    SynthTruth truth;
    const cv::Mat scene = RenderVehicleScene(spec, &truth);
    std::vector<TextBox> got, expected;
    ASSERT_TRUE(reusing->Detect(scene, options, &got).ok());
    EXPECT_EQ(reusing->CachedNets(), 1u);
    ASSERT_TRUE(fresh->Detect(scene, options, &expected).ok());
    ASSERT_FALSE(expected.empty()) << size;
    ASSERT_EQ(got.size(), expected.size()) << size;
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i].score, expected[i].score, 1e-5) << size << " box " << i;
      for (std::size_t c = 0; c < 4; ++c) {
        EXPECT_NEAR(got[i].corners[c].x, expected[i].corners[c].x, 1e-3) << size << " box " << i;
        EXPECT_NEAR(got[i].corners[c].y, expected[i].corners[c].y, 1e-3) << size << " box " << i;
      }
    }
  }
  EXPECT_GE(fresh->CachedNets(), 4u);  // 640 x 640 from Open and the three sizes: none reused
}

TEST_F(DetectorSizeTest, NegativeMaxPixelsIsInvalidArgument) {
  const cv::Mat image(64, 64, CV_8UC3, cv::Scalar(0, 0, 0));
  DetectorOptions options;
  options.max_pixels = -1;
  std::vector<TextBox> boxes;
  EXPECT_EQ(detector_->Detect(image, options, &boxes).code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace portcullis::plate
