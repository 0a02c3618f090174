#include "plate/conv_kernels.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PORTCULLIS_CONV_X86 1
#define PORTCULLIS_AVX2 __attribute__((target("avx2")))
#endif

namespace portcullis::plate {
namespace {

inline float HardSwish(float x) { return x * std::min(1.0f, std::max(0.0f, x / 6.0f + 0.5f)); }

#ifdef PORTCULLIS_CONV_X86
// max/min with the scalar code's operand order: std::max(0, y) is (0 < y ? y : 0), which is
// what _mm256_max_ps(y, 0) returns for every y, NaN included (it returns its second operand
// when either is NaN); likewise std::min(1, y) and _mm256_min_ps(y, 1).
PORTCULLIS_AVX2 inline __m256 HardSwish8(__m256 x) {
  const __m256 gate = _mm256_min_ps(
      _mm256_max_ps(_mm256_add_ps(_mm256_div_ps(x, _mm256_set1_ps(6.0f)), _mm256_set1_ps(0.5f)),
                    _mm256_setzero_ps()),
      _mm256_set1_ps(1.0f));
  return _mm256_mul_ps(x, gate);
}

PORTCULLIS_AVX2 void DepthwiseRowAvx2(const float* const* src, const float* w, int taps, float bias,
                                      bool hard_swish, int n, float* o) {
  int x = 0;
  for (; x + 8 <= n; x += 8) {
    __m256 acc = _mm256_set1_ps(bias);
    for (int t = 0; t < taps; ++t) {
      // mul then add, not FMA: the same rounding as the portable loop.
      acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(w[t]), _mm256_loadu_ps(src[t] + x)));
    }
    if (hard_swish) acc = HardSwish8(acc);
    _mm256_storeu_ps(o + x, acc);
  }
  for (; x < n; ++x) {
    float acc = bias;
    for (int t = 0; t < taps; ++t) acc += w[t] * src[t][x];
    o[x] = hard_swish ? HardSwish(acc) : acc;
  }
}

PORTCULLIS_AVX2 void HardSwishAvx2(float* v, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(v + i, HardSwish8(_mm256_loadu_ps(v + i)));
  for (; i < n; ++i) v[i] = HardSwish(v[i]);
}

PORTCULLIS_AVX2 void FillAvx2(float* v, std::size_t n, float value) {
  const __m256 fill = _mm256_set1_ps(value);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(v + i, fill);
  for (; i < n; ++i) v[i] = value;
}

PORTCULLIS_AVX2 void SplitEvenOddAvx2(const float* in, int n, float* even, float* odd) {
  int i = 0;
  for (; 2 * i + 16 <= n; i += 8) {
    const __m256 a = _mm256_loadu_ps(in + 2 * i), b = _mm256_loadu_ps(in + 2 * i + 8);
    // Within each 128-bit lane: evens of a and b, then odds; the lane permute restores order.
    const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    _mm256_storeu_ps(even + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
    _mm256_storeu_ps(odd + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8)));
  }
  for (; 2 * i + 1 < n; ++i) {
    even[i] = in[2 * i];
    odd[i] = in[2 * i + 1];
  }
  if (2 * i < n) even[i] = in[2 * i];
}

PORTCULLIS_AVX2 void InterleaveAddBiasAvx2(const float* a, const float* b, int n, float bias,
                                           float* o) {
  const __m256 add = _mm256_set1_ps(bias);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 va = _mm256_add_ps(_mm256_loadu_ps(a + i), add);
    const __m256 vb = _mm256_add_ps(_mm256_loadu_ps(b + i), add);
    // unpack works within 128-bit lanes: lo = a0 b0 a1 b1 | a4 b4 a5 b5, hi = a2 b2 a3 b3 | a6..
    const __m256 lo = _mm256_unpacklo_ps(va, vb), hi = _mm256_unpackhi_ps(va, vb);
    _mm256_storeu_ps(o + 2 * i, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(o + 2 * i + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
  for (; i < n; ++i) {
    o[2 * i] = a[i] + bias;
    o[2 * i + 1] = b[i] + bias;
  }
}

bool CpuHasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2") != 0;
  return has;
}
#endif

}  // namespace

void DepthwiseRowPortable(const float* const* src, const float* w, int taps, float bias,
                          bool hard_swish, int n, float* o) {
  for (int x = 0; x < n; ++x) {
    float acc = bias;
    for (int t = 0; t < taps; ++t) acc += w[t] * src[t][x];
    o[x] = hard_swish ? HardSwish(acc) : acc;
  }
}

void HardSwishInPlacePortable(float* v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) v[i] = HardSwish(v[i]);
}

void FillFloats(float* v, std::size_t n, float value) {
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) {
    FillAvx2(v, n, value);
    return;
  }
#endif
  std::fill_n(v, n, value);
}

void SplitEvenOdd(const float* in, int n, float* even, float* odd) {
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) {
    SplitEvenOddAvx2(in, n, even, odd);
    return;
  }
#endif
  for (int i = 0; 2 * i < n; ++i) {
    even[i] = in[2 * i];
    if (2 * i + 1 < n) odd[i] = in[2 * i + 1];
  }
}

void InterleaveAddBias(const float* a, const float* b, int n, float bias, float* o) {
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) {
    InterleaveAddBiasAvx2(a, b, n, bias, o);
    return;
  }
#endif
  for (int i = 0; i < n; ++i) {
    o[2 * i] = a[i] + bias;
    o[2 * i + 1] = b[i] + bias;
  }
}

bool VectorConvKernels() {
#ifdef PORTCULLIS_CONV_X86
  return CpuHasAvx2();
#else
  return false;
#endif
}

void DepthwiseRow(const float* const* src, const float* w, int taps, float bias, bool hard_swish,
                  int n, float* o) {
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) {
    DepthwiseRowAvx2(src, w, taps, bias, hard_swish, n, o);
    return;
  }
#endif
  DepthwiseRowPortable(src, w, taps, bias, hard_swish, n, o);
}

void HardSwishInPlace(float* v, std::size_t n) {
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) {
    HardSwishAvx2(v, n);
    return;
  }
#endif
  HardSwishInPlacePortable(v, n);
}

}  // namespace portcullis::plate
