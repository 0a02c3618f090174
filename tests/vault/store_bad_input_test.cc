// Bad input for the store: malformed URIs, files that are not (or no longer) databases, a full
// disk, a PostgreSQL server that is not there — each a clear Status, never a crash or silent loss.
// Also the record model's names, ids and validation.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "store_test_records.h"
#include "store_test_util.h"
#include "vault/record_store.h"
#include "vault/store_uri.h"

namespace portcullis::vault {
namespace {

TEST(RecordModel, NamesAreStableAndRoundTrip) {
  EXPECT_EQ(RecordTypeName(RecordType::kGalleryPhoto), "gallery_photo");
  EXPECT_EQ(RecordTypeName(RecordType::kKeptCapture), "kept_capture");
  EXPECT_EQ(SubjectCategoryName(SubjectCategory::kNonCitizen), "non_citizen");
  for (RecordType t : {RecordType::kTraveller, RecordType::kDocument, RecordType::kGalleryPhoto,
                       RecordType::kTemplate, RecordType::kPlateRead, RecordType::kMatchDecision,
                       RecordType::kKeptCapture}) {
    RecordType parsed{};
    ASSERT_TRUE(ParseRecordType(RecordTypeName(t), &parsed).ok());
    EXPECT_EQ(parsed, t);
  }
  for (SubjectCategory c :
       {SubjectCategory::kCitizen, SubjectCategory::kNonCitizen, SubjectCategory::kVehicle}) {
    SubjectCategory parsed{};
    ASSERT_TRUE(ParseSubjectCategory(SubjectCategoryName(c), &parsed).ok());
    EXPECT_EQ(parsed, c);
  }
  RecordType t{};
  EXPECT_EQ(ParseRecordType("Plate_Read", &t).code(), Status::Code::kInvalidArgument);
  SubjectCategory c{};
  EXPECT_EQ(ParseSubjectCategory("", &c).code(), Status::Code::kInvalidArgument);
}

TEST(RecordModel, IdsAreRandom128BitHex) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewRecordId();
    EXPECT_TRUE(IsValidRecordId(id)) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000U);
  EXPECT_FALSE(IsValidRecordId("0123456789ABCDEF0123456789abcdef"));  // upper case
  EXPECT_FALSE(IsValidRecordId("0123456789abcdef0123456789abcde"));   // 31 digits
  EXPECT_FALSE(IsValidRecordId(""));
}

TEST(RecordModel, ValidationNamesTheBadField) {
  StoredRecord r = testing::BatchRecord(1, 0, 100);
  ASSERT_TRUE(ValidateStoredRecord(r).ok());
  StoredRecord long_value = r;
  long_value.meta.labels["lane"] = std::string(kMaxLabelValueBytes + 1, 'x');
  Status s = ValidateStoredRecord(long_value);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("lane"), std::string::npos) << s.message();
  StoredRecord no_class = r;
  no_class.meta.retention_class.clear();
  s = ValidateStoredRecord(no_class);
  EXPECT_NE(s.message().find("retention_class"), std::string::npos) << s.message();
}

TEST(StoreUri, MalformedUrisAreInvalidArgument) {
  for (const char* uri : {"", "sqlite:", "mysql://host/db", "sqlite:file:x.db",
                          "sqlite::memory:", "/var/lib/vault.db", "postgresql:/nohost"}) {
    std::unique_ptr<RecordStore> store;
    Status s = RecordStore::Open(uri, &store);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << "'" << uri << "': " << s.ToString();
    EXPECT_EQ(store, nullptr);
  }
}

TEST(StoreUri, PasswordsAreRedacted) {
  EXPECT_EQ(RedactStoreUri("postgresql://vault:s3cret@db:5432/portcullis"),
            "postgresql://vault:***@db:5432/portcullis");
  EXPECT_EQ(RedactStoreUri("postgres:///p?host=/run&password=s3cret&user=v"),
            "postgres:///p?host=/run&password=***&user=v");
  std::unique_ptr<RecordStore> store;
  Status s = RecordStore::Open("mysql://u:s3cret@h/db", &store);
  EXPECT_EQ(s.message().find("s3cret"), std::string::npos) << s.message();
}

class BadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/vault.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // A store of `records` records of up to 50 KB, closed (so the WAL is checkpointed into the
  // file). With `body` set, every body has exactly that size instead.
  std::vector<StoredRecord> Fill(std::uint32_t records, std::size_t body = 0) {
    std::unique_ptr<RecordStore> store;
    EXPECT_TRUE(RecordStore::Open("sqlite:" + path_, &store).ok());
    EXPECT_TRUE(store->Migrate().ok());
    std::vector<StoredRecord> batch = testing::Batch(1, records, std::size_t{50} * 1024);
    for (std::size_t i = 0; body != 0 && i < batch.size(); ++i) {
      batch[i].sealed = testing::RandomBytes(i, body);
    }
    Status s = store->Put(batch);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return batch;
  }
  std::string dir_;
  std::string path_;
};

TEST_F(BadFileTest, AGarbageFileIsCorruption) {
  std::ofstream(path_) << std::string(8192, 'G');
  std::unique_ptr<RecordStore> store;
  Status s = RecordStore::Open("sqlite:" + path_, &store);
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(path_), std::string::npos) << s.message();
}

TEST_F(BadFileTest, ATruncatedDatabaseIsCorruptionNotACrash) {
  // The 50 KB bodies live in the segment file; the database holds 40 rows over several pages.
  std::vector<StoredRecord> records = Fill(40);
  auto size = std::filesystem::file_size(path_);
  ASSERT_GT(size, 16384U);
  std::filesystem::resize_file(path_, size / 3);
  std::unique_ptr<RecordStore> store;
  Status s = RecordStore::Open("sqlite:" + path_, &store);
  if (s.ok()) {
    // The header and schema survived; reading the lost pages must say so.
    RecordFilter filter;
    filter.limit = kMaxListLimit;
    RecordPage page;
    s = store->List(filter, &page);
    if (s.ok()) {
      for (const StoredRecord& r : records) {
        StoredRecord got;
        s = store->Get(r.meta.id, &got);
        if (!s.ok()) break;
        ASSERT_EQ(got, r);  // whatever is returned is never silently wrong
      }
    }
  }
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
}

// 4 of these make a batch that goes to a segment file (over 256 KiB of bodies over 4 KiB).
constexpr std::size_t kSegmentBody = std::size_t{100} * 1024;

// The segment files that hold large bodies (docs/vault-store.md): damage there is Corruption
// for the record it hits, never wrong bytes, and the other records still read.
std::string OnlySegment(const std::string& db_path) {
  std::vector<std::string> segments;
  for (const auto& entry : std::filesystem::directory_iterator(db_path + ".blobs")) {
    segments.push_back(entry.path().string());
  }
  EXPECT_EQ(segments.size(), 1U);
  return segments.empty() ? std::string() : segments.front();
}

TEST_F(BadFileTest, ATruncatedSegmentIsCorruptionForTheRecordsItCut) {
  std::vector<StoredRecord> records = Fill(4, kSegmentBody);
  const std::string segment = OnlySegment(path_);
  const auto size = std::filesystem::file_size(segment);
  std::uint64_t total = 0;
  for (const StoredRecord& r : records) total += r.sealed.size();
  ASSERT_EQ(size, total);  // each body written once, back to back
  std::filesystem::resize_file(segment, size - 1);
  std::unique_ptr<RecordStore> store;
  ASSERT_TRUE(RecordStore::Open("sqlite:" + path_, &store).ok());
  for (std::size_t i = 0; i < records.size(); ++i) {
    StoredRecord got;
    Status s = store->Get(records[i].meta.id, &got);
    if (i + 1 < records.size()) {
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(got, records[i]);
    } else {
      EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
      EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.message();
      EXPECT_TRUE(got.sealed.empty());
    }
  }
}

TEST_F(BadFileTest, AFlippedBitInASegmentIsCorruption) {
  std::vector<StoredRecord> records = Fill(4, kSegmentBody);
  const std::string segment = OnlySegment(path_);
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(100);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x10);
    f.seekp(100);
    f.write(&c, 1);
  }
  std::unique_ptr<RecordStore> store;
  ASSERT_TRUE(RecordStore::Open("sqlite:" + path_, &store).ok());
  StoredRecord got;
  Status s = store->Get(records[0].meta.id, &got);
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("CRC"), std::string::npos) << s.message();
  ASSERT_TRUE(store->Get(records[1].meta.id, &got).ok());
  EXPECT_EQ(got, records[1]);
}

TEST_F(BadFileTest, AMissingSegmentIsCorruptionNamingIt) {
  std::vector<StoredRecord> records = Fill(4, kSegmentBody);
  const std::string segment = OnlySegment(path_);
  std::filesystem::remove(segment);
  std::unique_ptr<RecordStore> store;
  ASSERT_TRUE(RecordStore::Open("sqlite:" + path_, &store).ok());
  StoredRecord got;
  Status s = store->Get(records[0].meta.id, &got);
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(segment), std::string::npos) << s.message();
}

TEST_F(BadFileTest, AFileCutInsideItsHeaderIsCorruption) {
  Fill(2);
  std::filesystem::resize_file(path_, 50);
  std::unique_ptr<RecordStore> store;
  Status s = RecordStore::Open("sqlite:" + path_, &store);
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
}

TEST_F(BadFileTest, AnUnreachableDirectoryIsIOError) {
  std::unique_ptr<RecordStore> store;
  Status s = RecordStore::Open("sqlite:" + dir_ + "/no/such/dir/vault.db", &store);
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
}

// The disk fills while a writer child is mid-stream: the failing Put reports IOError and writes
// nothing, and every batch acknowledged before it is intact. Two ways to fill it: a file-size
// limit (RLIMIT_FSIZE: write() fails with EFBIG, always available) and a real 2 MiB tmpfs
// (ENOSPC; needs the privilege to mount, which CI's root has).
enum class FullDisk { kFileSizeLimit, kSmallTmpfs };

class FullDiskTest : public ::testing::TestWithParam<FullDisk> {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    if (GetParam() == FullDisk::kSmallTmpfs) {
      if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=2m") != 0) {
        GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno)
                     << "); the file-size-limit variant covers the full disk";
      }
      mounted_ = true;
    }
  }
  void TearDown() override {
    if (mounted_) ::umount(dir_.c_str());
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  bool mounted_ = false;
};

TEST_P(FullDiskTest, IsIOErrorAndLosesNothingAcknowledged) {
  constexpr std::uint32_t kBatchSize = 4;
  constexpr std::size_t kMaxBody = std::size_t{100} * 1024;
  const std::string uri = "sqlite:" + dir_ + "/vault.db";
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<std::string> args = {
      PORTCULLIS_VAULT_STORE_WRITER, uri, "0", "1000", std::to_string(kBatchSize),
      std::to_string(kMaxBody)};
  if (GetParam() == FullDisk::kFileSizeLimit) args.push_back(std::to_string(2 * 1024 * 1024));
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  FILE* out = ::fdopen(fds[0], "r");
  ASSERT_NE(out, nullptr);
  std::vector<std::uint64_t> acked;
  std::string error;
  char line[1024];
  while (std::fgets(line, sizeof line, out) != nullptr) {
    std::string s(line);
    if (s.rfind("ack ", 0) == 0) acked.push_back(std::stoull(s.substr(4)));
    if (s.rfind("error ", 0) == 0) error = s;
  }
  std::fclose(out);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "writer died instead of reporting: status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_EQ(error.rfind("error IO error", 0), 0U) << error;
  EXPECT_NE(error.find("disk full"), std::string::npos) << error;
  ASSERT_GE(acked.size(), 2U) << "the limit should allow a few batches before filling";
  ASSERT_LT(acked.size(), 1000U);

  // The store opens (still full) and holds exactly the acknowledged batches.
  std::unique_ptr<RecordStore> store;
  Status s = RecordStore::Open(uri, &store);
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (std::uint64_t b : acked) {
    for (const StoredRecord& want : testing::Batch(b, kBatchSize, kMaxBody)) {
      StoredRecord got;
      s = store->Get(want.meta.id, &got);
      ASSERT_TRUE(s.ok()) << "acknowledged batch " << b << ": " << s.ToString();
      EXPECT_EQ(got, want);
    }
  }
  std::uint64_t failed = acked.back() + 1;
  for (const StoredRecord& want : testing::Batch(failed, kBatchSize, kMaxBody)) {
    StoredRecord got;
    EXPECT_EQ(store->Get(want.meta.id, &got).code(), Status::Code::kNotFound)
        << "the batch that hit the full disk was partly stored";
  }
  RecordFilter filter;
  filter.limit = kMaxListLimit;
  RecordPage page;
  ASSERT_TRUE(store->List(filter, &page).ok());
  EXPECT_EQ(page.records.size(), acked.size() * kBatchSize);
  if (GetParam() == FullDisk::kFileSizeLimit) {
    // Without the limit, the store accepts writes again.
    s = store->Put(testing::Batch(failed, kBatchSize, kMaxBody));
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
}

INSTANTIATE_TEST_SUITE_P(Ways, FullDiskTest,
                         ::testing::Values(FullDisk::kFileSizeLimit, FullDisk::kSmallTmpfs),
                         [](const ::testing::TestParamInfo<FullDisk>& param) {
                           return param.param == FullDisk::kFileSizeLimit ? "FileSizeLimit"
                                                                          : "SmallTmpfs";
                         });

TEST(PostgresDown, AServerThatIsNotThereIsIOError) {
  std::string empty_dir = testing::MakeTempDir();
  ASSERT_FALSE(empty_dir.empty());
  for (const std::string& uri :
       {"postgresql:///portcullis?host=" + empty_dir + "&port=5999&connect_timeout=3",
        std::string("postgres://127.0.0.1:1/portcullis?connect_timeout=3")}) {
    std::unique_ptr<RecordStore> store;
    Status s = RecordStore::Open(uri, &store);
    EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
    EXPECT_NE(s.message().find("unreachable"), std::string::npos) << s.message();
  }
  std::filesystem::remove_all(empty_dir);
}

TEST(PostgresDown, TheTestServerIsReachable) {
  // The PostgreSQL half of the suite must fail, not skip, when the server is missing.
  std::string error;
  std::string uri = testing::PostgresBaseUri(&error);
  ASSERT_FALSE(uri.empty()) << error;
  std::unique_ptr<RecordStore> store;
  Status s = RecordStore::Open(uri, &store);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// The server drops the store's connection (restart, failover, idle timeout): the call that finds
// out reports IOError, and the store reconnects on the next call.
TEST(PostgresDown, ALostConnectionIsIOErrorThenReconnects) {
  testing::ScratchStore scratch(testing::Backend::kPostgres);
  ASSERT_TRUE(scratch.error().empty()) << scratch.error();
  std::unique_ptr<RecordStore> store;
  ASSERT_TRUE(RecordStore::Open(scratch.uri(), &store).ok());
  ASSERT_TRUE(store->Migrate().ok());
  StoredRecord a = testing::BatchRecord(7, 0, 1000);
  ASSERT_TRUE(store->Put({a}).ok());
  testing::ExecRaw(testing::Backend::kPostgres, scratch.uri(),
                   "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                   "application_name = '" +
                       scratch.schema() + "' AND pid <> pg_backend_pid()");
  StoredRecord got;
  Status s = store->Get(a.meta.id, &got);
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  s = store->Get(a.meta.id, &got);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(got, a);
}

}  // namespace
}  // namespace portcullis::vault
