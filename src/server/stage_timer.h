// Where a request's time goes: named stages (queue waits, authorisation, the audit append of the
// decision, the engine, vault writes, ...) with their wall-clock milliseconds. The server fills
// one per request and reports it in the request log line ("stages_ms") and in the
// request_stage_seconds histogram of /metrics (docs/service.md, "Where a request's time goes").
//
// The pipeline's own stages are added by the server as the request moves from thread to thread
// (each hop hands the whole request over, so one StageTimes is never touched by two threads at
// once). Stages inside a handler (the engine, a vault put) are timed with StageTimer, which adds
// to the StageTimes the server installed on the handler's thread for the handler's duration;
// outside a request it does nothing, so library-like code (gate galleries) may time itself freely.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portcullis::server {

class StageTimes {
 public:
  // Adds ms to the stage (a stage timed twice, e.g. two vault puts, accumulates).
  void Add(std::string_view stage, double ms);
  [[nodiscard]] const std::vector<std::pair<std::string, double>>& entries() const {
    return entries_;
  }
  [[nodiscard]] bool empty() const { return entries_.empty(); }

 private:
  std::vector<std::pair<std::string, double>> entries_;  // first-timed order; a handful
};

// The StageTimes of the request this thread is running a handler for, or null.
StageTimes* CurrentStageTimes();

// Installs `times` as this thread's current StageTimes for its lifetime (restores the previous).
class ScopedStageTimes {
 public:
  explicit ScopedStageTimes(StageTimes* times);
  ~ScopedStageTimes();
  ScopedStageTimes(const ScopedStageTimes&) = delete;
  ScopedStageTimes& operator=(const ScopedStageTimes&) = delete;

 private:
  StageTimes* previous_;
};

// Adds the time from construction to destruction to the current request's stage `stage`;
// nothing outside a request. Timers nest: a timer started while another runs on the same thread
// is reported as "outer/inner" (the audit append inside a vault put: "vault_put/audit_append"),
// so an outer stage's time includes its inner ones.
class StageTimer {
 public:
  explicit StageTimer(std::string_view stage);
  ~StageTimer();
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;

 private:
  StageTimes* times_;
  const StageTimer* parent_;
  std::string name_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace portcullis::server
