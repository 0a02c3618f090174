// The service side of maintenance mode: POST /v1/lanes/{lane}/maintenance signs a grant the
// device accepts, refuses bad bodies and devices of other lanes, and writes the session to the
// audit log. Handler-level (the route table's handler, called directly); the HTTP path with
// policy and X-Purpose is covered by the end-to-end test.
#include <gtest/gtest.h>

#include "agent_util.h"
#include "lane/maintenance_grant.h"
#include "portcullis/access_store.h"
#include "server/api.h"
#include "server/service.h"
#include "server_test_util.h"

namespace portcullis::lane {
namespace {

using nlohmann::json;

constexpr std::int64_t kStartSeconds = 1795737600;  // 2026-11-27 00:00:00 UTC

class FixedClockEnv : public Env {
 public:
  Status ReadFile(const std::string& p, std::size_t max, std::string* c) override {
    return Env::Default()->ReadFile(p, max, c);
  }
  Status WriteFileAtomic(const std::string& p, const std::string& c) override {
    return Env::Default()->WriteFileAtomic(p, c);
  }
  Status ListDirectory(const std::string& p, std::vector<std::string>* n) override {
    return Env::Default()->ListDirectory(p, n);
  }
  FileKind KindOf(const std::string& p) override { return Env::Default()->KindOf(p); }
  std::int64_t NowMicros() override { return kStartSeconds * 1'000'000; }
};

class MaintenanceRouteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::MakeAgentFixture(&f_));
    policy::AccessStoreOptions options;
    options.env = &env_;
    ASSERT_TRUE(policy::OpenAccessStore("sqlite:" + f_.dir + "/access.db", options, &store_).ok());
    std::string token;
    ASSERT_TRUE(
        store_->CreatePrincipal({"lane:7-a", policy::Role::kLaneDevice, {"7"}, 0}, &token).ok());
    ASSERT_TRUE(
        store_->CreatePrincipal({"lane:8-a", policy::Role::kLaneDevice, {"8"}, 0}, &token).ok());
    ASSERT_TRUE(
        store_->CreatePrincipal({"gate:3", policy::Role::kGateDevice, {"7"}, 0}, &token).ok());
    ctx_.env = &env_;
    ctx_.access = store_.get();
    ctx_.audit = &audit_;
    ctx_.maintenance_grant_key = &f_.grant_secret;
    for (server::Route& r : server::BuildRouteTable(ctx_)) {
      if (r.pattern == "/v1/lanes/{lane}/maintenance") route_ = std::move(r);
    }
    ASSERT_TRUE(route_.handler);
  }

  server::ApiResponse Call(const std::string& body, const std::string& lane = "7") {
    server::ApiRequest request;
    request.method = "POST";
    request.path = "/v1/lanes/" + lane + "/maintenance";
    request.path_params["lane"] = lane;
    request.content_type = "application/json";
    request.body = body;
    request.principal = {"supervisor:ana", policy::Role::kSupervisor, {}};
    request.purpose = "ticket INC-42: camera 2 out of focus";
    return route_.handler(request);
  }
  static std::string Code(const server::ApiResponse& r) {
    const json j = json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
  }

  testing::AgentFixture f_;
  FixedClockEnv env_;
  std::unique_ptr<policy::AccessStore> store_;
  portcullis::testing::FakeAuditLog audit_;
  server::ServiceContext ctx_;
  server::Route route_;
};

TEST_F(MaintenanceRouteTest, RouteIsSupervisorActionWithLaneParameter) {
  EXPECT_EQ(route_.method, "POST");
  EXPECT_EQ(route_.action, "maintenance.open");
  EXPECT_EQ(route_.category, "device_health");
  EXPECT_EQ(route_.lane_param, "lane");
}

TEST_F(MaintenanceRouteTest, OpensSessionWithGrantTheDeviceAccepts) {
  const server::ApiResponse r =
      Call(R"j({"device":"lane:7-a","technician":"J. Smith (Acme ALPR)","minutes":60})j");
  ASSERT_EQ(r.status, 201) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["device"], "lane:7-a");
  EXPECT_EQ(j["technician"], "J. Smith (Acme ALPR)");
  EXPECT_EQ(j["not_before"], "2026-11-27T00:00:00Z");
  EXPECT_EQ(j["expires"], "2026-11-27T01:00:00Z");
  MaintenanceGrant grant;
  ASSERT_EQ(VerifyMaintenanceGrant(j["grant"].get<std::string>(), f_.grant_public, "lane:7-a",
                                   kStartSeconds + 5, 0, &grant),
            GrantCheck::kOk);
  EXPECT_EQ(grant.session_id, j["session_id"]);
  EXPECT_EQ(grant.lane, "7");
  EXPECT_EQ(grant.expires_s, kStartSeconds + 3600);
  // Not for another device, not after an hour.
  EXPECT_EQ(VerifyMaintenanceGrant(j["grant"].get<std::string>(), f_.grant_public, "lane:8-a",
                                   kStartSeconds + 5, 0, nullptr),
            GrantCheck::kWrongDevice);
  EXPECT_EQ(VerifyMaintenanceGrant(j["grant"].get<std::string>(), f_.grant_public, "lane:7-a",
                                   kStartSeconds + 3600, 0, nullptr),
            GrantCheck::kExpired);

  const auto sessions = audit_.WithAction("maintenance.session");
  ASSERT_EQ(sessions.size(), 1U);
  EXPECT_EQ(sessions[0].principal, "supervisor:ana");
  EXPECT_EQ(sessions[0].record_id, "maintenance:" + j["session_id"].get<std::string>());
  const std::string& detail = sessions[0].purpose;
  EXPECT_EQ(detail.rfind("ticket INC-42: camera 2 out of focus | ", 0), 0U) << detail;
  EXPECT_NE(detail.find(j["session_id"].get<std::string>()), std::string::npos) << detail;
  EXPECT_NE(detail.find("technician \"J. Smith (Acme ALPR)\""), std::string::npos) << detail;
  EXPECT_NE(detail.find("device lane:7-a"), std::string::npos) << detail;
  EXPECT_NE(detail.find("until 2026-11-27T01:00:00Z"), std::string::npos) << detail;
}

TEST_F(MaintenanceRouteTest, RefusesBadBodies) {
  for (const char* body : {
           R"j(not json)j",
           R"j([1])j",
           R"j({"technician":"x","minutes":5})j",
           R"j({"device":"Lane 7","technician":"x","minutes":5})j",
           R"j({"device":"lane:7-a","minutes":5})j",
           R"j({"device":"lane:7-a","technician":"","minutes":5})j",
           R"j({"device":"lane:7-a","technician":"a\nb","minutes":5})j",
           R"j({"device":"lane:7-a","technician":"x"})j",
           R"j({"device":"lane:7-a","technician":"x","minutes":0})j",
           R"j({"device":"lane:7-a","technician":"x","minutes":241})j",
           R"j({"device":"lane:7-a","technician":"x","minutes":"60"})j",
           R"j({"device":"lane:7-a","technician":"x","minutes":5,"export":true})j",
       }) {
    const server::ApiResponse r = Call(body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
  }
  EXPECT_TRUE(audit_.WithAction("maintenance.session").empty());
}

TEST_F(MaintenanceRouteTest, RefusesDevicesNotOfThisLane) {
  EXPECT_EQ(Code(Call(R"j({"device":"lane:9-z","technician":"x","minutes":5})j")),
            "device_not_found");
  EXPECT_EQ(Code(Call(R"j({"device":"lane:8-a","technician":"x","minutes":5})j")),
            "device_not_in_lane");
  EXPECT_EQ(Code(Call(R"j({"device":"gate:3","technician":"x","minutes":5})j")),
            "device_not_in_lane");
  EXPECT_TRUE(audit_.WithAction("maintenance.session").empty());
}

TEST_F(MaintenanceRouteTest, NoKeyOrNoAuditMeansNoSession) {
  audit_.set_fail(true);
  const server::ApiResponse r = Call(R"j({"device":"lane:7-a","technician":"x","minutes":5})j");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body.find("grant\""), std::string::npos);  // no grant handed out unaudited
  audit_.set_fail(false);
  ctx_.maintenance_grant_key = nullptr;
  EXPECT_EQ(Code(Call(R"j({"device":"lane:7-a","technician":"x","minutes":5})j")),
            "maintenance_not_configured");
}

}  // namespace
}  // namespace portcullis::lane
