// The vault as a whole: store + keys + retention + audit, on both storage backends.
// The security claims of the vault are tested here end to end: a backup taken before a purge
// cannot decrypt what the purge shredded; an edited row does not open; every call is audited;
// rotation never touches a body.
#include "portcullis/vault.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "portcullis/audit.h"
#include "portcullis/env.h"
#include "portcullis/key_provider.h"
#include "store_test_util.h"
#include "vault/record_store.h"

namespace portcullis::vault {
namespace {

using testing::Backend;
using testing::ScratchStore;

constexpr std::int64_t kHour = 3600LL * 1000 * 1000;
constexpr std::int64_t kDay = 24 * kHour;
// 2026-11-27 00:00:00 UTC: a day boundary, so bucket arithmetic below is easy to follow.
constexpr std::int64_t kStart = 1795737600LL * 1000 * 1000;

// The real Env with a clock the test moves.
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

// Remembers every event; can be told to refuse (a full disk under the audit log).
class MemoryAuditSink : public audit::AuditSink {
 public:
  Status Append(const audit::AuditEvent& event) override {
    if (fail) return Status::IOError("audit disk full");
    events.push_back(event);
    return Status::Ok();
  }
  std::vector<audit::AuditEvent> events;
  bool fail = false;
};

class VaultTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    store_ = std::make_unique<ScratchStore>(GetParam());
    ASSERT_FALSE(store_->uri().empty()) << store_->error();
    dir_ = testing::MakeTempDir();
    ASSERT_TRUE(Open().ok());
  }
  void TearDown() override {
    vault_.reset();
    std::filesystem::remove_all(dir_);
  }

  Status Open(const std::string& store_uri = "") {
    VaultOptions options;
    options.store_uri = store_uri.empty() ? store_->uri() : store_uri;
    options.key_uri = "keyring:" + dir_ + "/keyring";
    options.key_secret = "correct horse battery staple";
    options.key_options.create_if_missing = true;
    options.key_options.keyring_opslimit = 1;  // cheapest Argon2id: the suite stays fast
    options.key_options.keyring_memlimit = 8192;
    options.retention_path = std::string(PORTCULLIS_SOURCE_DIR) + "/data/retention.json";
    options.audit = &audit_;
    options.env = &env_;
    vault_.reset();
    return Vault::Open(options, &vault_);
  }

  RecordMeta MustPut(RecordType type, SubjectCategory subject, const std::string& body) {
    NewRecord record;
    record.type = type;
    record.subject = subject;
    record.content_type = "application/octet-stream";
    record.labels = {{"lane", "7"}};
    record.body = body;
    RecordMeta meta;
    const Status s = vault_->Put(ctx_, record, &meta);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return meta;
  }

  Status Get(const std::string& id, std::string* body) {
    RecordMeta meta;
    return vault_->Get(ctx_, id, &meta, body);
  }

  std::unique_ptr<ScratchStore> store_;
  std::string dir_;
  ClockEnv env_;
  MemoryAuditSink audit_;
  std::unique_ptr<Vault> vault_;
  AccessContext ctx_{"officer:1234", "officer", "secondary inspection, lane 7"};
};

TEST_P(VaultTest, PutThenGetReturnsTheBodyAndTheMetadata) {
  const RecordMeta meta = MustPut(RecordType::kPlateRead, SubjectCategory::kVehicle, "ABC1234");
  EXPECT_EQ(meta.retention_class, "plate");
  EXPECT_EQ(meta.created_micros, kStart);
  EXPECT_EQ(meta.expires_micros, kStart + 30 * kDay);
  EXPECT_EQ(meta.size, 7u);
  std::string body;
  RecordMeta got;
  ASSERT_TRUE(vault_->Get(ctx_, meta.id, &got, &body).ok());
  EXPECT_EQ(body, "ABC1234");
  EXPECT_EQ(got, meta);
}

TEST_P(VaultTest, TheStoreHoldsNoPlaintext) {
  const std::string secret_body = "PLAINTEXT-MARKER-3141592653";
  const RecordMeta meta = MustPut(RecordType::kKeptCapture, SubjectCategory::kCitizen, secret_body);
  std::unique_ptr<RecordStore> raw;
  ASSERT_TRUE(RecordStore::Open(store_->uri(), &raw).ok());
  StoredRecord stored;
  ASSERT_TRUE(raw->Get(meta.id, &stored).ok());
  EXPECT_EQ(stored.sealed.find(secret_body), std::string::npos);
  EXPECT_EQ(stored.wrapped_key.find(secret_body), std::string::npos);
  EXPECT_EQ(stored.kek_id, "kek/face-citizen/2026112700");
}

TEST_P(VaultTest, EveryCallIsAuditedWithWhoWhyAndWhat) {
  const RecordMeta meta = MustPut(RecordType::kPlateRead, SubjectCategory::kVehicle, "X");
  std::string body;
  ASSERT_TRUE(Get(meta.id, &body).ok());
  EXPECT_EQ(Get("00000000000000000000000000000000", &body).code(), Status::Code::kNotFound);
  RecordPage page;
  ASSERT_TRUE(vault_->List(ctx_, RecordFilter{}, &page).ok());
  ASSERT_EQ(audit_.events.size(), 4u);
  EXPECT_EQ(audit_.events[0].action, "vault.put");
  EXPECT_EQ(audit_.events[0].record_id, meta.id);
  EXPECT_EQ(audit_.events[0].result, "ok");
  EXPECT_EQ(audit_.events[1].action, "vault.get");
  EXPECT_EQ(audit_.events[2].result, "not_found");
  EXPECT_EQ(audit_.events[3].action, "vault.list");
  for (const auto& e : audit_.events) {
    EXPECT_EQ(e.principal, ctx_.principal);
    EXPECT_EQ(e.role, ctx_.role);
    EXPECT_EQ(e.purpose, ctx_.purpose);
    EXPECT_EQ(e.time_micros, kStart);
  }
}

TEST_P(VaultTest, AnAccessWithoutPurposeIsRefusedAndStillAudited) {
  const RecordMeta meta = MustPut(RecordType::kPlateRead, SubjectCategory::kVehicle, "X");
  AccessContext no_purpose = ctx_;
  no_purpose.purpose.clear();
  std::string body;
  RecordMeta got;
  EXPECT_EQ(vault_->Get(no_purpose, meta.id, &got, &body).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(body.empty());
  ASSERT_EQ(audit_.events.size(), 2u);
  EXPECT_EQ(audit_.events[1].action, "vault.get");
  EXPECT_EQ(audit_.events[1].result, "denied");
}

TEST_P(VaultTest, NoAuditLineMeansNoData) {
  const RecordMeta meta = MustPut(RecordType::kPlateRead, SubjectCategory::kVehicle, "SECRET");
  audit_.fail = true;
  std::string body;
  EXPECT_EQ(Get(meta.id, &body).code(), Status::Code::kIOError);
  EXPECT_TRUE(body.empty());
}

TEST_P(VaultTest, DeleteRemovesTheRecordAndIsAudited) {
  const RecordMeta doomed = MustPut(RecordType::kTemplate, SubjectCategory::kCitizen, "T1");
  const RecordMeta kept = MustPut(RecordType::kTemplate, SubjectCategory::kCitizen, "T2");
  ASSERT_TRUE(vault_->Delete(ctx_, doomed.id).ok());
  std::string body;
  EXPECT_EQ(Get(doomed.id, &body).code(), Status::Code::kNotFound);
  ASSERT_TRUE(Get(kept.id, &body).ok());
  EXPECT_EQ(body, "T2");
  EXPECT_EQ(vault_->Delete(ctx_, doomed.id).code(), Status::Code::kNotFound);
  AccessContext no_purpose = ctx_;
  no_purpose.purpose.clear();
  EXPECT_EQ(vault_->Delete(no_purpose, kept.id).code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE(Get(kept.id, &body).ok());  // a refused delete deletes nothing
  // put, put, delete, get, get, delete (not found), delete (denied), get
  ASSERT_EQ(audit_.events.size(), 8u);
  EXPECT_EQ(audit_.events[2].action, "vault.delete");
  EXPECT_EQ(audit_.events[2].record_id, doomed.id);
  EXPECT_EQ(audit_.events[2].result, "ok");
  EXPECT_EQ(audit_.events[5].action, "vault.delete");
  EXPECT_EQ(audit_.events[5].result, "not_found");
  EXPECT_EQ(audit_.events[6].action, "vault.delete");
  EXPECT_EQ(audit_.events[6].record_id, kept.id);
  EXPECT_EQ(audit_.events[6].result, "denied");
}

TEST_P(VaultTest, ADeleteThatCannotBeAuditedFails) {
  const RecordMeta meta = MustPut(RecordType::kTemplate, SubjectCategory::kCitizen, "T1");
  audit_.fail = true;
  EXPECT_EQ(vault_->Delete(ctx_, meta.id).code(), Status::Code::kIOError);
}

TEST_P(VaultTest, NothingIsKeptWithoutARetentionRule) {
  NewRecord record;
  record.type = RecordType::kPlateRead;
  record.subject = SubjectCategory::kCitizen;  // no rule: plates belong to vehicles
  record.body = "X";
  RecordMeta meta;
  EXPECT_EQ(vault_->Put(ctx_, record, &meta).code(), Status::Code::kNotFound);
  RecordPage page;
  ASSERT_TRUE(vault_->List(ctx_, RecordFilter{}, &page).ok());
  EXPECT_TRUE(page.records.empty());
}

// A batch may name one of its own records before either is stored (a match decision naming the
// kept capture stored with it); a caller-chosen id never replaces a record.
TEST_P(VaultTest, ACallerChosenIdIsUsedAndNeverReplacesARecord) {
  const std::string id = NewRecordId();
  NewRecord capture;
  capture.id = id;
  capture.type = RecordType::kTemplate;
  capture.subject = SubjectCategory::kCitizen;
  capture.body = "capture";
  const std::string decision_body = "decision naming " + id;
  NewRecord decision;
  decision.type = RecordType::kTemplate;
  decision.subject = SubjectCategory::kCitizen;
  decision.body = decision_body;
  std::vector<RecordMeta> metas;
  ASSERT_TRUE(vault_->PutBatch(ctx_, {capture, decision}, &metas).ok());
  ASSERT_EQ(metas.size(), 2u);
  EXPECT_EQ(metas[0].id, id);
  EXPECT_NE(metas[1].id, id);
  std::string body;
  ASSERT_TRUE(Get(id, &body).ok());
  EXPECT_EQ(body, "capture");

  capture.body = "an impostor";
  EXPECT_EQ(vault_->PutBatch(ctx_, {decision, capture}, &metas).code(),
            Status::Code::kInvalidArgument);
  ASSERT_TRUE(Get(id, &body).ok());
  EXPECT_EQ(body, "capture");  // untouched, and the failed batch stored nothing at all
  RecordPage page;
  ASSERT_TRUE(vault_->List(ctx_, RecordFilter{}, &page).ok());
  EXPECT_EQ(page.records.size(), 2u);

  capture.id = "../not-an-id";
  EXPECT_EQ(vault_->PutBatch(ctx_, {capture}, &metas).code(), Status::Code::kInvalidArgument);
}

// PutOptions::requires_record: the batch is stored only while that record exists, checked in
// the batch's own transaction (a closed gallery takes no more decisions), and audited either way.
TEST_P(VaultTest, ABatchRequiringADeletedRecordStoresNothingAndSaysNotFound) {
  const RecordMeta gallery = MustPut(RecordType::kTemplate, SubjectCategory::kCitizen, "G");
  NewRecord decision;
  decision.type = RecordType::kMatchDecision;
  decision.subject = SubjectCategory::kCitizen;
  decision.body = "match";
  PutOptions options;
  options.requires_record = gallery.id;
  std::vector<RecordMeta> metas;
  ASSERT_TRUE(vault_->PutBatch(ctx_, {decision}, options, &metas).ok());
  ASSERT_EQ(metas.size(), 1u);
  std::string body;
  ASSERT_TRUE(Get(metas[0].id, &body).ok());

  ASSERT_TRUE(vault_->Delete(ctx_, gallery.id).ok());
  const std::size_t events_before = audit_.events.size();
  EXPECT_EQ(vault_->PutBatch(ctx_, {decision, decision}, options, &metas).code(),
            Status::Code::kNotFound);
  ASSERT_EQ(audit_.events.size(), events_before + 2);  // one per record, result not_found
  EXPECT_EQ(audit_.events.back().action, "vault.put");
  EXPECT_EQ(audit_.events.back().result, "not_found");
  RecordFilter filter;
  filter.type = RecordType::kMatchDecision;
  RecordPage page;
  ASSERT_TRUE(vault_->List(ctx_, filter, &page).ok());
  EXPECT_EQ(page.records.size(), 1u);  // only the first decision

  options.requires_record = "not a record id";
  EXPECT_EQ(vault_->PutBatch(ctx_, {decision}, options, &metas).code(),
            Status::Code::kInvalidArgument);
}

TEST_P(VaultTest, AnEditedRowDoesNotOpen) {
  const RecordMeta meta = MustPut(RecordType::kKeptCapture, SubjectCategory::kCitizen, "face");
  // Someone with database access extends the record's life: the metadata is bound to the body.
  testing::ExecRaw(
      GetParam(), store_->uri(),
      "UPDATE records SET expires_micros = expires_micros + 1 WHERE id = '" + meta.id + "'");
  std::string body;
  EXPECT_EQ(Get(meta.id, &body).code(), Status::Code::kCorruption);
  EXPECT_TRUE(body.empty());
}

TEST_P(VaultTest, PurgeShredsExpiredBucketsAndKeepsTheRest) {
  const RecordMeta face = MustPut(RecordType::kKeptCapture, SubjectCategory::kCitizen, "face");
  const RecordMeta plate = MustPut(RecordType::kPlateRead, SubjectCategory::kVehicle, "plate");

  // Not yet: the face record lives 12 h, its hourly KEK until the bucket's end + 12 h.
  env_.now = kStart + 12 * kHour + kHour - 1;
  PurgeReport dry;
  ASSERT_TRUE(vault_->Purge(ctx_, /*dry_run=*/true, &dry).ok());
  EXPECT_TRUE(dry.keks.empty());
  EXPECT_EQ(dry.records, std::vector<std::string>{face.id});  // the row itself has expired

  env_.now = kStart + 13 * kHour;
  ASSERT_TRUE(vault_->Purge(ctx_, /*dry_run=*/true, &dry).ok());
  EXPECT_EQ(dry.keks, std::vector<std::string>{"kek/face-citizen/2026112700"});
  std::string body;
  ASSERT_TRUE(Get(face.id, &body).ok()) << "a dry run changes nothing";

  PurgeReport report;
  ASSERT_TRUE(vault_->Purge(ctx_, /*dry_run=*/false, &report).ok());
  EXPECT_EQ(report.keks, std::vector<std::string>{"kek/face-citizen/2026112700"});
  EXPECT_EQ(report.records, std::vector<std::string>{face.id});
  EXPECT_EQ(Get(face.id, &body).code(), Status::Code::kNotFound);
  ASSERT_TRUE(Get(plate.id, &body).ok());
  EXPECT_EQ(body, "plate");
}

TEST_P(VaultTest, RotationRewrapsWithoutTouchingBodies) {
  const RecordMeta a = MustPut(RecordType::kPlateRead, SubjectCategory::kVehicle, "AAA111");
  const RecordMeta b = MustPut(RecordType::kPlateRead, SubjectCategory::kVehicle, "BBB222");
  std::unique_ptr<RecordStore> raw;
  ASSERT_TRUE(RecordStore::Open(store_->uri(), &raw).ok());
  StoredRecord before;
  ASSERT_TRUE(raw->Get(a.id, &before).ok());

  RotateReport report;
  ASSERT_TRUE(vault_->Rotate(ctx_, before.kek_id, &report).ok());
  EXPECT_EQ(report.rewrapped, 2u);
  EXPECT_EQ(report.new_kek, before.kek_id + "/r2");

  StoredRecord after;
  ASSERT_TRUE(raw->Get(a.id, &after).ok());
  EXPECT_EQ(after.sealed, before.sealed);
  EXPECT_NE(after.wrapped_key, before.wrapped_key);
  EXPECT_EQ(after.kek_id, report.new_kek);
  std::vector<std::string> keks;
  ASSERT_TRUE(vault_->ListKeks(ctx_, &keks).ok());
  EXPECT_EQ(keks, std::vector<std::string>{report.new_kek});
  std::string body;
  ASSERT_TRUE(Get(b.id, &body).ok());
  EXPECT_EQ(body, "BBB222");

  // A second rotation moves on a generation, and the rotated KEK keeps its bucket's expiry.
  ASSERT_TRUE(vault_->Rotate(ctx_, report.new_kek, &report).ok());
  EXPECT_EQ(report.new_kek, before.kek_id + "/r3");
  env_.now = kStart + 32 * kDay;
  PurgeReport purge;
  ASSERT_TRUE(vault_->Purge(ctx_, false, &purge).ok());
  EXPECT_EQ(purge.keks, std::vector<std::string>{report.new_kek});
  EXPECT_EQ(Get(a.id, &body).code(), Status::Code::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(Backends, VaultTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testing::BackendName);

// The crypto-shredding claim itself: a copy of the database taken before the purge (a backup)
// can no longer decrypt the records the purge shredded, while the others still open from it.
TEST(VaultBackupTest, ABackupTakenBeforePurgeCannotDecryptShreddedRecords) {
  const std::string dir = testing::MakeTempDir();
  ClockEnv env;
  MemoryAuditSink audit;
  VaultOptions options;
  options.store_uri = "sqlite:" + dir + "/vault.db";
  options.key_uri = "keyring:" + dir + "/keyring";
  options.key_secret = "pw";
  options.key_options.create_if_missing = true;
  options.key_options.keyring_opslimit = 1;
  options.key_options.keyring_memlimit = 8192;
  options.retention_path = std::string(PORTCULLIS_SOURCE_DIR) + "/data/retention.json";
  options.audit = &audit;
  options.env = &env;
  std::unique_ptr<Vault> vault;
  ASSERT_TRUE(Vault::Open(options, &vault).ok());
  const AccessContext ctx{"admin:1", "admin", "retention test"};

  auto put = [&](RecordType type, SubjectCategory subject, const std::string& body) {
    NewRecord record{type, subject, "text/plain", {}, body};
    RecordMeta meta;
    EXPECT_TRUE(vault->Put(ctx, record, &meta).ok());
    return meta.id;
  };
  const std::string citizen = put(RecordType::kKeptCapture, SubjectCategory::kCitizen, "c");
  const std::string non_citizen = put(RecordType::kKeptCapture, SubjectCategory::kNonCitizen, "n");
  // Large enough to live in a segment file beside the database: the backup must carry it too.
  const std::string plate_body(60 * 1024, 'p');
  const std::string plate = put(RecordType::kPlateRead, SubjectCategory::kVehicle, plate_body);
  const std::string citizen_photo(60 * 1024, 'c');
  const std::string citizen_big =
      put(RecordType::kKeptCapture, SubjectCategory::kCitizen, citizen_photo);

  // The backup: a consistent copy of the database, as an operator's nightly job would make.
  std::unique_ptr<RecordStore> live;
  ASSERT_TRUE(RecordStore::Open(options.store_uri, &live).ok());
  ASSERT_TRUE(live->Backup("sqlite:" + dir + "/backup.db").ok());
  live.reset();

  env.now = kStart + 2 * kDay;  // citizen captures (12 h) expired; non-citizen (14 d) not
  PurgeReport report;
  ASSERT_TRUE(vault->Purge(ctx, false, &report).ok());
  std::vector<std::string> shredded{citizen, citizen_big};
  std::sort(shredded.begin(), shredded.end());
  EXPECT_EQ(report.records, shredded);

  // Restore the backup: the shredded row is back in the database, but its key is gone.
  VaultOptions restored = options;
  restored.store_uri = "sqlite:" + dir + "/backup.db";
  vault.reset();
  ASSERT_TRUE(Vault::Open(restored, &vault).ok());
  std::string body;
  RecordMeta meta;
  EXPECT_EQ(vault->Get(ctx, citizen, &meta, &body).code(), Status::Code::kNotFound);
  EXPECT_TRUE(body.empty());
  EXPECT_EQ(vault->Get(ctx, citizen_big, &meta, &body).code(), Status::Code::kNotFound);
  EXPECT_TRUE(body.empty());
  ASSERT_TRUE(vault->Get(ctx, non_citizen, &meta, &body).ok());
  EXPECT_EQ(body, "n");
  ASSERT_TRUE(vault->Get(ctx, plate, &meta, &body).ok());
  EXPECT_EQ(body, plate_body);
  vault.reset();
  std::filesystem::remove_all(dir);
}

TEST(VaultOpenTest, RefusesToOpenWithoutAnAuditLog) {
  VaultOptions options;
  options.store_uri = "sqlite:/nonexistent/x.db";
  std::unique_ptr<Vault> vault;
  EXPECT_EQ(Vault::Open(options, &vault).code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace portcullis::vault
