#include "server/lane_clip.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <utility>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

namespace portcullis::server {
namespace {

// Longest crop side kept: a "plate" box as large as the frame is a misdetection, and a crop is
// for recognising a plate, not for keeping a picture of the vehicle.
constexpr int kMaxCropSide = 640;

std::string Errno(const char* what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

// Wraps the lane's reader while a clip is read: checks each frame against the limits before the
// reader sees it and keeps the crops of confident reads, since ReadVideo reports passes without
// their frames.
class CropKeepingReader final : public plate::PlateReader {
 public:
  CropKeepingReader(plate::PlateReader* inner, const ClipLimits& limits)
      : inner_(inner), limits_(limits) {}

  Status Read(const cv::Mat& bgr, std::vector<plate::PlateRead>* plates) override {
    // ReadVideo calls us once per analysed frame, in order, so the call count gives the frame.
    const std::int64_t frame = calls_++ * limits_.frame_stride;
    if (bgr.cols > limits_.max_side || bgr.rows > limits_.max_side ||
        static_cast<std::int64_t>(bgr.cols) * bgr.rows > limits_.max_pixels) {
      return Status::ResourceExhausted("video frame " + std::to_string(bgr.cols) + "x" +
                                       std::to_string(bgr.rows) + " is over the limit of " +
                                       std::to_string(limits_.max_side) + " px per side");
    }
    PORTCULLIS_RETURN_IF_ERROR(inner_->Read(bgr, plates));
    for (const auto& p : *plates) {
      if (p.confidence < limits_.tracker.min_confidence) continue;  // never linked into a pass
      crops_.push_back({frame, p.box, EncodeCrop(bgr, p.box)});
    }
    return Status::Ok();
  }
  [[nodiscard]] std::vector<std::string> Regions() const override { return inner_->Regions(); }

  // The crop of a pass's best read: the same box in the best frame (the box is the best frame's);
  // failing that (a frame skipped by the decoder shifts our count), any frame with that box.
  std::string CropFor(const plate::PlatePass& pass) const {
    const auto same_box = [&](const Crop& c) {
      return c.box.x == pass.best.box.x && c.box.y == pass.best.box.y &&
             c.box.width == pass.best.box.width && c.box.height == pass.best.box.height;
    };
    for (const auto& c : crops_) {
      if (c.frame == pass.best_frame && same_box(c)) return c.jpeg;
    }
    for (const auto& c : crops_) {
      if (same_box(c)) return c.jpeg;
    }
    return "";
  }

 private:
  struct Crop {
    std::int64_t frame;
    plate::Box box;
    std::string jpeg;
  };
  plate::PlateReader* inner_;
  const ClipLimits& limits_;
  std::int64_t calls_ = 0;
  std::vector<Crop> crops_;
};

// The frame size the container declares, checked before any frame is decoded: a small file can
// declare enormous frames, and the decoder would allocate them.
Status CheckDeclaredSize(const std::string& path, const ClipLimits& limits) {
  const int api = cv::videoio_registry::hasBackend(cv::CAP_FFMPEG) ? cv::CAP_FFMPEG : cv::CAP_ANY;
  cv::VideoCapture capture;
  try {
    if (!capture.open(path, api)) return Status::Unsupported("cannot open the video clip");
  } catch (const std::exception& e) {
    return Status::Unsupported(std::string("cannot open the video clip: ") + e.what());
  }
  const double width = capture.get(cv::CAP_PROP_FRAME_WIDTH);
  const double height = capture.get(cv::CAP_PROP_FRAME_HEIGHT);
  if (width > limits.max_side || height > limits.max_side ||
      width * height > static_cast<double>(limits.max_pixels)) {
    return Status::ResourceExhausted(
        "video frames of " + std::to_string(static_cast<long long>(width)) + "x" +
        std::to_string(static_cast<long long>(height)) + " are over the limit of " +
        std::to_string(limits.max_side) + " px per side");
  }
  return Status::Ok();
}

}  // namespace

Status ScratchFile::Create(const std::string& dir, std::string_view bytes,
                           std::unique_ptr<ScratchFile>* file) {
  if (dir.empty()) return Status::InvalidArgument("no scratch directory");
  std::string path = dir;
  if (path.back() != '/') path += '/';
  path += "portcullis-clip-XXXXXX";
  // mkstemp creates the file O_EXCL with mode 0600; the fchmod makes that explicit whatever the
  // C library does with the umask.
  const int fd = ::mkstemp(path.data());
  if (fd < 0) return Status::IOError(Errno("cannot create a scratch file in", dir));
  std::unique_ptr<ScratchFile> created(new ScratchFile(path));  // NOLINT: private constructor
  Status s;
  if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0) s = Status::IOError(Errno("cannot chmod", path));
  std::size_t written = 0;
  while (s.ok() && written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      s = Status::IOError(Errno("cannot write", path));
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0 && s.ok()) s = Status::IOError(Errno("cannot close", path));
  if (!s.ok()) return s;  // `created` removes the partial file
  *file = std::move(created);
  return Status::Ok();
}

ScratchFile::~ScratchFile() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

std::string EncodeCrop(const cv::Mat& bgr, const plate::Box& box) {
  try {
    const int margin_x = box.width / 10;
    const int margin_y = box.height / 5;
    const cv::Rect wanted(box.x - margin_x, box.y - margin_y, box.width + 2 * margin_x,
                          box.height + 2 * margin_y);
    const cv::Rect rect = wanted & cv::Rect(0, 0, bgr.cols, bgr.rows);
    if (rect.width <= 0 || rect.height <= 0) return "";
    cv::Mat crop = bgr(rect);
    const int longest = std::max(rect.width, rect.height);
    if (longest > kMaxCropSide) {
      const double scale = static_cast<double>(kMaxCropSide) / longest;
      cv::Mat small;
      cv::resize(crop, small, cv::Size(), scale, scale, cv::INTER_AREA);
      crop = small;
    }
    std::vector<uchar> jpeg;
    if (!cv::imencode(".jpg", crop, jpeg, {cv::IMWRITE_JPEG_QUALITY, 90})) return "";
    return {jpeg.begin(), jpeg.end()};
  } catch (const std::exception&) {
    return "";
  }
}

Status ReadClip(Env* env, plate::PlateReader* reader, const std::string& path,
                const ClipLimits& limits, std::vector<ClipPass>* passes) {
  passes->clear();
  if (!plate::LooksLikeVideo(env, path)) {
    return Status::Unsupported(
        "not a video container we accept (AVI, MP4/MOV, Matroska/WebM, MPEG-TS)");
  }
  PORTCULLIS_RETURN_IF_ERROR(CheckDeclaredSize(path, limits));
  CropKeepingReader keeping(reader, limits);
  plate::VideoOptions options;
  options.frame_stride = limits.frame_stride;
  options.max_frames = limits.max_frames;
  options.tracker = limits.tracker;
  std::vector<plate::PlatePass> found;
  Status s = plate::ReadVideo(&keeping, path, options,
                              [&](const plate::PlatePass& pass) { found.push_back(pass); });
  // ReadVideo names the file in its messages; the client never knew our scratch path.
  if (!s.ok()) {
    std::string message = s.message();
    for (std::size_t at = message.find(path); at != std::string::npos; at = message.find(path)) {
      message.replace(at, path.size(), "the clip");
    }
    switch (s.code()) {
      case Status::Code::kResourceExhausted:
        return Status::ResourceExhausted(message);
      case Status::Code::kCorruption:
        return Status::Corruption(message);
      case Status::Code::kUnsupported:
        return Status::Unsupported(message);
      default:
        return Status::Internal(message);
    }
  }
  for (auto& pass : found) {
    ClipPass out;
    out.crop_jpeg = keeping.CropFor(pass);
    out.pass = std::move(pass);
    passes->push_back(std::move(out));
  }
  return Status::Ok();
}

}  // namespace portcullis::server
