// The periodic jobs on two nodes sharing one vault, one audit log and one set of job claims: each
// period's purge and tree-head publication run on exactly one node, the purge runs as
// "system:<node>" and shreds what expired, nothing runs twice in a period, a failed claim is
// retried, and the clock is a fake one the test moves (no sleeping).
#include "server/purge_job.h"

#include <stdlib.h>  // mkdtemp

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "portcullis/audit.h"
#include "portcullis/env.h"
#include "portcullis/vault.h"

namespace portcullis::server {
namespace {

constexpr std::int64_t kHour = 3600LL * 1000 * 1000;
// 2026-11-27 00:00:00 UTC.
constexpr std::int64_t kStart = 1795737600LL * 1000 * 1000;

class ClockEnv : public Env {
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
  std::int64_t NowMicros() override { return now; }
  std::int64_t now = kStart;
};

// ClaimJobRun's contract in memory: the first claim of (job, period) wins. Can be told to fail
// (the database is down).
class Claims {
 public:
  ClaimJobFn Fn() {
    return [this](const std::string& job, std::int64_t period, const std::string& node,
                  bool* claimed) {
      std::lock_guard<std::mutex> lock(mu_);
      if (down) return Status::IOError("access store unreachable");
      auto [it, inserted] = winners_.emplace(std::make_pair(job, period), node);
      *claimed = inserted;
      return Status::Ok();
    };
  }
  std::string Winner(const std::string& job, std::int64_t period) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = winners_.find({job, period});
    return it == winners_.end() ? "" : it->second;
  }
  bool down = false;

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, std::int64_t>, std::string> winners_;
};

class PeriodicJobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "portcullis_jobs_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    ASSERT_TRUE(audit::GenerateKeys(dir_ + "/audit-keys").ok());
    audit::AuditLogOptions log_options;
    log_options.env = &env_;
    ASSERT_TRUE(
        audit::OpenTransparencyLog(dir_ + "/audit", dir_ + "/audit-keys", log_options, &log_).ok());
    vault::VaultOptions options;
    options.store_uri = "sqlite:" + dir_ + "/vault.db";
    options.key_uri = "keyring:" + dir_ + "/keyring";
    options.key_secret = "jobs test";
    options.key_options.create_if_missing = true;
    options.key_options.keyring_opslimit = 1;
    options.key_options.keyring_memlimit = 8192;
    options.retention_path = std::string(PORTCULLIS_SOURCE_DIR) + "/data/retention.json";
    options.audit = log_.get();
    options.env = &env_;
    const Status s = vault::Vault::Open(options, &vault_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void TearDown() override {
    vault_.reset();
    log_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string PutCitizenCapture() {
    vault::NewRecord record;
    record.type = vault::RecordType::kKeptCapture;
    record.subject = vault::SubjectCategory::kCitizen;
    record.content_type = "image/jpeg";
    record.body = "face";
    vault::RecordMeta meta;
    const vault::AccessContext ctx{"gate:1", "gate_device", "match"};
    EXPECT_TRUE(vault_->Put(ctx, record, &meta).ok());
    return meta.id;
  }

  std::unique_ptr<PeriodicJobs> Node(const std::string& name) {
    PeriodicJobsOptions options;
    options.purge_period_micros = kHour;
    options.tree_head_period_micros = kHour / 4;
    return std::make_unique<PeriodicJobs>(&env_, vault_.get(), log_.get(), claims_.Fn(), name,
                                          options);
  }

  std::string dir_;
  ClockEnv env_;
  Claims claims_;
  std::unique_ptr<audit::TransparencyLog> log_;
  std::unique_ptr<vault::Vault> vault_;
};

TEST_F(PeriodicJobsTest, EachPeriodRunsOnceAcrossNodes) {
  const std::string id = PutCitizenCapture();  // 12 h retention, 1 h bucket: shredded at 13 h
  auto n1 = Node("n1");
  auto n2 = Node("n2");

  JobPass p1;
  JobPass p2;
  ASSERT_TRUE(n1->RunDue(&p1).ok());
  ASSERT_TRUE(n2->RunDue(&p2).ok());
  EXPECT_TRUE(p1.purge_claimed);
  EXPECT_FALSE(p2.purge_claimed);
  EXPECT_TRUE(p1.purge_ran);
  EXPECT_TRUE(p1.purge.keks.empty());  // nothing has expired yet
  EXPECT_TRUE(p1.head_claimed);
  EXPECT_FALSE(p2.head_claimed);

  // Same period again: nobody claims anything (and nobody asks the store again).
  ASSERT_TRUE(n1->RunDue(&p1).ok());
  EXPECT_EQ(p1.purge_period, -1);
  EXPECT_EQ(p1.head_period, -1);

  // 13 h later: n2 gets there first this time and shreds the capture's bucket, as system:n2.
  env_.now = kStart + 13 * kHour;
  ASSERT_TRUE(n2->RunDue(&p2).ok());
  ASSERT_TRUE(n1->RunDue(&p1).ok());
  EXPECT_TRUE(p2.purge_claimed);
  EXPECT_TRUE(p2.purge_ran);
  EXPECT_FALSE(p1.purge_claimed);
  EXPECT_EQ(p2.purge.records, std::vector<std::string>{id});
  EXPECT_EQ(p2.purge.keks, std::vector<std::string>{"kek/face-citizen/2026112700"});
  EXPECT_EQ(claims_.Winner("retention.purge", kStart + 13 * kHour), "n2");
  EXPECT_EQ(claims_.Winner("retention.purge", kStart), "n1");

  // The purge is in the audit log under the node's system principal, with the stated purpose.
  std::uint64_t size = 0;
  ASSERT_TRUE(log_->Size(&size).ok());
  std::vector<std::string> leaves;
  ASSERT_TRUE(log_->ReadLeaves(0, size, &leaves).ok());
  bool found = false;
  for (const std::string& leaf : leaves) {
    audit::LeafRecord r;
    ASSERT_TRUE(audit::DecodeLeaf(leaf, &r).ok());
    if (r.principal == "system:n2" && r.action.find("purge") != std::string::npos) {
      found = true;
      EXPECT_EQ(r.role, "admin");
      EXPECT_EQ(r.purpose, "scheduled retention purge");
    }
  }
  EXPECT_TRUE(found);

  // Tree heads: one published per quarter hour by whichever node claimed it.
  std::vector<audit::SignedTreeHead> heads;
  ASSERT_TRUE(log_->TreeHeads(&heads).ok());
  EXPECT_EQ(heads.back().timestamp_micros, kStart + 13 * kHour);
  EXPECT_NE(claims_.Winner("audit.tree_head", kStart + 13 * kHour), "");
}

TEST_F(PeriodicJobsTest, AFailedClaimIsRetriedOnTheNextPass) {
  auto n1 = Node("n1");
  claims_.down = true;
  JobPass pass;
  const Status s = n1->RunDue(&pass);
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_FALSE(pass.purge_claimed);
  EXPECT_EQ(n1->last_error().code(), Status::Code::kIOError);
  claims_.down = false;
  ASSERT_TRUE(n1->RunDue(&pass).ok());
  EXPECT_TRUE(pass.purge_claimed);
  EXPECT_TRUE(pass.head_claimed);
  EXPECT_TRUE(n1->last_error().ok());
}

TEST_F(PeriodicJobsTest, BackgroundThreadRunsAndStops) {
  PeriodicJobsOptions options;
  options.purge_period_micros = kHour;
  options.tree_head_period_micros = 0;  // off
  options.poll_interval = std::chrono::milliseconds(5);
  PeriodicJobs jobs(&env_, vault_.get(), log_.get(), claims_.Fn(), "n1", options);
  jobs.Start();
  jobs.Start();  // idempotent
  for (int i = 0; i < 400 && claims_.Winner("retention.purge", kStart).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  jobs.Stop();
  jobs.Stop();
  EXPECT_EQ(claims_.Winner("retention.purge", kStart), "n1");
  EXPECT_EQ(claims_.Winner("audit.tree_head", kStart), "");
}

}  // namespace
}  // namespace portcullis::server
