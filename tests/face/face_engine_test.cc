// End-to-end tests of the face engine with the real weights (scripts/install.sh) and the face
// chips that Debian's libdlib19.1 ships as example data (5 people x 11 aligned 150x150 chips).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "face/face_net.h"
#include "portcullis/face.h"

namespace portcullis::face {
namespace {

namespace fs = std::filesystem;

const char* kJohns = "/usr/share/doc/libdlib19.1/examples/johns";

struct Chip {
  std::string person;
  std::string path;
  cv::Mat bgr;
};

const std::vector<Chip>& Johns() {
  static const std::vector<Chip> chips = [] {
    std::vector<Chip> out;
    std::vector<fs::path> files;
    for (const auto& d : fs::directory_iterator(kJohns)) {
      for (const auto& f : fs::directory_iterator(d.path())) files.push_back(f.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      out.push_back({f.parent_path().filename().string(), f.string(), cv::imread(f.string())});
    }
    return out;
  }();
  return chips;
}

class FaceEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(fs::is_directory(kJohns)) << kJohns << " missing: apt-get install libdlib19.1";
    ASSERT_EQ(Johns().size(), 55u);
    Status s = FaceEngine::Open(FaceEngineOptions{}, &engine_);
    ASSERT_TRUE(s.ok()) << s.ToString() << " (run scripts/install.sh)";
  }
  static void TearDownTestSuite() { engine_.reset(); }
  static std::unique_ptr<FaceEngine> engine_;
};
std::unique_ptr<FaceEngine> FaceEngineTest::engine_;

TEST_F(FaceEngineTest, ReferenceEmbeddingOfOneChip) {
  // John_Salley/000179_02159509.jpg through the network alone. Pinned from this loader (dlib
  // input normalisation, dequantised face-api weights); a changed mapping moves these by > 0.05.
  const cv::Mat chip = cv::imread(std::string(kJohns) + "/John_Salley/000179_02159509.jpg");
  ASSERT_FALSE(chip.empty());
  FaceTemplate t;
  ASSERT_TRUE(engine_->EmbedChip(chip, &t).ok());
  const float expected[8] = {-0.11076f, 0.09594f,  0.02177f, 0.00937f,
                             0.04884f,  -0.07767f, 0.10128f, 0.04211f};
  for (int i = 0; i < 8; ++i)
    EXPECT_NEAR(t.values()[static_cast<std::size_t>(i)], expected[i], 2e-3f) << i;
  float norm = 0;
  for (const float v : t.values()) norm += v * v;
  EXPECT_GT(norm, 0.1f);
}

TEST_F(FaceEngineTest, JohnsDistanceStatistics) {
  std::vector<FaceTemplate> t(Johns().size());
  for (std::size_t i = 0; i < t.size(); ++i)
    ASSERT_TRUE(engine_->EmbedChip(Johns()[i].bgr, &t[i]).ok());
  double same_sum = 0, same_max = 0, diff_sum = 0, diff_min = 10;
  int same_n = 0, diff_n = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    for (std::size_t j = i + 1; j < t.size(); ++j) {
      const double d = Distance(t[i], t[j]);
      if (Johns()[i].person == Johns()[j].person) {
        same_sum += d;
        same_max = std::max(same_max, d);
        ++same_n;
      } else {
        diff_sum += d;
        diff_min = std::min(diff_min, d);
        ++diff_n;
      }
    }
  }
  EXPECT_EQ(same_n, 275);
  EXPECT_EQ(diff_n, 1210);
  EXPECT_NEAR(same_sum / same_n, 0.32, 0.05);
  EXPECT_NEAR(diff_sum / diff_n, 0.90, 0.05);
  EXPECT_LT(same_max, 0.6);  // every same-person pair matches at dlib's threshold
  EXPECT_GT(diff_min, 0.6);  // and no different-person pair does
}

TEST_F(FaceEngineTest, EnrolFindsTheFaceInATightCropAndAgreesWithTheChip) {
  const Chip& c = Johns()[0];
  FaceTemplate from_chip;
  FaceTemplate enrolled;
  FaceCapture cap;
  ASSERT_TRUE(engine_->EmbedChip(c.bgr, &from_chip).ok());
  const Status s = engine_->Enrol(c.bgr, &enrolled, &cap);
  ASSERT_TRUE(s.ok()) << s.ToString() << " issue " << QualityIssueName(cap.issue);
  EXPECT_EQ(cap.issue, QualityIssue::kNone);
  EXPECT_GT(cap.inter_eye_pixels, 40);
  EXPECT_LT(Distance(from_chip, enrolled), 0.15f);
  const VerifyResult r = engine_->Verify(from_chip, enrolled);
  EXPECT_TRUE(r.match);
  EXPECT_GT(r.similarity, 0.9f);
}

TEST_F(FaceEngineTest, FaceInAScene) {
  // A chip on a larger textured background, as a gate camera would frame it.
  cv::Mat scene(480, 640, CV_8UC3);
  cv::randu(scene, 60, 140);
  cv::GaussianBlur(scene, scene, cv::Size(9, 9), 3);
  cv::Mat big;
  cv::resize(Johns()[12].bgr, big, cv::Size(240, 240));
  big.copyTo(scene(cv::Rect(200, 120, 240, 240)));
  FaceTemplate t;
  FaceCapture cap;
  const Status s = engine_->Enrol(scene, &t, &cap);
  ASSERT_TRUE(s.ok()) << s.ToString() << " " << QualityIssueName(cap.issue);
  EXPECT_GT(cap.box.x, 180);
  EXPECT_LT(cap.box.x + cap.box.width, 460);
  FaceTemplate chip;
  ASSERT_TRUE(engine_->EmbedChip(Johns()[12].bgr, &chip).ok());
  EXPECT_LT(Distance(t, chip), 0.3f);
}

TEST_F(FaceEngineTest, NoFace) {
  cv::Mat grey(240, 320, CV_8UC3, cv::Scalar(128, 128, 128));
  FaceTemplate t = FaceTemplate();
  t.mutable_values()[0] = 7;
  FaceCapture cap;
  const Status s = engine_->Enrol(grey, &t, &cap);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(cap.issue, QualityIssue::kNoFace);
  EXPECT_EQ(t.values()[0], 7);  // untouched
}

TEST_F(FaceEngineTest, SeveralFacesOfComparableSize) {
  cv::Mat two(200, 360, CV_8UC3, cv::Scalar(100, 100, 100));
  Johns()[0].bgr.copyTo(two(cv::Rect(20, 25, 150, 150)));
  Johns()[20].bgr.copyTo(two(cv::Rect(190, 25, 150, 150)));
  FaceTemplate t;
  FaceCapture cap;
  EXPECT_EQ(engine_->Enrol(two, &t, &cap).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(cap.issue, QualityIssue::kSeveralFaces);
  std::vector<FaceTemplate> all;
  std::vector<FaceCapture> caps;
  ASSERT_TRUE(engine_->EmbedAll(two, &all, &caps).ok());
  EXPECT_EQ(all.size(), 2u);
}

TEST_F(FaceEngineTest, FaceTooSmall) {
  cv::Mat small;
  cv::resize(Johns()[0].bgr, small, cv::Size(56, 56), 0, 0, cv::INTER_AREA);
  cv::Mat canvas(160, 160, CV_8UC3, cv::Scalar(110, 110, 110));
  small.copyTo(canvas(cv::Rect(52, 52, 56, 56)));
  FaceTemplate t;
  FaceCapture cap;
  EXPECT_EQ(engine_->Enrol(canvas, &t, &cap).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(cap.issue, QualityIssue::kFaceTooSmall) << QualityIssueName(cap.issue);
  EXPECT_LT(cap.inter_eye_pixels, 24);
}

TEST_F(FaceEngineTest, BlurredAndDarkAreRefusedWithTheirOwnCodes) {
  cv::Mat blurred;
  cv::GaussianBlur(Johns()[30].bgr, blurred, cv::Size(0, 0), 3.5);
  FaceTemplate t;
  FaceCapture cap;
  EXPECT_FALSE(engine_->Enrol(blurred, &t, &cap).ok());
  EXPECT_EQ(cap.issue, QualityIssue::kTooBlurred) << QualityIssueName(cap.issue);

  cv::Mat dark;
  Johns()[30].bgr.convertTo(dark, -1, 0.22, 0);
  EXPECT_FALSE(engine_->Enrol(dark, &t, &cap).ok());
  EXPECT_EQ(cap.issue, QualityIssue::kTooDark) << QualityIssueName(cap.issue);
}

TEST_F(FaceEngineTest, NotEnforcedReportsButEmbeds) {
  FaceEngineOptions options;
  options.quality.enforce = false;
  std::unique_ptr<FaceEngine> lenient;
  ASSERT_TRUE(FaceEngine::Open(options, &lenient).ok());
  cv::Mat blurred;
  cv::GaussianBlur(Johns()[30].bgr, blurred, cv::Size(0, 0), 3.5);
  FaceTemplate t;
  FaceCapture cap;
  EXPECT_TRUE(lenient->Enrol(blurred, &t, &cap).ok());
  EXPECT_EQ(cap.issue, QualityIssue::kTooBlurred);
}

TEST_F(FaceEngineTest, WrongInputsAreRefusedNotCrashed) {
  FaceTemplate t;
  EXPECT_EQ(engine_->Enrol(cv::Mat(), &t).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(engine_->Enrol(cv::Mat(100, 100, CV_8UC1, cv::Scalar(0)), &t).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(engine_->EmbedChip(cv::Mat(100, 100, CV_8UC3), &t).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(engine_->EmbedRegion(Johns()[0].bgr, FaceBox{0, 0, 0, 0}, &t).code(),
            Status::Code::kInvalidArgument);
}

TEST_F(FaceEngineTest, SmallImagesAreUpsampledBeforeDetectionGateCapturesAreNot) {
  // A face HOG finds at native size, in a 300x300 image (LFW-like) and in a 640x480 capture.
  cv::Mat face;
  cv::resize(Johns()[12].bgr, face, cv::Size(240, 240));
  cv::Mat small(300, 300, CV_8UC3, cv::Scalar(100, 100, 100));
  face.copyTo(small(cv::Rect(30, 30, 240, 240)));
  cv::Mat capture(480, 640, CV_8UC3, cv::Scalar(100, 100, 100));
  face.copyTo(capture(cv::Rect(200, 120, 240, 240)));

  FaceEngineOptions native_options;
  native_options.upsample_small_images = false;
  std::unique_ptr<FaceEngine> native;
  ASSERT_TRUE(FaceEngine::Open(native_options, &native).ok());

  std::vector<FaceBox> up_boxes;
  std::vector<FaceBox> native_boxes;
  DetectStats stats;
  ASSERT_TRUE(engine_->Detect(small, &up_boxes, &stats).ok());
  EXPECT_EQ(stats.passes, 1);
  EXPECT_EQ(stats.working_width, 600);  // the default upsamples a small image first
  ASSERT_TRUE(native->Detect(small, &native_boxes, &stats).ok());
  EXPECT_EQ(stats.passes, 1);
  EXPECT_EQ(stats.working_width, 300);
  // Boxes are reported in the caller's pixels either way.
  ASSERT_EQ(up_boxes.size(), 1u);
  ASSERT_EQ(native_boxes.size(), 1u);
  EXPECT_NEAR(up_boxes[0].x + up_boxes[0].width / 2, 150, 15);
  EXPECT_NEAR(up_boxes[0].y + up_boxes[0].height / 2, 150, 25);
  EXPECT_NEAR(up_boxes[0].width, native_boxes[0].width, native_boxes[0].width / 4);

  // The live path (640x480) is never upsampled first: its cost budget does not change.
  ASSERT_TRUE(engine_->Detect(capture, &up_boxes, &stats).ok());
  EXPECT_EQ(stats.passes, 1);
  EXPECT_EQ(stats.working_width, 640);

  // The two views give nearly the same template of the same face.
  FaceTemplate a;
  FaceTemplate b;
  ASSERT_TRUE(engine_->Enrol(small, &a).ok());
  ASSERT_TRUE(native->Enrol(small, &b).ok());
  EXPECT_LT(Distance(a, b), 0.2f);
}

// A chip scaled to `face` px on a textured 640x480 background, as a gate camera frames it.
cv::Mat GateScene(const cv::Mat& chip, int face) {
  cv::Mat scene(480, 640, CV_8UC3);
  cv::randu(scene, 60, 140);
  cv::GaussianBlur(scene, scene, cv::Size(9, 9), 3);
  cv::Mat big;
  cv::resize(chip, big, cv::Size(face, face));
  big.copyTo(scene(cv::Rect((640 - face) / 2, (480 - face) / 2, face, face)));
  return scene;
}

TEST_F(FaceEngineTest, MinFacePixelsShrinksDetectionNotTheTemplate) {
  FaceEngineOptions options;
  options.min_face_pixels = 120;
  std::unique_ptr<FaceEngine> gate;
  ASSERT_TRUE(FaceEngine::Open(options, &gate).ok());
  float worst = 0;
  for (std::size_t i = 0; i < Johns().size(); i += 5) {  // 11 chips, all five people
    const cv::Mat scene = GateScene(Johns()[i].bgr, 220);
    std::vector<FaceBox> boxes;
    DetectStats stats;
    ASSERT_TRUE(gate->Detect(scene, &boxes, &stats).ok());
    EXPECT_EQ(stats.working_width, 640);    // landmarks and chip at full resolution
    EXPECT_EQ(stats.detection_width, 427);  // HOG on 640 x 80/120
    ASSERT_EQ(boxes.size(), 1u) << Johns()[i].path;
    FaceTemplate shrunk_detect;
    FaceTemplate full_detect;
    ASSERT_TRUE(gate->Enrol(scene, &shrunk_detect).ok()) << Johns()[i].path;
    ASSERT_TRUE(engine_->Enrol(scene, &full_detect).ok()) << Johns()[i].path;
    worst = std::max(worst, Distance(shrunk_detect, full_detect));
  }
  // Same-person distances of these chips reach 0.5; a coarser box moves the template far less.
  EXPECT_LT(worst, 0.1f);

  // Faces below the minimum are not looked for: a 100 px face is found by default, not at 160.
  options.min_face_pixels = 160;
  std::unique_ptr<FaceEngine> strict;
  ASSERT_TRUE(FaceEngine::Open(options, &strict).ok());
  const cv::Mat small_face = GateScene(Johns()[12].bgr, 100);
  FaceTemplate t;
  FaceCapture cap;
  ASSERT_TRUE(engine_->Enrol(small_face, &t, &cap).ok()) << QualityIssueName(cap.issue);
  EXPECT_EQ(strict->Enrol(small_face, &t, &cap).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(cap.issue, QualityIssue::kNoFace);

  // Out-of-range values are refused when the engine opens.
  for (const int bad : {-1, kMaxMinFacePixels + 1}) {
    options.min_face_pixels = bad;
    std::unique_ptr<FaceEngine> refused;
    EXPECT_EQ(FaceEngine::Open(options, &refused).code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_EQ(refused, nullptr);
  }
}

TEST_F(FaceEngineTest, JitteredEmbeddingIsDeterministicAndNearThePlainOne) {
  FaceEngineOptions options;
  options.jitter = 6;
  std::unique_ptr<FaceEngine> jittered;
  ASSERT_TRUE(FaceEngine::Open(options, &jittered).ok());
  const cv::Mat& chip = Johns()[3].bgr;
  FaceTemplate plain;
  FaceTemplate j1;
  FaceTemplate j2;
  ASSERT_TRUE(engine_->EmbedChip(chip, &plain).ok());
  ASSERT_TRUE(jittered->EmbedChip(chip, &j1).ok());
  ASSERT_TRUE(jittered->EmbedChip(chip, &j2).ok());
  EXPECT_EQ(j1.values(), j2.values());    // reseeded per face: a function of the image alone
  EXPECT_GT(Distance(plain, j1), 1e-3f);  // the copies really are jittered
  EXPECT_LT(Distance(plain, j1), 0.15f);  // and still the same face
  // Another person stays far away.
  FaceTemplate other;
  ASSERT_TRUE(jittered->EmbedChip(Johns()[40].bgr, &other).ok());
  EXPECT_GT(Distance(j1, other), 0.6f);

  for (const int bad : {-1, kMaxJitter + 1}) {
    options.jitter = bad;
    std::unique_ptr<FaceEngine> refused;
    EXPECT_EQ(FaceEngine::Open(options, &refused).code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_EQ(refused, nullptr);
  }
}

// ---- the loader on damaged copies of the weights
// -------------------------------------------------

class FaceLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env = std::getenv("PORTCULLIS_MODEL_DIR");
    const fs::path models =
        env != nullptr ? fs::path(env) : fs::path(PORTCULLIS_SOURCE_DIR "/models");
    src_ = models / "face";
    dir_ = fs::temp_directory_path() /
           ("portcullis_face_loader_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const char* f : {internal::kManifestName, "face_recognition_model.bin"}) {
      fs::copy_file(src_ / f, dir_ / f);
    }
    manifest_ = nlohmann::json::parse(std::ifstream(dir_ / internal::kManifestName));
  }
  void TearDown() override { fs::remove_all(dir_); }
  void WriteManifest(const std::string& text) {
    std::ofstream(dir_ / internal::kManifestName, std::ios::trunc) << text;
  }
  Status Load() {
    std::unique_ptr<internal::FaceNet> net;
    return internal::FaceNet::Load(Env::Default(), dir_.string(), &net);
  }
  fs::path src_;
  fs::path dir_;
  nlohmann::json manifest_;
};

TEST_F(FaceLoaderTest, IntactCopyLoads) { EXPECT_TRUE(Load().ok()) << Load().ToString(); }

TEST_F(FaceLoaderTest, MissingFiles) {
  fs::remove(dir_ / "face_recognition_model.bin");
  EXPECT_EQ(Load().code(), Status::Code::kNotFound);
  fs::remove(dir_ / internal::kManifestName);
  EXPECT_EQ(Load().code(), Status::Code::kNotFound);
}

TEST_F(FaceLoaderTest, TruncatedAndOverlongWeightFile) {
  const auto size = fs::file_size(dir_ / "face_recognition_model.bin");
  fs::resize_file(dir_ / "face_recognition_model.bin", size - 100);
  Status s = Load();
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("too short"), std::string::npos) << s.ToString();
  fs::resize_file(dir_ / "face_recognition_model.bin", size + 4);
  s = Load();
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("more than"), std::string::npos) << s.ToString();
}

TEST_F(FaceLoaderTest, MalformedManifest) {
  WriteManifest("{not json");
  EXPECT_EQ(Load().code(), Status::Code::kCorruption);
  WriteManifest("[]");
  EXPECT_EQ(Load().code(), Status::Code::kCorruption);
  WriteManifest(R"([{"paths": ["../../etc/passwd"], "weights": []}])");
  EXPECT_EQ(Load().code(), Status::Code::kCorruption);
}

TEST_F(FaceLoaderTest, MissingTensorWrongShapeBadDtype) {
  nlohmann::json m = manifest_;
  m[0]["weights"].erase(m[0]["weights"].size() - 1);  // drop "fc": the .bin is now too long
  WriteManifest(m.dump());
  EXPECT_EQ(Load().code(), Status::Code::kCorruption);

  m = manifest_;
  m[0]["weights"][0]["name"] = "conv32_down/conv/renamed";
  WriteManifest(m.dump());
  Status s = Load();
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("lacks tensor conv32_down/conv/filters"), std::string::npos)
      << s.ToString();

  m = manifest_;
  m[0]["weights"][0]["shape"] = {7, 7, 32, 3};  // same size, transposed
  WriteManifest(m.dump());
  s = Load();
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("wrong shape"), std::string::npos) << s.ToString();

  m = manifest_;
  m[0]["weights"][0]["shape"] = {7, -7, 3, 32};
  WriteManifest(m.dump());
  EXPECT_EQ(Load().code(), Status::Code::kCorruption);

  m = manifest_;
  m[0]["weights"][1]["dtype"] = "int32";
  WriteManifest(m.dump());
  EXPECT_EQ(Load().code(), Status::Code::kUnsupported);

  m = manifest_;
  m[0]["weights"][1]["quantization"]["dtype"] = "float16";
  WriteManifest(m.dump());
  EXPECT_EQ(Load().code(), Status::Code::kUnsupported);

  m = manifest_;
  m[0]["weights"][1]["quantization"].erase("scale");
  WriteManifest(m.dump());
  EXPECT_EQ(Load().code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace portcullis::face
