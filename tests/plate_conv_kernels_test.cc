// The convolution inner loops (src/plate/conv_kernels.h): the run-time choice (AVX2 where the CPU
// has it) against the portable loop, bit for bit, and both against a plain sum.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "plate/conv_kernels.h"

namespace portcullis::plate {
namespace {

std::vector<float> Random(std::size_t n, std::uint64_t seed, float range) {
  std::vector<float> v(n);
  cv::RNG rng(seed);
  for (auto& x : v) x = rng.uniform(-range, range);
  return v;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The epilogues a fused layer can have: none, HardSwish, HardSwish then an affine Power layer.
std::vector<Epilogue> Epilogues() {
  Epilogue hard_swish;
  hard_swish.hard_swish = true;
  Epilogue affine = hard_swish;
  affine.affine = true;
  affine.scale = 0.75f;
  affine.shift = -0.125f;
  Epilogue relu;
  relu.relu = true;
  return {Epilogue{}, hard_swish, affine, relu};
}

double Expected(double x, const Epilogue& e) {
  if (e.hard_swish) x = x * std::min(1.0, std::max(0.0, x / 6 + 0.5));
  if (e.relu) x = std::max(0.0, x);
  if (e.affine) x = x * e.scale + e.shift;
  return x;
}

TEST(ConvKernelsTest, DepthwiseRowMatchesThePortableLoopBitForBit) {
  // Lengths around the vector width and the four-vector step (tails of 0..31), 1 to 27 taps
  // (1x1 .. 5x5, and a 3-channel 3x3 dense one), every epilogue.
  for (int taps : {1, 9, 25, 27}) {
    for (int n : {1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 61, 63, 240}) {
      for (const Epilogue& epilogue : Epilogues()) {
        const auto input = Random(static_cast<std::size_t>(n + taps), 3 + n, 4.0f);
        const auto w = Random(static_cast<std::size_t>(taps), 7 + taps, 1.0f);
        std::vector<const float*> src;
        for (int t = 0; t < taps; ++t) src.push_back(input.data() + t);  // overlapping rows
        // 32 sentinels past the end: the masked tail must not write there.
        std::vector<float> got(static_cast<std::size_t>(n) + 32, -7.0f), want(got.size(), -7.0f);
        DepthwiseRow(src.data(), w.data(), taps, 0.25f, epilogue, n, got.data());
        DepthwiseRowPortable(src.data(), w.data(), taps, 0.25f, epilogue, n, want.data());
        EXPECT_EQ(std::count(got.begin() + n, got.end(), -7.0f), 32) << taps << " taps, n " << n;
        EXPECT_TRUE(SameBits(got, want))
            << taps << " taps, n " << n << " hs " << epilogue.hard_swish << epilogue.affine;
        for (int x = 0; x < n; ++x) {
          double sum = 0.25;
          for (int t = 0; t < taps; ++t) sum += static_cast<double>(w[t]) * src[t][x];
          ASSERT_NEAR(want[static_cast<std::size_t>(x)], Expected(sum, epilogue), 1e-4) << x;
        }
      }
    }
  }
}

TEST(ConvKernelsTest, BiasAndEpilogueMatchThePortableLoopIncludingEdgeValues) {
  auto values = Random(1000, 11, 8.0f);
  // The clamp's corners and the values a min/max order mistake would change.
  for (float v :
       {-3.0f, 3.0f, 0.0f, -0.0f, 1e-30f, -1e30f, 1e30f, std::numeric_limits<float>::infinity(),
        -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    values.push_back(v);
  }
  values.resize(values.size() + 3, 2.5f);  // a tail that is not a multiple of the width
  for (const Epilogue& epilogue : Epilogues()) {
    for (float bias : {0.0f, -1.5f}) {
      auto got = values, want = values;
      AddBiasAndFinish(got.data(), got.size(), bias, epilogue);
      AddBiasAndFinishPortable(want.data(), want.size(), bias, epilogue);
      EXPECT_TRUE(SameBits(got, want)) << bias << epilogue.hard_swish << epilogue.affine;
      for (std::size_t i = 0; i < 1000; ++i) {
        ASSERT_NEAR(want[i], Expected(static_cast<double>(values[i]) + bias, epilogue), 1e-5);
      }
      // Finish alone is the same with the bias already in.
      auto finished = values;
      for (auto& v : finished) v += bias;
      Finish(finished.data(), finished.size(), epilogue);
      EXPECT_TRUE(SameBits(finished, want));
    }
  }
  Epilogue hard_swish;
  hard_swish.hard_swish = true;
  std::vector<float> corners = {-3.0f, 3.0f};
  AddBiasAndFinish(corners.data(), corners.size(), 0.0f, hard_swish);
  EXPECT_EQ(corners[0], 0.0f);  // -3 -> -3 * 0
  EXPECT_EQ(corners[1], 3.0f);
}

TEST(ConvKernelsTest, SplitEvenOddAndFillMoveEveryFloat) {
  for (int n = 1; n <= 41; ++n) {  // odd and even lengths, below and across the vector width
    const auto in = Random(static_cast<std::size_t>(n), 17 + n, 9.0f);
    std::vector<float> even(static_cast<std::size_t>(n + 1) / 2 + 1, -7.0f);
    std::vector<float> odd(static_cast<std::size_t>(n) / 2 + 1, -7.0f);
    SplitEvenOdd(in.data(), n, even.data(), odd.data());
    for (int i = 0; i < n; ++i) {
      const float got =
          i % 2 == 0 ? even[static_cast<std::size_t>(i / 2)] : odd[static_cast<std::size_t>(i / 2)];
      ASSERT_EQ(got, in[static_cast<std::size_t>(i)]) << "n " << n << " i " << i;
    }
    // Nothing written past either half.
    EXPECT_EQ(even.back(), -7.0f) << n;
    EXPECT_EQ(odd.back(), -7.0f) << n;
    std::vector<float> filled(static_cast<std::size_t>(n) + 1, 0.0f);
    FillFloats(filled.data(), static_cast<std::size_t>(n), 1.5f);
    EXPECT_EQ(std::count(filled.begin(), filled.end(), 1.5f), n);
    EXPECT_EQ(filled.back(), 0.0f);
  }
}

TEST(ConvKernelsTest, SplitFourAndMergeFourMoveEveryFloat) {
  for (int n = 1; n <= 75; ++n) {  // every remainder mod 4, below and across 32 floats
    const auto in = Random(static_cast<std::size_t>(n), 29 + n, 9.0f);
    const std::size_t phase = static_cast<std::size_t>(n + 3) / 4;
    std::vector<float> split(4 * (phase + 1), -7.0f);  // one sentinel past each phase
    float* const p[4] = {split.data(), split.data() + phase + 1, split.data() + 2 * (phase + 1),
                         split.data() + 3 * (phase + 1)};
    SplitFour(in.data(), n, p);
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(p[i % 4][i / 4], in[static_cast<std::size_t>(i)]) << "n " << n << " i " << i;
    }
    for (int q = 0; q < 4; ++q) {
      const int count = (n - q + 3) / 4;  // floats of phase q
      for (std::size_t i = static_cast<std::size_t>(count); i <= phase; ++i) {
        EXPECT_EQ(p[q][i], -7.0f) << "n " << n << " phase " << q;
      }
    }
    // Merging whole phases back, with a bias: o[4i + q] = p[q][i] + bias.
    const int whole = n / 4;
    std::vector<float> merged(4 * static_cast<std::size_t>(whole) + 1, -7.0f);
    MergeFourAddBias(p, whole, 0.5f, merged.data());
    for (int i = 0; i < 4 * whole; ++i) {
      ASSERT_EQ(merged[static_cast<std::size_t>(i)], in[static_cast<std::size_t>(i)] + 0.5f)
          << "n " << n << " i " << i;
    }
    EXPECT_EQ(merged.back(), -7.0f) << n;
  }
}

TEST(ConvKernelsTest, InterleaveAddBiasMatchesThePlainLoop) {
  for (int n = 1; n <= 33; ++n) {
    const auto a = Random(static_cast<std::size_t>(n), 23 + n, 5.0f);
    const auto b = Random(static_cast<std::size_t>(n), 29 + n, 5.0f);
    std::vector<float> o(2 * static_cast<std::size_t>(n) + 1, -7.0f);
    InterleaveAddBias(a.data(), b.data(), n, 0.375f, o.data());
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(o[2 * static_cast<std::size_t>(i)], a[static_cast<std::size_t>(i)] + 0.375f) << n;
      ASSERT_EQ(o[2 * static_cast<std::size_t>(i) + 1], b[static_cast<std::size_t>(i)] + 0.375f)
          << n;
    }
    EXPECT_EQ(o.back(), -7.0f) << n;
  }
}

// Softmax against double precision: lengths around the vector width and the recogniser's 6625
// classes, logits from nearly flat to spread over +-60 (tiny probabilities), in place and not.
TEST(ConvKernelsTest, SoftmaxRowMatchesDoublePrecision) {
  double worst = 0.0;
  for (int n : {1, 3, 8, 13, 64, 6625}) {
    for (float range : {0.01f, 4.0f, 60.0f}) {
      for (bool log : {false, true}) {
        for (bool in_place : {false, true}) {
          const auto x = Random(static_cast<std::size_t>(n), 17 + n, range);
          double max = x[0];
          for (float v : x) max = std::max(max, static_cast<double>(v));
          double sum = 0.0;
          for (float v : x) sum += std::exp(v - max);
          for (const bool portable : {false, true}) {
            std::vector<float> y(x.size() + 8, -7.0f);  // 8 sentinels past the end
            if (in_place) std::copy(x.begin(), x.end(), y.begin());
            const float* in = in_place ? y.data() : x.data();
            (portable ? SoftmaxRowPortable : SoftmaxRow)(in, n, log, y.data());
            EXPECT_EQ(std::count(y.begin() + n, y.end(), -7.0f), 8) << n;
            double total = 0.0;
            for (int i = 0; i < n; ++i) {
              const double want = log ? x[i] - max - std::log(sum) : std::exp(x[i] - max) / sum;
              const double got = y[static_cast<std::size_t>(i)];
              total += log ? std::exp(got) : got;
              // Relative for probabilities (down to 1e-30), absolute for log-probabilities.
              const double error =
                  log ? std::abs(got - want) : std::abs(got - want) / std::max(want, 1e-30);
              worst = std::max(worst, error);
              ASSERT_LT(error, log ? 2e-5 : 5e-6)
                  << n << " range " << range << " log " << log << " i " << i << " portable "
                  << portable << ": " << got << " vs " << want;
            }
            EXPECT_NEAR(total, 1.0, 1e-5) << n << " " << range;
          }
        }
      }
    }
  }
  RecordProperty("worst_error", std::to_string(worst));
}

TEST(ConvKernelsTest, SigmoidMatchesDoublePrecision) {
  // Both signs, the saturated ends (e^-|x| clamps below -87), zero, and lengths around 8.
  for (int n : {1, 7, 8, 9, 17, 1000}) {
    auto v = Random(static_cast<std::size_t>(n), 41 + n, 30.0f);
    v[0] = 0.0f;
    if (n > 2) {
      v[1] = 120.0f;
      v[2] = -120.0f;
    }
    std::vector<float> got = v;
    SigmoidInPlace(got.data(), got.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double want = 1.0 / (1.0 + std::exp(-static_cast<double>(v[i])));
      ASSERT_NEAR(got[i], want, 2e-7 + 4e-7 * want) << v[i] << " n " << n;
    }
  }
}

TEST(ConvKernelsTest, ReportsTheVectorFormWhereTheCpuHasAvx2AndFma) {
#if defined(__x86_64__)
  EXPECT_EQ(VectorConvKernels(),
            __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0);
#else
  EXPECT_FALSE(VectorConvKernels());
#endif
}

}  // namespace
}  // namespace portcullis::plate
