#include "vault/postgres_store.h"

#include <algorithm>
#include <mutex>
#include <pqxx/pqxx>
#include <utility>

#include "portcullis/env.h"
#include "vault/migrations.h"
#include "vault/record_sql.h"
#include "vault/store_uri.h"

namespace portcullis::vault {
namespace {

// Migrations from several processes at once take turns on this advisory lock.
constexpr std::int64_t kMigrationLock = 0x706f7274637573;  // "portcus"

// libpqxx reports everything by exception; this is the one place they become Status.
Status FromSqlState(const std::string& state, const std::string& msg) {
  if (state == "23505") return Status::InvalidArgument("record already exists: " + msg);
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

// libpqxx reports by exception; this is the one place they become Status. `lost` is set when the
// connection is gone, so that the next call opens a new one.
template <typename Fn>
Status Guard(const std::string& what, bool* lost, Fn&& fn) {
  try {
    return fn();
  } catch (const pqxx::in_doubt_error& e) {
    *lost = true;
    return Status::IOError(what + ": connection lost during COMMIT; outcome unknown: " + e.what());
  } catch (const pqxx::broken_connection& e) {
    *lost = true;
    return Status::IOError(what + ": PostgreSQL unreachable: " + e.what());
  } catch (const pqxx::sql_error& e) {
    return FromSqlState(e.sqlstate(), e.what()).WithContext(what);
  } catch (const std::exception& e) {
    return Status::Internal(what + ": " + e.what());
  }
}

std::string Bytes(const pqxx::field& field) {
  pqxx::binarystring bytes(field);
  return bytes.str();
}

Status ReadMeta(const pqxx::row& row, RecordMeta* meta) {
  return DecodeMeta(row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                    row[3].as<std::string>(), row[4].as<std::string>(), row[5].as<std::int64_t>(),
                    row[6].as<std::int64_t>(), row[7].as<std::string>(), row[8].as<std::int64_t>(),
                    meta);
}

int ReadVersion(pqxx::transaction_base& txn) {
  pqxx::result exists = txn.exec(
      "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'schema_version' "
      "AND table_schema = current_schema()");
  if (exists[0][0].as<std::int64_t>() == 0) return 0;
  return txn.exec("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0].as<int>();
}

// Reads of one statement run outside an explicit transaction (a single statement is atomic on its
// own): that saves the BEGIN and COMMIT round trips, which dominate a small Get.
class PostgresStore : public RecordStore {
 public:
  explicit PostgresStore(std::string uri)
      : uri_(std::move(uri)), described_(RedactStoreUri(uri_)) {}

  Status Init() {
    return Run("open " + described_, [&] {
      pqxx::read_transaction txn(*conn_);
      int version = ReadVersion(txn);
      txn.commit();
      if (version > LatestSchemaVersion()) return TooNew(version);
      migrated_ = version == LatestSchemaVersion();
      return Status::Ok();
    });
  }

  [[nodiscard]] std::string Describe() const override { return described_; }

  Status Migrate() override {
    std::lock_guard<std::mutex> lock(mu_);
    return Run("migrate " + described_, [&]() -> Status {
      for (;;) {
        pqxx::work txn(*conn_);
        txn.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLock);
        txn.exec(ForDialect(kSchemaVersionTable, SqlDialect::kPostgres));
        int version = ReadVersion(txn);
        if (version > LatestSchemaVersion()) return TooNew(version);
        if (version == LatestSchemaVersion()) {
          txn.commit();
          migrated_ = true;
          return Status::Ok();
        }
        const Migration& step = Migrations()[static_cast<std::size_t>(version)];
        for (const char* statement : step.statements) {
          txn.exec(ForDialect(statement, SqlDialect::kPostgres));
        }
        txn.exec_params(
            "INSERT INTO schema_version (version, description, applied_micros) VALUES ($1,$2,$3)",
            step.version, std::string(step.description), Env::Default()->NowMicros());
        txn.commit();
      }
    });
  }

  Status SchemaVersion(int* version) override {
    std::lock_guard<std::mutex> lock(mu_);
    return Run("schema version of " + described_, [&] {
      pqxx::read_transaction txn(*conn_);
      *version = ReadVersion(txn);
      txn.commit();
      return Status::Ok();
    });
  }

  Status Put(const std::vector<StoredRecord>& records,
             const std::string& requires_record) override {
    PORTCULLIS_RETURN_IF_ERROR(ValidateBatch(records));
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    return Run("put into " + described_, [&] {
      pqxx::work txn(*conn_);
      if (!requires_record.empty()) {
        // FOR SHARE: a concurrent delete of that row waits for this commit, or has happened.
        const pqxx::result found =
            txn.exec_params("SELECT 1 FROM records WHERE id = $1 FOR SHARE", requires_record);
        if (found.empty()) {
          return Status::NotFound("record " + requires_record +
                                  " (required by the batch) is not in " + described_ +
                                  "; batch not stored");
        }
      }
      for (const StoredRecord& r : records) {
        const RecordMeta& m = r.meta;
        txn.exec_params(
            "INSERT INTO records (id, type, subject, retention_class, content_type, "
            "created_micros, expires_micros, labels, size, kek_id, wrapped_key, sealed) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
            m.id, std::string(RecordTypeName(m.type)), std::string(SubjectCategoryName(m.subject)),
            m.retention_class, m.content_type, m.created_micros, m.expires_micros,
            EncodeLabels(m.labels), static_cast<std::int64_t>(m.size), r.kek_id,
            pqxx::binarystring(r.wrapped_key), pqxx::binarystring(r.sealed));
      }
      txn.commit();
      return Status::Ok();
    });
  }

  Status Get(const std::string& id, StoredRecord* record) override {
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    return Run("get " + id + " from " + described_, [&] {
      pqxx::nontransaction txn(*conn_);
      pqxx::result result = txn.exec_params(
          "SELECT id, type, subject, retention_class, content_type, created_micros, "
          "expires_micros, labels, size, kek_id, wrapped_key, sealed FROM records WHERE id = $1",
          id);
      txn.commit();
      if (result.empty()) return Status::NotFound("no record " + id + " in " + described_);
      const pqxx::row row = result[0];
      PORTCULLIS_RETURN_IF_ERROR(ReadMeta(row, &record->meta));
      record->kek_id = row[9].as<std::string>();
      record->wrapped_key = Bytes(row[10]);
      record->sealed = Bytes(row[11]);
      return Status::Ok();
    });
  }

  Status List(const RecordFilter& filter, RecordPage* page) override {
    std::string sql;
    std::vector<SqlParam> params;
    PORTCULLIS_RETURN_IF_ERROR(BuildListQuery(filter, SqlDialect::kPostgres, &sql, &params));
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    return Run("list " + described_, [&] {
      // A variable number of parameters: all sent as text, typed by the server from context.
      std::vector<std::string> values;
      values.reserve(params.size());
      for (const SqlParam& p : params) {
        values.push_back(p.is_int ? std::to_string(p.int_value) : p.text);
      }
      pqxx::nontransaction txn(*conn_);
      pqxx::result result = txn.exec_params(sql, pqxx::prepare::make_dynamic_params(values));
      txn.commit();
      page->records.clear();
      page->next_cursor.clear();
      for (const pqxx::row& row : result) {
        RecordMeta meta;
        PORTCULLIS_RETURN_IF_ERROR(ReadMeta(row, &meta));
        page->records.push_back(std::move(meta));
      }
      FinishPage(filter.limit, page);
      return Status::Ok();
    });
  }

  Status UpdateWrappedKeys(const std::vector<WrappedKeyUpdate>& updates,
                           std::vector<std::string>* conflicts) override {
    PORTCULLIS_RETURN_IF_ERROR(ValidateWrappedKeyUpdates(updates));
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    return Run("rewrap in " + described_, [&] {
      std::vector<std::string> skipped;
      pqxx::work txn(*conn_);
      for (const WrappedKeyUpdate& u : updates) {
        pqxx::result r = txn.exec_params(
            "UPDATE records SET kek_id = $1, wrapped_key = $2 WHERE id = $3 AND kek_id = $4",
            u.new_kek_id, pqxx::binarystring(u.new_wrapped_key), u.id, u.old_kek_id);
        if (r.affected_rows() == 0) skipped.push_back(u.id);
      }
      txn.commit();
      *conflicts = std::move(skipped);
      return Status::Ok();
    });
  }

  Status DeleteByKek(const std::string& kek_id, std::vector<std::string>* deleted) override {
    return DeleteWhere("DELETE FROM records WHERE kek_id = $1 RETURNING id",
                       SqlParam{false, 0, kek_id}, deleted);
  }

  Status DeleteExpired(std::int64_t now_micros, std::vector<std::string>* deleted) override {
    return DeleteWhere("DELETE FROM records WHERE expires_micros <= $1 RETURNING id",
                       SqlParam{true, now_micros, {}}, deleted);
  }

  Status Delete(const std::string& id) override {
    std::vector<std::string> deleted;
    PORTCULLIS_RETURN_IF_ERROR(DeleteWhere("DELETE FROM records WHERE id = $1 RETURNING id",
                                           SqlParam{false, 0, id}, &deleted));
    if (deleted.empty()) return Status::NotFound("no record " + id + " in " + Describe());
    return Status::Ok();
  }

  Status CountByKek(const std::string& kek_id, std::uint64_t* count) override {
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    return Run("count in " + described_, [&] {
      pqxx::nontransaction txn(*conn_);
      *count = txn.exec_params("SELECT COUNT(*) FROM records WHERE kek_id = $1", kek_id)[0][0]
                   .as<std::uint64_t>();
      txn.commit();
      return Status::Ok();
    });
  }

  Status ListKekIds(std::vector<std::string>* kek_ids) override {
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    return Run("list KEKs in " + described_, [&] {
      pqxx::nontransaction txn(*conn_);
      pqxx::result result = txn.exec("SELECT DISTINCT kek_id FROM records ORDER BY kek_id");
      txn.commit();
      kek_ids->clear();
      for (const pqxx::row& row : result) kek_ids->push_back(row[0].as<std::string>());
      return Status::Ok();
    });
  }

  Status Backup(const std::string& /*dest_uri*/) override {
    return Status::Unsupported(described_ +
                               ": back up PostgreSQL with pg_dump or base backups, not Backup()");
  }

 private:
  // Runs one operation on a live connection: after the server dropped us (restart, failover),
  // the first call reports IOError and the next reconnects.
  template <typename Fn>
  Status Run(const std::string& what, Fn&& fn) {
    return Guard(what, &lost_, [&]() -> Status {
      if (conn_ == nullptr || lost_ || !conn_->is_open()) {
        conn_.reset();
        conn_ = std::make_unique<pqxx::connection>(uri_);
        lost_ = false;
      }
      return fn();
    });
  }

  Status TooNew(int version) const {
    return Status::Unsupported(described_ + " has schema version " + std::to_string(version) +
                               ", newer than this build understands (" +
                               std::to_string(LatestSchemaVersion()) + "); upgrade Portcullis");
  }

  Status CheckMigrated() const {
    if (migrated_) return Status::Ok();
    return Status::InvalidArgument(described_ + " is not at schema version " +
                                   std::to_string(LatestSchemaVersion()) + "; run Migrate() first");
  }

  Status DeleteWhere(const char* sql, const SqlParam& param, std::vector<std::string>* deleted) {
    std::lock_guard<std::mutex> lock(mu_);
    PORTCULLIS_RETURN_IF_ERROR(CheckMigrated());
    return Run("delete from " + described_, [&] {
      pqxx::work txn(*conn_);
      pqxx::result result =
          param.is_int ? txn.exec_params(sql, param.int_value) : txn.exec_params(sql, param.text);
      txn.commit();
      deleted->clear();
      for (const pqxx::row& row : result) deleted->push_back(row[0].as<std::string>());
      std::sort(deleted->begin(), deleted->end());
      return Status::Ok();
    });
  }

  std::mutex mu_;
  std::string uri_;
  std::string described_;
  std::unique_ptr<pqxx::connection> conn_;
  bool lost_ = false;
  bool migrated_ = false;
};

}  // namespace

Status OpenPostgresStore(const std::string& uri, std::unique_ptr<RecordStore>* store) {
  auto opened = std::make_unique<PostgresStore>(uri);
  PORTCULLIS_RETURN_IF_ERROR(opened->Init());
  *store = std::move(opened);
  return Status::Ok();
}

}  // namespace portcullis::vault
