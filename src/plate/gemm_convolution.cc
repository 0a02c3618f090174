#include "plate/gemm_convolution.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include <cblas.h>
#include <opencv2/dnn/all_layers.hpp>
#include <opencv2/dnn/shape_utils.hpp>

#include "common/blas_threads.h"
#include "common/huge_page_allocator.h"
#include "plate/conv_kernels.h"

namespace portcullis::plate {
namespace {

constexpr const char* kGemmType = "PortcullisGemmConvolution";
// 3x3 dense convolutions with at least this many input channels run as Winograd F(4x4, 3x3):
// the transforms cost per input channel what the products save per output channel.
constexpr int kWinogradMinInputChannels = 16;
// Tiles per block of the Winograd products: 36 x Cin x this many floats of transformed input
// (830 KB at Cin 96) stay in L2 between the input transform and the products.
constexpr int kWinogradBlockTiles = 64;
// The 36 matrices are written (input) and read (output) together, one tile column at a time:
// strides that are multiples of 4 KiB would put them all in the same cache set.
constexpr std::size_t kWinogradStridePad = 16;  // floats: one cache line
// Dense convolutions with at most this many taps (Cin * k * k) sum rows directly (Direct()).
constexpr int kDirectMaxTaps = 32;
constexpr int kDirectBlockColumns = 128;  // 32 taps x 128 floats: 16 KB of L1
constexpr const char* kGemmDeconvolutionType = "PortcullisGemmDeconvolution";
constexpr const char* kGemmInnerProductType = "PortcullisGemmInnerProduct";
constexpr const char* kSoftmaxType = "PortcullisSoftmax";
constexpr const char* kGlobalAveragePoolType = "PortcullisGlobalAveragePool";

// One float input, one float output, both continuous: the only form the layers below take (the
// networks' tensors always are). Run gets them unpacked.
class SingleInputLayer : public cv::dnn::Layer {
 public:
  using cv::dnn::Layer::Layer;

  void forward(cv::InputArrayOfArrays inputs_arr, cv::OutputArrayOfArrays outputs_arr,
               cv::OutputArrayOfArrays /*internals*/) final {
    std::vector<cv::Mat> inputs, outputs;
    inputs_arr.getMatVector(inputs);
    outputs_arr.getMatVector(outputs);
    CV_Assert(inputs.size() == 1 && outputs.size() == 1 && inputs[0].type() == CV_32F &&
              inputs[0].isContinuous() && outputs[0].isContinuous());
    Run(inputs[0], outputs[0]);
  }

 protected:
  virtual void Run(const cv::Mat& in, cv::Mat& out) = 0;
};

// Scratch for the layers' forwards, one set per thread. A net runs its layers one at a time on
// the thread that calls forward, so the layers of every net on that thread can share one set,
// as large as the largest layer needs. Held per layer instead, it summed every layer's padded
// input and product rows over every input size's net: each new size's first forward faulted in
// tens of MB of fresh pages, and the detector held ~1.4 GB after a dozen sizes
// (docs/plate-speed.md, "Memory").
// The vectors are on huge pages once large (src/common/huge_page_allocator.h): a second look's
// 2 MP input grows them to tens of MB, a quarter of the page faults of its first run.
struct LayerScratch {
  using Floats = std::vector<float, HugePageVectorAllocator<float>>;
  Floats padded, wide, ring, products, out_rows, column;
};

LayerScratch& ThreadScratch() {
  thread_local LayerScratch scratch;
  return scratch;
}

// max(0, x): a ReLU layer without a negative slope.
bool IsPlainRelu(const cv::dnn::Layer& layer) {
  const auto* relu = dynamic_cast<const cv::dnn::ReLULayer*>(&layer);
  return relu != nullptr && relu->negativeSlope == 0.0f;
}

class GemmConvolutionLayer final : public SingleInputLayer {
 public:
  // weights: [Cout, Cin, k, k] (dense) or [C, 1, k, k] (depthwise); bias: Cout values or empty.
  GemmConvolutionLayer(const cv::dnn::LayerParams& params, const cv::Mat& weights,
                       const cv::Mat& bias, bool depthwise, int stride_y, int stride_x)
      : SingleInputLayer(params),
        out_channels_(weights.size[0]),
        in_channels_(depthwise ? weights.size[0] : weights.size[1]),
        kernel_(weights.size[2]),
        stride_y_(stride_y),
        stride_x_(stride_x),
        depthwise_(depthwise) {
    type = kGemmType;  // not "Convolution": OpenCV's convolution-only fusions must not apply
    bias_.assign(static_cast<std::size_t>(out_channels_), 0.0f);
    if (!bias.empty()) std::copy_n(bias.ptr<float>(), out_channels_, bias_.begin());
    if (depthwise_ || Direct()) {  // [Cout, Cin * k * k] as stored
      taps_.assign(weights.ptr<float>(), weights.ptr<float>() + weights.total());
      return;
    }
    // Per tap, a contiguous Cout x Cin matrix.
    const int taps = kernel_ * kernel_;
    taps_.resize(static_cast<std::size_t>(taps) * out_channels_ * in_channels_);
    const auto* w = weights.ptr<float>();
    for (int co = 0; co < out_channels_; ++co) {
      for (int ci = 0; ci < in_channels_; ++ci) {
        for (int t = 0; t < taps; ++t) {
          taps_[(static_cast<std::size_t>(t) * out_channels_ + co) * in_channels_ + ci] =
              w[(static_cast<std::size_t>(co) * in_channels_ + ci) * taps + t];
        }
      }
    }
    if (kernel_ == 3 && in_channels_ >= kWinogradMinInputChannels) PrepareWinograd(w);
  }

  bool getMemoryShapes(const std::vector<cv::dnn::MatShape>& inputs, int /*requiredOutputs*/,
                       std::vector<cv::dnn::MatShape>& outputs,
                       std::vector<cv::dnn::MatShape>& /*internals*/) const override {
    CV_Assert(inputs.size() == 1 && inputs[0].size() == 4 && inputs[0][1] == in_channels_);
    const int pad = kernel_ / 2;
    outputs.assign(1,
                   {inputs[0][0], out_channels_, (inputs[0][2] + 2 * pad - kernel_) / stride_y_ + 1,
                    (inputs[0][3] + 2 * pad - kernel_) / stride_x_ + 1});
    return false;
  }

  // The fuser offers each following activation in turn. The first is taken, as OpenCV's
  // convolution does; after a HardSwish, also the affine Power layers (exponent 1) of
  // PP-LCNetV3's learnable affine blocks (29 layers in the detector), which then run in the same
  // pass. Any other activation stays a layer of its own.
  bool setActivation(const cv::Ptr<cv::dnn::ActivationLayer>& layer) override {
    if (layer.empty()) {
      activation_.release();
      epilogue_ = {};
      return false;
    }
    if (activation_.empty()) {
      activation_ = layer;
      epilogue_.hard_swish = layer->type == "HardSwish";
      epilogue_.relu = IsPlainRelu(*layer);
      return true;
    }
    const auto* power = dynamic_cast<const cv::dnn::PowerLayer*>(layer.get());
    if (!epilogue_.hard_swish || power == nullptr || power->power != 1.0f) return false;
    if (!epilogue_.affine) {
      epilogue_.affine = true;
      epilogue_.scale = power->scale;
      epilogue_.shift = power->shift;
      return true;
    }
    // The block is exported as a scalar Mul then a scalar Add: x * s, then x + b, is exactly
    // x * s + b. Other pairs would round differently in one step, so they stay layers.
    if (epilogue_.shift != 0.0f || power->scale != 1.0f) return false;
    epilogue_.shift = power->shift;
    return true;
  }

  void Run(const cv::Mat& in, cv::Mat& out) override {
    const int batch = in.size[0], height = in.size[2], width = in.size[3];
    const int plane = out.size[2] * out.size[3];
    for (int n = 0; n < batch; ++n) {
      const float* x = in.ptr<float>(n);
      auto* y = out.ptr<float>(n);
      if (depthwise_ || Direct()) {
        ForwardRows(x, height, width, out.size[2], out.size[3], y);
        continue;  // activation applied per channel, while it is in cache
      }
      if (kernel_ == 1) {
        // The product, then the bias and the activation in one pass.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out_channels_, plane, in_channels_,
                    1.0f, taps_.data(), in_channels_, x, plane, 0.0f, y, plane);
        for (int co = 0; co < out_channels_; ++co) {
          AddBiasAndFinish(y + static_cast<std::ptrdiff_t>(co) * plane,
                           static_cast<std::size_t>(plane), bias_[static_cast<std::size_t>(co)],
                           epilogue_);
        }
        if (OtherActivation()) activation_->forwardSlice(y, y, plane, plane, 0, out_channels_);
        continue;
      } else {
        if (winograd_.empty()) {
          ForwardPadded(x, height, width, y);
        } else {
          ForwardWinograd(x, height, width, y);
          continue;  // activation applied per output row
        }
      }
      Finish(y, static_cast<std::size_t>(plane) * out_channels_, epilogue_);
      if (OtherActivation()) activation_->forwardSlice(y, y, plane, plane, 0, out_channels_);
    }
  }

 private:
  // A fused activation that the epilogue (conv_kernels.h) does not do: OpenCV applies it. OpenCV
  // 4.6 applies HardSwish at ~4-8 ns per value (35 ms for the detector's first 4 M-value layer
  // at 960 px); the epilogue does the same arithmetic at memory speed.
  [[nodiscard]] bool OtherActivation() const {
    return !activation_.empty() && !epilogue_.hard_swish && !epilogue_.relu;
  }

  // A dense convolution over so few input channels (the detector's first, 3 -> 16 at stride 2:
  // 27 taps) that a product's inner dimension would be too short for BLAS: each output row of
  // each channel is a sum of Cin * k * k input rows, as a depthwise one's is of k * k.
  [[nodiscard]] bool Direct() const {
    return !depthwise_ && kernel_ > 1 && in_channels_ * kernel_ * kernel_ <= kDirectMaxTaps;
  }

  // Depthwise, or dense and Direct(): k x k, pad k/2, stride sy, sx in {1, 2}. Per input channel
  // the zero-padded plane (all Cin of them when dense), then per output row one pass that sums
  // the taps in registers (conv_kernels.h) and applies the fused epilogue. Tap (ky, kx) of output
  // (y, x) is padded[sy*y + ky][sx*x + kx]; at sx = 2 the padded rows are stored split into even
  // and odd columns, so that every tap reads contiguous floats: padded[r][2x + kx] is
  // (kx even ? even : odd)[r][x + kx/2].
  void ForwardRows(const float* x, int height, int width, int out_h, int out_w, float* y) {
    LayerScratch& scratch = ThreadScratch();
    const int pad = kernel_ / 2;
    const int padded_w = width + 2 * pad, padded_h = height + 2 * pad;
    const int even_w = (padded_w + 1) / 2;
    const std::size_t padded_plane = static_cast<std::size_t>(padded_h) * padded_w;
    const int planes = depthwise_ ? 1 : in_channels_;  // held at once
    scratch.padded.assign(padded_plane * planes, 0.0f);
    // Input channel c into plane `plane`: the padding stays zero from the assign above, as every
    // pass writes the same positions. Split rows come straight from the input: padded column
    // 2i + e is input column 2i + e - pad, so the input's even columns land in the even half
    // when pad is even and in the odd half when it is odd, each after the padding's zeros.
    const auto prepare = [&](int c, int plane) {
      float* padded = scratch.padded.data() + padded_plane * plane;
      for (int row = 0; row < height; ++row) {
        const float* in = x + (static_cast<std::size_t>(c) * height + row) * width;
        float* out = padded + static_cast<std::size_t>(row + pad) * padded_w;
        if (stride_x_ != 2) {
          std::memcpy(out + pad, in, sizeof(float) * static_cast<std::size_t>(width));
        } else if (pad % 2 == 0) {
          SplitEvenOdd(in, width, out + pad / 2, out + even_w + pad / 2);
        } else {
          SplitEvenOdd(in, width, out + even_w + pad / 2, out + (pad + 1) / 2);
        }
      }
    };
    const int taps = kernel_ * kernel_ * (depthwise_ ? 1 : in_channels_);
    std::vector<const float*> sources(static_cast<std::size_t>(taps));
    // Sources of output row oy, in the weights' order (input channel, ky, kx).
    const auto point = [&](int oy) {
      for (int plane = 0; plane < planes; ++plane) {
        for (int ky = 0; ky < kernel_; ++ky) {
          const float* row = scratch.padded.data() + padded_plane * plane +
                             static_cast<std::size_t>(oy * stride_y_ + ky) * padded_w;
          for (int kx = 0; kx < kernel_; ++kx) {
            sources[(static_cast<std::size_t>(plane) * kernel_ + ky) * kernel_ + kx] =
                stride_x_ == 2 ? (kx % 2 == 0 ? row : row + even_w) + kx / 2 : row + kx;
          }
        }
      }
    };
    // Output columns [x0, x0 + n) of row oy of channel co, from `src` (sources shifted by x0).
    const auto row_out = [&](const float* const* src, int co, int oy, int x0, int n) {
      DepthwiseRow(src, taps_.data() + static_cast<std::ptrdiff_t>(co) * taps, taps,
                   bias_[static_cast<std::size_t>(co)], epilogue_, n,
                   y + (static_cast<std::ptrdiff_t>(co) * out_h + oy) * out_w + x0);
    };
    const std::ptrdiff_t out_plane = static_cast<std::ptrdiff_t>(out_h) * out_w;
    if (!depthwise_) {
      for (int c = 0; c < in_channels_; ++c) prepare(c, c);
      // Every output channel reads the same Cin * k * k source rows: in column blocks that fit
      // L1 together, once from memory rather than once per output channel.
      std::vector<const float*> block(sources.size());
      for (int oy = 0; oy < out_h; ++oy) {
        point(oy);
        for (int x0 = 0; x0 < out_w; x0 += kDirectBlockColumns) {
          for (std::size_t t = 0; t < sources.size(); ++t) block[t] = sources[t] + x0;
          for (int co = 0; co < out_channels_; ++co) {
            row_out(block.data(), co, oy, x0, std::min(kDirectBlockColumns, out_w - x0));
          }
        }
      }
      if (OtherActivation()) {
        activation_->forwardSlice(y, y, out_h * out_w, static_cast<std::size_t>(out_plane), 0,
                                  out_channels_);
      }
      return;
    }
    for (int c = 0; c < out_channels_; ++c) {
      prepare(c, 0);
      for (int oy = 0; oy < out_h; ++oy) {
        point(oy);
        row_out(sources.data(), c, oy, 0, out_w);
      }
      if (OtherActivation()) {
        float* dst = y + c * out_plane;
        activation_->forwardSlice(dst, dst, out_h * out_w, static_cast<std::size_t>(out_plane), c,
                                  c + 1);
      }
    }
  }

  // Winograd F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
  // 2016): each 4x4 block of outputs comes from a 6x6 tile d of the padded input as
  //   Y = A^T [ sum_ci (G g G^T)[co, ci] (.) (B^T d B)[ci] ] A
  // where (.) is element-wise: 36 products (Cout x Cin) x (Cin x tiles), one per tile position,
  // in place of 9 (Cout x Cin) x (Cin x pixels) -- 4 times fewer multiply-adds. The detector's
  // two 3x3 96->24 convolutions at a quarter of its input size were 30% of its time. The
  // transforms (conv_kernels.h) multiply by small integers only; G's fractions are folded into
  // the weights in double. The result differs from the direct sum by float rounding, ~1e-5 of
  // the output's range (F(2x2, 3x3), used before, was ~5e-7 and 25% slower here); tests bound it
  // against OpenCV's convolution.
  void PrepareWinograd(const float* w) {
    winograd_.resize(36 * static_cast<std::size_t>(out_channels_) * in_channels_);
    // G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
    static constexpr double kG[6][3] = {{0.25, 0.0, 0.0},
                                        {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                        {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                        {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                        {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                        {0.0, 0.0, 1.0}};
    for (int co = 0; co < out_channels_; ++co) {
      for (int ci = 0; ci < in_channels_; ++ci) {
        const float* g = w + (static_cast<std::size_t>(co) * in_channels_ + ci) * 9;
        double gg[6][3] = {};  // G g
        for (int i = 0; i < 6; ++i) {
          for (int c = 0; c < 3; ++c) {
            for (int k = 0; k < 3; ++k) gg[i][c] += kG[i][k] * g[3 * k + c];
          }
        }
        for (int i = 0; i < 6; ++i) {
          for (int j = 0; j < 6; ++j) {  // (G g) G^T
            double u = 0.0;
            for (int k = 0; k < 3; ++k) u += gg[i][k] * kG[j][k];
            winograd_[(static_cast<std::size_t>(6 * i + j) * out_channels_ + co) * in_channels_ +
                      ci] = static_cast<float>(u);
          }
        }
      }
    }
  }

  void ForwardWinograd(const float* x, int height, int width, float* y) {
    LayerScratch& scratch = ThreadScratch();
    const int tiles_h = (height + 3) / 4, tiles_w = (width + 3) / 4;
    // The input, padded by 1 on the top and left and to whole tiles (plus 1) on the bottom and
    // right, is never stored (13 MB at 960 px, which would not stay in L2): tile row t reads
    // padded rows 4t..4t+5, so each channel keeps eight, split four ways (the tiles' columns
    // step by 4), in a ring (slot p % 8 holds padded row p); per tile row four new rows per
    // channel are split into it.
    const std::size_t phase_len = static_cast<std::size_t>(tiles_w) + 1;
    const std::size_t slot = 4 * phase_len;
    scratch.ring.assign(slot * 8 * in_channels_, 0.0f);
    const auto slot_of = [&](int c, int p) {
      return scratch.ring.data() + (static_cast<std::size_t>(c) * 8 + p % 8) * slot;
    };
    // Padded column c is input column c - 1: input column j lands in phase (j + 1) % 4 at
    // (j + 1) / 4. Columns past the input stay zero from the assign; a padding row is zeroed.
    const auto split_row = [&](int c, int p) {
      float* phase0 = slot_of(c, p);
      const int row = p - 1;
      if (row < 0 || row >= height) {
        std::fill_n(phase0, slot, 0.0f);
        return;
      }
      float* const phases[4] = {phase0 + phase_len, phase0 + 2 * phase_len, phase0 + 3 * phase_len,
                                phase0 + 1};
      SplitFour(x + (static_cast<std::size_t>(c) * height + row) * width, width, phases);
    };
    for (int c = 0; c < in_channels_; ++c) {
      split_row(c, 0);
      split_row(c, 1);
    }
    const int block_rows = std::max(1, kWinogradBlockTiles / tiles_w);
    const float* phase[6][4];
    const std::size_t row_floats = 4 * static_cast<std::size_t>(tiles_w);
    scratch.out_rows.resize(4 * row_floats);
    float* const rows[4] = {scratch.out_rows.data(), scratch.out_rows.data() + row_floats,
                            scratch.out_rows.data() + 2 * row_floats,
                            scratch.out_rows.data() + 3 * row_floats};
    for (int ty0 = 0; ty0 < tiles_h; ty0 += block_rows) {
      const int block = std::min(block_rows, tiles_h - ty0);
      const std::size_t tiles = static_cast<std::size_t>(block) * tiles_w;
      const std::size_t v_stride = tiles * in_channels_ + kWinogradStridePad;
      const std::size_t m_stride = tiles * out_channels_ + kWinogradStridePad;
      scratch.wide.resize(36 * v_stride);
      scratch.products.resize(36 * m_stride);
      for (int r = 0; r < block; ++r) {
        const int top = 4 * (ty0 + r);  // first padded row of this tile row
        for (int c = 0; c < in_channels_; ++c) {
          for (int a = 2; a < 6; ++a) split_row(c, top + a);
          for (int a = 0; a < 6; ++a) {
            const float* phase0 = slot_of(c, top + a);
            for (std::size_t q = 0; q < 4; ++q) phase[a][q] = phase0 + q * phase_len;
          }
          WinogradInputRow(phase, tiles_w,
                           scratch.wide.data() + c * tiles + static_cast<std::size_t>(r) * tiles_w,
                           v_stride);
        }
      }
      for (std::size_t xi = 0; xi < 36; ++xi) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out_channels_,
                    static_cast<int>(tiles), in_channels_, 1.0f,
                    winograd_.data() + xi * out_channels_ * in_channels_, in_channels_,
                    scratch.wide.data() + xi * v_stride, static_cast<int>(tiles), 0.0f,
                    scratch.products.data() + xi * m_stride, static_cast<int>(tiles));
      }
      for (int co = 0; co < out_channels_; ++co) {
        float* dst = y + static_cast<std::ptrdiff_t>(co) * height * width;
        for (int r = 0; r < block; ++r) {
          const int out_row = 4 * (ty0 + r);
          WinogradOutputRow(
              scratch.products.data() + co * tiles + static_cast<std::size_t>(r) * tiles_w,
              m_stride, tiles_w, bias_[static_cast<std::size_t>(co)], rows);
          for (int dy = 0; dy < 4 && out_row + dy < height; ++dy) {
            float* o = dst + static_cast<std::ptrdiff_t>(out_row + dy) * width;
            std::memcpy(o, rows[dy], sizeof(float) * static_cast<std::size_t>(width));
            Finish(o, static_cast<std::size_t>(width), epilogue_);
          }
        }
      }
    }
    if (OtherActivation()) {
      activation_->forwardSlice(y, y, height * width, static_cast<std::size_t>(height) * width, 0,
                                out_channels_);
    }
  }

  // A k x k kernel, pad k/2: one product per tap over the padded input (see the header).
  void ForwardPadded(const float* x, int height, int width, float* y) {
    LayerScratch& scratch = ThreadScratch();
    const int pad = kernel_ / 2;
    const int padded_w = width + 2 * pad, padded_h = height + 2 * pad;
    const std::size_t padded_plane = static_cast<std::size_t>(padded_h) * padded_w;
    // The last tap's view of the last channel runs 2*pad floats past the padded tensor.
    scratch.padded.assign(padded_plane * in_channels_ + 2 * static_cast<std::size_t>(pad), 0.0f);
    for (int c = 0; c < in_channels_; ++c) {
      for (int row = 0; row < height; ++row) {
        std::memcpy(scratch.padded.data() + c * padded_plane +
                        static_cast<std::size_t>(row + pad) * padded_w + pad,
                    x + (static_cast<std::size_t>(c) * height + row) * width,
                    sizeof(float) * static_cast<std::size_t>(width));
      }
    }
    const int columns = height * padded_w;  // output rows at padded width
    scratch.wide.resize(static_cast<std::size_t>(out_channels_) * columns);
    for (int co = 0; co < out_channels_; ++co) {
      FillFloats(scratch.wide.data() + static_cast<std::ptrdiff_t>(co) * columns,
                 static_cast<std::size_t>(columns), bias_[static_cast<std::size_t>(co)]);
    }
    const std::size_t tap_size = static_cast<std::size_t>(out_channels_) * in_channels_;
    for (int ky = 0; ky < kernel_; ++ky) {
      for (int kx = 0; kx < kernel_; ++kx) {
        const std::size_t t = static_cast<std::size_t>(ky) * kernel_ + kx;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out_channels_, columns, in_channels_,
                    1.0f, taps_.data() + t * tap_size, in_channels_,
                    scratch.padded.data() + static_cast<std::size_t>(ky) * padded_w + kx,
                    static_cast<int>(padded_plane), 1.0f, scratch.wide.data(), columns);
      }
    }
    for (int co = 0; co < out_channels_; ++co) {
      for (int row = 0; row < height; ++row) {
        std::memcpy(y + (static_cast<std::size_t>(co) * height + row) * width,
                    scratch.wide.data() + static_cast<std::size_t>(co) * columns +
                        static_cast<std::size_t>(row) * padded_w,
                    sizeof(float) * static_cast<std::size_t>(width));
      }
    }
  }

  int out_channels_, in_channels_, kernel_, stride_y_, stride_x_;
  bool depthwise_;
  std::vector<float> taps_, bias_;
  std::vector<float> winograd_;  // G g G^T: [36][Cout][Cin]; empty when not used
  cv::Ptr<cv::dnn::ActivationLayer> activation_;
  Epilogue epilogue_;  // HardSwish or ReLU, and a following affine Power layer, when fused
};

// A transposed convolution whose stride equals its kernel and that has no padding (the DB head's
// 2x2 stride-2 upsampling): every output pixel gets exactly one tap, so it is one product
//   Y[(co, dy, dx), y*W + x] = sum_ci W[ci, co, dy, dx] * in[ci, y*W + x]
// followed by placing Y's rows in the output: out[co, k*y + dy, k*x + dx] = bias[co] + Y[...].
// OpenCV 4.6 runs the detector's 24->24 one at ~4 G multiply-adds/s (17 ms at 960x544).
class GemmDeconvolutionLayer final : public SingleInputLayer {
 public:
  // weights: [Cin, Cout, k, k], as ONNX and OpenCV store them; bias: Cout values or empty.
  GemmDeconvolutionLayer(const cv::dnn::LayerParams& params, const cv::Mat& weights,
                         const cv::Mat& bias)
      : SingleInputLayer(params),
        in_channels_(weights.size[0]),
        out_channels_(weights.size[1]),
        kernel_(weights.size[2]) {
    type = kGemmDeconvolutionType;
    bias_.assign(static_cast<std::size_t>(out_channels_), 0.0f);
    if (!bias.empty()) std::copy_n(bias.ptr<float>(), out_channels_, bias_.begin());
    const int taps = kernel_ * kernel_;
    rows_.resize(static_cast<std::size_t>(out_channels_) * taps * in_channels_);
    const auto* w = weights.ptr<float>();
    for (int ci = 0; ci < in_channels_; ++ci) {
      for (int co = 0; co < out_channels_; ++co) {
        for (int t = 0; t < taps; ++t) {
          rows_[(static_cast<std::size_t>(co) * taps + t) * in_channels_ + ci] =
              w[(static_cast<std::size_t>(ci) * out_channels_ + co) * taps + t];
        }
      }
    }
    unfused_rows_ = rows_;
    unfused_bias_ = bias_;
  }

  bool getMemoryShapes(const std::vector<cv::dnn::MatShape>& inputs, int /*requiredOutputs*/,
                       std::vector<cv::dnn::MatShape>& outputs,
                       std::vector<cv::dnn::MatShape>& /*internals*/) const override {
    CV_Assert(inputs.size() == 1 && inputs[0].size() == 4 && inputs[0][1] == in_channels_);
    outputs.assign(1,
                   {inputs[0][0], out_channels_, inputs[0][2] * kernel_, inputs[0][3] * kernel_});
    return false;
  }

  // The DB head follows each transposed convolution with a per-channel bias (a Scale or Power
  // layer, as OpenCV imports an Add), a BatchNorm and a ReLU, or a Sigmoid: each a full pass over
  // a 3-12 MB tensor. Affine layers fold into the weights and bias,
  //   s * (W . x + bias) + b = (s W) . x + (s bias + b)
  // (the same function, rounded once where it was rounded per layer), until an activation is
  // taken; ReLU and Sigmoid then apply to each output row as it is placed, while in cache.
  bool tryFuse(cv::Ptr<cv::dnn::Layer>& top) override {
    if (activation_ != Activation::kNone || top.empty()) return false;
    cv::Mat scale, shift;
    if (const auto* power = dynamic_cast<const cv::dnn::PowerLayer*>(top.get())) {
      if (power->power != 1.0f) return false;
      scale = cv::Mat(1, 1, CV_32F, cv::Scalar(power->scale));
      shift = cv::Mat(1, 1, CV_32F, cv::Scalar(power->shift));
    } else if (top.dynamicCast<cv::dnn::ScaleLayer>().empty() &&
               top.dynamicCast<cv::dnn::BatchNormLayer>().empty()) {
      return false;
    } else {
      top->getScaleShift(scale, shift);
    }
    const auto per_channel = [&](const cv::Mat& m) {
      return m.empty() || (m.type() == CV_32F && m.isContinuous() &&
                           (m.total() == 1 || static_cast<int>(m.total()) == out_channels_));
    };
    if ((scale.empty() && shift.empty()) || !per_channel(scale) || !per_channel(shift)) {
      return false;
    }
    const int taps = kernel_ * kernel_;
    for (int co = 0; co < out_channels_; ++co) {
      const float s = scale.empty() ? 1.0f : scale.ptr<float>()[scale.total() == 1 ? 0 : co];
      const float b = shift.empty() ? 0.0f : shift.ptr<float>()[shift.total() == 1 ? 0 : co];
      float* row = rows_.data() + static_cast<std::size_t>(co) * taps * in_channels_;
      for (int i = 0; i < taps * in_channels_; ++i) row[i] *= s;
      bias_[static_cast<std::size_t>(co)] = bias_[static_cast<std::size_t>(co)] * s + b;
    }
    return true;
  }

  // OpenCV sets a net up again when its input size changes: it calls this on every layer and
  // then fuses anew. Without going back to the unfused weights here, the affine layers would be
  // folded in twice (the net's output was garbage after its first new size).
  void unsetAttached() override {
    SingleInputLayer::unsetAttached();
    rows_ = unfused_rows_;
    bias_ = unfused_bias_;
    activation_ = Activation::kNone;
  }

  // See tryFuse: ReLU or Sigmoid (with a vectorised e^x; OpenCV 4.6 takes ~3 ns per value over
  // it, 1.5 ms at 960x544). Any other activation stays a layer of its own.
  bool setActivation(const cv::Ptr<cv::dnn::ActivationLayer>& layer) override {
    activation_ = Activation::kNone;
    if (layer.empty()) return false;
    if (layer->type == "Sigmoid") activation_ = Activation::kSigmoid;
    if (IsPlainRelu(*layer)) activation_ = Activation::kRelu;
    return activation_ != Activation::kNone;
  }

  void Run(const cv::Mat& in, cv::Mat& out) override {
    LayerScratch& scratch = ThreadScratch();
    const int height = in.size[2], width = in.size[3], plane = height * width;
    const int taps = kernel_ * kernel_, out_w = width * kernel_;
    scratch.products.resize(static_cast<std::size_t>(out_channels_) * taps * plane);
    for (int n = 0; n < in.size[0]; ++n) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out_channels_ * taps, plane,
                  in_channels_, 1.0f, rows_.data(), in_channels_, in.ptr<float>(n), plane, 0.0f,
                  scratch.products.data(), plane);
      auto* y = out.ptr<float>(n);
      for (int co = 0; co < out_channels_; ++co) {
        const float b = bias_[static_cast<std::size_t>(co)];
        const float* products =
            scratch.products.data() + static_cast<std::size_t>(co) * taps * plane;
        float* channel = y + static_cast<std::ptrdiff_t>(co) * plane * taps;
        for (int row = 0; row < height; ++row) {
          for (int dy = 0; dy < kernel_; ++dy) {
            float* o = channel + static_cast<std::ptrdiff_t>(row * kernel_ + dy) * out_w;
            const float* p = products + static_cast<std::ptrdiff_t>(dy * kernel_) * plane +
                             static_cast<std::ptrdiff_t>(row) * width;
            if (kernel_ == 2) {
              InterleaveAddBias(p, p + plane, width, b, o);
            } else {
              for (int x = 0; x < width; ++x) {
                for (int dx = 0; dx < kernel_; ++dx) {
                  o[x * kernel_ + dx] = p[static_cast<std::ptrdiff_t>(dx) * plane + x] + b;
                }
              }
            }
            if (activation_ == Activation::kSigmoid) {
              SigmoidInPlace(o, static_cast<std::size_t>(out_w));
            } else if (activation_ == Activation::kRelu) {
              Epilogue relu;
              relu.relu = true;
              Finish(o, static_cast<std::size_t>(out_w), relu);
            }
          }
        }
      }
    }
  }

 private:
  enum class Activation { kNone, kRelu, kSigmoid };
  int in_channels_, out_channels_, kernel_;
  Activation activation_ = Activation::kNone;
  std::vector<float> rows_, bias_;  // rows_: [Cout * k * k, Cin]; with fused layers folded in
  std::vector<float> unfused_rows_, unfused_bias_;  // as loaded
};

// The "Deconvolution" (ONNX ConvTranspose) constructor while a detector loads.
cv::Ptr<cv::dnn::Layer> CreateDeconvolution(cv::dnn::LayerParams& params) {
  cv::Ptr<cv::dnn::BaseConvolutionLayer> builtin = cv::dnn::DeconvolutionLayer::create(params);
  if (params.blobs.empty() || params.get<int>("group", 1) != 1) return builtin;
  const cv::Mat& weights = params.blobs[0];
  const auto all = [](const std::vector<std::size_t>& v, std::size_t value) {
    return std::all_of(v.begin(), v.end(), [&](std::size_t e) { return e == value; });
  };
  if (weights.dims != 4 || weights.type() != CV_32F || !weights.isContinuous() ||
      builtin->kernel_size.size() != 2 || !builtin->padMode.empty() ||
      !all(builtin->dilations, 1) || !all(builtin->pads_begin, 0) || !all(builtin->pads_end, 0) ||
      !all(builtin->adjust_pads, 0)) {
    return builtin;
  }
  const std::size_t k = builtin->kernel_size[0];
  if (builtin->kernel_size[1] != k || !all(builtin->strides, k) || builtin->strides.size() != 2 ||
      weights.size[2] != static_cast<int>(k) || weights.size[3] != static_cast<int>(k) ||
      builtin->numOutput != weights.size[1]) {
    return builtin;
  }
  cv::Mat bias;
  if (params.blobs.size() > 1 && params.get<bool>("bias_term", true)) {
    bias = params.blobs[1].reshape(1, 1);
    if (bias.type() != CV_32F || static_cast<int>(bias.total()) != weights.size[1]) return builtin;
  }
  return cv::makePtr<GemmDeconvolutionLayer>(params, weights, bias);
}

// A fully connected layer with constant weights (an ONNX MatMul or Gemm by a constant: the
// recogniser's projections and its 6625-class CTC head, which OpenCV 4.6 runs at ~7 G
// multiply-adds/s): out[m, :] = W . in[m, :] + bias, one BLAS product for all m.
class GemmInnerProductLayer final : public SingleInputLayer {
 public:
  // weights: [N, K] (OpenCV's layout); bias: N values or empty; axis: the first input dimension
  // folded into K (negative counts from the end).
  GemmInnerProductLayer(const cv::dnn::LayerParams& params, const cv::Mat& weights,
                        const cv::Mat& bias, int axis)
      : SingleInputLayer(params),
        outputs_(weights.size[0]),
        inner_(weights.size[1]),
        axis_(axis),
        weights_(weights.ptr<float>(), weights.ptr<float>() + weights.total()) {
    type = kGemmInnerProductType;
    bias_.assign(static_cast<std::size_t>(outputs_), 0.0f);
    if (!bias.empty()) std::copy_n(bias.ptr<float>(), outputs_, bias_.begin());
  }

  bool getMemoryShapes(const std::vector<cv::dnn::MatShape>& inputs, int /*requiredOutputs*/,
                       std::vector<cv::dnn::MatShape>& outputs,
                       std::vector<cv::dnn::MatShape>& /*internals*/) const override {
    CV_Assert(inputs.size() == 1);
    const int dims = static_cast<int>(inputs[0].size());
    const int axis = axis_ < 0 ? axis_ + dims : axis_;
    CV_Assert(axis >= 0 && axis < dims && cv::dnn::total(inputs[0], axis) == inner_);
    cv::dnn::MatShape shape(inputs[0].begin(), inputs[0].begin() + axis);
    shape.push_back(outputs_);
    outputs.assign(1, shape);
    return false;
  }

  void Run(const cv::Mat& in, cv::Mat& out) override {
    const int rows = static_cast<int>(in.total() / static_cast<std::size_t>(inner_));
    auto* y = out.ptr<float>();
    for (int m = 0; m < rows; ++m) {
      std::copy(bias_.begin(), bias_.end(), y + static_cast<std::ptrdiff_t>(m) * outputs_);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, outputs_, inner_, 1.0f,
                in.ptr<float>(), inner_, weights_.data(), inner_, 1.0f, y, outputs_);
  }

 private:
  int outputs_, inner_, axis_;
  std::vector<float> weights_, bias_;
};

// The "InnerProduct" constructor while a model loads: ours for constant weights, OpenCV's for a
// product of two inputs (the recogniser's attention).
cv::Ptr<cv::dnn::Layer> CreateInnerProduct(cv::dnn::LayerParams& params) {
  cv::Ptr<cv::dnn::InnerProductLayer> builtin = cv::dnn::InnerProductLayer::create(params);
  if (params.blobs.empty()) return builtin;
  // OpenCV's constructor has checked the shapes and reshaped blobs[0] to [N, K] in params.
  const cv::Mat& weights = builtin->blobs.empty() ? params.blobs[0] : builtin->blobs[0];
  if (weights.dims != 2 || weights.type() != CV_32F || !weights.isContinuous() ||
      params.get<bool>("transA", false) || params.get<bool>("transB", false)) {
    return builtin;
  }
  cv::Mat bias;
  if (params.get<bool>("bias_term", true) && builtin->blobs.size() > 1) {
    bias = builtin->blobs[1].reshape(1, 1);
    if (bias.type() != CV_32F || static_cast<int>(bias.total()) != weights.size[0]) return builtin;
  }
  return cv::makePtr<GemmInnerProductLayer>(params, weights, bias, params.get<int>("axis", 1));
}

// Softmax over one axis (as OpenCV's layer computes it), rows in AVX2 (conv_kernels.h): the
// recogniser's 6625-class output was 11% of its time at ~8 ns per value.
class SoftmaxLayer final : public SingleInputLayer {
 public:
  explicit SoftmaxLayer(const cv::dnn::LayerParams& params)
      : SingleInputLayer(params),
        axis_(params.get<int>("axis", 1)),
        log_(params.get<bool>("log_softmax", false)) {
    type = kSoftmaxType;
  }

  bool getMemoryShapes(const std::vector<cv::dnn::MatShape>& inputs, int /*requiredOutputs*/,
                       std::vector<cv::dnn::MatShape>& outputs,
                       std::vector<cv::dnn::MatShape>& /*internals*/) const override {
    CV_Assert(inputs.size() == 1 && !inputs[0].empty());
    outputs.assign(1, inputs[0]);
    return false;
  }

  void Run(const cv::Mat& in, cv::Mat& out) override {
    LayerScratch& scratch = ThreadScratch();
    const cv::dnn::MatShape shape = cv::dnn::shape(in);
    const int dims = static_cast<int>(shape.size());
    const int axis = axis_ < 0 ? axis_ + dims : axis_;
    CV_Assert(axis >= 0 && axis < dims);
    const int outer = cv::dnn::total(shape, 0, axis), channels = shape[axis];
    const int inner = cv::dnn::total(shape, axis + 1);
    const float* x = in.ptr<float>();
    auto* y = out.ptr<float>();
    const std::ptrdiff_t block = static_cast<std::ptrdiff_t>(channels) * inner;
    if (inner == 1) {
      for (int o = 0; o < outer; ++o) SoftmaxRow(x + o * block, channels, log_, y + o * block);
      return;
    }
    scratch.column.resize(static_cast<std::size_t>(channels));
    for (int o = 0; o < outer; ++o) {
      for (int i = 0; i < inner; ++i) {
        for (std::ptrdiff_t c = 0; c < channels; ++c)
          scratch.column[c] = x[o * block + c * inner + i];
        SoftmaxRow(scratch.column.data(), channels, log_, scratch.column.data());
        for (std::ptrdiff_t c = 0; c < channels; ++c)
          y[o * block + c * inner + i] = scratch.column[c];
      }
    }
  }

 private:
  int axis_;
  bool log_;
};

cv::Ptr<cv::dnn::Layer> CreateSoftmax(cv::dnn::LayerParams& params) {
  return cv::makePtr<SoftmaxLayer>(params);
}

// Global average pooling (the squeeze-and-excitation blocks' per-channel means): OpenCV 4.6
// takes twice memory speed over it (2.2 ms for the detector's largest, 12 MB at 960x544).
class GlobalAveragePoolLayer final : public SingleInputLayer {
 public:
  explicit GlobalAveragePoolLayer(const cv::dnn::LayerParams& params) : SingleInputLayer(params) {
    type = kGlobalAveragePoolType;
  }

  bool getMemoryShapes(const std::vector<cv::dnn::MatShape>& inputs, int /*requiredOutputs*/,
                       std::vector<cv::dnn::MatShape>& outputs,
                       std::vector<cv::dnn::MatShape>& /*internals*/) const override {
    CV_Assert(inputs.size() == 1 && inputs[0].size() == 4);
    outputs.assign(1, {inputs[0][0], inputs[0][1], 1, 1});
    return false;
  }

  void Run(const cv::Mat& in, cv::Mat& out) override {
    const std::size_t planes = static_cast<std::size_t>(in.size[0]) * in.size[1];
    const std::size_t plane = static_cast<std::size_t>(in.size[2]) * in.size[3];
    const float* x = in.ptr<float>();
    auto* y = out.ptr<float>();
    for (std::size_t c = 0; c < planes; ++c) {
      y[c] = SumFloats(x + c * plane, plane) / static_cast<float>(plane);
    }
  }
};

// The "Pooling" constructor while a model loads: ours for global average pooling, OpenCV's for
// every other kind.
cv::Ptr<cv::dnn::Layer> CreatePooling(cv::dnn::LayerParams& params) {
  const cv::String pool = params.get<cv::String>("pool", "max");
  if (params.get<bool>("global_pooling", false) && (pool == "ave" || pool == "AVE")) {
    return cv::makePtr<GlobalAveragePoolLayer>(params);
  }
  return cv::dnn::PoolingLayer::create(params);
}

// The "Convolution" constructor while a detector loads: OpenCV's layer, whose parsed
// parameters also decide whether the product form applies.
cv::Ptr<cv::dnn::Layer> CreateConvolution(cv::dnn::LayerParams& params) {
  cv::Ptr<cv::dnn::BaseConvolutionLayer> builtin = cv::dnn::ConvolutionLayer::create(params);
  if (params.blobs.empty()) return builtin;
  const cv::Mat& weights = params.blobs[0];
  const int group = params.get<int>("group", 1);
  const auto all = [](const std::vector<std::size_t>& v, std::size_t value) {
    return std::all_of(v.begin(), v.end(), [&](std::size_t e) { return e == value; });
  };
  if (weights.dims != 4 || weights.type() != CV_32F || !weights.isContinuous() ||
      builtin->kernel_size.size() != 2 || !builtin->padMode.empty() ||
      !all(builtin->dilations, 1) || builtin->strides.size() != 2) {
    return builtin;
  }
  // Depthwise (one input channel per output channel) at stride 1 or 2 in each direction (the
  // recogniser has (2, 1) and (1, 2) ones).
  const bool depthwise = group > 1 && group == weights.size[0] && weights.size[1] == 1;
  const std::size_t stride_y = builtin->strides[0], stride_x = builtin->strides[1];
  // Dense at stride 1, or at stride 1 or 2 each way when it sums its rows directly (Direct()).
  const bool small_dense =
      weights.size[2] > 1 && weights.size[1] * weights.size[2] * weights.size[3] <= kDirectMaxTaps;
  const bool dense_ok = group == 1 && ((stride_y == 1 && stride_x == 1) ||
                                       (small_dense && stride_y <= 2 && stride_x <= 2));
  const bool depthwise_ok =
      depthwise && stride_y >= 1 && stride_y <= 2 && stride_x >= 1 && stride_x <= 2;
  if (!dense_ok && !depthwise_ok) return builtin;
  const std::size_t k = builtin->kernel_size[0];
  if (builtin->kernel_size[1] != k || k % 2 == 0 || k > 7 || !all(builtin->pads_begin, k / 2) ||
      !all(builtin->pads_end, k / 2) || weights.size[2] != static_cast<int>(k) ||
      weights.size[3] != static_cast<int>(k)) {
    return builtin;
  }
  cv::Mat bias;
  if (params.blobs.size() > 1 && params.get<bool>("bias_term", true)) {
    bias = params.blobs[1].reshape(1, 1);
    if (bias.type() != CV_32F || static_cast<int>(bias.total()) != weights.size[0]) return builtin;
  }
  return cv::makePtr<GemmConvolutionLayer>(params, weights, bias, depthwise,
                                           static_cast<int>(stride_y), static_cast<int>(stride_x));
}

}  // namespace

cv::dnn::Net BuildWithGemmConvolutions(const std::function<cv::dnn::Net()>& build) {
  // The layer registry is process-wide: one registration at a time, undone on every path. A
  // model loaded by another thread meanwhile would get the same arithmetic, in product form.
  static std::mutex mutex;
  const std::lock_guard<std::mutex> lock(mutex);
  cv::dnn::LayerFactory::registerLayer("Convolution", CreateConvolution);
  cv::dnn::LayerFactory::registerLayer("Deconvolution", CreateDeconvolution);
  cv::dnn::LayerFactory::registerLayer("InnerProduct", CreateInnerProduct);
  cv::dnn::LayerFactory::registerLayer("Softmax", CreateSoftmax);
  cv::dnn::LayerFactory::registerLayer("Pooling", CreatePooling);
  struct Unregister {
    ~Unregister() {
      cv::dnn::LayerFactory::unregisterLayer("Pooling");
      cv::dnn::LayerFactory::unregisterLayer("Softmax");
      cv::dnn::LayerFactory::unregisterLayer("InnerProduct");
      cv::dnn::LayerFactory::unregisterLayer("Deconvolution");
      cv::dnn::LayerFactory::unregisterLayer("Convolution");
    }
  } unregister;
  cv::dnn::Net net = build();
  // OpenCV creates layer objects lazily; create them all while the registration holds.
  for (const auto& name : net.getLayerNames()) net.getLayer(net.getLayerId(name));
  return net;
}

cv::dnn::Net ReadNetWithGemmConvolutions(const std::vector<uchar>& model) {
  return BuildWithGemmConvolutions([&] { return cv::dnn::readNetFromONNX(model); });
}

int CountGemmConvolutions(cv::dnn::Net& net) {
  int count = 0;
  for (const auto& name : net.getLayerNames()) {
    const std::string& type = net.getLayer(net.getLayerId(name))->type;
    count += type == kGemmType || type == kGemmDeconvolutionType || type == kGemmInnerProductType
                 ? 1
                 : 0;
  }
  return count;
}

bool SetGemmThreads(int threads) { return SetOpenBlasThreads(threads); }

}  // namespace portcullis::plate
