// The access policy: the default policy's full matrix, every invariant, every validation error and
// every kind of denial.
#include "portcullis/policy.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace portcullis::policy {
namespace {

std::unique_ptr<AccessPolicy> LoadDefault() {
  std::unique_ptr<AccessPolicy> policy;
  const Status s =
      LoadPolicyFile(std::string(PORTCULLIS_SOURCE_DIR) + "/data/policy.json", &policy);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return policy;
}

// The category each action touches in the API (docs/api.md).
const std::map<std::string, std::string>& ActionCategory() {
  static const std::map<std::string, std::string> kMap = {
      {"plate.read", "plate_read"},
      {"plate.lookup", "plate_read"},
      {"plate.crop", "plate_crop"},
      {"gallery.open", "face_template"},
      {"gallery.match", "match_decision"},
      {"gallery.close", "face_template"},
      {"traveller.lookup", "traveller_record"},
      {"traveller.photo", "traveller_photo"},
      {"device.health", "device_health"},
      {"stats.read", "aggregate_stats"},
      {"retention.read", "retention"},
      {"retention.purge", "retention"},
      {"audit.read", "audit_log"},
      {"audit.export", "audit_log"},
      {"ticket.grant", "ticket"},
      {"ticket.read", "ticket"},
      {"export.request", "export"},
      {"export.approve", "export"},
      {"export.download", "export"},
      {"export.read", "export"},
      {"principal.manage", "principal"},
      {"principal.read", "principal"},
      {"event.submit", "plate_read"},
      {"device.report", "device_health"},
      {"maintenance.open", "device_health"},
  };
  return kMap;
}

// The "who" column of docs/api.md, written out by hand (not derived from data/policy.json).
const std::set<std::pair<std::string, std::string>>& ExpectedAllowed() {
  static const std::set<std::pair<std::string, std::string>> kAllowed = {
      {"lane_device", "plate.read"},      {"officer", "plate.lookup"},
      {"supervisor", "plate.lookup"},     {"officer", "plate.crop"},
      {"vendor", "plate.crop"},           {"officer", "stats.read"},
      {"supervisor", "stats.read"},       {"vendor", "stats.read"},
      {"auditor", "stats.read"},          {"vendor", "device.health"},
      {"supervisor", "device.health"},    {"admin", "device.health"},
      {"supervisor", "retention.read"},   {"auditor", "retention.read"},
      {"admin", "retention.read"},        {"admin", "retention.purge"},
      {"gate_device", "gallery.open"},    {"gate_device", "gallery.match"},
      {"gate_device", "gallery.close"},   {"supervisor", "gallery.close"},
      {"officer", "traveller.lookup"},    {"officer", "traveller.photo"},
      {"admin", "principal.manage"},      {"admin", "principal.read"},
      {"auditor", "principal.read"},      {"supervisor", "ticket.grant"},
      {"supervisor", "ticket.read"},      {"auditor", "ticket.read"},
      {"vendor", "ticket.read"},          {"supervisor", "export.request"},
      {"supervisor", "export.read"},      {"auditor", "export.read"},
      {"supervisor", "export.approve"},   {"supervisor", "export.download"},
      {"auditor", "audit.read"},          {"admin", "audit.read"},
      {"auditor", "audit.export"},        {"lane_device", "event.submit"},
      {"lane_device", "device.report"},   {"gate_device", "device.report"},
      {"supervisor", "maintenance.open"},
  };
  return kAllowed;
}

Principal Who(Role role, std::vector<std::string> scope = {"7"}) {
  Principal p;
  p.name = std::string(RoleName(role)) + ":test";
  p.role = role;
  p.scope = std::move(scope);
  return p;
}

// Every condition satisfied: a purpose, a lane in scope, a live ticket.
AccessRequest Full(const Principal& who, const std::string& action, const std::string& category) {
  AccessRequest r;
  r.principal = &who;
  r.action = action;
  r.category = category;
  r.purpose = "secondary inspection";
  r.lane = "7";
  r.ticket_valid = true;
  return r;
}

TEST(DefaultPolicy, ActionCategoryTableCoversTheVocabulary) {
  ASSERT_EQ(ActionCategory().size(), kActions.size());
  for (std::string_view action : kActions) {
    auto it = ActionCategory().find(std::string(action));
    ASSERT_NE(it, ActionCategory().end()) << action;
    EXPECT_TRUE(IsKnownCategory(it->second)) << it->second;
  }
}

TEST(DefaultPolicy, FullMatrixMatchesTheApiContract) {
  auto policy = LoadDefault();
  ASSERT_NE(policy, nullptr);
  int allowed = 0;
  for (Role role : kAllRoles) {
    const Principal who = Who(role);
    for (std::string_view action_view : kActions) {
      const std::string action(action_view);
      for (std::string_view category_view : kCategories) {
        const std::string category(category_view);
        const bool expected = category == ActionCategory().at(action) &&
                              ExpectedAllowed().count({std::string(RoleName(role)), action}) != 0;
        const Decision d = policy->Decide(Full(who, action, category));
        EXPECT_EQ(d.allowed, expected) << RoleName(role) << " " << action << " " << category
                                       << " -> " << d.rule << ": " << d.reason;
        if (d.allowed) {
          ++allowed;
          EXPECT_EQ(d.denial, Denial::kNone);
          EXPECT_NE(d.rule, "default-deny");
        } else if (category != ActionCategory().at(action) ||
                   ExpectedAllowed().count({std::string(RoleName(role)), action}) == 0) {
          EXPECT_EQ(d.denial, Denial::kNoRule);
          EXPECT_EQ(d.rule, "default-deny");
          EXPECT_FALSE(d.reason.empty());
        }
      }
    }
  }
  EXPECT_EQ(allowed, static_cast<int>(ExpectedAllowed().size()));
}

TEST(DefaultPolicy, OfficerLookupsNeedAPurpose) {
  auto policy = LoadDefault();
  ASSERT_NE(policy, nullptr);
  const Principal officer = Who(Role::kOfficer, {});
  for (const auto& [action, category] :
       std::vector<std::pair<std::string, std::string>>{{"plate.lookup", "plate_read"},
                                                        {"plate.crop", "plate_crop"},
                                                        {"traveller.lookup", "traveller_record"},
                                                        {"traveller.photo", "traveller_photo"}}) {
    AccessRequest r = Full(officer, action, category);
    r.purpose.clear();
    const Decision d = policy->Decide(r);
    EXPECT_FALSE(d.allowed) << action;
    EXPECT_EQ(d.denial, Denial::kPurposeRequired) << action;
    EXPECT_EQ(DenialCode(d.denial), "purpose_required");
    r.purpose = "case 2026-118";
    EXPECT_TRUE(policy->Decide(r).allowed) << action;
  }
  const Principal supervisor = Who(Role::kSupervisor, {});
  AccessRequest r = Full(supervisor, "plate.lookup", "plate_read");
  r.purpose.clear();
  EXPECT_EQ(policy->Decide(r).denial, Denial::kPurposeRequired);
}

TEST(DefaultPolicy, DevicesAreConfinedToTheirOwnLaneOrGate) {
  auto policy = LoadDefault();
  ASSERT_NE(policy, nullptr);
  const Principal lane7 = Who(Role::kLaneDevice, {"7"});
  AccessRequest r = Full(lane7, "plate.read", "plate_read");
  r.purpose.clear();
  r.ticket_valid = false;
  EXPECT_TRUE(policy->Decide(r).allowed);
  r.lane = "8";
  Decision d = policy->Decide(r);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.denial, Denial::kOutOfScope);
  EXPECT_EQ(d.rule, "lane-device-plate-read");

  const Principal gate = Who(Role::kGateDevice, {"B12"});
  r = Full(gate, "gallery.match", "match_decision");
  r.lane = "B12";
  EXPECT_TRUE(policy->Decide(r).allowed);
  r.lane = "B13";
  EXPECT_EQ(policy->Decide(r).denial, Denial::kOutOfScope);
  // A device with no scope at all reaches no lane.
  const Principal unscoped = Who(Role::kLaneDevice, {});
  r = Full(unscoped, "plate.read", "plate_read");
  EXPECT_EQ(policy->Decide(r).denial, Denial::kOutOfScope);
}

TEST(DefaultPolicy, VendorCropsNeedATicketAndALaneInScope) {
  auto policy = LoadDefault();
  ASSERT_NE(policy, nullptr);
  const Principal vendor = Who(Role::kVendor, {"7"});
  AccessRequest r = Full(vendor, "plate.crop", "plate_crop");
  r.purpose.clear();
  EXPECT_TRUE(policy->Decide(r).allowed);
  r.ticket_valid = false;
  Decision d = policy->Decide(r);
  EXPECT_EQ(d.denial, Denial::kTicketRequired);
  EXPECT_EQ(d.rule, "vendor-plate-crop");
  EXPECT_EQ(DenialCode(d.denial), "ticket_required");
  r.ticket_valid = true;
  r.lane = "9";
  d = policy->Decide(r);
  EXPECT_EQ(d.denial, Denial::kOutOfScope);
  EXPECT_EQ(DenialCode(d.denial), "out_of_scope");
}

TEST(DefaultPolicy, VendorNeverReachesTravellerData) {
  auto policy = LoadDefault();
  ASSERT_NE(policy, nullptr);
  const Principal vendor = Who(Role::kVendor, {"*"});
  for (std::string_view action : kActions) {
    for (std::string_view category :
         {"traveller_record", "traveller_photo", "face_template", "match_decision"}) {
      const Decision d = policy->Decide(Full(vendor, std::string(action), std::string(category)));
      EXPECT_FALSE(d.allowed) << action << " " << category;
      EXPECT_EQ(d.denial, Denial::kNoRule);
    }
  }
}

TEST(DefaultPolicy, NoPrincipalIsDenied) {
  auto policy = LoadDefault();
  ASSERT_NE(policy, nullptr);
  AccessRequest r;
  r.action = "stats.read";
  r.category = "aggregate_stats";
  const Decision d = policy->Decide(r);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.denial, Denial::kNoRule);
  EXPECT_EQ(d.rule, "default-deny");
}

// ---- Parsing and validation ----------------------------------------------------------------

std::string Doc(const std::string& rules) { return R"({"version": 1, "rules": [)" + rules + "]}"; }

std::string RuleJson(const std::string& id, const std::string& roles, const std::string& actions,
                     const std::string& categories, const std::string& purpose = "optional",
                     const std::string& scope = "any", const std::string& ticket = "none",
                     const std::string& extra = "") {
  return R"({"id": ")" + id + R"(", "roles": [)" + roles + R"(], "actions": [)" + actions +
         R"(], "categories": [)" + categories + R"(], "purpose": ")" + purpose +
         R"(", "scope": ")" + scope + R"(", "ticket": ")" + ticket + "\"" + extra + "}";
}

Status Parse(const std::string& json) {
  std::unique_ptr<AccessPolicy> policy;
  return ParsePolicy(json, &policy);
}

void ExpectInvalid(const std::string& json, const std::string& needle) {
  std::unique_ptr<AccessPolicy> policy;
  const Status s = ParsePolicy(json, &policy);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << json << "\n" << s.ToString();
  EXPECT_NE(s.message().find(needle), std::string::npos)
      << "'" << needle << "' not in: " << s.message();
  EXPECT_EQ(policy, nullptr);
}

TEST(PolicyParse, AMinimalPolicyParses) {
  EXPECT_TRUE(
      Parse(Doc(RuleJson("r1", R"("officer")", R"("stats.read")", R"("aggregate_stats")"))).ok());
  EXPECT_TRUE(Parse(Doc("")).ok());  // no rules: everything denied
}

TEST(PolicyParse, AnEmptyPolicyDeniesEverything) {
  std::unique_ptr<AccessPolicy> policy;
  ASSERT_TRUE(ParsePolicy(Doc(""), &policy).ok());
  const Principal admin = Who(Role::kAdmin);
  const Decision d = policy->Decide(Full(admin, "principal.manage", "principal"));
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, "default-deny");
}

TEST(PolicyParse, MalformedDocuments) {
  ExpectInvalid("", "malformed JSON");
  ExpectInvalid("{\"version\": 1, \"rules\": [", "malformed JSON");
  ExpectInvalid("[]", "must be an object");
  ExpectInvalid(R"({"rules": []})", "\"version\" must be 1");
  ExpectInvalid(R"({"version": 2, "rules": []})", "\"version\" must be 1");
  ExpectInvalid(R"({"version": "1", "rules": []})", "\"version\" must be 1");
  ExpectInvalid(R"({"version": 1})", "\"rules\" must be a list");
  ExpectInvalid(R"({"version": 1, "rules": {}})", "\"rules\" must be a list");
  ExpectInvalid(R"({"version": 1, "rules": [], "default": "allow"})", "unknown field \"default\"");
  ExpectInvalid(Doc("42"), "rule #1: not an object");
}

TEST(PolicyParse, RuleFieldErrorsNameTheRule) {
  const std::string ok_rest = R"("roles": ["officer"], "actions": ["stats.read"], )"
                              R"("categories": ["aggregate_stats"], "purpose": "optional", )"
                              R"("scope": "any", "ticket": "none")";
  ExpectInvalid(Doc("{" + ok_rest + "}"), "rule #1: missing string \"id\"");
  ExpectInvalid(Doc(R"({"id": "bad id!", )" + ok_rest + "}"), "must be 1-64 characters");
  ExpectInvalid(Doc(R"({"id": "r1", "extra": true, )" + ok_rest + "}"),
                "rule 'r1': unknown field \"extra\"");
  ExpectInvalid(Doc(RuleJson("r1", R"("officer")", R"("stats.read")", R"("aggregate_stats")",
                             "optional", "any", "none", R"(, "comment": 5)")),
                "\"comment\" must be a string");
  ExpectInvalid(Doc(RuleJson("r1", R"("constable")", R"("stats.read")", R"("aggregate_stats")")),
                "rule 'r1': unknown role 'constable'");
  ExpectInvalid(Doc(RuleJson("r1", R"("officer")", R"("stats.write")", R"("aggregate_stats")")),
                "rule 'r1': unknown action 'stats.write'");
  ExpectInvalid(Doc(RuleJson("r1", R"("officer")", R"("stats.read")", R"("stats")")),
                "rule 'r1': unknown category 'stats'");
  ExpectInvalid(Doc(RuleJson("r1", "", R"("stats.read")", R"("aggregate_stats")")),
                "rule 'r1': \"roles\" is empty");
  ExpectInvalid(Doc(RuleJson("r1", R"("officer")", "", R"("aggregate_stats")")),
                "rule 'r1': \"actions\" is empty");
  ExpectInvalid(Doc(RuleJson("r1", R"("officer")", R"("stats.read")", "")),
                "rule 'r1': \"categories\" is empty");
  ExpectInvalid(
      Doc(RuleJson("r1", R"("officer", "officer")", R"("stats.read")", R"("aggregate_stats")")),
      "lists 'officer' twice");
  ExpectInvalid(Doc(RuleJson("r1", "1", R"("stats.read")", R"("aggregate_stats")")),
                "must be a list of strings");
  ExpectInvalid(Doc(R"({"id": "r1", "roles": "officer", "actions": ["stats.read"],)"
                    R"( "categories": ["aggregate_stats"], "purpose": "optional",)"
                    R"( "scope": "any", "ticket": "none"})"),
                "\"roles\" must be a list of strings");
  ExpectInvalid(Doc(R"({"id": "r1", "actions": ["stats.read"], "categories": ["aggregate_stats"],)"
                    R"( "purpose": "optional", "scope": "any", "ticket": "none"})"),
                "rule 'r1': missing \"roles\"");
  ExpectInvalid(
      Doc(RuleJson("r1", R"("officer")", R"("stats.read")", R"("aggregate_stats")", "maybe")),
      "rule 'r1': \"purpose\" must be \"required\" or \"optional\"");
  ExpectInvalid(Doc(RuleJson("r1", R"("officer")", R"("stats.read")", R"("aggregate_stats")",
                             "optional", "gate")),
                "\"scope\" must be \"lane\" or \"any\"");
  ExpectInvalid(Doc(RuleJson("r1", R"("officer")", R"("stats.read")", R"("aggregate_stats")",
                             "optional", "any", "yes")),
                "\"ticket\" must be \"required\" or \"none\"");
  ExpectInvalid(Doc(R"({"id": "r1", "roles": ["officer"], "actions": ["stats.read"],)"
                    R"( "categories": ["aggregate_stats"], "scope": "any", "ticket": "none"})"),
                "rule 'r1': missing \"purpose\"");
}

TEST(PolicyParse, DuplicateIdsAreRefused) {
  const std::string rule =
      RuleJson("same", R"("officer")", R"("stats.read")", R"("aggregate_stats")");
  ExpectInvalid(Doc(rule + "," + rule), "rule 'same': duplicate id");
}

TEST(PolicyParse, LoadReportsAMissingFile) {
  std::unique_ptr<AccessPolicy> policy;
  const Status s = LoadPolicyFile("/nonexistent/policy.json", &policy);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(policy, nullptr);
}

// ---- Invariants no file can override ---------------------------------------------------------

TEST(PolicyInvariants, VendorNeverGetsTravellerCategories) {
  for (const char* category :
       {"traveller_record", "traveller_photo", "face_template", "match_decision"}) {
    ExpectInvalid(Doc(RuleJson("leak", R"("vendor")", R"("stats.read")",
                               std::string("\"") + category + "\"")),
                  "rule 'leak': grants role vendor the category '" + std::string(category) + "'");
    // Hiding the vendor among other roles changes nothing.
    ExpectInvalid(Doc(RuleJson("leak", R"("officer", "vendor")", R"("traveller.photo")",
                               std::string("\"") + category + "\"", "required")),
                  "grants role vendor the category");
  }
}

TEST(PolicyInvariants, VendorNeverGetsExportAuditPrincipalTicketOrPurge) {
  for (const char* action :
       {"export.request", "export.approve", "export.download", "export.read", "audit.export",
        "principal.manage", "ticket.grant", "retention.purge"}) {
    ExpectInvalid(Doc(RuleJson("leak", R"("vendor")", std::string("\"") + action + "\"",
                               R"("export", "audit_log", "principal", "ticket", "retention")")),
                  "rule 'leak': grants role vendor the action '" + std::string(action) + "'");
  }
}

TEST(PolicyInvariants, VendorPlateCropNeedsTicketAndLaneScope) {
  ExpectInvalid(Doc(RuleJson("crop", R"("vendor")", R"("plate.crop")", R"("plate_crop")",
                             "optional", "lane", "none")),
                "rule 'crop': a vendor rule with plate.crop needs");
  ExpectInvalid(Doc(RuleJson("crop", R"("vendor")", R"("plate.crop")", R"("plate_crop")",
                             "optional", "any", "required")),
                "rule 'crop': a vendor rule with plate.crop needs");
  EXPECT_TRUE(Parse(Doc(RuleJson("crop", R"("vendor")", R"("plate.crop")", R"("plate_crop")",
                                 "optional", "lane", "required")))
                  .ok());
}

TEST(PolicyInvariants, DeviceRulesAreLaneScoped) {
  ExpectInvalid(Doc(RuleJson("dev", R"("lane_device")", R"("plate.read")", R"("plate_read")")),
                "rule 'dev': a rule for role lane_device needs \"scope\": \"lane\"");
  ExpectInvalid(
      Doc(RuleJson("dev", R"("gate_device")", R"("gallery.match")", R"("match_decision")")),
      "rule 'dev': a rule for role gate_device needs \"scope\": \"lane\"");
}

// ---- Decide: one test per kind of outcome ----------------------------------------------------

TEST(PolicyDecide, AllowNamesTheRule) {
  std::unique_ptr<AccessPolicy> policy;
  ASSERT_TRUE(ParsePolicy(Doc(RuleJson("r-stats", R"("auditor")", R"("stats.read")",
                                       R"("aggregate_stats")")),
                          &policy)
                  .ok());
  const Principal auditor = Who(Role::kAuditor, {});
  AccessRequest r = Full(auditor, "stats.read", "aggregate_stats");
  r.purpose.clear();
  const Decision d = policy->Decide(r);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.denial, Denial::kNone);
  EXPECT_EQ(d.rule, "r-stats");
}

TEST(PolicyDecide, ALaterRuleCanAllowWhatAnEarlierOneRefuses) {
  // A strict rule first, a lax one for the same triple after: any matching rule that holds allows.
  std::unique_ptr<AccessPolicy> policy;
  ASSERT_TRUE(
      ParsePolicy(
          Doc(RuleJson("strict", R"("officer")", R"("plate.lookup")", R"("plate_read")",
                       "required") +
              "," + RuleJson("lax", R"("officer")", R"("plate.lookup")", R"("plate_read")")),
          &policy)
          .ok());
  const Principal officer = Who(Role::kOfficer);
  AccessRequest r = Full(officer, "plate.lookup", "plate_read");
  r.purpose.clear();
  const Decision d = policy->Decide(r);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.rule, "lax");
}

TEST(PolicyDecide, EachDenialKind) {
  std::unique_ptr<AccessPolicy> policy;
  ASSERT_TRUE(ParsePolicy(Doc(RuleJson("p", R"("officer")", R"("plate.lookup")", R"("plate_read")",
                                       "required") +
                              "," +
                              RuleJson("s", R"("lane_device")", R"("plate.read")",
                                       R"("plate_read")", "optional", "lane") +
                              "," +
                              RuleJson("t", R"("vendor")", R"("plate.crop")", R"("plate_crop")",
                                       "optional", "lane", "required")),
                          &policy)
                  .ok());
  const Principal officer = Who(Role::kOfficer);
  AccessRequest r = Full(officer, "plate.lookup", "plate_read");
  r.purpose.clear();
  Decision d = policy->Decide(r);
  EXPECT_EQ(d.denial, Denial::kPurposeRequired);
  EXPECT_EQ(d.rule, "p");
  EXPECT_NE(d.reason.find("purpose"), std::string::npos);

  const Principal lane = Who(Role::kLaneDevice, {"1", "2"});
  r = Full(lane, "plate.read", "plate_read");
  r.lane = "3";
  d = policy->Decide(r);
  EXPECT_EQ(d.denial, Denial::kOutOfScope);
  EXPECT_EQ(d.rule, "s");
  EXPECT_NE(d.reason.find("'3'"), std::string::npos);
  // No lane in the request: nothing to be out of scope of.
  r.lane.clear();
  EXPECT_TRUE(policy->Decide(r).allowed);
  // "*" covers every lane.
  const Principal everywhere = Who(Role::kLaneDevice, {"*"});
  r = Full(everywhere, "plate.read", "plate_read");
  r.lane = "99";
  EXPECT_TRUE(policy->Decide(r).allowed);

  const Principal vendor = Who(Role::kVendor);
  r = Full(vendor, "plate.crop", "plate_crop");
  r.ticket_valid = false;
  d = policy->Decide(r);
  EXPECT_EQ(d.denial, Denial::kTicketRequired);
  EXPECT_EQ(d.rule, "t");

  // No rule for the role x action x category: default deny.
  r = Full(vendor, "plate.lookup", "plate_read");
  d = policy->Decide(r);
  EXPECT_EQ(d.denial, Denial::kNoRule);
  EXPECT_EQ(d.rule, "default-deny");
  EXPECT_EQ(DenialCode(d.denial), "forbidden");
  // Right role and action, wrong category: also no rule.
  r = Full(officer, "plate.lookup", "plate_crop");
  EXPECT_EQ(policy->Decide(r).denial, Denial::kNoRule);
}

TEST(PolicyDecide, IsPure) {
  auto policy = LoadDefault();
  ASSERT_NE(policy, nullptr);
  const Principal officer = Who(Role::kOfficer);
  AccessRequest r = Full(officer, "plate.lookup", "plate_read");
  const Decision a = policy->Decide(r);
  const Decision b = policy->Decide(r);
  EXPECT_EQ(a.allowed, b.allowed);
  EXPECT_EQ(a.rule, b.rule);
  EXPECT_EQ(a.reason, b.reason);
}

TEST(PolicyNames, RolesRoundTrip) {
  for (Role role : kAllRoles) {
    Role parsed = Role::kAdmin;
    ASSERT_TRUE(ParseRole(RoleName(role), &parsed).ok());
    EXPECT_EQ(parsed, role);
  }
  Role parsed = Role::kAdmin;
  EXPECT_EQ(ParseRole("Officer", &parsed).code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace portcullis::policy
