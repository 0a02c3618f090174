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
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data_dir.h"
#include "frame_source.h"
#include "maintenance_grant.h"
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
  GrantPublicKey grant_public_key;  // parsed from grant_public_key_file by LoadLaneAgentConfig
  int max_preview_fps = 5;
  // Grants are checked against this device's wall clock; a lane computer's clock may be off by
  // a little (no NTP during a repair), never by more than this.
  int clock_skew_s = 120;
};

struct LaneAgentConfig {
  std::string device;    // principal name, e.g. "lane:7-a"
  std::string lane;      // "7"
  std::string data_dir;  // the only directory the agent writes to (queue, state, logs)
  std::string ingest_public_key_file;  // the vault's ingest public key (portcullis-ingest-v1 ...)
  IngestPublicKey ingest_public_key;   // parsed from ingest_public_key_file
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
// The same validation for a document in memory (the maintenance port's config update): relative
// paths resolve against base_dir, and the key files it names are read through env and parsed.
Status ParseLaneAgentConfig(std::string_view json, const std::string& base_dir, Env* env,
                            LaneAgentConfig* config);
// "HOST:PORT" (IPv6 in brackets) -> host, port. InvalidArgument otherwise.
Status ParseListenAddress(const std::string& listen, std::string* host, std::uint16_t* port);

class PassDetector;
struct PassDetectorOptions;

// What the agent is composed of. DefaultLaneAgentParts() gives the real ones (DataDir, the
// sealed queue, OpenFrameSource, PassDetector with its own PlateReader/FaceEngine, Uplink and
// QueueDrainer); tests replace any of them with fakes (a DataDir that fills up, a camera that
// jumps the clock, an uplink that is down).
struct LaneAgentParts {
  std::function<Status(const std::string& path, std::unique_ptr<DataDir>*)> open_data_dir;
  std::function<Status(DataDir*, const SealedQueueOptions&, std::unique_ptr<SealedQueue>*)>
      open_queue;
  std::function<Status(const CameraConfig&, std::unique_ptr<FrameSource>*)> open_camera;
  // One detector per camera thread, with engines of its own (they are not thread-safe).
  std::function<Status(const LaneAgentConfig&, const CameraConfig&, std::unique_ptr<PassDetector>*)>
      make_detector;
  std::function<Status(const UplinkConfig&, std::unique_ptr<Uplink>*)> open_uplink;
  // Delivers the queue through the uplink until stop() (QueueDrainer::Run by default).
  std::function<void(SealedQueue*, Uplink*, const UplinkConfig&, const std::function<bool()>& stop,
                     const std::function<void(const DrainStats&)>& on_change)>
      run_drainer;
  // Monotonic microseconds (durations and clock-jump detection; the wall clock is env's).
  std::function<std::int64_t()> steady_micros;
  // Process hygiene (hygiene.h): the CLI calls disable_core_dumps first thing; health reports
  // core_dumps_disabled.
  std::function<Status()> disable_core_dumps;
  std::function<bool()> core_dumps_disabled;
  std::string config_path;  // where PUT /maintenance/config's result is announced ("" = none)
};
LaneAgentParts DefaultLaneAgentParts();

class LaneAgent {
 public:
  static Status Create(const LaneAgentConfig& config, Env* env, const LaneAgentParts& parts,
                       std::unique_ptr<LaneAgent>* agent);
  virtual ~LaneAgent() = default;
  // Runs until stop becomes true (SIGTERM/SIGINT in the CLI) or every camera is a file that
  // ended (then drains what it can within drain_timeout_ms and returns). Never returns an error
  // for a camera or link fault: those are health states; only a fault that makes the agent
  // useless (data dir unusable, no ingest key) is an error.
  virtual Status Run(const std::atomic<bool>& stop, int drain_timeout_ms) = 0;
  // The health document served at /healthz (JSON): overall "ok"/"degraded"/"failing" and one
  // entry per check (cameras, link, queue, disk, clock, core dumps, certificate expiry).
  [[nodiscard]] virtual std::string HealthJson() const = 0;
  // The Prometheus text served at /metrics (counters and states; no personal data).
  [[nodiscard]] virtual std::string MetricsText() const = 0;
  // The ports the local endpoints listen on once Run has started them (0: off / not yet).
  [[nodiscard]] virtual std::uint16_t metrics_port() const = 0;
  [[nodiscard]] virtual std::uint16_t maintenance_port() const = 0;
};

}  // namespace portcullis::lane
