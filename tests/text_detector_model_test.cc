// The text detector's proposal stage with the real models (prepared by scripts/install.sh into
// models/, or wherever $PORTCULLIS_MODEL_DIR points) on synthetic scenes whose plate is known.

#include <stdlib.h>  // mkdtemp

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "plate/text_detector.h"
#include "portcullis/plate.h"
#include "portcullis/plate_synth.h"
#include "temp_dir.h"

namespace portcullis::plate {
namespace {

namespace fs = std::filesystem;

std::string ModelDir() {
  const char* env = std::getenv("PORTCULLIS_MODEL_DIR");
  if (env != nullptr && *env != '\0') return env;
  return std::string(PORTCULLIS_SOURCE_DIR) + "/models";
}

// Each test names its directories after itself.
class TempDir : public testutil::TempDir {
 public:
  TempDir() : testutil::TempDir("portcullis_det") {}
};

double Iou(const cv::Rect& a, const cv::Rect& b) {
  const double inter = (a & b).area();
  const double uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0;
}

// The detected line that overlaps the plate most (the plate's text line lies inside its box).
cv::Rect BestLine(const std::vector<TextBox>& boxes, const cv::Rect& plate) {
  cv::Rect best;
  for (const auto& b : boxes) {
    const cv::Rect r = b.BoundingRect();
    if ((r & plate).area() > (best & plate).area()) best = r;
  }
  return best;
}

class TextDetectorModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Status s = TextDetector::Open(ModelDir() + "/plate_det.onnx", &detector_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static void TearDownTestSuite() { detector_.reset(); }
  static std::unique_ptr<TextDetector> detector_;
};
std::unique_ptr<TextDetector> TextDetectorModelTest::detector_;

TEST_F(TextDetectorModelTest, ProposalsFindTheSmallPlateLineTheWholeImagePassFinds) {
  // A small plate (text ~15 px high) in a 1280x720 scene: the case the proposal stage must not
  // lose. At 480 the coarse map only hints at it; the full-size pass on the region reads it.
  SynthSpec spec;
  spec.text = "7KQM482";
  spec.plate_width = 130;
  spec.seed = 11;
  SynthTruth truth;
  cv::Mat scene = RenderVehicleScene(spec, &truth);
  const cv::Rect plate(truth.box.x, truth.box.y, truth.box.width, truth.box.height);

  DetectorOptions whole;
  std::vector<TextBox> full_boxes;
  ASSERT_TRUE(detector_->Detect(scene, whole, &full_boxes).ok());
  const cv::Rect full_line = BestLine(full_boxes, plate);
  ASSERT_GT((full_line & plate).area(), 0) << "the whole-image pass misses the plate";

  DetectorOptions proposed = whole;
  proposed.proposal_max_side = 480;
  std::vector<TextBox> proposal_boxes;
  ASSERT_TRUE(detector_->Detect(scene, proposed, &proposal_boxes).ok());
  const cv::Rect proposal_line = BestLine(proposal_boxes, plate);
  EXPECT_GT(Iou(proposal_line, full_line), 0.7) << proposal_line << " vs " << full_line;
  // Looking only at proposals never invents lines where the whole image has none.
  EXPECT_LE(proposal_boxes.size(), full_boxes.size() + 2);
}

TEST_F(TextDetectorModelTest, BlankImageHasNoProposalsAndNoBoxes) {
  cv::Mat grey(720, 1280, CV_8UC3, cv::Scalar(128, 128, 128));
  DetectorOptions options;
  options.proposal_max_side = 480;
  std::vector<TextBox> boxes;
  ASSERT_TRUE(detector_->Detect(grey, options, &boxes).ok());
  EXPECT_TRUE(boxes.empty());
}

TEST_F(TextDetectorModelTest, BadOptionsAreInvalidArgument) {
  cv::Mat grey(64, 64, CV_8UC3, cv::Scalar(128, 128, 128));
  std::vector<TextBox> boxes;
  DetectorOptions options;
  options.proposal_max_side = -1;
  EXPECT_EQ(detector_->Detect(grey, options, &boxes).code(), Status::Code::kInvalidArgument);
  options = {};
  options.max_side = 0;
  EXPECT_EQ(detector_->Detect(grey, options, &boxes).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(detector_->Detect(cv::Mat(), {}, &boxes).code(), Status::Code::kInvalidArgument);
}

TEST(TextDetectorOpenTest, WithoutTheRegionModelProposalsFallBackToTheWholeImage) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  fs::copy_file(ModelDir() + "/plate_det.onnx", dir.path() + "/plate_det.onnx");
  std::unique_ptr<TextDetector> detector;
  ASSERT_TRUE(TextDetector::Open(dir.path() + "/plate_det.onnx", &detector).ok());
  SynthSpec spec;
  spec.seed = 5;
  SynthTruth truth;
  cv::Mat scene = RenderVehicleScene(spec, &truth);
  DetectorOptions whole;
  DetectorOptions proposed;
  proposed.proposal_max_side = 480;
  std::vector<TextBox> a, b;
  ASSERT_TRUE(detector->Detect(scene, whole, &a).ok());
  ASSERT_TRUE(detector->Detect(scene, proposed, &b).ok());
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].BoundingRect(), b[i].BoundingRect());
}

TEST(TextDetectorOpenTest, CorruptRegionModelIsCorruption) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  fs::copy_file(ModelDir() + "/plate_det.onnx", dir.path() + "/plate_det.onnx");
  std::ofstream(dir.path() + "/plate_det_region.onnx") << "not an onnx graph";
  std::unique_ptr<TextDetector> detector;
  EXPECT_EQ(TextDetector::Open(dir.path() + "/plate_det.onnx", &detector).code(),
            Status::Code::kCorruption);
}

TEST(PlateReaderProposalTest, OutOfRangeProposalSizeIsInvalidArgument) {
  for (int size : {-1, 10, 5000}) {
    PlateReaderOptions options;
    options.detector_proposal_max_side = size;
    std::unique_ptr<PlateReader> reader;
    EXPECT_EQ(PlateReader::Open(options, &reader).code(), Status::Code::kInvalidArgument) << size;
  }
}

}  // namespace
}  // namespace portcullis::plate
