// Two real `portcullis serve` processes on loopback against one PostgreSQL database (vault store,
// access store and audit log all there) and one keyring file: what docs/deployment.md promises.
//   * a plate read posted through node n1 is read back through node n2;
//   * the retention purge of a period runs on exactly one node (AccessStore::ClaimJobRun);
//   * both nodes append to one audit log: every tree head verifies and is consistent with the
//     next, the decisions of both nodes are in it, and its export passes the offline verifier.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <pqxx/pqxx>

#include "cli_runner.h"
#include "portcullis/access_store.h"
#include "portcullis/audit.h"
#include "portcullis/plate_synth.h"
#include "server_test_util.h"

namespace portcullis::server {
namespace {

using testing::Bearer;
using testing::HttpResponse;
using testing::HttpsRequest;
using testing::ServeProcess;

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

std::string PlateJpeg(const std::string& text) {
  plate::SynthSpec spec;
  spec.text = text;
  spec.style = "us";
  spec.image_width = 1280;
  spec.image_height = 720;
  spec.plate_width = 240;
  spec.noise_sigma = 2;
  spec.seed = 11;
  plate::SynthTruth truth;
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(".jpg", plate::RenderVehicleScene(spec, &truth), bytes));
  return {bytes.begin(), bytes.end()};
}

class MultiNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    base_uri_ = PostgresBaseUri(&error);
    ASSERT_FALSE(base_uri_.empty()) << error;
    dir_ = testing::MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    // A schema of its own: the nodes' three stores share it, and nothing else sees it.
    schema_ = "multinode_" + std::to_string(::getpid());
    try {
      pqxx::connection conn(base_uri_);
      pqxx::nontransaction txn(conn);
      txn.exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
      txn.exec("CREATE SCHEMA " + schema_);
    } catch (const std::exception& e) {
      FAIL() << "PostgreSQL: " << e.what();
    }
    uri_ = base_uri_ + (base_uri_.find('?') == std::string::npos ? "?" : "&") +
           "options=-csearch_path%3D" + schema_;

    ASSERT_TRUE(testing::MakeSelfSigned(dir_, "server", "localhost", &cert_));
    ASSERT_TRUE(audit::GenerateKeys(dir_ + "/audit-keys").ok());
    ASSERT_TRUE(testing::WriteBytes(dir_ + "/vault.secret", "two nodes, one keyring\n"));
    std::unique_ptr<policy::AccessStore> store;
    const Status s = policy::OpenAccessStore(uri_, {}, &store);
    ASSERT_TRUE(s.ok()) << s.ToString();
    admin_token_ = Create(*store, "admin:ops", policy::Role::kAdmin, {"*"});
    lane_token_ = Create(*store, "lane:7", policy::Role::kLaneDevice, {"7"});
    officer_token_ = Create(*store, "officer:1234", policy::Role::kOfficer, {"*"});
    auditor_token_ = Create(*store, "auditor:ext", policy::Role::kAuditor, {"*"});
  }

  void TearDown() override {
    try {
      pqxx::connection conn(base_uri_);
      pqxx::nontransaction txn(conn);
      txn.exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    } catch (const std::exception&) {
      // The fixture's server goes away anyway.
    }
  }

  static std::string Create(policy::AccessStore& store, const std::string& name, policy::Role role,
                            std::vector<std::string> scope) {
    policy::NewPrincipal p;
    p.name = name;
    p.role = role;
    p.scope = std::move(scope);
    std::string token;
    const Status s = store.CreatePrincipal(p, &token);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return token;
  }

  // One config per node; everything shared but the name. Only n1 may create the keyring and
  // the traveller key (it starts first); n2 must find them.
  std::string WriteConfig(const std::string& node, bool first) {
    const nlohmann::json config = {
        {"node", node},
        {"listen", "127.0.0.1:0"},
        {"tls", {{"cert", cert_.cert}, {"key", cert_.key}}},
        {"vault",
         {{"store", uri_},
          {"keys", "keyring:" + dir_ + "/vault.keyring"},
          {"secret_file", dir_ + "/vault.secret"},
          {"create_keys", first}}},
        {"audit", {{"log", uri_}, {"keys", dir_ + "/audit-keys"}}},
        {"access",
         {{"store", uri_}, {"policy", std::string(PORTCULLIS_SOURCE_DIR) + "/data/policy.json"}}},
        {"gates", {{"traveller_key", dir_ + "/traveller.key"}, {"create_key", first}}},
        {"limits", {{"workers", 1}, {"queue", 4}}},
        {"models", {{"plates", true}, {"faces", false}}},
        // A week: the test never straddles two purge periods, so exactly one purge is due.
        {"jobs", {{"purge_period_s", 604800}, {"tree_head_period_s", 10}}},
    };
    const std::string path = dir_ + "/" + node + ".json";
    EXPECT_TRUE(testing::WriteBytes(path, config.dump(2)));
    return path;
  }

  std::unique_ptr<audit::TransparencyLog> OpenLog() {
    std::unique_ptr<audit::TransparencyLog> log;
    const Status s = audit::OpenTransparencyLog(uri_, dir_ + "/audit-keys", {}, &log);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return log;
  }

  std::vector<audit::LeafRecord> Leaves(const audit::TransparencyLog& log) {
    std::vector<audit::LeafRecord> out;
    std::uint64_t size = 0;
    EXPECT_TRUE(log.Size(&size).ok());
    std::vector<std::string> leaves;
    EXPECT_TRUE(log.ReadLeaves(0, size, &leaves).ok());
    for (const std::string& leaf : leaves) {
      audit::LeafRecord r;
      EXPECT_TRUE(audit::DecodeLeaf(leaf, &r).ok());
      out.push_back(r);
    }
    return out;
  }

  std::string base_uri_, uri_, schema_, dir_;
  testing::CertFiles cert_;
  std::string admin_token_, lane_token_, officer_token_, auditor_token_;
};

TEST_F(MultiNodeTest, TwoNodesShareRecordsJobsAndOneAuditLog) {
  ServeProcess n1(WriteConfig("n1", true), 120);
  ASSERT_TRUE(n1.started()) << n1.Log();
  ServeProcess n2(WriteConfig("n2", false), 120);
  ASSERT_TRUE(n2.started()) << n2.Log();

  // A plate read through n1 ...
  const HttpResponse posted =
      HttpsRequest(n1.port(), "POST", "/v1/lanes/7/reads",
                   Bearer(lane_token_, {{"Content-Type", "image/jpeg"}}), PlateJpeg("7KDT482"));
  ASSERT_EQ(posted.status, 200) << posted.body;
  ASSERT_FALSE(posted.Json()["reads"].empty()) << posted.body;
  const std::string id = posted.Json()["reads"][0]["id"].get<std::string>();
  // ... read back through n2.
  const HttpResponse got =
      HttpsRequest(n2.port(), "GET", "/v1/plates/" + id,
                   Bearer(officer_token_, {{"X-Purpose", "secondary inspection, lane 7"}}));
  ASSERT_EQ(got.status, 200) << got.body;
  const std::string text = posted.Json()["reads"][0]["text"].get<std::string>();
  EXPECT_FALSE(text.empty());
  EXPECT_NE(got.body.find("\"" + text + "\""), std::string::npos) << got.body;

  // Both nodes answer for one log: the same head (or a later one) from either.
  const HttpResponse head1 =
      HttpsRequest(n1.port(), "GET", "/v1/audit/tree-head", Bearer(auditor_token_));
  const HttpResponse head2 =
      HttpsRequest(n2.port(), "GET", "/v1/audit/tree-head", Bearer(auditor_token_));
  ASSERT_EQ(head1.status, 200) << head1.body;
  ASSERT_EQ(head2.status, 200) << head2.body;
  EXPECT_EQ(head1.Json()["public_key"], head2.Json()["public_key"]);
  EXPECT_GE(head2.Json()["tree_size"].get<std::uint64_t>(),
            head1.Json()["tree_size"].get<std::uint64_t>());

  // The purge of this period: wait until one node has run it, then give the other time to
  // have tried (the jobs look at the clock every second).
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  auto purges = [&] {
    std::vector<audit::LeafRecord> out;
    for (const audit::LeafRecord& r : Leaves(*log)) {
      if (r.action == "vault.purge") out.push_back(r);
    }
    return out;
  };
  for (int i = 0; i < 100 && purges().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const std::vector<audit::LeafRecord> ran = purges();
  ASSERT_EQ(ran.size(), 1U) << "the purge must run exactly once across the two nodes";
  EXPECT_TRUE(ran[0].principal == "system:n1" || ran[0].principal == "system:n2")
      << ran[0].principal;
  EXPECT_EQ(ran[0].role, "admin");
  EXPECT_EQ(ran[0].purpose, "scheduled retention purge");

  EXPECT_EQ(n1.Terminate(), 0) << n1.Log();
  EXPECT_EQ(n2.Terminate(), 0) << n2.Log();

  // One log: both nodes' decisions are in it; every head verifies and is consistent with the
  // next; the export passes the offline verifier with the public key alone.
  bool from_n1 = false;
  bool from_n2 = false;
  for (const audit::LeafRecord& r : Leaves(*log)) {
    if (r.action == "http.plate.read" && r.principal == "lane:7" && r.result == "ok")
      from_n1 = true;
    if (r.action == "http.plate.lookup" && r.principal == "officer:1234" && r.result == "ok") {
      from_n2 = true;
    }
  }
  EXPECT_TRUE(from_n1);
  EXPECT_TRUE(from_n2);
  std::vector<audit::SignedTreeHead> heads;
  ASSERT_TRUE(log->TreeHeads(&heads).ok());
  ASSERT_GE(heads.size(), 3U);
  for (std::size_t i = 0; i < heads.size(); ++i) {
    EXPECT_TRUE(audit::VerifyTreeHeadSignature(heads[i], log->public_key()).ok()) << i;
    if (i == 0) continue;
    audit::ConsistencyProof proof;
    ASSERT_TRUE(log->ProveConsistency(heads[i - 1].tree_size, heads[i].tree_size, &proof).ok());
    EXPECT_TRUE(audit::VerifyConsistency(proof, heads[i - 1].root_hash, heads[i].root_hash).ok())
        << "heads " << i - 1 << " -> " << i;
  }
  ASSERT_TRUE(audit::ExportLog(*log, dir_ + "/export").ok());
  audit::VerifyReport report;
  const Status verified = audit::VerifyLog(dir_ + "/export", log->public_key(), {}, &report);
  EXPECT_TRUE(verified.ok()) << report.problem;
  EXPECT_EQ(report.sth_count, heads.size());
}

}  // namespace
}  // namespace portcullis::server
