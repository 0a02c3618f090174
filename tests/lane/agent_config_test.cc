// LoadLaneAgentConfig: a valid file loads with every relative path resolved; every bad field is
// refused with InvalidArgument naming it (a typo must stop the agent, not fall back silently).
#include <gtest/gtest.h>

#include "agent_util.h"
#include "cli_runner.h"
#include "lane/agent.h"

namespace portcullis::lane {
namespace {

using nlohmann::json;

class AgentConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(testing::MakeAgentFixture(&f_)); }

  Status Load(const json& config, LaneAgentConfig* out) {
    EXPECT_TRUE(testing::WriteConfig(f_, config));
    return LoadLaneAgentConfig(f_.config_path, Env::Default(), out);
  }
  // Loads a config with one change and expects InvalidArgument mentioning `field`.
  void ExpectRefused(const json& config, const std::string& field) {
    LaneAgentConfig c;
    const Status s = Load(config, &c);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << field << ": " << s.ToString();
    EXPECT_NE(s.message().find(field), std::string::npos) << s.ToString();
  }

  testing::AgentFixture f_;
};

TEST_F(AgentConfigTest, ValidConfigLoadsWithPathsResolved) {
  LaneAgentConfig c;
  ASSERT_TRUE(Load(testing::ValidConfigJson(), &c).ok());
  EXPECT_EQ(c.device, "lane:7-a");
  EXPECT_EQ(c.lane, "7");
  EXPECT_EQ(c.data_dir, f_.dir + "/data");
  EXPECT_EQ(c.ingest_public_key_file, f_.dir + "/ingest.pub");
  EXPECT_EQ(c.ingest_public_key.bytes, f_.ingest_public.bytes);
  ASSERT_EQ(c.cameras.size(), 1U);
  EXPECT_EQ(c.cameras[0].source, f_.dir + "/video.mp4");
  EXPECT_EQ(c.cameras[0].frame_stride, 2);
  EXPECT_EQ(c.service.url, "https://127.0.0.1:8443");
  EXPECT_EQ(c.service.ca_file, f_.dir + "/ca.pem");
  EXPECT_EQ(c.service.token_file, f_.dir + "/token");
  EXPECT_EQ(c.service.lane, "7");  // the events endpoint's path parameter
  EXPECT_EQ(c.maintenance.cert_file, f_.dir + "/maint.pem");
  EXPECT_EQ(c.maintenance.grant_public_key.bytes, f_.grant_public.bytes);
  EXPECT_EQ(c.metrics_listen, "127.0.0.1:0");
  EXPECT_EQ(c.clock_jump_threshold_ms, 2000);
  EXPECT_EQ(c.cameras[0].plate_detector_max_side, 0);  // the plate engine's default
}

TEST_F(AgentConfigTest, PlateDetectorSizeIsPerCamera) {
  json j = testing::ValidConfigJson();
  j["cameras"][0]["plate_detector_max_side"] = 400;
  LaneAgentConfig c;
  ASSERT_TRUE(Load(j, &c).ok());
  EXPECT_EQ(c.cameras[0].plate_detector_max_side, 400);
  EXPECT_EQ(c.cameras[0].face_min_pixels, 0);  // HOG's own window
  j["cameras"][0]["face_min_pixels"] = 120;
  ASSERT_TRUE(Load(j, &c).ok());
  EXPECT_EQ(c.cameras[0].face_min_pixels, 120);
}

TEST_F(AgentConfigTest, StreamsAndAbsolutePathsAreKeptVerbatim) {
  json j = testing::ValidConfigJson();
  j["cameras"] = {{{"id", "a"}, {"source", "rtsp://10.0.0.5/stream"}},
                  {{"id", "b"}, {"source", "v4l2:0"}},
                  {{"id", "c"}, {"source", "/var/video/x.mp4"}}};
  j["data_dir"] = "/var/lib/portcullis-lane";
  LaneAgentConfig c;
  ASSERT_TRUE(Load(j, &c).ok());
  EXPECT_EQ(c.cameras[0].source, "rtsp://10.0.0.5/stream");
  EXPECT_EQ(c.cameras[1].source, "v4l2:0");
  EXPECT_EQ(c.cameras[2].source, "/var/video/x.mp4");
  EXPECT_EQ(c.data_dir, "/var/lib/portcullis-lane");
}

TEST_F(AgentConfigTest, MaintenanceSectionOptionalAndOffWhenAbsent) {
  json j = testing::ValidConfigJson();
  j.erase("maintenance");
  LaneAgentConfig c;
  ASSERT_TRUE(Load(j, &c).ok());
  EXPECT_TRUE(c.maintenance.listen.empty());
  j["maintenance"] = {{"listen", ""}};
  ASSERT_TRUE(Load(j, &c).ok());
  EXPECT_TRUE(c.maintenance.listen.empty());
}

TEST_F(AgentConfigTest, MissingOrUnreadableFile) {
  LaneAgentConfig c;
  EXPECT_EQ(LoadLaneAgentConfig(f_.dir + "/nope.json", Env::Default(), &c).code(),
            Status::Code::kNotFound);
  ASSERT_TRUE(portcullis::testing::WriteBytes(f_.config_path, "{\"device\": "));
  EXPECT_EQ(LoadLaneAgentConfig(f_.config_path, Env::Default(), &c).code(),
            Status::Code::kInvalidArgument);
  ASSERT_TRUE(portcullis::testing::WriteBytes(f_.config_path, "[1,2]"));
  EXPECT_EQ(LoadLaneAgentConfig(f_.config_path, Env::Default(), &c).code(),
            Status::Code::kInvalidArgument);
}

TEST_F(AgentConfigTest, UnknownKeysRefusedAtEveryLevel) {
  json j = testing::ValidConfigJson();
  j["data_dri"] = "x";
  ExpectRefused(j, "data_dri: unknown field");
  j = testing::ValidConfigJson();
  j["service"]["urll"] = "x";
  ExpectRefused(j, "service.urll: unknown field");
  j = testing::ValidConfigJson();
  j["cameras"][0]["strid"] = 1;
  ExpectRefused(j, "cameras[0].strid: unknown field");
  j = testing::ValidConfigJson();
  j["maintenance"]["port"] = 1;
  ExpectRefused(j, "maintenance.port: unknown field");
  j = testing::ValidConfigJson();
  j["queue"] = {{"max_byte", 1}};
  ExpectRefused(j, "queue.max_byte: unknown field");
  j = testing::ValidConfigJson();
  j["cameras"][0]["roi"] = {{"x", 0}, {"y", 0}, {"w", 10}, {"h", 10}, {"z", 1}};
  ExpectRefused(j, "cameras[0].roi.z: unknown field");
}

TEST_F(AgentConfigTest, RequiredFields) {
  for (const char* key :
       {"device", "lane", "data_dir", "ingest_public_key_file", "cameras", "service"}) {
    json j = testing::ValidConfigJson();
    j.erase(key);
    ExpectRefused(j, std::string(key) + ": required");
  }
  for (const char* key : {"url", "ca_file", "cert_file", "key_file", "token_file"}) {
    json j = testing::ValidConfigJson();
    j["service"].erase(key);
    ExpectRefused(j, std::string("service.") + key + ": required");
  }
  for (const char* key : {"id", "source"}) {
    json j = testing::ValidConfigJson();
    j["cameras"][0].erase(key);
    ExpectRefused(j, std::string("cameras[0].") + key + ": required");
  }
  for (const char* key : {"cert_file", "key_file", "grant_public_key_file"}) {
    json j = testing::ValidConfigJson();
    j["maintenance"].erase(key);
    ExpectRefused(j, std::string("maintenance.") + key);
  }
}

TEST_F(AgentConfigTest, BadValues) {
  const std::vector<std::pair<std::function<void(json&)>, std::string>> cases = {
      {[](json& j) { j["device"] = "Lane 7"; }, "device"},
      {[](json& j) { j["device"] = 7; }, "device"},
      {[](json& j) { j["lane"] = "7/../x"; }, "lane"},
      {[](json& j) { j["data_dir"] = ""; }, "data_dir"},
      {[](json& j) { j["cameras"] = json::array(); }, "cameras"},
      {[](json& j) { j["cameras"] = "cam0"; }, "cameras"},
      {[](json& j) { j["cameras"][0] = 3; }, "cameras[0]"},
      {[](json& j) { j["cameras"][0]["id"] = "cam 0"; }, "cameras[0].id"},
      {[](json& j) { j["cameras"].push_back(j["cameras"][0]); }, "cameras[1].id"},
      {[](json& j) { j["cameras"][0]["frame_stride"] = 0; }, "cameras[0].frame_stride"},
      {[](json& j) { j["cameras"][0]["frame_stride"] = 2.5; }, "cameras[0].frame_stride"},
      {[](json& j) { j["cameras"][0]["stall_timeout_ms"] = -1; }, "cameras[0].stall_timeout_ms"},
      {[](json& j) { j["cameras"][0]["loop"] = "yes"; }, "cameras[0].loop"},
      {[](json& j) { j["cameras"][0]["retry_initial_ms"] = 1; }, "cameras[0].retry_initial_ms"},
      {[](json& j) {
         j["cameras"][0]["retry_initial_ms"] = 5000;
         j["cameras"][0]["retry_max_ms"] = 100;
       },
       "cameras[0].retry_max_ms"},
      {[](json& j) { j["cameras"][0]["faces"] = 1; }, "cameras[0].faces"},
      {[](json& j) {
         j["cameras"][0]["source"] = "rtsp://x/y";
         j["cameras"][0]["loop"] = true;
       },
       "cameras[0].loop"},
      {[](json& j) { j["cameras"][0]["realtime"] = "yes"; }, "cameras[0].realtime"},
      {[](json& j) { j["cameras"][0]["plate_detector_max_side"] = 32; },
       "cameras[0].plate_detector_max_side"},
      {[](json& j) { j["cameras"][0]["plate_detector_max_side"] = 5000; },
       "cameras[0].plate_detector_max_side"},
      {[](json& j) { j["cameras"][0]["plate_detector_max_side"] = "400"; },
       "cameras[0].plate_detector_max_side"},
      {[](json& j) { j["cameras"][0]["face_min_pixels"] = -1; }, "cameras[0].face_min_pixels"},
      {[](json& j) { j["cameras"][0]["face_min_pixels"] = 5000; }, "cameras[0].face_min_pixels"},
      {[](json& j) {
         j["cameras"][0]["source"] = "v4l2:0";
         j["cameras"][0]["realtime"] = true;
       },
       "cameras[0].realtime"},
      {[](json& j) {
         j["cameras"][0]["roi"] = {{"x", 0}, {"y", 0}};
       },
       "cameras[0].roi"},
      {[](json& j) {
         j["cameras"][0]["roi"] = {{"x", -1}, {"w", 5}, {"h", 5}};
       },
       "cameras[0].roi.x"},
      {[](json& j) { j["service"] = "https://x"; }, "service"},
      {[](json& j) { j["service"]["url"] = "http://127.0.0.1:8443"; }, "service.url"},
      {[](json& j) { j["service"]["connect_timeout_ms"] = 0; }, "service.connect_timeout_ms"},
      {[](json& j) { j["service"]["request_timeout_ms"] = "10"; }, "service.request_timeout_ms"},
      {[](json& j) { j["service"]["backoff_initial_ms"] = 5; }, "service.backoff_initial_ms"},
      {[](json& j) {
         j["service"]["backoff_initial_ms"] = 5000;
         j["service"]["backoff_max_ms"] = 1000;
       },
       "service.backoff_max_ms"},
      {[](json& j) {
         j["queue"] = {{"max_bytes", 10}};
       },
       "queue.max_bytes"},
      {[](json& j) {
         j["queue"] = {{"max_events", 0}};
       },
       "queue.max_events"},
      {[](json& j) {
         j["queue"] = {{"max_events", 18446744073709551615ULL}};
       },
       "queue.max_events"},
      {[](json& j) {
         j["queue"] = {{"max_bytes", 1 << 20}, {"segment_bytes", 1 << 21}};
       },
       "queue.segment_bytes"},
      {[](json& j) { j["maintenance"]["listen"] = "9444"; }, "maintenance.listen"},
      {[](json& j) { j["maintenance"]["listen"] = "127.0.0.1:99999"; }, "maintenance.listen"},
      {[](json& j) { j["maintenance"]["max_preview_fps"] = 0; }, "maintenance.max_preview_fps"},
      {[](json& j) { j["maintenance"]["max_preview_fps"] = 31; }, "maintenance.max_preview_fps"},
      {[](json& j) { j["maintenance"]["clock_skew_s"] = -5; }, "maintenance.clock_skew_s"},
      {[](json& j) { j["maintenance"]["grant_public_key_file"] = "ingest.pub"; },
       "maintenance.grant_public_key_file"},
      {[](json& j) { j["maintenance"]["grant_public_key_file"] = "missing.pub"; },
       "maintenance.grant_public_key_file"},
      {[](json& j) { j["metrics_listen"] = "localhost"; }, "metrics_listen"},
      {[](json& j) { j["region"] = "U S"; }, "region"},
      {[](json& j) { j["health_report_interval_s"] = 1; }, "health_report_interval_s"},
      {[](json& j) { j["clock_jump_threshold_ms"] = 10; }, "clock_jump_threshold_ms"},
      {[](json& j) { j["ingest_public_key_file"] = "grant.pub"; }, "ingest_public_key_file"},
  };
  for (const auto& [mutate, field] : cases) {
    json j = testing::ValidConfigJson();
    mutate(j);
    SCOPED_TRACE(j.dump());
    LaneAgentConfig c;
    const Status s = Load(j, &c);
    EXPECT_FALSE(s.ok()) << field;
    EXPECT_NE(s.message().find(field), std::string::npos) << s.ToString();
  }
}

TEST_F(AgentConfigTest, MissingKeyFileIsNotFoundNamingTheField) {
  json j = testing::ValidConfigJson();
  j["ingest_public_key_file"] = "absent.pub";
  LaneAgentConfig c;
  const Status s = Load(j, &c);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_NE(s.message().find("ingest_public_key_file"), std::string::npos) << s.ToString();
}

TEST_F(AgentConfigTest, ParseInMemoryUsesGivenBaseDir) {
  LaneAgentConfig c;
  ASSERT_TRUE(
      ParseLaneAgentConfig(testing::ValidConfigJson().dump(), f_.dir, Env::Default(), &c).ok());
  EXPECT_EQ(c.data_dir, f_.dir + "/data");
  EXPECT_EQ(ParseLaneAgentConfig("not json", f_.dir, Env::Default(), &c).code(),
            Status::Code::kInvalidArgument);
}

TEST(ListenAddress, Parses) {
  std::string host;
  std::uint16_t port = 0;
  ASSERT_TRUE(ParseListenAddress("127.0.0.1:9445", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 9445);
  ASSERT_TRUE(ParseListenAddress("[::1]:80", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  for (const char* bad : {"", ":80", "host", "host:", "host:x1", "host:65536", "host:123456"}) {
    EXPECT_FALSE(ParseListenAddress(bad, &host, &port).ok()) << bad;
  }
}

}  // namespace
}  // namespace portcullis::lane
