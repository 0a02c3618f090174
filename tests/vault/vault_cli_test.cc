// `portcullis vault ...` end to end: the real binary, a SQLite store, a keyring and an audit log
// on disk. Checks the JSON Lines contract (README, "Vault"), the exit codes, that secrets never
// come from argv, and that every command leaves verifiable lines in the audit log.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "cli_runner.h"

namespace portcullis::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using portcullis::testing::JsonLines;
using portcullis::testing::MakeTempDir;
using portcullis::testing::ReadAll;
using portcullis::testing::RunCli;
using portcullis::testing::RunOptions;
using portcullis::testing::RunResult;
using portcullis::testing::WriteBytes;

class VaultCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    store_ = "sqlite:" + dir_ + "/vault.db";
    options_.env = {{"PORTCULLIS_VAULT_SECRET", "a long development passphrase"}};
    options_.timeout_s = 120;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `vault <command> --store ... --as ... --role ... --purpose ... --json extra...`
  RunResult Vault(const std::string& command, std::vector<std::string> extra,
                  const std::string& purpose = "test of the vault CLI") {
    std::vector<std::string> args = {"vault",  command, "--store",   store_,  "--as",  "admin:1",
                                     "--role", "admin", "--purpose", purpose, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(args, options_);
  }

  std::string dir_;
  std::string store_;
  RunOptions options_;
};

TEST_F(VaultCliTest, InitPutGetListFollowTheContract) {
  RunResult r = Vault("init", {});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  std::vector<json> lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["command"], "init");
  EXPECT_EQ(lines[0]["audit_public_key"].get<std::string>().size(), 64u);
  EXPECT_TRUE(lines[0]["error"].is_null());

  const std::string file = dir_ + "/crop.jpg";
  ASSERT_TRUE(WriteBytes(file, std::string("\xff\xd8 not really a jpeg", 20)));
  r = Vault("put", {"--type", "plate_read", "--subject", "vehicle", "--content-type", "image/jpeg",
                    "--label", "lane=7", "--label", "camera=2", file});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  const json& put = lines[0];
  for (const char* key : {"id", "type", "subject", "retention_class", "content_type",
                          "created_micros", "expires_micros", "labels", "size", "file", "error"}) {
    EXPECT_TRUE(put.contains(key)) << key << " missing from " << put.dump();
  }
  EXPECT_EQ(put["type"], "plate_read");
  EXPECT_EQ(put["retention_class"], "plate");
  EXPECT_EQ(put["labels"]["lane"], "7");
  EXPECT_EQ(put["labels"]["camera"], "2");
  EXPECT_EQ(put["size"], 20);
  const std::string id = put["id"];
  EXPECT_EQ(id.size(), 32u);

  // The database file holds no plaintext.
  EXPECT_EQ(ReadAll(dir_ + "/vault.db").find("not really a jpeg"), std::string::npos);

  const std::string out = dir_ + "/out.bin";
  r = Vault("get", {id, "--out", out});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  EXPECT_EQ(ReadAll(out), ReadAll(file));

  r = Vault("list", {"--type", "plate_read"});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["id"], id);

  r = Vault("purge", {"--dry-run"});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["dry_run"], true);
  EXPECT_TRUE(lines[0]["keks"].empty());

  r = Vault("rotate", {});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["rewrapped"], 1);
  r = Vault("get", {id, "--out", out});
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  EXPECT_EQ(ReadAll(out), ReadAll(file));

  // Every command above is in the audit log, and the log verifies with the public key alone.
  r = RunCli({"audit", "verify", "--log", dir_ + "/vault.db.audit", "--key",
              dir_ + "/vault.db.audit-keys/signing.pub", "--json"},
             options_);
  ASSERT_EQ(r.exit_code, kExitOk) << r;
  lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_GE(lines[0]["tree_size"].get<int>(), 7);
}

TEST_F(VaultCliTest, WrongPassphraseMissingPurposeAndUnknownIdHaveDistinctErrors) {
  ASSERT_EQ(Vault("init", {}).exit_code, kExitOk);

  RunOptions wrong = options_;
  wrong.env = {{"PORTCULLIS_VAULT_SECRET", "not the passphrase"}};
  RunResult r = RunCli({"vault", "list", "--store", store_, "--as", "admin:1", "--role", "admin",
                        "--purpose", "p", "--json"},
                       wrong);
  EXPECT_EQ(r.exit_code, kExitUsage) << r;
  std::vector<json> lines = JsonLines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0]["error"].get<std::string>().find("passphrase"), std::string::npos);
  EXPECT_EQ(lines[0]["error_code"], "invalid_argument");

  RunOptions none = options_;
  none.env = {{"PORTCULLIS_VAULT_SECRET", ""}};
  r = RunCli({"vault", "list", "--store", store_, "--as", "a", "--role", "admin", "--purpose", "p"},
             none);
  EXPECT_EQ(r.exit_code, kExitUsage) << r;

  r = RunCli({"vault", "list", "--store", store_, "--as", "admin:1", "--role", "admin"}, options_);
  EXPECT_EQ(r.exit_code, kExitUsage) << "--purpose is required: " << r;

  r = Vault("get", {"0123456789abcdef0123456789abcdef", "--out", dir_ + "/x"});
  EXPECT_EQ(r.exit_code, kExitNotFound) << r;
  EXPECT_FALSE(fs::exists(dir_ + "/x"));

  r = Vault("put", {"--type", "plate_read", "--subject", "vehicle", dir_ + "/missing.jpg"});
  EXPECT_EQ(r.exit_code, kExitNotFound) << r;
  r = Vault("put", {"--type", "spaceship", "--subject", "vehicle", dir_ + "/missing.jpg"});
  EXPECT_EQ(r.exit_code, kExitUsage) << r;
}

TEST_F(VaultCliTest, ACorruptDatabaseIsReportedNotCrashedOn) {
  ASSERT_EQ(Vault("init", {}).exit_code, kExitOk);
  ASSERT_TRUE(WriteBytes(dir_ + "/vault.db", std::string(4096, 'x')));
  fs::remove(dir_ + "/vault.db-wal");
  fs::remove(dir_ + "/vault.db-shm");
  const RunResult r = Vault("list", {});
  EXPECT_EQ(r.exit_code, kExitCorrupt) << r;
  EXPECT_FALSE(r.signalled) << r;
}

}  // namespace
}  // namespace portcullis::cli
