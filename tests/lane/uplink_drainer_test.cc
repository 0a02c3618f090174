// QueueDrainer's logic against a scripted Uplink (no network): order, poison events, back-off
// growth and cap, Retry-After, Notify and Stop. The same drainer against the real service is in
// uplink_link_test.cc.
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "lane/uplink.h"
#include "uplink_util.h"

namespace portcullis::lane {
namespace {

using uplinktest::MemoryQueue;

struct Outcome {
  LinkState state = LinkState::kUp;
  int retry_after_ms = 0;
  bool duplicate = false;  // with kUp: the service answered 200 duplicate
};

// Answers from a script (then kUp forever); records what it was sent and when.
class ScriptedUplink final : public Uplink {
 public:
  explicit ScriptedUplink(std::deque<Outcome> script) : script_(std::move(script)) {}
  Status SendEvent(const SealedEvent& event, LinkState* state, int* retry_after_ms,
                   bool* duplicate) override {
    std::lock_guard<std::mutex> lock(mutex_);
    sent_.push_back(event.sequence);
    times_.push_back(std::chrono::steady_clock::now());
    Outcome o;
    if (!script_.empty()) {
      o = script_.front();
      script_.pop_front();
    }
    *state = o.state;
    *retry_after_ms = o.retry_after_ms;
    *duplicate = o.duplicate;
    return o.state == LinkState::kUp ? Status::Ok() : Status::IOError("scripted failure");
  }
  Status SendReport(const std::string&, LinkState* state) override {
    *state = LinkState::kUp;
    return Status::Ok();
  }
  std::vector<std::uint64_t> sent() {
    std::lock_guard<std::mutex> lock(mutex_);
    return sent_;
  }
  std::vector<std::chrono::steady_clock::time_point> times() {
    std::lock_guard<std::mutex> lock(mutex_);
    return times_;
  }

 private:
  std::mutex mutex_;
  std::deque<Outcome> script_;
  std::vector<std::uint64_t> sent_;
  std::vector<std::chrono::steady_clock::time_point> times_;
};

SealedEvent Sealed(std::uint64_t sequence) {
  SealedEvent e;
  e.event_id = NewEventId();
  e.sequence = sequence;
  e.sealed = "sealed-" + std::to_string(sequence);
  return e;
}

UplinkConfig FastConfig() {
  UplinkConfig c;
  c.backoff_initial_ms = 10;
  c.backoff_max_ms = 80;
  return c;
}

TEST(QueueDrainer, DeliversInOrderAndRetriesTheSameEventUntilAcknowledged) {
  MemoryQueue queue;
  for (std::uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE(queue.Append(Sealed(i)).ok());
  ScriptedUplink uplink({{LinkState::kUnreachable, 0}, {LinkState::kServerError, 0}});
  QueueDrainer drainer(&queue, &uplink, FastConfig());
  DrainStats stats;
  EXPECT_FALSE(drainer.DrainOne(&stats).ok());
  EXPECT_EQ(stats.state, LinkState::kUnreachable);
  EXPECT_FALSE(drainer.DrainOne(&stats).ok());
  EXPECT_EQ(stats.state, LinkState::kServerError);
  EXPECT_EQ(queue.stats().events, 3u);  // nothing left the queue unacknowledged
  while (drainer.DrainOne(&stats).ok()) {
  }
  EXPECT_EQ(stats.delivered, 3u);
  EXPECT_EQ(stats.failures, 2u);
  EXPECT_EQ(queue.stats().events, 0u);
  EXPECT_EQ(uplink.sent(), (std::vector<std::uint64_t>{1, 1, 1, 2, 3}));
  EXPECT_EQ(drainer.DrainOne(&stats).code(), Status::Code::kNotFound);
}

TEST(QueueDrainer, DuplicateAcknowledgementsAreCountedAsDeliveredAndDuplicate) {
  MemoryQueue queue;
  for (std::uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE(queue.Append(Sealed(i)).ok());
  // Event 1 new (201), event 2 already at the service (200 duplicate), event 3 new.
  ScriptedUplink uplink({{LinkState::kUp, 0, false}, {LinkState::kUp, 0, true}});
  QueueDrainer drainer(&queue, &uplink, FastConfig());
  DrainStats stats;
  while (drainer.DrainOne(&stats).ok()) {
  }
  EXPECT_EQ(stats.delivered, 3u);
  EXPECT_EQ(stats.duplicates, 1u);
  EXPECT_EQ(queue.stats().events, 0u);
}

TEST(QueueDrainer, PoisonEventIsPoppedAndCountedOthersAreNot) {
  MemoryQueue queue;
  for (std::uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE(queue.Append(Sealed(i)).ok());
  ScriptedUplink uplink({{LinkState::kUnauthorized, 0}, {LinkState::kRejected, 0}});
  QueueDrainer drainer(&queue, &uplink, FastConfig());
  DrainStats stats;
  EXPECT_FALSE(drainer.DrainOne(&stats).ok());  // 401/403: never popped
  EXPECT_EQ(queue.stats().events, 3u);
  EXPECT_FALSE(drainer.DrainOne(&stats).ok());  // 400: popped as poison
  EXPECT_EQ(stats.rejected, 1u);
  EXPECT_EQ(queue.stats().events, 2u);
  EXPECT_EQ(queue.stats().oldest_sequence, 2u);
}

TEST(QueueDrainer, QueueReadFailureIsReturnedNotSent) {
  MemoryQueue queue;
  ASSERT_TRUE(queue.Append(Sealed(1)).ok());
  queue.set_fail_reads(true);
  ScriptedUplink uplink({});
  QueueDrainer drainer(&queue, &uplink, FastConfig());
  DrainStats stats;
  EXPECT_EQ(drainer.DrainOne(&stats).code(), Status::Code::kIOError);
  EXPECT_TRUE(uplink.sent().empty());
}

TEST(QueueDrainer, BackoffGrowsIsCappedAndHonoursRetryAfter) {
  MemoryQueue queue;
  ASSERT_TRUE(queue.Append(Sealed(1)).ok());
  std::deque<Outcome> script;
  for (int i = 0; i < 6; ++i) script.push_back({LinkState::kUnreachable, 0});
  script.push_back({LinkState::kServerError, 150});  // Retry-After: above the cap, so capped
  ScriptedUplink uplink(script);
  UplinkConfig config = FastConfig();
  QueueDrainer drainer(&queue, &uplink, config);
  std::vector<int> backoffs;
  std::atomic<bool> done{false};
  std::thread runner([&] {
    drainer.Run([&] { return done.load(); },
                [&](const DrainStats& s) {
                  if (s.backoff_ms > 0) backoffs.push_back(s.backoff_ms);
                  if (s.delivered == 1) done = true;
                });
  });
  runner.join();
  ASSERT_EQ(backoffs.size(), 7u);
  // 10, 20, 40, 80, 80, 80 (each with jitter in [d/2, d]), then the capped Retry-After.
  const int expected_max[] = {10, 20, 40, 80, 80, 80};
  for (int i = 0; i < 6; ++i) {
    EXPECT_LE(backoffs[static_cast<std::size_t>(i)], expected_max[i]) << i;
    EXPECT_GE(backoffs[static_cast<std::size_t>(i)], expected_max[i] / 2) << i;
  }
  EXPECT_EQ(backoffs[6], 80);
  // The waits really happened: the 8 attempts span at least the sum of the lower bounds.
  const auto times = uplink.times();
  ASSERT_EQ(times.size(), 8u);
  EXPECT_GE(times.back() - times.front(), std::chrono::milliseconds(5 + 10 + 20 + 40 + 40 + 40));
}

TEST(QueueDrainer, RetryAfterFromTheServiceIsWaited) {
  MemoryQueue queue;
  ASSERT_TRUE(queue.Append(Sealed(1)).ok());
  ScriptedUplink uplink({{LinkState::kServerError, 300}});
  UplinkConfig config = FastConfig();
  config.backoff_max_ms = 1000;
  QueueDrainer drainer(&queue, &uplink, config);
  std::atomic<bool> done{false};
  std::thread runner([&] {
    drainer.Run([&] { return done.load(); }, [&](const DrainStats& s) { done = s.delivered == 1; });
  });
  runner.join();
  const auto times = uplink.times();
  ASSERT_EQ(times.size(), 2u);
  EXPECT_GE(times[1] - times[0], std::chrono::milliseconds(290));
}

TEST(QueueDrainer, StopInterruptsALongBackoffAndNotifyWakesAnIdleDrainer) {
  MemoryQueue queue;
  ScriptedUplink uplink({{LinkState::kUnreachable, 0}});
  UplinkConfig config;
  config.backoff_initial_ms = 60000;  // a minute: only Stop() can end this wait in time
  config.backoff_max_ms = 60000;
  QueueDrainer drainer(&queue, &uplink, config);
  drainer.idle_poll_ms = 60000;  // only Notify() can end the idle wait in time
  std::thread runner([&] { drainer.Run(nullptr, nullptr); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(queue.Append(Sealed(1)).ok());
  drainer.Notify();
  // The drainer woke, sent, failed and is now in its minute of back-off.
  for (int i = 0; i < 200 && uplink.sent().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(uplink.sent().size(), 1u);
  const auto before = std::chrono::steady_clock::now();
  drainer.Stop();
  runner.join();
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(2));
  EXPECT_EQ(drainer.stats().state, LinkState::kUnreachable);
  EXPECT_EQ(queue.stats().events, 1u);
}

TEST(QueueDrainer, HttpStatusesMapToStates) {
  EXPECT_EQ(LinkStateForHttpStatus(201), LinkState::kUp);
  EXPECT_EQ(LinkStateForHttpStatus(200), LinkState::kUp);
  EXPECT_EQ(LinkStateForHttpStatus(400), LinkState::kRejected);
  EXPECT_EQ(LinkStateForHttpStatus(409), LinkState::kRejected);
  EXPECT_EQ(LinkStateForHttpStatus(413), LinkState::kRejected);
  EXPECT_EQ(LinkStateForHttpStatus(401), LinkState::kUnauthorized);
  EXPECT_EQ(LinkStateForHttpStatus(403), LinkState::kUnauthorized);
  EXPECT_EQ(LinkStateForHttpStatus(404), LinkState::kServerError);
  EXPECT_EQ(LinkStateForHttpStatus(429), LinkState::kServerError);
  EXPECT_EQ(LinkStateForHttpStatus(503), LinkState::kServerError);
  EXPECT_EQ(LinkStateForHttpStatus(500), LinkState::kServerError);
  EXPECT_STREQ(LinkStateName(LinkState::kCertificateExpired), "certificate_expired");
  EXPECT_STREQ(LinkStateName(LinkState::kTlsFailed), "tls_failed");
}

TEST(QueueDrainer, UplinkOpenRefusesBadConfigs) {
  std::unique_ptr<Uplink> link;
  UplinkConfig c;
  c.url = "http://127.0.0.1:1";
  c.lane = "7";
  EXPECT_EQ(Uplink::Open(c, &link).code(), Status::Code::kInvalidArgument);
  c.url = "https://127.0.0.1:1/v1";
  EXPECT_EQ(Uplink::Open(c, &link).code(), Status::Code::kInvalidArgument);
  c.url = "https://127.0.0.1:1";
  c.token_file = "/nonexistent/token";
  EXPECT_EQ(Uplink::Open(c, &link).code(), Status::Code::kNotFound);
  c.lane = "7/../8";
  EXPECT_EQ(Uplink::Open(c, &link).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(link, nullptr);
}

}  // namespace
}  // namespace portcullis::lane
