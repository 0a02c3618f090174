// Unit tests of the face subsystem that need no models: template wiping and (de)serialisation,
// and the evaluation metrics on hand-made distances.
#include <dlfcn.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "face/face_metrics.h"
#include "portcullis/face.h"

namespace portcullis::face {
namespace {

FaceTemplate Ramp() {
  FaceTemplate t;
  for (int i = 0; i < kTemplateDims; ++i)
    t.mutable_values()[static_cast<std::size_t>(i)] = 0.01f * static_cast<float>(i + 1);
  return t;
}

TEST(FaceTemplateTest, WipeZeroesAndMoveWipesTheSource) {
  FaceTemplate a = Ramp();
  FaceTemplate b(std::move(a));
  for (const float v : a.values()) EXPECT_EQ(v, 0.0f);  // NOLINT(bugprone-use-after-move)
  EXPECT_NE(b.values()[5], 0.0f);
  b.Wipe();
  for (const float v : b.values()) EXPECT_EQ(v, 0.0f);
}

TEST(FaceTemplateTest, DestructorWipesTheMemoryItOccupied) {
  // Construct in a buffer we own, destroy, and look at the bytes left behind.
  alignas(FaceTemplate) unsigned char buffer[sizeof(FaceTemplate)];
  auto* t = new (buffer) FaceTemplate(Ramp());
  EXPECT_NE(t->values()[0], 0.0f);
  t->~FaceTemplate();
  std::vector<unsigned char> zeros(sizeof(FaceTemplate), 0);
  EXPECT_EQ(std::memcmp(buffer, zeros.data(), sizeof(FaceTemplate)), 0);
}

TEST(FaceTemplateTest, SerializeRoundTrip) {
  const FaceTemplate a = Ramp();
  FaceTemplate b;
  ASSERT_TRUE(FaceTemplate::Deserialize(a.Serialize(), &b).ok());
  EXPECT_EQ(a.values(), b.values());
  EXPECT_FLOAT_EQ(Distance(a, b), 0.0f);
}

TEST(FaceTemplateTest, DeserializeRefusesBadInputWithDistinctCodes) {
  const std::string good = Ramp().Serialize();
  FaceTemplate out = Ramp();
  EXPECT_EQ(FaceTemplate::Deserialize("", &out).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(FaceTemplate::Deserialize("XXXX" + good.substr(4), &out).code(),
            Status::Code::kInvalidArgument);
  std::string version = good;
  version[4] = 9;
  Status s = FaceTemplate::Deserialize(version, &out);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("version"), std::string::npos);
  s = FaceTemplate::Deserialize(good.substr(0, good.size() - 1), &out);
  EXPECT_NE(s.message().find("length"), std::string::npos);
  s = FaceTemplate::Deserialize(good + "x", &out);
  EXPECT_NE(s.message().find("length"), std::string::npos);
  std::string flipped = good;
  flipped[20] = static_cast<char>(flipped[20] ^ 1);
  EXPECT_EQ(FaceTemplate::Deserialize(flipped, &out).code(), Status::Code::kCorruption);
  // A NaN with a valid checksum: built by serialising a template holding NaN.
  FaceTemplate nan = Ramp();
  nan.mutable_values()[3] = std::numeric_limits<float>::quiet_NaN();
  s = FaceTemplate::Deserialize(nan.Serialize(), &out);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("NaN"), std::string::npos);
  EXPECT_EQ(out.values(), Ramp().values());  // untouched by every refusal
}

TEST(FaceSimilarityTest, MonotoneInUnitIntervalHalfAtDefaultThreshold) {
  EXPECT_NEAR(SimilarityFromDistance(kDefaultMatchThreshold), 0.5f, 1e-6f);
  float last = 2;
  for (float d = 0; d <= 2.0f; d += 0.05f) {
    const float s = SimilarityFromDistance(d);
    EXPECT_GE(s, 0.0f);
    EXPECT_LE(s, 1.0f);
    EXPECT_LE(s, last);
    last = s;
  }
  EXPECT_GT(SimilarityFromDistance(0.3f), 0.9f);
  EXPECT_LT(SimilarityFromDistance(0.9f), 0.1f);
}

TEST(FaceMetricsTest, TarAtFarPicksTheLargestSafeThreshold) {
  std::vector<ScoredPair> pairs;
  pairs.reserve(20);
  for (int i = 0; i < 10; ++i) pairs.push_back({0.1f * static_cast<float>(i), true, 0});  // 0..0.9
  for (int i = 0; i < 10; ++i)
    pairs.push_back({0.55f + 0.1f * static_cast<float>(i), false, 0});  // 0.55..1.45
  const RocPoint zero = TarAtFar(pairs, 0.0);
  EXPECT_EQ(zero.far, 0.0);
  EXPECT_NEAR(zero.tar, 0.6, 1e-9);           // genuine 0..0.5 are below the first impostor (0.55)
  const RocPoint one = TarAtFar(pairs, 0.1);  // one impostor may pass
  EXPECT_NEAR(one.far, 0.1, 1e-9);
  EXPECT_NEAR(one.tar, 0.7, 1e-9);
  EXPECT_LT(one.threshold, 0.65);
}

TEST(FaceMetricsTest, CrossValidatedAccuracyOnSeparableAndNoisyFolds) {
  std::vector<ScoredPair> pairs;
  pairs.reserve(200);
  for (int f = 0; f < 10; ++f) {
    for (int i = 0; i < 10; ++i) {
      pairs.push_back({0.3f + 0.01f * static_cast<float>(i), true, f});
      pairs.push_back({0.8f + 0.01f * static_cast<float>(i), false, f});
    }
  }
  FoldAccuracy a = CrossValidatedAccuracy(pairs);
  EXPECT_EQ(a.folds, 10);
  EXPECT_DOUBLE_EQ(a.mean, 1.0);
  EXPECT_GT(a.mean_threshold, 0.39);
  EXPECT_LT(a.mean_threshold, 0.8);
  // One genuine pair far away in fold 3: that fold loses exactly one of its 20 pairs.
  pairs[60].distance = 1.5f;
  a = CrossValidatedAccuracy(pairs);
  EXPECT_NEAR(a.mean, 1.0 - 0.1 / 20, 1e-9);
}

TEST(FaceMetricsTest, IdentificationRankOneAndFnirAtFpir) {
  std::vector<ProbeResult> probes;
  probes.reserve(110);
  for (int i = 0; i < 8; ++i) probes.push_back({true, true, 0.3f});
  probes.push_back({true, false, 0.4f});  // wrong person at rank 1
  probes.push_back({true, true, 0.9f});   // right person, but far
  for (int i = 0; i < 100; ++i)
    probes.push_back({false, false, 0.7f + 0.01f * static_cast<float>(i)});
  const IdentificationStats s = Identification(probes, 0.01);
  EXPECT_EQ(s.mated_probes, 10);
  EXPECT_EQ(s.non_mated_probes, 100);
  EXPECT_NEAR(s.rank1, 0.9, 1e-9);
  EXPECT_NEAR(s.fpir, 0.01, 1e-9);  // one non-mated probe (0.70) at or below the threshold
  EXPECT_LT(s.threshold, 0.71);
  EXPECT_NEAR(s.fnir, 0.2, 1e-9);  // the wrong one and the far one
}

// The service and the lane agent rely on this to keep one engine per core. The project
// installs OpenBLAS (libopenblas0-pthread), so the knob must exist and must take effect.
TEST(FaceBlasThreadsTest, SetsOpenBlasThreadCount) {
  void* get_symbol = dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
  ASSERT_NE(get_symbol, nullptr)
      << "OpenBLAS is not the BLAS in use (scripts/install.sh installs it)";
  using GetThreads = int (*)();
  GetThreads get = nullptr;
  std::memcpy(&get, &get_symbol, sizeof(get));
  const int before = get();
  ASSERT_TRUE(SetBlasThreads(1));
  EXPECT_EQ(get(), 1);
  ASSERT_TRUE(SetBlasThreads(before));
  EXPECT_EQ(get(), before);
}

}  // namespace
}  // namespace portcullis::face
