// Maintenance grants: only a grant signed by the pinned key, for this device, inside its window
// (with a little clock skew) opens the maintenance port; everything else is refused with a code.
#include <gtest/gtest.h>

#include "lane/maintenance_grant.h"

namespace portcullis::lane {
namespace {

constexpr std::int64_t kNow = 1'790'000'000;

class GrantTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(GenerateGrantKeyPair(&secret_, &public_).ok());
    grant_.session_id = NewSessionId();
    grant_.device = "lane:7-a";
    grant_.lane = "7";
    grant_.technician = "J. Smith (Acme ALPR)";
    grant_.not_before_s = kNow;
    grant_.expires_s = kNow + 3600;
  }
  std::string Sign(const MaintenanceGrant& g) {
    std::string token;
    EXPECT_TRUE(SignMaintenanceGrant(g, secret_, &token).ok());
    return token;
  }
  GrantSecretKey secret_;
  GrantPublicKey public_;
  MaintenanceGrant grant_;
};

TEST_F(GrantTest, ValidGrantVerifiesWithItsClaims) {
  const std::string token = Sign(grant_);
  MaintenanceGrant out;
  ASSERT_EQ(VerifyMaintenanceGrant(token, public_, "lane:7-a", kNow + 10, 120, &out),
            GrantCheck::kOk);
  EXPECT_EQ(out.session_id, grant_.session_id);
  EXPECT_EQ(out.technician, grant_.technician);
  EXPECT_EQ(out.lane, "7");
  EXPECT_EQ(out.expires_s, kNow + 3600);
}

TEST_F(GrantTest, WindowWithSkew) {
  const std::string token = Sign(grant_);
  EXPECT_EQ(VerifyMaintenanceGrant(token, public_, "lane:7-a", kNow - 60, 120, nullptr),
            GrantCheck::kOk);  // our clock a minute behind: tolerated
  EXPECT_EQ(VerifyMaintenanceGrant(token, public_, "lane:7-a", kNow - 121, 120, nullptr),
            GrantCheck::kNotYetValid);
  EXPECT_EQ(VerifyMaintenanceGrant(token, public_, "lane:7-a", kNow + 3600 + 119, 120, nullptr),
            GrantCheck::kOk);
  EXPECT_EQ(VerifyMaintenanceGrant(token, public_, "lane:7-a", kNow + 3600 + 120, 120, nullptr),
            GrantCheck::kExpired);
  EXPECT_EQ(VerifyMaintenanceGrant(token, public_, "lane:7-a", kNow + 3600, 0, nullptr),
            GrantCheck::kExpired);
}

TEST_F(GrantTest, WrongDeviceAndWrongKey) {
  const std::string token = Sign(grant_);
  EXPECT_EQ(VerifyMaintenanceGrant(token, public_, "lane:8-a", kNow, 0, nullptr),
            GrantCheck::kWrongDevice);
  GrantSecretKey other_secret;
  GrantPublicKey other_public;
  ASSERT_TRUE(GenerateGrantKeyPair(&other_secret, &other_public).ok());
  EXPECT_EQ(VerifyMaintenanceGrant(token, other_public, "lane:7-a", kNow, 0, nullptr),
            GrantCheck::kBadSignature);
}

TEST_F(GrantTest, TamperedClaimsFailTheSignature) {
  const std::string token = Sign(grant_);
  // Re-encode the claims with a later expiry, keep the signature.
  MaintenanceGrant longer = grant_;
  longer.expires_s += 3600;
  const std::string forged_claims = Sign(longer).substr(0, Sign(longer).find('.'));
  const std::string forged = forged_claims + token.substr(token.find('.'));
  EXPECT_EQ(VerifyMaintenanceGrant(forged, public_, "lane:7-a", kNow, 0, nullptr),
            GrantCheck::kBadSignature);
  // Flip one signature character.
  std::string flipped = token;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  EXPECT_NE(VerifyMaintenanceGrant(flipped, public_, "lane:7-a", kNow, 0, nullptr),
            GrantCheck::kOk);
}

TEST_F(GrantTest, MalformedTokens) {
  const std::string token = Sign(grant_);
  for (const std::string& bad :
       {std::string(), std::string("abc"), std::string("a.b.c"), std::string(".") + "x",
        token + ".", std::string("!!!.") + token.substr(token.find('.') + 1),
        token.substr(0, token.find('.') + 1) + "short", std::string(5000, 'a') + ".b"}) {
    EXPECT_NE(VerifyMaintenanceGrant(bad, public_, "lane:7-a", kNow, 0, nullptr), GrantCheck::kOk)
        << bad.substr(0, 40);
  }
  EXPECT_STREQ(GrantCheckCode(GrantCheck::kMalformed), "grant_malformed");
  EXPECT_STREQ(GrantCheckCode(GrantCheck::kExpired), "grant_expired");
}

TEST_F(GrantTest, SigningRefusesBadGrants) {
  std::string token;
  MaintenanceGrant g = grant_;
  g.session_id = "xyz";
  EXPECT_EQ(SignMaintenanceGrant(g, secret_, &token).code(), Status::Code::kInvalidArgument);
  g = grant_;
  g.technician = "";
  EXPECT_EQ(SignMaintenanceGrant(g, secret_, &token).code(), Status::Code::kInvalidArgument);
  g.technician = "a\nb";
  EXPECT_EQ(SignMaintenanceGrant(g, secret_, &token).code(), Status::Code::kInvalidArgument);
  g = grant_;
  g.expires_s = g.not_before_s + 241 * 60;
  EXPECT_EQ(SignMaintenanceGrant(g, secret_, &token).code(), Status::Code::kInvalidArgument);
  g.expires_s = g.not_before_s;
  EXPECT_EQ(SignMaintenanceGrant(g, secret_, &token).code(), Status::Code::kInvalidArgument);
}

TEST_F(GrantTest, KeyFilesRoundTripAndRefuseGarbage) {
  GrantPublicKey pk;
  ASSERT_TRUE(ParseGrantPublicKey(FormatGrantPublicKey(public_), &pk).ok());
  EXPECT_EQ(pk.bytes, public_.bytes);
  GrantSecretKey sk;
  ASSERT_TRUE(ParseGrantSecretKey(FormatGrantSecretKey(secret_), &sk).ok());
  EXPECT_EQ(sk.bytes, secret_.bytes);
  EXPECT_EQ(GrantPublicKeyOf(sk).bytes, public_.bytes);
  EXPECT_FALSE(ParseGrantPublicKey("portcullis-ingest-v1 AAAA", &pk).ok());
  EXPECT_FALSE(ParseGrantPublicKey("portcullis-grant-v1 AAAA", &pk).ok());
  EXPECT_FALSE(ParseGrantSecretKey(FormatGrantPublicKey(public_), &sk).ok());
  // A secret key whose public half was replaced.
  GrantSecretKey mixed = secret_;
  mixed.bytes[63] ^= 1;
  EXPECT_FALSE(ParseGrantSecretKey(FormatGrantSecretKey(mixed), &sk).ok());
}

}  // namespace
}  // namespace portcullis::lane
