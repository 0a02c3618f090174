// The PostgreSQL test server for the audit tests: ctest starts a private one (the audit_postgres
// fixture in CMakeLists.txt) and puts its URI in the file PORTCULLIS_TEST_PG_URI_FILE names. Each
// test gets its own schema, so tests running in parallel never see each other's log.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <pqxx/pqxx>
#include <string>

namespace portcullis::audit::testing {

inline std::string PostgresBaseUri(std::string* error) {
  const char* file = std::getenv("PORTCULLIS_TEST_PG_URI_FILE");
  if (file == nullptr) {
    *error =
        "PORTCULLIS_TEST_PG_URI_FILE is not set: run the tests through ctest (which starts the "
        "test server) or start one with scripts/pg_test_server.sh start DIR";
    return "";
  }
  std::ifstream in(file);
  std::string uri;
  std::getline(in, uri);
  if (uri.empty()) *error = std::string("no PostgreSQL test server URI in ") + file;
  return uri;
}

// Runs SQL as the server's superuser in the scratch schema (tests use it to play the attacker
// who owns the database).
inline std::string ExecSql(const std::string& uri, const std::string& sql) {
  try {
    pqxx::connection conn(uri);
    pqxx::nontransaction txn(conn);
    txn.exec(sql);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

class ScratchSchema {
 public:
  ScratchSchema() {
    base_ = PostgresBaseUri(&error_);
    if (base_.empty()) return;
    static std::atomic<int> counter{0};
    schema_ = "audit_t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    error_ = ExecSql(base_, "CREATE SCHEMA " + schema_);
    if (!error_.empty()) return;
    uri_ = base_ + (base_.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" +
           schema_;
  }
  ~ScratchSchema() {
    if (!uri_.empty()) (void)ExecSql(base_, "DROP SCHEMA " + schema_ + " CASCADE");
  }
  ScratchSchema(const ScratchSchema&) = delete;
  ScratchSchema& operator=(const ScratchSchema&) = delete;

  [[nodiscard]] const std::string& uri() const { return uri_; }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  std::string base_, schema_, uri_, error_;
};

}  // namespace portcullis::audit::testing
