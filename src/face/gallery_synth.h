// Synthetic face templates for gallery tests and benchmarks (header-only, not in the library): identities spread around a common centre (as real
// embeddings are), and noisy captures of them. See docs/face-search.md for the parameters.
#pragma once

#include <array>
#include <random>

#include "portcullis/face.h"

namespace portcullis::face::testing {

class TemplateSynth {
 public:
  explicit TemplateSynth(std::uint64_t seed, float identity_sigma = 0.056f)
      : rng_(seed), identity_sigma_(identity_sigma) {
    std::normal_distribution<float> g(0.0f, 0.5f / 11.3137f);  // centre norm ~0.5
    for (float& v : centre_) v = g(rng_);
  }
  FaceTemplate Identity() {
    std::normal_distribution<float> g(0.0f, identity_sigma_);
    std::array<float, kTemplateDims> v{};
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = centre_[i] + g(rng_);
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
  float identity_sigma_;
  std::array<float, kTemplateDims> centre_{};
};

}  // namespace portcullis::face::testing
