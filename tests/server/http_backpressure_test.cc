// Back-pressure and shutdown: the per-principal rate limit, the bounded worker queue, and a
// graceful stop that finishes what it acknowledged and turns away what it had not started.
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "http_test_fixture.h"

namespace portcullis::server {
namespace {

using test::Bearer;
using test::HttpResponse;
using test::HttpServerTest;
using test::HttpsRequest;

HttpResponse PostRead(std::uint16_t port) {
  return HttpsRequest(port, "POST", "/v1/lanes/7/reads",
                      Bearer("tok-lane7", {{"Content-Type", "image/jpeg"}}), "jpeg-bytes");
}

TEST_F(HttpServerTest, RateLimitIs429WithRetryAfterPerPrincipal) {
  options_.rate_per_minute = 6;  // one every 10 s
  options_.rate_burst = 3;
  StartServer();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Get("/v1/plates/abc", Bearer("tok-officer", {{"X-Purpose", "p"}})).status, 200);
  }
  const HttpResponse r = Get("/v1/plates/abc", Bearer("tok-officer", {{"X-Purpose", "p"}}));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.ErrorCode(), "too_many_requests");
  ASSERT_TRUE(r.headers.count("retry-after"));
  const int retry = std::stoi(r.headers.at("retry-after"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 10);
  EXPECT_EQ(LastEvent().result, "denied:too_many_requests");
  EXPECT_EQ(LastEvent().principal, "officer:1");
  // Another principal has its own bucket.
  EXPECT_EQ(PostRead(port_).status, 200);
  EXPECT_EQ(light_calls_.load(), 3);
}

TEST_F(HttpServerTest, FullWorkerQueueIs503OverloadedWithRetryAfter) {
  workers_ = 1;
  options_.queue = 1;
  heavy_sleep_ms_ = 800;
  StartServer();
  std::vector<std::future<HttpResponse>> requests;
  for (int i = 0; i < 5; ++i) {
    requests.push_back(std::async(std::launch::async, [this] { return PostRead(port_); }));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  int ok = 0;
  int overloaded = 0;
  for (auto& f : requests) {
    const HttpResponse r = f.get();
    if (r.status == 200) {
      ++ok;
    } else {
      EXPECT_EQ(r.status, 503);
      EXPECT_EQ(r.ErrorCode(), "overloaded");
      EXPECT_EQ(r.headers.at("retry-after"), "1");
      ++overloaded;
    }
  }
  // One running, one queued; the rest turned away at once.
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(overloaded, 3);
  audit::AuditEvent e;
  EXPECT_TRUE(audit_.Find("denied:overloaded", &e));
  EXPECT_EQ(heavy_done_.load(), 2);
}

TEST_F(HttpServerTest, LightRoutesStayFastWhileWorkersAreSaturated) {
  workers_ = 1;
  options_.queue = 4;
  heavy_sleep_ms_ = 1500;
  StartServer();
  auto heavy = std::async(std::launch::async, [this] { return PostRead(port_); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Get("/v1/plates/abc", Bearer("tok-officer", {{"X-Purpose", "p"}})).status, 200);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
  EXPECT_EQ(heavy.get().status, 200);
}

TEST_F(HttpServerTest, GracefulShutdownFinishesStartedWorkAndRefusesQueuedWork) {
  workers_ = 1;
  options_.queue = 4;
  heavy_sleep_ms_ = 1000;
  StartServer();
  auto first = std::async(std::launch::async, [this] { return PostRead(port_); });
  while (heavy_started_.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto queued = std::async(std::launch::async, [this] { return PostRead(port_); });
  while (server_->stats().queued == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::thread stopper([this] { server_->Shutdown(); });
  const HttpResponse started = first.get();
  const HttpResponse refused = queued.get();
  stopper.join();
  EXPECT_EQ(started.status, 200);  // acknowledged work is answered
  EXPECT_EQ(heavy_done_.load(), 1);
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.ErrorCode(), "shutting_down");
  EXPECT_TRUE(refused.headers.count("retry-after"));
  EXPECT_EQ(heavy_started_.load(), 1);  // the queued one never ran
  // Nothing listens any more.
  EXPECT_EQ(HttpsRequest(port_, "GET", "/healthz").status, 0);
}

TEST_F(HttpServerTest, ShutdownIsBoundedByTheGracePeriod) {
  workers_ = 1;
  heavy_sleep_ms_ = 1500;
  options_.shutdown_grace_ms = 200;
  StartServer();
  auto first = std::async(std::launch::async, [this] { return PostRead(port_); });
  while (heavy_started_.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto start = std::chrono::steady_clock::now();
  server_->Shutdown();
  // The handler still runs to its end (it is not interrupted), but no longer than that.
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 3.0);
  EXPECT_EQ(heavy_done_.load(), 1);
  first.get();
}

}  // namespace
}  // namespace portcullis::server
