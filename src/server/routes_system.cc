// The public system routes: liveness, readiness, metrics and the API's own description. No token:
// a load balancer, a Prometheus scraper and a client generator need none, and none of these
// reveal records (readiness details name dependencies, never data).
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "portcullis/access_store.h"
#include "portcullis/audit.h"
#include "server/api.h"
#include "server/metrics.h"
#include "server/service.h"

namespace portcullis::server {
namespace {

Route Public(std::string pattern, Handler handler) {
  Route route;
  route.method = "GET";
  route.pattern = std::move(pattern);
  route.handler = std::move(handler);
  return route;
}

// Without a service-provided probe: what the context alone can tell.
std::vector<ReadinessCheck> ContextProbe(ServiceContext& ctx) {
  std::vector<ReadinessCheck> checks;
  ReadinessCheck log{"audit_log", false, "no audit log"};
  if (ctx.audit != nullptr) {
    std::uint64_t size = 0;
    const Status s = ctx.audit->Size(&size);
    log.ok = s.ok();
    log.detail = s.ok() ? "size " + std::to_string(size) : s.ToString();
  }
  checks.push_back(log);
  ReadinessCheck access{"access_store", false, "no access store"};
  if (ctx.access != nullptr) {
    policy::AuthOutcome outcome = policy::AuthOutcome::kUnknown;
    policy::Principal nobody;
    const Status s = ctx.access->Authenticate("pct_readiness-probe", &outcome, &nobody);
    access.ok = s.ok();
    access.detail = s.ok() ? "store reachable" : s.ToString();
  }
  checks.push_back(access);
  return checks;
}

}  // namespace

void AddSystemRoutes(ServiceContext& ctx, std::vector<Route>* routes, ReadinessProbe probe) {
  routes->push_back(Public("/healthz", [](ApiRequest&) {
    return ApiResponse::Json(200, nlohmann::json{{"status", "ok"}});
  }));
  routes->push_back(Public("/readyz", [&ctx, probe](ApiRequest&) {
    const std::vector<ReadinessCheck> checks = probe ? probe() : ContextProbe(ctx);
    nlohmann::json details = nlohmann::json::object();
    bool ready = true;
    for (const ReadinessCheck& c : checks) {
      details[c.name] = {{"ok", c.ok}, {"detail", c.detail}};
      ready = ready && c.ok;
    }
    if (ready) return ApiResponse::Json(200, {{"status", "ready"}, {"checks", details}});
    ApiResponse response = ApiResponse::Json(
        503, {{"error", {{"code", "not_ready"}, {"message", "a dependency is not ready"}}},
              {"checks", details}});
    response.headers["Retry-After"] = "5";
    return response;
  }));
  routes->push_back(Public("/metrics", [&ctx](ApiRequest&) {
    const std::string text = ctx.metrics != nullptr ? ctx.metrics->RenderPrometheus() : "";
    return ApiResponse::Bytes(200, "text/plain; version=0.0.4", text);
  }));
  routes->push_back(Public("/v1/openapi.json", [](ApiRequest&) {
    return ApiResponse::Bytes(200, "application/json", std::string(OpenApiDocument()));
  }));
}

void AddSystemRoutes(ServiceContext& ctx, std::vector<Route>* routes) {
  AddSystemRoutes(ctx, routes, nullptr);
}

}  // namespace portcullis::server
