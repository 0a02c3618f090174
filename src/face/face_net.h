// The face-metric network: dlib's 29-layer ResNet (the `anet_type` of dlib's
// dnn_face_recognition_ex.cpp, 128-d output, 99.38% on LFW) with weights read from face-api's
// TF.js files (a JSON manifest + one uint8/float32 .bin). dlib's own types stay in face_net.cc
// so that only one translation unit pays for its templates.
#pragma once

#include <memory>
#include <string>

#include <opencv2/core/mat.hpp>

#include "portcullis/env.h"
#include "portcullis/face.h"
#include "portcullis/status.h"

namespace portcullis::face::internal {

// The side of the aligned chip the network takes.
inline constexpr int kChipSize = 150;

inline constexpr const char* kManifestName = "face_recognition_model-weights_manifest.json";

class FaceNet {
 public:
  // Reads <dir>/face_recognition_model-weights_manifest.json and the .bin file(s) it names, checks
  // every tensor's name, shape, dtype and the exact byte count, and maps them onto the network.
  // Errors: NotFound (missing file), Corruption (bad JSON, wrong shapes, short or long .bin),
  // Unsupported (an unknown dtype or quantisation). Never throws.
  static Status Load(Env* env, const std::string& dir, std::unique_ptr<FaceNet>* net);
  ~FaceNet();
  FaceNet(const FaceNet&) = delete;
  FaceNet& operator=(const FaceNet&) = delete;

  // Embeds one aligned 150x150 BGR chip (CV_8UC3). jitter > 1: the mean embedding of that many
  // jittered copies (dlib::jitter_image with a generator seeded the same for every chip).
  Status Embed(const cv::Mat& chip_bgr, FaceTemplate* out, int jitter = 0);

 private:
  FaceNet();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Caps the BLAS library's thread count when it is OpenBLAS (found at run time, so that the
// reference BLAS still works); returns false when the loaded BLAS has no such knob.
bool SetBlasThreads(int threads);

}  // namespace portcullis::face::internal
