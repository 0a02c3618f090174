// Internals of the camera and pass-detector code, here so tests can reach them.
//
// Wiping: a stand-in for hygiene.h's WipeMat / WipeString (owned by the queue part) until that
// lands on main; same semantics, so switching is a rename.
#pragma once

#include <string>
#include <vector>

#include <sodium.h>

#include <opencv2/core/mat.hpp>

namespace portcullis::lane::camera_internal {

// Zeros the pixels when this Mat is the only owner of its buffer, then releases it. A Mat that
// shares its buffer (a view, or a copy of a header) is only released: the owner wipes.
inline void WipeOwnedMat(cv::Mat* mat) {
  if (mat->u != nullptr && mat->u->refcount == 1 && mat->datastart != nullptr &&
      mat->dataend > mat->datastart) {
    sodium_memzero(const_cast<uchar*>(mat->datastart),
                   static_cast<std::size_t>(mat->dataend - mat->datastart));
  }
  mat->release();
}

inline void WipeBuffer(std::vector<uchar>* bytes) {
  if (!bytes->empty()) sodium_memzero(bytes->data(), bytes->size());
  bytes->clear();
}

inline void WipeText(std::string* text) {
  if (!text->empty()) sodium_memzero(text->data(), text->size());
  text->clear();
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
