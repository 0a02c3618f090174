// LaneAgent: the composition (agent.h). Threads:
//   one per camera   FrameSource -> PassDetector -> seal -> wipe -> SealedQueue::Append
//   uplink           QueueDrainer over the queue (opening the uplink again while it cannot)
//   reporter         maintenance reports to the service (POST /v1/lanes/{lane}/reports)
//   main (Run)       clock-jump watch, health events, the end of file cameras, the stop
//   local servers    /healthz + /metrics; the maintenance port (agent_maintenance.cc)
// Every failure of a camera, the link or the disk is a counted health state, never a crash:
// a lane computer that crash-loops is one nobody can diagnose at 3 a.m.
#include "agent.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "agent_http.h"
#include "agent_internal.h"
#include "hygiene.h"
#include "pass_detector.h"

namespace portcullis::lane {
namespace {

using nlohmann::json;

constexpr std::uint64_t kSequenceLease = 1000;
constexpr const char* kSequenceFile = "state/sequence";
constexpr const char* kLogFile = "logs/agent.log";
constexpr std::uint64_t kMaxLogBytes = std::uint64_t{16} << 20;
constexpr std::uint64_t kLowDiskBytes = std::uint64_t{64} << 20;
constexpr std::int64_t kRecentMicros = std::int64_t{600} * 1'000'000;  // clock/disk: 10 min

std::int64_t SteadyNowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The queue is appended to by every camera thread and drained by the uplink thread.
class LockedQueue final : public SealedQueue {
 public:
  explicit LockedQueue(std::unique_ptr<SealedQueue> queue) : queue_(std::move(queue)) {}
  Status Append(const SealedEvent& event) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_->Append(event);
  }
  Status Front(SealedEvent* event) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_->Front(event);
  }
  Status PopFront(const std::string& event_id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_->PopFront(event_id);
  }
  [[nodiscard]] SealedQueueStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_->stats();
  }

 private:
  std::unique_ptr<SealedQueue> queue_;
  mutable std::mutex mutex_;
};

// Days until the PEM certificate's notAfter (negative: expired), by this device's clock.
bool CertificateDaysLeft(const std::string& path, std::int64_t now_s, std::int64_t* days) {
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return false;
  X509* cert = PEM_read_X509(file, nullptr, nullptr, nullptr);
  std::fclose(file);
  if (cert == nullptr) return false;
  ASN1_TIME* now = ASN1_TIME_set(nullptr, static_cast<time_t>(now_s));
  int d = 0;
  int s = 0;
  const bool ok = now != nullptr && ASN1_TIME_diff(&d, &s, now, X509_get0_notAfter(cert)) == 1;
  ASN1_TIME_free(now);
  X509_free(cert);
  if (!ok) return false;
  const std::int64_t seconds = std::int64_t{d} * 86400 + s;
  // Whole days left, rounded down: -1 as soon as it has expired.
  *days = seconds >= 0 ? seconds / 86400 : -1 + seconds / 86400;
  return true;
}

}  // namespace

const char* LinkStateText(LinkState state) { return LinkStateName(state); }

// ---- AgentCore: what the maintenance port and the servers need from the agent ------------------

AgentLog::AgentLog(DataDir* dir) : dir_(dir) {
  if (dir_ != nullptr && dir_->CreateSubdir("logs").ok()) {
    dir_->NewAppendFile(kLogFile, &file_);  // no file: stderr only (health says disk)
  }
}

void AgentLog::Write(const char* level, const std::string& msg, json fields) {
  fields["level"] = level;
  fields["msg"] = msg;
  const std::string line = fields.dump() + "\n";
  std::lock_guard<std::mutex> lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), stderr);
  if (file_ == nullptr) return;
  if (file_->size() + line.size() > kMaxLogBytes) {
    // A bounded log: start again rather than fill the disk the queue needs.
    file_.reset();
    if (!dir_->Truncate(kLogFile, 0).ok() || !dir_->NewAppendFile(kLogFile, &file_).ok()) return;
  }
  if (!file_->Append(line).ok()) file_.reset();  // disk full: keep logging to stderr
}

namespace {

class Agent final : public LaneAgent, public AgentCore {
 public:
  Agent(LaneAgentConfig config, Env* env, LaneAgentParts parts)
      : config_(std::move(config)), env_(env), parts_(std::move(parts)) {}
  ~Agent() override { StopEverything(); }

  Status Init() {
    if (!parts_.steady_micros) parts_.steady_micros = SteadyNowMicros;
    // The uplink checks certificate validity by the same clock the agent's health uses.
    Env* env = env_;
    config_.service.now_micros = [env] { return env->NowMicros(); };
    counters_.core_dumps_disabled = parts_.core_dumps_disabled && parts_.core_dumps_disabled();
    PORTCULLIS_RETURN_IF_ERROR(
        parts_.open_data_dir(config_.data_dir, &dir_).WithContext("data_dir"));
    log_ = std::make_unique<AgentLog>(dir_.get());
    PORTCULLIS_RETURN_IF_ERROR(ApplyStoredConfig());
    std::unique_ptr<SealedQueue> queue;
    PORTCULLIS_RETURN_IF_ERROR(
        parts_.open_queue(dir_.get(), config_.queue, &queue).WithContext("queue"));
    queue_ = std::make_unique<LockedQueue>(std::move(queue));
    PORTCULLIS_RETURN_IF_ERROR(dir_->CreateSubdir("state"));
    PORTCULLIS_RETURN_IF_ERROR(LoadSequence());
    for (const CameraConfig& camera : config_.cameras) {
      auto c = std::make_unique<CameraCounters>();
      c->id = camera.id;
      counters_.cameras.push_back(std::move(c));
      previews_.push_back(std::make_unique<PreviewSlot>());
    }
    UpdateQueueStats();
    UpdateCertificate();
    const SealedQueueStats stats = queue_->stats();
    log_->Write("info", "agent opened",
                {{"device", config_.device},
                 {"lane", config_.lane},
                 {"cameras", config_.cameras.size()},
                 {"backlog_events", stats.events},
                 {"dropped_torn", stats.dropped_torn},
                 {"next_sequence", next_sequence_},
                 {"core_dumps_disabled", counters_.core_dumps_disabled.load()}});
    return Status::Ok();
  }

  Status Run(const std::atomic<bool>& stop, int drain_timeout_ms) override {
    PORTCULLIS_RETURN_IF_ERROR(StartServers());
    last_wall_us_ = env_->NowMicros();
    last_steady_us_ = parts_.steady_micros();
    // The first health event goes first: the service learns the device is up before any pass.
    QueueHealthEvent();
    std::int64_t next_health_us =
        last_steady_us_ + std::int64_t{config_.health_report_interval_s} * 1'000'000;
    drain_stop_ = false;
    uplink_thread_ = std::thread([this] { UplinkLoop(); });
    reporter_thread_ = std::thread([this] { ReporterLoop(); });
    cameras_running_ = static_cast<int>(config_.cameras.size());
    for (std::size_t i = 0; i < config_.cameras.size(); ++i) {
      camera_threads_.emplace_back([this, i] { CameraLoop(i); });
    }
    log_->Write("info", "running",
                {{"metrics_port", metrics_port()}, {"maintenance_port", maintenance_port()}});
    bool files_ended = false;
    while (!stop.load()) {
      WatchClock();
      const std::int64_t now = parts_.steady_micros();
      if (now >= next_health_us) {
        QueueHealthEvent();
        next_health_us = now + std::int64_t{config_.health_report_interval_s} * 1'000'000;
      }
      if (cameras_running_.load() == 0) {
        files_ended = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // Graceful stop: cameras first (each finishes and seals its open passes), then the queue
    // gets until drain_timeout_ms to empty when the files ended by themselves (a stop signal
    // leaves the queue for the next start: it is durable).
    stop_cameras_ = true;
    for (std::thread& t : camera_threads_) t.join();
    camera_threads_.clear();
    if (files_ended) {
      const std::int64_t deadline = parts_.steady_micros() + std::int64_t{drain_timeout_ms} * 1000;
      while (!stop.load() && parts_.steady_micros() < deadline) {
        UpdateQueueStats();
        if (counters_.backlog_events.load() == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    StopEverything();
    const SealedQueueStats stats = queue_->stats();
    log_->Write(
        "info", "stopped",
        {{"reason", files_ended ? "cameras ended" : "stop requested"},
         {"backlog_events", stats.events},
         {"delivered", counters_.events_delivered.load()},
         {"lost", counters_.events_lost_disk_full.load() + counters_.events_lost_queue_full.load() +
                      counters_.events_lost_other.load()}});
    return Status::Ok();
  }

  [[nodiscard]] std::string HealthJson() const override { return Health().dump(); }
  [[nodiscard]] std::string MetricsText() const override;
  [[nodiscard]] std::uint16_t metrics_port() const override {
    return metrics_server_ ? metrics_server_->port() : 0;
  }
  [[nodiscard]] std::uint16_t maintenance_port() const override {
    return maintenance_server_ ? maintenance_server_->port() : 0;
  }

  // ---- AgentCore (the maintenance port) ----
  [[nodiscard]] const LaneAgentConfig& config() const override { return config_; }
  [[nodiscard]] const std::string& config_path() const override { return parts_.config_path; }
  Env* env() override { return env_; }
  DataDir* data_dir() override { return dir_.get(); }
  AgentCounters& counters() override { return counters_; }
  AgentLog& log() override { return *log_; }
  [[nodiscard]] json Health() const override;
  PreviewSlot* preview(const std::string& camera) override {
    for (std::size_t i = 0; i < config_.cameras.size(); ++i) {
      if (config_.cameras[i].id == camera) return previews_[i].get();
    }
    return nullptr;
  }
  [[nodiscard]] bool stopping() const override { return stopping_.load(); }
  std::int64_t SteadyMicros() override { return parts_.steady_micros(); }

  void ReportMaintenance(const std::string& action, json details) override {
    // Durable and ordered with everything else: a sealed maintenance event in the queue...
    LaneEvent event;
    event.kind = EventKind::kMaintenance;
    event.device = config_.device;
    event.lane = config_.lane;
    details["action"] = action;
    event.details_json = details.dump();
    QueueEvent(&event);
    // ...and a plain report (no personal data: session id and action) for the device view.
    json report = {{"kind", "maintenance"}, {"device", config_.device}, {"action", action}};
    for (const char* key : {"session_id", "config_sha256"}) {
      if (details.contains(key)) report[key] = details[key];
    }
    {
      std::lock_guard<std::mutex> lock(report_mutex_);
      if (reports_.size() < 256) reports_.push_back(report.dump());
    }
    report_cv_.notify_all();
    ++counters_.maintenance_reports;
  }

 private:
  // ---- Config stored by the maintenance port: applied at the next start ----
  Status ApplyStoredConfig() {
    std::string text;
    const Status read = dir_->ReadFile(kStoredConfigFile, 1 << 20, &text);
    if (read.code() == Status::Code::kNotFound) return Status::Ok();
    if (!read.ok()) return read.WithContext(kStoredConfigFile);
    LaneAgentConfig stored;
    const std::string base = ConfigBaseDir(parts_.config_path);
    Status s = ParseLaneAgentConfig(text, base, env_, &stored);
    if (s.ok()) s = CheckConfigChangeAllowed(config_, stored);
    if (!s.ok()) {
      // A stored config that no longer validates must not stop the lane: the file's config runs.
      log_->Write("error", "stored config ignored", {{"error", s.ToString()}});
      return Status::Ok();
    }
    config_ = std::move(stored);
    log_->Write("info", "stored config applied", {{"config_sha256", Sha256Hex(text)}});
    return Status::Ok();
  }

  // ---- Sequence numbers: increasing across restarts ----
  // The state file holds a bound no sequence handed out has reached; it is moved forward a lease
  // at a time, so a crash skips at most a lease of numbers and never repeats one.
  Status LoadSequence() {
    std::string text;
    const Status s = dir_->ReadFile(kSequenceFile, 64, &text);
    std::uint64_t next = 1;
    if (s.ok()) {
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      if (text.empty() || text.size() > 20 ||
          !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return Status::Corruption(std::string(kSequenceFile) + ": not a number");
      }
      next = std::stoull(text);
    } else if (s.code() != Status::Code::kNotFound) {
      return s.WithContext(kSequenceFile);
    }
    const SealedQueueStats stats = queue_->stats();
    next = std::max(next, stats.oldest_sequence + stats.events + 1);
    next_sequence_ = next;
    leased_until_ = next;
    return Status::Ok();
  }

  // Under sequence_mutex_. Fails only when the lease cannot be written (disk full).
  Status NextSequence(std::uint64_t* sequence) {
    std::lock_guard<std::mutex> lock(sequence_mutex_);
    if (next_sequence_ >= leased_until_) {
      const std::uint64_t until = next_sequence_ + kSequenceLease;
      PORTCULLIS_RETURN_IF_ERROR(dir_->WriteFileAtomic(kSequenceFile, std::to_string(until)));
      leased_until_ = until;
    }
    *sequence = next_sequence_++;
    return Status::Ok();
  }

  // ---- Events: seal, wipe, queue ----
  void QueueEvent(LaneEvent* event) {
    event->event_id = NewEventId();
    if (event->kind == EventKind::kVehiclePass) {
      for (const LanePlate& plate : event->plates) {
        ++counters_.plate_reads;
        counters_.confidence_micros_sum += static_cast<std::int64_t>(plate.confidence * 1e6f);
        if (plate.confidence < kLowConfidence) ++counters_.low_confidence_reads;
      }
    }
    if (event->started_wall_micros == 0) {
      event->started_wall_micros = env_->NowMicros();
      event->ended_wall_micros = event->started_wall_micros;
    }
    event->monotonic_micros = parts_.steady_micros();
    // The pass ended at its last frame, this long ago by the wall clock (a short interval, so a
    // clock step is unlikely to fall into it; a negative one counts as 0): its monotonic time.
    const std::int64_t pass_end_steady =
        event->monotonic_micros -
        std::max<std::int64_t>(0, env_->NowMicros() - event->ended_wall_micros);
    // Remembered before the append: the drainer may deliver the event before Append returns here.
    RememberPassEnd(event->event_id, pass_end_steady);
    SealedEvent sealed;
    Status s;
    {
      // The queue refuses a sequence that is not greater than the last appended one, so taking a
      // number and appending must be one step: otherwise two cameras' threads can interleave
      // (A takes 5, B takes 6, B appends, A's 5 is refused) and an event is lost.
      std::lock_guard<std::mutex> lock(append_mutex_);
      s = NextSequence(&event->sequence);
      if (s.ok()) s = SealLaneEvent(*event, config_.ingest_public_key, &sealed);
      if (s.ok()) s = queue_->Append(sealed);
    }
    const std::string kind(EventKindName(event->kind));
    const std::string event_id = event->event_id;
    const std::uint64_t sequence = event->sequence;
    const bool clock_jump = event->clock_jump;
    event->Wipe();
    sodium_memzero(sealed.sealed.data(), sealed.sealed.size());
    if (s.ok()) {
      ++counters_.events_queued;
      UpdateQueueStats();
      log_->Write("info", "event queued",
                  {{"event_id", event_id},
                   {"sequence", sequence},
                   {"kind", kind},
                   {"clock_jump", clock_jump},
                   {"bytes", sealed.sealed.size()}});
      return;
    }
    ForgetPassEnd(event_id);
    CountLost(s, event_id, kind);
  }

  void CountLost(const Status& s, const std::string& event_id, const std::string& kind) {
    const char* reason = "error";
    if (s.code() == Status::Code::kResourceExhausted) {
      const SealedQueueStats stats = queue_->stats();
      const bool queue_full = stats.events >= config_.queue.max_events ||
                              stats.bytes + (std::uint64_t{1} << 20) > config_.queue.max_bytes;
      if (queue_full) {
        reason = "queue_full";
        ++counters_.events_lost_queue_full;
      } else {
        reason = "disk_full";
        ++counters_.events_lost_disk_full;
        ++counters_.disk_full_refusals;
        counters_.last_disk_full_steady_us = parts_.steady_micros();
      }
    } else {
      ++counters_.events_lost_other;
    }
    log_->Write(
        "error", "event lost",
        {{"event_id", event_id}, {"kind", kind}, {"reason", reason}, {"error", s.ToString()}});
  }

  void QueueHealthEvent() {
    UpdateQueueStats();
    UpdateCertificate();
    LaneEvent event;
    event.kind = EventKind::kHealth;
    event.device = config_.device;
    event.lane = config_.lane;
    event.details_json = Health().dump();
    ++counters_.health_events;
    QueueEvent(&event);
  }

  void UpdateQueueStats() {
    const SealedQueueStats stats = queue_->stats();
    counters_.backlog_events = static_cast<std::int64_t>(stats.events);
    counters_.backlog_bytes = static_cast<std::int64_t>(stats.bytes);
    counters_.torn_dropped = static_cast<std::int64_t>(stats.dropped_torn);
    std::uint64_t free_bytes = 0;
    if (dir_->FreeBytes(&free_bytes).ok()) {
      counters_.free_bytes =
          static_cast<std::int64_t>(std::min<std::uint64_t>(free_bytes, std::uint64_t{1} << 62));
    }
  }

  void UpdateCertificate() {
    std::int64_t days = 0;
    if (CertificateDaysLeft(config_.service.cert_file, env_->NowMicros() / 1'000'000, &days)) {
      counters_.certificate_days_left = days;
      counters_.certificate_expired = days < 0;
    }
  }

  // ---- Clock jumps: the wall clock against the monotonic one ----
  void WatchClock() {
    std::lock_guard<std::mutex> lock(clock_mutex_);
    const std::int64_t wall = env_->NowMicros();
    const std::int64_t steady = parts_.steady_micros();
    const std::int64_t drift = (wall - last_wall_us_) - (steady - last_steady_us_);
    last_wall_us_ = wall;
    last_steady_us_ = steady;
    if (std::abs(drift) > std::int64_t{config_.clock_jump_threshold_ms} * 1000) {
      ++counters_.clock_jumps;
      counters_.last_clock_jump_ms = drift / 1000;
      counters_.last_clock_jump_steady_us = steady;
      log_->Write("warn", "clock jump", {{"jump_ms", drift / 1000}});
    }
  }

  // ---- Camera threads ----
  void CameraLoop(std::size_t index) {
    const CameraConfig& camera = config_.cameras[index];
    CameraCounters& counters = *counters_.cameras[index];
    PreviewSlot& preview = *previews_[index];
    std::unique_ptr<FrameSource> source;
    std::unique_ptr<PassDetector> detector;
    Status s = parts_.open_camera(camera, &source);
    if (s.ok()) s = parts_.make_detector(config_, camera, &detector);
    if (!s.ok()) {
      log_->Write("error", "camera cannot start", {{"camera", camera.id}, {"error", s.ToString()}});
      counters.state = static_cast<int>(CameraState::kUnavailable);
      // A camera that cannot even be set up keeps the agent running (the others, the queue).
      while (!stop_cameras_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return;
    }
    // Jumps seen before this camera's current pass: a pass during which one happened is flagged.
    std::int64_t jumps_seen = counters_.clock_jumps.load();
    int last_state = -1;
    std::vector<LaneEvent> events;
    const auto emit = [&] {
      const std::int64_t jumps = counters_.clock_jumps.load();
      for (LaneEvent& event : events) {
        if (jumps != jumps_seen) event.clock_jump = true;
        event.device = config_.device;
        event.lane = config_.lane;
        if (event.camera.empty()) event.camera = camera.id;
        ++counters.passes;
        ++counters_.passes;
        QueueEvent(&event);
      }
      if (!events.empty()) jumps_seen = jumps;
      events.clear();
    };
    while (!stop_cameras_.load()) {
      Frame frame;
      s = source->Next(std::min(250, camera.stall_timeout_ms), &frame);
      const int state = static_cast<int>(source->state());
      counters.state = state;
      counters.corrupt_frames = source->corrupt_frames();
      counters.reconnects = source->reconnects();
      if (state != last_state) {
        log_->Write("info", "camera state",
                    {{"camera", camera.id}, {"state", CameraStateName(source->state())}});
        last_state = state;
      }
      if (s.ok()) {
        ++counters.frames;
        WatchClock();
        preview.MaybeRender(frame.bgr, parts_.steady_micros(), config_.maintenance.max_preview_fps);
        const Status analysed = detector->Analyse(frame, &events);
        WipeMat(&frame.bgr);
        if (!analysed.ok()) {
          log_->Write("error", "analysis failed",
                      {{"camera", camera.id}, {"error", analysed.ToString()}});
        }
        emit();
      } else if (s.code() == Status::Code::kNotFound) {
        break;  // a file ended
      }
    }
    // Finish what is in flight: passes still open are sealed and queued, not dropped.
    if (detector->Flush(&events).ok()) emit();
    preview.Clear();
    if (!stop_cameras_.load()) counters.state = static_cast<int>(CameraState::kEnded);
    --cameras_running_;
  }

  // ---- Uplink thread ----
  void UplinkLoop() {
    const auto stop = [this] { return drain_stop_.load(); };
    while (!drain_stop_.load()) {
      std::unique_ptr<Uplink> uplink;
      const Status s = parts_.open_uplink(config_.service, &uplink);
      if (!s.ok()) {
        // e.g. a certificate that cannot be loaded: a state, retried, never a crash loop.
        counters_.link_state =
            static_cast<int>(counters_.certificate_expired.load() ? LinkState::kCertificateExpired
                                                                  : LinkState::kTlsFailed);
        log_->Write("error", "uplink cannot open", {{"error", s.ToString()}});
        WaitFor(drain_stop_, 5000);
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(report_mutex_);
        report_uplink_ = uplink.get();
      }
      parts_.run_drainer(queue_.get(), uplink.get(), config_.service, stop,
                         [this](const DrainStats& stats) { OnDrain(stats); });
      {
        std::lock_guard<std::mutex> lock(report_mutex_);
        report_uplink_ = nullptr;
      }
    }
  }

  // Events queued by this process, by id: when their pass ended (monotonic), for the latency of
  // their acknowledgement. Bounded: past kMaxPendingAcks (a long outage) the oldest are
  // forgotten, and their acknowledgement is not timed (nor is one of an event queued before a
  // restart).
  static constexpr std::size_t kMaxPendingAcks = 100000;
  void RememberPassEnd(const std::string& event_id, std::int64_t steady_micros) {
    std::lock_guard<std::mutex> lock(ack_mutex_);
    if (pending_acks_.size() >= kMaxPendingAcks) {
      pending_acks_.erase(pending_order_.front());
      pending_order_.pop_front();
    }
    if (pending_acks_.emplace(event_id, steady_micros).second) pending_order_.push_back(event_id);
  }

  void ForgetPassEnd(const std::string& event_id) {
    std::lock_guard<std::mutex> lock(ack_mutex_);
    if (pending_acks_.erase(event_id) == 0) return;
    const auto at = std::find(pending_order_.rbegin(), pending_order_.rend(), event_id);
    if (at != pending_order_.rend()) pending_order_.erase(std::next(at).base());
  }

  void OnAcknowledged(const std::string& event_id, bool duplicate) {
    std::int64_t pass_end = -1;
    {
      std::lock_guard<std::mutex> lock(ack_mutex_);
      const auto it = pending_acks_.find(event_id);
      if (it != pending_acks_.end()) {
        pass_end = it->second;
        pending_acks_.erase(it);
        // Acknowledged in queue order, so the id is at (or near) the front of the order.
        const auto at = std::find(pending_order_.begin(), pending_order_.end(), event_id);
        if (at != pending_order_.end()) pending_order_.erase(at);
      }
    }
    if (duplicate) ++counters_.events_duplicate;
    if (pass_end < 0) return;
    const std::int64_t latency = std::max<std::int64_t>(0, parts_.steady_micros() - pass_end);
    counters_.ack_latency.Observe(latency);
    // One line per acknowledged event (ids and times only): the operator can follow a pass from
    // "event queued" to here, and benchmarks read the exact latency.
    log_->Write("info", "event acknowledged",
                {{"event_id", event_id}, {"latency_ms", latency / 1000}, {"duplicate", duplicate}});
  }

  void OnDrain(const DrainStats& stats) {
    if (!stats.acknowledged.empty())
      OnAcknowledged(stats.acknowledged, stats.acknowledged_duplicate);
    const std::int64_t delivered = static_cast<std::int64_t>(stats.delivered);
    const std::int64_t before = counters_.events_delivered.exchange(delivered);
    counters_.events_rejected = static_cast<std::int64_t>(stats.rejected);
    const int previous = counters_.link_state.exchange(static_cast<int>(stats.state));
    if (stats.state == LinkState::kUp) counters_.link_ever_up = true;
    UpdateQueueStats();
    if (previous != static_cast<int>(stats.state)) {
      log_->Write(stats.state == LinkState::kUp ? "info" : "warn", "link state",
                  {{"state", LinkStateText(stats.state)}, {"backoff_ms", stats.backoff_ms}});
    }
    if (delivered > before && delivered % 100 == 0) {
      log_->Write("info", "delivered", {{"events", delivered}});
    }
  }

  // ---- Reporter thread: maintenance reports (best effort; the sealed event is the record) ----
  void ReporterLoop() {
    std::unique_lock<std::mutex> lock(report_mutex_);
    while (!drain_stop_.load()) {
      report_cv_.wait_for(lock, std::chrono::milliseconds(500));
      while (!reports_.empty() && report_uplink_ != nullptr && !drain_stop_.load()) {
        const std::string report = reports_.front();
        Uplink* uplink = report_uplink_;
        lock.unlock();
        LinkState state = LinkState::kUp;
        const Status s = uplink->SendReport(report, &state);
        lock.lock();
        if (!s.ok()) break;  // retried at the next wake-up
        if (!reports_.empty()) reports_.pop_front();
      }
    }
  }

  static void WaitFor(const std::atomic<bool>& flag, int ms) {
    for (int waited = 0; waited < ms && !flag.load(); waited += 20) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  Status StartServers() {
    if (!config_.metrics_listen.empty()) {
      LocalHttpOptions options;
      PORTCULLIS_RETURN_IF_ERROR(
          ParseListenAddress(config_.metrics_listen, &options.host, &options.port)
              .WithContext("metrics_listen"));
      PORTCULLIS_RETURN_IF_ERROR(
          LocalHttpServer::Start(
              options, [this](const LocalRequest& r) { return ServeLocal(r); }, &metrics_server_)
              .WithContext("metrics_listen"));
    }
    if (!config_.maintenance.listen.empty()) {
      PORTCULLIS_RETURN_IF_ERROR(
          StartMaintenanceServer(this, &maintenance_server_).WithContext("maintenance.listen"));
    }
    return Status::Ok();
  }

  LocalResponse ServeLocal(const LocalRequest& request) {
    if (request.method == "GET" && request.path == "/healthz") {
      UpdateQueueStats();
      const json health = Health();
      return LocalResponse::Json(health["status"] == "failing" ? 503 : 200, health.dump());
    }
    if (request.method == "GET" && request.path == "/metrics") {
      UpdateQueueStats();
      LocalResponse r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = MetricsText();
      return r;
    }
    return LocalResponse::Error(404, "not_found", "no such endpoint");
  }

  void StopEverything() {
    if (stopping_.exchange(true)) return;
    stop_cameras_ = true;
    for (std::thread& t : camera_threads_) t.join();
    camera_threads_.clear();
    if (maintenance_server_) maintenance_server_->Stop();
    if (metrics_server_) metrics_server_->Stop();
    drain_stop_ = true;
    report_cv_.notify_all();
    if (uplink_thread_.joinable()) uplink_thread_.join();
    if (reporter_thread_.joinable()) reporter_thread_.join();
    for (auto& p : previews_) p->Clear();
  }

  LaneAgentConfig config_;
  Env* env_;
  LaneAgentParts parts_;
  std::unique_ptr<DataDir> dir_;
  std::unique_ptr<AgentLog> log_;
  std::unique_ptr<SealedQueue> queue_;
  AgentCounters counters_;
  std::vector<std::unique_ptr<PreviewSlot>> previews_;

  std::mutex sequence_mutex_;
  std::mutex append_mutex_;  // sequence number + seal + append, as one step (QueueEvent)
  std::uint64_t next_sequence_ = 1;
  std::uint64_t leased_until_ = 1;

  std::mutex ack_mutex_;
  std::unordered_map<std::string, std::int64_t> pending_acks_;  // event id -> pass end (steady)
  std::deque<std::string> pending_order_;                       // ids, oldest first

  std::mutex clock_mutex_;
  std::int64_t last_wall_us_ = 0;
  std::int64_t last_steady_us_ = 0;

  std::atomic<bool> stop_cameras_{false};
  std::atomic<bool> drain_stop_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<int> cameras_running_{0};
  std::vector<std::thread> camera_threads_;
  std::thread uplink_thread_;
  std::thread reporter_thread_;

  std::mutex report_mutex_;
  std::condition_variable report_cv_;
  std::deque<std::string> reports_;
  Uplink* report_uplink_ = nullptr;

  std::unique_ptr<LocalHttpServer> metrics_server_;
  std::unique_ptr<LocalHttpServer> maintenance_server_;
};

json Agent::Health() const {
  const std::int64_t now = parts_.steady_micros();
  json checks = json::object();
  bool degraded = false;
  bool failing = false;

  json cameras = json::array();
  int cameras_ok = 0;
  int cameras_starting = 0;
  for (const auto& c : counters_.cameras) {
    const int raw = c->state.load();
    const auto state = static_cast<CameraState>(raw);
    cameras_ok +=
        raw != kCameraStarting && (state == CameraState::kOk || state == CameraState::kEnded) ? 1
                                                                                              : 0;
    cameras_starting += raw == kCameraStarting ? 1 : 0;
    cameras.push_back({{"id", c->id},
                       {"state", raw == kCameraStarting ? "starting" : CameraStateName(state)},
                       {"frames", c->frames.load()},
                       {"corrupt_frames", c->corrupt_frames.load()},
                       {"reconnects", c->reconnects.load()}});
  }
  const bool cameras_all_ok = cameras_ok == static_cast<int>(counters_.cameras.size());
  checks["cameras"] = {{"ok", cameras_all_ok}, {"cameras", cameras}};
  degraded |= !cameras_all_ok;
  // Failing: no camera works, and none is still starting (the first second after a start).
  failing |= cameras_ok == 0 && cameras_starting == 0 && !counters_.cameras.empty();

  const auto link = static_cast<LinkState>(counters_.link_state.load());
  const bool link_ok = link == LinkState::kUp;
  checks["link"] = {{"ok", link_ok},
                    {"state", LinkStateText(link)},
                    {"delivered", counters_.events_delivered.load()},
                    {"rejected", counters_.events_rejected.load()}};
  degraded |= !link_ok;

  const std::int64_t lost = counters_.events_lost_disk_full.load() +
                            counters_.events_lost_queue_full.load() +
                            counters_.events_lost_other.load();
  const std::int64_t backlog = counters_.backlog_events.load();
  const bool queue_ok = counters_.events_lost_queue_full.load() == 0 &&
                        static_cast<std::uint64_t>(backlog) < config_.queue.max_events / 2;
  checks["queue"] = {{"ok", queue_ok},
                     {"backlog_events", backlog},
                     {"backlog_bytes", counters_.backlog_bytes.load()},
                     {"lost_events", lost},
                     {"torn_dropped", counters_.torn_dropped.load()}};
  degraded |= !queue_ok;

  const std::int64_t last_full = counters_.last_disk_full_steady_us.load();
  const bool disk_full_recently = last_full != 0 && now - last_full < kRecentMicros;
  const std::int64_t free_bytes = counters_.free_bytes.load();
  const bool disk_ok = !disk_full_recently &&
                       (free_bytes < 0 || static_cast<std::uint64_t>(free_bytes) >= kLowDiskBytes);
  checks["disk"] = {{"ok", disk_ok},
                    {"free_bytes", free_bytes},
                    {"disk_full", disk_full_recently},
                    {"disk_full_refusals", counters_.disk_full_refusals.load()}};
  degraded |= !disk_ok;

  const std::int64_t last_jump = counters_.last_clock_jump_steady_us.load();
  const bool jumped_recently = last_jump != 0 && now - last_jump < kRecentMicros;
  checks["clock"] = {{"ok", !jumped_recently},
                     {"jumps", counters_.clock_jumps.load()},
                     {"last_jump_ms", counters_.last_clock_jump_ms.load()}};
  degraded |= jumped_recently;

  const bool dumps_off = counters_.core_dumps_disabled.load();
  checks["core_dumps"] = {{"ok", dumps_off}, {"disabled", dumps_off}};
  degraded |= !dumps_off;

  const std::int64_t days = counters_.certificate_days_left.load();
  const bool known = days != -100000;
  const bool cert_ok = known && days >= 14;
  json cert = {{"ok", cert_ok}, {"expired", counters_.certificate_expired.load()}};
  cert["days_to_expiry"] = known ? json(days) : json(nullptr);
  checks["certificate"] = cert;
  degraded |= !cert_ok;
  failing |= counters_.certificate_expired.load();

  return {{"status", failing    ? "failing"
                     : degraded ? "degraded"
                                : "ok"},
          {"device", config_.device},
          {"lane", config_.lane},
          {"checks", checks}};
}

std::string Agent::MetricsText() const {
  std::string out;
  const auto counter = [&out](const char* name, const char* help, std::int64_t value,
                              const char* type = "counter") {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + " " + std::to_string(value) + "\n";
  };
  // One counter per camera, labelled with its id.
  auto per_camera = [&](const std::string& name, const std::string& help,
                        std::atomic<std::int64_t> CameraCounters::*member) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " counter\n";
    for (const auto& c : counters_.cameras) {
      out += name + "{camera=\"" + c->id + "\"} " + std::to_string(((*c).*member).load()) + "\n";
    }
  };
  per_camera("portcullis_lane_frames_total", "Frames decoded, per camera", &CameraCounters::frames);
  out +=
      "# HELP portcullis_lane_camera_state Camera state (1 for the current one)\n"
      "# TYPE portcullis_lane_camera_state gauge\n";
  for (const auto& c : counters_.cameras) {
    for (CameraState s : {CameraState::kOk, CameraState::kStalled, CameraState::kUnavailable,
                          CameraState::kEnded}) {
      out += "portcullis_lane_camera_state{camera=\"" + c->id + "\",state=\"" + CameraStateName(s) +
             "\"} " + (c->state.load() == static_cast<int>(s) ? "1" : "0") + "\n";
    }
  }
  per_camera("portcullis_lane_corrupt_frames_total",
             "Frames refused as corrupt (empty, wrong type or size), per camera",
             &CameraCounters::corrupt_frames);
  per_camera("portcullis_lane_camera_reconnects_total",
             "Times a camera was opened again after it was lost, per camera",
             &CameraCounters::reconnects);
  counter("portcullis_lane_passes_total", "Vehicle passes detected", counters_.passes.load());
  counter("portcullis_lane_events_queued_total", "Events sealed and queued",
          counters_.events_queued.load());
  counter("portcullis_lane_events_delivered_total", "Events the service acknowledged",
          counters_.events_delivered.load());
  counter("portcullis_lane_events_rejected_total", "Events the service refused (4xx)",
          counters_.events_rejected.load());
  counter("portcullis_lane_events_duplicate_total",
          "Events the service acknowledged as already stored (a re-send after a lost answer)",
          counters_.events_duplicate.load());
  {
    const AckLatencyHistogram& h = counters_.ack_latency;
    out +=
        "# HELP portcullis_lane_ack_latency_seconds From the end of a pass (its last frame) to "
        "the service's acknowledgement of its event\n"
        "# TYPE portcullis_lane_ack_latency_seconds histogram\n";
    std::int64_t cumulative = 0;
    for (std::size_t i = 0; i < kAckLatencyBounds.size(); ++i) {
      cumulative += h.buckets[i].load();
      char bound[32];
      std::snprintf(bound, sizeof bound, "%g", kAckLatencyBounds[i]);
      out += std::string("portcullis_lane_ack_latency_seconds_bucket{le=\"") + bound + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    const std::int64_t count = h.count.load();
    char sum[32];
    std::snprintf(sum, sizeof sum, "%.6f", static_cast<double>(h.sum_micros.load()) / 1e6);
    out += "portcullis_lane_ack_latency_seconds_bucket{le=\"+Inf\"} " + std::to_string(count) +
           "\nportcullis_lane_ack_latency_seconds_sum " + sum +
           "\nportcullis_lane_ack_latency_seconds_count " + std::to_string(count) + "\n";
  }
  out +=
      "# HELP portcullis_lane_events_lost_total Events that could not be queued, by reason\n"
      "# TYPE portcullis_lane_events_lost_total counter\n"
      "portcullis_lane_events_lost_total{reason=\"disk_full\"} " +
      std::to_string(counters_.events_lost_disk_full.load()) +
      "\nportcullis_lane_events_lost_total{reason=\"queue_full\"} " +
      std::to_string(counters_.events_lost_queue_full.load()) +
      "\nportcullis_lane_events_lost_total{reason=\"error\"} " +
      std::to_string(counters_.events_lost_other.load()) + "\n";
  counter("portcullis_lane_backlog_events", "Events queued, not yet acknowledged",
          counters_.backlog_events.load(), "gauge");
  counter("portcullis_lane_backlog_bytes", "Bytes of the queue on disk",
          counters_.backlog_bytes.load(), "gauge");
  counter("portcullis_lane_queue_torn_dropped",
          "Torn records dropped from the queue's tail when it was opened (a crash mid-append)",
          counters_.torn_dropped.load(), "gauge");
  out +=
      "# HELP portcullis_lane_link_state Link to the service (1 for the current state)\n"
      "# TYPE portcullis_lane_link_state gauge\n";
  for (LinkState s : {LinkState::kUp, LinkState::kUnreachable, LinkState::kCertificateExpired,
                      LinkState::kTlsFailed, LinkState::kRejected, LinkState::kServerError,
                      LinkState::kUnauthorized}) {
    out += std::string("portcullis_lane_link_state{state=\"") + LinkStateText(s) + "\"} " +
           (counters_.link_state.load() == static_cast<int>(s) ? "1" : "0") + "\n";
  }
  counter("portcullis_lane_clock_jumps_total", "Wall-clock jumps against the monotonic clock",
          counters_.clock_jumps.load());
  counter("portcullis_lane_disk_full_refusals_total", "Appends refused because the disk was full",
          counters_.disk_full_refusals.load());
  counter("portcullis_lane_health_events_total", "Health events queued",
          counters_.health_events.load());
  counter("portcullis_lane_maintenance_sessions_total", "Maintenance sessions first used",
          counters_.maintenance_sessions.load());
  counter("portcullis_lane_maintenance_refusals_total", "Maintenance requests refused",
          counters_.maintenance_refusals.load());
  counter("portcullis_lane_maintenance_config_changes_total", "Config updates accepted",
          counters_.maintenance_config_changes.load());
  counter("portcullis_lane_free_bytes", "Free bytes on the data dir's file system",
          counters_.free_bytes.load(), "gauge");
  counter("portcullis_lane_certificate_days_left", "Days until the device certificate expires",
          counters_.certificate_days_left.load(), "gauge");
  counter("portcullis_lane_core_dumps_disabled", "1 when this process cannot dump core",
          counters_.core_dumps_disabled.load() ? 1 : 0, "gauge");
  return out;
}

}  // namespace

std::string ConfigBaseDir(const std::string& config_path) {
  const std::size_t slash = config_path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : config_path.substr(0, slash);
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

Status CheckConfigChangeAllowed(const LaneAgentConfig& current, const LaneAgentConfig& next) {
  // What a maintenance session may never change: who the device is, where its data lives, whom
  // it seals to, whom it talks to and who may open it. A technician who could point the ingest
  // key at a key of their own would be able to read every later event.
  if (next.device != current.device) return Status::InvalidArgument("device cannot change");
  if (next.lane != current.lane) return Status::InvalidArgument("lane cannot change");
  if (next.data_dir != current.data_dir) return Status::InvalidArgument("data_dir cannot change");
  if (next.ingest_public_key.bytes != current.ingest_public_key.bytes) {
    return Status::InvalidArgument("ingest_public_key_file cannot change");
  }
  const UplinkConfig& a = current.service;
  const UplinkConfig& b = next.service;
  if (a.url != b.url || a.ca_file != b.ca_file || a.cert_file != b.cert_file ||
      a.key_file != b.key_file || a.token_file != b.token_file) {
    return Status::InvalidArgument("service connection cannot change");
  }
  if (next.maintenance.listen != current.maintenance.listen ||
      next.maintenance.grant_public_key.bytes != current.maintenance.grant_public_key.bytes ||
      next.maintenance.cert_file != current.maintenance.cert_file ||
      next.maintenance.key_file != current.maintenance.key_file) {
    return Status::InvalidArgument("maintenance access cannot change");
  }
  if (next.metrics_listen != current.metrics_listen) {
    return Status::InvalidArgument("metrics_listen cannot change");
  }
  return Status::Ok();
}

Status LaneAgent::Create(const LaneAgentConfig& config, Env* env, const LaneAgentParts& parts,
                         std::unique_ptr<LaneAgent>* agent) {
  if (!parts.open_data_dir || !parts.open_queue || !parts.open_camera || !parts.make_detector ||
      !parts.open_uplink || !parts.run_drainer) {
    return Status::InvalidArgument("LaneAgent: every part must be given");
  }
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  auto a = std::make_unique<Agent>(config, env, parts);
  PORTCULLIS_RETURN_IF_ERROR(a->Init());
  *agent = std::move(a);
  return Status::Ok();
}

}  // namespace portcullis::lane
