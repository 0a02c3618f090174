// The vault: where everything Portcullis keeps lives, encrypted, shreddable and audited.
//
//   VaultOptions options;
//   options.store_uri = "sqlite:/var/lib/portcullis/vault.db";
//   options.key_uri = "pkcs11:portcullis";        // or "keyring:PATH" for development
//   options.key_secret = pin;
//   options.audit = audit_log;                    // every call below lands in it
//   std::unique_ptr<Vault> vault;
//   Status s = Vault::Open(options, &vault);
//   RecordMeta meta;
//   s = vault->Put(ctx, NewRecord{RecordType::kPlateRead, SubjectCategory::kVehicle, ...}, &meta);
//
// Every call takes the caller's AccessContext (who, in which role, for what stated purpose) and
// writes an audit event, allowed or not, before it returns: there is no way to reach a record
// that leaves no line in the log. A read whose audit event cannot be written returns no data.
//
// Bodies are sealed with their own data key (XChaCha20-Poly1305, bound to the record's id and
// metadata); data keys are wrapped by a key-encryption key (KEK) per retention class and time
// bucket that never leaves the key provider. Purge destroys the KEKs whose buckets have expired:
// every copy of those records — the database, its backups — can no longer be decrypted.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/audit.h"
#include "portcullis/env.h"
#include "portcullis/key_provider.h"
#include "portcullis/status.h"
#include "portcullis/vault_record.h"

namespace portcullis::vault {

// Who is asking, and why. All three are required and recorded verbatim in the audit log.
struct AccessContext {
  std::string principal;  // "officer:1234", "lane:7", "vendor:acme-alpr"
  std::string role;       // "officer", "lane_device", "vendor", "auditor", "admin", ...
  std::string purpose;    // "secondary inspection of vehicle at lane 7"
};

struct VaultOptions {
  std::string store_uri;           // "sqlite:PATH" or "postgresql://..."
  std::string key_uri;             // "keyring:PATH" or "pkcs11:LABEL"
  std::string key_secret;          // the keyring passphrase or the token PIN
  KeyProviderOptions key_options;  // e.g. create_if_missing for `vault init`
  std::string retention_path;      // empty: $PORTCULLIS_DATA_DIR/retention.json, else the build's
  audit::AuditSink* audit = nullptr;  // required, not owned: no audit log, no vault
  Env* env = nullptr;                 // files and clock; Env::Default() when null
};

// What a caller hands the vault to keep.
struct NewRecord {
  RecordType type = RecordType::kPlateRead;
  SubjectCategory subject = SubjectCategory::kVehicle;
  std::string content_type;                   // of the body: "image/jpeg", "application/json"
  std::map<std::string, std::string> labels;  // clear-text finding aids (lane, flight); no PII
  std::string_view body;                      // sealed before it reaches the store
  // "" (the usual): a fresh NewRecordId(). Otherwise this id (IsValidRecordId), so that another
  // record of the same batch can name this one before either is stored; a duplicate fails the
  // batch (InvalidArgument), it never replaces a record. (Initialised so that existing aggregate
  // initialisations without it stay warning-free.)
  std::string id{};
};

struct PutOptions {
  // When set, the batch is stored only if the record with this id still exists, checked inside
  // the batch's own transaction: NotFound and nothing stored otherwise. (A gate's match decision
  // needs its gallery's record: a gallery closed or purged by any node takes no more decisions,
  // without a separate read before the write.) The audit events say "not_found" then.
  std::string requires_record;
};

struct PurgeReport {
  bool dry_run = false;
  std::vector<std::string> keks;     // KEKs destroyed (or, on a dry run, that would be)
  std::vector<std::string> records;  // ids deleted (or that would be), sorted
};

struct RotateReport {
  std::string old_kek;
  std::string new_kek;
  std::uint64_t rewrapped = 0;  // data keys re-wrapped; no body was touched
};

class Vault {
 public:
  virtual ~Vault() = default;

  // Opens the store (bringing its schema up to date), the key provider and the retention rules.
  static Status Open(const VaultOptions& options, std::unique_ptr<Vault>* vault);

  // Seals and stores one record; *meta (optional) gets its id, class and expiry. NotFound when no
  // retention rule covers the record's type and subject: nothing is kept without one.
  virtual Status Put(const AccessContext& ctx, const NewRecord& record, RecordMeta* meta) = 0;
  // Several records in one transaction and one audit batch (what a busy lane uses).
  Status PutBatch(const AccessContext& ctx, const std::vector<NewRecord>& records,
                  std::vector<RecordMeta>* metas) {
    return PutBatch(ctx, records, PutOptions{}, metas);
  }
  virtual Status PutBatch(const AccessContext& ctx, const std::vector<NewRecord>& records,
                          const PutOptions& options, std::vector<RecordMeta>* metas) = 0;
  // Decrypts one record. NotFound when it does not exist or has been shredded, Corruption when
  // its body, metadata or wrapped key was altered.
  virtual Status Get(const AccessContext& ctx, const std::string& id, RecordMeta* meta,
                     std::string* body) = 0;
  // Metadata only.
  virtual Status List(const AccessContext& ctx, const RecordFilter& filter, RecordPage* page) = 0;
  // Deletes one record's row now, before its retention runs out (a closed gallery's templates).
  // NotFound when it does not exist. The row's copies in backups stay sealed under their KEK and
  // die when Purge shreds it: this is deletion, not crypto-shredding.
  virtual Status Delete(const AccessContext& ctx, const std::string& id) = 0;
  // Crypto-shreds every KEK whose bucket has expired and deletes the rows it wrapped, then deletes
  // any other record past its expiry. With dry_run nothing changes; the report says what would.
  virtual Status Purge(const AccessContext& ctx, bool dry_run, PurgeReport* report) = 0;
  // Moves every data key wrapped by kek_id under a fresh KEK, then destroys kek_id. Bodies are
  // not touched; the new KEK keeps the old one's retention bucket.
  virtual Status Rotate(const AccessContext& ctx, const std::string& kek_id,
                        RotateReport* report) = 0;
  // The KEK ids that records reference, sorted (what `vault rotate` can be given).
  virtual Status ListKeks(const AccessContext& ctx, std::vector<std::string>* kek_ids) = 0;
};

}  // namespace portcullis::vault
