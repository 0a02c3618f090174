// The audit log in PostgreSQL: several nodes append to one log. Each batch is one transaction
// that takes a fixed advisory lock, reads the latest signed head, appends its leaves, the tree
// nodes they complete and a new signed head, and commits; so the log is one append-only sequence
// whatever the number of writers, and every head covers exactly the leaves committed with or
// before it. Within a process concurrent Append calls are grouped into one transaction, as the
// file log groups them into one fsync round.
#include "audit/postgres_log.h"

#include <sodium.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "audit/format.h"
#include "audit/tree.h"

namespace portcullis::audit::internal {
namespace {

// pg_advisory_xact_lock keys: one for appends, one for schema migrations. Fixed, so that every
// node agrees; distinct from the vault store's migration lock.
constexpr std::int64_t kAppendLock = 0x7063617564746C;  // "pcaudtl"
constexpr std::int64_t kSchemaLock = 0x70636175647473;  // "pcaudts"

struct Migration {
  int version;
  const char* description;
  std::vector<const char*> statements;
};

// Versioned schema. Tables are prefixed audit_ because the vault and access stores may live in
// the same database. The triggers make the tables append-only for every role that does not
// drop them: a mistaken UPDATE or DELETE fails instead of silently breaking the tree (an attacker
// with owner rights is caught by the signatures and witnesses, not by this).
const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "leaves, tree nodes, signed tree heads, append-only",
       {
           "CREATE TABLE audit_meta (name text PRIMARY KEY, value bytea NOT NULL)",
           "CREATE TABLE audit_leaves (idx bigint PRIMARY KEY CHECK (idx >= 0), "
           "leaf bytea NOT NULL)",
           // Node (level k, index j) of the complete subtree over leaves [j*2^k, (j+1)*2^k),
           // keyed by its position in the file log's node store (tree.h NodePosition): the
           // nodes a batch adds have consecutive positions.
           "CREATE TABLE audit_nodes (pos bigint PRIMARY KEY CHECK (pos >= 0), "
           "hash bytea NOT NULL CHECK (length(hash) = 32))",
           "CREATE TABLE audit_tree_heads (seq bigint PRIMARY KEY CHECK (seq >= 0), "
           "tree_size bigint NOT NULL CHECK (tree_size >= 0), timestamp_micros bigint NOT NULL, "
           "root_hash bytea NOT NULL CHECK (length(root_hash) = 32), "
           "signature bytea NOT NULL CHECK (length(signature) = 64))",
           "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "RAISE EXCEPTION 'the audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME; "
           "END $$",
           "CREATE TRIGGER audit_leaves_append_only BEFORE UPDATE OR DELETE ON audit_leaves "
           "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
           "CREATE TRIGGER audit_leaves_no_truncate BEFORE TRUNCATE ON audit_leaves "
           "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
           "CREATE TRIGGER audit_nodes_append_only BEFORE UPDATE OR DELETE ON audit_nodes "
           "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
           "CREATE TRIGGER audit_nodes_no_truncate BEFORE TRUNCATE ON audit_nodes "
           "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
           "CREATE TRIGGER audit_heads_append_only BEFORE UPDATE OR DELETE ON audit_tree_heads "
           "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
           "CREATE TRIGGER audit_heads_no_truncate BEFORE TRUNCATE ON audit_tree_heads "
           "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
       }},
  };
  return kMigrations;
}

int LatestVersion() { return Migrations().back().version; }

// A URI without its password, for messages.
std::string Redact(const std::string& uri) {
  const auto scheme = uri.find("://");
  const auto at = uri.find('@');
  if (scheme == std::string::npos || at == std::string::npos) return uri;
  const auto colon = uri.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return uri;
  return uri.substr(0, colon) + ":***" + uri.substr(at);
}

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
  // P0001: our append-only trigger.
  if (state == "P0001") return Status::InvalidArgument(msg);
  return Status::Internal("PostgreSQL error " + state + ": " + msg);
}

// libpqxx reports by exception; this is where they become Status. *lost is set when the
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

// One connection, reopened after the server dropped it. Not thread-safe: its owner serialises.
class Connection {
 public:
  explicit Connection(std::string uri) : uri_(std::move(uri)) {}

  template <typename Fn>
  Status Run(const std::string& what, Fn&& fn) {
    return Guard(what, &lost_, [&]() -> Status {
      if (conn_ == nullptr || lost_ || !conn_->is_open()) {
        conn_.reset();
        conn_ = std::make_unique<pqxx::connection>(uri_);
        lost_ = false;
      }
      return fn(*conn_);
    });
  }

 private:
  std::string uri_;
  std::unique_ptr<pqxx::connection> conn_;
  bool lost_ = false;
};

std::string FieldBytes(const pqxx::field& field) { return pqxx::binarystring(field).str(); }

template <std::size_t N>
Status FieldArray(const pqxx::field& field, const char* what, std::array<std::uint8_t, N>* out) {
  const std::string bytes = FieldBytes(field);
  if (bytes.size() != N) {
    return Status::Corruption(std::string("audit log in PostgreSQL: ") + what + " has " +
                              std::to_string(bytes.size()) + " bytes, not " + std::to_string(N));
  }
  std::copy(bytes.begin(), bytes.end(), out->begin());
  return Status::Ok();
}

std::uint64_t FieldU64(const pqxx::field& field) {
  return static_cast<std::uint64_t>(field.as<std::int64_t>());
}

Status ReadHead(const pqxx::row& row, SignedTreeHead* sth) {
  // Columns: tree_size, timestamp_micros, root_hash, signature.
  sth->tree_size = FieldU64(row[0]);
  sth->timestamp_micros = row[1].as<std::int64_t>();
  PORTCULLIS_RETURN_IF_ERROR(FieldArray(row[2], "a root hash", &sth->root_hash));
  return FieldArray(row[3], "a signature", &sth->signature);
}

constexpr char kHeadColumns[] = "tree_size, timestamp_micros, root_hash, signature";

// "decode('<hex>','hex')": binary values inlined in a multi-row INSERT, whatever
// standard_conforming_strings says. Hex digits only, so nothing can escape the literal.
void AppendBytea(std::string_view bytes, std::string* sql) {
  sql->append("decode('");
  sql->append(BytesToHex(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  sql->append("','hex')");
}

// Postgres array literal of integers: "{1,2,3}".
std::string IntArray(const std::vector<std::uint64_t>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  return out + "}";
}

// Records which nodes a proof construction asks for (answering zeros): the recursion of
// tree.cc depends only on sizes and indices, never on hash values, so a second pass over the
// fetched nodes asks for exactly these. One round trip per proof instead of one per node.
class RecordingSource final : public NodeSource {
 public:
  Status Node(int level, std::uint64_t index, Hash* hash) const override {
    positions_.push_back(NodePosition(level, index));
    *hash = Hash{};
    return Status::Ok();
  }
  [[nodiscard]] std::vector<std::uint64_t> positions() const {
    std::vector<std::uint64_t> p = positions_;
    std::sort(p.begin(), p.end());
    p.erase(std::unique(p.begin(), p.end()), p.end());
    return p;
  }

 private:
  mutable std::vector<std::uint64_t> positions_;
};

class MapSource final : public NodeSource {
 public:
  Status Node(int level, std::uint64_t index, Hash* hash) const override {
    const auto it = nodes.find(NodePosition(level, index));
    if (it == nodes.end()) {
      return Status::Corruption("audit log in PostgreSQL: tree node (" + std::to_string(level) +
                                ", " + std::to_string(index) + ") is missing");
    }
    *hash = it->second;
    return Status::Ok();
  }
  std::map<std::uint64_t, Hash> nodes;
};

Status FetchNodes(pqxx::transaction_base& txn, const std::vector<std::uint64_t>& positions,
                  MapSource* source) {
  if (positions.empty()) return Status::Ok();
  const pqxx::result r = txn.exec_params(
      "SELECT pos, hash FROM audit_nodes WHERE pos = ANY($1::bigint[])", IntArray(positions));
  for (const pqxx::row& row : r) {
    Hash h{};
    PORTCULLIS_RETURN_IF_ERROR(FieldArray(row[1], "a tree node", &h));
    source->nodes[FieldU64(row[0])] = h;
  }
  return Status::Ok();
}

// Builds a proof over the nodes in the database with two round trips at most.
template <typename Make>
Status ProveFromDatabase(pqxx::transaction_base& txn, Make&& make) {
  RecordingSource recorder;
  PORTCULLIS_RETURN_IF_ERROR(make(recorder));
  MapSource nodes;
  PORTCULLIS_RETURN_IF_ERROR(FetchNodes(txn, recorder.positions(), &nodes));
  return make(nodes);
}

class PostgresLog final : public TransparencyLog {
 public:
  PostgresLog(const std::string& uri, const LogKeys& keys, const AuditLogOptions& options)
      : described_(Redact(uri)),
        keys_(keys),
        options_(options),
        env_(options.env != nullptr ? options.env : Env::Default()),
        writer_(uri),
        reader_(uri) {
    if (options_.max_group == 0) options_.max_group = 1;
  }

  Status Init() {
    PORTCULLIS_RETURN_IF_ERROR(Migrate());
    PORTCULLIS_RETURN_IF_ERROR(CheckKey());
    // A new log gets its size-0 head, as the file log does, so LatestTreeHead always answers.
    std::uint64_t heads = 0;
    PORTCULLIS_RETURN_IF_ERROR(reader_.Run("count tree heads in " + described_, [&](auto& c) {
      pqxx::nontransaction txn(c);
      heads = FieldU64(txn.exec("SELECT COUNT(*) FROM audit_tree_heads")[0][0]);
      return Status::Ok();
    }));
    if (heads == 0) return PublishTreeHead(nullptr);
    // The latest head must be ours and match the stored tree: a node never extends a log it
    // cannot vouch for.
    std::unique_lock<std::mutex> lock(mu_);
    return writer_.Run("check " + described_, [&](auto& c) {
      pqxx::read_transaction txn(c);
      return LoadTip(txn);
    });
  }

  [[nodiscard]] PublicKey public_key() const override { return keys_.public_key(); }

  Status Append(const AuditEvent& event) override {
    Waiter w;
    w.leaves.emplace_back();
    PORTCULLIS_RETURN_IF_ERROR(EncodeLeaf(event, keys_.id_key, &w.leaves.back()));
    return Enqueue(&w);
  }

  Status AppendAll(const std::vector<AuditEvent>& events) override {
    Waiter w;
    w.leaves.resize(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      PORTCULLIS_RETURN_IF_ERROR(EncodeLeaf(events[i], keys_.id_key, &w.leaves[i]));
    }
    return Enqueue(&w);
  }

  Status PublishTreeHead(SignedTreeHead* sth) override {
    Waiter w;
    PORTCULLIS_RETURN_IF_ERROR(Enqueue(&w));
    if (sth != nullptr) *sth = w.head;
    return Status::Ok();
  }

  Status Size(std::uint64_t* tree_size) const override {
    SignedTreeHead sth;
    PORTCULLIS_RETURN_IF_ERROR(LatestTreeHead(&sth));
    *tree_size = sth.tree_size;
    return Status::Ok();
  }

  Status LatestTreeHead(SignedTreeHead* sth) const override {
    return Read("read the latest tree head of " + described_,
                [&](pqxx::transaction_base& txn) { return LatestHead(txn, sth); });
  }

  Status ProveInclusion(std::uint64_t leaf_index, std::uint64_t tree_size,
                        InclusionProof* proof) const override {
    return Read("inclusion proof from " + described_, [&](pqxx::transaction_base& txn) {
      PORTCULLIS_RETURN_IF_ERROR(CheckSize(txn, tree_size));
      return ProveFromDatabase(txn, [&](const NodeSource& src) {
        return MakeInclusionProof(src, leaf_index, tree_size, proof);
      });
    });
  }

  Status ProveConsistency(std::uint64_t first_size, std::uint64_t second_size,
                          ConsistencyProof* proof) const override {
    return Read("consistency proof from " + described_, [&](pqxx::transaction_base& txn) {
      PORTCULLIS_RETURN_IF_ERROR(CheckSize(txn, second_size));
      return ProveFromDatabase(txn, [&](const NodeSource& src) {
        return MakeConsistencyProof(src, first_size, second_size, proof);
      });
    });
  }

  Status ReadLeaves(std::uint64_t start, std::uint64_t end,
                    std::vector<std::string>* leaves) const override {
    return Read("read leaves of " + described_, [&](pqxx::transaction_base& txn) {
      SignedTreeHead latest;
      PORTCULLIS_RETURN_IF_ERROR(LatestHead(txn, &latest));
      if (start > end || end > latest.tree_size) {
        return Status::InvalidArgument("leaves [" + std::to_string(start) + ", " +
                                       std::to_string(end) + ") are not in a log of " +
                                       std::to_string(latest.tree_size));
      }
      const pqxx::result r = txn.exec_params(
          "SELECT idx, leaf FROM audit_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx",
          static_cast<std::int64_t>(start), static_cast<std::int64_t>(end));
      std::vector<std::string> out;
      out.reserve(r.size());
      for (const pqxx::row& row : r) {
        if (FieldU64(row[0]) != start + out.size()) break;
        out.push_back(FieldBytes(row[1]));
      }
      if (out.size() != end - start) {
        return Status::Corruption(described_ + ": leaf " + std::to_string(start + out.size()) +
                                  " is missing below the signed size " +
                                  std::to_string(latest.tree_size));
      }
      *leaves = std::move(out);
      return Status::Ok();
    });
  }

  Status TreeHeads(std::vector<SignedTreeHead>* heads) const override {
    return Read("read tree heads of " + described_, [&](pqxx::transaction_base& txn) {
      const pqxx::result r =
          txn.exec(std::string("SELECT ") + kHeadColumns + " FROM audit_tree_heads ORDER BY seq");
      std::vector<SignedTreeHead> out(r.size());
      for (std::size_t i = 0; i < r.size(); ++i) {
        PORTCULLIS_RETURN_IF_ERROR(ReadHead(r[static_cast<pqxx::result::size_type>(i)], &out[i]));
      }
      *heads = std::move(out);
      return Status::Ok();
    });
  }

 private:
  struct Waiter {
    std::vector<std::string> leaves;
    Status status;
    SignedTreeHead head;  // the head the group's transaction wrote
    bool done = false;
    std::condition_variable cv;
  };

  Status Migrate() {
    std::lock_guard<std::mutex> lock(mu_);
    return writer_.Run("migrate " + described_, [&](pqxx::connection& c) -> Status {
      for (;;) {
        pqxx::work txn(c);
        txn.exec_params("SELECT pg_advisory_xact_lock($1)", kSchemaLock);
        txn.exec(
            "CREATE TABLE IF NOT EXISTS audit_schema_version (version integer PRIMARY KEY, "
            "description text NOT NULL, applied_micros bigint NOT NULL)");
        const int version =
            txn.exec("SELECT COALESCE(MAX(version), 0) FROM audit_schema_version")[0][0].as<int>();
        if (version > LatestVersion()) {
          return Status::Unsupported(described_ + " has audit schema version " +
                                     std::to_string(version) +
                                     ", newer than this build understands (" +
                                     std::to_string(LatestVersion()) + "); upgrade Portcullis");
        }
        if (version == LatestVersion()) {
          txn.commit();
          return Status::Ok();
        }
        const Migration& step = Migrations()[static_cast<std::size_t>(version)];
        for (const char* statement : step.statements) txn.exec(statement);
        txn.exec_params(
            "INSERT INTO audit_schema_version (version, description, applied_micros) "
            "VALUES ($1, $2, $3)",
            step.version, std::string(step.description), env_->NowMicros());
        txn.commit();
      }
    });
  }

  // The log remembers the public key of its first writer; another key is refused, as the file
  // log refuses a directory whose heads another key signed.
  Status CheckKey() {
    const PublicKey ours = keys_.public_key();
    const std::string ours_bytes(reinterpret_cast<const char*>(ours.data()), ours.size());
    std::lock_guard<std::mutex> lock(mu_);
    return writer_.Run("check the key of " + described_, [&](pqxx::connection& c) -> Status {
      pqxx::work txn(c);
      txn.exec_params("SELECT pg_advisory_xact_lock($1)", kAppendLock);
      const pqxx::result r = txn.exec("SELECT value FROM audit_meta WHERE name = 'public_key'");
      if (r.empty()) {
        std::string sql = "INSERT INTO audit_meta (name, value) VALUES ('public_key', ";
        AppendBytea(ours_bytes, &sql);
        txn.exec(sql + ")");
        txn.commit();
        return Status::Ok();
      }
      if (FieldBytes(r[0][0]) != ours_bytes) {
        return Status::InvalidArgument(
            described_ + ": the audit log is signed by another key (public key " +
            BytesToHex(reinterpret_cast<const std::uint8_t*>(FieldBytes(r[0][0]).data()),
                       FieldBytes(r[0][0]).size()) +
            ", this node has " + HashToHex(ours) + ")");
      }
      txn.commit();
      return Status::Ok();
    });
  }

  template <typename Fn>
  Status Read(const std::string& what, Fn&& fn) const {
    std::lock_guard<std::mutex> lock(read_mu_);
    return reader_.Run(what, [&](pqxx::connection& c) -> Status {
      // Repeatable read: the size check and the rows read after it see one snapshot.
      pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> txn(c);
      Status s = fn(txn);
      txn.commit();
      return s;
    });
  }

  Status LatestHead(pqxx::transaction_base& txn, SignedTreeHead* sth) const {
    const pqxx::result r = txn.exec(std::string("SELECT ") + kHeadColumns +
                                    " FROM audit_tree_heads ORDER BY seq DESC LIMIT 1");
    if (r.empty()) return Status::NotFound(described_ + ": the log has no tree head yet");
    return ReadHead(r[0], sth);
  }

  Status CheckSize(pqxx::transaction_base& txn, std::uint64_t asked) const {
    SignedTreeHead latest;
    PORTCULLIS_RETURN_IF_ERROR(LatestHead(txn, &latest));
    if (asked > latest.tree_size) {
      return Status::InvalidArgument("tree size " + std::to_string(asked) +
                                     " is larger than the log (" +
                                     std::to_string(latest.tree_size) + ")");
    }
    return Status::Ok();
  }

  // Under the append lock (or in a snapshot): the latest head and the frontier of the tree at
  // its size. The frontier is cached across batches; when another node appended since, it is
  // reloaded from the stored nodes (popcount(size) of them) and checked against the head.
  Status LoadTip(pqxx::transaction_base& txn) {
    const pqxx::result r = txn.exec(std::string("SELECT seq, ") + kHeadColumns +
                                    " FROM audit_tree_heads ORDER BY seq DESC LIMIT 1");
    if (r.empty()) {
      tip_seq_ = -1;
      tip_ = SignedTreeHead{};
      tip_.root_hash = EmptyTreeHash();
      frontier_ = Frontier();
      tip_valid_ = true;
      return Status::Ok();
    }
    const std::int64_t seq = r[0][0].as<std::int64_t>();
    if (tip_valid_ && seq == tip_seq_) return Status::Ok();
    tip_valid_ = false;
    SignedTreeHead head;
    const pqxx::row row = r[0];
    head.tree_size = FieldU64(row[1]);
    head.timestamp_micros = row[2].as<std::int64_t>();
    PORTCULLIS_RETURN_IF_ERROR(FieldArray(row[3], "a root hash", &head.root_hash));
    PORTCULLIS_RETURN_IF_ERROR(FieldArray(row[4], "a signature", &head.signature));
    if (!VerifyTreeHeadSignature(head, keys_.public_key()).ok()) {
      return Status::Corruption(described_ + ": the latest tree head (size " +
                                std::to_string(head.tree_size) +
                                ") is not signed by this log's key");
    }
    Frontier f;
    std::vector<std::uint64_t> positions;
    std::uint64_t start = 0;
    for (int level = 63; level >= 0; --level) {
      const std::uint64_t span = std::uint64_t{1} << level;
      if ((head.tree_size & span) == 0) continue;
      positions.push_back(NodePosition(level, start >> level));
      start += span;
    }
    MapSource nodes;
    PORTCULLIS_RETURN_IF_ERROR(FetchNodes(txn, positions, &nodes));
    PORTCULLIS_RETURN_IF_ERROR(Frontier::Load(nodes, head.tree_size, &f));
    if (f.Root() != head.root_hash) {
      return Status::Corruption(described_ + ": the stored tree does not match the latest head " +
                                "(size " + std::to_string(head.tree_size) + ")");
    }
    tip_seq_ = seq;
    tip_ = head;
    frontier_ = std::move(f);
    tip_valid_ = true;
    return Status::Ok();
  }

  // The group's transaction. Only the group leader runs it (with mu_ released), so writer_ and
  // the tip are its own until it returns.
  Status WriteGroup(const std::vector<const std::string*>& leaves, SignedTreeHead* written) {
    Status s = writer_.Run("append to " + described_, [&](pqxx::connection& c) -> Status {
      pqxx::work txn(c);
      txn.exec_params("SELECT pg_advisory_xact_lock($1)", kAppendLock);
      PORTCULLIS_RETURN_IF_ERROR(LoadTip(txn));
      Frontier f = frontier_;
      const std::uint64_t first = f.size();
      const std::uint64_t first_node = NodesFor(first);
      std::string nodes;
      for (const std::string* leaf : leaves) f.Add(LeafHash(*leaf), &nodes);

      // Statements of bounded size: a huge batch is several INSERTs in the one transaction.
      constexpr std::size_t kMaxStatement = 4U << 20;
      std::string sql;
      auto flush = [&](const char* table_columns) {
        if (sql.empty()) return;
        txn.exec(std::string("INSERT INTO ") + table_columns + " VALUES " + sql);
        sql.clear();
      };
      for (std::size_t i = 0; i < leaves.size(); ++i) {
        if (!sql.empty()) sql += ',';
        sql += '(' + std::to_string(first + i) + ',';
        AppendBytea(*leaves[i], &sql);
        sql += ')';
        if (sql.size() > kMaxStatement) flush("audit_leaves (idx, leaf)");
      }
      flush("audit_leaves (idx, leaf)");
      const std::size_t node_count = nodes.size() / sizeof(Hash);
      for (std::size_t i = 0; i < node_count; ++i) {
        if (!sql.empty()) sql += ',';
        sql += '(' + std::to_string(first_node + i) + ',';
        AppendBytea(std::string_view(nodes).substr(i * sizeof(Hash), sizeof(Hash)), &sql);
        sql += ')';
        if (sql.size() > kMaxStatement) flush("audit_nodes (pos, hash)");
      }
      flush("audit_nodes (pos, hash)");

      SignedTreeHead head;
      head.tree_size = f.size();
      // Heads are ordered by time even if this node's clock is behind another's.
      head.timestamp_micros = std::max(env_->NowMicros(), tip_.timestamp_micros);
      head.root_hash = f.Root();
      PORTCULLIS_RETURN_IF_ERROR(SignTreeHead(keys_, &head));
      sql = "INSERT INTO audit_tree_heads (seq, " + std::string(kHeadColumns) + ") VALUES (" +
            std::to_string(tip_seq_ + 1) + ',' + std::to_string(head.tree_size) + ',' +
            std::to_string(head.timestamp_micros) + ',';
      AppendBytea(std::string_view(reinterpret_cast<const char*>(head.root_hash.data()), 32), &sql);
      sql += ',';
      AppendBytea(std::string_view(reinterpret_cast<const char*>(head.signature.data()), 64), &sql);
      sql += ')';
      txn.exec(sql);
      txn.commit();
      tip_seq_ += 1;
      tip_ = head;
      frontier_ = std::move(f);
      *written = head;
      return Status::Ok();
    });
    // After any failure the cached tip may be ahead of (an aborted transaction) or behind (a
    // commit in doubt) the database: the next batch reloads it.
    if (!s.ok()) tip_valid_ = false;
    return s;
  }

  Status Enqueue(Waiter* w) {
    std::unique_lock<std::mutex> lock(mu_);
    waiters_.push_back(w);
    while (!w->done && w != waiters_.front()) w->cv.wait(lock);
    if (w->done) return w->status;

    // Leader: this and following waiters, up to max_group leaves (a whole batch is never split).
    std::vector<Waiter*> group;
    std::vector<const std::string*> leaves;
    for (Waiter* other : waiters_) {
      if (!group.empty() && leaves.size() + other->leaves.size() > options_.max_group) break;
      group.push_back(other);
      for (const std::string& leaf : other->leaves) leaves.push_back(&leaf);
    }
    lock.unlock();  // followers keep queueing while the transaction runs
    SignedTreeHead head;
    Status s = WriteGroup(leaves, &head);
    lock.lock();
    for (Waiter* member : group) {
      member->status = s;
      member->head = head;
      member->done = true;
      waiters_.pop_front();
      if (member != w) member->cv.notify_one();
    }
    if (!waiters_.empty()) waiters_.front()->cv.notify_one();
    return s;
  }

  std::string described_;
  LogKeys keys_;
  AuditLogOptions options_;
  Env* env_;

  std::mutex mu_;                // the queue; also serialises Init's use of writer_
  std::deque<Waiter*> waiters_;  // the front one writes for the group
  Connection writer_;            // the leader's
  // The tip as this process last wrote or read it under the append lock (the leader's).
  std::int64_t tip_seq_ = -1;
  SignedTreeHead tip_;
  Frontier frontier_;
  bool tip_valid_ = false;

  mutable std::mutex read_mu_;
  mutable Connection reader_;
};

}  // namespace

Status OpenPostgresLog(const std::string& uri, const LogKeys& keys, const AuditLogOptions& options,
                       std::unique_ptr<TransparencyLog>* log) {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  auto opened = std::make_unique<PostgresLog>(uri, keys, options);
  PORTCULLIS_RETURN_IF_ERROR(opened->Init());
  *log = std::move(opened);
  return Status::Ok();
}

}  // namespace portcullis::audit::internal
