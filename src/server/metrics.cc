// Prometheus text exposition (format 0.0.4) for counters, gauges and histograms. One mutex: the
// service updates a handful of series per request, far below where contention would show.
#include "server/metrics.h"

#include <array>
#include <charconv>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace portcullis::server {
namespace {

enum class Kind { kCounter, kGauge, kHistogram };

// Upper bounds in seconds: 1 ms .. 10 s, roughly x2.5 apart, as Prometheus clients default to.
constexpr std::array<double, 13> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1.0,   2.5,  5.0,   10.0};

struct Series {
  double value = 0;                                      // counter/gauge value; histogram sum
  std::uint64_t count = 0;                               // histogram observations
  std::array<std::uint64_t, kBuckets.size()> buckets{};  // histogram, cumulative on render
};

struct Family {
  Kind kind = Kind::kCounter;
  std::string help;
  std::map<MetricLabels, Series> series;
};

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string RenderLabels(const MetricLabels& labels, const std::string& extra_key = "",
                         const std::string& extra_value = "") {
  if (labels.empty() && extra_key.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += key + "=\"" + EscapeLabelValue(value) + "\"";
  }
  if (!extra_key.empty()) {
    if (!first) out += ',';
    out += extra_key + "=\"" + extra_value + "\"";
  }
  out += '}';
  return out;
}

// Shortest text that reads back as the same double ("0.1", not "0.10000000000000001").
std::string FormatNumber(double value) {
  std::array<char, 64> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  return {buffer.data(), result.ptr};
}

}  // namespace

struct Metrics::Impl {
  mutable std::mutex mutex;
  std::map<std::string, Family, std::less<>> families;

  Series& SeriesFor(std::string_view name, std::string_view help, Kind kind,
                    const MetricLabels& labels) {
    auto it = families.find(name);
    if (it == families.end()) {
      Family family;
      family.kind = kind;
      family.help = std::string(help);
      it = families.emplace(std::string(name), std::move(family)).first;
    }
    return it->second.series[labels];
  }
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::Increment(std::string_view name, std::string_view help, const MetricLabels& labels,
                        double amount) {
  const std::lock_guard lock(impl_->mutex);
  impl_->SeriesFor(name, help, Kind::kCounter, labels).value += amount;
}

void Metrics::Set(std::string_view name, std::string_view help, const MetricLabels& labels,
                  double value) {
  const std::lock_guard lock(impl_->mutex);
  impl_->SeriesFor(name, help, Kind::kGauge, labels).value = value;
}

void Metrics::Observe(std::string_view name, std::string_view help, const MetricLabels& labels,
                      double seconds) {
  const std::lock_guard lock(impl_->mutex);
  Series& series = impl_->SeriesFor(name, help, Kind::kHistogram, labels);
  series.value += seconds;
  ++series.count;
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++series.buckets[i];
      break;
    }
  }
}

double Metrics::Value(std::string_view name, const MetricLabels& labels) const {
  const std::lock_guard lock(impl_->mutex);
  auto family = impl_->families.find(name);
  if (family == impl_->families.end()) return 0;
  auto series = family->second.series.find(labels);
  if (series == family->second.series.end()) return 0;
  return family->second.kind == Kind::kHistogram ? static_cast<double>(series->second.count)
                                                 : series->second.value;
}

std::string Metrics::RenderPrometheus() const {
  const std::lock_guard lock(impl_->mutex);
  std::string out;
  for (const auto& [bare_name, family] : impl_->families) {
    const std::string name = "portcullis_" + bare_name;
    const char* type = family.kind == Kind::kCounter ? "counter"
                       : family.kind == Kind::kGauge ? "gauge"
                                                     : "histogram";
    out += "# HELP " + name + " " + EscapeHelp(family.help) + "\n";
    out += "# TYPE " + name + " " + type + "\n";
    for (const auto& [labels, series] : family.series) {
      if (family.kind != Kind::kHistogram) {
        out += name + RenderLabels(labels) + " " + FormatNumber(series.value) + "\n";
        continue;
      }
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < kBuckets.size(); ++i) {
        cumulative += series.buckets[i];
        out += name + "_bucket" + RenderLabels(labels, "le", FormatNumber(kBuckets[i])) + " " +
               std::to_string(cumulative) + "\n";
      }
      out += name + "_bucket" + RenderLabels(labels, "le", "+Inf") + " " +
             std::to_string(series.count) + "\n";
      out += name + "_sum" + RenderLabels(labels) + " " + FormatNumber(series.value) + "\n";
      out += name + "_count" + RenderLabels(labels) + " " + std::to_string(series.count) + "\n";
    }
  }
  return out;
}

}  // namespace portcullis::server
