#include "portcullis/image.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

namespace portcullis {
namespace {

namespace fs = std::filesystem;
using Code = Status::Code;

const cv::Vec3b kRed(0, 0, 255);
const cv::Vec3b kGreen(0, 255, 0);
const cv::Vec3b kBlue(255, 0, 0);
const cv::Vec3b kGrey(200, 200, 200);

// Four flat quadrants: flat areas survive JPEG almost exactly, so colours can be checked.
cv::Mat Quadrants(int width, int height) {
  cv::Mat img(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const bool right = x >= width / 2;
      const bool bottom = y >= height / 2;
      img.at<cv::Vec3b>(y, x) = bottom ? (right ? kGrey : kBlue) : (right ? kGreen : kRed);
    }
  }
  return img;
}

// Busy pixels make the compressed stream long, so that cutting it has something to cut.
cv::Mat Noise(int width, int height, int type, unsigned seed) {
  cv::Mat img(height, width, type);
  cv::theRNG().state = seed;
  cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(CV_MAT_DEPTH(type) == CV_16U ? 65535 : 255));
  return img;
}

std::string Encode(const std::string& ext, const cv::Mat& img,
                   const std::vector<int>& params = {}) {
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, img, buf, params)) << ext;
  return {buf.begin(), buf.end()};
}

Status Decode(std::string_view bytes, cv::Mat* out, const ImageLimits& limits = ImageLimits()) {
  return DecodeImage(bytes, limits, out);
}

int MaxAbsDiff(const cv::Vec3b& a, const cv::Vec3b& b) {
  int worst = 0;
  for (int c = 0; c < 3; ++c) worst = std::max(worst, std::abs(int{a[c]} - int{b[c]}));
  return worst;
}

void ExpectQuadrants(const cv::Mat& img, int tolerance) {
  ASSERT_EQ(img.type(), CV_8UC3);
  const int qx = img.cols / 4;
  const int qy = img.rows / 4;
  EXPECT_LE(MaxAbsDiff(img.at<cv::Vec3b>(qy, qx), kRed), tolerance);
  EXPECT_LE(MaxAbsDiff(img.at<cv::Vec3b>(qy, 3 * qx), kGreen), tolerance);
  EXPECT_LE(MaxAbsDiff(img.at<cv::Vec3b>(3 * qy, qx), kBlue), tolerance);
  EXPECT_LE(MaxAbsDiff(img.at<cv::Vec3b>(3 * qy, 3 * qx), kGrey), tolerance);
}

bool SameImage(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

// --- Hand-built containers -------------------------------------------------------------------

void PutBe16(std::string* s, std::size_t pos, std::uint32_t v) {
  (*s)[pos] = static_cast<char>((v >> 8) & 0xFF);
  (*s)[pos + 1] = static_cast<char>(v & 0xFF);
}

void PutBe32(std::string* s, std::size_t pos, std::uint32_t v) {
  PutBe16(s, pos, v >> 16);
  PutBe16(s, pos + 2, v & 0xFFFF);
}

void PutLe32(std::string* s, std::size_t pos, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[pos + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

std::string Be32(std::uint32_t v) {
  std::string s(4, '\0');
  PutBe32(&s, 0, v);
  return s;
}

std::uint32_t Crc32(std::string_view data) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (char ch : data) {
    crc ^= static_cast<unsigned char>(ch);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

std::string PngChunk(std::string_view type, std::string_view data) {
  std::string body = std::string(type) + std::string(data);
  return Be32(static_cast<std::uint32_t>(data.size())) + body + Be32(Crc32(body));
}

std::string Ihdr(std::uint32_t width, std::uint32_t height, int depth, int colour) {
  std::string data = Be32(width) + Be32(height);
  data += static_cast<char>(depth);
  data += static_cast<char>(colour);
  data += std::string(3, '\0');  // deflate, adaptive filtering, no interlace
  return PngChunk("IHDR", data);
}

// A zlib stream of stored (uncompressed) deflate blocks: lets a test build any PNG by hand.
std::string ZlibStored(std::string_view raw) {
  std::string out = "\x78\x01";
  std::size_t pos = 0;
  do {
    const std::size_t n = std::min<std::size_t>(raw.size() - pos, 65535);
    const bool final_block = pos + n == raw.size();
    out += static_cast<char>(final_block ? 1 : 0);
    out += static_cast<char>(n & 0xFF);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(~n & 0xFF);
    out += static_cast<char>((~n >> 8) & 0xFF);
    out.append(raw.substr(pos, n));
    pos += n;
  } while (pos < raw.size());
  std::uint32_t a = 1, b = 0;
  for (char ch : raw) {
    a = (a + static_cast<unsigned char>(ch)) % 65521;
    b = (b + a) % 65521;
  }
  return out + Be32((b << 16) | a);
}

const std::string kPngSignature("\x89PNG\r\n\x1a\n", 8);

std::string HeaderOnlyPng(std::uint32_t width, std::uint32_t height, int depth = 8,
                          int colour = 2) {
  return kPngSignature + Ihdr(width, height, depth, colour) + PngChunk("IDAT", "") +
         PngChunk("IEND", "");
}

// Offset of the first marker `code` in a well-formed JPEG (segment walk, not a byte search).
std::size_t FindJpegMarker(const std::string& jpeg, unsigned char code) {
  std::size_t pos = 2;
  while (pos + 4 <= jpeg.size()) {
    EXPECT_EQ(static_cast<unsigned char>(jpeg[pos]), 0xFF);
    if (static_cast<unsigned char>(jpeg[pos + 1]) == code) return pos;
    pos += 2 + ((static_cast<unsigned char>(jpeg[pos + 2]) << 8) |
                static_cast<unsigned char>(jpeg[pos + 3]));
  }
  ADD_FAILURE() << "marker not found";
  return 0;
}

// --- Sniffing --------------------------------------------------------------------------------

TEST(ImageSniffTest, RecognisesMagicBytes) {
  EXPECT_EQ(SniffImageFormat(std::string_view("\xFF\xD8\xFF\xE0", 4)), ImageFormat::kJpeg);
  EXPECT_EQ(SniffImageFormat(kPngSignature), ImageFormat::kPng);
  EXPECT_EQ(SniffImageFormat("BM\x36\x00"), ImageFormat::kBmp);
  EXPECT_EQ(SniffImageFormat(""), ImageFormat::kUnknown);
  EXPECT_EQ(SniffImageFormat(std::string_view("\xFF\xD8", 2)), ImageFormat::kUnknown);
  EXPECT_EQ(SniffImageFormat(kPngSignature.substr(0, 7)), ImageFormat::kUnknown);
  EXPECT_EQ(SniffImageFormat("B"), ImageFormat::kUnknown);
  EXPECT_EQ(SniffImageFormat("GIF89a"), ImageFormat::kUnknown);
  EXPECT_EQ(SniffImageFormat(Encode(".jpg", Quadrants(32, 32))), ImageFormat::kJpeg);
  EXPECT_EQ(SniffImageFormat(Encode(".png", Quadrants(32, 32))), ImageFormat::kPng);
  EXPECT_EQ(SniffImageFormat(Encode(".bmp", Quadrants(32, 32))), ImageFormat::kBmp);
}

// --- Images that must decode -----------------------------------------------------------------

TEST(ImageDecodeTest, Jpeg) {
  cv::Mat out;
  Status s = Decode(Encode(".jpg", Quadrants(320, 240), {cv::IMWRITE_JPEG_QUALITY, 95}), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(out.size(), cv::Size(320, 240));
  ExpectQuadrants(out, 8);
}

TEST(ImageDecodeTest, ProgressiveJpeg) {
  cv::Mat out;
  Status s = Decode(Encode(".jpg", Quadrants(96, 64), {cv::IMWRITE_JPEG_PROGRESSIVE, 1}), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(out.size(), cv::Size(96, 64));
  ExpectQuadrants(out, 12);
}

TEST(ImageDecodeTest, GreyJpegBecomesBgr) {
  cv::Mat grey(48, 64, CV_8UC1, cv::Scalar(90));
  cv::Mat out;
  Status s = Decode(Encode(".jpg", grey), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(out.type(), CV_8UC3);
  EXPECT_EQ(out.size(), cv::Size(64, 48));
  EXPECT_LE(MaxAbsDiff(out.at<cv::Vec3b>(20, 30), cv::Vec3b(90, 90, 90)), 2);
}

TEST(ImageDecodeTest, JpegWithTrailingJunkWithinTheWindow) {
  std::string jpeg = Encode(".jpg", Quadrants(64, 64)) + std::string(4000, '\0');
  cv::Mat out;
  Status s = Decode(jpeg, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectQuadrants(out, 12);
}

TEST(ImageDecodeTest, PngIsLossless) {
  const cv::Mat img = Quadrants(100, 60);
  cv::Mat out;
  Status s = Decode(Encode(".png", img), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(SameImage(out, img));
}

TEST(ImageDecodeTest, BmpIsLossless) {
  const cv::Mat img = Quadrants(101, 37);  // odd width: rows carry padding
  cv::Mat out;
  Status s = Decode(Encode(".bmp", img), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(SameImage(out, img));
}

TEST(ImageDecodeTest, TopDownBmpWithNegativeHeight) {
  const cv::Mat img = Quadrants(33, 20);
  std::string bmp = Encode(".bmp", img);
  // Turn OpenCV's bottom-up BMP into a top-down one: negate the height and reverse the rows.
  const std::size_t offset = 54;
  const std::size_t stride = (33 * 3 + 3) / 4 * 4;
  ASSERT_EQ(bmp.size(), offset + stride * 20);
  PutLe32(&bmp, 22, static_cast<std::uint32_t>(-20));
  std::string flipped = bmp.substr(0, offset);
  for (int row = 19; row >= 0; --row) flipped += bmp.substr(offset + stride * row, stride);
  cv::Mat out;
  Status s = Decode(flipped, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(SameImage(out, img));
}

TEST(ImageDecodeTest, GreyPngBecomesBgr) {
  cv::Mat grey(40, 50, CV_8UC1);
  for (int y = 0; y < grey.rows; ++y) grey.row(y).setTo(y * 5);
  cv::Mat out;
  Status s = Decode(Encode(".png", grey), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(out.type(), CV_8UC3);
  EXPECT_EQ(out.at<cv::Vec3b>(10, 7), cv::Vec3b(50, 50, 50));
  EXPECT_EQ(out.at<cv::Vec3b>(39, 49), cv::Vec3b(195, 195, 195));
}

TEST(ImageDecodeTest, SixteenBitPngIsScaledTo8Bit) {
  cv::Mat deep(32, 32, CV_16UC3, cv::Scalar(10 * 257, 128 * 257, 255 * 257));
  deep(cv::Rect(0, 0, 16, 32)).setTo(cv::Scalar(0, 65535, 1000));
  cv::Mat out;
  Status s = Decode(Encode(".png", deep), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(out.type(), CV_8UC3);
  EXPECT_EQ(out.at<cv::Vec3b>(5, 20), cv::Vec3b(10, 128, 255));
  EXPECT_EQ(out.at<cv::Vec3b>(5, 3), cv::Vec3b(0, 255, 4));  // 1000/257 rounds to 4
}

TEST(ImageDecodeTest, SixteenBitGreyPng) {
  cv::Mat deep(20, 30, CV_16UC1, cv::Scalar(300 * 257 / 3));
  cv::Mat out;
  Status s = Decode(Encode(".png", deep), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(out.type(), CV_8UC3);
  EXPECT_EQ(out.at<cv::Vec3b>(10, 10), cv::Vec3b(100, 100, 100));
}

TEST(ImageDecodeTest, BgraPngIsCompositedOverWhite) {
  cv::Mat bgra(32, 48, CV_8UC4, cv::Scalar(255, 0, 0, 255));      // opaque blue
  bgra(cv::Rect(16, 0, 16, 32)).setTo(cv::Scalar(0, 0, 0, 0));    // transparent black
  bgra(cv::Rect(32, 0, 16, 32)).setTo(cv::Scalar(0, 0, 0, 128));  // half-transparent black
  cv::Mat out;
  Status s = Decode(Encode(".png", bgra), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(out.type(), CV_8UC3);
  EXPECT_EQ(out.size(), cv::Size(48, 32));
  EXPECT_EQ(out.at<cv::Vec3b>(10, 5), cv::Vec3b(255, 0, 0));
  EXPECT_EQ(out.at<cv::Vec3b>(10, 20), cv::Vec3b(255, 255, 255));
  EXPECT_LE(MaxAbsDiff(out.at<cv::Vec3b>(10, 40), cv::Vec3b(127, 127, 127)), 1);
}

TEST(ImageDecodeTest, GreyAlphaPng) {
  // OpenCV cannot write grey+alpha, so the PNG is built by hand with stored deflate blocks.
  const int w = 20, h = 16;
  std::string raw;
  for (int y = 0; y < h; ++y) {
    raw += '\0';  // filter: none
    for (int x = 0; x < w; ++x) {
      raw += static_cast<char>(60);                   // grey
      raw += static_cast<char>(x < w / 2 ? 255 : 0);  // opaque left, transparent right
    }
  }
  const std::string png =
      kPngSignature + Ihdr(w, h, 8, 4) + PngChunk("IDAT", ZlibStored(raw)) + PngChunk("IEND", "");
  cv::Mat out;
  Status s = Decode(png, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(out.type(), CV_8UC3);
  EXPECT_EQ(out.size(), cv::Size(w, h));
  EXPECT_EQ(out.at<cv::Vec3b>(3, 2), cv::Vec3b(60, 60, 60));
  EXPECT_EQ(out.at<cv::Vec3b>(3, 15), cv::Vec3b(255, 255, 255));
}

TEST(ImageDecodeTest, MinimumSideIsAccepted) {
  cv::Mat out;
  Status s = Decode(Encode(".png", Quadrants(16, 16)), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(out.size(), cv::Size(16, 16));
}

// --- Inputs that must be refused, each with its exact code -----------------------------------

TEST(ImageRejectTest, EmptyIsInvalidArgument) {
  cv::Mat out;
  Status s = Decode("", &out);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "empty file");
  EXPECT_TRUE(out.empty());
}

TEST(ImageRejectTest, RandomBytesAreUnsupported) {
  std::mt19937 rng(1234);
  std::string bytes(4096, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
  bytes[0] = '\x00';  // no format's magic starts with 0
  cv::Mat out;
  Status s = Decode(bytes, &out);
  EXPECT_EQ(s.code(), Code::kUnsupported) << s.ToString();
  EXPECT_EQ(s.message(), "not an image (unrecognised format)");
}

TEST(ImageRejectTest, TextFileIsUnsupported) {
  cv::Mat out;
  Status s = Decode("plate,region\nAB12CDE,uk\n", &out);
  EXPECT_EQ(s.code(), Code::kUnsupported) << s.ToString();
  EXPECT_EQ(s.message(), "not an image (unrecognised format)");
}

TEST(ImageRejectTest, OnePixelPngIsTooSmall) {
  cv::Mat out;
  Status s = Decode(Encode(".png", cv::Mat(1, 1, CV_8UC3, cv::Scalar(1, 2, 3))), &out);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  EXPECT_EQ(s.message(), "image too small: 1x1");
}

TEST(ImageRejectTest, OneSideUnderMinimumIsTooSmall) {
  cv::Mat out;
  Status s = Decode(Encode(".jpg", Quadrants(200, 15)), &out);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  EXPECT_EQ(s.message(), "image too small: 200x15");
}

TEST(ImageRejectTest, TruncatedJpegIsCorruption) {
  const std::string jpeg = Encode(".jpg", Noise(320, 240, CV_8UC3, 1));
  cv::Mat out;
  Status s = Decode(jpeg.substr(0, jpeg.size() * 6 / 10), &out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_EQ(s.message(), "truncated JPEG");
  // Only the last two bytes (the end-of-image marker) missing.
  s = Decode(jpeg.substr(0, jpeg.size() - 2), &out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
}

TEST(ImageRejectTest, JpegWithTooMuchTrailingJunkCountsAsTruncated) {
  // The end-of-image marker is looked for in the last 4 KiB only.
  std::string jpeg = Encode(".jpg", Quadrants(64, 64)) + std::string(5000, '\0');
  cv::Mat out;
  Status s = Decode(jpeg, &out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_EQ(s.message(), "truncated JPEG");
}

TEST(ImageRejectTest, TruncatedPngIsCorruption) {
  const std::string png = Encode(".png", Noise(200, 100, CV_8UC3, 2));
  cv::Mat out;
  Status s = Decode(png.substr(0, png.size() * 6 / 10), &out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_EQ(s.message(), "truncated PNG");
  s = Decode(png.substr(0, 20), &out);  // inside IHDR
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  s = Decode(png.substr(0, 8), &out);  // signature only
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
}

TEST(ImageRejectTest, PngWithBrokenImageDataIsCorruption) {
  // A complete container whose IDAT is not a zlib stream: only the codec can notice.
  const std::string png = kPngSignature + Ihdr(32, 32, 8, 2) +
                          PngChunk("IDAT", std::string(200, '\x55')) + PngChunk("IEND", "");
  cv::Mat out;
  Status s = Decode(png, &out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_TRUE(out.empty());
}

TEST(ImageRejectTest, TruncatedBmpIsCorruption) {
  const std::string bmp = Encode(".bmp", Quadrants(64, 64));
  cv::Mat out;
  Status s = Decode(bmp.substr(0, bmp.size() * 6 / 10), &out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_EQ(s.message(), "truncated BMP");
  s = Decode(bmp.substr(0, 30), &out);  // inside the info header
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  s = Decode("BM", &out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
}

TEST(ImageRejectTest, CorruptJpegScanDataIsCorruptionOrDecodes) {
  // libjpeg treats damaged entropy-coded data as a warning and still produces pixels, so the
  // guarantee is: Corruption, or an image of exactly the header's size; never a crash.
  const std::string jpeg = Encode(".jpg", Noise(160, 120, CV_8UC3, 3));
  const std::size_t scan = FindJpegMarker(jpeg, 0xDA);
  ASSERT_GT(scan, 0u);
  int decoded = 0;
  for (unsigned seed = 0; seed < 20; ++seed) {
    std::string bad = jpeg;
    std::mt19937 rng(seed);
    const std::size_t middle = scan + (jpeg.size() - scan) / 2;
    for (std::size_t i = middle; i < middle + 256; ++i) bad[i] = static_cast<char>(rng() & 0xFF);
    cv::Mat out;
    Status s = Decode(bad, &out);
    if (s.ok()) {
      ++decoded;
      EXPECT_EQ(out.type(), CV_8UC3);
      EXPECT_EQ(out.size(), cv::Size(160, 120));
    } else {
      EXPECT_EQ(s.code(), Code::kCorruption) << "seed " << seed << ": " << s.ToString();
      EXPECT_TRUE(out.empty());
    }
  }
  // Zeros in the scan are valid Huffman bits, just wrong ones: that case always decodes.
  std::string zeroed = jpeg;
  std::fill(zeroed.begin() + static_cast<std::ptrdiff_t>(scan + 600),
            zeroed.begin() + static_cast<std::ptrdiff_t>(scan + 900), '\0');
  cv::Mat out;
  Status s = Decode(zeroed, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(out.size(), cv::Size(160, 120));
}

TEST(ImageRejectTest, PngBombIsRefusedFromTheHeader) {
  const std::string bomb = HeaderOnlyPng(100000, 100000);
  cv::Mat out;
  const auto start = std::chrono::steady_clock::now();
  Status s = Decode(bomb, &out);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("100000x100000"), std::string::npos) << s.message();
  EXPECT_LT(elapsed, std::chrono::milliseconds(100));
}

TEST(ImageRejectTest, PngOverSideOrPixelLimit) {
  cv::Mat out;
  Status s = Decode(HeaderOnlyPng(20000, 20), &out);  // one side over 16384
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("20000x20"), std::string::npos) << s.message();
  s = Decode(HeaderOnlyPng(10000, 10000), &out);  // both sides fine, 100 Mpx > 64 Mpx
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  s = Decode(HeaderOnlyPng(0xFFFFFFFFu, 0xFFFFFFFFu), &out);
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("4294967295x4294967295"), std::string::npos) << s.message();
}

TEST(ImageRejectTest, CustomLimitsApply) {
  const std::string png = Encode(".png", Quadrants(64, 64));
  cv::Mat out;
  ImageLimits limits;
  limits.max_pixels = 64 * 63;
  EXPECT_EQ(Decode(png, &out, limits).code(), Code::kResourceExhausted);
  limits = ImageLimits();
  limits.max_side = 63;
  EXPECT_EQ(Decode(png, &out, limits).code(), Code::kResourceExhausted);
  limits = ImageLimits();
  limits.min_side = 65;
  EXPECT_EQ(Decode(png, &out, limits).code(), Code::kInvalidArgument);
  limits = ImageLimits();
  limits.max_file_bytes = png.size() - 1;
  EXPECT_EQ(Decode(png, &out, limits).code(), Code::kResourceExhausted);
  limits.max_file_bytes = png.size();
  EXPECT_TRUE(Decode(png, &out, limits).ok());
}

TEST(ImageRejectTest, PngZeroSideIsCorruption) {
  cv::Mat out;
  EXPECT_EQ(Decode(HeaderOnlyPng(0, 100), &out).code(), Code::kCorruption);
  EXPECT_EQ(Decode(HeaderOnlyPng(100, 0), &out).code(), Code::kCorruption);
}

TEST(ImageRejectTest, PngMalformedHeaderIsCorruption) {
  cv::Mat out;
  // First chunk is not IHDR.
  std::string png = kPngSignature + PngChunk("IDAT", "") + Ihdr(32, 32, 8, 2);
  EXPECT_EQ(Decode(png, &out).code(), Code::kCorruption);
  // Impossible bit depth / colour type combinations.
  EXPECT_EQ(Decode(HeaderOnlyPng(32, 32, 16, 3), &out).code(), Code::kCorruption);
  EXPECT_EQ(Decode(HeaderOnlyPng(32, 32, 8, 5), &out).code(), Code::kCorruption);
  EXPECT_EQ(Decode(HeaderOnlyPng(32, 32, 7, 0), &out).code(), Code::kCorruption);
}

TEST(ImageRejectTest, JpegSofBombIsRefusedFromTheHeader) {
  std::string jpeg = Encode(".jpg", Quadrants(64, 64));
  const std::size_t sof = FindJpegMarker(jpeg, 0xC0);
  ASSERT_GT(sof, 0u);
  PutBe16(&jpeg, sof + 5, 60000);  // height
  PutBe16(&jpeg, sof + 7, 60000);  // width
  cv::Mat out;
  Status s = Decode(jpeg, &out);
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("60000x60000"), std::string::npos) << s.message();
}

TEST(ImageRejectTest, JpegHeaderAndDataDisagreeIsCorruptionOrExactSize) {
  // The header is plausible and within limits but the scan was coded for a smaller frame.
  std::string jpeg = Encode(".jpg", Quadrants(64, 64));
  const std::size_t sof = FindJpegMarker(jpeg, 0xC0);
  PutBe16(&jpeg, sof + 5, 2000);
  PutBe16(&jpeg, sof + 7, 3000);
  cv::Mat out;
  Status s = Decode(jpeg, &out);
  if (s.ok()) {
    EXPECT_EQ(out.size(), cv::Size(3000, 2000));
  } else {
    EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  }
}

TEST(ImageRejectTest, JpegZeroHeightIsCorruption) {
  std::string jpeg = Encode(".jpg", Quadrants(64, 64));
  PutBe16(&jpeg, FindJpegMarker(jpeg, 0xC0) + 5, 0);
  cv::Mat out;
  EXPECT_EQ(Decode(jpeg, &out).code(), Code::kCorruption);
}

TEST(ImageRejectTest, JpegMalformedSegmentLengthsAreCorruption) {
  const std::string jpeg = Encode(".jpg", Quadrants(64, 64));
  const std::size_t app0 = FindJpegMarker(jpeg, 0xE0);
  ASSERT_EQ(app0, 2u);
  // 0 and 1 cannot even cover the length field; 0xFFFF runs past the end of the file; 5 lands
  // in the middle of the segment, where no marker is.
  for (std::uint32_t length : {0u, 1u, 0xFFFFu, 5u}) {
    std::string bad = jpeg;
    PutBe16(&bad, app0 + 2, length);
    cv::Mat out;
    Status s = Decode(bad, &out);
    EXPECT_EQ(s.code(), Code::kCorruption) << "length " << length << ": " << s.ToString();
  }
  // Hand-built: a lone segment whose length points past the end.
  cv::Mat out;
  Status s = Decode(std::string_view("\xFF\xD8\xFF\xE1\x01\x00"
                                     "abcdefgh",
                                     14),
                    &out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
}

TEST(ImageRejectTest, JpegWithoutFrameHeaderIsCorruption) {
  cv::Mat out;
  // SOI alone; SOI and EOI; SOI then a scan with no frame header; SOI then fill bytes only.
  for (std::string_view bytes :
       {std::string_view("\xFF\xD8\xFF", 3), std::string_view("\xFF\xD8\xFF\xD9", 4),
        std::string_view("\xFF\xD8\xFF\xDA\x00\x08\x01\x01\x00\x00\x3F"
                         "\x00\xFF\xD9",
                         14),
        std::string_view("\xFF\xD8\xFF\xFF\xFF\xFF", 6)}) {
    Status s = Decode(bytes, &out);
    EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  }
}

TEST(ImageRejectTest, JpegSofTooShortIsCorruption) {
  cv::Mat out;
  // A frame header whose length (6) cannot hold the fields it must carry.
  Status s =
      Decode(std::string_view("\xFF\xD8\xFF\xC0\x00\x06\x08\x00\x40\x00\x40\xFF\xD9", 13), &out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  // Component count 3 but room for one.
  s = Decode(std::string_view("\xFF\xD8\xFF\xC0\x00\x0B\x08\x00\x40\x00\x40\x03\x01\x11\x00"
                              "\xFF\xD9",
                              17),
             &out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
}

TEST(ImageRejectTest, BmpHeightIntMinIsResourceExhausted) {
  std::string bmp = Encode(".bmp", Quadrants(32, 32));
  PutLe32(&bmp, 22, 0x80000000u);
  cv::Mat out;
  Status s = Decode(bmp, &out);
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("32x2147483648"), std::string::npos) << s.message();
}

TEST(ImageRejectTest, BmpNegativeWidthIsCorruption) {
  std::string bmp = Encode(".bmp", Quadrants(32, 32));
  PutLe32(&bmp, 18, static_cast<std::uint32_t>(-32));
  cv::Mat out;
  EXPECT_EQ(Decode(bmp, &out).code(), Code::kCorruption);
}

TEST(ImageRejectTest, BmpDataOffsetOutsideFileIsCorruption) {
  std::string bmp = Encode(".bmp", Quadrants(32, 32));
  PutLe32(&bmp, 10, static_cast<std::uint32_t>(bmp.size() + 1));
  cv::Mat out;
  EXPECT_EQ(Decode(bmp, &out).code(), Code::kCorruption);
}

TEST(ImageRejectTest, BmpWithUnhandledCompressionIsUnsupported) {
  std::string bmp = Encode(".bmp", Quadrants(32, 32));
  PutLe32(&bmp, 30, 4);  // BI_JPEG: a JPEG inside a BMP
  cv::Mat out;
  Status s = Decode(bmp, &out);
  EXPECT_EQ(s.code(), Code::kUnsupported) << s.ToString();
}

TEST(ImageRejectTest, NullOutputIsInvalidArgument) {
  EXPECT_EQ(DecodeImage("x", ImageLimits(), nullptr).code(), Code::kInvalidArgument);
}

TEST(ImageRejectTest, FailureClearsTheOutput) {
  cv::Mat out = Quadrants(20, 20);
  EXPECT_FALSE(Decode("not an image", &out).ok());
  EXPECT_TRUE(out.empty());
}

// Random damage to valid files, as a cheap always-on complement to the fuzzer (which needs
// clang): every outcome must be one of the documented codes, and success must mean 8UC3.
TEST(ImageRobustnessTest, MutatedFilesNeverCrash) {
  const std::vector<std::string> seeds = {
      Encode(".jpg", Quadrants(40, 32)),
      Encode(".jpg", Quadrants(40, 32), {cv::IMWRITE_JPEG_PROGRESSIVE, 1}),
      Encode(".png", Quadrants(40, 32)),
      Encode(".png", Noise(24, 24, CV_16UC4, 4)),
      Encode(".bmp", Quadrants(40, 32)),
      Encode(".bmp", cv::Mat(32, 32, CV_8UC1, cv::Scalar(7))),
  };
  ImageLimits limits;
  limits.min_side = 1;
  limits.max_pixels = 1 << 20;
  std::mt19937 rng(42);
  int ok = 0;
  for (const std::string& seed : seeds) {
    for (int round = 0; round < 60; ++round) {
      std::string bad = seed;
      const int edits = 1 + static_cast<int>(rng() % 8);
      for (int e = 0; e < edits; ++e) {
        // Bias towards the header, where the parsers live.
        const std::size_t span =
            (rng() % 2 == 0) ? std::min<std::size_t>(bad.size(), 64) : bad.size();
        bad[rng() % span] = static_cast<char>(rng() & 0xFF);
      }
      if (rng() % 4 == 0) bad.resize(rng() % bad.size());
      cv::Mat out;
      Status s = DecodeImage(bad, limits, &out);
      if (s.ok()) {
        ++ok;
        EXPECT_EQ(out.type(), CV_8UC3);
        EXPECT_FALSE(out.empty());
      } else {
        EXPECT_TRUE(out.empty());
        EXPECT_NE(s.code(), Code::kInternal) << s.ToString();
        EXPECT_NE(s.code(), Code::kNotFound) << s.ToString();
        EXPECT_NE(s.code(), Code::kIOError) << s.ToString();
      }
    }
  }
  EXPECT_GT(ok, 0);  // the mutations must not be so heavy that nothing gets to the codec
}

// --- Files -------------------------------------------------------------------------------------

class ImageFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "portcullis_image_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& contents) const {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }
  std::string dir_;
};

TEST_F(ImageFileTest, ReadsAValidFile) {
  const std::string path = Write("plate.png", Encode(".png", Quadrants(64, 48)));
  cv::Mat out;
  Status s = ReadImageFile(Env::Default(), path, ImageLimits(), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(out.size(), cv::Size(64, 48));
  ExpectQuadrants(out, 0);
}

TEST_F(ImageFileTest, FormatComesFromTheBytesNotTheName) {
  const std::string path = Write("really_a_jpeg.png", Encode(".jpg", Quadrants(64, 48)));
  cv::Mat out;
  Status s = ReadImageFile(Env::Default(), path, ImageLimits(), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectQuadrants(out, 12);
}

TEST_F(ImageFileTest, MissingFileIsNotFound) {
  cv::Mat out;
  Status s = ReadImageFile(Env::Default(), dir_ + "/missing.jpg", ImageLimits(), &out);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find("missing.jpg"), std::string::npos);
}

TEST_F(ImageFileTest, DirectoryIsIOError) {
  cv::Mat out;
  Status s = ReadImageFile(Env::Default(), dir_, ImageLimits(), &out);
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
}

TEST_F(ImageFileTest, DecodeErrorsNameThePath) {
  const std::string path = Write("notes.jpg", "this is a text file\n");
  cv::Mat out;
  Status s = ReadImageFile(Env::Default(), path, ImageLimits(), &out);
  EXPECT_EQ(s.code(), Code::kUnsupported) << s.ToString();
  EXPECT_EQ(s.message(), path + ": not an image (unrecognised format)");

  const std::string jpeg = Encode(".jpg", Noise(64, 64, CV_8UC3, 5));
  const std::string cut = Write("cut.jpg", jpeg.substr(0, jpeg.size() / 2));
  s = ReadImageFile(Env::Default(), cut, ImageLimits(), &out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_EQ(s.message(), cut + ": truncated JPEG");
}

TEST_F(ImageFileTest, OversizedFileIsRefusedBeforeDecoding) {
  const std::string png = Encode(".png", Quadrants(64, 48));
  const std::string path = Write("big.png", png);
  ImageLimits limits;
  limits.max_file_bytes = png.size() - 1;
  cv::Mat out;
  Status s = ReadImageFile(Env::Default(), path, limits, &out);
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  limits.max_file_bytes = png.size();
  EXPECT_TRUE(ReadImageFile(Env::Default(), path, limits, &out).ok());
}

TEST_F(ImageFileTest, EmptyFileIsInvalidArgument) {
  const std::string path = Write("empty.jpg", "");
  cv::Mat out;
  Status s = ReadImageFile(Env::Default(), path, ImageLimits(), &out);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  EXPECT_EQ(s.message(), path + ": empty file");
}

}  // namespace
}  // namespace portcullis
