// The lane agent's link to the service: HTTPS with mutual TLS (the device's own certificate and
// key, the service's CA pinned) plus the device's bearer token. It delivers sealed events to
// POST /v1/lanes/{lane}/events (docs/lane-agent.md) and device reports to
// POST /v1/lanes/{lane}/reports. The service answers 201 for a new event and 200 for one it
// already has (same event id): a retry after a lost answer never makes a second record.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "portcullis/lane_event.h"
#include "portcullis/status.h"
#include "sealed_queue.h"

namespace portcullis::lane {

struct UplinkConfig {
  std::string url;         // "https://portcullis.example:8443"
  std::string ca_file;     // PEM: the CA that signed the service's certificate (pinned)
  std::string cert_file;   // PEM: this device's certificate (CN = its principal name)
  std::string key_file;    // PEM: its private key
  std::string token_file;  // the device's API token (one line), read once at start
  std::string lane;        // path parameter of the events endpoint
  int connect_timeout_ms = 3000;
  int request_timeout_ms = 10000;
  int backoff_initial_ms = 500;  // doubled after each failure, with jitter, up to backoff_max_ms
  int backoff_max_ms = 60000;
};

// Why the last delivery failed, for health and metrics.
enum class LinkState {
  kUp,
  kUnreachable,         // connect refused / timed out / DNS
  kCertificateExpired,  // our certificate or the server's is outside its validity period
  kTlsFailed,           // handshake failed otherwise (wrong CA, revoked, ...)
  kRejected,            // the service answered 4xx: the event will never be accepted as is
  kServerError,         // 5xx, 429 or 503: retry later (Retry-After honoured)
};
const char* LinkStateName(LinkState state);  // "up", "unreachable", "certificate_expired", ...

class Uplink {
 public:
  static Status Open(const UplinkConfig& config, std::unique_ptr<Uplink>* uplink);
  virtual ~Uplink() = default;
  // Sends one event. OK when the service acknowledged it (201 or 200-duplicate). Otherwise
  // *state says why; *retry_after_ms is the service's Retry-After when it gave one, else 0.
  virtual Status SendEvent(const SealedEvent& event, LinkState* state, int* retry_after_ms) = 0;
  // Sends a device report (JSON, no personal data).
  virtual Status SendReport(const std::string& json, LinkState* state) = 0;
};

struct DrainStats {
  std::uint64_t delivered = 0;
  std::uint64_t rejected = 0;  // 4xx: moved to the dead-letter count, not retried forever
  LinkState state = LinkState::kUp;
  int backoff_ms = 0;
};

// Drains a queue through an uplink in order, one event at a time, until stop() returns true:
// Front -> SendEvent -> PopFront; on failure waits with exponential back-off (interruptible by
// stop) and tries the same event again. A 4xx rejection is logged by event id and popped (a
// poison event must not block the lane forever) and counted. Thread: its own.
class QueueDrainer {
 public:
  QueueDrainer(SealedQueue* queue, Uplink* uplink, const UplinkConfig& config);
  // Runs until stop() is true. on_change is called whenever stats change (metrics, health).
  void Run(const std::function<bool()>& stop,
           const std::function<void(const DrainStats&)>& on_change);
  // One attempt (tests and benchmarks): delivers the front event if any. NotFound when empty.
  Status DrainOne(DrainStats* stats);

 private:
  SealedQueue* queue_;
  Uplink* uplink_;
  UplinkConfig config_;
  DrainStats stats_;
};

}  // namespace portcullis::lane
