// The access store's PostgreSQL database: what several service nodes share. One connection per
// store (calls serialised), re-opened after the server dropped it; libpqxx's exceptions become
// Status here and nowhere else.
#include <mutex>
#include <pqxx/pqxx>
#include <utility>

#include "policy/access_sql.h"
#include "vault/store_uri.h"

namespace portcullis::policy::sql {
namespace {

// Migrations from several nodes at once take turns on this transaction-scoped advisory lock
// (distinct from the vault's, so the two schemas can migrate side by side in one database).
constexpr std::int64_t kMigrationLock = 0x706f7274616363;  // "portacc"

Status FromSqlState(const std::string& state, const std::string& msg) {
  if (state.starts_with("23")) return Status::InvalidArgument(msg);
  if (state == "53100") return Status::IOError("disk full on the PostgreSQL server: " + msg);
  if (state == "53200") return Status::ResourceExhausted(msg);
  if (state.starts_with("53") || state.starts_with("58") || state.starts_with("08") ||
      state.starts_with("57P")) {
    return Status::IOError(msg);
  }
  if (state == "XX001" || state == "XX002") return Status::Corruption(msg);
  if (state.starts_with("40")) return Status::IOError("transaction aborted, retry: " + msg);
  return Status::Internal("PostgreSQL error " + state + ": " + msg);
}

// "? ... ?" -> "$1 ... $2". The store's statements have no '?' inside string literals.
std::string Numbered(const std::string& sql) {
  std::string out;
  out.reserve(sql.size() + 8);
  int n = 0;
  for (char c : sql) {
    if (c == '?') {
      out += '$';
      out += std::to_string(++n);
    } else {
      out += c;
    }
  }
  return out;
}

class PostgresSession : public Session {
 public:
  explicit PostgresSession(pqxx::transaction_base& txn) : txn_(txn) {}

  Status Exec(const std::string& sql, const std::vector<Value>& params, Result* result) override {
    // Every parameter goes as text; the server types it from its context (a column, a comparison).
    std::vector<std::string> values;
    values.reserve(params.size());
    for (const Value& v : params) values.push_back(v.is_int ? std::to_string(v.int_value) : v.text);
    pqxx::result r = txn_.exec_params(Numbered(sql), pqxx::prepare::make_dynamic_params(values));
    result->rows.clear();
    for (const pqxx::row& row : r) {
      Row out;
      for (const pqxx::field& field : row) out.columns.emplace_back(field.c_str());
      result->rows.push_back(std::move(out));
    }
    result->affected = static_cast<std::int64_t>(r.affected_rows());
    return Status::Ok();
  }

 private:
  pqxx::transaction_base& txn_;
};

class PostgresDatabase : public Database {
 public:
  explicit PostgresDatabase(std::string uri)
      : uri_(std::move(uri)), described_(vault::RedactStoreUri(uri_)) {}

  Status Connect() {
    std::lock_guard<std::mutex> lock(mu_);
    return Run("open " + described_, [] { return Status::Ok(); });
  }

  [[nodiscard]] Dialect dialect() const override { return Dialect::kPostgres; }
  [[nodiscard]] std::string Describe() const override { return described_; }

  Status Write(const std::function<Status(Session&)>& fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    return Run(described_, [&] {
      pqxx::work txn(*conn_);
      PostgresSession session(txn);
      PORTCULLIS_RETURN_IF_ERROR(fn(session));
      txn.commit();
      return Status::Ok();
    });
  }

  Status Read(const std::function<Status(Session&)>& fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    return Run(described_, [&] {
      pqxx::nontransaction txn(*conn_);
      PostgresSession session(txn);
      PORTCULLIS_RETURN_IF_ERROR(fn(session));
      txn.commit();
      return Status::Ok();
    });
  }

  Status Migrate(const std::function<Status(Session&)>& fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    return Run("migrate " + described_, [&] {
      pqxx::work txn(*conn_);
      txn.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLock);
      PostgresSession session(txn);
      PORTCULLIS_RETURN_IF_ERROR(fn(session));
      txn.commit();
      return Status::Ok();
    });
  }

 private:
  // After the server dropped us (restart, failover) the failing call reports IOError and the next
  // one reconnects.
  template <typename Fn>
  Status Run(const std::string& what, Fn&& fn) {
    try {
      if (conn_ == nullptr || lost_ || !conn_->is_open()) {
        conn_.reset();
        conn_ = std::make_unique<pqxx::connection>(uri_);
        lost_ = false;
      }
      return fn();
    } catch (const pqxx::in_doubt_error& e) {
      lost_ = true;
      return Status::IOError(what +
                             ": connection lost during COMMIT; outcome unknown: " + e.what());
    } catch (const pqxx::broken_connection& e) {
      lost_ = true;
      return Status::IOError(what + ": PostgreSQL unreachable: " + e.what());
    } catch (const pqxx::sql_error& e) {
      return FromSqlState(e.sqlstate(), e.what()).WithContext(what);
    } catch (const std::exception& e) {
      return Status::Internal(what + ": " + e.what());
    }
  }

  std::mutex mu_;
  std::string uri_;
  std::string described_;
  std::unique_ptr<pqxx::connection> conn_;
  bool lost_ = false;
};

}  // namespace

Status OpenPostgres(const std::string& uri, std::unique_ptr<Database>* db) {
  auto opened = std::make_unique<PostgresDatabase>(uri);
  PORTCULLIS_RETURN_IF_ERROR(opened->Connect());
  *db = std::move(opened);
  return Status::Ok();
}

}  // namespace portcullis::policy::sql
