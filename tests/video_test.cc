// ReadVideo and LooksLikeVideo on real files written with cv::VideoWriter: a white "plate" moves
// across a dark frame, and a fake reader "reads" it wherever it finds it.

#include <stdlib.h>  // mkdtemp

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "portcullis/env.h"
#include "portcullis/plate_video.h"

namespace portcullis::plate {
namespace {

constexpr int kFrames = 40;
constexpr double kFps = 25;
constexpr int kPlateWidth = 60;

// Left edge of the plate in frame i: 5 px at the start, 6 px per frame to the right.
int PlateX(int frame) { return 5 + 6 * frame; }

// "Reads" the white rectangle: text ABC123, except every fifth call reads ABC128; confidence peaks
// when the plate is centred (frame 21, centre x 161), as a real reader's would when the plate is
// largest and sharpest.
class FakeReader : public PlateReader {
 public:
  Status Read(const cv::Mat& bgr, std::vector<PlateRead>* plates) override {
    const int call = calls++;
    EXPECT_EQ(bgr.type(), CV_8UC3);
    plates->clear();
    if (fail_every > 0 && call % fail_every == 0) return Status::Internal("fake reader failure");
    cv::Mat gray;
    cv::Mat mask;
    cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
    cv::threshold(gray, mask, 200, 255, cv::THRESH_BINARY);
    std::vector<cv::Point> white;
    cv::findNonZero(mask, white);
    if (white.empty()) return Status::Ok();
    const cv::Rect r = cv::boundingRect(white);
    PlateRead read;
    read.text = call % 5 == 4 ? "ABC128" : "ABC123";
    const double centre = r.x + r.width / 2.0;
    read.confidence = static_cast<float>(0.95 - std::abs(centre - 160.0) / 1000.0);
    read.region = "us";
    read.box = Box{r.x, r.y, r.width, r.height};
    read.candidates = {Candidate{read.text, read.confidence, ""}};
    plates->push_back(read);
    return Status::Ok();
  }
  [[nodiscard]] std::vector<std::string> Regions() const override { return {"us"}; }

  int calls = 0;
  int fail_every = 0;  // > 0: calls 0, n, 2n, ... fail
};

class VideoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "portcullis_video_XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    avi_ = dir_ + "/plate.avi";
    cv::VideoWriter writer(avi_, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), kFps,
                           cv::Size(320, 240));
    ASSERT_TRUE(writer.isOpened());
    for (int i = 0; i < kFrames; ++i) {
      cv::Mat frame(240, 320, CV_8UC3, cv::Scalar(40, 40, 40));
      cv::rectangle(frame, cv::Rect(PlateX(i), 105, kPlateWidth, 30), cv::Scalar(255, 255, 255),
                    cv::FILLED);
      writer.write(frame);
    }
    writer.release();
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Runs ReadVideo and collects passes and progress calls.
  Status Run(const std::string& source, const VideoOptions& options) {
    passes.clear();
    progress.clear();
    return ReadVideo(
        &reader, source, options, [this](const PlatePass& pass) { passes.push_back(pass); },
        [this](std::int64_t done, std::int64_t total) { progress.emplace_back(done, total); });
  }

  void WriteFile(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
    ASSERT_TRUE(out.good());
  }

  static VideoOptions EveryFrame() {
    VideoOptions options;
    options.frame_stride = 1;
    return options;
  }

  std::string dir_;
  std::string avi_;
  FakeReader reader;
  std::vector<PlatePass> passes;
  std::vector<std::pair<std::int64_t, std::int64_t>> progress;
};

TEST_F(VideoTest, OnePassWithTheVotedTextAndTheBestFrame) {
  ASSERT_TRUE(Run(avi_, EveryFrame()).ok());
  EXPECT_EQ(reader.calls, kFrames);
  ASSERT_EQ(passes.size(), 1u);
  const PlatePass& pass = passes[0];
  EXPECT_EQ(pass.best.text, "ABC123");  // 8 misreads of ABC128 are outvoted
  EXPECT_EQ(pass.first_frame, 0);
  EXPECT_EQ(pass.last_frame, kFrames - 1);
  EXPECT_EQ(pass.frames_seen, kFrames);
  // The plate is centred at frame 21; JPEG edges may shift the found box by a pixel or two.
  EXPECT_GE(pass.best_frame, 20);
  EXPECT_LE(pass.best_frame, 22);
  EXPECT_NEAR(pass.best.box.x, PlateX(static_cast<int>(pass.best_frame)), 3);
  EXPECT_NEAR(pass.best_time_ms, static_cast<double>(pass.best_frame) * 1000.0 / kFps, 1.0);
  EXPECT_EQ(pass.best.region, "us");
}

TEST_F(VideoTest, ProgressCountsEveryDecodedFrame) {
  ASSERT_TRUE(Run(avi_, VideoOptions{}).ok());
  ASSERT_EQ(progress.size(), static_cast<std::size_t>(kFrames));
  for (std::size_t i = 0; i < progress.size(); ++i) {
    EXPECT_EQ(progress[i].first, static_cast<std::int64_t>(i) + 1);
    EXPECT_EQ(progress[i].second, kFrames);  // MJPG AVI carries its frame count
  }
}

TEST_F(VideoTest, FrameStrideIsHonoured) {
  VideoOptions options;
  options.frame_stride = 3;
  ASSERT_TRUE(Run(avi_, options).ok());
  EXPECT_EQ(reader.calls, 14);  // frames 0, 3, ..., 39
  ASSERT_EQ(passes.size(), 1u);
  EXPECT_EQ(passes[0].best_frame % 3, 0);
  EXPECT_EQ(passes[0].frames_seen, 14);
  EXPECT_EQ(passes[0].last_frame, 39);
  EXPECT_EQ(progress.size(), static_cast<std::size_t>(kFrames));
}

TEST_F(VideoTest, MaxFramesIsHonoured) {
  VideoOptions options;
  options.frame_stride = 3;
  options.max_frames = 10;
  ASSERT_TRUE(Run(avi_, options).ok());
  EXPECT_EQ(reader.calls, 4);  // frames 0, 3, 6, 9
  ASSERT_EQ(passes.size(), 1u);
  EXPECT_EQ(passes[0].last_frame, 9);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), std::make_pair(std::int64_t{10}, std::int64_t{10}));
}

TEST_F(VideoTest, PassesAreReportedBeforeTheStreamEnds) {
  // The plate leaves the picture after frame 19; with max_gap 3 its pass must come out while the
  // rest of the video is still being decoded.
  const std::string path = dir_ + "/leaves.avi";
  {
    cv::VideoWriter writer(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), kFps,
                           cv::Size(320, 240));
    ASSERT_TRUE(writer.isOpened());
    for (int i = 0; i < kFrames; ++i) {
      cv::Mat frame(240, 320, CV_8UC3, cv::Scalar(40, 40, 40));
      if (i < 20) {
        cv::rectangle(frame, cv::Rect(PlateX(i), 105, kPlateWidth, 30), cv::Scalar(255, 255, 255),
                      cv::FILLED);
      }
      writer.write(frame);
    }
  }
  VideoOptions options = EveryFrame();
  options.tracker.max_gap_frames = 3;
  std::int64_t decoded_when_reported = -1;
  const Status status = ReadVideo(
      &reader, path, options,
      [&](const PlatePass& pass) {
        passes.push_back(pass);
        decoded_when_reported = progress.empty() ? 0 : progress.back().first;
      },
      [&](std::int64_t done, std::int64_t total) { progress.emplace_back(done, total); });
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(passes.size(), 1u);
  EXPECT_EQ(passes[0].last_frame, 19);
  // Reported while analysing frame 23 (19 + 3 + 1), before its progress call.
  EXPECT_EQ(decoded_when_reported, 23);
}

TEST_F(VideoTest, MissingFileIsNotFound) {
  const Status status = Run(dir_ + "/nope.avi", VideoOptions{});
  EXPECT_EQ(status.code(), Status::Code::kNotFound);
  EXPECT_NE(status.message().find("no such file"), std::string::npos);
  EXPECT_EQ(reader.calls, 0);
}

TEST_F(VideoTest, DirectoryIsUnsupported) {
  EXPECT_EQ(Run(dir_, VideoOptions{}).code(), Status::Code::kUnsupported);
}

TEST_F(VideoTest, TextFileNamedAviIsRejected) {
  const std::string path = dir_ + "/notes.avi";
  WriteFile(path, "These are not the frames you are looking for.\n");
  const Status status = Run(path, VideoOptions{});
  // FFmpeg cannot probe it, so it never opens. (Without FFmpeg, a backend that opens anything and
  // then fails on the first frame would make this Corruption; this build has FFmpeg.)
  EXPECT_EQ(status.code(), Status::Code::kUnsupported) << status.ToString();
  EXPECT_NE(status.message().find("cannot open video"), std::string::npos);
  EXPECT_TRUE(passes.empty());
  EXPECT_EQ(reader.calls, 0);
}

TEST_F(VideoTest, VideoWithHeaderButNoFrameIsCorruption) {
  // Cut the AVI a few bytes into the first frame's chunk: the container parses, nothing decodes.
  std::string bytes;
  {
    std::ifstream in(avi_, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::size_t movi = bytes.find("movi");
  ASSERT_NE(movi, std::string::npos);
  std::filesystem::resize_file(avi_, movi + 4 + 8 + 16);  // "movi", chunk id + size, 16 bytes
  const Status status = Run(avi_, VideoOptions{});
  EXPECT_EQ(status.code(), Status::Code::kCorruption) << status.ToString();
  EXPECT_NE(status.message().find("no decodable frame"), std::string::npos);
  EXPECT_EQ(reader.calls, 0);
  EXPECT_TRUE(progress.empty());
}

TEST_F(VideoTest, TruncatedVideoReportsWhatItRead) {
  const auto size = std::filesystem::file_size(avi_);
  std::filesystem::resize_file(avi_, size * 6 / 10);
  const Status status = Run(avi_, EveryFrame());
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_FALSE(progress.empty());
  const std::int64_t decoded = progress.back().first;
  EXPECT_GT(decoded, 0);
  EXPECT_LT(decoded, kFrames);
  ASSERT_EQ(passes.size(), 1u);
  EXPECT_EQ(passes[0].best.text, "ABC123");
  EXPECT_EQ(passes[0].frames_seen, decoded);
}

TEST_F(VideoTest, ReaderErrorsOnSomeFramesAreSkipped) {
  reader.fail_every = 4;
  ASSERT_TRUE(Run(avi_, EveryFrame()).ok());
  ASSERT_EQ(passes.size(), 1u);
  EXPECT_EQ(passes[0].frames_seen, kFrames - 10);  // calls 0, 4, ..., 36 failed
}

TEST_F(VideoTest, ReaderFailingOnEveryFrameReturnsItsError) {
  reader.fail_every = 1;
  const Status status = Run(avi_, VideoOptions{});
  EXPECT_EQ(status.code(), Status::Code::kInternal);
  EXPECT_NE(status.message().find("fake reader failure"), std::string::npos);
  EXPECT_TRUE(passes.empty());
}

TEST_F(VideoTest, BadArgumentsAreInvalidArgument) {
  VideoOptions options;
  options.frame_stride = 0;
  EXPECT_EQ(Run(avi_, options).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ReadVideo(nullptr, avi_, VideoOptions{}, nullptr).code(),
            Status::Code::kInvalidArgument);
}

TEST_F(VideoTest, NullCallbacksAreAllowed) {
  EXPECT_TRUE(ReadVideo(&reader, avi_, VideoOptions{}, nullptr, nullptr).ok());
  EXPECT_EQ(reader.calls, 20);
}

TEST_F(VideoTest, LooksLikeVideo) {
  Env* env = Env::Default();
  EXPECT_TRUE(LooksLikeVideo(env, avi_));
  EXPECT_TRUE(LooksLikeVideo(env, "rtsp://x"));
  EXPECT_TRUE(LooksLikeVideo(env, "http://camera.local/stream.mjpg"));
  EXPECT_FALSE(LooksLikeVideo(env, dir_ + "/missing.mp4"));
  EXPECT_FALSE(LooksLikeVideo(env, dir_));

  const std::string png = dir_ + "/plate.png";
  ASSERT_TRUE(cv::imwrite(png, cv::Mat(32, 32, CV_8UC3, cv::Scalar(1, 2, 3))));
  EXPECT_FALSE(LooksLikeVideo(env, png));

  const std::string mp4 = dir_ + "/clip.mp4";
  WriteFile(mp4, std::string("\0\0\0\x20"
                             "ftypisom\0\0\0\0",
                             16));
  EXPECT_TRUE(LooksLikeVideo(env, mp4));
  const std::string mkv = dir_ + "/clip.mkv";
  WriteFile(mkv, std::string("\x1A\x45\xDF\xA3\x01\0\0\0", 8));
  EXPECT_TRUE(LooksLikeVideo(env, mkv));
  const std::string ts = dir_ + "/clip.ts";
  std::string packets(2 * 188, '\xFF');
  packets[0] = packets[188] = '\x47';
  WriteFile(ts, packets);
  EXPECT_TRUE(LooksLikeVideo(env, ts));

  // Images that share a video's first bytes: HEIC (ftyp box) and GIF (starts with 0x47 'G').
  const std::string heic = dir_ + "/photo.heic";
  WriteFile(heic, std::string("\0\0\0\x18"
                              "ftypheic\0\0\0\0",
                              16));
  EXPECT_FALSE(LooksLikeVideo(env, heic));
  const std::string gif = dir_ + "/anim.gif";
  WriteFile(gif, "GIF89a" + std::string(400, '\0'));
  EXPECT_FALSE(LooksLikeVideo(env, gif));
  const std::string empty = dir_ + "/empty.avi";
  WriteFile(empty, "");
  EXPECT_FALSE(LooksLikeVideo(env, empty));
}

}  // namespace
}  // namespace portcullis::plate
