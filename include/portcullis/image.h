// Safe image input. Every image that enters Portcullis (a file, an upload, a fuzzer's bytes) goes
// through DecodeImage, which checks the container header before any pixel is decoded: a
// truncated, corrupt, hostile or merely odd image gets a clear Status, never a crash or a hang.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <opencv2/core/mat.hpp>

#include "portcullis/env.h"
#include "portcullis/status.h"

namespace portcullis {

struct ImageLimits {
  int min_side = 16;                       // smaller than this cannot hold a readable plate/face
  int max_side = 16384;                    // per dimension, from the header, before decoding
  std::int64_t max_pixels = 64LL << 20;    // 64 Mpx: a 100000x100000 "bomb" is refused up front
  std::size_t max_file_bytes = 64u << 20;  // 64 MiB
};

// Formats we accept: JPEG, PNG, BMP (sniffed by magic bytes, never by file name).
enum class ImageFormat { kUnknown, kJpeg, kPng, kBmp };
ImageFormat SniffImageFormat(std::string_view bytes);

// Decodes bytes into an 8-bit, 3-channel BGR image. Grey, alpha and 16-bit inputs are converted.
// Errors: InvalidArgument (empty), Unsupported (not an image / unknown format), Corruption
// (truncated or undecodable), ResourceExhausted (over limits), InvalidArgument (under min_side).
Status DecodeImage(std::string_view bytes, const ImageLimits& limits, cv::Mat* bgr);

// Reads a file through env and decodes it. NotFound / IOError come from the file system.
Status ReadImageFile(Env* env, const std::string& path, const ImageLimits& limits, cv::Mat* bgr);

}  // namespace portcullis
