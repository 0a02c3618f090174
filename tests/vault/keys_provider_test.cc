// The KeyProvider contract, run against both providers (a keyring file and a SoftHSM2 token),
// then the PKCS#11 provider's own failure modes. (The keyring's are in keys_keyring_test.cc.)
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "keyring_provider.h"
#include "keys_test_util.h"
#include "pkcs11_provider.h"
#include "portcullis/envelope.h"
#include "portcullis/key_provider.h"

namespace portcullis::vault {
namespace {

using Code = Status::Code;
using testing::CheapKeyring;
using testing::TempDir;
using testing::UniqueKekId;

// The token made by the softhsm_token_setup CTest fixture (scripts/softhsm_token.sh).
void UseTestToken() { ::setenv("SOFTHSM2_CONF", PORTCULLIS_TEST_SOFTHSM_CONF, /*overwrite=*/0); }
constexpr char kTokenLabel[] = PORTCULLIS_TEST_TOKEN_LABEL;
constexpr char kTokenPin[] = PORTCULLIS_TEST_TOKEN_PIN;

struct KeyringKind {
  static constexpr const char* kName = "keyring";
  TempDir dir;
  Status Open(std::unique_ptr<KeyProvider>* p) {
    return OpenKeyProvider("keyring:" + dir.Path("keyring"), "correct horse", CheapKeyring(), p);
  }
};

struct Pkcs11Kind {
  static constexpr const char* kName = "pkcs11";
  Status Open(std::unique_ptr<KeyProvider>* p) {
    UseTestToken();
    return OpenKeyProvider(std::string("pkcs11:") + kTokenLabel, kTokenPin, p);
  }
};

template <typename Kind>
class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Status s = kind_.Open(&provider_);
    // No skipping: a missing token is a failed test (run the suite through ctest, whose fixture
    // creates the token, or run scripts/softhsm_token.sh first).
    ASSERT_TRUE(s.ok()) << Kind::kName << ": " << s.ToString();
  }
  // A KEK this test owns; created on the provider.
  std::string NewKek(const std::string& stem) {
    std::string id = UniqueKekId(stem);
    EXPECT_TRUE(provider_->EnsureKek(id).ok());
    return id;
  }
  SecretBytes Wrapped(const std::string& kek, std::string* wrapped,
                      SecretBytes key = NewDataKey()) {
    EXPECT_TRUE(provider_->WrapKey(kek, key, wrapped).ok());
    return key;
  }

  Kind kind_;
  std::unique_ptr<KeyProvider> provider_;
};

using ProviderKinds = ::testing::Types<KeyringKind, Pkcs11Kind>;
class KindNames {
 public:
  template <typename T>
  static std::string GetName(int /*index*/) {
    return T::kName;
  }
};
TYPED_TEST_SUITE(ProviderTest, ProviderKinds, KindNames);

TYPED_TEST(ProviderTest, DescribeNamesTheProvider) {
  EXPECT_EQ(this->provider_->Describe().rfind(std::string(TypeParam::kName) + ":", 0), 0u);
}

TYPED_TEST(ProviderTest, EnsureKekIsIdempotentAndListed) {
  const std::string kek = UniqueKekId("ensure");
  ASSERT_TRUE(this->provider_->EnsureKek(kek).ok());
  ASSERT_TRUE(this->provider_->EnsureKek(kek).ok());
  std::vector<std::string> ids;
  ASSERT_TRUE(this->provider_->ListKeks(&ids).ok());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), kek), 1);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
}

TYPED_TEST(ProviderTest, WrapUnwrapRoundTrip) {
  const std::string kek = this->NewKek("roundtrip");
  std::string wrapped;
  const SecretBytes key = this->Wrapped(kek, &wrapped);
  EXPECT_EQ(wrapped.find(std::string(reinterpret_cast<const char*>(key.data()), key.size())),
            std::string::npos);
  SecretBytes back;
  ASSERT_TRUE(this->provider_->UnwrapKey(kek, wrapped, &back).ok());
  EXPECT_TRUE(back.Equals(key));
}

TYPED_TEST(ProviderTest, UnwrapUnderAnotherKekIsCorruption) {
  const std::string a = this->NewKek("a");
  const std::string b = this->NewKek("b");
  std::string wrapped;
  this->Wrapped(a, &wrapped);
  SecretBytes back;
  EXPECT_EQ(this->provider_->UnwrapKey(b, wrapped, &back).code(), Code::kCorruption);
  EXPECT_TRUE(back.empty());
}

TYPED_TEST(ProviderTest, EveryAlteredByteOfAWrappedKeyIsCorruption) {
  const std::string kek = this->NewKek("tamper");
  std::string wrapped;
  this->Wrapped(kek, &wrapped);
  for (std::size_t i = 0; i < wrapped.size(); ++i) {
    std::string bad = wrapped;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    SecretBytes back;
    ASSERT_EQ(this->provider_->UnwrapKey(kek, bad, &back).code(), Code::kCorruption) << i;
  }
  SecretBytes back;
  EXPECT_EQ(this->provider_->UnwrapKey(kek, wrapped.substr(1), &back).code(), Code::kCorruption);
  EXPECT_EQ(this->provider_->UnwrapKey(kek, wrapped + "x", &back).code(), Code::kCorruption);
  EXPECT_EQ(this->provider_->UnwrapKey(kek, "", &back).code(), Code::kCorruption);
}

TYPED_TEST(ProviderTest, MissingKekIsNotFound) {
  const std::string kek = UniqueKekId("never-created");
  std::string wrapped;
  EXPECT_EQ(this->provider_->WrapKey(kek, NewDataKey(), &wrapped).code(), Code::kNotFound);
  EXPECT_EQ(this->provider_->DestroyKek(kek).code(), Code::kNotFound);
}

TYPED_TEST(ProviderTest, BadKekIdsAndKeySizesAreInvalidArgument) {
  EXPECT_EQ(this->provider_->EnsureKek("").code(), Code::kInvalidArgument);
  EXPECT_EQ(this->provider_->EnsureKek("has space").code(), Code::kInvalidArgument);
  EXPECT_EQ(this->provider_->EnsureKek(std::string(201, 'k')).code(), Code::kInvalidArgument);
  const std::string kek = this->NewKek("size");
  std::string wrapped;
  EXPECT_EQ(this->provider_->WrapKey(kek, SecretBytes(16), &wrapped).code(),
            Code::kInvalidArgument);
}

// Crypto-shredding: after DestroyKek the saved wrapped key is dead, also for a fresh provider.
TYPED_TEST(ProviderTest, DestroyKillsEveryWrappedKeyForGood) {
  const std::string kek = this->NewKek("shred");
  const std::string other = this->NewKek("survivor");
  std::string wrapped;
  std::string wrapped_other;
  this->Wrapped(kek, &wrapped);
  const SecretBytes key_other = this->Wrapped(other, &wrapped_other);
  ASSERT_TRUE(this->provider_->DestroyKek(kek).ok());
  SecretBytes back;
  EXPECT_EQ(this->provider_->UnwrapKey(kek, wrapped, &back).code(), Code::kNotFound);
  EXPECT_EQ(this->provider_->DestroyKek(kek).code(), Code::kNotFound);
  std::vector<std::string> ids;
  ASSERT_TRUE(this->provider_->ListKeks(&ids).ok());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), kek), 0);

  this->provider_.reset();
  ASSERT_TRUE(this->kind_.Open(&this->provider_).ok());
  EXPECT_EQ(this->provider_->UnwrapKey(kek, wrapped, &back).code(), Code::kNotFound);
  // Re-creating a KEK of the same name makes a new key: the old wrapped key stays dead.
  ASSERT_TRUE(this->provider_->EnsureKek(kek).ok());
  EXPECT_EQ(this->provider_->UnwrapKey(kek, wrapped, &back).code(), Code::kCorruption);
  ASSERT_TRUE(this->provider_->UnwrapKey(other, wrapped_other, &back).ok());
  EXPECT_TRUE(back.Equals(key_other));
}

// Rotation re-wraps the data key only; the sealed blob is untouched and opens under the new KEK.
TYPED_TEST(ProviderTest, RewrapMovesADataKeyToAnotherKek) {
  const std::string old_kek = this->NewKek("old");
  const std::string new_kek = this->NewKek("new");
  const BlobContext ctx{"rec-9", {{"type", "template"}}};
  SealedRecord record;
  ASSERT_TRUE(SealRecord(*this->provider_, old_kek, ctx, "template bytes", &record).ok());
  const std::string blob_before = record.blob;
  std::string rewrapped;
  ASSERT_TRUE(Rewrap(*this->provider_, old_kek, new_kek, record.wrapped_key, &rewrapped).ok());
  ASSERT_TRUE(this->provider_->DestroyKek(old_kek).ok());
  record.wrapped_key = rewrapped;
  std::string plain;
  ASSERT_TRUE(OpenRecord(*this->provider_, new_kek, ctx, record, &plain).ok());
  EXPECT_EQ(plain, "template bytes");
  EXPECT_EQ(record.blob, blob_before);
  // Rewrap from a destroyed KEK or to a missing one is NotFound, and produces nothing.
  EXPECT_EQ(Rewrap(*this->provider_, old_kek, new_kek, rewrapped, &plain).code(), Code::kNotFound);
  EXPECT_EQ(Rewrap(*this->provider_, new_kek, UniqueKekId("absent"), rewrapped, &plain).code(),
            Code::kNotFound);
  EXPECT_TRUE(plain.empty());
}

TYPED_TEST(ProviderTest, SealedRecordsAreBoundToTheirRecordAndDieWithTheirKek) {
  const std::string kek = this->NewKek("record");
  const BlobContext ctx{"rec-1", {{"subject", "citizen"}}};
  SealedRecord record;
  ASSERT_TRUE(SealRecord(*this->provider_, kek, ctx, "jpeg bytes", &record).ok());
  std::string plain;
  ASSERT_TRUE(OpenRecord(*this->provider_, kek, ctx, record, &plain).ok());
  EXPECT_EQ(plain, "jpeg bytes");
  EXPECT_EQ(OpenRecord(*this->provider_, kek, {"rec-2", ctx.metadata}, record, &plain).code(),
            Code::kCorruption);
  // Swapping in another record's wrapped key does not open either.
  SealedRecord other;
  ASSERT_TRUE(SealRecord(*this->provider_, kek, ctx, "jpeg bytes", &other).ok());
  SealedRecord swapped{other.wrapped_key, record.blob};
  EXPECT_EQ(OpenRecord(*this->provider_, kek, ctx, swapped, &plain).code(), Code::kCorruption);
  ASSERT_TRUE(this->provider_->DestroyKek(kek).ok());
  EXPECT_EQ(OpenRecord(*this->provider_, kek, ctx, record, &plain).code(), Code::kNotFound);
  EXPECT_TRUE(plain.empty());
}

TEST(KeyProviderUri, UnknownSchemeIsInvalidArgument) {
  std::unique_ptr<KeyProvider> p;
  EXPECT_EQ(OpenKeyProvider("vault:/x", "pw", &p).code(), Code::kInvalidArgument);
  EXPECT_EQ(OpenKeyProvider("/just/a/path", "pw", &p).code(), Code::kInvalidArgument);
  EXPECT_EQ(OpenKeyProvider("keyring:", "pw", &p).code(), Code::kInvalidArgument);
  EXPECT_EQ(OpenKeyProvider("pkcs11:", "pw", &p).code(), Code::kInvalidArgument);
}

// ---- PKCS#11 ----------------------------------------------------------------------------------

TEST(Pkcs11, WrongPinIsInvalidArgument) {
  UseTestToken();
  std::unique_ptr<KeyProvider> p;
  const Status s = OpenPkcs11Provider(kTokenLabel, "not-the-pin", Pkcs11Options{}, &p);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("wrong PIN"), std::string::npos);
  EXPECT_EQ(p, nullptr);
}

TEST(Pkcs11, MissingTokenIsNotFound) {
  UseTestToken();
  std::unique_ptr<KeyProvider> p;
  const Status s = OpenPkcs11Provider("no-such-token", kTokenPin, Pkcs11Options{}, &p);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find("no-such-token"), std::string::npos);
}

TEST(Pkcs11, MissingModuleIsNotFound) {
  std::unique_ptr<KeyProvider> p;
  const Status s = OpenPkcs11Provider(kTokenLabel, kTokenPin, {"/nonexistent/libpkcs11.so"}, &p);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find("/nonexistent/libpkcs11.so"), std::string::npos);
}

TEST(Pkcs11, ModuleFromEnvironmentVariable) {
  ::setenv("PORTCULLIS_PKCS11_MODULE", "/nonexistent/from-env.so", 1);
  std::unique_ptr<KeyProvider> p;
  const Status s = OpenKeyProvider(std::string("pkcs11:") + kTokenLabel, kTokenPin, &p);
  ::unsetenv("PORTCULLIS_PKCS11_MODULE");
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find("from-env.so"), std::string::npos);
}

TEST(Pkcs11, AFileThatIsNotAModuleIsUnsupported) {
  TempDir dir;
  const std::string fake = dir.Path("fake.so");
  std::ofstream(fake) << "not an ELF file";
  std::unique_ptr<KeyProvider> p;
  EXPECT_EQ(OpenPkcs11Provider(kTokenLabel, kTokenPin, {fake}, &p).code(), Code::kUnsupported);
}

TEST(Pkcs11, ReturnValuesMapToDistinctStatuses) {
  EXPECT_TRUE(Pkcs11Status(0x0 /*CKR_OK*/, "x").ok());
  EXPECT_EQ(Pkcs11Status(0xa0 /*CKR_PIN_INCORRECT*/, "x").code(), Code::kInvalidArgument);
  const Status locked = Pkcs11Status(0xa4 /*CKR_PIN_LOCKED*/, "C_Login");
  EXPECT_EQ(locked.code(), Code::kIOError);
  EXPECT_NE(locked.message().find("locked"), std::string::npos);
  EXPECT_EQ(Pkcs11Status(0xe0 /*CKR_TOKEN_NOT_PRESENT*/, "x").code(), Code::kNotFound);
  EXPECT_EQ(Pkcs11Status(0x110 /*CKR_WRAPPED_KEY_INVALID*/, "x").code(), Code::kCorruption);
  EXPECT_EQ(Pkcs11Status(0x70 /*CKR_MECHANISM_INVALID*/, "x").code(), Code::kUnsupported);
  EXPECT_EQ(Pkcs11Status(0x5 /*CKR_GENERAL_ERROR*/, "C_Foo").code(), Code::kInternal);
}

// The KEK's attributes as another PKCS#11 client (OpenSC's pkcs11-tool) sees them: an AES-256
// key on the token, usable only to wrap and unwrap, sensitive and never extractable.
TEST(Pkcs11, KekIsAWrapOnlyNonExtractableKeyOnTheToken) {
  UseTestToken();
  std::unique_ptr<KeyProvider> p;
  ASSERT_TRUE(OpenPkcs11Provider(kTokenLabel, kTokenPin, Pkcs11Options{}, &p).ok());
  const std::string kek = UniqueKekId("attributes");
  ASSERT_TRUE(p->EnsureKek(kek).ok());
  p.reset();  // pkcs11-tool logs in on its own
  const std::string cmd = std::string("pkcs11-tool --module ") + kDefaultPkcs11Module +
                          " --token-label " + kTokenLabel + " --login --pin " + kTokenPin +
                          " --list-objects --type secrkey 2>/dev/null";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  ASSERT_EQ(::pclose(pipe), 0) << "pkcs11-tool (Debian package opensc) failed:\n" << out;
  const std::size_t at = out.find("label:      " + kek + "\n");
  ASSERT_NE(at, std::string::npos) << out;
  const std::size_t start = out.rfind("Secret Key Object", at);
  ASSERT_NE(start, std::string::npos);
  const std::string block = out.substr(start, out.find("Secret Key Object", at) - start);
  EXPECT_NE(block.find("AES length 32"), std::string::npos) << block;
  EXPECT_NE(block.find("Usage:      wrap, unwrap\n"), std::string::npos) << block;
  EXPECT_NE(block.find("sensitive"), std::string::npos) << block;
  EXPECT_NE(block.find("never extractable"), std::string::npos) << block;
  ASSERT_TRUE(OpenPkcs11Provider(kTokenLabel, kTokenPin, Pkcs11Options{}, &p).ok());
  EXPECT_TRUE(p->DestroyKek(kek).ok());
}

}  // namespace
}  // namespace portcullis::vault
