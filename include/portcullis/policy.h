// Access policy: who may do what, to which data, for which stated purpose. The service asks the
// policy before every request reaches a handler; the answer (allow or deny, and the rule that
// decided) goes into the audit log either way. Defaults deny: a request no rule allows is refused.
//
// The policy is a small JSON file (data/policy.json, docs/policy.md) of rules over
// role x action x data category. Some things no file can grant, because they are the point of the
// project (the 2019 breach): a vendor never reaches traveller data or bulk export, and a bulk
// export is never one person's action. Load refuses a file that tries.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/status.h"

namespace portcullis::policy {

// The principals' roles. Names (RoleName) are stored in the access store, written in policy
// files and the audit log: a contract, never renamed.
enum class Role {
  kLaneDevice,  // "lane_device": a vehicle-lane computer (posts frames)
  kGateDevice,  // "gate_device": an airport gate (opens galleries, posts live captures)
  kOfficer,     // "officer": looks up plate reads and traveller records for a stated purpose
  kSupervisor,  // "supervisor": grants vendor tickets, requests and approves exports
  kVendor,      // "vendor": a subcontractor; device health, aggregates, ticketed plate crops
  kAuditor,     // "auditor": tree heads, proofs, the audit log
  kAdmin,       // "admin": principals and tokens, retention jobs
};
inline constexpr std::array<Role, 7> kAllRoles = {
    Role::kLaneDevice, Role::kGateDevice, Role::kOfficer, Role::kSupervisor,
    Role::kVendor,     Role::kAuditor,    Role::kAdmin};
[[nodiscard]] std::string_view RoleName(Role role);
// InvalidArgument for an unknown name (exact, lower case).
Status ParseRole(std::string_view name, Role* role);

// The actions the service performs and the data categories they touch. A policy file may name
// only these (Load checks), so a typo cannot silently grant or deny nothing.
inline constexpr std::array<std::string_view, 25> kActions = {
    "plate.read",        // lane: post a frame or clip, get plate reads (stored per retention)
    "plate.lookup",      // read a stored plate read (text, lane, time)
    "plate.crop",        // read a stored plate crop image
    "gallery.open",      // gate: open a flight gallery from a manifest
    "gallery.match",     // gate: post a live capture, get a decision
    "gallery.close",     // gate: close a gallery (templates destroyed)
    "traveller.lookup",  // read a traveller record (manifest entry, decisions)
    "traveller.photo",   // read a traveller's document photo
    "device.health",     // device status, versions, error counts
    "stats.read",        // aggregate figures (reads per hour, match rates, accuracy)
    "retention.read",    // the retention schedule (what will be shredded when)
    "retention.purge",   // run the crypto-shredding purge now
    "audit.read",        // signed tree heads, proofs, leaves
    "audit.export",      // the whole log, for an external auditor or witness
    "ticket.grant",      // grant a vendor a time-boxed, bounded ticket
    "ticket.read",       // list tickets
    "export.request",    // request a bulk export (first person)
    "export.approve",    // approve someone else's export request (second person)
    "export.download",   // download an approved export
    "export.read",       // list export requests
    "principal.manage",  // create principals, issue and revoke tokens
    "principal.read",    // list principals (never tokens)
    "event.submit",      // a lane agent delivers a sealed vehicle-pass event (reads, crops, faces)
    "device.report",     // a device reports its health and its maintenance sessions
    "maintenance.open",  // open a time-boxed maintenance session on a device for a technician
};
inline constexpr std::array<std::string_view, 13> kCategories = {
    "plate_read",        // a plate read: text, confidence, lane, time
    "plate_crop",        // the image of a plate (a vehicle's picture)
    "traveller_record",  // manifest entry, document number, decisions about a traveller
    "traveller_photo",   // document photos, gallery photos, live captures
    "face_template",     // templates derived from photos
    "match_decision",    // the outcome of a match
    "device_health",     // device status; no personal data
    "aggregate_stats",   // counts and rates; no personal data
    "retention",         // retention classes and the shredding schedule
    "audit_log",         // tree heads, proofs, leaves (keyed hashes, no personal data)
    "ticket",            // vendor tickets
    "export",            // bulk exports
    "principal",         // principals and tokens
};
[[nodiscard]] bool IsKnownAction(std::string_view action);
[[nodiscard]] bool IsKnownCategory(std::string_view category);

// Who made a request, once authenticated.
struct Principal {
  std::string name;  // "officer:1234", "lane:7", "vendor:acme-alpr"; unique, [a-z0-9:._-]{1,64}
  Role role = Role::kOfficer;
  // The lanes/gates this principal may act on or see. Empty: none (for roles whose rules are
  // scoped); "*" in the list: all. Devices hold their own lane; a vendor its contract's lanes.
  std::vector<std::string> scope;
  [[nodiscard]] bool InScope(std::string_view lane) const;
};

// One question to the policy.
struct AccessRequest {
  const Principal* principal = nullptr;
  std::string action;         // one of kActions
  std::string category;       // one of kCategories
  std::string purpose;        // the stated purpose, verbatim ("" when none was given)
  std::string lane;           // the lane or gate the request concerns; "" when none
  bool ticket_valid = false;  // the caller checked a vendor ticket for this lane and it is live
};

// Why a request was refused; the service maps each to an HTTP status and a JSON error code.
enum class Denial {
  kNone,             // allowed
  kNoRule,           // "forbidden": no rule allows this role x action x category (default deny)
  kPurposeRequired,  // "purpose_required": the rule requires a stated purpose and none was given
  kOutOfScope,       // "out_of_scope": the lane/gate is not in the principal's scope
  kTicketRequired,   // "ticket_required": the rule requires a live vendor ticket for the lane
};
[[nodiscard]] std::string_view DenialCode(Denial denial);

struct Decision {
  bool allowed = false;
  Denial denial = Denial::kNoRule;
  std::string rule;    // id of the rule that allowed (or that was nearest), or "default-deny"
  std::string reason;  // one readable sentence, for the JSON error and the audit log
};

class AccessPolicy {
 public:
  virtual ~AccessPolicy() = default;
  // Thread-safe. Pure: the same request always gets the same decision.
  [[nodiscard]] virtual Decision Decide(const AccessRequest& request) const = 0;
};

// Parses and validates a policy document (docs/policy.md): unknown roles, actions, categories or
// fields, duplicate rule ids, and any rule that breaks an invariant (a vendor granted traveller
// data, export.* or audit.export, an unticketed vendor crop, a device rule not scoped to its lane)
// are InvalidArgument naming the rule. The two-person rule for exports is the access store's
// (ApproveExport refuses self-approval), not the policy's.
Status ParsePolicy(std::string_view json, std::unique_ptr<AccessPolicy>* policy);
Status LoadPolicyFile(const std::string& path, std::unique_ptr<AccessPolicy>* policy);

}  // namespace portcullis::policy
