// Squared-distance kernels for the exact gallery scan, over three compact encodings.
//
// Every kernel exists twice: a portable scalar version and an AVX2+F16C version chosen at run
// time. Both compute in the same order (8 lanes, separately rounded multiply and add — no FMA —,
// the same final reduction), so they return bit-identical results; the tests check exactly that.
#pragma once

#include <cstddef>
#include <cstdint>

namespace portcullis::face::internal {

inline constexpr std::size_t kDims = 128;

// IEEE binary16 conversions (round to nearest even; the decode is exact).
std::uint16_t FloatToHalf(float value);
float HalfToFloat(std::uint16_t half);

// Symmetric int8 quantisation: code = round(value / scale), scale = max|value| / 127 (1 if all 0).
float QuantizeInt8(const float* values, std::int8_t* codes);

// out[j] = || query - decode(template j) ||^2 for j in [0, n).
using Float32Kernel = void (*)(const float* query, const float* templates, std::size_t n,
                               float* out);
using Float16Kernel = void (*)(const float* query, const std::uint16_t* templates, std::size_t n,
                               float* out);
using Int8Kernel = void (*)(const float* query, const std::int8_t* codes, const float* scales,
                            std::size_t n, float* out);

struct Kernels {
  const char* name;
  Float32Kernel float32;
  Float16Kernel float16;
  Int8Kernel int8;
};

const Kernels& ScalarKernels();
// The AVX2 kernels when the CPU has AVX2 and F16C; otherwise the scalar ones.
const Kernels& BestKernels();
bool CpuHasAvx2();

}  // namespace portcullis::face::internal
