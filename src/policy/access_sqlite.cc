// The access store's SQLite database: one file in WAL mode with synchronous=FULL (an acknowledged
// token, ticket use or approval survives a crash of the process or the machine), a busy timeout
// for the moments another process holds the write lock, and BEGIN IMMEDIATE for every write.
#include <sqlite3.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <utility>

#include "policy/access_sql.h"
#include "vault/sqlite_store.h"

namespace portcullis::policy::sql {

std::int64_t Row::Int(std::size_t i) const {
  const std::string& text = columns.at(i);
  std::int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

namespace {

using vault::SqliteError;  // one mapping of SQLite's result codes for every store

class SqliteSession : public Session {
 public:
  explicit SqliteSession(sqlite3* db) : db_(db) {}

  Status Exec(const std::string& sql, const std::vector<Value>& params, Result* result) override {
    result->rows.clear();
    result->affected = 0;
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size() + 1), &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(rc, db_, "prepare");
    // Finalized on every path.
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owned(stmt, sqlite3_finalize);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i + 1);
      rc = params[i].is_int
               ? sqlite3_bind_int64(stmt, index, params[i].int_value)
               : sqlite3_bind_text64(stmt, index, params[i].text.data(), params[i].text.size(),
                                     SQLITE_TRANSIENT, SQLITE_UTF8);
      if (rc != SQLITE_OK) return SqliteError(rc, db_, "bind");
    }
    for (;;) {
      rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return SqliteError(rc, db_, "step");
      Row row;
      const int columns = sqlite3_column_count(stmt);
      for (int c = 0; c < columns; ++c) {
        const unsigned char* text = sqlite3_column_text(stmt, c);
        const int bytes = sqlite3_column_bytes(stmt, c);
        row.columns.emplace_back(text == nullptr ? std::string()
                                                 : std::string(reinterpret_cast<const char*>(text),
                                                               static_cast<std::size_t>(bytes)));
      }
      result->rows.push_back(std::move(row));
    }
    result->affected = sqlite3_changes(db_);
    return Status::Ok();
  }

 private:
  sqlite3* db_;
};

Status Exec(sqlite3* db, const char* sql) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? Status::Ok() : SqliteError(rc, db, sql);
}

class SqliteDatabase : public Database {
 public:
  SqliteDatabase(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteDatabase() override { sqlite3_close_v2(db_); }
  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;

  Status Init() {
    sqlite3_extended_result_codes(db_, 1);
    // Other nodes' CLIs (`portcullis access ...`) and the service share the file: wait for the
    // write lock rather than fail at once.
    sqlite3_busy_timeout(db_, 10000);
    SqliteSession session(db_);
    Result mode;
    // Reading the journal mode reads the header: a file that is not a database fails here.
    PORTCULLIS_RETURN_IF_ERROR(session.Exec("PRAGMA journal_mode=WAL", {}, &mode));
    if (mode.rows.empty() || mode.rows[0].Text(0) != "wal") {
      return Status::IOError("cannot switch to WAL mode");
    }
    // FULL: the WAL is fsynced at every commit.
    PORTCULLIS_RETURN_IF_ERROR(Exec(db_, "PRAGMA synchronous=FULL"));
    // A revoked principal's old token hash is overwritten, not left in a free page.
    PORTCULLIS_RETURN_IF_ERROR(Exec(db_, "PRAGMA secure_delete=ON"));
    return Exec(db_, "PRAGMA foreign_keys=ON");
  }

  [[nodiscard]] Dialect dialect() const override { return Dialect::kSqlite; }
  [[nodiscard]] std::string Describe() const override { return "sqlite:" + path_; }

  Status Write(const std::function<Status(Session&)>& fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE").WithContext(Describe()));
    SqliteSession session(db_);
    Status status = fn(session);
    if (status.ok()) status = Exec(db_, "COMMIT").WithContext(Describe());
    // After a failed COMMIT the transaction may still be open: ROLLBACK makes it "nothing written".
    if (!status.ok()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return status;
  }

  Status Read(const std::function<Status(Session&)>& fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    SqliteSession session(db_);
    return fn(session).WithContext(Describe());
  }

  // BEGIN IMMEDIATE already excludes every other writer of the file.
  Status Migrate(const std::function<Status(Session&)>& fn) override { return Write(fn); }

 private:
  std::mutex mu_;
  sqlite3* db_;
  std::string path_;
};

}  // namespace

Status OpenSqlite(const std::string& path, std::unique_ptr<Database>* db) {
  sqlite3* handle = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &handle,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status status = SqliteError(rc, handle, "open sqlite:" + path);
    sqlite3_close_v2(handle);
    return status;
  }
  auto opened = std::make_unique<SqliteDatabase>(handle, path);
  PORTCULLIS_RETURN_IF_ERROR(opened->Init().WithContext("open sqlite:" + path));
  *db = std::move(opened);
  return Status::Ok();
}

}  // namespace portcullis::policy::sql
