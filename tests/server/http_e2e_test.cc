// The real `portcullis serve` binary end to end: a config written here, dependencies created with
// the libraries (audit keys, the first admin), the process on a free port. What only the whole
// program can show: the config is honoured, /readyz sees every dependency, decisions reach the
// real audit log, SIGTERM with requests in flight loses no acknowledged write, --check.
#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "portcullis/access_store.h"
#include "portcullis/audit.h"
#include "server/service.h"
#include "server_test_util.h"

namespace portcullis::server {
namespace {

using testing::Bearer;
using testing::HttpResponse;
using testing::HttpsRequest;
using testing::ServeProcess;

class ServeE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    ASSERT_TRUE(testing::MakeSelfSigned(dir_, "server", "localhost", &cert_));
    ASSERT_TRUE(audit::GenerateKeys(dir_ + "/audit-keys").ok());
    ASSERT_TRUE(testing::WriteBytes(dir_ + "/vault.secret", "e2e-passphrase\n"));
    std::unique_ptr<policy::AccessStore> store;
    ASSERT_TRUE(policy::OpenAccessStore("sqlite:" + dir_ + "/access.db", {}, &store).ok());
    policy::NewPrincipal admin;
    admin.name = "admin:root";
    admin.role = policy::Role::kAdmin;
    admin.scope = {"*"};
    ASSERT_TRUE(store->CreatePrincipal(admin, &admin_token_).ok());
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
    };
  }

  std::string WriteConfig() {
    const std::string path = dir_ + "/config.json";
    EXPECT_TRUE(testing::WriteBytes(path, config_.dump(2)));
    return path;
  }

  std::vector<audit::LeafRecord> AuditLeaves() {
    std::unique_ptr<audit::TransparencyLog> log;
    std::vector<audit::LeafRecord> out;
    const Status s = audit::OpenTransparencyLog(dir_ + "/audit", dir_ + "/audit-keys", {}, &log);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return out;
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

  std::string dir_;
  testing::CertFiles cert_;
  std::string admin_token_;
  nlohmann::json config_;
};

TEST_F(ServeE2ETest, ServesHealthReadinessOpenApiAndRecordsDecisions) {
  ServeProcess serve(WriteConfig());
  ASSERT_TRUE(serve.started()) << serve.Log();
  const std::uint16_t port = serve.port();

  EXPECT_EQ(HttpsRequest(port, "GET", "/healthz").status, 200);
  const HttpResponse ready = HttpsRequest(port, "GET", "/readyz");
  ASSERT_EQ(ready.status, 200) << ready.body;
  for (const char* check : {"vault", "audit_log", "access_store", "models"}) {
    EXPECT_TRUE(ready.Json()["checks"][check]["ok"].get<bool>()) << check << ": " << ready.body;
  }
  const HttpResponse openapi = HttpsRequest(port, "GET", "/v1/openapi.json");
  EXPECT_EQ(openapi.status, 200);
  EXPECT_EQ(openapi.body, std::string(OpenApiDocument()));

  const HttpResponse created = HttpsRequest(
      port, "POST", "/v1/principals", Bearer(admin_token_, {{"Content-Type", "application/json"}}),
      R"({"name": "officer:e2e", "role": "officer", "scope": ["*"]})");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string officer = created.Json()["token"].get<std::string>();
  const HttpResponse denied =
      HttpsRequest(port, "GET", "/v1/plates/" + std::string(32, 'a'), Bearer(officer));
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(denied.ErrorCode(), "purpose_required");
  const HttpResponse anonymous = HttpsRequest(port, "GET", "/v1/principals");
  EXPECT_EQ(anonymous.status, 401);
  const HttpResponse metrics = HttpsRequest(port, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("portcullis_requests_total"), std::string::npos);

  EXPECT_EQ(serve.Terminate(), 0) << serve.Log();
  bool saw_create = false, saw_purpose = false, saw_anonymous = false;
  for (const audit::LeafRecord& leaf : AuditLeaves()) {
    if (leaf.action == "http.principal.manage" && leaf.result == "ok" &&
        leaf.principal == "admin:root") {
      saw_create = true;
    }
    if (leaf.action == "http.plate.lookup" && leaf.result == "denied:purpose_required" &&
        leaf.principal == "officer:e2e" && leaf.has_record) {
      saw_purpose = true;
    }
    if (leaf.action == "http.principal.read" && leaf.result == "denied:unauthenticated" &&
        leaf.principal == "anonymous" && leaf.role == "none") {
      saw_anonymous = true;
    }
  }
  EXPECT_TRUE(saw_create);
  EXPECT_TRUE(saw_purpose);
  EXPECT_TRUE(saw_anonymous);
  // Logs are JSON lines naming the route pattern.
  EXPECT_NE(serve.Log().find("\"route\":\"/v1/principals\""), std::string::npos);
}

TEST_F(ServeE2ETest, SigtermWithRequestsInFlightKeepsEveryAcknowledgedWrite) {
  ServeProcess serve(WriteConfig());
  ASSERT_TRUE(serve.started()) << serve.Log();
  const std::uint16_t port = serve.port();
  constexpr int kClients = 6;
  constexpr int kPerClient = 15;
  std::atomic<bool> go{false};
  std::vector<std::future<std::vector<std::pair<std::string, int>>>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::async(std::launch::async, [&, c] {
      while (!go) std::this_thread::yield();
      std::vector<std::pair<std::string, int>> results;
      for (int i = 0; i < kPerClient; ++i) {
        const std::string name = "officer:c" + std::to_string(c) + "-" + std::to_string(i);
        const HttpResponse r =
            HttpsRequest(port, "POST", "/v1/principals",
                         Bearer(admin_token_, {{"Content-Type", "application/json"}}),
                         nlohmann::json{{"name", name}, {"role", "officer"}}.dump());
        results.emplace_back(name, r.status);
      }
      return results;
    }));
  }
  go = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  const int exit_code = serve.Terminate();
  std::set<std::string> acknowledged;
  int refused = 0;
  for (auto& f : clients) {
    for (const auto& [name, status] : f.get()) {
      if (status == 201) {
        acknowledged.insert(name);
      } else {
        EXPECT_TRUE(status == 503 || status == 0) << name << " got " << status;
        ++refused;
      }
    }
  }
  EXPECT_EQ(exit_code, 0) << serve.Log();
  EXPECT_FALSE(acknowledged.empty());
  EXPECT_GT(refused, 0) << "the server stopped only after every request: the test proved nothing";
  std::unique_ptr<policy::AccessStore> store;
  ASSERT_TRUE(policy::OpenAccessStore("sqlite:" + dir_ + "/access.db", {}, &store).ok());
  std::vector<policy::PrincipalInfo> principals;
  ASSERT_TRUE(store->ListPrincipals(&principals).ok());
  std::set<std::string> stored;
  for (const auto& p : principals) stored.insert(p.principal.name);
  for (const std::string& name : acknowledged) {
    EXPECT_TRUE(stored.count(name)) << name << " was acknowledged (201) but is not stored";
  }
}

TEST_F(ServeE2ETest, CheckValidatesTheConfig) {
  const std::string path = WriteConfig();
  testing::RunResult ok = testing::RunCli({"serve", "--config", path, "--check"});
  EXPECT_EQ(ok.exit_code, 0) << ok;
  config_["limits"]["workers"] = -1;
  WriteConfig();
  testing::RunResult bad = testing::RunCli({"serve", "--config", path, "--check"});
  EXPECT_EQ(bad.exit_code, 2) << bad;
  EXPECT_NE(bad.err.find("limits.workers"), std::string::npos) << bad;
  testing::RunResult missing = testing::RunCli({"serve", "--config", dir_ + "/nope.json"});
  EXPECT_EQ(missing.exit_code, 2) << missing;
}

TEST_F(ServeE2ETest, MissingDependencyIsASetupErrorNamingIt) {
  config_["audit"]["keys"] = "no-such-keys";
  testing::RunResult r = testing::RunCli({"serve", "--config", WriteConfig()});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_NE(r.err.find("audit"), std::string::npos) << r;
}

}  // namespace
}  // namespace portcullis::server
