// End to end through the real binaries: `portcullis lane grant-key` makes the service's grant
// key, `portcullis serve` (mTLS-capable, real policy, real audit log) opens a maintenance session
// for a supervisor who states a purpose, the audit log names the technician, and the grant opens
// the maintenance port of an agent that pins the public key — and nothing else does.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <thread>

#include "agent_util.h"
#include "cli_runner.h"
#include "portcullis/access_store.h"
#include "portcullis/audit.h"
#include "server_test_util.h"

namespace portcullis::lane {
namespace {

using nlohmann::json;
using portcullis::testing::HttpResponse;
using portcullis::testing::HttpsRequest;

class AgentE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::MakeAgentFixture(&f_));
    dir_ = f_.dir;
    ASSERT_TRUE(portcullis::testing::MakeSelfSigned(dir_, "server", "localhost", &cert_));
    ASSERT_TRUE(audit::GenerateKeys(dir_ + "/audit-keys").ok());
    ASSERT_TRUE(portcullis::testing::WriteBytes(dir_ + "/vault.secret", "e2e-passphrase\n"));
    std::unique_ptr<policy::AccessStore> store;
    ASSERT_TRUE(policy::OpenAccessStore("sqlite:" + dir_ + "/access.db", {}, &store).ok());
    ASSERT_TRUE(store
                    ->CreatePrincipal({"supervisor:ana", policy::Role::kSupervisor, {"*"}, 0},
                                      &supervisor_token_)
                    .ok());
    ASSERT_TRUE(
        store->CreatePrincipal({"vendor:acme", policy::Role::kVendor, {"7"}, 0}, &vendor_token_)
            .ok());
    std::string device_token;
    ASSERT_TRUE(
        store->CreatePrincipal({"lane:7-a", policy::Role::kLaneDevice, {"7"}, 0}, &device_token)
            .ok());
    const auto key = portcullis::testing::RunCli({"lane", "grant-key", "--out", dir_ + "/grant.key",
                                                  "--public-out", dir_ + "/service-grant.pub"});
    ASSERT_EQ(key.exit_code, 0) << key;
    // Never overwrites a key.
    EXPECT_NE(portcullis::testing::RunCli({"lane", "grant-key", "--out", dir_ + "/grant.key",
                                           "--public-out", dir_ + "/other.pub"})
                  .exit_code,
              0);
    config_ = {
        {"node", "e2e"},
        {"listen", "127.0.0.1:0"},
        {"tls", {{"cert", cert_.cert}, {"key", cert_.key}}},
        {"vault",
         {{"store", "sqlite:vault.db"},
          {"keys", "keyring:vault.keyring"},
          {"secret_file", "vault.secret"},
          {"create_keys", true}}},
        {"audit", {{"log", "audit"}, {"keys", "audit-keys"}}},
        {"access",
         {{"store", "sqlite:access.db"},
          {"policy", std::string(PORTCULLIS_SOURCE_DIR) + "/data/policy.json"}}},
        {"limits", {{"workers", 1}, {"queue", 4}, {"shutdown_grace_ms", 5000}}},
        {"models", {{"plates", false}, {"faces", false}}},
        {"jobs", {{"enabled", false}}},
        {"maintenance", {{"grant_key_file", "grant.key"}}},
    };
    ASSERT_TRUE(portcullis::testing::WriteBytes(dir_ + "/serve.json", config_.dump(2)));
  }

  std::vector<audit::LeafRecord> AuditLeaves() {
    std::unique_ptr<audit::TransparencyLog> log;
    std::vector<audit::LeafRecord> out;
    if (!audit::OpenTransparencyLog(dir_ + "/audit", dir_ + "/audit-keys", {}, &log).ok()) {
      ADD_FAILURE() << "cannot open the audit log";
      return out;
    }
    std::uint64_t size = 0;
    EXPECT_TRUE(log->Size(&size).ok());
    std::vector<std::string> leaves;
    EXPECT_TRUE(log->ReadLeaves(0, size, &leaves).ok());
    for (const std::string& leaf : leaves) {
      audit::LeafRecord record;
      EXPECT_TRUE(audit::DecodeLeaf(leaf, &record).ok());
      out.push_back(record);
    }
    return out;
  }

  testing::AgentFixture f_;
  std::string dir_;
  portcullis::testing::CertFiles cert_;
  std::string supervisor_token_, vendor_token_;
  json config_;
};

TEST_F(AgentE2ETest, SupervisorOpensAuditedSessionWhoseGrantOpensTheDevice) {
  std::string grant;
  std::string session_id;
  {
    portcullis::testing::ServeProcess serve(dir_ + "/serve.json");
    ASSERT_TRUE(serve.started()) << serve.Log();
    const std::string body = json{
        {"device", "lane:7-a"},
        {"technician", "J. Smith (Acme ALPR)"},
        {"minutes", 30}}.dump();
    const auto headers = [](const std::string& token, bool purpose) {
      auto h = portcullis::testing::Bearer(token, {{"Content-Type", "application/json"}});
      if (purpose) h["X-Purpose"] = "INC-42 camera 2 out of focus";
      return h;
    };
    // The policy: a purpose is required; a vendor may never open maintenance.
    HttpResponse r = HttpsRequest(serve.port(), "POST", "/v1/lanes/7/maintenance",
                                  headers(supervisor_token_, false), body);
    EXPECT_EQ(r.status, 403) << r.body;
    r = HttpsRequest(serve.port(), "POST", "/v1/lanes/7/maintenance", headers(vendor_token_, true),
                     body);
    EXPECT_EQ(r.status, 403) << r.body;
    r = HttpsRequest(serve.port(), "POST", "/v1/lanes/8/maintenance",
                     headers(supervisor_token_, true), body);
    EXPECT_EQ(r.ErrorCode(), "device_not_in_lane") << r.body;
    r = HttpsRequest(serve.port(), "POST", "/v1/lanes/7/maintenance",
                     headers(supervisor_token_, true), body);
    ASSERT_EQ(r.status, 201) << r.body;
    grant = r.Json()["grant"].get<std::string>();
    session_id = r.Json()["session_id"].get<std::string>();
    EXPECT_EQ(serve.Terminate(), 0);
  }
  // The audit log names the session and the technician, with the stated purpose.
  bool found = false;
  for (const audit::LeafRecord& leaf : AuditLeaves()) {
    if (leaf.action != "maintenance.session") continue;
    found = true;
    EXPECT_EQ(leaf.principal, "supervisor:ana");
    EXPECT_NE(leaf.purpose.find("INC-42 camera 2 out of focus"), std::string::npos);
    EXPECT_NE(leaf.purpose.find(session_id), std::string::npos) << leaf.purpose;
    EXPECT_NE(leaf.purpose.find("J. Smith (Acme ALPR)"), std::string::npos) << leaf.purpose;
  }
  EXPECT_TRUE(found);

  // The device pins the public key that `lane grant-key` wrote; the grant opens it.
  portcullis::testing::CertFiles tls;
  ASSERT_TRUE(portcullis::testing::MakeSelfSigned(dir_, "maint", "localhost", &tls));
  json j = testing::ValidConfigJson();
  j["maintenance"] = {{"listen", "127.0.0.1:0"},
                      {"cert_file", tls.cert},
                      {"key_file", tls.key},
                      {"grant_public_key_file", "service-grant.pub"}};
  ASSERT_TRUE(testing::WriteConfig(f_, j));
  LaneAgentConfig config;
  ASSERT_TRUE(LoadLaneAgentConfig(f_.config_path, Env::Default(), &config).ok());
  testing::FakeService service(f_);
  testing::FakeParts fakes;
  fakes.camera.frames = 100000;
  fakes.camera.frame_interval_ms = 20;
  LaneAgentParts parts = testing::MakeFakeParts(fakes, &service);
  parts.config_path = f_.config_path;
  std::unique_ptr<LaneAgent> agent;
  ASSERT_TRUE(LaneAgent::Create(config, Env::Default(), parts, &agent).ok());
  std::atomic<bool> stop{false};
  std::thread runner([&] { EXPECT_TRUE(agent->Run(stop, 100).ok()); });
  for (int i = 0; i < 300 && agent->maintenance_port() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  HttpResponse ok = HttpsRequest(agent->maintenance_port(), "GET", "/maintenance/health",
                                 {{"Authorization", "Grant " + grant}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  // The fixture's own grant key (not the service's) opens nothing.
  MaintenanceGrant forged;
  forged.session_id = NewSessionId();
  forged.device = "lane:7-a";
  forged.lane = "7";
  forged.technician = "someone";
  forged.not_before_s = Env::Default()->NowMicros() / 1'000'000;
  forged.expires_s = forged.not_before_s + 600;
  std::string token;
  ASSERT_TRUE(SignMaintenanceGrant(forged, f_.grant_secret, &token).ok());
  EXPECT_EQ(HttpsRequest(agent->maintenance_port(), "GET", "/maintenance/health",
                         {{"Authorization", "Grant " + token}})
                .ErrorCode(),
            "grant_signature_invalid");
  stop = true;
  runner.join();
}

TEST_F(AgentE2ETest, ServiceRefusesAGrantKeyOthersCanRead) {
  ASSERT_EQ(::chmod((dir_ + "/grant.key").c_str(), 0644), 0);
  const auto r = portcullis::testing::RunCli({"serve", "--config", dir_ + "/serve.json"},
                                             testing::WithTimeout(60));
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_NE(r.err.find("maintenance.grant_key_file"), std::string::npos) << r;
}

}  // namespace
}  // namespace portcullis::lane
