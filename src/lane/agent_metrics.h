// The agent's counters and states: what /metrics, /healthz, the maintenance counters and the
// health events are made of. Only counts, states and sizes: never a plate, a pixel or a name.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "frame_source.h"
#include "uplink.h"

namespace portcullis::lane {

inline constexpr int kCameraStarting = -1;

struct CameraCounters {
  std::string id;
  // A CameraState, or kCameraStarting until the camera first answers.
  std::atomic<int> state{kCameraStarting};
  std::atomic<std::int64_t> frames{0};
  std::atomic<std::int64_t> passes{0};
  std::atomic<std::int64_t> corrupt_frames{0};
  std::atomic<std::int64_t> reconnects{0};
};

struct AgentCounters {
  std::vector<std::unique_ptr<CameraCounters>> cameras;
  std::atomic<std::int64_t> passes{0};
  std::atomic<std::int64_t> events_queued{0};
  std::atomic<std::int64_t> events_delivered{0};
  std::atomic<std::int64_t> events_rejected{0};
  std::atomic<std::int64_t> events_lost_disk_full{0};
  std::atomic<std::int64_t> events_lost_queue_full{0};
  std::atomic<std::int64_t> events_lost_other{0};
  std::atomic<std::int64_t> disk_full_refusals{0};
  std::atomic<std::int64_t> last_disk_full_steady_us{0};  // 0: never
  std::atomic<std::int64_t> backlog_events{0};
  std::atomic<std::int64_t> backlog_bytes{0};
  std::atomic<std::int64_t> free_bytes{-1};  // -1: unknown
  std::atomic<int> link_state{static_cast<int>(LinkState::kUnreachable)};
  std::atomic<bool> link_ever_up{false};
  std::atomic<std::int64_t> clock_jumps{0};
  std::atomic<std::int64_t> last_clock_jump_ms{0};         // signed size of the last jump
  std::atomic<std::int64_t> last_clock_jump_steady_us{0};  // 0: never
  std::atomic<std::int64_t> health_events{0};
  std::atomic<std::int64_t> maintenance_sessions{0};
  std::atomic<std::int64_t> maintenance_refusals{0};
  std::atomic<std::int64_t> maintenance_config_changes{0};
  std::atomic<std::int64_t> maintenance_reports{0};
  std::atomic<std::int64_t> certificate_days_left{-100000};  // -100000: unknown
  std::atomic<bool> certificate_expired{false};
  std::atomic<bool> core_dumps_disabled{false};
  // Accuracy counters (maintenance /counters): plate reads and their confidence.
  std::atomic<std::int64_t> plate_reads{0};
  std::atomic<std::int64_t> low_confidence_reads{0};  // confidence < kLowConfidence
  std::atomic<std::int64_t> confidence_micros_sum{0};
};

inline constexpr float kLowConfidence = 0.6f;

}  // namespace portcullis::lane
