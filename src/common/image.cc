// Safe image decoding: every container header is parsed and checked by hand before OpenCV sees the
// bytes, because OpenCV's own limits (2^30 pixels) are far too generous for a service that takes
// images from strangers, and because libjpeg happily "decodes" a truncated file into grey.
#include "portcullis/image.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <exception>
#include <new>
#include <string>
#include <string_view>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace portcullis {
namespace {

// How far from the end of a file we look for its end marker: encoders and cameras sometimes
// append padding or metadata after it, and libjpeg ignores that, so we do too.
constexpr std::size_t kTrailerWindow = 4096;

constexpr std::string_view kPngSignature("\x89PNG\r\n\x1a\n", 8);

std::uint32_t Byte(std::string_view b, std::size_t i) { return static_cast<unsigned char>(b[i]); }
std::uint32_t Be16(std::string_view b, std::size_t i) { return (Byte(b, i) << 8) | Byte(b, i + 1); }
std::uint32_t Be32(std::string_view b, std::size_t i) {
  return (Be16(b, i) << 16) | Be16(b, i + 2);
}
std::uint32_t Le16(std::string_view b, std::size_t i) { return Byte(b, i) | (Byte(b, i + 1) << 8); }
std::uint32_t Le32(std::string_view b, std::size_t i) {
  return Le16(b, i) | (Le16(b, i + 2) << 16);
}

// What the container header claims, before any pixel is decoded. Wide types, because a hostile
// header may claim anything up to 2^32 (or, for a BMP's negative height, 2^31).
struct HeaderInfo {
  std::int64_t width = 0;
  std::int64_t height = 0;
  // Where the pixel data may start; the end-of-image marker must lie after it.
  std::size_t body_offset = 0;
  // Bits per pixel of an uncompressed BMP, whose size is therefore known; 0 otherwise.
  std::int64_t bmp_row_bits = 0;
};

bool HasMarkerNearEnd(std::string_view bytes, std::size_t from, std::string_view marker) {
  std::size_t start = bytes.size() > kTrailerWindow ? bytes.size() - kTrailerWindow : 0;
  start = std::max(start, from);
  if (start >= bytes.size()) return false;
  return bytes.substr(start).find(marker) != std::string_view::npos;
}

Status ParsePngHeader(std::string_view bytes, HeaderInfo* info) {
  // Signature, then the IHDR chunk: length, "IHDR", 13 bytes of data, CRC.
  constexpr std::size_t kIhdrEnd = 8 + 8 + 13 + 4;
  if (bytes.size() < kIhdrEnd) return Status::Corruption("truncated PNG header");
  if (Be32(bytes, 8) != 13 || bytes.substr(12, 4) != "IHDR") {
    return Status::Corruption("PNG does not start with an IHDR chunk");
  }
  info->width = Be32(bytes, 16);
  info->height = Be32(bytes, 20);
  const std::uint32_t depth = Byte(bytes, 24);
  const std::uint32_t colour = Byte(bytes, 25);
  bool valid = false;
  switch (colour) {
    case 0:  // grey
      valid = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
      break;
    case 3:  // palette
      valid = depth == 1 || depth == 2 || depth == 4 || depth == 8;
      break;
    case 2:  // RGB
    case 4:  // grey + alpha
    case 6:  // RGBA
      valid = depth == 8 || depth == 16;
      break;
    default:
      break;
  }
  if (!valid) {
    return Status::Corruption("PNG has an invalid bit depth/colour type: " + std::to_string(depth) +
                              "/" + std::to_string(colour));
  }
  info->body_offset = kIhdrEnd;
  return Status::Ok();
}

std::string Hex(std::uint32_t byte) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  return {kDigits[(byte >> 4) & 0xF], kDigits[byte & 0xF]};
}

bool IsJpegSof(std::uint32_t marker) {
  // SOF0..SOF15, less the markers that share the range but are not frame headers.
  return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

Status ParseJpegHeader(std::string_view bytes, HeaderInfo* info) {
  // Walks the marker segments after SOI. Every step advances by at least two bytes and every
  // length is checked against the buffer, so a hostile file can neither loop nor over-read.
  std::size_t pos = 2;
  while (true) {
    if (pos >= bytes.size()) return Status::Corruption("truncated JPEG header (no frame header)");
    if (Byte(bytes, pos) != 0xFF) {
      return Status::Corruption("malformed JPEG: expected a marker at offset " +
                                std::to_string(pos));
    }
    // Any number of 0xFF fill bytes may precede a marker code.
    while (pos < bytes.size() && Byte(bytes, pos) == 0xFF) ++pos;
    if (pos >= bytes.size()) return Status::Corruption("truncated JPEG header (no frame header)");
    const std::uint32_t marker = Byte(bytes, pos);
    ++pos;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length field
    if (marker == 0x00 || marker == 0xD8 || marker == 0xD9 || marker == 0xDA) {
      return Status::Corruption("malformed JPEG: marker 0x" + Hex(marker) +
                                " before the frame header");
    }
    if (pos + 2 > bytes.size()) return Status::Corruption("truncated JPEG header (segment length)");
    const std::uint32_t length = Be16(bytes, pos);  // counts itself, not the marker
    if (length < 2) {
      return Status::Corruption("malformed JPEG: segment length " + std::to_string(length));
    }
    if (pos + length > bytes.size()) {
      return Status::Corruption("truncated JPEG header (segment runs past the end of the file)");
    }
    if (IsJpegSof(marker)) {
      // Length, precision, height, width, component count: 8 bytes, then 3 per component.
      if (length < 8) return Status::Corruption("malformed JPEG: frame header too short");
      const std::uint32_t components = Byte(bytes, pos + 7);
      if (components == 0 || length < 8 + 3 * components) {
        return Status::Corruption("malformed JPEG: frame header has " + std::to_string(components) +
                                  " components");
      }
      info->height = Be16(bytes, pos + 3);
      info->width = Be16(bytes, pos + 5);
      info->body_offset = pos + length;
      return Status::Ok();
    }
    pos += length;
  }
}

Status ParseBmpHeader(std::string_view bytes, HeaderInfo* info) {
  // BITMAPFILEHEADER (14 bytes), then a DIB header that begins with its own size.
  if (bytes.size() < 14 + 4) return Status::Corruption("truncated BMP header");
  const std::uint32_t data_offset = Le32(bytes, 10);
  const std::uint32_t dib_size = Le32(bytes, 14);
  std::uint32_t bits = 0;
  std::uint32_t compression = 0;
  if (dib_size == 12) {  // OS/2 BITMAPCOREHEADER: unsigned 16-bit sides, bottom-up only
    if (bytes.size() < 14 + 12) return Status::Corruption("truncated BMP header");
    info->width = Le16(bytes, 18);
    info->height = Le16(bytes, 20);
    bits = Le16(bytes, 24);
  } else if (dib_size >= 40) {  // BITMAPINFOHEADER and its later extensions
    if (bytes.size() < 14 + 40) return Status::Corruption("truncated BMP header");
    info->width = static_cast<std::int32_t>(Le32(bytes, 18));
    // A negative height marks a top-down bitmap; the image is |height| rows either way.
    const auto height = static_cast<std::int32_t>(Le32(bytes, 22));
    info->height = height < 0 ? -static_cast<std::int64_t>(height) : height;
    bits = Le16(bytes, 28);
    compression = Le32(bytes, 30);
  } else {
    return Status::Unsupported("BMP with a " + std::to_string(dib_size) + "-byte header");
  }
  if (info->width < 0) return Status::Corruption("BMP has a negative width");
  // 0..3: none, RLE8, RLE4, bit fields. OpenCV handles no other (embedded JPEG/PNG, alpha fields).
  if (compression > 3) {
    return Status::Unsupported("BMP compression type " + std::to_string(compression));
  }
  if (data_offset < 14 + static_cast<std::uint64_t>(dib_size) || data_offset > bytes.size()) {
    return Status::Corruption("BMP pixel data offset " + std::to_string(data_offset) +
                              " is outside the file");
  }
  info->body_offset = data_offset;
  // Uncompressed rows have a fixed size, so a short file is certainly truncated; OpenCV would
  // fill the missing rows with black and report success. RLE rows have no fixed size.
  const bool known_bits =
      bits == 1 || bits == 4 || bits == 8 || bits == 16 || bits == 24 || bits == 32;
  constexpr std::uint32_t kRgb = 0;
  constexpr std::uint32_t kBitfields = 3;
  if (known_bits && (compression == kRgb || compression == kBitfields)) info->bmp_row_bits = bits;
  return Status::Ok();
}

// Only called once the sides are within limits, so the products cannot overflow.
bool BmpIsTruncated(std::string_view bytes, const HeaderInfo& info) {
  if (info.bmp_row_bits == 0) return false;
  const std::int64_t stride = (info.width * info.bmp_row_bits + 31) / 32 * 4;  // 4-byte padded
  const std::int64_t needed = static_cast<std::int64_t>(info.body_offset) + stride * info.height;
  return static_cast<std::int64_t>(bytes.size()) < needed;
}

Status ParseHeader(ImageFormat format, std::string_view bytes, HeaderInfo* info) {
  switch (format) {
    case ImageFormat::kJpeg:
      return ParseJpegHeader(bytes, info);
    case ImageFormat::kPng:
      return ParsePngHeader(bytes, info);
    case ImageFormat::kBmp:
      return ParseBmpHeader(bytes, info);
    case ImageFormat::kUnknown:
      break;
  }
  return Status::Unsupported("not an image (unrecognised format)");
}

Status CheckLimits(const HeaderInfo& info, const ImageLimits& limits) {
  const std::string dims = std::to_string(info.width) + "x" + std::to_string(info.height);
  if (info.width == 0 || info.height == 0) {
    return Status::Corruption("image header claims an empty image: " + dims);
  }
  // Both sides are below 2^32, so the product fits in 64 bits.
  if (info.width > limits.max_side || info.height > limits.max_side ||
      info.width * info.height > limits.max_pixels) {
    return Status::ResourceExhausted(
        "image too large: " + dims + " (limits: " + std::to_string(limits.max_side) +
        " per side, " + std::to_string(limits.max_pixels) + " pixels)");
  }
  if (info.width < limits.min_side || info.height < limits.min_side) {
    return Status::InvalidArgument("image too small: " + dims);
  }
  return Status::Ok();
}

Status CheckComplete(ImageFormat format, std::string_view bytes, const HeaderInfo& info) {
  switch (format) {
    case ImageFormat::kJpeg:
      if (!HasMarkerNearEnd(bytes, info.body_offset, std::string_view("\xFF\xD9", 2))) {
        return Status::Corruption("truncated JPEG");
      }
      break;
    case ImageFormat::kPng:
      if (!HasMarkerNearEnd(bytes, info.body_offset, "IEND")) {
        return Status::Corruption("truncated PNG");
      }
      break;
    case ImageFormat::kBmp:
      if (BmpIsTruncated(bytes, info)) return Status::Corruption("truncated BMP");
      break;
    case ImageFormat::kUnknown:
      break;
  }
  return Status::Ok();
}

// Porter-Duff "over" a white background: transparent regions of a PNG are usually meant to be
// paper-white, and the colour hidden under alpha 0 is arbitrary (often black).
void CompositeOverWhite(const cv::Mat& bgra, cv::Mat* bgr) {
  bgr->create(bgra.rows, bgra.cols, CV_8UC3);
  for (int y = 0; y < bgra.rows; ++y) {
    const auto* in = bgra.ptr<cv::Vec4b>(y);
    auto* out = bgr->ptr<cv::Vec3b>(y);
    for (int x = 0; x < bgra.cols; ++x) {
      const int alpha = in[x][3];
      for (int c = 0; c < 3; ++c) {
        out[x][c] = static_cast<uchar>((in[x][c] * alpha + 255 * (255 - alpha) + 127) / 255);
      }
    }
  }
}

// Brings whatever the codec produced to CV_8UC3 BGR. Called inside the cv::Exception guard.
Status NormaliseToBgr8(cv::Mat decoded, cv::Mat* bgr) {
  if (decoded.depth() == CV_16U) {
    cv::Mat eight;
    decoded.convertTo(eight, CV_8U, 1.0 / 257.0);
    decoded = eight;
  } else if (decoded.depth() != CV_8U) {
    return Status::Unsupported("unsupported pixel depth " + std::to_string(decoded.depth()));
  }
  switch (decoded.channels()) {
    case 1:
      cv::cvtColor(decoded, *bgr, cv::COLOR_GRAY2BGR);
      return Status::Ok();
    case 2: {  // grey + alpha
      cv::Mat planes[2];
      cv::split(decoded, planes);
      cv::Mat grey3;
      cv::cvtColor(planes[0], grey3, cv::COLOR_GRAY2BGR);
      cv::Mat bgra;
      cv::Mat parts[2] = {grey3, planes[1]};
      cv::merge(parts, 2, bgra);
      CompositeOverWhite(bgra, bgr);
      return Status::Ok();
    }
    case 3:
      *bgr = decoded;
      return Status::Ok();
    case 4:
      CompositeOverWhite(decoded, bgr);
      return Status::Ok();
    default:
      return Status::Unsupported("unsupported channel count " + std::to_string(decoded.channels()));
  }
}

}  // namespace

ImageFormat SniffImageFormat(std::string_view bytes) {
  if (bytes.size() >= 3 && Byte(bytes, 0) == 0xFF && Byte(bytes, 1) == 0xD8 &&
      Byte(bytes, 2) == 0xFF) {
    return ImageFormat::kJpeg;
  }
  if (bytes.substr(0, kPngSignature.size()) == kPngSignature) return ImageFormat::kPng;
  if (bytes.size() >= 2 && bytes[0] == 'B' && bytes[1] == 'M') return ImageFormat::kBmp;
  return ImageFormat::kUnknown;
}

Status DecodeImage(std::string_view bytes, const ImageLimits& limits, cv::Mat* bgr) {
  if (bgr == nullptr) return Status::InvalidArgument("DecodeImage: null output image");
  bgr->release();
  if (bytes.empty()) return Status::InvalidArgument("empty file");
  if (bytes.size() > limits.max_file_bytes || bytes.size() > static_cast<std::size_t>(INT_MAX)) {
    return Status::ResourceExhausted("image file is " + std::to_string(bytes.size()) +
                                     " bytes, over the limit of " +
                                     std::to_string(limits.max_file_bytes));
  }
  const ImageFormat format = SniffImageFormat(bytes);
  if (format == ImageFormat::kUnknown) {
    return Status::Unsupported("not an image (unrecognised format)");
  }

  HeaderInfo info;
  PORTCULLIS_RETURN_IF_ERROR(ParseHeader(format, bytes, &info));
  PORTCULLIS_RETURN_IF_ERROR(CheckLimits(info, limits));
  PORTCULLIS_RETURN_IF_ERROR(CheckComplete(format, bytes, info));

  try {
    // IMREAD_UNCHANGED keeps 16-bit depth and alpha so that we, not the codec, decide how to
    // reduce them; it also skips EXIF rotation, which keeps the decoded size equal to the header's.
    const cv::Mat encoded(1, static_cast<int>(bytes.size()), CV_8UC1,
                          const_cast<char*>(bytes.data()));
    cv::Mat decoded = cv::imdecode(encoded, cv::IMREAD_UNCHANGED);
    if (decoded.empty()) return Status::Corruption("image data could not be decoded");
    if (decoded.cols != info.width || decoded.rows != info.height) {
      return Status::Corruption("decoded size " + std::to_string(decoded.cols) + "x" +
                                std::to_string(decoded.rows) + " differs from the header's " +
                                std::to_string(info.width) + "x" + std::to_string(info.height));
    }
    cv::Mat out;
    PORTCULLIS_RETURN_IF_ERROR(NormaliseToBgr8(decoded, &out));
    *bgr = out;
    return Status::Ok();
  } catch (const cv::Exception& e) {
    return Status::Corruption("image data could not be decoded: " + e.err);
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while decoding the image");
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("image data could not be decoded: ") + e.what());
  }
}

Status ReadImageFile(Env* env, const std::string& path, const ImageLimits& limits, cv::Mat* bgr) {
  if (bgr == nullptr) return Status::InvalidArgument("ReadImageFile: null output image");
  bgr->release();
  if (env == nullptr) env = Env::Default();
  std::string bytes;
  // Env errors already name the path; decoding errors do not.
  PORTCULLIS_RETURN_IF_ERROR(env->ReadFile(path, limits.max_file_bytes, &bytes));
  return DecodeImage(bytes, limits, bgr).WithContext(path);
}

}  // namespace portcullis
