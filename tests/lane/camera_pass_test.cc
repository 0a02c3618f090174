// PassDetector on synthetic lane clips (plate scenes driving across a static road) with the real
// plate engine: one event per vehicle with the right text, attachments that are real JPEGs, the
// motion gate keeping the engine idle on an empty road, locking cutting reads, faces through the
// windshield with the real face engine, and bad input refused.

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "camera_util.h"
#include "lane/pass_detector.h"
#include "portcullis/face.h"
#include "portcullis/plate.h"

namespace portcullis::lane {
namespace {

using testing::LaneClipSpec;
using testing::LaneClipTruth;
using testing::RenderLaneClip;

// Counts calls into the plate engine and can fail on demand.
class CountingReader : public plate::PlateReader {
 public:
  explicit CountingReader(plate::PlateReader* inner) : inner_(inner) {}
  Status Read(const cv::Mat& bgr, std::vector<plate::PlateRead>* plates) override {
    ++calls;
    if (fail) return Status::Internal("engine failure (test)");
    if (inner_ == nullptr) {
      plates->clear();
      return Status::Ok();
    }
    return inner_->Read(bgr, plates);
  }
  [[nodiscard]] std::vector<std::string> Regions() const override { return {"us"}; }
  int calls = 0;
  bool fail = false;

 private:
  plate::PlateReader* inner_;
};

plate::PlateReader* SharedReader() {
  static std::unique_ptr<plate::PlateReader> reader = [] {
    plate::PlateReaderOptions options;
    options.region = "us";
    options.detector_max_side = 480;
    options.second_look_scale = 0;  // as the lane agent runs it (src/lane/agent_parts.cc)
    std::unique_ptr<plate::PlateReader> r;
    const Status status = plate::PlateReader::Open(options, &r);
    EXPECT_TRUE(status.ok()) << status.ToString();
    return r;
  }();
  return reader.get();
}

PassDetectorOptions Options() {
  PassDetectorOptions options;
  options.device = "lane:7-a";
  options.lane = "7";
  options.camera.id = "cam0";
  options.best_frame_max_side = 320;
  return options;
}

constexpr std::int64_t kWallBase = std::int64_t{1'790'000'000} * 1'000'000;  // 2026
constexpr std::int64_t kFrameMicros = 66'667;                                // 15 fps

Frame MakeFrame(const cv::Mat& bgr, std::int64_t index, std::int64_t wall_offset = 0) {
  Frame frame;
  frame.bgr = bgr;
  frame.index = index;
  frame.monotonic_micros = 5'000'000 + index * kFrameMicros;
  frame.wall_micros = kWallBase + index * kFrameMicros + wall_offset;
  return frame;
}

// Runs a detector over frames (index i), collecting events (Flush at the end).
std::vector<LaneEvent> RunClip(PassDetector* detector, const std::vector<cv::Mat>& frames,
                               std::int64_t jump_at = -1, std::int64_t first_index = 0) {
  std::vector<LaneEvent> events;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const auto index = first_index + static_cast<std::int64_t>(i);
    const std::int64_t offset = jump_at >= 0 && index >= jump_at ? 3600LL * 1'000'000 : 0;
    const Status status = detector->Analyse(MakeFrame(frames[i], index, offset), &events);
    EXPECT_TRUE(status.ok()) << status.ToString();
  }
  EXPECT_TRUE(detector->Flush(&events).ok());
  return events;
}

std::unique_ptr<PassDetector> Make(const PassDetectorOptions& options, plate::PlateReader* reader,
                                   face::FaceEngine* faces = nullptr) {
  std::unique_ptr<PassDetector> detector;
  const Status status = PassDetector::Create(options, reader, faces, &detector);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return detector;
}

const Attachment* FindAttachment(const LaneEvent& event, const std::string& name) {
  for (const Attachment& a : event.attachments) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

cv::Mat DecodeJpeg(const Attachment& a) {
  EXPECT_EQ(a.content_type, "image/jpeg");
  EXPECT_GE(a.bytes.size(), 3u);
  EXPECT_EQ(a.bytes.substr(0, 3), std::string("\xFF\xD8\xFF"));
  const std::vector<uchar> bytes(a.bytes.begin(), a.bytes.end());
  return cv::imdecode(bytes, cv::IMREAD_COLOR);
}

TEST(PassDetectorTest, OneEventPerVehicleWithTheRightPlate) {
  ASSERT_NE(SharedReader(), nullptr);
  LaneClipSpec spec;
  spec.plates = {"ABC1234", "KTM5082", "HZR7391"};
  std::vector<LaneClipTruth> truth;
  const std::vector<cv::Mat> frames = RenderLaneClip(spec, &truth);
  CountingReader reader(SharedReader());
  auto detector = Make(Options(), &reader);
  const std::vector<LaneEvent> events = RunClip(detector.get(), frames);

  ASSERT_EQ(events.size(), 3u);
  for (std::size_t v = 0; v < events.size(); ++v) {
    const LaneEvent& e = events[v];
    SCOPED_TRACE(truth[v].plate);
    EXPECT_EQ(e.kind, EventKind::kVehiclePass);
    EXPECT_EQ(e.device, "lane:7-a");
    EXPECT_EQ(e.lane, "7");
    EXPECT_EQ(e.camera, "cam0");
    EXPECT_TRUE(e.event_id.empty());  // the agent assigns ids and sequence numbers
    ASSERT_EQ(e.plates.size(), 1u);
    const LanePlate& p = e.plates[0];
    EXPECT_EQ(p.text, truth[v].plate);
    EXPECT_GT(p.confidence, 0.5f);
    ASSERT_FALSE(p.candidates.empty());
    EXPECT_EQ(p.candidates[0].first, p.text);
    EXPECT_GE(p.frames_seen, 2);
    EXPECT_LE(p.frames_seen, spec.frames_per_vehicle);
    // The pass's times lie within the vehicle's frames (plus the tracker's gap).
    EXPECT_GE(e.started_wall_micros, kWallBase + truth[v].first_frame * kFrameMicros);
    EXPECT_LE(e.ended_wall_micros, kWallBase + truth[v].last_frame * kFrameMicros);
    EXPECT_LE(e.started_wall_micros, e.ended_wall_micros);
    EXPECT_FALSE(e.clock_jump);
    // Best frame: a JPEG, downscaled to best_frame_max_side, with the plate box inside it.
    const Attachment* frame = FindAttachment(e, "frame");
    ASSERT_NE(frame, nullptr);
    const cv::Mat best = DecodeJpeg(*frame);
    ASSERT_FALSE(best.empty());
    EXPECT_EQ(std::max(best.cols, best.rows), 320);
    EXPECT_GT(p.box[2], 0);
    EXPECT_LE(p.box[0] + p.box[2], best.cols);
    EXPECT_LE(p.box[1] + p.box[3], best.rows);
    // Plate crop: full resolution, about the plate's size.
    ASSERT_EQ(p.crop, "plate-0");
    const Attachment* crop = FindAttachment(e, "plate-0");
    ASSERT_NE(crop, nullptr);
    const cv::Mat crop_image = DecodeJpeg(*crop);
    EXPECT_GE(crop_image.cols, spec.plate_width * 8 / 10);
    EXPECT_LE(crop_image.cols, spec.plate_width * 2);
    EXPECT_TRUE(e.faces.empty());
  }
  const PassDetectorStats stats = detector->stats();
  std::cerr << "frames " << stats.frames << " motion " << stats.motion_frames << " reads "
            << stats.plate_reads << " followed " << stats.followed_frames << "\n";
  EXPECT_EQ(stats.frames, static_cast<std::int64_t>(frames.size()));
  EXPECT_EQ(stats.passes, 3);
  EXPECT_EQ(stats.plate_reads, reader.calls);
  // Empty road between vehicles is never read.
  EXPECT_LT(stats.plate_reads, stats.motion_frames + std::int64_t{3 * 4});
  EXPECT_LT(stats.motion_frames, stats.frames);
}

TEST(PassDetectorTest, FromAVideoFileThroughTheFrameSource) {
  // The composition the agent runs: FrameSource (MJPG file, stride 2) -> PassDetector.
  ASSERT_NE(SharedReader(), nullptr);
  LaneClipSpec spec;
  spec.plates = {"KTM5082", "ABC1234"};
  spec.frames_per_vehicle = 40;
  spec.gap_frames = 20;
  testing::TempDir dir;
  const std::string path = dir.path() + "/lane.avi";
  ASSERT_TRUE(testing::WriteMjpgAvi(path, RenderLaneClip(spec, nullptr), 30));
  PassDetectorOptions options = Options();
  options.camera.source = path;
  options.camera.frame_stride = 2;
  std::unique_ptr<FrameSource> source;
  ASSERT_TRUE(OpenFrameSource(options.camera, &source).ok());
  auto detector = Make(options, SharedReader());
  std::vector<LaneEvent> events;
  Status status;
  std::int64_t frames = 0;
  while (true) {
    Frame frame;
    status = source->Next(5000, &frame);
    if (!status.ok()) break;
    EXPECT_EQ(frame.index % 2, 0);
    ++frames;
    ASSERT_TRUE(detector->Analyse(frame, &events).ok());
  }
  EXPECT_EQ(status.code(), Status::Code::kNotFound);  // the file ended
  ASSERT_TRUE(detector->Flush(&events).ok());
  EXPECT_EQ(frames, (2 * 40 + 3 * 20) / 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].plates[0].text, "KTM5082");
  EXPECT_EQ(events[1].plates[0].text, "ABC1234");
  EXPECT_LT(events[0].ended_wall_micros, events[1].started_wall_micros);
  for (LaneEvent& e : events) {
    e.Wipe();
    EXPECT_TRUE(e.attachments.empty());
  }
}

TEST(PassDetectorTest, AStaticSceneNeverCallsThePlateEngine) {
  LaneClipSpec spec;
  spec.plates = {};
  spec.gap_frames = 60;
  std::vector<cv::Mat> frames = RenderLaneClip(spec, nullptr);
  // Sensor noise (a few grey levels) must not count as motion.
  cv::RNG rng(7);
  for (cv::Mat& f : frames) {
    cv::Mat noise(f.size(), CV_16SC3);
    rng.fill(noise, cv::RNG::NORMAL, 0, 3);
    cv::Mat noisy;
    f.convertTo(noisy, CV_16SC3);
    noisy += noise;
    noisy.convertTo(f, CV_8UC3);
  }
  ASSERT_EQ(frames.size(), 60u);
  CountingReader reader(nullptr);
  auto detector = Make(Options(), &reader);
  const std::vector<LaneEvent> events = RunClip(detector.get(), frames);
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(reader.calls, 0);
  EXPECT_EQ(detector->stats().plate_reads, 0);
  EXPECT_EQ(detector->stats().motion_frames, 0);
  EXPECT_EQ(detector->stats().frames, 60);
}

TEST(PassDetectorTest, MotionOutsideTheRoiIsIgnored) {
  LaneClipSpec spec;
  spec.plates = {};
  spec.gap_frames = 30;
  std::vector<cv::Mat> frames = RenderLaneClip(spec, nullptr);
  for (std::size_t i = 0; i < frames.size(); ++i) {  // a flashing sign in the top-left corner
    cv::rectangle(frames[i], cv::Rect(10, 10, 120, 80),
                  i % 2 != 0U ? cv::Scalar(255, 255, 255) : cv::Scalar(0, 0, 0), cv::FILLED);
  }
  CountingReader reader(nullptr);
  PassDetectorOptions options = Options();
  options.camera.roi_x = 200;
  options.camera.roi_y = 100;
  options.camera.roi_w = 440;
  options.camera.roi_h = 260;
  auto detector = Make(options, &reader);
  RunClip(detector.get(), frames);
  EXPECT_EQ(reader.calls, 0);
  // The same clip without the ROI: the sign is motion, and the engine is asked.
  CountingReader whole_reader(nullptr);
  auto whole = Make(Options(), &whole_reader);
  RunClip(whole.get(), frames);
  EXPECT_GT(whole_reader.calls, 20);
}

TEST(PassDetectorTest, LockedPlatesAreFollowedInsteadOfReRead) {
  ASSERT_NE(SharedReader(), nullptr);
  LaneClipSpec spec;
  spec.plates = {"ABC1234"};
  spec.frames_per_vehicle = 32;
  const std::vector<cv::Mat> frames = RenderLaneClip(spec, nullptr);

  CountingReader locking_reader(SharedReader());
  auto locking = Make(Options(), &locking_reader);
  const std::vector<LaneEvent> locked_events = RunClip(locking.get(), frames);

  PassDetectorOptions never = Options();
  never.lock_after_reads = 1000;
  CountingReader plain_reader(SharedReader());
  auto plain = Make(never, &plain_reader);
  const std::vector<LaneEvent> plain_events = RunClip(plain.get(), frames);

  ASSERT_EQ(locked_events.size(), 1u);
  ASSERT_EQ(plain_events.size(), 1u);
  EXPECT_EQ(locked_events[0].plates[0].text, "ABC1234");
  EXPECT_EQ(plain_events[0].plates[0].text, "ABC1234");
  EXPECT_GT(locking->stats().followed_frames, 10);
  EXPECT_EQ(plain->stats().followed_frames, 0);
  // Locking must save at least half of the engine calls on this pass.
  EXPECT_LT(locking_reader.calls * 2, plain_reader.calls)
      << locking_reader.calls << " vs " << plain_reader.calls;
}

TEST(PassDetectorTest, AWallClockJumpDuringAPassIsFlagged) {
  ASSERT_NE(SharedReader(), nullptr);
  LaneClipSpec spec;
  spec.plates = {"ABC1234"};
  std::vector<LaneClipTruth> truth;
  const std::vector<cv::Mat> frames = RenderLaneClip(spec, &truth);
  auto detector = Make(Options(), SharedReader());
  const std::vector<LaneEvent> events =
      RunClip(detector.get(), frames, (truth[0].first_frame + truth[0].last_frame) / 2);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].clock_jump);
}

TEST(PassDetectorTest, FacesThroughTheWindshieldAreAttached) {
  ASSERT_NE(SharedReader(), nullptr);
  const cv::Mat face_image =
      cv::imread("/usr/share/doc/libdlib19.1/examples/johns/John_Salley/000179_02159509.jpg");
  ASSERT_FALSE(face_image.empty()) << "libdlib-data examples are a test dependency";
  std::unique_ptr<face::FaceEngine> engine;
  const Status opened = face::FaceEngine::Open(face::FaceEngineOptions{}, &engine);
  ASSERT_TRUE(opened.ok()) << opened.ToString();

  LaneClipSpec spec;
  spec.width = 800;
  spec.height = 600;
  spec.plates = {"ABC1234"};
  spec.face = face_image;
  const std::vector<cv::Mat> frames = RenderLaneClip(spec, nullptr);
  PassDetectorOptions options = Options();
  options.camera.faces = true;
  options.best_frame_max_side = 800;
  auto detector = Make(options, SharedReader(), engine.get());
  const std::vector<LaneEvent> events = RunClip(detector.get(), frames);

  ASSERT_EQ(events.size(), 1u);
  const LaneEvent& e = events[0];
  EXPECT_EQ(e.plates[0].text, "ABC1234");
  ASSERT_GE(e.faces.size(), 1u);
  EXPECT_EQ(detector->stats().face_runs, 1);
  const LaneFace& f = e.faces[0];
  EXPECT_GT(f.quality, 0.0f);
  EXPECT_LE(f.quality, 1.0f);
  // The face is above the plate in the best frame.
  EXPECT_LT(f.box[1] + f.box[3], e.plates[0].box[1] + e.plates[0].box[3]);
  ASSERT_EQ(f.capture, "face-0");
  const Attachment* chip = FindAttachment(e, "face-0");
  ASSERT_NE(chip, nullptr);
  const cv::Mat chip_image = DecodeJpeg(*chip);
  EXPECT_EQ(chip_image.cols, 150);
  EXPECT_EQ(chip_image.rows, 150);
  // The chip holds the same person: the engine embeds it close to the original photo.
  face::FaceTemplate from_chip;
  face::FaceTemplate from_photo;
  ASSERT_TRUE(engine->Enrol(chip_image, &from_chip).ok());
  ASSERT_TRUE(engine->Enrol(face_image, &from_photo).ok());
  EXPECT_TRUE(engine->Verify(from_chip, from_photo).match);
}

TEST(PassDetectorTest, BadInputIsRefused) {
  CountingReader reader(nullptr);
  std::unique_ptr<PassDetector> detector;
  EXPECT_EQ(PassDetector::Create(Options(), nullptr, nullptr, &detector).code(),
            Status::Code::kInvalidArgument);
  PassDetectorOptions faces = Options();
  faces.camera.faces = true;
  EXPECT_EQ(PassDetector::Create(faces, &reader, nullptr, &detector).code(),
            Status::Code::kInvalidArgument);
  PassDetectorOptions quality = Options();
  quality.jpeg_quality = 0;
  EXPECT_EQ(PassDetector::Create(quality, &reader, nullptr, &detector).code(),
            Status::Code::kInvalidArgument);

  detector = Make(Options(), &reader);
  std::vector<LaneEvent> events;
  EXPECT_EQ(detector->Analyse(Frame{}, &events).code(), Status::Code::kInvalidArgument);
  Frame grey = MakeFrame(cv::Mat(48, 64, CV_8UC1, cv::Scalar(3)), 0);
  EXPECT_EQ(detector->Analyse(grey, &events).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(events.empty());
}

TEST(PassDetectorTest, AnEngineFailureIsAStatusNotACrash) {
  LaneClipSpec spec;
  spec.plates = {"ABC1234"};
  const std::vector<cv::Mat> frames = RenderLaneClip(spec, nullptr);
  CountingReader reader(SharedReader());
  reader.fail = true;
  auto detector = Make(Options(), &reader);
  std::vector<LaneEvent> events;
  int failures = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const Status s = detector->Analyse(MakeFrame(frames[i], static_cast<std::int64_t>(i)), &events);
    if (!s.ok()) {
      ++failures;
      EXPECT_EQ(s.code(), Status::Code::kInternal);
    }
  }
  EXPECT_GT(failures, 0);
  EXPECT_TRUE(events.empty());
  // The engine recovers: the detector carries on with the next frames.
  reader.fail = false;
  const std::vector<LaneEvent> later =
      RunClip(detector.get(), frames, -1, static_cast<std::int64_t>(frames.size()));
  EXPECT_EQ(later.size(), 1u);
}

}  // namespace
}  // namespace portcullis::lane
