// The audit log: every access to the vault (and, later, every service decision) is appended to a
// tamper-evident Merkle-tree log in the manner of RFC 9162 (Certificate Transparency v2), with
// signed tree heads (Ed25519), inclusion proofs and consistency proofs that anyone holding the
// public key can check offline. Leaves hold no personal data in the clear. docs/audit.md has the
// file formats and the reasons behind them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/env.h"
#include "portcullis/status.h"

namespace portcullis::audit {

// One access, as the caller states it. The log never stores record_id in the clear: it keeps a
// keyed hash (HMAC under the log's own key) so an auditor with the key can still ask
// "who touched record X?", while a stolen copy of the log names no one.
struct AuditEvent {
  std::int64_t time_micros = 0;  // from Env::NowMicros() of the caller
  std::string principal;         // who ("vendor:acme-alpr", "officer:1234")
  std::string role;              // in what role ("vendor", "officer", "auditor", ...)
  std::string purpose;           // the stated purpose, verbatim
  std::string action;            // "vault.put", "vault.get", "vault.purge", ...
  std::string record_id;         // the record touched; "" for actions on no single record
  std::string result;            // "ok", "denied", "not_found", "error:<code>"
};

// Where events go. The vault takes one of these, so nothing can reach a record without a line
// in the log; the audit log implements it, tests use an in-memory one.
class AuditSink {
 public:
  virtual ~AuditSink() = default;
  // Durable when it returns OK: an event acknowledged here survives a crash.
  virtual Status Append(const AuditEvent& event) = 0;
  // Several events, in order, durable together when this returns OK (the audit log commits them
  // with one fsync; this default appends them one by one).
  virtual Status AppendAll(const std::vector<AuditEvent>& events) {
    for (const AuditEvent& event : events) PORTCULLIS_RETURN_IF_ERROR(Append(event));
    return Status::Ok();
  }
};

// ---------------------------------------------------------------------------------------------
// RFC 9162 §2.1 hashing (SHA-256).

using Hash = std::array<std::uint8_t, 32>;

std::string HashToHex(const Hash& hash);
bool HashFromHex(std::string_view hex, Hash* hash);

Hash EmptyTreeHash();                                    // SHA-256("") = e3b0c442...
Hash LeafHash(std::string_view leaf);                    // SHA-256(0x00 || leaf)
Hash InteriorHash(const Hash& left, const Hash& right);  // SHA-256(0x01 || left || right)
// MTH over a list of leaf hashes, O(n): the reference the log's incremental tree is tested against.
Hash MerkleTreeHash(const std::vector<Hash>& leaf_hashes);

// PATH(leaf_index, D[tree_size]) of RFC 9162 §2.1.3.1.
struct InclusionProof {
  std::uint64_t leaf_index = 0;
  std::uint64_t tree_size = 0;
  std::vector<Hash> path;
};

// PROOF(first_size, D[second_size]) of RFC 9162 §2.1.4.1.
struct ConsistencyProof {
  std::uint64_t first_size = 0;
  std::uint64_t second_size = 0;
  std::vector<Hash> path;
};

// The verification algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2. Corruption when the proof does
// not lead to the root(s); InvalidArgument when the sizes/indices are impossible.
Status VerifyInclusion(const Hash& leaf_hash, const InclusionProof& proof, const Hash& root);
Status VerifyConsistency(const ConsistencyProof& proof, const Hash& first_root,
                         const Hash& second_root);

// ---------------------------------------------------------------------------------------------
// Keys. A key directory (written by GenerateKeys / `portcullis audit keygen`) holds:
//   signing.key  Ed25519 secret key (hex), mode 0600: only the log writer needs it
//   id.key       the 32-byte record-id key (hex), mode 0600: the writer and auditors asking
//                "who touched record X?"
//   signing.pub  Ed25519 public key (hex), mode 0644: what auditors and witnesses hold
// Keep it out of the log directory: a stolen log without id.key names no record.

using PublicKey = std::array<std::uint8_t, 32>;
using IdKey = std::array<std::uint8_t, 32>;

struct LogKeys {
  std::array<std::uint8_t, 64> signing_key{};  // libsodium's sk (seed || public key)
  IdKey id_key{};
  [[nodiscard]] PublicKey public_key() const;
};

// Refuses to overwrite existing key files (AlreadyExists is reported as InvalidArgument).
Status GenerateKeys(const std::string& key_dir);
Status LoadLogKeys(const std::string& key_dir, LogKeys* keys);
Status LoadPublicKey(const std::string& path, PublicKey* key);
Status LoadIdKey(const std::string& path, IdKey* key);

// ---------------------------------------------------------------------------------------------
// Leaves and tree heads.

// The keyed hash that stands for a record id in a leaf: HMAC-SHA-256(id_key, "portcullis-record
// -v1:" || record_id).
Hash RecordRef(const IdKey& id_key, std::string_view record_id);

// A decoded leaf (format v1, docs/audit.md): the event with record_id replaced by its RecordRef.
struct LeafRecord {
  std::uint8_t version = 1;
  std::int64_t time_micros = 0;
  std::string principal, role, purpose, action, result;
  bool has_record = false;
  Hash record_ref{};
};

// The canonical leaf bytes of an event. InvalidArgument when a field is over its limit (64 KiB).
Status EncodeLeaf(const AuditEvent& event, const IdKey& id_key, std::string* leaf);
// Strict: unknown version, a short field or trailing bytes are Corruption.
Status DecodeLeaf(std::string_view leaf, LeafRecord* record);

struct SignedTreeHead {
  std::uint64_t tree_size = 0;
  std::int64_t timestamp_micros = 0;
  Hash root_hash{};
  std::array<std::uint8_t, 64> signature{};
};

// The bytes an STH signature covers: "portcullis-audit-sth-v1" 0x00 || size || timestamp || root.
std::string TreeHeadSignedBytes(const SignedTreeHead& sth);
Status VerifyTreeHeadSignature(const SignedTreeHead& sth, const PublicKey& key);

// ---------------------------------------------------------------------------------------------
// What the service needs from a log, whichever backend holds it: the file log below (one node) or
// the PostgreSQL log (several nodes, one appender at a time; docs/audit.md). Auditors' endpoints
// read tree heads, proofs and leaves through this; the vault and the policy append through it.
class TransparencyLog : public AuditSink {
 public:
  [[nodiscard]] virtual PublicKey public_key() const = 0;
  virtual Status Size(std::uint64_t* tree_size) const = 0;
  virtual Status LatestTreeHead(SignedTreeHead* sth) const = 0;
  // Signs a head for the current size now (a timer calls this so witnesses see fresh heads).
  virtual Status PublishTreeHead(SignedTreeHead* sth) = 0;
  virtual Status ProveInclusion(std::uint64_t leaf_index, std::uint64_t tree_size,
                                InclusionProof* proof) const = 0;
  virtual Status ProveConsistency(std::uint64_t first_size, std::uint64_t second_size,
                                  ConsistencyProof* proof) const = 0;
  // Leaves [start, end), in the canonical leaf encoding (DecodeLeaf reads them).
  virtual Status ReadLeaves(std::uint64_t start, std::uint64_t end,
                            std::vector<std::string>* leaves) const = 0;
  // Every signed tree head, oldest first (what an export hands an auditor).
  virtual Status TreeHeads(std::vector<SignedTreeHead>* heads) const = 0;
};

// ---------------------------------------------------------------------------------------------
// The log.

struct AuditLogOptions {
  Env* env = nullptr;  // the clock for tree-head timestamps; Env::Default() when null
  // Group commit: concurrent Append calls are written and fsynced together, up to this many.
  std::size_t max_group = 4096;
};

class TreeStore;  // the on-disk node store (src/audit/tree_store.h)

// The writer. Open creates the directory and files if missing; otherwise it checks the files,
// truncates a torn final record (a crash mid-write) and refuses (Corruption) anything else: a bad
// record before the end, or fewer events than the latest signed tree head covers.
//
// Each batch is durable when it returns: its events are written and fsynced, then its tree
// nodes (derived data, not fsynced: Open recomputes and repairs them) and a new signed tree head
// (fsynced), so every acknowledged event is under a signed head. Two fsyncs per batch.
// After an I/O failure (disk full) the log refuses further appends until it is reopened.
class AuditLog final : public TransparencyLog {
 public:
  static Status Open(const std::string& dir, const LogKeys& keys, const AuditLogOptions& options,
                     std::unique_ptr<AuditLog>* log);
  ~AuditLog() override;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Thread-safe; callers arriving while a batch is being written are committed together.
  Status Append(const AuditEvent& event) override;
  // Appends events in order with one fsync round; *first_index (optional) gets the first's index.
  Status AppendBatch(const std::vector<AuditEvent>& events, std::uint64_t* first_index = nullptr);
  Status AppendAll(const std::vector<AuditEvent>& events) override { return AppendBatch(events); }
  // Signs and appends a tree head for the current size now (e.g. on a timer, for witnesses).
  Status PublishTreeHead(SignedTreeHead* sth = nullptr) override;

  [[nodiscard]] std::uint64_t size() const;
  [[nodiscard]] PublicKey public_key() const override;
  Status Size(std::uint64_t* tree_size) const override;
  Status LatestTreeHead(SignedTreeHead* sth) const override;
  Status RootAt(std::uint64_t tree_size, Hash* root) const;
  Status ProveInclusion(std::uint64_t leaf_index, std::uint64_t tree_size,
                        InclusionProof* proof) const override;
  Status ProveConsistency(std::uint64_t first_size, std::uint64_t second_size,
                          ConsistencyProof* proof) const override;
  // Leaves [start, end) of the committed log (InvalidArgument past its end).
  Status ReadLeaves(std::uint64_t start, std::uint64_t end,
                    std::vector<std::string>* leaves) const override;
  Status TreeHeads(std::vector<SignedTreeHead>* heads) const override;

 private:
  struct Impl;
  explicit AuditLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Read-only access to a log directory (no keys needed): proofs from the stored tree, leaves by
// index. Never modifies the files; a torn tail is ignored, not repaired.
class LogReader {
 public:
  static Status Open(const std::string& dir, std::unique_ptr<LogReader>* reader);
  ~LogReader();
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  // Leaves covered by both events.log and the tree store.
  [[nodiscard]] std::uint64_t size() const;
  [[nodiscard]] const std::vector<SignedTreeHead>& tree_heads() const;
  Status Leaf(std::uint64_t index, std::string* leaf) const;
  Status RootAt(std::uint64_t tree_size, Hash* root) const;
  Status ProveInclusion(std::uint64_t leaf_index, std::uint64_t tree_size,
                        InclusionProof* proof) const;
  Status ProveConsistency(std::uint64_t first_size, std::uint64_t second_size,
                          ConsistencyProof* proof) const;
  // Indices of the leaves whose record_ref is RecordRef(id_key, record_id): "who touched X?".
  Status FindRecord(const IdKey& id_key, std::string_view record_id,
                    std::vector<std::uint64_t>* indices) const;

 private:
  struct Impl;
  explicit LogReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Opens the service's log by URI: a directory path (or "file:DIR") for the file log above, or
// "postgresql://..." / "postgres://..." for the log kept in PostgreSQL, which several nodes share
// (appends serialised by an advisory lock). key_dir holds signing.key / id.key (GenerateKeys).
Status OpenTransparencyLog(const std::string& uri, const std::string& key_dir,
                           const AuditLogOptions& options, std::unique_ptr<TransparencyLog>* log);

// Writes a snapshot of any log (its leaves and signed tree heads, up to the latest head when the
// call starts) as a log directory in the file format, so that VerifyLog / `portcullis audit
// verify` check a log kept in PostgreSQL without trusting the database. `dir` must not exist yet
// (InvalidArgument otherwise). *exported_size (optional) gets the number of leaves written.
Status ExportLog(const TransparencyLog& log, const std::string& dir,
                 std::uint64_t* exported_size = nullptr);

// ---------------------------------------------------------------------------------------------
// Offline verification with only the public key.

struct VerifyOptions {
  std::string witness_path;  // optional: every head in it must be consistent with the log
};

struct VerifyReport {
  std::uint64_t tree_size = 0;      // leaves read from events.log
  Hash root_hash{};                 // MTH of those leaves
  std::uint64_t sth_count = 0;      // signed tree heads checked
  std::uint64_t signed_size = 0;    // size of the latest signed head
  std::uint64_t witness_heads = 0;  // witnessed heads checked
  bool torn_tail = false;           // an incomplete final record after the signed size (a crash)
  // When verification fails: the first leaf index found bad (-1 when the fault is not in a leaf,
  // e.g. a bad signature), and what is wrong.
  std::int64_t first_bad_index = -1;
  std::int64_t bad_tree_head = -1;  // index in sth.log (or the witness file) of a bad head
  std::string problem;              // "" when consistent
};

// Recomputes the tree from the leaves, checks every tree head's signature, that it matches the
// tree at its size, that consecutive heads are consistent (RFC 9162 proof), and the witness
// file. Returns OK when all holds; Corruption (report filled in) when the log fails; NotFound /
// IOError when it cannot be read.
Status VerifyLog(const std::string& dir, const PublicKey& key, const VerifyOptions& options,
                 VerifyReport* report);

// Witness files: one line per head, "<tree_size> <timestamp_micros> <root_hex> <signature_hex>",
// after a "# portcullis audit witness v1" first line. Appended to, never rewritten.
Status AppendWitness(const std::string& path, const SignedTreeHead& sth);
Status ReadWitness(const std::string& path, std::vector<SignedTreeHead>* heads);

}  // namespace portcullis::audit
