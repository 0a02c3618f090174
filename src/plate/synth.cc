// Synthetic vehicle scenes. Everything random comes from one std::mt19937 seeded with spec.seed
// (never cv::theRNG(), which is global and shared), so a spec always gives the same image.
#include "portcullis/plate_synth.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace portcullis::plate {
namespace {

constexpr double kPi = 3.14159265358979323846;

class Rng {
 public:
  explicit Rng(std::uint32_t seed) : gen_(seed) {}

  double Uniform(double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(gen_);
  }
  int UniformInt(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen_); }
  bool Chance(double p) { return Uniform(0, 1) < p; }
  std::mt19937& engine() { return gen_; }

 private:
  std::mt19937 gen_;
};

enum class Style { kUs, kEu, kBr };

Style ParseStyle(const std::string& style) {
  if (style == "eu") return Style::kEu;
  if (style == "br") return Style::kBr;
  return Style::kUs;  // unknown styles still render something rather than fail
}

// Physical plate sizes in millimetres; only the ratio matters for the plate, the absolute size
// sets how big the car is around it.
struct PlateSizeMm {
  double width;
  double height;
};

PlateSizeMm SizeOf(Style style) {
  switch (style) {
    case Style::kEu:
      return {520, 110};
    case Style::kBr:
      return {400, 130};
    case Style::kUs:
      break;
  }
  return {305, 152};
}

double Finite(float v, double fallback = 0) {
  return std::isfinite(v) ? static_cast<double>(v) : fallback;
}

int Round(double v) { return static_cast<int>(std::lround(v)); }

cv::Scalar Jitter(Rng& rng, const cv::Scalar& c, double amount) {
  cv::Scalar out;
  for (int i = 0; i < 3; ++i) out[i] = std::clamp(c[i] + rng.Uniform(-amount, amount), 0.0, 255.0);
  return out;
}

cv::Scalar Scale(const cv::Scalar& c, double f) {
  return {std::clamp(c[0] * f, 0.0, 255.0), std::clamp(c[1] * f, 0.0, 255.0),
          std::clamp(c[2] * f, 0.0, 255.0)};
}

// A rounded rectangle as a polygon, so it can be filled anti-aliased in one call.
std::vector<cv::Point> RoundedRect(const cv::Rect2d& r, double radius) {
  radius = std::max(0.0, std::min({radius, r.width / 2, r.height / 2}));
  const std::array<cv::Point2d, 4> centres = {
      cv::Point2d(r.x + r.width - radius, r.y + radius),
      cv::Point2d(r.x + r.width - radius, r.y + r.height - radius),
      cv::Point2d(r.x + radius, r.y + r.height - radius), cv::Point2d(r.x + radius, r.y + radius)};
  std::vector<cv::Point> pts;
  for (int corner = 0; corner < 4; ++corner) {
    const double start = -90.0 + 90.0 * corner;
    for (int step = 0; step <= 6; ++step) {
      const double a = (start + 15.0 * step) * kPi / 180.0;
      pts.emplace_back(Round(centres[static_cast<std::size_t>(corner)].x + radius * std::cos(a)),
                       Round(centres[static_cast<std::size_t>(corner)].y + radius * std::sin(a)));
    }
  }
  return pts;
}

void FillPoly(cv::Mat& img, const std::vector<cv::Point>& pts, const cv::Scalar& colour) {
  if (pts.size() < 3) return;
  const std::vector<std::vector<cv::Point>> polys = {pts};
  cv::fillPoly(img, polys, colour, cv::LINE_AA);
}

// Draws a shape on a copy and blends it back, for shadows, highlights and stains.
template <typename Draw>
void Blend(cv::Mat& img, double alpha, Draw draw) {
  cv::Mat overlay = img.clone();
  draw(overlay);
  cv::addWeighted(overlay, alpha, img, 1.0 - alpha, 0.0, img);
}

// Draws text centred in `area`, as large as fits. Characters are drawn one at a time with a gap
// between them because Hershey glyphs with a heavy stroke otherwise touch, and an OCR model reads
// touching glyphs badly. Stroke is about 1/7 of the letter height, like a real plate font.
void DrawFittedText(cv::Mat& canvas, const std::string& text, const cv::Rect2d& area,
                    const cv::Scalar& colour, double stroke_ratio = 1.0 / 7.0,
                    double gap_ratio = 0.14) {
  if (text.empty() || area.width < 1 || area.height < 1) return;
  constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
  // Cap height of the font at scale 1 without stroke (getTextSize adds (thickness + 1) / 2).
  const double cap1 = cv::getTextSize("H", kFont, 1.0, 1, nullptr).height - 1.0;

  double visible_h = area.height;  // letter height including the stroke
  double scale = 1;
  int thickness = 1;
  std::vector<int> widths(text.size());
  double gap = 0;
  double total = 0;
  // Stroke and spacing do not scale exactly with the font scale (the stroke is rounded to whole
  // pixels), so shrink a few times until the line fits.
  for (int pass = 0; pass < 8; ++pass) {
    thickness = std::max(1, Round(visible_h * stroke_ratio));
    scale = std::max(0.01, (visible_h - thickness) / cap1);
    gap = gap_ratio * visible_h;
    total = gap * static_cast<double>(text.size() - 1);
    for (std::size_t i = 0; i < text.size(); ++i) {
      widths[i] = cv::getTextSize(std::string(1, text[i]), kFont, scale, thickness, nullptr).width;
      total += widths[i];
    }
    if (total <= area.width) break;
    visible_h *= 0.98 * area.width / total;
  }
  // Centre horizontally and vertically: glyphs sit on the baseline and rise cap1 * scale.
  double x = area.x + (area.width - total) / 2;
  const double baseline = area.y + area.height / 2 + cap1 * scale / 2;
  for (std::size_t i = 0; i < text.size(); ++i) {
    cv::putText(canvas, std::string(1, text[i]), cv::Point(Round(x), Round(baseline)), kFont, scale,
                colour, thickness, cv::LINE_AA);
    x += widths[i] + gap;
  }
}

// Renders the plate face upright, at the given (already 2x supersampled) size.
cv::Mat RenderPlateFace(Style style, const std::string& text, int w, int h, Rng& rng) {
  const double W = w;
  const double H = h;
  cv::Mat face(h, w, CV_8UC3);
  // A slightly off-white, slightly uneven face: real plates are never a flat 255.
  const cv::Scalar top = Jitter(rng, {248, 248, 246}, 6);
  const cv::Scalar bottom = Jitter(rng, {232, 236, 238}, 8);
  for (int y = 0; y < h; ++y) {
    const double t = h > 1 ? static_cast<double>(y) / (h - 1) : 0;
    face.row(y).setTo(top * (1 - t) + bottom * t);
  }
  const int border = std::max(1, Round(0.028 * H));
  const double margin = border * 1.5;

  switch (style) {
    case Style::kUs: {
      static const std::array<const char*, 8> kStates = {"OHIO", "TEXAS", "NEVADA", "OREGON",
                                                         "IOWA", "MAINE", "UTAH",   "ARIZONA"};
      static const std::array<cv::Scalar, 4> kStateColours = {
          cv::Scalar(40, 40, 190), cv::Scalar(150, 70, 20), cv::Scalar(40, 110, 30),
          cv::Scalar(30, 30, 30)};
      const std::string state = kStates[static_cast<std::size_t>(rng.UniformInt(0, 7))];
      const cv::Scalar& state_colour =
          kStateColours[static_cast<std::size_t>(rng.UniformInt(0, 3))];
      const cv::Scalar ink = rng.Chance(0.5) ? cv::Scalar(90, 30, 10) : cv::Scalar(25, 25, 25);
      cv::rectangle(face, cv::Rect(border / 2, border / 2, w - border, h - border),
                    cv::Scalar(40, 40, 40), border, cv::LINE_AA);
      // The state name is small so the recogniser's dominant line is the registration.
      DrawFittedText(face, state, cv::Rect2d(W * 0.3, H * 0.06, W * 0.4, H * 0.13), state_colour,
                     1.0 / 7.0, 0.12);
      DrawFittedText(face, text, cv::Rect2d(W * 0.1, H * 0.27, W * 0.8, H * 0.6), ink);
      break;
    }
    case Style::kEu: {
      static const std::array<const char*, 6> kCodes = {"D", "NL", "F", "B", "I", "A"};
      const std::string code = kCodes[static_cast<std::size_t>(rng.UniformInt(0, 5))];
      const double strip = W * 0.085;
      const cv::Scalar eu_blue(153, 51, 0);
      cv::rectangle(face, cv::Rect2d(0, 0, strip, H), eu_blue, cv::FILLED);
      // Ring of twelve stars, drawn as dots: at plate scale that is what they look like.
      const cv::Point2d ring(strip / 2, H * 0.3);
      const double ring_r = strip * 0.28;
      const int dot = std::max(1, Round(strip * 0.045));
      for (int i = 0; i < 12; ++i) {
        const double a = 2 * kPi * i / 12;
        cv::circle(
            face,
            cv::Point(Round(ring.x + ring_r * std::cos(a)), Round(ring.y + ring_r * std::sin(a))),
            dot, cv::Scalar(0, 204, 255), cv::FILLED, cv::LINE_AA);
      }
      DrawFittedText(face, code, cv::Rect2d(strip * 0.12, H * 0.58, strip * 0.76, H * 0.28),
                     cv::Scalar(255, 255, 255), 1.0 / 7.0, 0.1);
      cv::rectangle(face, cv::Rect(border / 2, border / 2, w - border, h - border),
                    cv::Scalar(20, 20, 20), border, cv::LINE_AA);
      const double left = strip + margin;
      const double avail = W - left - margin;
      const double text_w = std::min(W * 0.8, avail * 0.94);
      DrawFittedText(face, text,
                     cv::Rect2d(left + (avail - text_w) / 2, H * 0.19, text_w, H * 0.62),
                     cv::Scalar(20, 20, 20));
      break;
    }
    case Style::kBr: {
      const double band = H * 0.23;
      cv::rectangle(face, cv::Rect2d(0, 0, W, band), cv::Scalar(150, 60, 0), cv::FILLED);
      DrawFittedText(face, "BRASIL", cv::Rect2d(W * 0.3, band * 0.2, W * 0.4, band * 0.6),
                     cv::Scalar(255, 255, 255), 1.0 / 7.0, 0.12);
      // The little Brazilian flag at the band's right end.
      const double fh = band * 0.55;
      const double fw = fh * 1.4;
      const cv::Rect2d flag(W - margin - fw - W * 0.02, (band - fh) / 2, fw, fh);
      cv::rectangle(face, flag, cv::Scalar(50, 150, 0), cv::FILLED);
      const std::vector<cv::Point> diamond = {
          cv::Point(Round(flag.x + fw / 2), Round(flag.y + fh * 0.1)),
          cv::Point(Round(flag.x + fw * 0.92), Round(flag.y + fh / 2)),
          cv::Point(Round(flag.x + fw / 2), Round(flag.y + fh * 0.9)),
          cv::Point(Round(flag.x + fw * 0.08), Round(flag.y + fh / 2))};
      FillPoly(face, diamond, cv::Scalar(0, 210, 250));
      cv::circle(face, cv::Point(Round(flag.x + fw / 2), Round(flag.y + fh / 2)),
                 std::max(1, Round(fh * 0.22)), cv::Scalar(120, 40, 0), cv::FILLED, cv::LINE_AA);
      cv::rectangle(face, cv::Rect(border / 2, border / 2, w - border, h - border),
                    cv::Scalar(20, 20, 20), border, cv::LINE_AA);
      DrawFittedText(face, text, cv::Rect2d(W * 0.1, band + H * 0.1, W * 0.8, H * 0.56),
                     cv::Scalar(20, 20, 20));
      break;
    }
  }
  return face;
}

// The plate's corners relative to its centre after yaw (one vertical side shorter, the width
// foreshortened) and in-plane tilt, clockwise from top-left.
std::array<cv::Point2f, 4> PlateQuad(double w, double h, double tilt_degrees, double yaw) {
  const double hw = w / 2 * (1 - 0.35 * std::abs(yaw));
  const double hl = h / 2 * (yaw < 0 ? 1 + yaw : 1);
  const double hr = h / 2 * (yaw > 0 ? 1 - yaw : 1);
  const std::array<cv::Point2d, 4> corners = {cv::Point2d(-hw, -hl), cv::Point2d(hw, -hr),
                                              cv::Point2d(hw, hr), cv::Point2d(-hw, hl)};
  const double a = tilt_degrees * kPi / 180.0;
  const double c = std::cos(a);
  const double s = std::sin(a);
  std::array<cv::Point2f, 4> out;
  for (std::size_t i = 0; i < 4; ++i) {
    out[i] = cv::Point2f(static_cast<float>(corners[i].x * c - corners[i].y * s),
                         static_cast<float>(corners[i].x * s + corners[i].y * c));
  }
  return out;
}

cv::Rect2d QuadBounds(const std::array<cv::Point2f, 4>& quad) {
  double x0 = quad[0].x, x1 = quad[0].x, y0 = quad[0].y, y1 = quad[0].y;
  for (const auto& p : quad) {
    x0 = std::min(x0, static_cast<double>(p.x));
    x1 = std::max(x1, static_cast<double>(p.x));
    y0 = std::min(y0, static_cast<double>(p.y));
    y1 = std::max(y1, static_cast<double>(p.y));
  }
  return {x0, y0, x1 - x0, y1 - y0};
}

// A unit normal sample, approximately: the sum of the four bytes of one engine draw (Irwin-Hall,
// n = 4) is already very close to Gaussian. Pixel noise needs millions of samples per frame and
// std::normal_distribution costs several times more.
float FastNormal(std::mt19937& engine) {
  const auto r = static_cast<std::uint32_t>(engine());
  const std::uint32_t sum = (r & 0xFFu) + ((r >> 8) & 0xFFu) + ((r >> 16) & 0xFFu) + (r >> 24);
  return (static_cast<float>(sum) - 510.0f) / 147.8f;  // mean 4 * 127.5, sd sqrt(4 * 65535 / 12)
}

// Noise from our own engine: cv::randn would draw from OpenCV's global RNG.
cv::Mat GaussianField(Rng& rng, int rows, int cols, double sigma) {
  cv::Mat field(rows, cols, CV_32F);
  const auto s = static_cast<float>(sigma);
  for (int y = 0; y < rows; ++y) {
    auto* row = field.ptr<float>(y);
    for (int x = 0; x < cols; ++x) row[x] = s * FastNormal(rng.engine());
  }
  return field;
}

void AddField(cv::Mat& img, const cv::Mat& field, int y_begin) {
  for (int y = std::max(0, y_begin); y < img.rows; ++y) {
    auto* row = img.ptr<cv::Vec3b>(y);
    const auto* f = field.ptr<float>(y);
    for (int x = 0; x < img.cols; ++x) {
      for (int c = 0; c < 3; ++c) row[x][c] = cv::saturate_cast<std::uint8_t>(row[x][c] + f[x]);
    }
  }
}

void DrawBackground(cv::Mat& scene, Rng& rng) {
  const int w = scene.cols;
  const int h = scene.rows;
  const int horizon = Round(h * rng.Uniform(0.3, 0.5));

  // Above the horizon: a wall or hedge-ish backdrop with a vertical gradient and some blocks.
  // Muted colours (overcast sky, pale blue sky, hazy dusk) with only a slight tint: strong
  // independent per-channel jitter gives purple and green skies.
  static const std::array<cv::Scalar, 4> kSkies = {
      cv::Scalar(175, 172, 168), cv::Scalar(205, 170, 130), cv::Scalar(150, 160, 175),
      cv::Scalar(130, 130, 128)};
  const double sky_light = rng.Uniform(0.8, 1.15);
  const cv::Scalar sky_top =
      Jitter(rng, Scale(kSkies[static_cast<std::size_t>(rng.UniformInt(0, 3))], sky_light), 8);
  const cv::Scalar sky_bottom = Jitter(rng, Scale(sky_top, rng.Uniform(0.7, 0.9)), 8);
  for (int y = 0; y < std::min(horizon, h); ++y) {
    const double t = horizon > 1 ? static_cast<double>(y) / (horizon - 1) : 0;
    scene.row(y).setTo(sky_top * (1 - t) + sky_bottom * t);
  }
  const int blocks = rng.UniformInt(3, 8);
  for (int i = 0; i < blocks; ++i) {
    const double bx = rng.Uniform(-0.1, 1.0) * w;
    const double bw = rng.Uniform(0.08, 0.3) * w;
    const double by = rng.Uniform(0.0, 0.8) * horizon;
    static const std::array<cv::Scalar, 5> kWalls = {
        cv::Scalar(120, 130, 140), cv::Scalar(90, 100, 120), cv::Scalar(150, 150, 150),
        cv::Scalar(80, 85, 90), cv::Scalar(130, 150, 170)};
    const cv::Scalar colour =
        Jitter(rng, Scale(kWalls[static_cast<std::size_t>(rng.UniformInt(0, 4))], sky_light), 10);
    cv::rectangle(scene, cv::Rect2d(bx, by, bw, horizon - by), colour, cv::FILLED);
    // A row of windows so the backdrop has edges, like a real street.
    const int windows = rng.UniformInt(0, 5);
    for (int k = 0; k < windows; ++k) {
      const double wx = bx + bw * (0.1 + 0.8 * k / std::max(1, windows));
      cv::rectangle(scene,
                    cv::Rect2d(wx, by + (horizon - by) * 0.2, bw * 0.08, (horizon - by) * 0.25),
                    Scale(colour, 0.6), cv::FILLED);
    }
  }

  // Below: asphalt, lighter towards the horizon.
  const double grey = rng.Uniform(60, 115);
  const cv::Scalar asphalt = Jitter(rng, {grey + 4, grey, grey - 3}, 5);
  for (int y = std::max(0, horizon); y < h; ++y) {
    const double t = h - horizon > 1 ? static_cast<double>(y - horizon) / (h - horizon - 1) : 0;
    scene.row(y).setTo(Scale(asphalt, 1.15 - 0.3 * t));
  }
  // Lane markings converging on the horizon.
  const int lanes = rng.UniformInt(1, 3);
  const cv::Scalar paint = rng.Chance(0.3) ? cv::Scalar(40, 180, 210) : cv::Scalar(200, 200, 200);
  for (int i = 0; i < lanes; ++i) {
    const double bottom_x = rng.Uniform(-0.3, 1.3) * w;
    const double top_x = w / 2.0 + (bottom_x - w / 2.0) * 0.15;
    const int thickness = std::max(1, Round(w * rng.Uniform(0.004, 0.012)));
    Blend(scene, rng.Uniform(0.4, 0.8), [&](cv::Mat& o) {
      cv::line(o, cv::Point(Round(top_x), horizon), cv::Point(Round(bottom_x), h), paint, thickness,
               cv::LINE_AA);
    });
  }
  // Stains and patches.
  const int blobs = rng.UniformInt(4, 12);
  for (int i = 0; i < blobs; ++i) {
    const cv::Point centre(Round(rng.Uniform(0, w)), Round(rng.Uniform(horizon, h)));
    const cv::Size axes(std::max(1, Round(rng.Uniform(0.01, 0.08) * w)),
                        std::max(1, Round(rng.Uniform(0.005, 0.03) * h)));
    const cv::Scalar colour = Scale(asphalt, rng.Uniform(0.6, 1.2));
    const double angle = rng.Uniform(0, 180);
    Blend(scene, rng.Uniform(0.3, 0.7), [&](cv::Mat& o) {
      cv::ellipse(o, centre, axes, angle, 0, 360, colour, cv::FILLED, cv::LINE_AA);
    });
  }
  // Cracks.
  const int cracks = rng.UniformInt(3, 9);
  for (int i = 0; i < cracks; ++i) {
    cv::Point p(Round(rng.Uniform(0, w)), Round(rng.Uniform(horizon, h)));
    for (int seg = 0; seg < 4; ++seg) {
      const cv::Point q(p.x + Round(rng.Uniform(-0.05, 0.05) * w),
                        p.y + Round(rng.Uniform(-0.03, 0.03) * h));
      cv::line(scene, p, q, Scale(asphalt, 0.6), 1, cv::LINE_AA);
      p = q;
    }
  }
  // Texture: coarse blotches plus fine grain, so the road is not a flat colour.
  cv::Mat coarse = GaussianField(rng, std::max(1, h / 16), std::max(1, w / 16), 8.0);
  cv::resize(coarse, coarse, scene.size(), 0, 0, cv::INTER_CUBIC);
  coarse += GaussianField(rng, h, w, 5.0);
  AddField(scene, coarse, horizon);
}

struct CarFrame {
  double cx;   // centre x
  double top;  // roof y
  double w;
  double h;
  cv::Point At(double fx, double fy) const { return {Round(cx + fx * w), Round(top + fy * h)}; }
  cv::Rect2d Span(double fx0, double fy0, double fx1, double fy1) const {
    return {cx + fx0 * w, top + fy0 * h, (fx1 - fx0) * w, (fy1 - fy0) * h};
  }
};

cv::Scalar PickCarColour(Rng& rng) {
  static const std::array<cv::Scalar, 11> kColours = {
      cv::Scalar(235, 235, 232), cv::Scalar(28, 28, 30),  cv::Scalar(180, 180, 185),
      cv::Scalar(105, 105, 110), cv::Scalar(35, 35, 175), cv::Scalar(110, 50, 25),
      cv::Scalar(170, 90, 30),   cv::Scalar(50, 90, 40),  cv::Scalar(150, 185, 200),
      cv::Scalar(30, 25, 110),   cv::Scalar(40, 180, 215)};
  return Jitter(rng, kColours[static_cast<std::size_t>(rng.UniformInt(0, 10))], 8);
}

// A front view of a car: shadow, tyres, cabin with windscreen, body, headlights, grille, bumper.
void DrawCar(cv::Mat& scene, const CarFrame& car, Rng& rng) {
  const cv::Scalar body = PickCarColour(rng);
  const cv::Scalar bumper = rng.Chance(0.35) ? Jitter(rng, {50, 50, 54}, 8) : Scale(body, 0.82);
  const cv::Scalar dark(24, 24, 26);

  Blend(scene, 0.65, [&](cv::Mat& o) {
    cv::ellipse(o, car.At(0, 0.97),
                cv::Size(std::max(1, Round(car.w * 0.6)), std::max(1, Round(car.h * 0.06))), 0, 0,
                360, cv::Scalar(15, 15, 15), cv::FILLED, cv::LINE_AA);
  });
  FillPoly(scene, RoundedRect(car.Span(-0.47, 0.78, -0.32, 1.0), car.w * 0.02), dark);
  FillPoly(scene, RoundedRect(car.Span(0.32, 0.78, 0.47, 1.0), car.w * 0.02), dark);

  // Cabin: pillars in body colour, windscreen in dark glass with a soft reflection.
  FillPoly(scene, {car.At(-0.32, 0.0), car.At(0.32, 0.0), car.At(0.45, 0.37), car.At(-0.45, 0.37)},
           Scale(body, 0.92));
  const cv::Scalar glass = Jitter(rng, {72, 62, 52}, 10);
  FillPoly(scene,
           {car.At(-0.28, 0.04), car.At(0.28, 0.04), car.At(0.40, 0.34), car.At(-0.40, 0.34)},
           glass);
  Blend(scene, 0.18, [&](cv::Mat& o) {
    FillPoly(o, {car.At(-0.1, 0.04), car.At(0.05, 0.04), car.At(-0.12, 0.34), car.At(-0.3, 0.34)},
             cv::Scalar(230, 230, 230));
  });
  // Mirrors.
  FillPoly(scene,
           {car.At(-0.44, 0.29), car.At(-0.52, 0.28), car.At(-0.53, 0.35), car.At(-0.44, 0.36)},
           Scale(body, 0.85));
  FillPoly(scene, {car.At(0.44, 0.29), car.At(0.52, 0.28), car.At(0.53, 0.35), car.At(0.44, 0.36)},
           Scale(body, 0.85));

  // Body with a lighter bonnet and a darker lower half, for some sense of shape.
  FillPoly(scene, RoundedRect(car.Span(-0.5, 0.34, 0.5, 0.88), car.w * 0.06), body);
  Blend(scene, 0.25, [&](cv::Mat& o) {
    FillPoly(o, RoundedRect(car.Span(-0.47, 0.35, 0.47, 0.44), car.w * 0.03),
             cv::Scalar(255, 255, 255));
  });
  cv::line(scene, car.At(-0.42, 0.445), car.At(0.42, 0.445), Scale(body, 0.7),
           std::max(1, Round(car.h * 0.006)), cv::LINE_AA);

  // Headlights.
  for (const double side : {-1.0, 1.0}) {
    const std::vector<cv::Point> lamp = {car.At(side * 0.46, 0.47), car.At(side * 0.26, 0.49),
                                         car.At(side * 0.27, 0.57), car.At(side * 0.45, 0.58)};
    FillPoly(scene, lamp, cv::Scalar(205, 208, 212));
    cv::polylines(scene, std::vector<std::vector<cv::Point>>{lamp}, true, cv::Scalar(40, 40, 40),
                  std::max(1, Round(car.h * 0.005)), cv::LINE_AA);
    cv::ellipse(scene, car.At(side * 0.365, 0.525),
                cv::Size(std::max(1, Round(car.w * 0.045)), std::max(1, Round(car.h * 0.025))), 0,
                0, 360, cv::Scalar(250, 250, 245), cv::FILLED, cv::LINE_AA);
  }
  // Grille with slats and a badge.
  FillPoly(scene, RoundedRect(car.Span(-0.22, 0.47, 0.22, 0.61), car.w * 0.02),
           Jitter(rng, {32, 32, 34}, 6));
  for (int i = 1; i < 4; ++i) {
    const double fy = 0.47 + 0.14 * i / 4;
    cv::line(scene, car.At(-0.2, fy), car.At(0.2, fy), cv::Scalar(75, 75, 80),
             std::max(1, Round(car.h * 0.006)), cv::LINE_AA);
  }
  cv::ellipse(scene, car.At(0, 0.54),
              cv::Size(std::max(1, Round(car.w * 0.03)), std::max(1, Round(car.h * 0.018))), 0, 0,
              360, cv::Scalar(200, 200, 205), cv::FILLED, cv::LINE_AA);

  // Bumper, air intake and fog lamps.
  FillPoly(scene, RoundedRect(car.Span(-0.49, 0.63, 0.49, 0.87), car.w * 0.05), bumper);
  Blend(scene, 0.2, [&](cv::Mat& o) {
    FillPoly(o, RoundedRect(car.Span(-0.48, 0.63, 0.48, 0.66), car.w * 0.02),
             cv::Scalar(255, 255, 255));
  });
  FillPoly(scene, RoundedRect(car.Span(-0.3, 0.825, 0.3, 0.86), car.w * 0.01), dark);
  for (const double side : {-1.0, 1.0}) {
    cv::circle(scene, car.At(side * 0.41, 0.78), std::max(1, Round(car.w * 0.022)),
               cv::Scalar(190, 200, 205), cv::FILLED, cv::LINE_AA);
  }
}

}  // namespace

cv::Mat RenderVehicleScene(const SynthSpec& spec, SynthTruth* truth) {
  const int width = std::max(1, spec.image_width);
  const int height = std::max(1, spec.image_height);
  Rng rng(spec.seed);
  const Style style = ParseStyle(spec.style);
  const PlateSizeMm mm = SizeOf(style);
  const double aspect = mm.width / mm.height;
  const double tilt = Finite(spec.tilt_degrees);
  const double yaw = std::clamp(Finite(spec.yaw), -0.6, 0.6);  // past this the plate degenerates

  // Plate size: at most 60% of the image width (and of its height), then shrunk further until the
  // rotated and skewed quad fits inside the image, so the whole plate is always visible.
  double plate_w =
      std::clamp(static_cast<double>(spec.plate_width), 2.0, std::max(2.0, 0.6 * width));
  plate_w = std::min(plate_w, std::max(2.0, 0.6 * height * aspect));
  {
    const cv::Rect2d b = QuadBounds(PlateQuad(plate_w, plate_w / aspect, tilt, yaw));
    const double fit = std::min(
        {1.0, (width - 2) / std::max(1.0, b.width), (height - 2) / std::max(1.0, b.height)});
    plate_w = std::max(2.0, plate_w * fit);
  }
  const int pw = std::max(2, Round(plate_w));
  const int ph = std::max(1, Round(plate_w / aspect));
  const std::array<cv::Point2f, 4> quad = PlateQuad(pw, ph, tilt, yaw);
  const cv::Rect2d quad_box = QuadBounds(quad);

  cv::Mat scene(height, width, CV_8UC3, cv::Scalar(0, 0, 0));
  DrawBackground(scene, rng);

  // The car is sized from the plate (a car front is ~1.8 m wide, ~1.45 m tall) but kept in frame.
  const double px_per_mm = pw / mm.width;
  CarFrame car{};
  car.w = std::clamp(1800 * px_per_mm, std::min(1.3 * pw, 0.9 * width), 0.9 * width);
  car.h = std::clamp(1450 * px_per_mm, std::min(4.0 * ph, 0.9 * height), 0.9 * height);
  car.cx = width / 2.0 + rng.Uniform(-0.5, 0.5) * (width - car.w) * 0.6;
  car.top = (height - car.h) * rng.Uniform(0.35, 0.75);
  DrawCar(scene, car, rng);

  // Plate centre on the bumper, nudged so the whole quad stays inside the image.
  double cx = car.cx + rng.Uniform(-0.05, 0.05) * car.w;
  double cy = car.top + rng.Uniform(0.73, 0.77) * car.h;
  const auto keep_inside = [](double c, double lo, double extent, double size) {
    const double min_c = 1 - lo;                    // quad's low edge at pixel 1
    const double max_c = size - 1 - (lo + extent);  // quad's high edge at size - 1
    return min_c <= max_c ? std::clamp(c, min_c, max_c) : size / 2.0 - (lo + extent / 2);
  };
  cx = keep_inside(cx, quad_box.x, quad_box.width, width);
  cy = keep_inside(cy, quad_box.y, quad_box.height, height);

  std::array<cv::Point2f, 4> dst;
  for (std::size_t i = 0; i < 4; ++i) {
    dst[i] = quad[i] + cv::Point2f(static_cast<float>(cx), static_cast<float>(cy));
  }

  // A dark plate recess around the plate, a fifth of the plate height wide on every side: real
  // bumpers have one, and it keeps the plate's edge visible whatever the body colour.
  {
    const double m = 0.2 * ph;
    std::vector<cv::Point> recess;
    for (const auto& p : PlateQuad(pw + 2 * m, ph + 2 * m, tilt, yaw)) {
      recess.emplace_back(Round(p.x + cx), Round(p.y + cy));
    }
    FillPoly(scene, recess, Jitter(rng, {30, 30, 32}, 8));
  }

  // Plate: drawn at 2x and area-downsampled for clean anti-aliased strokes, then warped in.
  cv::Mat face = RenderPlateFace(style, spec.text, 2 * pw, 2 * ph, rng);
  cv::resize(face, face, cv::Size(pw, ph), 0, 0, cv::INTER_AREA);
  face.convertTo(face, -1, rng.Uniform(0.8, 1.0), 0);  // plates sit in shade or light

  const cv::Rect2d dst_box = QuadBounds(dst);
  const cv::Rect roi = cv::Rect(static_cast<int>(std::floor(dst_box.x)) - 1,
                                static_cast<int>(std::floor(dst_box.y)) - 1,
                                static_cast<int>(std::ceil(dst_box.width)) + 3,
                                static_cast<int>(std::ceil(dst_box.height)) + 3) &
                       cv::Rect(0, 0, width, height);
  if (roi.area() > 0) {
    const std::array<cv::Point2f, 4> src = {
        cv::Point2f(0, 0), cv::Point2f(static_cast<float>(pw), 0),
        cv::Point2f(static_cast<float>(pw), static_cast<float>(ph)),
        cv::Point2f(0, static_cast<float>(ph))};
    std::array<cv::Point2f, 4> local;
    for (std::size_t i = 0; i < 4; ++i) {
      local[i] = dst[i] - cv::Point2f(static_cast<float>(roi.x), static_cast<float>(roi.y));
    }
    const cv::Mat m = cv::getPerspectiveTransform(src.data(), local.data());
    cv::Mat warped;
    cv::Mat alpha;
    cv::warpPerspective(face, warped, m, roi.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
    // The mask is warped the same way; its bilinear edge gives the composite soft borders.
    cv::warpPerspective(cv::Mat(ph, pw, CV_32F, cv::Scalar(1.0)), alpha, m, roi.size(),
                        cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0.0));
    cv::Mat target = scene(roi);
    for (int y = 0; y < roi.height; ++y) {
      auto* out = target.ptr<cv::Vec3b>(y);
      const auto* in = warped.ptr<cv::Vec3b>(y);
      const auto* a = alpha.ptr<float>(y);
      for (int x = 0; x < roi.width; ++x) {
        for (int c = 0; c < 3; ++c) {
          out[x][c] = cv::saturate_cast<std::uint8_t>(a[x] * in[x][c] + (1.0f - a[x]) * out[x][c]);
        }
      }
    }
  }

  // Uneven light across the whole frame.
  {
    const double gx = rng.Uniform(-0.15, 0.15);
    const double gy = rng.Uniform(-0.15, 0.15);
    for (int y = 0; y < height; ++y) {
      auto* row = scene.ptr<cv::Vec3b>(y);
      for (int x = 0; x < width; ++x) {
        const double f = 1 + gx * (static_cast<double>(x) / width - 0.5) +
                         gy * (static_cast<double>(y) / height - 0.5);
        for (int c = 0; c < 3; ++c) row[x][c] = cv::saturate_cast<std::uint8_t>(row[x][c] * f);
      }
    }
  }

  // Blur is capped: past a quarter of the image the picture is uniform anyway, and a huge sigma
  // only makes the kernel (and the run time) enormous.
  const double blur = std::min({Finite(spec.blur_sigma), 32.0, 0.25 * std::max(width, height)});
  if (blur > 3) {
    // A large kernel is slow (sigma 30 costs ~0.4 s per frame); blurring a copy shrunk to
    // sigma 2 and scaling it back looks the same.
    const double k = blur / 2;
    cv::Mat small;
    cv::resize(scene, small,
               cv::Size(std::max(1, Round(width / k)), std::max(1, Round(height / k))), 0, 0,
               cv::INTER_AREA);
    cv::GaussianBlur(small, small, cv::Size(0, 0), 2.0);
    cv::resize(small, scene, scene.size(), 0, 0, cv::INTER_LINEAR);
  } else if (blur > 0.05) {
    cv::GaussianBlur(scene, scene, cv::Size(0, 0), blur);
  }
  const double noise = std::min(Finite(spec.noise_sigma), 255.0);
  if (noise > 0) {
    const auto sigma = static_cast<float>(noise);
    for (int y = 0; y < height; ++y) {
      auto* row = scene.ptr<cv::Vec3b>(y);
      for (int x = 0; x < width; ++x) {
        for (int c = 0; c < 3; ++c) {
          row[x][c] = cv::saturate_cast<std::uint8_t>(row[x][c] + sigma * FastNormal(rng.engine()));
        }
      }
    }
  }

  if (truth != nullptr) {
    truth->text = spec.text;
    const int x0 = std::clamp(static_cast<int>(std::floor(dst_box.x)), 0, width);
    const int y0 = std::clamp(static_cast<int>(std::floor(dst_box.y)), 0, height);
    const int x1 = std::clamp(static_cast<int>(std::ceil(dst_box.x + dst_box.width)), 0, width);
    const int y1 = std::clamp(static_cast<int>(std::ceil(dst_box.y + dst_box.height)), 0, height);
    truth->box = Box{x0, y0, x1 - x0, y1 - y0};
  }
  return scene;
}

}  // namespace portcullis::plate
