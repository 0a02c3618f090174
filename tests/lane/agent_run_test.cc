// The agent in process, with fakes for the parts (agent_util.h): one event per pass delivered in
// order exactly once; the service down then up; a restart that keeps sequences increasing; a
// full disk; a clock jump; an expired certificate; /healthz and /metrics. After each run the
// data dir holds no JPEG/PNG and no plate text in the clear.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <thread>

#include "agent_util.h"
#include "server_test_util.h"

namespace portcullis::lane {
namespace {

using nlohmann::json;

class AgentRunTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(testing::MakeAgentFixture(&f_)); }

  std::unique_ptr<LaneAgent> Make(const LaneAgentConfig& config, const testing::FakeParts& fakes,
                                  testing::FakeService* service, Env* env = Env::Default()) {
    std::unique_ptr<LaneAgent> agent;
    const Status s = LaneAgent::Create(config, env, testing::MakeFakeParts(fakes, service), &agent);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return agent;
  }
  // Runs until the fake files end (then drains for up to drain_ms).
  static void RunToEnd(LaneAgent* agent, int drain_ms = 5000) {
    std::atomic<bool> stop{false};
    const Status s = agent->Run(stop, drain_ms);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  static std::vector<LaneEvent> Passes(const std::vector<LaneEvent>& events) {
    std::vector<LaneEvent> passes;
    for (const LaneEvent& e : events) {
      if (e.kind == EventKind::kVehiclePass) passes.push_back(e);
    }
    return passes;
  }
  void ExpectNothingReadable(const std::vector<std::string>& plates) {
    const auto found = testing::ScanForPlaintext(f_.dir + "/data", plates);
    EXPECT_TRUE(found.empty()) << ::testing::PrintToString(found);
  }

  testing::AgentFixture f_;
};

TEST_F(AgentRunTest, OneEventPerPassInOrderExactlyOnce) {
  testing::FakeService service(f_);
  testing::FakeParts fakes;
  fakes.camera.frames = 60;  // 6 passes per camera
  auto agent = Make(testing::InProcessConfig(f_, 2), fakes, &service);
  ASSERT_NE(agent, nullptr);
  RunToEnd(agent.get());
  const std::vector<LaneEvent> events = service.events();
  const std::vector<LaneEvent> passes = Passes(events);
  ASSERT_EQ(passes.size(), 12U);
  EXPECT_EQ(service.duplicates(), 0);
  std::set<std::string> plates;
  std::map<std::string, int> last_per_camera;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i > 0) {
      EXPECT_GT(events[i].sequence, events[i - 1].sequence);  // in order
    }
    EXPECT_EQ(events[i].device, "lane:7-a");
    EXPECT_EQ(events[i].lane, "7");
  }
  for (const LaneEvent& e : passes) {
    ASSERT_EQ(e.plates.size(), 1U);
    plates.insert(e.plates[0].text);
    ASSERT_EQ(e.attachments.size(), 1U);
    EXPECT_EQ(e.attachments[0].bytes.substr(0, 3), "\xff\xd8\xff");  // the crop arrived intact
    EXPECT_FALSE(e.clock_jump);
    // Passes of one camera arrive in the camera's order.
    const int n = std::stoi(e.plates[0].text.substr(e.plates[0].text.size() - 1));
    EXPECT_GT(n, last_per_camera[e.camera]);
    last_per_camera[e.camera] = n;
  }
  EXPECT_EQ(plates.size(), 12U);
  // The first health event is queued at start.
  EXPECT_EQ(events.size() - passes.size(), 1U);
  EXPECT_EQ(events.front().kind, EventKind::kHealth);
  EXPECT_EQ(events.front().details_json.find("QX7"), std::string::npos);

  const json health = json::parse(agent->HealthJson());
  EXPECT_EQ(health["checks"]["queue"]["backlog_events"], 0);
  EXPECT_EQ(health["checks"]["link"]["state"], "up");
  EXPECT_EQ(health["checks"]["cameras"]["cameras"][0]["state"], "ended");
  const std::string metrics = agent->MetricsText();
  EXPECT_NE(metrics.find("portcullis_lane_passes_total 12"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("portcullis_lane_events_delivered_total 13"), std::string::npos);
  EXPECT_NE(metrics.find("portcullis_lane_frames_total{camera=\"cam1\"} 60"), std::string::npos);
  // Every event this process queued had its acknowledgement timed (the health event too).
  EXPECT_NE(metrics.find("portcullis_lane_ack_latency_seconds_count 13"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("portcullis_lane_ack_latency_seconds_bucket{le=\"+Inf\"} 13"),
            std::string::npos);
  EXPECT_NE(metrics.find("# TYPE portcullis_lane_ack_latency_seconds histogram"),
            std::string::npos);
  EXPECT_NE(metrics.find("portcullis_lane_events_duplicate_total 0"), std::string::npos);

  std::vector<std::string> needles(plates.begin(), plates.end());
  ExpectNothingReadable(needles);
  // The log says what happened without what was read.
  std::string log;
  ASSERT_TRUE(Env::Default()->ReadFile(f_.dir + "/data/logs/agent.log", 1 << 24, &log).ok());
  EXPECT_NE(log.find(passes[0].event_id), std::string::npos);
  EXPECT_NE(log.find("\"event acknowledged\""), std::string::npos);
}

TEST_F(AgentRunTest, ServiceDownEventsQueuedThenDrainedAfterRestartNoneLostOrDuplicated) {
  testing::FakeService service(f_);
  service.up = false;
  testing::FakeParts fakes;
  fakes.camera.frames = 50;
  std::vector<std::uint64_t> first_sequences;
  {
    auto agent = Make(testing::InProcessConfig(f_, 1), fakes, &service);
    RunToEnd(agent.get(), 200);
    const json health = json::parse(agent->HealthJson());
    EXPECT_EQ(health["checks"]["link"]["state"], "unreachable");
    EXPECT_EQ(health["checks"]["link"]["ok"], false);
    EXPECT_EQ(health["checks"]["queue"]["backlog_events"], 6);  // 5 passes + 1 health
    EXPECT_NE(agent->MetricsText().find("portcullis_lane_backlog_events 6"), std::string::npos);
  }
  EXPECT_TRUE(service.events().empty());
  // The service comes back; the agent restarts (same data dir, same queue) with a new file.
  service.up = true;
  fakes.plate_prefix = "ZZ9";
  fakes.camera.frames = 20;
  auto agent = Make(testing::InProcessConfig(f_, 1), fakes, &service);
  RunToEnd(agent.get());
  const std::vector<LaneEvent> events = service.events();
  EXPECT_EQ(service.duplicates(), 0);
  EXPECT_EQ(Passes(events).size(), 7U);  // 5 from the outage + 2
  for (std::size_t i = 1; i < events.size(); ++i) {
    EXPECT_GT(events[i].sequence, events[i - 1].sequence) << i;  // increasing across restart
  }
  EXPECT_EQ(Passes(events)[0].plates[0].text, "QX7cam01");
  EXPECT_EQ(Passes(events)[5].plates[0].text, "ZZ9cam01");
  ExpectNothingReadable({"QX7cam0", "ZZ9cam0"});
}

TEST_F(AgentRunTest, LostAnswersAreResentAndCountedAsDuplicatesNotStoredTwice) {
  testing::FakeService service(f_);
  service.lose_answers = 2;  // the health event's and the first pass's
  testing::FakeParts fakes;
  fakes.camera.frames = 30;  // 3 passes
  auto agent = Make(testing::InProcessConfig(f_, 1), fakes, &service);
  ASSERT_NE(agent, nullptr);
  RunToEnd(agent.get());
  EXPECT_EQ(Passes(service.events()).size(), 3U);
  EXPECT_EQ(service.duplicates(), 2);
  const std::string metrics = agent->MetricsText();
  EXPECT_NE(metrics.find("portcullis_lane_events_duplicate_total 2"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("portcullis_lane_ack_latency_seconds_count 4"), std::string::npos)
      << metrics;
}

TEST_F(AgentRunTest, StalledCameraAndCorruptFramesShowInHealthAndMetrics) {
  testing::FakeService service(f_);
  testing::FakeParts fakes;
  fakes.camera.frames = 40;
  fakes.camera.stall_after = 10;
  fakes.camera.stall_ms = 1500;
  fakes.camera.corrupt_every = 10;  // frames 0, 10, 20, 30
  auto agent = Make(testing::InProcessConfig(f_, 1), fakes, &service);
  ASSERT_NE(agent, nullptr);
  std::atomic<bool> stop{false};
  std::thread runner([&] { EXPECT_TRUE(agent->Run(stop, 5000).ok()); });
  // While it is stalled: the camera check says so, the agent is failing (no camera ok), and the
  // state gauge shows it.
  bool saw_health = false;
  bool saw_metric = false;
  for (int i = 0; i < 1000 && !(saw_health && saw_metric); ++i) {
    const json health = json::parse(agent->HealthJson());
    saw_health |= health["checks"]["cameras"]["cameras"][0]["state"] == "stalled" &&
                  health["checks"]["cameras"]["ok"] == false && health["status"] == "failing";
    saw_metric |= agent->MetricsText().find(
                      "portcullis_lane_camera_state{camera=\"cam0\",state=\"stalled\"} 1") !=
                  std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  runner.join();
  EXPECT_TRUE(saw_health);
  EXPECT_TRUE(saw_metric);
  // It came back: every frame analysed, the passes delivered, the faults counted.
  EXPECT_EQ(Passes(service.events()).size(), 4U);
  const std::string metrics = agent->MetricsText();
  EXPECT_NE(metrics.find("portcullis_lane_corrupt_frames_total{camera=\"cam0\"} 4"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("portcullis_lane_camera_reconnects_total{camera=\"cam0\"} 1"),
            std::string::npos);
  const json health = json::parse(agent->HealthJson());
  EXPECT_EQ(health["checks"]["cameras"]["cameras"][0]["corrupt_frames"], 4);
  EXPECT_EQ(health["checks"]["cameras"]["cameras"][0]["reconnects"], 1);
  EXPECT_NE(metrics.find("portcullis_lane_queue_torn_dropped 0"), std::string::npos);
}

TEST_F(AgentRunTest, DiskFullCountsLostEventsHealthSaysSoNoCrash) {
  testing::FakeService service(f_);
  service.up = false;  // nothing leaves the queue: every pass needs the disk
  testing::FakeParts fakes;
  fakes.camera.frames = 60;
  auto disk_full = fakes.disk_full;
  fakes.camera.on_frame = [disk_full](int i) {
    if (i == 25) disk_full->store(true);
  };
  auto agent = Make(testing::InProcessConfig(f_, 1), fakes, &service);
  RunToEnd(agent.get(), 100);
  const json health = json::parse(agent->HealthJson());
  EXPECT_EQ(health["checks"]["disk"]["ok"], false) << health.dump();
  EXPECT_EQ(health["checks"]["disk"]["disk_full"], true);
  EXPECT_GE(health["checks"]["disk"]["disk_full_refusals"].get<int>(), 3);
  EXPECT_EQ(health["status"], "degraded");
  EXPECT_GE(health["checks"]["queue"]["lost_events"].get<int>(), 3);
  EXPECT_EQ(health["checks"]["queue"]["backlog_events"], 3);  // health + 2 passes before
  const std::string metrics = agent->MetricsText();
  EXPECT_NE(metrics.find("portcullis_lane_events_lost_total{reason=\"disk_full\"} 4"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("portcullis_lane_disk_full_refusals_total 4"), std::string::npos);
  ExpectNothingReadable({"QX7cam0"});
}

TEST_F(AgentRunTest, ClockJumpIsCountedAndFlagsEventsInFlight) {
  testing::FakeService service(f_);
  testing::JumpingEnv env;
  testing::FakeParts fakes;
  fakes.camera.frames = 40;
  fakes.camera.frame_interval_ms = 5;
  fakes.camera.on_frame = [&env](int i) {
    if (i == 15) env.offset_us += std::int64_t{3600} * 1'000'000;  // an NTP step of one hour
  };
  auto agent = Make(testing::InProcessConfig(f_, 1), fakes, &service, &env);
  RunToEnd(agent.get());
  const json health = json::parse(agent->HealthJson());
  EXPECT_EQ(health["checks"]["clock"]["jumps"], 1) << health.dump();
  EXPECT_EQ(health["checks"]["clock"]["ok"], false);
  EXPECT_NEAR(health["checks"]["clock"]["last_jump_ms"].get<double>(), 3'600'000, 1000);
  const auto passes = Passes(service.events());
  ASSERT_EQ(passes.size(), 4U);
  EXPECT_FALSE(passes[0].clock_jump);  // frames 0-9
  EXPECT_TRUE(passes[1].clock_jump);   // frames 10-19: the jump happened during it
  EXPECT_FALSE(passes[2].clock_jump);
  EXPECT_FALSE(passes[3].clock_jump);
  EXPECT_NE(agent->MetricsText().find("portcullis_lane_clock_jumps_total 1"), std::string::npos);
}

TEST_F(AgentRunTest, CertificateExpiredIsAHealthStateNotACrash) {
  testing::FakeService service(f_);
  service.up = false;
  service.state_when_down = static_cast<int>(LinkState::kCertificateExpired);
  testing::FakeParts fakes;
  fakes.camera.frames = 20;
  auto agent = Make(testing::InProcessConfig(f_, 1), fakes, &service);
  RunToEnd(agent.get(), 200);
  const json health = json::parse(agent->HealthJson());
  EXPECT_EQ(health["checks"]["link"]["state"], "certificate_expired") << health.dump();
  EXPECT_NE(
      agent->MetricsText().find("portcullis_lane_link_state{state=\"certificate_expired\"} 1"),
      std::string::npos);
  EXPECT_EQ(health["checks"]["queue"]["backlog_events"], 3);  // kept for later, not dropped
}

TEST_F(AgentRunTest, ExpiredDeviceCertificateShowsInHealth) {
  // A real certificate file whose notAfter is in the past by this device's clock.
  portcullis::testing::CertFiles cert;
  ASSERT_TRUE(portcullis::testing::MakeSelfSigned(f_.dir, "device", "lane:7-a", &cert));
  testing::FakeService service(f_);
  testing::JumpingEnv env;
  env.offset_us = std::int64_t{20} * 365 * 86400 * 1'000'000;  // twenty years on
  LaneAgentConfig config = testing::InProcessConfig(f_, 1);
  config.service.cert_file = cert.cert;
  testing::FakeParts fakes;
  fakes.camera.frames = 1;
  auto agent = Make(config, fakes, &service, &env);
  const json health = json::parse(agent->HealthJson());
  EXPECT_EQ(health["checks"]["certificate"]["expired"], true) << health.dump();
  EXPECT_LT(health["checks"]["certificate"]["days_to_expiry"].get<int>(), 0);
  EXPECT_EQ(health["status"], "failing");
  RunToEnd(agent.get(), 100);  // still runs
}

TEST_F(AgentRunTest, HealthAndMetricsEndpoints) {
  testing::FakeService service(f_);
  testing::FakeParts fakes;
  fakes.camera.frames = 400;
  fakes.camera.frame_interval_ms = 10;  // runs ~4 s: long enough to ask it
  auto agent = Make(testing::InProcessConfig(f_, 1), fakes, &service);
  std::atomic<bool> stop{false};
  std::thread runner([&] { EXPECT_TRUE(agent->Run(stop, 100).ok()); });
  for (int i = 0; i < 200 && agent->metrics_port() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::uint16_t port = agent->metrics_port();
  ASSERT_NE(port, 0);
  const auto get = [port](const std::string& method, const std::string& path) {
    const int fd = portcullis::testing::ConnectTcp(port);
    EXPECT_GE(fd, 0);
    const std::string request = method + " " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
    EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    std::string response;
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0)
      response.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    return response;
  };
  std::string r = get("GET", "/healthz");
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0U) << r;
  const json health = json::parse(r.substr(r.find("\r\n\r\n") + 4));
  for (const char* check :
       {"cameras", "link", "queue", "disk", "clock", "core_dumps", "certificate"}) {
    EXPECT_TRUE(health["checks"].contains(check)) << check;
  }
  r = get("GET", "/metrics");
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0U) << r;
  EXPECT_NE(r.find("text/plain; version=0.0.4"), std::string::npos);
  for (const char* name :
       {"portcullis_lane_frames_total", "portcullis_lane_passes_total",
        "portcullis_lane_events_queued_total", "portcullis_lane_events_delivered_total",
        "portcullis_lane_events_rejected_total", "portcullis_lane_events_lost_total",
        "portcullis_lane_backlog_events", "portcullis_lane_backlog_bytes",
        "portcullis_lane_link_state", "portcullis_lane_camera_state",
        "portcullis_lane_clock_jumps_total", "portcullis_lane_disk_full_refusals_total"}) {
    EXPECT_NE(r.find(name), std::string::npos) << name;
  }
  EXPECT_EQ(r.find("QX7"), std::string::npos);
  EXPECT_EQ(get("GET", "/queue").rfind("HTTP/1.1 404", 0), 0U);
  EXPECT_EQ(get("POST", "/metrics").rfind("HTTP/1.1 404", 0), 0U);
  EXPECT_EQ(get("GET", "/maintenance/health").rfind("HTTP/1.1 404", 0), 0U);
  stop = true;
  runner.join();
  // Stopped by request: what was not yet delivered stays queued (durable), nothing lost.
  EXPECT_EQ(json::parse(agent->HealthJson())["checks"]["queue"]["lost_events"], 0);
}

TEST_F(AgentRunTest, UnusableDataDirIsAnError) {
  testing::FakeService service(f_);
  LaneAgentParts parts = testing::MakeFakeParts({}, &service);
  parts.open_data_dir = [](const std::string&, std::unique_ptr<DataDir>*) {
    return Status::IOError("not a directory");
  };
  std::unique_ptr<LaneAgent> agent;
  EXPECT_EQ(
      LaneAgent::Create(testing::InProcessConfig(f_, 1), Env::Default(), parts, &agent).code(),
      Status::Code::kIOError);
  parts = testing::MakeFakeParts({}, &service);
  parts.run_drainer = nullptr;
  EXPECT_EQ(
      LaneAgent::Create(testing::InProcessConfig(f_, 1), Env::Default(), parts, &agent).code(),
      Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace portcullis::lane
