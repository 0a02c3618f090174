// Region grammars: pattern expansion, parsing and validation, priors, directory loading and the
// grammars shipped in data/regions.

#include "plate/grammar.h"

#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "portcullis/env.h"
#include "portcullis/status.h"

namespace portcullis::plate {
namespace {

namespace fs = std::filesystem;
using Code = Status::Code;

constexpr std::string_view kFull = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::string_view kNoO = "0123456789ABCDEFGHIJKLMNPQRSTUVWXYZ";  // the US alphabet

// --- ExpandPattern -----------------------------------------------------------------------------

TEST(PatternExpandTest, LettersDigitsAndAny) {
  std::vector<std::string> sets;
  Status s = ExpandPattern("LLD", kFull, &sets);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_EQ(sets[0], "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
  EXPECT_EQ(sets[1], "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
  EXPECT_EQ(sets[2], "0123456789");

  ASSERT_TRUE(ExpandPattern("A", kFull, &sets).ok());
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0], std::string(kFull));
}

TEST(PatternExpandTest, SetsFollowTheAlphabet) {
  std::vector<std::string> sets;
  ASSERT_TRUE(ExpandPattern("LDA", "AB12", &sets).ok());
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_EQ(sets[0], "AB");
  EXPECT_EQ(sets[1], "12");
  EXPECT_EQ(sets[2], "AB12");

  // The US alphabet has no 'O': letters skip it.
  ASSERT_TRUE(ExpandPattern("L", kNoO, &sets).ok());
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].size(), 25u);
  EXPECT_EQ(sets[0].find('O'), std::string::npos);
}

TEST(PatternExpandTest, ExplicitSetsAndRanges) {
  std::vector<std::string> sets;
  ASSERT_TRUE(ExpandPattern("[A-C]", kFull, &sets).ok());
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0], "ABC");

  ASSERT_TRUE(ExpandPattern("[A-HJ-NP-Z]", kFull, &sets).ok());
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0], "ABCDEFGHJKLMNPQRSTUVWXYZ");  // no I, no O

  // Characters outside the alphabet are dropped.
  ASSERT_TRUE(ExpandPattern("[A-C]", "AC0", &sets).ok());
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0], "AC");
  ASSERT_TRUE(ExpandPattern("[M-P]", kNoO, &sets).ok());
  EXPECT_EQ(sets[0], "MNP");

  // Single characters, duplicates merged, several positions, mixed with symbols.
  ASSERT_TRUE(ExpandPattern("[AB5][55]L[0-2X]", kFull, &sets).ok());
  ASSERT_EQ(sets.size(), 4u);
  EXPECT_EQ(sets[0], "AB5");
  EXPECT_EQ(sets[1], "5");
  EXPECT_EQ(sets[2], std::string(kFull.substr(10)));
  EXPECT_EQ(sets[3], "012X");

  // A one-character range.
  ASSERT_TRUE(ExpandPattern("[Q-Q]D", kFull, &sets).ok());
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0], "Q");
}

TEST(PatternExpandTest, ReplacesPreviousContents) {
  std::vector<std::string> sets = {"junk", "more junk", "x"};
  ASSERT_TRUE(ExpandPattern("D", kFull, &sets).ok());
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0], "0123456789");
}

TEST(PatternExpandTest, BadPatternsAreInvalidArgument) {
  struct Case {
    std::string pattern;
    std::string alphabet;
  };
  const Case cases[] = {
      {"LL[A-C", std::string(kFull)},  // unclosed '['
      {"[", std::string(kFull)},
      {"LXD", std::string(kFull)},    // unknown symbol
      {"l", std::string(kFull)},      // lowercase is not a symbol
      {"LLD ", std::string(kFull)},   // nor is a space
      {"[C-A]", std::string(kFull)},  // reversed range
      {"[9-0]", std::string(kFull)},
      {"[Q]", "AB12"},  // a set no alphabet character can fill
      {"[]", std::string(kFull)},
      {"LD", "0123456789"},      // no letters at all
      {"DL", "ABC"},             // no digits at all
      {"", std::string(kFull)},  // empty pattern
  };
  for (const Case& c : cases) {
    std::vector<std::string> sets;
    Status s = ExpandPattern(c.pattern, c.alphabet, &sets);
    EXPECT_EQ(s.code(), Code::kInvalidArgument)
        << "pattern '" << c.pattern << "' alphabet " << c.alphabet << ": " << s.ToString();
  }
  std::vector<std::string> sets;
  Status s = ExpandPattern("LXD", kFull, &sets);
  EXPECT_NE(s.message().find('X'), std::string::npos) << s.message();
  s = ExpandPattern("LL[A-C", kFull, &sets);
  EXPECT_NE(s.message().find("LL[A-C"), std::string::npos) << s.message();
}

// --- RegionGrammar::Parse ----------------------------------------------------------------------

TEST(RegionGrammarParseTest, MinimalGrammarGetsDefaults) {
  RegionGrammar g;
  Status s = RegionGrammar::Parse(R"({"region": "xx", "alphabet": "AB12",
                                      "patterns": [{"pattern": "LLD"}]})",
                                  "xx.json", &g);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(g.region, "xx");
  EXPECT_EQ(g.name, "xx");  // name defaults to the region
  EXPECT_EQ(g.alphabet, "AB12");
  EXPECT_TRUE(g.substitutions.empty());
  ASSERT_EQ(g.patterns.size(), 1u);
  EXPECT_EQ(g.patterns[0].name, "LLD");  // name defaults to the pattern
  EXPECT_EQ(g.patterns[0].source, "LLD");
  EXPECT_EQ(g.patterns[0].weight, 1.0);
  EXPECT_EQ(g.patterns[0].sets, (std::vector<std::string>{"AB", "AB", "12"}));
  EXPECT_EQ(g.free_weight, 0.0);
  EXPECT_TRUE(g.confusables.empty());
  EXPECT_FLOAT_EQ(g.plate_scale_x, 1.1f);
  EXPECT_FLOAT_EQ(g.plate_scale_y, 1.8f);
}

TEST(RegionGrammarParseTest, FullGrammar) {
  RegionGrammar g;
  Status s = RegionGrammar::Parse(R"({
      "region": "zz", "name": "Zedland", "comment": "ignored",
      "alphabet": "0123456789ABCDEFGHIJKLMNPQRSTUVWXYZ",
      "substitutions": {"O": "0", "Q": "0"},
      "patterns": [{"name": "classic", "pattern": "LLLDDD", "weight": 0.75},
                   {"pattern": "[A-C]DDDD", "weight": 1}],
      "free_form": {"min_length": 4, "max_length": 8, "min_digits": 2, "min_letters": 1,
                    "weight": 0.25},
      "confusables": [["I", "1", 0.5], ["B", "8", 0]],
      "plate_box_scale": [1.25, 2]
    })",
                                  "zz.json", &g);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(g.region, "zz");
  EXPECT_EQ(g.name, "Zedland");
  EXPECT_EQ(g.substitutions.size(), 2u);
  EXPECT_EQ(g.substitutions.at('O'), '0');
  EXPECT_EQ(g.substitutions.at('Q'), '0');
  ASSERT_EQ(g.patterns.size(), 2u);
  EXPECT_EQ(g.patterns[0].name, "classic");
  EXPECT_DOUBLE_EQ(g.patterns[0].weight, 0.75);
  EXPECT_EQ(g.patterns[1].name, "[A-C]DDDD");
  EXPECT_EQ(g.patterns[1].sets.size(), 5u);
  EXPECT_EQ(g.patterns[1].sets[0], "ABC");
  EXPECT_EQ(g.free_min_length, 4);
  EXPECT_EQ(g.free_max_length, 8);
  EXPECT_EQ(g.free_min_digits, 2);
  EXPECT_EQ(g.free_min_letters, 1);
  EXPECT_DOUBLE_EQ(g.free_weight, 0.25);
  ASSERT_EQ(g.confusables.size(), 2u);
  EXPECT_EQ(g.confusables[0].a, 'I');
  EXPECT_EQ(g.confusables[0].b, '1');
  EXPECT_FLOAT_EQ(g.confusables[0].share, 0.5f);
  EXPECT_EQ(g.confusables[1].a, 'B');
  EXPECT_FLOAT_EQ(g.confusables[1].share, 0.0f);
  EXPECT_FLOAT_EQ(g.plate_scale_x, 1.25f);
  EXPECT_FLOAT_EQ(g.plate_scale_y, 2.0f);
  EXPECT_EQ(g.Lengths(), (std::vector<int>{5, 6}));
}

TEST(RegionGrammarParseTest, FreeFormAloneIsEnough) {
  RegionGrammar g;
  Status s = RegionGrammar::Parse(R"({"region": "ff", "alphabet": "AB12", "patterns": [],
      "free_form": {"min_length": 1, "max_length": 12, "weight": 1}})",
                                  "ff.json", &g);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(g.patterns.empty());
  EXPECT_TRUE(g.Lengths().empty());
  EXPECT_DOUBLE_EQ(g.Prior("A"), 1.0);
}

TEST(RegionGrammarParseTest, BoundaryValuesAreAccepted) {
  RegionGrammar g;
  Status s = RegionGrammar::Parse(R"({"region": "b", "alphabet": "AB12",
      "patterns": [{"pattern": "L", "weight": 1.0}, {"pattern": "D", "weight": 1e-9}],
      "confusables": [["A", "1", 1.0], ["B", "2", 0.0]],
      "plate_box_scale": [0.5, 4]})",
                                  "b.json", &g);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FLOAT_EQ(g.plate_scale_x, 0.5f);
  EXPECT_FLOAT_EQ(g.plate_scale_y, 4.0f);
}

struct BadGrammar {
  const char* label;
  const char* json;
  const char* field;  // a word the error must name
};

// Each is valid but for one thing.
const BadGrammar kBadGrammars[] = {
    {"not json", R"({"region": "x", )", "JSON"},
    {"garbage", "plate", "JSON"},
    {"empty text", "", "JSON"},
    {"array at top", R"([{"region": "x"}])", "object"},
    {"string at top", R"("x")", "object"},
    {"no region", R"({"alphabet": "AB", "patterns": [{"pattern": "L"}]})", "region"},
    {"region not a string", R"({"region": 5, "alphabet": "AB", "patterns": [{"pattern": "L"}]})",
     "region"},
    {"no alphabet", R"({"region": "x", "patterns": [{"pattern": "L"}]})", "alphabet"},
    {"alphabet not a string",
     R"({"region": "x", "alphabet": ["A"], "patterns": [{"pattern": "L"}]})", "alphabet"},
    {"lowercase alphabet", R"({"region": "x", "alphabet": "ABc1", "patterns": [{"pattern": "L"}]})",
     "alphabet"},
    {"punctuation in alphabet",
     R"({"region": "x", "alphabet": "AB-1", "patterns": [{"pattern": "L"}]})", "alphabet"},
    {"substitutions not an object",
     R"({"region": "x", "alphabet": "AB1", "substitutions": ["O", "0"],
         "patterns": [{"pattern": "L"}]})",
     "substitutions"},
    {"substitution target outside alphabet",
     R"({"region": "x", "alphabet": "AB1", "substitutions": {"O": "0"},
         "patterns": [{"pattern": "L"}]})",
     "substitution"},
    {"substitution of two characters",
     R"({"region": "x", "alphabet": "AB1", "substitutions": {"OO": "1"},
         "patterns": [{"pattern": "L"}]})",
     "substitution"},
    {"substitution to a number",
     R"({"region": "x", "alphabet": "AB1", "substitutions": {"O": 1},
         "patterns": [{"pattern": "L"}]})",
     "substitution"},
    {"no patterns key", R"({"region": "x", "alphabet": "AB1"})", "patterns"},
    {"patterns not an array", R"({"region": "x", "alphabet": "AB1", "patterns": "L"})", "patterns"},
    {"pattern entry not an object", R"({"region": "x", "alphabet": "AB1", "patterns": ["L"]})",
     "pattern"},
    {"pattern without pattern",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"name": "n"}]})", "pattern"},
    {"weight zero",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"name": "heavy", "pattern": "L",
         "weight": 0}]})",
     "weight"},
    {"weight above one",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L", "weight": 1.5}]})",
     "weight"},
    {"weight negative",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L", "weight": -0.5}]})",
     "weight"},
    {"bad pattern symbol",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "LXD"}]})", "LXD"},
    {"pattern no alphabet character fills",
     R"({"region": "x", "alphabet": "AB", "patterns": [{"pattern": "LD"}]})", "LD"},
    {"free_form not an object",
     R"({"region": "x", "alphabet": "AB1", "patterns": [], "free_form": 1})", "free_form"},
    {"free_form min_length zero",
     R"({"region": "x", "alphabet": "AB1", "patterns": [],
         "free_form": {"min_length": 0, "max_length": 8, "weight": 0.5}})",
     "free_form"},
    {"free_form max below min",
     R"({"region": "x", "alphabet": "AB1", "patterns": [],
         "free_form": {"min_length": 6, "max_length": 5, "weight": 0.5}})",
     "free_form"},
    {"free_form max above 12",
     R"({"region": "x", "alphabet": "AB1", "patterns": [],
         "free_form": {"min_length": 4, "max_length": 13, "weight": 0.5}})",
     "free_form"},
    {"free_form weight zero",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "free_form": {"min_length": 4, "max_length": 8, "weight": 0}})",
     "free_form"},
    {"free_form weight missing",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "free_form": {"min_length": 4, "max_length": 8}})",
     "free_form"},
    {"free_form weight above one",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "free_form": {"min_length": 4, "max_length": 8, "weight": 1.01}})",
     "free_form"},
    {"no patterns and no free_form", R"({"region": "x", "alphabet": "AB1", "patterns": []})",
     "pattern"},
    {"confusables not an array",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "confusables": {"O": "0"}})",
     "confusable"},
    {"confusable with two entries",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "confusables": [["B", "1"]]})",
     "confusable"},
    {"confusable of two characters",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "confusables": [["BB", "1", 0.5]]})",
     "confusable"},
    {"confusable share not a number",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "confusables": [["B", "1", "0.5"]]})",
     "confusable"},
    {"confusable share above one",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "confusables": [["B", "1", 1.5]]})",
     "confusable"},
    {"confusable share negative",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "confusables": [["B", "1", -0.1]]})",
     "confusable"},
    {"confusable not an array",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "confusables": ["B1"]})",
     "confusable"},
    {"plate_box_scale not an array",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "plate_box_scale": 1.2})",
     "plate_box_scale"},
    {"plate_box_scale of three",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "plate_box_scale": [1, 1, 1]})",
     "plate_box_scale"},
    {"plate_box_scale not numbers",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "plate_box_scale": ["1", "1"]})",
     "plate_box_scale"},
    {"plate_box_scale too small",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "plate_box_scale": [0.4, 1]})",
     "plate_box_scale"},
    {"plate_box_scale too large",
     R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L"}],
         "plate_box_scale": [1, 4.5]})",
     "plate_box_scale"},
};

TEST(RegionGrammarParseTest, EveryValidationErrorIsCorruptionNamingSourceAndField) {
  for (const BadGrammar& bad : kBadGrammars) {
    RegionGrammar g;
    Status s = RegionGrammar::Parse(bad.json, "/some/dir/bad.json", &g);
    EXPECT_EQ(s.code(), Code::kCorruption) << bad.label << ": " << s.ToString();
    EXPECT_NE(s.message().find("/some/dir/bad.json"), std::string::npos)
        << bad.label << ": " << s.message();
    EXPECT_NE(s.message().find(bad.field), std::string::npos)
        << bad.label << ": message should name '" << bad.field << "': " << s.message();
  }
}

TEST(RegionGrammarParseTest, WrongJsonTypesAreCorruptionNotExceptions) {
  const char* const cases[] = {
      R"({"region": "x", "name": 7, "alphabet": "AB1", "patterns": [{"pattern": "L"}]})",
      R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L", "name": 1}]})",
      R"({"region": "x", "alphabet": "AB1", "patterns": [{"pattern": "L", "weight": "1"}]})",
      R"({"region": "x", "alphabet": "AB1", "patterns": [],
          "free_form": {"min_length": "4", "max_length": 8, "weight": 0.5}})",
  };
  for (const char* json : cases) {
    RegionGrammar g;
    Status s;
    ASSERT_NO_THROW(s = RegionGrammar::Parse(json, "typed.json", &g)) << json;
    EXPECT_EQ(s.code(), Code::kCorruption) << json << ": " << s.ToString();
    EXPECT_NE(s.message().find("typed.json"), std::string::npos) << s.message();
  }
}

TEST(RegionGrammarParseTest, FailureLeavesOutputAlone) {
  RegionGrammar g;
  g.region = "keep";
  Status s =
      RegionGrammar::Parse(R"({"region": "x", "alphabet": "AB1", "patterns": []})", "x.json", &g);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(g.region, "keep");
}

// --- RegionGrammar::Prior ----------------------------------------------------------------------

RegionGrammar ParseOrDie(const std::string& json) {
  RegionGrammar g;
  Status s = RegionGrammar::Parse(json, "test.json", &g);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return g;
}

TEST(RegionGrammarPriorTest, PatternsAndFreeForm) {
  RegionGrammar g =
      ParseOrDie(R"({"region": "t", "alphabet": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
      "patterns": [{"name": "three", "pattern": "LLL", "weight": 0.5},
                   {"name": "abc", "pattern": "[A-C]LL", "weight": 0.9},
                   {"name": "mixed", "pattern": "LDD", "weight": 0.7}],
      "free_form": {"min_length": 4, "max_length": 6, "min_digits": 2, "min_letters": 1,
                    "weight": 0.3}})");
  std::string format = "junk";
  EXPECT_DOUBLE_EQ(g.Prior("XYZ", &format), 0.5);
  EXPECT_EQ(format, "three");
  // Both "three" and "abc" match: the better weight wins, whatever the order.
  EXPECT_DOUBLE_EQ(g.Prior("BYZ", &format), 0.9);
  EXPECT_EQ(format, "abc");
  EXPECT_DOUBLE_EQ(g.Prior("A12", &format), 0.7);
  EXPECT_EQ(format, "mixed");

  // Free-form: 4..6 long, >= 2 digits, >= 1 letter.
  format = "junk";
  EXPECT_DOUBLE_EQ(g.Prior("AB12", &format), 0.3);
  EXPECT_EQ(format, "");
  EXPECT_DOUBLE_EQ(g.Prior("A1B2C3", &format), 0.3);
  EXPECT_DOUBLE_EQ(g.Prior("A1234", &format), 0.3);

  const char* const not_plates[] = {
      "ABC1",     // one digit
      "ABCD",     // no digits
      "12345",    // no letters
      "A1",       // too short, and no 2-character pattern
      "A12345X",  // 7 > max_length
      "AB12ab",   // outside the alphabet
      "AB-12",    // outside the alphabet
      "",         // nothing
      "XY",       // too short for everything
      "X1Y",      // 3 long: no pattern fits, too short for free form
  };
  for (const char* text : not_plates) {
    format = "junk";
    EXPECT_EQ(g.Prior(text, &format), 0.0) << text;
    EXPECT_EQ(format, "") << text;
  }
  // The format pointer is optional.
  EXPECT_DOUBLE_EQ(g.Prior("XYZ"), 0.5);
}

TEST(RegionGrammarPriorTest, DigitsOnlyWeight) {
  RegionGrammar g =
      ParseOrDie(R"({"region": "t", "alphabet": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
      "free_form": {"min_length": 4, "max_length": 6, "min_digits": 2, "min_letters": 0,
                    "weight": 0.5, "digits_only_weight": 0.1}})");
  EXPECT_DOUBLE_EQ(g.free_digits_only_weight, 0.1);
  EXPECT_DOUBLE_EQ(g.Prior("12345"), 0.1);
  EXPECT_DOUBLE_EQ(g.Prior("1234A"), 0.5);
  EXPECT_EQ(g.Prior("ABCDE"), 0.0);  // still two digits at least
  // Without the field, text without letters weighs as much as any free-form text.
  RegionGrammar plain = ParseOrDie(R"({"region": "t", "alphabet": "0123456789ABC",
      "free_form": {"min_length": 4, "max_length": 6, "min_digits": 2, "weight": 0.5}})");
  EXPECT_DOUBLE_EQ(plain.Prior("12345"), 0.5);
  // Out of range is Corruption naming the field.
  for (const char* weight : {"0", "-0.5", "1.5"}) {
    RegionGrammar bad;
    Status s = RegionGrammar::Parse(
        std::string(R"({"region": "t", "alphabet": "0123456789A", "free_form": {"min_length": 4,
        "max_length": 6, "weight": 0.5, "digits_only_weight": )") +
            weight + "}}",
        "bad.json", &bad);
    EXPECT_EQ(s.code(), Code::kCorruption) << weight;
    EXPECT_NE(s.message().find("digits_only_weight"), std::string::npos) << s.message();
  }
}

TEST(DateOrTimeTest, StampsBurnedIntoFrames) {
  for (const char* raw : {"2014-06-12", "2014-06-1810-19-19", "2014/06/12", "12:34:56", "06/12/14",
                          "2014-06-",    // cut at the edge of the detected line
                          "2014-06",     // a year-first date cut shorter still
                          "Z014-06-12",  // a "2" read as a "Z"
                          "12.06.2014"}) {
    EXPECT_TRUE(LooksLikeDateOrTime(raw)) << raw;
  }
}

TEST(DateOrTimeTest, PlatesAndOtherTextAreNot) {
  for (const char* raw : {
           "ABC1234", "7FR-971",          // one dash between groups, as many plates print it
           "8951283",                     // an all-digit plate: no separators
           "UF2-V5S", "888-GET-CHARTER",  // two separators, but mostly letters
           "12-AB-34",                    // digits do not dominate
           "1-2-3",                       // too few characters for a date
           "--1234", "-", "", "2014",     // no separator between characters
           "1234-56",                     // one separator and not a year-first date
       }) {
    EXPECT_FALSE(LooksLikeDateOrTime(raw)) << raw;
  }
}

TEST(RegionGrammarPriorTest, BestPatternWinsInEitherOrder) {
  RegionGrammar first_best = ParseOrDie(R"({"region": "t", "alphabet": "AB12",
      "patterns": [{"name": "hi", "pattern": "LD", "weight": 0.8},
                   {"name": "lo", "pattern": "AA", "weight": 0.4}]})");
  RegionGrammar last_best = ParseOrDie(R"({"region": "t", "alphabet": "AB12",
      "patterns": [{"name": "lo", "pattern": "AA", "weight": 0.4},
                   {"name": "hi", "pattern": "LD", "weight": 0.8}]})");
  for (const RegionGrammar* g : {&first_best, &last_best}) {
    std::string format;
    EXPECT_DOUBLE_EQ(g->Prior("A1", &format), 0.8);
    EXPECT_EQ(format, "hi");
    EXPECT_DOUBLE_EQ(g->Prior("1A", &format), 0.4);
    EXPECT_EQ(format, "lo");
    EXPECT_EQ(g->Prior("A1B", &format), 0.0);
    EXPECT_EQ(g->Prior("C1", &format), 0.0);  // 'C' is not in the alphabet
  }
}

TEST(RegionGrammarPriorTest, BruteForceAgainstSetMembership) {
  // Every string of length 0..3 over a slightly wider alphabet: the prior is the largest weight
  // among patterns that match position by position, computed here independently.
  RegionGrammar g = ParseOrDie(R"({"region": "t", "alphabet": "AB12",
      "patterns": [{"name": "p1", "pattern": "[AB]D", "weight": 0.6},
                   {"name": "p2", "pattern": "[A1][B2]", "weight": 0.9},
                   {"name": "p3", "pattern": "A[B-B]D", "weight": 0.2},
                   {"name": "p4", "pattern": "ALD", "weight": 0.4}]})");
  struct P {
    std::vector<std::string> sets;
    double weight;
    std::string name;
  };
  const std::vector<P> patterns = {{{"AB", "12"}, 0.6, "p1"},
                                   {{"A1", "B2"}, 0.9, "p2"},
                                   {{"A", "B", "12"}, 0.2, "p3"},
                                   {{"AB12", "AB", "12"}, 0.4, "p4"}};
  const std::string chars = "AB12C";
  std::vector<std::string> all{""};
  for (std::size_t begin = 0, len = 1; len <= 3; ++len) {
    const std::size_t end = all.size();
    for (std::size_t i = begin; i < end; ++i) {
      for (char c : chars) all.push_back(all[i] + c);
    }
    begin = end;
  }
  for (const std::string& text : all) {
    double want = 0;
    std::string want_name;
    for (const P& p : patterns) {
      if (p.sets.size() != text.size()) continue;
      bool match = true;
      for (std::size_t i = 0; i < text.size(); ++i) {
        match = match && p.sets[i].find(text[i]) != std::string::npos;
      }
      if (match && p.weight > want) {
        want = p.weight;
        want_name = p.name;
      }
    }
    std::string format = "junk";
    EXPECT_DOUBLE_EQ(g.Prior(text, &format), want) << text;
    EXPECT_EQ(format, want_name) << text;
  }
}

// --- RegionGrammar::LoadDirectory --------------------------------------------------------------

std::string Minimal(const std::string& region) {
  return R"({"region": ")" + region + R"(", "alphabet": "AB12", "patterns": [{"pattern": "LD"}]})";
}

class RegionGrammarLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "portcullis_grammar_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << "mkdtemp failed";
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Write(const std::string& name, const std::string& contents) const {
    std::ofstream out(dir_ + "/" + name, std::ios::binary);
    out << contents;
    ASSERT_TRUE(out.good());
  }

  Env* env_ = Env::Default();
  std::string dir_;
};

TEST_F(RegionGrammarLoadTest, LoadsJsonFilesSortedAndSkipsOthers) {
  Write("us.json", Minimal("us"));
  Write("br.json", Minimal("br"));
  Write("eu.json", Minimal("eu"));
  Write("README.md", "not a grammar");
  Write("us.json.bak", "{ broken");
  Write("notes.txt", "{ broken");
  Write(".json", "{ broken");  // no stem
  std::vector<RegionGrammar> out(2);
  Status s = RegionGrammar::LoadDirectory(env_, dir_, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].region, "br");
  EXPECT_EQ(out[1].region, "eu");
  EXPECT_EQ(out[2].region, "us");
  EXPECT_DOUBLE_EQ(out[2].Prior("A1"), 1.0);
}

TEST_F(RegionGrammarLoadTest, RegionMustEqualTheFileStem) {
  Write("fr.json", Minimal("de"));
  std::vector<RegionGrammar> out;
  Status s = RegionGrammar::LoadDirectory(env_, dir_, &out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("fr.json"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("region"), std::string::npos) << s.message();
}

TEST_F(RegionGrammarLoadTest, ABadFileFailsTheLoadAndIsNamed) {
  Write("aa.json", Minimal("aa"));
  Write("bb.json", R"({"region": "bb", "alphabet": "ab", "patterns": [{"pattern": "L"}]})");
  std::vector<RegionGrammar> out;
  Status s = RegionGrammar::LoadDirectory(env_, dir_, &out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(dir_ + "/bb.json"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("alphabet"), std::string::npos) << s.message();
}

TEST_F(RegionGrammarLoadTest, EmptyDirectoryIsNotFound) {
  std::vector<RegionGrammar> out(1);
  Status s = RegionGrammar::LoadDirectory(env_, dir_, &out);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_TRUE(out.empty());
  Write("README.md", "no grammars here");
  s = RegionGrammar::LoadDirectory(env_, dir_, &out);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find(dir_), std::string::npos) << s.message();
}

TEST_F(RegionGrammarLoadTest, MissingDirectoryIsNotFound) {
  std::vector<RegionGrammar> out;
  // The POSIX Env reports ENOENT as NotFound.
  Status s = RegionGrammar::LoadDirectory(env_, dir_ + "/nope", &out);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_TRUE(out.empty());
}

TEST_F(RegionGrammarLoadTest, AFileInsteadOfADirectoryIsIOError) {
  Write("us.json", Minimal("us"));
  std::vector<RegionGrammar> out;
  // opendir on a regular file fails with ENOTDIR, which the POSIX Env reports as IOError.
  Status s = RegionGrammar::LoadDirectory(env_, dir_ + "/us.json", &out);
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
}

// --- The shipped grammars ----------------------------------------------------------------------

class RegionGrammarShippedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s =
        RegionGrammar::LoadDirectory(Env::Default(), PORTCULLIS_SOURCE_DIR "/data/regions", &all_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  const RegionGrammar& Get(const std::string& region) const {
    auto it = std::find_if(all_.begin(), all_.end(),
                           [&](const RegionGrammar& g) { return g.region == region; });
    EXPECT_NE(it, all_.end()) << "no grammar " << region;
    return it == all_.end() ? all_.front() : *it;
  }
  std::vector<RegionGrammar> all_;
};

TEST_F(RegionGrammarShippedTest, UsEuAndBrLoad) {
  for (const char* region : {"br", "eu", "us"}) {
    EXPECT_TRUE(std::any_of(all_.begin(), all_.end(), [&](const RegionGrammar& g) {
      return g.region == region;
    })) << region;
  }
  EXPECT_TRUE(std::is_sorted(
      all_.begin(), all_.end(),
      [](const RegionGrammar& a, const RegionGrammar& b) { return a.region < b.region; }));
}

TEST_F(RegionGrammarShippedTest, Brazil) {
  const RegionGrammar& br = Get("br");
  std::string format;
  EXPECT_DOUBLE_EQ(br.Prior("ABC1234", &format), 1.0);
  EXPECT_EQ(format, "brazil");
  EXPECT_DOUBLE_EQ(br.Prior("BRA2E19", &format), 1.0);
  EXPECT_EQ(format, "mercosur");
  EXPECT_EQ(br.Prior("ABC12345", &format), 0.0);  // too long
  EXPECT_EQ(br.Prior("AB1234", &format), 0.0);    // too short
  EXPECT_EQ(br.Prior("1BC1234", &format), 0.0);   // digit where a letter goes
  EXPECT_EQ(br.Prior("ABC12E4", &format), 0.0);   // neither layout
  EXPECT_EQ(br.Lengths(), (std::vector<int>{7}));
}

TEST_F(RegionGrammarShippedTest, UnitedStates) {
  const RegionGrammar& us = Get("us");
  std::string format;
  EXPECT_DOUBLE_EQ(us.Prior("7ABC123", &format), 1.0);
  EXPECT_EQ(format, "california");
  // All-digit plates exist (the reader rejects date and time stamps by their separators, see
  // LooksLikeDateOrTime), but rank below mixed text and below any layout: a "1" read for an "N"
  // must not beat the LDDDDDD layout that explains it.
  const double digits_only = us.Prior("8951283", &format);
  EXPECT_GT(digits_only, 0.0);
  EXPECT_EQ(format, "");
  EXPECT_LT(digits_only, us.Prior("AB12C"));
  EXPECT_LT(digits_only, us.Prior("N359973"));
  // Words are all letters (and 'O' is not in the alphabet).
  EXPECT_EQ(us.Prior("NORTHERN", &format), 0.0);
  EXPECT_EQ(us.Prior("N0RTHERN", &format), 0.0);
  EXPECT_EQ(us.Prior("CALIFORNIA", &format), 0.0);
  // Not in any listed layout, but plausible: the free-form rule.
  const double free = us.Prior("AB12C", &format);
  EXPECT_GT(free, 0.0);
  EXPECT_LT(free, 1.0);
  EXPECT_EQ(format, "");
  // O never appears; readers map it to 0.
  EXPECT_EQ(us.alphabet.find('O'), std::string::npos);
  ASSERT_EQ(us.substitutions.count('O'), 1u);
  EXPECT_EQ(us.substitutions.at('O'), '0');
}

TEST_F(RegionGrammarShippedTest, Europe) {
  const RegionGrammar& eu = Get("eu");
  std::string format;
  EXPECT_DOUBLE_EQ(eu.Prior("BA512CK", &format), 1.0);
  EXPECT_EQ(format, "LLDDDLL");
  EXPECT_GT(eu.Prior("1AB2345", &format), 0.0);  // Czech
  EXPECT_EQ(eu.Prior("12345678", &format), 0.0);
}

TEST_F(RegionGrammarShippedTest, EveryGrammarIsConsistent) {
  for (const RegionGrammar& g : all_) {
    SCOPED_TRACE(g.region);
    EXPECT_FALSE(g.alphabet.empty());
    EXPECT_FALSE(g.name.empty());
    for (const auto& [from, to] : g.substitutions) {
      EXPECT_EQ(g.alphabet.find(from), std::string::npos) << "substitutes a character it keeps";
      EXPECT_NE(g.alphabet.find(to), std::string::npos);
    }
    for (const PlatePattern& p : g.patterns) {
      ASSERT_FALSE(p.sets.empty()) << p.name;
      for (const std::string& set : p.sets) {
        ASSERT_FALSE(set.empty()) << p.name;
        for (char c : set) EXPECT_NE(g.alphabet.find(c), std::string::npos) << p.name;
      }
    }
    for (const auto& c : g.confusables) {
      EXPECT_NE(g.alphabet.find(c.a), std::string::npos) << c.a;
      EXPECT_NE(g.alphabet.find(c.b), std::string::npos) << c.b;
    }
  }
}

}  // namespace
}  // namespace portcullis::plate
