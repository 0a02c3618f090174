// Inside the agent: what agent.cc (the composition) and agent_maintenance.cc (the maintenance
// port) share. Not a public interface.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>

#include "agent.h"
#include "agent_http.h"
#include "agent_metrics.h"

namespace portcullis::lane {

// Where PUT /maintenance/config stores a new config (inside the DataDir); applied at next start.
inline constexpr const char* kStoredConfigFile = "config/lane.json";

// JSON lines to stderr and to logs/agent.log in the DataDir (bounded; reset past 16 MiB). Event
// ids, states and counters only: callers never pass plate text or pixels.
class AgentLog {
 public:
  explicit AgentLog(DataDir* dir);
  void Write(const char* level, const std::string& msg,
             nlohmann::json fields = nlohmann::json::object());

 private:
  DataDir* dir_;
  std::mutex mutex_;
  std::unique_ptr<AppendFile> file_;
};

// The latest frame of one camera as JPEG, rendered only while a technician watches the preview
// (watchers > 0), at most max_fps per second, held in memory only, wiped when replaced.
class PreviewSlot {
 public:
  void MaybeRender(const cv::Mat& bgr, std::int64_t steady_us, int max_fps);
  // Copies the latest JPEG if newer than *generation; false when none is newer.
  bool Latest(std::uint64_t* generation, std::string* jpeg);
  void Clear();
  void AddWatcher();
  void RemoveWatcher();

 private:
  std::mutex mutex_;
  int watchers_ = 0;
  std::string jpeg_;
  std::uint64_t generation_ = 0;
  std::int64_t rendered_us_ = 0;
};

// The agent as the maintenance port sees it.
class AgentCore {
 public:
  virtual ~AgentCore() = default;
  [[nodiscard]] virtual const LaneAgentConfig& config() const = 0;
  [[nodiscard]] virtual const std::string& config_path() const = 0;
  virtual Env* env() = 0;
  virtual DataDir* data_dir() = 0;
  virtual AgentCounters& counters() = 0;
  virtual AgentLog& log() = 0;
  [[nodiscard]] virtual nlohmann::json Health() const = 0;
  virtual PreviewSlot* preview(const std::string& camera) = 0;  // null: no such camera
  [[nodiscard]] virtual bool stopping() const = 0;
  virtual std::int64_t SteadyMicros() = 0;
  // A maintenance session's first use or a config change: a sealed kMaintenance event in the
  // queue and a report to the service (details: session id, action, config hash; no names).
  virtual void ReportMaintenance(const std::string& action, nlohmann::json details) = 0;
};

Status StartMaintenanceServer(AgentCore* core, std::unique_ptr<LocalHttpServer>* server);

// The names uplink.h's LinkStateName gives (kept here so the agent links on its own).
const char* LinkStateText(LinkState state);
std::string ConfigBaseDir(const std::string& config_path);
std::string Sha256Hex(std::string_view bytes);
// InvalidArgument naming what a maintenance config update may not change.
Status CheckConfigChangeAllowed(const LaneAgentConfig& current, const LaneAgentConfig& next);

}  // namespace portcullis::lane
