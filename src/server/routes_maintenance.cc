// Maintenance sessions (issue 6). A supervisor opens a time-boxed session for a named technician
// on one lane device; the service signs a grant (lane/maintenance_grant.h) that the device checks
// offline. The server has already authorised (maintenance.open, purpose required) and audited
// the decision; this handler adds one audit line naming the session, the device, the technician
// and the expiry, so the log answers "who was let into which device, when, until when, why".
#include <algorithm>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lane/maintenance_grant.h"
#include "portcullis/access_store.h"
#include "portcullis/audit.h"
#include "portcullis/env.h"
#include "server/api.h"

namespace portcullis::server {
namespace {

using nlohmann::json;

std::string IsoUtc(std::int64_t unix_s) {
  const std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

bool ValidPrincipalName(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' || c == '.' || c == '_' ||
           c == '-';
  });
}

bool ValidTechnician(const std::string& s) {
  return !s.empty() && s.size() <= 128 && std::none_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

ApiResponse OpenMaintenance(ServiceContext& ctx, ApiRequest& request) {
  if (ctx.maintenance_grant_key == nullptr) {
    return ApiResponse::Error(503, "maintenance_not_configured",
                              "this service has no maintenance.grant_key_file");
  }
  if (request.content_type != "application/json") {
    return ApiResponse::Error(415, "unsupported_media_type", "send application/json");
  }
  const json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return ApiResponse::Error(400, "malformed_json", "the body must be a JSON object");
  }
  for (const auto& [key, value] : body.items()) {
    if (key != "device" && key != "technician" && key != "minutes") {
      return ApiResponse::Error(400, "invalid_field", "unknown field \"" + key + "\"");
    }
  }
  if (!body.contains("device") || !body["device"].is_string() ||
      !ValidPrincipalName(body["device"].get<std::string>())) {
    return ApiResponse::Error(400, "invalid_field",
                              "\"device\" must be a device principal name like \"lane:7-a\"");
  }
  if (!body.contains("technician") || !body["technician"].is_string() ||
      !ValidTechnician(body["technician"].get<std::string>())) {
    return ApiResponse::Error(400, "invalid_field",
                              "\"technician\" must be 1..128 printable characters");
  }
  if (!body.contains("minutes") || !body["minutes"].is_number_integer() ||
      body["minutes"].get<std::int64_t>() < 1 ||
      body["minutes"].get<std::int64_t>() > lane::kMaxGrantMinutes) {
    return ApiResponse::Error(400, "invalid_field", "\"minutes\" must be an integer 1..240");
  }
  const std::string lane = request.path_params["lane"];
  lane::MaintenanceGrant grant;
  grant.device = body["device"].get<std::string>();
  grant.technician = body["technician"].get<std::string>();
  grant.lane = lane;

  // The device must be a lane device of this lane: a grant for a gate, an officer or another
  // lane's computer would be a grant for nothing (or for the wrong thing).
  if (ctx.access != nullptr) {
    std::vector<policy::PrincipalInfo> principals;
    const Status s = ctx.access->ListPrincipals(&principals);
    if (!s.ok()) return ApiResponse::Error(503, "not_ready", "the access store is unavailable");
    const auto it = std::find_if(principals.begin(), principals.end(),
                                 [&](const auto& p) { return p.principal.name == grant.device; });
    if (it == principals.end() || it->revoked) {
      return ApiResponse::Error(404, "device_not_found", "no such device principal");
    }
    if (it->principal.role != policy::Role::kLaneDevice || !it->principal.InScope(lane)) {
      return ApiResponse::Error(409, "device_not_in_lane",
                                "the device is not a lane device of this lane");
    }
  }

  const std::int64_t now_s = ctx.env->NowMicros() / 1'000'000;
  grant.session_id = lane::NewSessionId();
  grant.not_before_s = now_s;
  grant.expires_s = now_s + body["minutes"].get<std::int64_t>() * 60;
  std::string token;
  const Status signed_status =
      lane::SignMaintenanceGrant(grant, *ctx.maintenance_grant_key, &token);
  if (!signed_status.ok()) return ApiResponse::Error(400, "invalid_field", signed_status.message());

  if (ctx.audit != nullptr) {
    audit::AuditEvent event;
    event.time_micros = ctx.env->NowMicros();
    event.principal = request.principal.name;
    event.role = std::string(policy::RoleName(request.principal.role));
    // The log keeps only a keyed hash of record_id, so what a reader must see goes in the purpose
    // line, after the supervisor's stated purpose: the session, the device, the technician (the
    // issue requires a named technician; nothing else personal) and the expiry.
    event.purpose = request.purpose + " | maintenance session " + grant.session_id +
                    ": technician \"" + grant.technician + "\", device " + grant.device +
                    ", lane " + lane + ", until " + IsoUtc(grant.expires_s);
    event.action = "maintenance.session";
    event.record_id = "maintenance:" + grant.session_id;
    event.result = "ok";
    if (!ctx.audit->Append(event).ok()) {
      // A session the log cannot record is not opened.
      return ApiResponse::Error(503, "not_ready", "the audit log cannot record this session");
    }
  }
  return ApiResponse::Json(201, {{"session_id", grant.session_id},
                                 {"grant", token},
                                 {"device", grant.device},
                                 {"lane", lane},
                                 {"technician", grant.technician},
                                 {"not_before", IsoUtc(grant.not_before_s)},
                                 {"expires", IsoUtc(grant.expires_s)}});
}

}  // namespace

void AddMaintenanceRoutes(ServiceContext& ctx, std::vector<Route>* routes) {
  routes->push_back({"POST", "/v1/lanes/{lane}/maintenance", "maintenance.open", "device_health",
                     "lane", false,
                     [&ctx](ApiRequest& request) { return OpenMaintenance(ctx, request); }});
}

}  // namespace portcullis::server
