// POST /v1/lanes/{lane}/events and /reports (routes_lane_events.cc) through the real service with
// mutual TLS: what is stored, what is refused, and exactly once — a repeated delivery, a node that
// died between storing and answering, and two nodes on one PostgreSQL receiving the same event
// at the same time.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "portcullis/access_store.h"
#include "server_test_util.h"
#include "uplink_util.h"

namespace portcullis::server {
namespace {

using lane::uplinktest::LinkService;
using lane::uplinktest::LinkWorld;
using testing::HttpResponse;

class LaneEventsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(world_.Init()); }

  HttpResponse Post(std::uint16_t port, const lane::SealedEvent& e, const std::string& lane = "7",
                    const std::string& token = "") {
    testing::ClientOptions options;
    options.client_cert = &world_.device_cert;
    return testing::HttpsRequest(
        port, "POST", "/v1/lanes/" + lane + "/events",
        testing::Bearer(token.empty() ? world_.lane_token : token,
                        {{"Content-Type", "application/vnd.portcullis.sealed-event"},
                         {"X-Event-Id", e.event_id},
                         {"X-Event-Sequence", std::to_string(e.sequence)}}),
        e.sealed, options);
  }
  HttpResponse PostReport(std::uint16_t port, const std::string& body) {
    testing::ClientOptions options;
    options.client_cert = &world_.device_cert;
    return testing::HttpsRequest(
        port, "POST", "/v1/lanes/7/reports",
        testing::Bearer(world_.lane_token, {{"Content-Type", "application/json"}}), body, options);
  }
  lane::SealedEvent Seal(const lane::LaneEvent& event) {
    lane::SealedEvent sealed;
    EXPECT_TRUE(lane::SealLaneEvent(event, world_.public_key, &sealed).ok());
    return sealed;
  }

  LinkWorld world_;
};

TEST_F(LaneEventsTest, WithoutLaneIngestTheRouteAnswers503) {
  LinkService node(world_, "n1");
  node.config.lane_ingest.key_file.clear();
  ASSERT_TRUE(node.Start().ok());
  const HttpResponse r = Post(node.port(), Seal(lane::uplinktest::SampleEvent("7", 1)));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.ErrorCode(), "ingest_not_configured");
}

TEST_F(LaneEventsTest, StoresOnceThenAnswersDuplicateWithTheSameRecords) {
  LinkService node(world_, "n1");
  ASSERT_TRUE(node.Start().ok());
  const lane::LaneEvent event = lane::uplinktest::SampleEvent("7", 1);
  const lane::SealedEvent sealed = Seal(event);
  const HttpResponse first = Post(node.port(), sealed);
  ASSERT_EQ(first.status, 201) << first.body;
  const nlohmann::json body = first.Json();
  EXPECT_EQ(body["event_id"], sealed.event_id);
  EXPECT_EQ(body["duplicate"], false);
  ASSERT_EQ(body["records"].size(), 3u);
  std::multiset<std::string> parts;
  for (const auto& r : body["records"]) parts.insert(r["part"].get<std::string>());
  EXPECT_EQ(parts, (std::multiset<std::string>{"crop", "face", "read"}));
  // The plate text is in no answer and no label (the records are sealed in the vault).
  EXPECT_EQ(first.body.find(event.plates[0].text), std::string::npos);

  const HttpResponse again = Post(node.port(), sealed);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.Json()["duplicate"], true);
  EXPECT_EQ(again.Json()["records"], body["records"]);
  EXPECT_EQ(world_.CountRecords(sealed.event_id), 3u);

  // What was stored: the read names the event, camera and device; the face is a kept capture of
  // the non-citizen class (a lane cannot know citizenship).
  vault::Vault* vault = world_.Vault();
  ASSERT_NE(vault, nullptr);
  const vault::AccessContext who{"auditor:test", "auditor", "check stored event"};
  std::string crop_id;
  for (const auto& r : body["records"]) {
    if (r["part"] == "crop") crop_id = r["id"].get<std::string>();
  }
  for (const auto& r : body["records"]) {
    vault::RecordMeta meta;
    std::string bytes;
    ASSERT_TRUE(vault->Get(who, r["id"], &meta, &bytes).ok());
    EXPECT_EQ(meta.labels.at("event"), sealed.event_id);
    EXPECT_EQ(meta.labels.at("lane"), "7");
    EXPECT_EQ(meta.labels.at("device"), "lane:7");
    EXPECT_EQ(meta.labels.at("camera"), "cam0");
    if (r["part"] == "read") {
      const nlohmann::json read = nlohmann::json::parse(bytes);
      EXPECT_EQ(read["text"], event.plates[0].text);
      EXPECT_EQ(read["event_id"], sealed.event_id);
      EXPECT_EQ(read["sequence"], 1);
      // Stored in the same batch as its crop, the read names the crop's id.
      EXPECT_EQ(read["crop"], crop_id);
      EXPECT_EQ(meta.labels.at("crop"), crop_id);
    } else if (r["part"] == "crop") {
      EXPECT_EQ(bytes, event.attachments[0].bytes);
    } else {
      EXPECT_EQ(meta.type, vault::RecordType::kKeptCapture);
      EXPECT_EQ(meta.subject, vault::SubjectCategory::kNonCitizen);
      EXPECT_EQ(meta.retention_class, "face-non-citizen");
      EXPECT_EQ(bytes, event.attachments[1].bytes);
    }
  }
}

TEST_F(LaneEventsTest, RefusesTamperedMismatchedAndMalformedEvents) {
  LinkService node(world_, "n1");
  ASSERT_TRUE(node.Start().ok());
  const lane::SealedEvent good = Seal(lane::uplinktest::SampleEvent("7", 1));

  lane::SealedEvent tampered = good;
  tampered.sealed[tampered.sealed.size() - 3] =
      static_cast<char>(tampered.sealed[tampered.sealed.size() - 3] ^ 1);
  HttpResponse r = Post(node.port(), tampered);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.ErrorCode(), "sealed_event_invalid");

  lane::SealedEvent renamed = good;  // a valid seal under another event's id
  renamed.event_id = lane::NewEventId();
  r = Post(node.port(), renamed);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.ErrorCode(), "sealed_event_invalid");

  lane::SealedEvent resequenced = good;
  resequenced.sequence = 2;
  r = Post(node.port(), resequenced);
  EXPECT_EQ(r.ErrorCode(), "sealed_event_invalid");

  lane::SealedEvent bad_id = good;
  bad_id.event_id = "not-hex";
  r = Post(node.port(), bad_id);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.ErrorCode(), "invalid_argument");

  // Sealed for lane 8 but posted on lane 7 (the device's own lane): the lane inside must match.
  lane::LaneEvent other = lane::uplinktest::SampleEvent("8", 3);
  other.device = "lane:7";
  r = Post(node.port(), Seal(other));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.ErrorCode(), "event_mismatch");

  // Another device's event, replayed by this one.
  lane::LaneEvent foreign = lane::uplinktest::SampleEvent("7", 4);
  foreign.device = "lane:7-b";
  r = Post(node.port(), Seal(foreign));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.ErrorCode(), "event_mismatch");

  // A lane outside the device's scope: the policy refuses before the handler runs.
  r = Post(node.port(), good, "8");
  EXPECT_EQ(r.status, 403);

  // Not the sealed-event media type.
  testing::ClientOptions options;
  options.client_cert = &world_.device_cert;
  r = testing::HttpsRequest(
      node.port(), "POST", "/v1/lanes/7/events",
      testing::Bearer(world_.lane_token, {{"Content-Type", "application/json"},
                                          {"X-Event-Id", good.event_id},
                                          {"X-Event-Sequence", "1"}}),
      "{}", options);
  EXPECT_EQ(r.status, 415);

  EXPECT_EQ(world_.CountRecords(), 0u);
  // The good one still goes in afterwards.
  EXPECT_EQ(Post(node.port(), good).status, 201);
  EXPECT_EQ(world_.CountRecords(), 3u);
}

TEST_F(LaneEventsTest, ANodeThatDiedBetweenStoringAndAnsweringLeavesOneRecordSet) {
  LinkService node(world_, "n1");
  node.config.lane_ingest.claim_timeout_ms = 300;
  ASSERT_TRUE(node.Start().ok());
  const lane::SealedEvent sealed = Seal(lane::uplinktest::SampleEvent("7", 1));

  // The dead node: it claimed the event and stored part of its records, then vanished.
  {
    std::unique_ptr<policy::AccessStore> store;
    ASSERT_TRUE(policy::OpenAccessStore(world_.access_uri, {}, &store).ok());
    policy::EventClaimOutcome outcome;
    policy::IngestedEvent row;
    ASSERT_TRUE(
        store->ClaimEvent({sealed.event_id, "7", "lane:7", "dead-node", 1}, 300'000, &outcome, &row)
            .ok());
    ASSERT_EQ(outcome, policy::EventClaimOutcome::kClaimed);
    vault::NewRecord orphan;
    orphan.type = vault::RecordType::kPlateRead;
    orphan.subject = vault::SubjectCategory::kVehicle;
    orphan.content_type = "image/jpeg";
    orphan.labels = {{"lane", "7"}, {"part", "crop"}, {"event", sealed.event_id}};
    orphan.body = "orphan crop";
    ASSERT_TRUE(
        world_.Vault()->Put({"lane:7", "lane_device", "lane event ingest"}, orphan, nullptr).ok());
  }
  ASSERT_EQ(world_.CountRecords(sealed.event_id), 1u);

  // While the claim is live, a retry is told to come back.
  HttpResponse r = Post(node.port(), sealed);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.ErrorCode(), "event_in_progress");
  EXPECT_FALSE(r.headers["retry-after"].empty());

  // Past the claim timeout the retry takes the claim over, removes the dead node's records and
  // stores the event once.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  r = Post(node.port(), sealed);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(world_.CountRecords(sealed.event_id), 3u);
  EXPECT_EQ(Post(node.port(), sealed).status, 200);
  EXPECT_EQ(world_.CountRecords(), 3u);
}

// A retention file from data/retention.json without the rule for (record_type, subject).
std::string RetentionWithout(const std::string& dir, const std::string& record_type,
                             const std::string& subject) {
  std::ifstream in(std::string(PORTCULLIS_SOURCE_DIR) + "/data/retention.json");
  nlohmann::json j = nlohmann::json::parse(in);
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& rule : j["rules"]) {
    if (rule["record_type"] != record_type || rule["subject"] != subject) rules.push_back(rule);
  }
  j["rules"] = rules;
  const std::string path = dir + "/retention-without-" + record_type + "-" + subject + ".json";
  std::ofstream(path) << j.dump(2);
  return path;
}

TEST_F(LaneEventsTest, WithoutARuleForFacesTheReadAndCropAreStoredAndTheFaceDropped) {
  LinkService node(world_, "n1");
  node.config.vault.retention = RetentionWithout(world_.dir, "kept_capture", "non_citizen");
  ASSERT_TRUE(node.Start().ok());
  const lane::SealedEvent sealed = Seal(lane::uplinktest::SampleEvent("7", 1));
  const HttpResponse r = Post(node.port(), sealed);
  ASSERT_EQ(r.status, 201) << r.body;
  const nlohmann::json body = r.Json();  // held: iterating a temporary's member would dangle
  std::multiset<std::string> parts;
  for (const auto& record : body["records"]) parts.insert(record["part"].get<std::string>());
  EXPECT_EQ(parts, (std::multiset<std::string>{"crop", "read"}));
  EXPECT_EQ(world_.CountRecords(sealed.event_id), 2u);
  EXPECT_EQ(Post(node.port(), sealed).status, 200);
  EXPECT_EQ(world_.CountRecords(), 2u);
}

TEST_F(LaneEventsTest, AFailedBatchStoresNothingAndReleasesTheClaimForTheRetry) {
  const lane::SealedEvent sealed = Seal(lane::uplinktest::SampleEvent("7", 1));
  {
    // No rule for plate reads: the one batch (crop, read, face) is refused as a whole.
    LinkService node(world_, "n1");
    node.config.vault.retention = RetentionWithout(world_.dir, "plate_read", "vehicle");
    ASSERT_TRUE(node.Start().ok());
    const HttpResponse r = Post(node.port(), sealed);
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.ErrorCode(), "store_error");
    EXPECT_EQ(world_.CountRecords(), 0u) << "nothing of a refused batch may stay";
  }
  // The claim was released, so the retry (here on a node with the rules) stores at once, whole.
  LinkService fixed(world_, "n2");
  ASSERT_TRUE(fixed.Start().ok());
  const HttpResponse r = Post(fixed.port(), sealed);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(world_.CountRecords(sealed.event_id), 3u);
}

TEST_F(LaneEventsTest, ReportsAreKeptPerDeviceAndRefusedWhenMalformed) {
  LinkService node(world_, "n1");
  ASSERT_TRUE(node.Start().ok());
  HttpResponse r = PostReport(node.port(), R"({"kind":"health","status":"degraded","queue":12})");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.Json()["device"], "lane:7");
  r = PostReport(node.port(), R"({"kind":"health","status":"ok","queue":0})");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(PostReport(node.port(), "not json").status, 400);
  EXPECT_EQ(PostReport(node.port(), R"({"status":"ok"})").status, 400);
  EXPECT_EQ(PostReport(node.port(), R"({"kind":"health","device":"lane:9"})").status, 400);

  // A supervisor sees the latest report of each device.
  std::string supervisor_token;
  {
    std::unique_ptr<policy::AccessStore> store;
    ASSERT_TRUE(policy::OpenAccessStore(world_.access_uri, {}, &store).ok());
    policy::NewPrincipal p;
    p.name = "supervisor:1";
    p.role = policy::Role::kSupervisor;
    p.scope = {"*"};
    ASSERT_TRUE(store->CreatePrincipal(p, &supervisor_token).ok());
  }
  const HttpResponse health = testing::HttpsRequest(node.port(), "GET", "/v1/devices/health",
                                                    testing::Bearer(supervisor_token));
  ASSERT_EQ(health.status, 200) << health.body;
  const nlohmann::json devices = health.Json()["agent_reports"];
  ASSERT_EQ(devices.size(), 1u) << health.body;
  EXPECT_EQ(devices[0]["device"], "lane:7");
  EXPECT_EQ(devices[0]["report"]["status"], "ok");  // the latest
}

// ---- Two nodes, one PostgreSQL ------------------------------------------------------------------

std::string PostgresBaseUri(std::string* error) {
  const char* file = std::getenv("PORTCULLIS_TEST_PG_URI_FILE");
  if (file == nullptr) {
    *error = "PORTCULLIS_TEST_PG_URI_FILE is not set: run through ctest (PostgreSQL fixture)";
    return "";
  }
  std::ifstream in(file);
  std::string uri;
  std::getline(in, uri);
  if (uri.empty()) *error = std::string("no PostgreSQL URI in ") + file;
  return uri;
}

class LaneEventsTwoNodesTest : public LaneEventsTest {
 protected:
  void SetUp() override {
    std::string error;
    base_uri_ = PostgresBaseUri(&error);
    ASSERT_FALSE(base_uri_.empty()) << error;
    schema_ = "lane_events_" + std::to_string(::getpid());
    try {
      pqxx::connection conn(base_uri_);
      pqxx::nontransaction txn(conn);
      txn.exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
      txn.exec("CREATE SCHEMA " + schema_);
    } catch (const std::exception& e) {
      FAIL() << "PostgreSQL: " << e.what();
    }
    const std::string uri = base_uri_ + (base_uri_.find('?') == std::string::npos ? "?" : "&") +
                            "options=-csearch_path%3D" + schema_;
    world_.access_uri = uri;
    world_.vault_uri = uri;
    world_.audit_log = uri;
    ASSERT_TRUE(world_.Init());
  }
  void TearDown() override {
    try {
      pqxx::connection conn(base_uri_);
      pqxx::nontransaction txn(conn);
      txn.exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    } catch (const std::exception&) {
      // The fixture's cluster goes away anyway.
    }
  }
  std::string base_uri_, schema_;
};

TEST_F(LaneEventsTwoNodesTest, ConcurrentDeliveriesToTwoNodesStoreOneRecordSet) {
  LinkService n1(world_, "n1"), n2(world_, "n2");
  ASSERT_TRUE(n1.Start().ok());
  ASSERT_TRUE(n2.Start().ok());
  for (int round = 0; round < 3; ++round) {
    const lane::SealedEvent sealed =
        Seal(lane::uplinktest::SampleEvent("7", static_cast<std::uint64_t>(round + 1)));
    std::atomic<int> created{0}, duplicates{0}, other{0};
    std::vector<std::thread> senders;
    for (int i = 0; i < 6; ++i) {
      senders.emplace_back([&, i] {
        const std::uint16_t port = i % 2 == 0 ? n1.port() : n2.port();
        // Like a drainer: retry while told to (503 event_in_progress) until acknowledged.
        for (int attempt = 0; attempt < 100; ++attempt) {
          const HttpResponse r = Post(port, sealed);
          if (r.status == 201) {
            ++created;
            return;
          }
          if (r.status == 200 && r.Json()["duplicate"] == true) {
            ++duplicates;
            return;
          }
          if (r.status != 503) {
            ++other;
            return;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ++other;
      });
    }
    for (auto& t : senders) t.join();
    EXPECT_EQ(created.load(), 1) << "round " << round;
    EXPECT_EQ(duplicates.load(), 5) << "round " << round;
    EXPECT_EQ(other.load(), 0) << "round " << round;
    EXPECT_EQ(world_.CountRecords(sealed.event_id), 3u) << "round " << round;
  }
  EXPECT_EQ(world_.CountRecords(), 9u);
}

}  // namespace
}  // namespace portcullis::server
