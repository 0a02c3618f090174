#include "face/face_metrics.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace portcullis::face {
namespace {

// Accuracy of "same iff distance <= t" on the pairs selected by keep.
template <typename Keep>
double AccuracyAt(const std::vector<ScoredPair>& pairs, double t, Keep keep) {
  std::size_t right = 0;
  std::size_t total = 0;
  for (const ScoredPair& p : pairs) {
    if (!keep(p)) continue;
    ++total;
    if ((p.distance <= t) == p.same) ++right;
  }
  return total == 0 ? 0.0 : static_cast<double>(right) / static_cast<double>(total);
}

// The threshold maximising accuracy on the kept pairs: candidates are midpoints between
// consecutive distinct distances (and the ends).
template <typename Keep>
double BestThreshold(const std::vector<ScoredPair>& pairs, Keep keep) {
  std::vector<ScoredPair> kept;
  for (const ScoredPair& p : pairs) {
    if (keep(p)) kept.push_back(p);
  }
  if (kept.empty()) return 0;
  std::sort(kept.begin(), kept.end(),
            [](const ScoredPair& a, const ScoredPair& b) { return a.distance < b.distance; });
  // Sweep: accepting the first i pairs; correct = genuine among them + impostors after them.
  std::size_t impostors_total = 0;
  for (const ScoredPair& p : kept) impostors_total += p.same ? 0 : 1;
  std::size_t genuine_accepted = 0;
  std::size_t impostors_accepted = 0;
  std::size_t best_correct = impostors_total;  // threshold below every distance
  double best_t = static_cast<double>(kept.front().distance) - 1e-3;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    if (kept[i].same) {
      ++genuine_accepted;
    } else {
      ++impostors_accepted;
    }
    if (i + 1 < kept.size() && kept[i + 1].distance == kept[i].distance) continue;
    const std::size_t correct = genuine_accepted + (impostors_total - impostors_accepted);
    if (correct > best_correct) {
      best_correct = correct;
      best_t = i + 1 < kept.size()
                   ? 0.5 * (static_cast<double>(kept[i].distance) + kept[i + 1].distance)
                   : static_cast<double>(kept[i].distance) + 1e-3;
    }
  }
  return best_t;
}

}  // namespace

FoldAccuracy CrossValidatedAccuracy(const std::vector<ScoredPair>& pairs, int folds) {
  FoldAccuracy out;
  std::vector<double> accuracies;
  double threshold_sum = 0;
  for (int f = 0; f < folds; ++f) {
    const bool has_fold =
        std::any_of(pairs.begin(), pairs.end(), [f](const ScoredPair& p) { return p.fold == f; });
    if (!has_fold) continue;
    const double t = BestThreshold(pairs, [f](const ScoredPair& p) { return p.fold != f; });
    accuracies.push_back(AccuracyAt(pairs, t, [f](const ScoredPair& p) { return p.fold == f; }));
    threshold_sum += t;
  }
  out.folds = static_cast<int>(accuracies.size());
  if (accuracies.empty()) return out;
  double sum = 0;
  for (const double a : accuracies) sum += a;
  out.mean = sum / static_cast<double>(accuracies.size());
  double var = 0;
  for (const double a : accuracies) var += (a - out.mean) * (a - out.mean);
  out.stddev = std::sqrt(var / static_cast<double>(accuracies.size()));
  out.mean_threshold = threshold_sum / static_cast<double>(accuracies.size());
  return out;
}

RocPoint TarAtFar(const std::vector<ScoredPair>& pairs, double target_far) {
  RocPoint r;
  r.target_far = target_far;
  std::vector<float> genuine;
  std::vector<float> impostor;
  for (const ScoredPair& p : pairs) (p.same ? genuine : impostor).push_back(p.distance);
  if (genuine.empty() || impostor.empty()) return r;
  std::sort(impostor.begin(), impostor.end());
  // Accepting distance <= t admits every impostor at or below t; allowed = floor(target * n).
  const auto allowed =
      static_cast<std::size_t>(std::floor(target_far * static_cast<double>(impostor.size())));
  // The threshold sits just below the (allowed)-th impostor (0-based), so at most `allowed`
  // impostors are accepted even when several share a distance.
  double t = 0;
  if (allowed >= impostor.size()) {
    t = impostor.back();
  } else {
    t = std::nextafter(impostor[allowed], -1.0f);
  }
  std::size_t fa = 0;
  for (const float d : impostor) fa += d <= t ? 1 : 0;
  std::size_t ta = 0;
  for (const float d : genuine) ta += d <= t ? 1 : 0;
  r.threshold = t;
  r.far = static_cast<double>(fa) / static_cast<double>(impostor.size());
  r.tar = static_cast<double>(ta) / static_cast<double>(genuine.size());
  return r;
}

IdentificationStats Identification(const std::vector<ProbeResult>& probes, double fpir_target) {
  IdentificationStats s;
  s.fpir_target = fpir_target;
  std::vector<float> non_mated;
  int rank1 = 0;
  for (const ProbeResult& p : probes) {
    if (p.mated) {
      ++s.mated_probes;
      rank1 += p.rank1_correct ? 1 : 0;
    } else {
      non_mated.push_back(p.nearest_distance);
    }
  }
  s.non_mated_probes = static_cast<int>(non_mated.size());
  if (s.mated_probes > 0) s.rank1 = static_cast<double>(rank1) / s.mated_probes;
  std::sort(non_mated.begin(), non_mated.end());
  const auto allowed =
      static_cast<std::size_t>(std::floor(fpir_target * static_cast<double>(non_mated.size())));
  double t = 0;
  if (non_mated.empty()) {
    t = 0;  // no non-mated probes: FPIR is undefined; report FNIR at threshold 0 (all missed)
  } else if (allowed >= non_mated.size()) {
    t = non_mated.back();
  } else {
    t = std::nextafter(non_mated[allowed], -1.0f);
  }
  s.threshold = t;
  std::size_t fp = 0;
  for (const float d : non_mated) fp += d <= t ? 1 : 0;
  s.fpir = non_mated.empty() ? 0 : static_cast<double>(fp) / static_cast<double>(non_mated.size());
  int misses = 0;
  for (const ProbeResult& p : probes) {
    if (p.mated && !(p.rank1_correct && p.nearest_distance <= t)) ++misses;
  }
  if (s.mated_probes > 0) s.fnir = static_cast<double>(misses) / s.mated_probes;
  return s;
}

}  // namespace portcullis::face
