// The ingest key pair (src/lane/ingest_key.h): the secret exists on disk only wrapped by the
// vault's key provider; every way the file, the provider or a sealed event can be wrong is a clear
// Status, never a crash and never an opened event.
#include "lane/ingest_key.h"

#include <sodium.h>

#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "portcullis/env.h"
#include "uplink_util.h"

namespace portcullis::lane {
namespace {

class IngestKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    provider_ = uplinktest::OpenTestKeyring(dir_ + "/vault.keyring", "correct horse");
    ASSERT_NE(provider_, nullptr);
    path_ = dir_ + "/ingest.key";
  }
  std::string dir_, path_;
  std::unique_ptr<vault::KeyProvider> provider_;
};

TEST_F(IngestKeyTest, CreateThenLoadGivesTheSameKeyPair) {
  IngestKeyPair created;
  Status s = CreateIngestKeyPair(path_, *provider_, &created);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(created.secret_key.size(), std::size_t{crypto_box_SECRETKEYBYTES});
  IngestKeyPair loaded;
  s = LoadIngestKeyPair(path_, *provider_, &loaded);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(loaded.public_key.bytes, created.public_key.bytes);
  EXPECT_TRUE(loaded.secret_key.Equals(created.secret_key));
  EXPECT_EQ(loaded.kek_id, kIngestKekId);

  // The file holds the public key and the wrapped secret, never the secret itself.
  const std::string text = testing::ReadAll(path_);
  const std::string secret(reinterpret_cast<const char*>(created.secret_key.data()),
                           created.secret_key.size());
  EXPECT_EQ(text.find(secret), std::string::npos);
  const nlohmann::json file = nlohmann::json::parse(text);
  EXPECT_EQ(file["format"], kIngestKeyFormat);
  EXPECT_EQ(file["version"], 1);
  EXPECT_EQ(file["kek"], kIngestKekId);
  IngestPublicKey parsed;
  ASSERT_TRUE(
      ParseIngestPublicKey("portcullis-ingest-v1 " + file["public_key"].get<std::string>(), &parsed)
          .ok());
  EXPECT_EQ(parsed.bytes, created.public_key.bytes);
}

TEST_F(IngestKeyTest, NeverReplacesAnExistingFileAndEnsureIsIdempotent) {
  IngestKeyPair first, again;
  bool created = false;
  ASSERT_TRUE(EnsureIngestKeyPair(path_, *provider_, &first, &created).ok());
  EXPECT_TRUE(created);
  EXPECT_EQ(CreateIngestKeyPair(path_, *provider_, &again).code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE(EnsureIngestKeyPair(path_, *provider_, &again, &created).ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(again.public_key.bytes, first.public_key.bytes);
}

TEST_F(IngestKeyTest, SealedEventOpensWithThePairAndCarriesEverything) {
  IngestKeyPair pair;
  ASSERT_TRUE(CreateIngestKeyPair(path_, *provider_, &pair).ok());
  const LaneEvent event = uplinktest::SampleEvent("7", 1000);
  SealedEvent sealed;
  ASSERT_TRUE(SealLaneEvent(event, pair.public_key, &sealed).ok());
  LaneEvent opened;
  const Status s = OpenSealedEvent(sealed, pair, &opened);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(opened.event_id, event.event_id);
  EXPECT_EQ(opened.sequence, event.sequence);
  ASSERT_EQ(opened.plates.size(), 1u);
  EXPECT_EQ(opened.plates[0].text, event.plates[0].text);
  ASSERT_EQ(opened.attachments.size(), event.attachments.size());
  EXPECT_EQ(opened.attachments[1].bytes, event.attachments[1].bytes);
}

TEST_F(IngestKeyTest, WrongPassphraseIsRefused) {
  IngestKeyPair pair;
  ASSERT_TRUE(CreateIngestKeyPair(path_, *provider_, &pair).ok());
  provider_.reset();
  std::unique_ptr<vault::KeyProvider> wrong;
  vault::KeyProviderOptions options;
  const Status s =
      vault::OpenKeyProvider("keyring:" + dir_ + "/vault.keyring", "wrong horse", options, &wrong);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_EQ(wrong, nullptr);
}

TEST_F(IngestKeyTest, ShreddedKekMeansNotFound) {
  IngestKeyPair pair;
  ASSERT_TRUE(CreateIngestKeyPair(path_, *provider_, &pair).ok());
  ASSERT_TRUE(provider_->DestroyKek(kIngestKekId).ok());
  IngestKeyPair loaded;
  const Status s = LoadIngestKeyPair(path_, *provider_, &loaded);
  EXPECT_EQ(s.code(), Status::Code::kNotFound) << s.ToString();
  EXPECT_TRUE(loaded.secret_key.empty());
}

TEST_F(IngestKeyTest, MissingFileIsNotFound) {
  IngestKeyPair loaded;
  EXPECT_EQ(LoadIngestKeyPair(dir_ + "/absent.key", *provider_, &loaded).code(),
            Status::Code::kNotFound);
}

TEST_F(IngestKeyTest, TamperedKeyFileIsCorruption) {
  IngestKeyPair pair;
  ASSERT_TRUE(CreateIngestKeyPair(path_, *provider_, &pair).ok());
  const nlohmann::json good = nlohmann::json::parse(testing::ReadAll(path_));
  const auto expect_corrupt = [&](const std::string& contents, const char* what) {
    ASSERT_TRUE(testing::WriteBytes(path_, contents));
    IngestKeyPair loaded;
    const Status s = LoadIngestKeyPair(path_, *provider_, &loaded);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << what << ": " << s.ToString();
  };
  // One bit of the wrapped secret flipped: the provider's authentication refuses it.
  {
    nlohmann::json bad = good;
    std::string wrapped = bad["wrapped_secret"];
    wrapped[10] = wrapped[10] == 'A' ? 'B' : 'A';
    bad["wrapped_secret"] = wrapped;
    expect_corrupt(bad.dump(), "wrapped secret altered");
  }
  // Another key pair's public key: the secret would open nothing sealed to it.
  {
    nlohmann::json bad = good;
    std::array<unsigned char, 32> pk{}, sk{};
    crypto_box_keypair(pk.data(), sk.data());
    std::string b64(sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(b64.data(), b64.size(), pk.data(), pk.size(), sodium_base64_VARIANT_ORIGINAL);
    b64.pop_back();
    bad["public_key"] = b64;
    expect_corrupt(bad.dump(), "public key swapped");
  }
  {
    nlohmann::json bad = good;
    bad["public_key"] = "not base64!";
    expect_corrupt(bad.dump(), "public key not base64");
  }
  {
    nlohmann::json bad = good;
    bad.erase("wrapped_secret");
    expect_corrupt(bad.dump(), "wrapped secret missing");
  }
  expect_corrupt("{\"format\": \"portcullis-ingest-key\"", "truncated JSON");
  expect_corrupt("", "empty file");
  expect_corrupt("[1, 2]", "not an object");
  {
    nlohmann::json bad = good;
    bad["version"] = 2;
    ASSERT_TRUE(testing::WriteBytes(path_, bad.dump()));
    IngestKeyPair loaded;
    EXPECT_EQ(LoadIngestKeyPair(path_, *provider_, &loaded).code(), Status::Code::kUnsupported);
  }
}

TEST_F(IngestKeyTest, TamperedSealedEventIsCorruption) {
  IngestKeyPair pair;
  ASSERT_TRUE(CreateIngestKeyPair(path_, *provider_, &pair).ok());
  SealedEvent sealed;
  ASSERT_TRUE(SealLaneEvent(uplinktest::SampleEvent("7", 5), pair.public_key, &sealed).ok());
  for (std::size_t at : {std::size_t{0}, std::size_t{40}, sealed.sealed.size() - 1}) {
    SealedEvent bad = sealed;
    bad.sealed[at] = static_cast<char>(bad.sealed[at] ^ 0x01);
    LaneEvent opened;
    EXPECT_EQ(OpenSealedEvent(bad, pair, &opened).code(), Status::Code::kCorruption) << at;
    EXPECT_TRUE(opened.event_id.empty());
  }
  SealedEvent truncated = sealed;
  truncated.sealed.resize(20);
  LaneEvent opened;
  EXPECT_EQ(OpenSealedEvent(truncated, pair, &opened).code(), Status::Code::kCorruption);
  // Sealed to another ingest key: does not open.
  IngestKeyPair other;
  ASSERT_TRUE(CreateIngestKeyPair(dir_ + "/other.key", *provider_, &other).ok());
  EXPECT_EQ(OpenSealedEvent(sealed, other, &opened).code(), Status::Code::kCorruption);
}

TEST_F(IngestKeyTest, SwappedEventIdOrSequenceIsCorruption) {
  IngestKeyPair pair;
  ASSERT_TRUE(CreateIngestKeyPair(path_, *provider_, &pair).ok());
  SealedEvent a, b;
  ASSERT_TRUE(SealLaneEvent(uplinktest::SampleEvent("7", 1), pair.public_key, &a).ok());
  ASSERT_TRUE(SealLaneEvent(uplinktest::SampleEvent("7", 2), pair.public_key, &b).ok());
  // b's body presented under a's id (a replay of one event as another).
  SealedEvent swapped = b;
  swapped.event_id = a.event_id;
  LaneEvent opened;
  EXPECT_EQ(OpenSealedEvent(swapped, pair, &opened).code(), Status::Code::kCorruption);
  SealedEvent resequenced = a;
  resequenced.sequence = 99;
  EXPECT_EQ(OpenSealedEvent(resequenced, pair, &opened).code(), Status::Code::kCorruption);
  EXPECT_TRUE(opened.plates.empty());
}

}  // namespace
}  // namespace portcullis::lane
