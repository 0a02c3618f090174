// The store's contract, run against both backends (SQLite file, PostgreSQL test server).
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "store_test_records.h"
#include "store_test_util.h"
#include "vault/migrations.h"
#include "vault/record_store.h"

namespace portcullis::vault {
namespace {

using testing::Backend;
using testing::ScratchStore;

StoredRecord MakeRecord(RecordType type, SubjectCategory subject, std::string retention,
                        std::string kek, std::int64_t created, std::int64_t expires,
                        std::string body) {
  StoredRecord r;
  r.meta.id = NewRecordId();
  r.meta.type = type;
  r.meta.subject = subject;
  r.meta.retention_class = std::move(retention);
  r.meta.content_type = "application/octet-stream";
  r.meta.created_micros = created;
  r.meta.expires_micros = expires;
  r.meta.labels = {{"lane", "3"}, {"flight", "BA117"}};
  r.meta.size = body.size();
  r.kek_id = std::move(kek);
  r.wrapped_key = std::string("\x00\x01wrapped\xff", 10);
  r.sealed = std::move(body);
  return r;
}

StoredRecord Plate(std::int64_t created, const std::string& kek = "kek/plate/1") {
  return MakeRecord(RecordType::kPlateRead, SubjectCategory::kVehicle, "plate", kek, created,
                    created + 100, "sealed-" + std::to_string(created));
}

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    scratch_ = std::make_unique<ScratchStore>(GetParam());
    ASSERT_TRUE(scratch_->error().empty()) << scratch_->error();
    Status s = RecordStore::Open(scratch_->uri(), &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void TearDown() override {
    store_.reset();
    scratch_.reset();
  }
  void Migrate() {
    Status s = store_->Migrate();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void Put(const std::vector<StoredRecord>& records) {
    Status s = store_->Put(records);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::vector<RecordMeta> ListAll(RecordFilter filter) {
    std::vector<RecordMeta> all;
    for (int pages = 0; pages < 1000; ++pages) {
      RecordPage page;
      Status s = store_->List(filter, &page);
      EXPECT_TRUE(s.ok()) << s.ToString();
      if (!s.ok()) break;
      all.insert(all.end(), page.records.begin(), page.records.end());
      if (page.next_cursor.empty()) break;
      filter.cursor = page.next_cursor;
    }
    return all;
  }

  std::unique_ptr<ScratchStore> scratch_;
  std::unique_ptr<RecordStore> store_;
};

TEST_P(StoreTest, MigrateBringsAnEmptyDatabaseToTheLatestVersionOnce) {
  int version = -1;
  ASSERT_TRUE(store_->SchemaVersion(&version).ok());
  EXPECT_EQ(version, 0);
  Migrate();
  ASSERT_TRUE(store_->SchemaVersion(&version).ok());
  EXPECT_EQ(version, LatestSchemaVersion());
  EXPECT_GE(version, 2);
  Migrate();  // idempotent
  ASSERT_TRUE(store_->SchemaVersion(&version).ok());
  EXPECT_EQ(version, LatestSchemaVersion());
}

TEST_P(StoreTest, CallsBeforeMigrateAreRefused) {
  Status s = store_->Put({Plate(1)});
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("Migrate"), std::string::npos) << s.message();
  StoredRecord r;
  EXPECT_EQ(store_->Get(NewRecordId(), &r).code(), Status::Code::kInvalidArgument);
}

TEST_P(StoreTest, PutThenGetReturnsTheSameBytes) {
  Migrate();
  std::string body;
  for (int i = 0; i < 256; ++i) body.push_back(static_cast<char>(i));  // NULs and high bytes
  StoredRecord a = MakeRecord(RecordType::kGalleryPhoto, SubjectCategory::kNonCitizen,
                              "face-non-citizen", "kek/face-non_citizen/2026112703", 10, 20, body);
  a.meta.labels["quote"] = "it's \"quoted\" ü";
  StoredRecord big = Plate(11);
  big.sealed = testing::RandomBytes(7, 3 * 1024 * 1024 + 17);
  big.meta.size = big.sealed.size();
  Put({a, big});
  StoredRecord got;
  Status s = store_->Get(a.meta.id, &got);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(got, a);
  ASSERT_TRUE(store_->Get(big.meta.id, &got).ok());
  EXPECT_EQ(got, big);
}

TEST_P(StoreTest, RecordsSurviveReopening) {
  Migrate();
  StoredRecord a = Plate(5);
  Put({a});
  store_.reset();
  ASSERT_TRUE(RecordStore::Open(scratch_->uri(), &store_).ok());
  StoredRecord got;
  ASSERT_TRUE(store_->Get(a.meta.id, &got).ok());
  EXPECT_EQ(got, a);
}

TEST_P(StoreTest, GetOfAMissingIdIsNotFound) {
  Migrate();
  StoredRecord got;
  Status s = store_->Get(NewRecordId(), &got);
  EXPECT_EQ(s.code(), Status::Code::kNotFound) << s.ToString();
}

TEST_P(StoreTest, ABatchWithADuplicateIdStoresNothing) {
  Migrate();
  StoredRecord a = Plate(1);
  Put({a});
  StoredRecord b = Plate(2);
  StoredRecord c = Plate(3);
  StoredRecord dup = Plate(4);
  dup.meta.id = a.meta.id;
  Status s = store_->Put({b, c, dup});
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  StoredRecord got;
  EXPECT_EQ(store_->Get(b.meta.id, &got).code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->Get(c.meta.id, &got).code(), Status::Code::kNotFound);
  ASSERT_TRUE(store_->Get(a.meta.id, &got).ok());
  EXPECT_EQ(got, a);  // the original is untouched
}

TEST_P(StoreTest, InvalidRecordsAreRefusedBeforeAnythingIsWritten) {
  Migrate();
  StoredRecord good = Plate(1);
  StoredRecord bad_id = Plate(2);
  bad_id.meta.id = "not-an-id";
  StoredRecord no_kek = Plate(3);
  no_kek.kek_id.clear();
  StoredRecord backwards = Plate(4);
  backwards.meta.expires_micros = backwards.meta.created_micros - 1;
  StoredRecord many_labels = Plate(5);
  for (int i = 0; i < 20; ++i) many_labels.meta.labels["k" + std::to_string(i)] = "v";
  for (const StoredRecord& bad : {bad_id, no_kek, backwards, many_labels}) {
    Status s = store_->Put({good, bad});
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  }
  EXPECT_EQ(store_->Put({good, good}).code(), Status::Code::kInvalidArgument);
  StoredRecord got;
  EXPECT_EQ(store_->Get(good.meta.id, &got).code(), Status::Code::kNotFound);
}

TEST_P(StoreTest, ListFiltersAndPagesInCreationOrder) {
  Migrate();
  std::vector<StoredRecord> records;
  for (int i = 0; i < 30; ++i) {
    RecordType type = i % 3 == 0 ? RecordType::kTemplate : RecordType::kPlateRead;
    SubjectCategory subject = i % 2 == 0 ? SubjectCategory::kCitizen : SubjectCategory::kVehicle;
    // Some records share a creation time so the cursor's id tie-break is exercised.
    records.push_back(MakeRecord(type, subject, i < 10 ? "short" : "long",
                                 "kek/" + std::to_string(i % 4), 1000 + i / 2, 5000 + i, "x"));
  }
  Put(records);
  auto ids = [](const std::vector<RecordMeta>& metas) {
    std::vector<std::string> out;
    out.reserve(metas.size());
    for (const auto& m : metas) out.push_back(m.id);
    return out;
  };
  auto expect = [&](auto pred) {
    std::vector<const StoredRecord*> want;
    for (const auto& r : records) {
      if (pred(r)) want.push_back(&r);
    }
    std::sort(want.begin(), want.end(), [](const StoredRecord* x, const StoredRecord* y) {
      return std::tie(x->meta.created_micros, x->meta.id) <
             std::tie(y->meta.created_micros, y->meta.id);
    });
    std::vector<std::string> out;
    out.reserve(want.size());
    for (const auto* r : want) out.push_back(r->meta.id);
    return out;
  };

  RecordFilter all;
  all.limit = 7;  // 30 records -> 5 pages
  std::vector<RecordMeta> listed = ListAll(all);
  EXPECT_EQ(ids(listed), expect([](const StoredRecord&) { return true; }));
  ASSERT_EQ(listed.size(), 30U);
  // Listing is metadata only, but all of it.
  auto original = std::find_if(records.begin(), records.end(),
                               [&](const StoredRecord& r) { return r.meta.id == listed[0].id; });
  ASSERT_NE(original, records.end());
  EXPECT_EQ(listed[0], original->meta);

  RecordFilter by_type;
  by_type.type = RecordType::kTemplate;
  EXPECT_EQ(ids(ListAll(by_type)),
            expect([](const StoredRecord& r) { return r.meta.type == RecordType::kTemplate; }));
  RecordFilter by_subject_and_class;
  by_subject_and_class.subject = SubjectCategory::kCitizen;
  by_subject_and_class.retention_class = "long";
  by_subject_and_class.limit = 3;
  EXPECT_EQ(ids(ListAll(by_subject_and_class)), expect([](const StoredRecord& r) {
              return r.meta.subject == SubjectCategory::kCitizen &&
                     r.meta.retention_class == "long";
            }));
  RecordFilter by_kek;
  by_kek.kek_id = "kek/2";
  EXPECT_EQ(ids(ListAll(by_kek)),
            expect([](const StoredRecord& r) { return r.kek_id == "kek/2"; }));
  RecordFilter by_time;
  by_time.created_from = 1003;
  by_time.created_until = 1008;
  by_time.expires_before = 5020;
  EXPECT_EQ(ids(ListAll(by_time)), expect([](const StoredRecord& r) {
              return r.meta.created_micros >= 1003 && r.meta.created_micros < 1008 &&
                     r.meta.expires_micros < 5020;
            }));
  EXPECT_FALSE(ListAll(by_time).empty());

  RecordPage page;
  RecordFilter bad;
  bad.cursor = "garbage";
  EXPECT_EQ(store_->List(bad, &page).code(), Status::Code::kInvalidArgument);
  bad.cursor.clear();
  bad.limit = 0;
  EXPECT_EQ(store_->List(bad, &page).code(), Status::Code::kInvalidArgument);
}

TEST_P(StoreTest, RewrapIsCompareAndSetOnTheOldKekAndLeavesTheBodyAlone) {
  Migrate();
  StoredRecord a = Plate(1, "kek/old");
  StoredRecord b = Plate(2, "kek/other");
  Put({a, b});
  std::string missing = NewRecordId();
  std::vector<std::string> conflicts;
  Status s = store_->UpdateWrappedKeys(
      {{a.meta.id, "kek/old", "kek/new", std::string("new\0key", 7)},
       {b.meta.id, "kek/old", "kek/new", "stale"},  // b is not under kek/old
       {missing, "kek/old", "kek/new", "nobody"}},
      &conflicts);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::sort(conflicts.begin(), conflicts.end());
  std::vector<std::string> want = {b.meta.id, missing};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(conflicts, want);
  StoredRecord got;
  ASSERT_TRUE(store_->Get(a.meta.id, &got).ok());
  EXPECT_EQ(got.kek_id, "kek/new");
  EXPECT_EQ(got.wrapped_key, std::string("new\0key", 7));
  EXPECT_EQ(got.sealed, a.sealed);
  EXPECT_EQ(got.meta, a.meta);
  ASSERT_TRUE(store_->Get(b.meta.id, &got).ok());
  EXPECT_EQ(got, b);
  // A second rotation from the old KEK finds nothing to do.
  ASSERT_TRUE(store_->UpdateWrappedKeys({{a.meta.id, "kek/old", "kek/x", "k"}}, &conflicts).ok());
  EXPECT_EQ(conflicts, std::vector<std::string>{a.meta.id});
  EXPECT_EQ(store_->UpdateWrappedKeys({{a.meta.id, "kek/new", "", "k"}}, &conflicts).code(),
            Status::Code::kInvalidArgument);
}

TEST_P(StoreTest, DeleteByKekRemovesExactlyItsRecords) {
  Migrate();
  std::vector<StoredRecord> doomed = {Plate(1, "kek/a"), Plate(2, "kek/a"), Plate(3, "kek/a")};
  StoredRecord kept = Plate(4, "kek/b");
  std::vector<StoredRecord> all = doomed;
  all.push_back(kept);
  Put(all);
  std::uint64_t count = 0;
  ASSERT_TRUE(store_->CountByKek("kek/a", &count).ok());
  EXPECT_EQ(count, 3U);
  std::vector<std::string> keks;
  ASSERT_TRUE(store_->ListKekIds(&keks).ok());
  EXPECT_EQ(keks, (std::vector<std::string>{"kek/a", "kek/b"}));

  std::vector<std::string> deleted;
  ASSERT_TRUE(store_->DeleteByKek("kek/a", &deleted).ok());
  std::vector<std::string> want;
  want.reserve(doomed.size());
  for (const auto& r : doomed) want.push_back(r.meta.id);
  std::sort(want.begin(), want.end());
  EXPECT_EQ(deleted, want);
  StoredRecord got;
  for (const auto& r : doomed)
    EXPECT_EQ(store_->Get(r.meta.id, &got).code(), Status::Code::kNotFound);
  ASSERT_TRUE(store_->Get(kept.meta.id, &got).ok());
  EXPECT_EQ(got, kept);
  ASSERT_TRUE(store_->CountByKek("kek/a", &count).ok());
  EXPECT_EQ(count, 0U);
  ASSERT_TRUE(store_->ListKekIds(&keks).ok());
  EXPECT_EQ(keks, std::vector<std::string>{"kek/b"});
  ASSERT_TRUE(store_->DeleteByKek("kek/a", &deleted).ok());
  EXPECT_TRUE(deleted.empty());
}

TEST_P(StoreTest, DeleteRemovesOneRecordAndSaysWhenThereIsNone) {
  Migrate();
  StoredRecord doomed = Plate(1, "kek/a");
  StoredRecord kept = Plate(2, "kek/a");
  Put({doomed, kept});
  ASSERT_TRUE(store_->Delete(doomed.meta.id).ok());
  StoredRecord got;
  EXPECT_EQ(store_->Get(doomed.meta.id, &got).code(), Status::Code::kNotFound);
  ASSERT_TRUE(store_->Get(kept.meta.id, &got).ok());
  EXPECT_EQ(got, kept);
  // Deleting twice, or an id that never existed, is NotFound and touches nothing else.
  EXPECT_EQ(store_->Delete(doomed.meta.id).code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->Delete(NewRecordId()).code(), Status::Code::kNotFound);
  std::uint64_t count = 0;
  ASSERT_TRUE(store_->CountByKek("kek/a", &count).ok());
  EXPECT_EQ(count, 1U);
}

TEST_P(StoreTest, DeleteExpiredRemovesRecordsWhoseTimeHasCome) {
  Migrate();
  StoredRecord early = Plate(1);   // expires 101
  StoredRecord exact = Plate(50);  // expires 150
  StoredRecord late = Plate(51);   // expires 151
  Put({early, exact, late});
  std::vector<std::string> deleted;
  ASSERT_TRUE(store_->DeleteExpired(150, &deleted).ok());
  std::vector<std::string> want = {early.meta.id, exact.meta.id};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(deleted, want);
  StoredRecord got;
  EXPECT_TRUE(store_->Get(late.meta.id, &got).ok());
  EXPECT_EQ(store_->Get(exact.meta.id, &got).code(), Status::Code::kNotFound);
}

TEST_P(StoreTest, ADatabaseFromANewerVersionIsRefused) {
  Migrate();
  Put({Plate(1)});
  ExecRaw(GetParam(), scratch_->uri(),
          "INSERT INTO schema_version (version, description, applied_micros) "
          "VALUES (99, 'from the future', 0)");
  Status s = store_->Migrate();
  EXPECT_EQ(s.code(), Status::Code::kUnsupported) << s.ToString();
  EXPECT_NE(s.message().find("99"), std::string::npos) << s.message();
  store_.reset();
  s = RecordStore::Open(scratch_->uri(), &store_);
  EXPECT_EQ(s.code(), Status::Code::kUnsupported) << s.ToString();
}

TEST_P(StoreTest, BackupIsAConsistentCopyOnSqliteAndUnsupportedOnPostgres) {
  Migrate();
  StoredRecord a = Plate(1, "kek/a");
  Put({a});
  std::string dir = testing::MakeTempDir();
  ASSERT_FALSE(dir.empty());
  std::string dest = "sqlite:" + dir + "/backup.db";
  Status s = store_->Backup(dest);
  if (GetParam() == Backend::kPostgres) {
    EXPECT_EQ(s.code(), Status::Code::kUnsupported) << s.ToString();
    std::filesystem::remove_all(dir);
    return;
  }
  ASSERT_TRUE(s.ok()) << s.ToString();
  // Purge the original; the backup still holds the record (its KEK, not the file, is what kills
  // it).
  std::vector<std::string> deleted;
  ASSERT_TRUE(store_->DeleteByKek("kek/a", &deleted).ok());
  ASSERT_EQ(deleted.size(), 1U);
  std::unique_ptr<RecordStore> copy;
  ASSERT_TRUE(RecordStore::Open(dest, &copy).ok());
  StoredRecord got;
  ASSERT_TRUE(copy->Get(a.meta.id, &got).ok());
  EXPECT_EQ(got, a);
  // Never overwrites an existing file.
  EXPECT_EQ(store_->Backup(dest).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->Backup("postgresql:///x").code(), Status::Code::kInvalidArgument);
  copy.reset();
  std::filesystem::remove_all(dir);
}

// --- Crash safety ------------------------------------------------------------------------------

// A writer child, killed on scope exit if still running.
class Writer {
 public:
  Writer(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<std::string> copy = args;
    copy.insert(copy.begin(), PORTCULLIS_VAULT_STORE_WRITER);
    std::vector<char*> argv;
    argv.reserve(copy.size() + 1);
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_ = ::fdopen(fds[0], "r");
  }
  ~Writer() {
    Kill();
    if (out_ != nullptr) std::fclose(out_);
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  [[nodiscard]] bool started() const { return pid_ > 0 && out_ != nullptr; }
  // The next line the child printed, or "" at end of output.
  std::string ReadLine() {
    char line[512];
    if (std::fgets(line, sizeof line, out_) == nullptr) return "";
    std::string s(line);
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    Wait();
  }
  int Wait() {
    int status = 0;
    if (pid_ > 0) ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
};

TEST_P(StoreTest, SigkillMidWriteLosesNoAcknowledgedBatchAndHalvesNone) {
  Migrate();
  store_.reset();
  constexpr std::uint32_t kBatchSize = 8;
  constexpr std::size_t kMaxBody = std::size_t{24} * 1024;
  std::set<std::uint64_t> acked;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;  // [first, last attempted]
  for (std::uint64_t round = 0; round < 3; ++round) {
    std::uint64_t first = round * 10000;
    Writer writer({scratch_->uri(), std::to_string(first), "10000", std::to_string(kBatchSize),
                   std::to_string(kMaxBody)});
    ASSERT_TRUE(writer.started());
    std::uint64_t want = 4 + 3 * round;  // kill at a different point each round
    std::uint64_t last = first;
    for (std::uint64_t n = 0; n < want; ++n) {
      std::string line = writer.ReadLine();
      ASSERT_EQ(line.rfind("ack ", 0), 0U) << "writer said '" << line << "'";
      last = std::stoull(line.substr(4));
      acked.insert(last);
    }
    writer.Kill();  // most likely in the middle of the next Put
    ranges.emplace_back(first, last + 1);
  }
  ASSERT_TRUE(RecordStore::Open(scratch_->uri(), &store_).ok());
  std::uint64_t complete_records = 0;
  for (const auto& [first, last] : ranges) {
    for (std::uint64_t b = first; b <= last + 1; ++b) {
      std::size_t present = 0;
      for (const StoredRecord& want : testing::Batch(b, kBatchSize, kMaxBody)) {
        StoredRecord got;
        Status s = store_->Get(want.meta.id, &got);
        if (s.ok()) {
          ++present;
          EXPECT_EQ(got, want) << "record " << want.meta.id << " of batch " << b << " differs";
        } else {
          EXPECT_EQ(s.code(), Status::Code::kNotFound) << s.ToString();
        }
      }
      EXPECT_TRUE(present == 0 || present == kBatchSize)
          << "batch " << b << " is half-written: " << present << " of " << kBatchSize;
      if (acked.count(b) != 0) {
        EXPECT_EQ(present, kBatchSize) << "acknowledged batch " << b << " was lost";
      }
      if (present == kBatchSize) complete_records += kBatchSize;
    }
  }
  // Nothing else is in the store: every record belongs to a complete batch counted above.
  RecordFilter filter;
  filter.limit = kMaxListLimit;
  EXPECT_EQ(ListAll(filter).size(), complete_records);
  EXPECT_GE(complete_records, acked.size() * kBatchSize);
}

// --- SQLite segment files: crash between body and row, torn tail, shredding ---------------------

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> SegmentFiles(const std::string& db_path) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(db_path + ".blobs", ec)) {
    files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Bytes a batch puts into segment files: bodies over 4 KiB (smaller ones stay in the row), when
// they add up to 256 KiB or more (a smaller batch stays on the WAL path).
std::uint64_t SegmentBytes(std::uint64_t batch, std::uint32_t size, std::size_t max_body) {
  std::uint64_t bytes = 0;
  for (const StoredRecord& r : testing::Batch(batch, size, max_body)) {
    if (r.sealed.size() > 4096) bytes += r.sealed.size();
  }
  return bytes >= (std::uint64_t{256} << 10) ? bytes : 0;
}

class SegmentCrashTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    path_ = dir_ + "/vault.db";
    uri_ = "sqlite:" + path_;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_, uri_;
};

// The writer dies at the fault point (after its bodies were written, or written and synced, but
// before their rows committed) in its 4th batch: the 3 acknowledged batches read back intact,
// the 4th is absent, its bodies are unreferenced bytes at the segment's tail. A torn tail (cut in
// the middle of those bytes) changes nothing. A new writer carries on in a new segment. The
// purge's scrub cuts the dead segment back to its last live byte, and deleting rows removes their
// bodies' bytes from the files (crypto-shredding's storage half); an empty segment is unlinked.
TEST_P(SegmentCrashTest, KillBetweenBodyWriteAndRowCommitThenScrubAndShred) {
  constexpr std::uint32_t kBatchSize = 16;
  constexpr std::size_t kMaxBody = std::size_t{128} * 1024;
  for (std::uint64_t b : {0, 1, 2, 3, 100, 101}) {
    ASSERT_GT(SegmentBytes(b, kBatchSize, kMaxBody), 0U) << "batch " << b << " is not a segment's";
  }
  {
    std::unique_ptr<RecordStore> store;
    ASSERT_TRUE(RecordStore::Open(uri_, &store).ok());
    ASSERT_TRUE(store->Migrate().ok());
  }
  ::setenv("VAULT_WRITER_KILL_AT", (std::string(GetParam()) + ":3").c_str(), 1);
  Writer writer({uri_, "0", "10", std::to_string(kBatchSize), std::to_string(kMaxBody)});
  ::unsetenv("VAULT_WRITER_KILL_AT");
  ASSERT_TRUE(writer.started());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(writer.ReadLine(), "ack " + std::to_string(i));
  EXPECT_EQ(writer.ReadLine(), "");  // killed, not an error line
  const int status = writer.Wait();
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

  std::uint64_t acked_bytes = 0;
  for (std::uint64_t b = 0; b < 3; ++b) acked_bytes += SegmentBytes(b, kBatchSize, kMaxBody);
  std::vector<std::string> segments = SegmentFiles(path_);
  ASSERT_EQ(segments.size(), 1U);
  const std::string first_segment = segments.front();
  const auto crashed_size = std::filesystem::file_size(first_segment);
  EXPECT_EQ(crashed_size, acked_bytes + SegmentBytes(3, kBatchSize, kMaxBody));
  // A torn append: the crash cut the 4th batch's bodies in the middle.
  std::filesystem::resize_file(first_segment, acked_bytes + (crashed_size - acked_bytes) / 2);

  Writer next({uri_, "100", "2", std::to_string(kBatchSize), std::to_string(kMaxBody)});
  ASSERT_TRUE(next.started());
  EXPECT_EQ(next.ReadLine(), "ack 100");
  EXPECT_EQ(next.ReadLine(), "ack 101");
  EXPECT_EQ(next.ReadLine(), "");
  next.Wait();
  EXPECT_EQ(SegmentFiles(path_).size(), 2U) << "the new writer appends to a segment of its own";

  std::unique_ptr<RecordStore> store;
  ASSERT_TRUE(RecordStore::Open(uri_, &store).ok());
  auto check = [&](std::uint64_t b, bool want) {
    for (const StoredRecord& r : testing::Batch(b, kBatchSize, kMaxBody)) {
      StoredRecord got;
      Status s = store->Get(r.meta.id, &got);
      if (want) {
        ASSERT_TRUE(s.ok()) << "batch " << b << ": " << s.ToString();
        EXPECT_EQ(got, r);
      } else {
        EXPECT_EQ(s.code(), Status::Code::kNotFound) << "batch " << b << ": " << s.ToString();
      }
    }
  };
  for (std::uint64_t b : {0, 1, 2, 100, 101}) check(b, true);
  check(3, false);

  // The purge's last step scrubs: the orphaned, torn tail of the dead segment is cut off.
  std::vector<std::string> deleted;
  ASSERT_TRUE(store->DeleteExpired(0, &deleted).ok());
  EXPECT_TRUE(deleted.empty());
  EXPECT_EQ(std::filesystem::file_size(first_segment), acked_bytes);
  for (std::uint64_t b : {0, 1, 2, 100, 101}) check(b, true);

  // Shredding batch 1's KEK's rows: their bodies' bytes are gone from every segment file.
  std::vector<StoredRecord> doomed;
  for (std::uint64_t b : {0, 1, 2, 100, 101}) {
    for (const StoredRecord& r : testing::Batch(b, kBatchSize, kMaxBody)) {
      if (r.kek_id == "kek/plate/1" && r.sealed.size() > 4096) doomed.push_back(r);
    }
  }
  ASSERT_FALSE(doomed.empty());
  std::string all_bytes;
  for (const std::string& f : SegmentFiles(path_)) all_bytes += ReadWholeFile(f);
  for (const StoredRecord& r : doomed) {
    ASSERT_NE(all_bytes.find(r.sealed.substr(0, 256)), std::string::npos);
  }
  ASSERT_TRUE(store->DeleteByKek("kek/plate/1", &deleted).ok());
  all_bytes.clear();
  for (const std::string& f : SegmentFiles(path_)) all_bytes += ReadWholeFile(f);
  for (const StoredRecord& r : doomed) {
    EXPECT_EQ(all_bytes.find(r.sealed.substr(0, 256)), std::string::npos)
        << "body of deleted record " << r.meta.id << " is still in a segment file";
  }
  // Everything else still reads; when every row is gone, so are the segment files.
  for (std::uint64_t b : {0, 1, 2, 100, 101}) {
    for (const StoredRecord& r : testing::Batch(b, kBatchSize, kMaxBody)) {
      StoredRecord got;
      Status s = store->Get(r.meta.id, &got);
      if (r.kek_id == "kek/plate/1") {
        EXPECT_EQ(s.code(), Status::Code::kNotFound);
      } else {
        ASSERT_TRUE(s.ok()) << s.ToString();
        EXPECT_EQ(got, r);
      }
    }
  }
  ASSERT_TRUE(store->DeleteExpired(std::numeric_limits<std::int64_t>::max(), &deleted).ok());
  EXPECT_FALSE(deleted.empty());
  EXPECT_TRUE(SegmentFiles(path_).empty());
}

// A backup copies the segment files its rows point into: it reads back whole after the
// original's rows, and their bodies, are deleted.
TEST_F(SegmentCrashTest, ABackupCarriesItsSegments) {
  const std::vector<StoredRecord> batch = testing::Batch(0, 16, std::size_t{128} * 1024);
  ASSERT_GT(SegmentBytes(0, 16, std::size_t{128} * 1024), 0U);
  std::unique_ptr<RecordStore> store;
  ASSERT_TRUE(RecordStore::Open(uri_, &store).ok());
  ASSERT_TRUE(store->Migrate().ok());
  ASSERT_TRUE(store->Put(batch).ok());
  ASSERT_TRUE(store->Backup("sqlite:" + dir_ + "/copy.db").ok());
  EXPECT_EQ(SegmentFiles(dir_ + "/copy.db").size(), 1U);
  std::vector<std::string> deleted;
  ASSERT_TRUE(store->DeleteExpired(std::numeric_limits<std::int64_t>::max(), &deleted).ok());
  EXPECT_EQ(deleted.size(), batch.size());
  std::unique_ptr<RecordStore> copy;
  ASSERT_TRUE(RecordStore::Open("sqlite:" + dir_ + "/copy.db", &copy).ok());
  for (const StoredRecord& r : batch) {
    StoredRecord got;
    ASSERT_TRUE(copy->Get(r.meta.id, &got).ok()) << r.meta.id;
    EXPECT_EQ(got, r);
  }
}

// Group commit: batches from concurrent callers share one fdatasync and one WAL commit, yet each
// stands or falls alone — a batch with a duplicate id fails by itself, its neighbours commit.
TEST_F(SegmentCrashTest, ConcurrentBatchesCommitTogetherButFailAlone) {
  std::unique_ptr<RecordStore> store;
  ASSERT_TRUE(RecordStore::Open(uri_, &store).ok());
  ASSERT_TRUE(store->Migrate().ok());
  auto make = [](std::uint64_t b) {
    std::vector<StoredRecord> batch = testing::Batch(b, 4, 1024);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i].sealed = testing::RandomBytes(b * 10 + i, std::size_t{100} * 1024);
    }
    return batch;
  };
  const std::vector<StoredRecord> first = make(999);
  ASSERT_TRUE(store->Put(first).ok());
  constexpr int kThreads = 4;
  constexpr std::uint64_t kBatches = 8;
  std::vector<std::vector<Status>> results(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (std::uint64_t b = 0; b < kBatches; ++b) {
        std::vector<StoredRecord> batch = make(static_cast<std::uint64_t>(t) * 100 + b);
        // Thread 0's odd batches end with a record that already exists.
        if (t == 0 && b % 2 == 1) batch.back() = first.front();
        results[static_cast<std::size_t>(t)].push_back(store->Put(batch));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    for (std::uint64_t b = 0; b < kBatches; ++b) {
      const bool bad = t == 0 && b % 2 == 1;
      const Status& s = results[static_cast<std::size_t>(t)][b];
      if (bad) {
        EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
      } else {
        EXPECT_TRUE(s.ok()) << "thread " << t << " batch " << b << ": " << s.ToString();
      }
      std::vector<StoredRecord> batch = make(static_cast<std::uint64_t>(t) * 100 + b);
      if (bad) batch.pop_back();  // the duplicate; the rest of its batch must be absent
      for (const StoredRecord& r : batch) {
        StoredRecord got;
        Status g = store->Get(r.meta.id, &got);
        if (bad) {
          EXPECT_EQ(g.code(), Status::Code::kNotFound) << g.ToString();
        } else {
          ASSERT_TRUE(g.ok()) << g.ToString();
          EXPECT_EQ(got, r);
        }
      }
    }
  }
  StoredRecord got;
  ASSERT_TRUE(store->Get(first.front().meta.id, &got).ok());
  EXPECT_EQ(got, first.front());
}

INSTANTIATE_TEST_SUITE_P(Points, SegmentCrashTest,
                         ::testing::Values("bodies-written", "bodies-synced"),
                         [](const ::testing::TestParamInfo<const char*>& point) {
                           return std::string(point.param).substr(7);  // "written", "synced"
                         });

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testing::BackendName);

}  // namespace
}  // namespace portcullis::vault
