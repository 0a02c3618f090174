// TransparencyLog, the same tests against both backends (the file log and the PostgreSQL log):
// heads, proofs against the reference tree, leaves, bad arguments, concurrent appends, export to
// the file format checked by the offline verifier. Then what only the PostgreSQL log has: several
// processes appending to one log, an append-only schema, tampering in the database caught by an
// auditor who trusts only the export and the public key.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "audit/tree.h"
#include "audit_test_util.h"
#include "pg_test_util.h"

namespace portcullis::audit {
namespace {

using testing::MakeEvent;
using testing::MakeEvents;
using testing::ScratchSchema;
using testing::TempDir;

enum class Backend { kFile, kPostgres };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kFile ? "File" : "Postgres";
}

// Every head verifies with the key, sizes and times never go back, and each is consistent with
// the next (a proof from the log itself, checked with the RFC 9162 verifier).
void ExpectHeadsChainVerifies(const TransparencyLog& log,
                              const std::vector<SignedTreeHead>& heads) {
  ASSERT_FALSE(heads.empty());
  for (std::size_t i = 0; i < heads.size(); ++i) {
    EXPECT_TRUE(VerifyTreeHeadSignature(heads[i], log.public_key()).ok()) << "head " << i;
    if (i == 0) continue;
    ASSERT_GE(heads[i].tree_size, heads[i - 1].tree_size) << "head " << i;
    ASSERT_GE(heads[i].timestamp_micros, heads[i - 1].timestamp_micros) << "head " << i;
    ConsistencyProof proof;
    ASSERT_TRUE(log.ProveConsistency(heads[i - 1].tree_size, heads[i].tree_size, &proof).ok());
    EXPECT_TRUE(VerifyConsistency(proof, heads[i - 1].root_hash, heads[i].root_hash).ok())
        << "heads " << i - 1 << " -> " << i;
  }
}

class TransparencyLogTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    key_dir_ = tmp_.Sub("keys");
    ASSERT_TRUE(GenerateKeys(key_dir_).ok());
    ASSERT_TRUE(LoadLogKeys(key_dir_, &keys_).ok());
    if (GetParam() == Backend::kFile) {
      uri_ = "file:" + tmp_.Sub("log");
    } else {
      pg_ = std::make_unique<ScratchSchema>();
      ASSERT_TRUE(pg_->error().empty()) << pg_->error();
      uri_ = pg_->uri();
    }
  }

  std::unique_ptr<TransparencyLog> Open(const AuditLogOptions& options = {}) {
    std::unique_ptr<TransparencyLog> log;
    const Status s = OpenTransparencyLog(uri_, key_dir_, options, &log);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return log;
  }

  std::string ExpectedLeaf(std::uint64_t i) const {
    std::string leaf;
    EXPECT_TRUE(EncodeLeaf(MakeEvent(i), keys_.id_key, &leaf).ok());
    return leaf;
  }

  TempDir tmp_;
  std::string key_dir_, uri_;
  LogKeys keys_;
  std::unique_ptr<ScratchSchema> pg_;
};

TEST_P(TransparencyLogTest, ANewLogHasASignedEmptyHead) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  std::uint64_t size = 99;
  ASSERT_TRUE(log->Size(&size).ok());
  EXPECT_EQ(size, 0U);
  SignedTreeHead sth;
  ASSERT_TRUE(log->LatestTreeHead(&sth).ok());
  EXPECT_EQ(sth.tree_size, 0U);
  EXPECT_EQ(sth.root_hash, EmptyTreeHash());
  EXPECT_EQ(log->public_key(), keys_.public_key());
  EXPECT_TRUE(VerifyTreeHeadSignature(sth, log->public_key()).ok());
  std::vector<std::string> leaves{"stale"};
  ASSERT_TRUE(log->ReadLeaves(0, 0, &leaves).ok());
  EXPECT_TRUE(leaves.empty());
}

TEST_P(TransparencyLogTest, LeavesRootsAndProofsMatchTheReferenceAcrossReopen) {
  const std::vector<std::uint64_t> batches = {1, 3, 7, 16, 1, 33, 2, 9};
  std::uint64_t n = 0;
  {
    auto log = Open();
    ASSERT_NE(log, nullptr);
    for (std::uint64_t b : batches) {
      ASSERT_TRUE(log->AppendAll(MakeEvents(n, b)).ok());
      n += b;
      SignedTreeHead sth;
      ASSERT_TRUE(log->LatestTreeHead(&sth).ok());
      EXPECT_EQ(sth.tree_size, n);
    }
    ASSERT_TRUE(log->Append(MakeEvent(n)).ok());
    ++n;
  }
  auto log = Open();  // reopened: everything below comes from what was stored
  ASSERT_NE(log, nullptr);
  std::uint64_t size = 0;
  ASSERT_TRUE(log->Size(&size).ok());
  ASSERT_EQ(size, n);

  std::vector<std::string> leaves;
  ASSERT_TRUE(log->ReadLeaves(0, n, &leaves).ok());
  ASSERT_EQ(leaves.size(), n);
  std::vector<Hash> hashes;
  for (std::uint64_t i = 0; i < n; ++i) {
    EXPECT_EQ(leaves[i], ExpectedLeaf(i)) << "leaf " << i;
    hashes.push_back(LeafHash(leaves[i]));
  }
  std::vector<std::string> middle;
  ASSERT_TRUE(log->ReadLeaves(5, 9, &middle).ok());
  EXPECT_EQ(middle, std::vector<std::string>(leaves.begin() + 5, leaves.begin() + 9));

  // Every head (one per batch, plus the empty one) matches the reference root at its size.
  std::vector<SignedTreeHead> heads;
  ASSERT_TRUE(log->TreeHeads(&heads).ok());
  ASSERT_EQ(heads.size(), batches.size() + 2);
  for (const SignedTreeHead& h : heads) {
    EXPECT_EQ(h.root_hash, MerkleTreeHash(std::vector<Hash>(
                               hashes.begin(), hashes.begin() + static_cast<long>(h.tree_size))))
        << "size " << h.tree_size;
  }
  ExpectHeadsChainVerifies(*log, heads);

  // Inclusion of every leaf in several tree sizes, against the reference root of that size.
  for (std::uint64_t tree_size : {std::uint64_t{1}, std::uint64_t{11}, std::uint64_t{32}, n}) {
    const Hash root = MerkleTreeHash(
        std::vector<Hash>(hashes.begin(), hashes.begin() + static_cast<long>(tree_size)));
    for (std::uint64_t i = 0; i < tree_size; ++i) {
      InclusionProof proof;
      ASSERT_TRUE(log->ProveInclusion(i, tree_size, &proof).ok());
      EXPECT_TRUE(VerifyInclusion(hashes[i], proof, root).ok()) << i << " in " << tree_size;
      // Another leaf must not verify with this proof.
      const Hash& other = hashes[(i + 1) % n];
      if (other != hashes[i]) {
        EXPECT_FALSE(VerifyInclusion(other, proof, root).ok());
      }
    }
  }
  // Consistency between arbitrary sizes.
  for (std::uint64_t first = 0; first <= n; first += 7) {
    ConsistencyProof proof;
    ASSERT_TRUE(log->ProveConsistency(first, n, &proof).ok());
    const Hash old_root = MerkleTreeHash(
        std::vector<Hash>(hashes.begin(), hashes.begin() + static_cast<long>(first)));
    EXPECT_TRUE(VerifyConsistency(proof, old_root, MerkleTreeHash(hashes)).ok()) << first;
  }
}

TEST_P(TransparencyLogTest, OutOfRangeArgumentsAreInvalidArgumentNotACrash) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->AppendAll(MakeEvents(0, 5)).ok());
  InclusionProof inclusion;
  ConsistencyProof consistency;
  std::vector<std::string> leaves;
  EXPECT_EQ(log->ProveInclusion(5, 5, &inclusion).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(log->ProveInclusion(0, 6, &inclusion).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(log->ProveInclusion(0, 0, &inclusion).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(log->ProveInclusion(UINT64_MAX, UINT64_MAX, &inclusion).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(log->ProveConsistency(3, 2, &consistency).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(log->ProveConsistency(1, 6, &consistency).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(log->ReadLeaves(0, 6, &leaves).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(log->ReadLeaves(4, 3, &leaves).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(log->ReadLeaves(UINT64_MAX, UINT64_MAX, &leaves).code(),
            Status::Code::kInvalidArgument);
  AuditEvent too_big = MakeEvent(0);
  too_big.purpose.assign(70'000, 'x');
  EXPECT_EQ(log->Append(too_big).code(), Status::Code::kInvalidArgument);
  std::uint64_t size = 0;
  ASSERT_TRUE(log->Size(&size).ok());
  EXPECT_EQ(size, 5U);  // the refused event left nothing behind
}

TEST_P(TransparencyLogTest, ConcurrentAppendsAreGroupedAndEveryHeadVerifies) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        AuditEvent e = MakeEvent(static_cast<std::uint64_t>(i));
        e.principal = "thread:" + std::to_string(t);
        if (!log->Append(e).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::uint64_t size = 0;
  ASSERT_TRUE(log->Size(&size).ok());
  ASSERT_EQ(size, std::uint64_t{kThreads * kPerThread});
  std::vector<SignedTreeHead> heads;
  ASSERT_TRUE(log->TreeHeads(&heads).ok());
  // Group commit: callers arriving during a batch share the next one.
  EXPECT_LT(heads.size(), std::size_t{kThreads * kPerThread} + 1);
  ExpectHeadsChainVerifies(*log, heads);
  // Each thread's events are there, in its order.
  std::vector<std::string> leaves;
  ASSERT_TRUE(log->ReadLeaves(0, size, &leaves).ok());
  std::map<std::string, std::int64_t> last_time;
  for (const std::string& leaf : leaves) {
    LeafRecord r;
    ASSERT_TRUE(DecodeLeaf(leaf, &r).ok());
    auto [it, inserted] = last_time.emplace(r.principal, r.time_micros);
    if (!inserted) {
      EXPECT_GT(r.time_micros, it->second) << r.principal;
      it->second = r.time_micros;
    }
  }
  EXPECT_EQ(last_time.size(), std::size_t{kThreads});
}

TEST_P(TransparencyLogTest, PublishTreeHeadSignsTheCurrentSizeAgain) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->AppendAll(MakeEvents(0, 3)).ok());
  SignedTreeHead before;
  SignedTreeHead published;
  ASSERT_TRUE(log->LatestTreeHead(&before).ok());
  ASSERT_TRUE(log->PublishTreeHead(&published).ok());
  EXPECT_EQ(published.tree_size, 3U);
  EXPECT_EQ(published.root_hash, before.root_hash);
  EXPECT_GE(published.timestamp_micros, before.timestamp_micros);
  EXPECT_TRUE(VerifyTreeHeadSignature(published, log->public_key()).ok());
  std::vector<SignedTreeHead> heads;
  ASSERT_TRUE(log->TreeHeads(&heads).ok());
  ASSERT_EQ(heads.size(), 3U);  // empty, the batch, the published one
  EXPECT_EQ(heads.back().signature, published.signature);
}

TEST_P(TransparencyLogTest, ExportIsCheckedByTheOfflineVerifierWithOnlyThePublicKey) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  for (std::uint64_t b = 0; b < 6; ++b) ASSERT_TRUE(log->AppendAll(MakeEvents(b * 10, 10)).ok());
  std::uint64_t exported = 0;
  const std::string out = tmp_.Sub("export");
  ASSERT_TRUE(ExportLog(*log, out, &exported).ok());
  EXPECT_EQ(exported, 60U);
  VerifyReport report;
  const Status s = VerifyLog(out, log->public_key(), {}, &report);
  ASSERT_TRUE(s.ok()) << s.ToString() << " " << report.problem;
  EXPECT_EQ(report.tree_size, 60U);
  EXPECT_EQ(report.sth_count, 7U);
  EXPECT_EQ(report.signed_size, 60U);
  // The wrong key fails; an existing directory is refused.
  PublicKey other = log->public_key();
  other[0] ^= 1;
  EXPECT_EQ(VerifyLog(out, other, {}, &report).code(), Status::Code::kCorruption);
  EXPECT_EQ(ExportLog(*log, out, nullptr).code(), Status::Code::kInvalidArgument);
}

TEST_P(TransparencyLogTest, AnotherKeyIsRefused) {
  { ASSERT_NE(Open(), nullptr); }
  const std::string other = tmp_.Sub("other-keys");
  ASSERT_TRUE(GenerateKeys(other).ok());
  std::unique_ptr<TransparencyLog> log;
  EXPECT_EQ(OpenTransparencyLog(uri_, other, {}, &log).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(log, nullptr);
}

INSTANTIATE_TEST_SUITE_P(Backends, TransparencyLogTest,
                         ::testing::Values(Backend::kFile, Backend::kPostgres), BackendName);

// ---- OpenTransparencyLog's URI handling ----

TEST(OpenTransparencyLog, LocationsAndKeys) {
  TempDir tmp;
  const std::string keys = tmp.Sub("keys");
  ASSERT_TRUE(GenerateKeys(keys).ok());
  std::unique_ptr<TransparencyLog> log;
  EXPECT_TRUE(OpenTransparencyLog(tmp.Sub("plain"), keys, {}, &log).ok());
  EXPECT_TRUE(std::filesystem::exists(tmp.Sub("plain") + "/events.log"));
  EXPECT_EQ(OpenTransparencyLog("", keys, {}, &log).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(OpenTransparencyLog("file:", keys, {}, &log).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(OpenTransparencyLog("sqlite:x.db", keys, {}, &log).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(OpenTransparencyLog(tmp.Sub("l2"), tmp.Sub("no-keys"), {}, &log).code(),
            Status::Code::kNotFound);
  // An unreachable server is an I/O error, not a crash or a hang.
  const Status s = OpenTransparencyLog(
      "postgresql:///nowhere?host=" + tmp.Sub("no-socket") + "&connect_timeout=2", keys, {}, &log);
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
}

// ---- PostgreSQL only ----

class PostgresLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.error().empty()) << pg_.error();
    key_dir_ = tmp_.Sub("keys");
    ASSERT_TRUE(GenerateKeys(key_dir_).ok());
  }
  std::unique_ptr<TransparencyLog> Open() {
    std::unique_ptr<TransparencyLog> log;
    const Status s = OpenTransparencyLog(pg_.uri(), key_dir_, {}, &log);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return log;
  }
  TempDir tmp_;
  ScratchSchema pg_;
  std::string key_dir_;
};

// Two writer processes, each with its own connections and four threads, append to one log at
// the same time: one log results, every head verifies and is consistent with the next, nothing
// is lost or duplicated, each writer's events keep their order, and the export verifies offline.
TEST_F(PostgresLogTest, TwoProcessesAppendingConcurrentlyMakeOneConsistentLog) {
  { ASSERT_NE(Open(), nullptr); }  // schema and first head before the race
  constexpr int kWriters = 2;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 60;
  std::vector<pid_t> children;
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  for (int w = 0; w < kWriters; ++w) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      char c = 0;
      int code = ::read(go[0], &c, 1) == 0 ? 0 : 3;  // starts when the parent closes the pipe
      std::unique_ptr<TransparencyLog> log;
      if (!OpenTransparencyLog(pg_.uri(), key_dir_, {}, &log).ok()) ::_exit(1);
      std::vector<std::thread> threads;
      std::atomic<int> failures{0};
      for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
          for (int i = 0; i < kPerThread; ++i) {
            AuditEvent e = MakeEvent(static_cast<std::uint64_t>(i));
            e.principal = "node" + std::to_string(w) + ":" + std::to_string(t);
            // Mix single events and small batches.
            Status s = i % 10 == 0 ? log->AppendAll({e, e}) : log->Append(e);
            if (!s.ok()) ++failures;
          }
        });
      }
      for (auto& th : threads) th.join();
      log.reset();
      ::_exit(failures.load() == 0 ? code : 2);
    }
    children.push_back(pid);
  }
  ::close(go[0]);
  ::close(go[1]);
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }

  auto log = Open();
  ASSERT_NE(log, nullptr);
  const std::uint64_t expected = kWriters * kThreads * (kPerThread + kPerThread / 10);
  std::uint64_t size = 0;
  ASSERT_TRUE(log->Size(&size).ok());
  ASSERT_EQ(size, expected);
  std::vector<SignedTreeHead> heads;
  ASSERT_TRUE(log->TreeHeads(&heads).ok());
  ExpectHeadsChainVerifies(*log, heads);
  std::vector<std::string> leaves;
  ASSERT_TRUE(log->ReadLeaves(0, size, &leaves).ok());
  std::map<std::string, int> count;
  std::map<std::string, std::int64_t> last_time;
  for (const std::string& leaf : leaves) {
    LeafRecord r;
    ASSERT_TRUE(DecodeLeaf(leaf, &r).ok());
    ++count[r.principal];
    auto [it, inserted] = last_time.emplace(r.principal, r.time_micros);
    if (!inserted) {
      EXPECT_GE(r.time_micros, it->second) << r.principal;
      it->second = r.time_micros;
    }
  }
  ASSERT_EQ(count.size(), std::size_t{kWriters * kThreads});
  for (const auto& [principal, c] : count) {
    EXPECT_EQ(c, kPerThread + kPerThread / 10) << principal;
  }
  VerifyReport report;
  ASSERT_TRUE(ExportLog(*log, tmp_.Sub("export")).ok());
  const Status s = VerifyLog(tmp_.Sub("export"), log->public_key(), {}, &report);
  EXPECT_TRUE(s.ok()) << report.problem;
  EXPECT_EQ(report.tree_size, expected);
}

TEST_F(PostgresLogTest, TheTablesAreAppendOnly) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->AppendAll(MakeEvents(0, 4)).ok());
  for (const char* sql :
       {"DELETE FROM audit_leaves WHERE idx = 1", "UPDATE audit_leaves SET leaf = '\\x00'",
        "TRUNCATE audit_nodes", "DELETE FROM audit_tree_heads", "UPDATE audit_nodes SET pos = 0"}) {
    const std::string error = testing::ExecSql(pg_.uri(), sql);
    EXPECT_NE(error.find("append-only"), std::string::npos) << sql << ": " << error;
  }
  std::uint64_t size = 0;
  ASSERT_TRUE(log->Size(&size).ok());
  EXPECT_EQ(size, 4U);
}

// The database owner can switch the triggers off and rewrite a leaf; the auditor, holding only
// the export and the public key, finds exactly which leaf, and a writer refuses to extend a tree
// whose stored nodes no longer give the signed root.
TEST_F(PostgresLogTest, TamperingInTheDatabaseIsFoundOfflineAndStopsWriters) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  for (std::uint64_t b = 0; b < 4; ++b) ASSERT_TRUE(log->AppendAll(MakeEvents(b * 8, 8)).ok());
  LogKeys keys;
  ASSERT_TRUE(LoadLogKeys(key_dir_, &keys).ok());
  AuditEvent forged = MakeEvent(13);
  forged.principal = "officer:innocent";
  std::string leaf;
  ASSERT_TRUE(EncodeLeaf(forged, keys.id_key, &leaf).ok());
  const std::string hex =
      internal::BytesToHex(reinterpret_cast<const std::uint8_t*>(leaf.data()), leaf.size());
  ASSERT_EQ(testing::ExecSql(pg_.uri(),
                             "ALTER TABLE audit_leaves DISABLE TRIGGER USER; "
                             "UPDATE audit_leaves SET leaf = decode('" +
                                 hex + "','hex') WHERE idx = 13"),
            "");
  ASSERT_TRUE(ExportLog(*log, tmp_.Sub("export")).ok());
  VerifyReport report;
  EXPECT_EQ(VerifyLog(tmp_.Sub("export"), log->public_key(), {}, &report).code(),
            Status::Code::kCorruption);
  // The export's tree is recomputed from the (altered) leaves, so the verifier narrows the fault
  // to the heads: head 2 (size 16) is the first the leaves no longer match, and the bad leaf is
  // at or after 8, the size of the last head that still verifies.
  EXPECT_EQ(report.bad_tree_head, 2);
  EXPECT_EQ(report.first_bad_index, 8);

  // Rewriting the last node too makes the stored tree disagree with the signed head: a writer
  // (this one, or a fresh one) refuses to append on top of it.
  const Hash fake{};
  ASSERT_EQ(testing::ExecSql(pg_.uri(),
                             "ALTER TABLE audit_nodes DISABLE TRIGGER USER; "
                             "UPDATE audit_nodes SET hash = decode('" +
                                 HashToHex(fake) +
                                 "','hex') WHERE pos = (SELECT MAX(pos) FROM "
                                 "audit_nodes)"),
            "");
  std::unique_ptr<TransparencyLog> fresh;
  EXPECT_EQ(OpenTransparencyLog(pg_.uri(), key_dir_, {}, &fresh).code(), Status::Code::kCorruption);
}

// A head signed by someone else (a forged row) is never extended.
TEST_F(PostgresLogTest, AForgedHeadStopsWriters) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->AppendAll(MakeEvents(0, 3)).ok());
  ASSERT_EQ(testing::ExecSql(pg_.uri(),
                             "INSERT INTO audit_tree_heads (seq, tree_size, timestamp_micros, "
                             "root_hash, signature) SELECT MAX(seq) + 1, 3, 0, "
                             "(SELECT root_hash FROM audit_tree_heads ORDER BY seq DESC LIMIT 1), "
                             "decode(repeat('00', 64), 'hex') FROM audit_tree_heads"),
            "");
  std::unique_ptr<TransparencyLog> other;
  EXPECT_EQ(OpenTransparencyLog(pg_.uri(), key_dir_, {}, &other).code(), Status::Code::kCorruption);
  // The running writer sees the new head under the lock and refuses too.
  EXPECT_EQ(log->Append(MakeEvent(3)).code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace portcullis::audit

// libpqxx 6.4 leaks the PGresult of a statement that fails on a dropped connection (see
// tests/vault/store_test_util.cc); LeakSanitizer reads this hook from the binary.
extern "C" const char* __lsan_default_suppressions();   // NOLINT(bugprone-reserved-identifier)
extern "C" const char* __lsan_default_suppressions() {  // NOLINT(bugprone-reserved-identifier)
  return "leak:pqxx::connection_base::exec_params\n";
}
