// The grammar's junk slot: gaps in patterns ("LLD LDL"), the junk_weight field, and the reads
// ReadsWithJunkDropped proposes on hand-built CTC matrices (no model needed).

#include "plate/junk_slot.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "plate/ctc_decoder.h"
#include "plate/grammar.h"
#include "portcullis/status.h"

namespace portcullis::plate {
namespace {

constexpr std::string_view kUsAlphabet = "0123456789ABCDEFGHIJKLMNPQRSTUVWXYZ";

// A line that reads `text`: each character `p` for two steps then a blank step; the rest of each
// step's mass goes to the blank. `weak` (an index into text, or -1) gets probability `weak_p`
// instead, the way an emblem read as a character is less certain than the glyphs around it.
cv::Mat Line(std::string_view alphabet, std::string_view text, int weak = -1, float weak_p = 0.5f) {
  const int steps = static_cast<int>(text.size()) * 3 + 1;
  cv::Mat m = cv::Mat::zeros(steps, static_cast<int>(alphabet.size()) + 1, CV_32F);
  for (int t = 0; t < steps; ++t) m.at<float>(t, 0) = 1.0f;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto column = static_cast<int>(alphabet.find(text[i])) + 1;
    EXPECT_GT(column, 0) << "test bug: '" << text[i] << "' not in alphabet";
    const float p = static_cast<int>(i) == weak ? weak_p : 0.9f;
    for (int k = 1; k <= 2; ++k) {
      const int t = static_cast<int>(i) * 3 + k;
      m.at<float>(t, column) = p;
      m.at<float>(t, 0) = 1.0f - p;
    }
  }
  return m;
}

RegionGrammar Grammar(const std::string& patterns_json, double junk_weight) {
  RegionGrammar g;
  const std::string json = R"({"region": "t", "alphabet": ")" + std::string(kUsAlphabet) +
                           R"(", "patterns": )" + patterns_json + R"(, "junk_weight": )" +
                           std::to_string(junk_weight) + "}";
  Status s = RegionGrammar::Parse(json, "t.json", &g);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return g;
}

// --- pattern gaps and junk_weight in the grammar file
// ---------------------------------------------

TEST(PlateJunkSlotGrammarTest, SpaceInAPatternIsAGapBetweenGroups) {
  std::vector<std::string> sets;
  std::vector<int> gaps;
  ASSERT_TRUE(ExpandPattern("LLD LDL", kUsAlphabet, &sets, &gaps).ok());
  EXPECT_EQ(sets.size(), 6u);
  EXPECT_EQ(gaps, std::vector<int>({3}));
  ASSERT_TRUE(ExpandPattern("LL DDD LL", kUsAlphabet, &sets, &gaps).ok());
  EXPECT_EQ(sets.size(), 7u);
  EXPECT_EQ(gaps, std::vector<int>({2, 5}));
  ASSERT_TRUE(ExpandPattern("LLDLDL", kUsAlphabet, &sets, &gaps).ok());
  EXPECT_TRUE(gaps.empty());
}

TEST(PlateJunkSlotGrammarTest, GapAtAnEndOrTwoInARowIsInvalid) {
  std::vector<std::string> sets;
  std::vector<int> gaps;
  for (const char* bad : {" LLD", "LLD ", "LL  D", " "}) {
    Status s = ExpandPattern(bad, kUsAlphabet, &sets, &gaps);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << "'" << bad << "'";
  }
}

TEST(PlateJunkSlotGrammarTest, JunkWeightParsesDefaultsToZeroAndIsRangeChecked) {
  RegionGrammar g = Grammar(R"([{"pattern": "LLD LDL"}])", 0.7);
  EXPECT_DOUBLE_EQ(g.junk_weight, 0.7);
  ASSERT_EQ(g.patterns.size(), 1u);
  EXPECT_EQ(g.patterns[0].gaps, std::vector<int>({3}));

  RegionGrammar none;
  ASSERT_TRUE(RegionGrammar::Parse(
                  R"({"region": "t", "alphabet": "AB12", "patterns": [{"pattern": "LD"}]})",
                  "t.json", &none)
                  .ok());
  EXPECT_EQ(none.junk_weight, 0);

  for (const char* bad : {"1.5", "-0.1", "\"high\""}) {
    RegionGrammar g2;
    const std::string json =
        std::string(R"({"region": "t", "alphabet": "AB12", "patterns": [{"pattern": "LD"}],)") +
        R"( "junk_weight": )" + bad + "}";
    Status s = RegionGrammar::Parse(json, "t.json", &g2);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << bad;
    EXPECT_NE(s.message().find("t.json"), std::string::npos) << s.message();
  }
}

// --- ReadsWithJunkDropped
// ----------------------------------------------------------------------------

TEST(PlateJunkSlotTest, EmblemReadAtTheGapIsDroppedAndScoredAsRead) {
  // "SH0" + an emblem read as a weak "L" + "R7X": seven characters, no 7-character layout.
  const cv::Mat probs = Line(kUsAlphabet, "SH0LR7X", /*weak=*/3, /*weak_p=*/0.5f);
  const RegionGrammar g =
      Grammar(R"([{"name": "LLDLDL", "pattern": "LLD LDL", "weight": 0.9}])", 0.7);
  auto reads = ReadsWithJunkDropped(probs, g);
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].first.text, "SH0R7X");
  EXPECT_EQ(reads[0].first.format, "LLDLDL");
  const double expected =
      CtcLogLikelihood(probs, kUsAlphabet, "SH0LR7X") + std::log(0.7) + std::log(0.9);
  EXPECT_NEAR(reads[0].second, expected, 1e-9);
  EXPECT_NEAR(reads[0].first.confidence, std::exp(expected), 1e-6);
}

TEST(PlateJunkSlotTest, ExtraCharacterAwayFromAGapIsNotDropped) {
  // The extra character stands after the second character, where the layout has no gap: the
  // only gap-fitting path must give up a real glyph, so it is far less likely than the read.
  const cv::Mat probs = Line(kUsAlphabet, "SHL0R7X", /*weak=*/2);
  const RegionGrammar g =
      Grammar(R"([{"name": "LLDLDL", "pattern": "LLD LDL", "weight": 0.9}])", 0.7);
  const double as_read = CtcLogLikelihood(probs, kUsAlphabet, "SHL0R7X");
  for (const auto& [candidate, score] : ReadsWithJunkDropped(probs, g)) {
    EXPECT_LT(score, as_read + std::log(0.7 * 0.9) - 2.0) << candidate.text;
  }
}

TEST(PlateJunkSlotTest, NoJunkWeightOrNoGapsMeansNoReads) {
  const cv::Mat probs = Line(kUsAlphabet, "SH0LR7X", 3);
  EXPECT_TRUE(ReadsWithJunkDropped(probs, Grammar(R"([{"pattern": "LLD LDL"}])", 0)).empty());
  EXPECT_TRUE(ReadsWithJunkDropped(probs, Grammar(R"([{"pattern": "LLDLDL"}])", 0.7)).empty());
}

TEST(PlateJunkSlotTest, LineTooShortForTheExtraCharacterGivesNothing) {
  const cv::Mat probs = Line(kUsAlphabet, "SH").rowRange(0, 6).clone();  // 6 steps < 7 characters
  EXPECT_TRUE(ReadsWithJunkDropped(probs, Grammar(R"([{"pattern": "LLD LDL"}])", 0.7)).empty());
}

// The shipped US grammar: the dropped-emblem read must outrank the same line read as a 7-character
// free-form plate, which is what the junk slot is for.
TEST(PlateJunkSlotTest, ShippedUsGrammarPrefersTheLayoutWithTheEmblemDropped) {
  std::ifstream in(std::string(PORTCULLIS_SOURCE_DIR) + "/data/regions/us.json");
  ASSERT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  RegionGrammar us;
  ASSERT_TRUE(RegionGrammar::Parse(text.str(), "us.json", &us).ok());
  ASSERT_GT(us.junk_weight, 0);
  const cv::Mat probs = Line(kUsAlphabet, "SH0LR7X", 3, 0.5f);
  const double free_form =
      CtcLogLikelihood(probs, kUsAlphabet, "SH0LR7X") + std::log(us.Prior("SH0LR7X"));
  bool found = false;
  for (const auto& [candidate, score] : ReadsWithJunkDropped(probs, us)) {
    if (candidate.text != "SH0R7X") continue;
    found = true;
    EXPECT_GT(score, free_form);
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace portcullis::plate
