// The access store: the service's shared state about people and permissions — principals and
// their API tokens (stored hashed), vendor tickets, two-person export requests, and the claims
// that make a periodic job (the retention purge) run once across all nodes. Two backends behind
// one URI, like the vault's: "sqlite:PATH" (one node) and "postgresql://..." (several nodes
// sharing one database). docs/policy.md describes the tables and the rules they enforce.
//
// Domain outcomes (an unknown token, a replayed approval, a used-up ticket) are results, not
// errors: the methods return OK with an outcome enum, and a non-OK Status only for I/O failures
// or invalid arguments.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/env.h"
#include "portcullis/policy.h"
#include "portcullis/status.h"

namespace portcullis::policy {

// ---- Principals and tokens ------------------------------------------------------------------
// A token is "pct_" + 43 base64url characters (256 random bits). The store keeps only a hash of
// it (SHA-256: the token's entropy makes a slow hash unnecessary) and its first 12 characters as a
// public prefix for listings; the token itself is shown once, when issued.
struct NewPrincipal {
  std::string name;  // [a-z0-9:._-]{1,64}, unique
  Role role = Role::kOfficer;
  std::vector<std::string> scope;     // lanes/gates; "*" for all
  std::int64_t token_ttl_micros = 0;  // > 0: the token expires; 0: it does not
};
struct PrincipalInfo {
  Principal principal;
  std::string token_prefix;  // "pct_AbCdEfGh" (never the token)
  std::int64_t created_micros = 0;
  std::int64_t expires_micros = 0;  // 0: never
  bool revoked = false;
};
enum class AuthOutcome { kOk, kUnknown, kExpired, kRevoked, kMalformed };
[[nodiscard]] std::string_view AuthOutcomeName(AuthOutcome outcome);  // "ok", "unknown", ...

// ---- Vendor tickets -------------------------------------------------------------------------
// A supervisor lets one vendor see at most `max_uses` plate crops of one lane until `expires`.
struct NewTicket {
  std::string vendor;  // principal name of the vendor
  std::string lane;
  std::uint32_t max_uses = 0;   // 1..1000
  std::int64_t ttl_micros = 0;  // 1 minute .. 7 days
  std::string reason;
};
struct TicketInfo {
  std::string id;  // 32 hex digits
  std::string vendor, lane, granted_by, reason;
  std::uint32_t max_uses = 0, used = 0;
  std::int64_t created_micros = 0, expires_micros = 0;
};
enum class TicketOutcome { kOk, kUnknown, kExpired, kUsedUp, kWrongVendor, kWrongLane };
[[nodiscard]] std::string_view TicketOutcomeName(TicketOutcome outcome);

// ---- Two-person exports ---------------------------------------------------------------------
// One supervisor requests, a different supervisor approves; the approval opens a time-boxed
// window in which the requester may download once. Every exported file's SHA-256 is recorded so a
// leaked file can later be traced to this export (breach scoping).
enum class ExportState { kPending, kApproved, kDownloaded, kExpired, kRejected };
[[nodiscard]] std::string_view ExportStateName(ExportState state);
struct NewExport {
  std::string lane;                                // "" for all lanes in the requester's scope
  std::vector<std::string> record_types;           // vault record type names, e.g. {"plate_read"}
  std::int64_t from_micros = 0, until_micros = 0;  // created_micros in [from, until)
  std::string reason;
};
struct ExportInfo {
  std::string id;  // 32 hex digits
  NewExport request;
  std::string requested_by, approved_by;
  ExportState state = ExportState::kPending;
  std::int64_t created_micros = 0;
  std::int64_t approved_micros = 0;
  std::int64_t window_ends_micros = 0;  // download allowed until then (set on approval)
};
enum class ApproveOutcome { kOk, kUnknown, kSelfApproval, kNotPending, kExpired };
[[nodiscard]] std::string_view ApproveOutcomeName(ApproveOutcome outcome);
enum class DownloadOutcome {
  kOk,
  kUnknown,
  kNotApproved,
  kNotRequester,
  kAlreadyDownloaded,
  kExpired
};
[[nodiscard]] std::string_view DownloadOutcomeName(DownloadOutcome outcome);
struct ExportedFile {
  std::string record_id;
  std::string sha256_hex;  // of the bytes handed out (after watermarking)
};

// ---- Lane events ingested exactly once (docs/lane-link.md) ----------------------------------
// A lane agent may deliver one sealed event several times (a lost answer, a node that crashed
// between storing and answering, two nodes behind a load balancer). The first node to claim the
// event id stores its records; the claim is finished with the ids of what was stored, so every
// later delivery is answered with those ids and stores nothing.
struct EventClaim {
  std::string event_id;  // 32 hex digits
  std::string lane, device, node;
  std::int64_t sequence = 0;
};
struct IngestedEvent {
  std::string event_id, lane, device, node;
  std::int64_t sequence = 0;
  std::string claim;                // the claim token of whoever holds it (ours when we claimed)
  std::int64_t claimed_micros = 0;  // when the current claim was made
  std::int64_t previous_claimed_micros = 0;  // kTakenOver: when the stale claim had been made
  std::int64_t done_micros = 0;              // 0: not finished
  std::string records;                       // finished: the JSON array of stored records
};
enum class EventClaimOutcome {
  kClaimed,     // new: the caller stores the records, then CompleteEvent
  kTakenOver,   // a claim older than stale_after was taken over (its node died): the caller
                // removes whatever that node stored (labels {"event": id}), then stores afresh
  kDone,        // already ingested: *event has the records
  kInProgress,  // another node holds a live claim: retry later
};
[[nodiscard]] std::string_view EventClaimOutcomeName(EventClaimOutcome outcome);

class AccessStore {
 public:
  virtual ~AccessStore() = default;

  // Principals. CreatePrincipal fails (InvalidArgument) on a bad name or a name in use; the new
  // token is returned once in *token.
  virtual Status CreatePrincipal(const NewPrincipal& principal, std::string* token) = 0;
  // A fresh token for an existing principal; the old one stops working at once.
  virtual Status RotateToken(const std::string& name, std::int64_t token_ttl_micros,
                             std::string* token) = 0;
  virtual Status RevokePrincipal(const std::string& name) = 0;  // NotFound when unknown
  virtual Status ListPrincipals(std::vector<PrincipalInfo>* principals) = 0;
  // Constant-time in the token's content; *principal filled only when kOk.
  virtual Status Authenticate(std::string_view token, AuthOutcome* outcome,
                              Principal* principal) = 0;

  // Tickets.
  virtual Status GrantTicket(const std::string& granted_by, const NewTicket& ticket,
                             TicketInfo* info) = 0;
  // Atomically checks the ticket for (vendor, lane) and counts one use when kOk.
  virtual Status UseTicket(const std::string& ticket_id, const std::string& vendor,
                           const std::string& lane, TicketOutcome* outcome) = 0;
  virtual Status ListTickets(std::vector<TicketInfo>* tickets) = 0;

  // Exports.
  virtual Status RequestExport(const std::string& requested_by, const NewExport& request,
                               ExportInfo* info) = 0;
  // window_micros: how long the approved export may be downloaded (e.g. 1 hour). Atomic: of two
  // concurrent approvals (or a replayed one) exactly one gets kOk.
  virtual Status ApproveExport(const std::string& export_id, const std::string& approved_by,
                               std::int64_t window_micros, ApproveOutcome* outcome) = 0;
  // Atomic: marks the export downloaded (once) and records the files' fingerprints. The caller
  // builds the files first and hands them out only on kOk.
  virtual Status RecordDownload(const std::string& export_id, const std::string& downloaded_by,
                                const std::vector<ExportedFile>& files,
                                DownloadOutcome* outcome) = 0;
  virtual Status GetExport(const std::string& export_id, ExportInfo* info) = 0;  // NotFound
  virtual Status ListExports(std::vector<ExportInfo>* exports) = 0;
  // Breach scoping: which exports handed out a file with this fingerprint.
  virtual Status FindExportedFile(const std::string& sha256_hex,
                                  std::vector<std::string>* export_ids) = 0;

  // Periodic jobs across nodes: the first node to claim (job, period) gets *claimed = true;
  // everyone else false. E.g. ClaimJobRun("retention.purge", hour_start) runs a purge once an hour.
  virtual Status ClaimJobRun(const std::string& job, std::int64_t period_start_micros,
                             const std::string& node, bool* claimed) = 0;

  // Lane events (see EventClaim). Atomic across nodes: of concurrent claims of one event id
  // exactly one gets kClaimed (or kTakenOver). The defaults answer Unsupported (stores that do not
  // keep events, e.g. test fakes).
  virtual Status ClaimEvent(const EventClaim& claim, std::int64_t stale_after_micros,
                            EventClaimOutcome* outcome, IngestedEvent* event);
  // Finishes the claim `claim_token` with the stored records' JSON. *completed is false when the
  // claim was taken over meanwhile (the caller must then remove what it stored).
  virtual Status CompleteEvent(const std::string& event_id, const std::string& claim_token,
                               const std::string& records_json, bool* completed);
  // Drops an unfinished claim (storing failed), so that the agent's retry can claim at once.
  virtual Status ReleaseEvent(const std::string& event_id, const std::string& claim_token);
};

struct AccessStoreOptions {
  Env* env = nullptr;  // the clock for expiry; Env::Default() when null
};
// "sqlite:PATH" (created if missing, WAL, durable commits) or "postgresql://..." / "postgres://".
// The schema is created or migrated on open.
Status OpenAccessStore(const std::string& uri, const AccessStoreOptions& options,
                       std::unique_ptr<AccessStore>* store);

}  // namespace portcullis::policy
