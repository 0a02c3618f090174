// The fixture of the in-process HTTP tests (http_*_test.cc): a real HttpServer on a free port with
// a self-signed certificate, the real default policy (data/policy.json), fakes for the access
// store and the audit log, and small fake handlers whose calls the tests count.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "portcullis/policy.h"
#include "server/http_server.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server_test_util.h"

namespace portcullis::server::test {

using testing::Bearer;
using testing::CertFiles;
using testing::ClientOptions;
using testing::FakeAccessStore;
using testing::FakeAuditLog;
using testing::HttpResponse;
using testing::HttpsConnection;
using testing::HttpsRequest;

inline policy::Principal MakePrincipal(const std::string& name, policy::Role role,
                                       std::vector<std::string> scope = {}) {
  policy::Principal p;
  p.name = name;
  p.role = role;
  p.scope = std::move(scope);
  return p;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    ASSERT_TRUE(testing::MakeSelfSigned(dir_, "server", "localhost", &server_cert_));
    ASSERT_TRUE(
        policy::LoadPolicyFile(std::string(PORTCULLIS_SOURCE_DIR) + "/data/policy.json", &policy_)
            .ok());
    store_.AddToken("tok-officer", MakePrincipal("officer:1", policy::Role::kOfficer));
    store_.AddToken("tok-admin", MakePrincipal("admin:1", policy::Role::kAdmin));
    store_.AddToken("tok-lane7", MakePrincipal("lane:7", policy::Role::kLaneDevice, {"7"}));
    store_.AddToken("tok-vendor", MakePrincipal("vendor:acme", policy::Role::kVendor, {"7"}));
    store_.AddToken("tok-expired", MakePrincipal("officer:2", policy::Role::kOfficer),
                    policy::AuthOutcome::kExpired);
    store_.AddToken("tok-revoked", MakePrincipal("officer:3", policy::Role::kOfficer),
                    policy::AuthOutcome::kRevoked);
    ctx_.access = &store_;
    ctx_.audit = &audit_;
    ctx_.policy = policy_.get();
    ctx_.metrics = &metrics_;
    ctx_.node_name = "test-node";
    options_.cert_file = server_cert_.cert;
    options_.key_file = server_cert_.key;
    options_.max_body_bytes = 1 << 20;
    options_.header_timeout_ms = 2000;
    options_.request_timeout_ms = 2000;
    options_.body_rules[{"POST", "/v1/principals"}] = {{"application/json"}, true};
    options_.body_rules[{"POST", "/v1/lanes/{lane}/reads"}] = {
        {"image/jpeg", "image/png", "video/*"}, true};
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
    SetLogSink(nullptr);
  }

  std::vector<Route> Routes() {
    std::vector<Route> routes;
    Route health;
    health.method = "GET";
    health.pattern = "/healthz";
    health.handler = [](ApiRequest&) {
      return ApiResponse::Json(200, nlohmann::json{{"status", "ok"}});
    };
    routes.push_back(health);

    Route reads;
    reads.method = "POST";
    reads.pattern = "/v1/lanes/{lane}/reads";
    reads.action = "plate.read";
    reads.category = "plate_read";
    reads.lane_param = "lane";
    reads.heavy = true;
    reads.handler = [this](ApiRequest& request) {
      heavy_started_.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(heavy_sleep_ms_.load()));
      heavy_done_.fetch_add(1);  // the "acknowledged write"
      return ApiResponse::Json(200, nlohmann::json{{"lane", request.path_params["lane"]},
                                                   {"bytes", request.body.size()},
                                                   {"worker", request.engines.plates != nullptr}});
    };
    routes.push_back(reads);

    Route plate;
    plate.method = "GET";
    plate.pattern = "/v1/plates/{id}";
    plate.action = "plate.lookup";
    plate.category = "plate_read";
    plate.handler = [this](ApiRequest& request) {
      light_calls_.fetch_add(1);
      return ApiResponse::Json(200, nlohmann::json{{"id", request.path_params["id"]},
                                                   {"purpose", request.purpose},
                                                   {"principal", request.principal.name}});
    };
    routes.push_back(plate);

    Route crop;
    crop.method = "GET";
    crop.pattern = "/v1/plates/{id}/crop";
    crop.action = "plate.crop";
    crop.category = "plate_crop";
    crop.lane_param = "lane";
    crop.handler = [](ApiRequest& request) {
      return ApiResponse::Bytes(200, "image/jpeg", "JPEG:" + request.ticket_id);
    };
    routes.push_back(crop);
    Route raw = crop;  // the same, with no lane in the path or query: the ticket names it
    raw.pattern = "/v1/plates/{id}/raw";
    raw.lane_param = "";
    routes.push_back(raw);

    Route principals;
    principals.method = "POST";
    principals.pattern = "/v1/principals";
    principals.action = "principal.manage";
    principals.category = "principal";
    principals.handler = [this](ApiRequest& request) {
      light_calls_.fetch_add(1);
      const nlohmann::json body = nlohmann::json::parse(request.body);
      return ApiResponse::Json(201, nlohmann::json{{"echo", body}});
    };
    routes.push_back(principals);

    Route failing;
    failing.method = "DELETE";
    failing.pattern = "/v1/principals/{name}";
    failing.action = "principal.manage";
    failing.category = "principal";
    failing.handler = [](ApiRequest&) -> ApiResponse {
      return ApiResponse::Error(404, "not_found", "no such principal");
    };
    routes.push_back(failing);
    return routes;
  }

  void StartServer() {
    std::vector<WorkerEngines> workers(workers_);
    ASSERT_TRUE(HttpServer::Create(options_, &ctx_, Routes(), workers, &server_).ok());
    ASSERT_TRUE(server_->Start().ok());
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  HttpResponse Get(const std::string& target, const std::map<std::string, std::string>& h = {}) {
    return HttpsRequest(port_, "GET", target, h);
  }

  // The last audit event, which every test's request produced.
  audit::AuditEvent LastEvent() {
    const auto events = audit_.events();
    return events.empty() ? audit::AuditEvent{} : events.back();
  }

  std::string dir_;
  CertFiles server_cert_;
  std::unique_ptr<policy::AccessPolicy> policy_;
  FakeAccessStore store_;
  FakeAuditLog audit_;
  Metrics metrics_;
  ServiceContext ctx_;
  HttpServerOptions options_;
  std::size_t workers_ = 2;
  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
  std::atomic<int> heavy_sleep_ms_{0};
  std::atomic<int> heavy_started_{0};
  std::atomic<int> heavy_done_{0};
  std::atomic<int> light_calls_{0};
};

}  // namespace portcullis::server::test
