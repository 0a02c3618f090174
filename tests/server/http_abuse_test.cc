// Abuse at the HTTP level (docs/service.md, BRIEF quality bar): malformed JSON, wrong content
// type, huge bodies (refused before they are read), slow clients (cut off while others are
// served), and the audit entry each leaves.
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "http_test_fixture.h"

namespace portcullis::server {
namespace {

using test::Bearer;
using test::HttpResponse;
using test::HttpsConnection;
using test::HttpServerTest;
using test::HttpsRequest;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

TEST_F(HttpServerTest, MalformedJsonIs400WithAuditEntry) {
  StartServer();
  const HttpResponse r = HttpsRequest(port_, "POST", "/v1/principals",
                                      Bearer("tok-admin", {{"Content-Type", "application/json"}}),
                                      "{\"name\": \"x\",");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.ErrorCode(), "malformed_json");
  EXPECT_EQ(light_calls_.load(), 0);
  audit::AuditEvent e;
  ASSERT_TRUE(audit_.Find("denied:malformed_json", &e));
  EXPECT_EQ(e.principal, "admin:1");
  EXPECT_EQ(e.action, "http.principal.manage");
  // Well-formed JSON with a charset parameter goes through.
  const HttpResponse ok = HttpsRequest(
      port_, "POST", "/v1/principals",
      Bearer("tok-admin", {{"Content-Type", "application/json; charset=utf-8"}}), "{\"a\": 1}");
  EXPECT_EQ(ok.status, 201) << ok.body;
  EXPECT_EQ(ok.Json()["echo"]["a"], 1);
}

TEST_F(HttpServerTest, WrongOrMissingContentTypeIs415WithAuditEntry) {
  StartServer();
  HttpResponse r = HttpsRequest(port_, "POST", "/v1/principals",
                                Bearer("tok-admin", {{"Content-Type", "text/plain"}}), "{}");
  EXPECT_EQ(r.status, 415);
  EXPECT_EQ(r.ErrorCode(), "unsupported_media_type");
  r = HttpsRequest(port_, "POST", "/v1/principals", Bearer("tok-admin"), "{}");
  EXPECT_EQ(r.status, 415);
  r = HttpsRequest(port_, "POST", "/v1/lanes/7/reads",
                   Bearer("tok-lane7", {{"Content-Type", "application/json"}}), "{}");
  EXPECT_EQ(r.status, 415);
  EXPECT_EQ(LastEvent().result, "denied:unsupported_media_type");
  EXPECT_EQ(LastEvent().principal, "lane:7");
  // video/* takes any video type.
  r = HttpsRequest(port_, "POST", "/v1/lanes/7/reads",
                   Bearer("tok-lane7", {{"Content-Type", "video/mp4"}}), "mp4");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(light_calls_.load(), 0);
}

TEST_F(HttpServerTest, FiftyMegabyteBodyIs413WithoutBeingRead) {
  StartServer();
  HttpsConnection c(port_);
  ASSERT_TRUE(c.ok());
  const std::size_t declared = 50u * 1024 * 1024;
  const auto start = Clock::now();
  ASSERT_TRUE(
      c.SendRaw("POST /v1/lanes/7/reads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                "tok-lane7\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                std::to_string(declared) + "\r\n\r\n" + std::string(64 * 1024, 'x')));
  const HttpResponse r = c.ReadResponse();
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.ErrorCode(), "body_too_large");
  EXPECT_LT(SecondsSince(start), 5.0);
  EXPECT_EQ(heavy_started_.load(), 0);
  EXPECT_TRUE(c.WaitClosed(5));  // the unread body is not waited for
  audit::AuditEvent e;
  ASSERT_TRUE(audit_.Find("denied:body_too_large", &e));
  EXPECT_EQ(e.principal, "lane:7");
  EXPECT_EQ(e.action, "http.plate.read");
}

TEST_F(HttpServerTest, ChunkedBodyOverTheLimitIs413WhileReading) {
  StartServer();
  HttpsConnection c(port_);
  ASSERT_TRUE(c.ok());
  std::string request =
      "POST /v1/lanes/7/reads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-lane7\r\n"
      "Content-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunk(256 * 1024, 'x');
  for (int i = 0; i < 6; ++i) request += "40000\r\n" + chunk + "\r\n";  // 1.5 MiB > 1 MiB
  request += "0\r\n\r\n";
  c.SendRaw(request);  // may fail part-way once the server stops reading
  const HttpResponse r = c.ReadResponse();
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.ErrorCode(), "body_too_large");
  EXPECT_EQ(heavy_started_.load(), 0);
  audit::AuditEvent e;
  EXPECT_TRUE(audit_.Find("denied:body_too_large", &e));
}

TEST_F(HttpServerTest, SlowHeaderIsCutOffWhileOthersAreServed) {
  options_.header_timeout_ms = 1000;
  StartServer();
  HttpsConnection slow(port_);
  ASSERT_TRUE(slow.ok());
  const auto start = Clock::now();
  ASSERT_TRUE(slow.SendRaw("GET /v1/plates/abc HTTP/1.1\r\nHost: x\r\n"));
  // While the slow client dribbles, another is served at once.
  std::thread dribble([&] {
    for (int i = 0; i < 8; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (!slow.SendRaw("X-Slow-" + std::to_string(i) + ": 1\r\n")) break;
    }
  });
  const auto fast_start = Clock::now();
  const HttpResponse fast = Get("/v1/plates/abc", Bearer("tok-officer", {{"X-Purpose", "p"}}));
  EXPECT_EQ(fast.status, 200);
  EXPECT_LT(SecondsSince(fast_start), 0.9);
  dribble.join();
  const HttpResponse r = slow.ReadResponse();
  EXPECT_EQ(r.status, 408);
  EXPECT_EQ(r.ErrorCode(), "request_timeout");
  EXPECT_LT(SecondsSince(start), 4.0);
  EXPECT_TRUE(slow.WaitClosed(3));
  audit::AuditEvent e;
  ASSERT_TRUE(audit_.Find("denied:request_timeout", &e));
  EXPECT_EQ(e.principal, "anonymous");
}

TEST_F(HttpServerTest, SlowBodyIsCutOff) {
  options_.request_timeout_ms = 800;
  StartServer();
  HttpsConnection slow(port_);
  ASSERT_TRUE(slow.ok());
  ASSERT_TRUE(slow.SendRaw(
      "POST /v1/lanes/7/reads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-lane7\r\n"
      "Content-Type: image/jpeg\r\nContent-Length: 1000\r\n\r\n0123456789"));
  const auto start = Clock::now();
  const HttpResponse r = slow.ReadResponse();
  EXPECT_EQ(r.status, 408);
  EXPECT_EQ(r.ErrorCode(), "request_timeout");
  EXPECT_LT(SecondsSince(start), 3.0);
  EXPECT_EQ(heavy_started_.load(), 0);
  audit::AuditEvent e;
  ASSERT_TRUE(audit_.Find("denied:request_timeout", &e));
  EXPECT_EQ(e.principal, "lane:7");
  // The queue slot it held is free again: a real request is served.
  const HttpResponse ok = HttpsRequest(port_, "POST", "/v1/lanes/7/reads",
                                       Bearer("tok-lane7", {{"Content-Type", "image/png"}}), "p");
  EXPECT_EQ(ok.status, 200);
}

TEST_F(HttpServerTest, IdleConnectionIsClosedSilently) {
  options_.header_timeout_ms = 500;
  StartServer();
  HttpsConnection idle(port_);
  ASSERT_TRUE(idle.ok());
  EXPECT_TRUE(idle.WaitClosed(3));
  EXPECT_TRUE(audit_.events().empty());
}

TEST_F(HttpServerTest, GarbageRequestLineIs400AndTheServerLivesOn) {
  StartServer();
  HttpsConnection c(port_);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.SendRaw("HELLO THERE\r\n\r\n"));
  const HttpResponse r = c.ReadResponse();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.ErrorCode(), "invalid_argument");
  EXPECT_EQ(Get("/healthz").status, 200);
}

TEST_F(HttpServerTest, OversizedHeaderIs431) {
  StartServer();
  const HttpResponse r =
      Get("/v1/plates/abc", Bearer("tok-officer", {{"X-Junk", std::string(20000, 'j')}}));
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(r.ErrorCode(), "header_too_large");
  audit::AuditEvent e;
  EXPECT_TRUE(audit_.Find("denied:header_too_large", &e));
}

}  // namespace
}  // namespace portcullis::server
