// Video input: decode with OpenCV VideoCapture, read plates on every Nth frame, report passes.

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

#include "portcullis/plate_video.h"

namespace portcullis::plate {

namespace {

bool IsUrl(const std::string& source) { return source.find("://") != std::string::npos; }

// The reader wants 8-bit BGR; backends normally deliver it, but grey, BGRA or 16-bit frames are
// possible (CAP_PROP_CONVERT_RGB off, some cameras), and converting here keeps the reader simple.
Status ToBgr8(const cv::Mat& frame, cv::Mat* bgr) {
  if (frame.type() == CV_8UC3) {
    *bgr = frame;
    return Status::Ok();
  }
  cv::Mat eight_bit = frame;
  if (frame.depth() != CV_8U) {
    double scale = 1.0;
    if (frame.depth() == CV_16U) scale = 1.0 / 257.0;
    if (frame.depth() == CV_32F || frame.depth() == CV_64F) scale = 255.0;
    frame.convertTo(eight_bit, CV_8U, scale);
  }
  switch (eight_bit.channels()) {
    case 1:
      cv::cvtColor(eight_bit, *bgr, cv::COLOR_GRAY2BGR);
      return Status::Ok();
    case 3:
      *bgr = eight_bit;
      return Status::Ok();
    case 4:
      cv::cvtColor(eight_bit, *bgr, cv::COLOR_BGRA2BGR);
      return Status::Ok();
    default:
      return Status::Unsupported("video frame with " + std::to_string(eight_bit.channels()) +
                                 " channels");
  }
}

// Timestamp of the frame just read. Backends that do not know it report 0 (or garbage), so past
// the first frame a zero falls back to the nominal frame rate.
double FrameTimeMs(const cv::VideoCapture& capture, std::int64_t index, double fps) {
  const double pos = capture.get(cv::CAP_PROP_POS_MSEC);
  if (std::isfinite(pos) && pos >= 0 && (pos > 0 || index == 0)) return pos;
  if (fps > 0) return static_cast<double>(index) * 1000.0 / fps;
  return 0;
}

}  // namespace

Status ReadVideo(PlateReader* reader, const std::string& source, const VideoOptions& options,
                 const std::function<void(const PlatePass&)>& on_pass,
                 const VideoProgress& progress) {
  if (reader == nullptr) return Status::InvalidArgument("ReadVideo: no plate reader");
  if (options.frame_stride < 1) {
    return Status::InvalidArgument("frame_stride must be at least 1, got " +
                                   std::to_string(options.frame_stride));
  }

  if (!IsUrl(source)) {
    // Checked here because VideoCapture reports a missing file and an unreadable one the same way
    // (not opened), and the caller deserves to know which.
    std::error_code ec;
    const std::filesystem::file_status st = std::filesystem::status(source, ec);
    if (st.type() == std::filesystem::file_type::not_found) {
      return Status::NotFound("no such file: " + source);
    }
    if (ec) return Status::IOError("cannot stat " + source + ": " + ec.message());
    if (st.type() != std::filesystem::file_type::regular) {
      return Status::Unsupported("not a regular file: " + source);
    }
  }

  // Files go to FFmpeg alone when it is built in. With CAP_ANY a file FFmpeg rejects is handed
  // on to GStreamer (slow, and loud on stderr) and to the image-sequence backend (which reads
  // "cam01.avi" as the pattern "cam%02d.avi"); neither reads a file FFmpeg cannot. Stream URLs
  // keep CAP_ANY, since some schemes are only understood by other backends.
  const int api = !IsUrl(source) && cv::videoio_registry::hasBackend(cv::CAP_FFMPEG)
                      ? cv::CAP_FFMPEG
                      : cv::CAP_ANY;
  cv::VideoCapture capture;
  try {
    if (!capture.open(source, api)) return Status::Unsupported("cannot open video: " + source);
  } catch (const std::exception& e) {
    // Some backends throw (cv::Exception) on malformed input instead of failing the open.
    return Status::Unsupported("cannot open video: " + source + ": " + e.what());
  }

  // Containers without an index report 0 or a negative count; progress then shows no total.
  std::int64_t total = -1;
  const double count = capture.get(cv::CAP_PROP_FRAME_COUNT);
  if (std::isfinite(count) && count > 0) total = static_cast<std::int64_t>(std::llround(count));
  if (options.max_frames >= 0 && (total < 0 || total > options.max_frames)) {
    total = options.max_frames;
  }
  double fps = capture.get(cv::CAP_PROP_FPS);
  if (!std::isfinite(fps) || fps <= 0) fps = 0;

  PlateTracker tracker(options.tracker);
  std::vector<PlatePass> finished;
  auto report = [&] {
    if (on_pass) {
      for (const PlatePass& pass : finished) on_pass(pass);
    }
    finished.clear();
  };

  std::int64_t decoded = 0;
  std::int64_t analysed = 0;
  std::int64_t failed = 0;
  Status first_failure;
  cv::Mat frame;
  cv::Mat bgr;
  std::vector<PlateRead> reads;
  while (options.max_frames < 0 || decoded < options.max_frames) {
    const std::int64_t index = decoded;
    const bool analyse = index % options.frame_stride == 0;
    bool got = false;
    try {
      // Skipped frames are only grabbed: that still advances the stream but skips the colour
      // conversion retrieve() would do.
      got = analyse ? capture.read(frame) && !frame.empty() : capture.grab();
    } catch (const std::exception&) {
      got = false;  // a backend that throws mid-stream: treat it like the stream ending there
    }
    // A failed read is the end of the stream: end of file, a truncated file or a dropped
    // connection all look the same here, and whatever was read so far is still worth reporting.
    if (!got) break;
    ++decoded;

    if (analyse) {
      reads.clear();
      Status status = ToBgr8(frame, &bgr);
      if (status.ok()) {
        try {
          status = reader->Read(bgr, &reads);
        } catch (const std::exception& e) {
          // Nothing throws across the public API, including a reader that does.
          status = Status::Internal(std::string("plate reader threw: ") + e.what());
        }
      }
      ++analysed;
      if (!status.ok()) {
        // One bad frame should not lose the pass; the frame just contributes no reads.
        reads.clear();
        if (failed == 0) first_failure = status.WithContext("frame " + std::to_string(index));
        ++failed;
      }
      tracker.Observe(index, FrameTimeMs(capture, index, fps), reads, &finished);
      report();
    }
    if (progress) progress(decoded, total);
  }

  tracker.Flush(&finished);
  report();

  if (decoded == 0 && options.max_frames != 0) {
    return Status::Corruption("no decodable frame in video: " + source);
  }
  // If the reader failed on every frame, the empty result would be a lie; say why instead.
  if (analysed > 0 && failed == analysed) return first_failure;
  return Status::Ok();
}

bool LooksLikeVideo(Env* env, const std::string& path) {
  if (IsUrl(path)) return true;
  // Env first, so a test Env that says the file is missing is believed. The bytes themselves come
  // from a plain stream: Env::ReadFile reads whole files, and videos are large.
  if (env != nullptr && env->KindOf(path) != FileKind::kRegular) return false;

  // An MPEG-TS needs two sync bytes 188 apart to be told from anything else starting with 'G'
  // (0x47), such as a GIF.
  constexpr std::size_t kTsPacket = 188;
  std::array<char, kTsPacket + 1> head{};
  std::size_t size = 0;
  try {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    size = static_cast<std::size_t>(in.gcount());
  } catch (const std::exception&) {
    return false;
  }
  const auto at = [&](std::size_t offset, const char* magic) {
    const std::size_t n = std::strlen(magic);
    return size >= offset + n && std::memcmp(head.data() + offset, magic, n) == 0;
  };

  if (at(0, "RIFF") && at(8, "AVI ")) return true;
  if (at(0, "\x1A\x45\xDF\xA3")) return true;  // EBML: Matroska and WebM
  if (at(4, "ftyp")) {
    // ISO media: MP4, MOV, 3GP ... but HEIF and AVIF still images share the box layout; their
    // major brand tells them apart.
    for (const char* image_brand : {"heic", "heix", "heim", "heis", "mif1", "avif"}) {
      if (at(8, image_brand)) return false;
    }
    return true;
  }
  if (at(0, "\x47") && at(kTsPacket, "\x47")) return true;
  return false;
}

}  // namespace portcullis::plate
