#include "cli/audit_command.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "cli/exit_codes.h"
#include "portcullis/env.h"

namespace portcullis::cli {
namespace {

using audit::Hash;
using audit::HashToHex;
using nlohmann::json;

struct AuditFlags {
  std::string log_dir;
  std::string key;      // public key file
  std::string key_dir;  // for keygen and append
  std::string witness;
  std::string out;
  std::string events;
  std::string proof;
  std::string id_key;
  std::string record;
  std::uint64_t index = 0;
  std::uint64_t size = 0;
  bool size_given = false;
  std::uint64_t first = 0;
  std::uint64_t second = 0;
  bool json = false;
};

// Bad arguments (an index past the end) are usage errors; the rest map like any input.
int ExitCodeFor(const Status& s) {
  if (s.code() == Status::Code::kInvalidArgument) return kExitUsage;
  return ExitCodeForInput(s);
}

void PrintJson(const json& j) { std::cout << j.dump() << "\n" << std::flush; }

// Reports a failure: a JSON record {"ok": false, "error", "error_code"} or a line on stderr.
int Fail(const AuditFlags& f, const Status& s, int code) {
  if (f.json) {
    PrintJson({{"ok", false},
               {"error", s.ToString()},
               {"error_code", ErrorCodeName(s.code(), ErrorVocabulary::kGeneric)}});
  } else {
    std::fprintf(stderr, "portcullis audit: %s\n", s.ToString().c_str());
  }
  return code;
}
int Fail(const AuditFlags& f, const Status& s) { return Fail(f, s, ExitCodeFor(s)); }

json HashesToJson(const std::vector<Hash>& hashes) {
  json out = json::array();
  for (const Hash& h : hashes) out.push_back(HashToHex(h));
  return out;
}

int RunKeygen(const AuditFlags& f) {
  const Status s = audit::GenerateKeys(f.key_dir);
  if (!s.ok()) return Fail(f, s);
  audit::PublicKey pk{};
  if (const Status l = audit::LoadPublicKey(f.key_dir + "/signing.pub", &pk); !l.ok()) {
    return Fail(f, l);
  }
  std::string pk_hex = HashToHex(pk);
  if (f.json) {
    PrintJson({{"ok", true},
               {"signing_key", f.key_dir + "/signing.key"},
               {"id_key", f.key_dir + "/id.key"},
               {"public_key", f.key_dir + "/signing.pub"},
               {"public_key_hex", pk_hex}});
  } else {
    std::printf("wrote %s/signing.key and %s/id.key (keep secret), %s/signing.pub (public: %s)\n",
                f.key_dir.c_str(), f.key_dir.c_str(), f.key_dir.c_str(), pk_hex.c_str());
  }
  return kExitOk;
}

// Events as JSON Lines: {"principal", "role", "purpose", "action", "record_id", "result",
// "time_micros" (optional: now)}.
Status ParseEvents(std::istream& in, std::vector<audit::AuditEvent>* events) {
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    const std::string where = "event line " + std::to_string(line_no) + ": ";
    if (!j.is_object()) return Status::InvalidArgument(where + "not a JSON object");
    audit::AuditEvent e;
    e.time_micros = Env::Default()->NowMicros();
    for (const auto& [name, field] :
         std::vector<std::pair<const char*, std::string*>>{{"principal", &e.principal},
                                                           {"role", &e.role},
                                                           {"purpose", &e.purpose},
                                                           {"action", &e.action},
                                                           {"record_id", &e.record_id},
                                                           {"result", &e.result}}) {
      if (!j.contains(name)) continue;
      if (!j[name].is_string()) return Status::InvalidArgument(where + name + " is not a string");
      *field = j[name].get<std::string>();
    }
    if (j.contains("time_micros")) {
      if (!j["time_micros"].is_number_integer()) {
        return Status::InvalidArgument(where + "time_micros is not an integer");
      }
      e.time_micros = j["time_micros"].get<std::int64_t>();
    }
    if (e.principal.empty() || e.action.empty()) {
      return Status::InvalidArgument(where + "principal and action are required");
    }
    events->push_back(std::move(e));
  }
  return Status::Ok();
}

int RunAppend(const AuditFlags& f) {
  audit::LogKeys keys;
  Status s = audit::LoadLogKeys(f.key_dir, &keys);
  if (!s.ok()) return Fail(f, s);
  std::vector<audit::AuditEvent> events;
  if (f.events.empty() || f.events == "-") {
    s = ParseEvents(std::cin, &events);
  } else {
    std::ifstream in(f.events);
    if (!in) return Fail(f, Status::NotFound(f.events + ": cannot open"));
    s = ParseEvents(in, &events);
  }
  if (!s.ok()) return Fail(f, s);
  std::unique_ptr<audit::AuditLog> log;
  s = audit::AuditLog::Open(f.log_dir, keys, {}, &log);
  if (!s.ok()) return Fail(f, s);
  std::uint64_t first = 0;
  s = log->AppendBatch(events, &first);
  if (!s.ok()) return Fail(f, s);
  audit::SignedTreeHead head;
  s = log->LatestTreeHead(&head);
  if (!s.ok()) return Fail(f, s);
  if (f.json) {
    PrintJson({{"ok", true},
               {"appended", events.size()},
               {"first_index", first},
               {"sth", TreeHeadToJson(head)}});
  } else {
    std::printf("appended %zu events (first index %llu); tree size %llu, root %s\n", events.size(),
                static_cast<unsigned long long>(first),
                static_cast<unsigned long long>(head.tree_size), HashToHex(head.root_hash).c_str());
  }
  return kExitOk;
}

int RunVerify(const AuditFlags& f) {
  audit::PublicKey key{};
  Status s = audit::LoadPublicKey(f.key, &key);
  if (!s.ok()) return Fail(f, s);
  audit::VerifyOptions options;
  options.witness_path = f.witness;
  audit::VerifyReport r;
  s = audit::VerifyLog(f.log_dir, key, options, &r);
  if (!s.ok() && s.code() != Status::Code::kCorruption) return Fail(f, s);
  const bool ok = s.ok();
  if (f.json) {
    json j = {{"ok", ok},
              {"tree_size", r.tree_size},
              {"root_hash", HashToHex(r.root_hash)},
              {"sth_count", r.sth_count},
              {"signed_size", r.signed_size},
              {"witness_heads", r.witness_heads},
              {"torn_tail", r.torn_tail},
              {"first_bad_index", nullptr},
              {"bad_tree_head", nullptr},
              {"problem", nullptr}};
    if (!ok) {
      if (r.first_bad_index >= 0) j["first_bad_index"] = r.first_bad_index;
      if (r.bad_tree_head >= 0) j["bad_tree_head"] = r.bad_tree_head;
      j["problem"] = r.problem;
    }
    PrintJson(j);
  } else if (ok) {
    std::printf(
        "OK: %llu events, root %s, %llu signed tree heads (latest signs %llu)%s%s\n",
        static_cast<unsigned long long>(r.tree_size), HashToHex(r.root_hash).c_str(),
        static_cast<unsigned long long>(r.sth_count),
        static_cast<unsigned long long>(r.signed_size),
        r.witness_heads > 0
            ? (", consistent with " + std::to_string(r.witness_heads) + " witnessed heads").c_str()
            : "",
        r.torn_tail ? "; an unacknowledged torn record at the end (a crash)" : "");
  } else {
    std::printf("FAILED: %s\n", r.problem.c_str());
    if (r.first_bad_index >= 0) {
      std::printf("first bad index: %lld\n", static_cast<long long>(r.first_bad_index));
    }
    if (r.bad_tree_head >= 0) {
      std::printf("bad tree head: %lld\n", static_cast<long long>(r.bad_tree_head));
    }
  }
  return ok ? kExitOk : kExitVerifyFailed;
}

int RunProve(const AuditFlags& f) {
  std::unique_ptr<audit::LogReader> reader;
  Status s = audit::LogReader::Open(f.log_dir, &reader);
  if (!s.ok()) return Fail(f, s);
  // By default, prove against the latest signed head, so that the proof carries its signature.
  const auto& heads = reader->tree_heads();
  std::uint64_t size = f.size;
  if (!f.size_given) {
    if (heads.empty()) return Fail(f, Status::NotFound("the log has no signed tree head"));
    size = heads.back().tree_size;
  }
  json sth = nullptr;
  for (auto it = heads.rbegin(); it != heads.rend(); ++it) {
    if (it->tree_size == size) {
      sth = TreeHeadToJson(*it);
      break;
    }
  }
  audit::InclusionProof proof;
  s = reader->ProveInclusion(f.index, size, &proof);
  if (!s.ok()) return Fail(f, s);
  std::string leaf;
  Hash root{};
  s = reader->Leaf(f.index, &leaf);
  if (s.ok()) s = reader->RootAt(size, &root);
  if (!s.ok()) return Fail(f, s);
  const Hash leaf_hash = audit::LeafHash(leaf);
  // Check before printing: a damaged tree store must not hand out a proof that will not verify.
  s = audit::VerifyInclusion(leaf_hash, proof, root);
  if (s.ok() && !sth.is_null() && sth["root_hash"] != HashToHex(root)) {
    s = Status::Corruption("the stored tree does not match the signed head of size " +
                           std::to_string(size));
  }
  if (!s.ok()) return Fail(f, s, kExitVerifyFailed);
  const json j = {{"leaf_index", proof.leaf_index},    {"tree_size", proof.tree_size},
                  {"leaf_hash", HashToHex(leaf_hash)}, {"root_hash", HashToHex(root)},
                  {"path", HashesToJson(proof.path)},  {"sth", sth}};
  if (f.json) {
    PrintJson(j);
  } else {
    std::cout << j.dump(2) << "\n";
  }
  return kExitOk;
}

Status HashField(const json& j, const char* name, Hash* h) {
  if (!j.contains(name) || !j[name].is_string() ||
      !audit::HashFromHex(j[name].get<std::string>(), h)) {
    return Status::InvalidArgument(std::string("proof: ") + name + " is not a 64-digit hex hash");
  }
  return Status::Ok();
}

Status ParseProof(const std::string& text, audit::InclusionProof* proof, Hash* leaf_hash,
                  audit::SignedTreeHead* sth) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Status::InvalidArgument("proof: not a JSON object");
  if (!j.contains("leaf_index") || !j["leaf_index"].is_number_unsigned() ||
      !j.contains("tree_size") || !j["tree_size"].is_number_unsigned()) {
    return Status::InvalidArgument("proof: leaf_index and tree_size must be integers");
  }
  proof->leaf_index = j["leaf_index"].get<std::uint64_t>();
  proof->tree_size = j["tree_size"].get<std::uint64_t>();
  PORTCULLIS_RETURN_IF_ERROR(HashField(j, "leaf_hash", leaf_hash));
  if (!j.contains("path") || !j["path"].is_array()) {
    return Status::InvalidArgument("proof: path must be an array");
  }
  for (const auto& h : j["path"]) {
    Hash hash{};
    if (!h.is_string() || !audit::HashFromHex(h.get<std::string>(), &hash)) {
      return Status::InvalidArgument("proof: path holds a bad hash");
    }
    proof->path.push_back(hash);
  }
  if (!j.contains("sth") || !j["sth"].is_object()) {
    return Status::InvalidArgument("proof: no signed tree head (prove at a signed size)");
  }
  const json& s = j["sth"];
  if (!s.contains("tree_size") || !s["tree_size"].is_number_unsigned() ||
      !s.contains("timestamp_micros") || !s["timestamp_micros"].is_number_integer() ||
      !s.contains("signature") || !s["signature"].is_string()) {
    return Status::InvalidArgument("proof: malformed sth");
  }
  sth->tree_size = s["tree_size"].get<std::uint64_t>();
  sth->timestamp_micros = s["timestamp_micros"].get<std::int64_t>();
  PORTCULLIS_RETURN_IF_ERROR(HashField(s, "root_hash", &sth->root_hash));
  std::array<std::uint8_t, 64> sig{};
  const std::string sig_hex = s["signature"].get<std::string>();
  Hash lo{};
  Hash hi{};
  if (sig_hex.size() != 128 || !audit::HashFromHex(sig_hex.substr(0, 64), &lo) ||
      !audit::HashFromHex(sig_hex.substr(64), &hi)) {
    return Status::InvalidArgument("proof: sth.signature is not 128 hex digits");
  }
  std::copy(lo.begin(), lo.end(), sig.begin());
  std::copy(hi.begin(), hi.end(), sig.begin() + 32);
  sth->signature = sig;
  return Status::Ok();
}

int RunVerifyProof(const AuditFlags& f) {
  audit::PublicKey key{};
  Status s = audit::LoadPublicKey(f.key, &key);
  if (!s.ok()) return Fail(f, s);
  std::string text;
  if (f.proof == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(f.proof, std::ios::binary);
    if (!in) return Fail(f, Status::NotFound(f.proof + ": cannot open"));
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  audit::InclusionProof proof;
  Hash leaf_hash{};
  audit::SignedTreeHead sth;
  s = ParseProof(text, &proof, &leaf_hash, &sth);
  if (!s.ok()) return Fail(f, s);
  s = audit::VerifyTreeHeadSignature(sth, key);
  if (s.ok() && sth.tree_size != proof.tree_size) {
    s = Status::Corruption("the proof's tree size differs from its signed head's");
  }
  if (s.ok()) s = audit::VerifyInclusion(leaf_hash, proof, sth.root_hash);
  if (f.json) {
    PrintJson({{"ok", s.ok()},
               {"leaf_index", proof.leaf_index},
               {"tree_size", proof.tree_size},
               {"problem", s.ok() ? json(nullptr) : json(s.message())}});
  } else if (s.ok()) {
    std::printf("OK: leaf %llu is in the signed tree of size %llu\n",
                static_cast<unsigned long long>(proof.leaf_index),
                static_cast<unsigned long long>(proof.tree_size));
  } else {
    std::printf("FAILED: %s\n", s.message().c_str());
  }
  return s.ok() ? kExitOk : kExitVerifyFailed;
}

int RunConsistency(const AuditFlags& f) {
  std::unique_ptr<audit::LogReader> reader;
  Status s = audit::LogReader::Open(f.log_dir, &reader);
  if (!s.ok()) return Fail(f, s);
  audit::ConsistencyProof proof;
  s = reader->ProveConsistency(f.first, f.second, &proof);
  Hash first_root{};
  Hash second_root{};
  if (s.ok()) s = reader->RootAt(f.first, &first_root);
  if (s.ok()) s = reader->RootAt(f.second, &second_root);
  if (!s.ok()) return Fail(f, s);
  s = audit::VerifyConsistency(proof, first_root, second_root);
  const json j = {{"first_size", proof.first_size},      {"second_size", proof.second_size},
                  {"first_root", HashToHex(first_root)}, {"second_root", HashToHex(second_root)},
                  {"path", HashesToJson(proof.path)},    {"verified", s.ok()}};
  if (f.json) {
    PrintJson(j);
  } else {
    std::cout << j.dump(2) << "\n";
  }
  return s.ok() ? kExitOk : kExitVerifyFailed;
}

int RunWitness(const AuditFlags& f) {
  std::unique_ptr<audit::LogReader> reader;
  Status s = audit::LogReader::Open(f.log_dir, &reader);
  if (!s.ok()) return Fail(f, s);
  if (reader->tree_heads().empty()) {
    return Fail(f, Status::NotFound("the log has no signed tree head"));
  }
  const audit::SignedTreeHead head = reader->tree_heads().back();
  if (!f.key.empty()) {
    audit::PublicKey key{};
    s = audit::LoadPublicKey(f.key, &key);
    if (!s.ok()) return Fail(f, s);
    // A witness only vouches for heads the log's key signed.
    s = audit::VerifyTreeHeadSignature(head, key);
    if (!s.ok()) return Fail(f, s, kExitVerifyFailed);
  }
  s = audit::AppendWitness(f.out, head);
  if (!s.ok()) return Fail(f, s);
  if (f.json) {
    PrintJson({{"ok", true}, {"witness", f.out}, {"sth", TreeHeadToJson(head)}});
  } else {
    std::printf("witnessed tree size %llu, root %s -> %s\n",
                static_cast<unsigned long long>(head.tree_size), HashToHex(head.root_hash).c_str(),
                f.out.c_str());
  }
  return kExitOk;
}

int RunQuery(const AuditFlags& f) {
  audit::IdKey id_key{};
  Status s = audit::LoadIdKey(f.id_key, &id_key);
  if (!s.ok()) return Fail(f, s);
  std::unique_ptr<audit::LogReader> reader;
  s = audit::LogReader::Open(f.log_dir, &reader);
  if (!s.ok()) return Fail(f, s);
  std::vector<std::uint64_t> hits;
  s = reader->FindRecord(id_key, f.record, &hits);
  if (!s.ok()) return Fail(f, s);
  for (std::uint64_t i : hits) {
    std::string leaf;
    audit::LeafRecord r;
    s = reader->Leaf(i, &leaf);
    if (s.ok()) s = audit::DecodeLeaf(leaf, &r);
    if (!s.ok()) return Fail(f, s);
    if (f.json) {
      PrintJson({{"index", i},
                 {"time_micros", r.time_micros},
                 {"principal", r.principal},
                 {"role", r.role},
                 {"purpose", r.purpose},
                 {"action", r.action},
                 {"result", r.result}});
    } else {
      std::printf("%llu\t%lld\t%s\t%s\t%s\t%s\t%s\n", static_cast<unsigned long long>(i),
                  static_cast<long long>(r.time_micros), r.principal.c_str(), r.role.c_str(),
                  r.action.c_str(), r.result.c_str(), r.purpose.c_str());
    }
  }
  return kExitOk;
}

}  // namespace

json TreeHeadToJson(const audit::SignedTreeHead& sth) {
  std::string sig_hex;
  Hash lo{};
  Hash hi{};
  std::copy_n(sth.signature.begin(), 32, lo.begin());
  std::copy_n(sth.signature.begin() + 32, 32, hi.begin());
  return {{"tree_size", sth.tree_size},
          {"timestamp_micros", sth.timestamp_micros},
          {"root_hash", HashToHex(sth.root_hash)},
          {"signature", HashToHex(lo) + HashToHex(hi)}};
}

void AddAuditCommands(CLI::App& app, int* exit_code) {
  CLI::App* audit_cmd = app.add_subcommand("audit", "The tamper-evident audit log");
  audit_cmd->require_subcommand(1);
  auto f = std::make_shared<AuditFlags>();
  auto add_json = [f](CLI::App* cmd, const char* what) { cmd->add_flag("--json", f->json, what); };
  auto add_log = [f](CLI::App* cmd) {
    cmd->add_option("--log", f->log_dir, "Log directory")->required();
  };

  CLI::App* keygen = audit_cmd->add_subcommand(
      "keygen", "Create signing.key, id.key (mode 0600) and signing.pub in a new key directory");
  keygen->add_option("--out", f->key_dir, "Key directory (keep it apart from the log)")->required();
  add_json(keygen, "One JSON object on stdout");
  keygen->callback([f, exit_code] { *exit_code = RunKeygen(*f); });

  CLI::App* append = audit_cmd->add_subcommand(
      "append", "Append events (JSON Lines) as one durable batch with a signed tree head");
  add_log(append);
  append->add_option("--keys", f->key_dir, "Key directory from `audit keygen`")->required();
  append->add_option("--events", f->events, "JSON Lines file of events ('-' or absent: stdin)");
  add_json(append, "One JSON object on stdout");
  append->callback([f, exit_code] { *exit_code = RunAppend(*f); });

  CLI::App* verify = audit_cmd->add_subcommand(
      "verify", "Recompute the tree and check every signed head (and a witness file)");
  add_log(verify);
  verify->add_option("--key", f->key, "Public key file (signing.pub)")->required();
  verify->add_option("--witness", f->witness, "Witness file the log must be consistent with");
  add_json(verify, "One JSON object on stdout");
  verify->callback([f, exit_code] { *exit_code = RunVerify(*f); });

  CLI::App* prove = audit_cmd->add_subcommand("prove", "Print an inclusion proof for one event");
  add_log(prove);
  prove->add_option("--index", f->index, "Leaf index")->required();
  prove->add_option("--size", f->size, "Tree size (default: the latest signed head's)")
      ->each([f](const std::string&) { f->size_given = true; });
  add_json(prove, "One JSON object on stdout (input to verify-proof)");
  prove->callback([f, exit_code] { *exit_code = RunProve(*f); });

  CLI::App* verify_proof = audit_cmd->add_subcommand(
      "verify-proof", "Check a printed inclusion proof offline with the public key");
  verify_proof->add_option("--proof", f->proof, "Proof JSON from `audit prove` ('-': stdin)")
      ->required();
  verify_proof->add_option("--key", f->key, "Public key file (signing.pub)")->required();
  add_json(verify_proof, "One JSON object on stdout");
  verify_proof->callback([f, exit_code] { *exit_code = RunVerifyProof(*f); });

  CLI::App* consistency = audit_cmd->add_subcommand(
      "consistency", "Print (and check) a consistency proof between two tree sizes");
  add_log(consistency);
  consistency->add_option("old", f->first, "Old tree size")->required();
  consistency->add_option("new", f->second, "New tree size")->required();
  add_json(consistency, "One JSON object on stdout");
  consistency->callback([f, exit_code] { *exit_code = RunConsistency(*f); });

  CLI::App* witness =
      audit_cmd->add_subcommand("witness", "Append the latest signed tree head to a witness file");
  add_log(witness);
  witness->add_option("--out", f->out, "Witness file (appended to)")->required();
  witness->add_option("--key", f->key, "Public key: check the head's signature first");
  add_json(witness, "One JSON object on stdout");
  witness->callback([f, exit_code] { *exit_code = RunWitness(*f); });

  CLI::App* query = audit_cmd->add_subcommand("query", "Who touched a record? (needs id.key)");
  add_log(query);
  query->add_option("--id-key", f->id_key, "The log's id.key")->required();
  query->add_option("--record", f->record, "Record id")->required();
  add_json(query, "JSON Lines: one object per event");
  query->callback([f, exit_code] { *exit_code = RunQuery(*f); });
}

}  // namespace portcullis::cli
