// The service's composition: config -> dependencies -> route table -> server. The order of Open
// is the order of trust: the audit log first (nothing may happen that it cannot record), then the
// vault (which audits into it), the access store and the policy, the engines, and last the server.
#include "server/service.h"

#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lane/ingest_key.h"
#include "lane/maintenance_grant.h"
#include "portcullis/access_store.h"
#include "portcullis/audit.h"
#include "portcullis/env.h"
#include "portcullis/face.h"
#include "portcullis/plate.h"
#include "portcullis/policy.h"
#include "portcullis/vault.h"
#include "server/device_reports.h"
#include "server/gate_galleries.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server/purge_job.h"
#include "server/stage_timer.h"

namespace portcullis::server {
namespace {

using nlohmann::json;

// ---- Config ------------------------------------------------------------------------------------

// Reads one JSON object's fields, remembering which were read so unknown ones are refused.
class Fields {
 public:
  Fields(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  std::string Name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  bool Has(const std::string& key) const { return object_.contains(key); }

  Status String(const std::string& key, bool required, std::string* out) {
    seen_.insert(key);
    if (!object_.contains(key)) {
      return required ? Status::InvalidArgument(Name(key) + ": required") : Status::Ok();
    }
    if (!object_[key].is_string() || object_[key].get<std::string>().empty()) {
      return Status::InvalidArgument(Name(key) + ": must be a non-empty string");
    }
    *out = object_[key].get<std::string>();
    return Status::Ok();
  }
  template <typename T>
  Status Number(const std::string& key, T min, T max, T* out) {
    seen_.insert(key);
    if (!object_.contains(key)) return Status::Ok();
    const json& v = object_[key];
    if (!v.is_number() || (std::is_integral_v<T> && !v.is_number_integer())) {
      return Status::InvalidArgument(Name(key) + ": must be a number");
    }
    const double d = v.get<double>();
    if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
      return Status::InvalidArgument(Name(key) + ": must be in " + std::to_string(min) + ".." +
                                     std::to_string(max));
    }
    *out = std::is_integral_v<T> ? static_cast<T>(v.get<std::int64_t>()) : static_cast<T>(d);
    return Status::Ok();
  }
  Status Bool(const std::string& key, bool* out) {
    seen_.insert(key);
    if (!object_.contains(key)) return Status::Ok();
    if (!object_[key].is_boolean())
      return Status::InvalidArgument(Name(key) + ": must be true or false");
    *out = object_[key].get<bool>();
    return Status::Ok();
  }
  Status Object(const std::string& key, bool required, const json** out) {
    seen_.insert(key);
    if (!object_.contains(key)) {
      return required ? Status::InvalidArgument(Name(key) + ": required") : Status::Ok();
    }
    if (!object_[key].is_object())
      return Status::InvalidArgument(Name(key) + ": must be an object");
    *out = &object_[key];
    return Status::Ok();
  }
  void Ignore(const std::string& key) { seen_.insert(key); }
  Status NoOthers() const {
    for (const auto& [key, value] : object_.items()) {
      if (!seen_.count(key)) return Status::InvalidArgument(Name(key) + ": unknown field");
    }
    return Status::Ok();
  }

 private:
  const json& object_;
  std::string path_;
  std::set<std::string> seen_;
};

bool IsUri(const std::string& s) {
  return s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0;
}

// "sqlite:rel/x.db" -> "sqlite:/base/rel/x.db"; "keyring:rel" likewise; plain paths too.
std::string Resolve(const std::string& base, const std::string& value) {
  if (value.empty() || IsUri(value) || base.empty()) return value;
  for (const std::string prefix : {"sqlite:", "keyring:", "file:"}) {
    if (value.rfind(prefix, 0) == 0) {
      const std::string rest = value.substr(prefix.size());
      return prefix + (rest.empty() || rest[0] == '/' ? rest : base + "/" + rest);
    }
  }
  if (value.rfind("pkcs11:", 0) == 0) return value;
  return value[0] == '/' ? value : base + "/" + value;
}

bool ValidNodeName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

Status ParseListen(const std::string& listen, std::string* host, std::uint16_t* port) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("listen: must be HOST:PORT, e.g. 127.0.0.1:8443");
  }
  std::string h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const std::string p = listen.substr(colon + 1);
  if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), ::isdigit) ||
      std::stoul(p) > 65535) {
    return Status::InvalidArgument("listen: bad port '" + p + "'");
  }
  *host = h;
  *port = static_cast<std::uint16_t>(std::stoul(p));
  return Status::Ok();
}

}  // namespace

Status ParseServiceConfig(std::string_view text, const std::string& base_dir,
                          ServiceConfig* config) {
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return Status::InvalidArgument("config: malformed JSON");
  if (!doc.is_object()) return Status::InvalidArgument("config: must be a JSON object");
  ServiceConfig c;
  Fields top(doc, "");
  top.Ignore("comment");
  PORTCULLIS_RETURN_IF_ERROR(top.String("node", true, &c.node));
  PORTCULLIS_RETURN_IF_ERROR(top.String("scratch_dir", false, &c.scratch_dir));
  if (!ValidNodeName(c.node)) {
    return Status::InvalidArgument("node: must match [A-Za-z0-9._-]{1,64}");
  }
  std::string listen;
  PORTCULLIS_RETURN_IF_ERROR(top.String("listen", true, &listen));
  PORTCULLIS_RETURN_IF_ERROR(ParseListen(listen, &c.host, &c.port));

  const json* tls = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Object("tls", true, &tls));
  Fields t(*tls, "tls");
  PORTCULLIS_RETURN_IF_ERROR(t.String("cert", true, &c.tls.cert));
  PORTCULLIS_RETURN_IF_ERROR(t.String("key", true, &c.tls.key));
  PORTCULLIS_RETURN_IF_ERROR(t.String("client_ca", false, &c.tls.client_ca));
  PORTCULLIS_RETURN_IF_ERROR(t.NoOthers());

  const json* vault = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Object("vault", true, &vault));
  Fields v(*vault, "vault");
  PORTCULLIS_RETURN_IF_ERROR(v.String("store", true, &c.vault.store));
  PORTCULLIS_RETURN_IF_ERROR(v.String("keys", true, &c.vault.keys));
  PORTCULLIS_RETURN_IF_ERROR(v.String("secret_file", false, &c.vault.secret_file));
  PORTCULLIS_RETURN_IF_ERROR(v.String("secret_env", false, &c.vault.secret_env));
  PORTCULLIS_RETURN_IF_ERROR(v.String("retention", false, &c.vault.retention));
  PORTCULLIS_RETURN_IF_ERROR(v.Bool("create_keys", &c.vault.create_keys));
  PORTCULLIS_RETURN_IF_ERROR(v.NoOthers());
  if (c.vault.secret_file.empty() == c.vault.secret_env.empty()) {
    return Status::InvalidArgument(
        "vault.secret_file: give exactly one of vault.secret_file and vault.secret_env");
  }
  if (c.vault.store.rfind("sqlite:", 0) != 0 && !IsUri(c.vault.store)) {
    return Status::InvalidArgument("vault.store: must be sqlite:PATH or postgresql://...");
  }
  if (c.vault.keys.rfind("keyring:", 0) != 0 && c.vault.keys.rfind("pkcs11:", 0) != 0) {
    return Status::InvalidArgument("vault.keys: must be keyring:PATH or pkcs11:LABEL");
  }

  const json* audit = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Object("audit", true, &audit));
  Fields a(*audit, "audit");
  PORTCULLIS_RETURN_IF_ERROR(a.String("log", true, &c.audit.log));
  PORTCULLIS_RETURN_IF_ERROR(a.String("keys", true, &c.audit.keys));
  PORTCULLIS_RETURN_IF_ERROR(a.NoOthers());

  const json* access = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Object("access", true, &access));
  Fields ac(*access, "access");
  PORTCULLIS_RETURN_IF_ERROR(ac.String("store", true, &c.access.store));
  PORTCULLIS_RETURN_IF_ERROR(ac.String("policy", true, &c.access.policy));
  PORTCULLIS_RETURN_IF_ERROR(ac.NoOthers());
  if (c.access.store.rfind("sqlite:", 0) != 0 && !IsUri(c.access.store)) {
    return Status::InvalidArgument("access.store: must be sqlite:PATH or postgresql://...");
  }

  const json* limits = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Object("limits", false, &limits));
  if (limits != nullptr) {
    Fields l(*limits, "limits");
    ServiceConfig::Limits& x = c.limits;
    PORTCULLIS_RETURN_IF_ERROR(
        l.Number<std::size_t>("max_body_bytes", 1024, std::size_t{1} << 30, &x.max_body_bytes));
    PORTCULLIS_RETURN_IF_ERROR(
        l.Number<std::size_t>("max_header_bytes", 1024, 1 << 20, &x.max_header_bytes));
    PORTCULLIS_RETURN_IF_ERROR(l.Number<std::size_t>("workers", 1, 256, &x.workers));
    PORTCULLIS_RETURN_IF_ERROR(l.Number<std::size_t>("queue", 1, 100000, &x.queue));
    PORTCULLIS_RETURN_IF_ERROR(l.Number<std::size_t>("io_threads", 1, 64, &x.io_threads));
    PORTCULLIS_RETURN_IF_ERROR(
        l.Number<std::size_t>("control_threads", 1, 256, &x.control_threads));
    PORTCULLIS_RETURN_IF_ERROR(
        l.Number<std::size_t>("max_connections", 1, 1000000, &x.max_connections));
    PORTCULLIS_RETURN_IF_ERROR(
        l.Number<std::uint32_t>("header_timeout_ms", 100, 600000, &x.header_timeout_ms));
    PORTCULLIS_RETURN_IF_ERROR(
        l.Number<std::uint32_t>("request_timeout_ms", 100, 3600000, &x.request_timeout_ms));
    PORTCULLIS_RETURN_IF_ERROR(
        l.Number<std::uint32_t>("shutdown_grace_ms", 0, 600000, &x.shutdown_grace_ms));
    PORTCULLIS_RETURN_IF_ERROR(l.Number<double>("rate_per_minute", 0, 1e7, &x.rate_per_minute));
    PORTCULLIS_RETURN_IF_ERROR(l.Number<double>("rate_burst", 0, 1e7, &x.rate_burst));
    PORTCULLIS_RETURN_IF_ERROR(l.NoOthers());
  }

  const json* gates = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Object("gates", false, &gates));
  if (gates != nullptr) {
    Fields g(*gates, "gates");
    PORTCULLIS_RETURN_IF_ERROR(g.String("traveller_key", false, &c.gates.traveller_key));
    PORTCULLIS_RETURN_IF_ERROR(g.Bool("create_key", &c.gates.create_key));
    PORTCULLIS_RETURN_IF_ERROR(g.String("keep_citizen", false, &c.gates.keep_citizen));
    PORTCULLIS_RETURN_IF_ERROR(g.String("keep_non_citizen", false, &c.gates.keep_non_citizen));
    PORTCULLIS_RETURN_IF_ERROR(g.Bool("keep_document_photos", &c.gates.keep_document_photos));
    PORTCULLIS_RETURN_IF_ERROR(g.NoOthers());
    for (const auto& [name, value] :
         {std::pair{"gates.keep_citizen", c.gates.keep_citizen},
          std::pair{"gates.keep_non_citizen", c.gates.keep_non_citizen}}) {
      if (value != "keep" && value != "drop") {
        return Status::InvalidArgument(std::string(name) + ": must be \"keep\" or \"drop\"");
      }
    }
  }
  if (c.gates.traveller_key.empty()) c.gates.traveller_key = "traveller.key";

  const json* jobs = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Object("jobs", false, &jobs));
  if (jobs != nullptr) {
    Fields j(*jobs, "jobs");
    PORTCULLIS_RETURN_IF_ERROR(
        j.Number<std::int64_t>("purge_period_s", 60, 7 * 86400, &c.jobs.purge_period_s));
    PORTCULLIS_RETURN_IF_ERROR(
        j.Number<std::int64_t>("tree_head_period_s", 10, 86400, &c.jobs.tree_head_period_s));
    PORTCULLIS_RETURN_IF_ERROR(j.Bool("enabled", &c.jobs.enabled));
    PORTCULLIS_RETURN_IF_ERROR(j.NoOthers());
  }

  const json* lane_ingest = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Object("lane_ingest", false, &lane_ingest));
  if (lane_ingest != nullptr) {
    Fields li(*lane_ingest, "lane_ingest");
    PORTCULLIS_RETURN_IF_ERROR(li.String("key_file", true, &c.lane_ingest.key_file));
    PORTCULLIS_RETURN_IF_ERROR(li.Number<std::int64_t>(
        "claim_timeout_ms", 100, std::int64_t{3600} * 1000, &c.lane_ingest.claim_timeout_ms));
    PORTCULLIS_RETURN_IF_ERROR(li.NoOthers());
  }

  const json* models = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Object("models", false, &models));
  if (models != nullptr) {
    Fields m(*models, "models");
    PORTCULLIS_RETURN_IF_ERROR(m.String("dir", false, &c.models.dir));
    PORTCULLIS_RETURN_IF_ERROR(m.Bool("plates", &c.models.plates));
    PORTCULLIS_RETURN_IF_ERROR(m.Bool("faces", &c.models.faces));
    PORTCULLIS_RETURN_IF_ERROR(m.NoOthers());
  }
  const json* maintenance = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Object("maintenance", false, &maintenance));
  if (maintenance != nullptr) {
    Fields m(*maintenance, "maintenance");
    PORTCULLIS_RETURN_IF_ERROR(m.String("grant_key_file", false, &c.maintenance.grant_key_file));
    PORTCULLIS_RETURN_IF_ERROR(m.NoOthers());
  }
  PORTCULLIS_RETURN_IF_ERROR(top.NoOthers());

  // Paths relative to the config file.
  c.tls.cert = Resolve(base_dir, c.tls.cert);
  c.tls.key = Resolve(base_dir, c.tls.key);
  c.tls.client_ca = Resolve(base_dir, c.tls.client_ca);
  c.vault.store = Resolve(base_dir, c.vault.store);
  c.vault.keys = Resolve(base_dir, c.vault.keys);
  c.vault.secret_file = Resolve(base_dir, c.vault.secret_file);
  c.vault.retention = Resolve(base_dir, c.vault.retention);
  c.scratch_dir = Resolve(base_dir, c.scratch_dir);
  c.audit.log = Resolve(base_dir, c.audit.log);
  c.audit.keys = Resolve(base_dir, c.audit.keys);
  c.access.store = Resolve(base_dir, c.access.store);
  c.access.policy = Resolve(base_dir, c.access.policy);
  c.models.dir = Resolve(base_dir, c.models.dir);
  c.gates.traveller_key = Resolve(base_dir, c.gates.traveller_key);
  c.maintenance.grant_key_file = Resolve(base_dir, c.maintenance.grant_key_file);
  c.lane_ingest.key_file = Resolve(base_dir, c.lane_ingest.key_file);
  *config = std::move(c);
  return Status::Ok();
}

Status LoadServiceConfig(const std::string& path, ServiceConfig* config) {
  std::string text;
  PORTCULLIS_RETURN_IF_ERROR(Env::Default()->ReadFile(path, 1 << 20, &text).WithContext(path));
  const std::size_t slash = path.rfind('/');
  const std::string base = slash == std::string::npos ? "." : path.substr(0, slash);
  return ParseServiceConfig(text, base.empty() ? "/" : base, config).WithContext(path);
}

// ---- OpenAPI -> body rules
// ------------------------------------------------------------------------

Status BodyRulesFromOpenApi(
    std::string_view openapi,
    std::map<std::pair<std::string, std::string>, HttpServerOptions::BodyRule>* rules) {
  const json doc = json::parse(openapi, nullptr, false);
  if (doc.is_discarded() || !doc.contains("paths") || !doc["paths"].is_object()) {
    return Status::Corruption("openapi.json: no paths");
  }
  rules->clear();
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      if (!operation.is_object() || !operation.contains("requestBody")) continue;
      const json& body = operation["requestBody"];
      HttpServerOptions::BodyRule rule;
      rule.required = body.value("required", false);
      if (body.contains("content") && body["content"].is_object()) {
        for (const auto& [type, unused] : body["content"].items()) rule.media_types.push_back(type);
      }
      std::string upper = method;
      std::transform(upper.begin(), upper.end(), upper.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
      (*rules)[{upper, path}] = std::move(rule);
    }
  }
  return Status::Ok();
}

std::vector<Route> BuildRouteTable(ServiceContext& ctx, ReadinessProbe probe) {
  std::vector<Route> routes;
  AddSystemRoutes(ctx, &routes, std::move(probe));
  AddLaneRoutes(ctx, &routes);
  AddLaneEventRoutes(ctx, &routes);
  AddGateRoutes(ctx, &routes);
  AddAccessRoutes(ctx, &routes);
  AddAuditRoutes(ctx, &routes);
  AddConsoleRoutes(ctx, &routes);
  AddMaintenanceRoutes(ctx, &routes);
  return routes;
}

// ---- The service -------------------------------------------------------------------------------

namespace {

// The audit log as the service uses it: remembers whether the last append worked, for /readyz.
class TrackedLog final : public audit::TransparencyLog {
 public:
  explicit TrackedLog(std::unique_ptr<audit::TransparencyLog> log) : log_(std::move(log)) {}
  // Timed as a stage of the request whose handler appends (the vault's own lines), see
  // stage_timer.h; the server's decision line is timed by the server itself.
  Status Append(const audit::AuditEvent& event) override {
    const StageTimer timer("audit_append");
    return Track(log_->Append(event));
  }
  Status AppendAll(const std::vector<audit::AuditEvent>& events) override {
    const StageTimer timer("audit_append");
    return Track(log_->AppendAll(events));
  }
  [[nodiscard]] audit::PublicKey public_key() const override { return log_->public_key(); }
  Status Size(std::uint64_t* size) const override { return log_->Size(size); }
  Status LatestTreeHead(audit::SignedTreeHead* sth) const override {
    return log_->LatestTreeHead(sth);
  }
  Status PublishTreeHead(audit::SignedTreeHead* sth) override {
    return Track(log_->PublishTreeHead(sth));
  }
  Status ProveInclusion(std::uint64_t i, std::uint64_t n,
                        audit::InclusionProof* proof) const override {
    return log_->ProveInclusion(i, n, proof);
  }
  Status ProveConsistency(std::uint64_t a, std::uint64_t b,
                          audit::ConsistencyProof* proof) const override {
    return log_->ProveConsistency(a, b, proof);
  }
  Status ReadLeaves(std::uint64_t a, std::uint64_t b,
                    std::vector<std::string>* leaves) const override {
    return log_->ReadLeaves(a, b, leaves);
  }
  Status TreeHeads(std::vector<audit::SignedTreeHead>* heads) const override {
    return log_->TreeHeads(heads);
  }
  Status last_append() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_;
  }

 private:
  Status Track(Status s) {
    std::lock_guard<std::mutex> lock(mutex_);
    last_ = s;
    return s;
  }
  std::unique_ptr<audit::TransparencyLog> log_;
  mutable std::mutex mutex_;
  Status last_;
};

Status ReadSecret(const ServiceConfig& config, std::string* secret) {
  if (!config.vault.secret_env.empty()) {
    const char* value = std::getenv(config.vault.secret_env.c_str());
    if (value == nullptr || *value == '\0') {
      return Status::NotFound("vault.secret_env: environment variable " + config.vault.secret_env +
                              " is not set");
    }
    *secret = value;
    return Status::Ok();
  }
  PORTCULLIS_RETURN_IF_ERROR(Env::Default()
                                 ->ReadFile(config.vault.secret_file, 64 * 1024, secret)
                                 .WithContext("vault.secret_file"));
  while (!secret->empty() && (secret->back() == '\n' || secret->back() == '\r')) secret->pop_back();
  if (secret->empty()) return Status::InvalidArgument("vault.secret_file: empty");
  return Status::Ok();
}

// The maintenance grant key: a signing key, so it must be the service's alone (0600 or stricter,
// like every key file here).
Status LoadGrantKey(const std::string& path, lane::GrantSecretKey* key) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::NotFound("cannot stat " + path);
  if ((st.st_mode & 077) != 0) {
    return Status::InvalidArgument(path + " is readable by others; chmod 600 it");
  }
  std::string text;
  PORTCULLIS_RETURN_IF_ERROR(Env::Default()->ReadFile(path, 4096, &text));
  const Status s = lane::ParseGrantSecretKey(text, key);
  sodium_memzero(text.data(), text.size());
  return s;
}

}  // namespace

struct Service::Impl {
  ServiceConfig config;
  lane::GrantSecretKey grant_key;
  Metrics metrics;
  std::unique_ptr<TrackedLog> audit;
  std::unique_ptr<vault::Vault> vault;
  std::unique_ptr<policy::AccessStore> access;
  std::unique_ptr<policy::AccessPolicy> policy;
  std::vector<std::unique_ptr<plate::PlateReader>> plates;
  std::vector<std::unique_ptr<face::FaceEngine>> faces;
  std::unique_ptr<GateGalleries> galleries;
  std::unique_ptr<lane::IngestKeyPair> ingest_key;
  DeviceReports device_reports;
  ServiceContext ctx;
  std::unique_ptr<HttpServer> server;
  std::unique_ptr<PeriodicJobs> jobs;
  std::size_t workers = 1;

  std::mutex ready_mutex;
  std::chrono::steady_clock::time_point ready_at{};
  std::vector<ReadinessCheck> ready_cache;

  std::vector<ReadinessCheck> Probe() {
    // Probing the vault writes an audit entry (every vault call does): at most one probe per
    // 5 seconds, however often a load balancer asks.
    std::lock_guard<std::mutex> lock(ready_mutex);
    const auto now = std::chrono::steady_clock::now();
    if (!ready_cache.empty() && now - ready_at < std::chrono::seconds(5)) return ready_cache;
    std::vector<ReadinessCheck> checks;
    {
      ReadinessCheck c{"audit_log", false, ""};
      std::uint64_t size = 0;
      const Status s = audit->Size(&size);
      const Status last = audit->last_append();
      c.ok = s.ok() && last.ok();
      c.detail = !s.ok()      ? s.ToString()
                 : !last.ok() ? "last append failed: " + last.ToString()
                              : "size " + std::to_string(size);
      checks.push_back(c);
    }
    {
      ReadinessCheck c{"vault", false, ""};
      vault::AccessContext who{"node:" + config.node, "system", "readiness probe"};
      vault::RecordFilter filter;
      filter.limit = 1;
      vault::RecordPage page;
      const Status s = vault->List(who, filter, &page);
      c.ok = s.ok();
      c.detail = s.ok() ? "store reachable" : s.ToString();
      checks.push_back(c);
    }
    {
      ReadinessCheck c{"access_store", false, ""};
      policy::AuthOutcome outcome = policy::AuthOutcome::kUnknown;
      policy::Principal nobody;
      // A lookup of a token nobody holds: a round trip to the store that changes nothing.
      const Status s = access->Authenticate("pct_readiness-probe", &outcome, &nobody);
      c.ok = s.ok();
      c.detail = s.ok() ? "store reachable" : s.ToString();
      checks.push_back(c);
    }
    {
      ReadinessCheck c{"models", true, ""};
      const std::size_t want_plates = config.models.plates ? workers : 0;
      const std::size_t want_faces = config.models.faces ? workers : 0;
      c.ok = plates.size() == want_plates && faces.size() == want_faces;
      c.detail = std::to_string(plates.size()) + " plate readers, " + std::to_string(faces.size()) +
                 " face engines";
      checks.push_back(c);
    }
    ready_cache = checks;
    ready_at = now;
    return checks;
  }
};

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Service::~Service() {
  if (impl_->jobs) impl_->jobs->Stop();
  if (impl_->server) impl_->server->Shutdown();
}

Status Service::Open(const ServiceConfig& config, std::unique_ptr<Service>* service) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  Env* env = Env::Default();

  std::unique_ptr<audit::TransparencyLog> log;
  audit::AuditLogOptions log_options;
  log_options.env = env;
  PORTCULLIS_RETURN_IF_ERROR(
      audit::OpenTransparencyLog(config.audit.log, config.audit.keys, log_options, &log)
          .WithContext("audit.log"));
  impl->audit = std::make_unique<TrackedLog>(std::move(log));

  std::string secret;
  PORTCULLIS_RETURN_IF_ERROR(ReadSecret(config, &secret));
  vault::VaultOptions vault_options;
  vault_options.store_uri = config.vault.store;
  vault_options.key_uri = config.vault.keys;
  vault_options.key_secret = secret;
  vault_options.retention_path = config.vault.retention;
  // A missing keyring is created only when that cannot orphan data: when asked to, or when the
  // vault itself is a new SQLite file (a first start). A mistyped keyring path next to an
  // existing vault must fail, not start a fresh keyring that cannot read the records.
  const bool new_sqlite_vault = config.vault.store.rfind("sqlite:", 0) == 0 &&
                                env->KindOf(config.vault.store.substr(7)) == FileKind::kMissing;
  vault_options.key_options.create_if_missing =
      config.vault.keys.rfind("keyring:", 0) == 0 && (config.vault.create_keys || new_sqlite_vault);
  vault_options.audit = impl->audit.get();
  vault_options.env = env;
  PORTCULLIS_RETURN_IF_ERROR(vault::Vault::Open(vault_options, &impl->vault).WithContext("vault"));

  if (!config.lane_ingest.key_file.empty()) {
    // The service's own provider handle, with the vault's keys and secret: the ingest secret is
    // unwrapped once and held in locked memory (SecretBytes) for the life of the service.
    std::unique_ptr<vault::KeyProvider> provider;
    vault::KeyProviderOptions key_options;
    key_options.env = env;
    PORTCULLIS_RETURN_IF_ERROR(
        vault::OpenKeyProvider(config.vault.keys, secret, key_options, &provider)
            .WithContext("lane_ingest: vault.keys"));
    impl->ingest_key = std::make_unique<lane::IngestKeyPair>();
    PORTCULLIS_RETURN_IF_ERROR(
        lane::LoadIngestKeyPair(config.lane_ingest.key_file, *provider, impl->ingest_key.get(), env)
            .WithContext("lane_ingest.key_file"));
  }

  policy::AccessStoreOptions access_options;
  access_options.env = env;
  PORTCULLIS_RETURN_IF_ERROR(
      policy::OpenAccessStore(config.access.store, access_options, &impl->access)
          .WithContext("access.store"));
  PORTCULLIS_RETURN_IF_ERROR(
      policy::LoadPolicyFile(config.access.policy, &impl->policy).WithContext("access.policy"));

  impl->workers = config.limits.workers != 0
                      ? config.limits.workers
                      : std::max<std::size_t>(1, std::thread::hardware_concurrency());
  // One engine per worker, one worker per core: each engine runs single-threaded (the plate
  // reader's OpenCV threads default to 1; OpenBLAS would otherwise spin a thread per core under
  // every worker's face engine and, measured with server_load, cost a third of the saturated
  // gate-match rate).
  if (config.models.faces) face::SetBlasThreads(1);
  for (std::size_t i = 0; i < impl->workers; ++i) {
    if (config.models.plates) {
      plate::PlateReaderOptions options;
      options.model_dir = config.models.dir;
      std::unique_ptr<plate::PlateReader> reader;
      PORTCULLIS_RETURN_IF_ERROR(plate::PlateReader::Open(options, &reader).WithContext("models"));
      impl->plates.push_back(std::move(reader));
    }
    if (config.models.faces) {
      face::FaceEngineOptions options;
      options.model_dir = config.models.dir;
      std::unique_ptr<face::FaceEngine> engine;
      PORTCULLIS_RETURN_IF_ERROR(face::FaceEngine::Open(options, &engine).WithContext("models"));
      impl->faces.push_back(std::move(engine));
    }
  }

  GateGalleriesOptions gate_options;
  PORTCULLIS_RETURN_IF_ERROR(LoadTravellerKey(env, config.gates.traveller_key,
                                              config.gates.create_key, &gate_options.traveller_key)
                                 .WithContext("gates.traveller_key"));
  gate_options.keep.citizen = config.gates.keep_citizen == "keep";
  gate_options.keep.non_citizen = config.gates.keep_non_citizen == "keep";
  gate_options.keep_document_photos = config.gates.keep_document_photos;
  impl->galleries = std::make_unique<GateGalleries>(impl->vault.get(), env, &impl->metrics,
                                                    std::move(gate_options));

  ServiceContext& ctx = impl->ctx;
  ctx.galleries = impl->galleries.get();
  ctx.env = env;
  ctx.vault = impl->vault.get();
  ctx.audit = impl->audit.get();
  ctx.access = impl->access.get();
  ctx.policy = impl->policy.get();
  ctx.metrics = &impl->metrics;
  ctx.node_name = config.node;
  ctx.scratch_dir = config.scratch_dir;
  ctx.retention_path = config.vault.retention;
  if (!config.maintenance.grant_key_file.empty()) {
    PORTCULLIS_RETURN_IF_ERROR(LoadGrantKey(config.maintenance.grant_key_file, &impl->grant_key)
                                   .WithContext("maintenance.grant_key_file"));
    ctx.maintenance_grant_key = &impl->grant_key;
  }
  ctx.ingest_key = impl->ingest_key.get();
  ctx.ingest_claim_timeout_micros = config.lane_ingest.claim_timeout_ms * 1000;
  ctx.device_reports = &impl->device_reports;
  Impl* raw = impl.get();
  std::vector<Route> routes = BuildRouteTable(ctx, [raw] { return raw->Probe(); });

  HttpServerOptions options;
  options.host = config.host;
  options.port = config.port;
  options.cert_file = config.tls.cert;
  options.key_file = config.tls.key;
  options.client_ca_file = config.tls.client_ca;
  options.io_threads = config.limits.io_threads;
  options.control_threads = config.limits.control_threads;
  options.max_connections = config.limits.max_connections;
  options.max_header_bytes = config.limits.max_header_bytes;
  options.max_body_bytes = config.limits.max_body_bytes;
  options.header_timeout_ms = config.limits.header_timeout_ms;
  options.request_timeout_ms = config.limits.request_timeout_ms;
  options.queue = config.limits.queue != 0 ? config.limits.queue : 4 * impl->workers;
  options.rate_per_minute = config.limits.rate_per_minute;
  options.rate_burst = config.limits.rate_burst;
  options.shutdown_grace_ms = config.limits.shutdown_grace_ms;
  PORTCULLIS_RETURN_IF_ERROR(BodyRulesFromOpenApi(OpenApiDocument(), &options.body_rules));

  std::vector<WorkerEngines> engines(impl->workers);
  for (std::size_t i = 0; i < impl->workers; ++i) {
    if (i < impl->plates.size()) engines[i].plates = impl->plates[i].get();
    if (i < impl->faces.size()) engines[i].faces = impl->faces[i].get();
  }
  PORTCULLIS_RETURN_IF_ERROR(
      HttpServer::Create(options, &ctx, std::move(routes), std::move(engines), &impl->server));
  service->reset(new Service(std::move(impl)));
  return Status::Ok();
}

Status Service::Start() {
  PORTCULLIS_RETURN_IF_ERROR(impl_->server->Start());
  if (impl_->config.jobs.enabled) {
    PeriodicJobsOptions options;
    options.purge_period_micros = impl_->config.jobs.purge_period_s * 1'000'000;
    options.tree_head_period_micros = impl_->config.jobs.tree_head_period_s * 1'000'000;
    impl_->jobs = std::make_unique<PeriodicJobs>(impl_->ctx, options);
    impl_->jobs->Start();
  }
  LogEvent("info", "listening",
           {{"node", impl_->config.node},
            {"host", impl_->config.host},
            {"port", impl_->server->port()},
            {"workers", impl_->workers},
            {"mtls", !impl_->config.tls.client_ca.empty()}});
  return Status::Ok();
}

std::uint16_t Service::port() const { return impl_->server->port(); }
void Service::Shutdown() {
  if (impl_->jobs) impl_->jobs->Stop();
  impl_->server->Shutdown();
}
void Service::Wait() { impl_->server->Wait(); }
std::vector<ReadinessCheck> Service::Ready() { return impl_->Probe(); }

}  // namespace portcullis::server
