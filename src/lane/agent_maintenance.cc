// The maintenance port: what a technician may do on a lane device, and nothing more.
//
// Every request carries "Authorization: Grant <token>", a grant the service signed for this
// device and a time window (maintenance_grant.h). The port offers exactly five things: health,
// versions, accuracy counters, a live camera preview rendered from memory, and a config update
// validated like the config file. There is no endpoint for events, crops, the queue, logs or
// files: every other path or method is 404, so there is nothing to export.
#include <sodium.h>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <set>
#include <thread>

#include "agent_internal.h"
#include "maintenance_grant.h"

namespace portcullis::lane {
namespace {

using nlohmann::json;

constexpr int kMaxPreviewStreams = 2;
constexpr const char* kBoundary = "portcullis-preview";

// Model file hashes from MANIFEST.json's "outputs" (what the prepare step recorded).
json ModelVersions(const std::string& model_dir, Env* env) {
  std::string dir = model_dir;
  if (dir.empty()) {
    const char* from_env = std::getenv("PORTCULLIS_MODEL_DIR");
    if (from_env != nullptr) dir = from_env;
  }
  if (dir.empty()) return {{"manifest", nullptr}};
  std::string text;
  if (!env->ReadFile(dir + "/MANIFEST.json", 1 << 20, &text).ok()) {
    return {{"manifest", nullptr}, {"dir", dir}};
  }
  const json doc = json::parse(text, nullptr, false);
  json files = json::object();
  if (doc.is_object() && doc.contains("outputs") && doc["outputs"].is_object()) {
    for (const auto& [name, hash] : doc["outputs"].items()) {
      if (hash.is_string()) files[name] = hash;
    }
  }
  return {{"manifest", dir + "/MANIFEST.json"}, {"files", files}};
}

class Maintenance {
 public:
  explicit Maintenance(AgentCore* core) : core_(core) {}

  LocalResponse Serve(const LocalRequest& request) {
    MaintenanceGrant grant;
    if (auto refused = Authorise(request, &grant)) {
      ++core_->counters().maintenance_refusals;
      return *refused;
    }
    FirstUse(grant);
    const std::string& path = request.path;
    if (request.method == "GET" && path == "/maintenance/health") {
      return LocalResponse::Json(200, core_->Health().dump());
    }
    if (request.method == "GET" && path == "/maintenance/versions") return Versions();
    if (request.method == "GET" && path == "/maintenance/counters") return Counters();
    const std::string preview_prefix = "/maintenance/preview/";
    if (request.method == "GET" && path.rfind(preview_prefix, 0) == 0 &&
        path.size() > preview_prefix.size()) {
      return Preview(path.substr(preview_prefix.size()), request.query, grant);
    }
    if (request.method == "PUT" && path == "/maintenance/config") {
      return UpdateConfig(request, grant);
    }
    return LocalResponse::Error(404, "not_found", "no such maintenance endpoint");
  }

 private:
  std::optional<LocalResponse> Authorise(const LocalRequest& request, MaintenanceGrant* grant) {
    const auto it = request.headers.find("authorization");
    constexpr std::string_view kScheme = "Grant ";
    if (it == request.headers.end() || it->second.rfind(kScheme, 0) != 0) {
      return LocalResponse::Error(401, "grant_required",
                                  "send Authorization: Grant <token from the service>");
    }
    const LaneAgentConfig& config = core_->config();
    const std::int64_t now_s = core_->env()->NowMicros() / 1'000'000;
    const GrantCheck check = VerifyMaintenanceGrant(
        std::string_view(it->second).substr(kScheme.size()), config.maintenance.grant_public_key,
        config.device, now_s, config.maintenance.clock_skew_s, grant);
    if (check == GrantCheck::kOk) return std::nullopt;
    core_->log().Write("warn", "maintenance refused", {{"code", GrantCheckCode(check)}});
    const int status =
        check == GrantCheck::kMalformed || check == GrantCheck::kBadSignature ? 401 : 403;
    return LocalResponse::Error(status, GrantCheckCode(check),
                                "the grant does not open this device");
  }

  void FirstUse(const MaintenanceGrant& grant) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!sessions_.insert(grant.session_id).second) return;
    }
    ++core_->counters().maintenance_sessions;
    // The technician's name is in the service's audit log already (it signed the grant): the
    // device records the session id only.
    core_->log().Write("info", "maintenance session",
                       {{"session_id", grant.session_id}, {"expires_s", grant.expires_s}});
    core_->ReportMaintenance("session_used",
                             {{"session_id", grant.session_id}, {"expires_s", grant.expires_s}});
  }

  LocalResponse Versions() {
    const LaneAgentConfig& config = core_->config();
    std::string config_text;
    json config_hash = nullptr;
    if (!core_->config_path().empty() &&
        core_->env()->ReadFile(core_->config_path(), 1 << 20, &config_text).ok()) {
      config_hash = Sha256Hex(config_text);
    }
    std::string stored;
    json stored_hash = nullptr;
    if (core_->data_dir()->ReadFile(kStoredConfigFile, 1 << 20, &stored).ok()) {
      stored_hash = Sha256Hex(stored);
    }
    return LocalResponse::Json(200, json{{"version", PORTCULLIS_LANE_VERSION},
                                         {"models", ModelVersions(config.model_dir, core_->env())},
                                         {"config_sha256", config_hash},
                                         {"stored_config_sha256", stored_hash}}
                                        .dump());
  }

  LocalResponse Counters() {
    AgentCounters& c = core_->counters();
    const std::int64_t reads = c.plate_reads.load();
    const double mean = reads > 0 ? static_cast<double>(c.confidence_micros_sum.load()) / 1e6 /
                                        static_cast<double>(reads)
                                  : 0.0;
    const double low =
        reads > 0 ? static_cast<double>(c.low_confidence_reads.load()) / static_cast<double>(reads)
                  : 0.0;
    json cameras = json::array();
    for (const auto& camera : c.cameras) {
      cameras.push_back({{"id", camera->id},
                         {"frames", camera->frames.load()},
                         {"passes", camera->passes.load()},
                         {"corrupt_frames", camera->corrupt_frames.load()}});
    }
    return LocalResponse::Json(200, json{{"passes", c.passes.load()},
                                         {"plate_reads", reads},
                                         {"mean_confidence", mean},
                                         {"low_confidence_rate", low},
                                         {"low_confidence_threshold", kLowConfidence},
                                         {"cameras", cameras}}
                                        .dump());
  }

  LocalResponse Preview(const std::string& camera, const std::string& query,
                        const MaintenanceGrant& grant) {
    PreviewSlot* slot = core_->preview(camera);
    if (slot == nullptr) return LocalResponse::Error(404, "not_found", "no such camera");
    if (streams_.fetch_add(1) >= kMaxPreviewStreams) {
      --streams_;
      return LocalResponse::Error(429, "too_many_previews", "at most 2 previews at a time");
    }
    // ?frames=N ends the stream after N frames (a still, or a test); else until the grant
    // expires or the technician disconnects.
    int max_frames = 0;
    if (query.rfind("frames=", 0) == 0) {
      const std::string n = query.substr(7);
      if (!n.empty() && n.size() < 6 &&
          std::all_of(n.begin(), n.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
        max_frames = std::stoi(n);
      }
    }
    LocalResponse r;
    r.content_type = std::string("multipart/x-mixed-replace; boundary=") + kBoundary;
    r.headers["Cache-Control"] = "no-store";
    r.headers["X-Content-Type-Options"] = "nosniff";
    const int fps = core_->config().maintenance.max_preview_fps;
    const std::int64_t expires_s = grant.expires_s;
    AgentCore* core = core_;
    std::atomic<int>* streams = &streams_;
    r.stream = [slot, max_frames, fps, expires_s, core,
                streams](const std::function<bool(std::string_view)>& write) {
      slot->AddWatcher();
      std::uint64_t generation = 0;
      std::string jpeg;
      int sent = 0;
      const auto period = std::chrono::microseconds(1'000'000 / fps);
      auto next = std::chrono::steady_clock::now();
      auto last_frame = next;
      while (!core->stopping() && (max_frames == 0 || sent < max_frames) &&
             core->env()->NowMicros() / 1'000'000 < expires_s) {
        if (slot->Latest(&generation, &jpeg)) {
          const std::string part =
              std::string("--") + kBoundary +
              "\r\nContent-Type: image/jpeg\r\nContent-Length: " + std::to_string(jpeg.size()) +
              "\r\n\r\n";
          const bool ok = write(part) && write(jpeg) && write("\r\n");
          sodium_memzero(jpeg.data(), jpeg.size());
          if (!ok) break;
          ++sent;
          next += period;  // the rate limit: never more than max_preview_fps
          std::this_thread::sleep_until(next);
          last_frame = std::chrono::steady_clock::now();
        } else {
          // No new frame for 10 s (camera down, or the client left while none came): stop.
          if (std::chrono::steady_clock::now() - last_frame > std::chrono::seconds(10)) break;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          next = std::chrono::steady_clock::now();
        }
      }
      slot->RemoveWatcher();
      --*streams;
    };
    return r;
  }

  LocalResponse UpdateConfig(const LocalRequest& request, const MaintenanceGrant& grant) {
    LaneAgentConfig next;
    const std::string base = ConfigBaseDir(core_->config_path());
    Status s = ParseLaneAgentConfig(request.body, base, core_->env(), &next);
    if (!s.ok()) return LocalResponse::Error(400, "invalid_config", s.message());
    s = CheckConfigChangeAllowed(core_->config(), next);
    if (!s.ok()) return LocalResponse::Error(403, "config_change_forbidden", s.message());
    s = core_->data_dir()->CreateSubdir("config");
    if (s.ok()) s = core_->data_dir()->WriteFileAtomic(kStoredConfigFile, request.body);
    if (!s.ok()) {
      core_->log().Write("error", "config not stored", {{"error", s.ToString()}});
      return LocalResponse::Error(503, "config_not_stored", s.ToString());
    }
    const std::string hash = Sha256Hex(request.body);
    ++core_->counters().maintenance_config_changes;
    core_->log().Write("info", "config stored",
                       {{"session_id", grant.session_id}, {"config_sha256", hash}});
    core_->ReportMaintenance("config_changed",
                             {{"session_id", grant.session_id}, {"config_sha256", hash}});
    return LocalResponse::Json(200, json{{"stored", true},
                                         {"config_sha256", hash},
                                         {"applies", "at the next start of the agent"}}
                                        .dump());
  }

  AgentCore* core_;
  std::mutex mutex_;
  std::set<std::string> sessions_;
  std::atomic<int> streams_{0};
};

}  // namespace

void PreviewSlot::MaybeRender(const cv::Mat& bgr, std::int64_t steady_us, int max_fps) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (watchers_ == 0 || bgr.empty()) return;
    if (rendered_us_ != 0 && steady_us - rendered_us_ < 1'000'000 / std::max(1, max_fps)) return;
    rendered_us_ = steady_us;
  }
  std::vector<unsigned char> bytes;
  if (!cv::imencode(".jpg", bgr, bytes, {cv::IMWRITE_JPEG_QUALITY, 80})) return;
  std::lock_guard<std::mutex> lock(mutex_);
  sodium_memzero(jpeg_.data(), jpeg_.size());
  jpeg_.assign(bytes.begin(), bytes.end());
  sodium_memzero(bytes.data(), bytes.size());
  ++generation_;
}

bool PreviewSlot::Latest(std::uint64_t* generation, std::string* jpeg) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (generation_ == *generation || jpeg_.empty()) return false;
  *generation = generation_;
  *jpeg = jpeg_;
  return true;
}

void PreviewSlot::Clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  sodium_memzero(jpeg_.data(), jpeg_.size());
  jpeg_.clear();
}

void PreviewSlot::AddWatcher() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++watchers_;
}

void PreviewSlot::RemoveWatcher() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (--watchers_ == 0) {
    // Nobody watches: the frame does not stay in memory.
    sodium_memzero(jpeg_.data(), jpeg_.size());
    jpeg_.clear();
    rendered_us_ = 0;
  }
}

Status StartMaintenanceServer(AgentCore* core, std::unique_ptr<LocalHttpServer>* server) {
  const MaintenanceConfig& m = core->config().maintenance;
  LocalHttpOptions options;
  PORTCULLIS_RETURN_IF_ERROR(ParseListenAddress(m.listen, &options.host, &options.port));
  options.tls_cert_file = m.cert_file;
  options.tls_key_file = m.key_file;
  options.max_connections = 4;
  auto maintenance = std::make_shared<Maintenance>(core);
  return LocalHttpServer::Start(
      options, [maintenance](const LocalRequest& request) { return maintenance->Serve(request); },
      server);
}

}  // namespace portcullis::lane
