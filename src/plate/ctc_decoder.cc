#include "plate/ctc_decoder.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace portcullis::plate {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double LogAdd(double a, double b) {
  if (a == kNegInf) return b;
  if (b == kNegInf) return a;
  double hi = std::max(a, b);
  return hi + std::log1p(std::exp(std::min(a, b) - hi));
}

double LogP(const cv::Mat& probs, int t, int column) {
  float p = probs.at<float>(t, column);
  return p > 0 ? std::log(static_cast<double>(p)) : kNegInf;
}

bool ValidShape(const cv::Mat& probs, std::string_view alphabet) {
  return !probs.empty() && probs.type() == CV_32F &&
         probs.cols == static_cast<int>(alphabet.size()) + 1;
}

}  // namespace

std::string CtcGreedy(const cv::Mat& probs, std::string_view alphabet) {
  std::string text;
  if (!ValidShape(probs, alphabet)) return text;
  int previous = 0;
  for (int t = 0; t < probs.rows; ++t) {
    cv::Point max_loc;
    cv::minMaxLoc(probs.row(t), nullptr, nullptr, nullptr, &max_loc);
    int best = max_loc.x;
    if (best != 0 && best != previous) text += alphabet[static_cast<std::size_t>(best - 1)];
    previous = best;
  }
  return text;
}

std::vector<CtcPath> CtcBeamSearch(const cv::Mat& probs, std::string_view alphabet, int beam_width,
                                   int top_n) {
  std::vector<CtcPath> result;
  if (!ValidShape(probs, alphabet) || beam_width <= 0 || top_n <= 0) return result;
  // Per prefix: log-probability of the paths ending in a blank and ending in its last character.
  struct Entry {
    std::string prefix;
    double blank = kNegInf;
    double non_blank = kNegInf;
    [[nodiscard]] double Total() const { return LogAdd(blank, non_blank); }
  };
  // Characters this unlikely at a step cannot change the top of the beam; skipping them keeps the
  // search at a handful of extensions per step.
  const double prune = std::log(1e-4);
  std::vector<double> lp(static_cast<std::size_t>(probs.cols));
  std::vector<Entry> beam{{"", 0.0, kNegInf}};
  std::vector<Entry> next;
  std::unordered_map<std::string, std::size_t> index;
  for (int t = 0; t < probs.rows; ++t) {
    for (int c = 0; c < probs.cols; ++c) lp[static_cast<std::size_t>(c)] = LogP(probs, t, c);
    next.clear();
    index.clear();
    auto slot = [&](const std::string& prefix) -> Entry& {
      auto [it, inserted] = index.try_emplace(prefix, next.size());
      if (inserted) next.push_back({prefix, kNegInf, kNegInf});
      return next[it->second];
    };
    for (const Entry& e : beam) {
      const double total = e.Total();
      {
        // Stay on the same prefix by a blank, or by repeating the last character (collapses).
        Entry& same = slot(e.prefix);
        same.blank = LogAdd(same.blank, total + lp[0]);
        if (!e.prefix.empty()) {
          const auto last = static_cast<int>(alphabet.find(e.prefix.back())) + 1;
          same.non_blank = LogAdd(same.non_blank, e.non_blank + lp[static_cast<std::size_t>(last)]);
        }
      }
      for (int c = 1; c < probs.cols; ++c) {
        if (lp[static_cast<std::size_t>(c)] < prune) continue;
        const char ch = alphabet[static_cast<std::size_t>(c - 1)];
        // A repeated character needs a blank between the two occurrences.
        const double from = (!e.prefix.empty() && e.prefix.back() == ch) ? e.blank : total;
        if (from == kNegInf) continue;  // e.g. "AA" before any blank could separate the two
        Entry& ext = slot(e.prefix + ch);
        ext.non_blank = LogAdd(ext.non_blank, from + lp[static_cast<std::size_t>(c)]);
      }
    }
    const std::size_t keep = std::min(next.size(), static_cast<std::size_t>(beam_width));
    std::partial_sort(next.begin(), next.begin() + static_cast<std::ptrdiff_t>(keep), next.end(),
                      [](const Entry& a, const Entry& b) { return a.Total() > b.Total(); });
    next.resize(keep);
    beam.swap(next);
  }
  for (const Entry& e : beam) {
    if (e.Total() != kNegInf) result.push_back({e.prefix, e.Total()});
  }
  std::sort(result.begin(), result.end(),
            [](const CtcPath& a, const CtcPath& b) { return a.log_prob > b.log_prob; });
  if (result.size() > static_cast<std::size_t>(top_n)) result.resize(top_n);
  return result;
}

double CtcLogLikelihood(const cv::Mat& probs, std::string_view alphabet, std::string_view text) {
  if (!ValidShape(probs, alphabet)) return kNegInf;
  std::vector<int> labels;
  for (char ch : text) {
    auto pos = alphabet.find(ch);
    if (pos == std::string_view::npos) return kNegInf;
    labels.push_back(static_cast<int>(pos) + 1);
  }
  // Extended sequence: blank, l1, blank, l2, ..., blank.
  const std::size_t states = 2 * labels.size() + 1;
  auto label_at = [&](std::size_t s) { return (s % 2 == 0) ? 0 : labels[s / 2]; };
  std::vector<double> alpha(states, kNegInf), next(states);
  alpha[0] = LogP(probs, 0, 0);
  if (states > 1) alpha[1] = LogP(probs, 0, label_at(1));
  for (int t = 1; t < probs.rows; ++t) {
    for (std::size_t s = 0; s < states; ++s) {
      double a = alpha[s];
      if (s >= 1) a = LogAdd(a, alpha[s - 1]);
      if (s >= 2 && label_at(s) != 0 && label_at(s) != label_at(s - 2)) a = LogAdd(a, alpha[s - 2]);
      next[s] = a + LogP(probs, t, label_at(s));
    }
    alpha.swap(next);
  }
  double total = alpha[states - 1];
  if (states > 1) total = LogAdd(total, alpha[states - 2]);
  return total;
}

bool CtcConstrainedBest(const cv::Mat& probs, std::string_view alphabet,
                        const std::vector<std::string>& sets, CtcPath* best) {
  if (!ValidShape(probs, alphabet) || sets.empty()) return false;
  const std::size_t length = sets.size();
  if (static_cast<int>(length) > probs.rows) return false;
  // Columns allowed at each position.
  std::vector<std::vector<int>> columns(length);
  for (std::size_t k = 0; k < length; ++k) {
    for (char ch : sets[k]) {
      auto pos = alphabet.find(ch);
      if (pos != std::string_view::npos) columns[k].push_back(static_cast<int>(pos) + 1);
    }
    if (columns[k].empty()) return false;
  }
  // Viterbi over states "k labels emitted, now in blank" and "emitting label k with column c".
  // Each state carries the best text so far (at most 'length' characters: cheap to copy).
  struct Cell {
    double lp = kNegInf;
    std::string text;
  };
  std::vector<Cell> blank(length + 1), blank_next(length + 1);
  std::vector<std::vector<Cell>> emit(length), emit_next(length);
  for (std::size_t k = 0; k < length; ++k) {
    emit[k].resize(columns[k].size());
    emit_next[k].resize(columns[k].size());
  }
  blank[0] = {LogP(probs, 0, 0), ""};
  for (std::size_t i = 0; i < columns[0].size(); ++i) {
    int c = columns[0][i];
    emit[0][i] = {LogP(probs, 0, c), std::string(1, alphabet[static_cast<std::size_t>(c - 1)])};
  }
  for (int t = 1; t < probs.rows; ++t) {
    const double blank_lp = LogP(probs, t, 0);
    for (std::size_t k = 0; k <= length; ++k) {
      // Blank after k labels: from the same blank, or from the last character of label k.
      Cell cell = blank[k];
      if (k >= 1) {
        for (const Cell& e : emit[k - 1]) {
          if (e.lp > cell.lp) cell = e;
        }
      }
      cell.lp += blank_lp;
      blank_next[k] = cell;
    }
    for (std::size_t k = 0; k < length; ++k) {
      // The best and second-best cells of label k - 1 (first maxima in column order): a character
      // entered directly from label k - 1 comes from the best one unless it is the same
      // character, then from the second. Linear in the set sizes instead of their product, which
      // matters for a position that allows the whole alphabet (the grammar's junk slot).
      std::size_t best_prev = 0, second_prev = 0;
      bool has_second = false;
      if (k >= 1) {
        const auto& prev = emit[k - 1];
        for (std::size_t j = 1; j < prev.size(); ++j) {
          if (prev[j].lp > prev[best_prev].lp) best_prev = j;
        }
        for (std::size_t j = 0; j < prev.size(); ++j) {
          if (j == best_prev) continue;
          if (!has_second || prev[j].lp > prev[second_prev].lp) {
            second_prev = j;
            has_second = true;
          }
        }
      }
      for (std::size_t i = 0; i < columns[k].size(); ++i) {
        const int c = columns[k][i];
        const char ch = alphabet[static_cast<std::size_t>(c - 1)];
        // Stay on the same character, or enter it from the blank after k labels, or directly
        // from a different character of label k - 1 (equal neighbours need a blank between).
        Cell cell = emit[k][i];
        bool entered = false;
        Cell from = blank[k];
        if (from.lp > cell.lp) {
          cell = from;
          entered = true;
        }
        if (k >= 1) {
          const bool same = columns[k - 1][best_prev] == c;
          if (!same || has_second) {
            const Cell& prev = emit[k - 1][same ? second_prev : best_prev];
            if (prev.lp > cell.lp) {
              cell = prev;
              entered = true;
            }
          }
        }
        if (entered) cell.text += ch;
        cell.lp += LogP(probs, t, c);
        emit_next[k][i] = std::move(cell);
      }
    }
    blank.swap(blank_next);
    emit.swap(emit_next);
  }
  Cell final_cell = blank[length];
  for (const Cell& e : emit[length - 1]) {
    if (e.lp > final_cell.lp) final_cell = e;
  }
  if (final_cell.lp == kNegInf || final_cell.text.size() != length) return false;
  best->text = final_cell.text;
  best->log_prob = final_cell.lp;
  return true;
}

}  // namespace portcullis::plate
