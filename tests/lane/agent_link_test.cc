// The agent with every real part — DataDir, sealed queue, camera on a generated clip, pass
// detector with the plate engine, mTLS uplink and drainer — against a real service on loopback
// (uplink_util.h's LinkWorld: vault, audit log, access store, lane ingest): each vehicle reaches
// the service once; with the service down the events wait in the queue and drain, none lost,
// none duplicated, when it is up again; nothing readable is left on the device.
// uplink_util.h first: it names portcullis::testing as "testing", which the lane test helpers'
// own namespace (portcullis::lane::testing) would otherwise hide.
#include "uplink_util.h"  // NOLINT(llvm-include-order)

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "agent_util.h"
#include "camera_util.h"

namespace portcullis::lane {
namespace {

using nlohmann::json;

class AgentLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(world_.Init());
    ASSERT_TRUE(testing::MakeAgentFixture(&f_));
    testing::LaneClipSpec spec;
    spec.plates = plates_;
    ASSERT_TRUE(
        testing::WriteMjpgAvi(f_.dir + "/lane.avi", testing::RenderLaneClip(spec, nullptr), 15));
  }

  LaneAgentConfig Config(std::uint16_t port) {
    LaneAgentConfig c;
    c.device = world_.device;
    c.lane = world_.lane;
    c.data_dir = f_.dir + "/data";
    c.ingest_public_key = world_.public_key;
    CameraConfig camera;
    camera.id = "cam0";
    camera.source = f_.dir + "/lane.avi";
    camera.frame_stride = 1;
    c.cameras.push_back(camera);
    c.service = world_.DeviceConfig(port);
    c.maintenance.listen.clear();
    c.metrics_listen.clear();
    c.health_report_interval_s = 3600;
    return c;
  }

  // Runs the agent until the clip ends and the queue drained (or drain_ms passed); its log
  // lines (stderr) are not captured here: the data dir's log file is scanned instead.
  json RunOnce(std::uint16_t port, int drain_ms) {
    std::unique_ptr<LaneAgent> agent;
    const Status s =
        LaneAgent::Create(Config(port), Env::Default(), DefaultLaneAgentParts(), &agent);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return {};
    std::atomic<bool> stop{false};
    EXPECT_TRUE(agent->Run(stop, drain_ms).ok());
    return json::parse(agent->HealthJson());
  }

  // Event ids the agent logged as queued, by kind, in order.
  std::vector<std::pair<std::string, std::string>> Queued() {
    std::string log;
    EXPECT_TRUE(Env::Default()->ReadFile(f_.dir + "/data/logs/agent.log", 1 << 24, &log).ok());
    std::vector<std::pair<std::string, std::string>> out;
    std::istringstream lines(log);
    std::string line;
    while (std::getline(lines, line)) {
      const json j = json::parse(line, nullptr, false);
      if (j.is_object() && j.value("msg", "") == "event queued") {
        out.emplace_back(j["event_id"], j["kind"]);
      }
    }
    return out;
  }

  void ExpectNothingReadable() {
    const auto found = testing::ScanForPlaintext(f_.dir + "/data", plates_);
    EXPECT_TRUE(found.empty()) << ::testing::PrintToString(found);
  }

  uplinktest::LinkWorld world_;
  testing::AgentFixture f_;
  std::vector<std::string> plates_ = {"ABC1234", "KTM5082", "HZR7391"};
};

TEST_F(AgentLinkTest, EachVehicleReachesTheServiceOnce) {
  uplinktest::LinkService service(world_, "n1");
  ASSERT_TRUE(service.Start().ok());
  const json health = RunOnce(service.port(), 30000);
  EXPECT_EQ(health["checks"]["queue"]["backlog_events"], 0) << health.dump();
  EXPECT_EQ(health["checks"]["link"]["state"], "up");
  const auto queued = Queued();
  int passes = 0;
  for (const auto& [id, kind] : queued) {
    if (kind != "vehicle_pass") continue;
    ++passes;
    EXPECT_GT(world_.CountRecords(id), 0U) << id;  // stored at the service, under its event id
  }
  EXPECT_EQ(passes, 3);
  const std::size_t total = world_.CountRecords();
  EXPECT_GT(total, 0U);
  ExpectNothingReadable();
  service.Stop();
}

TEST_F(AgentLinkTest, ServiceDownThenUpDrainsEverythingOnceNothingLost) {
  const std::uint16_t port = uplinktest::FreePort();
  json health = RunOnce(port, 200);  // nothing listens: everything stays queued
  EXPECT_NE(health["checks"]["link"]["state"], "up") << health.dump();
  const auto first = Queued();
  ASSERT_EQ(health["checks"]["queue"]["backlog_events"].get<std::size_t>(), first.size());
  EXPECT_EQ(world_.CountRecords(), 0U);
  ExpectNothingReadable();

  uplinktest::LinkService service(world_, "n1");
  ASSERT_TRUE(service.Start(port).ok());
  health = RunOnce(port, 30000);  // the restart drains the outage's events, then its own
  EXPECT_EQ(health["checks"]["queue"]["backlog_events"], 0) << health.dump();
  EXPECT_EQ(health["checks"]["queue"]["lost_events"], 0);
  const auto all = Queued();
  EXPECT_GT(all.size(), first.size());
  std::map<std::string, std::size_t> records;
  int passes = 0;
  for (const auto& [id, kind] : all) {
    if (kind != "vehicle_pass") continue;
    ++passes;
    records[id] = world_.CountRecords(id);
    EXPECT_GT(records[id], 0U) << id;
  }
  EXPECT_EQ(passes, 6);  // three before the outage ended, three after
  std::size_t sum = 0;
  for (const auto& [id, n] : records) sum += n;
  EXPECT_EQ(world_.CountRecords(), sum);  // no record twice, none without its event
  ExpectNothingReadable();
  service.Stop();
}

}  // namespace
}  // namespace portcullis::lane
