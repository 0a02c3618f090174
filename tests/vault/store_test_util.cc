#include "store_test_util.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>

#include "portcullis/vault_record.h"

namespace portcullis::vault::testing {

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

std::string PostgresBaseUri(std::string* error) {
  const char* file = std::getenv("PORTCULLIS_TEST_PG_URI_FILE");
  if (file == nullptr) {
    *error =
        "PORTCULLIS_TEST_PG_URI_FILE is not set: run the tests through ctest (which starts "
        "the test server) or start one with scripts/pg_test_server.sh start DIR";
    return "";
  }
  std::ifstream in(file);
  std::string uri;
  std::getline(in, uri);
  if (uri.empty()) {
    *error = std::string("no PostgreSQL test server URI in ") + file +
             " (did the postgres_server_setup test fail?)";
  }
  return uri;
}

void ExecRaw(Backend backend, const std::string& uri, const std::string& sql) {
  if (backend == Backend::kSqlite) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(uri.substr(7).c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
    return;
  }
  try {
    pqxx::connection conn(uri);
    pqxx::nontransaction txn(conn);
    txn.exec(sql);
  } catch (const std::exception& e) {
    FAIL() << "PostgreSQL: " << e.what();
  }
}

std::string MakeTempDir() {
  std::string pattern = ::testing::TempDir() + "vault_store_XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

ScratchStore::ScratchStore(Backend backend) : backend_(backend) {
  if (backend == Backend::kSqlite) {
    dir_ = MakeTempDir();
    if (dir_.empty()) {
      error_ = "mkdtemp failed";
      return;
    }
    uri_ = "sqlite:" + dir_ + "/vault.db";
    return;
  }
  base_ = PostgresBaseUri(&error_);
  if (base_.empty()) return;
  // A schema per test: tests run in parallel against one server and never see each other.
  schema_ = "t_" + NewRecordId();
  try {
    pqxx::connection conn(base_);
    pqxx::nontransaction txn(conn);
    txn.exec("CREATE SCHEMA " + schema_);
  } catch (const std::exception& e) {
    error_ = std::string("cannot reach the PostgreSQL test server: ") + e.what();
    return;
  }
  uri_ = base_ + (base_.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" +
         schema_ + "&application_name=" + schema_;
}

ScratchStore::~ScratchStore() {
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  if (!schema_.empty() && error_.empty()) {
    try {
      pqxx::connection conn(base_);
      pqxx::nontransaction txn(conn);
      txn.exec("DROP SCHEMA " + schema_ + " CASCADE");
    } catch (const std::exception&) {
      // The server is going away with the fixture anyway.
    }
  }
}

}  // namespace portcullis::vault::testing

// libpqxx 6.4 leaks the PGresult of a statement that fails because the server dropped the
// connection (PostgresDown.ALostConnectionIsIOErrorThenReconnects provokes exactly that). It is
// inside the library, once per lost connection; LeakSanitizer reads this hook from the binary.
extern "C" const char* __lsan_default_suppressions();   // NOLINT(bugprone-reserved-identifier)
extern "C" const char* __lsan_default_suppressions() {  // NOLINT(bugprone-reserved-identifier)
  return "leak:pqxx::connection_base::exec_params\n";
}
