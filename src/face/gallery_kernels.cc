#include "face/gallery_kernels.h"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>

namespace portcullis::face::internal {
namespace {

constexpr std::size_t kLanes = 8;

// The one reduction order shared by the scalar and the SIMD kernels.
float ReduceLanes(const float* lanes) {
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
         ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

void ScalarFloat32(const float* query, const float* templates, std::size_t n, float* out) {
  for (std::size_t j = 0; j < n; ++j) {
    const float* t = templates + j * kDims;
    float acc[kLanes] = {};
    for (std::size_t i = 0; i < kDims; i += kLanes) {
      for (std::size_t l = 0; l < kLanes; ++l) {
        const float d = query[i + l] - t[i + l];
        const float square = d * d;
        acc[l] = acc[l] + square;
      }
    }
    out[j] = ReduceLanes(acc);
  }
}

void ScalarFloat16(const float* query, const std::uint16_t* templates, std::size_t n, float* out) {
  for (std::size_t j = 0; j < n; ++j) {
    const std::uint16_t* t = templates + j * kDims;
    float acc[kLanes] = {};
    for (std::size_t i = 0; i < kDims; i += kLanes) {
      for (std::size_t l = 0; l < kLanes; ++l) {
        const float d = query[i + l] - HalfToFloat(t[i + l]);
        const float square = d * d;
        acc[l] = acc[l] + square;
      }
    }
    out[j] = ReduceLanes(acc);
  }
}

void ScalarInt8(const float* query, const std::int8_t* codes, const float* scales, std::size_t n,
                float* out) {
  for (std::size_t j = 0; j < n; ++j) {
    const std::int8_t* c = codes + j * kDims;
    const float scale = scales[j];
    float acc[kLanes] = {};
    for (std::size_t i = 0; i < kDims; i += kLanes) {
      for (std::size_t l = 0; l < kLanes; ++l) {
        const float decoded = scale * static_cast<float>(c[i + l]);
        const float d = query[i + l] - decoded;
        const float square = d * d;
        acc[l] = acc[l] + square;
      }
    }
    out[j] = ReduceLanes(acc);
  }
}

// No "fma" here: without FMA instructions the compiler cannot fuse a multiply and an add, so
// the SIMD kernels round exactly as the scalar ones (and as a CPU without FMA does).
#define PORTCULLIS_AVX2 __attribute__((target("avx2,f16c")))

PORTCULLIS_AVX2 float StoreAndReduce(__m256 acc) {
  alignas(32) float lanes[kLanes];
  _mm256_store_ps(lanes, acc);
  return ReduceLanes(lanes);
}

// Four templates at a time: four independent FMA chains hide the FMA latency; each template still
// has exactly the scalar kernel's operation order.
PORTCULLIS_AVX2 void Avx2Float32(const float* query, const float* templates, std::size_t n,
                                 float* out) {
  __m256 q[kDims / kLanes];
  for (std::size_t b = 0; b < kDims / kLanes; ++b) q[b] = _mm256_loadu_ps(query + b * kLanes);
  std::size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* t = templates + j * kDims;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    for (std::size_t b = 0; b < kDims / kLanes; ++b) {
      const std::size_t o = b * kLanes;
      const __m256 d0 = _mm256_sub_ps(q[b], _mm256_loadu_ps(t + o));
      const __m256 d1 = _mm256_sub_ps(q[b], _mm256_loadu_ps(t + kDims + o));
      const __m256 d2 = _mm256_sub_ps(q[b], _mm256_loadu_ps(t + 2 * kDims + o));
      const __m256 d3 = _mm256_sub_ps(q[b], _mm256_loadu_ps(t + 3 * kDims + o));
      a0 = _mm256_add_ps(a0, _mm256_mul_ps(d0, d0));
      a1 = _mm256_add_ps(a1, _mm256_mul_ps(d1, d1));
      a2 = _mm256_add_ps(a2, _mm256_mul_ps(d2, d2));
      a3 = _mm256_add_ps(a3, _mm256_mul_ps(d3, d3));
    }
    out[j] = StoreAndReduce(a0);
    out[j + 1] = StoreAndReduce(a1);
    out[j + 2] = StoreAndReduce(a2);
    out[j + 3] = StoreAndReduce(a3);
  }
  for (; j < n; ++j) {
    const float* t = templates + j * kDims;
    __m256 a = _mm256_setzero_ps();
    for (std::size_t b = 0; b < kDims / kLanes; ++b) {
      const __m256 d = _mm256_sub_ps(q[b], _mm256_loadu_ps(t + b * kLanes));
      a = _mm256_add_ps(a, _mm256_mul_ps(d, d));
    }
    out[j] = StoreAndReduce(a);
  }
}

PORTCULLIS_AVX2 __m256 LoadHalf8(const std::uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

PORTCULLIS_AVX2 void Avx2Float16(const float* query, const std::uint16_t* templates, std::size_t n,
                                 float* out) {
  __m256 q[kDims / kLanes];
  for (std::size_t b = 0; b < kDims / kLanes; ++b) q[b] = _mm256_loadu_ps(query + b * kLanes);
  std::size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const std::uint16_t* t = templates + j * kDims;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    for (std::size_t b = 0; b < kDims / kLanes; ++b) {
      const std::size_t o = b * kLanes;
      const __m256 d0 = _mm256_sub_ps(q[b], LoadHalf8(t + o));
      const __m256 d1 = _mm256_sub_ps(q[b], LoadHalf8(t + kDims + o));
      const __m256 d2 = _mm256_sub_ps(q[b], LoadHalf8(t + 2 * kDims + o));
      const __m256 d3 = _mm256_sub_ps(q[b], LoadHalf8(t + 3 * kDims + o));
      a0 = _mm256_add_ps(a0, _mm256_mul_ps(d0, d0));
      a1 = _mm256_add_ps(a1, _mm256_mul_ps(d1, d1));
      a2 = _mm256_add_ps(a2, _mm256_mul_ps(d2, d2));
      a3 = _mm256_add_ps(a3, _mm256_mul_ps(d3, d3));
    }
    out[j] = StoreAndReduce(a0);
    out[j + 1] = StoreAndReduce(a1);
    out[j + 2] = StoreAndReduce(a2);
    out[j + 3] = StoreAndReduce(a3);
  }
  for (; j < n; ++j) {
    const std::uint16_t* t = templates + j * kDims;
    __m256 a = _mm256_setzero_ps();
    for (std::size_t b = 0; b < kDims / kLanes; ++b) {
      const __m256 d = _mm256_sub_ps(q[b], LoadHalf8(t + b * kLanes));
      a = _mm256_add_ps(a, _mm256_mul_ps(d, d));
    }
    out[j] = StoreAndReduce(a);
  }
}

PORTCULLIS_AVX2 __m256 LoadInt8x8(const std::int8_t* p) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

PORTCULLIS_AVX2 void Avx2Int8(const float* query, const std::int8_t* codes, const float* scales,
                              std::size_t n, float* out) {
  __m256 q[kDims / kLanes];
  for (std::size_t b = 0; b < kDims / kLanes; ++b) q[b] = _mm256_loadu_ps(query + b * kLanes);
  std::size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const std::int8_t* c = codes + j * kDims;
    const __m256 s0 = _mm256_set1_ps(scales[j]), s1 = _mm256_set1_ps(scales[j + 1]),
                 s2 = _mm256_set1_ps(scales[j + 2]), s3 = _mm256_set1_ps(scales[j + 3]);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    for (std::size_t b = 0; b < kDims / kLanes; ++b) {
      const std::size_t o = b * kLanes;
      const __m256 d0 = _mm256_sub_ps(q[b], _mm256_mul_ps(s0, LoadInt8x8(c + o)));
      const __m256 d1 = _mm256_sub_ps(q[b], _mm256_mul_ps(s1, LoadInt8x8(c + kDims + o)));
      const __m256 d2 = _mm256_sub_ps(q[b], _mm256_mul_ps(s2, LoadInt8x8(c + 2 * kDims + o)));
      const __m256 d3 = _mm256_sub_ps(q[b], _mm256_mul_ps(s3, LoadInt8x8(c + 3 * kDims + o)));
      a0 = _mm256_add_ps(a0, _mm256_mul_ps(d0, d0));
      a1 = _mm256_add_ps(a1, _mm256_mul_ps(d1, d1));
      a2 = _mm256_add_ps(a2, _mm256_mul_ps(d2, d2));
      a3 = _mm256_add_ps(a3, _mm256_mul_ps(d3, d3));
    }
    out[j] = StoreAndReduce(a0);
    out[j + 1] = StoreAndReduce(a1);
    out[j + 2] = StoreAndReduce(a2);
    out[j + 3] = StoreAndReduce(a3);
  }
  for (; j < n; ++j) {
    const std::int8_t* c = codes + j * kDims;
    const __m256 s = _mm256_set1_ps(scales[j]);
    __m256 a = _mm256_setzero_ps();
    for (std::size_t b = 0; b < kDims / kLanes; ++b) {
      const __m256 d = _mm256_sub_ps(q[b], _mm256_mul_ps(s, LoadInt8x8(c + b * kLanes)));
      a = _mm256_add_ps(a, _mm256_mul_ps(d, d));
    }
    out[j] = StoreAndReduce(a);
  }
}

#undef PORTCULLIS_AVX2

}  // namespace

std::uint16_t FloatToHalf(float value) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(value);
  const auto sign = static_cast<std::uint32_t>((x >> 16) & 0x8000u);
  const std::uint32_t exponent = (x >> 23) & 0xFFu;
  std::uint32_t mantissa = x & 0x7FFFFFu;
  if (exponent == 0xFFu) {  // Inf / NaN
    return static_cast<std::uint16_t>(sign | 0x7C00u | (mantissa != 0 ? 0x200u : 0u));
  }
  const int e = static_cast<int>(exponent) - 127 + 15;
  if (e >= 31) return static_cast<std::uint16_t>(sign | 0x7C00u);  // overflow: Inf
  if (e <= 0) {                                                    // half subnormal or zero
    if (e < -10) return static_cast<std::uint16_t>(sign);
    mantissa |= 0x800000u;
    const auto shift = static_cast<std::uint32_t>(14 - e);
    std::uint32_t half_mantissa = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1u);
    const std::uint32_t halfway = 1u << (shift - 1u);
    if (rest > halfway || (rest == halfway && (half_mantissa & 1u) != 0)) ++half_mantissa;
    return static_cast<std::uint16_t>(sign | half_mantissa);
  }
  std::uint32_t half = sign | (static_cast<std::uint32_t>(e) << 10) | (mantissa >> 13);
  const std::uint32_t rest = mantissa & 0x1FFFu;
  // A carry out of the mantissa correctly bumps the exponent (up to Inf).
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u) != 0)) ++half;
  return static_cast<std::uint16_t>(half);
}

float HalfToFloat(std::uint16_t half) {
  const std::uint32_t sign = (static_cast<std::uint32_t>(half) & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1Fu;
  const std::uint32_t mantissa = half & 0x3FFu;
  if (exponent == 0) {
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign != 0 ? -magnitude : magnitude;
  }
  if (exponent == 0x1Fu) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

float QuantizeInt8(const float* values, std::int8_t* codes) {
  float max_abs = 0;
  for (std::size_t i = 0; i < kDims; ++i) max_abs = std::max(max_abs, std::fabs(values[i]));
  const float scale = max_abs > 0 ? max_abs / 127.0f : 1.0f;
  for (std::size_t i = 0; i < kDims; ++i) {
    const float q = std::nearbyint(values[i] / scale);
    codes[i] = static_cast<std::int8_t>(std::clamp(q, -127.0f, 127.0f));
  }
  return scale;
}

bool CpuHasAvx2() {
  __builtin_cpu_init();
  // F16C is not among the names __builtin_cpu_supports knows in every compiler: ask CPUID.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
  return __builtin_cpu_supports("avx2") && f16c;
}

const Kernels& ScalarKernels() {
  static const Kernels kernels{"scalar", &ScalarFloat32, &ScalarFloat16, &ScalarInt8};
  return kernels;
}

const Kernels& BestKernels() {
  static const Kernels avx2{"avx2", &Avx2Float32, &Avx2Float16, &Avx2Int8};
  static const bool has_avx2 = CpuHasAvx2();
  return has_avx2 ? avx2 : ScalarKernels();
}

}  // namespace portcullis::face::internal
