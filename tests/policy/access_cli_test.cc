// `portcullis access ...` through the real binary: the bootstrap, the JSON Lines contract
// (docs/policy.md), exit codes, and that a printed token really authenticates.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "cli_runner.h"
#include "portcullis/access_store.h"

namespace portcullis::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using portcullis::testing::JsonLines;
using portcullis::testing::MakeTempDir;
using portcullis::testing::RunCli;
using portcullis::testing::RunOptions;
using portcullis::testing::RunResult;

class AccessCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    store_ = "sqlite:" + dir_ + "/access.db";
    options_.timeout_s = 60;
  }
  void TearDown() override { fs::remove_all(dir_); }

  RunResult Access(std::vector<std::string> args, bool as_json = true) {
    args.insert(args.begin(), "access");
    args.push_back("--store");
    args.push_back(store_);
    if (as_json) args.push_back("--json");
    return RunCli(args, options_);
  }

  policy::AuthOutcome Auth(const std::string& token, policy::Principal* who) {
    std::unique_ptr<policy::AccessStore> store;
    const Status s = policy::OpenAccessStore(store_, {}, &store);
    EXPECT_TRUE(s.ok()) << s.ToString();
    policy::AuthOutcome outcome = policy::AuthOutcome::kUnknown;
    if (store != nullptr) {
      EXPECT_TRUE(store->Authenticate(token, &outcome, who).ok());
    }
    return outcome;
  }

  std::string dir_;
  std::string store_;
  RunOptions options_;
};

TEST_F(AccessCliTest, InitCreatesTheFirstAdminOnce) {
  RunResult r = Access({"init", "--admin", "admin:root"});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  std::vector<json> lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["command"], "init");
  EXPECT_EQ(lines[0]["name"], "admin:root");
  EXPECT_EQ(lines[0]["role"], "admin");
  EXPECT_EQ(lines[0]["scope"], json::array({"*"}));
  EXPECT_EQ(lines[0]["expires_micros"], 0);
  EXPECT_EQ(lines[0]["revoked"], false);
  EXPECT_TRUE(lines[0]["error"].is_null());
  const std::string token = lines[0]["token"];
  EXPECT_EQ(lines[0]["token_prefix"], token.substr(0, 12));
  policy::Principal who;
  EXPECT_EQ(Auth(token, &who), policy::AuthOutcome::kOk);
  EXPECT_EQ(who.role, policy::Role::kAdmin);

  r = Access({"init", "--admin", "admin:second"});
  EXPECT_EQ(r.exit_code, kExitConflict) << r;
  lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["error_code"], "conflict");
}

TEST_F(AccessCliTest, TextModePrintsOnlyTheTokenOnStdout) {
  const RunResult r = Access({"init", "--admin", "admin:root", "--ttl", "12h"}, false);
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  std::string token = r.out;
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(token.back(), '\n');
  token.pop_back();
  EXPECT_EQ(token.size(), 47u);
  EXPECT_NE(r.err.find("shown only this once"), std::string::npos);
  policy::Principal who;
  EXPECT_EQ(Auth(token, &who), policy::AuthOutcome::kOk);
}

TEST_F(AccessCliTest, PrincipalsAddListRotateRevoke) {
  ASSERT_EQ(Access({"init", "--admin", "admin:root"}).exit_code, kExitOk);
  RunResult r = Access({"principal", "add", "--name", "vendor:acme", "--role", "vendor", "--scope",
                        "7", "--scope", "8", "--ttl", "30d"});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  json added = JsonLines(r).at(0);
  EXPECT_EQ(added["command"], "principal add");
  EXPECT_EQ(added["scope"], json::array({"7", "8"}));
  EXPECT_GT(added["expires_micros"].get<std::int64_t>(),
            added["created_micros"].get<std::int64_t>());
  EXPECT_EQ(
      added["expires_micros"].get<std::int64_t>() - added["created_micros"].get<std::int64_t>(),
      30LL * 86400 * 1000 * 1000);
  const std::string token = added["token"];
  policy::Principal who;
  EXPECT_EQ(Auth(token, &who), policy::AuthOutcome::kOk);
  EXPECT_EQ(who.role, policy::Role::kVendor);

  r = Access({"principal", "add", "--name", "vendor:acme", "--role", "vendor"});
  EXPECT_EQ(r.exit_code, kExitConflict) << r;

  r = Access({"principal", "list"});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  EXPECT_EQ(r.out.find(token), std::string::npos) << "a listing must never print a token";
  std::vector<json> lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["name"], "admin:root");
  EXPECT_EQ(lines[1]["name"], "vendor:acme");
  EXPECT_EQ(lines[1]["command"], "principal list");
  EXPECT_FALSE(lines[1].contains("token"));

  r = Access({"principal", "rotate", "--name", "vendor:acme"});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  const std::string fresh = JsonLines(r).at(0)["token"];
  EXPECT_EQ(JsonLines(r).at(0)["expires_micros"], 0);
  EXPECT_EQ(Auth(token, &who), policy::AuthOutcome::kUnknown);
  EXPECT_EQ(Auth(fresh, &who), policy::AuthOutcome::kOk);

  r = Access({"principal", "revoke", "--name", "vendor:acme"});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  EXPECT_EQ(JsonLines(r).at(0)["revoked"], true);
  EXPECT_EQ(Auth(fresh, &who), policy::AuthOutcome::kRevoked);
  r = Access({"principal", "rotate", "--name", "vendor:acme"});
  EXPECT_EQ(r.exit_code, kExitConflict) << r;
  r = Access({"principal", "revoke", "--name", "vendor:nobody"});
  EXPECT_EQ(r.exit_code, kExitNotFound) << r;
  EXPECT_EQ(JsonLines(r).at(0)["error_code"], "not_found");
  r = Access({"principal", "rotate", "--name", "vendor:nobody"});
  EXPECT_EQ(r.exit_code, kExitNotFound) << r;
}

TEST_F(AccessCliTest, BadArgumentsAreUsageErrors) {
  RunResult r = Access({"principal", "add", "--name", "x:1", "--role", "janitor"});
  EXPECT_EQ(r.exit_code, kExitUsage) << r;
  EXPECT_EQ(JsonLines(r).at(0)["error_code"], "invalid_argument");
  for (const char* ttl : {"30", "d", "-5d", "1.5h", "999999999d", "30w"}) {
    r = Access({"principal", "add", "--name", "x:1", "--role", "officer", "--ttl", ttl});
    EXPECT_EQ(r.exit_code, kExitUsage) << ttl << "\n" << r;
  }
  r = Access({"principal", "add", "--name", "Bad Name", "--role", "officer"});
  EXPECT_EQ(r.exit_code, kExitUsage) << r;
  r = Access({"principal", "add", "--name", "lane:1", "--role", "lane_device", "--scope", "../x"});
  EXPECT_EQ(r.exit_code, kExitUsage) << r;
  r = Access({"fingerprint", "not-a-hash"});
  EXPECT_EQ(r.exit_code, kExitUsage) << r;
  r = Access({"export", "list", "--state", "lost"});
  EXPECT_EQ(r.exit_code, kExitUsage) << r;
  r = RunCli({"access", "principal", "list"}, options_);  // no --store
  EXPECT_EQ(r.exit_code, kExitUsage) << r;
  r = RunCli({"access", "principal", "list", "--store", "mysql://x", "--json"}, options_);
  EXPECT_EQ(r.exit_code, kExitUsage) << r;
}

TEST_F(AccessCliTest, AStoreThatCannotBeOpened) {
  RunResult r = RunCli(
      {"access", "principal", "list", "--store", "sqlite:" + dir_ + "/no/such/dir/a.db", "--json"},
      options_);
  EXPECT_EQ(r.exit_code, kExitUnreadable) << r;
  EXPECT_EQ(JsonLines(r).at(0)["error_code"], "unreadable");
  ASSERT_TRUE(portcullis::testing::WriteBytes(dir_ + "/garbage.db", std::string(8192, 'x')));
  r = RunCli({"access", "principal", "list", "--store", "sqlite:" + dir_ + "/garbage.db"},
             options_);
  EXPECT_EQ(r.exit_code, kExitCorrupt) << r;
}

TEST_F(AccessCliTest, TicketsExportsAndFingerprints) {
  std::string sha;
  std::string export_id;
  {
    std::unique_ptr<policy::AccessStore> store;
    ASSERT_TRUE(policy::OpenAccessStore(store_, {}, &store).ok());
    std::string token;
    ASSERT_TRUE(
        store->CreatePrincipal({"vendor:acme", policy::Role::kVendor, {"7"}, 0}, &token).ok());
    policy::TicketInfo ticket;
    ASSERT_TRUE(store
                    ->GrantTicket("supervisor:ann",
                                  {"vendor:acme", "7", 5, 3600LL * 1000 * 1000, "focus"}, &ticket)
                    .ok());
    policy::ExportInfo e;
    ASSERT_TRUE(
        store->RequestExport("supervisor:ann", {"7", {"plate_read"}, 0, 1000, "court order"}, &e)
            .ok());
    export_id = e.id;
    policy::ExportInfo pending;
    ASSERT_TRUE(
        store->RequestExport("supervisor:ann", {"", {"plate_read"}, 0, 1000, "audit"}, &pending)
            .ok());
    policy::ApproveOutcome approved = policy::ApproveOutcome::kUnknown;
    ASSERT_TRUE(store->ApproveExport(e.id, "supervisor:bob", 3600LL * 1000 * 1000, &approved).ok());
    ASSERT_EQ(approved, policy::ApproveOutcome::kOk);
    sha = std::string(64, 'a');
    policy::DownloadOutcome downloaded = policy::DownloadOutcome::kUnknown;
    ASSERT_TRUE(store->RecordDownload(e.id, "supervisor:ann", {{"r1", sha}}, &downloaded).ok());
    ASSERT_EQ(downloaded, policy::DownloadOutcome::kOk);
  }
  RunResult r = Access({"ticket", "list"});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  std::vector<json> lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["command"], "ticket list");
  EXPECT_EQ(lines[0]["vendor"], "vendor:acme");
  EXPECT_EQ(lines[0]["max_uses"], 5);
  EXPECT_EQ(lines[0]["used"], 0);

  r = Access({"export", "list"});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  EXPECT_EQ(JsonLines(r).size(), 2u);
  r = Access({"export", "list", "--state", "downloaded"});
  lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["id"], export_id);
  EXPECT_EQ(lines[0]["approved_by"], "supervisor:bob");
  EXPECT_EQ(lines[0]["record_types"], json::array({"plate_read"}));

  r = Access({"fingerprint", sha});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["sha256"], sha);
  ASSERT_EQ(lines[0]["exports"].size(), 1u);
  EXPECT_EQ(lines[0]["exports"][0]["id"], export_id);
  EXPECT_EQ(lines[0]["exports"][0]["requested_by"], "supervisor:ann");
  r = Access({"fingerprint", std::string(64, 'b')});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  EXPECT_TRUE(JsonLines(r).at(0)["exports"].empty());
}

}  // namespace
}  // namespace portcullis::cli
