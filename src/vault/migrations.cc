#include "vault/migrations.h"

#include <string_view>

namespace portcullis::vault {
namespace {

const std::vector<Migration>& AllMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "records: metadata in clear, wrapped data key, sealed body",
       {"CREATE TABLE records ("
        " id TEXT PRIMARY KEY,"
        " type TEXT NOT NULL,"
        " subject TEXT NOT NULL,"
        " retention_class TEXT NOT NULL,"
        " content_type TEXT NOT NULL,"
        " created_micros {INT64} NOT NULL,"
        " expires_micros {INT64} NOT NULL,"
        " labels TEXT NOT NULL,"
        " size {INT64} NOT NULL,"
        " kek_id TEXT NOT NULL,"
        " wrapped_key {BLOB} NOT NULL,"
        " sealed {BLOB} NOT NULL)"}},
      {2,
       "indexes for purge by KEK, expiry and listing in creation order",
       {"CREATE INDEX records_by_kek ON records (kek_id)",
        "CREATE INDEX records_by_expiry ON records (expires_micros)",
        "CREATE INDEX records_by_created ON records (created_micros, id)"}},
      // SQLite keeps large sealed bodies in append-only segment files next to the database
      // (written once and fdatasync'ed before the row commits) instead of in the row, where WAL
      // and checkpoint wrote every body twice; the row names segment, offset, length and CRC-32C.
      // blob_segment 0 means "the body is in `sealed`" (every PostgreSQL row, small SQLite
      // bodies, and every row written before this step). Segment ids are never reused.
      {3,
       "sealed bodies in append-only segment files (SQLite)",
       {"ALTER TABLE records ADD COLUMN blob_segment {INT64} NOT NULL DEFAULT 0",
        "ALTER TABLE records ADD COLUMN blob_offset {INT64} NOT NULL DEFAULT 0",
        "ALTER TABLE records ADD COLUMN blob_length {INT64} NOT NULL DEFAULT 0",
        "ALTER TABLE records ADD COLUMN blob_crc32c {INT64} NOT NULL DEFAULT 0",
        "CREATE TABLE blob_segments (id {INT64} PRIMARY KEY, created_micros {INT64} NOT NULL)",
        "CREATE INDEX records_by_segment ON records (blob_segment, blob_offset)"}},
  };
  return kMigrations;
}

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  for (std::size_t pos = s->find(from); pos != std::string::npos;
       pos = s->find(from, pos + to.size())) {
    s->replace(pos, from.size(), to);
  }
}

}  // namespace

std::span<const Migration> Migrations() { return AllMigrations(); }

int LatestSchemaVersion() { return AllMigrations().back().version; }

std::string ForDialect(const char* statement, SqlDialect dialect) {
  std::string sql(statement);
  ReplaceAll(&sql, "{BLOB}", dialect == SqlDialect::kSqlite ? "BLOB" : "BYTEA");
  ReplaceAll(&sql, "{INT64}", dialect == SqlDialect::kSqlite ? "INTEGER" : "BIGINT");
  return sql;
}

}  // namespace portcullis::vault
