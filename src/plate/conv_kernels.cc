#include "plate/conv_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PORTCULLIS_CONV_X86 1
#define PORTCULLIS_AVX2 __attribute__((target("avx2")))
#define PORTCULLIS_AVX2_FMA __attribute__((target("avx2,fma")))
#endif

namespace portcullis::plate {
namespace {

inline float HardSwish(float x) { return x * std::min(1.0f, std::max(0.0f, x / 6.0f + 0.5f)); }

inline float SigmoidValue(float x) {
  const float t = std::exp(-std::abs(x));
  return (x >= 0.0f ? 1.0f : t) / (1.0f + t);
}

inline float FinishValue(float x, const Epilogue& e) {
  if (e.hard_swish) x = HardSwish(x);
  if (e.relu) x = std::max(0.0f, x);
  if (e.affine) x = x * e.scale + e.shift;  // no FMA: baseline x86-64 and our AVX2 have none
  return x;
}

// Eight floats as one GCC/Clang vector: AVX registers where the caller is compiled for AVX2,
// pairs of SSE registers elsewhere. The Winograd transforms are written once on this type and
// inlined into an AVX2 and a portable function; both add and subtract in the same order, and
// the scalar tails do the same operations, so all forms give the same bits.
using Float8 = float __attribute__((vector_size(32)));

// Out-parameters, not return values: a vector returned by value has another ABI with and
// without AVX (GCC's -Wpsabi), even where it is always inlined.
template <typename T>
inline __attribute__((always_inline)) void Load(T* v, const float* p) {
  std::memcpy(v, p, sizeof(T));
}

template <typename T>
inline __attribute__((always_inline)) void Store(float* p, const T& v) {
  std::memcpy(p, &v, sizeof(T));
}

// Winograd F(4x4, 3x3) (interpolation points 0, 1, -1, 2, -2 and infinity). B^T z for one row or
// column z of a 6x6 tile, in the factored form (8 multiplies by small integers, 12 adds):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
template <typename T>
inline __attribute__((always_inline)) void WinogradB(const T* z, T* o) {
  const T t0 = z[4] - 4.0f * z[2], t1 = z[3] - 4.0f * z[1];
  const T t2 = z[4] - z[2], t3 = 2.0f * (z[3] - z[1]);
  o[0] = 4.0f * z[0] - 5.0f * z[2] + z[4];
  o[1] = t0 + t1;
  o[2] = t0 - t1;
  o[3] = t2 + t3;
  o[4] = t2 - t3;
  o[5] = 4.0f * z[1] - 5.0f * z[3] + z[5];
}

// A^T m for one row or column of a tile's 36 products: A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0;
// 0 1 1 4 4 0; 0 1 -1 8 -8 1].
template <typename T>
inline __attribute__((always_inline)) void WinogradA(const T* m, T* o) {
  const T a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
  o[0] = m[0] + a + c;
  o[1] = b + 2.0f * d;
  o[2] = a + 4.0f * c;
  o[3] = b + 8.0f * d + m[5];
}

// phase[r][q][x] = padded row r, column 4x + q; tile x's column c is phase[r][c % 4][x + c / 4].
template <typename T>
inline __attribute__((always_inline)) void WinogradInputTile(const float* const (*phase)[4], int x,
                                                             float* v, std::size_t stride) {
  // Loops fully unrolled: a vector loaded through a loop-indexed array was assembled on the
  // stack from two halves and read back whole, a failed store forwarding per value.
  T h[6][6];
#pragma GCC unroll 6
  for (int r = 0; r < 6; ++r) {
    T z[6];
    Load(&z[0], phase[r][0] + x);
    Load(&z[1], phase[r][1] + x);
    Load(&z[2], phase[r][2] + x);
    Load(&z[3], phase[r][3] + x);
    Load(&z[4], phase[r][0] + x + 1);
    Load(&z[5], phase[r][1] + x + 1);
    WinogradB(z, h[r]);  // (d B) row r
  }
#pragma GCC unroll 6
  for (int j = 0; j < 6; ++j) {  // B^T (d B), column j
    const T z[6] = {h[0][j], h[1][j], h[2][j], h[3][j], h[4][j], h[5][j]};
    T o[6];
    WinogradB(z, o);
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) Store(v + static_cast<std::size_t>(6 * i + j) * stride + x, o[i]);
  }
}

inline __attribute__((always_inline)) void WinogradInputBody(const float* const (*phase)[4], int n,
                                                             float* v, std::size_t stride) {
  int x = 0;
  for (; x + 8 <= n; x += 8) WinogradInputTile<Float8>(phase, x, v, stride);
  if (x < n && n >= 8) {
    // The last 1..7 tiles as the vector ending at n: the tiles it shares with the one before
    // are computed again, to the same bits, where a scalar tail cost 7 times a vector's work.
    WinogradInputTile<Float8>(phase, n - 8, v, stride);
    return;
  }
  for (; x < n; ++x) WinogradInputTile<float>(phase, x, v, stride);
}

// One tile's 4x4 outputs A^T M A into 16 separate rows, out[4u + c][x] = output (u, c).
template <typename T>
inline __attribute__((always_inline)) void WinogradOutputTile(const float* m, std::size_t stride,
                                                              int x, float* const* out) {
  T s[4][6];
#pragma GCC unroll 6
  for (int j = 0; j < 6; ++j) {
    T column[6], o[4];
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      Load(&column[i], m + static_cast<std::size_t>(6 * i + j) * stride + x);
    }
    WinogradA(column, o);
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) s[u][j] = o[u];
  }
#pragma GCC unroll 4
  for (int u = 0; u < 4; ++u) {
    T o[4];
    WinogradA(s[u], o);
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) Store(out[4 * u + c] + x, o[c]);
  }
}

inline __attribute__((always_inline)) void WinogradOutputBody(const float* m, std::size_t stride,
                                                              int n, float* const* out) {
  int x = 0;
  for (; x + 8 <= n; x += 8) WinogradOutputTile<Float8>(m, stride, x, out);
  if (x < n && n >= 8) {
    WinogradOutputTile<Float8>(m, stride, n - 8, out);
    return;
  }
  for (; x < n; ++x) WinogradOutputTile<float>(m, stride, x, out);
}

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

PORTCULLIS_AVX2 inline __m256 Finish8(__m256 x, const Epilogue& e) {
  if (e.hard_swish) x = HardSwish8(x);
  if (e.relu) x = _mm256_max_ps(x, _mm256_setzero_ps());  // std::max(0, x), NaN included
  if (e.affine) {
    x = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(e.scale)), _mm256_set1_ps(e.shift));
  }
  return x;
}

// Four vectors (32 outputs) per step: each tap's sum is a chain of dependent FMAs, and four
// independent chains keep both FMA ports busy where one would wait out each FMA's latency.
PORTCULLIS_AVX2_FMA void DepthwiseRowAvx2(const float* const* src, const float* w, int taps,
                                          float bias, const Epilogue& epilogue, int n, float* o) {
  int x = 0;
  for (; x + 32 <= n; x += 32) {
    __m256 a0 = _mm256_set1_ps(bias), a1 = a0, a2 = a0, a3 = a0;
    for (int t = 0; t < taps; ++t) {
      const __m256 wt = _mm256_set1_ps(w[t]);
      const float* s = src[t] + x;
      a0 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s), a0);
      a1 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 8), a1);
      a2 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 16), a2);
      a3 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 24), a3);
    }
    _mm256_storeu_ps(o + x, Finish8(a0, epilogue));
    _mm256_storeu_ps(o + x + 8, Finish8(a1, epilogue));
    _mm256_storeu_ps(o + x + 16, Finish8(a2, epilogue));
    _mm256_storeu_ps(o + x + 24, Finish8(a3, epilogue));
  }
  if (x == n) return;
  // The last 1..31 outputs as four masked vectors, again four chains: the recogniser's and the
  // detector's deep layers are 8-60 wide, where one vector (or float) at a time waited on each
  // FMA in turn. Masked lanes are neither read nor written; a vector wholly past n is all mask.
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int left = n - x;
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 8), lane);
  const __m256i m2 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 16), lane);
  const __m256i m3 = _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 24), lane);
  __m256 a0 = _mm256_set1_ps(bias), a1 = a0, a2 = a0, a3 = a0;
  for (int t = 0; t < taps; ++t) {
    const __m256 wt = _mm256_set1_ps(w[t]);
    const float* s = src[t] + x;
    a0 = _mm256_fmadd_ps(wt, _mm256_maskload_ps(s, m0), a0);
    a1 = _mm256_fmadd_ps(wt, _mm256_maskload_ps(s + 8, m1), a1);
    a2 = _mm256_fmadd_ps(wt, _mm256_maskload_ps(s + 16, m2), a2);
    a3 = _mm256_fmadd_ps(wt, _mm256_maskload_ps(s + 24, m3), a3);
  }
  _mm256_maskstore_ps(o + x, m0, Finish8(a0, epilogue));
  _mm256_maskstore_ps(o + x + 8, m1, Finish8(a1, epilogue));
  _mm256_maskstore_ps(o + x + 16, m2, Finish8(a2, epilogue));
  _mm256_maskstore_ps(o + x + 24, m3, Finish8(a3, epilogue));
}

template <bool kAddBias>
PORTCULLIS_AVX2 void FinishAvx2(float* v, std::size_t n, float bias, const Epilogue& epilogue) {
  const __m256 add = _mm256_set1_ps(bias);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_loadu_ps(v + i);
    if (kAddBias) x = _mm256_add_ps(x, add);
    _mm256_storeu_ps(v + i, Finish8(x, epilogue));
  }
  for (; i < n; ++i) v[i] = FinishValue(kAddBias ? v[i] + bias : v[i], epilogue);
}

PORTCULLIS_AVX2 void FillAvx2(float* v, std::size_t n, float value) {
  const __m256 fill = _mm256_set1_ps(value);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(v + i, fill);
  for (; i < n; ++i) v[i] = value;
}

PORTCULLIS_AVX2 void SplitEvenOddAvx2(const float* in, int n, float* even, float* odd) {
  std::ptrdiff_t i = 0;
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
  std::ptrdiff_t i = 0;
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

// e^x for x <= 0 (a softmax's shifted logits), to ~2 ulp: x = n ln 2 + r with |r| <= ln 2 / 2
// (ln 2 in two parts, so that n ln 2 is exact enough), e^r by its degree-7 Taylor-like
// polynomial (minimax coefficients of the classic single-precision form), times 2^n built in the
// exponent bits. Below -87.3 the result would be subnormal: it is clamped there (~1e-38, which a
// sum of at least one 1 absorbs).
PORTCULLIS_AVX2_FMA inline __m256 ExpNonPositive8(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i scale =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

// 1 / (1 + e^-x) from t = e^-|x| (<= 1, never overflowing): 1 / (1 + t) for x >= 0 and
// t / (1 + t) below.
PORTCULLIS_AVX2_FMA void SigmoidAvx2(float* v, std::size_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(v + i);
    const __m256 t = ExpNonPositive8(_mm256_or_ps(x, sign));  // e^-|x|
    const __m256 numerator = _mm256_blendv_ps(one, t, x);     // x's sign bit picks t
    _mm256_storeu_ps(v + i, _mm256_div_ps(numerator, _mm256_add_ps(one, t)));
  }
  for (; i < n; ++i) v[i] = SigmoidValue(v[i]);
}

PORTCULLIS_AVX2 float SumAvx2(const float* v, std::size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(v + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(v + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(v + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(v + i + 24));
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(v + i));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float sum = 0.0f;
  for (const float lane : lanes) sum += lane;
  for (; i < n; ++i) sum += v[i];
  return sum;
}

PORTCULLIS_AVX2_FMA void SoftmaxRowAvx2(const float* x, int n, bool log, float* y) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int whole = n - n % 8;
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - whole), lane);
  const __m256 lowest = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 top = lowest;
  for (int i = 0; i < whole; i += 8) top = _mm256_max_ps(top, _mm256_loadu_ps(x + i));
  if (whole < n) {
    top = _mm256_max_ps(top, _mm256_blendv_ps(lowest, _mm256_maskload_ps(x + whole, tail),
                                              _mm256_castsi256_ps(tail)));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, top);
  const float max = *std::max_element(lanes, lanes + 8);
  const __m256 shift = _mm256_set1_ps(max);
  __m256 sum = _mm256_setzero_ps();
  for (int i = 0; i < whole; i += 8) {
    const __m256 e = ExpNonPositive8(_mm256_sub_ps(_mm256_loadu_ps(x + i), shift));
    sum = _mm256_add_ps(sum, e);
    if (!log) _mm256_storeu_ps(y + i, e);
  }
  if (whole < n) {
    const __m256 e =
        _mm256_and_ps(ExpNonPositive8(_mm256_sub_ps(_mm256_maskload_ps(x + whole, tail), shift)),
                      _mm256_castsi256_ps(tail));
    sum = _mm256_add_ps(sum, e);
    if (!log) _mm256_maskstore_ps(y + whole, tail, e);
  }
  _mm256_store_ps(lanes, sum);
  float total = 0.0f;
  for (const float v : lanes) total += v;
  if (log) {
    const __m256 offset = _mm256_set1_ps(max + std::log(total));
    for (int i = 0; i < whole; i += 8) {
      _mm256_storeu_ps(y + i, _mm256_sub_ps(_mm256_loadu_ps(x + i), offset));
    }
    for (int i = whole; i < n; ++i) y[i] = x[i] - (max + std::log(total));
    return;
  }
  const __m256 inverse = _mm256_set1_ps(1.0f / total);
  for (int i = 0; i < whole; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), inverse));
  }
  for (int i = whole; i < n; ++i) y[i] *= 1.0f / total;
}

PORTCULLIS_AVX2 void WinogradInputAvx2(const float* const (*phase)[4], int n, float* v,
                                       std::size_t stride) {
  WinogradInputBody(phase, n, v, stride);
}

PORTCULLIS_AVX2 void WinogradOutputAvx2(const float* m, std::size_t stride, int n,
                                        float* const* out) {
  WinogradOutputBody(m, stride, n, out);
}

// Four-way column split and merge, 32 floats at a time: as 4x4 transposes within each 128-bit
// lane (which pair groups 0, 2, 4, 6 in the low lane with 1, 3, 5, 7 in the high one) and a lane
// permute that restores the order.
PORTCULLIS_AVX2 void SplitFourAvx2(const float* in, int n, float* const* p) {
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  std::ptrdiff_t i = 0;
  for (; 4 * i + 32 <= n; i += 8) {
    const float* s = in + 4 * i;
    const __m256 a = _mm256_loadu_ps(s), b = _mm256_loadu_ps(s + 8);
    const __m256 c = _mm256_loadu_ps(s + 16), d = _mm256_loadu_ps(s + 24);
    const __m256 t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b);
    const __m256 t2 = _mm256_unpacklo_ps(c, d), t3 = _mm256_unpackhi_ps(c, d);
    _mm256_storeu_ps(p[0] + i, _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t0, t2, 0x44), order));
    _mm256_storeu_ps(p[1] + i, _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t0, t2, 0xEE), order));
    _mm256_storeu_ps(p[2] + i, _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t1, t3, 0x44), order));
    _mm256_storeu_ps(p[3] + i, _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t1, t3, 0xEE), order));
  }
  for (std::ptrdiff_t j = 4 * i; j < n; ++j) p[j % 4][j / 4] = in[j];
}

PORTCULLIS_AVX2 void MergeFourAddBiasAvx2(const float* const* p, int n, float bias, float* o) {
  const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256 add = _mm256_set1_ps(bias);
  std::ptrdiff_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 a = _mm256_permutevar8x32_ps(_mm256_loadu_ps(p[0] + i), order);
    const __m256 b = _mm256_permutevar8x32_ps(_mm256_loadu_ps(p[1] + i), order);
    const __m256 c = _mm256_permutevar8x32_ps(_mm256_loadu_ps(p[2] + i), order);
    const __m256 d = _mm256_permutevar8x32_ps(_mm256_loadu_ps(p[3] + i), order);
    const __m256 t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b);
    const __m256 t2 = _mm256_unpacklo_ps(c, d), t3 = _mm256_unpackhi_ps(c, d);
    float* out = o + 4 * i;
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_shuffle_ps(t0, t2, 0x44), add));
    _mm256_storeu_ps(out + 8, _mm256_add_ps(_mm256_shuffle_ps(t0, t2, 0xEE), add));
    _mm256_storeu_ps(out + 16, _mm256_add_ps(_mm256_shuffle_ps(t1, t3, 0x44), add));
    _mm256_storeu_ps(out + 24, _mm256_add_ps(_mm256_shuffle_ps(t1, t3, 0xEE), add));
  }
  for (std::ptrdiff_t j = 4 * i; j < 4 * static_cast<std::ptrdiff_t>(n); ++j) {
    o[j] = p[j % 4][j / 4] + bias;
  }
}

bool CpuHasAvx2() {
  // Every x86 CPU with AVX2 that this will meet also has FMA; both are checked all the same.
  static const bool has = __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0;
  return has;
}
#endif

}  // namespace

void DepthwiseRowPortable(const float* const* src, const float* w, int taps, float bias,
                          const Epilogue& epilogue, int n, float* o) {
  for (int x = 0; x < n; ++x) {
    float acc = bias;
    for (int t = 0; t < taps; ++t) acc = std::fma(w[t], src[t][x], acc);
    o[x] = FinishValue(acc, epilogue);
  }
}

void AddBiasAndFinishPortable(float* v, std::size_t n, float bias, const Epilogue& epilogue) {
  for (std::size_t i = 0; i < n; ++i) v[i] = FinishValue(v[i] + bias, epilogue);
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
  for (std::ptrdiff_t i = 0; 2 * i < n; ++i) {
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
  for (std::ptrdiff_t i = 0; i < n; ++i) {
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

void DepthwiseRow(const float* const* src, const float* w, int taps, float bias,
                  const Epilogue& epilogue, int n, float* o) {
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) {
    DepthwiseRowAvx2(src, w, taps, bias, epilogue, n, o);
    return;
  }
#endif
  DepthwiseRowPortable(src, w, taps, bias, epilogue, n, o);
}

void AddBiasAndFinish(float* v, std::size_t n, float bias, const Epilogue& epilogue) {
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) {
    FinishAvx2<true>(v, n, bias, epilogue);
    return;
  }
#endif
  AddBiasAndFinishPortable(v, n, bias, epilogue);
}

void Finish(float* v, std::size_t n, const Epilogue& epilogue) {
  if (!epilogue.hard_swish && !epilogue.relu && !epilogue.affine) return;
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) {
    FinishAvx2<false>(v, n, 0.0f, epilogue);
    return;
  }
#endif
  for (std::size_t i = 0; i < n; ++i) v[i] = FinishValue(v[i], epilogue);
}

void SoftmaxRowPortable(const float* x, int n, bool log, float* y) {
  if (n <= 0) return;
  const float max = *std::max_element(x, x + n);
  float total = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float e = std::exp(x[i] - max);
    total += e;
    if (!log) y[i] = e;
  }
  for (int i = 0; i < n; ++i) y[i] = log ? x[i] - (max + std::log(total)) : y[i] * (1.0f / total);
}

void SoftmaxRow(const float* x, int n, bool log, float* y) {
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2() && n > 0) {
    SoftmaxRowAvx2(x, n, log, y);
    return;
  }
#endif
  SoftmaxRowPortable(x, n, log, y);
}

void SplitFour(const float* in, int n, float* const* p) {
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) {
    SplitFourAvx2(in, n, p);
    return;
  }
#endif
  for (std::ptrdiff_t j = 0; j < n; ++j) p[j % 4][j / 4] = in[j];
}

void MergeFourAddBias(const float* const* p, int n, float bias, float* o) {
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) {
    MergeFourAddBiasAvx2(p, n, bias, o);
    return;
  }
#endif
  for (std::ptrdiff_t j = 0; j < 4 * static_cast<std::ptrdiff_t>(n); ++j) {
    o[j] = p[j % 4][j / 4] + bias;
  }
}

void WinogradInputRow(const float* const (*phase)[4], int n, float* v, std::size_t stride) {
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) {
    WinogradInputAvx2(phase, n, v, stride);
    return;
  }
#endif
  WinogradInputBody(phase, n, v, stride);
}

void WinogradOutputRow(const float* m, std::size_t stride, int n, float bias, float* const* rows) {
  // The 16 output positions of the tiles into separate rows, then merged four to a row.
  thread_local std::vector<float> positions;
  positions.resize(16 * static_cast<std::size_t>(n));
  float* out[16];
  for (std::size_t k = 0; k < 16; ++k) out[k] = positions.data() + k * static_cast<std::size_t>(n);
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) {
    WinogradOutputAvx2(m, stride, n, out);
  } else {
    WinogradOutputBody(m, stride, n, out);
  }
#else
  WinogradOutputBody(m, stride, n, out);
#endif
  for (std::ptrdiff_t u = 0; u < 4; ++u) MergeFourAddBias(out + 4 * u, n, bias, rows[u]);
}

void SigmoidInPlace(float* v, std::size_t n) {
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) {
    SigmoidAvx2(v, n);
    return;
  }
#endif
  for (std::size_t i = 0; i < n; ++i) v[i] = SigmoidValue(v[i]);
}

float SumFloats(const float* v, std::size_t n) {
#ifdef PORTCULLIS_CONV_X86
  if (CpuHasAvx2()) return SumAvx2(v, n);
#endif
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; ++i) sum += v[i];
  return sum;
}

}  // namespace portcullis::plate
