// Maintenance grants: how the service lets a named technician into one lane device for a while.
//
// A supervisor asks the service (POST /v1/lanes/{lane}/maintenance, audited) for a session; the
// service signs a grant with its Ed25519 grant key and the device checks it offline with the
// public half pinned in its config (the link may be down during the very repair the technician
// came for). A grant names one device, one technician and a validity window; nothing else
// opens the maintenance port, and no grant opens an export path (there is none).
//
// Token: base64url(claims JSON) "." base64url(Ed25519 signature), no padding, where the
// signature covers "portcullis-maintenance-grant-v1\n" + the claims bytes (domain separation:
// no other signature made with the key can pass for a grant). Claims:
//   {"v":1,"session_id":"<32 hex>","device":"lane:7-a","lane":"7",
//    "technician":"J. Smith (Acme ALPR)","nbf":<unix s>,"exp":<unix s>}
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "portcullis/status.h"

namespace portcullis::lane {

inline constexpr std::size_t kGrantPublicKeyBytes = 32;  // crypto_sign_PUBLICKEYBYTES
inline constexpr std::size_t kGrantSecretKeyBytes = 64;  // crypto_sign_SECRETKEYBYTES
inline constexpr int kMaxGrantMinutes = 240;

struct GrantPublicKey {
  std::array<unsigned char, kGrantPublicKeyBytes> bytes{};
};
// The service's signing key. Wiped on destruction.
struct GrantSecretKey {
  std::array<unsigned char, kGrantSecretKeyBytes> bytes{};
  GrantSecretKey() = default;
  GrantSecretKey(const GrantSecretKey&) = default;
  GrantSecretKey& operator=(const GrantSecretKey&) = default;
  ~GrantSecretKey();
};

struct MaintenanceGrant {
  std::string session_id;  // 32 lower-case hex digits
  std::string device;      // principal name of the device the grant opens
  std::string lane;
  std::string technician;  // the named person, as the supervisor typed it (1..128 characters)
  std::int64_t not_before_s = 0;  // Unix seconds
  std::int64_t expires_s = 0;
};

// Key files (one line each):
//   public  "portcullis-grant-v1 <base64 32 bytes>"         (the agent's config pins it)
//   secret  "portcullis-grant-secret-v1 <base64 64 bytes>"  (the service's, mode 0600)
Status GenerateGrantKeyPair(GrantSecretKey* secret, GrantPublicKey* public_key);
Status ParseGrantPublicKey(std::string_view text, GrantPublicKey* key);
std::string FormatGrantPublicKey(const GrantPublicKey& key);
Status ParseGrantSecretKey(std::string_view text, GrantSecretKey* key);
std::string FormatGrantSecretKey(const GrantSecretKey& key);
GrantPublicKey GrantPublicKeyOf(const GrantSecretKey& key);

// Signs a grant. InvalidArgument when a field is malformed (bad session id, empty device,
// technician too long or with control characters, exp <= nbf, window > kMaxGrantMinutes).
Status SignMaintenanceGrant(const MaintenanceGrant& grant, const GrantSecretKey& key,
                            std::string* token);

// Why a grant was refused; the maintenance port answers with the code.
enum class GrantCheck {
  kOk,
  kMalformed,     // not a token, bad base64, bad JSON, missing field     (401)
  kBadSignature,  // not signed by the pinned key                          (401)
  kWrongDevice,   // signed, but for another device                        (403)
  kNotYetValid,   // now + skew < nbf                                      (403)
  kExpired,       // now - skew >= exp                                     (403)
};
const char* GrantCheckCode(GrantCheck check);  // "grant_malformed", "grant_signature_invalid",
                                               // "grant_wrong_device", "grant_not_yet_valid",
                                               // "grant_expired", "ok"

// Verifies signature, device and window against now_s (this device's wall clock) with skew_s of
// tolerance either way. On kOk, *grant holds the claims.
GrantCheck VerifyMaintenanceGrant(std::string_view token, const GrantPublicKey& key,
                                  const std::string& device, std::int64_t now_s,
                                  std::int64_t skew_s, MaintenanceGrant* grant);

// 32 lower-case hex digits from the OS CSPRNG.
std::string NewSessionId();

}  // namespace portcullis::lane
