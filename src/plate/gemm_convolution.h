// Convolutions (and fully connected layers) as BLAS matrix products, and other layers in faster
// kernels, for the text detector and recogniser under OpenCV 4.6.
//
// OpenCV 4.6's own kernels run the PP-OCRv4 detector's dense convolutions at 4-10 G
// multiply-adds/s on one core; the same arithmetic as one OpenBLAS sgemm per kernel tap runs at
// 15-25. A dense (group 1), stride-1, undilated convolution with a 1x1 kernel, or a square odd
// kernel padded by half its size on every side, is computed here as
//   out[co, y, x] = bias[co] + sum_{ky,kx} W[co, :, ky, kx] . in_padded[:, y + ky, x + kx]
// -- one (Cout x Cin) x (Cin x H*(W+2p)) product per tap over the zero-padded input laid out row
// by row, whose two surplus columns per row are dropped. 3x3 ones with 16 or more input channels
// run as Winograd F(4x4, 3x3) instead (36 products over 4x4-output tiles, 4 times fewer
// multiply-adds). Same sums as OpenCV's, in a different order or form: outputs agree to float
// rounding (tests/plate_gemm_convolution_test.cc bounds it).
// Depthwise convolutions (stride 1 or 2 each way, same padding) are AVX2 row loops here, for the
// same reason as the activation: OpenCV 4.6 applies a fused HardSwish at ~4-8 ns per value, which
// in this detector costs more than many of the convolutions themselves, so both forms apply it
// (and any other fused activation) in a loop of their own. Every other convolution (strided
// dense, dilated, grouped, asymmetric padding) stays OpenCV's. So do transposed convolutions,
// except those whose stride equals their kernel and that have no padding (the DB head's 2x2
// stride-2 upsampling): each output pixel has one tap there, so the whole layer is one product.
// Fully connected layers by constant weights (ONNX MatMul by a constant: the recogniser's
// projections and its CTC head) are one product too; a product of two inputs stays OpenCV's.
// Dense convolutions over few input channels (Cin * k * k <= 32: the detector's 3 -> 16 first
// layer, at stride 1 or 2) sum their rows directly, like depthwise ones. The per-channel affine
// layers (Scale, BatchNorm, Power) after a replaced transposed convolution fold into it, and a
// ReLU or Sigmoid after it is applied as its rows are written. Softmax layers (the recogniser's
// 6625-class output) compute the same function with a vectorised e^x, and global average
// pooling (the SE blocks) is a vectorised sum. Everything else is OpenCV's.
#pragma once

#include <functional>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

namespace portcullis::plate {

// Reads an ONNX model (bytes) into a Net whose eligible convolutions run as BLAS products; the
// others, and every other layer, are OpenCV's. Throws cv::Exception as readNetFromONNX does.
cv::dnn::Net ReadNetWithGemmConvolutions(const std::vector<uchar>& model);

// The Net that `build` makes (e.g. by readNetFromONNX or Net::addLayer), with its eligible
// layers replaced as above: OpenCV's "Convolution", "Deconvolution", "InnerProduct", "Softmax"
// and "Pooling" constructors are replaced while it runs and while the layers are created.
cv::dnn::Net BuildWithGemmConvolutions(const std::function<cv::dnn::Net()>& build);

// Number of convolution layers of `net` (transposed ones included) that run as BLAS products.
int CountGemmConvolutions(cv::dnn::Net& net);

// Sets the BLAS library's thread count when it is OpenBLAS (looked up at run time, as the face
// engine does); returns false when the BLAS in use has no such knob (the reference BLAS, one
// thread). The detector's products must run on the caller's thread for one-core timings to mean
// what they say.
bool SetGemmThreads(int threads);

}  // namespace portcullis::plate
