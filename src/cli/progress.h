// A progress bar for long CLI work. Drawn on stderr only when stderr is a terminal, so pipes, CI
// logs and --json consumers never see it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace portcullis::cli {

class ProgressBar {
 public:
  // total < 0: unknown total (shows a counter and rate instead of a bar).
  // enabled: normally StderrIsTerminal(); tests force it on and pass their own FILE*.
  ProgressBar(std::string label, std::int64_t total, bool enabled, std::FILE* out = stderr);
  ~ProgressBar();  // clears the line
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Sets the count of finished items; redraws at most ~10 times a second (and always at the end).
  void Update(std::int64_t done);
  void SetTotal(std::int64_t total);
  void Finish();

  // The line Update would draw, without the leading '\r' (exposed for tests).
  [[nodiscard]] std::string Render(std::int64_t done, double elapsed_seconds) const;

  static bool StderrIsTerminal();

 private:
  std::string label_;
  std::int64_t total_;
  bool enabled_;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  bool finished_ = false;
  std::size_t last_width_ = 0;
};

}  // namespace portcullis::cli
