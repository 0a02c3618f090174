// FaceEngine: detection (dlib HOG), 68 landmarks, quality gate, alignment to dlib's 150x150 chip,
// embedding (FaceNet) and comparison.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <memory>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "face/face_net.h"
#include "portcullis/face.h"

namespace portcullis::face {

const char* QualityIssueName(QualityIssue issue) {
  switch (issue) {
    case QualityIssue::kNone:
      return "none";
    case QualityIssue::kNoFace:
      return "no_face";
    case QualityIssue::kSeveralFaces:
      return "several_faces";
    case QualityIssue::kFaceTooSmall:
      return "face_too_small";
    case QualityIssue::kTooBlurred:
      return "too_blurred";
    case QualityIssue::kNotFrontal:
      return "not_frontal";
    case QualityIssue::kTooDark:
      return "too_dark";
  }
  return "unknown";
}

float SimilarityFromDistance(float distance) {
  // A logistic centred on the calibrated default threshold: 0.5 there, ~0.9 at distance 0.38,
  // ~0.1 at 0.82. Fixed (not moved by --threshold) so that similarities stay comparable.
  const float z = (distance - kDefaultMatchThreshold) / 0.1f;
  return 1.0f / (1.0f + std::exp(z));
}

namespace {

using internal::kChipSize;

std::string FromEnvOr(const std::string& value, const char* env_name, const char* fallback) {
  if (!value.empty()) return value;
  const char* env = std::getenv(env_name);  // NOLINT(concurrency-mt-unsafe): read at open time
  if (env != nullptr && *env != '\0') return env;
  return fallback;
}

constexpr const char* kDefaultLandmarks = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

// Quality defaults: accept an ICAO-like document photo (inter-eye >= ~50 px, frontal, sharp) and
// a gate capture at 640x480, refuse a face too small to carry identity, a profile, a smear.
constexpr float kDefaultMinInterEye = 24.0f;
constexpr float kDefaultMinSharpness = 10.0f;  // johns chips: 18-600
constexpr float kDefaultMaxYaw = 35.0f;
constexpr float kDefaultMaxPitch = 35.0f;  // a rough landmark proxy: generous
constexpr float kDefaultMaxRoll = 30.0f;
constexpr float kMinChipBrightness = 40.0f;  // mean grey of the chip (0-255)
// A second face counts as a rival when its box is at least this fraction of the largest one's.
constexpr double kRivalAreaRatio = 0.5;
// Long side above which detection runs on a downscaled copy (HOG's cost grows with pixels).
constexpr int kMaxDetectSide = 1280;
// Nose tip between eye line and mouth line on a frontal face (measured on dlib's johns chips).
constexpr double kFrontalPitchRatio = 0.55;

float Or(float value, float fallback) { return value > 0 ? value : fallback; }

dlib::point Mid(const dlib::full_object_detection& s, unsigned long from, unsigned long to) {
  double x = 0;
  double y = 0;
  for (unsigned long i = from; i <= to; ++i) {
    x += static_cast<double>(s.part(i).x());
    y += static_cast<double>(s.part(i).y());
  }
  const double n = static_cast<double>(to - from + 1);
  return {static_cast<long>(std::lround(x / n)), static_cast<long>(std::lround(y / n))};
}

struct Candidate {
  dlib::rectangle rect;  // in working-image pixels
  double score = 0;
};

class FaceEngineImpl final : public FaceEngine {
 public:
  FaceEngineImpl(const FaceEngineOptions& options, std::unique_ptr<internal::FaceNet> net,
                 dlib::shape_predictor predictor)
      : net_(std::move(net)), predictor_(std::move(predictor)) {
    limits_ = options.quality;
    limits_.min_inter_eye_pixels = Or(limits_.min_inter_eye_pixels, kDefaultMinInterEye);
    limits_.min_sharpness = Or(limits_.min_sharpness, kDefaultMinSharpness);
    limits_.max_yaw_degrees = Or(limits_.max_yaw_degrees, kDefaultMaxYaw);
    limits_.max_pitch_degrees = Or(limits_.max_pitch_degrees, kDefaultMaxPitch);
    limits_.max_roll_degrees = Or(limits_.max_roll_degrees, kDefaultMaxRoll);
    threshold_ = Or(options.match_threshold, kDefaultMatchThreshold);
    upsample_small_ = options.upsample_small_images;
    jitter_ = options.jitter;
    min_face_pixels_ = options.min_face_pixels;
    detector_ = dlib::get_frontal_face_detector();
  }

  Status Enrol(const cv::Mat& bgr, FaceTemplate* out, FaceCapture* capture) override {
    FaceCapture local;
    FaceCapture* cap = capture != nullptr ? capture : &local;
    *cap = FaceCapture{};
    try {
      Working w;
      PORTCULLIS_RETURN_IF_ERROR(Detect(bgr, &w));
      if (w.faces.empty()) {
        cap->issue = QualityIssue::kNoFace;
        return Status::InvalidArgument("no face found");
      }
      std::sort(w.faces.begin(), w.faces.end(), [](const Candidate& a, const Candidate& b) {
        return a.rect.area() > b.rect.area();
      });
      const bool rival =
          w.faces.size() > 1 && static_cast<double>(w.faces[1].rect.area()) >=
                                    kRivalAreaRatio * static_cast<double>(w.faces[0].rect.area());
      cv::Mat chip;
      Measure(w, w.faces[0], cap, &chip);
      if (rival) cap->issue = QualityIssue::kSeveralFaces;
      if (cap->issue != QualityIssue::kNone && limits_.enforce) {
        return Status::InvalidArgument(std::string("capture refused: ") +
                                       QualityIssueName(cap->issue));
      }
      return net_->Embed(chip, out, jitter_);
    } catch (const std::exception& e) {
      return Status::Internal(std::string("face detection failed: ") + e.what());
    }
  }

  Status EmbedAll(const cv::Mat& bgr, std::vector<FaceTemplate>* templates,
                  std::vector<FaceCapture>* captures) override {
    templates->clear();
    captures->clear();
    try {
      Working w;
      PORTCULLIS_RETURN_IF_ERROR(Detect(bgr, &w));
      for (const Candidate& c : w.faces) {
        FaceCapture cap;
        cv::Mat chip;
        Measure(w, c, &cap, &chip);
        FaceTemplate t;
        PORTCULLIS_RETURN_IF_ERROR(net_->Embed(chip, &t, jitter_));
        templates->push_back(std::move(t));
        captures->push_back(cap);
      }
    } catch (const std::exception& e) {
      return Status::Internal(std::string("face detection failed: ") + e.what());
    }
    return Status::Ok();
  }

  Status EmbedRegion(const cv::Mat& bgr, const FaceBox& box, FaceTemplate* out,
                     FaceCapture* capture) override {
    if (bgr.empty() || bgr.type() != CV_8UC3) {
      return Status::InvalidArgument("expected an 8-bit BGR image");
    }
    if (box.width <= 0 || box.height <= 0) return Status::InvalidArgument("empty face box");
    FaceCapture local;
    try {
      Working w;
      w.bgr = bgr;
      cv::cvtColor(bgr, w.grey, cv::COLOR_BGR2GRAY);
      Candidate c;
      c.rect = dlib::rectangle(box.x, box.y, box.x + box.width - 1, box.y + box.height - 1);
      Measure(w, c, capture != nullptr ? capture : &local, &w.scratch);
      return net_->Embed(w.scratch, out, jitter_);
    } catch (const std::exception& e) {
      return Status::Internal(std::string("face alignment failed: ") + e.what());
    }
  }

  Status EmbedChip(const cv::Mat& chip_bgr, FaceTemplate* out) override {
    return net_->Embed(chip_bgr, out, jitter_);
  }

  [[nodiscard]] VerifyResult Verify(const FaceTemplate& a, const FaceTemplate& b) const override {
    VerifyResult r;
    r.distance = Distance(a, b);
    r.similarity = SimilarityFromDistance(r.distance);
    r.threshold = threshold_;
    r.match = r.distance <= threshold_;
    return r;
  }

  [[nodiscard]] float match_threshold() const override { return threshold_; }

  Status Detect(const cv::Mat& bgr, std::vector<FaceBox>* boxes, DetectStats* stats) override {
    boxes->clear();
    try {
      Working w;
      PORTCULLIS_RETURN_IF_ERROR(Detect(bgr, &w));
      for (const Candidate& c : w.faces) boxes->push_back(ToOriginal(w, c.rect));
      if (stats != nullptr) {
        stats->passes = w.passes;
        stats->working_width = w.bgr.cols;
        stats->detection_width = w.detection_width;
        stats->working_height = w.bgr.rows;
      }
    } catch (const std::exception& e) {
      return Status::Internal(std::string("face detection failed: ") + e.what());
    }
    return Status::Ok();
  }

 private:
  // The image detection, landmarks and alignment run on: the capture, possibly downscaled (very
  // large inputs), padded and/or upsampled (tight crops and small faces).
  struct Working {
    cv::Mat bgr;
    cv::Mat grey;
    double scale = 1;  // working pixels per original pixel
    int pad = 0;       // working pixels added on each side (after scaling)
    std::vector<Candidate> faces;
    int passes = 0;
    int detection_width = 0;
    cv::Mat scratch;
  };

  FaceBox ToOriginal(const Working& w, const dlib::rectangle& r) const {
    FaceBox b;
    b.x = static_cast<int>(std::lround(static_cast<double>(r.left() - w.pad) / w.scale));
    b.y = static_cast<int>(std::lround(static_cast<double>(r.top() - w.pad) / w.scale));
    b.width = static_cast<int>(std::lround(static_cast<double>(r.width()) / w.scale));
    b.height = static_cast<int>(std::lround(static_cast<double>(r.height()) / w.scale));
    return b;
  }

  // HOG on the working image, or on a copy shrunk so that a min_face_pixels face (in the
  // caller's pixels) fills HOG's 80 px window; boxes come back in working pixels either way.
  void RunDetector(Working* w) {
    ++w->passes;
    constexpr double kHogWindow = 80;
    const double factor =
        min_face_pixels_ > 0 ? std::min(1.0, kHogWindow / (min_face_pixels_ * w->scale)) : 1.0;
    cv::Mat shrunk;
    if (factor < 1) cv::resize(w->grey, shrunk, cv::Size(), factor, factor, cv::INTER_AREA);
    const cv::Mat& detect_on = factor < 1 ? shrunk : w->grey;
    w->detection_width = detect_on.cols;
    dlib::cv_image<unsigned char> img(detect_on);
    std::vector<dlib::rect_detection> dets;
    detector_(img, dets, 0.0);
    w->faces.clear();
    // The factor actually applied per axis (cv::resize rounds the size).
    const double fx = static_cast<double>(detect_on.cols) / w->grey.cols;
    const double fy = static_cast<double>(detect_on.rows) / w->grey.rows;
    for (const auto& d : dets) {
      const dlib::rectangle r(std::lround(static_cast<double>(d.rect.left()) / fx),
                              std::lround(static_cast<double>(d.rect.top()) / fy),
                              std::lround(static_cast<double>(d.rect.right()) / fx),
                              std::lround(static_cast<double>(d.rect.bottom()) / fy));
      w->faces.push_back({r, d.detection_confidence});
    }
  }

  // Tries the cheapest view first: native size (a gate capture) or, for a small image, 2x
  // upsampled and then native; then, only if nothing was found, a padded (a tight document crop
  // whose face touches the border) and 2x upsampled (faces under HOG's 80 px window) copy.
  Status Detect(const cv::Mat& bgr, Working* w) {
    if (bgr.empty() || bgr.type() != CV_8UC3) {
      return Status::InvalidArgument("expected a non-empty 8-bit BGR image");
    }
    const int long_side = std::max(bgr.cols, bgr.rows);
    cv::Mat base = bgr;
    double base_scale = 1;
    if (long_side > kMaxDetectSide) {
      base_scale = static_cast<double>(kMaxDetectSide) / long_side;
      cv::resize(bgr, base, cv::Size(), base_scale, base_scale, cv::INTER_AREA);
    }
    if (upsample_small_ && long_side <= kSmallImageSide) {
      cv::resize(base, w->bgr, cv::Size(), 2.0, 2.0, cv::INTER_LINEAR);
      w->scale = 2 * base_scale;
    } else {
      w->bgr = base;
      w->scale = base_scale;
    }
    cv::cvtColor(w->bgr, w->grey, cv::COLOR_BGR2GRAY);
    RunDetector(w);
    if (!w->faces.empty()) return Status::Ok();
    if (w->scale != base_scale) {
      // HOG's pyramid does not find every face on the upsampled copy that it finds at native size
      // (7 of LFW's 3 321 pair images); the native pass is cheap on a small image.
      w->bgr = base;
      w->scale = base_scale;
      cv::cvtColor(w->bgr, w->grey, cv::COLOR_BGR2GRAY);
      RunDetector(w);
      if (!w->faces.empty()) return Status::Ok();
    }

    // Next view: pad by a quarter of the long side with the image's mean colour, and upsample
    // 2x when the padded image is small enough for that to stay cheap.
    const int pad = std::max(base.cols, base.rows) / 4;
    const cv::Scalar fill = cv::mean(base);
    cv::Mat padded;
    cv::copyMakeBorder(base, padded, pad, pad, pad, pad, cv::BORDER_CONSTANT, fill);
    const double up = std::max(padded.cols, padded.rows) <= 800 ? 2.0 : 1.0;
    if (up > 1) {
      cv::resize(padded, w->bgr, cv::Size(), up, up, cv::INTER_LINEAR);
    } else {
      w->bgr = padded;
    }
    w->scale = base_scale * up;
    w->pad = static_cast<int>(std::lround(pad * up));
    cv::cvtColor(w->bgr, w->grey, cv::COLOR_BGR2GRAY);
    RunDetector(w);
    return Status::Ok();
  }

  // Landmarks, pose, size, the aligned chip and its sharpness/brightness; sets capture->issue to
  // the first limit broken (reported even when limits are not enforced).
  void Measure(const Working& w, const Candidate& c, FaceCapture* cap, cv::Mat* chip) {
    dlib::cv_image<unsigned char> grey(w.grey);
    const dlib::full_object_detection shape = predictor_(grey, c.rect);
    cap->box = ToOriginal(w, c.rect);
    cap->detection_score = static_cast<float>(c.score);

    const dlib::point left_eye = Mid(shape, 36, 41);
    const dlib::point right_eye = Mid(shape, 42, 47);
    const double ex = static_cast<double>(right_eye.x() - left_eye.x());
    const double ey = static_cast<double>(right_eye.y() - left_eye.y());
    const double eye_px = std::hypot(ex, ey);
    cap->inter_eye_pixels = static_cast<float>(eye_px / w.scale);
    const double roll = std::atan2(ey, ex);
    cap->roll_degrees = static_cast<float>(roll * 180.0 / std::numbers::pi);
    // Undo roll, then read yaw from where the nose tip sits between the jaw ends, and pitch from
    // where it sits between the eye line and the mouth (both ~0.5-0.6 on a frontal face).
    const double cr = std::cos(-roll);
    const double sr = std::sin(-roll);
    auto rot = [&](const dlib::point& p) {
      const double x = static_cast<double>(p.x());
      const double y = static_cast<double>(p.y());
      return cv::Point2d(x * cr - y * sr, x * sr + y * cr);
    };
    const cv::Point2d nose = rot(shape.part(30));
    const cv::Point2d jaw_l = rot(shape.part(0));
    const cv::Point2d jaw_r = rot(shape.part(16));
    const cv::Point2d eyes = (rot(left_eye) + rot(right_eye)) * 0.5;
    const cv::Point2d mouth = (rot(shape.part(48)) + rot(shape.part(54))) * 0.5;
    const double jaw_span = jaw_r.x - jaw_l.x;
    const double yaw_ratio = jaw_span > 1 ? (nose.x - jaw_l.x) / jaw_span : 0.5;
    cap->yaw_degrees = static_cast<float>(std::asin(std::clamp(2 * yaw_ratio - 1, -1.0, 1.0)) *
                                          180.0 / std::numbers::pi);
    const double face_height = mouth.y - eyes.y;
    const double pitch_ratio =
        face_height > 1 ? (nose.y - eyes.y) / face_height : kFrontalPitchRatio;
    cap->pitch_degrees = static_cast<float>(
        std::asin(std::clamp((pitch_ratio - kFrontalPitchRatio) * 2.5, -1.0, 1.0)) * 180.0 /
        std::numbers::pi);

    dlib::cv_image<dlib::bgr_pixel> src(w.bgr);
    dlib::matrix<dlib::bgr_pixel> aligned;
    dlib::extract_image_chip(src, dlib::get_face_chip_details(shape, kChipSize, 0.25), aligned);
    chip->create(kChipSize, kChipSize, CV_8UC3);
    for (int y = 0; y < kChipSize; ++y) {
      auto* row = chip->ptr<cv::Vec3b>(y);
      for (int x = 0; x < kChipSize; ++x) {
        const dlib::bgr_pixel& p = aligned(y, x);
        row[x] = cv::Vec3b(p.blue, p.green, p.red);
      }
    }
    cv::Mat grey_chip;
    cv::Mat lap;
    cv::cvtColor(*chip, grey_chip, cv::COLOR_BGR2GRAY);
    // Sharpness and brightness on the chip's central face region (no background, no padding).
    const cv::Rect inner(kChipSize / 5, kChipSize / 5, kChipSize * 3 / 5, kChipSize * 3 / 5);
    cv::Laplacian(grey_chip(inner), lap, CV_64F);
    cv::Scalar mean;
    cv::Scalar stddev;
    cv::meanStdDev(lap, mean, stddev);
    cap->sharpness = static_cast<float>(stddev[0] * stddev[0]);
    const double brightness = cv::mean(grey_chip(inner))[0];

    cap->issue = QualityIssue::kNone;
    if (cap->inter_eye_pixels < limits_.min_inter_eye_pixels) {
      cap->issue = QualityIssue::kFaceTooSmall;
    } else if (std::abs(cap->yaw_degrees) > limits_.max_yaw_degrees ||
               std::abs(cap->pitch_degrees) > limits_.max_pitch_degrees ||
               std::abs(cap->roll_degrees) > limits_.max_roll_degrees) {
      cap->issue = QualityIssue::kNotFrontal;
    } else if (brightness < kMinChipBrightness) {
      // Before sharpness: an under-exposed chip also has a low Laplacian variance.
      cap->issue = QualityIssue::kTooDark;
    } else if (cap->sharpness < limits_.min_sharpness) {
      cap->issue = QualityIssue::kTooBlurred;
    }
  }

  std::unique_ptr<internal::FaceNet> net_;
  dlib::shape_predictor predictor_;
  dlib::frontal_face_detector detector_;
  QualityLimits limits_;
  float threshold_ = kDefaultMatchThreshold;
  bool upsample_small_ = true;
  int jitter_ = 0;
  int min_face_pixels_ = 0;
};

}  // namespace

bool SetBlasThreads(int threads) { return internal::SetBlasThreads(threads); }

Status FaceEngine::Open(const FaceEngineOptions& options, std::unique_ptr<FaceEngine>* engine) {
  if (options.jitter < 0 || options.jitter > kMaxJitter) {
    return Status::InvalidArgument("jitter must be in 0.." + std::to_string(kMaxJitter));
  }
  if (options.min_face_pixels < 0 || options.min_face_pixels > kMaxMinFacePixels) {
    return Status::InvalidArgument("min_face_pixels must be in 0.." +
                                   std::to_string(kMaxMinFacePixels));
  }
  const std::string model_dir =
      FromEnvOr(options.model_dir, "PORTCULLIS_MODEL_DIR", PORTCULLIS_DEFAULT_MODEL_DIR) + "/face";
  std::unique_ptr<internal::FaceNet> net;
  PORTCULLIS_RETURN_IF_ERROR(internal::FaceNet::Load(Env::Default(), model_dir, &net));
  const std::string landmarks =
      options.landmarks_path.empty() ? kDefaultLandmarks : options.landmarks_path;
  dlib::shape_predictor predictor;
  try {
    dlib::deserialize(landmarks) >> predictor;
  } catch (const std::exception& e) {
    Status missing = Env::Default()->KindOf(landmarks) == FileKind::kMissing
                         ? Status::NotFound(landmarks +
                                            ": landmark model missing "
                                            "(install libdlib-data)")
                         : Status::Corruption(landmarks + ": " + e.what());
    return missing;
  }
  if (predictor.num_parts() != 68) {
    return Status::Corruption(landmarks + ": not a 68-point landmark model");
  }
  *engine = std::make_unique<FaceEngineImpl>(options, std::move(net), std::move(predictor));
  return Status::Ok();
}

}  // namespace portcullis::face
