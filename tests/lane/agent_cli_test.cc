// The real `portcullis lane` binary on a generated video with synthetic plates, with the real
// DataDir, sealed queue, camera and pass detector: one sealed event per vehicle in the queue, in
// order, that only the ingest secret key opens; SIGKILL mid-run then a restart loses no queued
// event and never yields a half-written one; the data dir and the log output hold no JPEG/PNG
// and no plate text. (Delivery to a real service is agent_e2e_test.cc's.)
#include <sodium.h>

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "agent_util.h"
#include "camera_util.h"
#include "cli_runner.h"
#include "lane/data_dir.h"
#include "lane/sealed_queue.h"

namespace portcullis::lane {
namespace {

using nlohmann::json;

class AgentCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::MakeAgentFixture(&f_));
    testing::LaneClipSpec spec;
    spec.plates = plates_;
    const std::vector<cv::Mat> frames = testing::RenderLaneClip(spec, &truth_);
    ASSERT_TRUE(testing::WriteMjpgAvi(f_.dir + "/lane.avi", frames, 15));
    config_ = testing::ValidConfigJson();
    config_["cameras"] = {{{"id", "cam0"}, {"source", "lane.avi"}, {"frame_stride", 1}}};
    config_.erase("maintenance");
    config_["service"]["url"] = "https://127.0.0.1:9";  // nothing listens: events stay queued
    config_["health_report_interval_s"] = 3600;
    ASSERT_TRUE(testing::WriteConfig(f_, config_));
  }

  // Every event in the queue, opened with the ingest secret key (the queue is consumed).
  std::vector<LaneEvent> DrainQueue(SealedQueueStats* stats = nullptr) {
    std::vector<LaneEvent> events;
    std::unique_ptr<DataDir> dir;
    std::unique_ptr<SealedQueue> queue;
    Status s = DataDir::Open(f_.dir + "/data", &dir);
    if (s.ok()) s = SealedQueue::Open(dir.get(), SealedQueueOptions{}, &queue);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return events;
    if (stats != nullptr) *stats = queue->stats();
    SealedEvent sealed;
    while (queue->Front(&sealed).ok()) {
      std::string plaintext(sealed.sealed.size() - crypto_box_SEALBYTES, '\0');
      EXPECT_EQ(crypto_box_seal_open(reinterpret_cast<unsigned char*>(plaintext.data()),
                                     reinterpret_cast<const unsigned char*>(sealed.sealed.data()),
                                     sealed.sealed.size(), f_.ingest_public.bytes.data(),
                                     f_.ingest_secret.data()),
                0);
      LaneEvent event;
      EXPECT_TRUE(DecodeLaneEvent(plaintext, &event).ok());
      EXPECT_EQ(event.event_id, sealed.event_id);
      EXPECT_EQ(event.sequence, sealed.sequence);
      events.push_back(std::move(event));
      EXPECT_TRUE(queue->PopFront(sealed.event_id).ok());
    }
    return events;
  }

  void ExpectNothingReadable(const std::string& log) {
    const auto found = testing::ScanForPlaintext(f_.dir + "/data", plates_);
    EXPECT_TRUE(found.empty()) << ::testing::PrintToString(found);
    for (const std::string& plate : plates_) EXPECT_EQ(log.find(plate), std::string::npos);
    EXPECT_EQ(log.find("\xff\xd8\xff"), std::string::npos);
  }

  static std::set<std::string> QueuedIds(const std::string& log) {
    std::set<std::string> ids;
    std::istringstream lines(log);
    std::string line;
    while (std::getline(lines, line)) {
      const json j = json::parse(line, nullptr, false);
      if (j.is_object() && j.value("msg", "") == "event queued") ids.insert(j["event_id"]);
    }
    return ids;
  }

  testing::AgentFixture f_;
  std::vector<std::string> plates_ = {"ABC1234", "KTM5082", "HZR7391"};
  std::vector<testing::LaneClipTruth> truth_;
  json config_;
};

TEST_F(AgentCliTest, OneSealedEventPerVehicleInOrderNothingReadable) {
  const auto r = portcullis::testing::RunCli(
      {"lane", "--config", f_.config_path, "--drain-timeout-ms", "100"}, testing::WithTimeout(240));
  ASSERT_EQ(r.exit_code, 0) << r;
  const std::vector<LaneEvent> events = DrainQueue();
  std::vector<std::string> read;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i > 0) {
      EXPECT_GT(events[i].sequence, events[i - 1].sequence);
    }
    if (events[i].kind == EventKind::kVehiclePass) {
      ASSERT_FALSE(events[i].plates.empty());
      read.push_back(events[i].plates[0].text);
      EXPECT_FALSE(events[i].attachments.empty());  // frame and crop, sealed
    }
  }
  EXPECT_EQ(read, plates_);
  EXPECT_EQ(events.front().kind, EventKind::kHealth);
  ExpectNothingReadable(r.err);
  // The log file in the data dir says what happened, by event id.
  std::string log;
  ASSERT_TRUE(Env::Default()->ReadFile(f_.dir + "/data/logs/agent.log", 1 << 24, &log).ok());
  EXPECT_EQ(QueuedIds(log).size(), events.size());
}

TEST_F(AgentCliTest, InvalidConfigAndCheck) {
  auto r = portcullis::testing::RunCli({"lane", "--config", f_.config_path, "--check"});
  EXPECT_EQ(r.exit_code, 0) << r;
  ASSERT_EQ(portcullis::testing::JsonLines(r).size(), 1U);
  EXPECT_EQ(portcullis::testing::JsonLines(r)[0]["valid"], true);
  config_["cameras"][0]["frame_stride"] = 0;
  ASSERT_TRUE(testing::WriteConfig(f_, config_));
  r = portcullis::testing::RunCli({"lane", "--config", f_.config_path});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_NE(r.err.find("cameras[0].frame_stride"), std::string::npos) << r;
  r = portcullis::testing::RunCli({"lane"});
  EXPECT_EQ(r.exit_code, 2) << r;
}

TEST_F(AgentCliTest, KilledMidRunThenRestartedLosesNothingQueued) {
  // A looping camera: the agent never ends by itself. SIGKILL once it has queued three events
  // (the first is the health event), however long that takes on a loaded machine: a fixed 20 s
  // was not always enough under a parallel CI run.
  config_["cameras"][0]["loop"] = true;
  ASSERT_TRUE(testing::WriteConfig(f_, config_));
  portcullis::testing::RunOptions kill_mid_run = testing::WithTimeout(240);
  kill_mid_run.kill_when = [](const std::string& err) { return QueuedIds(err).size() >= 3; };
  const auto killed =
      portcullis::testing::RunCli({"lane", "--config", f_.config_path}, kill_mid_run);
  ASSERT_TRUE(killed.killed_on_condition) << killed;
  const std::set<std::string> before = QueuedIds(killed.err);
  ASSERT_GE(before.size(), 3U) << killed;
  ExpectNothingReadable(killed.err);

  // Restart on the same data dir without looping: it runs the clip once more and ends.
  config_["cameras"][0]["loop"] = false;
  ASSERT_TRUE(testing::WriteConfig(f_, config_));
  const auto second = portcullis::testing::RunCli(
      {"lane", "--config", f_.config_path, "--drain-timeout-ms", "100"}, testing::WithTimeout(240));
  ASSERT_EQ(second.exit_code, 0) << second;
  ExpectNothingReadable(second.err);
  SealedQueueStats stats;
  const std::vector<LaneEvent> events = DrainQueue(&stats);
  std::set<std::string> ids;
  for (std::size_t i = 0; i < events.size(); ++i) {
    ids.insert(events[i].event_id);
    if (i > 0) {
      EXPECT_GT(events[i].sequence, events[i - 1].sequence);  // increasing across the restart
    }
  }
  // Every event the killed agent had queued (Append returned: fsync'd) is still there, whole.
  for (const std::string& id : before) EXPECT_EQ(ids.count(id), 1U) << id;
  // And the restart's own: all of them.
  for (const std::string& id : QueuedIds(second.err)) EXPECT_EQ(ids.count(id), 1U) << id;
  EXPECT_EQ(ids.size(), before.size() + QueuedIds(second.err).size());
}

}  // namespace
}  // namespace portcullis::lane
