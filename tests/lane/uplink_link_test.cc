// The uplink and the drainer against the real service on loopback with mutual TLS (the service's
// events endpoint, lane ingest configured): delivery in order exactly once, an outage and its
// backlog, a lost answer, certificate and CA failures, wrong lanes and poison events.
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "lane/uplink.h"
#include "server_test_util.h"
#include "uplink_util.h"

namespace portcullis::lane {
namespace {

using uplinktest::LinkService;
using uplinktest::LinkWorld;
using uplinktest::MemoryQueue;

// Forwards to the real uplink and records every attempt and every acknowledgement.
class RecordingUplink final : public Uplink {
 public:
  explicit RecordingUplink(std::unique_ptr<Uplink> inner) : inner_(std::move(inner)) {}
  Status SendEvent(const SealedEvent& event, LinkState* state, int* retry_after_ms,
                   bool* duplicate) override {
    const Status s = inner_->SendEvent(event, state, retry_after_ms, duplicate);
    std::lock_guard<std::mutex> lock(mutex_);
    ++attempts_;
    if (s.ok()) acked_.push_back(event.sequence);
    return s;
  }
  Status SendReport(const std::string& json, LinkState* state) override {
    return inner_->SendReport(json, state);
  }
  std::vector<std::uint64_t> acked() {
    std::lock_guard<std::mutex> lock(mutex_);
    return acked_;
  }
  int attempts() {
    std::lock_guard<std::mutex> lock(mutex_);
    return attempts_;
  }

 private:
  std::unique_ptr<Uplink> inner_;
  std::mutex mutex_;
  std::vector<std::uint64_t> acked_;
  int attempts_ = 0;
};

class UplinkLinkTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(world_.Init()); }

  std::unique_ptr<Uplink> OpenUplink(const UplinkConfig& config) {
    std::unique_ptr<Uplink> link;
    const Status s = Uplink::Open(config, &link);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return link;
  }

  // Seals n events (sequences from first) into the queue; returns their ids in order.
  std::vector<std::string> Fill(MemoryQueue* queue, std::uint64_t first, int n,
                                std::size_t crop_bytes = 256) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      const LaneEvent event =
          uplinktest::SampleEvent(world_.lane, first + static_cast<std::uint64_t>(i), crop_bytes);
      SealedEvent sealed;
      EXPECT_TRUE(SealLaneEvent(event, world_.public_key, &sealed).ok());
      EXPECT_TRUE(queue->Append(sealed).ok());
      ids.push_back(sealed.event_id);
    }
    return ids;
  }

  // Each event has exactly its one record set: a read, a crop and a face.
  void ExpectOneRecordSetEach(const std::vector<std::string>& ids) {
    for (const std::string& id : ids) EXPECT_EQ(world_.CountRecords(id), 3u) << id;
    EXPECT_EQ(world_.CountRecords(), 3 * ids.size());
  }

  LinkWorld world_;
};

TEST_F(UplinkLinkTest, DeliversInOrderExactlyOnce) {
  LinkService node(world_, "n1");
  ASSERT_TRUE(node.Start().ok());
  RecordingUplink link(OpenUplink(world_.DeviceConfig(node.port())));
  MemoryQueue queue;
  const auto ids = Fill(&queue, 1, 6);
  QueueDrainer drainer(&queue, &link, world_.DeviceConfig(node.port()));
  DrainStats stats;
  Status s;
  while ((s = drainer.DrainOne(&stats)).ok()) {
  }
  EXPECT_EQ(s.code(), Status::Code::kNotFound) << s.ToString();
  EXPECT_EQ(stats.delivered, 6u);
  EXPECT_EQ(stats.state, LinkState::kUp);
  EXPECT_EQ(link.acked(), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(link.attempts(), 6);
  ExpectOneRecordSetEach(ids);
  // A report over the same link.
  LinkState state = LinkState::kTlsFailed;
  EXPECT_TRUE(link.SendReport(R"({"kind":"health","status":"ok","queue":0})", &state).ok());
  EXPECT_EQ(state, LinkState::kUp);
}

TEST_F(UplinkLinkTest, OutageGrowsTheBacklogThenItDrainsInOrderWithoutDuplicates) {
  const std::uint16_t port = uplinktest::FreePort();
  ASSERT_NE(port, 0);
  const UplinkConfig config = world_.DeviceConfig(port);
  RecordingUplink link(OpenUplink(config));
  MemoryQueue queue;
  std::vector<std::string> ids = Fill(&queue, 1, 4);
  QueueDrainer drainer(&queue, &link, config);
  std::atomic<bool> stop{false};
  std::thread runner([&] { drainer.Run([&] { return stop.load(); }, nullptr); });

  // The service is down: attempts fail, nothing leaves the queue, and events keep arriving.
  for (int i = 0; i < 300 && drainer.stats().failures < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(drainer.stats().failures, 3u);
  EXPECT_EQ(drainer.stats().state, LinkState::kUnreachable);
  const auto more = Fill(&queue, 5, 4);
  ids.insert(ids.end(), more.begin(), more.end());
  EXPECT_EQ(queue.stats().events, 8u);
  EXPECT_TRUE(link.acked().empty());

  LinkService node(world_, "n1");
  ASSERT_TRUE(node.Start(port).ok());
  for (int i = 0; i < 1000 && queue.stats().events > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop = true;
  drainer.Stop();
  runner.join();
  EXPECT_EQ(queue.stats().events, 0u);
  EXPECT_EQ(link.acked(), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(drainer.stats().state, LinkState::kUp);
  ExpectOneRecordSetEach(ids);
}

TEST_F(UplinkLinkTest, AServiceRestartBetweenEventsReconnects) {
  LinkService node(world_, "n1");
  ASSERT_TRUE(node.Start().ok());
  const std::uint16_t port = node.port();
  auto link = OpenUplink(world_.DeviceConfig(port));
  MemoryQueue queue;
  auto ids = Fill(&queue, 1, 2);
  QueueDrainer drainer(&queue, link.get(), world_.DeviceConfig(port));
  DrainStats stats;
  ASSERT_TRUE(drainer.DrainOne(&stats).ok());
  node.Stop();  // the kept-alive connection dies with it
  ASSERT_TRUE(node.Start(port).ok());
  ASSERT_TRUE(drainer.DrainOne(&stats).ok());
  EXPECT_EQ(stats.delivered, 2u);
  ExpectOneRecordSetEach(ids);
}

TEST_F(UplinkLinkTest, LostAnswerMakesOneRecordSet) {
  LinkService node(world_, "n1");
  ASSERT_TRUE(node.Start().ok());
  MemoryQueue queue;
  const auto ids = Fill(&queue, 1, 1);
  SealedEvent front;
  ASSERT_TRUE(queue.Front(&front).ok());
  // The request reaches the service, which stores the event; the connection then dies before
  // the answer is read (the device never learns it was stored).
  {
    testing::CertFiles client = world_.device_cert;
    testing::ClientOptions options;
    options.client_cert = &client;
    testing::HttpsConnection connection(node.port(), options);
    ASSERT_TRUE(connection.ok());
    const std::string request =
        "POST /v1/lanes/7/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
        world_.lane_token +
        "\r\nContent-Type: application/vnd.portcullis.sealed-event\r\nX-Event-Id: " +
        front.event_id +
        "\r\nX-Event-Sequence: 1\r\nContent-Length: " + std::to_string(front.sealed.size()) +
        "\r\n\r\n" + front.sealed;
    ASSERT_TRUE(connection.SendRaw(request));
    for (int i = 0; i < 500 && world_.CountRecords(front.event_id) < 3; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }  // closed without reading the answer
  ASSERT_EQ(world_.CountRecords(front.event_id), 3u);
  // The drainer still has it and re-sends it: acknowledged as a duplicate, nothing new stored.
  auto link = OpenUplink(world_.DeviceConfig(node.port()));
  QueueDrainer drainer(&queue, link.get(), world_.DeviceConfig(node.port()));
  DrainStats stats;
  ASSERT_TRUE(drainer.DrainOne(&stats).ok());
  EXPECT_EQ(queue.stats().events, 0u);
  EXPECT_EQ(stats.delivered, 1u);
  EXPECT_EQ(stats.duplicates, 1u) << "the service's 200 {\"duplicate\": true} is counted";
  // And once more, as after a crash between acknowledgement and PopFront.
  LinkState state = LinkState::kTlsFailed;
  int retry_after = 0;
  bool duplicate = false;
  EXPECT_TRUE(link->SendEvent(front, &state, &retry_after, &duplicate).ok());
  EXPECT_TRUE(duplicate);
  ExpectOneRecordSetEach(ids);
}

TEST_F(UplinkLinkTest, ExpiredClientCertificateIsCertificateExpiredWithoutACrashLoop) {
  LinkService node(world_, "n1");
  ASSERT_TRUE(node.Start().ok());
  testing::CertFiles expired;
  ASSERT_TRUE(testing::MakeSignedByValid(world_.device_ca, world_.dir, "expired", world_.device,
                                         -7200, -3600, &expired));
  UplinkConfig config = world_.DeviceConfig(node.port());
  config.cert_file = expired.cert;
  config.key_file = expired.key;
  RecordingUplink link(OpenUplink(config));
  MemoryQueue queue;
  Fill(&queue, 1, 1);
  QueueDrainer drainer(&queue, &link, config);
  std::atomic<bool> stop{false};
  std::thread runner([&] { drainer.Run([&] { return stop.load(); }, nullptr); });
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  stop = true;
  runner.join();
  const DrainStats stats = drainer.stats();
  EXPECT_EQ(stats.state, LinkState::kCertificateExpired);
  // Backed off (20 ms doubling to 200 ms): a handful of attempts in 600 ms, not thousands.
  EXPECT_GE(link.attempts(), 2);
  EXPECT_LE(link.attempts(), 12);
  EXPECT_EQ(queue.stats().events, 1u);  // kept for when the certificate is renewed
  EXPECT_EQ(world_.CountRecords(), 0u);

  // The same certificate with our clock inside its validity: our own check passes, and the
  // service's refusal of it in the handshake is recognised as an expired certificate too.
  config.now_micros = [] {
    return static_cast<std::int64_t>(std::time(nullptr) - 5400) * 1'000'000;
  };
  auto fooled = OpenUplink(config);
  LinkState state = LinkState::kUp;
  int retry_after = 0;
  bool duplicate = false;
  SealedEvent front;
  ASSERT_TRUE(queue.Front(&front).ok());
  EXPECT_FALSE(fooled->SendEvent(front, &state, &retry_after, &duplicate).ok());
  EXPECT_EQ(state, LinkState::kCertificateExpired);
}

TEST_F(UplinkLinkTest, WrongCaIsTlsFailed) {
  LinkService node(world_, "n1");
  ASSERT_TRUE(node.Start().ok());
  UplinkConfig config = world_.DeviceConfig(node.port());
  config.ca_file = world_.other_ca.cert;
  auto link = OpenUplink(config);
  MemoryQueue queue;
  Fill(&queue, 1, 1);
  SealedEvent front;
  ASSERT_TRUE(queue.Front(&front).ok());
  LinkState state = LinkState::kUp;
  int retry_after = 0;
  bool duplicate = false;
  EXPECT_FALSE(link->SendEvent(front, &state, &retry_after, &duplicate).ok());
  EXPECT_EQ(state, LinkState::kTlsFailed);
  // A certificate for another host name than the one dialled is refused the same way.
  config = world_.DeviceConfig(node.port());
  config.url = "https://localhost.localdomain:" + std::to_string(node.port());
  std::unique_ptr<Uplink> misnamed;
  ASSERT_TRUE(Uplink::Open(config, &misnamed).ok());
  EXPECT_FALSE(misnamed->SendEvent(front, &state, &retry_after, &duplicate).ok());
  EXPECT_TRUE(state == LinkState::kTlsFailed || state == LinkState::kUnreachable)
      << LinkStateName(state);
  EXPECT_EQ(world_.CountRecords(), 0u);
}

TEST_F(UplinkLinkTest, WrongLaneIsRefusedAndNotPopped) {
  LinkService node(world_, "n1");
  ASSERT_TRUE(node.Start().ok());
  // The path names lane 8; the device's principal is scoped to lane 7: 403 from the policy. Every
  // event would fail the same way (a configuration error), so nothing is popped.
  UplinkConfig config = world_.DeviceConfig(node.port());
  config.lane = "8";
  auto link = OpenUplink(config);
  MemoryQueue queue;
  Fill(&queue, 1, 1);
  QueueDrainer drainer(&queue, link.get(), config);
  DrainStats stats;
  EXPECT_FALSE(drainer.DrainOne(&stats).ok());
  EXPECT_EQ(stats.state, LinkState::kUnauthorized);
  EXPECT_EQ(queue.stats().events, 1u);
  EXPECT_EQ(world_.CountRecords(), 0u);
}

TEST_F(UplinkLinkTest, EventForAnotherLaneAndTamperedBodiesArePoppedAsPoison) {
  LinkService node(world_, "n1");
  ASSERT_TRUE(node.Start().ok());
  const UplinkConfig config = world_.DeviceConfig(node.port());
  auto link = OpenUplink(config);
  MemoryQueue queue;
  // 1: sealed for lane 8 but sent on lane 7's path; 2: one byte of the seal flipped; 3: good.
  LaneEvent other = uplinktest::SampleEvent("8", 1);
  other.device = world_.device;
  SealedEvent sealed;
  ASSERT_TRUE(SealLaneEvent(other, world_.public_key, &sealed).ok());
  ASSERT_TRUE(queue.Append(sealed).ok());
  ASSERT_TRUE(
      SealLaneEvent(uplinktest::SampleEvent(world_.lane, 2), world_.public_key, &sealed).ok());
  const std::size_t middle = sealed.sealed.size() / 2;
  sealed.sealed[middle] = static_cast<char>(sealed.sealed[middle] ^ 0x20);
  ASSERT_TRUE(queue.Append(sealed).ok());
  const auto good = Fill(&queue, 3, 1);
  QueueDrainer drainer(&queue, link.get(), config);
  DrainStats stats;
  Status s;
  while ((s = drainer.DrainOne(&stats)).code() != Status::Code::kNotFound) {
    ASSERT_TRUE(s.ok() || stats.state == LinkState::kRejected) << s.ToString();
  }
  EXPECT_EQ(stats.rejected, 2u);
  EXPECT_EQ(stats.delivered, 1u);
  ExpectOneRecordSetEach(good);
}

}  // namespace
}  // namespace portcullis::lane
