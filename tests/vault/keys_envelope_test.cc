// Envelope encryption: AAD encoding, seal/open round trips, and that nothing altered ever opens.
#include <sodium.h>

#include <string>

#include <gtest/gtest.h>

#include "portcullis/envelope.h"

namespace portcullis::vault {
namespace {

using Code = Status::Code;

std::string Aad(const BlobContext& c) {
  std::string aad;
  EXPECT_TRUE(EncodeAad(c, &aad).ok());
  return aad;
}

std::string RandomText(std::size_t n) {
  std::string s(n, '\0');
  if (n > 0) randombytes_buf(s.data(), n);
  return s;
}

TEST(EnvelopeAad, CanonicalBytesAndOrderIndependence) {
  const BlobContext c{"r1", {{"b", "2"}, {"a", "1"}}};
  const std::string expected(
      "\x01\x00\x00\x00\x02r1\x00\x00\x00\x02"
      "\x00\x00\x00\x01"
      "a\x00\x00\x00\x01"
      "1\x00\x00\x00\x01"
      "b\x00\x00\x00\x01"
      "2",
      1 + 4 + 2 + 4 + 4 * 5);
  EXPECT_EQ(Aad(c), expected);
  const BlobContext reordered{"r1", {{"a", "1"}, {"b", "2"}}};
  EXPECT_EQ(Aad(c), Aad(reordered));
}

TEST(EnvelopeAad, LengthPrefixesKeepFieldsApart) {
  EXPECT_NE(Aad({"ab", {}}), Aad({"a", {{"b", ""}}}));
  EXPECT_NE(Aad({"r", {{"ab", "c"}}}), Aad({"r", {{"a", "bc"}}}));
  EXPECT_NE(Aad({"r", {}}), Aad({"r", {{"", ""}}}));
}

TEST(EnvelopeAad, DuplicateMetadataKeyIsInvalid) {
  std::string aad;
  const Status s = EncodeAad({"r", {{"k", "1"}, {"k", "2"}}}, &aad);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("'k'"), std::string::npos);
}

TEST(Envelope, RoundTripsEmptySmallAndLarge) {
  const SecretBytes key = NewDataKey();
  const std::string aad = Aad({"rec-1", {{"type", "kept_capture"}}});
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{51200}, std::size_t{3} << 20}) {
    const std::string plain = RandomText(n);
    std::string sealed;
    ASSERT_TRUE(SealBlob(key, aad, plain, &sealed).ok());
    EXPECT_EQ(sealed.size(), n + kSealedBlobOverhead);
    EXPECT_EQ(static_cast<unsigned char>(sealed[0]), 0x01);
    std::string opened;
    ASSERT_TRUE(OpenBlob(key, aad, sealed, &opened).ok()) << n;
    EXPECT_EQ(opened, plain);
  }
}

TEST(Envelope, SealingTwiceGivesDifferentNoncesAndCiphertexts) {
  const SecretBytes key = NewDataKey();
  std::string a;
  std::string b;
  ASSERT_TRUE(SealBlob(key, "x", "same plaintext", &a).ok());
  ASSERT_TRUE(SealBlob(key, "x", "same plaintext", &b).ok());
  EXPECT_NE(a.substr(1, kBlobNonceBytes), b.substr(1, kBlobNonceBytes));
  EXPECT_NE(a, b);
}

TEST(Envelope, DataKeysAreFreshAndFullLength) {
  const SecretBytes a = NewDataKey();
  const SecretBytes b = NewDataKey();
  EXPECT_EQ(a.size(), kDataKeyBytes);
  EXPECT_FALSE(a.Equals(b));
}

// Every single-bit change anywhere — version, nonce, ciphertext, tag — is Corruption.
TEST(Envelope, EveryBitFlipIsCorruption) {
  const SecretBytes key = NewDataKey();
  const std::string aad = Aad({"rec-2", {{"camera", "lane-3"}}});
  std::string sealed;
  ASSERT_TRUE(SealBlob(key, aad, "a face capture, 40 bytes of it ..........", &sealed).ok());
  for (std::size_t byte = 0; byte < sealed.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = sealed;
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      std::string opened = "sentinel";
      const Status s = OpenBlob(key, aad, bad, &opened);
      ASSERT_EQ(s.code(), Code::kCorruption) << "byte " << byte << " bit " << bit;
      ASSERT_TRUE(opened.empty());
    }
  }
}

TEST(Envelope, TruncationAndExtensionAreCorruption) {
  const SecretBytes key = NewDataKey();
  std::string sealed;
  ASSERT_TRUE(SealBlob(key, "aad", "plaintext", &sealed).ok());
  for (std::size_t n = 0; n < sealed.size(); ++n) {
    std::string opened;
    EXPECT_EQ(OpenBlob(key, "aad", sealed.substr(0, n), &opened).code(), Code::kCorruption) << n;
  }
  std::string opened;
  EXPECT_EQ(OpenBlob(key, "aad", sealed + "x", &opened).code(), Code::kCorruption);
}

TEST(Envelope, WrongAadIsCorruption) {
  const SecretBytes key = NewDataKey();
  const std::string aad = Aad({"rec-3", {{"subject", "citizen"}}});
  std::string sealed;
  ASSERT_TRUE(SealBlob(key, aad, "plaintext", &sealed).ok());
  std::string opened;
  EXPECT_EQ(OpenBlob(key, Aad({"rec-4", {{"subject", "citizen"}}}), sealed, &opened).code(),
            Code::kCorruption);
  EXPECT_EQ(OpenBlob(key, Aad({"rec-3", {{"subject", "non_citizen"}}}), sealed, &opened).code(),
            Code::kCorruption);
  EXPECT_EQ(OpenBlob(key, Aad({"rec-3", {}}), sealed, &opened).code(), Code::kCorruption);
  EXPECT_EQ(OpenBlob(key, "", sealed, &opened).code(), Code::kCorruption);
  EXPECT_TRUE(opened.empty());
}

TEST(Envelope, WrongKeyIsCorruption) {
  const SecretBytes key = NewDataKey();
  std::string sealed;
  ASSERT_TRUE(SealBlob(key, "aad", "plaintext", &sealed).ok());
  std::string opened;
  EXPECT_EQ(OpenBlob(NewDataKey(), "aad", sealed, &opened).code(), Code::kCorruption);
  EXPECT_TRUE(opened.empty());
}

TEST(Envelope, KeyOfWrongSizeIsInvalidArgument) {
  std::string sealed;
  EXPECT_EQ(SealBlob(SecretBytes(16), "", "x", &sealed).code(), Code::kInvalidArgument);
  EXPECT_EQ(SealBlob(SecretBytes(), "", "x", &sealed).code(), Code::kInvalidArgument);
  std::string opened;
  EXPECT_EQ(OpenBlob(SecretBytes(31), "", std::string(64, 'x'), &opened).code(),
            Code::kInvalidArgument);
}

TEST(Envelope, LongAadTakesTheHeapPathAndStillBinds) {
  const SecretBytes key = NewDataKey();
  const std::string aad(5000, 'a');
  std::string sealed;
  ASSERT_TRUE(SealBlob(key, aad, "plaintext", &sealed).ok());
  std::string opened;
  ASSERT_TRUE(OpenBlob(key, aad, sealed, &opened).ok());
  EXPECT_EQ(opened, "plaintext");
  std::string other = aad;
  other[4999] = 'b';
  EXPECT_EQ(OpenBlob(key, other, sealed, &opened).code(), Code::kCorruption);
}

TEST(SecretBytes, MoveLeavesSourceEmptyAndRandomIsRandom) {
  SecretBytes a = SecretBytes::Random(32);
  const unsigned char* p = a.data();
  SecretBytes b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): the moved-from state is the test
  EXPECT_TRUE(a.empty());   // NOLINT(bugprone-use-after-move)
  SecretBytes c;
  c = std::move(b);
  EXPECT_EQ(c.size(), 32u);
  EXPECT_FALSE(c.Equals(SecretBytes::Random(32)));
  EXPECT_TRUE(SecretBytes().Equals(SecretBytes()));
}

}  // namespace
}  // namespace portcullis::vault
