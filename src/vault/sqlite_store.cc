#include "vault/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include "portcullis/env.h"
#include "vault/migrations.h"
#include "vault/record_sql.h"
#include "vault/store_uri.h"

namespace portcullis::vault {

// Maps SQLite's result codes onto Status: a full disk and failed I/O are IOError, a file that is
// not (or no longer) a valid database is Corruption, a violated constraint is the caller's error.
Status SqliteError(int rc, sqlite3* db, const std::string& what) {
  std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  // The OS error behind an I/O failure: a short write past a quota or file-size limit reaches
  // SQLite as EFBIG/EDQUOT (SQLITE_IOERR_WRITE), not as SQLITE_FULL, but it is the same event.
  // SQLite keeps only a best-effort errno, so a failed write (SQLITE_IOERR_WRITE) counts as
  // "disk full" too: ENOSPC, EDQUOT and EFBIG are by far its commonest causes, and the remedy
  // (make room, then retry) is the same.
  int sys = db != nullptr ? sqlite3_system_errno(db) : 0;
  bool full = (rc & 0xff) == SQLITE_FULL || rc == SQLITE_IOERR_WRITE ||
              ((rc & 0xff) == SQLITE_IOERR && (sys == ENOSPC || sys == EFBIG || sys == EDQUOT));
  if ((rc & 0xff) == SQLITE_IOERR && sys != 0)
    detail += std::string(" (") + std::strerror(sys) + ")";
  std::string msg = what + ": " + detail;
  if (full) return Status::IOError(what + ": disk full: " + detail);
  switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL:
      return Status::IOError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
      return Status::Corruption(msg);
    case SQLITE_CONSTRAINT:
      return Status::InvalidArgument(msg);
    case SQLITE_NOMEM:
    case SQLITE_TOOBIG:
      return Status::ResourceExhausted(msg);
    default:
      return Status::Internal(msg);
  }
}

namespace {

// A prepared statement, finalized on every path.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(stmt_); }

  Status Prepare(sqlite3* db, const std::string& sql) {
    db_ = db;
    int rc = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size() + 1), &stmt_, nullptr);
    if (rc != SQLITE_OK) return SqliteError(rc, db, "prepare");
    return Status::Ok();
  }
  Status BindText(int index, const std::string& value) {
    return Check(sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                                     SQLITE_UTF8));
  }
  Status BindBlob(int index, const std::string& value) {
    // zeroblob-free: an empty body is still a (zero-length) blob, never NULL.
    return Check(sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT));
  }
  Status BindInt(int index, std::int64_t value) {
    return Check(sqlite3_bind_int64(stmt_, index, value));
  }
  Status Bind(const std::vector<SqlParam>& params) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      int index = static_cast<int>(i + 1);
      PORTCULLIS_RETURN_IF_ERROR(params[i].is_int ? BindInt(index, params[i].int_value)
                                                  : BindText(index, params[i].text));
    }
    return Status::Ok();
  }
  // true when a row is ready, false when done.
  Status Step(bool* row) {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      *row = true;
      return Status::Ok();
    }
    *row = false;
    if (rc == SQLITE_DONE) return Status::Ok();
    return SqliteError(rc, db_, "step");
  }
  Status StepDone() {
    bool row = false;
    return Step(&row);
  }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::string Text(int col) {
    const unsigned char* text = sqlite3_column_text(stmt_, col);
    int bytes = sqlite3_column_bytes(stmt_, col);
    return text == nullptr
               ? std::string()
               : std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(bytes));
  }
  std::string Blob(int col) {
    const void* blob = sqlite3_column_blob(stmt_, col);
    int bytes = sqlite3_column_bytes(stmt_, col);
    return blob == nullptr
               ? std::string()
               : std::string(static_cast<const char*>(blob), static_cast<std::size_t>(bytes));
  }
  std::int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }

 private:
  Status Check(int rc) { return rc == SQLITE_OK ? Status::Ok() : SqliteError(rc, db_, "bind"); }
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

Status Exec(sqlite3* db, const std::string& sql) {
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) return Status::Ok();
  return SqliteError(rc, db, sql.substr(0, sql.find(' ')));
}

// BEGIN IMMEDIATE (take the write lock now, so a busy database fails before any work) and
// ROLLBACK unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (open_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Status Begin() {
    PORTCULLIS_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
    open_ = true;
    return Status::Ok();
  }
  Status Commit() {
    Status status = Exec(db_, "COMMIT");
    // A failed COMMIT may leave the transaction open (SQLITE_BUSY) or rolled back (I/O error);
    // either way the destructor's ROLLBACK makes the outcome "nothing written".
    if (status.ok()) open_ = false;
    return status;
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

constexpr const char* kGetSql =
    "SELECT id, type, subject, retention_class, content_type, created_micros, expires_micros, "
    "labels, size, kek_id, wrapped_key, sealed FROM records WHERE id = ?";
constexpr const char* kInsertSql =
    "INSERT INTO records (id, type, subject, retention_class, content_type, created_micros, "
    "expires_micros, labels, size, kek_id, wrapped_key, sealed) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

Status ReadMeta(Stmt* stmt, RecordMeta* meta) {
  return DecodeMeta(stmt->Text(0), stmt->Text(1), stmt->Text(2), stmt->Text(3), stmt->Text(4),
                    stmt->Int(5), stmt->Int(6), stmt->Text(7), stmt->Int(8), meta);
}

class SqliteStore : public RecordStore {
 public:
  SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteStore() override { sqlite3_close_v2(db_); }

  Status Init() {
    sqlite3_extended_result_codes(db_, 1);
    // Another process (a backup, the purge job) may hold the write lock briefly.
    sqlite3_busy_timeout(db_, 10000);
    // Reading the journal mode reads the header: a garbage file fails here with NOTADB.
    Stmt mode;
    PORTCULLIS_RETURN_IF_ERROR(mode.Prepare(db_, "PRAGMA journal_mode=WAL"));
    bool row = false;
    PORTCULLIS_RETURN_IF_ERROR(mode.Step(&row));
    if (!row || mode.Text(0) != "wal") {
      return Status::IOError("cannot switch to WAL mode (journal_mode=" +
                             (row ? mode.Text(0) : std::string("?")) + ")");
    }
    // FULL: the WAL is fsynced at every commit, so an acknowledged Put survives power loss.
    PORTCULLIS_RETURN_IF_ERROR(Exec(db_, "PRAGMA synchronous=FULL"));
    // Deleted rows are overwritten, not left in free pages for a file carver.
    PORTCULLIS_RETURN_IF_ERROR(Exec(db_, "PRAGMA secure_delete=ON"));
    // Checkpoint (copy the WAL into the database, fsync it) every 64 MiB of WAL rather than every
    // 4 MiB: with 50 KB records the default checkpointed on almost every batch and halved Put
    // throughput (docs/vault-store.md). The WAL is cut back to 64 MiB after each checkpoint.
    PORTCULLIS_RETURN_IF_ERROR(Exec(db_, "PRAGMA wal_autocheckpoint=16384"));
    PORTCULLIS_RETURN_IF_ERROR(Exec(db_, "PRAGMA journal_size_limit=67108864"));
    int version = 0;
    PORTCULLIS_RETURN_IF_ERROR(ReadVersion(&version));
    if (version > LatestSchemaVersion()) return TooNew(version);
    migrated_ = version == LatestSchemaVersion();
    return Status::Ok();
  }

  [[nodiscard]] std::string Describe() const override { return "sqlite:" + path_; }

  Status Migrate() override {
    std::lock_guard<std::mutex> lock(mu_);
    for (;;) {
      Transaction txn(db_);
      PORTCULLIS_RETURN_IF_ERROR(txn.Begin());
      PORTCULLIS_RETURN_IF_ERROR(Exec(db_, ForDialect(kSchemaVersionTable, SqlDialect::kSqlite)));
      int version = 0;
      PORTCULLIS_RETURN_IF_ERROR(ReadVersion(&version));
      if (version > LatestSchemaVersion()) return TooNew(version);
      if (version == LatestSchemaVersion()) {
        PORTCULLIS_RETURN_IF_ERROR(txn.Commit());
        migrated_ = true;
        return Status::Ok();
      }
      const Migration& step = Migrations()[static_cast<std::size_t>(version)];
      for (const char* statement : step.statements) {
        PORTCULLIS_RETURN_IF_ERROR(Exec(db_, ForDialect(statement, SqlDialect::kSqlite))
                                       .WithContext("migration " + std::to_string(step.version)));
      }
      Stmt record;
      PORTCULLIS_RETURN_IF_ERROR(record.Prepare(
          db_, "INSERT INTO schema_version (version, description, applied_micros) VALUES (?,?,?)"));
      PORTCULLIS_RETURN_IF_ERROR(record.BindInt(1, step.version));
      PORTCULLIS_RETURN_IF_ERROR(record.BindText(2, step.description));
      PORTCULLIS_RETURN_IF_ERROR(record.BindInt(3, Env::Default()->NowMicros()));
      PORTCULLIS_RETURN_IF_ERROR(record.StepDone());
      PORTCULLIS_RETURN_IF_ERROR(txn.Commit());
    }
  }

  Status SchemaVersion(int* version) override {
    std::lock_guard<std::mutex> lock(mu_);
    return ReadVersion(version);
  }

  Status Put(const std::vector<StoredRecord>& records,
             const std::string& requires_record) override {
    PORTCULLIS_RETURN_IF_ERROR(ValidateBatch(records));
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    Transaction txn(db_);
    PORTCULLIS_RETURN_IF_ERROR(txn.Begin().WithContext(Describe()));
    if (!requires_record.empty()) {
      // Under the write lock BEGIN IMMEDIATE took: no delete can come between this and COMMIT.
      Stmt exists;
      PORTCULLIS_RETURN_IF_ERROR(exists.Prepare(db_, "SELECT 1 FROM records WHERE id = ?"));
      PORTCULLIS_RETURN_IF_ERROR(exists.BindText(1, requires_record));
      bool row = false;
      PORTCULLIS_RETURN_IF_ERROR(exists.Step(&row).WithContext("put into " + Describe()));
      if (!row) {
        return Status::NotFound("record " + requires_record +
                                " (required by the batch) is not in " + Describe() +
                                "; batch not stored");
      }
    }
    Stmt insert;
    PORTCULLIS_RETURN_IF_ERROR(insert.Prepare(db_, kInsertSql));
    for (const StoredRecord& r : records) {
      const RecordMeta& m = r.meta;
      PORTCULLIS_RETURN_IF_ERROR(insert.BindText(1, m.id));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindText(2, std::string(RecordTypeName(m.type))));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindText(3, std::string(SubjectCategoryName(m.subject))));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindText(4, m.retention_class));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindText(5, m.content_type));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindInt(6, m.created_micros));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindInt(7, m.expires_micros));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindText(8, EncodeLabels(m.labels)));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindInt(9, static_cast<std::int64_t>(m.size)));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindText(10, r.kek_id));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindBlob(11, r.wrapped_key));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindBlob(12, r.sealed));
      Status step = insert.StepDone();
      if (step.code() == Status::Code::kInvalidArgument) {
        return Status::InvalidArgument("record " + m.id + " already exists; batch not stored");
      }
      PORTCULLIS_RETURN_IF_ERROR(step.WithContext("put " + m.id + " into " + Describe()));
      insert.Reset();
    }
    return txn.Commit().WithContext("commit to " + Describe());
  }

  Status Get(const std::string& id, StoredRecord* record) override {
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    Stmt get;
    PORTCULLIS_RETURN_IF_ERROR(get.Prepare(db_, kGetSql));
    PORTCULLIS_RETURN_IF_ERROR(get.BindText(1, id));
    bool row = false;
    PORTCULLIS_RETURN_IF_ERROR(get.Step(&row).WithContext("get " + id + " from " + Describe()));
    if (!row) return Status::NotFound("no record " + id + " in " + Describe());
    PORTCULLIS_RETURN_IF_ERROR(ReadMeta(&get, &record->meta));
    record->kek_id = get.Text(9);
    record->wrapped_key = get.Blob(10);
    record->sealed = get.Blob(11);
    return Status::Ok();
  }

  Status List(const RecordFilter& filter, RecordPage* page) override {
    std::string sql;
    std::vector<SqlParam> params;
    PORTCULLIS_RETURN_IF_ERROR(BuildListQuery(filter, SqlDialect::kSqlite, &sql, &params));
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    Stmt list;
    PORTCULLIS_RETURN_IF_ERROR(list.Prepare(db_, sql));
    PORTCULLIS_RETURN_IF_ERROR(list.Bind(params));
    page->records.clear();
    page->next_cursor.clear();
    for (;;) {
      bool row = false;
      PORTCULLIS_RETURN_IF_ERROR(list.Step(&row).WithContext("list " + Describe()));
      if (!row) break;
      RecordMeta meta;
      PORTCULLIS_RETURN_IF_ERROR(ReadMeta(&list, &meta));
      page->records.push_back(std::move(meta));
    }
    FinishPage(filter.limit, page);
    return Status::Ok();
  }

  Status UpdateWrappedKeys(const std::vector<WrappedKeyUpdate>& updates,
                           std::vector<std::string>* conflicts) override {
    PORTCULLIS_RETURN_IF_ERROR(ValidateWrappedKeyUpdates(updates));
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    conflicts->clear();
    Transaction txn(db_);
    PORTCULLIS_RETURN_IF_ERROR(txn.Begin());
    Stmt update;
    PORTCULLIS_RETURN_IF_ERROR(update.Prepare(
        db_, "UPDATE records SET kek_id = ?, wrapped_key = ? WHERE id = ? AND kek_id = ?"));
    for (const WrappedKeyUpdate& u : updates) {
      PORTCULLIS_RETURN_IF_ERROR(update.BindText(1, u.new_kek_id));
      PORTCULLIS_RETURN_IF_ERROR(update.BindBlob(2, u.new_wrapped_key));
      PORTCULLIS_RETURN_IF_ERROR(update.BindText(3, u.id));
      PORTCULLIS_RETURN_IF_ERROR(update.BindText(4, u.old_kek_id));
      PORTCULLIS_RETURN_IF_ERROR(update.StepDone().WithContext("rewrap " + u.id));
      if (sqlite3_changes(db_) == 0) conflicts->push_back(u.id);
      update.Reset();
    }
    return txn.Commit().WithContext("commit to " + Describe());
  }

  Status DeleteByKek(const std::string& kek_id, std::vector<std::string>* deleted) override {
    return DeleteWhere("DELETE FROM records WHERE kek_id = ? RETURNING id",
                       SqlParam{false, 0, kek_id}, deleted);
  }

  Status DeleteExpired(std::int64_t now_micros, std::vector<std::string>* deleted) override {
    return DeleteWhere("DELETE FROM records WHERE expires_micros <= ? RETURNING id",
                       SqlParam{true, now_micros, {}}, deleted);
  }

  Status Delete(const std::string& id) override {
    std::vector<std::string> deleted;
    PORTCULLIS_RETURN_IF_ERROR(DeleteWhere("DELETE FROM records WHERE id = ? RETURNING id",
                                           SqlParam{false, 0, id}, &deleted));
    if (deleted.empty()) return Status::NotFound("no record " + id + " in " + Describe());
    return Status::Ok();
  }

  Status CountByKek(const std::string& kek_id, std::uint64_t* count) override {
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    Stmt stmt;
    PORTCULLIS_RETURN_IF_ERROR(stmt.Prepare(db_, "SELECT COUNT(*) FROM records WHERE kek_id = ?"));
    PORTCULLIS_RETURN_IF_ERROR(stmt.BindText(1, kek_id));
    bool row = false;
    PORTCULLIS_RETURN_IF_ERROR(stmt.Step(&row));
    *count = row ? static_cast<std::uint64_t>(stmt.Int(0)) : 0;
    return Status::Ok();
  }

  Status ListKekIds(std::vector<std::string>* kek_ids) override {
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    Stmt stmt;
    PORTCULLIS_RETURN_IF_ERROR(
        stmt.Prepare(db_, "SELECT DISTINCT kek_id FROM records ORDER BY kek_id"));
    kek_ids->clear();
    for (;;) {
      bool row = false;
      PORTCULLIS_RETURN_IF_ERROR(stmt.Step(&row));
      if (!row) return Status::Ok();
      kek_ids->push_back(stmt.Text(0));
    }
  }

  Status Backup(const std::string& dest_uri) override {
    StoreUri dest;
    PORTCULLIS_RETURN_IF_ERROR(ParseStoreUri(dest_uri, &dest));
    if (dest.backend != StoreBackend::kSqlite) {
      return Status::InvalidArgument("a SQLite store backs up to sqlite:PATH, not " +
                                     RedactStoreUri(dest_uri));
    }
    struct stat st {};
    if (::stat(dest.sqlite_path.c_str(), &st) == 0) {
      return Status::InvalidArgument("backup destination " + dest.sqlite_path +
                                     " already exists; refusing to overwrite it");
    }
    std::lock_guard<std::mutex> lock(mu_);
    sqlite3* out = nullptr;
    int rc = sqlite3_open_v2(dest.sqlite_path.c_str(), &out,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    Status status;
    if (rc != SQLITE_OK) {
      status = SqliteError(rc, out, "open backup " + dest.sqlite_path);
    } else {
      sqlite3_exec(out, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
      sqlite3_backup* backup = sqlite3_backup_init(out, "main", db_, "main");
      if (backup == nullptr) {
        status = SqliteError(sqlite3_errcode(out), out, "backup to " + dest.sqlite_path);
      } else {
        rc = sqlite3_backup_step(backup, -1);
        int finish = sqlite3_backup_finish(backup);
        if (rc != SQLITE_DONE) {
          status = SqliteError(rc, out, "backup to " + dest.sqlite_path);
        } else if (finish != SQLITE_OK) {
          status = SqliteError(finish, out, "backup to " + dest.sqlite_path);
        }
      }
    }
    rc = sqlite3_close_v2(out);
    if (status.ok() && rc != SQLITE_OK) {
      status = SqliteError(rc, nullptr, "close backup " + dest.sqlite_path);
    }
    // Half a backup must not be mistaken for one.
    if (!status.ok()) ::unlink(dest.sqlite_path.c_str());
    return status;
  }

 private:
  Status ReadVersion(int* version) {
    Stmt exists;
    PORTCULLIS_RETURN_IF_ERROR(exists.Prepare(
        db_,
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"));
    bool row = false;
    PORTCULLIS_RETURN_IF_ERROR(exists.Step(&row).WithContext("read schema of " + Describe()));
    if (!row || exists.Int(0) == 0) {
      *version = 0;
      return Status::Ok();
    }
    Stmt max;
    PORTCULLIS_RETURN_IF_ERROR(
        max.Prepare(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_version"));
    PORTCULLIS_RETURN_IF_ERROR(max.Step(&row).WithContext("read schema version of " + Describe()));
    *version = row ? static_cast<int>(max.Int(0)) : 0;
    return Status::Ok();
  }

  Status TooNew(int version) const {
    return Status::Unsupported(Describe() + " has schema version " + std::to_string(version) +
                               ", newer than this build understands (" +
                               std::to_string(LatestSchemaVersion()) + "); upgrade Portcullis");
  }

  Status CheckMigrated() const {
    if (migrated_) return Status::Ok();
    return Status::InvalidArgument(Describe() + " is not at schema version " +
                                   std::to_string(LatestSchemaVersion()) + "; run Migrate() first");
  }

  Status DeleteWhere(const char* sql, const SqlParam& param, std::vector<std::string>* deleted) {
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    deleted->clear();
    Transaction txn(db_);
    PORTCULLIS_RETURN_IF_ERROR(txn.Begin());
    {
      Stmt stmt;
      PORTCULLIS_RETURN_IF_ERROR(stmt.Prepare(db_, sql));
      PORTCULLIS_RETURN_IF_ERROR(stmt.Bind({param}));
      for (;;) {
        bool row = false;
        PORTCULLIS_RETURN_IF_ERROR(stmt.Step(&row).WithContext("delete from " + Describe()));
        if (!row) break;
        deleted->push_back(stmt.Text(0));
      }
    }
    PORTCULLIS_RETURN_IF_ERROR(txn.Commit().WithContext("commit to " + Describe()));
    std::sort(deleted->begin(), deleted->end());
    return Status::Ok();
  }

  std::mutex mu_;
  sqlite3* db_;
  std::string path_;
  bool migrated_ = false;
};

}  // namespace

Status OpenSqliteStore(const std::string& path, std::unique_ptr<RecordStore>* store) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status status = SqliteError(rc, db, "open sqlite:" + path);
    sqlite3_close_v2(db);
    return status;
  }
  auto opened = std::make_unique<SqliteStore>(db, path);
  PORTCULLIS_RETURN_IF_ERROR(opened->Init().WithContext("open sqlite:" + path));
  *store = std::move(opened);
  return Status::Ok();
}

}  // namespace portcullis::vault
