// The access policy: parsing and validating a policy document, and deciding requests against it.
// docs/policy.md describes the format and the invariants enforced here.
#include "portcullis/policy.h"

#include <algorithm>
#include <array>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "portcullis/env.h"

namespace portcullis::policy {
namespace {

using nlohmann::json;

// A policy file is a few kilobytes; anything far larger is not one.
constexpr std::size_t kMaxPolicyBytes = 1 << 20;

struct Rule {
  std::string id;
  std::set<Role> roles;
  std::set<std::string, std::less<>> actions;
  std::set<std::string, std::less<>> categories;
  bool purpose_required = false;
  bool scope_lane = false;
  bool ticket_required = false;
};

// What no policy file may grant a vendor (the 2019 breach: a subcontractor copied traveller
// photos). Traveller data, templates and decisions stay with officers; bulk data leaves only by a
// two-person export, which is never a vendor's; the audit trail, principals, tickets and the
// shredder are not a vendor's to touch.
constexpr std::array<std::string_view, 4> kVendorForbiddenCategories = {
    "traveller_record", "traveller_photo", "face_template", "match_decision"};
constexpr std::array<std::string_view, 6> kVendorForbiddenActions = {
    "audit.export",    "principal.manage", "ticket.grant",
    "retention.purge", "event.submit",     "maintenance.open"};

bool VendorForbiddenAction(std::string_view action) {
  return action.starts_with("export.") ||
         std::find(kVendorForbiddenActions.begin(), kVendorForbiddenActions.end(), action) !=
             kVendorForbiddenActions.end();
}

bool ValidRuleId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// A list of distinct, non-empty strings, each accepted by `check` (which explains a refusal).
template <typename Check>
Status ReadList(const json& rule, const char* field, const std::string& where, Check&& check) {
  auto it = rule.find(field);
  if (it == rule.end()) return Status::InvalidArgument(where + ": missing \"" + field + "\"");
  if (!it->is_array()) {
    return Status::InvalidArgument(where + ": \"" + field + "\" must be a list of strings");
  }
  if (it->empty()) return Status::InvalidArgument(where + ": \"" + field + "\" is empty");
  std::set<std::string> seen;
  for (const json& item : *it) {
    if (!item.is_string()) {
      return Status::InvalidArgument(where + ": \"" + field + "\" must be a list of strings");
    }
    const std::string value = item.get<std::string>();
    if (!seen.insert(value).second) {
      std::string msg = where;
      msg.append(": \"").append(field).append("\" lists '").append(value).append("' twice");
      return Status::InvalidArgument(msg);
    }
    PORTCULLIS_RETURN_IF_ERROR(check(value).WithContext(where));
  }
  return Status::Ok();
}

// One of two spellings of a condition; both must be written out (no silent default in a security
// policy).
Status ReadChoice(const json& rule, const char* field, const std::string& where,
                  std::string_view strict, std::string_view lax, bool* is_strict) {
  auto it = rule.find(field);
  if (it == rule.end()) {
    return Status::InvalidArgument(where + ": missing \"" + field + "\" (\"" + std::string(strict) +
                                   "\" or \"" + std::string(lax) + "\")");
  }
  if (it->is_string() && it->get<std::string>() == strict) {
    *is_strict = true;
    return Status::Ok();
  }
  if (it->is_string() && it->get<std::string>() == lax) {
    *is_strict = false;
    return Status::Ok();
  }
  return Status::InvalidArgument(where + ": \"" + field + "\" must be \"" + std::string(strict) +
                                 "\" or \"" + std::string(lax) + "\", not " + it->dump());
}

Status CheckInvariants(const Rule& rule, const std::string& where) {
  if (rule.roles.count(Role::kVendor) != 0) {
    for (std::string_view category : kVendorForbiddenCategories) {
      if (rule.categories.count(category) != 0) {
        return Status::InvalidArgument(
            where + ": grants role vendor the category '" + std::string(category) +
            "'; vendors never reach traveller data, templates or match decisions (invariant)");
      }
    }
    for (const std::string& action : rule.actions) {
      if (VendorForbiddenAction(action)) {
        std::string msg = where;
        msg.append(": grants role vendor the action '")
            .append(action)
            .append("'; vendors never export, manage principals or tickets, or purge (invariant)");
        return Status::InvalidArgument(msg);
      }
    }
    if (rule.actions.count("plate.crop") != 0 && (!rule.ticket_required || !rule.scope_lane)) {
      return Status::InvalidArgument(
          where +
          ": a vendor rule with plate.crop needs \"ticket\": \"required\" and \"scope\": \"lane\" "
          "(invariant)");
    }
  }
  for (Role device : {Role::kLaneDevice, Role::kGateDevice}) {
    if (rule.roles.count(device) != 0 && !rule.scope_lane) {
      return Status::InvalidArgument(where + ": a rule for role " + std::string(RoleName(device)) +
                                     " needs \"scope\": \"lane\"; a device acts only on its own "
                                     "lane or gate (invariant)");
    }
  }
  return Status::Ok();
}

Status ParseRule(const json& item, std::size_t index, Rule* rule) {
  std::string where = "rule #" + std::to_string(index + 1);
  if (!item.is_object()) return Status::InvalidArgument(where + ": not an object");
  auto id = item.find("id");
  if (id == item.end() || !id->is_string()) {
    return Status::InvalidArgument(where + ": missing string \"id\"");
  }
  rule->id = id->get<std::string>();
  if (!ValidRuleId(rule->id)) {
    return Status::InvalidArgument(where + ": id " + id->dump() +
                                   " must be 1-64 characters of [A-Za-z0-9._-]");
  }
  where = "rule '" + rule->id + "'";
  static const std::set<std::string> kFields = {"id",      "roles", "actions", "categories",
                                                "purpose", "scope", "ticket",  "comment"};
  for (const auto& [key, value] : item.items()) {
    if (kFields.count(key) == 0) {
      std::string msg = where;
      msg.append(": unknown field \"").append(key).append("\"");
      return Status::InvalidArgument(msg);
    }
  }
  auto comment = item.find("comment");
  if (comment != item.end() && !comment->is_string()) {
    return Status::InvalidArgument(where + ": \"comment\" must be a string");
  }
  PORTCULLIS_RETURN_IF_ERROR(ReadList(item, "roles", where, [&](const std::string& name) {
    Role role = Role::kOfficer;
    Status parsed = ParseRole(name, &role);
    if (parsed.ok()) rule->roles.insert(role);
    return parsed;
  }));
  PORTCULLIS_RETURN_IF_ERROR(ReadList(item, "actions", where, [&](const std::string& name) {
    if (!IsKnownAction(name)) return Status::InvalidArgument("unknown action '" + name + "'");
    rule->actions.insert(name);
    return Status::Ok();
  }));
  PORTCULLIS_RETURN_IF_ERROR(ReadList(item, "categories", where, [&](const std::string& name) {
    if (!IsKnownCategory(name)) return Status::InvalidArgument("unknown category '" + name + "'");
    rule->categories.insert(name);
    return Status::Ok();
  }));
  PORTCULLIS_RETURN_IF_ERROR(
      ReadChoice(item, "purpose", where, "required", "optional", &rule->purpose_required));
  PORTCULLIS_RETURN_IF_ERROR(ReadChoice(item, "scope", where, "lane", "any", &rule->scope_lane));
  PORTCULLIS_RETURN_IF_ERROR(
      ReadChoice(item, "ticket", where, "required", "none", &rule->ticket_required));
  return CheckInvariants(*rule, where);
}

class RulePolicy : public AccessPolicy {
 public:
  explicit RulePolicy(std::vector<Rule> rules) : rules_(std::move(rules)) {}

  [[nodiscard]] Decision Decide(const AccessRequest& request) const override {
    Decision decision;
    decision.allowed = false;
    decision.denial = Denial::kNoRule;
    decision.rule = "default-deny";
    if (request.principal == nullptr) {
      decision.reason = "no authenticated principal";
      return decision;
    }
    const Principal& who = *request.principal;
    const std::string role(RoleName(who.role));
    const Rule* nearest = nullptr;
    Denial nearest_denial = Denial::kNoRule;
    for (const Rule& rule : rules_) {
      if (rule.roles.count(who.role) == 0 || rule.actions.count(request.action) == 0 ||
          rule.categories.count(request.category) == 0) {
        continue;
      }
      Denial denial = Denial::kNone;
      if (rule.purpose_required && request.purpose.empty()) {
        denial = Denial::kPurposeRequired;
      } else if (rule.scope_lane && !request.lane.empty() && !who.InScope(request.lane)) {
        denial = Denial::kOutOfScope;
      } else if (rule.ticket_required && !request.ticket_valid) {
        denial = Denial::kTicketRequired;
      }
      if (denial == Denial::kNone) {
        decision.allowed = true;
        decision.denial = Denial::kNone;
        decision.rule = rule.id;
        decision.reason = "allowed by rule '" + rule.id + "'";
        return decision;
      }
      // The first matching rule in file order explains the refusal.
      if (nearest == nullptr) {
        nearest = &rule;
        nearest_denial = denial;
      }
    }
    if (nearest == nullptr) {
      decision.reason = "no rule allows role " + role + " to " + request.action + " " +
                        request.category + " (default deny)";
      return decision;
    }
    decision.denial = nearest_denial;
    decision.rule = nearest->id;
    switch (nearest_denial) {
      case Denial::kPurposeRequired:
        decision.reason = "rule '" + nearest->id + "' requires a stated purpose (X-Purpose)";
        break;
      case Denial::kOutOfScope:
        decision.reason = "lane/gate '" + request.lane + "' is outside the scope of " + who.name;
        break;
      case Denial::kTicketRequired:
        decision.reason = "rule '" + nearest->id + "' requires a live vendor ticket for lane '" +
                          request.lane + "' (X-Ticket)";
        break;
      default:
        decision.reason = "denied by rule '" + nearest->id + "'";
        break;
    }
    return decision;
  }

 private:
  std::vector<Rule> rules_;
};

}  // namespace

Status ParsePolicy(std::string_view text, std::unique_ptr<AccessPolicy>* policy) {
  if (text.size() > kMaxPolicyBytes) {
    return Status::ResourceExhausted("policy document larger than 1 MiB");
  }
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("policy: malformed JSON: ") + e.what());
  }
  if (!doc.is_object()) return Status::InvalidArgument("policy: the document must be an object");
  for (const auto& [key, value] : doc.items()) {
    if (key != "version" && key != "rules" && key != "comment") {
      return Status::InvalidArgument("policy: unknown field \"" + key + "\"");
    }
  }
  auto version = doc.find("version");
  if (version == doc.end() || !version->is_number_integer() || version->get<std::int64_t>() != 1) {
    return Status::InvalidArgument("policy: \"version\" must be 1");
  }
  auto rules = doc.find("rules");
  if (rules == doc.end() || !rules->is_array()) {
    return Status::InvalidArgument("policy: \"rules\" must be a list");
  }
  std::vector<Rule> parsed;
  std::set<std::string> ids;
  for (std::size_t i = 0; i < rules->size(); ++i) {
    Rule rule;
    PORTCULLIS_RETURN_IF_ERROR(ParseRule((*rules)[i], i, &rule).WithContext("policy"));
    if (!ids.insert(rule.id).second) {
      return Status::InvalidArgument("policy: rule '" + rule.id + "': duplicate id");
    }
    parsed.push_back(std::move(rule));
  }
  *policy = std::make_unique<RulePolicy>(std::move(parsed));
  return Status::Ok();
}

Status LoadPolicyFile(const std::string& path, std::unique_ptr<AccessPolicy>* policy) {
  std::string text;
  PORTCULLIS_RETURN_IF_ERROR(Env::Default()->ReadFile(path, kMaxPolicyBytes, &text));
  return ParsePolicy(text, policy).WithContext(path);
}

}  // namespace portcullis::policy
