// Synthetic face templates for gallery tests and benchmarks (header-only, not in the library).
//
// Identities = centre (norm ~0.5) + a Gaussian spread whose per-axis variances follow a power law
// (variance of axis i proportional to (i+1)^-decay, decay 0 = isotropic) in a random orthonormal
// basis, scaled so that two different identities are ~0.9 apart (dlib-like: same person below
// ~0.6); norms come out ~0.65-1.0. Captures = identity + isotropic noise (sigma 0.031 per dim:
// ~0.35 from the identity). Real embeddings have a decaying spectrum; decay 0 is the worst case
// for graph indexes (intrinsic dimension 128).
#pragma once

#include <array>
#include <cmath>
#include <random>
#include <vector>

#include "portcullis/face.h"

namespace portcullis::face::testing {

class TemplateSynth {
 public:
  explicit TemplateSynth(std::uint64_t seed, double decay = 0.0) : rng_(seed) {
    constexpr std::size_t d = kTemplateDims;
    std::normal_distribution<float> g(0.0f, 0.5f / 11.3137f);
    for (float& v : centre_) v = g(rng_);
    // Per-axis sigmas with total variance 128 * 0.056^2 (mean impostor distance ~0.9).
    double total = 0;
    for (std::size_t i = 0; i < d; ++i) {
      sigma_[i] = std::pow(static_cast<double>(i + 1), -decay / 2);
      total += sigma_[i] * sigma_[i];
    }
    const double scale = 0.056 * std::sqrt(static_cast<double>(d) / total);
    for (double& s : sigma_) s *= scale;
    isotropic_ = decay == 0.0;
    if (!isotropic_) {  // random orthonormal basis by Gram-Schmidt
      std::normal_distribution<double> n(0.0, 1.0);
      basis_.assign(d * d, 0.0);
      for (std::size_t r = 0; r < d; ++r) {
        double* row = &basis_[r * d];
        for (std::size_t c = 0; c < d; ++c) row[c] = n(rng_);
        for (std::size_t p = 0; p < r; ++p) {
          const double* prev = &basis_[p * d];
          double dot = 0;
          for (std::size_t c = 0; c < d; ++c) dot += row[c] * prev[c];
          for (std::size_t c = 0; c < d; ++c) row[c] -= dot * prev[c];
        }
        double norm = 0;
        for (std::size_t c = 0; c < d; ++c) norm += row[c] * row[c];
        norm = std::sqrt(norm);
        for (std::size_t c = 0; c < d; ++c) row[c] /= norm;
      }
    }
  }
  FaceTemplate Identity() {
    constexpr std::size_t d = kTemplateDims;
    std::normal_distribution<double> n(0.0, 1.0);
    std::array<double, d> z{};
    for (std::size_t i = 0; i < d; ++i) z[i] = sigma_[i] * n(rng_);
    std::array<float, d> v{};
    for (std::size_t c = 0; c < d; ++c) {
      double x = 0;
      if (isotropic_) {
        x = z[c];
      } else {
        for (std::size_t r = 0; r < d; ++r) x += z[r] * basis_[r * d + c];
      }
      v[c] = centre_[c] + static_cast<float>(x);
    }
    return FaceTemplate(v);
  }
  // A capture of the same person: per-dim noise sigma (0.031 ~ distance 0.35).
  FaceTemplate Capture(const FaceTemplate& identity, float sigma = 0.031f) {
    std::normal_distribution<float> g(0.0f, sigma);
    std::array<float, kTemplateDims> v = identity.values();
    for (float& x : v) x += g(rng_);
    return FaceTemplate(v);
  }

 private:
  std::mt19937_64 rng_;
  std::array<float, kTemplateDims> centre_{};
  std::array<double, kTemplateDims> sigma_{};
  bool isotropic_ = true;
  std::vector<double> basis_;
};

}  // namespace portcullis::face::testing
