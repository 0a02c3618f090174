// The seam between the HTTP server and the service's handlers. Handlers are plain functions from
// an ApiRequest to an ApiResponse: they never see sockets, TLS or threads, so each is tested by a
// direct call. The server (http_server.cc) does everything around them, in this order, for every
// request:
//   1. limits: body size, header/body deadlines (slow clients), bounded queues (429/503);
//   2. routing: method + path pattern -> Route (404 / 405 with a JSON error);
//   3. authentication: "Authorization: Bearer <token>" -> Principal (401 when missing/bad);
//   4. purpose: "X-Purpose" header, verbatim (the policy decides whether it is required);
//   5. authorisation: AccessPolicy::Decide(route.action, route.category, lane, purpose, ticket)
//      -> 403 with the denial code; the decision, allow or deny, is appended to the audit log;
//   6. the handler, on a worker thread with its own engines when route.heavy.
// So a handler can assume an authenticated, authorised request and only do its job.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "portcullis/policy.h"

namespace portcullis {
class Env;
namespace plate {
class PlateReader;
}  // namespace plate
namespace face {
class FaceEngine;
}  // namespace face
namespace vault {
class Vault;
}  // namespace vault
namespace audit {
class AuditSink;
class TransparencyLog;
}  // namespace audit
namespace policy {
class AccessStore;
}  // namespace policy
namespace lane {
struct GrantSecretKey;
struct IngestKeyPair;
}  // namespace lane
}  // namespace portcullis

namespace portcullis::server {

class Metrics;        // metrics.h: counters and histograms behind /metrics
class GateGalleries;  // gate_galleries.h: the open flight galleries
class DeviceReports;  // device_reports.h: the latest report of each lane/gate device

// Engines are not thread-safe; each worker thread owns one of each and lends them to the heavy
// handler it runs. Null on light routes.
struct WorkerEngines {
  plate::PlateReader* plates = nullptr;
  face::FaceEngine* faces = nullptr;
};

struct ApiRequest {
  std::string method;  // "GET", "POST", "DELETE"
  std::string path;    // without the query string, e.g. "/v1/lanes/7/reads"
  std::map<std::string, std::string> path_params;  // {"lane": "7"} from "/v1/lanes/{lane}/reads"
  std::map<std::string, std::string> query;        // decoded query parameters
  std::map<std::string, std::string> headers;      // lower-case names
  std::string content_type;                        // media type only, lower case, no parameters
  std::string body;                                // at most ServiceLimits::max_body_bytes
  std::string request_id;                          // 16 hex digits, also in logs and errors
  // Set by the server after authentication and authorisation:
  policy::Principal principal;
  std::string purpose;    // X-Purpose, verbatim ("" when absent)
  std::string ticket_id;  // X-Ticket, when the vendor presented one and it was used
  WorkerEngines engines;  // heavy routes only
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;  // extra headers, e.g. {"Retry-After": "1"}

  static ApiResponse Json(int status, const nlohmann::json& body);
  // The one error shape of the whole API: {"error": {"code": "...", "message": "...",
  // "request_id": "..."}}. code is snake_case and stable (docs/api.md lists them).
  static ApiResponse Error(int status, std::string_view code, std::string_view message);
  static ApiResponse Bytes(int status, std::string content_type, std::string body);
};

using Handler = std::function<ApiResponse(ApiRequest& request)>;

struct Route {
  std::string method;   // "GET", "POST", "DELETE"
  std::string pattern;  // "/v1/lanes/{lane}/reads": {name} matches one path segment
  // Authorisation: what the policy is asked. Empty action = a public route (health, OpenAPI,
  // console assets): no token, no policy, no audit entry.
  std::string action;      // one of policy::kActions
  std::string category;    // one of policy::kCategories
  std::string lane_param;  // the path parameter naming the lane/gate ("lane", "gate"), or ""
  bool heavy = false;      // recognition work: runs on the bounded worker pool with engines
  Handler handler;
};

// What handlers share. Owned by the Service (service.h); every pointer outlives the handlers.
struct ServiceContext {
  Env* env = nullptr;                       // clock and files
  vault::Vault* vault = nullptr;            // every record lives here, audited by the vault
  audit::TransparencyLog* audit = nullptr;  // the service's audit log (decisions, proofs)
  policy::AccessStore* access = nullptr;    // principals, tickets, exports, job claims
  const policy::AccessPolicy* policy = nullptr;
  Metrics* metrics = nullptr;
  GateGalleries* galleries = nullptr;
  std::string node_name;  // this node's name in logs and job claims
  // A private directory (0700) for transient files, e.g. an uploaded video clip while it is
  // decoded (each file 0600, deleted on every path). Never the working directory. Empty: the
  // system's temporary directory ($TMPDIR or /tmp).
  std::string scratch_dir;
  // The retention rules the vault was opened with (config "vault.retention"), for the retention
  // view. Empty: the vault's default ($PORTCULLIS_DATA_DIR/retention.json, else the build's).
  std::string retention_path;
  // The key that signs lane maintenance grants (config "maintenance.grant_key_file"); null: the
  // maintenance route answers 503 maintenance_not_configured.
  const lane::GrantSecretKey* maintenance_grant_key = nullptr;
  // Lane agents' sealed events (routes_lane_events.cc, docs/lane-link.md): the unwrapped ingest
  // key pair (null: config has no lane_ingest, the events route answers 503), how long a node's
  // unfinished claim on an event stands before another node takes it over, and where device
  // reports are kept (null: not kept, only audited).
  const lane::IngestKeyPair* ingest_key = nullptr;
  std::int64_t ingest_claim_timeout_micros = 60'000'000;
  DeviceReports* device_reports = nullptr;
};

// Each group of endpoints registers its routes (routes_*.cc). The Service calls all of them.
void AddLaneRoutes(ServiceContext& ctx, std::vector<Route>* routes);  // lanes, plates, stats
void AddLaneEventRoutes(ServiceContext& ctx,
                        std::vector<Route>* routes);  // lane agents' sealed events, reports
void AddGateRoutes(ServiceContext& ctx, std::vector<Route>* routes);  // galleries, travellers
void AddAccessRoutes(ServiceContext& ctx,
                     std::vector<Route>* routes);  // principals, tickets, exports
void AddAuditRoutes(ServiceContext& ctx, std::vector<Route>* routes);  // tree heads, proofs, export
void AddConsoleRoutes(ServiceContext& ctx, std::vector<Route>* routes);  // /console/ static pages
void AddSystemRoutes(ServiceContext& ctx,
                     std::vector<Route>* routes);  // healthz, readyz, metrics, openapi
void AddMaintenanceRoutes(ServiceContext& ctx,
                          std::vector<Route>* routes);  // lane maintenance grants

}  // namespace portcullis::server
