// `portcullis audit ...` run as the real binary (PORTCULLIS_CLI_PATH): the --json contracts of
// docs/audit.md and the exit codes (0, 2 usage, 10 not found, 20 verification failed).
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "audit_test_util.h"
#include "cli/exit_codes.h"

namespace portcullis::audit {
namespace {

using nlohmann::json;
using testing::ReadAll;
using testing::ReadFrames;
using testing::TempDir;
using testing::WriteAll;
using testing::WriteFrames;

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the binary through the shell with stdout and stderr captured in files. Arguments are
// single-quoted; the tests only pass temporary paths and plain words.
CliResult RunCli(const TempDir& tmp, const std::vector<std::string>& args,
                 const std::string& stdin_path = "/dev/null") {
  std::string cmd = std::string("'") + PORTCULLIS_CLI_PATH + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  const std::string out = tmp.Sub("cli.out");
  const std::string err = tmp.Sub("cli.err");
  cmd += " <'" + stdin_path + "' >'" + out + "' 2>'" + err + "'";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  r.out = ReadAll(out);
  r.err = ReadAll(err);
  return r;
}

json OneJson(const CliResult& r) {
  EXPECT_FALSE(r.out.empty()) << r.err;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "expected exactly one JSON line: " << r.out;
  json j = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(j.is_object()) << r.out;
  return j;
}

std::vector<json> JsonLines(const CliResult& r) {
  std::vector<json> out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    EXPECT_TRUE(j.is_object()) << line;
    out.push_back(j);
  }
  return out;
}

bool IsHex(const json& j, std::size_t digits) {
  if (!j.is_string()) return false;
  const auto s = j.get<std::string>();
  return s.size() == digits && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

class AuditCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = tmp_.Sub("keys");
    log_ = tmp_.Sub("log");
    pub_ = keys_ + "/signing.pub";
    const CliResult k = RunCli(tmp_, {"audit", "keygen", "--out", keys_, "--json"});
    ASSERT_EQ(k.exit_code, 0) << k.err;
    const json j = OneJson(k);
    EXPECT_EQ(j["ok"], true);
    EXPECT_TRUE(IsHex(j["public_key_hex"], 64));
    EXPECT_EQ(j["public_key"], pub_);
    // Three batches: 10, 10 and 5 events.
    for (int b = 0; b < 3; ++b) Append(b == 2 ? 5 : 10, b * 10);
  }

  void Append(int count, int first) {
    std::string lines;
    for (int i = 0; i < count; ++i) {
      const int n = first + i;
      lines += json{{"principal", "officer:" + std::to_string(n % 3)},
                    {"role", "officer"},
                    {"purpose", "inspection " + std::to_string(n)},
                    {"action", "vault.get"},
                    {"record_id", "rec-" + std::to_string(n % 4)},
                    {"result", "ok"},
                    {"time_micros", 1700000000000000 + n}}
                   .dump() +
               "\n";
    }
    WriteAll(tmp_.Sub("events.jsonl"), lines);
    const CliResult r = RunCli(tmp_, {"audit", "append", "--log", log_, "--keys", keys_, "--events",
                                      tmp_.Sub("events.jsonl"), "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json j = OneJson(r);
    EXPECT_EQ(j["appended"], count);
    EXPECT_EQ(j["first_index"], first);
    EXPECT_EQ(j["sth"]["tree_size"], first + count);
  }

  CliResult Verify(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"audit", "verify", "--log", log_, "--key", pub_, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(tmp_, args);
  }

  TempDir tmp_;
  std::string keys_, log_, pub_;
};

TEST_F(AuditCliTest, VerifyJsonContract) {
  const CliResult r = Verify();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json j = OneJson(r);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["tree_size"], 25);
  EXPECT_EQ(j["signed_size"], 25);
  EXPECT_EQ(j["sth_count"], 4);  // creation + three batches
  EXPECT_EQ(j["witness_heads"], 0);
  EXPECT_EQ(j["torn_tail"], false);
  EXPECT_TRUE(IsHex(j["root_hash"], 64));
  EXPECT_TRUE(j["first_bad_index"].is_null());
  EXPECT_TRUE(j["bad_tree_head"].is_null());
  EXPECT_TRUE(j["problem"].is_null());
  // Plain text says OK too.
  const CliResult text = RunCli(tmp_, {"audit", "verify", "--log", log_, "--key", pub_});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_EQ(text.out.rfind("OK: 25 events", 0), 0U) << text.out;
}

TEST_F(AuditCliTest, TamperedLogExitsVerifyFailedWithTheFirstBadIndex) {
  auto frames = ReadFrames(log_ + "/events.log", internal::kEventsMagic);
  ASSERT_EQ(frames.size(), 25U);
  std::swap(frames[12], frames[13]);
  WriteFrames(log_ + "/events.log", internal::kEventsMagic, frames);
  const CliResult r = Verify();
  EXPECT_EQ(r.exit_code, cli::kExitVerifyFailed);
  const json j = OneJson(r);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["first_bad_index"], 12);
  EXPECT_EQ(j["bad_tree_head"], 2);  // the head at size 20
  EXPECT_TRUE(j["problem"].is_string());
  const CliResult text = RunCli(tmp_, {"audit", "verify", "--log", log_, "--key", pub_});
  EXPECT_EQ(text.exit_code, cli::kExitVerifyFailed);
  EXPECT_NE(text.out.find("first bad index: 12"), std::string::npos) << text.out;
}

TEST_F(AuditCliTest, WrongOrMissingKey) {
  const CliResult other = RunCli(tmp_, {"audit", "keygen", "--out", tmp_.Sub("other")});
  ASSERT_EQ(other.exit_code, 0);
  CliResult r = RunCli(tmp_, {"audit", "verify", "--log", log_, "--key",
                              tmp_.Sub("other") + "/signing.pub", "--json"});
  EXPECT_EQ(r.exit_code, cli::kExitVerifyFailed);
  EXPECT_EQ(OneJson(r)["bad_tree_head"], 0);
  r = RunCli(tmp_, {"audit", "verify", "--log", log_, "--key", tmp_.Sub("none.pub"), "--json"});
  EXPECT_EQ(r.exit_code, cli::kExitNotFound);
  const json j = OneJson(r);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["error_code"], "not_found");
  // keygen never overwrites.
  r = RunCli(tmp_, {"audit", "keygen", "--out", keys_});
  EXPECT_EQ(r.exit_code, cli::kExitUsage);
  // Appending with a key directory whose secret key is readable by others is refused.
  ASSERT_EQ(::chmod((keys_ + "/signing.key").c_str(), 0644), 0);
  WriteAll(tmp_.Sub("one.jsonl"), "{\"principal\":\"p\",\"action\":\"a\"}\n");
  r = RunCli(
      tmp_, {"audit", "append", "--log", log_, "--keys", keys_, "--events", tmp_.Sub("one.jsonl")});
  EXPECT_EQ(r.exit_code, cli::kExitUsage) << r.err;
  ASSERT_EQ(::chmod((keys_ + "/signing.key").c_str(), 0600), 0);
  // Malformed events are refused before anything is written.
  WriteAll(tmp_.Sub("bad.jsonl"), "{\"principal\":\"p\",\"action\":\"a\"}\nnot json\n");
  r = RunCli(
      tmp_, {"audit", "append", "--log", log_, "--keys", keys_, "--events", tmp_.Sub("bad.jsonl")});
  EXPECT_EQ(r.exit_code, cli::kExitUsage);
  EXPECT_EQ(OneJson(Verify())["tree_size"], 25);
}

TEST_F(AuditCliTest, ProveAndVerifyProofOffline) {
  CliResult r = RunCli(tmp_, {"audit", "prove", "--log", log_, "--index", "7", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json proof = OneJson(r);
  EXPECT_EQ(proof["leaf_index"], 7);
  EXPECT_EQ(proof["tree_size"], 25);
  EXPECT_TRUE(IsHex(proof["leaf_hash"], 64));
  EXPECT_TRUE(IsHex(proof["root_hash"], 64));
  ASSERT_TRUE(proof["path"].is_array());
  EXPECT_EQ(proof["path"].size(), 5U);  // ceil(log2 25)
  for (const auto& h : proof["path"]) EXPECT_TRUE(IsHex(h, 64));
  EXPECT_EQ(proof["sth"]["tree_size"], 25);
  EXPECT_EQ(proof["sth"]["root_hash"], proof["root_hash"]);
  EXPECT_TRUE(IsHex(proof["sth"]["signature"], 128));
  EXPECT_TRUE(proof["sth"]["timestamp_micros"].is_number_integer());

  WriteAll(tmp_.Sub("proof.json"), proof.dump());
  r = RunCli(tmp_,
             {"audit", "verify-proof", "--proof", tmp_.Sub("proof.json"), "--key", pub_, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(OneJson(r)["ok"], true);
  // From stdin too.
  r = RunCli(tmp_, {"audit", "verify-proof", "--proof", "-", "--key", pub_},
             tmp_.Sub("proof.json"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  // A proof for another leaf, a forged path or a forged head fails.
  json forged = proof;
  forged["leaf_index"] = 8;
  WriteAll(tmp_.Sub("forged.json"), forged.dump());
  r = RunCli(
      tmp_, {"audit", "verify-proof", "--proof", tmp_.Sub("forged.json"), "--key", pub_, "--json"});
  EXPECT_EQ(r.exit_code, cli::kExitVerifyFailed);
  EXPECT_EQ(OneJson(r)["ok"], false);
  forged = proof;
  std::string h = forged["path"][2].get<std::string>();
  h[0] = h[0] == 'a' ? 'b' : 'a';
  forged["path"][2] = h;
  WriteAll(tmp_.Sub("forged.json"), forged.dump());
  r = RunCli(tmp_, {"audit", "verify-proof", "--proof", tmp_.Sub("forged.json"), "--key", pub_});
  EXPECT_EQ(r.exit_code, cli::kExitVerifyFailed);
  forged = proof;
  forged["sth"]["timestamp_micros"] = 1;
  WriteAll(tmp_.Sub("forged.json"), forged.dump());
  r = RunCli(tmp_, {"audit", "verify-proof", "--proof", tmp_.Sub("forged.json"), "--key", pub_});
  EXPECT_EQ(r.exit_code, cli::kExitVerifyFailed);
  // Malformed proof JSON is a usage error, never a crash.
  WriteAll(tmp_.Sub("garbage.json"), "{\"leaf_index\": \"seven\"}");
  r = RunCli(tmp_, {"audit", "verify-proof", "--proof", tmp_.Sub("garbage.json"), "--key", pub_});
  EXPECT_EQ(r.exit_code, cli::kExitUsage);
  // Proof at an older signed size, and an index past the end.
  r = RunCli(tmp_, {"audit", "prove", "--log", log_, "--index", "3", "--size", "10", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(OneJson(r)["sth"]["tree_size"], 10);
  r = RunCli(tmp_, {"audit", "prove", "--log", log_, "--index", "25"});
  EXPECT_EQ(r.exit_code, cli::kExitUsage);
  r = RunCli(tmp_, {"audit", "prove", "--log", tmp_.Sub("nolog"), "--index", "0"});
  EXPECT_EQ(r.exit_code, cli::kExitNotFound);
}

TEST_F(AuditCliTest, ConsistencyJsonContract) {
  const CliResult r = RunCli(tmp_, {"audit", "consistency", "--log", log_, "10", "25", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = OneJson(r);
  EXPECT_EQ(j["first_size"], 10);
  EXPECT_EQ(j["second_size"], 25);
  EXPECT_EQ(j["verified"], true);
  ConsistencyProof proof;
  proof.first_size = 10;
  proof.second_size = 25;
  for (const auto& h : j["path"]) {
    Hash hash{};
    ASSERT_TRUE(HashFromHex(h.get<std::string>(), &hash));
    proof.path.push_back(hash);
  }
  Hash first{};
  Hash second{};
  ASSERT_TRUE(HashFromHex(j["first_root"].get<std::string>(), &first));
  ASSERT_TRUE(HashFromHex(j["second_root"].get<std::string>(), &second));
  EXPECT_TRUE(VerifyConsistency(proof, first, second).ok());
  // The signed heads agree with the printed roots.
  const json v = OneJson(Verify());
  EXPECT_EQ(v["root_hash"], j["second_root"]);
  EXPECT_EQ(RunCli(tmp_, {"audit", "consistency", "--log", log_, "20", "10"}).exit_code,
            cli::kExitUsage);
  EXPECT_EQ(RunCli(tmp_, {"audit", "consistency", "--log", log_, "1", "26"}).exit_code,
            cli::kExitUsage);
}

TEST_F(AuditCliTest, WitnessCatchesRewrittenHistory) {
  const std::string witness = tmp_.Sub("witness.txt");
  CliResult r =
      RunCli(tmp_, {"audit", "witness", "--log", log_, "--out", witness, "--key", pub_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(OneJson(r)["sth"]["tree_size"], 25);
  Append(3, 25);
  r = Verify({"--witness", witness});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(OneJson(r)["witness_heads"], 1);

  // Rewrite history with the same (stolen) keys: a fresh log with one event changed.
  std::filesystem::remove_all(log_);
  WriteAll(tmp_.Sub("rewrite.jsonl"),
           "{\"principal\":\"officer:x\",\"action\":\"vault.get\",\"time_micros\":1}\n");
  r = RunCli(tmp_, {"audit", "append", "--log", log_, "--keys", keys_, "--events",
                    tmp_.Sub("rewrite.jsonl")});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(Verify().exit_code, 0);  // alone it looks fine
  r = Verify({"--witness", witness});
  EXPECT_EQ(r.exit_code, cli::kExitVerifyFailed);
  const json j = OneJson(r);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["bad_tree_head"], 0);
  EXPECT_EQ(j["first_bad_index"], 1);  // the rewritten log has 1 event; the witness saw 25
  r = Verify({"--witness", tmp_.Sub("no-witness.txt")});
  EXPECT_EQ(r.exit_code, cli::kExitNotFound);
}

TEST_F(AuditCliTest, QueryFindsWhoTouchedARecord) {
  const CliResult r = RunCli(tmp_, {"audit", "query", "--log", log_, "--id-key", keys_ + "/id.key",
                                    "--record", "rec-1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 6U);  // n % 4 == 1 for n in [0, 25)
  for (const auto& j : lines) {
    EXPECT_EQ(j["index"].get<int>() % 4, 1);
    EXPECT_EQ(j["action"], "vault.get");
    EXPECT_EQ(j["principal"], "officer:" + std::to_string(j["index"].get<int>() % 3));
    EXPECT_TRUE(j["time_micros"].is_number_integer());
  }
  EXPECT_EQ(ReadAll(log_ + "/events.log").find("rec-1"), std::string::npos);
}

}  // namespace
}  // namespace portcullis::audit
