// The element-wise inner loops of the product-form convolutions (gemm_convolution.h): one
// depthwise output row, and HardSwish over a buffer.
//
// The project builds for baseline x86-64 (SSE2) at -O2, where GCC vectorises neither loop: a
// profile of the detector at 960x544 put 38% of its time in these loops as scalar code. Each has
// an AVX2 form, chosen at run time when the CPU has AVX2, and a portable form. Both do the same
// operations in the same order (separate multiplies and adds, no fused multiply-add), so their
// results are bit-identical to each other and to the scalar loops they replace: reads do not
// change with the CPU.
#pragma once

#include <cstddef>

namespace portcullis::plate {

// o[x] = bias + sum_{t < taps} w[t] * src[t][x] for x < n, summed in tap order, then
// x * min(1, max(0, x / 6 + 1/2)) when hard_swish.
void DepthwiseRow(const float* const* src, const float* w, int taps, float bias, bool hard_swish,
                  int n, float* o);
void DepthwiseRowPortable(const float* const* src, const float* w, int taps, float bias,
                          bool hard_swish, int n, float* o);

// v[i] = v[i] * min(1, max(0, v[i] / 6 + 1/2)).
void HardSwishInPlace(float* v, std::size_t n);
void HardSwishInPlacePortable(float* v, std::size_t n);

// Whether DepthwiseRow and HardSwishInPlace use the AVX2 forms on this CPU.
bool VectorConvKernels();

}  // namespace portcullis::plate
