// Fixtures shared by the store tests: a fresh store per test on either backend.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "vault/record_store.h"

namespace portcullis::vault::testing {

enum class Backend { kSqlite, kPostgres };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info);

// The test server's base URI (written by scripts/pg_test_server.sh, found through
// $PORTCULLIS_TEST_PG_URI_FILE); empty, with *error set, when it is not available.
std::string PostgresBaseUri(std::string* error);

// Runs SQL on a store's database behind the store's back (to fake a newer schema, etc.).
void ExecRaw(Backend backend, const std::string& uri, const std::string& sql);

// A per-test database: a temporary SQLite file, or a private PostgreSQL schema on the test server.
class ScratchStore {
 public:
  explicit ScratchStore(Backend backend);
  ~ScratchStore();
  ScratchStore(const ScratchStore&) = delete;
  ScratchStore& operator=(const ScratchStore&) = delete;

  // Empty (with error()) when the backend is unavailable.
  [[nodiscard]] const std::string& uri() const { return uri_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] const std::string& dir() const { return dir_; }
  // PostgreSQL: the schema, also the application_name of the store's connections.
  [[nodiscard]] const std::string& schema() const { return schema_; }

 private:
  Backend backend_;
  std::string uri_;
  std::string error_;
  std::string dir_;     // SQLite: the temporary directory
  std::string schema_;  // PostgreSQL: the schema
  std::string base_;
};

std::string MakeTempDir();

}  // namespace portcullis::vault::testing
