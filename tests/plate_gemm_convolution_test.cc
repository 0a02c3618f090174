// The detector's convolutions as BLAS products (src/plate/gemm_convolution.h): each eligible
// shape against OpenCV's own convolution on the same random input, the shapes that must stay
// OpenCV's, a fused activation, and the real detector end to end.
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "plate/gemm_convolution.h"
#include "plate/text_detector.h"
#include "portcullis/plate_synth.h"

namespace portcullis::plate {
namespace {

struct ConvShape {
  int in_channels, out_channels, kernel, pad, stride, group;
  bool bias;
  int stride_x = 0;  // 0: the same as stride (which is then the row stride)
};

// A net of `first` and then `after` (named after0, after1, ...), on OpenCV's CPU backend.
cv::dnn::Net Chain(cv::dnn::LayerParams first, std::vector<cv::dnn::LayerParams> after = {}) {
  cv::dnn::Net net;
  net.addLayerToPrev(first.name, first.type, first);
  for (std::size_t i = 0; i < after.size(); ++i) {
    after[i].name = "after" + std::to_string(i);
    net.addLayerToPrev(after[i].name, after[i].type, after[i]);
  }
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  return net;
}

// Random weights of `shape` (uniform in +-0.5) and, when `biases` > 0, that many biases (+-1).
void AddRandomBlobs(cv::dnn::LayerParams* p, const std::vector<int>& shape, int biases,
                    std::uint64_t seed) {
  cv::Mat weights(shape, CV_32F);
  cv::RNG rng(seed);
  rng.fill(weights, cv::RNG::UNIFORM, -0.5, 0.5);
  p->blobs.push_back(weights);
  if (biases > 0) {
    cv::Mat bias(1, biases, CV_32F);
    rng.fill(bias, cv::RNG::UNIFORM, -1.0, 1.0);
    p->blobs.push_back(bias);
  }
}

// One convolution, followed by the given activation layers.
cv::dnn::Net OneConvolution(const ConvShape& s,
                            const std::vector<cv::dnn::LayerParams>& activations);

// One convolution, followed by activation layers of the given types (default parameters).
cv::dnn::Net OneConvolution(const ConvShape& s, const std::vector<std::string>& types = {}) {
  std::vector<cv::dnn::LayerParams> activations;
  for (const auto& type : types) {
    cv::dnn::LayerParams a;
    a.type = type;
    activations.push_back(a);
  }
  return OneConvolution(s, activations);
}

cv::dnn::Net OneConvolution(const ConvShape& s,
                            const std::vector<cv::dnn::LayerParams>& activations) {
  cv::dnn::LayerParams p;
  p.name = "conv";
  p.type = "Convolution";
  p.set("kernel_size", s.kernel);
  p.set("pad", s.pad);
  if (s.stride_x == 0) {
    p.set("stride", s.stride);
  } else {
    p.set("stride_h", s.stride);
    p.set("stride_w", s.stride_x);
  }
  p.set("group", s.group);
  p.set("num_output", s.out_channels);
  p.set("bias_term", s.bias);
  AddRandomBlobs(&p, {s.out_channels, s.in_channels / s.group, s.kernel, s.kernel},
                 s.bias ? s.out_channels : 0, 11);
  return Chain(p, activations);
}

cv::Mat RandomInput(int channels, int height, int width) {
  cv::Mat x(std::vector<int>{1, channels, height, width}, CV_32F);
  cv::RNG rng(5);
  rng.fill(x, cv::RNG::UNIFORM, -2.0, 2.0);
  return x;
}

cv::Mat Forward(cv::dnn::Net& net, const cv::Mat& input) {
  net.setInput(input);
  return net.forward().clone();
}

class GemmConvolutionShapeTest : public ::testing::TestWithParam<ConvShape> {};

TEST_P(GemmConvolutionShapeTest, MatchesOpenCvConvolution) {
  const ConvShape s = GetParam();
  cv::dnn::Net reference = OneConvolution(s);
  cv::dnn::Net gemm = BuildWithGemmConvolutions([&] { return OneConvolution(s); });
  ASSERT_EQ(CountGemmConvolutions(gemm), 1);
  // Odd sizes, so that a row or padding mistake cannot hide in a symmetric layout, and even
  // ones (a stride-2 split then has no lone last column); both directions of change in size.
  for (const auto& [height, width] : {std::pair{13, 21}, std::pair{8, 16}, std::pair{11, 40}}) {
    const cv::Mat input = RandomInput(s.in_channels, height, width);
    const cv::Mat expected = Forward(reference, input);
    const cv::Mat got = Forward(gemm, input);
    ASSERT_EQ(got.size, expected.size) << height << "x" << width;
    // Same sums in another order: float rounding only (|sum| up to ~Cin*k*k).
    EXPECT_LE(cv::norm(got, expected, cv::NORM_INF), 1e-4 * s.in_channels * s.kernel * s.kernel)
        << height << "x" << width;
    // Twice: the layer's scratch buffers are reused.
    EXPECT_EQ(cv::norm(Forward(gemm, input), got, cv::NORM_INF), 0.0) << height << "x" << width;
  }
}

INSTANTIATE_TEST_SUITE_P(
    EligibleShapes, GemmConvolutionShapeTest,
    ::testing::Values(ConvShape{16, 32, 1, 0, 1, 1, true}, ConvShape{96, 24, 3, 1, 1, 1, true},
                      ConvShape{8, 5, 3, 1, 1, 1, false}, ConvShape{4, 6, 5, 2, 1, 1, true},
                      // depthwise: stride 1 and 2, 3x3 and 5x5
                      ConvShape{16, 16, 3, 1, 1, 16, true}, ConvShape{12, 12, 3, 1, 2, 12, true},
                      ConvShape{8, 8, 5, 2, 1, 8, false}, ConvShape{8, 8, 5, 2, 2, 8, true},
                      // depthwise with different row and column strides (the recogniser's)
                      ConvShape{6, 6, 5, 2, 2, 6, true, 1}, ConvShape{6, 6, 3, 1, 1, 6, false, 2},
                      ConvShape{6, 6, 3, 1, 2, 6, true, 1},
                      // depthwise 7x7 (an odd padding of 3 at stride 2)
                      ConvShape{4, 4, 7, 3, 2, 4, true},
                      // dense over few input channels, summed directly: the detector's first
                      // layer (3 -> 16, stride 2), stride 1, and 5x5 at stride 2
                      ConvShape{3, 16, 3, 1, 2, 1, true}, ConvShape{2, 5, 3, 1, 1, 1, false},
                      ConvShape{1, 4, 5, 2, 2, 1, true}));

struct DeconvShape {
  int in_channels, out_channels, kernel, stride, pad;
  bool bias;
};

cv::dnn::LayerParams DeconvolutionParams(const DeconvShape& s) {
  cv::dnn::LayerParams p;
  p.name = "deconv";
  p.type = "Deconvolution";
  p.set("kernel_size", s.kernel);
  p.set("pad", s.pad);
  p.set("stride", s.stride);
  p.set("num_output", s.out_channels);
  p.set("bias_term", s.bias);
  AddRandomBlobs(&p, {s.in_channels, s.out_channels, s.kernel, s.kernel},
                 s.bias ? s.out_channels : 0, 13);
  return p;
}

cv::dnn::Net OneDeconvolution(const DeconvShape& s) { return Chain(DeconvolutionParams(s)); }

TEST(GemmConvolutionTest, TransposedConvolutionWithStrideEqualToKernelMatchesOpenCv) {
  // The DB head's two (24->24 and 24->1, 2x2 stride 2, the first without a bias in the model),
  // and a 3x3 stride-3 one, on an odd input size.
  for (const DeconvShape& s :
       {DeconvShape{24, 24, 2, 2, 0, false}, DeconvShape{24, 1, 2, 2, 0, true},
        DeconvShape{5, 7, 3, 3, 0, true}}) {
    cv::dnn::Net reference = OneDeconvolution(s);
    cv::dnn::Net gemm = BuildWithGemmConvolutions([&] { return OneDeconvolution(s); });
    ASSERT_EQ(CountGemmConvolutions(gemm), 1) << s.in_channels << "->" << s.out_channels;
    const cv::Mat input = RandomInput(s.in_channels, 11, 17);
    const cv::Mat expected = Forward(reference, input);
    const cv::Mat got = Forward(gemm, input);
    ASSERT_EQ(got.size, expected.size);
    EXPECT_LE(cv::norm(got, expected, cv::NORM_INF), 1e-4 * s.in_channels);
    EXPECT_EQ(cv::norm(Forward(gemm, input), got, cv::NORM_INF), 0.0);
  }
}

// A transposed convolution followed by the given layers.
cv::dnn::Net DeconvolutionThen(const DeconvShape& s,
                               const std::vector<cv::dnn::LayerParams>& after) {
  return Chain(DeconvolutionParams(s), after);
}

cv::Mat RandomRow(int n, std::uint64_t seed, double low, double high) {
  cv::Mat m(1, n, CV_32F);
  cv::RNG(seed).fill(m, cv::RNG::UNIFORM, low, high);
  return m;
}

TEST(GemmConvolutionTest, TransposedConvolutionFusesTheDbHeadsAffineLayersAndActivations) {
  // The DB head: deconvolution, per-channel Scale, BatchNorm, ReLU; then deconvolution, a
  // scalar Power (an imported Add) and the Sigmoid of the probability map. Also a Scale that is
  // not per channel of this layer's outputs, which must stay a layer, and a leaky ReLU.
  cv::dnn::LayerParams scale;
  scale.type = "Scale";
  scale.set("bias_term", true);
  scale.blobs = {RandomRow(24, 31, 0.5, 1.5), RandomRow(24, 32, -1.0, 1.0)};
  cv::dnn::LayerParams batch_norm;
  batch_norm.type = "BatchNorm";
  batch_norm.set("has_weight", true);
  batch_norm.set("has_bias", true);
  batch_norm.set("eps", 1e-5);
  batch_norm.blobs = {RandomRow(24, 33, -0.5, 0.5), RandomRow(24, 34, 0.5, 2.0),
                      RandomRow(24, 35, 0.5, 1.5), RandomRow(24, 36, -0.5, 0.5)};
  cv::dnn::LayerParams relu;
  relu.type = "ReLU";
  cv::dnn::LayerParams leaky = relu;
  leaky.set("negative_slope", 0.1);
  cv::dnn::LayerParams power;
  power.type = "Power";
  power.set("power", 1.0);
  power.set("scale", 1.5);
  power.set("shift", 0.3);
  cv::dnn::LayerParams sigmoid;
  sigmoid.type = "Sigmoid";
  struct Case {
    DeconvShape shape;
    std::vector<cv::dnn::LayerParams> after;
  };
  for (const Case& c : {Case{DeconvShape{24, 24, 2, 2, 0, false}, {scale, batch_norm, relu}},
                        Case{DeconvShape{24, 1, 2, 2, 0, true}, {power, sigmoid}},
                        Case{DeconvShape{24, 24, 2, 2, 0, true}, {scale, leaky}},
                        Case{DeconvShape{24, 24, 2, 2, 0, true}, {relu, scale}}}) {
    cv::dnn::Net reference = DeconvolutionThen(c.shape, c.after);
    cv::dnn::Net gemm =
        BuildWithGemmConvolutions([&] { return DeconvolutionThen(c.shape, c.after); });
    ASSERT_EQ(CountGemmConvolutions(gemm), 1);
    const cv::Mat input = RandomInput(c.shape.in_channels, 11, 17);
    const cv::Mat expected = Forward(reference, input);
    const cv::Mat got = Forward(gemm, input);
    ASSERT_EQ(got.size, expected.size);
    EXPECT_LE(cv::norm(got, expected, cv::NORM_INF), 1e-4 * c.shape.in_channels)
        << c.after.back().type << " after " << c.after.size() << " layers";
    EXPECT_EQ(cv::norm(Forward(gemm, input), got, cv::NORM_INF), 0.0);
    // A new input size makes OpenCV set the net up and fuse its layers again: the affine layers
    // must not be folded in twice (the detector reads with one net at many sizes).
    const cv::Mat other = RandomInput(c.shape.in_channels, 9, 13);
    cv::Mat other_expected;
    {
      cv::dnn::Net fresh = DeconvolutionThen(c.shape, c.after);
      other_expected = Forward(fresh, other);
    }
    const cv::Mat other_got = Forward(gemm, other);
    ASSERT_EQ(other_got.size, other_expected.size);
    EXPECT_LE(cv::norm(other_got, other_expected, cv::NORM_INF), 1e-4 * c.shape.in_channels)
        << "after a new input size, " << c.after.back().type;
    EXPECT_EQ(cv::norm(Forward(gemm, input), got, cv::NORM_INF), 0.0) << "back at the first size";
  }
}

TEST(GemmConvolutionTest, LeavesOverlappingOrPaddedTransposedConvolutionsToOpenCv) {
  for (const DeconvShape& s : {DeconvShape{8, 4, 3, 2, 0, true},      // taps overlap
                               DeconvShape{8, 4, 2, 2, 1, true},      // padded
                               DeconvShape{8, 4, 2, 1, 0, false}}) {  // stride 1
    cv::dnn::Net gemm = BuildWithGemmConvolutions([&] { return OneDeconvolution(s); });
    EXPECT_EQ(CountGemmConvolutions(gemm), 0) << s.kernel << " " << s.stride << " " << s.pad;
    cv::dnn::Net reference = OneDeconvolution(s);
    const cv::Mat input = RandomInput(s.in_channels, 6, 9);
    EXPECT_EQ(cv::norm(Forward(gemm, input), Forward(reference, input), cv::NORM_INF), 0.0);
  }
}

// A fully connected layer by constant weights, on an input of the given shape, folding the
// dimensions from `axis` on (as OpenCV's ONNX importer makes of a MatMul by a constant).
cv::dnn::Net OneInnerProduct(int inner, int outputs, int axis, bool bias) {
  cv::dnn::LayerParams p;
  p.name = "fc";
  p.type = "InnerProduct";
  p.set("num_output", outputs);
  p.set("bias_term", bias);
  p.set("axis", axis);
  AddRandomBlobs(&p, {outputs, inner}, bias ? outputs : 0, 17);
  return Chain(p);
}

TEST(GemmConvolutionTest, InnerProductByConstantWeightsMatchesOpenCv) {
  struct Case {
    std::vector<int> input;
    int axis, outputs;
    bool bias;
  };
  // The recogniser's head ([1, T, C] at axis 2, to many classes), a 2-D one, a negative axis,
  // and a fold of two dimensions into K.
  for (const Case& c :
       {Case{{1, 7, 12}, 2, 97, false}, Case{{1, 7, 12}, 2, 5, true}, Case{{3, 20}, 1, 9, true},
        Case{{1, 4, 6}, -1, 8, true}, Case{{2, 3, 5}, 1, 4, true}}) {
    int inner = 1;
    const int axis = c.axis < 0 ? c.axis + static_cast<int>(c.input.size()) : c.axis;
    for (std::size_t d = static_cast<std::size_t>(axis); d < c.input.size(); ++d) {
      inner *= c.input[d];
    }
    cv::dnn::Net reference = OneInnerProduct(inner, c.outputs, c.axis, c.bias);
    cv::dnn::Net gemm = BuildWithGemmConvolutions(
        [&] { return OneInnerProduct(inner, c.outputs, c.axis, c.bias); });
    ASSERT_EQ(CountGemmConvolutions(gemm), 1);
    cv::Mat input(c.input, CV_32F);
    cv::RNG(19).fill(input, cv::RNG::UNIFORM, -2.0, 2.0);
    const cv::Mat expected = Forward(reference, input);
    const cv::Mat got = Forward(gemm, input);
    ASSERT_EQ(got.size, expected.size) << c.outputs;
    EXPECT_LE(cv::norm(got, expected, cv::NORM_INF), 1e-5 * inner) << c.outputs;
    EXPECT_EQ(cv::norm(Forward(gemm, input), got, cv::NORM_INF), 0.0);
  }
}

cv::dnn::Net OneSoftmax(int axis, bool log) {
  cv::dnn::LayerParams p;
  p.name = "softmax";
  p.type = "Softmax";
  p.set("axis", axis);
  p.set("log_softmax", log);
  return Chain(p);
}

TEST(GemmConvolutionTest, SoftmaxMatchesOpenCvOnEveryAxis) {
  // The recogniser's [1, T, classes] at its last axis (and counted from the end), an inner axis
  // (strided columns), the first, and the log form.
  for (const auto& [axis, log] : {std::pair{2, false}, std::pair{-1, false}, std::pair{1, false},
                                  std::pair{0, false}, std::pair{2, true}, std::pair{1, true}}) {
    cv::dnn::Net reference = OneSoftmax(axis, log);
    cv::dnn::Net ours = BuildWithGemmConvolutions([&] { return OneSoftmax(axis, log); });
    ASSERT_EQ(ours.getLayer(ours.getLayerId("softmax"))->type, "PortcullisSoftmax");
    cv::Mat input(std::vector<int>{2, 7, 37}, CV_32F);
    cv::RNG(23).fill(input, cv::RNG::UNIFORM, -9.0, 9.0);
    const cv::Mat expected = Forward(reference, input);
    const cv::Mat got = Forward(ours, input);
    ASSERT_EQ(got.size, expected.size) << axis;
    EXPECT_LE(cv::norm(got, expected, cv::NORM_INF), 1e-5) << axis << " log " << log;
    EXPECT_EQ(cv::norm(Forward(ours, input), got, cv::NORM_INF), 0.0);
  }
}

cv::dnn::Net OnePooling(const std::string& pool, bool global) {
  cv::dnn::LayerParams p;
  p.name = "pool";
  p.type = "Pooling";
  p.set("pool", pool);
  if (global) {
    p.set("global_pooling", true);
  } else {
    p.set("kernel_size", 2);
    p.set("stride", 2);
  }
  return Chain(p);
}

TEST(GemmConvolutionTest, GlobalAveragePoolingMatchesOpenCvAndOtherPoolingStaysOpenCvs) {
  struct Case {
    std::string pool;
    bool global;
    const char* type;
  };
  for (const Case& c : {Case{"ave", true, "PortcullisGlobalAveragePool"},
                        Case{"AVE", true, "PortcullisGlobalAveragePool"},
                        Case{"max", true, "Pooling"}, Case{"ave", false, "Pooling"}}) {
    cv::dnn::Net reference = OnePooling(c.pool, c.global);
    cv::dnn::Net ours = BuildWithGemmConvolutions([&] { return OnePooling(c.pool, c.global); });
    EXPECT_EQ(ours.getLayer(ours.getLayerId("pool"))->type, c.type) << c.pool << c.global;
    // Planes shorter than, as long as, and longer than the 32-float step; two images.
    for (const auto& [h, w] : {std::pair{2, 3}, std::pair{4, 8}, std::pair{13, 37}}) {
      cv::Mat input(std::vector<int>{2, 5, h, w}, CV_32F);
      cv::RNG(43).fill(input, cv::RNG::UNIFORM, -3.0, 5.0);
      const cv::Mat expected = Forward(reference, input);
      const cv::Mat got = Forward(ours, input);
      ASSERT_EQ(got.size, expected.size) << h << "x" << w;
      EXPECT_LE(cv::norm(got, expected, cv::NORM_INF), 1e-6 * 5) << c.pool << " " << h << "x" << w;
    }
  }
}

TEST(GemmConvolutionTest, ProductOfTwoInputsStaysOpenCvs) {
  // Attention's Q.K^T: an InnerProduct with no constant weights.
  cv::dnn::LayerParams p;
  p.name = "matmul";
  p.type = "InnerProduct";
  p.set("axis", 1);
  cv::dnn::Net net = BuildWithGemmConvolutions([&] {
    cv::dnn::Net n;
    const int id = n.addLayer(p.name, p.type, p);
    n.connect(0, 0, id, 0);
    n.connect(0, 1, id, 1);
    n.setInputsNames({"a", "b"});
    return n;
  });
  EXPECT_EQ(CountGemmConvolutions(net), 0);
}

TEST(GemmConvolutionTest, WinogradThreeByThreeMatchesOpenCvAtEveryInputSize) {
  // 3x3 dense convolutions with >= 16 input channels run as Winograd F(4x4, 3x3): inputs of one
  // row or column, sizes that leave 1..3 rows or columns of a last tile, rows of tiles shorter
  // than, as long as and not a multiple of the 8-tile vector (whose tail overlaps), blocks of
  // several tile rows (narrow inputs) and rows wider than a block.
  for (const int in_channels : {16, 96}) {
    const ConvShape s{in_channels, 8, 3, 1, 1, 1, true};
    cv::dnn::Net reference = OneConvolution(s, {"HardSwish"});
    cv::dnn::Net gemm = BuildWithGemmConvolutions([&] { return OneConvolution(s, {"HardSwish"}); });
    ASSERT_EQ(CountGemmConvolutions(gemm), 1);
    for (const auto& [h, w] : std::vector<std::pair<int, int>>{{1, 1},
                                                               {1, 17},
                                                               {17, 1},
                                                               {2, 2},
                                                               {3, 5},
                                                               {8, 8},
                                                               {6, 31},
                                                               {7, 32},
                                                               {13, 33},
                                                               {9, 300},
                                                               {4, 517}}) {
      const cv::Mat input = RandomInput(s.in_channels, h, w);
      const cv::Mat expected = Forward(reference, input);
      const cv::Mat got = Forward(gemm, input);
      ASSERT_EQ(got.size, expected.size) << h << "x" << w;
      // F(4x4, 3x3) rounds to ~1e-5 of the output's range (measured: 8e-6 at Cin 96).
      EXPECT_LE(cv::norm(got, expected, cv::NORM_INF),
                3e-5 * std::max(1.0, cv::norm(expected, cv::NORM_INF)))
          << in_channels << " channels, " << h << "x" << w;
    }
  }
}

TEST(GemmConvolutionTest, LeavesOtherShapesToOpenCv) {
  for (const ConvShape& s : {ConvShape{16, 16, 3, 1, 1, 4, true},      // grouped, not depthwise
                             ConvShape{12, 12, 3, 1, 3, 12, true},     // depthwise, stride 3
                             ConvShape{12, 12, 3, 1, 1, 12, true, 3},  // depthwise, column stride 3
                             ConvShape{16, 32, 3, 1, 1, 1, true, 2},   // dense, column stride 2
                             ConvShape{16, 32, 3, 1, 2, 1, true},      // strided
                             ConvShape{4, 8, 3, 1, 2, 1, true},  // strided, 36 taps: not direct
                             ConvShape{3, 8, 1, 0, 2, 1, true},  // strided 1x1
                             ConvShape{16, 32, 3, 0, 1, 1, true}}) {  // unpadded 3x3
    cv::dnn::Net gemm = BuildWithGemmConvolutions([&] { return OneConvolution(s); });
    EXPECT_EQ(CountGemmConvolutions(gemm), 0) << s.kernel << " " << s.stride << " " << s.group;
    cv::dnn::Net reference = OneConvolution(s);
    const cv::Mat input = RandomInput(s.in_channels, 12, 16);
    EXPECT_EQ(cv::norm(Forward(gemm, input), Forward(reference, input), cv::NORM_INF), 0.0);
  }
}

TEST(GemmConvolutionTest, FusedActivationMatches) {
  // Dense and depthwise. Two activations in a row: the convolution takes the first only (the
  // detector has HardSwish then an affine Power layer after many of its convolutions).
  const std::vector<std::vector<std::string>> activations = {
      {"ReLU"},      {"ReLU6"},           {"Sigmoid"},
      {"HardSwish"}, {"Sigmoid", "TanH"}, {"HardSwish", "Sigmoid"}};
  for (const ConvShape& s :
       {ConvShape{24, 16, 3, 1, 1, 1, true}, ConvShape{8, 8, 3, 1, 2, 8, true}}) {
    for (const auto& activation : activations) {
      cv::dnn::Net reference = OneConvolution(s, activation);
      cv::dnn::Net gemm = BuildWithGemmConvolutions([&] { return OneConvolution(s, activation); });
      ASSERT_EQ(CountGemmConvolutions(gemm), 1);
      const cv::Mat input = RandomInput(s.in_channels, 9, 17);
      EXPECT_LE(cv::norm(Forward(gemm, input), Forward(reference, input), cv::NORM_INF), 1e-3)
          << activation.back() << " group " << s.group;
    }
  }
}

TEST(GemmConvolutionTest, AffinePowerAfterHardSwishIsFusedAndExact) {
  // PP-LCNetV3's learnable affine block: HardSwish, then y = 0.8 x - 0.3 (a Power layer of
  // exponent 1), fused into the convolution's pass; a Power of exponent 2 must stay a layer.
  for (float exponent : {1.0f, 2.0f}) {
    cv::dnn::LayerParams hard_swish;
    hard_swish.type = "HardSwish";
    cv::dnn::LayerParams power;
    power.type = "Power";
    power.set("power", exponent);
    power.set("scale", 0.8f);
    power.set("shift", -0.3f);
    // As exported: a scalar Mul then a scalar Add (both Power layers), or one affine Power.
    cv::dnn::LayerParams mul;
    mul.type = "Power";
    mul.set("power", exponent);
    mul.set("scale", 0.8f);
    cv::dnn::LayerParams add;
    add.type = "Power";
    add.set("shift", -0.3f);
    for (const auto& activations : std::vector<std::vector<cv::dnn::LayerParams>>{
             {hard_swish, power}, {hard_swish, mul, add}}) {
      // 1x1, Winograd 3x3, depthwise.
      for (const ConvShape& s :
           {ConvShape{12, 8, 1, 0, 1, 1, true}, ConvShape{16, 8, 3, 1, 1, 1, true},
            ConvShape{8, 8, 5, 2, 2, 8, true}}) {
        cv::dnn::Net reference = OneConvolution(s, activations);
        cv::dnn::Net gemm =
            BuildWithGemmConvolutions([&] { return OneConvolution(s, activations); });
        ASSERT_EQ(CountGemmConvolutions(gemm), 1);
        const cv::Mat input = RandomInput(s.in_channels, 9, 17);
        const cv::Mat expected = Forward(reference, input);
        EXPECT_LE(cv::norm(Forward(gemm, input), expected, cv::NORM_INF),
                  1e-4 * s.in_channels * s.kernel * s.kernel)
            << "exponent " << exponent << " kernel " << s.kernel;
        EXPECT_GT(cv::norm(expected, cv::NORM_INF), 0.5);  // not a trivially zero output
      }
    }
  }
}

TEST(GemmConvolutionTest, RegistrationIsUndone) {
  const ConvShape s{16, 32, 1, 0, 1, 1, true};
  cv::dnn::Net gemm = BuildWithGemmConvolutions([&] { return OneConvolution(s); });
  ASSERT_EQ(CountGemmConvolutions(gemm), 1);
  // A Net built afterwards gets OpenCV's convolution again.
  cv::dnn::Net later = OneConvolution(s);
  const cv::Mat input = RandomInput(s.in_channels, 4, 4);
  Forward(later, input);
  EXPECT_EQ(CountGemmConvolutions(later), 0);
  cv::dnn::Net later_deconvolution = OneDeconvolution({4, 4, 2, 2, 0, true});
  Forward(later_deconvolution, RandomInput(4, 3, 3));
  EXPECT_EQ(CountGemmConvolutions(later_deconvolution), 0);
  cv::dnn::Net later_inner_product = OneInnerProduct(6, 3, 1, true);
  Forward(later_inner_product, RandomInput(6, 1, 1));
  EXPECT_EQ(CountGemmConvolutions(later_inner_product), 0);
}

TEST(GemmConvolutionTest, BuildErrorsPropagateAndUndoRegistration) {
  EXPECT_THROW(ReadNetWithGemmConvolutions(std::vector<uchar>{'n', 'o', 't'}), cv::Exception);
  cv::dnn::Net later = OneConvolution({16, 32, 1, 0, 1, 1, true});
  Forward(later, RandomInput(16, 4, 4));
  EXPECT_EQ(CountGemmConvolutions(later), 0);
}

std::string ModelDir() {
  const char* env = std::getenv("PORTCULLIS_MODEL_DIR");
  if (env != nullptr && *env != '\0') return env;
  return std::string(PORTCULLIS_SOURCE_DIR) + "/models";
}

// The real detector on a generated scene: the same lines, scores within float rounding.
TEST(GemmConvolutionTest, DetectorFindsTheSameLines) {
  std::unique_ptr<TextDetector> reference, gemm;
  Status s = TextDetector::Open(ModelDir() + "/plate_det.onnx", &reference);
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = TextDetector::Open(ModelDir() + "/plate_det.onnx", &gemm, /*gemm_convolutions=*/true);
  ASSERT_TRUE(s.ok()) << s.ToString();
  SynthSpec spec;
  spec.text = "KT38AZ1";
  spec.plate_width = 180;
  SynthTruth truth;
  const cv::Mat scene = RenderVehicleScene(spec, &truth);
  DetectorOptions options;
  options.max_side = 640;
  std::vector<TextBox> expected, got;
  ASSERT_TRUE(reference->Detect(scene, options, &expected).ok());
  ASSERT_TRUE(gemm->Detect(scene, options, &got).ok());
  ASSERT_FALSE(expected.empty());
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i].score, expected[i].score, 1e-3);
    for (std::size_t c = 0; c < 4; ++c) {
      EXPECT_NEAR(got[i].corners[c].x, expected[i].corners[c].x, 1.0);
      EXPECT_NEAR(got[i].corners[c].y, expected[i].corners[c].y, 1.0);
    }
  }
}

}  // namespace
}  // namespace portcullis::plate
