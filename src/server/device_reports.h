// The latest report of each lane/gate device (POST /v1/lanes/{lane}/reports), kept in memory on
// the node that received it, for GET /v1/devices/health. Reports carry no personal data (device
// states, counters, versions); each is also written to the audit log as one line. A restart
// starts afresh: a device reports again within its report period.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace portcullis::server {

struct DeviceReport {
  std::string device;  // principal name, e.g. "lane:7-a"
  std::string lane;
  std::string kind;  // "health" | "maintenance"
  std::int64_t received_micros = 0;
  nlohmann::json report;  // the body as posted
};

class DeviceReports {
 public:
  // Keeps the latest health report per device and the latest maintenance report per device.
  void Record(DeviceReport report) {
    std::lock_guard<std::mutex> lock(mutex_);
    latest_[{report.device, report.kind}] = std::move(report);
  }
  // Every device's latest reports, sorted by device then kind.
  [[nodiscard]] std::vector<DeviceReport> Snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<DeviceReport> out;
    out.reserve(latest_.size());
    for (const auto& [key, report] : latest_) out.push_back(report);
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, DeviceReport> latest_;
};

}  // namespace portcullis::server
