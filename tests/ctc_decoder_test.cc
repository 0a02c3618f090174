// CTC decoding on hand-built probability matrices, checked against hand computation and against a
// brute-force enumeration of every alignment (all (K+1)^T paths) for small T.

#include "plate/ctc_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "plate/text_recognizer.h"

namespace portcullis::plate {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr std::string_view kSmall = "AB12";  // columns: blank, A, B, 1, 2
constexpr std::string_view kLetters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::string_view kDigits = "0123456789";

// One row: the given characters with their probabilities; the remaining mass goes to the blank.
std::vector<float> Row(std::string_view alphabet, const std::map<char, float>& chars) {
  std::vector<float> row(alphabet.size() + 1, 0.0f);
  float used = 0;
  for (const auto& [ch, p] : chars) {
    const std::size_t pos = alphabet.find(ch);
    EXPECT_NE(pos, std::string_view::npos) << "test bug: '" << ch << "' not in alphabet";
    if (pos == std::string_view::npos) continue;
    row[pos + 1] = p;
    used += p;
  }
  EXPECT_LE(used, 1.0f + 1e-6f) << "test bug: row mass above 1";
  row[0] = std::max(0.0f, 1.0f - used);
  return row;
}

// A row whose blank probability is given explicitly (may be 0).
std::vector<float> RowWithBlank(std::string_view alphabet, float blank,
                                const std::map<char, float>& chars) {
  std::vector<float> row = Row(alphabet, chars);
  row[0] = blank;
  return row;
}

cv::Mat Matrix(const std::vector<std::vector<float>>& rows) {
  cv::Mat m(static_cast<int>(rows.size()), static_cast<int>(rows.front().size()), CV_32F);
  for (int t = 0; t < m.rows; ++t) {
    for (int c = 0; c < m.cols; ++c) {
      m.at<float>(t, c) = rows[static_cast<std::size_t>(t)][static_cast<std::size_t>(c)];
    }
  }
  return m;
}

// Random row-stochastic matrix with every entry >= ~min_p / cols (so nothing is pruned by the beam
// search's 1e-4 cut); `sharpness` > 1 makes rows peakier.
cv::Mat RandomProbs(int steps, int cols, unsigned seed, double sharpness = 1.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  cv::Mat m(steps, cols, CV_32F);
  for (int t = 0; t < steps; ++t) {
    std::vector<double> v(static_cast<std::size_t>(cols));
    double sum = 0;
    for (double& x : v) {
      x = std::pow(u(rng), sharpness) + 0.02;
      sum += x;
    }
    for (int c = 0; c < cols; ++c) {
      m.at<float>(t, c) = static_cast<float>(v[static_cast<std::size_t>(c)] / sum);
    }
  }
  return m;
}

// The CTC collapse, written independently: merge runs of equal columns, then drop blanks.
std::string Collapse(const std::vector<int>& path, std::string_view alphabet) {
  std::vector<int> merged;
  for (int c : path) {
    if (merged.empty() || merged.back() != c) merged.push_back(c);
  }
  std::string text;
  for (int c : merged) {
    if (c != 0) text += alphabet[static_cast<std::size_t>(c - 1)];
  }
  return text;
}

// Every path through the matrix: per labelling, the summed and the best single-path probability.
struct Enumeration {
  std::map<std::string, double> total;
  std::map<std::string, double> best_path;
  double best_path_prob = -1;
  std::string best_path_text;
};

Enumeration Enumerate(const cv::Mat& probs, std::string_view alphabet) {
  Enumeration e;
  const int steps = probs.rows;
  const int cols = probs.cols;
  std::vector<int> path(static_cast<std::size_t>(steps), 0);
  while (true) {
    double p = 1.0;
    for (int t = 0; t < steps; ++t) {
      p *= static_cast<double>(probs.at<float>(t, path[static_cast<std::size_t>(t)]));
    }
    if (p > 0) {
      const std::string text = Collapse(path, alphabet);
      e.total[text] += p;
      double& best = e.best_path[text];
      if (p > best) best = p;
      if (p > e.best_path_prob) {
        e.best_path_prob = p;
        e.best_path_text = text;
      }
    }
    // Next path (odometer).
    int t = steps - 1;
    while (t >= 0 && path[static_cast<std::size_t>(t)] == cols - 1) {
      path[static_cast<std::size_t>(t)] = 0;
      --t;
    }
    if (t < 0) break;
    ++path[static_cast<std::size_t>(t)];
  }
  return e;
}

// Best single path whose labelling has sets.size() characters, the k-th from sets[k].
bool BruteConstrained(const Enumeration& e, const std::vector<std::string>& sets, std::string* text,
                      double* prob) {
  bool found = false;
  *prob = 0;
  for (const auto& [label, p] : e.best_path) {
    if (label.size() != sets.size()) continue;
    bool ok = true;
    for (std::size_t k = 0; k < label.size() && ok; ++k) {
      ok = sets[k].find(label[k]) != std::string::npos;
    }
    if (ok && p > *prob) {
      *prob = p;
      *text = label;
      found = true;
    }
  }
  return found;
}

// Every string over the alphabet of length 0..max_length.
std::vector<std::string> AllStrings(std::string_view alphabet, int max_length) {
  std::vector<std::string> out{""};
  std::vector<std::string> layer{""};
  for (int n = 1; n <= max_length; ++n) {
    std::vector<std::string> next;
    for (const std::string& s : layer) {
      for (char c : alphabet) next.push_back(s + c);
    }
    out.insert(out.end(), next.begin(), next.end());
    layer = std::move(next);
  }
  return out;
}

std::string OnlyAlphabet(std::string_view set, std::string_view alphabet) {
  std::string out;
  for (char c : set) {
    if (alphabet.find(c) != std::string_view::npos) out += c;
  }
  return out;
}

// --- CtcGreedy ---------------------------------------------------------------------------------

TEST(CtcGreedyTest, CollapsesRepeatsAndDropsBlanks) {
  cv::Mat probs = Matrix({
      Row(kSmall, {{'A', 0.7f}}),
      Row(kSmall, {{'A', 0.6f}, {'B', 0.3f}}),
      Row(kSmall, {{'A', 0.1f}}),  // blank 0.9
      Row(kSmall, {{'1', 0.8f}}),
      Row(kSmall, {{'B', 0.5f}, {'2', 0.4f}}),
      Row(kSmall, {{'B', 0.9f}}),
      Row(kSmall, {}),
  });
  EXPECT_EQ(CtcGreedy(probs, kSmall), "A1B");
}

TEST(CtcGreedyTest, DoubleLetterNeedsABlankBetween) {
  cv::Mat merged = Matrix({Row(kSmall, {{'A', 0.9f}}), Row(kSmall, {{'A', 0.9f}})});
  EXPECT_EQ(CtcGreedy(merged, kSmall), "A");
  cv::Mat separated =
      Matrix({Row(kSmall, {{'A', 0.9f}}), Row(kSmall, {{'A', 0.2f}}), Row(kSmall, {{'A', 0.9f}})});
  EXPECT_EQ(CtcGreedy(separated, kSmall), "AA");
  cv::Mat other_between =
      Matrix({Row(kSmall, {{'A', 0.9f}}), Row(kSmall, {{'B', 0.9f}}), Row(kSmall, {{'A', 0.9f}})});
  EXPECT_EQ(CtcGreedy(other_between, kSmall), "ABA");
}

TEST(CtcGreedyTest, AllBlankIsEmpty) {
  cv::Mat probs = Matrix({Row(kSmall, {{'A', 0.2f}}), Row(kSmall, {{'2', 0.3f}})});
  EXPECT_EQ(CtcGreedy(probs, kSmall), "");
}

TEST(CtcGreedyTest, BadShapeReadsNothing) {
  EXPECT_EQ(CtcGreedy(cv::Mat(), kSmall), "");
  cv::Mat wrong_cols = cv::Mat::zeros(3, static_cast<int>(kSmall.size()), CV_32F);
  wrong_cols.at<float>(0, 1) = 1.0f;
  EXPECT_EQ(CtcGreedy(wrong_cols, kSmall), "");
  cv::Mat too_many_cols = cv::Mat::zeros(3, static_cast<int>(kSmall.size()) + 2, CV_32F);
  too_many_cols.at<float>(0, 1) = 1.0f;
  EXPECT_EQ(CtcGreedy(too_many_cols, kSmall), "");
  cv::Mat wrong_type = cv::Mat::zeros(3, static_cast<int>(kSmall.size()) + 1, CV_64F);
  wrong_type.at<double>(0, 1) = 1.0;
  EXPECT_EQ(CtcGreedy(wrong_type, kSmall), "");
}

TEST(CtcGreedyTest, ReadsAPlateOverTheFullAlphabet) {
  std::vector<std::vector<float>> rows;
  for (char ch : std::string_view("7ABC123")) {
    rows.push_back(Row(kPlateAlphabet, {{ch, 0.8f}}));
    rows.push_back(Row(kPlateAlphabet, {{ch, 0.7f}}));   // a repeat, merged
    rows.push_back(Row(kPlateAlphabet, {{ch, 0.05f}}));  // blank
  }
  EXPECT_EQ(CtcGreedy(Matrix(rows), kPlateAlphabet), "7ABC123");
}

TEST(CtcGreedyTest, IsTheCollapseOfTheMostProbablePath) {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    cv::Mat probs = RandomProbs(5, static_cast<int>(kSmall.size()) + 1, seed, 2.0);
    Enumeration e = Enumerate(probs, kSmall);
    EXPECT_EQ(CtcGreedy(probs, kSmall), e.best_path_text) << "seed " << seed;
  }
}

// --- CtcLogLikelihood --------------------------------------------------------------------------

TEST(CtcLogLikelihoodTest, HandComputedTwoSteps) {
  // One symbol "A", two steps, p(A) = 0.4 and p(blank) = 0.6 at each.
  constexpr std::string_view kA = "A";
  cv::Mat probs = Matrix({Row(kA, {{'A', 0.4f}}), Row(kA, {{'A', 0.4f}})});
  const double a = static_cast<double>(probs.at<float>(0, 1));
  const double b = static_cast<double>(probs.at<float>(0, 0));
  EXPECT_NEAR(CtcLogLikelihood(probs, kA, ""), std::log(b * b), 1e-9);
  // "A": A_, _A, AA.
  EXPECT_NEAR(CtcLogLikelihood(probs, kA, "A"), std::log(a * b + b * a + a * a), 1e-9);
  // "AA" needs A _ A: three steps.
  EXPECT_EQ(CtcLogLikelihood(probs, kA, "AA"), kNegInf);
}

TEST(CtcLogLikelihoodTest, MatchesBruteForceForEveryString) {
  struct Case {
    std::string_view alphabet;
    int steps;
    unsigned seed;
  };
  const Case cases[] = {{"A", 1, 1},  {"AB", 1, 2},  {"AB", 2, 3},  {"AB", 3, 4},  {"AB", 4, 5},
                        {"AB", 6, 6}, {"AB1", 3, 7}, {"AB1", 5, 8}, {"AB1", 6, 9}, {"AB1", 6, 10}};
  for (const Case& c : cases) {
    cv::Mat probs = RandomProbs(c.steps, static_cast<int>(c.alphabet.size()) + 1, c.seed);
    Enumeration e = Enumerate(probs, c.alphabet);
    double sum = 0;
    // Strings up to T + 1 long: those past what T steps can hold must be impossible.
    for (const std::string& text : AllStrings(c.alphabet, c.steps + 1)) {
      const double got = CtcLogLikelihood(probs, c.alphabet, text);
      auto it = e.total.find(text);
      if (it == e.total.end()) {
        EXPECT_EQ(got, kNegInf) << "text '" << text << "' T=" << c.steps;
      } else {
        EXPECT_NEAR(got, std::log(it->second), 1e-9) << "text '" << text << "' T=" << c.steps;
        sum += std::exp(got);
      }
    }
    // The labellings partition the paths, and every row sums to 1.
    EXPECT_NEAR(sum, 1.0, 1e-5) << "alphabet " << c.alphabet << " T=" << c.steps;
  }
}

TEST(CtcLogLikelihoodTest, ZerosInTheMatrixMatchBruteForce) {
  // Exact zeros make some alignments impossible: blank is never allowed at step 1 and 'B' only
  // at step 2.
  constexpr std::string_view kAB = "AB";
  cv::Mat probs = Matrix({
      Row(kAB, {{'A', 0.5f}}),
      RowWithBlank(kAB, 0.0f, {{'A', 0.7f}, {'B', 0.3f}}),
      Row(kAB, {{'A', 0.3f}, {'B', 0.2f}}),
      Row(kAB, {{'A', 0.6f}}),
  });
  Enumeration e = Enumerate(probs, kAB);
  for (const std::string& text : AllStrings(kAB, 5)) {
    const double got = CtcLogLikelihood(probs, kAB, text);
    auto it = e.total.find(text);
    if (it == e.total.end()) {
      EXPECT_EQ(got, kNegInf) << text;
    } else {
      EXPECT_NEAR(got, std::log(it->second), 1e-9) << text;
    }
  }
  // Spot checks of what the zeros forbid: "" needs a blank at step 1.
  EXPECT_EQ(CtcLogLikelihood(probs, kAB, ""), kNegInf);
}

TEST(CtcLogLikelihoodTest, ImpossibleTextsAreMinusInfinity) {
  cv::Mat probs = RandomProbs(2, static_cast<int>(kSmall.size()) + 1, 42);
  EXPECT_EQ(CtcLogLikelihood(probs, kSmall, "AA"), kNegInf);   // needs 3 steps
  EXPECT_EQ(CtcLogLikelihood(probs, kSmall, "AB1"), kNegInf);  // needs 3 steps
  EXPECT_EQ(CtcLogLikelihood(probs, kSmall, "Z"), kNegInf);    // outside the alphabet
  EXPECT_EQ(CtcLogLikelihood(probs, kSmall, "a"), kNegInf);
  EXPECT_GT(CtcLogLikelihood(probs, kSmall, "AB"), kNegInf);  // fits exactly
  cv::Mat three = RandomProbs(3, static_cast<int>(kSmall.size()) + 1, 43);
  EXPECT_GT(CtcLogLikelihood(three, kSmall, "AA"), kNegInf);
  EXPECT_EQ(CtcLogLikelihood(three, kSmall, "AAA"), kNegInf);  // needs 5 steps
}

TEST(CtcLogLikelihoodTest, BadShapeIsMinusInfinity) {
  EXPECT_EQ(CtcLogLikelihood(cv::Mat(), kSmall, ""), kNegInf);
  cv::Mat wrong_cols = RandomProbs(3, static_cast<int>(kSmall.size()), 1);
  EXPECT_EQ(CtcLogLikelihood(wrong_cols, kSmall, "A"), kNegInf);
  cv::Mat wrong_type;
  RandomProbs(3, static_cast<int>(kSmall.size()) + 1, 1).convertTo(wrong_type, CV_64F);
  EXPECT_EQ(CtcLogLikelihood(wrong_type, kSmall, "A"), kNegInf);
}

TEST(CtcLogLikelihoodTest, PlateTextIsMostLikelyOverTheFullAlphabet) {
  std::vector<std::vector<float>> rows;
  for (char ch : std::string_view("BRA2E19")) {
    rows.push_back(Row(kPlateAlphabet, {{ch, 0.9f}}));
    rows.push_back(Row(kPlateAlphabet, {{ch, 0.02f}}));
  }
  cv::Mat probs = Matrix(rows);
  const double right = CtcLogLikelihood(probs, kPlateAlphabet, "BRA2E19");
  // Each character of the path is 0.9 and each blank 0.98; other alignments only add.
  double path = 0;
  for (int i = 0; i < 7; ++i) {
    path += std::log(static_cast<double>(0.9f)) + std::log(static_cast<double>(0.98f));
  }
  EXPECT_GE(right, path - 1e-6);
  EXPECT_LT(right, 0.0);
  EXPECT_LT(CtcLogLikelihood(probs, kPlateAlphabet, "BRA2E1"), right);
  EXPECT_LT(CtcLogLikelihood(probs, kPlateAlphabet, "8RA2E19"), right);
  EXPECT_EQ(CtcLogLikelihood(probs, kPlateAlphabet, "BRA2E19X"), kNegInf)
      << "'X' has probability 0 at every step";
}

// --- CtcBeamSearch -----------------------------------------------------------------------------

TEST(CtcBeamSearchTest, SumsAlignmentsWhereGreedyDoesNot) {
  // Greedy reads "" (blank 0.6 twice: 0.36), but "A" has A_ + _A + AA = 0.64.
  constexpr std::string_view kA = "A";
  cv::Mat probs = Matrix({Row(kA, {{'A', 0.4f}}), Row(kA, {{'A', 0.4f}})});
  EXPECT_EQ(CtcGreedy(probs, kA), "");
  std::vector<CtcPath> paths = CtcBeamSearch(probs, kA, 4, 4);
  // Only two labellings are possible; ReturnsOnlyPossibleLabellings checks nothing else comes back.
  ASSERT_GE(paths.size(), 2u);
  const double a = static_cast<double>(probs.at<float>(0, 1));
  const double b = static_cast<double>(probs.at<float>(0, 0));
  EXPECT_EQ(paths[0].text, "A");
  EXPECT_NEAR(paths[0].log_prob, std::log(2 * a * b + a * a), 1e-9);
  EXPECT_EQ(paths[1].text, "");
  EXPECT_NEAR(paths[1].log_prob, std::log(b * b), 1e-9);
}

TEST(CtcBeamSearchTest, WideBeamReproducesTheWholeDistribution) {
  struct Case {
    std::string_view alphabet;
    int steps;
    unsigned seed;
    double sharpness;
  };
  const Case cases[] = {{"AB", 3, 11, 1.0},   {"AB", 5, 12, 1.0},   {"AB1", 4, 13, 1.0},
                        {"AB1", 6, 14, 1.0},  {"AB12", 5, 15, 2.0}, {"AB12", 6, 16, 3.0},
                        {"AB12", 6, 17, 1.0}, {"A", 6, 18, 1.0}};
  for (const Case& c : cases) {
    cv::Mat probs =
        RandomProbs(c.steps, static_cast<int>(c.alphabet.size()) + 1, c.seed, c.sharpness);
    Enumeration e = Enumerate(probs, c.alphabet);
    std::vector<CtcPath> paths = CtcBeamSearch(probs, c.alphabet, 100000, 100000);
    // Impossible labellings (log_prob -inf) are ReturnsOnlyPossibleLabellings' business; every
    // possible one must be there, once, with its exact probability.
    std::vector<CtcPath> possible;
    for (const CtcPath& p : paths) {
      if (p.log_prob > kNegInf) possible.push_back(p);
    }
    ASSERT_EQ(possible.size(), e.total.size()) << "alphabet " << c.alphabet << " T=" << c.steps;
    std::map<std::string, int> seen;
    for (const CtcPath& p : possible) EXPECT_EQ(++seen[p.text], 1) << "duplicate " << p.text;
    std::string best_text;
    double best = -1;
    for (const auto& [text, p] : e.total) {
      if (p > best) {
        best = p;
        best_text = text;
      }
    }
    EXPECT_EQ(paths[0].text, best_text) << "seed " << c.seed;
    EXPECT_NEAR(paths[0].log_prob, std::log(best), 1e-5) << "seed " << c.seed;
    for (const CtcPath& p : possible) {
      auto it = e.total.find(p.text);
      ASSERT_NE(it, e.total.end()) << "beam invented '" << p.text << "'";
      EXPECT_NEAR(p.log_prob, std::log(it->second), 1e-5) << p.text;
    }
    for (std::size_t i = 0; i < paths.size(); ++i) {
      if (i > 0) {
        EXPECT_GE(paths[i - 1].log_prob, paths[i].log_prob) << "not sorted at " << i;
      }
    }
  }
}

TEST(CtcBeamSearchTest, ModestBeamFindsTheBestLabelling) {
  for (unsigned seed = 100; seed < 120; ++seed) {
    cv::Mat probs = RandomProbs(6, static_cast<int>(kSmall.size()) + 1, seed, 3.0);
    Enumeration e = Enumerate(probs, kSmall);
    std::string best_text;
    double best = -1;
    for (const auto& [text, p] : e.total) {
      if (p > best) {
        best = p;
        best_text = text;
      }
    }
    std::vector<CtcPath> paths = CtcBeamSearch(probs, kSmall, 25, 5);
    ASSERT_EQ(paths.size(), 5u);
    EXPECT_EQ(paths[0].text, best_text) << "seed " << seed;
    for (std::size_t i = 0; i < paths.size(); ++i) {
      // A narrow beam may drop alignments (prefixes pruned on the way), never add probability.
      EXPECT_LE(paths[i].log_prob, std::log(e.total.at(paths[i].text)) + 1e-9);
      if (i > 0) {
        EXPECT_GE(paths[i - 1].log_prob, paths[i].log_prob);
      }
    }
  }
}

TEST(CtcBeamSearchTest, ReturnsOnlyPossibleLabellings) {
  // Two steps of a one-letter alphabet can read "" or "A"; "AA" needs three steps.
  constexpr std::string_view kA = "A";
  cv::Mat probs = Matrix({Row(kA, {{'A', 0.4f}}), Row(kA, {{'A', 0.4f}})});
  std::vector<CtcPath> paths = CtcBeamSearch(probs, kA, 4, 4);
  EXPECT_EQ(paths.size(), 2u);
  for (const CtcPath& p : paths) {
    EXPECT_GT(p.log_prob, kNegInf) << "impossible labelling '" << p.text << "' returned";
    EXPECT_GT(CtcLogLikelihood(probs, kA, p.text), kNegInf) << p.text;
  }
  // Random matrices with a beam wider than all prefixes: nothing unreachable either.
  for (unsigned seed = 300; seed < 305; ++seed) {
    cv::Mat random = RandomProbs(4, static_cast<int>(kSmall.size()) + 1, seed);
    for (const CtcPath& p : CtcBeamSearch(random, kSmall, 100000, 100000)) {
      EXPECT_GT(p.log_prob, kNegInf) << "seed " << seed << ": impossible '" << p.text << "'";
    }
  }
}

TEST(CtcBeamSearchTest, TopNIsAPrefixOfTheFullRanking) {
  cv::Mat probs = RandomProbs(5, static_cast<int>(kSmall.size()) + 1, 7);
  std::vector<CtcPath> all = CtcBeamSearch(probs, kSmall, 100000, 100000);
  ASSERT_GT(all.size(), 3u);
  for (int n : {1, 2, 3}) {
    std::vector<CtcPath> top = CtcBeamSearch(probs, kSmall, 100000, n);
    ASSERT_EQ(top.size(), static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < top.size(); ++i) {
      EXPECT_EQ(top[i].text, all[i].text);
      EXPECT_DOUBLE_EQ(top[i].log_prob, all[i].log_prob);
    }
  }
  // A beam of one still returns one result, the best it kept.
  std::vector<CtcPath> narrow = CtcBeamSearch(probs, kSmall, 1, 10);
  EXPECT_EQ(narrow.size(), 1u);
}

TEST(CtcBeamSearchTest, DoubleLetterNeedsABlank) {
  // A A: the only reading is "A" (plus "" etc.), never "AA".
  cv::Mat probs = Matrix({Row(kSmall, {{'A', 0.9f}}), Row(kSmall, {{'A', 0.9f}})});
  for (const CtcPath& p : CtcBeamSearch(probs, kSmall, 100, 100)) {
    // (Entries at -inf are ReturnsOnlyPossibleLabellings' business.)
    if (p.log_prob > kNegInf) {
      EXPECT_NE(p.text, "AA");
    }
  }
  cv::Mat with_blank =
      Matrix({Row(kSmall, {{'A', 0.9f}}), Row(kSmall, {{'A', 0.05f}}), Row(kSmall, {{'A', 0.9f}})});
  std::vector<CtcPath> paths = CtcBeamSearch(with_blank, kSmall, 100, 1);
  ASSERT_EQ(paths.size(), 1u);
  EXPECT_EQ(paths[0].text, "AA");
  EXPECT_NEAR(paths[0].log_prob, CtcLogLikelihood(with_blank, kSmall, "AA"), 1e-9);
}

TEST(CtcBeamSearchTest, BadArgumentsGiveNothing) {
  cv::Mat probs = RandomProbs(4, static_cast<int>(kSmall.size()) + 1, 3);
  EXPECT_TRUE(CtcBeamSearch(probs, kSmall, 0, 5).empty());
  EXPECT_TRUE(CtcBeamSearch(probs, kSmall, -1, 5).empty());
  EXPECT_TRUE(CtcBeamSearch(probs, kSmall, 5, 0).empty());
  EXPECT_TRUE(CtcBeamSearch(probs, kSmall, 5, -3).empty());
  EXPECT_TRUE(CtcBeamSearch(cv::Mat(), kSmall, 5, 5).empty());
  EXPECT_TRUE(CtcBeamSearch(probs, "AB1", 5, 5).empty());  // column count does not match
  cv::Mat wrong_type;
  probs.convertTo(wrong_type, CV_64F);
  EXPECT_TRUE(CtcBeamSearch(wrong_type, kSmall, 5, 5).empty());
}

TEST(CtcBeamSearchTest, PlateOverTheFullAlphabet) {
  std::vector<std::vector<float>> rows;
  for (char ch : std::string_view("7ABC123")) {
    rows.push_back(Row(kPlateAlphabet, {{ch, 0.85f}, {'8', 0.05f}}));
    rows.push_back(Row(kPlateAlphabet, {{ch, 0.03f}}));
  }
  cv::Mat probs = Matrix(rows);
  std::vector<CtcPath> paths = CtcBeamSearch(probs, kPlateAlphabet, 10, 3);
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_EQ(paths[0].text, "7ABC123");
  EXPECT_NEAR(paths[0].log_prob, CtcLogLikelihood(probs, kPlateAlphabet, "7ABC123"), 1e-6);
  for (std::size_t i = 1; i < paths.size(); ++i) {
    EXPECT_LE(paths[i].log_prob, paths[i - 1].log_prob);
    EXPECT_LE(paths[i].log_prob, CtcLogLikelihood(probs, kPlateAlphabet, paths[i].text) + 1e-9);
  }
}

// --- CtcConstrainedBest ------------------------------------------------------------------------

TEST(CtcConstrainedBestTest, LettersTurn8RZIntoBRZ) {
  const std::string letters(kLetters);
  const std::string digits(kDigits);
  cv::Mat probs = Matrix({
      Row(kPlateAlphabet, {{'8', 0.55f}, {'B', 0.35f}}),  // blank 0.10
      Row(kPlateAlphabet, {{'8', 0.05f}, {'B', 0.05f}}),  // blank 0.90
      Row(kPlateAlphabet, {{'R', 0.8f}}),                 // blank 0.20
      Row(kPlateAlphabet, {{'R', 0.1f}}),                 // blank 0.90
      Row(kPlateAlphabet, {{'Z', 0.7f}, {'2', 0.2f}}),    // blank 0.10
  });
  ASSERT_EQ(CtcGreedy(probs, kPlateAlphabet), "8RZ");
  auto p = [](float v) { return std::log(static_cast<double>(v)); };

  CtcPath best;
  ASSERT_TRUE(CtcConstrainedBest(probs, kPlateAlphabet, {letters, letters, letters}, &best));
  EXPECT_EQ(best.text, "BRZ");
  // B _ R _ Z.
  EXPECT_NEAR(best.log_prob, p(0.35f) + p(0.9f) + p(0.8f) + p(0.9f) + p(0.7f), 1e-6);

  ASSERT_TRUE(CtcConstrainedBest(probs, kPlateAlphabet, {letters, letters, digits}, &best));
  EXPECT_EQ(best.text, "BR2");
  EXPECT_NEAR(best.log_prob, p(0.35f) + p(0.9f) + p(0.8f) + p(0.9f) + p(0.2f), 1e-6);

  // Where the grammar agrees with greedy, the greedy path is the answer.
  ASSERT_TRUE(CtcConstrainedBest(probs, kPlateAlphabet, {digits, letters, letters}, &best));
  EXPECT_EQ(best.text, "8RZ");
  EXPECT_NEAR(best.log_prob, p(0.55f) + p(0.9f) + p(0.8f) + p(0.9f) + p(0.7f), 1e-6);
}

TEST(CtcConstrainedBestTest, FullPlateWithAGrammar) {
  const std::string letters(kLetters);
  const std::string digits(kDigits);
  std::vector<std::vector<float>> rows;
  const std::vector<std::map<char, float>> reads = {{{'8', 0.5f}, {'B', 0.4f}},
                                                    {{'R', 0.9f}},
                                                    {{'2', 0.6f}, {'Z', 0.3f}},
                                                    {{'1', 0.9f}},
                                                    {{'I', 0.6f}, {'2', 0.3f}},
                                                    {{'3', 0.9f}},
                                                    {{'4', 0.9f}}};
  for (const auto& chars : reads) {
    rows.push_back(Row(kPlateAlphabet, chars));
    rows.push_back(Row(kPlateAlphabet, {}));  // a clean blank
  }
  cv::Mat probs = Matrix(rows);
  ASSERT_EQ(CtcGreedy(probs, kPlateAlphabet), "8R21I34");
  CtcPath best;
  ASSERT_TRUE(CtcConstrainedBest(
      probs, kPlateAlphabet, {letters, letters, letters, digits, digits, digits, digits}, &best));
  EXPECT_EQ(best.text, "BRZ1234");
  const double expected =
      std::log(static_cast<double>(0.4f)) + std::log(static_cast<double>(0.9f)) +
      std::log(static_cast<double>(0.3f)) + std::log(static_cast<double>(0.9f)) +
      std::log(static_cast<double>(0.3f)) + std::log(static_cast<double>(0.9f)) +
      std::log(static_cast<double>(0.9f));
  EXPECT_NEAR(best.log_prob, expected, 1e-6);
}

TEST(CtcConstrainedBestTest, MatchesBruteForce) {
  const std::vector<std::vector<std::string>> constraint_sets = {
      {"AB12"},        {"AB", "AB"},       {"A", "A"},           {"1", "AB", "2"},
      {"B", "1", "B"}, {"12", "12", "12"}, {"A", "B", "A", "B"}, {"AB12", "AB12", "AB12", "AB12"},
      {"2", "2", "2"}, {"AZ", "1Q"},  // characters outside the alphabet are ignored
  };
  for (int steps = 1; steps <= 6; ++steps) {
    for (unsigned seed = 0; seed < 4; ++seed) {
      cv::Mat probs =
          RandomProbs(steps, static_cast<int>(kSmall.size()) + 1,
                      1000u + static_cast<unsigned>(steps) * 10u + seed, seed % 2 == 0 ? 1.0 : 3.0);
      Enumeration e = Enumerate(probs, kSmall);
      for (const auto& sets : constraint_sets) {
        std::vector<std::string> filtered;
        for (const std::string& s : sets) filtered.push_back(OnlyAlphabet(s, kSmall));
        std::string want_text;
        double want_prob = 0;
        const bool want = BruteConstrained(e, filtered, &want_text, &want_prob);
        CtcPath got;
        const bool ok = CtcConstrainedBest(probs, kSmall, sets, &got);
        std::string label = "T=" + std::to_string(steps) + " seed=" + std::to_string(seed) +
                            " sets[0]=" + sets[0] + " n=" + std::to_string(sets.size());
        ASSERT_EQ(ok, want) << label;
        if (!ok) continue;
        EXPECT_EQ(got.text, want_text) << label;
        EXPECT_NEAR(got.log_prob, std::log(want_prob), 1e-9) << label;
      }
    }
  }
}

TEST(CtcConstrainedBestTest, MatchesBruteForceWithZeros) {
  // Zeros forbid some steps outright: no blank at step 1, no 'B' before step 3.
  constexpr std::string_view kAB = "AB";
  cv::Mat probs = Matrix({
      Row(kAB, {{'A', 0.6f}}),
      RowWithBlank(kAB, 0.0f, {{'A', 0.5f}, {'B', 0.5f}}),
      Row(kAB, {{'A', 0.2f}}),
      Row(kAB, {{'A', 0.3f}, {'B', 0.6f}}),
      Row(kAB, {{'B', 0.5f}}),
  });
  Enumeration e = Enumerate(probs, kAB);
  for (const auto& sets : std::vector<std::vector<std::string>>{{"A"},
                                                                {"B"},
                                                                {"A", "A"},
                                                                {"A", "B"},
                                                                {"B", "A"},
                                                                {"B", "B"},
                                                                {"AB", "AB", "AB"},
                                                                {"A", "B", "A"},
                                                                {"A", "A", "A"},
                                                                {"B", "B", "B"},
                                                                {"AB", "AB", "AB", "AB"}}) {
    std::string want_text;
    double want_prob = 0;
    const bool want = BruteConstrained(e, sets, &want_text, &want_prob);
    CtcPath got;
    const bool ok = CtcConstrainedBest(probs, kAB, sets, &got);
    ASSERT_EQ(ok, want) << sets.size() << " " << sets[0];
    if (!ok) continue;
    EXPECT_EQ(got.text, want_text);
    EXPECT_NEAR(got.log_prob, std::log(want_prob), 1e-9);
  }
}

TEST(CtcConstrainedBestTest, DoubleLetterNeedsABlankStep) {
  CtcPath best;
  // Two steps cannot hold A _ A.
  cv::Mat two = Matrix({Row(kSmall, {{'A', 0.9f}}), Row(kSmall, {{'A', 0.9f}})});
  EXPECT_FALSE(CtcConstrainedBest(two, kSmall, {"A", "A"}, &best));
  EXPECT_TRUE(CtcConstrainedBest(two, kSmall, {"A"}, &best));
  EXPECT_EQ(best.text, "A");

  // Three steps where the middle one may be blank: A _ A.
  cv::Mat three =
      Matrix({Row(kSmall, {{'A', 0.9f}}), Row(kSmall, {{'A', 0.8f}}), Row(kSmall, {{'A', 0.9f}})});
  ASSERT_TRUE(CtcConstrainedBest(three, kSmall, {"A", "A"}, &best));
  EXPECT_EQ(best.text, "AA");
  EXPECT_NEAR(best.log_prob,
              std::log(static_cast<double>(0.9f)) + std::log(static_cast<double>(0.2f)) +
                  std::log(static_cast<double>(0.9f)),
              1e-6);

  // Three steps where the middle one can never be blank: AAA collapses to "A".
  cv::Mat no_blank =
      Matrix({Row(kSmall, {{'A', 0.9f}}), RowWithBlank(kSmall, 0.0f, {{'A', 0.8f}, {'B', 0.2f}}),
              Row(kSmall, {{'A', 0.9f}})});
  EXPECT_FALSE(CtcConstrainedBest(no_blank, kSmall, {"A", "A"}, &best));
  // ... but A B A is fine there.
  ASSERT_TRUE(CtcConstrainedBest(no_blank, kSmall, {"A", "B", "A"}, &best));
  EXPECT_EQ(best.text, "ABA");
}

TEST(CtcConstrainedBestTest, ImpossibleConstraintsFail) {
  cv::Mat probs = RandomProbs(3, static_cast<int>(kSmall.size()) + 1, 5);
  CtcPath best;
  EXPECT_FALSE(CtcConstrainedBest(probs, kSmall, {"A", "B", "1", "2"}, &best));  // 4 > 3 steps
  EXPECT_FALSE(CtcConstrainedBest(probs, kSmall, {"A", "XYZ"}, &best));  // nothing fills pos 2
  EXPECT_FALSE(CtcConstrainedBest(probs, kSmall, {"A", ""}, &best));
  EXPECT_FALSE(CtcConstrainedBest(probs, kSmall, {}, &best));
  EXPECT_FALSE(CtcConstrainedBest(cv::Mat(), kSmall, {"A"}, &best));
  EXPECT_FALSE(CtcConstrainedBest(probs, "AB1", {"A"}, &best));  // column count does not match
  cv::Mat wrong_type;
  probs.convertTo(wrong_type, CV_64F);
  EXPECT_FALSE(CtcConstrainedBest(wrong_type, kSmall, {"A"}, &best));
  // The same matrix does hold three characters.
  EXPECT_TRUE(CtcConstrainedBest(probs, kSmall, {"A", "B", "1"}, &best));
  EXPECT_EQ(best.text, "AB1");
}

TEST(CtcConstrainedBestTest, ConstrainedNeverBeatsTheBestPath) {
  // Any constrained answer is one path, so it scores at most the best path (greedy), and exactly
  // that when the constraints admit the greedy reading.
  for (unsigned seed = 200; seed < 210; ++seed) {
    cv::Mat probs = RandomProbs(6, static_cast<int>(kSmall.size()) + 1, seed, 2.0);
    Enumeration e = Enumerate(probs, kSmall);
    const std::string greedy = CtcGreedy(probs, kSmall);
    if (greedy.empty()) continue;
    std::vector<std::string> exact(greedy.size(), std::string(kSmall));
    CtcPath best;
    ASSERT_TRUE(CtcConstrainedBest(probs, kSmall, exact, &best));
    EXPECT_EQ(best.text, greedy) << "seed " << seed;
    EXPECT_NEAR(best.log_prob, std::log(e.best_path_prob), 1e-9) << "seed " << seed;
  }
}

}  // namespace
}  // namespace portcullis::plate
