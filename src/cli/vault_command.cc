#include "cli/vault_command.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "lane/ingest_key.h"
#include "portcullis/audit.h"
#include "portcullis/env.h"
#include "portcullis/vault.h"

namespace portcullis::cli {
namespace {

using vault::AccessContext;
using vault::RecordMeta;

// Secrets never travel on the command line (argv is world-readable in /proc).
constexpr const char* kSecretVariable = "PORTCULLIS_VAULT_SECRET";
// Files larger than this are refused by `vault put` (the vault is for images, not archives).
constexpr std::size_t kMaxPutBytes = 256u << 20;

struct VaultFlags {
  std::string store;
  std::string keys;
  std::string audit_log;
  std::string audit_keys;
  std::string retention;
  std::string secret_file;
  std::string principal;
  std::string role;
  std::string purpose;
  bool json = false;
  // put
  std::string type;
  std::string subject;
  std::string content_type = "application/octet-stream";
  std::vector<std::string> labels;
  std::vector<std::string> files;
  // get
  std::string id;
  std::string out;
  // list
  std::string filter_type;
  std::string filter_subject;
  std::size_t limit = 100;
  // purge / rotate
  bool dry_run = false;
  std::string kek;
  // ingest-key
  std::string key_file;
  std::string public_out;
};

// sqlite:PATH keeps its keyring and audit log beside it unless told otherwise.
std::string SqlitePath(const std::string& store) {
  const std::string prefix = "sqlite:";
  return store.rfind(prefix, 0) == 0 ? store.substr(prefix.size()) : "";
}

Status ResolveDefaults(VaultFlags* flags) {
  const std::string base = SqlitePath(flags->store);
  if (flags->keys.empty()) {
    if (base.empty()) return Status::InvalidArgument("--keys is required for this store");
    flags->keys = "keyring:" + base + ".keyring";
  }
  if (flags->audit_log.empty()) {
    if (base.empty()) return Status::InvalidArgument("--audit-log is required for this store");
    flags->audit_log = base + ".audit";
  }
  if (flags->audit_keys.empty()) flags->audit_keys = flags->audit_log + "-keys";
  return Status::Ok();
}

Status ReadSecret(Env* env, const VaultFlags& flags, std::string* secret) {
  if (!flags.secret_file.empty()) {
    PORTCULLIS_RETURN_IF_ERROR(env->ReadFile(flags.secret_file, 4096, secret));
    while (!secret->empty() && (secret->back() == '\n' || secret->back() == '\r')) {
      secret->pop_back();
    }
  } else if (const char* value = std::getenv(kSecretVariable); value != nullptr) {
    *secret = value;
  }
  if (secret->empty()) {
    return Status::InvalidArgument(std::string("no key secret: set ") + kSecretVariable +
                                   " or pass --secret-file");
  }
  return Status::Ok();
}

int ExitCodeFor(const Status& s) {
  if (s.code() == Status::Code::kInvalidArgument) return kExitUsage;
  return ExitCodeForInput(s);
}

int Fail(const VaultFlags& flags, const std::string& command, const Status& s) {
  if (flags.json) {
    nlohmann::json record = {{"command", command},
                             {"error", s.ToString()},
                             {"error_code", ErrorCodeName(s.code(), ErrorVocabulary::kGeneric)}};
    std::printf("%s\n", record.dump().c_str());
  }
  std::fprintf(stderr, "portcullis vault %s: %s\n", command.c_str(), s.ToString().c_str());
  return ExitCodeFor(s);
}

nlohmann::json MetaToJson(const RecordMeta& meta) {
  return {{"id", meta.id},
          {"type", std::string(vault::RecordTypeName(meta.type))},
          {"subject", std::string(vault::SubjectCategoryName(meta.subject))},
          {"retention_class", meta.retention_class},
          {"content_type", meta.content_type},
          {"created_micros", meta.created_micros},
          {"expires_micros", meta.expires_micros},
          {"labels", meta.labels},
          {"size", meta.size}};
}

// "2026-12-27 03:15:30 UTC", for people; JSON keeps the microseconds.
std::string UtcTime(std::int64_t micros) {
  const auto seconds = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  char text[32] = "?";
  if (::gmtime_r(&seconds, &tm) != nullptr) {
    std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &tm);
  }
  return text;
}

void Emit(const nlohmann::json& record) {
  std::printf("%s\n", record.dump().c_str());
  std::fflush(stdout);
}

// Everything a vault command needs open: the audit log first (no log, no vault), then the vault.
struct OpenVault {
  std::unique_ptr<audit::AuditLog> log;
  std::unique_ptr<vault::Vault> vault;
  AccessContext ctx;
};

Status Open(VaultFlags* flags, OpenVault* open, bool create = false) {
  Env* env = Env::Default();
  PORTCULLIS_RETURN_IF_ERROR(ResolveDefaults(flags));
  audit::LogKeys keys;
  PORTCULLIS_RETURN_IF_ERROR(audit::LoadLogKeys(flags->audit_keys, &keys));
  PORTCULLIS_RETURN_IF_ERROR(audit::AuditLog::Open(flags->audit_log, keys, {}, &open->log));
  vault::VaultOptions options;
  options.store_uri = flags->store;
  options.key_uri = flags->keys;
  PORTCULLIS_RETURN_IF_ERROR(ReadSecret(env, *flags, &options.key_secret));
  options.key_options.create_if_missing = create;
  options.retention_path = flags->retention;
  options.audit = open->log.get();
  options.env = env;
  PORTCULLIS_RETURN_IF_ERROR(vault::Vault::Open(options, &open->vault));
  open->ctx = {flags->principal, flags->role, flags->purpose};
  return Status::Ok();
}

int RunInit(VaultFlags& flags) {
  Env* env = Env::Default();
  Status s = ResolveDefaults(&flags);
  // The keyring and the audit keys are created only when absent: init never replaces a key.
  if (s.ok() && env->KindOf(flags.audit_keys) == FileKind::kMissing) {
    s = audit::GenerateKeys(flags.audit_keys);
  }
  OpenVault open;
  if (s.ok()) s = Open(&flags, &open, /*create=*/true);
  if (!s.ok()) return Fail(flags, "init", s);
  audit::LogKeys keys;
  s = audit::LoadLogKeys(flags.audit_keys, &keys);
  if (!s.ok()) return Fail(flags, "init", s);
  const nlohmann::json record = {{"command", "init"},
                                 {"store", flags.store},
                                 {"keys", flags.keys},
                                 {"audit_log", flags.audit_log},
                                 {"audit_public_key", audit::HashToHex(keys.public_key())},
                                 {"error", nullptr}};
  if (flags.json) {
    Emit(record);
  } else {
    std::printf("vault ready: store %s, keys %s, audit log %s\n", flags.store.c_str(),
                flags.keys.c_str(), flags.audit_log.c_str());
  }
  return kExitOk;
}

Status ParseLabels(const std::vector<std::string>& labels,
                   std::map<std::string, std::string>* out) {
  for (const std::string& label : labels) {
    const std::size_t eq = label.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument("label '" + label + "' is not KEY=VALUE");
    }
    (*out)[label.substr(0, eq)] = label.substr(eq + 1);
  }
  return Status::Ok();
}

int RunPut(VaultFlags& flags) {
  Env* env = Env::Default();
  vault::NewRecord base;
  Status s = vault::ParseRecordType(flags.type, &base.type);
  if (s.ok()) s = vault::ParseSubjectCategory(flags.subject, &base.subject);
  if (s.ok()) s = ParseLabels(flags.labels, &base.labels);
  base.content_type = flags.content_type;
  std::vector<std::string> bodies(flags.files.size());
  for (std::size_t i = 0; s.ok() && i < flags.files.size(); ++i) {
    s = env->ReadFile(flags.files[i], kMaxPutBytes, &bodies[i]);
    if (!s.ok()) s = s.WithContext(flags.files[i]);
  }
  OpenVault open;
  if (s.ok()) s = Open(&flags, &open);
  std::vector<vault::NewRecord> records;
  for (const std::string& body : bodies) {
    records.push_back(base);
    records.back().body = body;
  }
  std::vector<RecordMeta> metas;
  if (s.ok()) s = open.vault->PutBatch(open.ctx, records, &metas);
  if (!s.ok()) return Fail(flags, "put", s);
  for (std::size_t i = 0; i < metas.size(); ++i) {
    nlohmann::json record = MetaToJson(metas[i]);
    record["file"] = flags.files[i];
    record["error"] = nullptr;
    if (flags.json) {
      Emit(record);
    } else {
      std::printf("%s: stored as %s (%s, expires %s)\n", flags.files[i].c_str(),
                  metas[i].id.c_str(), metas[i].retention_class.c_str(),
                  UtcTime(metas[i].expires_micros).c_str());
    }
  }
  return kExitOk;
}

int RunGet(VaultFlags& flags) {
  OpenVault open;
  Status s = Open(&flags, &open);
  RecordMeta meta;
  std::string body;
  if (s.ok()) s = open.vault->Get(open.ctx, flags.id, &meta, &body);
  if (s.ok() && flags.out != "-") s = Env::Default()->WriteFileAtomic(flags.out, body);
  if (!s.ok()) return Fail(flags, "get", s);
  if (flags.out == "-") {
    std::fwrite(body.data(), 1, body.size(), stdout);
    return kExitOk;
  }
  nlohmann::json record = MetaToJson(meta);
  record["out"] = flags.out;
  record["error"] = nullptr;
  if (flags.json) {
    Emit(record);
  } else {
    std::printf("%s: %llu bytes written to %s\n", meta.id.c_str(),
                static_cast<unsigned long long>(meta.size), flags.out.c_str());
  }
  return kExitOk;
}

int RunList(VaultFlags& flags) {
  OpenVault open;
  Status s = Open(&flags, &open);
  vault::RecordFilter filter;
  filter.limit = flags.limit;
  if (s.ok() && !flags.filter_type.empty()) {
    vault::RecordType type{};
    s = vault::ParseRecordType(flags.filter_type, &type);
    filter.type = type;
  }
  if (s.ok() && !flags.filter_subject.empty()) {
    vault::SubjectCategory subject{};
    s = vault::ParseSubjectCategory(flags.filter_subject, &subject);
    filter.subject = subject;
  }
  vault::RecordPage page;
  if (s.ok()) s = open.vault->List(open.ctx, filter, &page);
  if (!s.ok()) return Fail(flags, "list", s);
  for (const RecordMeta& meta : page.records) {
    if (flags.json) {
      Emit(MetaToJson(meta));
    } else {
      std::printf("%s  %-14s %-11s %-16s %8llu bytes\n", meta.id.c_str(),
                  std::string(vault::RecordTypeName(meta.type)).c_str(),
                  std::string(vault::SubjectCategoryName(meta.subject)).c_str(),
                  meta.retention_class.c_str(), static_cast<unsigned long long>(meta.size));
    }
  }
  return kExitOk;
}

int RunPurge(VaultFlags& flags) {
  OpenVault open;
  Status s = Open(&flags, &open);
  vault::PurgeReport report;
  if (s.ok()) s = open.vault->Purge(open.ctx, flags.dry_run, &report);
  if (!s.ok()) return Fail(flags, "purge", s);
  if (flags.json) {
    Emit({{"command", "purge"},
          {"dry_run", report.dry_run},
          {"keks", report.keks},
          {"records", report.records},
          {"error", nullptr}});
  } else {
    std::printf("%s %zu key(s), %zu record(s)\n", flags.dry_run ? "would shred" : "shredded",
                report.keks.size(), report.records.size());
    for (const std::string& kek : report.keks) std::printf("  key %s\n", kek.c_str());
  }
  return kExitOk;
}

int RunRotate(VaultFlags& flags) {
  OpenVault open;
  Status s = Open(&flags, &open);
  std::vector<std::string> keks;
  if (s.ok()) {
    if (flags.kek.empty()) {
      s = open.vault->ListKeks(open.ctx, &keks);
    } else {
      keks.push_back(flags.kek);
    }
  }
  std::vector<vault::RotateReport> reports;
  for (std::size_t i = 0; s.ok() && i < keks.size(); ++i) {
    vault::RotateReport report;
    s = open.vault->Rotate(open.ctx, keks[i], &report);
    reports.push_back(report);
  }
  if (!s.ok()) return Fail(flags, "rotate", s);
  for (const vault::RotateReport& report : reports) {
    if (flags.json) {
      Emit({{"command", "rotate"},
            {"old_kek", report.old_kek},
            {"new_kek", report.new_kek},
            {"rewrapped", report.rewrapped},
            {"error", nullptr}});
    } else {
      std::printf("%s -> %s: %llu data key(s) re-wrapped\n", report.old_kek.c_str(),
                  report.new_kek.c_str(), static_cast<unsigned long long>(report.rewrapped));
    }
  }
  return kExitOk;
}

// The lane agents' ingest key pair (docs/lane-link.md): created once, then only loaded, so running
// it again is harmless and prints the same public key (what each lane agent is configured with).
int RunIngestKey(VaultFlags& flags) {
  Env* env = Env::Default();
  std::string secret;
  Status s = ReadSecret(env, flags, &secret);
  std::unique_ptr<vault::KeyProvider> provider;
  if (s.ok()) {
    vault::KeyProviderOptions options;
    options.env = env;
    s = vault::OpenKeyProvider(flags.keys, secret, options, &provider);
  }
  lane::IngestKeyPair pair;
  bool created = false;
  if (s.ok()) s = lane::EnsureIngestKeyPair(flags.key_file, *provider, &pair, &created, env);
  const std::string public_key = s.ok() ? lane::FormatIngestPublicKey(pair.public_key) : "";
  if (s.ok())
    s = env->WriteFileAtomic(flags.public_out, public_key + "\n").WithContext(flags.public_out);
  if (!s.ok()) return Fail(flags, "ingest-key", s);
  if (flags.json) {
    Emit({{"command", "ingest-key"},
          {"created", created},
          {"key_file", flags.key_file},
          {"kek", pair.kek_id},
          {"keys", provider->Describe()},
          {"public_key", public_key},
          {"public_out", flags.public_out}});
  } else {
    std::printf("%s ingest key %s (secret wrapped by KEK %s of %s)\n%s -> %s\n",
                created ? "created" : "loaded", flags.key_file.c_str(), pair.kek_id.c_str(),
                provider->Describe().c_str(), public_key.c_str(), flags.public_out.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddVaultCommands(CLI::App& app, int* exit_code) {
  CLI::App* vault_cmd = app.add_subcommand("vault", "The encrypted, audited record store");
  vault_cmd->require_subcommand(1);
  auto flags = std::make_shared<VaultFlags>();

  auto add_common = [flags](CLI::App* cmd) {
    cmd->add_option("--store", flags->store, "sqlite:PATH or postgresql://...")->required();
    cmd->add_option("--keys", flags->keys,
                    "keyring:PATH or pkcs11:LABEL (default for sqlite:PATH: keyring:PATH.keyring)");
    cmd->add_option("--audit-log", flags->audit_log,
                    "Audit log directory (default for sqlite:PATH: PATH.audit)");
    cmd->add_option("--audit-keys", flags->audit_keys,
                    "Audit signing keys directory (default: AUDIT_LOG-keys)");
    cmd->add_option("--retention", flags->retention, "Retention rules (default: shipped rules)");
    cmd->add_option(
        "--secret-file", flags->secret_file,
        std::string("Keyring passphrase / token PIN file (default: $") + kSecretVariable + ")");
    cmd->add_option("--as", flags->principal, "Who is asking (e.g. officer:1234)")->required();
    cmd->add_option("--role", flags->role, "In which role (officer, admin, auditor, ...)")
        ->required();
    cmd->add_option("--purpose", flags->purpose, "Why: recorded verbatim in the audit log")
        ->required();
    cmd->add_flag("--json", flags->json, "JSON Lines on stdout");
  };

  CLI::App* init = vault_cmd->add_subcommand("init", "Create the store, keyring and audit log");
  add_common(init);
  init->callback([flags, exit_code] { *exit_code = RunInit(*flags); });

  CLI::App* put = vault_cmd->add_subcommand("put", "Seal and store files as records");
  add_common(put);
  put->add_option("--type", flags->type,
                  "traveller, document, gallery_photo, template, plate_read, match_decision, "
                  "kept_capture")
      ->required();
  put->add_option("--subject", flags->subject, "citizen, non_citizen, vehicle")->required();
  put->add_option("--content-type", flags->content_type, "Media type of the files");
  // One value per --label (repeat it), so that the files after it stay positional.
  put->add_option("--label", flags->labels, "KEY=VALUE finding aid (no personal data)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  put->add_option("files", flags->files, "Files to store")->required();
  put->callback([flags, exit_code] { *exit_code = RunPut(*flags); });

  CLI::App* get = vault_cmd->add_subcommand("get", "Decrypt one record to a file");
  add_common(get);
  get->add_option("id", flags->id, "Record id")->required();
  get->add_option("--out", flags->out, "Output file, or - for stdout")->required();
  get->callback([flags, exit_code] { *exit_code = RunGet(*flags); });

  CLI::App* list = vault_cmd->add_subcommand("list", "List records (metadata only)");
  add_common(list);
  list->add_option("--type", flags->filter_type, "Only this record type");
  list->add_option("--subject", flags->filter_subject, "Only this subject category");
  list->add_option("--limit", flags->limit, "At most this many")->check(CLI::Range(1, 10000));
  list->callback([flags, exit_code] { *exit_code = RunList(*flags); });

  CLI::App* purge = vault_cmd->add_subcommand("purge", "Crypto-shred what retention has expired");
  add_common(purge);
  purge->add_flag("--dry-run", flags->dry_run, "Only list what would be shredded");
  purge->callback([flags, exit_code] { *exit_code = RunPurge(*flags); });

  CLI::App* rotate = vault_cmd->add_subcommand("rotate", "Re-wrap data keys under fresh KEKs");
  add_common(rotate);
  rotate->add_option("--kek", flags->kek, "Only this KEK (default: every KEK in use)");
  rotate->callback([flags, exit_code] { *exit_code = RunRotate(*flags); });

  CLI::App* ingest = vault_cmd->add_subcommand(
      "ingest-key", "Create (once) or show the lane agents' ingest key pair");
  ingest->add_option("--keys", flags->keys, "keyring:PATH or pkcs11:LABEL (the vault's keys)")
      ->required();
  ingest->add_option(
      "--secret-file", flags->secret_file,
      std::string("Keyring passphrase / token PIN file (default: $") + kSecretVariable + ")");
  ingest
      ->add_option("--key-file", flags->key_file,
                   "The key file (public key + wrapped secret; created when missing)")
      ->required();
  ingest
      ->add_option("--public-out", flags->public_out,
                   "Where to write the public key line for the lane agents")
      ->required();
  ingest->add_flag("--json", flags->json, "JSON Lines on stdout");
  ingest->callback([flags, exit_code] { *exit_code = RunIngestKey(*flags); });
}

}  // namespace portcullis::cli
