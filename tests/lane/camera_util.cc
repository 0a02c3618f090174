#include "camera_util.h"

#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>  // mkdtemp
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "portcullis/plate_synth.h"

namespace portcullis::lane::testing {

namespace {

// Sends all of bytes; false when the peer is gone.
bool SendAll(int fd, const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

}  // namespace

FakeMjpegCamera::FakeMjpegCamera(const std::vector<cv::Mat>& frames, double fps)
    : period_ms_(std::max(1, static_cast<int>(std::lround(1000.0 / std::max(1.0, fps))))) {
  for (const cv::Mat& frame : frames) {
    std::vector<uchar> jpeg;
    cv::imencode(".jpg", frame, jpeg);
    jpegs_.emplace_back(jpeg.begin(), jpeg.end());
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return;
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  // NOLINTBEGIN(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API takes sockaddr*.
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 8) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    // NOLINTEND(cppcoreguidelines-pro-type-reinterpret-cast)
    ::close(listen_fd_);
    listen_fd_ = -1;
    return;
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FakeMjpegCamera::~FakeMjpegCamera() {
  stop_.store(true);
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> workers;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (std::thread& t : workers) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

std::string FakeMjpegCamera::url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/stream.mjpg";
}

void FakeMjpegCamera::AcceptLoop() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (mode_.load() == Mode::kDrop) {
      ::close(fd);
      continue;
    }
    connections_.fetch_add(1);
    const std::lock_guard<std::mutex> lock(mu_);
    workers_.emplace_back([this, fd] { Serve(fd); });
  }
}

void FakeMjpegCamera::Serve(int fd) {
  // Read the request head (we answer any GET the same way).
  std::string request;
  char buffer[1024];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384 && !stop_.load()) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    request.append(buffer, static_cast<std::size_t>(n));
  }
  bool alive = SendAll(fd,
                       "HTTP/1.0 200 OK\r\nCache-Control: no-cache\r\n"
                       "Content-Type: multipart/x-mixed-replace; boundary=pcframe\r\n\r\n");
  std::size_t next = 0;
  while (alive && !stop_.load() && !jpegs_.empty()) {
    const Mode mode = mode_.load();
    if (mode == Mode::kDrop) break;
    if (mode == Mode::kStall) {
      SleepMs(10);
      continue;
    }
    const std::string& jpeg = jpegs_[next];
    next = (next + 1) % jpegs_.size();
    alive = SendAll(fd, "--pcframe\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                            std::to_string(jpeg.size()) + "\r\n\r\n" + jpeg + "\r\n");
    if (!alive) break;
    frames_sent_.fetch_add(1);
    const std::int64_t budget = stall_budget_.load();
    if (budget > 0 && stall_budget_.fetch_sub(1) == 1) mode_.store(Mode::kStall);
    SleepMs(period_ms_);
  }
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "portcullis_lane_XXXXXX");
  if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

bool WriteMjpgAvi(const std::string& path, const std::vector<cv::Mat>& frames, double fps) {
  if (frames.empty()) return false;
  cv::VideoWriter writer(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps, frames[0].size());
  if (!writer.isOpened()) return false;
  for (const cv::Mat& frame : frames) writer.write(frame);
  writer.release();
  return true;
}

std::vector<cv::Mat> NumberedFrames(int count, int width, int height) {
  std::vector<cv::Mat> frames;
  frames.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const double level = 10 + (3 * i) % 240;
    frames.emplace_back(height, width, CV_8UC3, cv::Scalar(level, level, level));
  }
  return frames;
}

int FrameNumber(const cv::Mat& bgr) {
  const double level = cv::mean(bgr)[0];
  return static_cast<int>(std::lround((level - 10) / 3));
}

namespace {

// A static road scene: smooth gradient, lane markings and kerb; no noise, so empty frames are
// identical after decoding and the motion gate has nothing to see.
cv::Mat RoadBackground(int width, int height) {
  cv::Mat road(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    const auto v = static_cast<uchar>(70 + 60 * y / std::max(1, height));
    road.row(y).setTo(cv::Scalar(v, v, v + 5));
  }
  cv::rectangle(road, cv::Rect(0, height * 3 / 4, width, 6), cv::Scalar(200, 200, 200), cv::FILLED);
  for (int x = 0; x < width; x += width / 8) {
    cv::rectangle(road, cv::Rect(x, height / 2, width / 16, 4), cv::Scalar(220, 220, 220),
                  cv::FILLED);
  }
  return road;
}

// Pastes src onto dst with its top-left at (x, y), clipped to dst.
void Paste(const cv::Mat& src, cv::Mat* dst, int x, int y) {
  const cv::Rect target = cv::Rect(x, y, src.cols, src.rows) & cv::Rect(0, 0, dst->cols, dst->rows);
  if (target.area() <= 0) return;
  const cv::Rect from(target.x - x, target.y - y, target.width, target.height);
  src(from).copyTo((*dst)(target));
}

}  // namespace

std::vector<cv::Mat> RenderLaneClip(const LaneClipSpec& spec, std::vector<LaneClipTruth>* truth) {
  std::vector<cv::Mat> frames;
  RenderLaneClip(spec, truth, [&](const cv::Mat& frame) { frames.push_back(frame.clone()); });
  return frames;
}

void RenderLaneClip(const LaneClipSpec& spec, std::vector<LaneClipTruth>* truth,
                    const std::function<void(const cv::Mat&)>& emit) {
  int emitted = 0;
  const auto push = [&](const cv::Mat& frame) {
    emit(frame);
    ++emitted;
  };
  const cv::Mat road = RoadBackground(spec.width, spec.height);
  const int sprite_w = spec.width * 11 / 20;
  const int sprite_h = spec.height * 17 / 20;
  for (std::size_t v = 0; v < spec.plates.size(); ++v) {
    for (int i = 0; i < spec.gap_frames; ++i) push(road);
    plate::SynthSpec synth;
    synth.text = spec.plates[v];
    synth.image_width = sprite_w;
    synth.image_height = sprite_h;
    synth.plate_width = spec.plate_width;
    synth.seed = static_cast<std::uint32_t>(11 + 7 * v);
    plate::SynthTruth plate_truth;
    cv::Mat sprite = plate::RenderVehicleScene(synth, &plate_truth);
    if (!spec.face.empty()) {
      // The windshield: above the plate, centred on it.
      const plate::Box& b = plate_truth.box;
      const int side = std::min({spec.face.cols, spec.face.rows, std::max(8, b.y - 4)});
      cv::Mat face;
      cv::resize(spec.face, face, cv::Size(side, side), 0, 0, cv::INTER_AREA);
      Paste(face, &sprite, b.x + b.width / 2 - side / 2, std::max(0, b.y - side - 4));
    }
    LaneClipTruth t;
    t.plate = spec.plates[v];
    t.first_frame = emitted;
    const int y = (spec.height - sprite_h) / 2;
    for (int i = 0; i < spec.frames_per_vehicle; ++i) {
      const double t01 = spec.frames_per_vehicle > 1 ? i / (spec.frames_per_vehicle - 1.0) : 0.5;
      cv::Mat frame = road.clone();
      if (spec.approach) {
        // Head-on: centred, growing, from a third of the vehicle above the frame to its bottom
        // edge at the frame's bottom.
        const double scale = 0.7 + 0.3 * t01;
        cv::Mat sized;
        cv::resize(sprite, sized, cv::Size(), scale, scale, cv::INTER_AREA);
        const int top = static_cast<int>(
            std::lround(-0.35 * sized.rows * (1 - t01) + t01 * (spec.height - sized.rows)));
        Paste(sized, &frame, (spec.width - sized.cols) / 2, top);
      } else {
        // Left to right: from a quarter of the vehicle out of frame on the left to a quarter out
        // on the right, so the plate is in view (and moving) in every frame of the pass.
        const int x =
            static_cast<int>(std::lround(-0.25 * sprite_w + t01 * (spec.width - 0.75 * sprite_w)));
        Paste(sprite, &frame, x, y);
      }
      push(frame);
    }
    t.last_frame = emitted - 1;
    if (truth != nullptr) truth->push_back(t);
  }
  for (int i = 0; i < spec.gap_frames; ++i) push(road);
}

}  // namespace portcullis::lane::testing
