// The OpenBLAS kernel choice (src/common/blas_core.cc): when to steer it, and to what.
#include <gtest/gtest.h>

#include <string>

#include "common/blas_threads.h"

namespace portcullis {
namespace {

std::string Choice(const char* loaded, const char* user, bool avx512, bool avx2_fma) {
  const char* core = ChooseOpenBlasCore(loaded, user, avx512, avx2_fma);
  return core == nullptr ? "keep" : core;
}

TEST(OpenBlasCoreTest, OnlyTheGenericFallbackIsSteered) {
  // OpenBLAS did not know the CPU: pick by features, widest first.
  EXPECT_EQ(Choice("Prescott", nullptr, true, true), "SkylakeX");
  EXPECT_EQ(Choice("Prescott", nullptr, false, true), "Haswell");
  EXPECT_EQ(Choice("Prescott", nullptr, false, false), "keep");  // generic is right there
  // OpenBLAS knew the CPU, the user chose, or the BLAS is not OpenBLAS: leave it alone.
  EXPECT_EQ(Choice("Haswell", nullptr, true, true), "keep");
  EXPECT_EQ(Choice("Zen", nullptr, false, true), "keep");
  EXPECT_EQ(Choice("Prescott", "Prescott", true, true), "keep");
  EXPECT_EQ(Choice(nullptr, nullptr, true, true), "keep");
}

}  // namespace
}  // namespace portcullis
