// The names of roles, actions, categories and denials: the vocabulary shared by policy files, the
// access store, the audit log and the API's error codes.
#include <algorithm>
#include <string>

#include "portcullis/policy.h"

namespace portcullis::policy {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kLaneDevice:
      return "lane_device";
    case Role::kGateDevice:
      return "gate_device";
    case Role::kOfficer:
      return "officer";
    case Role::kSupervisor:
      return "supervisor";
    case Role::kVendor:
      return "vendor";
    case Role::kAuditor:
      return "auditor";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

Status ParseRole(std::string_view name, Role* role) {
  for (Role candidate : kAllRoles) {
    if (RoleName(candidate) == name) {
      *role = candidate;
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("unknown role '" + std::string(name) + "'");
}

bool IsKnownAction(std::string_view action) {
  return std::find(kActions.begin(), kActions.end(), action) != kActions.end();
}

bool IsKnownCategory(std::string_view category) {
  return std::find(kCategories.begin(), kCategories.end(), category) != kCategories.end();
}

std::string_view DenialCode(Denial denial) {
  switch (denial) {
    case Denial::kNone:
      return "none";
    case Denial::kNoRule:
      return "forbidden";
    case Denial::kPurposeRequired:
      return "purpose_required";
    case Denial::kOutOfScope:
      return "out_of_scope";
    case Denial::kTicketRequired:
      return "ticket_required";
  }
  return "forbidden";
}

bool Principal::InScope(std::string_view lane) const {
  return std::any_of(scope.begin(), scope.end(),
                     [&](const std::string& entry) { return entry == "*" || entry == lane; });
}

}  // namespace portcullis::policy
