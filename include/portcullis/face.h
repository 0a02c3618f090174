// The traveller face engine: image in, a decision out. Detect, check quality, align, embed,
// compare. "Match, don't store": nothing here writes an image or a template anywhere; templates
// wipe their memory when released.
//
//   std::unique_ptr<portcullis::face::FaceEngine> engine;
//   Status s = FaceEngine::Open(FaceEngineOptions{}, &engine);
//   FaceTemplate a, b;
//   s = engine->Enrol(document_bgr, &a);        // a quality-gated template of the one face
//   s = engine->Enrol(live_bgr, &b);
//   VerifyResult r = engine->Verify(a, b);     // distance, similarity, decision
//
// A FaceEngine is not thread-safe (its network holds per-call buffers); use one per thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "portcullis/status.h"

namespace portcullis::face {

// The embedding length of dlib's face-metric network.
inline constexpr int kTemplateDims = 128;
// Bumped whenever the network, its weights or the alignment change: templates of different
// versions are not comparable and are refused, not silently mismatched.
inline constexpr std::uint32_t kTemplateVersion = 1;

// A face template: the 128-d embedding of one aligned face. Compared by Euclidean distance (the
// metric the network was trained for: same person below ~0.6). Wiped on destruction and on move.
class FaceTemplate {
 public:
  FaceTemplate() = default;
  explicit FaceTemplate(const std::array<float, kTemplateDims>& values) : values_(values) {}
  ~FaceTemplate();
  FaceTemplate(const FaceTemplate& other) = default;
  FaceTemplate& operator=(const FaceTemplate& other) = default;
  FaceTemplate(FaceTemplate&& other) noexcept;
  FaceTemplate& operator=(FaceTemplate&& other) noexcept;

  [[nodiscard]] const std::array<float, kTemplateDims>& values() const { return values_; }
  [[nodiscard]] std::array<float, kTemplateDims>& mutable_values() { return values_; }
  // Overwrites the values with zeros in a way the optimiser cannot elide.
  void Wipe();

  // A versioned binary form: "PCFT" magic, version, dims, 128 little-endian floats, CRC-32.
  [[nodiscard]] std::string Serialize() const;
  // Refuses (InvalidArgument / Corruption, never a crash) a wrong magic, version, length,
  // checksum, or any NaN/Inf value.
  static Status Deserialize(std::string_view bytes, FaceTemplate* out);

 private:
  std::array<float, kTemplateDims> values_{};
};

// Euclidean distance between two templates.
float Distance(const FaceTemplate& a, const FaceTemplate& b);

// The default operating point (distance at or below which two templates are the same person);
// see docs/face.md for its calibration.
inline constexpr float kDefaultMatchThreshold = 0.6f;
// Similarity in [0, 1], monotone decreasing in distance: a logistic centred on
// kDefaultMatchThreshold (0.5 there), independent of any per-call threshold.
float SimilarityFromDistance(float distance);

// Why a capture was refused: a gate asks for a re-take instead of guessing.
enum class QualityIssue {
  kNone = 0,
  kNoFace,        // no face found
  kSeveralFaces,  // more than one face of comparable size (ambiguous who is presenting)
  kFaceTooSmall,  // inter-eye distance below the minimum
  kTooBlurred,    // sharpness (variance of the Laplacian on the aligned chip) below the minimum
  kNotFrontal,    // yaw/pitch/roll estimated from landmarks beyond the limits
  kTooDark,       // under-exposed chip
};
// "no_face", "several_faces", ... : stable strings for JSON output.
const char* QualityIssueName(QualityIssue issue);

struct FaceBox {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
};

// What the engine saw in one capture.
struct FaceCapture {
  FaceBox box;                 // the face in image pixels
  float detection_score = 0;   // detector confidence
  float inter_eye_pixels = 0;  // size measure used by the quality gate
  float sharpness = 0;         // quality measures, for the JSON output and tuning
  float yaw_degrees = 0;
  float pitch_degrees = 0;
  float roll_degrees = 0;
  QualityIssue issue = QualityIssue::kNone;
};

struct QualityLimits {
  float min_inter_eye_pixels = 0;  // engine default when 0
  float min_sharpness = 0;
  float max_yaw_degrees = 0;
  float max_pitch_degrees = 0;
  float max_roll_degrees = 0;
  bool enforce = true;  // false: report the measures but never refuse (evaluation on benchmarks)
};

struct FaceEngineOptions {
  std::string model_dir;       // empty: $PORTCULLIS_MODEL_DIR, else the build's configured one
  std::string landmarks_path;  // empty: /usr/share/dlib/shape_predictor_68_face_landmarks.dat
  QualityLimits quality;
  // Operating point: the distance at or below which Verify says "match". Empty (<= 0):
  // kDefaultMatchThreshold, calibrated as documented in docs/face.md.
  float match_threshold = 0;
  // Images whose long side is at most kSmallImageSide (LFW's 250x250, a scanned document photo)
  // are upsampled 2x before detection, as dlib's own pipeline does: HOG's window is 80 px and the
  // landmarks land on more pixels. Captures larger than that (a 640x480 gate camera) are never
  // upsampled first, so the live path's cost does not change.
  bool upsample_small_images = true;
  // Embeds this many randomly jittered copies of the aligned chip (dlib::jitter_image: small
  // rotation, scale, shift, mirror) and averages them; 0 or 1: one plain embedding. Costs about N
  // network passes per face: for enrolment of document photos and evaluation, not live captures.
  // Deterministic: the jitter generator is reseeded for every face.
  int jitter = 0;
  // The smallest face, in the caller's pixels, that detection looks for. HOG's window is 80 px;
  // above that, detection runs on a copy shrunk by 80 / min_face_pixels, so its cost falls with
  // the square of that factor (a gate camera that frames travellers at ~200 px can say 120 and
  // pay ~45% of the HOG time). Faces smaller than this are not seen at all, rivals included: keep
  // it below ~0.7x the smallest expected traveller face so a second face of half the area is
  // still found. Landmarks, alignment and the chip always use the full-resolution image.
  // 0 (default) or <= 80: no shrinking. Open refuses values outside 0..kMaxMinFacePixels.
  int min_face_pixels = 0;
};

// See FaceEngineOptions::upsample_small_images.
inline constexpr int kSmallImageSide = 400;
// Upper bound on FaceEngineOptions::jitter (each jitter is one more network pass).
inline constexpr int kMaxJitter = 100;
// Upper bound on FaceEngineOptions::min_face_pixels.
inline constexpr int kMaxMinFacePixels = 4096;

struct DetectStats {
  int passes = 0;  // 1: found at native size; 2: needed the padded/upsampled second view
  int working_width = 0;
  int working_height = 0;
  int detection_width = 0;  // of the image HOG ran on last (smaller with min_face_pixels)
};

struct VerifyResult {
  float distance = 0;    // Euclidean
  float similarity = 0;  // in [0, 1], monotone in distance (1 = identical)
  bool match = false;    // distance <= threshold
  float threshold = 0;
};

// The embedding network multiplies matrices through the system BLAS. OpenBLAS starts one
// thread per core, process-wide, and spins them between calls, so a program that already runs
// one engine per core in parallel (the service's workers, a lane's cameras) oversubscribes the
// cores and loses throughput to spinning. Such programs set 1. Returns false when the BLAS in
// use has no such knob (the reference BLAS is single-threaded anyway).
bool SetBlasThreads(int threads);

class FaceEngine {
 public:
  virtual ~FaceEngine() = default;
  static Status Open(const FaceEngineOptions& options, std::unique_ptr<FaceEngine>* engine);

  // Finds, quality-checks, aligns and embeds the one face of a capture. On a quality refusal it
  // returns InvalidArgument and fills capture->issue; *out is untouched.
  virtual Status Enrol(const cv::Mat& bgr, FaceTemplate* out, FaceCapture* capture = nullptr) = 0;
  // Every face of a scene (no quality refusal): for group photos and evaluation.
  virtual Status EmbedAll(const cv::Mat& bgr, std::vector<FaceTemplate>* templates,
                          std::vector<FaceCapture>* captures) = 0;
  // Aligns and embeds the face inside a given box (from another detector, or an assumed centre
  // crop when detection failed during evaluation). No quality refusal; *capture gets the measures.
  virtual Status EmbedRegion(const cv::Mat& bgr, const FaceBox& box, FaceTemplate* out,
                             FaceCapture* capture = nullptr) = 0;
  // Embeds an already aligned 150x150 BGR chip (dlib's get_face_chip_details(shape, 150, 0.25)).
  virtual Status EmbedChip(const cv::Mat& chip_bgr, FaceTemplate* out) = 0;
  // Face boxes only (no landmarks, no embedding); stats says how much work it took.
  virtual Status Detect(const cv::Mat& bgr, std::vector<FaceBox>* boxes,
                        DetectStats* stats = nullptr) = 0;
  [[nodiscard]] virtual VerifyResult Verify(const FaceTemplate& a, const FaceTemplate& b) const = 0;
  [[nodiscard]] virtual float match_threshold() const = 0;
};

}  // namespace portcullis::face
