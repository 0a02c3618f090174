// The access store (access_store.h): principals and hashed tokens, vendor tickets, two-person
// exports with fingerprints, and run-once job claims, written once over sql::Database so that the
// SQLite and PostgreSQL backends enforce exactly the same rules. docs/policy.md describes the
// tables and the state machines.
//
// Every rule that two callers could race on (a ticket's last use, an export's approval or
// download, a job's claim) is one conditional UPDATE or INSERT ... ON CONFLICT DO NOTHING, so the
// database decides the winner; the loser then reads the row, in the same transaction, to say why
// it lost.
#include "portcullis/access_store.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <span>
#include <utility>

#include <nlohmann/json.hpp>

#include "policy/access_sql.h"
#include "portcullis/vault_record.h"
#include "vault/store_uri.h"

namespace portcullis::policy {
namespace {

constexpr std::int64_t kMinute = 60LL * 1000 * 1000;
constexpr std::int64_t kDay = kMinute * 60 * 24;
constexpr std::int64_t kMaxTicketTtl = 7 * kDay;
constexpr std::uint32_t kMaxTicketUses = 1000;
// An export request nobody approved within a week is stale: it expires rather than wait forever.
constexpr std::int64_t kPendingExportLifetime = 7 * kDay;
constexpr std::int64_t kMaxExportWindow = 7 * kDay;
constexpr std::size_t kMaxReasonBytes = 1024;
constexpr std::size_t kMaxScopeEntries = 256;

constexpr std::string_view kTokenPrefix = "pct_";
constexpr std::size_t kTokenBytes = 32;
constexpr std::size_t kTokenChars = 43;  // base64url of 32 bytes, no padding
constexpr std::size_t kTokenLength = kTokenPrefix.size() + kTokenChars;
constexpr std::size_t kPublicPrefixLength = 12;

// ---- Schema -----------------------------------------------------------------------------------
// Tables are prefixed "access_" so the access store can share one database (and one PostgreSQL
// schema) with the vault's store without a clash. Rules as in src/vault/migrations.h: a released
// migration never changes; a new schema is a new step.
struct Migration {
  int version;
  const char* description;
  std::vector<const char*> statements;
};

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "principals, tickets, exports, exported files, job runs",
       {"CREATE TABLE access_principals ("
        " name TEXT PRIMARY KEY,"
        " role TEXT NOT NULL,"
        " scope TEXT NOT NULL,"  // JSON array of lanes/gates
        " token_hash TEXT NOT NULL UNIQUE,"
        " token_prefix TEXT NOT NULL,"
        " created_micros {INT64} NOT NULL,"
        " expires_micros {INT64} NOT NULL,"   // 0: never
        " revoked_micros {INT64} NOT NULL)",  // 0: not revoked
        "CREATE TABLE access_tickets ("
        " id TEXT PRIMARY KEY,"
        " vendor TEXT NOT NULL,"
        " lane TEXT NOT NULL,"
        " granted_by TEXT NOT NULL,"
        " reason TEXT NOT NULL,"
        " max_uses {INT64} NOT NULL,"
        " used {INT64} NOT NULL,"
        " created_micros {INT64} NOT NULL,"
        " expires_micros {INT64} NOT NULL)",
        "CREATE TABLE access_exports ("
        " id TEXT PRIMARY KEY,"
        " requested_by TEXT NOT NULL,"
        " lane TEXT NOT NULL,"
        " record_types TEXT NOT NULL,"  // JSON array of vault record type names
        " from_micros {INT64} NOT NULL,"
        " until_micros {INT64} NOT NULL,"
        " reason TEXT NOT NULL,"
        " state TEXT NOT NULL,"  // pending, approved, downloaded (expiry is computed)
        " approved_by TEXT NOT NULL,"
        " created_micros {INT64} NOT NULL,"
        " approved_micros {INT64} NOT NULL,"
        " window_ends_micros {INT64} NOT NULL,"
        " downloaded_micros {INT64} NOT NULL)",
        "CREATE TABLE access_export_files ("
        " export_id TEXT NOT NULL REFERENCES access_exports (id),"
        " record_id TEXT NOT NULL,"
        " sha256 TEXT NOT NULL,"
        " PRIMARY KEY (export_id, record_id))",
        "CREATE INDEX access_export_files_by_sha256 ON access_export_files (sha256)",
        "CREATE TABLE access_job_runs ("
        " job TEXT NOT NULL,"
        " period_start_micros {INT64} NOT NULL,"
        " node TEXT NOT NULL,"
        " claimed_micros {INT64} NOT NULL,"
        " PRIMARY KEY (job, period_start_micros))"}},
      {2,
       "lane events ingested exactly once",
       {"CREATE TABLE access_ingested_events ("
        " event_id TEXT PRIMARY KEY,"
        " lane TEXT NOT NULL,"
        " device TEXT NOT NULL,"
        " sequence {INT64} NOT NULL,"
        " node TEXT NOT NULL,"
        " claim TEXT NOT NULL,"  // random token of the current claim
        " claimed_micros {INT64} NOT NULL,"
        " done_micros {INT64} NOT NULL,"  // 0: claimed, records not yet recorded
        " records TEXT NOT NULL)"}},      // JSON array of the stored records ("" until done)
  };
  return kMigrations;
}

constexpr const char* kSchemaVersionTable =
    "CREATE TABLE IF NOT EXISTS access_schema_version ("
    " version INTEGER PRIMARY KEY,"
    " description TEXT NOT NULL,"
    " applied_micros {INT64} NOT NULL)";

std::string ForDialect(const char* statement, sql::Dialect dialect) {
  std::string out(statement);
  const std::string_view from = "{INT64}";
  const std::string_view to = dialect == sql::Dialect::kSqlite ? "INTEGER" : "BIGINT";
  for (std::size_t pos = out.find(from); pos != std::string::npos;
       pos = out.find(from, pos + to.size())) {
    out.replace(pos, from.size(), to);
  }
  return out;
}

// ---- Validation -----------------------------------------------------------------------------

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' || c == '.' || c == '_' ||
         c == '-';
}
bool LaneChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

Status CheckName(const std::string& name, const char* what) {
  if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), NameChar)) {
    return Status::InvalidArgument(std::string(what) + " '" + name +
                                   "' must be 1-64 characters of [a-z0-9:._-]");
  }
  return Status::Ok();
}

// Lanes and gates appear in URL paths: the same alphabet as a path parameter.
Status CheckLane(const std::string& lane) {
  if (lane.empty() || lane.size() > 64 || !std::all_of(lane.begin(), lane.end(), LaneChar)) {
    return Status::InvalidArgument("lane/gate '" + lane +
                                   "' must be 1-64 characters of [A-Za-z0-9._-]");
  }
  return Status::Ok();
}

Status CheckScope(const std::vector<std::string>& scope) {
  if (scope.size() > kMaxScopeEntries) {
    return Status::InvalidArgument("scope lists more than 256 lanes/gates");
  }
  for (const std::string& entry : scope) {
    if (entry != "*") PORTCULLIS_RETURN_IF_ERROR(CheckLane(entry).WithContext("scope"));
  }
  return Status::Ok();
}

Status CheckReason(const std::string& reason) {
  if (reason.empty()) return Status::InvalidArgument("a reason is required");
  if (reason.size() > kMaxReasonBytes) {
    return Status::InvalidArgument("reason longer than 1024 bytes");
  }
  return Status::Ok();
}

bool IsHex(std::string_view s, std::size_t length) {
  return s.size() == length && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// ---- Tokens ---------------------------------------------------------------------------------

Status InitSodium() {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  return Status::Ok();
}

std::string NewToken() {
  std::array<unsigned char, kTokenBytes> bytes{};
  randombytes_buf(bytes.data(), bytes.size());
  std::array<char, sodium_base64_ENCODED_LEN(kTokenBytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING)>
      encoded{};
  sodium_bin2base64(encoded.data(), encoded.size(), bytes.data(), bytes.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(bytes.data(), bytes.size());
  std::string token(kTokenPrefix);
  token.append(encoded.data(), kTokenChars);
  sodium_memzero(encoded.data(), encoded.size());
  return token;
}

std::string NewClaimToken() {
  std::array<unsigned char, 16> bytes{};
  randombytes_buf(bytes.data(), bytes.size());
  std::array<char, 33> hex{};
  sodium_bin2hex(hex.data(), hex.size(), bytes.data(), bytes.size());
  return {hex.data(), 32};
}

bool ValidEventId(const std::string& id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string HexSha256(std::string_view data) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(data.data()),
                     data.size());
  std::array<char, 2 * crypto_hash_sha256_BYTES + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  return std::string(hex.data(), std::size_t{2} * crypto_hash_sha256_BYTES);
}

// The shape of a token, checked over every character without an early exit, so the time taken
// does not depend on where a forged token goes wrong.
bool WellFormedToken(std::string_view token) {
  if (token.size() != kTokenLength) return false;
  unsigned bad = 0;
  for (std::size_t i = 0; i < kTokenPrefix.size(); ++i) {
    bad |= static_cast<unsigned>(token[i] != kTokenPrefix[i]);
  }
  for (std::size_t i = kTokenPrefix.size(); i < token.size(); ++i) {
    const char c = token[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    bad |= static_cast<unsigned>(!ok);
  }
  return bad == 0;
}

std::string EncodeList(const std::vector<std::string>& list) { return nlohmann::json(list).dump(); }

Status DecodeList(const std::string& text, std::vector<std::string>* list) {
  try {
    nlohmann::json doc = nlohmann::json::parse(text);
    *list = doc.get<std::vector<std::string>>();
    return Status::Ok();
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(std::string("stored list does not decode: ") + e.what());
  }
}

// ---- Rows -----------------------------------------------------------------------------------

constexpr const char* kPrincipalColumns =
    "name, role, scope, token_prefix, created_micros, expires_micros, revoked_micros";

Status ReadPrincipal(const sql::Row& row, PrincipalInfo* info) {
  info->principal.name = row.Text(0);
  PORTCULLIS_RETURN_IF_ERROR(
      ParseRole(row.Text(1), &info->principal.role).WithContext("principal " + row.Text(0)));
  PORTCULLIS_RETURN_IF_ERROR(DecodeList(row.Text(2), &info->principal.scope));
  info->token_prefix = row.Text(3);
  info->created_micros = row.Int(4);
  info->expires_micros = row.Int(5);
  info->revoked = row.Int(6) != 0;
  return Status::Ok();
}

constexpr const char* kTicketColumns =
    "id, vendor, lane, granted_by, reason, max_uses, used, created_micros, expires_micros";

void ReadTicket(const sql::Row& row, TicketInfo* info) {
  info->id = row.Text(0);
  info->vendor = row.Text(1);
  info->lane = row.Text(2);
  info->granted_by = row.Text(3);
  info->reason = row.Text(4);
  info->max_uses = static_cast<std::uint32_t>(row.Int(5));
  info->used = static_cast<std::uint32_t>(row.Int(6));
  info->created_micros = row.Int(7);
  info->expires_micros = row.Int(8);
}

constexpr const char* kExportColumns =
    "id, requested_by, lane, record_types, from_micros, until_micros, reason, state, approved_by, "
    "created_micros, approved_micros, window_ends_micros";

// The state a reader sees: a pending request or an approved window that ran out is expired,
// though no job has rewritten the row.
Status ReadExport(const sql::Row& row, std::int64_t now, ExportInfo* info) {
  info->id = row.Text(0);
  info->requested_by = row.Text(1);
  info->request.lane = row.Text(2);
  PORTCULLIS_RETURN_IF_ERROR(DecodeList(row.Text(3), &info->request.record_types));
  info->request.from_micros = row.Int(4);
  info->request.until_micros = row.Int(5);
  info->request.reason = row.Text(6);
  const std::string& state = row.Text(7);
  info->approved_by = row.Text(8);
  info->created_micros = row.Int(9);
  info->approved_micros = row.Int(10);
  info->window_ends_micros = row.Int(11);
  if (state == "pending") {
    info->state = now >= info->created_micros + kPendingExportLifetime ? ExportState::kExpired
                                                                       : ExportState::kPending;
  } else if (state == "approved") {
    info->state = now >= info->window_ends_micros ? ExportState::kExpired : ExportState::kApproved;
  } else if (state == "downloaded") {
    info->state = ExportState::kDownloaded;
  } else if (state == "rejected") {
    info->state = ExportState::kRejected;
  } else {
    return Status::Corruption("export " + info->id + " has unknown state '" + state + "'");
  }
  return Status::Ok();
}

class SqlAccessStore : public AccessStore {
 public:
  SqlAccessStore(std::unique_ptr<sql::Database> db, Env* env) : db_(std::move(db)), env_(env) {}

  Status Migrate() {
    const sql::Dialect dialect = db_->dialect();
    for (;;) {
      bool done = false;
      if (Status outcome_status = db_->Migrate([&](sql::Session& s) -> Status {
            PORTCULLIS_RETURN_IF_ERROR(s.Exec(ForDialect(kSchemaVersionTable, dialect), {}));
            sql::Result version;
            PORTCULLIS_RETURN_IF_ERROR(s.Exec(
                "SELECT COALESCE(MAX(version), 0) FROM access_schema_version", {}, &version));
            const auto current = static_cast<std::size_t>(version.rows.at(0).Int(0));
            const std::size_t latest = Migrations().size();
            if (current > latest) {
              return Status::Unsupported(db_->Describe() + " has access schema version " +
                                         std::to_string(current) + ", newer than this build (" +
                                         std::to_string(latest) + "); upgrade Portcullis");
            }
            if (current == latest) {
              done = true;
              return Status::Ok();
            }
            const Migration& step = Migrations()[current];
            for (const char* statement : step.statements) {
              PORTCULLIS_RETURN_IF_ERROR(
                  s.Exec(ForDialect(statement, dialect), {})
                      .WithContext("migration " + std::to_string(step.version)));
            }
            return s.Exec(
                "INSERT INTO access_schema_version (version, description, applied_micros) "
                "VALUES (?, ?, ?)",
                {step.version, step.description, env_->NowMicros()});
          });
          !outcome_status.ok())
        return outcome_status;
      if (done) return Status::Ok();
    }
  }

  // ---- Principals ---------------------------------------------------------------------------

  Status CreatePrincipal(const NewPrincipal& principal, std::string* token) override {
    PORTCULLIS_RETURN_IF_ERROR(CheckName(principal.name, "principal name"));
    PORTCULLIS_RETURN_IF_ERROR(CheckScope(principal.scope));
    if (principal.token_ttl_micros < 0) {
      return Status::InvalidArgument("token TTL must not be negative");
    }
    const std::int64_t now = env_->NowMicros();
    std::string fresh = NewToken();
    const std::int64_t expires =
        principal.token_ttl_micros > 0 ? now + principal.token_ttl_micros : 0;
    if (Status outcome_status = db_->Write([&](sql::Session& s) -> Status {
          sql::Result existing;
          PORTCULLIS_RETURN_IF_ERROR(s.Exec("SELECT name FROM access_principals WHERE name = ?",
                                            {principal.name}, &existing));
          if (!existing.rows.empty()) {
            return Status::InvalidArgument("principal '" + principal.name + "' already exists");
          }
          return s.Exec(
              "INSERT INTO access_principals (name, role, scope, token_hash, token_prefix, "
              "created_micros, expires_micros, revoked_micros) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
              {principal.name, std::string(RoleName(principal.role)), EncodeList(principal.scope),
               HexSha256(fresh), fresh.substr(0, kPublicPrefixLength), now, expires});
        });
        !outcome_status.ok())
      return outcome_status;
    *token = std::move(fresh);
    return Status::Ok();
  }

  Status RotateToken(const std::string& name, std::int64_t token_ttl_micros,
                     std::string* token) override {
    if (token_ttl_micros < 0) return Status::InvalidArgument("token TTL must not be negative");
    const std::int64_t now = env_->NowMicros();
    std::string fresh = NewToken();
    const std::int64_t expires = token_ttl_micros > 0 ? now + token_ttl_micros : 0;
    if (Status outcome_status = db_->Write([&](sql::Session& s) -> Status {
          sql::Result row;
          PORTCULLIS_RETURN_IF_ERROR(
              s.Exec("SELECT revoked_micros FROM access_principals WHERE name = ?", {name}, &row));
          if (row.rows.empty()) return Status::NotFound("no principal '" + name + "'");
          // Revocation is final: the name stays taken (the audit log refers to it) and stays dead.
          if (row.rows[0].Int(0) != 0) {
            return Status::InvalidArgument("principal '" + name +
                                           "' is revoked; create a new principal instead");
          }
          return s.Exec(
              "UPDATE access_principals SET token_hash = ?, token_prefix = ?, expires_micros = ? "
              "WHERE name = ?",
              {HexSha256(fresh), fresh.substr(0, kPublicPrefixLength), expires, name});
        });
        !outcome_status.ok())
      return outcome_status;
    *token = std::move(fresh);
    return Status::Ok();
  }

  Status RevokePrincipal(const std::string& name) override {
    const std::int64_t now = env_->NowMicros();
    return db_->Write([&](sql::Session& s) -> Status {
      sql::Result row;
      PORTCULLIS_RETURN_IF_ERROR(
          s.Exec("SELECT revoked_micros FROM access_principals WHERE name = ?", {name}, &row));
      if (row.rows.empty()) return Status::NotFound("no principal '" + name + "'");
      if (row.rows[0].Int(0) != 0) return Status::Ok();  // already revoked: idempotent
      return s.Exec("UPDATE access_principals SET revoked_micros = ? WHERE name = ?", {now, name});
    });
  }

  Status ListPrincipals(std::vector<PrincipalInfo>* principals) override {
    return db_->Read([&](sql::Session& s) -> Status {
      sql::Result rows;
      PORTCULLIS_RETURN_IF_ERROR(s.Exec(
          std::string("SELECT ") + kPrincipalColumns + " FROM access_principals ORDER BY name", {},
          &rows));
      principals->clear();
      for (const sql::Row& row : rows.rows) {
        PrincipalInfo info;
        PORTCULLIS_RETURN_IF_ERROR(ReadPrincipal(row, &info));
        principals->push_back(std::move(info));
      }
      return Status::Ok();
    });
  }

  Status Authenticate(std::string_view token, AuthOutcome* outcome, Principal* principal) override {
    if (!WellFormedToken(token)) {
      *outcome = AuthOutcome::kMalformed;
      return Status::Ok();
    }
    // The lookup is by SHA-256 of the token: the database compares hashes, never the token, so
    // neither its index nor its timing reveals anything about a valid token's characters.
    const std::string hash = HexSha256(token);
    const std::int64_t now = env_->NowMicros();
    return db_->Read([&](sql::Session& s) -> Status {
      sql::Result rows;
      PORTCULLIS_RETURN_IF_ERROR(s.Exec(std::string("SELECT ") + kPrincipalColumns +
                                            " FROM access_principals WHERE token_hash = ?",
                                        {hash}, &rows));
      if (rows.rows.empty()) {
        *outcome = AuthOutcome::kUnknown;
        return Status::Ok();
      }
      PrincipalInfo info;
      PORTCULLIS_RETURN_IF_ERROR(ReadPrincipal(rows.rows[0], &info));
      if (info.revoked) {
        *outcome = AuthOutcome::kRevoked;
      } else if (info.expires_micros != 0 && now >= info.expires_micros) {
        *outcome = AuthOutcome::kExpired;
      } else {
        *outcome = AuthOutcome::kOk;
        *principal = std::move(info.principal);
      }
      return Status::Ok();
    });
  }

  // ---- Tickets ------------------------------------------------------------------------------

  Status GrantTicket(const std::string& granted_by, const NewTicket& ticket,
                     TicketInfo* info) override {
    PORTCULLIS_RETURN_IF_ERROR(CheckName(granted_by, "granted_by"));
    PORTCULLIS_RETURN_IF_ERROR(CheckName(ticket.vendor, "vendor"));
    PORTCULLIS_RETURN_IF_ERROR(CheckLane(ticket.lane));
    PORTCULLIS_RETURN_IF_ERROR(CheckReason(ticket.reason));
    if (ticket.max_uses < 1 || ticket.max_uses > kMaxTicketUses) {
      return Status::InvalidArgument("max_uses must be 1..1000");
    }
    if (ticket.ttl_micros < kMinute || ticket.ttl_micros > kMaxTicketTtl) {
      return Status::InvalidArgument("ticket TTL must be 1 minute .. 7 days");
    }
    const std::int64_t now = env_->NowMicros();
    TicketInfo made;
    made.id = vault::NewRecordId();
    made.vendor = ticket.vendor;
    made.lane = ticket.lane;
    made.granted_by = granted_by;
    made.reason = ticket.reason;
    made.max_uses = ticket.max_uses;
    made.used = 0;
    made.created_micros = now;
    made.expires_micros = now + ticket.ttl_micros;
    if (Status outcome_status = db_->Write([&](sql::Session& s) -> Status {
          sql::Result rows;
          PORTCULLIS_RETURN_IF_ERROR(s.Exec(
              std::string("SELECT ") + kPrincipalColumns + " FROM access_principals WHERE name = ?",
              {ticket.vendor}, &rows));
          if (rows.rows.empty()) return Status::NotFound("no principal '" + ticket.vendor + "'");
          PrincipalInfo vendor;
          PORTCULLIS_RETURN_IF_ERROR(ReadPrincipal(rows.rows[0], &vendor));
          if (vendor.principal.role != Role::kVendor) {
            return Status::InvalidArgument("'" + ticket.vendor + "' is a " +
                                           std::string(RoleName(vendor.principal.role)) +
                                           ", not a vendor");
          }
          if (vendor.revoked) return Status::InvalidArgument("'" + ticket.vendor + "' is revoked");
          // The policy would refuse the crops anyway (vendor-plate-crop is lane-scoped); a ticket
          // that can never be used is a mistake worth saying so.
          if (!vendor.principal.InScope(ticket.lane)) {
            return Status::InvalidArgument("lane '" + ticket.lane + "' is outside the scope of '" +
                                           ticket.vendor + "'");
          }
          return s.Exec(std::string("INSERT INTO access_tickets (") + kTicketColumns +
                            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        {made.id, made.vendor, made.lane, made.granted_by, made.reason,
                         static_cast<std::int64_t>(made.max_uses), std::int64_t{0},
                         made.created_micros, made.expires_micros});
        });
        !outcome_status.ok())
      return outcome_status;
    *info = std::move(made);
    return Status::Ok();
  }

  Status UseTicket(const std::string& ticket_id, const std::string& vendor, const std::string& lane,
                   TicketOutcome* outcome) override {
    if (!IsHex(ticket_id, 32)) {
      *outcome = TicketOutcome::kUnknown;
      return Status::Ok();
    }
    const std::int64_t now = env_->NowMicros();
    return db_->Write([&](sql::Session& s) -> Status {
      sql::Result counted;
      PORTCULLIS_RETURN_IF_ERROR(s.Exec(
          "UPDATE access_tickets SET used = used + 1 WHERE id = ? AND vendor = ? AND lane = ? "
          "AND used < max_uses AND expires_micros > ?",
          {ticket_id, vendor, lane, now}, &counted));
      if (counted.affected == 1) {
        *outcome = TicketOutcome::kOk;
        return Status::Ok();
      }
      sql::Result rows;
      PORTCULLIS_RETURN_IF_ERROR(
          s.Exec(std::string("SELECT ") + kTicketColumns + " FROM access_tickets WHERE id = ?",
                 {ticket_id}, &rows));
      if (rows.rows.empty()) {
        *outcome = TicketOutcome::kUnknown;
        return Status::Ok();
      }
      TicketInfo t;
      ReadTicket(rows.rows[0], &t);
      if (t.vendor != vendor) {
        *outcome = TicketOutcome::kWrongVendor;
      } else if (t.lane != lane) {
        *outcome = TicketOutcome::kWrongLane;
      } else if (now >= t.expires_micros) {
        *outcome = TicketOutcome::kExpired;
      } else {
        *outcome = TicketOutcome::kUsedUp;
      }
      return Status::Ok();
    });
  }

  Status ListTickets(std::vector<TicketInfo>* tickets) override {
    return db_->Read([&](sql::Session& s) -> Status {
      sql::Result rows;
      PORTCULLIS_RETURN_IF_ERROR(s.Exec(std::string("SELECT ") + kTicketColumns +
                                            " FROM access_tickets ORDER BY created_micros, id",
                                        {}, &rows));
      tickets->clear();
      for (const sql::Row& row : rows.rows) {
        TicketInfo info;
        ReadTicket(row, &info);
        tickets->push_back(std::move(info));
      }
      return Status::Ok();
    });
  }

  // ---- Exports ------------------------------------------------------------------------------

  Status RequestExport(const std::string& requested_by, const NewExport& request,
                       ExportInfo* info) override {
    PORTCULLIS_RETURN_IF_ERROR(CheckName(requested_by, "requested_by"));
    if (!request.lane.empty()) PORTCULLIS_RETURN_IF_ERROR(CheckLane(request.lane));
    if (request.record_types.empty()) {
      return Status::InvalidArgument("an export names at least one record type");
    }
    for (const std::string& type : request.record_types) {
      vault::RecordType parsed = vault::RecordType::kPlateRead;
      PORTCULLIS_RETURN_IF_ERROR(vault::ParseRecordType(type, &parsed));
    }
    if (request.from_micros < 0 || request.until_micros <= request.from_micros) {
      return Status::InvalidArgument("an export's time range must have 0 <= from < until");
    }
    PORTCULLIS_RETURN_IF_ERROR(CheckReason(request.reason));
    ExportInfo made;
    made.id = vault::NewRecordId();
    made.request = request;
    made.requested_by = requested_by;
    made.state = ExportState::kPending;
    made.created_micros = env_->NowMicros();
    if (Status outcome_status = db_->Write([&](sql::Session& s) {
          return s.Exec(
              "INSERT INTO access_exports (id, requested_by, lane, record_types, from_micros, "
              "until_micros, reason, state, approved_by, created_micros, approved_micros, "
              "window_ends_micros, downloaded_micros) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', '', ?, 0, 0, 0)",
              {made.id, requested_by, request.lane, EncodeList(request.record_types),
               request.from_micros, request.until_micros, request.reason, made.created_micros});
        });
        !outcome_status.ok())
      return outcome_status;
    *info = std::move(made);
    return Status::Ok();
  }

  Status ApproveExport(const std::string& export_id, const std::string& approved_by,
                       std::int64_t window_micros, ApproveOutcome* outcome) override {
    PORTCULLIS_RETURN_IF_ERROR(CheckName(approved_by, "approved_by"));
    if (window_micros <= 0 || window_micros > kMaxExportWindow) {
      return Status::InvalidArgument("the download window must be > 0 and at most 7 days");
    }
    if (!IsHex(export_id, 32)) {
      *outcome = ApproveOutcome::kUnknown;
      return Status::Ok();
    }
    const std::int64_t now = env_->NowMicros();
    return db_->Write([&](sql::Session& s) -> Status {
      // The one statement that decides: only a pending, unexpired request by someone else.
      sql::Result approved;
      PORTCULLIS_RETURN_IF_ERROR(s.Exec(
          "UPDATE access_exports SET state = 'approved', approved_by = ?, approved_micros = ?, "
          "window_ends_micros = ? WHERE id = ? AND state = 'pending' AND requested_by <> ? "
          "AND created_micros > ?",
          {approved_by, now, now + window_micros, export_id, approved_by,
           now - kPendingExportLifetime},
          &approved));
      if (approved.affected == 1) {
        *outcome = ApproveOutcome::kOk;
        return Status::Ok();
      }
      ExportInfo info;
      bool found = false;
      PORTCULLIS_RETURN_IF_ERROR(ReadExportRow(s, export_id, now, &info, &found));
      if (!found) {
        *outcome = ApproveOutcome::kUnknown;
      } else if (info.requested_by == approved_by) {
        *outcome = ApproveOutcome::kSelfApproval;
      } else if (info.state == ExportState::kExpired && info.approved_by.empty()) {
        *outcome = ApproveOutcome::kExpired;  // a stale request nobody approved
      } else {
        *outcome = ApproveOutcome::kNotPending;
      }
      return Status::Ok();
    });
  }

  Status RecordDownload(const std::string& export_id, const std::string& downloaded_by,
                        const std::vector<ExportedFile>& files, DownloadOutcome* outcome) override {
    for (const ExportedFile& file : files) {
      if (!IsHex(file.sha256_hex, 64)) {
        return Status::InvalidArgument("file " + file.record_id +
                                       ": sha256_hex must be 64 lower-case hex digits");
      }
      if (file.record_id.empty() || file.record_id.size() > 64) {
        return Status::InvalidArgument("an exported file needs a record id (at most 64 bytes)");
      }
    }
    if (!IsHex(export_id, 32)) {
      *outcome = DownloadOutcome::kUnknown;
      return Status::Ok();
    }
    const std::int64_t now = env_->NowMicros();
    return db_->Write([&](sql::Session& s) -> Status {
      sql::Result marked;
      PORTCULLIS_RETURN_IF_ERROR(s.Exec(
          "UPDATE access_exports SET state = 'downloaded', downloaded_micros = ? "
          "WHERE id = ? AND state = 'approved' AND requested_by = ? AND window_ends_micros > ?",
          {now, export_id, downloaded_by, now}, &marked));
      if (marked.affected == 1) {
        // In the same transaction: no download without its fingerprints, and vice versa.
        for (const ExportedFile& file : files) {
          PORTCULLIS_RETURN_IF_ERROR(s.Exec(
              "INSERT INTO access_export_files (export_id, record_id, sha256) VALUES (?, ?, ?)",
              {export_id, file.record_id, file.sha256_hex}));
        }
        *outcome = DownloadOutcome::kOk;
        return Status::Ok();
      }
      ExportInfo info;
      bool found = false;
      PORTCULLIS_RETURN_IF_ERROR(ReadExportRow(s, export_id, now, &info, &found));
      if (!found) {
        *outcome = DownloadOutcome::kUnknown;
      } else if (info.requested_by != downloaded_by) {
        *outcome = DownloadOutcome::kNotRequester;
      } else if (info.state == ExportState::kDownloaded) {
        *outcome = DownloadOutcome::kAlreadyDownloaded;
      } else if (info.state == ExportState::kExpired) {
        *outcome = DownloadOutcome::kExpired;
      } else {
        *outcome = DownloadOutcome::kNotApproved;
      }
      return Status::Ok();
    });
  }

  Status GetExport(const std::string& export_id, ExportInfo* info) override {
    const std::int64_t now = env_->NowMicros();
    bool found = false;
    if (IsHex(export_id, 32)) {
      if (Status outcome_status = db_->Read(
              [&](sql::Session& s) { return ReadExportRow(s, export_id, now, info, &found); });
          !outcome_status.ok())
        return outcome_status;
    }
    if (!found) return Status::NotFound("no export " + export_id);
    return Status::Ok();
  }

  Status ListExports(std::vector<ExportInfo>* exports) override {
    const std::int64_t now = env_->NowMicros();
    return db_->Read([&](sql::Session& s) -> Status {
      sql::Result rows;
      PORTCULLIS_RETURN_IF_ERROR(s.Exec(std::string("SELECT ") + kExportColumns +
                                            " FROM access_exports ORDER BY created_micros, id",
                                        {}, &rows));
      exports->clear();
      for (const sql::Row& row : rows.rows) {
        ExportInfo info;
        PORTCULLIS_RETURN_IF_ERROR(ReadExport(row, now, &info));
        exports->push_back(std::move(info));
      }
      return Status::Ok();
    });
  }

  Status FindExportedFile(const std::string& sha256_hex,
                          std::vector<std::string>* export_ids) override {
    if (!IsHex(sha256_hex, 64)) {
      return Status::InvalidArgument("a fingerprint is 64 lower-case hex digits (SHA-256)");
    }
    return db_->Read([&](sql::Session& s) -> Status {
      sql::Result rows;
      PORTCULLIS_RETURN_IF_ERROR(
          s.Exec("SELECT DISTINCT export_id FROM access_export_files WHERE sha256 = ? "
                 "ORDER BY export_id",
                 {sha256_hex}, &rows));
      export_ids->clear();
      for (const sql::Row& row : rows.rows) export_ids->push_back(row.Text(0));
      return Status::Ok();
    });
  }

  // ---- Jobs ---------------------------------------------------------------------------------

  Status ClaimJobRun(const std::string& job, std::int64_t period_start_micros,
                     const std::string& node, bool* claimed) override {
    if (job.empty() || job.size() > 128) return Status::InvalidArgument("job name must be 1..128");
    if (node.empty() || node.size() > 128)
      return Status::InvalidArgument("node name must be 1..128");
    const std::int64_t now = env_->NowMicros();
    return db_->Write([&](sql::Session& s) -> Status {
      sql::Result inserted;
      PORTCULLIS_RETURN_IF_ERROR(
          s.Exec("INSERT INTO access_job_runs (job, period_start_micros, node, claimed_micros) "
                 "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                 {job, period_start_micros, node, now}, &inserted));
      *claimed = inserted.affected == 1;
      return Status::Ok();
    });
  }

  // ---- Lane events ----------------------------------------------------------------------------

  Status ClaimEvent(const EventClaim& claim, std::int64_t stale_after_micros,
                    EventClaimOutcome* outcome, IngestedEvent* event) override {
    if (!ValidEventId(claim.event_id)) {
      return Status::InvalidArgument("event id must be 32 lower-case hex digits");
    }
    if (claim.node.empty() || claim.node.size() > 128 || claim.device.size() > 128 ||
        claim.lane.size() > 128) {
      return Status::InvalidArgument("event claim: node, device or lane too long or empty");
    }
    const std::int64_t now = env_->NowMicros();
    const std::string token = NewClaimToken();
    return db_->Write([&](sql::Session& s) -> Status {
      sql::Result inserted;
      PORTCULLIS_RETURN_IF_ERROR(
          s.Exec("INSERT INTO access_ingested_events (event_id, lane, device, sequence, node, "
                 "claim, claimed_micros, done_micros, records) VALUES (?, ?, ?, ?, ?, ?, ?, 0, '') "
                 "ON CONFLICT DO NOTHING",
                 {claim.event_id, claim.lane, claim.device, claim.sequence, claim.node, token, now},
                 &inserted));
      IngestedEvent row;
      if (inserted.affected == 1) {
        row = {claim.event_id,
               claim.lane,
               claim.device,
               claim.node,
               claim.sequence,
               token,
               now,
               0,
               0,
               ""};
        *outcome = EventClaimOutcome::kClaimed;
        *event = std::move(row);
        return Status::Ok();
      }
      sql::Result rows;
      PORTCULLIS_RETURN_IF_ERROR(
          s.Exec("SELECT event_id, lane, device, sequence, node, claim, claimed_micros, "
                 "done_micros, records FROM access_ingested_events WHERE event_id = ?",
                 {claim.event_id}, &rows));
      if (rows.rows.empty()) return Status::Internal("event claim vanished: " + claim.event_id);
      const sql::Row& r = rows.rows[0];
      row = {r.Text(0), r.Text(1), r.Text(2), r.Text(4), r.Int(3),
             r.Text(5), r.Int(6),  0,         r.Int(7),  r.Text(8)};
      if (row.done_micros != 0) {
        *outcome = EventClaimOutcome::kDone;
      } else if (now - row.claimed_micros < stale_after_micros) {
        *outcome = EventClaimOutcome::kInProgress;
      } else {
        // The claim's node died (or stalled) before finishing: take it over, conditionally on
        // the claim being the one just read, so that of two nodes taking over one wins.
        sql::Result updated;
        PORTCULLIS_RETURN_IF_ERROR(
            s.Exec("UPDATE access_ingested_events SET node = ?, claim = ?, claimed_micros = ? "
                   "WHERE event_id = ? AND claim = ? AND done_micros = 0",
                   {claim.node, token, now, claim.event_id, row.claim}, &updated));
        if (updated.affected == 1) {
          row.previous_claimed_micros = row.claimed_micros;
          row.node = claim.node;
          row.claim = token;
          row.claimed_micros = now;
          *outcome = EventClaimOutcome::kTakenOver;
        } else {
          *outcome = EventClaimOutcome::kInProgress;
        }
      }
      *event = std::move(row);
      return Status::Ok();
    });
  }

  Status CompleteEvent(const std::string& event_id, const std::string& claim_token,
                       const std::string& records_json, bool* completed) override {
    const std::int64_t now = env_->NowMicros();
    return db_->Write([&](sql::Session& s) -> Status {
      sql::Result updated;
      PORTCULLIS_RETURN_IF_ERROR(
          s.Exec("UPDATE access_ingested_events SET done_micros = ?, records = ? "
                 "WHERE event_id = ? AND claim = ? AND done_micros = 0",
                 {now, records_json, event_id, claim_token}, &updated));
      *completed = updated.affected == 1;
      return Status::Ok();
    });
  }

  Status ReleaseEvent(const std::string& event_id, const std::string& claim_token) override {
    return db_->Write([&](sql::Session& s) -> Status {
      return s.Exec(
          "DELETE FROM access_ingested_events WHERE event_id = ? AND claim = ? AND done_micros = 0",
          {event_id, claim_token});
    });
  }

 private:
  static Status ReadExportRow(sql::Session& s, const std::string& export_id, std::int64_t now,
                              ExportInfo* info, bool* found) {
    sql::Result rows;
    PORTCULLIS_RETURN_IF_ERROR(
        s.Exec(std::string("SELECT ") + kExportColumns + " FROM access_exports WHERE id = ?",
               {export_id}, &rows));
    *found = !rows.rows.empty();
    if (!*found) return Status::Ok();
    return ReadExport(rows.rows[0], now, info);
  }

  std::unique_ptr<sql::Database> db_;
  Env* env_;
};

}  // namespace

std::string_view EventClaimOutcomeName(EventClaimOutcome outcome) {
  switch (outcome) {
    case EventClaimOutcome::kClaimed:
      return "claimed";
    case EventClaimOutcome::kTakenOver:
      return "taken_over";
    case EventClaimOutcome::kDone:
      return "done";
    case EventClaimOutcome::kInProgress:
      return "in_progress";
  }
  return "unknown";
}

Status AccessStore::ClaimEvent(const EventClaim&, std::int64_t, EventClaimOutcome*,
                               IngestedEvent*) {
  return Status::Unsupported("this access store does not record ingested events");
}
Status AccessStore::CompleteEvent(const std::string&, const std::string&, const std::string&,
                                  bool*) {
  return Status::Unsupported("this access store does not record ingested events");
}
Status AccessStore::ReleaseEvent(const std::string&, const std::string&) {
  return Status::Unsupported("this access store does not record ingested events");
}

std::string_view AuthOutcomeName(AuthOutcome outcome) {
  switch (outcome) {
    case AuthOutcome::kOk:
      return "ok";
    case AuthOutcome::kUnknown:
      return "unknown";
    case AuthOutcome::kExpired:
      return "expired";
    case AuthOutcome::kRevoked:
      return "revoked";
    case AuthOutcome::kMalformed:
      return "malformed";
  }
  return "unknown";
}

std::string_view TicketOutcomeName(TicketOutcome outcome) {
  switch (outcome) {
    case TicketOutcome::kOk:
      return "ok";
    case TicketOutcome::kUnknown:
      return "unknown";
    case TicketOutcome::kExpired:
      return "expired";
    case TicketOutcome::kUsedUp:
      return "used_up";
    case TicketOutcome::kWrongVendor:
      return "wrong_vendor";
    case TicketOutcome::kWrongLane:
      return "wrong_lane";
  }
  return "unknown";
}

std::string_view ExportStateName(ExportState state) {
  switch (state) {
    case ExportState::kPending:
      return "pending";
    case ExportState::kApproved:
      return "approved";
    case ExportState::kDownloaded:
      return "downloaded";
    case ExportState::kExpired:
      return "expired";
    case ExportState::kRejected:
      return "rejected";
  }
  return "unknown";
}

std::string_view ApproveOutcomeName(ApproveOutcome outcome) {
  switch (outcome) {
    case ApproveOutcome::kOk:
      return "ok";
    case ApproveOutcome::kUnknown:
      return "unknown";
    case ApproveOutcome::kSelfApproval:
      return "self_approval";
    case ApproveOutcome::kNotPending:
      return "not_pending";
    case ApproveOutcome::kExpired:
      return "expired";
  }
  return "unknown";
}

std::string_view DownloadOutcomeName(DownloadOutcome outcome) {
  switch (outcome) {
    case DownloadOutcome::kOk:
      return "ok";
    case DownloadOutcome::kUnknown:
      return "unknown";
    case DownloadOutcome::kNotApproved:
      return "not_approved";
    case DownloadOutcome::kNotRequester:
      return "not_requester";
    case DownloadOutcome::kAlreadyDownloaded:
      return "already_downloaded";
    case DownloadOutcome::kExpired:
      return "expired";
  }
  return "unknown";
}

Status OpenAccessStore(const std::string& uri, const AccessStoreOptions& options,
                       std::unique_ptr<AccessStore>* store) {
  PORTCULLIS_RETURN_IF_ERROR(InitSodium());
  vault::StoreUri parsed;
  PORTCULLIS_RETURN_IF_ERROR(vault::ParseStoreUri(uri, &parsed).WithContext("access store"));
  std::unique_ptr<sql::Database> db;
  if (parsed.backend == vault::StoreBackend::kSqlite) {
    PORTCULLIS_RETURN_IF_ERROR(sql::OpenSqlite(parsed.sqlite_path, &db));
  } else {
    PORTCULLIS_RETURN_IF_ERROR(sql::OpenPostgres(parsed.postgres_uri, &db));
  }
  auto opened = std::make_unique<SqlAccessStore>(
      std::move(db), options.env != nullptr ? options.env : Env::Default());
  PORTCULLIS_RETURN_IF_ERROR(opened->Migrate());
  *store = std::move(opened);
  return Status::Ok();
}

}  // namespace portcullis::policy
