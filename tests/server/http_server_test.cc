// The HTTP server in-process, with fakes for the access store, the audit log and the handlers, and
// the real default policy (data/policy.json): routing, the pipeline's order, limits and abuse,
// back-pressure, shutdown and TLS. Every refusal is checked for its JSON error and its audit entry.
#include "server/http_server.h"

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "http_test_fixture.h"

namespace portcullis::server {
namespace {

// ---- Paths
// ------------------------------------------------------------------------------------------

TEST(PathTest, CleanPaths) {
  EXPECT_TRUE(IsCleanPath("/v1/plates/abc"));
  EXPECT_TRUE(IsCleanPath("/console/"));
  EXPECT_FALSE(IsCleanPath("v1/plates"));
  EXPECT_FALSE(IsCleanPath("/v1/../etc/passwd"));
  EXPECT_FALSE(IsCleanPath("/v1/./plates"));
  EXPECT_FALSE(IsCleanPath("/v1/plates/a%2Fb"));
  EXPECT_FALSE(IsCleanPath("/v1//plates"));
  EXPECT_FALSE(IsCleanPath("/v1/plates\\x"));
  EXPECT_FALSE(IsCleanPath(std::string("/v1/pl\0tes", 10)));
}

TEST(PathTest, PatternsAndParameters) {
  std::map<std::string, std::string> params;
  EXPECT_EQ(MatchPattern("/v1/lanes/{lane}/reads", "/v1/lanes/7/reads", &params),
            MatchResult::kYes);
  EXPECT_EQ(params.at("lane"), "7");
  EXPECT_EQ(MatchPattern("/v1/lanes/{lane}/reads", "/v1/lanes/7", &params), MatchResult::kNo);
  EXPECT_EQ(MatchPattern("/v1/lanes/{lane}/reads", "/v1/lanes/7/read", &params), MatchResult::kNo);
  EXPECT_EQ(MatchPattern("/v1/plates/{id}", "/v1/plates/" + std::string(65, 'a'), &params),
            MatchResult::kParamInvalid);
  EXPECT_EQ(MatchPattern("/v1/plates/{id}", "/v1/plates/a;b", &params), MatchResult::kParamInvalid);
  EXPECT_EQ(MatchPattern("/v1/principals/{name}", "/v1/principals/vendor:acme", &params),
            MatchResult::kYes);
  EXPECT_EQ(MatchPattern("/v1/plates/{id}", "/v1/plates/" + std::string(64, 'a'), &params),
            MatchResult::kYes);
}

TEST(PathTest, Queries) {
  std::map<std::string, std::string> q;
  ASSERT_TRUE(ParseQuery("a=1&b=x%20y&c=&d", &q));
  EXPECT_EQ(q.at("a"), "1");
  EXPECT_EQ(q.at("b"), "x y");
  EXPECT_EQ(q.at("c"), "");
  EXPECT_EQ(q.at("d"), "");
  EXPECT_FALSE(ParseQuery("a=%2", &q));
  EXPECT_FALSE(ParseQuery("a=%zz", &q));
}

// ---- Routing ------------------------------------------------------------------------------------

using test::Bearer;
using test::HttpResponse;
using test::HttpsConnection;
using test::HttpServerTest;
using test::HttpsRequest;

TEST_F(HttpServerTest, PublicRouteNeedsNoTokenAndLeavesNoAuditEntry) {
  StartServer();
  const HttpResponse r = Get("/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Json()["status"], "ok");
  EXPECT_EQ(r.headers.at("x-request-id").size(), 16u);
  EXPECT_TRUE(audit_.events().empty());
}

TEST_F(HttpServerTest, UnknownPathIs404WithRequestIdAndAttributedAuditEntry) {
  StartServer();
  const HttpResponse r = Get("/v1/nothing", Bearer("tok-officer"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.ErrorCode(), "not_found");
  EXPECT_EQ(r.Json()["error"]["request_id"], r.headers.at("x-request-id"));
  const audit::AuditEvent e = LastEvent();
  EXPECT_EQ(e.principal, "officer:1");
  EXPECT_EQ(e.role, "officer");
  EXPECT_EQ(e.action, "http.unrouted");
  EXPECT_EQ(e.result, "denied:not_found");
}

TEST_F(HttpServerTest, WrongMethodIs405WithAllow) {
  StartServer();
  const HttpResponse r = HttpsRequest(port_, "PUT", "/v1/plates/abc", Bearer("tok-officer"), "x");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.ErrorCode(), "method_not_allowed");
  EXPECT_EQ(r.headers.at("allow"), "GET");
  EXPECT_EQ(LastEvent().result, "denied:method_not_allowed");
}

TEST_F(HttpServerTest, PathTraversalAndEncodedSlashesAre400InvalidPath) {
  StartServer();
  for (const std::string& target :
       std::vector<std::string>{"/v1/plates/..", "/v1/plates/../../etc/passwd", "/v1/plates/a%2Fb",
                                "/v1/plates/%2e%2e", "/v1/plates/" + std::string(65, 'a'),
                                "/v1/plates/a;b", "/v1//plates", "/v1/plates/x?bad=%zz"}) {
    const std::size_t before = audit_.events().size();
    const HttpResponse r = Get(target, Bearer("tok-officer", {{"X-Purpose", "case 1"}}));
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_EQ(r.ErrorCode(), "invalid_path") << target;
    ASSERT_EQ(audit_.events().size(), before + 1) << target;
    EXPECT_EQ(LastEvent().result, "denied:invalid_path") << target;
    EXPECT_EQ(LastEvent().principal, "officer:1");
  }
  EXPECT_EQ(light_calls_.load(), 0);
}

// ---- Authentication
// ---------------------------------------------------------------------------------

TEST_F(HttpServerTest, MissingUnknownExpiredRevokedTokensAre401) {
  StartServer();
  struct Case {
    std::map<std::string, std::string> headers;
    std::string code;
  };
  const std::vector<Case> cases = {
      {{}, "unauthenticated"},
      {{{"Authorization", "Basic b2ZmaWNlcjpwdw=="}}, "unauthenticated"},
      {Bearer("tok-nobody"), "unauthenticated"},
      {Bearer("tok-expired"), "token_expired"},
      {Bearer("tok-revoked"), "token_revoked"},
  };
  for (const Case& c : cases) {
    auto headers = c.headers;
    headers["X-Purpose"] = "inspection";
    const HttpResponse r = Get("/v1/plates/abc", headers);
    EXPECT_EQ(r.status, 401) << c.code;
    EXPECT_EQ(r.ErrorCode(), c.code);
    const audit::AuditEvent e = LastEvent();
    EXPECT_EQ(e.principal, "anonymous");
    EXPECT_EQ(e.role, "none");
    EXPECT_EQ(e.action, "http.plate.lookup");
    EXPECT_EQ(e.record_id, "abc");
    EXPECT_EQ(e.result, "denied:" + c.code);
  }
  EXPECT_EQ(light_calls_.load(), 0);
}

TEST_F(HttpServerTest, AccessStoreDownIs503NotReady) {
  store_.fail_ = true;
  StartServer();
  const HttpResponse r = Get("/v1/plates/abc", Bearer("tok-officer"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.ErrorCode(), "not_ready");
  EXPECT_EQ(LastEvent().result, "denied:not_ready");
}

// ---- Policy
// -------------------------------------------------------------------------------------------

TEST_F(HttpServerTest, AllowedRequestReachesHandlerWithOneAuditEntry) {
  StartServer();
  const HttpResponse r =
      Get("/v1/plates/abc", Bearer("tok-officer", {{"X-Purpose", "secondary inspection"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["id"], "abc");
  EXPECT_EQ(r.Json()["purpose"], "secondary inspection");
  EXPECT_EQ(r.Json()["principal"], "officer:1");
  const auto events = audit_.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].principal, "officer:1");
  EXPECT_EQ(events[0].role, "officer");
  EXPECT_EQ(events[0].purpose, "secondary inspection");
  EXPECT_EQ(events[0].action, "http.plate.lookup");
  EXPECT_EQ(events[0].record_id, "abc");
  EXPECT_EQ(events[0].result, "ok");
  EXPECT_GT(events[0].time_micros, 0);
}

TEST_F(HttpServerTest, OfficerWithoutPurposeIs403PurposeRequired) {
  StartServer();
  const HttpResponse r = Get("/v1/plates/abc", Bearer("tok-officer"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.ErrorCode(), "purpose_required");
  EXPECT_EQ(LastEvent().result, "denied:purpose_required");
  EXPECT_EQ(light_calls_.load(), 0);
}

TEST_F(HttpServerTest, PurposeOver512BytesIs400) {
  StartServer();
  const HttpResponse r =
      Get("/v1/plates/abc", Bearer("tok-officer", {{"X-Purpose", std::string(513, 'p')}}));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.ErrorCode(), "invalid_argument");
  EXPECT_EQ(LastEvent().result, "denied:invalid_argument");
  EXPECT_EQ(LastEvent().purpose, "");  // not recorded: over the limit
}

TEST_F(HttpServerTest, DeviceOutsideItsLaneIs403OutOfScope) {
  StartServer();
  const HttpResponse r = HttpsRequest(port_, "POST", "/v1/lanes/8/reads",
                                      Bearer("tok-lane7", {{"Content-Type", "image/jpeg"}}), "jpg");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.ErrorCode(), "out_of_scope");
  EXPECT_EQ(LastEvent().result, "denied:out_of_scope");
  EXPECT_EQ(heavy_started_.load(), 0);
  const HttpResponse ok =
      HttpsRequest(port_, "POST", "/v1/lanes/7/reads",
                   Bearer("tok-lane7", {{"Content-Type", "image/jpeg"}}), "jpg");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.Json()["bytes"], 3);
}

TEST_F(HttpServerTest, VendorNeedsALiveTicketForTheLane) {
  store_.AddTicket("t-good", "vendor:acme", "7", 1);
  store_.AddTicket("t-other-lane", "vendor:acme", "9", 5);
  StartServer();
  HttpResponse r = Get("/v1/plates/abc/crop?lane=7", Bearer("tok-vendor"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.ErrorCode(), "ticket_required");
  r = Get("/v1/plates/abc/crop?lane=7", Bearer("tok-vendor", {{"X-Ticket", "t-forged"}}));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.ErrorCode(), "ticket_invalid");
  EXPECT_EQ(LastEvent().result, "denied:ticket_invalid");
  r = Get("/v1/plates/abc/crop?lane=7", Bearer("tok-vendor", {{"X-Ticket", "t-other-lane"}}));
  EXPECT_EQ(r.ErrorCode(), "ticket_invalid");
  r = Get("/v1/plates/abc/crop?lane=7", Bearer("tok-vendor", {{"X-Ticket", "t-good"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "JPEG:t-good");
  EXPECT_EQ(r.headers.at("content-type"), "image/jpeg");
  EXPECT_EQ(LastEvent().result, "ok");
  EXPECT_EQ(LastEvent().principal, "vendor:acme");
  r = Get("/v1/plates/abc/crop?lane=7", Bearer("tok-vendor", {{"X-Ticket", "t-good"}}));
  EXPECT_EQ(r.ErrorCode(), "ticket_invalid");  // used up
}

TEST_F(HttpServerTest, WithoutALaneInThePathTheTicketsOwnLaneIsChecked) {
  store_.AddTicket("t-seven", "vendor:acme", "7", 5);
  store_.AddTicket("t-nine", "vendor:acme", "9", 5);  // lane 9 is outside the vendor's scope
  StartServer();
  HttpResponse r = Get("/v1/plates/abc/raw", Bearer("tok-vendor", {{"X-Ticket", "t-seven"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "JPEG:t-seven");
  r = Get("/v1/plates/abc/raw", Bearer("tok-vendor", {{"X-Ticket", "t-nine"}}));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.ErrorCode(), "out_of_scope");
  r = Get("/v1/plates/abc/raw", Bearer("tok-vendor", {{"X-Ticket", "t-unknown"}}));
  EXPECT_EQ(r.ErrorCode(), "ticket_invalid");
}

TEST_F(HttpServerTest, HandlerErrorsGetTheRequestId) {
  StartServer();
  const HttpResponse r = HttpsRequest(port_, "DELETE", "/v1/principals/bob", Bearer("tok-admin"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.ErrorCode(), "not_found");
  EXPECT_EQ(r.Json()["error"]["request_id"], r.headers.at("x-request-id"));
  EXPECT_EQ(LastEvent().result, "ok");  // the decision was to allow; the handler said 404
}

TEST_F(HttpServerTest, AuditLogFailureMeansTheHandlerDoesNotRun) {
  StartServer();
  audit_.set_fail(true);
  const HttpResponse r = Get("/v1/plates/abc", Bearer("tok-officer", {{"X-Purpose", "p"}}));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.ErrorCode(), "not_ready");
  EXPECT_EQ(light_calls_.load(), 0);
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer();
  HttpsConnection c(port_);
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 3; ++i) {
    const HttpResponse r = c.Request("GET", "/v1/plates/r" + std::to_string(i),
                                     Bearer("tok-officer", {{"X-Purpose", "p"}}));
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.Json()["id"], "r" + std::to_string(i));
  }
  EXPECT_EQ(audit_.events().size(), 3u);
}

// ---- Logs and metrics
// ---------------------------------------------------------------------------------

TEST_F(HttpServerTest, OneLogLinePerRequestWithThePatternNotThePath) {
  std::mutex mutex;
  std::vector<std::string> lines;
  SetLogSink([&](std::string_view line) {
    std::lock_guard<std::mutex> lock(mutex);
    lines.emplace_back(line);
  });
  StartServer();
  const HttpResponse r = Get("/v1/plates/SECRET123", Bearer("tok-officer", {{"X-Purpose", "p"}}));
  ASSERT_EQ(r.status, 200);
  // The line is written after the response; give the I/O thread a moment.
  for (int i = 0; i < 100; ++i) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!lines.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  server_->Shutdown();
  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].find("SECRET123"), std::string::npos) << lines[0];
  const nlohmann::json j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["msg"], "request");
  EXPECT_EQ(j["route"], "/v1/plates/{id}");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["principal"], "officer:1");
  EXPECT_EQ(j["role"], "officer");
  EXPECT_EQ(j["node"], "test-node");
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["request_id"], r.headers.at("x-request-id"));
  EXPECT_TRUE(j["latency_ms"].is_number());
  EXPECT_TRUE(j["bytes"].is_number());
  EXPECT_TRUE(j["time"].is_string());
  // Where the time went: the pipeline's stages, in order, adding up to the latency.
  ASSERT_TRUE(j.contains("stages_ms") && j["stages_ms"].is_object()) << lines[0];
  double sum = 0;
  for (const char* stage : {"queue_control", "authorise", "body", "queue_admit", "audit_decision",
                            "handler", "respond"}) {
    ASSERT_TRUE(j["stages_ms"].contains(stage)) << stage << " missing in " << lines[0];
    EXPECT_GE(j["stages_ms"][stage].get<double>(), 0.0) << stage;
    sum += j["stages_ms"][stage].get<double>();
  }
  EXPECT_NEAR(sum, j["latency_ms"].get<double>(), 0.05 + 0.01 * j["latency_ms"].get<double>());
}

TEST_F(HttpServerTest, MetricsCountRequestsAndDenials) {
  StartServer();
  ASSERT_EQ(Get("/v1/plates/abc", Bearer("tok-officer", {{"X-Purpose", "p"}})).status, 200);
  ASSERT_EQ(Get("/v1/plates/abc", Bearer("tok-officer")).status, 403);
  server_->Shutdown();  // every response's bookkeeping done
  EXPECT_EQ(metrics_.Value("requests_total",
                           {{"route", "/v1/plates/{id}"}, {"method", "GET"}, {"status", "200"}}),
            1);
  EXPECT_EQ(metrics_.Value("requests_total",
                           {{"route", "/v1/plates/{id}"}, {"method", "GET"}, {"status", "403"}}),
            1);
  EXPECT_EQ(metrics_.Value("denied_total", {{"reason", "purpose_required"}}), 1);
  EXPECT_EQ(metrics_.Value("in_flight"), 0);
  EXPECT_NE(metrics_.RenderPrometheus().find("portcullis_request_duration_seconds_bucket"),
            std::string::npos);
}

TEST_F(HttpServerTest, CreateRefusesBadRouteTables) {
  std::vector<Route> routes = Routes();
  routes.push_back(routes[2]);  // a duplicate
  std::unique_ptr<HttpServer> server;
  EXPECT_FALSE(HttpServer::Create(options_, &ctx_, routes, {}, &server).ok());
  routes = Routes();
  routes[2].action = "plate.steal";
  EXPECT_FALSE(HttpServer::Create(options_, &ctx_, routes, {}, &server).ok());
  HttpServerOptions bad = options_;
  bad.cert_file = dir_ + "/missing.crt";
  const Status s = HttpServer::Create(bad, &ctx_, Routes(), {}, &server);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("tls.cert"), std::string::npos) << s.ToString();
}

TEST_F(HttpServerTest, BindFailureIsIOError) {
  StartServer();
  HttpServerOptions taken = options_;
  taken.port = port_;
  std::unique_ptr<HttpServer> second;
  ASSERT_TRUE(HttpServer::Create(taken, &ctx_, Routes(), {}, &second).ok());
  const Status s = second->Start();
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
}

}  // namespace
}  // namespace portcullis::server
