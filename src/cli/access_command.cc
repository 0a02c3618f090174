#include "cli/access_command.h"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "portcullis/access_store.h"
#include "portcullis/policy.h"

namespace portcullis::cli {
namespace {

using nlohmann::json;

struct AccessFlags {
  std::string store;
  bool json = false;
  std::string name;
  std::string role;
  std::vector<std::string> scope;
  std::string ttl = "0";
  std::string state;
  std::string sha256;
};

// A refusal because of what the store holds, not because of the command line.
struct Conflict {
  std::string message;
};

int Fail(const AccessFlags& flags, const std::string& command, const Status& s) {
  const int code = s.code() == Status::Code::kInvalidArgument ? kExitUsage : ExitCodeForInput(s);
  if (flags.json) {
    std::printf("%s\n", json{{"command", command},
                             {"error", s.ToString()},
                             {"error_code", ErrorCodeName(s.code(), ErrorVocabulary::kGeneric)}}
                            .dump()
                            .c_str());
  }
  std::fprintf(stderr, "portcullis access %s: %s\n", command.c_str(), s.ToString().c_str());
  return code;
}

int FailConflict(const AccessFlags& flags, const std::string& command, const Conflict& c) {
  if (flags.json) {
    std::printf("%s\n", json{{"command", command}, {"error", c.message}, {"error_code", "conflict"}}
                            .dump()
                            .c_str());
  }
  std::fprintf(stderr, "portcullis access %s: %s\n", command.c_str(), c.message.c_str());
  return kExitConflict;
}

void Emit(const json& record) {
  std::printf("%s\n", record.dump().c_str());
  std::fflush(stdout);
}

// "30d", "12h", "90m", "3600s"; "0" or "never": no expiry.
Status ParseTtl(const std::string& text, std::int64_t* micros) {
  if (text == "0" || text == "never") {
    *micros = 0;
    return Status::Ok();
  }
  Status bad = Status::InvalidArgument("--ttl '" + text +
                                       "': expected a number with s, m, h or d (e.g. 30d), "
                                       "or 'never'");
  if (text.size() < 2 || text.size() > 8) return bad;
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return bad;
  }
  std::int64_t value = 0;
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return bad;
    value = value * 10 + (text[i] - '0');
  }
  if (value <= 0 || value * unit > 10LL * 365 * 86400) return bad;
  *micros = value * unit * 1000 * 1000;
  return Status::Ok();
}

Status Open(const AccessFlags& flags, std::unique_ptr<policy::AccessStore>* store) {
  return policy::OpenAccessStore(flags.store, {}, store);
}

json PrincipalJson(const std::string& command, const policy::PrincipalInfo& p) {
  return {{"command", command},
          {"name", p.principal.name},
          {"role", policy::RoleName(p.principal.role)},
          {"scope", p.principal.scope},
          {"token_prefix", p.token_prefix},
          {"created_micros", p.created_micros},
          {"expires_micros", p.expires_micros},
          {"revoked", p.revoked},
          {"error", nullptr}};
}

Status Lookup(policy::AccessStore* store, const std::string& name, bool* found,
              policy::PrincipalInfo* info) {
  std::vector<policy::PrincipalInfo> all;
  PORTCULLIS_RETURN_IF_ERROR(store->ListPrincipals(&all));
  *found = false;
  for (policy::PrincipalInfo& p : all) {
    if (p.principal.name == name) {
      *found = true;
      *info = std::move(p);
    }
  }
  return Status::Ok();
}

// The token goes to stdout alone (so `TOKEN=$(portcullis access ...)` works); the words to stderr.
int PrintIssued(const AccessFlags& flags, const std::string& command, policy::AccessStore* store,
                const std::string& name, const std::string& token) {
  policy::PrincipalInfo info;
  bool found = false;
  const Status s = Lookup(store, name, &found, &info);
  if (!s.ok()) return Fail(flags, command, s);
  if (flags.json) {
    json record = PrincipalJson(command, info);
    record["token"] = token;
    Emit(record);
  } else {
    std::fprintf(stderr,
                 "%s (%s): new token below; it is shown only this once, the store keeps its hash\n",
                 name.c_str(), std::string(policy::RoleName(info.principal.role)).c_str());
    std::printf("%s\n", token.c_str());
  }
  return kExitOk;
}

int RunInit(const AccessFlags& flags) {
  const std::string command = "init";
  std::int64_t ttl = 0;
  Status s = ParseTtl(flags.ttl, &ttl);
  std::unique_ptr<policy::AccessStore> store;
  if (s.ok()) s = Open(flags, &store);
  std::vector<policy::PrincipalInfo> all;
  if (s.ok()) s = store->ListPrincipals(&all);
  if (!s.ok()) return Fail(flags, command, s);
  // Bootstrap only: once anyone exists, admins are made through the API (audited) or
  // `principal add` by someone who can already reach the store.
  if (!all.empty()) {
    return FailConflict(flags, command,
                        {"the access store already has " + std::to_string(all.size()) +
                         " principal(s); init only bootstraps an empty store"});
  }
  std::string token;
  s = store->CreatePrincipal({flags.name, policy::Role::kAdmin, {"*"}, ttl}, &token);
  if (!s.ok()) return Fail(flags, command, s);
  return PrintIssued(flags, command, store.get(), flags.name, token);
}

int RunAdd(const AccessFlags& flags) {
  const std::string command = "principal add";
  policy::NewPrincipal p;
  p.name = flags.name;
  p.scope = flags.scope;
  Status s = policy::ParseRole(flags.role, &p.role);
  if (s.ok()) s = ParseTtl(flags.ttl, &p.token_ttl_micros);
  std::unique_ptr<policy::AccessStore> store;
  if (s.ok()) s = Open(flags, &store);
  bool found = false;
  policy::PrincipalInfo existing;
  if (s.ok()) s = Lookup(store.get(), p.name, &found, &existing);
  if (!s.ok()) return Fail(flags, command, s);
  if (found) return FailConflict(flags, command, {"principal '" + p.name + "' already exists"});
  std::string token;
  s = store->CreatePrincipal(p, &token);
  if (!s.ok()) return Fail(flags, command, s);
  return PrintIssued(flags, command, store.get(), p.name, token);
}

int RunList(const AccessFlags& flags) {
  const std::string command = "principal list";
  std::unique_ptr<policy::AccessStore> store;
  Status s = Open(flags, &store);
  std::vector<policy::PrincipalInfo> all;
  if (s.ok()) s = store->ListPrincipals(&all);
  if (!s.ok()) return Fail(flags, command, s);
  for (const policy::PrincipalInfo& p : all) {
    if (flags.json) {
      Emit(PrincipalJson(command, p));
    } else {
      std::string scope;
      for (const std::string& lane : p.principal.scope) scope += (scope.empty() ? "" : ",") + lane;
      std::printf("%-32s %-12s %-16s scope=%s%s\n", p.principal.name.c_str(),
                  std::string(policy::RoleName(p.principal.role)).c_str(), p.token_prefix.c_str(),
                  scope.empty() ? "-" : scope.c_str(), p.revoked ? " REVOKED" : "");
    }
  }
  return kExitOk;
}

int RunRevoke(const AccessFlags& flags) {
  const std::string command = "principal revoke";
  std::unique_ptr<policy::AccessStore> store;
  Status s = Open(flags, &store);
  if (s.ok()) s = store->RevokePrincipal(flags.name);
  if (!s.ok()) return Fail(flags, command, s);
  if (flags.json) {
    Emit({{"command", command}, {"name", flags.name}, {"revoked", true}, {"error", nullptr}});
  } else {
    std::printf("%s revoked\n", flags.name.c_str());
  }
  return kExitOk;
}

int RunRotate(const AccessFlags& flags) {
  const std::string command = "principal rotate";
  std::int64_t ttl = 0;
  Status s = ParseTtl(flags.ttl, &ttl);
  std::unique_ptr<policy::AccessStore> store;
  if (s.ok()) s = Open(flags, &store);
  bool found = false;
  policy::PrincipalInfo existing;
  if (s.ok()) s = Lookup(store.get(), flags.name, &found, &existing);
  if (s.ok() && !found) s = Status::NotFound("no principal '" + flags.name + "'");
  if (!s.ok()) return Fail(flags, command, s);
  if (existing.revoked) {
    return FailConflict(flags, command,
                        {"principal '" + flags.name + "' is revoked; add a new principal"});
  }
  std::string token;
  s = store->RotateToken(flags.name, ttl, &token);
  if (!s.ok()) return Fail(flags, command, s);
  return PrintIssued(flags, command, store.get(), flags.name, token);
}

int RunTickets(const AccessFlags& flags) {
  const std::string command = "ticket list";
  std::unique_ptr<policy::AccessStore> store;
  Status s = Open(flags, &store);
  std::vector<policy::TicketInfo> all;
  if (s.ok()) s = store->ListTickets(&all);
  if (!s.ok()) return Fail(flags, command, s);
  for (const policy::TicketInfo& t : all) {
    if (flags.json) {
      Emit({{"command", command},
            {"id", t.id},
            {"vendor", t.vendor},
            {"lane", t.lane},
            {"granted_by", t.granted_by},
            {"reason", t.reason},
            {"max_uses", t.max_uses},
            {"used", t.used},
            {"created_micros", t.created_micros},
            {"expires_micros", t.expires_micros},
            {"error", nullptr}});
    } else {
      std::printf("%s %s lane %s: %u/%u used, granted by %s: %s\n", t.id.c_str(), t.vendor.c_str(),
                  t.lane.c_str(), t.used, t.max_uses, t.granted_by.c_str(), t.reason.c_str());
    }
  }
  return kExitOk;
}

json ExportJson(const std::string& command, const policy::ExportInfo& e) {
  return {{"command", command},
          {"id", e.id},
          {"state", policy::ExportStateName(e.state)},
          {"requested_by", e.requested_by},
          {"approved_by", e.approved_by},
          {"lane", e.request.lane},
          {"record_types", e.request.record_types},
          {"from_micros", e.request.from_micros},
          {"until_micros", e.request.until_micros},
          {"reason", e.request.reason},
          {"created_micros", e.created_micros},
          {"approved_micros", e.approved_micros},
          {"window_ends_micros", e.window_ends_micros},
          {"error", nullptr}};
}

int RunExports(const AccessFlags& flags) {
  const std::string command = "export list";
  std::unique_ptr<policy::AccessStore> store;
  Status s = Open(flags, &store);
  std::vector<policy::ExportInfo> all;
  if (s.ok()) s = store->ListExports(&all);
  if (!s.ok()) return Fail(flags, command, s);
  for (const policy::ExportInfo& e : all) {
    if (!flags.state.empty() && policy::ExportStateName(e.state) != flags.state) continue;
    if (flags.json) {
      Emit(ExportJson(command, e));
    } else {
      std::printf("%s %-10s requested by %s, approved by %s: %s\n", e.id.c_str(),
                  std::string(policy::ExportStateName(e.state)).c_str(), e.requested_by.c_str(),
                  e.approved_by.empty() ? "-" : e.approved_by.c_str(), e.request.reason.c_str());
    }
  }
  return kExitOk;
}

int RunFingerprint(const AccessFlags& flags) {
  const std::string command = "fingerprint";
  std::unique_ptr<policy::AccessStore> store;
  Status s = Open(flags, &store);
  std::vector<std::string> ids;
  if (s.ok()) s = store->FindExportedFile(flags.sha256, &ids);
  json exports = json::array();
  for (const std::string& id : ids) {
    policy::ExportInfo info;
    if (s.ok()) s = store->GetExport(id, &info);
    if (s.ok()) {
      json e = ExportJson(command, info);
      e.erase("command");
      e.erase("error");
      exports.push_back(e);
    }
  }
  if (!s.ok()) return Fail(flags, command, s);
  if (flags.json) {
    Emit(
        {{"command", command}, {"sha256", flags.sha256}, {"exports", exports}, {"error", nullptr}});
  } else if (exports.empty()) {
    std::printf("%s: handed out by no export\n", flags.sha256.c_str());
  } else {
    for (const json& e : exports) {
      std::printf("%s: export %s, requested by %s, approved by %s\n", flags.sha256.c_str(),
                  e["id"].get<std::string>().c_str(), e["requested_by"].get<std::string>().c_str(),
                  e["approved_by"].get<std::string>().c_str());
    }
  }
  return kExitOk;
}

}  // namespace

void AddAccessCommands(CLI::App& app, int* exit_code) {
  CLI::App* access = app.add_subcommand("access", "Principals, tokens, tickets and exports");
  access->require_subcommand(1);
  auto flags = std::make_shared<AccessFlags>();
  auto common = [flags](CLI::App* cmd) {
    cmd->add_option("--store", flags->store, "Access store: sqlite:PATH or postgresql://...")
        ->required();
    cmd->add_flag("--json", flags->json, "JSON Lines on stdout");
  };

  CLI::App* init = access->add_subcommand("init", "Create the first admin of an empty store");
  common(init);
  init->add_option("--admin", flags->name, "The admin's principal name, e.g. admin:root")
      ->required();
  init->add_option("--ttl", flags->ttl, "Token lifetime: 30d, 12h, 90m, 3600s or never");
  init->callback([flags, exit_code] { *exit_code = RunInit(*flags); });

  CLI::App* principal = access->add_subcommand("principal", "Principals and their tokens");
  principal->require_subcommand(1);
  CLI::App* add = principal->add_subcommand("add", "Create a principal; prints its token once");
  common(add);
  add->add_option("--name", flags->name, "e.g. lane:7, officer:1234, vendor:acme")->required();
  add->add_option("--role", flags->role,
                  "lane_device, gate_device, officer, supervisor, vendor, auditor, admin")
      ->required();
  add->add_option("--scope", flags->scope, "A lane or gate it may act on (repeat; * for all)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  add->add_option("--ttl", flags->ttl, "Token lifetime: 30d, 12h, 90m, 3600s or never");
  add->callback([flags, exit_code] { *exit_code = RunAdd(*flags); });

  CLI::App* list = principal->add_subcommand("list", "List principals (never tokens)");
  common(list);
  list->callback([flags, exit_code] { *exit_code = RunList(*flags); });

  CLI::App* revoke = principal->add_subcommand("revoke", "Revoke a principal's token for good");
  common(revoke);
  revoke->add_option("--name", flags->name, "The principal")->required();
  revoke->callback([flags, exit_code] { *exit_code = RunRevoke(*flags); });

  CLI::App* rotate = principal->add_subcommand("rotate", "Issue a new token; the old one dies");
  common(rotate);
  rotate->add_option("--name", flags->name, "The principal")->required();
  rotate->add_option("--ttl", flags->ttl, "Token lifetime: 30d, 12h, 90m, 3600s or never");
  rotate->callback([flags, exit_code] { *exit_code = RunRotate(*flags); });

  CLI::App* ticket = access->add_subcommand("ticket", "Vendor tickets");
  ticket->require_subcommand(1);
  CLI::App* tickets = ticket->add_subcommand("list", "List vendor tickets");
  common(tickets);
  tickets->callback([flags, exit_code] { *exit_code = RunTickets(*flags); });

  CLI::App* exp = access->add_subcommand("export", "Two-person exports");
  exp->require_subcommand(1);
  CLI::App* exports = exp->add_subcommand("list", "List export requests");
  common(exports);
  exports->add_option("--state", flags->state, "Only this state")
      ->check(CLI::IsMember({"pending", "approved", "downloaded", "expired", "rejected"}));
  exports->callback([flags, exit_code] { *exit_code = RunExports(*flags); });

  CLI::App* fingerprint =
      access->add_subcommand("fingerprint", "Which exports handed out a file (its SHA-256)");
  common(fingerprint);
  fingerprint->add_option("sha256", flags->sha256, "64 lower-case hex digits")->required();
  fingerprint->callback([flags, exit_code] { *exit_code = RunFingerprint(*flags); });
}

}  // namespace portcullis::cli
