// The service: one config file (docs/service.md) -> the vault, the audit log, the access store and
// policy, one PlateReader + FaceEngine per worker, the route table of every group (api.h), and the
// HTTPS server in front of them. `portcullis serve` is a thin wrapper around this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "portcullis/status.h"
#include "server/api.h"
#include "server/http_server.h"

namespace portcullis::server {

struct ServiceConfig {
  std::string node = "node";  // [A-Za-z0-9._-]{1,64}
  std::string host = "127.0.0.1";
  std::uint16_t port = 8443;  // 0: any free port (tests)
  // Private working files (an uploaded clip while it is read); "" = $TMPDIR. Files are 0600 and
  // deleted on every path.
  std::string scratch_dir;
  struct Tls {
    std::string cert, key, client_ca;
  } tls;
  struct VaultConfig {
    std::string store;        // "sqlite:PATH" | "postgresql://..."
    std::string keys;         // "keyring:PATH" | "pkcs11:LABEL"
    std::string secret_file;  // one of secret_file / secret_env
    std::string secret_env;
    std::string retention;     // optional retention rules file
    bool create_keys = false;  // create a missing keyring (first start); never for pkcs11
  } vault;
  struct AuditConfig {
    std::string log;   // directory, "file:DIR" or "postgresql://..."
    std::string keys;  // key directory (signing.key, id.key)
  } audit;
  struct AccessConfig {
    std::string store;   // "sqlite:PATH" | "postgresql://..."
    std::string policy;  // policy file
  } access;
  struct Limits {
    std::size_t max_body_bytes = 16 * 1024 * 1024;
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t workers = 0;  // 0: the number of cores
    std::size_t queue = 0;    // 0: 4 per worker
    std::size_t io_threads = 2;
    std::size_t control_threads = 4;
    std::size_t max_connections = 1024;
    std::uint32_t header_timeout_ms = 10'000;
    std::uint32_t request_timeout_ms = 30'000;
    std::uint32_t shutdown_grace_ms = 10'000;
    double rate_per_minute = 600;
    double rate_burst = 0;
  } limits;
  struct Gates {
    std::string traveller_key;  // "": traveller.key next to the config file
    bool create_key = true;     // create the key file when missing (one node; see docs)
    std::string keep_citizen = "drop";
    std::string keep_non_citizen = "keep";
    bool keep_document_photos = false;
  } gates;
  struct Jobs {
    std::int64_t purge_period_s = 3600;
    std::int64_t tree_head_period_s = 300;
    bool enabled = true;
  } jobs;
  struct Maintenance {
    // The Ed25519 key (portcullis-grant-secret-v1, mode 0600) that signs lane maintenance grants
    // (`portcullis access grant-key`). "": POST /v1/lanes/{lane}/maintenance answers 503.
    std::string grant_key_file;
  } maintenance;
  // Lane agents' sealed events (docs/lane-link.md). Without a key file the events route answers
  // 503 ingest_not_configured. The key file's secret is unwrapped at start with the vault's key
  // provider (vault.keys and its secret).
  struct LaneIngest {
    std::string key_file;                   // "": not configured
    std::int64_t claim_timeout_ms = 60000;  // an unfinished claim older than this is taken over
  } lane_ingest;
  struct Models {
    std::string dir;     // "": $PORTCULLIS_MODEL_DIR, else the build's
    bool plates = true;  // open a PlateReader per worker
    bool faces = true;   // open a FaceEngine per worker
  } models;
};

// Validates a config document. Relative paths are resolved against base_dir (the config file's
// directory). InvalidArgument naming the field ("limits.workers: must be 1..256") on any error,
// including unknown fields (a typo must not silently fall back to a default).
Status ParseServiceConfig(std::string_view json, const std::string& base_dir,
                          ServiceConfig* config);
Status LoadServiceConfig(const std::string& path, ServiceConfig* config);

// The (method, path) -> request media types of every operation in the embedded OpenAPI document.
std::string_view OpenApiDocument();
Status BodyRulesFromOpenApi(
    std::string_view openapi,
    std::map<std::pair<std::string, std::string>, HttpServerOptions::BodyRule>* rules);

// Readiness of one dependency, as /readyz reports it.
struct ReadinessCheck {
  std::string name;  // "vault", "audit_log", "access_store", "models"
  bool ok = false;
  std::string detail;
};
using ReadinessProbe = std::function<std::vector<ReadinessCheck>()>;
// AddSystemRoutes with a probe for /readyz (api.h's version probes only what ctx holds).
void AddSystemRoutes(ServiceContext& ctx, std::vector<Route>* routes, ReadinessProbe probe);

// Every group's routes, in a fixed order: what the server serves and the OpenAPI test checks.
std::vector<Route> BuildRouteTable(ServiceContext& ctx, ReadinessProbe probe = nullptr);

class Service {
 public:
  // Opens everything the config names; nothing listens yet. Errors name what failed.
  static Status Open(const ServiceConfig& config, std::unique_ptr<Service>* service);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  Status Start();  // listens; logs {"msg":"listening","port":N}
  [[nodiscard]] std::uint16_t port() const;
  void Shutdown();  // graceful (HttpServer::Shutdown)
  void Wait();
  [[nodiscard]] std::vector<ReadinessCheck> Ready();

  struct Impl;

 private:
  explicit Service(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace portcullis::server
