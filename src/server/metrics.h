// Metrics behind GET /metrics, in Prometheus's text exposition format (version 0.0.4). Counters
// and histograms are created on first use and are thread-safe. Label values must never carry
// personal data: lanes, gates, routes, outcomes, never plate text or traveller ids.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace portcullis::server {

using MetricLabels = std::map<std::string, std::string>;

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // name: [a-z_][a-z0-9_]*, prefixed "portcullis_" in the output; help is the # HELP line.
  void Increment(std::string_view name, std::string_view help, const MetricLabels& labels = {},
                 double amount = 1.0);
  // A histogram observation in seconds (buckets 1 ms .. 10 s).
  void Observe(std::string_view name, std::string_view help, const MetricLabels& labels,
               double seconds);
  // A gauge set to a value (queue depth, open galleries, audit tree size).
  void Set(std::string_view name, std::string_view help, const MetricLabels& labels, double value);

  [[nodiscard]] std::string RenderPrometheus() const;
  // The current value of a counter or gauge (0 when absent): for tests and the console's stats.
  [[nodiscard]] double Value(std::string_view name, const MetricLabels& labels = {}) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace portcullis::server
