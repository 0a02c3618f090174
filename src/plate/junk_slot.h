// The grammar's "junk slot": a state emblem, a registration sticker or a hyphen-like mark between
// a plate's character groups is often read as one more character ("SH0R7X" with a red emblem
// after "SH0" reads "SH0LR7X"), and the extra character makes the read fit no layout. A pattern
// written with a space ("LLD LDL") names such a gap, and the reader may drop one character read
// there, at a prior cost (RegionGrammar::junk_weight).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>

#include "plate/grammar.h"
#include "portcullis/plate.h"

namespace portcullis::plate {

// For each pattern and each of its gaps, the most probable path (CtcConstrainedBest) whose text
// fits the pattern with one extra character of any kind at the gap. Each is returned without
// that character, with format = the pattern's name and score
//   log P(text with the extra character | probs) + log junk_weight + log pattern weight,
// and confidence = exp(score) capped at 1. Empty when g.junk_weight is 0 or no pattern has gaps.
// probs: T x (1 + g.alphabet.size()) in the grammar's alphabet, as ReadUnderGrammar decodes.
std::vector<std::pair<Candidate, double>> ReadsWithJunkDropped(const cv::Mat& probs,
                                                               const RegionGrammar& g);

}  // namespace portcullis::plate
