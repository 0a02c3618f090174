// The agent's counters and states: what /metrics, /healthz, the maintenance counters and the
// health events are made of. Only counts, states and sizes: never a plate, a pixel or a name.
#pragma once

#include <array>
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

// Upper bounds (seconds) of the acknowledgement-latency histogram: from the end of a pass (its
// last frame) to the service's acknowledgement of its event. Live delivery takes well under a
// second; the long buckets show a backlog draining after an outage.
inline constexpr std::array<double, 12> kAckLatencyBounds = {0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                                             5,    10,  30,   60,  300, 3600};

struct AckLatencyHistogram {
  std::array<std::atomic<std::int64_t>, kAckLatencyBounds.size()> buckets{};  // not cumulative
  std::atomic<std::int64_t> over{0};                                          // > the last bound
  std::atomic<std::int64_t> count{0};
  std::atomic<std::int64_t> sum_micros{0};
  void Observe(std::int64_t micros) {
    const double seconds = static_cast<double>(micros) / 1e6;
    std::size_t i = 0;
    while (i < kAckLatencyBounds.size() && seconds > kAckLatencyBounds[i]) ++i;
    if (i < kAckLatencyBounds.size()) {
      ++buckets[i];
    } else {
      ++over;
    }
    ++count;
    sum_micros += micros;
  }
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
  // Torn records the queue dropped from its tail when opened (a power cut or SIGKILL mid-append:
  // only an event whose Append had not returned, so never an acknowledged one).
  std::atomic<std::int64_t> torn_dropped{0};
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
  std::atomic<std::int64_t> events_duplicate{0};  // acknowledged as already stored (200)
  AckLatencyHistogram ack_latency;
};

inline constexpr float kLowConfidence = 0.6f;

}  // namespace portcullis::lane
