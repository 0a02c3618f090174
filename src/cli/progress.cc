#include "cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

namespace portcullis::cli {
namespace {

// One column short of 80: a line that fills the last column makes some terminals wrap, and a
// wrapped line can no longer be erased with '\r'.
constexpr std::size_t kMaxWidth = 79;
constexpr int kBarWidth = 20;
constexpr int kMinBarWidth = 5;
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

std::string Format(const char* fmt, double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, value);
  return buf;
}

std::string FormatRate(double rate) { return Format("%.1f", rate) + "/s"; }

// m:ss, or h:mm:ss past an hour.
std::string FormatDuration(double seconds) {
  // Capped so a near-zero rate cannot overflow the conversion; past 99 hours it hardly matters.
  const auto total =
      static_cast<std::int64_t>(std::llround(std::clamp(seconds, 0.0, 99 * 3600.0 + 3599)));
  const std::int64_t h = total / 3600;
  const std::int64_t m = (total / 60) % 60;
  const std::int64_t s = total % 60;
  char buf[48];
  if (h > 0) {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", static_cast<long long>(h),
                  static_cast<long long>(m), static_cast<long long>(s));
  } else {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld", static_cast<long long>(m),
                  static_cast<long long>(s));
  }
  return buf;
}

// Cuts a label to at most `max` bytes without splitting a UTF-8 sequence, marking the cut.
std::string Truncate(const std::string& label, std::size_t max) {
  if (label.size() <= max) return label;
  const bool mark = max >= 4;
  std::size_t keep = mark ? max - 3 : max;
  while (keep > 0 && (static_cast<unsigned char>(label[keep]) & 0xC0) == 0x80) --keep;
  return label.substr(0, keep) + (mark ? "..." : "");
}

}  // namespace

ProgressBar::ProgressBar(std::string label, std::int64_t total, bool enabled, std::FILE* out)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled && out != nullptr),
      out_(out),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  if (!finished_) Finish();
}

void ProgressBar::SetTotal(std::int64_t total) { total_ = total; }

std::string ProgressBar::Render(std::int64_t done, double elapsed_seconds) const {
  done = std::max<std::int64_t>(0, done);
  const double elapsed =
      std::isfinite(elapsed_seconds) && elapsed_seconds > 0 ? elapsed_seconds : 0.0;
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;

  if (total_ < 0) {
    const std::string rest = "  " + std::to_string(done) + " done  " + FormatRate(rate);
    const std::size_t room = kMaxWidth > rest.size() ? kMaxWidth - rest.size() : 0;
    return (Truncate(label_, room) + rest).substr(0, kMaxWidth);
  }

  // An empty job is complete; more done than planned is shown as it is but caps the bar at full.
  const double fraction =
      total_ == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
  std::string eta = "ETA --:--";  // no rate yet, nothing to extrapolate from
  if (done >= total_) {
    eta = "ETA 0:00";
  } else if (rate > 0) {
    eta = "ETA " + FormatDuration(static_cast<double>(total_ - done) / rate);
  }
  const std::string rest = "  " + std::to_string(done) + "/" + std::to_string(total_) + "  " +
                           std::to_string(static_cast<int>(std::floor(fraction * 100))) + "%  " +
                           FormatRate(rate) + "  " + eta;

  // The label gives way first, then the bar, so the numbers always show.
  int bar_width = kBarWidth;
  std::size_t fixed = rest.size() + 2 + static_cast<std::size_t>(bar_width) + 2;
  constexpr std::size_t kMinLabel = 8;
  if (fixed + std::min(label_.size(), kMinLabel) > kMaxWidth) {
    const std::size_t over = fixed + std::min(label_.size(), kMinLabel) - kMaxWidth;
    bar_width = std::max(kMinBarWidth, bar_width - static_cast<int>(over));
    fixed = rest.size() + 2 + static_cast<std::size_t>(bar_width) + 2;
  }
  const std::size_t room = kMaxWidth > fixed ? kMaxWidth - fixed : 0;
  const auto filled = static_cast<int>(std::floor(fraction * bar_width));
  const std::string bar = "[" + std::string(static_cast<std::size_t>(filled), '#') +
                          std::string(static_cast<std::size_t>(bar_width - filled), '-') + "]";
  return (Truncate(label_, room) + "  " + bar + rest).substr(0, kMaxWidth);
}

void ProgressBar::Update(std::int64_t done) {
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool at_end = total_ >= 0 && done == total_;
  const bool first = last_draw_ == std::chrono::steady_clock::time_point{};
  if (!at_end && !first && now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;

  const std::string line = Render(done, std::chrono::duration<double>(now - start_).count());
  // Spaces over whatever a longer previous line left behind.
  const std::size_t pad = last_width_ > line.size() ? last_width_ - line.size() : 0;
  std::fprintf(out_, "\r%s%s", line.c_str(), std::string(pad, ' ').c_str());
  std::fflush(out_);
  last_width_ = line.size();
}

void ProgressBar::Finish() {
  if (finished_) return;
  finished_ = true;
  // The final count is already on screen: Update always draws done == total. The class keeps no
  // copy of the last count (progress.h has no member for it), so there is nothing newer to draw;
  // and a redraw immediately followed by the clear below would never be seen anyway.
  if (!enabled_ || last_width_ == 0) return;
  std::fprintf(out_, "\r%s\r", std::string(last_width_, ' ').c_str());
  std::fflush(out_);
  last_width_ = 0;
}

bool ProgressBar::StderrIsTerminal() { return isatty(fileno(stderr)) != 0; }

}  // namespace portcullis::cli
