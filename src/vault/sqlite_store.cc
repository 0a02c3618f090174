#include "vault/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "common/unique_fd.h"
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

std::atomic<SqliteFaultHook> g_fault_hook{nullptr};

void Fault(const char* point) {
  if (SqliteFaultHook hook = g_fault_hook.load(); hook != nullptr) hook(point);
}

// Sealed bodies larger than this go to a segment file; smaller ones stay in the row, where the
// WAL's double write costs little and a batch of small records needs no extra fdatasync.
constexpr std::size_t kInlineMax = 4096;
// ... and only when the batch's large bodies add up to at least this much: below it, one more
// fdatasync (the segment's, before the WAL's) costs more than writing the bytes twice, so a
// batch of one 50 KB record stays on the WAL path (docs/vault-store.md, "Segment files").
constexpr std::uint64_t kSegmentBatchMin = std::uint64_t{256} << 10;
// A writer starts a new segment once its current one holds this much.
constexpr std::uint64_t kSegmentBytes = std::uint64_t{256} << 20;

Status ErrnoStatus(int err, const std::string& what) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
    return Status::IOError(what + ": disk full: " + std::strerror(err));
  }
  return Status::IOError(msg);
}

Status PwriteAll(int fd, const char* data, std::size_t size, std::uint64_t offset,
                 const std::string& what) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, what);
    if (n == 0) return ErrnoStatus(ENOSPC, what);
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return Status::Ok();
}

// Syncs a directory so that a file created (or removed) in it survives a power loss.
Status SyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "open directory " + dir);
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync directory " + dir);
  return Status::Ok();
}

// CRC-32C (Castagnoli) of a body, so that the store itself — which holds no key — can tell a
// damaged or truncated segment from a good one. The SSE4.2 instruction does 8 bytes a step
// (~6 us for 50 KB); zlib's table-driven CRC-32 cost a quarter of a put's CPU.
constexpr std::uint32_t kCrc32cPoly = 0x82f63b78;

std::uint32_t Crc32cSoftware(const unsigned char* p, std::size_t n, std::uint32_t crc) {
  static const auto kTable = [] {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? (c >> 1) ^ kCrc32cPoly : c >> 1;
      table[i] = c;
    }
    return table;
  }();
  for (std::size_t i = 0; i < n; ++i) crc = kTable[(crc ^ p[i]) & 0xffU] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t Crc32cSse42(const unsigned char* p, std::size_t n,
                                                            std::uint32_t crc) {
  std::uint64_t c = crc;
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, p, sizeof word);
    c = _mm_crc32_u64(c, word);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; --n, ++p) c32 = _mm_crc32_u8(c32, *p);
  return c32;
}
#endif

std::uint32_t Crc32c(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
#if defined(__x86_64__)
  static const bool kHardware = __builtin_cpu_supports("sse4.2") != 0;
  if (kHardware) return ~Crc32cSse42(p, bytes.size(), ~std::uint32_t{0});
#endif
  return ~Crc32cSoftware(p, bytes.size(), ~std::uint32_t{0});
}

std::string DirOf(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// Where a sealed body lives: segment 0 = in the row's `sealed` column.
struct BlobRef {
  std::int64_t segment = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::uint32_t crc32c = 0;
};

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
    "labels, size, kek_id, wrapped_key, sealed, blob_segment, blob_offset, blob_length, "
    "blob_crc32c FROM records WHERE id = ?";
constexpr const char* kInsertSql =
    "INSERT INTO records (id, type, subject, retention_class, content_type, created_micros, "
    "expires_micros, labels, size, kek_id, wrapped_key, sealed, blob_segment, blob_offset, "
    "blob_length, blob_crc32c) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

Status ReadMeta(Stmt* stmt, RecordMeta* meta) {
  return DecodeMeta(stmt->Text(0), stmt->Text(1), stmt->Text(2), stmt->Text(3), stmt->Text(4),
                    stmt->Int(5), stmt->Int(6), stmt->Text(7), stmt->Int(8), meta);
}

class SqliteStore : public RecordStore {
 public:
  SqliteStore(sqlite3* db, std::string path)
      : db_(db), path_(std::move(path)), blob_dir_(path_ + ".blobs") {}
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

  // Group commit: concurrent callers' batches share one segment fdatasync and one WAL commit.
  // The first caller to find no commit in progress leads: it takes every batch queued so far and
  // commits them together, each inside its own SAVEPOINT, so that each batch still stands or falls
  // alone (a duplicate id fails its own batch, not its neighbours'). The others wait for its
  // verdict on their batch. A lone caller is a group of one.
  Status Put(const std::vector<StoredRecord>& records,
             const std::string& requires_record) override {
    PORTCULLIS_RETURN_IF_ERROR(ValidateBatch(records));
    PendingPut me{&records, &requires_record, Status::Ok(), false};
    std::unique_lock<std::mutex> queue_lock(queue_mu_);
    queue_.push_back(&me);
    queue_cv_.wait(queue_lock, [&] { return me.done || !leader_active_; });
    if (me.done) return me.status;
    leader_active_ = true;
    std::vector<PendingPut*> group(queue_.begin(), queue_.end());
    queue_.clear();
    queue_lock.unlock();
    CommitGroup(group);
    queue_lock.lock();
    for (PendingPut* p : group) p->done = true;
    leader_active_ = false;
    queue_cv_.notify_all();
    return me.status;
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
    BlobRef ref;
    ref.segment = get.Int(12);
    ref.offset = static_cast<std::uint64_t>(get.Int(13));
    ref.length = static_cast<std::uint64_t>(get.Int(14));
    ref.crc32c = static_cast<std::uint32_t>(get.Int(15));
    if (ref.segment == 0) {
      record->sealed = get.Blob(11);
      return Status::Ok();
    }
    return ReadBody(id, ref, &record->sealed);
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
    return DeleteWhere("DELETE FROM records WHERE kek_id = ? " + kReturning,
                       SqlParam{false, 0, kek_id}, deleted);
  }

  Status DeleteExpired(std::int64_t now_micros, std::vector<std::string>* deleted) override {
    PORTCULLIS_RETURN_IF_ERROR(
        DeleteWhere("DELETE FROM records WHERE expires_micros <= ? " + kReturning,
                    SqlParam{true, now_micros, {}}, deleted));
    // The purge job ends here: also clean up after writers that crashed between writing bodies
    // and committing their rows, and after deletes whose hole punching was interrupted.
    std::lock_guard<std::mutex> lock(mu_);
    return ScrubSegments();
  }

  Status Delete(const std::string& id) override {
    std::vector<std::string> deleted;
    PORTCULLIS_RETURN_IF_ERROR(DeleteWhere("DELETE FROM records WHERE id = ? " + kReturning,
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
        } else {
          // The bodies that live in segment files, as far as the copied rows reach.
          status = CopySegments(out, dest.sqlite_path);
        }
      }
    }
    rc = sqlite3_close_v2(out);
    if (status.ok() && rc != SQLITE_OK) {
      status = SqliteError(rc, nullptr, "close backup " + dest.sqlite_path);
    }
    // Half a backup must not be mistaken for one.
    if (!status.ok()) {
      ::unlink(dest.sqlite_path.c_str());
      std::error_code ec;
      std::filesystem::remove_all(dest.sqlite_path + ".blobs", ec);
    }
    return status;
  }

 private:
  struct PendingPut {
    const std::vector<StoredRecord>* records = nullptr;
    const std::string* requires_record = nullptr;
    Status status;
    bool done = false;
  };

  void CommitGroup(const std::vector<PendingPut*>& group) {
    std::lock_guard<std::mutex> lock(mu_);
    auto fail_all = [&](const Status& s) {
      for (PendingPut* p : group) p->status = s;
    };
    if (Status s = CheckMigrated(); !s.ok()) return fail_all(s);
    // The bodies first, written once into this writer's segment and made durable; only then the
    // rows that point at them. A crash in between leaves unreferenced bytes that the next purge
    // punches out (ScrubSegments); it never leaves a row pointing at bytes that are not on disk.
    std::vector<const StoredRecord*> all;
    for (const PendingPut* p : group) {
      for (const StoredRecord& r : *p->records) all.push_back(&r);
    }
    std::vector<BlobRef> refs(all.size());
    if (Status s = WriteBodies(all, &refs); !s.ok()) return fail_all(s);
    Transaction txn(db_);
    if (Status s = txn.Begin().WithContext(Describe()); !s.ok()) return fail_all(s);
    std::size_t first = 0;
    bool any = false;
    for (PendingPut* p : group) {
      const std::size_t n = p->records->size();
      Status s = Exec(db_, "SAVEPOINT batch");
      if (s.ok()) s = InsertBatch(*p, &refs[first]);
      first += n;
      if (s.ok()) {
        s = Exec(db_, "RELEASE batch");
        if (s.ok()) {
          any = true;
          continue;
        }
      }
      p->status = s;
      if (sqlite3_get_autocommit(db_) != 0) {
        // SQLite rolled the whole transaction back (disk full, I/O error): nobody committed.
        return fail_all(s);
      }
      static_cast<void>(Exec(db_, "ROLLBACK TO batch"));  // then the rest of the group goes on
      static_cast<void>(Exec(db_, "RELEASE batch"));
    }
    if (!any) return;  // every batch failed on its own; the destructor rolls back
    const Status committed = txn.Commit().WithContext("commit to " + Describe());
    if (!committed.ok()) {
      for (PendingPut* p : group) {
        if (p->status.ok()) p->status = committed;
      }
    }
  }

  // One caller's batch, inside the group's transaction.
  Status InsertBatch(const PendingPut& put, const BlobRef* refs) {
    const std::string& requires_record = *put.requires_record;
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
    const std::string empty;
    Stmt insert;
    PORTCULLIS_RETURN_IF_ERROR(insert.Prepare(db_, kInsertSql));
    const std::vector<StoredRecord>& records = *put.records;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const StoredRecord& r = records[i];
      const BlobRef& ref = refs[i];
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
      PORTCULLIS_RETURN_IF_ERROR(insert.BindBlob(12, ref.segment == 0 ? r.sealed : empty));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindInt(13, ref.segment));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindInt(14, static_cast<std::int64_t>(ref.offset)));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindInt(15, static_cast<std::int64_t>(ref.length)));
      PORTCULLIS_RETURN_IF_ERROR(insert.BindInt(16, ref.crc32c));
      Status step = insert.StepDone();
      if (step.code() == Status::Code::kInvalidArgument) {
        return Status::InvalidArgument("record " + m.id + " already exists; batch not stored");
      }
      PORTCULLIS_RETURN_IF_ERROR(step.WithContext("put " + m.id + " into " + Describe()));
      insert.Reset();
    }
    return Status::Ok();
  }

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

  Status DeleteWhere(const std::string& sql, const SqlParam& param,
                     std::vector<std::string>* deleted) {
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    deleted->clear();
    std::vector<BlobRef> bodies;
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
        if (stmt.Int(1) != 0) {
          bodies.push_back(BlobRef{stmt.Int(1), static_cast<std::uint64_t>(stmt.Int(2)),
                                   static_cast<std::uint64_t>(stmt.Int(3)), 0});
        }
      }
    }
    PORTCULLIS_RETURN_IF_ERROR(txn.Commit().WithContext("commit to " + Describe()));
    std::sort(deleted->begin(), deleted->end());
    // The rows are gone; now the bodies go from the segment files too (secure_delete's
    // counterpart). A crash before this leaves them for the next purge's ScrubSegments.
    return PunchBodies(bodies);
  }

  // ---- Segment files -------------------------------------------------------------------------
  //
  // DB.blobs/<id>.seg, append-only, one per writing store object (a process never appends to
  // another's segment; it holds an exclusive flock on its active one). A row names its body by
  // (segment, offset, length, crc32c). Deleted bodies are punched out of the file
  // (FALLOC_FL_PUNCH_HOLE, or zeros where unsupported); a segment that no row references and no
  // writer holds is unlinked.

  [[nodiscard]] std::string SegmentPath(std::int64_t segment) const {
    return blob_dir_ + "/" + std::to_string(segment) + ".seg";
  }

  Status OpenNewSegment() {
    active_fd_.Reset();  // releases the flock on the previous one
    if (::mkdir(blob_dir_.c_str(), 0700) == 0) {
      PORTCULLIS_RETURN_IF_ERROR(SyncDir(DirOf(path_)));
    } else if (errno != EEXIST) {
      return ErrnoStatus(errno, "create " + blob_dir_);
    }
    std::int64_t id = 0;
    {
      Transaction txn(db_);
      PORTCULLIS_RETURN_IF_ERROR(txn.Begin());
      Stmt next;
      PORTCULLIS_RETURN_IF_ERROR(next.Prepare(
          db_,
          "INSERT INTO blob_segments (id, created_micros) SELECT COALESCE(MAX(id), 0) + 1, ? "
          "FROM blob_segments RETURNING id"));
      PORTCULLIS_RETURN_IF_ERROR(next.BindInt(1, Env::Default()->NowMicros()));
      bool row = false;
      PORTCULLIS_RETURN_IF_ERROR(next.Step(&row).WithContext("new segment in " + Describe()));
      if (!row) return Status::Internal("no segment id from " + Describe());
      id = next.Int(0);
      PORTCULLIS_RETURN_IF_ERROR(next.StepDone());
      PORTCULLIS_RETURN_IF_ERROR(txn.Commit().WithContext("commit to " + Describe()));
    }
    const std::string path = SegmentPath(id);
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) return ErrnoStatus(errno, "create segment " + path);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return ErrnoStatus(errno, "lock " + path);
    PORTCULLIS_RETURN_IF_ERROR(SyncDir(blob_dir_));
    active_fd_ = std::move(fd);
    active_id_ = id;
    active_end_ = 0;
    return Status::Ok();
  }

  Status WriteBodies(const std::vector<const StoredRecord*>& records, std::vector<BlobRef>* refs) {
    std::uint64_t bytes = 0;
    for (const StoredRecord* r : records) {
      if (r->sealed.size() > kInlineMax) bytes += r->sealed.size();
    }
    if (bytes < kSegmentBatchMin) return Status::Ok();
    if (!active_fd_.valid() || (active_end_ > 0 && active_end_ + bytes > kSegmentBytes)) {
      PORTCULLIS_RETURN_IF_ERROR(OpenNewSegment());
    }
    const int fd = active_fd_.get();
    const std::string what = "write segment " + SegmentPath(active_id_);
    for (std::size_t i = 0; i < records.size(); ++i) {
      const std::string& sealed = records[i]->sealed;
      if (sealed.size() <= kInlineMax) continue;
      BlobRef& ref = (*refs)[i];
      ref.segment = active_id_;
      ref.offset = active_end_;
      ref.length = sealed.size();
      // Bytes once written are never reused, whatever happens to this batch: a failed commit
      // may still turn out to have committed.
      active_end_ += sealed.size();
      PORTCULLIS_RETURN_IF_ERROR(PwriteAll(fd, sealed.data(), sealed.size(), ref.offset, what));
      // Start the disk on this body now, while the next ones are checksummed and copied: the
      // fdatasync below then waits for less.
      ::sync_file_range(fd, static_cast<off_t>(ref.offset), static_cast<off_t>(ref.length),
                        SYNC_FILE_RANGE_WRITE);
      ref.crc32c = Crc32c(sealed);
    }
    Fault("bodies-written");
    if (::fdatasync(fd) != 0) return ErrnoStatus(errno, "fdatasync " + SegmentPath(active_id_));
    Fault("bodies-synced");
    return Status::Ok();
  }

  Status ReadBody(const std::string& id, const BlobRef& ref, std::string* sealed) {
    const std::string path = SegmentPath(ref.segment);
    auto it = read_fds_.find(ref.segment);
    if (it == read_fds_.end()) {
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) {
        if (errno == ENOENT) {
          return Status::Corruption("record " + id + ": its segment file " + path + " is missing");
        }
        return ErrnoStatus(errno, "open " + path);
      }
      it = read_fds_.emplace(ref.segment, std::move(fd)).first;
    }
    sealed->resize(ref.length);
    std::size_t done = 0;
    while (done < ref.length) {
      const ssize_t n = ::pread(it->second.get(), sealed->data() + done, ref.length - done,
                                static_cast<off_t>(ref.offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus(errno, "read " + path);
      if (n == 0) break;  // end of file inside the body
      done += static_cast<std::size_t>(n);
    }
    if (done < ref.length) {
      sealed->clear();
      return Status::Corruption("record " + id + ": segment " + path + " is truncated");
    }
    if (Crc32c(*sealed) != ref.crc32c) {
      sealed->clear();
      return Status::Corruption("record " + id + ": body in " + path + " fails its CRC-32C");
    }
    return Status::Ok();
  }

  // Removes [offset, offset + length) of a segment from the disk: a hole where the file system
  // has them, zeros otherwise. Then makes it durable.
  static Status PunchRange(int fd, const std::string& path, std::uint64_t offset,
                           std::uint64_t length) {
    if (length == 0) return Status::Ok();
    if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(length)) == 0) {
      return Status::Ok();
    }
    if (errno != EOPNOTSUPP && errno != ENOSYS) return ErrnoStatus(errno, "punch " + path);
    const std::string zeros(std::min<std::uint64_t>(length, 1 << 20), '\0');
    while (length > 0) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(length, zeros.size()));
      PORTCULLIS_RETURN_IF_ERROR(PwriteAll(fd, zeros.data(), n, offset, "zero " + path));
      offset += n;
      length -= n;
    }
    return Status::Ok();
  }

  Status PunchBodies(const std::vector<BlobRef>& bodies) {
    std::map<std::int64_t, std::vector<const BlobRef*>> by_segment;
    for (const BlobRef& b : bodies) by_segment[b.segment].push_back(&b);
    for (const auto& [segment, refs] : by_segment) {
      const std::string path = SegmentPath(segment);
      UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
      if (!fd.valid()) {
        if (errno == ENOENT) continue;  // already gone
        return ErrnoStatus(errno, "open " + path);
      }
      for (const BlobRef* ref : refs) {
        PORTCULLIS_RETURN_IF_ERROR(PunchRange(fd.get(), path, ref->offset, ref->length));
      }
      if (::fdatasync(fd.get()) != 0) return ErrnoStatus(errno, "fdatasync " + path);
      PORTCULLIS_RETURN_IF_ERROR(RemoveIfDead(segment, &fd));
    }
    return Status::Ok();
  }

  // Unlinks a segment that no row references and no writer holds (its flock is free).
  Status RemoveIfDead(std::int64_t segment, UniqueFd* fd) {
    if (segment == active_id_ && active_fd_.valid()) return Status::Ok();
    Stmt used;
    PORTCULLIS_RETURN_IF_ERROR(
        used.Prepare(db_, "SELECT 1 FROM records WHERE blob_segment = ? LIMIT 1"));
    PORTCULLIS_RETURN_IF_ERROR(used.BindInt(1, segment));
    bool row = false;
    PORTCULLIS_RETURN_IF_ERROR(used.Step(&row));
    if (row) return Status::Ok();
    if (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) return Status::Ok();  // a live writer's
    const std::string path = SegmentPath(segment);
    read_fds_.erase(segment);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "unlink " + path);
    return SyncDir(blob_dir_);
  }

  // Recovery work for the purge job: in every segment, punches out the bytes between and before
  // live bodies (bodies of rows deleted by a call that crashed before punching, bodies of batches
  // whose rows never committed); in a segment no writer holds, also cuts the tail after the last
  // live body (a torn or orphaned append) and unlinks it when nothing in it is live.
  Status ScrubSegments() {
    std::error_code ec;
    if (!std::filesystem::is_directory(blob_dir_, ec)) return Status::Ok();
    std::map<std::int64_t, std::vector<std::pair<std::uint64_t, std::uint64_t>>> live;
    {
      Stmt stmt;
      PORTCULLIS_RETURN_IF_ERROR(stmt.Prepare(
          db_,
          "SELECT blob_segment, blob_offset, blob_length FROM records WHERE blob_segment <> 0 "
          "ORDER BY blob_segment, blob_offset"));
      for (;;) {
        bool row = false;
        PORTCULLIS_RETURN_IF_ERROR(stmt.Step(&row).WithContext("scrub " + Describe()));
        if (!row) break;
        live[stmt.Int(0)].emplace_back(static_cast<std::uint64_t>(stmt.Int(1)),
                                       static_cast<std::uint64_t>(stmt.Int(2)));
      }
    }
    for (const auto& entry : std::filesystem::directory_iterator(blob_dir_, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.size() < 5 || name.substr(name.size() - 4) != ".seg") continue;
      const std::string stem = name.substr(0, name.size() - 4);
      if (stem.empty() ||
          !std::all_of(stem.begin(), stem.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        continue;
      }
      const std::int64_t segment = std::stoll(stem);
      const std::string path = SegmentPath(segment);
      UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
      if (!fd.valid()) continue;
      std::uint64_t end = 0;
      for (const auto& [offset, length] : live[segment]) {
        if (offset > end) PORTCULLIS_RETURN_IF_ERROR(PunchRange(fd.get(), path, end, offset - end));
        end = std::max(end, offset + length);
      }
      const bool ours = segment == active_id_ && active_fd_.valid();
      if (!ours && ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) {
        if (live[segment].empty()) {
          read_fds_.erase(segment);
          if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            return ErrnoStatus(errno, "unlink " + path);
          }
          PORTCULLIS_RETURN_IF_ERROR(SyncDir(blob_dir_));
          continue;
        }
        if (::ftruncate(fd.get(), static_cast<off_t>(end)) != 0) {
          return ErrnoStatus(errno, "truncate " + path);
        }
      }
      if (::fdatasync(fd.get()) != 0) return ErrnoStatus(errno, "fdatasync " + path);
    }
    return Status::Ok();
  }

  // Copies the segments that the backup at dest_path references, up to their last live byte.
  Status CopySegments(sqlite3* dest, const std::string& dest_path) {
    Stmt stmt;
    PORTCULLIS_RETURN_IF_ERROR(
        stmt.Prepare(dest,
                     "SELECT blob_segment, MAX(blob_offset + blob_length) FROM records "
                     "WHERE blob_segment <> 0 GROUP BY blob_segment"));
    const std::string dest_dir = dest_path + ".blobs";
    bool made_dir = false;
    for (;;) {
      bool row = false;
      PORTCULLIS_RETURN_IF_ERROR(stmt.Step(&row));
      if (!row) break;
      if (!made_dir) {
        if (::mkdir(dest_dir.c_str(), 0700) != 0 && errno != EEXIST) {
          return ErrnoStatus(errno, "create " + dest_dir);
        }
        made_dir = true;
      }
      const std::int64_t segment = stmt.Int(0);
      auto left = static_cast<std::uint64_t>(stmt.Int(1));
      const std::string from = SegmentPath(segment);
      const std::string to = dest_dir + "/" + std::to_string(segment) + ".seg";
      UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
      if (!in.valid()) return ErrnoStatus(errno, "open " + from);
      UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (!out.valid()) return ErrnoStatus(errno, "create " + to);
      std::string buffer(std::size_t{1} << 20, '\0');
      std::uint64_t offset = 0;
      while (left > 0) {
        const std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer.size()));
        const ssize_t n = ::pread(in.get(), buffer.data(), want, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ErrnoStatus(errno, "read " + from);
        if (n == 0) return Status::Corruption("segment " + from + " is truncated");
        PORTCULLIS_RETURN_IF_ERROR(PwriteAll(out.get(), buffer.data(), static_cast<std::size_t>(n),
                                             offset, "write " + to));
        offset += static_cast<std::uint64_t>(n);
        left -= static_cast<std::uint64_t>(n);
      }
      if (::fsync(out.get()) != 0) return ErrnoStatus(errno, "fsync " + to);
    }
    if (made_dir) {
      PORTCULLIS_RETURN_IF_ERROR(SyncDir(dest_dir));
      PORTCULLIS_RETURN_IF_ERROR(SyncDir(DirOf(dest_path)));
    }
    return Status::Ok();
  }

  static inline const std::string kReturning =
      "RETURNING id, blob_segment, blob_offset, blob_length";

  std::mutex mu_;
  sqlite3* db_;
  std::string path_;
  std::string blob_dir_;
  bool migrated_ = false;
  // This store's segment (flock'ed), and where its next body goes.
  UniqueFd active_fd_;
  std::int64_t active_id_ = 0;
  std::uint64_t active_end_ = 0;
  std::map<std::int64_t, UniqueFd> read_fds_;
  // Group commit (Put): batches waiting for the current leader, and whether there is one.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<PendingPut*> queue_;
  bool leader_active_ = false;
};

}  // namespace

void SetSqliteFaultHookForTesting(SqliteFaultHook hook) { g_fault_hook.store(hook); }

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
