// The lane agent's link to the service: HTTPS with mutual TLS (the device's own certificate and
// key, the service's CA pinned) plus the device's bearer token. It delivers sealed events to
// POST /v1/lanes/{lane}/events (docs/lane-agent.md) and device reports to
// POST /v1/lanes/{lane}/reports. The service answers 201 for a new event and 200 for one it
// already has (same event id): a retry after a lost answer never makes a second record.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
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
  // The wall clock the certificate validity check uses (tests move it); null: the system's.
  std::function<std::int64_t()> now_micros;
};

// Why the last delivery failed, for health and metrics.
enum class LinkState {
  kUp,
  kUnreachable,         // connect refused / timed out / DNS
  kCertificateExpired,  // our certificate or the server's is outside its validity period
  kTlsFailed,           // handshake failed otherwise (wrong CA, revoked, ...)
  kRejected,            // the service answered 400/409/413/415/422: this event will never be
                        // accepted as is (a poison event: popped and counted, not retried)
  kServerError,         // 5xx, 429, 503 (or 404/408: a service without the route): retry later
                        // (Retry-After honoured)
  kUnauthorized,        // 401/403: the device's token or permissions are wrong; every event
                        // would fail the same way, so nothing is popped: retried with back-off
};
const char* LinkStateName(LinkState state);  // "up", "unreachable", "certificate_expired", ...

// The state an HTTP status maps to (kUp for 2xx). Exposed for tests and the agent's reports.
LinkState LinkStateForHttpStatus(int status);

class Uplink {
 public:
  static Status Open(const UplinkConfig& config, std::unique_ptr<Uplink>* uplink);
  virtual ~Uplink() = default;
  // Sends one event. OK when the service acknowledged it (201 or 200-duplicate; *duplicate says
  // which). Otherwise *state says why; *retry_after_ms is the service's Retry-After when it gave
  // one, else 0.
  virtual Status SendEvent(const SealedEvent& event, LinkState* state, int* retry_after_ms,
                           bool* duplicate) = 0;
  // Sends a device report (JSON, no personal data).
  virtual Status SendReport(const std::string& json, LinkState* state) = 0;
};

// Reads a PEM certificate's validity period (microseconds since the epoch). For the agent's
// health page (days left on its certificate) and the pre-connect check.
Status CertificateValidity(const std::string& pem_file, std::int64_t* not_before_micros,
                           std::int64_t* not_after_micros);

struct DrainStats {
  std::uint64_t delivered = 0;
  std::uint64_t duplicates = 0;  // delivered, and the service already had it (200 duplicate)
  std::uint64_t rejected = 0;    // 4xx: moved to the dead-letter count, not retried forever
  std::uint64_t failures = 0;    // attempts that failed and will be retried
  LinkState state = LinkState::kUp;
  int backoff_ms = 0;  // the wait before the next attempt; 0 when the link is up
  // The event the last DrainOne delivered (acknowledged and popped); "" when it delivered none.
  std::string acknowledged;
  bool acknowledged_duplicate = false;  // ... and the service already had it
};

// Drains a queue through an uplink in order, one event at a time, until stop() returns true:
// Front -> SendEvent -> PopFront; on failure waits with exponential back-off (interruptible by
// stop) and tries the same event again. A 4xx rejection is logged by event id and popped (a
// poison event must not block the lane forever) and counted. Thread: its own.
class QueueDrainer {
 public:
  QueueDrainer(SealedQueue* queue, Uplink* uplink, const UplinkConfig& config);
  // Runs until stop() is true (checked at least every 100 ms while waiting) or Stop() is called.
  // on_change is called whenever stats change (metrics, health). An empty queue is waited on
  // (Notify() wakes it at once; otherwise it looks again every idle_poll_ms), never spun on.
  void Run(const std::function<bool()>& stop,
           const std::function<void(const DrainStats&)>& on_change);
  // One attempt (tests and benchmarks): delivers the front event if any. NotFound when empty;
  // OK when delivered; otherwise the failure (*stats says why; a poison event was popped).
  Status DrainOne(DrainStats* stats);
  // Something was appended: wake Run if it is waiting on an empty queue (not during a back-off).
  void Notify();
  // Makes Run return soon (interrupts a back-off or an idle wait).
  void Stop();
  [[nodiscard]] DrainStats stats() const;

  int idle_poll_ms = 1000;

 private:
  // The wait after `failures` consecutive failures: initial * 2^(failures-1), capped, with
  // jitter in [d/2, d]; a Retry-After overrides it (capped at backoff_max_ms too).
  int BackoffMs(std::uint64_t failures, int retry_after_ms);
  // Waits up to ms, returning early on Stop(), stop() or (when wake_on_notify) Notify().
  void Wait(int ms, bool wake_on_notify, const std::function<bool()>& stop);

  SealedQueue* queue_;
  Uplink* uplink_;
  UplinkConfig config_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool notified_ = false;
  bool stopping_ = false;
  DrainStats stats_;  // under mutex_
  std::mt19937_64 rng_;
};

}  // namespace portcullis::lane
