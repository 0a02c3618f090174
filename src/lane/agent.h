// The lane agent: `portcullis lane --config FILE`. It composes one FrameSource and PassDetector
// per camera, seals every event at once, queues it durably, and drains the queue to the service:
//
//   camera thread(s): FrameSource -> PassDetector -> LaneEvent -> SealLaneEvent -> SealedQueue
//   uplink thread:    SealedQueue -> QueueDrainer -> Uplink (mTLS) -> service
//   local endpoints:  /healthz, /metrics (no personal data); maintenance (signed, time-boxed)
//
// Nothing it writes is readable: events are sealed before they reach the disk, logs carry event
// ids and counters but never plate text or pixels, and it refuses to write outside its DataDir.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "frame_source.h"
#include "portcullis/env.h"
#include "portcullis/lane_event.h"
#include "portcullis/status.h"
#include "sealed_queue.h"
#include "uplink.h"

namespace portcullis::lane {

struct MaintenanceConfig {
  std::string listen = "127.0.0.1:9444";  // host:port; "" turns maintenance off
  std::string cert_file, key_file;        // TLS for the maintenance port (PEM)
  // The service's maintenance-grant public key (Ed25519, base64): a grant the service signed is
  // the only way in; the agent checks it offline (the link may be down during a repair).
  std::string grant_public_key_file;
  int max_preview_fps = 5;
};

struct LaneAgentConfig {
  std::string device;    // principal name, e.g. "lane:7-a"
  std::string lane;      // "7"
  std::string data_dir;  // the only directory the agent writes to (queue, state, logs)
  std::string ingest_public_key_file;  // the vault's ingest public key (portcullis-ingest-v1 ...)
  std::vector<CameraConfig> cameras;
  UplinkConfig service;
  SealedQueueOptions queue;
  MaintenanceConfig maintenance;
  std::string metrics_listen = "127.0.0.1:9445";  // /healthz and /metrics; "" = off
  std::string region = "auto";                    // plate grammar region
  std::string model_dir;                          // "" = the build's default
  int health_report_interval_s = 60;              // health events to the service
  // Wall-clock jumps larger than this against the monotonic clock are flagged on events and
  // counted (NTP step, RTC fault, tampering).
  int clock_jump_threshold_ms = 2000;
};

// Reads and validates a config file (JSON; docs/lane-agent.md). Relative paths are resolved
// against the config file's directory. InvalidArgument names the offending field.
Status LoadLaneAgentConfig(const std::string& path, Env* env, LaneAgentConfig* config);

class LaneAgent {
 public:
  static Status Create(const LaneAgentConfig& config, Env* env, std::unique_ptr<LaneAgent>* agent);
  virtual ~LaneAgent() = default;
  // Runs until stop becomes true (SIGTERM/SIGINT in the CLI) or every camera is a file that
  // ended (then drains what it can within drain_timeout_ms and returns). Never returns an error
  // for a camera or link fault: those are health states; only a fault that makes the agent
  // useless (data dir unusable, no ingest key) is an error.
  virtual Status Run(const std::atomic<bool>& stop, int drain_timeout_ms) = 0;
  // The health document served at /healthz (JSON): overall "ok"/"degraded"/"failing" and one
  // entry per check (cameras, link, queue, disk, clock, core dumps, certificate expiry).
  [[nodiscard]] virtual std::string HealthJson() const = 0;
};

}  // namespace portcullis::lane
