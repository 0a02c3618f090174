#include "plate/junk_slot.h"

#include <algorithm>
#include <cmath>

#include "plate/ctc_decoder.h"

namespace portcullis::plate {

std::vector<std::pair<Candidate, double>> ReadsWithJunkDropped(const cv::Mat& probs,
                                                               const RegionGrammar& g) {
  std::vector<std::pair<Candidate, double>> out;
  if (g.junk_weight <= 0) return out;
  for (const auto& pattern : g.patterns) {
    for (const int gap : pattern.gaps) {
      if (gap <= 0 || gap >= static_cast<int>(pattern.sets.size())) continue;
      // The extra character may be anything the recogniser can say: an emblem reads as
      // whatever glyph it resembles.
      std::vector<std::string> sets = pattern.sets;
      sets.insert(sets.begin() + gap, g.alphabet);
      CtcPath path;
      if (!CtcConstrainedBest(probs, g.alphabet, sets, &path)) continue;
      // Scored over every alignment of the text as read, like any other candidate.
      const double log_likelihood = CtcLogLikelihood(probs, g.alphabet, path.text);
      if (!std::isfinite(log_likelihood)) continue;
      Candidate candidate;
      candidate.text = path.text;
      candidate.text.erase(static_cast<std::size_t>(gap), 1);
      candidate.format = pattern.name;
      const double score = log_likelihood + std::log(g.junk_weight) + std::log(pattern.weight);
      candidate.confidence = static_cast<float>(std::min(1.0, std::exp(score)));
      out.emplace_back(std::move(candidate), score);
    }
  }
  return out;
}

}  // namespace portcullis::plate
