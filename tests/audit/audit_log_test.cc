// The audit log on disk: keys, leaves without personal data, append/reopen, proofs from the tree
// store, offline verification and each kind of tampering, torn tails, witnesses, threads, a
// writer killed mid-batch and a full disk.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "audit/tree.h"
#include "audit_test_util.h"

namespace portcullis::audit {
namespace {

using testing::MakeEvent;
using testing::MakeEvents;
using testing::ReadAll;
using testing::ReadFrames;
using testing::TempDir;
using testing::WriteAll;
using testing::WriteFrames;

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    key_dir_ = tmp_.Sub("keys");
    log_dir_ = tmp_.Sub("log");
    ASSERT_TRUE(GenerateKeys(key_dir_).ok());
    ASSERT_TRUE(LoadLogKeys(key_dir_, &keys_).ok());
    ASSERT_TRUE(LoadPublicKey(key_dir_ + "/signing.pub", &pub_).ok());
  }

  std::unique_ptr<AuditLog> OpenLog() {
    std::unique_ptr<AuditLog> log;
    const Status s = AuditLog::Open(log_dir_, keys_, {}, &log);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return log;
  }

  // A log of `batches` batches of `per_batch` events (one signed head per batch, plus the
  // size-0 head written when the log was created).
  void Fill(int batches, int per_batch) {
    auto log = OpenLog();
    ASSERT_NE(log, nullptr);
    for (int b = 0; b < batches; ++b) {
      ASSERT_TRUE(
          log->AppendBatch(MakeEvents(log->size(), static_cast<std::uint64_t>(per_batch))).ok());
    }
  }

  VerifyReport Verify(Status* status, const std::string& witness = "") {
    VerifyReport report;
    VerifyOptions options;
    options.witness_path = witness;
    *status = VerifyLog(log_dir_, pub_, options, &report);
    return report;
  }

  std::string EventsPath() const { return log_dir_ + "/events.log"; }
  std::string SthPath() const { return log_dir_ + "/sth.log"; }
  std::string TreePath() const { return log_dir_ + "/tree"; }

  TempDir tmp_;
  std::string key_dir_, log_dir_;
  LogKeys keys_;
  PublicKey pub_{};
};

// ---- Keys ----

TEST_F(AuditLogTest, KeygenWritesPrivateKeysWithRestrictivePermissions) {
  struct stat st {};
  ASSERT_EQ(::stat((key_dir_ + "/signing.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  ASSERT_EQ(::stat((key_dir_ + "/id.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  ASSERT_EQ(::stat((key_dir_ + "/signing.pub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644U);
  EXPECT_EQ(keys_.public_key(), pub_);
  // Never overwritten: a lost signing key would orphan every head signed with it.
  const std::string before = ReadAll(key_dir_ + "/signing.key");
  EXPECT_EQ(GenerateKeys(key_dir_).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ReadAll(key_dir_ + "/signing.key"), before);
}

TEST_F(AuditLogTest, BadKeyFilesAreRefused) {
  LogKeys keys;
  EXPECT_EQ(LoadLogKeys(tmp_.Sub("nokeys"), &keys).code(), Status::Code::kNotFound);
  PublicKey pk{};
  EXPECT_EQ(LoadPublicKey(tmp_.Sub("missing.pub"), &pk).code(), Status::Code::kNotFound);
  WriteAll(tmp_.Sub("short.pub"), "abcd\n");
  EXPECT_EQ(LoadPublicKey(tmp_.Sub("short.pub"), &pk).code(), Status::Code::kCorruption);
  WriteAll(tmp_.Sub("nothex.pub"), std::string(64, 'z'));
  EXPECT_EQ(LoadPublicKey(tmp_.Sub("nothex.pub"), &pk).code(), Status::Code::kCorruption);
  // A secret key others can read is refused rather than used.
  ASSERT_EQ(::chmod((key_dir_ + "/signing.key").c_str(), 0644), 0);
  EXPECT_EQ(LoadLogKeys(key_dir_, &keys).code(), Status::Code::kInvalidArgument);
  ASSERT_EQ(::chmod((key_dir_ + "/signing.key").c_str(), 0600), 0);
  // A secret key whose public half does not match its seed is corrupt.
  std::string sk = ReadAll(key_dir_ + "/signing.key");
  sk[100] = sk[100] == '0' ? '1' : '0';
  WriteAll(key_dir_ + "/signing.key", sk);
  EXPECT_EQ(LoadLogKeys(key_dir_, &keys).code(), Status::Code::kCorruption);
}

// ---- Leaves ----

TEST_F(AuditLogTest, LeavesHoldNoRecordIdAndAnAuditorCanFindWhoTouchedARecord) {
  AuditEvent e = MakeEvent(3);
  e.record_id = "traveller-photo-PASSPORT-X1234567";
  std::string leaf;
  ASSERT_TRUE(EncodeLeaf(e, keys_.id_key, &leaf).ok());
  EXPECT_EQ(leaf.find("X1234567"), std::string::npos);
  LeafRecord rec;
  ASSERT_TRUE(DecodeLeaf(leaf, &rec).ok());
  EXPECT_EQ(rec.principal, e.principal);
  EXPECT_EQ(rec.purpose, e.purpose);
  EXPECT_EQ(rec.time_micros, e.time_micros);
  EXPECT_TRUE(rec.has_record);
  EXPECT_EQ(rec.record_ref, RecordRef(keys_.id_key, e.record_id));
  // Strict decoding: trailing bytes, a short field, an unknown version.
  EXPECT_EQ(DecodeLeaf(leaf + "x", &rec).code(), Status::Code::kCorruption);
  EXPECT_EQ(DecodeLeaf(leaf.substr(0, 20), &rec).code(), Status::Code::kCorruption);
  std::string v2 = leaf;
  v2[0] = 2;
  EXPECT_EQ(DecodeLeaf(v2, &rec).code(), Status::Code::kCorruption);
  AuditEvent huge = e;
  huge.purpose.assign(70000, 'p');
  EXPECT_EQ(EncodeLeaf(huge, keys_.id_key, &leaf).code(), Status::Code::kInvalidArgument);

  {
    auto log = OpenLog();
    ASSERT_NE(log, nullptr);
    ASSERT_TRUE(log->AppendBatch(MakeEvents(0, 30)).ok());
    ASSERT_TRUE(log->Append(e).ok());
    EXPECT_EQ(log->Append(huge).code(), Status::Code::kInvalidArgument);
    ASSERT_TRUE(log->Append(e).ok());
  }
  EXPECT_EQ(ReadAll(EventsPath()).find("X1234567"), std::string::npos);
  std::unique_ptr<LogReader> reader;
  ASSERT_TRUE(LogReader::Open(log_dir_, &reader).ok());
  std::vector<std::uint64_t> hits;
  ASSERT_TRUE(reader->FindRecord(keys_.id_key, e.record_id, &hits).ok());
  EXPECT_EQ(hits, (std::vector<std::uint64_t>{30, 31}));
  ASSERT_TRUE(reader->FindRecord(keys_.id_key, "rec-7", &hits).ok());
  EXPECT_EQ(hits, (std::vector<std::uint64_t>{7}));
  // Without the right id key nothing is found.
  IdKey other{};
  other[0] = 1;
  ASSERT_TRUE(reader->FindRecord(other, e.record_id, &hits).ok());
  EXPECT_TRUE(hits.empty());
}

// ---- Appending, reopening, proofs from the store ----

TEST_F(AuditLogTest, RootsAndProofsFromTheStoreMatchTheLeaves) {
  {
    auto log = OpenLog();
    ASSERT_NE(log, nullptr);
    std::uint64_t first = 99;
    for (std::uint64_t batch : {1, 2, 3, 5, 8, 13, 21, 34}) {
      ASSERT_TRUE(log->AppendBatch(MakeEvents(log->size(), batch), &first).ok());
      EXPECT_EQ(first + batch, log->size());
    }
    for (int i = 0; i < 13; ++i) ASSERT_TRUE(log->Append(MakeEvent(log->size())).ok());
    EXPECT_EQ(log->size(), 100U);
  }
  auto log = OpenLog();  // reopened: state comes back from the files
  ASSERT_NE(log, nullptr);
  ASSERT_EQ(log->size(), 100U);
  std::vector<Hash> leaf_hashes;
  for (std::uint64_t i = 0; i < 100; ++i) {
    std::string leaf;
    ASSERT_TRUE(EncodeLeaf(MakeEvent(i), keys_.id_key, &leaf).ok());
    leaf_hashes.push_back(LeafHash(leaf));
  }
  internal::MemoryTree reference;
  for (const Hash& h : leaf_hashes) reference.AddLeafHash(h);
  SignedTreeHead head;
  ASSERT_TRUE(log->LatestTreeHead(&head).ok());
  EXPECT_EQ(head.tree_size, 100U);
  EXPECT_EQ(head.root_hash, MerkleTreeHash(leaf_hashes));
  EXPECT_TRUE(VerifyTreeHeadSignature(head, pub_).ok());

  std::unique_ptr<LogReader> reader;
  ASSERT_TRUE(LogReader::Open(log_dir_, &reader).ok());
  EXPECT_EQ(reader->size(), 100U);
  for (std::uint64_t n = 0; n <= 100; n += 7) {
    Hash root{};
    ASSERT_TRUE(log->RootAt(n, &root).ok());
    Hash want{};
    ASSERT_TRUE(internal::RootAt(reference, n, &want).ok());
    EXPECT_EQ(root, want) << n;
    for (std::uint64_t m = 0; m < n; m += 3) {
      InclusionProof got;
      InclusionProof expected;
      ASSERT_TRUE(log->ProveInclusion(m, n, &got).ok());
      ASSERT_TRUE(internal::MakeInclusionProof(reference, m, n, &expected).ok());
      EXPECT_EQ(got.path, expected.path);
      EXPECT_TRUE(VerifyInclusion(leaf_hashes[m], got, root).ok());
      ConsistencyProof cgot;
      ConsistencyProof cexp;
      ASSERT_TRUE(reader->ProveConsistency(m, n, &cgot).ok());
      ASSERT_TRUE(internal::MakeConsistencyProof(reference, m, n, &cexp).ok());
      EXPECT_EQ(cgot.path, cexp.path);
    }
  }
  InclusionProof p;
  EXPECT_EQ(log->ProveInclusion(5, 101, &p).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(log->ProveInclusion(100, 100, &p).code(), Status::Code::kInvalidArgument);

  Status s;
  const VerifyReport report = Verify(&s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(report.tree_size, 100U);
  EXPECT_EQ(report.signed_size, 100U);
  EXPECT_EQ(report.sth_count, 1U + 8U + 13U);  // creation + one per batch
  EXPECT_EQ(report.root_hash, head.root_hash);
  EXPECT_EQ(report.first_bad_index, -1);
}

TEST_F(AuditLogTest, ConcurrentAppendsAreAllCommitted) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        AuditEvent e =
            MakeEvent(static_cast<std::uint64_t>(t) * kPerThread + static_cast<std::uint64_t>(i));
        if (!log->Append(e).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(log->size(), static_cast<std::uint64_t>(kThreads * kPerThread));
  log.reset();
  Status s;
  const VerifyReport report = Verify(&s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(report.tree_size, static_cast<std::uint64_t>(kThreads * kPerThread));
  // Group commit: fewer heads (fsync rounds) than events once threads pile up is typical, but
  // never more than one per event plus the creation head.
  EXPECT_LE(report.sth_count, static_cast<std::uint64_t>(kThreads * kPerThread) + 1);
  // Every event is there exactly once.
  std::unique_ptr<LogReader> reader;
  ASSERT_TRUE(LogReader::Open(log_dir_, &reader).ok());
  std::vector<int> seen(static_cast<std::size_t>(kThreads) * kPerThread, 0);
  for (std::uint64_t i = 0; i < reader->size(); ++i) {
    std::string leaf;
    LeafRecord rec;
    ASSERT_TRUE(reader->Leaf(i, &leaf).ok());
    ASSERT_TRUE(DecodeLeaf(leaf, &rec).ok());
    ++seen[static_cast<std::size_t>(rec.time_micros - MakeEvent(0).time_micros)];
  }
  for (int count : seen) EXPECT_EQ(count, 1);
}

TEST_F(AuditLogTest, PublishTreeHeadOnDemand) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->AppendBatch(MakeEvents(0, 5)).ok());
  SignedTreeHead a;
  SignedTreeHead b;
  ASSERT_TRUE(log->PublishTreeHead(&a).ok());
  ASSERT_TRUE(log->PublishTreeHead(&b).ok());
  EXPECT_EQ(a.tree_size, 5U);
  EXPECT_EQ(a.root_hash, b.root_hash);
  EXPECT_GE(b.timestamp_micros, a.timestamp_micros);
  Status s;
  EXPECT_EQ(Verify(&s).sth_count, 4U);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(AuditLogTest, LogSignedByAnotherKeyIsRefusedOnOpen) {
  Fill(1, 3);
  ASSERT_TRUE(GenerateKeys(tmp_.Sub("other")).ok());
  LogKeys other;
  ASSERT_TRUE(LoadLogKeys(tmp_.Sub("other"), &other).ok());
  std::unique_ptr<AuditLog> log;
  EXPECT_EQ(AuditLog::Open(log_dir_, other, {}, &log).code(), Status::Code::kInvalidArgument);
}

// ---- Tampering: each change is found, with the first bad index ----

class TamperTest : public AuditLogTest {
 protected:
  void SetUp() override {
    AuditLogTest::SetUp();
    Fill(4, 10);  // heads at sizes 0, 10, 20, 30, 40
    frames_ = ReadFrames(EventsPath(), internal::kEventsMagic);
    ASSERT_EQ(frames_.size(), 40U);
    Status s;
    Verify(&s);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void ExpectBadAt(std::int64_t index) {
    Status s;
    const VerifyReport report = Verify(&s);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
    EXPECT_EQ(report.first_bad_index, index) << report.problem;
    EXPECT_FALSE(report.problem.empty());
  }

  std::vector<std::string> frames_;
};

TEST_F(TamperTest, FlippedByteIsCaughtByTheFrameChecksum) {
  std::string raw = ReadAll(EventsPath());
  internal::FrameScan scan;
  ASSERT_TRUE(
      internal::ScanFrames(raw, internal::kEventsMagic, internal::kMaxLeafBytes, &scan).ok());
  raw[scan.offsets[17] + internal::kFrameHeader + 12] ^= 0x01;
  WriteAll(EventsPath(), raw);
  ExpectBadAt(17);
  // The writer refuses it too rather than truncate acknowledged events.
  std::unique_ptr<AuditLog> log;
  EXPECT_EQ(AuditLog::Open(log_dir_, keys_, {}, &log).code(), Status::Code::kCorruption);
}

TEST_F(TamperTest, RewrittenLeafWithValidChecksumIsCaughtByTheTree) {
  AuditEvent e = MakeEvent(17);
  e.principal = "officer:innocent";
  std::string leaf;
  ASSERT_TRUE(EncodeLeaf(e, keys_.id_key, &leaf).ok());
  frames_[17] = leaf;
  WriteFrames(EventsPath(), internal::kEventsMagic, frames_);
  ExpectBadAt(17);
}

TEST_F(TamperTest, DeletedLeafIsFound) {
  frames_.erase(frames_.begin() + 23);
  WriteFrames(EventsPath(), internal::kEventsMagic, frames_);
  ExpectBadAt(23);
}

TEST_F(TamperTest, ReorderedLeavesAreFound) {
  std::swap(frames_[31], frames_[32]);
  WriteFrames(EventsPath(), internal::kEventsMagic, frames_);
  ExpectBadAt(31);
}

TEST_F(TamperTest, TruncatedLogIsFound) {
  frames_.resize(25);
  WriteFrames(EventsPath(), internal::kEventsMagic, frames_);
  ExpectBadAt(25);
  std::unique_ptr<AuditLog> log;
  EXPECT_EQ(AuditLog::Open(log_dir_, keys_, {}, &log).code(), Status::Code::kCorruption);
}

TEST_F(TamperTest, TruncatedMidRecordInsideTheSignedPartIsFound) {
  const std::string raw = ReadAll(EventsPath());
  internal::FrameScan scan;
  ASSERT_TRUE(
      internal::ScanFrames(raw, internal::kEventsMagic, internal::kMaxLeafBytes, &scan).ok());
  WriteAll(EventsPath(), raw.substr(0, scan.offsets[36] + 11));
  ExpectBadAt(36);
  std::unique_ptr<AuditLog> log;
  EXPECT_EQ(AuditLog::Open(log_dir_, keys_, {}, &log).code(), Status::Code::kCorruption);
}

TEST_F(TamperTest, RewrittenLeafAndTreeStoreNarrowsToTheLastGoodHead) {
  AuditEvent e = MakeEvent(14);
  e.result = "denied";
  ASSERT_TRUE(EncodeLeaf(e, keys_.id_key, &frames_[14]).ok());
  WriteFrames(EventsPath(), internal::kEventsMagic, frames_);
  internal::Frontier f;
  std::string nodes(internal::kTreeMagic);
  for (const auto& leaf : frames_) f.Add(LeafHash(leaf), &nodes);
  WriteAll(TreePath(), nodes);
  ExpectBadAt(10);  // heads 0 and 10 still verify; head 20 does not
}

TEST_F(TamperTest, AlteredTreeHeadIsFound) {
  auto heads = ReadFrames(SthPath(), internal::kSthMagic);
  ASSERT_EQ(heads.size(), 5U);
  heads[2][60] ^= 0x20;  // inside the signature
  WriteFrames(SthPath(), internal::kSthMagic, heads);
  Status s;
  VerifyReport report = Verify(&s);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_EQ(report.bad_tree_head, 2);
  // A forged root with a "valid" frame is caught by the signature too.
  heads = ReadFrames(SthPath(), internal::kSthMagic);
  heads = ReadFrames(SthPath(), internal::kSthMagic);
  heads[3][20] ^= 0x01;
  WriteFrames(SthPath(), internal::kSthMagic, heads);
  report = Verify(&s);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_EQ(report.bad_tree_head, 2);
}

TEST_F(TamperTest, WrongPublicKeyAndMissingFilesFail) {
  ASSERT_TRUE(GenerateKeys(tmp_.Sub("other")).ok());
  PublicKey other{};
  ASSERT_TRUE(LoadPublicKey(tmp_.Sub("other") + "/signing.pub", &other).ok());
  VerifyReport report;
  EXPECT_EQ(VerifyLog(log_dir_, other, {}, &report).code(), Status::Code::kCorruption);
  EXPECT_EQ(report.bad_tree_head, 0);
  EXPECT_EQ(VerifyLog(tmp_.Sub("nolog"), pub_, {}, &report).code(), Status::Code::kNotFound);
  std::filesystem::remove(SthPath());
  EXPECT_EQ(VerifyLog(log_dir_, pub_, {}, &report).code(), Status::Code::kNotFound);
}

TEST_F(TamperTest, HeadsDeletedFromTheEndAreNotSilent) {
  // Dropping the last heads leaves signed history shorter than the events: verification reports
  // the unsigned events rather than calling them verified.
  auto heads = ReadFrames(SthPath(), internal::kSthMagic);
  heads.resize(3);
  WriteFrames(SthPath(), internal::kSthMagic, heads);
  Status s;
  const VerifyReport report = Verify(&s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(report.signed_size, 20U);
  EXPECT_EQ(report.tree_size, 40U);
  // A witness that saw size 40 makes the same deletion fatal only if events changed; here they
  // did not, so it still verifies (the head is gone but the history is the same).
}

// ---- Crashes: torn tails ----

TEST_F(AuditLogTest, TornFinalRecordIsTruncatedOnOpen) {
  Fill(2, 10);
  const std::string good = ReadAll(EventsPath());
  for (const std::string& tail :
       {std::string("\x20\x00\x00", 3), std::string("\x40\x00\x00\x00\x12\x34\x56\x78xyz", 11),
        std::string(100, '\0')}) {
    WriteAll(EventsPath(), good + tail);
    Status s;
    const VerifyReport report = Verify(&s);
    EXPECT_TRUE(s.ok()) << s.ToString();  // a torn record past the signed size is a crash
    EXPECT_TRUE(report.torn_tail);
    EXPECT_EQ(report.tree_size, 20U);
    auto log = OpenLog();
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->size(), 20U);
    EXPECT_EQ(ReadAll(EventsPath()), good);  // cut back exactly
  }
  // A torn tree head (the batch was never acknowledged) is cut off too.
  const std::string heads = ReadAll(SthPath());
  WriteAll(SthPath(), heads + std::string("\x71\x00\x00\x00\x01\x02", 6));
  {
    auto log = OpenLog();
    ASSERT_NE(log, nullptr);
    ASSERT_TRUE(log->Append(MakeEvent(20)).ok());
  }
  Status s;
  EXPECT_EQ(Verify(&s).tree_size, 21U);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(AuditLogTest, EventsWrittenWithoutTheirHeadAreSignedOnReopen) {
  Fill(1, 10);
  const std::string heads_after_first = ReadAll(SthPath());
  Fill(1, 10);  // second batch: events, nodes and a head
  // The crash came after the events and nodes were written, before the head.
  WriteAll(SthPath(), heads_after_first);
  Status s;
  VerifyReport report = Verify(&s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(report.signed_size, 10U);
  EXPECT_EQ(report.tree_size, 20U);
  // Also lose the tree nodes of the unsigned batch: the writer rebuilds them from the leaves.
  const std::string tree = ReadAll(TreePath());
  WriteAll(TreePath(), tree.substr(0, internal::kHeaderSize + internal::NodesFor(10) * 32 + 17));
  {
    auto log = OpenLog();
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->size(), 20U);
  }
  report = Verify(&s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(report.signed_size, 20U);
  EXPECT_EQ(ReadAll(TreePath()), tree);
}

TEST_F(AuditLogTest, DamagedTreeStoreIsRebuiltFromTheLeaves) {
  Fill(2, 10);
  const std::string tree = ReadAll(TreePath());
  std::string bad = tree;
  bad[internal::kHeaderSize + 5] ^= 0x08;
  WriteAll(TreePath(), bad);
  {
    auto log = OpenLog();
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->size(), 20U);
  }
  EXPECT_EQ(ReadAll(TreePath()), tree);
}

// ---- Witnesses ----

TEST_F(AuditLogTest, WitnessedHeadsCatchARewrittenHistory) {
  const std::string witness = tmp_.Sub("witness.txt");
  {
    auto log = OpenLog();
    ASSERT_NE(log, nullptr);
    ASSERT_TRUE(log->AppendBatch(MakeEvents(0, 12)).ok());
    SignedTreeHead h;
    ASSERT_TRUE(log->LatestTreeHead(&h).ok());
    ASSERT_TRUE(AppendWitness(witness, h).ok());
    ASSERT_TRUE(log->AppendBatch(MakeEvents(12, 9)).ok());
    ASSERT_TRUE(log->LatestTreeHead(&h).ok());
    ASSERT_TRUE(AppendWitness(witness, h).ok());
    ASSERT_TRUE(log->AppendBatch(MakeEvents(21, 4)).ok());
  }
  std::vector<SignedTreeHead> heads;
  ASSERT_TRUE(ReadWitness(witness, &heads).ok());
  ASSERT_EQ(heads.size(), 2U);
  EXPECT_EQ(heads[1].tree_size, 21U);
  Status s;
  VerifyReport report = Verify(&s, witness);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(report.witness_heads, 2U);

  // An insider with the signing key rewrites the whole log: internally consistent, re-signed,
  // but it does not extend what the witness saw.
  std::filesystem::remove_all(log_dir_);
  {
    auto log = OpenLog();
    ASSERT_NE(log, nullptr);
    auto events = MakeEvents(0, 25);
    events[15].principal = "officer:someone-else";
    ASSERT_TRUE(log->AppendBatch(events).ok());
  }
  report = Verify(&s);
  EXPECT_TRUE(s.ok()) << s.ToString();  // alone, the rewritten log looks fine
  report = Verify(&s, witness);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_EQ(report.bad_tree_head, 1);  // the first witnessed head (size 12) still holds
  EXPECT_EQ(report.first_bad_index, 12);

  // A witness line that does not parse, or is not signed by the key, fails clearly.
  WriteAll(tmp_.Sub("bad-witness.txt"), "# portcullis audit witness v1\n12 34 nothex\n");
  EXPECT_EQ(ReadWitness(tmp_.Sub("bad-witness.txt"), &heads).code(), Status::Code::kCorruption);
  WriteAll(tmp_.Sub("not-witness.txt"), "hello\n");
  EXPECT_EQ(ReadWitness(tmp_.Sub("not-witness.txt"), &heads).code(), Status::Code::kCorruption);
}

// ---- Processes: killed writer, full disk ----

// Reads the last complete u64 a child wrote to the pipe before the pipe closed.
std::uint64_t LastAcked(int fd) {
  std::uint64_t last = 0;
  std::uint64_t v = 0;
  std::size_t got = 0;
  char* p = reinterpret_cast<char*>(&v);
  while (true) {
    const ssize_t n = ::read(fd, p + got, sizeof(v) - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
    if (got == sizeof(v)) {
      last = v;
      got = 0;
    }
  }
  return last;
}

void ExpectEventsPresent(const std::string& dir, const IdKey& id_key, std::uint64_t count) {
  std::unique_ptr<LogReader> reader;
  ASSERT_TRUE(LogReader::Open(dir, &reader).ok());
  ASSERT_GE(reader->size(), count);
  for (std::uint64_t i = 0; i < reader->size(); ++i) {
    std::string leaf;
    std::string want;
    ASSERT_TRUE(reader->Leaf(i, &leaf).ok());
    ASSERT_TRUE(EncodeLeaf(MakeEvent(i), id_key, &want).ok());
    ASSERT_EQ(leaf, want) << "event " << i;
  }
}

TEST_F(AuditLogTest, AcknowledgedEventsSurviveSigkillMidBatch) {
  for (int round = 0; round < 3; ++round) {
    std::filesystem::remove_all(log_dir_);
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      std::unique_ptr<AuditLog> log;
      if (!AuditLog::Open(log_dir_, keys_, {}, &log).ok()) ::_exit(3);
      for (std::uint64_t next = 0;; next += 50) {
        if (!log->AppendBatch(MakeEvents(next, 50)).ok()) ::_exit(4);
        const std::uint64_t acked = next + 50;  // reported only once durable
        if (::write(fds[1], &acked, sizeof(acked)) != sizeof(acked)) ::_exit(5);
      }
    }
    ::close(fds[1]);
    // Wait for its first acknowledgement (however slow the machine), let it run a while more,
    // then kill it wherever it is: mid-write, mid-fsync, mid-sign.
    std::uint64_t first_ack = 0;
    ASSERT_EQ(::read(fds[0], &first_ack, sizeof(first_ack)),
              static_cast<ssize_t>(sizeof(first_ack)));
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + 70 * round));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited by itself: " << WEXITSTATUS(status);
    const std::uint64_t acked = std::max(first_ack, LastAcked(fds[0]));
    ::close(fds[0]);
    ASSERT_GT(acked, 0U) << "the child acknowledged nothing before it was killed";

    Status s;
    VerifyReport report = Verify(&s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_GE(report.signed_size, acked);
    {
      auto log = OpenLog();
      ASSERT_NE(log, nullptr);
      EXPECT_GE(log->size(), acked);
    }
    ExpectEventsPresent(log_dir_, keys_.id_key, acked);
    report = Verify(&s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(report.signed_size, report.tree_size);
  }
}

// Group commit under a crash: many threads append at once (one leader writes and fsyncs for
// all the waiters it finds), each reports an event only after Append returned OK, and the
// process is killed at a random point. Every reported event must be in the log after reopening,
// whichever group it was committed in.
TEST_F(AuditLogTest, ConcurrentAppendersAcknowledgedEventsSurviveSigkill) {
  constexpr std::uint64_t kThreads = 8;
  for (int round = 0; round < 3; ++round) {
    std::filesystem::remove_all(log_dir_);
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      std::unique_ptr<AuditLog> log;
      if (!AuditLog::Open(log_dir_, keys_, {}, &log).ok()) ::_exit(3);
      std::vector<std::thread> threads;
      for (std::uint64_t t = 0; t < kThreads; ++t) {
        // Event t + kThreads * n: thread t's n-th; 8-byte pipe writes are atomic (< PIPE_BUF).
        threads.emplace_back([&log, t, fd = fds[1]] {
          for (std::uint64_t n = 0;; ++n) {
            const std::uint64_t id = t + kThreads * n;
            if (!log->Append(MakeEvent(id)).ok()) ::_exit(4);
            if (::write(fd, &id, sizeof(id)) != sizeof(id)) ::_exit(5);
          }
        });
      }
      for (std::thread& th : threads) th.join();
      ::_exit(6);
    }
    ::close(fds[1]);
    // Wait for a few acknowledgements from several groups (however slow the machine), let it run
    // a while more, then kill it wherever it is.
    std::vector<std::uint64_t> acked;
    while (acked.size() < 2 * kThreads) {
      std::uint64_t id = 0;
      ASSERT_EQ(::read(fds[0], &id, sizeof(id)), static_cast<ssize_t>(sizeof(id)));
      acked.push_back(id);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + 70 * round));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited by itself: " << WEXITSTATUS(status);
    for (;;) {
      std::uint64_t id = 0;
      const ssize_t n = ::read(fds[0], &id, sizeof(id));
      if (n != static_cast<ssize_t>(sizeof(id))) break;
      acked.push_back(id);
    }
    ::close(fds[0]);

    Status s;
    VerifyReport report = Verify(&s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    {
      auto log = OpenLog();  // repairs a torn tail and signs what reached the disk
      ASSERT_NE(log, nullptr);
    }
    std::unique_ptr<LogReader> reader;
    ASSERT_TRUE(LogReader::Open(log_dir_, &reader).ok());
    std::vector<std::uint64_t> present;
    for (std::uint64_t i = 0; i < reader->size(); ++i) {
      std::string leaf;
      LeafRecord rec;
      ASSERT_TRUE(reader->Leaf(i, &leaf).ok());
      ASSERT_TRUE(DecodeLeaf(leaf, &rec).ok()) << "leaf " << i;
      const std::uint64_t id =
          static_cast<std::uint64_t>(rec.time_micros - MakeEvent(0).time_micros);
      std::string want;
      ASSERT_TRUE(EncodeLeaf(MakeEvent(id), keys_.id_key, &want).ok());
      ASSERT_EQ(leaf, want) << "leaf " << i << " is not event " << id << " intact";
      present.push_back(id);
    }
    std::sort(present.begin(), present.end());
    ASSERT_TRUE(std::adjacent_find(present.begin(), present.end()) == present.end())
        << "an event was committed twice";
    std::size_t missing = 0;
    for (std::uint64_t id : acked) {
      if (!std::binary_search(present.begin(), present.end(), id)) ++missing;
    }
    EXPECT_EQ(missing, 0U) << "of " << acked.size() << " acknowledged events";
    report = Verify(&s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(report.signed_size, report.tree_size);
  }
}

TEST_F(AuditLogTest, FullDiskFailsTheBatchAndLosesNothingAcknowledged) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    // A file-size limit stands in for a full disk: writes past it fail with EFBIG.
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit {};
    limit.rlim_cur = limit.rlim_max = rlim_t{24} * 1024;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(3);
    std::unique_ptr<AuditLog> log;
    if (!AuditLog::Open(log_dir_, keys_, {}, &log).ok()) ::_exit(4);
    std::uint64_t next = 0;
    Status s;
    while ((s = log->AppendBatch(MakeEvents(next, 7))).ok()) {
      next += 7;
      if (::write(fds[1], &next, sizeof(next)) != sizeof(next)) ::_exit(5);
    }
    if (s.code() != Status::Code::kIOError) ::_exit(6);
    // The failure sticks: nothing more is taken until the log is reopened.
    if (log->Append(MakeEvent(next)).ok()) ::_exit(7);
    ::_exit(0);
  }
  ::close(fds[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const std::uint64_t acked = LastAcked(fds[0]);
  ::close(fds[0]);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "child failed at step " << WEXITSTATUS(status);
  ASSERT_GT(acked, 0U);

  Status s;
  VerifyReport report = Verify(&s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(report.tree_size, acked);  // the failed batch was rolled back
  ExpectEventsPresent(log_dir_, keys_.id_key, acked);
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  EXPECT_TRUE(log->AppendBatch(MakeEvents(acked, 7)).ok());
}

}  // namespace
}  // namespace portcullis::audit
