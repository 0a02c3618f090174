// End-to-end tests of the `portcullis` binary: the command line, the JSON Lines contract, the exit
// codes (a contract with scripts, see src/cli/exit_codes.h) and the batch, video and demo paths.
// Each test runs the real binary (PORTCULLIS_CLI_PATH) with the real models, so the inputs are
// kept few: one suite-wide directory of synthetic scenes, rendered once.

#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>  // mkdtemp
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "cli/exit_codes.h"
#include "cli_runner.h"
#include "portcullis/plate_synth.h"

namespace portcullis::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using portcullis::testing::JsonLines;
using portcullis::testing::MakeTempDir;
using portcullis::testing::ReadAll;
using portcullis::testing::RunCli;
using portcullis::testing::RunOptions;
using portcullis::testing::RunResult;
using portcullis::testing::WriteBytes;

// ---------------------------------------------------------------------------------------------
// Building inputs.

std::string EncodeImage(const std::string& ext, const cv::Mat& image) {
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes)) << ext;
  return {bytes.begin(), bytes.end()};
}

std::uint32_t Crc32(const std::string& bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (char ch : bytes) {
    crc ^= static_cast<unsigned char>(ch);
    for (int k = 0; k < 8; ++k) crc = (crc & 1u) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
  }
  return crc ^ 0xFFFFFFFFu;
}

void AppendBe32(std::string* out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xFFu));
  }
}

std::string PngChunk(const std::string& type, const std::string& data) {
  std::string chunk;
  AppendBe32(&chunk, static_cast<std::uint32_t>(data.size()));
  chunk += type;
  chunk += data;
  AppendBe32(&chunk, Crc32(type + data));
  return chunk;
}

// A valid-looking PNG header that claims 100000 x 100000 RGB pixels (a decompression bomb).
std::string PngBombHeader() {
  std::string ihdr;
  AppendBe32(&ihdr, 100000);                       // width
  AppendBe32(&ihdr, 100000);                       // height
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // depth 8, RGB, deflate, no filter, no interlace
  return std::string("\x89PNG\r\n\x1a\n", 8) + PngChunk("IHDR", ihdr) + PngChunk("IEND", "");
}

cv::Mat Scene(const std::string& style, const std::string& text, std::uint32_t seed,
              plate::SynthTruth* truth = nullptr, int width = 1280, int height = 720) {
  plate::SynthSpec spec;
  spec.text = text;
  spec.style = style;
  spec.plate_width = 260;
  spec.noise_sigma = 2;
  spec.image_width = width;
  spec.image_height = height;
  spec.seed = seed;
  return plate::RenderVehicleScene(spec, truth);
}

// Checks the JSON contract of one plate (README, "JSON output").
void ExpectPlateContract(const json& p) {
  ASSERT_TRUE(p.is_object()) << p.dump();
  for (const char* key :
       {"text", "confidence", "region", "format", "box", "polygon", "candidates"}) {
    ASSERT_TRUE(p.contains(key)) << key << " missing in " << p.dump();
  }
  ASSERT_TRUE(p["text"].is_string());
  ASSERT_TRUE(p["confidence"].is_number());
  EXPECT_GE(p["confidence"].get<double>(), 0.0);
  EXPECT_LE(p["confidence"].get<double>(), 1.0);
  EXPECT_TRUE(p["region"].is_string());
  EXPECT_TRUE(p["format"].is_string());
  ASSERT_TRUE(p["box"].is_array());
  ASSERT_EQ(p["box"].size(), 4u);
  for (const auto& v : p["box"]) EXPECT_TRUE(v.is_number_integer()) << p["box"].dump();
  EXPECT_GT(p["box"][2].get<int>(), 0);
  EXPECT_GT(p["box"][3].get<int>(), 0);
  ASSERT_TRUE(p["polygon"].is_array());
  ASSERT_EQ(p["polygon"].size(), 4u);
  for (const auto& pt : p["polygon"]) {
    ASSERT_TRUE(pt.is_array()) << pt.dump();
    ASSERT_EQ(pt.size(), 2u) << pt.dump();
    EXPECT_TRUE(pt[0].is_number());
    EXPECT_TRUE(pt[1].is_number());
  }
  ASSERT_TRUE(p["candidates"].is_array());
  ASSERT_FALSE(p["candidates"].empty());
  for (const auto& c : p["candidates"]) {
    ASSERT_TRUE(c.is_object()) << c.dump();
    ASSERT_TRUE(c.contains("text") && c["text"].is_string()) << c.dump();
    ASSERT_TRUE(c.contains("confidence") && c["confidence"].is_number()) << c.dump();
    ASSERT_TRUE(c.contains("format") && c["format"].is_string()) << c.dump();
    EXPECT_GE(c["confidence"].get<double>(), 0.0);
    EXPECT_LE(c["confidence"].get<double>(), 1.0);
  }
  EXPECT_EQ(p["candidates"][0]["text"], p["text"]);
}

// A successful image record: {"file", "plates", "error": null} and no "error_code".
void ExpectOkRecord(const json& record, const std::string& file) {
  ASSERT_TRUE(record.is_object());
  ASSERT_TRUE(record.contains("file") && record["file"].is_string()) << record.dump();
  EXPECT_EQ(record["file"].get<std::string>(), file);
  ASSERT_TRUE(record.contains("plates") && record["plates"].is_array()) << record.dump();
  ASSERT_TRUE(record.contains("error")) << record.dump();
  EXPECT_TRUE(record["error"].is_null()) << record.dump();
  EXPECT_FALSE(record.contains("error_code")) << record.dump();
  for (const auto& p : record["plates"]) ExpectPlateContract(p);
}

// A failed input's record: no plates, an error message and the error code's name.
void ExpectErrorRecord(const json& record, const std::string& file, const std::string& code) {
  ASSERT_TRUE(record.is_object());
  EXPECT_EQ(record.value("file", ""), file) << record.dump();
  ASSERT_TRUE(record.contains("plates") && record["plates"].is_array()) << record.dump();
  EXPECT_TRUE(record["plates"].empty()) << record.dump();
  ASSERT_TRUE(record.contains("error")) << record.dump();
  ASSERT_TRUE(record["error"].is_string()) << record.dump();
  EXPECT_FALSE(record["error"].get<std::string>().empty());
  ASSERT_TRUE(record.contains("error_code") && record["error_code"].is_string()) << record.dump();
  EXPECT_EQ(record["error_code"].get<std::string>(), code) << record.dump();
}

std::string FirstPlateText(const json& record) {
  if (!record.contains("plates") || !record["plates"].is_array() || record["plates"].empty()) {
    return "";
  }
  return record["plates"][0].value("text", "");
}

// ---------------------------------------------------------------------------------------------
// The suite: one directory of inputs, rendered once.

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(MakeTempDir());
    ASSERT_FALSE(root_->empty());
    // Two Mercosur-style scenes read with --region br; their truth is their file name.
    ASSERT_TRUE(
        WriteBytes(Path("br-BRA2E19.png"), EncodeImage(".png", Scene("br", "BRA2E19", 31))));
    ASSERT_TRUE(
        WriteBytes(Path("br-JQV5526.png"), EncodeImage(".png", Scene("br", "JQV5526", 32))));
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (root_ != nullptr && !root_->empty()) {
      fs::permissions(*root_, fs::perms::owner_all, fs::perm_options::add, ec);
      fs::remove_all(*root_, ec);
    }
    delete root_;
    root_ = nullptr;
  }

  static std::string Path(const std::string& name) { return *root_ + "/" + name; }

  // A fresh directory under the suite's root.
  static std::string Subdir(const std::string& name) {
    const std::string dir = Path(name);
    std::error_code ec;
    fs::create_directories(dir, ec);
    EXPECT_FALSE(ec) << dir << ": " << ec.message();
    return dir;
  }

  static void Copy(const std::string& from, const std::string& to) {
    std::error_code ec;
    fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
    ASSERT_FALSE(ec) << from << " -> " << to << ": " << ec.message();
  }

  static std::string* root_;
};

std::string* CliTest::root_ = nullptr;

// Writes each of the bad inputs into dir; returns {file name, exit code, error_code}.
struct BadInput {
  std::string name;
  int exit_code;
  std::string error_code;
};

std::vector<BadInput> WriteBadInputs(const std::string& dir) {
  const cv::Mat scene = Scene("br", "BRA2E19", 33);
  const std::string jpeg = EncodeImage(".jpg", scene);
  EXPECT_TRUE(WriteBytes(dir + "/b-empty.jpg", ""));
  EXPECT_TRUE(WriteBytes(dir + "/c-text.png", "this is not an image, only some words\n"));
  EXPECT_TRUE(WriteBytes(dir + "/d-truncated.jpg", jpeg.substr(0, jpeg.size() / 2)));
  EXPECT_TRUE(WriteBytes(dir + "/e-bomb.png", PngBombHeader()));
  EXPECT_TRUE(
      WriteBytes(dir + "/f-tiny.png", EncodeImage(".png", cv::Mat(1, 1, CV_8UC3, cv::Scalar(9)))));
  return {
      {"b-empty.jpg", kExitBadImage, "invalid_image"},
      {"c-text.png", kExitNotAnImage, "not_an_image"},
      {"d-truncated.jpg", kExitCorrupt, "corrupt"},
      {"e-bomb.png", kExitTooLarge, "too_large"},
      {"f-tiny.png", kExitBadImage, "invalid_image"},
  };
}

// ---------------------------------------------------------------------------------------------
// Command line.

TEST_F(CliTest, VersionAndHelpExitZero) {
  const RunResult version = RunCli({"--version"});
  EXPECT_EQ(version.exit_code, kExitOk) << version;
  EXPECT_NE(version.out.find("0.1.0"), std::string::npos) << version;
  // A CPU this OpenBLAS does not know gets kernels chosen from its features rather than the
  // generic "Prescott" ones (src/common/blas_threads.h); a user's OPENBLAS_CORETYPE is kept.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    EXPECT_EQ(version.out.find("Prescott"), std::string::npos) << version;
  }
  RunOptions user_choice;
  user_choice.env = {{"OPENBLAS_CORETYPE", "Prescott"}};
  const RunResult chosen = RunCli({"--version"}, user_choice);
  EXPECT_EQ(chosen.exit_code, kExitOk) << chosen;
  EXPECT_NE(chosen.out.find("OpenBLAS kernels: Prescott"), std::string::npos) << chosen;

  const RunResult help = RunCli({"--help"});
  EXPECT_EQ(help.exit_code, kExitOk) << help;
  EXPECT_NE(help.out.find("plate"), std::string::npos) << help;

  const RunResult read_help = RunCli({"plate", "read", "--help"});
  EXPECT_EQ(read_help.exit_code, kExitOk) << read_help;
  EXPECT_NE(read_help.out.find("--region"), std::string::npos) << read_help;
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  const std::string image = Path("br-BRA2E19.png");
  const std::vector<std::vector<std::string>> cases = {
      {},                                                 // no subcommand
      {"plate"},                                          // no plate subcommand
      {"plate", "read"},                                  // missing input
      {"plate", "read", image, "--bogus"},                // unknown flag
      {"frobnicate"},                                     // unknown subcommand
      {"plate", "read", image, "--region", "xx"},         // unknown region
      {"plate", "read", image, "--top", "0"},             // out of range
      {"plate", "read", image, "--stride", "0"},          // out of range
      {"plate", "read", image, "--max-plates", "many"},   // not a number
      {"plate", "read", image, "--detector-size", "10"},  // out of range
      {"plate", "read", image, "--second-look", "1"},     // neither 0 nor in (1, 4]
      {"plate", "read", image, "--second-look", "2x"},    // not a number
  };
  for (const auto& args : cases) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    SCOPED_TRACE(joined);
    const RunResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, kExitUsage) << r;
    EXPECT_TRUE(r.out.empty() || r.out.find('{') == std::string::npos) << r;
  }
  const RunResult region = RunCli({"plate", "read", image, "--region", "xx"});
  EXPECT_NE(region.err.find("xx"), std::string::npos) << region;
  EXPECT_NE(region.err.find("br"), std::string::npos) << region;
}

TEST_F(CliTest, MissingModelsExitThree) {
  RunOptions options;
  options.env = {{"PORTCULLIS_MODEL_DIR", "/nonexistent-portcullis-models"}};
  const RunResult r = RunCli({"plate", "read", Path("br-BRA2E19.png"), "--json"}, options);
  EXPECT_EQ(r.exit_code, kExitSetup) << r;
  EXPECT_NE(r.err.find("install.sh"), std::string::npos) << r;
  EXPECT_TRUE(r.out.empty()) << r;
}

// ---------------------------------------------------------------------------------------------
// One image, JSON.

TEST_F(CliTest, JsonReadOfOneImageFollowsTheContract) {
  const std::string image = Path("br-BRA2E19.png");
  const RunResult r = RunCli({"plate", "read", image, "--json", "--region", "br"});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  const std::vector<json> records = JsonLines(r);
  ASSERT_EQ(records.size(), 1u) << r;
  const json& record = records[0];
  ASSERT_NO_FATAL_FAILURE(ExpectOkRecord(record, image));
  ASSERT_FALSE(record["plates"].empty()) << record.dump();
  const json& p = record["plates"][0];
  EXPECT_EQ(p["text"], "BRA2E19");
  EXPECT_EQ(p["region"], "br");
  EXPECT_EQ(p["format"], "mercosur");
  EXPECT_GT(p["confidence"].get<double>(), 0.5);
  EXPECT_LE(p["candidates"].size(), 5u);  // --top defaults to 5
  // No "frame"/"time_ms" on an image record.
  EXPECT_FALSE(record.contains("frame")) << record.dump();
  EXPECT_FALSE(record.contains("time_ms")) << record.dump();
}

// The decoder's conversions: grey, RGBA and 16-bit PNGs are read like the colour original.
TEST_F(CliTest, GreyRgbaAndSixteenBitPngsRead) {
  const cv::Mat scene = Scene("br", "JQV5526", 34);
  cv::Mat grey;
  cv::cvtColor(scene, grey, cv::COLOR_BGR2GRAY);
  cv::Mat rgba;
  cv::cvtColor(scene, rgba, cv::COLOR_BGR2BGRA);
  // A transparent band along the top: composited over white, away from the plate.
  rgba(cv::Rect(0, 0, rgba.cols, 40)).setTo(cv::Scalar(0, 0, 0, 0));
  cv::Mat sixteen;
  scene.convertTo(sixteen, CV_16UC3, 257.0);
  const std::vector<std::pair<std::string, cv::Mat>> cases = {
      {"grey.png", grey}, {"rgba.png", rgba}, {"sixteen.png", sixteen}};
  for (const auto& [name, image] : cases) {
    SCOPED_TRACE(name);
    const std::string path = Path(name);
    ASSERT_TRUE(WriteBytes(path, EncodeImage(".png", image)));
    const RunResult r = RunCli({"plate", "read", path, "--json", "--region", "br"});
    EXPECT_EQ(r.exit_code, kExitOk) << r;
    const std::vector<json> records = JsonLines(r);
    ASSERT_EQ(records.size(), 1u) << r;
    ExpectOkRecord(records[0], path);
    EXPECT_EQ(FirstPlateText(records[0]), "JQV5526") << records[0].dump();
  }
}

// ---------------------------------------------------------------------------------------------
// Bad inputs, one at a time: each has its own exit code.

TEST_F(CliTest, EachBadInputAloneHasItsOwnExitCode) {
  const std::string dir = Subdir("bad-singles");
  // The missing file goes first: it costs only the start-up (loading the models), which is the
  // baseline for the bomb's "refused quickly" (start-up alone is several seconds under ASan).
  std::vector<BadInput> cases = {{"no-such-file.png", kExitNotFound, "not_found"}};
  for (BadInput& c : WriteBadInputs(dir)) cases.push_back(std::move(c));
  double startup_seconds = -1;
  for (const BadInput& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir + "/" + c.name;
    const RunResult r = RunCli({"plate", "read", path, "--json"});
    EXPECT_EQ(r.exit_code, c.exit_code) << r;
    EXPECT_FALSE(r.signalled) << r;
    const std::vector<json> records = JsonLines(r);
    ASSERT_EQ(records.size(), 1u) << r;
    ExpectErrorRecord(records[0], path, c.error_code);
    EXPECT_NE(r.err.find(path), std::string::npos) << "stderr should list the failed input\n" << r;
    if (c.name == "no-such-file.png") startup_seconds = r.seconds;
    if (c.name == "e-bomb.png") {
      ASSERT_GE(startup_seconds, 0);
      EXPECT_LT(r.seconds, startup_seconds + 5.0)
          << "a decompression bomb must be refused from its header, not decoded";
    }
  }
}

TEST_F(CliTest, HumanOutputOfABadInputNamesFileAndError) {
  const std::string path = Path("no-such-file.jpg");
  const RunResult r = RunCli({"plate", "read", path});
  EXPECT_EQ(r.exit_code, kExitNotFound) << r;
  EXPECT_NE(r.out.find(path), std::string::npos) << r;
  EXPECT_NE(r.out.find("error"), std::string::npos) << r;
}

// A directory that cannot be listed. Root ignores permission bits, so as root the binary runs as
// nobody (uid 65534); the suite's directories are opened up enough for it to reach the models.
TEST_F(CliTest, UnreadableDirectoryExitsEleven) {
  const std::string parent = MakeTempDir();
  ASSERT_FALSE(parent.empty());
  const std::string locked = parent + "/locked";
  struct Cleanup {
    std::string parent, locked;
    ~Cleanup() {
      ::chmod(locked.c_str(), 0755);
      std::error_code ec;
      fs::remove_all(parent, ec);
    }
  } cleanup{parent, locked};
  ASSERT_EQ(::mkdir(locked.c_str(), 0755), 0) << std::strerror(errno);
  ASSERT_TRUE(WriteBytes(locked + "/inside.png", ReadAll(Path("br-BRA2E19.png"))));
  ASSERT_EQ(::chmod(parent.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(locked.c_str(), 0), 0);

  RunOptions options;
  options.as_nobody = true;
  const RunResult r = RunCli({"plate", "read", locked, "--json"}, options);
  EXPECT_EQ(r.exit_code, kExitUnreadable) << r;
  const std::vector<json> records = JsonLines(r);
  ASSERT_EQ(records.size(), 1u) << r;
  ExpectErrorRecord(records[0], locked, "unreadable");
}

TEST_F(CliTest, DirectoryWithoutImagesIsSuccessWithNoOutput) {
  const std::string dir = Subdir("no-images");
  ASSERT_TRUE(WriteBytes(dir + "/notes.txt", "no images here\n"));
  ASSERT_TRUE(WriteBytes(dir + "/data.json", "{}\n"));
  for (bool as_json : {true, false}) {
    SCOPED_TRACE(as_json ? "json" : "human");
    std::vector<std::string> args = {"plate", "read", dir};
    if (as_json) args.emplace_back("--json");
    const RunResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, kExitOk) << r;
    EXPECT_TRUE(r.out.empty()) << r;
  }
}

// ---------------------------------------------------------------------------------------------
// Batches.

TEST_F(CliTest, BatchReportsEveryInputInOrderAndContinuesAfterFailures) {
  const std::string dir = Subdir("batch");
  Copy(Path("br-BRA2E19.png"), dir + "/a-BRA2E19.png");
  Copy(Path("br-JQV5526.png"), dir + "/g-JQV5526.png");
  const std::vector<BadInput> bad = WriteBadInputs(dir);
  // A directory whose name looks like an image: listed, then refused as unreadable.
  ASSERT_EQ(::mkdir((dir + "/h-subdir.jpg").c_str(), 0755), 0);
  // A dangling symlink: listed, then not found.
  ASSERT_EQ(::symlink((dir + "/gone.png").c_str(), (dir + "/i-dangling.png").c_str()), 0);
  // Not an image or video by name: skipped, no record.
  ASSERT_TRUE(WriteBytes(dir + "/notes.txt", "skip me\n"));

  const RunResult r = RunCli({"plate", "read", dir, "--json", "--region", "br"});
  EXPECT_EQ(r.exit_code, kExitMixed) << r;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << "progress bar drawn on a non-terminal\n" << r;
  const std::vector<json> records = JsonLines(r);
  ASSERT_EQ(records.size(), 9u) << r;

  // Sorted by file name: a, b, c, d, e, f (the bad ones), g, h, i.
  ExpectOkRecord(records[0], dir + "/a-BRA2E19.png");
  EXPECT_EQ(FirstPlateText(records[0]), "BRA2E19") << records[0].dump();
  for (std::size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(bad[i].name);
    ExpectErrorRecord(records[1 + i], dir + "/" + bad[i].name, bad[i].error_code);
  }
  ExpectOkRecord(records[6], dir + "/g-JQV5526.png");
  EXPECT_EQ(FirstPlateText(records[6]), "JQV5526") << records[6].dump();
  ExpectErrorRecord(records[7], dir + "/h-subdir.jpg", "unreadable");
  ExpectErrorRecord(records[8], dir + "/i-dangling.png", "not_found");

  // stderr lists the failures: 7 of 9.
  EXPECT_NE(r.err.find("7 of 9"), std::string::npos) << r;
  EXPECT_EQ(r.err.find("a-BRA2E19.png"), std::string::npos) << r;
}

TEST_F(CliTest, BatchWhoseFailuresShareACodeExitsWithThatCode) {
  const std::string dir = Subdir("same-kind");
  const std::vector<BadInput> bad = WriteBadInputs(dir);
  {
    // Two missing files: 10.
    const RunResult r = RunCli({"plate", "read", dir + "/missing-1.png", dir + "/missing-2.jpg"});
    EXPECT_EQ(r.exit_code, kExitNotFound) << r;
    EXPECT_NE(r.out.find("missing-1.png"), std::string::npos) << r;
    EXPECT_NE(r.out.find("missing-2.jpg"), std::string::npos) << r;
  }
  {
    // An empty file and a 1x1 image: different messages, the same code 15.
    const RunResult r =
        RunCli({"plate", "read", dir + "/b-empty.jpg", dir + "/f-tiny.png", "--json"});
    EXPECT_EQ(r.exit_code, kExitBadImage) << r;
    const std::vector<json> records = JsonLines(r);
    ASSERT_EQ(records.size(), 2u) << r;
    ExpectErrorRecord(records[0], dir + "/b-empty.jpg", "invalid_image");
    ExpectErrorRecord(records[1], dir + "/f-tiny.png", "invalid_image");
  }
  {
    // A missing file and a corrupt one: mixed, 19.
    const RunResult r = RunCli({"plate", "read", dir + "/missing.png", dir + "/d-truncated.jpg"});
    EXPECT_EQ(r.exit_code, kExitMixed) << r;
  }
}

// Human output on a batch: plate text and file name on stdout, no progress bar on a non-terminal.
TEST_F(CliTest, HumanOutputNamesFilesAndPlatesWithoutProgressBar) {
  const std::string a = Path("br-BRA2E19.png");
  const std::string b = Path("br-JQV5526.png");
  const RunResult r = RunCli({"plate", "read", a, b, "--region", "br"});
  EXPECT_EQ(r.exit_code, kExitOk) << r;
  EXPECT_NE(r.out.find(a + ": BRA2E19"), std::string::npos) << r;
  EXPECT_NE(r.out.find(b + ": JQV5526"), std::string::npos) << r;
  EXPECT_EQ(r.out.find('{'), std::string::npos) << "JSON without --json\n" << r;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << "progress bar drawn on a non-terminal\n" << r;
  EXPECT_EQ(r.err.find("\x1b["), std::string::npos) << "terminal escapes on a non-terminal\n" << r;
}

// ---------------------------------------------------------------------------------------------
// Video.

class CliVideoTest : public CliTest {
 protected:
  static constexpr int kFrames = 12;
  static constexpr double kFps = 10;
  static constexpr int kStride = 3;

  // 12 frames of one US-style car moving 4 px right per frame.
  static std::string WriteVideo(const std::string& path) {
    const cv::Mat scene = Scene("us", "7KDT482", 41, nullptr, 960, 540);
    cv::VideoWriter writer(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), kFps, scene.size());
    EXPECT_TRUE(writer.isOpened()) << path;
    for (int i = 0; i < kFrames; ++i) {
      const cv::Mat shift = (cv::Mat_<double>(2, 3) << 1, 0, 4 * i, 0, 1, 0);
      cv::Mat frame;
      cv::warpAffine(scene, frame, shift, scene.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
      writer.write(frame);
    }
    writer.release();
    return path;
  }
};

TEST_F(CliVideoTest, OnePassRecordPerVehicle) {
  const std::string video = WriteVideo(Path("lane.avi"));
  const RunResult r = RunCli(
      {"plate", "read", video, "--json", "--region", "us", "--stride", std::to_string(kStride)});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  const std::vector<json> records = JsonLines(r);
  ASSERT_EQ(records.size(), 1u) << "one vehicle, one pass record\n" << r;
  const json& pass = records[0];
  ASSERT_NO_FATAL_FAILURE(ExpectOkRecord(pass, video));
  ASSERT_EQ(pass["plates"].size(), 1u) << pass.dump();
  EXPECT_EQ(FirstPlateText(pass), "7KDT482") << pass.dump();
  EXPECT_EQ(pass["plates"][0]["region"], "us");
  for (const char* key : {"frame", "time_ms", "first_frame", "last_frame", "frames_seen"}) {
    ASSERT_TRUE(pass.contains(key) && pass[key].is_number()) << key << " in " << pass.dump();
  }
  const auto frame = pass["frame"].get<std::int64_t>();
  EXPECT_EQ(frame % kStride, 0) << pass.dump();
  EXPECT_GE(frame, pass["first_frame"].get<std::int64_t>());
  EXPECT_LE(frame, pass["last_frame"].get<std::int64_t>());
  EXPECT_EQ(pass["first_frame"].get<std::int64_t>(), 0);
  EXPECT_EQ(pass["last_frame"].get<std::int64_t>(), 9);  // frames 0, 3, 6, 9 are analysed
  EXPECT_EQ(pass["frames_seen"].get<int>(), 4);
  EXPECT_NEAR(pass["time_ms"].get<double>(), static_cast<double>(frame) * 1000.0 / kFps, 1.0);
}

TEST_F(CliVideoTest, TruncatedVideoReportsWhatItReadAndSucceeds) {
  const std::string full = WriteVideo(Path("full.avi"));
  const std::string bytes = ReadAll(full);
  ASSERT_GT(bytes.size(), 1000u);
  const std::string cut = Path("cut.avi");
  ASSERT_TRUE(WriteBytes(cut, bytes.substr(0, bytes.size() / 2)));
  const RunResult r = RunCli(
      {"plate", "read", cut, "--json", "--region", "us", "--stride", std::to_string(kStride)});
  EXPECT_FALSE(r.signalled) << r;
  // A stream that ends early ends the read (ReadVideo's contract): the frames before the cut
  // still make their pass, and the input counts as read.
  EXPECT_EQ(r.exit_code, kExitOk) << r;
  const std::vector<json> records = JsonLines(r);
  ASSERT_LE(records.size(), 1u) << r;
  ASSERT_EQ(records.size(), 1u) << r;
  ExpectOkRecord(records[0], cut);
  EXPECT_EQ(FirstPlateText(records[0]), "7KDT482") << records[0].dump();
  EXPECT_LT(records[0].value("last_frame", std::int64_t{99}), kFrames - 1) << records[0].dump();
}

// ---------------------------------------------------------------------------------------------
// Demo.

TEST_F(CliTest, DemoWritesSixScenesAndReadsThemAll) {
  const std::string out = Path("demo-out");  // does not exist yet: the demo creates it
  const RunResult r = RunCli({"plate", "demo", "--out", out});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  EXPECT_NE(r.out.find("6 of 6 plates read exactly"), std::string::npos) << r;
  EXPECT_EQ(r.out.find("MISREAD"), std::string::npos) << r;
  std::set<std::string> pngs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(out, ec)) {
    const std::string name = entry.path().filename().string();
    EXPECT_NE(name[0], '.') << "temporary file left behind: " << name;
    if (entry.path().extension() == ".png") {
      pngs.insert(name);
      const cv::Mat image = cv::imread(entry.path().string(), cv::IMREAD_COLOR);
      EXPECT_FALSE(image.empty()) << name;
    }
  }
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(pngs.size(), 6u);
  EXPECT_EQ(pngs.count("br-BRA2E19.png"), 1u);
  EXPECT_EQ(pngs.count("us-7KDT482.png"), 1u);
}

}  // namespace
}  // namespace portcullis::cli
