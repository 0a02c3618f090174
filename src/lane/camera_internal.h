// Internals of the camera and pass-detector code, here so tests can reach them. Pixels and plate
// text are wiped with hygiene.h (WipeMat, WipeString); encoder buffers with WipeBuffer below.
#pragma once

#include <vector>

#include <sodium.h>

#include <opencv2/core/mat.hpp>

namespace portcullis::lane::camera_internal {

// Overwrites a byte buffer (a JPEG encoder's output) with zeros and clears it.
inline void WipeBuffer(std::vector<uchar>* bytes) {
  if (!bytes->empty()) sodium_memzero(bytes->data(), bytes->size());
  bytes->clear();
}

// Frames larger than this are refused as corrupt: no lane camera produces them and a hostile
// stream must not make us allocate without bound downstream.
inline constexpr int kMaxFrameSide = 8192;

// Whether a decoded frame may be handed on: 8-bit BGR, non-empty, a sane size, and the size this
// stream started with (*expected; set from the first good frame). A frame of another size
// mid-stream is a decoder glitch: passing it on would reset the motion background and confuse
// the tracker's boxes.
inline bool AcceptFrame(const cv::Mat& m, cv::Size* expected) {
  if (m.empty() || m.type() != CV_8UC3 || m.cols > kMaxFrameSide || m.rows > kMaxFrameSide) {
    return false;
  }
  if (expected->width == 0) *expected = m.size();
  return m.size() == *expected;
}

}  // namespace portcullis::lane::camera_internal
