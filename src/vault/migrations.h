// The store's schema, as an ordered list of migrations. Both backends apply the same steps, written
// once with two type placeholders ({BLOB}, {INT64}) that each dialect fills in.
//
// Rules: a migration, once released, never changes; a new schema is a new step at the end. Each
// step runs in its own transaction together with the row that records it in schema_version, so a
// crash mid-migration leaves the database at the previous version. A database whose version is
// newer than kLatestSchemaVersion is refused (Unsupported): old code must not write rows it does
// not understand.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace portcullis::vault {

enum class SqlDialect { kSqlite, kPostgres };

struct Migration {
  int version;              // 1, 2, ... in order, no gaps
  const char* description;  // stored in schema_version
  std::vector<const char*> statements;
};

// The table that records which migrations ran; created before the first migration.
inline constexpr const char* kSchemaVersionTable =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY,"
    " description TEXT NOT NULL,"
    " applied_micros {INT64} NOT NULL)";

std::span<const Migration> Migrations();
int LatestSchemaVersion();

// The statement with its placeholders filled in for the dialect.
std::string ForDialect(const char* statement, SqlDialect dialect);

}  // namespace portcullis::vault
