// Verification and identification metrics for `portcullis face eval` (pure functions, unit-tested
// on hand-made distances).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace portcullis::face {

struct ScoredPair {
  float distance = 0;
  bool same = false;  // genuine (same person) or impostor
  int fold = 0;       // 0-9 for the LFW protocol
};

// LFW protocol: for each fold, the accuracy-maximising threshold chosen on the other nine folds,
// applied to that fold. Mean and standard deviation of the ten accuracies; also the mean chosen
// threshold. Folds without pairs are skipped.
struct FoldAccuracy {
  double mean = 0;
  double stddev = 0;
  double mean_threshold = 0;
  int folds = 0;
};
FoldAccuracy CrossValidatedAccuracy(const std::vector<ScoredPair>& pairs, int folds = 10);

// One operating point: accept when distance <= threshold.
struct RocPoint {
  double target_far = 0;  // the false-accept rate asked for
  double far = 0;         // achieved (<= target_far), impostors accepted / impostors
  double tar = 0;         // genuine accepted / genuine
  double threshold = 0;
};
// The largest threshold whose FAR does not exceed target_far (ties on a distance are accepted or
// refused together, so the achieved FAR can be below the target).
RocPoint TarAtFar(const std::vector<ScoredPair>& pairs, double target_far);

// 1:N. For each probe: the distance to the nearest enrolled template and whether that template
// belongs to the probe's own identity (mated probes only).
struct ProbeResult {
  bool mated = false;  // the probe's identity is enrolled
  bool rank1_correct = false;
  float nearest_distance = 0;
};
struct IdentificationStats {
  int mated_probes = 0;
  int non_mated_probes = 0;
  double rank1 = 0;        // mated probes whose nearest template is their own
  double fpir_target = 0;  // e.g. 0.01
  double threshold = 0;    // the largest threshold with FPIR <= target
  double fpir = 0;         // achieved
  double fnir = 0;         // mated probes not identified (wrong rank 1 or above threshold)
};
IdentificationStats Identification(const std::vector<ProbeResult>& probes, double fpir_target);

}  // namespace portcullis::face
