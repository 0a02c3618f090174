// PassDetector: motion gate -> plate engine on the ROI -> PlateTracker -> one LaneEvent per pass.
//
// Where the time goes, and why the work is ordered this way (numbers in docs/lane-vision.md):
// the plate engine costs ~100-600 ms per full frame, a lane must analyse 15 frames a second on
// one core (66 ms each), and most frames are empty road. So:
//   1. the motion gate (a 160-px grey thumbnail of the ROI against a running background) decides
//      in well under a millisecond whether anything moved;
//   2. the engine sees only the ROI, and only on frames that moved (or right after a plate was
//      read, for a vehicle that stopped);
//   3. once a plate has been read confidently with the same text lock_after_reads times it is
//      "locked": followed by template matching on a small grey patch instead of being re-read,
//      with a re-read every reread_every frames to notice a second vehicle or a correction;
//   4. the tracker (plate_video.h) links reads into passes and votes on the text. A followed
//      (locked, not re-read) plate is fed to it as a read of the locked text at the tracker's
//      minimum confidence: it keeps the track alive and adds a little weight to the text that
//      was confidently read, but can never become the pass's best read.
// For each text the detector keeps the frame of its most confident read (the same rule the
// tracker uses to choose the best read), so when a pass ends its best frame and plate crop are at
// hand; every other frame is dropped as soon as it has been analysed.

#include "lane/pass_detector.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "lane/camera_internal.h"
#include "lane/hygiene.h"
#include "portcullis/face.h"
#include "portcullis/plate.h"

namespace portcullis::lane {

namespace {

using camera_internal::WipeBuffer;

// Wall-clock steps larger than this between consecutive analysed frames (beyond what the
// monotonic clock saw) mark the passes around them as clock_jump.
constexpr std::int64_t kClockJumpMicros = 1'000'000;
// Analysed frames whose timestamps are remembered (for pass start/end times): ~4.5 min at 15 fps.
constexpr std::size_t kTimestampHistory = 4096;
// Side of the face chips attached to events (the face engine's chip size).
constexpr int kFaceChipSide = 150;

cv::Rect ToRect(const plate::Box& b) { return {b.x, b.y, b.width, b.height}; }
plate::Box ToBox(const cv::Rect& r) { return {r.x, r.y, r.width, r.height}; }

double IoU(const cv::Rect& a, const cv::Rect& b) {
  const double inter = (a & b).area();
  const double uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0;
}

float Clamp01(double v) { return static_cast<float>(std::clamp(v, 0.0, 1.0)); }

// A face capture's quality in [0, 1]: size, sharpness and pose, each scored against the face
// engine's default acceptance limits (face.h: 24 px between the eyes, Laplacian variance 10,
// 35 degrees of yaw) with headroom, multiplied. A chip at the limits scores ~0.1-0.3; a large,
// sharp, frontal one ~1.
float FaceQuality(const face::FaceCapture& c) {
  const double size = c.inter_eye_pixels / 48.0;
  const double sharp = c.sharpness / 40.0;
  const double pose =
      1.0 - std::max({std::abs(c.yaw_degrees) / 45.0, std::abs(c.pitch_degrees) / 45.0,
                      std::abs(c.roll_degrees) / 45.0});
  return Clamp01(Clamp01(size) * Clamp01(sharp) * Clamp01(pose));
}

// JPEG-encodes into an attachment; the encoder's buffer is wiped.
Status EncodeJpeg(const cv::Mat& image, int quality, const std::string& name,
                  std::vector<Attachment>* out) {
  std::vector<uchar> buffer;
  bool ok = false;
  try {
    ok = cv::imencode(".jpg", image, buffer, {cv::IMWRITE_JPEG_QUALITY, quality});
  } catch (const cv::Exception& e) {
    WipeBuffer(&buffer);
    return Status::Internal(std::string("JPEG encode: ") + e.what());
  }
  if (!ok) {
    WipeBuffer(&buffer);
    return Status::Internal("JPEG encode failed");
  }
  Attachment attachment;
  attachment.name = name;
  attachment.content_type = "image/jpeg";
  attachment.bytes.assign(buffer.begin(), buffer.end());
  WipeBuffer(&buffer);
  out->push_back(std::move(attachment));
  return Status::Ok();
}

// The frame of a text's most confident read, kept until its pass is emitted.
struct BestFrame {
  std::int64_t frame = 0;
  float confidence = 0;
  plate::PlateRead read;  // in frame coordinates
  cv::Mat small;          // the frame downscaled to best_frame_max_side
  double scale = 1;       // small = frame * scale
  cv::Mat crop;           // the plate with a margin, full resolution
  cv::Mat windshield;     // lanes with faces: the area above the plate, full resolution
  cv::Rect windshield_rect;
  std::int64_t last_update = 0;  // last analysed frame that read this text

  void Wipe() {
    WipeMat(&small);
    WipeMat(&crop);
    WipeMat(&windshield);
    WipeString(&read.text);
    for (auto& c : read.candidates) WipeString(&c.text);
  }
};

// A plate being followed between reads.
struct Lock {
  std::string text;
  int confident_reads = 0;
  bool locked = false;
  plate::PlateRead read;  // the last real read, frame coordinates
  cv::Rect box;           // where the plate is now, frame coordinates
  cv::Mat patch;          // grey, downscaled by `scale`: the template we follow
  double scale = 1;
  std::int64_t last_seen = 0;  // analysed frame index of the last read or successful follow

  void Wipe() {
    WipeMat(&patch);
    WipeString(&text);
    WipeString(&read.text);
    for (auto& c : read.candidates) WipeString(&c.text);
  }
};

// The windshield above a plate: 4 plate widths wide, 3 high, centred on the plate.
cv::Rect WindshieldRect(const cv::Rect& plate, const cv::Size& frame) {
  const int w = 4 * plate.width;
  const int h = 3 * plate.width;
  const cv::Rect r(plate.x + plate.width / 2 - w / 2, plate.y - h, w, h);
  return r & cv::Rect(0, 0, frame.width, frame.height);
}

class PassDetectorImpl final : public PassDetector {
 public:
  PassDetectorImpl(const PassDetectorOptions& options, plate::PlateReader* plates,
                   face::FaceEngine* faces)
      : options_(options), plates_(plates), faces_(faces), tracker_(options.tracker) {}

  ~PassDetectorImpl() override {
    WipeMat(&background_);
    for (auto& [text, best] : best_) best.Wipe();
    for (Lock& lock : locks_) lock.Wipe();
  }
  PassDetectorImpl(const PassDetectorImpl&) = delete;
  PassDetectorImpl& operator=(const PassDetectorImpl&) = delete;

  Status Analyse(const Frame& frame, std::vector<LaneEvent>* events) override {
    if (events == nullptr) return Status::InvalidArgument("Analyse: null events");
    if (frame.bgr.empty() || frame.bgr.type() != CV_8UC3) {
      return Status::InvalidArgument("Analyse: expected a non-empty 8-bit BGR frame");
    }
    if (frame.bgr.size() != frame_size_) {
      // A new stream (or a camera reconfigured): start the background and locks afresh.
      frame_size_ = frame.bgr.size();
      WipeMat(&background_);
      DropLocks();
    }
    ++stats_.frames;
    NoteTimestamps(frame);
    const cv::Rect roi = Roi(frame.bgr.size());
    const bool moved = MotionGate(frame.bgr(roi));
    if (moved) ++stats_.motion_frames;

    // 1. Follow locked plates cheaply.
    std::vector<std::size_t> followed;
    for (std::size_t i = 0; i < locks_.size(); ++i) {
      if (locks_[i].locked && Follow(frame, roi, &locks_[i])) followed.push_back(i);
    }
    ExpireLocks(frame.index);

    // 2. Decide whether this frame deserves the plate engine.
    const bool plate_recent =
        last_read_frame_ >= 0 &&
        frame.index - last_read_frame_ <= Stride() * std::max(0, options_.read_after_plate_frames);
    bool read = moved || plate_recent;
    const bool any_locked =
        std::any_of(locks_.begin(), locks_.end(), [](const Lock& l) { return l.locked; });
    if (read && any_locked) read = ++frames_since_read_ >= std::max(1, options_.reread_every);
    if (!read && !followed.empty()) ++stats_.followed_frames;

    std::vector<plate::PlateRead> observed;
    if (read) {
      frames_since_read_ = 0;
      std::vector<plate::PlateRead> reads;
      PORTCULLIS_RETURN_IF_ERROR(ReadPlates(frame.bgr(roi), roi, &reads));
      for (plate::PlateRead& r : reads) {
        if (r.confidence < options_.tracker.min_confidence) continue;
        last_read_frame_ = frame.index;
        KeepIfBest(frame, r);
        UpdateLock(frame, r);
        observed.push_back(std::move(r));
      }
    }
    // Followed plates that were not read this frame count as seen, at the tracker's minimum
    // confidence (see the file comment).
    for (const std::size_t i : followed) {
      Lock& lock = locks_[i];
      if (lock.last_seen != frame.index) continue;  // lost or re-read
      const bool reread = std::any_of(observed.begin(), observed.end(), [&](const auto& r) {
        return r.text == lock.text || IoU(ToRect(r.box), lock.box) > 0.1;
      });
      if (reread) continue;
      plate::PlateRead seen = lock.read;
      seen.box = ToBox(lock.box);
      seen.confidence = options_.tracker.min_confidence;
      observed.push_back(std::move(seen));
    }

    // Every text the tracker sees this frame keeps its best frame alive until its pass ends.
    for (const plate::PlateRead& r : observed) {
      auto it = best_.find(r.text);
      if (it != best_.end()) it->second.last_update = frame.index;
    }
    std::vector<plate::PlatePass> finished;
    tracker_.Observe(frame.index, static_cast<double>(frame.monotonic_micros) / 1000.0, observed,
                     &finished);
    for (auto& r : observed) WipeString(&r.text);
    PORTCULLIS_RETURN_IF_ERROR(Emit(finished, events));
    PruneBest(frame.index);
    return Status::Ok();
  }

  Status Flush(std::vector<LaneEvent>* events) override {
    if (events == nullptr) return Status::InvalidArgument("Flush: null events");
    std::vector<plate::PlatePass> finished;
    tracker_.Flush(&finished);
    const Status status = Emit(finished, events);
    for (auto& [text, best] : best_) best.Wipe();
    best_.clear();
    DropLocks();
    return status;
  }

  [[nodiscard]] PassDetectorStats stats() const override { return stats_; }

 private:
  struct Stamp {
    std::int64_t index = 0;
    std::int64_t wall = 0;
    std::int64_t monotonic = 0;
  };

  // The stride the source applies, learned from frame indices (1 until two frames were seen).
  [[nodiscard]] std::int64_t Stride() const { return std::max<std::int64_t>(1, stride_); }

  [[nodiscard]] cv::Rect Roi(const cv::Size& size) const {
    const CameraConfig& c = options_.camera;
    const cv::Rect whole(0, 0, size.width, size.height);
    if (c.roi_w <= 0 || c.roi_h <= 0) return whole;
    const cv::Rect roi = cv::Rect(c.roi_x, c.roi_y, c.roi_w, c.roi_h) & whole;
    return roi.area() > 0 ? roi : whole;  // an ROI outside the picture: use all of it
  }

  void NoteTimestamps(const Frame& frame) {
    if (!timestamps_.empty()) {
      const Stamp& last = timestamps_.back();
      const std::int64_t step = frame.index - last.index;
      if (step > 0) stride_ = stride_ == 0 ? step : std::min(stride_, step);
      const std::int64_t wall_step = frame.wall_micros - last.wall;
      const std::int64_t mono_step = frame.monotonic_micros - last.monotonic;
      if (std::abs(wall_step - mono_step) > kClockJumpMicros) jumps_.push_back(frame.index);
    }
    timestamps_.push_back({frame.index, frame.wall_micros, frame.monotonic_micros});
    if (timestamps_.size() > kTimestampHistory) timestamps_.pop_front();
    while (!jumps_.empty() && jumps_.front() < timestamps_.front().index) jumps_.pop_front();
  }

  // True when enough of the ROI differs from the running background.
  bool MotionGate(const cv::Mat& roi) {
    const int side = std::max(16, options_.motion_side);
    const double f = std::min(1.0, static_cast<double>(side) / roi.cols);
    const cv::Size thumb_size(std::max(1, static_cast<int>(std::lround(roi.cols * f))),
                              std::max(1, static_cast<int>(std::lround(roi.rows * f))));
    cv::Mat thumb;
    cv::Mat grey;
    // Nearest-neighbour sampling: a 1080p area resize would cost more than everything else the
    // gate does; the blur below averages the sampling noise away.
    cv::resize(roi, thumb, thumb_size, 0, 0, cv::INTER_NEAREST);
    cv::cvtColor(thumb, grey, cv::COLOR_BGR2GRAY);
    WipeMat(&thumb);
    cv::GaussianBlur(grey, grey, cv::Size(5, 5), 0);
    bool moved = false;
    if (background_.size() != grey.size()) {
      WipeMat(&background_);
      grey.convertTo(background_, CV_32F);
    } else {
      cv::Mat background8;
      cv::Mat diff;
      background_.convertTo(background8, CV_8U);
      cv::absdiff(grey, background8, diff);
      const int changed = cv::countNonZero(diff > options_.motion_threshold);
      moved = changed > options_.motion_min_fraction * static_cast<double>(diff.total());
      cv::accumulateWeighted(grey, background_, options_.background_alpha);
      WipeMat(&background8);
      WipeMat(&diff);
    }
    WipeMat(&grey);
    return moved;
  }

  Status ReadPlates(const cv::Mat& roi_view, const cv::Rect& roi,
                    std::vector<plate::PlateRead>* reads) {
    ++stats_.plate_reads;
    const Status status = plates_->Read(roi_view, reads);
    if (!status.ok()) return status.WithContext("plate engine");
    for (plate::PlateRead& r : *reads) {
      r.box.x += roi.x;
      r.box.y += roi.y;
      for (plate::Point& p : r.polygon) {
        p.x += static_cast<float>(roi.x);
        p.y += static_cast<float>(roi.y);
      }
    }
    return Status::Ok();
  }

  // Keeps this frame for the read's text if it is the text's most confident read so far.
  void KeepIfBest(const Frame& frame, const plate::PlateRead& read) {
    auto it = best_.find(read.text);
    if (it != best_.end()) {
      it->second.last_update = frame.index;
      if (read.confidence <= it->second.confidence) return;  // strictly greater, as the tracker
      it->second.Wipe();
    }
    BestFrame best;
    best.frame = frame.index;
    best.confidence = read.confidence;
    best.read = read;
    best.last_update = frame.index;
    const int max_side = std::max(16, options_.best_frame_max_side);
    best.scale =
        std::min(1.0, static_cast<double>(max_side) / std::max(frame.bgr.cols, frame.bgr.rows));
    if (best.scale < 1.0) {
      cv::resize(frame.bgr, best.small, cv::Size(), best.scale, best.scale, cv::INTER_AREA);
    } else {
      best.small = frame.bgr.clone();
    }
    const cv::Rect box = ToRect(read.box);
    const int margin = std::max(2, box.height / 3);
    const cv::Rect crop =
        cv::Rect(box.x - margin, box.y - margin, box.width + 2 * margin, box.height + 2 * margin) &
        cv::Rect(0, 0, frame.bgr.cols, frame.bgr.rows);
    if (crop.area() > 0) best.crop = frame.bgr(crop).clone();
    if (options_.camera.faces && faces_ != nullptr) {
      best.windshield_rect = WindshieldRect(box, frame.bgr.size());
      if (best.windshield_rect.area() > 0) {
        best.windshield = frame.bgr(best.windshield_rect).clone();
      }
    }
    best_[read.text] = std::move(best);
  }

  // Counts confident reads per plate; locks a plate after lock_after_reads of the same text.
  void UpdateLock(const Frame& frame, const plate::PlateRead& read) {
    if (read.confidence < options_.lock_min_confidence) return;
    const cv::Rect box = ToRect(read.box) & cv::Rect(0, 0, frame.bgr.cols, frame.bgr.rows);
    if (box.area() <= 0) return;
    Lock* lock = nullptr;
    for (Lock& l : locks_) {
      if (l.text == read.text || IoU(l.box, box) > 0.1) {
        lock = &l;
        break;
      }
    }
    if (lock == nullptr) {
      locks_.emplace_back();
      lock = &locks_.back();
    }
    if (lock->text == read.text) {
      ++lock->confident_reads;
    } else {
      lock->text = read.text;
      lock->confident_reads = 1;
      lock->locked = false;
    }
    lock->read = read;
    lock->box = box;
    lock->last_seen = frame.index;
    if (lock->confident_reads >= std::max(1, options_.lock_after_reads)) lock->locked = true;
    // The template: the plate, grey, scaled so it is ~48 px wide (matching cost is tiny).
    lock->scale = std::min(1.0, 48.0 / std::max(1, box.width));
    WipeMat(&lock->patch);
    lock->patch = GreyScaled(frame.bgr(box), lock->scale);
  }

  static cv::Mat GreyScaled(const cv::Mat& bgr, double scale) {
    cv::Mat small;
    cv::Mat grey;
    cv::resize(bgr, small,
               cv::Size(std::max(1, static_cast<int>(std::lround(bgr.cols * scale))),
                        std::max(1, static_cast<int>(std::lround(bgr.rows * scale)))),
               0, 0, cv::INTER_AREA);
    cv::cvtColor(small, grey, cv::COLOR_BGR2GRAY);
    WipeMat(&small);
    return grey;
  }

  // Finds a locked plate again near where it was; false (and unlocks it) when it is gone.
  bool Follow(const Frame& frame, const cv::Rect& roi, Lock* lock) {
    const cv::Rect& b = lock->box;
    const cv::Rect window =
        cv::Rect(b.x - b.width, b.y - b.height * 2, b.width * 3, b.height * 5) & roi;
    bool found = false;
    if (window.width > b.width && window.height > b.height && !lock->patch.empty()) {
      cv::Mat area = GreyScaled(frame.bgr(window), lock->scale);
      if (area.cols >= lock->patch.cols && area.rows >= lock->patch.rows) {
        cv::Mat scores;
        cv::matchTemplate(area, lock->patch, scores, cv::TM_CCOEFF_NORMED);
        double best = 0;
        cv::Point at;
        cv::minMaxLoc(scores, nullptr, &best, nullptr, &at);
        if (best >= options_.follow_min_score) {
          const cv::Rect moved(window.x + static_cast<int>(std::lround(at.x / lock->scale)),
                               window.y + static_cast<int>(std::lround(at.y / lock->scale)),
                               b.width, b.height);
          const cv::Point centre(moved.x + moved.width / 2, moved.y + moved.height / 2);
          if (roi.contains(centre)) {
            const cv::Rect patch_rect(at.x, at.y, lock->patch.cols, lock->patch.rows);
            cv::Mat next = area(patch_rect).clone();
            WipeMat(&lock->patch);
            lock->patch = std::move(next);
            lock->box = moved;
            lock->last_seen = frame.index;
            found = true;
          }
        }
      }
      WipeMat(&area);
    }
    if (!found) lock->locked = false;  // read again from now on
    return found;
  }

  void ExpireLocks(std::int64_t index) {
    const std::int64_t horizon = Stride() * (options_.tracker.max_gap_frames + 1);
    for (auto it = locks_.begin(); it != locks_.end();) {
      if (!it->locked && index - it->last_seen > horizon) {
        it->Wipe();
        it = locks_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void DropLocks() {
    for (Lock& lock : locks_) lock.Wipe();
    locks_.clear();
  }

  // Best frames of texts no read has mentioned for longer than the tracker keeps a track open
  // belong to no open pass any more.
  void PruneBest(std::int64_t index) {
    const std::int64_t horizon = Stride() * (options_.tracker.max_gap_frames + 2);
    for (auto it = best_.begin(); it != best_.end();) {
      if (index - it->second.last_update > horizon &&
          std::none_of(locks_.begin(), locks_.end(),
                       [&](const Lock& l) { return l.locked && l.text == it->first; })) {
        it->second.Wipe();
        it = best_.erase(it);
      } else {
        ++it;
      }
    }
  }

  [[nodiscard]] const Stamp* FindStamp(std::int64_t index) const {
    auto it = std::lower_bound(timestamps_.begin(), timestamps_.end(), index,
                               [](const Stamp& s, std::int64_t i) { return s.index < i; });
    if (it == timestamps_.end()) return timestamps_.empty() ? nullptr : &timestamps_.back();
    return &*it;
  }

  Status Emit(std::vector<plate::PlatePass>& finished, std::vector<LaneEvent>* events) {
    for (plate::PlatePass& pass : finished) {
      LaneEvent event;
      const Status status = BuildEvent(pass, &event);
      WipeString(&pass.best.text);
      for (auto& c : pass.best.candidates) WipeString(&c.text);
      if (!status.ok()) {
        event.Wipe();
        return status;
      }
      ++stats_.passes;
      events->push_back(std::move(event));
    }
    return Status::Ok();
  }

  Status BuildEvent(const plate::PlatePass& pass, LaneEvent* event) {
    event->kind = EventKind::kVehiclePass;
    event->device = options_.device;
    event->lane = options_.lane;
    event->camera = options_.camera.id;
    if (const Stamp* first = FindStamp(pass.first_frame)) {
      event->started_wall_micros = first->wall;
    }
    if (const Stamp* last = FindStamp(pass.last_frame)) {
      event->ended_wall_micros = last->wall;
      event->monotonic_micros = last->monotonic;
    }
    event->clock_jump = std::any_of(jumps_.begin(), jumps_.end(), [&](std::int64_t j) {
      return j > pass.first_frame && j <= pass.last_frame;
    });

    LanePlate plate;
    plate.text = pass.best.text;
    plate.confidence = pass.best.confidence;
    plate.region = pass.best.region;
    plate.format = pass.best.format;
    plate.frames_seen = pass.frames_seen;
    for (const plate::Candidate& c : pass.best.candidates) {
      plate.candidates.emplace_back(c.text, c.confidence);
    }
    if (plate.candidates.empty() || plate.candidates.front().first != plate.text) {
      plate.candidates.insert(plate.candidates.begin(), {plate.text, plate.confidence});
    }

    auto it = best_.find(pass.best.text);
    if (it != best_.end()) {
      BestFrame& best = it->second;
      const cv::Rect box = ToRect(best.read.box);
      plate.box = {static_cast<int>(std::lround(box.x * best.scale)),
                   static_cast<int>(std::lround(box.y * best.scale)),
                   static_cast<int>(std::lround(box.width * best.scale)),
                   static_cast<int>(std::lround(box.height * best.scale))};
      PORTCULLIS_RETURN_IF_ERROR(
          EncodeJpeg(best.small, options_.jpeg_quality, "frame", &event->attachments));
      if (!best.crop.empty()) {
        PORTCULLIS_RETURN_IF_ERROR(
            EncodeJpeg(best.crop, options_.jpeg_quality, "plate-0", &event->attachments));
        plate.crop = "plate-0";
      }
      if (options_.camera.faces && faces_ != nullptr && !best.windshield.empty()) {
        PORTCULLIS_RETURN_IF_ERROR(AddFaces(best, event));
      }
      best.Wipe();
      best_.erase(it);
    }
    event->plates.push_back(std::move(plate));
    return Status::Ok();
  }

  // Faces in the windshield area of the best frame: chips (the face box with a quarter of
  // margin, scaled to the engine's 150 px chip) with a quality score. Boxes are in the "frame"
  // attachment's pixels.
  Status AddFaces(const BestFrame& best, LaneEvent* event) {
    ++stats_.face_runs;
    std::vector<face::FaceTemplate> templates;
    std::vector<face::FaceCapture> captures;
    const Status status = faces_->EmbedAll(best.windshield, &templates, &captures);
    for (face::FaceTemplate& t : templates) t.Wipe();
    if (!status.ok()) {
      // No face, or a face the engine could not embed: the pass is still a pass.
      return Status::Ok();
    }
    std::sort(captures.begin(), captures.end(),
              [](const auto& a, const auto& b) { return FaceQuality(a) > FaceQuality(b); });
    const cv::Rect area(0, 0, best.windshield.cols, best.windshield.rows);
    for (const face::FaceCapture& c : captures) {
      if (static_cast<int>(event->faces.size()) >= std::max(0, options_.max_faces)) break;
      const int margin = std::max(c.box.width, c.box.height) / 4;
      const cv::Rect chip_rect = cv::Rect(c.box.x - margin, c.box.y - margin,
                                          c.box.width + 2 * margin, c.box.height + 2 * margin) &
                                 area;
      if (chip_rect.area() <= 0) continue;
      cv::Mat chip;
      cv::resize(best.windshield(chip_rect), chip, cv::Size(kFaceChipSide, kFaceChipSide), 0, 0,
                 cv::INTER_AREA);
      const std::string name = "face-" + std::to_string(event->faces.size());
      const Status encoded = EncodeJpeg(chip, options_.jpeg_quality, name, &event->attachments);
      WipeMat(&chip);
      PORTCULLIS_RETURN_IF_ERROR(encoded);
      LaneFace f;
      const double s = best.scale;
      f.box = {static_cast<int>(std::lround((best.windshield_rect.x + c.box.x) * s)),
               static_cast<int>(std::lround((best.windshield_rect.y + c.box.y) * s)),
               static_cast<int>(std::lround(c.box.width * s)),
               static_cast<int>(std::lround(c.box.height * s))};
      f.quality = FaceQuality(c);
      f.capture = name;
      event->faces.push_back(std::move(f));
      ++stats_.faces;
    }
    return Status::Ok();
  }

  const PassDetectorOptions options_;
  plate::PlateReader* const plates_;
  face::FaceEngine* const faces_;
  plate::PlateTracker tracker_;
  PassDetectorStats stats_;

  cv::Size frame_size_;
  cv::Mat background_;  // CV_32F running average of the gate's thumbnails
  std::vector<Lock> locks_;
  std::map<std::string, BestFrame> best_;
  std::deque<Stamp> timestamps_;
  std::deque<std::int64_t> jumps_;  // analysed frames at which the wall clock jumped
  std::int64_t stride_ = 0;
  std::int64_t last_read_frame_ = -1;  // last frame with a plate read
  int frames_since_read_ = 0;
};

}  // namespace

Status PassDetector::Create(const PassDetectorOptions& options, plate::PlateReader* plates,
                            face::FaceEngine* faces, std::unique_ptr<PassDetector>* detector) {
  if (detector == nullptr) return Status::InvalidArgument("PassDetector: null output");
  if (plates == nullptr) return Status::InvalidArgument("PassDetector: a plate reader is required");
  if (options.camera.faces && faces == nullptr) {
    return Status::InvalidArgument("PassDetector: camera " + options.camera.id +
                                   " looks for faces but no face engine was given");
  }
  if (options.jpeg_quality < 1 || options.jpeg_quality > 100) {
    return Status::InvalidArgument("PassDetector: jpeg_quality must be in [1, 100]");
  }
  if (options.best_frame_max_side < 16) {
    return Status::InvalidArgument("PassDetector: best_frame_max_side must be at least 16");
  }
  if (options.motion_min_fraction < 0 || options.motion_min_fraction > 1 ||
      options.background_alpha <= 0 || options.background_alpha > 1) {
    return Status::InvalidArgument("PassDetector: motion gate options out of range");
  }
  *detector = std::make_unique<PassDetectorImpl>(options, plates, faces);
  return Status::Ok();
}

}  // namespace portcullis::lane
