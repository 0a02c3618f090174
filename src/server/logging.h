// Structured logs: one JSON object per line on stderr, so a log shipper needs no parser of ours.
// The request line carries the route pattern, never the raw path (paths hold record ids and
// traveller ids), and no query strings, bodies or tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace portcullis::server {

struct RequestLogLine {
  std::string request_id;
  std::string node;
  std::string principal;  // "anonymous" before authentication
  std::string role;       // "none" before authentication
  std::string method;
  std::string route;  // the pattern ("/v1/plates/{id}"), or "unmatched"
  int status = 0;
  std::uint64_t bytes = 0;  // response body bytes
  double latency_ms = 0;
  // Where the time went (stage_timer.h): {"stages_ms": {"queue_control": 0.1, ...}}; omitted
  // when empty (public routes).
  std::vector<std::pair<std::string, double>> stages_ms;
};

// Writes {"time": RFC 3339 UTC, "level": "info", "msg": "request", ...fields}.
void LogRequest(const RequestLogLine& line);
// Anything else: {"time", "level", "msg", ...fields}. level: "info", "warn", "error".
void LogEvent(std::string_view level, std::string_view message, const nlohmann::json& fields);

// Where lines go (stderr by default); tests capture them. Not for use while requests run.
using LogSink = std::function<void(std::string_view line)>;
void SetLogSink(LogSink sink);  // empty: back to stderr

}  // namespace portcullis::server
