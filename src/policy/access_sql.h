// The access store's view of a SQL database: one small interface with a SQLite and a PostgreSQL
// implementation (access_sqlite.cc, access_postgres.cc), so the store's rules (access_store.cc) are
// written once and behave the same on both backends. Statements use `?` placeholders (the
// PostgreSQL side numbers them $1, $2, ...); values and results travel as text or 64-bit integers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "portcullis/status.h"

namespace portcullis::policy::sql {

enum class Dialect { kSqlite, kPostgres };

// A bound parameter.
struct Value {
  Value(std::int64_t v) : is_int(true), int_value(v) {}  // NOLINT(google-explicit-constructor)
  Value(int v) : is_int(true), int_value(v) {}           // NOLINT(google-explicit-constructor)
  Value(std::string v) : text(std::move(v)) {}           // NOLINT(google-explicit-constructor)
  Value(const char* v) : text(v) {}                      // NOLINT(google-explicit-constructor)
  bool is_int = false;
  std::int64_t int_value = 0;
  std::string text;
};

// Result rows; every column as text (integers in decimal). No column is ever NULL in this schema.
struct Row {
  std::vector<std::string> columns;
  [[nodiscard]] const std::string& Text(std::size_t i) const { return columns.at(i); }
  [[nodiscard]] std::int64_t Int(std::size_t i) const;  // 0 when the text is not a number
};
struct Result {
  std::vector<Row> rows;
  std::int64_t affected = 0;  // rows changed by an INSERT/UPDATE/DELETE
};

// Runs statements inside one transaction (see Database::Write) or as single statements (Read).
class Session {
 public:
  virtual ~Session() = default;
  virtual Status Exec(const std::string& sql, const std::vector<Value>& params, Result* result) = 0;
  Status Exec(const std::string& sql, const std::vector<Value>& params) {
    Result ignored;
    return Exec(sql, params, &ignored);
  }
};

class Database {
 public:
  virtual ~Database() = default;
  [[nodiscard]] virtual Dialect dialect() const = 0;
  // "sqlite:PATH" or the PostgreSQL URI without its password.
  [[nodiscard]] virtual std::string Describe() const = 0;
  // One read-write transaction: committed when fn returns OK, rolled back otherwise. SQLite takes
  // the write lock at BEGIN (IMMEDIATE); PostgreSQL runs READ COMMITTED, so a conditional UPDATE
  // re-checks its WHERE clause against a row another transaction just changed (what makes
  // "exactly one approval wins" hold across nodes). Calls are serialised per Database.
  virtual Status Write(const std::function<Status(Session&)>& fn) = 0;
  // Reads of one statement each, outside an explicit transaction (cheaper round trips).
  virtual Status Read(const std::function<Status(Session&)>& fn) = 0;
  // Write, with an exclusive lock against other processes migrating the same database.
  virtual Status Migrate(const std::function<Status(Session&)>& fn) = 0;
};

Status OpenSqlite(const std::string& path, std::unique_ptr<Database>* db);
Status OpenPostgres(const std::string& uri, std::unique_ptr<Database>* db);

}  // namespace portcullis::policy::sql
