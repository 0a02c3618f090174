// The maintenance port of a running agent (TLS, grant-only): a service-signed grant for this
// device and time opens exactly health, versions, counters, a live preview and config update;
// everything else is 404 and nothing returns queue bytes, events, crops or files.
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <thread>

#include "agent_util.h"
#include "cli_runner.h"
#include "server_test_util.h"

namespace portcullis::lane {
namespace {

using nlohmann::json;
using portcullis::testing::HttpResponse;

// Reads a whole response (until the server closes): the preview is streamed without a length.
std::string ReadUntilClose(std::uint16_t port, const std::string& request) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  const int fd = portcullis::testing::ConnectTcp(port);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  std::string out;
  if (SSL_connect(ssl) == 1 &&
      SSL_write(ssl, request.data(), static_cast<int>(request.size())) > 0) {
    char buffer[16384];
    int n = 0;
    while ((n = SSL_read(ssl, buffer, sizeof buffer)) > 0)
      out.append(buffer, static_cast<std::size_t>(n));
  }
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
  return out;
}

class AgentMaintenanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::MakeAgentFixture(&f_));
    ASSERT_TRUE(portcullis::testing::MakeSelfSigned(f_.dir, "maint", "localhost", &tls_));
    // The on-disk config the agent was started with (PUT /maintenance/config validates against
    // its directory and compares with it).
    json j = testing::ValidConfigJson();
    j["maintenance"]["cert_file"] = tls_.cert;
    j["maintenance"]["key_file"] = tls_.key;
    j["maintenance"]["max_preview_fps"] = 10;
    ASSERT_TRUE(testing::WriteConfig(f_, j));
    config_json_ = j;
    ASSERT_TRUE(LoadLaneAgentConfig(f_.config_path, Env::Default(), &config_).ok());
    config_.health_report_interval_s = 3600;

    fakes_.camera.frames = 100000;
    fakes_.camera.frame_interval_ms = 20;
    LaneAgentParts parts = testing::MakeFakeParts(fakes_, &service_);
    parts.config_path = f_.config_path;
    const Status s = LaneAgent::Create(config_, Env::Default(), parts, &agent_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    runner_ = std::thread([this] { EXPECT_TRUE(agent_->Run(stop_, 100).ok()); });
    for (int i = 0; i < 300 && agent_->maintenance_port() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    port_ = agent_->maintenance_port();
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    stop_ = true;
    if (runner_.joinable()) runner_.join();
  }

  std::string Grant(const std::string& device = "lane:7-a", std::int64_t from_now_s = -10,
                    std::int64_t minutes = 30, const GrantSecretKey* key = nullptr) {
    MaintenanceGrant g;
    g.session_id = NewSessionId();
    g.device = device;
    g.lane = "7";
    g.technician = "J. Smith (Acme ALPR)";
    g.not_before_s = Env::Default()->NowMicros() / 1'000'000 + from_now_s;
    g.expires_s = g.not_before_s + minutes * 60;
    std::string token;
    EXPECT_TRUE(SignMaintenanceGrant(g, key != nullptr ? *key : f_.grant_secret, &token).ok());
    return token;
  }
  HttpResponse Call(const std::string& method, const std::string& path, const std::string& grant,
                    const std::string& body = "") {
    std::map<std::string, std::string> headers;
    if (!grant.empty()) headers["Authorization"] = "Grant " + grant;
    if (!body.empty()) headers["Content-Type"] = "application/json";
    return portcullis::testing::HttpsRequest(port_, method, path, headers, body);
  }

  testing::AgentFixture f_;
  portcullis::testing::CertFiles tls_;
  json config_json_;
  LaneAgentConfig config_;
  testing::FakeService service_{f_};
  testing::FakeParts fakes_;
  std::unique_ptr<LaneAgent> agent_;
  std::atomic<bool> stop_{false};
  std::thread runner_;
  std::uint16_t port_ = 0;
};

TEST_F(AgentMaintenanceTest, GrantOpensHealthVersionsCounters) {
  const std::string grant = Grant();
  HttpResponse r = Call("GET", "/maintenance/health", grant);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["device"], "lane:7-a");
  EXPECT_TRUE(r.Json()["checks"].contains("queue"));
  r = Call("GET", "/maintenance/versions", grant);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["version"], "0.1.0");
  std::string config_text;
  ASSERT_TRUE(Env::Default()->ReadFile(f_.config_path, 1 << 20, &config_text).ok());
  EXPECT_EQ(r.Json()["config_sha256"].get<std::string>().size(), 64U);
  r = Call("GET", "/maintenance/counters", grant);
  ASSERT_EQ(r.status, 200) << r.body;
  const json counters = r.Json();
  for (const char* key : {"passes", "plate_reads", "mean_confidence", "low_confidence_rate"}) {
    EXPECT_TRUE(counters.contains(key)) << key;
  }
  EXPECT_EQ(r.body.find("QX7"), std::string::npos);  // counts, never plates
  // One session, counted and reported once however many requests it makes.
  const std::string metrics = agent_->MetricsText();
  EXPECT_NE(metrics.find("portcullis_lane_maintenance_sessions_total 1"), std::string::npos)
      << metrics;
}

TEST_F(AgentMaintenanceTest, RefusesWithoutAValidGrant) {
  EXPECT_EQ(Call("GET", "/maintenance/health", "").ErrorCode(), "grant_required");
  EXPECT_EQ(Call("GET", "/maintenance/health", "").status, 401);
  EXPECT_EQ(Call("GET", "/maintenance/health", "garbage").ErrorCode(), "grant_malformed");
  GrantSecretKey other;
  GrantPublicKey other_public;
  ASSERT_TRUE(GenerateGrantKeyPair(&other, &other_public).ok());
  HttpResponse r = Call("GET", "/maintenance/health", Grant("lane:7-a", -10, 30, &other));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.ErrorCode(), "grant_signature_invalid");
  r = Call("GET", "/maintenance/health", Grant("lane:8-a"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.ErrorCode(), "grant_wrong_device");
  r = Call("GET", "/maintenance/health", Grant("lane:7-a", -3600, 30));  // ended 30 min ago
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.ErrorCode(), "grant_expired");
  r = Call("GET", "/maintenance/health", Grant("lane:7-a", 3600, 30));  // starts in an hour
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.ErrorCode(), "grant_not_yet_valid");
  // A bearer token is not a grant.
  r = portcullis::testing::HttpsRequest(port_, "GET", "/maintenance/health",
                                        portcullis::testing::Bearer("pct_x"));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(agent_->MetricsText().find("portcullis_lane_maintenance_refusals_total 8"),
            std::string::npos);
}

TEST_F(AgentMaintenanceTest, NoOtherEndpointAndNoWayToTheQueue) {
  const std::string grant = Grant();
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/"},
           {"GET", "/maintenance"},
           {"GET", "/maintenance/"},
           {"GET", "/maintenance/queue"},
           {"GET", "/maintenance/events"},
           {"GET", "/maintenance/export"},
           {"GET", "/maintenance/logs"},
           {"GET", "/maintenance/files/queue/fake.q"},
           {"GET", "/maintenance/config"},
           {"GET", "/maintenance/preview/"},
           {"GET", "/maintenance/preview/cam9"},
           {"GET", "/maintenance/health/../queue"},
           {"GET", "/maintenance/../data/queue/fake.q"},
           {"GET", "/metrics"},
           {"GET", "/healthz"},
           {"POST", "/maintenance/health"},
           {"DELETE", "/maintenance/config"},
           {"POST", "/maintenance/config"},
           {"PUT", "/maintenance/health"},
           {"GET", "/maintenance/versions/x"},
       }) {
    const HttpResponse r = Call(method, path, grant);
    EXPECT_EQ(r.status, 404) << method << " " << path << ": " << r.body;
  }
  // No answer of any endpoint carries queue bytes.
  std::string queue_bytes;
  ASSERT_TRUE(Env::Default()->ReadFile(f_.dir + "/data/queue/fake.q", 1 << 24, &queue_bytes).ok());
  ASSERT_GE(queue_bytes.size(), 64U);
  const std::string probe = queue_bytes.substr(queue_bytes.size() - 32);
  for (const char* path :
       {"/maintenance/health", "/maintenance/versions", "/maintenance/counters"}) {
    EXPECT_EQ(Call("GET", path, grant).body.find(probe), std::string::npos) << path;
  }
}

TEST_F(AgentMaintenanceTest, PreviewIsLiveJpegNotStoredNoStore) {
  const std::string grant = Grant();
  const std::string response = ReadUntilClose(
      port_, "GET /maintenance/preview/cam0?frames=3 HTTP/1.1\r\nHost: x\r\nAuthorization: Grant " +
                 grant + "\r\n\r\n");
  ASSERT_EQ(response.rfind("HTTP/1.1 200", 0), 0U) << response.substr(0, 300);
  EXPECT_NE(response.find("multipart/x-mixed-replace; boundary=portcullis-preview"),
            std::string::npos);
  EXPECT_NE(response.find("Cache-Control: no-store"), std::string::npos);
  int parts = 0;
  for (std::size_t at = 0;
       (at = response.find("--portcullis-preview\r\n", at)) != std::string::npos; ++at) {
    ++parts;
    const std::size_t body = response.find("\r\n\r\n", at) + 4;
    EXPECT_EQ(response.substr(body, 3), "\xff\xd8\xff");
  }
  EXPECT_EQ(parts, 3);
  // Rendered in memory only: nothing on disk looks like an image.
  const auto found = testing::ScanForPlaintext(f_.dir + "/data", {"QX7cam0"});
  EXPECT_TRUE(found.empty()) << ::testing::PrintToString(found);
  EXPECT_EQ(Call("GET", "/maintenance/preview/nope", grant).status, 404);
}

TEST_F(AgentMaintenanceTest, ConfigUpdateValidatedStoredAtomicallyAndReported) {
  const std::string grant = Grant();
  json next = config_json_;
  next["cameras"][0]["frame_stride"] = 3;
  HttpResponse r = Call("PUT", "/maintenance/config", grant, next.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["stored"], true);
  std::string stored;
  ASSERT_TRUE(Env::Default()->ReadFile(f_.dir + "/data/config/lane.json", 1 << 20, &stored).ok());
  EXPECT_EQ(json::parse(stored)["cameras"][0]["frame_stride"], 3);

  EXPECT_EQ(Call("PUT", "/maintenance/config", grant, "{not json").status, 400);
  json bad = config_json_;
  bad["cameras"][0]["frame_stride"] = 0;
  EXPECT_EQ(Call("PUT", "/maintenance/config", grant, bad.dump()).ErrorCode(), "invalid_config");
  bad = config_json_;
  bad["surprise"] = 1;
  EXPECT_EQ(Call("PUT", "/maintenance/config", grant, bad.dump()).ErrorCode(), "invalid_config");
  // A technician may not point the device at a key, a service or a data dir of their own.
  ASSERT_TRUE(portcullis::testing::WriteBytes(f_.dir + "/mine.pub",
                                              FormatIngestPublicKey(IngestPublicKey{}) + "\n"));
  for (const auto& [field, value] :
       std::vector<std::pair<std::string, json>>{{"ingest_public_key_file", "mine.pub"},
                                                 {"data_dir", "/media/usb"},
                                                 {"device", "lane:7-b"}}) {
    json change = config_json_;
    change[field] = value;
    r = Call("PUT", "/maintenance/config", grant, change.dump());
    EXPECT_EQ(r.status, 403) << field << ": " << r.body;
    EXPECT_EQ(r.ErrorCode(), "config_change_forbidden") << field;
  }
  json change = config_json_;
  change["service"]["url"] = "https://evil.example:443";
  EXPECT_EQ(Call("PUT", "/maintenance/config", grant, change.dump()).status, 403);
  // Still the first stored config.
  ASSERT_TRUE(Env::Default()->ReadFile(f_.dir + "/data/config/lane.json", 1 << 20, &stored).ok());
  EXPECT_EQ(json::parse(stored)["cameras"][0]["frame_stride"], 3);
  EXPECT_NE(agent_->MetricsText().find("portcullis_lane_maintenance_config_changes_total 1"),
            std::string::npos);
  // The session and the change reach the service as reports (no names in them).
  for (int i = 0; i < 200 && service_.reports().size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto reports = service_.reports();
  ASSERT_EQ(reports.size(), 2U);
  EXPECT_EQ(json::parse(reports[0])["action"], "session_used");
  EXPECT_EQ(json::parse(reports[1])["action"], "config_changed");
  for (const std::string& report : reports) EXPECT_EQ(report.find("Smith"), std::string::npos);
}

}  // namespace
}  // namespace portcullis::lane
