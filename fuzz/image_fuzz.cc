// libFuzzer harness for DecodeImage: whatever the bytes, it must return a Status, never crash,
// hang or over-allocate, and a success must be a non-empty 8-bit BGR image within the limits.
//
// PORTCULLIS_FUZZ_WRITE_SEEDS=DIR makes the binary write a small seed corpus (one image per
// format and pixel layout we convert) into DIR and exit; scripts/fuzz.sh uses it so that the
// corpus needs neither checked-in binaries nor Python.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "portcullis/image.h"

namespace {

// Small limits keep each execution fast; the header checks are the same at any limit.
portcullis::ImageLimits FuzzLimits(int min_side) {
  portcullis::ImageLimits limits;
  limits.min_side = min_side;
  limits.max_pixels = 4LL << 20;
  return limits;
}

void CheckOne(std::string_view bytes, const portcullis::ImageLimits& limits) {
  cv::Mat bgr;
  const portcullis::Status s = portcullis::DecodeImage(bytes, limits, &bgr);
  if (!s.ok()) {
    if (!bgr.empty() || s.code() == portcullis::Status::Code::kInternal) {
      std::fprintf(stderr, "bad failure: %s (output empty: %d)\n", s.ToString().c_str(),
                   bgr.empty() ? 1 : 0);
      std::abort();
    }
    return;
  }
  if (bgr.empty() || bgr.type() != CV_8UC3 || bgr.cols < limits.min_side ||
      bgr.rows < limits.min_side || bgr.cols > limits.max_side || bgr.rows > limits.max_side ||
      static_cast<std::int64_t>(bgr.cols) * bgr.rows > limits.max_pixels) {
    std::fprintf(stderr, "success broke the contract: %dx%d type %d\n", bgr.cols, bgr.rows,
                 bgr.type());
    std::abort();
  }
}

cv::Mat Pattern(int width, int height, int type) {
  cv::Mat img(height, width, type);
  cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(CV_MAT_DEPTH(type) == CV_16U ? 65535 : 255));
  return img;
}

int WriteSeeds(const std::string& dir) {
  struct Seed {
    const char* name;
    const char* ext;
    cv::Mat image;
    std::vector<int> params;
  };
  const std::vector<Seed> seeds = {
      {"baseline.jpg", ".jpg", Pattern(24, 16, CV_8UC3), {}},
      {"progressive.jpg", ".jpg", Pattern(24, 16, CV_8UC3), {cv::IMWRITE_JPEG_PROGRESSIVE, 1}},
      {"grey.jpg", ".jpg", Pattern(16, 16, CV_8UC1), {}},
      {"rgb.png", ".png", Pattern(20, 16, CV_8UC3), {}},
      {"grey.png", ".png", Pattern(16, 16, CV_8UC1), {}},
      {"bgra.png", ".png", Pattern(16, 16, CV_8UC4), {}},
      {"deep.png", ".png", Pattern(16, 16, CV_16UC3), {}},
      {"stored.png", ".png", Pattern(16, 16, CV_8UC3), {cv::IMWRITE_PNG_COMPRESSION, 0}},
      {"rgb.bmp", ".bmp", Pattern(17, 16, CV_8UC3), {}},
      {"grey.bmp", ".bmp", Pattern(16, 16, CV_8UC1), {}},
  };
  for (const Seed& seed : seeds) {
    std::vector<uchar> bytes;
    if (!cv::imencode(seed.ext, seed.image, bytes, seed.params)) {
      std::fprintf(stderr, "cannot encode %s\n", seed.name);
      return 1;
    }
    const std::string path = dir + "/" + seed.name;
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "wrote %zu seeds to %s\n", seeds.size(), dir.c_str());
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (const char* dir = std::getenv("PORTCULLIS_FUZZ_WRITE_SEEDS")) std::exit(WriteSeeds(dir));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // min_side 1 lets tiny images reach the codecs and the colour conversion, where the fuzzer
  // would otherwise stop at "too small"; the default also runs, to cover that branch.
  CheckOne(bytes, FuzzLimits(1));
  CheckOne(bytes, FuzzLimits(portcullis::ImageLimits().min_side));
  return 0;
}
