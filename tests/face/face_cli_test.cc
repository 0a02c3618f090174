// End-to-end tests of `portcullis face verify` and `portcullis face eval`: the JSON contracts,
// the exit codes, and "match, don't store" (a verify batch writes nothing anywhere it could).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cli/exit_codes.h"
#include "cli_runner.h"

namespace portcullis::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kJohns = "/usr/share/doc/libdlib19.1/examples/johns";
const std::string kSalley1 = kJohns + "/John_Salley/000179_02159509.jpg";
const std::string kSalley2 = kJohns + "/John_Salley/000183_02159543.jpg";
const std::string kSimm = kJohns + "/John_Simm/000288_00470387.jpg";

using Result = portcullis::testing::RunResult;

// Runs the CLI with extra environment variables and an optional working directory.
Result RunCli(const std::vector<std::string>& args,
              const std::vector<std::pair<std::string, std::string>>& env = {},
              const std::string& cwd = "") {
  portcullis::testing::RunOptions options;
  options.env = env;
  options.cwd = cwd;
  return portcullis::testing::RunCli(args, options);
}

json OneRecord(const Result& r) {
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out << r.err;
  return json::parse(r.out);
}

class FaceCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kSalley1)) << "libdlib19.1's example chips are missing";
    dir_ = fs::temp_directory_path() /
           ("pc_face_cli_data_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(FaceCliTest, VerifySamePersonJsonContract) {
  const Result r = RunCli({"face", "verify", "--json", kSalley1, kSalley2});
  EXPECT_EQ(r.exit_code, kExitOk) << r.err;
  const json j = OneRecord(r);
  EXPECT_EQ(j["a"], kSalley1);
  EXPECT_EQ(j["b"], kSalley2);
  ASSERT_TRUE(j["distance"].is_number());
  EXPECT_LT(j["distance"].get<double>(), 0.6);
  EXPECT_GT(j["similarity"].get<double>(), 0.5);
  EXPECT_LE(j["similarity"].get<double>(), 1.0);
  EXPECT_EQ(j["match"], true);
  EXPECT_DOUBLE_EQ(j["threshold"].get<double>(), 0.6);
  EXPECT_TRUE(j["error"].is_null());
  EXPECT_EQ(j["quality_a"]["issue"], "none");
  EXPECT_TRUE(j["quality_b"]["inter_eye_px"].is_number());
}

TEST_F(FaceCliTest, VerifyDifferentPersonsAndThresholdFlag) {
  Result r = RunCli({"face", "verify", "--json", kSalley1, kSimm});
  EXPECT_EQ(r.exit_code, kExitNoMatch) << r.err;
  json j = OneRecord(r);
  EXPECT_EQ(j["match"], false);
  EXPECT_GT(j["distance"].get<double>(), 0.6);
  EXPECT_LT(j["similarity"].get<double>(), 0.5);
  // A looser operating point turns the same distance into a match.
  r = RunCli({"face", "verify", "--json", "--threshold", "1.5", kSalley1, kSimm});
  EXPECT_EQ(r.exit_code, kExitOk);
  j = OneRecord(r);
  EXPECT_EQ(j["match"], true);
  EXPECT_DOUBLE_EQ(j["threshold"].get<double>(), 1.5);
  EXPECT_EQ(RunCli({"face", "verify", "--threshold", "abc", kSalley1, kSimm}).exit_code,
            kExitUsage);
  // --min-face: faces smaller than N px are not looked for (these chips' faces are ~150 px), and
  // the flag is bounded.
  r = RunCli({"face", "verify", "--json", "--min-face", "1000", kSalley1, kSalley2});
  EXPECT_EQ(r.exit_code, kExitFaceQuality) << r.err;
  EXPECT_EQ(OneRecord(r)["issue"], "no_face");
  EXPECT_EQ(RunCli({"face", "verify", "--min-face", "5000", kSalley1, kSalley2}).exit_code,
            kExitUsage);
  EXPECT_EQ(RunCli({"face", "verify", "--min-face", "60", kSalley1, kSalley2}).exit_code, kExitOk);
  // Human output.
  r = RunCli({"face", "verify", kSalley1, kSalley2});
  EXPECT_EQ(r.exit_code, kExitOk);
  EXPECT_NE(r.out.find("MATCH"), std::string::npos);
}

TEST_F(FaceCliTest, VerifyRefusalsHaveDistinctCodes) {
  const std::string blank = (dir_ / "blank.png").string();
  cv::imwrite(blank, cv::Mat(200, 200, CV_8UC3, cv::Scalar(128, 128, 128)));
  Result r = RunCli({"face", "verify", "--json", kSalley1, blank});
  EXPECT_EQ(r.exit_code, kExitFaceQuality);
  json j = OneRecord(r);
  EXPECT_EQ(j["error_code"], "quality");
  EXPECT_EQ(j["issue"], "no_face");
  EXPECT_EQ(j["side"], "b");
  EXPECT_TRUE(j["match"].is_null());
  EXPECT_TRUE(j["error"].is_string());

  r = RunCli({"face", "verify", "--json", (dir_ / "missing.jpg").string(), kSalley1});
  EXPECT_EQ(r.exit_code, kExitNotFound);
  j = OneRecord(r);
  EXPECT_EQ(j["error_code"], "not_found");
  EXPECT_EQ(j["side"], "a");

  // A JPEG cut in half.
  std::ifstream in(kSalley1, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const std::string cut = (dir_ / "cut.jpg").string();
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  r = RunCli({"face", "verify", "--json", kSalley1, cut});
  EXPECT_EQ(r.exit_code, kExitCorrupt) << r.out;
  EXPECT_EQ(OneRecord(r)["error_code"], "corrupt");

  const std::string text = (dir_ / "notes.jpg").string();
  std::ofstream(text) << "not an image at all";
  r = RunCli({"face", "verify", "--json", text, kSalley1});
  EXPECT_EQ(r.exit_code, kExitNotAnImage);
  EXPECT_EQ(OneRecord(r)["error_code"], "not_an_image");

  // Missing weights: a setup error, not a crash.
  r = RunCli({"face", "verify", "--json", kSalley1, kSalley2},
             {{"PORTCULLIS_MODEL_DIR", dir_.string()}});
  EXPECT_EQ(r.exit_code, kExitSetup);
  EXPECT_NE(r.err.find("install"), std::string::npos);
}

TEST_F(FaceCliTest, VerifyBatchWritesNothing) {
  // "Match, don't store": HOME, TMPDIR and the working directory are empty directories, and stay
  // empty after a batch of verifications (matches, non-matches and refusals).
  const fs::path home = dir_ / "home";
  const fs::path tmp = dir_ / "tmp";
  const fs::path cwd = dir_ / "cwd";
  for (const auto& d : {home, tmp, cwd}) fs::create_directories(d);
  const std::vector<std::pair<std::string, std::string>> env = {
      {"HOME", home.string()},
      {"TMPDIR", tmp.string()},
      {"XDG_CACHE_HOME", (home / ".cache").string()}};
  const std::vector<std::vector<std::string>> batch = {
      {"face", "verify", "--json", kSalley1, kSalley2},
      {"face", "verify", "--json", kSalley1, kSimm},
      {"face", "verify", kSalley2, kSimm},
      {"face", "verify", "--json", kSalley1, "/nonexistent.jpg"}};
  for (const auto& args : batch) {
    const Result r = RunCli(args, env, cwd.string());
    EXPECT_NE(r.exit_code, kExitInternal) << r.err;
    EXPECT_NE(r.exit_code, 127) << "could not start the CLI";
  }
  for (const auto& d : {home, tmp, cwd}) {
    EXPECT_TRUE(fs::is_empty(d)) << d << " was written to";
  }
}

TEST_F(FaceCliTest, EvalOnAGeneratedFolderPerPersonSet) {
  // 3 people x 3 chips (copied from the johns) + 1 person with a single image (a non-mated probe).
  const fs::path people = dir_ / "people";
  const char* names[] = {"John_Salley", "John_Savage", "John_Schneider", "John_Simm"};
  for (int p = 0; p < 4; ++p) {
    fs::create_directories(people / names[p]);
    std::vector<fs::path> files;
    for (const auto& f : fs::directory_iterator(kJohns + "/" + names[p])) files.push_back(f.path());
    std::sort(files.begin(), files.end());
    const int n = p == 3 ? 1 : 3;
    for (int i = 0; i < n; ++i) {
      char name[64];
      std::snprintf(name, sizeof(name), "%s_%04d.jpg", names[p], i + 1);
      fs::copy_file(files[static_cast<std::size_t>(i)], people / names[p] / name);
    }
  }
  const std::string plot = (dir_ / "roc.png").string();
  Result r = RunCli({"face", "eval", "--people", people.string(), "--json", "--plot", plot});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  const json j = OneRecord(r);
  EXPECT_EQ(j["genuine_pairs"], 9);   // 3 per person with 3 images
  EXPECT_EQ(j["impostor_pairs"], 9);  // as many, seeded
  EXPECT_EQ(j["pairs_unscored"], 0);
  EXPECT_EQ(j["images"], 10);
  EXPECT_EQ(j["failures_to_enrol"], 0);
  EXPECT_GE(j["accuracy"].get<double>(), 0.9);
  EXPECT_DOUBLE_EQ(j["accuracy_at_default_threshold"].get<double>(), 1.0);
  ASSERT_EQ(j["roc"].size(), 4u);
  EXPECT_TRUE(j["roc"][1]["tar"].is_number());
  EXPECT_EQ(j["identification"]["gallery"], 3);
  EXPECT_EQ(j["identification"]["mated_probes"], 6);
  EXPECT_EQ(j["identification"]["non_mated_probes"], 1);
  EXPECT_DOUBLE_EQ(j["identification"]["rank1"].get<double>(), 1.0);
  EXPECT_EQ(j["plot"], plot);
  const cv::Mat png = cv::imread(plot);
  EXPECT_FALSE(png.empty());

  // Embedding on several threads (one engine each) scores every pair exactly as one thread does.
  const std::string scores1 = (dir_ / "scores1.tsv").string();
  const std::string scores3 = (dir_ / "scores3.tsv").string();
  r = RunCli({"face", "eval", "--people", people.string(), "--json", "--threads", "1", "--scores",
              scores1});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  const json one = OneRecord(r);
  r = RunCli({"face", "eval", "--people", people.string(), "--json", "--threads", "3", "--scores",
              scores3});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  const json three = OneRecord(r);
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_FALSE(slurp(scores1).empty());
  EXPECT_EQ(slurp(scores1), slurp(scores3));
  EXPECT_EQ(one["images"], 10);
  EXPECT_EQ(one["accuracy"], three["accuracy"]);
  EXPECT_EQ(one["identification"], three["identification"]);
  EXPECT_EQ(RunCli({"face", "eval", "--people", people.string(), "--threads", "-1"}).exit_code,
            kExitUsage);

  // LFW pairs format, with a fold header and one pair of each kind.
  const std::string pairs = (dir_ / "pairs.txt").string();
  std::ofstream(pairs) << "1\t1\nJohn_Salley\t1\t2\nJohn_Salley\t1\tJohn_Simm\t1\n";
  r = RunCli({"face", "eval", "--people", people.string(), "--pairs", pairs, "--json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  const json k = OneRecord(r);
  EXPECT_EQ(k["genuine_pairs"], 1);
  EXPECT_EQ(k["impostor_pairs"], 1);

  // --pairs-only embeds just the pairs' images and skips 1:N; --list-errors names on stderr each
  // pair misclassified at the cross-validated threshold. The third pair repeats the genuine one
  // labelled as different persons, so at any threshold exactly one of the two is an error.
  std::ofstream(pairs) << "John_Salley\t1\t2\nJohn_Salley\t1\tJohn_Simm\t1\n"
                          "John_Salley\t1\tJohn_Salley\t2\n";
  r = RunCli({"face", "eval", "--people", people.string(), "--pairs", pairs, "--json",
              "--pairs-only", "--list-errors"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  const json q = OneRecord(r);
  EXPECT_EQ(q["images"], 3);
  EXPECT_EQ(q["identification"]["gallery"], 0);
  EXPECT_EQ(q["identification"]["mated_probes"], 0);
  const auto errors = std::count(r.err.begin(), r.err.end(), '\n');
  EXPECT_EQ(errors, 1) << r.err;
  EXPECT_NE(r.err.find("John_Salley_0002.jpg"), std::string::npos) << r.err;
  EXPECT_TRUE(r.err.rfind("false match: ", 0) == 0 || r.err.rfind("false non-match: ", 0) == 0)
      << r.err;

  // Engine options: jitter is bounded (each jitter is a network pass).
  EXPECT_EQ(RunCli({"face", "eval", "--people", people.string(), "--jitter", "101"}).exit_code,
            kExitUsage);

  std::ofstream(pairs) << "John_Salley\tone\ttwo\n";
  EXPECT_EQ(RunCli({"face", "eval", "--people", people.string(), "--pairs", pairs}).exit_code,
            kExitUsage);
  EXPECT_EQ(RunCli({"face", "eval", "--people", (dir_ / "none").string()}).exit_code,
            kExitNotFound);
}

TEST_F(FaceCliTest, EnrolThenIdentifyFollowTheContract) {
  const std::string gallery = (dir_ / "flight.pcgl").string();
  Result r = RunCli({"face", "enrol", "--json", "--gallery", gallery, "--id", "SALLEY", "--id",
                     "SIMM", kSalley1, kSimm});
  ASSERT_EQ(r.exit_code, kExitOk) << r.out << r.err;
  std::vector<json> lines = portcullis::testing::JsonLines(r);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["id"], "SALLEY");
  EXPECT_EQ(lines[0]["enrolled"], true);
  EXPECT_EQ(lines[1]["gallery_size"], 2);
  EXPECT_TRUE(lines[1]["error"].is_null());

  // The same traveller again: refused, the gallery unchanged.
  r = RunCli({"face", "enrol", "--json", "--gallery", gallery, "--id", "SALLEY", kSalley2});
  EXPECT_EQ(r.exit_code, kExitUsage) << r.out << r.err;
  lines = portcullis::testing::JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["error_code"], "already_enrolled");

  // A second photo of Salley is identified as Salley; the probe is not added to the gallery.
  r = RunCli({"face", "identify", "--json", "--gallery", gallery, kSalley2});
  ASSERT_EQ(r.exit_code, kExitOk) << r.out << r.err;
  lines = portcullis::testing::JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_TRUE(lines[0]["match"].is_object()) << lines[0].dump();
  EXPECT_EQ(lines[0]["match"]["id"], "SALLEY");
  ASSERT_EQ(lines[0]["candidates"].size(), 2u);
  EXPECT_EQ(lines[0]["candidates"][1]["id"], "SIMM");
  EXPECT_EQ(lines[0]["candidates"][1]["match"], false);
  r = RunCli({"face", "enrol", "--json", "--gallery", gallery, "--id", "X", kSalley2});
  lines = portcullis::testing::JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["gallery_size"], 3) << "identify must not have changed the gallery";
}

TEST_F(FaceCliTest, IdentifyRefusesMissingOrCorruptGalleriesAndBadCaptures) {
  const std::string gallery = (dir_ / "g.pcgl").string();
  Result r = RunCli({"face", "identify", "--json", "--gallery", gallery, kSalley1});
  EXPECT_EQ(r.exit_code, kExitNotFound) << r.out << r.err;
  { std::ofstream(gallery) << "not a gallery"; }
  r = RunCli({"face", "identify", "--json", "--gallery", gallery, kSalley1});
  EXPECT_NE(r.exit_code, kExitOk) << r.out << r.err;
  EXPECT_NE(r.exit_code, kExitInternal) << r.out << r.err;
  r = RunCli({"face", "enrol", "--gallery", gallery, kSalley1});
  EXPECT_NE(r.exit_code, kExitOk) << "a corrupt gallery must never be replaced";
  EXPECT_EQ(portcullis::testing::ReadAll(gallery), "not a gallery");

  const std::string fresh = (dir_ / "fresh.pcgl").string();
  ASSERT_EQ(RunCli({"face", "enrol", "--gallery", fresh, kSalley1}).exit_code, kExitOk);
  const std::string blank = (dir_ / "blank.png").string();
  ASSERT_TRUE(cv::imwrite(blank, cv::Mat(240, 320, CV_8UC3, cv::Scalar(90, 90, 90))));
  r = RunCli({"face", "identify", "--json", "--gallery", fresh, blank});
  EXPECT_EQ(r.exit_code, kExitFaceQuality) << r.out << r.err;
  const std::vector<json> lines = portcullis::testing::JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["issue"], "no_face");
  EXPECT_EQ(
      RunCli({"face", "enrol", "--gallery", fresh, "--id", "A", "--id", "B", kSimm}).exit_code,
      kExitUsage);
}

}  // namespace
}  // namespace portcullis::cli
