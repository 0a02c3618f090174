// End-to-end tests of the public PlateReader API with the real models (prepared by
// scripts/install.sh into models/, or wherever $PORTCULLIS_MODEL_DIR points) and the real region
// grammars. Reads are expensive (~0.5-2 s each), so every suite opens its readers once and the
// tests read only a handful of synthetic scenes whose truth is known exactly.

#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "plate/stage_stats.h"
#include "portcullis/plate.h"
#include "portcullis/plate_synth.h"
#include "portcullis/status.h"
#include "temp_dir.h"

namespace portcullis::plate {
namespace {

namespace fs = std::filesystem;

// The directories the default-constructed options resolve to, so that a test that builds its own
// model or region directory can copy the real files from them.
std::string ModelDir() {
  const char* env = std::getenv("PORTCULLIS_MODEL_DIR");
  if (env != nullptr && *env != '\0') return env;
  return std::string(PORTCULLIS_SOURCE_DIR) + "/models";
}

std::string RegionDir() {
  const char* env = std::getenv("PORTCULLIS_REGION_DIR");
  if (env != nullptr && *env != '\0') return env;
  return std::string(PORTCULLIS_SOURCE_DIR) + "/data/regions";
}

// Each test names its directories after itself.
class TempDir : public testutil::TempDir {
 public:
  TempDir() : testutil::TempDir("portcullis_e2e") {}
};

bool WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  return out.good();
}

double Iou(const Box& a, const Box& b) {
  const int x0 = std::max(a.x, b.x);
  const int y0 = std::max(a.y, b.y);
  const int x1 = std::min(a.x + a.width, b.x + b.width);
  const int y1 = std::min(a.y + a.height, b.y + b.height);
  if (x1 <= x0 || y1 <= y0) return 0;
  const double inter = static_cast<double>(x1 - x0) * static_cast<double>(y1 - y0);
  const double uni = static_cast<double>(a.width) * static_cast<double>(a.height) +
                     static_cast<double>(b.width) * static_cast<double>(b.height) - inter;
  return uni > 0 ? inter / uni : 0;
}

double Area(const Box& b) { return static_cast<double>(b.width) * static_cast<double>(b.height); }

double Intersection(const Box& a, const Box& b) {
  const int x0 = std::max(a.x, b.x);
  const int y0 = std::max(a.y, b.y);
  const int x1 = std::min(a.x + a.width, b.x + b.width);
  const int y1 = std::min(a.y + a.height, b.y + b.height);
  if (x1 <= x0 || y1 <= y0) return 0;
  return static_cast<double>(x1 - x0) * static_cast<double>(y1 - y0);
}

std::unique_ptr<PlateReader> OpenOrNull(const PlateReaderOptions& options) {
  std::unique_ptr<PlateReader> reader;
  const Status s = PlateReader::Open(options, &reader);
  EXPECT_TRUE(s.ok()) << "region " << options.region << ": " << s.ToString();
  if (!s.ok()) reader.reset();
  return reader;
}

PlateReaderOptions WithRegion(const std::string& region, int top_n = 5) {
  PlateReaderOptions options;
  options.region = region;
  options.top_n = top_n;
  return options;
}

// ---------------------------------------------------------------------------------------------
// Open: options, model and grammar directories.

TEST(PlateReaderOpenTest, DefaultsOpenAndKnowEveryRegionSortedByFileName) {
  std::unique_ptr<PlateReader> reader;
  const Status s = PlateReader::Open(PlateReaderOptions{}, &reader);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->Regions(), (std::vector<std::string>{"br", "eu", "us"}));
}

TEST(PlateReaderOpenTest, ExplicitRegionKeepsOnlyThatGrammar) {
  std::unique_ptr<PlateReader> reader;
  const Status s = PlateReader::Open(WithRegion("eu"), &reader);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->Regions(), std::vector<std::string>{"eu"});
}

TEST(PlateReaderOpenTest, UnknownRegionIsInvalidArgumentListingTheKnownOnes) {
  std::unique_ptr<PlateReader> reader;
  const Status s = PlateReader::Open(WithRegion("xx"), &reader);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("xx"), std::string::npos) << s.message();
  for (const char* known : {"auto", "br", "eu", "us"}) {
    EXPECT_NE(s.message().find(known), std::string::npos) << known << " in: " << s.message();
  }
  EXPECT_EQ(reader, nullptr);
}

TEST(PlateReaderOpenTest, MissingModelDirectoryIsNotFound) {
  PlateReaderOptions options;
  options.model_dir = "/nonexistent";
  std::unique_ptr<PlateReader> reader;
  const Status s = PlateReader::Open(options, &reader);
  EXPECT_EQ(s.code(), Status::Code::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find("/nonexistent"), std::string::npos) << s.message();
  EXPECT_EQ(reader, nullptr);
}

TEST(PlateReaderOpenTest, GarbageDetectorModelIsCorruption) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  for (const char* name : {"plate_rec_w160.onnx", "plate_rec_w320.onnx", "rec_keys.txt"}) {
    std::error_code ec;
    fs::copy_file(ModelDir() + "/" + name, dir.path() + "/" + name, ec);
    ASSERT_FALSE(ec) << "copy " << name << ": " << ec.message();
  }
  // 64 KiB of deterministic junk: not a protobuf, let alone an ONNX graph.
  std::string junk(64 * 1024, '\0');
  std::uint32_t x = 2463534242u;
  for (auto& c : junk) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xFF);
  }
  ASSERT_TRUE(WriteBytes(dir.path() + "/plate_det.onnx", junk));

  PlateReaderOptions options;
  options.model_dir = dir.path();
  std::unique_ptr<PlateReader> reader;
  const Status s = PlateReader::Open(options, &reader);
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("plate_det.onnx"), std::string::npos) << s.message();
  EXPECT_EQ(reader, nullptr);
}

TEST(PlateReaderOpenTest, MalformedGrammarIsCorruptionNamingTheFile) {
  struct Case {
    const char* name;
    const char* json;
  };
  const Case cases[] = {
      {"not JSON", "{\"region\": \"xx\", \"alphabet\": "},
      {"bad pattern symbol",
       R"({"region": "xx", "alphabet": "0123456789ABC", "patterns": [{"pattern": "LL?D"}]})"},
      {"region differs from file name",
       R"({"region": "yy", "alphabet": "0123456789ABC", "patterns": [{"pattern": "LLD"}]})"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    std::error_code ec;
    fs::copy_file(RegionDir() + "/us.json", dir.path() + "/us.json", ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_TRUE(WriteBytes(dir.path() + "/xx.json", c.json));
    PlateReaderOptions options;
    options.region_dir = dir.path();
    std::unique_ptr<PlateReader> reader;
    const Status s = PlateReader::Open(options, &reader);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
    EXPECT_NE(s.message().find("xx.json"), std::string::npos) << s.message();
    EXPECT_EQ(reader, nullptr);
  }
}

TEST(PlateReaderOpenTest, EmptyRegionDirectoryIsNotFound) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  PlateReaderOptions options;
  options.region_dir = dir.path();
  std::unique_ptr<PlateReader> reader;
  const Status s = PlateReader::Open(options, &reader);
  EXPECT_EQ(s.code(), Status::Code::kNotFound) << s.ToString();
  EXPECT_EQ(reader, nullptr);
}

TEST(PlateReaderOpenTest, OutOfRangeOptionsAreInvalidArgument) {
  struct Case {
    const char* name;
    PlateReaderOptions options;
  };
  std::vector<Case> cases;
  cases.push_back({"top_n 0", {}});
  cases.back().options.top_n = 0;
  cases.push_back({"top_n 51", {}});
  cases.back().options.top_n = 51;
  cases.push_back({"max_plates 0", {}});
  cases.back().options.max_plates = 0;
  cases.push_back({"threads 0", {}});
  cases.back().options.threads = 0;
  cases.push_back({"detector_max_side 10", {}});
  cases.back().options.detector_max_side = 10;
  cases.push_back({"detector_max_side 5000", {}});
  cases.back().options.detector_max_side = 5000;
  cases.push_back({"detector_max_pixels 100", {}});
  cases.back().options.detector_max_pixels = 100;
  cases.push_back({"detector_max_pixels -1", {}});
  cases.back().options.detector_max_pixels = -1;
  for (double scale : {-1.0, 0.5, 1.0, 4.5}) {
    cases.push_back({"second_look_scale out of range", {}});
    cases.back().options.second_look_scale = scale;
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::unique_ptr<PlateReader> reader;
    const Status s = PlateReader::Open(c.options, &reader);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
    EXPECT_FALSE(s.message().empty());
    EXPECT_EQ(reader, nullptr);
  }
}

// ---------------------------------------------------------------------------------------------
// Read: synthetic scenes, one per region layout, each read by a reader restricted to its region.

struct RegionCase {
  const char* style;
  const char* text;
  const char* region;
  const char* format;  // expected format name; "" = any (US layouts are many)
  std::uint32_t seed;
};

void PrintTo(const RegionCase& c, std::ostream* os) { *os << c.style << "/" << c.text; }

class PlateReaderRegionTest : public ::testing::TestWithParam<RegionCase> {
 protected:
  static constexpr int kTopN = 3;

  // Readers are opened on first use and shared by the suite's tests (under ctest each test runs
  // in its own process, so opening only the region it needs keeps that cheap).
  static void SetUpTestSuite() {
    readers_ = new std::map<std::string, std::unique_ptr<PlateReader>>();
  }
  static void TearDownTestSuite() {
    delete readers_;
    readers_ = nullptr;
  }
  static PlateReader* Reader(const std::string& region) {
    auto it = readers_->find(region);
    if (it == readers_->end()) {
      it = readers_->emplace(region, OpenOrNull(WithRegion(region, kTopN))).first;
    }
    return it->second.get();
  }

  static std::map<std::string, std::unique_ptr<PlateReader>>* readers_;
};

std::map<std::string, std::unique_ptr<PlateReader>>* PlateReaderRegionTest::readers_ = nullptr;

TEST_P(PlateReaderRegionTest, ReadsTheSyntheticPlate) {
  const RegionCase& c = GetParam();
  PlateReader* reader = Reader(c.region);
  ASSERT_NE(reader, nullptr);

  SynthSpec spec;
  spec.text = c.text;
  spec.style = c.style;
  spec.plate_width = 260;
  spec.noise_sigma = 2;
  spec.seed = c.seed;
  SynthTruth truth;
  const cv::Mat image = RenderVehicleScene(spec, &truth);
  ASSERT_EQ(image.type(), CV_8UC3);

  std::vector<PlateRead> plates;
  const Status s = reader->Read(image, &plates);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_FALSE(plates.empty());
  const PlateRead& p = plates[0];

  EXPECT_EQ(p.text, truth.text);
  EXPECT_GT(p.confidence, 0.5f);
  EXPECT_LE(p.confidence, 1.0f);
  EXPECT_EQ(p.region, c.region);
  if (*c.format != '\0') {
    EXPECT_EQ(p.format, c.format);
  }
  EXPECT_FALSE(p.format.empty());

  ASSERT_FALSE(p.candidates.empty());
  EXPECT_LE(p.candidates.size(), static_cast<std::size_t>(kTopN));
  EXPECT_EQ(p.candidates[0].text, p.text);
  EXPECT_FLOAT_EQ(p.candidates[0].confidence, p.confidence);
  EXPECT_EQ(p.candidates[0].format, p.format);
  for (std::size_t i = 0; i < p.candidates.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "candidate " << i << " " << p.candidates[i].text);
    EXPECT_GE(p.candidates[i].confidence, 0.0f);
    EXPECT_LE(p.candidates[i].confidence, 1.0f);
    if (i > 0) {
      EXPECT_LE(p.candidates[i].confidence, p.candidates[i - 1].confidence);
    }
    for (char ch : p.candidates[i].text) {
      EXPECT_TRUE((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) << ch;
    }
  }

  // The box lies on the plate. IoU would also judge the labelling convention: the reported box is
  // calibrated to the benchmark's plate boxes, the synthetic truth includes the plate's recess.
  const double inside = Intersection(p.box, truth.box) / Area(p.box);
  EXPECT_GE(inside, 0.8) << "read box " << p.box.x << "," << p.box.y << " " << p.box.width << "x"
                         << p.box.height << " truth " << truth.box.x << "," << truth.box.y << " "
                         << truth.box.width << "x" << truth.box.height;
  EXPECT_GE(Area(p.box), 0.2 * Area(truth.box));
  for (const Point& pt : p.polygon) {
    EXPECT_GE(pt.x, 0.0f);
    EXPECT_LE(pt.x, static_cast<float>(image.cols));
    EXPECT_GE(pt.y, 0.0f);
    EXPECT_LE(pt.y, static_cast<float>(image.rows));
  }
  // Clockwise from top-left on an upright plate.
  EXPECT_LT(p.polygon[0].x, p.polygon[1].x);
  EXPECT_LT(p.polygon[1].y, p.polygon[2].y);
  EXPECT_GT(p.polygon[2].x, p.polygon[3].x);
  EXPECT_GT(p.polygon[3].y, p.polygon[0].y);
}

INSTANTIATE_TEST_SUITE_P(Regions, PlateReaderRegionTest,
                         ::testing::Values(RegionCase{"us", "7KDT482", "us", "", 3},
                                           RegionCase{"eu", "BA512CK", "eu", "LLDDDLL", 5},
                                           RegionCase{"br", "BRA2E19", "br", "mercosur", 7},
                                           RegionCase{"br", "JQV5526", "br", "brazil", 9}),
                         [](const ::testing::TestParamInfo<RegionCase>& param) {
                           return std::string(param.param.style) + "_" + param.param.text;
                         });

// ---------------------------------------------------------------------------------------------
// Read: automatic region, harder scenes, no plate, bad input.

class PlateReaderReadTest : public ::testing::Test {
 protected:
  // Opened on first use, shared by the suite's tests.
  static void SetUpTestSuite() {
    auto_reader_ = new std::unique_ptr<PlateReader>();
    top1_reader_ = new std::unique_ptr<PlateReader>();
  }
  static void TearDownTestSuite() {
    delete auto_reader_;
    auto_reader_ = nullptr;
    delete top1_reader_;
    top1_reader_ = nullptr;
  }
  static PlateReader* AutoReader() {
    if (*auto_reader_ == nullptr) *auto_reader_ = OpenOrNull(WithRegion("auto"));
    return auto_reader_->get();
  }
  static PlateReader* Top1Reader() {
    if (*top1_reader_ == nullptr) *top1_reader_ = OpenOrNull(WithRegion("auto", 1));
    return top1_reader_->get();
  }

  static std::unique_ptr<PlateReader>* auto_reader_;
  static std::unique_ptr<PlateReader>* top1_reader_;
};

std::unique_ptr<PlateReader>* PlateReaderReadTest::auto_reader_ = nullptr;
std::unique_ptr<PlateReader>* PlateReaderReadTest::top1_reader_ = nullptr;

TEST_F(PlateReaderReadTest, AutoRegionReadsMercosurAsBrazil) {
  PlateReader* reader = AutoReader();
  ASSERT_NE(reader, nullptr);
  SynthSpec spec;
  spec.text = "BRA2E19";
  spec.style = "br";
  spec.plate_width = 280;
  spec.seed = 21;
  SynthTruth truth;
  const cv::Mat image = RenderVehicleScene(spec, &truth);
  std::vector<PlateRead> plates;
  const Status s = reader->Read(image, &plates);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_FALSE(plates.empty());
  EXPECT_EQ(plates[0].text, "BRA2E19");
  EXPECT_EQ(plates[0].region, "br");
  EXPECT_EQ(plates[0].format, "mercosur");
  EXPECT_GT(plates[0].confidence, 0.5f);
  EXPECT_GE(Iou(plates[0].box, truth.box), 0.3);
}

// An all-digit US plate in a frame that also carries a camera's date/time stamp: the stamp is
// rejected by its separators, so the plate no longer needs a letter to pass the free-form rule
// (before, the plate read as a letter-first layout, "B951283").
TEST_F(PlateReaderReadTest, AllDigitPlateReadsAndTheTimestampIsNotAPlate) {
  std::unique_ptr<PlateReader> reader = OpenOrNull(WithRegion("us"));
  ASSERT_NE(reader, nullptr);
  SynthSpec spec;
  spec.text = "8951283";
  spec.style = "us";
  spec.plate_width = 240;
  spec.seed = 31;
  SynthTruth truth;
  cv::Mat image = RenderVehicleScene(spec, &truth);
  // The stamp, as lane cameras burn it: white digits on a dark strip in the top-left corner.
  cv::rectangle(image, cv::Rect(0, 0, 470, 44), cv::Scalar(20, 20, 20), cv::FILLED);
  cv::putText(image, "2014-06-12 10:46:52", cv::Point(10, 32), cv::FONT_HERSHEY_SIMPLEX, 1.0,
              cv::Scalar(255, 255, 255), 2, cv::LINE_AA);
  std::vector<PlateRead> plates;
  const Status s = reader->Read(image, &plates);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_FALSE(plates.empty());
  EXPECT_EQ(plates[0].text, "8951283");
  // The plate, not the stamp (the US box calibration fits real plates, so synthetic ones get a
  // looser bound than elsewhere in this file).
  EXPECT_GE(Iou(plates[0].box, truth.box), 0.2);
  // Nothing is read from the stamp's strip.
  for (const PlateRead& p : plates) EXPECT_GE(p.box.y + p.box.height / 2, 44) << p.text;
}

TEST_F(PlateReaderReadTest, TiltedAndBlurredPlateStillReads) {
  PlateReader* reader = AutoReader();
  ASSERT_NE(reader, nullptr);
  SynthSpec spec;
  spec.text = "BA512CK";
  spec.style = "eu";
  spec.plate_width = 280;
  spec.tilt_degrees = 5;
  spec.blur_sigma = 0.8f;
  spec.noise_sigma = 3;
  spec.seed = 23;
  SynthTruth truth;
  const cv::Mat image = RenderVehicleScene(spec, &truth);
  std::vector<PlateRead> plates;
  const Status s = reader->Read(image, &plates);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_FALSE(plates.empty());
  EXPECT_EQ(plates[0].text, "BA512CK");
  EXPECT_GT(plates[0].confidence, 0.5f);
  EXPECT_GE(Iou(plates[0].box, truth.box), 0.3);
}

TEST_F(PlateReaderReadTest, TopNOneGivesExactlyOneCandidate) {
  PlateReader* reader = Top1Reader();
  ASSERT_NE(reader, nullptr);
  SynthSpec spec;
  spec.text = "JQV5526";
  spec.style = "br";
  spec.plate_width = 260;
  spec.seed = 25;
  SynthTruth truth;
  const cv::Mat image = RenderVehicleScene(spec, &truth);
  std::vector<PlateRead> plates;
  const Status s = reader->Read(image, &plates);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_FALSE(plates.empty());
  EXPECT_EQ(plates[0].text, "JQV5526");
  for (const PlateRead& p : plates) {
    ASSERT_EQ(p.candidates.size(), 1u) << p.text;
    EXPECT_EQ(p.candidates[0].text, p.text);
  }
}

// Second look: a plate too small for the first detector pass (max side 320 here, so that a
// 100-px plate in a 1280x720 scene is ~25 px wide to the detector) is found when the detector
// looks again at twice the size; with the second look off it is not read at all.
TEST(PlateReaderSecondLookTest, ReadsAPlateTheFirstPassMissed) {
  SynthSpec spec;
  spec.text = "7KDT482";
  spec.style = "us";
  spec.plate_width = 100;
  spec.noise_sigma = 2;
  spec.seed = 41;
  SynthTruth truth;
  const cv::Mat image = RenderVehicleScene(spec, &truth);
  for (const double scale : {0.0, 2.0}) {
    SCOPED_TRACE(scale);
    PlateReaderOptions options = WithRegion("us");
    options.detector_max_side = 320;
    options.second_look_scale = scale;
    std::unique_ptr<PlateReader> reader = OpenOrNull(options);
    ASSERT_NE(reader, nullptr);
    std::vector<PlateRead> plates;
    ThreadStageStats().Reset();
    const Status s = reader->Read(image, &plates);
    ASSERT_TRUE(s.ok()) << s.ToString();
    if (scale == 0.0) {
      EXPECT_TRUE(plates.empty()) << plates[0].text;
      EXPECT_EQ(ThreadStageStats().detector_runs, 1);
    } else {
      ASSERT_FALSE(plates.empty());
      EXPECT_EQ(plates[0].text, "7KDT482");
      EXPECT_GE(Iou(plates[0].box, truth.box), 0.2);
      EXPECT_EQ(ThreadStageStats().detector_runs, 2);
      EXPECT_EQ(ThreadStageStats().detector_input_width, 640);  // the second pass's size
    }
  }
}

// An image the first pass reads costs no second look; one with nothing to read costs exactly
// one, and still reads nothing.
TEST(PlateReaderSecondLookTest, LooksAgainOnlyWhenNothingWasRead) {
  PlateReaderOptions options = WithRegion("us");
  options.detector_max_side = 320;
  options.second_look_scale = 2.0;
  std::unique_ptr<PlateReader> reader = OpenOrNull(options);
  ASSERT_NE(reader, nullptr);
  SynthSpec spec;
  spec.text = "7KDT482";
  spec.style = "us";
  spec.plate_width = 160;
  spec.noise_sigma = 2;
  spec.seed = 41;
  SynthTruth truth;
  const cv::Mat image = RenderVehicleScene(spec, &truth);
  std::vector<PlateRead> plates;
  ThreadStageStats().Reset();
  ASSERT_TRUE(reader->Read(image, &plates).ok());
  ASSERT_FALSE(plates.empty());
  EXPECT_EQ(plates[0].text, "7KDT482");
  EXPECT_EQ(ThreadStageStats().detector_runs, 1);

  const cv::Mat grey(480, 640, CV_8UC3, cv::Scalar(128, 128, 128));
  ThreadStageStats().Reset();
  ASSERT_TRUE(reader->Read(grey, &plates).ok());
  EXPECT_TRUE(plates.empty());
  EXPECT_EQ(ThreadStageStats().detector_runs, 2);
}

TEST_F(PlateReaderReadTest, BlankGreyImageHasNoPlate) {
  PlateReader* reader = AutoReader();
  ASSERT_NE(reader, nullptr);
  const cv::Mat grey(480, 640, CV_8UC3, cv::Scalar(128, 128, 128));
  std::vector<PlateRead> plates(1);  // stale content must be cleared
  const Status s = reader->Read(grey, &plates);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(plates.empty()) << plates.size() << " plates, first " << plates[0].text;
}

TEST_F(PlateReaderReadTest, RandomNoiseHasNoConfidentPlate) {
  PlateReader* reader = AutoReader();
  ASSERT_NE(reader, nullptr);
  cv::Mat noise(480, 640, CV_8UC3);
  cv::RNG rng(12345);
  rng.fill(noise, cv::RNG::UNIFORM, cv::Scalar::all(0), cv::Scalar::all(256));
  std::vector<PlateRead> plates;
  const Status s = reader->Read(noise, &plates);
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (const PlateRead& p : plates) EXPECT_LT(p.confidence, 0.5f) << p.text;
}

TEST_F(PlateReaderReadTest, ImagesThatAreNotBgr8AreInvalidArgument) {
  PlateReader* reader = AutoReader();
  ASSERT_NE(reader, nullptr);
  struct Case {
    const char* name;
    cv::Mat image;
  };
  const Case cases[] = {
      {"empty", cv::Mat()},
      {"empty 8UC3", cv::Mat(0, 0, CV_8UC3)},
      {"grey 8UC1", cv::Mat(480, 640, CV_8UC1, cv::Scalar(128))},
      {"BGRA 8UC4", cv::Mat(480, 640, CV_8UC4, cv::Scalar(128, 128, 128, 255))},
      {"float 32FC3", cv::Mat(480, 640, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5))},
      {"16-bit 16UC3", cv::Mat(480, 640, CV_16UC3, cv::Scalar(30000, 30000, 30000))},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<PlateRead> plates(2);
    const Status s = reader->Read(c.image, &plates);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
    EXPECT_TRUE(plates.empty());
  }
}

}  // namespace
}  // namespace portcullis::plate
