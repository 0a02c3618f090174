// RecordStore: where the vault's records live. Internal to the vault: the store sees only
// metadata, KEK ids, wrapped data keys and sealed bodies — never a key or a plaintext — so a copy
// of the database (or of a backup) is useless once the KEKs it names are destroyed.
//
// Two backends behind one interface: SQLite (a single file; one port-of-entry site) and
// PostgreSQL (a shared server). Every call returns a Status; no exception crosses this interface.
// A store is safe to use from several threads (calls are serialised).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "portcullis/status.h"
#include "portcullis/vault_record.h"

namespace portcullis::vault {

// Key rotation: replace one record's wrapped data key, but only while it is still wrapped by
// old_kek_id (compare-and-set), so that a concurrent rotation or purge is never overwritten.
struct WrappedKeyUpdate {
  std::string id;
  std::string old_kek_id;
  std::string new_kek_id;
  std::string new_wrapped_key;
};

class RecordStore {
 public:
  virtual ~RecordStore() = default;
  RecordStore() = default;
  RecordStore(const RecordStore&) = delete;
  RecordStore& operator=(const RecordStore&) = delete;

  // Opens a store without changing it:
  //   sqlite:PATH                     a SQLite file (created if missing)
  //   postgresql://... | postgres://... a libpq connection URI
  // InvalidArgument for a malformed URI, IOError when the file cannot be opened or the server
  // cannot be reached, Corruption when the file is not a database, Unsupported when its schema is
  // newer than this code.
  static Status Open(const std::string& uri, std::unique_ptr<RecordStore>* store);

  // "sqlite:/var/lib/portcullis/vault.db" or the PostgreSQL URI without its password.
  [[nodiscard]] virtual std::string Describe() const = 0;

  // Brings the schema up to date (see migrations.h); a no-op when it already is. Must succeed
  // once before any other call. Unsupported when the database is newer than this code.
  virtual Status Migrate() = 0;
  // The schema version the database is at (0 for an empty database).
  virtual Status SchemaVersion(int* version) = 0;

  // Stores a batch atomically: all of it or none of it. When Put returns OK the batch is durable
  // (it survives a crash of the process or the machine). InvalidArgument (and nothing stored) if a
  // record is invalid or its id already exists. With requires_record set, NotFound (and nothing
  // stored) unless a record with that id exists, checked in the same transaction.
  virtual Status Put(const std::vector<StoredRecord>& records,
                     const std::string& requires_record) = 0;
  Status Put(const std::vector<StoredRecord>& records) { return Put(records, std::string()); }
  // NotFound when there is no record with this id.
  virtual Status Get(const std::string& id, StoredRecord* record) = 0;
  // Metadata only; bodies and keys stay in the database.
  virtual Status List(const RecordFilter& filter, RecordPage* page) = 0;

  // Applies the updates in one transaction; those whose record no longer exists or is no longer
  // wrapped by old_kek_id are skipped and their ids returned in `conflicts`. The sealed bodies are
  // never touched.
  virtual Status UpdateWrappedKeys(const std::vector<WrappedKeyUpdate>& updates,
                                   std::vector<std::string>* conflicts) = 0;

  // Deletes, in one transaction, every record wrapped by kek_id / expired at `now_micros`
  // (expires_micros <= now_micros), and returns their ids (sorted).
  virtual Status DeleteByKek(const std::string& kek_id, std::vector<std::string>* deleted) = 0;
  virtual Status DeleteExpired(std::int64_t now_micros, std::vector<std::string>* deleted) = 0;
  virtual Status CountByKek(const std::string& kek_id, std::uint64_t* count) = 0;
  // Deletes one record now (a gallery closed before its retention ran out). NotFound when there
  // is no record with this id. Copies in backups stay sealed until Purge shreds their KEK.
  virtual Status Delete(const std::string& id) = 0;
  // The distinct KEK ids that records reference, sorted: a KEK not in this list wraps nothing
  // and may be destroyed by the purge job.
  virtual Status ListKekIds(std::vector<std::string>* kek_ids) = 0;

  // A consistent online copy to dest_uri ("sqlite:PATH"; the file must not exist yet). SQLite only;
  // PostgreSQL answers Unsupported (use pg_dump / base backups).
  virtual Status Backup(const std::string& dest_uri) = 0;
};

}  // namespace portcullis::vault
