// The inner loops of the networks' replacement layers (gemm_convolution.h): one depthwise or
// few-channel output row, the bias and activation epilogues, a bias fill, stride-2 and stride-4
// column splits and merges, the Winograd F(4x4, 3x3) transforms, softmax, sigmoid and sums.
//
// The project builds for baseline x86-64 (SSE2) at -O2, where GCC vectorises none of these loops:
// a profile of the detector at 960x544 put 38% of its time in them as scalar code. Each has an
// AVX2 (+FMA) form, chosen at run time when the CPU has both, and a portable form. Where a
// comment below says so, both forms do the same operations in the same order (std::fma where the
// vector form fuses; this file is built with -ffp-contract=off so the compiler fuses nothing on
// its own), so reads do not change with the CPU; softmax, sigmoid and sums vectorise their
// reductions or e^x and agree to float rounding only.
#pragma once

#include <cstddef>

namespace portcullis::plate {

// What follows a convolution's sum, applied in the pass that writes it: HardSwish,
// x * min(1, max(0, x / 6 + 1/2)), or ReLU, max(0, x), and then an affine x * scale + shift (a
// Power layer after the HardSwish: PP-LCNetV3's learnable affine blocks), each when set.
struct Epilogue {
  bool hard_swish = false;
  bool relu = false;
  bool affine = false;
  float scale = 1.0f, shift = 0.0f;
};

// o[x] = epilogue(bias + sum_{t < taps} w[t] * src[t][x]) for x < n, summed in tap order, each
// step one fused multiply-add (std::fma in the portable loop: the same bits; hardware FMA
// wherever the compiler targets it; glibc computes it exactly in software elsewhere).
void DepthwiseRow(const float* const* src, const float* w, int taps, float bias,
                  const Epilogue& epilogue, int n, float* o);
void DepthwiseRowPortable(const float* const* src, const float* w, int taps, float bias,
                          const Epilogue& epilogue, int n, float* o);

// v[i] = epilogue(v[i] + bias) for i < n (both forms: the same bits).
void AddBiasAndFinish(float* v, std::size_t n, float bias, const Epilogue& epilogue);
void AddBiasAndFinishPortable(float* v, std::size_t n, float bias, const Epilogue& epilogue);
// v[i] = epilogue(v[i]) for i < n (the bias is in already).
void Finish(float* v, std::size_t n, const Epilogue& epilogue);

// v[i] = value for i < n (a bias fill; std::fill_n stays scalar at -O2).
void FillFloats(float* v, std::size_t n, float value);

// even[i] = in[2i], odd[i] = in[2i + 1]: the column split of a stride-2 depthwise input row of n
// floats (even gets (n + 1) / 2 of them, odd n / 2).
void SplitEvenOdd(const float* in, int n, float* even, float* odd);

// o[2i] = a[i] + bias, o[2i + 1] = b[i] + bias for i < n: one output row of a 2x2 stride-2
// transposed convolution from its two column taps' products.
void InterleaveAddBias(const float* a, const float* b, int n, float bias, float* o);

// p[q][i] = in[4i + q] for 4i + q < n: the four-way column split of a row for Winograd F(4x4).
void SplitFour(const float* in, int n, float* const* p);
// o[4i + q] = p[q][i] + bias for i < n: its inverse, with a bias.
void MergeFourAddBias(const float* const* p, int n, float bias, float* o);

// Winograd F(4x4, 3x3) transforms of one row of tiles (gemm_convolution.cc has the method); both
// forms are one template: the same bits.
// Input: tile x covers columns 4x..4x+5 of six consecutive zero-padded input rows, given split
// four ways (phase[r][q][i] = row_r[4i + q], each at least n + 1 long); writes the tile's 36
// transformed values V[xi] = (B^T d B)[xi / 6][xi % 6] at v[xi * stride + x], for x < n.
void WinogradInputRow(const float* const (*phase)[4], int n, float* v, std::size_t stride);
// Output: from the 36 products of each tile, m[xi * stride + x], the tile's 4x4 outputs
// (A^T M A) + bias at rows[u][4x + c], for x < n.
void WinogradOutputRow(const float* m, std::size_t stride, int n, float bias, float* const* rows);

// v[i] = 1 / (1 + e^-v[i]) for i < n; the AVX2 form uses SoftmaxRow's e^x (float rounding
// apart from std::exp's, not the same bits; the scalar tail is the portable loop).
void SigmoidInPlace(float* v, std::size_t n);

// The sum of v[0..n) (in 32 lanes where AVX2 is there: not the same bits as the plain loop).
float SumFloats(const float* v, std::size_t n);

// y[i] = e^(x[i] - max) / sum_j e^(x[j] - max) for i < n, or with `log` its logarithm,
// x[i] - max - ln(sum) (the recogniser's 6625-class output, which OpenCV 4.6 takes ~8 ns per
// value over). The AVX2 form has its own e^x (within ~2 ulp of std::exp) and sums in eight
// lanes: the two forms agree to float rounding, not to the bit. y may be x.
void SoftmaxRow(const float* x, int n, bool log, float* y);
void SoftmaxRowPortable(const float* x, int n, bool log, float* y);

// Whether the functions above use their AVX2 forms on this CPU.
bool VectorConvKernels();

}  // namespace portcullis::plate
