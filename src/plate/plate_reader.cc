// The plate-reading pipeline: detect text lines -> propose plate lines (single lines and
// neighbouring pieces joined) -> rectify and recognise each -> decode under every active region's
// grammar -> keep the most probable plate reads.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include <opencv2/imgproc.hpp>

#include "plate/ctc_decoder.h"
#include "plate/gemm_convolution.h"
#include "plate/grammar.h"
#include "plate/junk_slot.h"
#include "plate/text_detector.h"
#include "plate/text_recognizer.h"
#include "portcullis/env.h"
#include "portcullis/plate.h"

namespace portcullis::plate {
namespace {

// Pipeline constants. Chosen on the development split of the OpenALPR benchmark as a whole
// (bench/alpr_eval), never per image; docs/benchmarks.md records the effect of each.
constexpr int kMaxLinesRecognised = 14;  // recognition dominates the cost of an image
constexpr int kBeamWidth = 10;
constexpr double kMinReportProbability = 0.02;  // reads less likely than this are not plates
// A read whose probability times grammar prior reaches this ends a non-exhaustive search.
constexpr double kConfidentScore = 0.85;
constexpr int kMaxDetectorSide = 4096;  // the largest detector_max_side Open accepts

// A candidate plate line: a detected text box, or two neighbouring ones joined.
using Line = TextBox;

struct Scored {
  PlateRead read;
  double score = -1e300;  // log P(text | crop) + log prior
};

std::string FromEnvOr(const std::string& configured, const char* variable, const char* fallback) {
  if (!configured.empty()) return configured;
  const char* value = std::getenv(variable);
  if (value != nullptr && *value != '\0') return value;
  return fallback;
}

cv::Point2f Centre(const std::array<cv::Point2f, 4>& c) {
  return (c[0] + c[1] + c[2] + c[3]) * 0.25f;
}

// Plates are often detected in pieces ("ABC" "1234", or split by a logo or sticker). Two lines of
// similar height on the same baseline with a small gap are also proposed as one line.
std::vector<Line> ProposeLines(const std::vector<TextBox>& boxes) {
  std::vector<Line> lines;
  for (const auto& b : boxes) {
    const float w = b.Width(), h = b.Height();
    if (h < 5 || w < h * 0.8f || w > h * 16) continue;
    lines.push_back(b);
  }
  std::vector<Line> merged;
  for (const auto& a : boxes) {
    for (const auto& b : boxes) {
      if (&a == &b) continue;
      const float ha = a.Height(), hb = b.Height();
      if (ha < 5 || hb < 5 || std::max(ha, hb) > 1.4f * std::min(ha, hb)) continue;
      const cv::Point2f ca = Centre(a.corners), cb = Centre(b.corners);
      const float h = (ha + hb) / 2;
      if (cb.x <= ca.x || std::abs(cb.y - ca.y) > 0.4f * h) continue;
      const float gap = b.corners[0].x - a.corners[1].x;
      if (gap < -0.5f * h || gap > 1.2f * h) continue;
      Line line{{a.corners[0], b.corners[1], b.corners[2], a.corners[3]}, (a.score + b.score) / 2};
      if (line.Width() > line.Height() * 16) continue;
      merged.push_back(line);
    }
  }
  lines.insert(lines.end(), merged.begin(), merged.end());
  // Most plate-like first: a plate's text line is a few times wider than high (one line of 5-8
  // characters); much longer lines are captions, much shorter ones stray characters.
  auto likeness = [](const Line& line) {
    const float aspect = line.Width() / std::max(1.0f, line.Height());
    const float shape = (aspect >= 1.8f && aspect <= 8.0f) ? 1.0f : 0.6f;
    return line.score * shape;
  };
  std::stable_sort(lines.begin(), lines.end(),
                   [&](const Line& x, const Line& y) { return likeness(x) > likeness(y); });
  if (lines.size() > static_cast<std::size_t>(kMaxLinesRecognised))
    lines.resize(kMaxLinesRecognised);
  return lines;
}

// Re-expresses plate-alphabet probabilities over a region's alphabet: substituted characters
// give their mass to their replacement, characters the region never uses give theirs to blank.
cv::Mat ToRegionAlphabet(const cv::Mat& probs, const RegionGrammar& g) {
  const int columns = static_cast<int>(g.alphabet.size()) + 1;
  std::vector<int> target(kPlateAlphabet.size() + 1, 0);
  for (std::size_t i = 0; i < kPlateAlphabet.size(); ++i) {
    char c = kPlateAlphabet[i];
    auto sub = g.substitutions.find(c);
    if (sub != g.substitutions.end()) c = sub->second;
    auto pos = g.alphabet.find(c);
    target[i + 1] = pos == std::string::npos ? 0 : static_cast<int>(pos) + 1;
  }
  cv::Mat out = cv::Mat::zeros(probs.rows, columns, CV_32F);
  for (int t = 0; t < probs.rows; ++t) {
    const auto* in = probs.ptr<float>(t);
    auto* o = out.ptr<float>(t);
    for (int c = 0; c < probs.cols; ++c) o[target[static_cast<std::size_t>(c)]] += in[c];
  }
  return out;
}

// Lets a confident "0" stand for "O" (and so on, per the region's confusables) when a pattern asks.
cv::Mat ShareConfusables(const cv::Mat& probs, const RegionGrammar& g) {
  const std::string_view alphabet = g.alphabet;
  cv::Mat out = probs.clone();
  for (const auto& c : g.confusables) {
    const auto ia = alphabet.find(c.a), ib = alphabet.find(c.b);
    if (ia == std::string_view::npos || ib == std::string_view::npos) continue;
    const int ca = static_cast<int>(ia) + 1, cb = static_cast<int>(ib) + 1;
    for (int t = 0; t < probs.rows; ++t) {
      const float pa = probs.at<float>(t, ca), pb = probs.at<float>(t, cb);
      out.at<float>(t, ca) = std::max(out.at<float>(t, ca), c.share * pb);
      out.at<float>(t, cb) = std::max(out.at<float>(t, cb), c.share * pa);
    }
  }
  return out;
}

// The line's most probable reading with date/time separators kept (written as '-'): the folded
// probabilities count separators as blank, `separators` holds how much of that blank they were.
std::string RawReadWithSeparators(const cv::Mat& probs, const cv::Mat& separators) {
  if (separators.rows != probs.rows) return CtcGreedy(probs, kPlateAlphabet);
  cv::Mat extended(probs.rows, probs.cols + 1, CV_32F);
  for (int t = 0; t < probs.rows; ++t) {
    const float mass = separators.at<float>(t);
    for (int c = 0; c < probs.cols; ++c) extended.at<float>(t, c) = probs.at<float>(t, c);
    extended.at<float>(t, 0) = std::max(0.0f, probs.at<float>(t, 0) - mass);
    extended.at<float>(t, probs.cols) = mass;
  }
  std::string alphabet(kPlateAlphabet);
  alphabet += '-';
  return CtcGreedy(extended, alphabet);
}

// All readings of one line under one grammar, best first.
std::vector<std::pair<Candidate, double>> ReadUnderGrammar(const cv::Mat& plate_probs,
                                                           const RegionGrammar& g) {
  const cv::Mat raw = ToRegionAlphabet(plate_probs, g);
  const cv::Mat probs = ShareConfusables(raw, g);
  std::set<std::string> texts;
  for (const auto& path : CtcBeamSearch(raw, g.alphabet, kBeamWidth, kBeamWidth)) {
    texts.insert(path.text);
  }
  for (const auto& pattern : g.patterns) {
    CtcPath best;
    if (CtcConstrainedBest(probs, g.alphabet, pattern.sets, &best)) texts.insert(best.text);
  }
  std::vector<std::pair<Candidate, double>> out;
  for (const auto& text : texts) {
    Candidate candidate;
    const double prior = g.Prior(text, &candidate.format);
    if (prior <= 0) continue;
    const double log_likelihood = CtcLogLikelihood(probs, g.alphabet, text);
    if (!std::isfinite(log_likelihood)) continue;
    candidate.text = text;
    // Confidence = P(text | line) x the layout's prior: the number the ranking uses, so
    // candidates sorted best first are also sorted by confidence.
    const double score = log_likelihood + std::log(prior);
    candidate.confidence = static_cast<float>(std::min(1.0, std::exp(score)));
    out.emplace_back(std::move(candidate), score);
  }
  // An emblem or sticker between character groups, read as a character, dropped: such a read
  // joins the others, or replaces the same text's score where dropping explains it better.
  for (auto& junk : ReadsWithJunkDropped(probs, g)) {
    auto same = std::find_if(out.begin(), out.end(),
                             [&](const auto& c) { return c.first.text == junk.first.text; });
    if (same == out.end()) {
      out.push_back(std::move(junk));
    } else if (junk.second > same->second) {
      *same = std::move(junk);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

std::array<Point, 4> PlatePolygon(const std::array<cv::Point2f, 4>& line, const RegionGrammar& g,
                                  const cv::Size& image) {
  const cv::Point2f centre = Centre(line);
  std::array<Point, 4> polygon{};
  for (std::size_t i = 0; i < 4; ++i) {
    // Scale along the line's own axes so rotated plates stay rotated.
    const cv::Point2f u = (line[1] - line[0] + line[2] - line[3]) * 0.5f;  // along the text
    const cv::Point2f v = (line[3] - line[0] + line[2] - line[1]) * 0.5f;  // across it
    const float su = (i == 0 || i == 3) ? -0.5f : 0.5f;
    const float sv = (i == 0 || i == 1) ? -0.5f : 0.5f;
    cv::Point2f p = centre + u * (su * g.plate_scale_x) + v * (sv * g.plate_scale_y);
    polygon[i] = {std::clamp(p.x, 0.0f, static_cast<float>(image.width)),
                  std::clamp(p.y, 0.0f, static_cast<float>(image.height))};
  }
  return polygon;
}

Box BoundingBox(const std::array<Point, 4>& polygon) {
  float x0 = polygon[0].x, x1 = x0, y0 = polygon[0].y, y1 = y0;
  for (const auto& p : polygon) {
    x0 = std::min(x0, p.x);
    x1 = std::max(x1, p.x);
    y0 = std::min(y0, p.y);
    y1 = std::max(y1, p.y);
  }
  auto ix0 = static_cast<int>(std::floor(x0)), iy0 = static_cast<int>(std::floor(y0));
  return {ix0, iy0, static_cast<int>(std::ceil(x1)) - ix0, static_cast<int>(std::ceil(y1)) - iy0};
}

double Overlap(const Box& a, const Box& b) {
  const int x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  const int x1 = std::min(a.x + a.width, b.x + b.width),
            y1 = std::min(a.y + a.height, b.y + b.height);
  if (x1 <= x0 || y1 <= y0) return 0;
  const double inter = static_cast<double>(x1 - x0) * (y1 - y0);
  const double smaller =
      std::min(static_cast<double>(a.width) * a.height, static_cast<double>(b.width) * b.height);
  return smaller > 0 ? inter / smaller : 0;
}

class PipelineReader final : public PlateReader {
 public:
  PipelineReader(PlateReaderOptions options, std::unique_ptr<TextDetector> detector,
                 std::unique_ptr<TextRecognizer> recognizer, std::vector<RegionGrammar> grammars)
      : options_(std::move(options)),
        detector_(std::move(detector)),
        recognizer_(std::move(recognizer)),
        grammars_(std::move(grammars)) {}

  Status Read(const cv::Mat& bgr, std::vector<PlateRead>* plates) override {
    plates->clear();
    if (bgr.empty() || bgr.type() != CV_8UC3) {
      return Status::InvalidArgument("plate reader needs a non-empty 8-bit BGR image");
    }
    // Coarse to fine: most plates are found at the coarse size, at a fraction of the cost; the
    // full-size pass runs only when the coarse one found no confident plate. Exhaustive reads
    // go straight to the full size.
    std::vector<int> sizes;
    const int longer = std::max(bgr.cols, bgr.rows);
    if (!options_.exhaustive && options_.coarse_detector_max_side > 0 &&
        options_.coarse_detector_max_side < std::min(longer, options_.detector_max_side)) {
      sizes.push_back(options_.coarse_detector_max_side);
    }
    sizes.push_back(options_.detector_max_side);
    std::vector<Scored> reads;
    std::vector<cv::Rect> recognised;  // lines already read in an earlier pass
    for (int size : sizes) {
      DetectorOptions detector_options;
      detector_options.max_side = size;
      detector_options.max_pixels = options_.detector_max_pixels;
      detector_options.proposal_max_side = options_.detector_proposal_max_side;
      bool confident = false;
      PORTCULLIS_RETURN_IF_ERROR(Look(bgr, detector_options, &recognised, &reads, &confident));
      if (confident && !options_.exhaustive) break;
    }
    // Nothing read: look again, closer. The lines already read (and rejected) are not read again.
    if (reads.empty() && options_.second_look_scale > 0) {
      const double scale = options_.second_look_scale;
      DetectorOptions detector_options;
      detector_options.max_side = std::min(
          kMaxDetectorSide, static_cast<int>(std::lround(options_.detector_max_side * scale)));
      detector_options.max_pixels = static_cast<int>(
          std::min<double>(static_cast<double>(kMaxDetectorSide) * kMaxDetectorSide,
                           options_.detector_max_pixels * scale * scale));
      detector_options.max_upscale = scale;
      bool confident = false;
      PORTCULLIS_RETURN_IF_ERROR(Look(bgr, detector_options, &recognised, &reads, &confident));
    }
    std::sort(reads.begin(), reads.end(),
              [](const Scored& a, const Scored& b) { return a.score > b.score; });
    // One read per plate: a joined line and its pieces, or overlapping detections, are the same
    // plate; the most probable reading wins.
    for (auto& r : reads) {
      bool duplicate = false;
      for (const auto& kept : *plates) duplicate = duplicate || Overlap(kept.box, r.read.box) > 0.5;
      if (duplicate) continue;
      plates->push_back(std::move(r.read));
      if (plates->size() >= static_cast<std::size_t>(options_.max_plates)) break;
    }
    return Status::Ok();
  }

  // One detector pass, then its lines read; see ReadLines.
  Status Look(const cv::Mat& bgr, const DetectorOptions& detector_options,
              std::vector<cv::Rect>* recognised, std::vector<Scored>* reads, bool* confident) {
    std::vector<TextBox> boxes;
    PORTCULLIS_RETURN_IF_ERROR(detector_->Detect(bgr, detector_options, &boxes));
    return ReadLines(bgr, ProposeLines(boxes), recognised, reads, confident);
  }

  // Recognises lines (skipping ones read before) and appends their best reads. Stops early at a
  // confident read unless exhaustive.
  Status ReadLines(const cv::Mat& bgr, const std::vector<Line>& lines,
                   std::vector<cv::Rect>* recognised, std::vector<Scored>* reads, bool* confident) {
    for (const Line& line : lines) {
      const cv::Rect rect =
          cv::boundingRect(std::vector<cv::Point2f>(line.corners.begin(), line.corners.end()));
      bool seen = false;
      for (const auto& r : *recognised) {
        const double inter = (r & rect).area();
        seen = seen || inter > 0.7 * static_cast<double>(std::max(r.area(), rect.area()));
      }
      if (seen) continue;
      recognised->push_back(rect);
      cv::Mat crop = TextRecognizer::RectifyLine(bgr, line.corners);
      if (crop.empty()) continue;
      cv::Mat probs, separators;
      PORTCULLIS_RETURN_IF_ERROR(recognizer_->Recognize(crop, &probs, &separators));
      // A date or time stamp is never a plate, however well its digits fit a layout.
      const std::string raw = RawReadWithSeparators(probs, separators);
      if (LooksLikeDateOrTime(raw)) continue;
      Scored best;
      for (const auto& grammar : grammars_) {
        auto candidates = ReadUnderGrammar(probs, grammar);
        if (candidates.empty() || candidates[0].second <= best.score) continue;
        best.score = candidates[0].second;
        PlateRead& read = best.read;
        read.text = candidates[0].first.text;
        read.confidence = candidates[0].first.confidence;
        read.format = candidates[0].first.format;
        read.region = grammar.region;
        read.polygon = PlatePolygon(line.corners, grammar, bgr.size());
        read.box = BoundingBox(read.polygon);
        read.candidates.clear();
        for (std::size_t i = 0;
             i < candidates.size() && i < static_cast<std::size_t>(options_.top_n); ++i) {
          read.candidates.push_back(candidates[i].first);
        }
      }
      if (best.read.text.empty() || best.read.confidence < kMinReportProbability) continue;
      *confident = best.score >= std::log(kConfidentScore);
      reads->push_back(std::move(best));
      if (*confident && !options_.exhaustive) break;
    }
    return Status::Ok();
  }

  [[nodiscard]] std::vector<std::string> Regions() const override {
    std::vector<std::string> out;
    for (const auto& g : grammars_) out.push_back(g.region);
    return out;
  }

 private:
  PlateReaderOptions options_;
  std::unique_ptr<TextDetector> detector_;
  std::unique_ptr<TextRecognizer> recognizer_;
  std::vector<RegionGrammar> grammars_;
};

}  // namespace

Status PlateReader::Open(const PlateReaderOptions& options, std::unique_ptr<PlateReader>* reader) {
  if (options.top_n < 1 || options.top_n > 50) {
    return Status::InvalidArgument("top_n must be in [1, 50]");
  }
  if (options.max_plates < 1 || options.max_plates > 64) {
    return Status::InvalidArgument("max_plates must be in [1, 64]");
  }
  if (options.threads < 1) return Status::InvalidArgument("threads must be >= 1");
  if (options.detector_max_side < 64 || options.detector_max_side > kMaxDetectorSide) {
    return Status::InvalidArgument("detector_max_side must be in [64, 4096]");
  }
  if (options.detector_max_pixels != 0 &&
      (options.detector_max_pixels < 64 * 64 || options.detector_max_pixels > 4096 * 4096)) {
    return Status::InvalidArgument("detector_max_pixels must be 0 or in [4096, 16777216]");
  }
  if (options.coarse_detector_max_side != 0 &&
      (options.coarse_detector_max_side < 64 || options.coarse_detector_max_side > 4096)) {
    return Status::InvalidArgument("coarse_detector_max_side must be 0 or in [64, 4096]");
  }
  if (options.second_look_scale != 0 &&
      !(options.second_look_scale > 1.0 && options.second_look_scale <= 4.0)) {
    return Status::InvalidArgument("second_look_scale must be 0 or in (1, 4]");
  }
  if (options.detector_proposal_max_side != 0 &&
      (options.detector_proposal_max_side < 64 || options.detector_proposal_max_side > 4096)) {
    return Status::InvalidArgument("detector_proposal_max_side must be 0 or in [64, 4096]");
  }
  const std::string model_dir =
      FromEnvOr(options.model_dir, "PORTCULLIS_MODEL_DIR", PORTCULLIS_DEFAULT_MODEL_DIR);
  const std::string region_dir =
      FromEnvOr(options.region_dir, "PORTCULLIS_REGION_DIR", PORTCULLIS_DEFAULT_REGION_DIR);

  std::vector<RegionGrammar> grammars;
  PORTCULLIS_RETURN_IF_ERROR(RegionGrammar::LoadDirectory(Env::Default(), region_dir, &grammars));
  if (options.region != "auto") {
    auto it = std::find_if(grammars.begin(), grammars.end(),
                           [&](const RegionGrammar& g) { return g.region == options.region; });
    if (it == grammars.end()) {
      std::string known;
      for (const auto& g : grammars) known += (known.empty() ? "" : ", ") + g.region;
      return Status::InvalidArgument("unknown region '" + options.region + "' (known: auto, " +
                                     known + ")");
    }
    grammars = {*it};
  }
  cv::setNumThreads(options.threads);
  // The BLAS products honour the same thread count (process-wide, like OpenCV's); a BLAS
  // without that knob is not OpenBLAS, and a reference BLAS would be slower than OpenCV.
  const bool gemm = options.gemm_convolutions && SetGemmThreads(options.threads);
  std::unique_ptr<TextDetector> detector;
  PORTCULLIS_RETURN_IF_ERROR(TextDetector::Open(model_dir + "/plate_det.onnx", &detector, gemm));
  std::unique_ptr<TextRecognizer> recognizer;
  PORTCULLIS_RETURN_IF_ERROR(TextRecognizer::Open(model_dir, &recognizer, gemm));
  *reader = std::make_unique<PipelineReader>(options, std::move(detector), std::move(recognizer),
                                             std::move(grammars));
  return Status::Ok();
}

}  // namespace portcullis::plate
