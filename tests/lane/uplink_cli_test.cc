// `portcullis vault ingest-key` through the real binary: creates the key file once, is idempotent
// afterwards, takes the passphrase from the environment or a file (never argv), and fails with a
// clear exit code and JSON error on a wrong passphrase, a shredded KEK or a tampered key file.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "lane/ingest_key.h"
#include "uplink_util.h"

namespace portcullis::lane {
namespace {

class IngestKeyCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    // A keyring as `vault init` makes it (cheap Argon2id for the test).
    ASSERT_NE(uplinktest::OpenTestKeyring(dir_ + "/vault.keyring", "cli passphrase"), nullptr);
  }

  testing::RunResult Run(const std::string& passphrase, const std::string& key_file,
                         bool json = true) {
    testing::RunOptions options;
    options.env = {{"PORTCULLIS_VAULT_SECRET", passphrase}};
    options.timeout_s = 60;
    std::vector<std::string> args = {
        "vault",      "ingest-key", "--keys",       "keyring:" + dir_ + "/vault.keyring",
        "--key-file", key_file,     "--public-out", dir_ + "/ingest.pub"};
    if (json) args.push_back("--json");
    return testing::RunCli(args, options);
  }

  std::string dir_;
};

TEST_F(IngestKeyCliTest, CreatesOnceThenPrintsTheSamePublicKey) {
  const std::string key_file = dir_ + "/ingest.key";
  const testing::RunResult first = Run("cli passphrase", key_file);
  ASSERT_EQ(first.exit_code, 0) << first;
  const auto lines = testing::JsonLines(first);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["command"], "ingest-key");
  EXPECT_EQ(lines[0]["created"], true);
  EXPECT_EQ(lines[0]["kek"], kIngestKekId);
  const std::string public_key = lines[0]["public_key"];
  EXPECT_EQ(testing::ReadAll(dir_ + "/ingest.pub"), public_key + "\n");
  IngestPublicKey parsed;
  ASSERT_TRUE(ParseIngestPublicKey(testing::ReadAll(dir_ + "/ingest.pub"), &parsed).ok());

  const testing::RunResult again = Run("cli passphrase", key_file);
  ASSERT_EQ(again.exit_code, 0) << again;
  const auto lines2 = testing::JsonLines(again);
  ASSERT_EQ(lines2.size(), 1u);
  EXPECT_EQ(lines2[0]["created"], false);
  EXPECT_EQ(lines2[0]["public_key"], public_key);

  // The key file it wrote opens with the keyring.
  auto provider = uplinktest::OpenTestKeyring(dir_ + "/vault.keyring", "cli passphrase");
  IngestKeyPair pair;
  ASSERT_TRUE(LoadIngestKeyPair(key_file, *provider, &pair).ok());
  EXPECT_EQ(pair.public_key.bytes, parsed.bytes);

  const testing::RunResult text = Run("cli passphrase", key_file, /*json=*/false);
  ASSERT_EQ(text.exit_code, 0) << text;
  EXPECT_NE(text.out.find(public_key), std::string::npos);
}

TEST_F(IngestKeyCliTest, WrongPassphraseShreddedKekAndTamperedFileFailClearly) {
  const std::string key_file = dir_ + "/ingest.key";
  ASSERT_EQ(Run("cli passphrase", key_file).exit_code, 0);

  const testing::RunResult wrong = Run("not the passphrase", key_file);
  EXPECT_EQ(wrong.exit_code, 2) << wrong;  // InvalidArgument, as every vault command
  auto lines = testing::JsonLines(wrong);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["error_code"], "invalid_argument");

  const testing::RunResult no_secret = Run("", key_file);
  EXPECT_EQ(no_secret.exit_code, 2) << no_secret;

  const std::string text = testing::ReadAll(key_file);
  nlohmann::json tampered = nlohmann::json::parse(text);
  std::string wrapped = tampered["wrapped_secret"];
  wrapped[5] = wrapped[5] == 'A' ? 'B' : 'A';
  tampered["wrapped_secret"] = wrapped;
  ASSERT_TRUE(testing::WriteBytes(key_file, tampered.dump()));
  const testing::RunResult corrupt = Run("cli passphrase", key_file);
  EXPECT_EQ(corrupt.exit_code, 12) << corrupt;
  lines = testing::JsonLines(corrupt);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["error_code"], "corrupt");

  ASSERT_TRUE(testing::WriteBytes(key_file, text));
  {
    auto provider = uplinktest::OpenTestKeyring(dir_ + "/vault.keyring", "cli passphrase");
    ASSERT_TRUE(provider->DestroyKek(kIngestKekId).ok());
  }
  const testing::RunResult shredded = Run("cli passphrase", key_file);
  EXPECT_EQ(shredded.exit_code, 10) << shredded;
  lines = testing::JsonLines(shredded);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["error_code"], "not_found");
}

}  // namespace
}  // namespace portcullis::lane
