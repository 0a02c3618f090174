// JSON-lines logging: one mutex around one write per line, so lines from many threads never
// interleave.
#include "server/logging.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace portcullis::server {
namespace {

std::mutex& SinkMutex() {
  static std::mutex mutex;
  return mutex;
}

LogSink& Sink() {
  static LogSink sink;
  return sink;
}

std::string NowRfc3339() {
  const auto now = std::chrono::system_clock::now();
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(micros / 1'000'000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[40];
  const int n = std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<int>(micros % 1'000'000));
  return std::string(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
}

void Write(const nlohmann::json& object) {
  const std::string line =
      object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard<std::mutex> lock(SinkMutex());
  if (Sink()) {
    Sink()(line);
  } else {
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }
}

}  // namespace

void LogRequest(const RequestLogLine& line) {
  nlohmann::json object = {{"time", NowRfc3339()}, {"level", "info"},
                           {"msg", "request"},     {"request_id", line.request_id},
                           {"node", line.node},    {"principal", line.principal},
                           {"role", line.role},    {"method", line.method},
                           {"route", line.route},  {"status", line.status},
                           {"bytes", line.bytes},  {"latency_ms", line.latency_ms}};
  if (!line.stages_ms.empty()) {
    nlohmann::json stages = nlohmann::json::object();
    // Rounded to microseconds: the line stays short and nothing finer is meaningful here.
    for (const auto& [stage, ms] : line.stages_ms) stages[stage] = std::round(ms * 1000) / 1000;
    object["stages_ms"] = std::move(stages);
  }
  Write(object);
}

void LogEvent(std::string_view level, std::string_view message, const nlohmann::json& fields) {
  nlohmann::json object = {{"time", NowRfc3339()}, {"level", level}, {"msg", message}};
  if (fields.is_object()) {
    for (const auto& [key, value] : fields.items()) object[key] = value;
  }
  Write(object);
}

void SetLogSink(LogSink sink) {
  std::lock_guard<std::mutex> lock(SinkMutex());
  Sink() = std::move(sink);
}

}  // namespace portcullis::server
