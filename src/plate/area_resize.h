// Area ("box") downscaling of 8-bit BGR images, the detector's and recogniser's resize.
//
// cv::resize(..., cv::INTER_AREA) averages each output pixel's footprint in the source, with
// fractional weights at its edges. OpenCV 4.6 does that, at non-integer ratios, one channel
// value and one weight at a time (11 ms for 1280x1280 -> 832x832, the detector's input for a
// square frame). Here the same weights apply in two separable passes: source rows into one
// float row per output row (a vector loop over every byte of those rows), then that row's
// columns into output pixels. The sums run in another order than OpenCV's, so an output byte
// can differ from cv::resize's by one where the average falls within float rounding of a
// half (tests/plate_area_resize_test.cc bounds how often).
#pragma once

#include <opencv2/core.hpp>

namespace portcullis::plate {

// dst = `bgr` (CV_8UC3, non-empty) resized to `size` by area averaging. cv::resize's INTER_AREA
// does it where `size` is larger than the source in either direction (it then interpolates),
// where both ratios are whole numbers (its vectorised block average, which rounds ties up), or
// where the source is not CV_8UC3.
void ResizeArea(const cv::Mat& bgr, cv::Size size, cv::Mat* dst);

}  // namespace portcullis::plate
