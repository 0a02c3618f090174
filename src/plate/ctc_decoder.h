// CTC decoding over a small alphabet. Pure functions of a probability matrix, so they are tested
// without any model.
//
// probs: a CV_32F matrix with one row per time step and 1 + alphabet.size() columns; column 0 is
// the CTC blank, column i + 1 is alphabet[i]. Rows should sum to ~1 (they are probabilities).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core.hpp>

namespace portcullis::plate {

struct CtcPath {
  std::string text;
  double log_prob = 0;  // log P(text | probs): summed over alignments (beam) or best path (Viterbi)
};

// The best path, collapsed (repeats merged, blanks removed).
std::string CtcGreedy(const cv::Mat& probs, std::string_view alphabet);

// Prefix beam search: the top_n most probable label sequences, best first, each with its
// probability summed over all alignments that the beam kept.
std::vector<CtcPath> CtcBeamSearch(const cv::Mat& probs, std::string_view alphabet, int beam_width,
                                   int top_n);

// log P(text | probs) by the CTC forward algorithm, over all alignments. -infinity when the text
// cannot be aligned (too long for the time steps, or a character outside the alphabet).
double CtcLogLikelihood(const cv::Mat& probs, std::string_view alphabet, std::string_view text);

// The most probable single path whose label sequence has exactly sets.size() characters, the
// k-th taken from sets[k] (a string of allowed characters). This is how a plate grammar such as
// "three letters then four digits" turns a read of "8RZ1234" into "BRZ1234": each position picks
// its best character of the right kind. Returns false when no such path exists.
bool CtcConstrainedBest(const cv::Mat& probs, std::string_view alphabet,
                        const std::vector<std::string>& sets, CtcPath* best);

}  // namespace portcullis::plate
