// FrameSource over generated video files and a local fake MJPEG camera: frames in order with the
// stride applied, end of file, looping, missing / corrupt / truncated files, and a network camera
// that stalls, drops and comes back. No hardware and nothing beyond loopback.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "camera_util.h"
#include "lane/camera_internal.h"
#include "lane/frame_source.h"

namespace portcullis::lane {
namespace {

using testing::FakeMjpegCamera;
using testing::FrameNumber;
using testing::NumberedFrames;
using testing::TempDir;
using testing::WriteMjpgAvi;
using Clock = std::chrono::steady_clock;

CameraConfig Config(const std::string& source) {
  CameraConfig config;
  config.id = "cam0";
  config.source = source;
  config.frame_stride = 1;
  config.stall_timeout_ms = 300;
  config.retry_initial_ms = 20;
  config.retry_max_ms = 100;
  return config;
}

std::unique_ptr<FrameSource> Open(const CameraConfig& config) {
  std::unique_ptr<FrameSource> source;
  const Status status = OpenFrameSource(config, &source);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return source;
}

// Polls until pred() or the deadline.
template <typename Pred>
bool Eventually(Pred pred, int ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// Reads until a frame arrives or ms pass; the frame's number, or -1.
int NextNumber(FrameSource* source, int ms, Frame* frame = nullptr) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  Frame local;
  Frame* f = frame != nullptr ? frame : &local;
  while (Clock::now() < deadline) {
    if (source->Next(50, f).ok()) return FrameNumber(f->bgr);
  }
  return -1;
}

TEST(CameraSourceTest, FileYieldsEveryStridedFrameInOrderThenEnds) {
  TempDir dir;
  const std::string path = dir.path() + "/clip.avi";
  ASSERT_TRUE(WriteMjpgAvi(path, NumberedFrames(21, 64, 48), 25));
  CameraConfig config = Config(path);
  config.frame_stride = 2;
  auto source = Open(config);
  ASSERT_NE(source, nullptr);
  std::int64_t last_monotonic = 0;
  for (int i = 0; i <= 20; i += 2) {
    Frame frame;
    const Status status = source->Next(2000, &frame);
    ASSERT_TRUE(status.ok()) << i << ": " << status.ToString();
    EXPECT_EQ(frame.index, i);
    EXPECT_EQ(FrameNumber(frame.bgr), i);
    EXPECT_EQ(frame.bgr.type(), CV_8UC3);
    EXPECT_GE(frame.monotonic_micros, last_monotonic);
    last_monotonic = frame.monotonic_micros;
    EXPECT_GT(frame.wall_micros, std::int64_t{1'600'000'000} * 1'000'000);  // after 2020
  }
  Frame frame;
  const Status end = source->Next(2000, &frame);
  EXPECT_TRUE(end.code() == Status::Code::kNotFound) << end.ToString();
  EXPECT_EQ(source->state(), CameraState::kEnded);
  EXPECT_EQ(source->corrupt_frames(), 0);
  EXPECT_EQ(source->dropped_frames(), 0);  // files are lossless even for a slow consumer
}

TEST(CameraSourceTest, ASlowConsumerStillGetsEveryFrameOfAFile) {
  TempDir dir;
  const std::string path = dir.path() + "/clip.avi";
  ASSERT_TRUE(WriteMjpgAvi(path, NumberedFrames(8, 64, 48), 25));
  auto source = Open(Config(path));
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    Frame frame;
    ASSERT_TRUE(source->Next(2000, &frame).ok());
    EXPECT_EQ(FrameNumber(frame.bgr), i);
  }
}

TEST(CameraSourceTest, RealtimeFileIsDeliveredAtItsFrameRateNotFaster) {
  TempDir dir;
  const std::string path = dir.path() + "/clip.avi";
  // 10 frames at 20 fps: the last is due 450 ms after the first, however fast the decoder is.
  ASSERT_TRUE(WriteMjpgAvi(path, NumberedFrames(10, 64, 48), 20));
  CameraConfig config = Config(path);
  config.frame_stride = 1;
  config.realtime = true;
  auto source = Open(config);
  ASSERT_NE(source, nullptr);
  std::int64_t first = 0;
  std::int64_t last = 0;
  for (int i = 0; i < 10; ++i) {
    Frame frame;
    ASSERT_TRUE(source->Next(2000, &frame).ok()) << i;
    EXPECT_EQ(FrameNumber(frame.bgr), i);
    if (i == 0) first = frame.monotonic_micros;
    last = frame.monotonic_micros;
  }
  EXPECT_GE(last - first, 440'000) << "frames came faster than the file's 20 fps";
  Frame frame;
  EXPECT_EQ(source->Next(2000, &frame).code(), Status::Code::kNotFound);
}

TEST(CameraSourceTest, LoopingFileStartsAgain) {
  TempDir dir;
  const std::string path = dir.path() + "/clip.avi";
  ASSERT_TRUE(WriteMjpgAvi(path, NumberedFrames(5, 64, 48), 25));
  CameraConfig config = Config(path);
  config.loop = true;
  auto source = Open(config);
  for (int i = 0; i < 12; ++i) {
    Frame frame;
    ASSERT_TRUE(source->Next(2000, &frame).ok()) << i;
    EXPECT_EQ(FrameNumber(frame.bgr), i % 5);
    EXPECT_EQ(frame.index, i);  // the index keeps counting across loops
  }
  EXPECT_NE(source->state(), CameraState::kEnded);
}

TEST(CameraSourceTest, MissingFileIsUnavailableAndRetriedUntilItAppears) {
  TempDir dir;
  const std::string path = dir.path() + "/later.avi";
  auto source = Open(Config(path));
  Frame frame;
  const Status status = source->Next(150, &frame);
  EXPECT_TRUE(status.code() == Status::Code::kIOError) << status.ToString();
  EXPECT_EQ(source->state(), CameraState::kUnavailable);
  // The camera "comes up": the file appears, and the retrying source opens it.
  ASSERT_TRUE(WriteMjpgAvi(dir.path() + "/tmp.avi", NumberedFrames(3, 64, 48), 25));
  std::filesystem::rename(dir.path() + "/tmp.avi", path);
  EXPECT_EQ(NextNumber(source.get(), 3000), 0);
  EXPECT_NE(source->state(), CameraState::kUnavailable);
}

TEST(CameraSourceTest, GarbageFileIsUnavailableNotACrash) {
  TempDir dir;
  const std::string path = dir.path() + "/garbage.avi";
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 5000; ++i) out.put(static_cast<char>((i * 7919) & 0xff));
  }
  auto source = Open(Config(path));
  Frame frame;
  const auto started = Clock::now();
  const Status status = source->Next(300, &frame);
  EXPECT_FALSE(status.ok());
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(2));
  EXPECT_TRUE(source->state() == CameraState::kUnavailable ||
              source->state() == CameraState::kEnded)
      << CameraStateName(source->state());
}

TEST(CameraSourceTest, TruncatedFileYieldsWhatItHasThenEnds) {
  TempDir dir;
  const std::string whole = dir.path() + "/whole.avi";
  ASSERT_TRUE(WriteMjpgAvi(whole, NumberedFrames(30, 64, 48), 25));
  std::ifstream in(whole, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string path = dir.path() + "/cut.avi";
  {
    std::ofstream out(path, std::ios::binary);
    out << bytes.substr(0, bytes.size() * 55 / 100);  // the recording was cut mid-frame
  }
  auto source = Open(Config(path));
  int frames = 0;
  Status status;
  for (int i = 0; i < 100; ++i) {
    Frame frame;
    status = source->Next(2000, &frame);
    if (!status.ok()) break;
    EXPECT_EQ(FrameNumber(frame.bgr), frames);  // what it has, in order, intact
    ++frames;
  }
  EXPECT_TRUE(status.code() == Status::Code::kNotFound) << status.ToString();
  EXPECT_GT(frames, 5);
  EXPECT_LT(frames, 30);
  EXPECT_EQ(source->state(), CameraState::kEnded);
}

TEST(CameraSourceTest, BadConfigIsRefused) {
  std::unique_ptr<FrameSource> source;
  CameraConfig config = Config("x.avi");
  config.frame_stride = 0;
  EXPECT_TRUE(OpenFrameSource(config, &source).code() == Status::Code::kInvalidArgument);
  config = Config("v4l2:abc");
  EXPECT_TRUE(OpenFrameSource(config, &source).code() == Status::Code::kInvalidArgument);
  config = Config("");
  EXPECT_TRUE(OpenFrameSource(config, &source).code() == Status::Code::kInvalidArgument);
  config = Config("x.avi");
  config.roi_w = -1;
  EXPECT_TRUE(OpenFrameSource(config, &source).code() == Status::Code::kInvalidArgument);
}

TEST(CameraSourceTest, AbsentV4l2DeviceIsUnavailable) {
  auto source = Open(Config("v4l2:97"));
  Frame frame;
  EXPECT_TRUE(source->Next(100, &frame).code() == Status::Code::kIOError);
  EXPECT_EQ(source->state(), CameraState::kUnavailable);
}

TEST(CameraSourceTest, HttpMjpegCameraStreams) {
  FakeMjpegCamera camera(NumberedFrames(10, 160, 120), 50);
  ASSERT_TRUE(camera.ok());
  auto source = Open(Config(camera.url()));
  int previous = -1;
  for (int i = 0; i < 8; ++i) {
    const int n = NextNumber(source.get(), 5000);
    ASSERT_GE(n, 0) << "frame " << i << ", state " << CameraStateName(source->state());
    EXPECT_NE(n, previous);
    previous = n;
  }
  EXPECT_EQ(source->state(), CameraState::kOk);
}

TEST(CameraSourceTest, StalledStreamIsReportedWithinTheTimeoutAndRecovers) {
  FakeMjpegCamera camera(NumberedFrames(10, 160, 120), 50);
  ASSERT_TRUE(camera.ok());
  auto source = Open(Config(camera.url()));
  ASSERT_GE(NextNumber(source.get(), 5000), 0);
  camera.SetMode(FakeMjpegCamera::Mode::kStall);  // socket open, nothing sent
  // Drain what was in flight, then Next() times out and the state says stalled.
  const auto stalled_at = Clock::now();
  ASSERT_TRUE(Eventually(
      [&] {
        Frame frame;
        return !source->Next(50, &frame).ok() && source->state() == CameraState::kStalled;
      },
      2000));
  // 300 ms stall timeout, plus frames already buffered in the socket: well under a second.
  EXPECT_LT(Clock::now() - stalled_at, std::chrono::milliseconds(1500));
  Frame frame;
  const Status status = source->Next(50, &frame);
  EXPECT_TRUE(status.code() == Status::Code::kIOError) << status.ToString();
  camera.SetMode(FakeMjpegCamera::Mode::kStream);  // the camera comes back
  EXPECT_GE(NextNumber(source.get(), 5000), 0);
  EXPECT_EQ(source->state(), CameraState::kOk);
}

TEST(CameraSourceTest, DroppedStreamIsUnavailableThenReconnects) {
  FakeMjpegCamera camera(NumberedFrames(10, 160, 120), 50);
  ASSERT_TRUE(camera.ok());
  auto source = Open(Config(camera.url()));
  ASSERT_GE(NextNumber(source.get(), 5000), 0);
  EXPECT_EQ(source->reconnects(), 0);
  camera.SetMode(FakeMjpegCamera::Mode::kDrop);  // unplugged: connection closed, new ones refused
  ASSERT_TRUE(Eventually(
      [&] {
        Frame frame;
        return !source->Next(20, &frame).ok() && source->state() == CameraState::kUnavailable;
      },
      5000))
      << CameraStateName(source->state());
  const int connections_while_down = camera.connections();
  camera.SetMode(FakeMjpegCamera::Mode::kStream);
  EXPECT_GE(NextNumber(source.get(), 8000), 0);
  EXPECT_GE(source->reconnects(), 1);
  EXPECT_GT(camera.connections(), connections_while_down);
  EXPECT_EQ(source->state(), CameraState::kOk);
}

TEST(CameraSourceTest, StallAfterNFramesAndShutdownDoesNotHang) {
  FakeMjpegCamera camera(NumberedFrames(10, 160, 120), 50);
  ASSERT_TRUE(camera.ok());
  camera.StallAfter(5);
  auto source = Open(Config(camera.url()));
  int got = 0;
  Frame frame;
  while (NextNumber(source.get(), 250, &frame) >= 0) ++got;
  EXPECT_GE(got, 1);
  EXPECT_LE(got, 5);
  EXPECT_EQ(camera.frames_sent(), 5);
  // Stalled once stall_timeout_ms (300) passed without a frame; later, when FFmpeg's read timeout
  // (2 x stall) gives up on the socket, unavailable while it reconnects. Never ok, never ended.
  EXPECT_TRUE(Eventually([&] { return source->state() == CameraState::kStalled; }, 1000))
      << CameraStateName(source->state());
  EXPECT_TRUE(Eventually([&] { return source->state() == CameraState::kUnavailable; }, 3000))
      << CameraStateName(source->state());
  // The capture thread may be blocked in a network read: destruction must still return within
  // that read's timeout.
  const auto started = Clock::now();
  source.reset();
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(3));
}

TEST(CameraSourceTest, LiveStreamKeepsTheLatestFrameForASlowConsumer) {
  FakeMjpegCamera camera(NumberedFrames(50, 160, 120), 100);
  ASSERT_TRUE(camera.ok());
  auto source = Open(Config(camera.url()));
  ASSERT_GE(NextNumber(source.get(), 5000), 0);
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a slow analysis
    ASSERT_GE(NextNumber(source.get(), 2000), 0);
  }
  EXPECT_GT(source->dropped_frames(), 0);
}

TEST(CameraSourceTest, EmptyWrongTypeAndWrongSizeFramesAreRefused) {
  cv::Size expected;
  EXPECT_FALSE(camera_internal::AcceptFrame(cv::Mat(), &expected));
  EXPECT_FALSE(camera_internal::AcceptFrame(cv::Mat(48, 64, CV_8UC1, cv::Scalar(1)), &expected));
  EXPECT_FALSE(camera_internal::AcceptFrame(cv::Mat(48, 64, CV_16UC3, cv::Scalar(1)), &expected));
  EXPECT_EQ(expected, cv::Size());  // refused frames do not fix the stream's size
  EXPECT_TRUE(camera_internal::AcceptFrame(cv::Mat(48, 64, CV_8UC3, cv::Scalar(1)), &expected));
  EXPECT_EQ(expected, cv::Size(64, 48));
  EXPECT_TRUE(camera_internal::AcceptFrame(cv::Mat(48, 64, CV_8UC3, cv::Scalar(2)), &expected));
  EXPECT_FALSE(camera_internal::AcceptFrame(cv::Mat(96, 128, CV_8UC3, cv::Scalar(1)), &expected));
  EXPECT_FALSE(camera_internal::AcceptFrame(
      cv::Mat(1, camera_internal::kMaxFrameSide + 1, CV_8UC3, cv::Scalar(1)), &expected));
}

TEST(CameraSourceTest, GlitchedFramesInAStreamNeverReachTheConsumer) {
  // A frame of another size and a frame of garbage bytes in the middle of an MJPEG stream:
  // whatever the decoder makes of them, the consumer only ever gets intact frames of the
  // stream's size, and the stream goes on.
  std::vector<cv::Mat> frames = NumberedFrames(6, 160, 120);
  frames[2] = cv::Mat(240, 320, CV_8UC3, cv::Scalar(19, 19, 19));
  FakeMjpegCamera camera(frames, 50);
  ASSERT_TRUE(camera.ok());
  camera.ReplaceFrameBytes(4, std::string(3000, '\x5a'));
  auto source = Open(Config(camera.url()));
  for (int i = 0; i < 12; ++i) {
    Frame frame;
    const int n = NextNumber(source.get(), 5000, &frame);
    ASSERT_GE(n, 0) << CameraStateName(source->state());
    EXPECT_EQ(frame.bgr.cols, 160);
    EXPECT_EQ(frame.bgr.rows, 120);
    EXPECT_TRUE(n == 0 || n == 1 || n == 3 || n == 5) << n;
  }
}

}  // namespace
}  // namespace portcullis::lane
