// Per-region plate grammars, loaded from data/regions/<region>.json (one file per region, so a
// new country is a data change, not a code change). A grammar says which characters occur,
// which layouts (patterns) are valid and how common each is, and how a read plate box relates to
// the detected text line. docs/regions.md describes the file format.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/env.h"
#include "portcullis/status.h"

namespace portcullis::plate {

struct PlatePattern {
  std::string name;               // e.g. "mercosur"
  std::string source;             // the pattern as written, e.g. "LLLDLDD"
  std::vector<std::string> sets;  // allowed characters per position
  // Group boundaries: k in gaps means a plate of this layout may show a mark (state emblem,
  // sticker, hyphen) between character k - 1 and character k, written as a space in the pattern
  // ("LLD LDL" -> {3}). The reader may drop one character read there (RegionGrammar::junk_weight).
  std::vector<int> gaps;
  double weight = 1.0;  // prior: how common this layout is, relative to the others
};

struct RegionGrammar {
  std::string region;    // file stem: "us"
  std::string name;      // "United States"
  std::string alphabet;  // every character a plate of this region may contain
  // Characters the region's plates never show and the ones readers should take instead, e.g.
  // the US benchmark convention O -> 0. Applied to recogniser probabilities, before decoding.
  std::map<char, char> substitutions;
  std::vector<PlatePattern> patterns;
  // Free-form fallback for regions with too many layouts to list (the US): any text from the
  // alphabet with a length in [free_min_length, free_max_length], at least free_min_digits digits
  // and free_min_letters letters (so dates, phone numbers and words are not plates); weight 0
  // disables it.
  int free_min_length = 0;
  int free_max_length = 0;
  int free_min_digits = 0;
  int free_min_letters = 0;
  double free_weight = 0;
  // The free-form weight of a text without letters (free_min_letters 0 lets such texts through):
  // all-digit plates exist but are rarer than mixed ones, and a digit misread as one ("1" for "N")
  // must not outrank a layout that explains it. Defaults to free_weight.
  double free_digits_only_weight = 0;
  // Glyph pairs this region's plate fonts draw (nearly) alike, and how much of one's recogniser
  // probability may count for the other where a pattern asks for it. The recogniser was trained on
  // documents, where context decides "O" vs "0"; on a plate the layout does.
  struct Confusable {
    char a = 0;
    char b = 0;
    float share = 0;  // in [0, 1]
  };
  std::vector<Confusable> confusables;
  // The prior cost of dropping one character read at a pattern's gap (an emblem or sticker between
  // character groups read as a character): a read that needs the drop to fit the layout scores
  // log P(text with the dropped character | line) + log junk_weight + log pattern weight.
  // 0 (the default) never drops.
  double junk_weight = 0;
  // Plate box = text-line box scaled about its centre by these factors.
  float plate_scale_x = 1.1f;
  float plate_scale_y = 1.8f;

  // Parses and validates one grammar; errors name `source` and the offending field.
  static Status Parse(std::string_view json_text, const std::string& source, RegionGrammar* out);
  // Loads every *.json in a directory, sorted by file name.
  static Status LoadDirectory(Env* env, const std::string& dir, std::vector<RegionGrammar>* out);

  // The prior weight of text under this grammar: the best matching pattern's weight, else the
  // free-form weight if it qualifies, else 0 (not a plate of this region). *format gets the
  // pattern's name ("" for free-form).
  [[nodiscard]] double Prior(std::string_view text, std::string* format = nullptr) const;
  // Every distinct pattern length, shortest first.
  [[nodiscard]] std::vector<int> Lengths() const;
};

// Whether a line's raw reading (separators kept, written as any of "-/:.") has the shape of a
// date or a time of day rather than a plate: at least two separators, each between two
// characters, and the characters mostly digits ("2014-06-12", "12:34:56", "06/12/14 12:34").
// Cameras burn such stamps into frames; with the separators folded away they read as all-digit
// strings ("20140612") that a plate grammar would otherwise accept.
bool LooksLikeDateOrTime(std::string_view raw);

// Expands a pattern: L = letter, D = digit, A = any character of the alphabet, [..] = explicit
// set with ranges ("[A-HJ-NP-Z]"), a space = a gap between character groups (its position goes
// to *gaps when given; a space at either end or two in a row are errors). Characters outside the
// alphabet are dropped from each set.
Status ExpandPattern(std::string_view pattern, std::string_view alphabet,
                     std::vector<std::string>* sets, std::vector<int>* gaps = nullptr);

}  // namespace portcullis::plate
