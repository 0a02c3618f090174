#include "maintenance_grant.h"

#include <sodium.h>

#include <algorithm>

#include <nlohmann/json.hpp>

namespace portcullis::lane {
namespace {

using nlohmann::json;

constexpr std::string_view kDomain = "portcullis-maintenance-grant-v1\n";
constexpr std::string_view kPublicPrefix = "portcullis-grant-v1 ";
constexpr std::string_view kSecretPrefix = "portcullis-grant-secret-v1 ";
constexpr std::size_t kMaxTokenBytes = 4096;

bool EnsureSodium() { return sodium_init() >= 0; }

std::string Base64(const unsigned char* bytes, std::size_t n, int variant) {
  std::string out(sodium_base64_ENCODED_LEN(n, variant), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes, n, variant);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

bool Unbase64(std::string_view text, int variant, std::string* out) {
  out->assign(text.size(), '\0');
  std::size_t length = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out->data()), out->size(), text.data(),
                        text.size(), nullptr, &length, &end, variant) != 0 ||
      end != text.data() + text.size()) {
    return false;
  }
  out->resize(length);
  return true;
}

std::string_view TrimLine(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  return text;
}

template <std::size_t N>
Status ParseKey(std::string_view text, std::string_view prefix, const char* what,
                std::array<unsigned char, N>* bytes) {
  text = TrimLine(text);
  if (text.substr(0, prefix.size()) != prefix) {
    return Status::InvalidArgument(std::string(what) + ": must start with '" +
                                   std::string(TrimLine(prefix)) + "'");
  }
  text.remove_prefix(prefix.size());
  std::string raw;
  if (!Unbase64(text, sodium_base64_VARIANT_ORIGINAL, &raw) || raw.size() != N) {
    sodium_memzero(raw.data(), raw.size());
    return Status::InvalidArgument(std::string(what) + ": not " + std::to_string(N) +
                                   " bytes of base64");
  }
  std::copy(raw.begin(), raw.end(), bytes->begin());
  sodium_memzero(raw.data(), raw.size());
  return Status::Ok();
}

bool ValidSessionId(const std::string& id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool ValidTechnician(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  return std::none_of(name.begin(), name.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::string SignedMessage(std::string_view claims) {
  std::string message(kDomain);
  message.append(claims);
  return message;
}

}  // namespace

GrantSecretKey::~GrantSecretKey() { sodium_memzero(bytes.data(), bytes.size()); }

Status GenerateGrantKeyPair(GrantSecretKey* secret, GrantPublicKey* public_key) {
  if (!EnsureSodium()) return Status::Internal("libsodium failed to initialise");
  crypto_sign_keypair(public_key->bytes.data(), secret->bytes.data());
  return Status::Ok();
}

Status ParseGrantPublicKey(std::string_view text, GrantPublicKey* key) {
  if (!EnsureSodium()) return Status::Internal("libsodium failed to initialise");
  return ParseKey(text, kPublicPrefix, "grant public key", &key->bytes);
}

std::string FormatGrantPublicKey(const GrantPublicKey& key) {
  EnsureSodium();
  return std::string(kPublicPrefix) +
         Base64(key.bytes.data(), key.bytes.size(), sodium_base64_VARIANT_ORIGINAL) + "\n";
}

Status ParseGrantSecretKey(std::string_view text, GrantSecretKey* key) {
  if (!EnsureSodium()) return Status::Internal("libsodium failed to initialise");
  PORTCULLIS_RETURN_IF_ERROR(ParseKey(text, kSecretPrefix, "grant secret key", &key->bytes));
  // The second half of a libsodium Ed25519 secret key is its public key: a file whose halves
  // disagree was damaged or assembled by hand, and would sign grants nobody can verify.
  unsigned char seed[crypto_sign_SEEDBYTES];
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_ed25519_sk_to_seed(seed, key->bytes.data());
  crypto_sign_seed_keypair(pk, sk, seed);
  const bool same = sodium_memcmp(sk, key->bytes.data(), sizeof sk) == 0;
  sodium_memzero(seed, sizeof seed);
  sodium_memzero(sk, sizeof sk);
  if (!same) return Status::InvalidArgument("grant secret key: inconsistent key halves");
  return Status::Ok();
}

std::string FormatGrantSecretKey(const GrantSecretKey& key) {
  EnsureSodium();
  return std::string(kSecretPrefix) +
         Base64(key.bytes.data(), key.bytes.size(), sodium_base64_VARIANT_ORIGINAL) + "\n";
}

GrantPublicKey GrantPublicKeyOf(const GrantSecretKey& key) {
  GrantPublicKey pk;
  crypto_sign_ed25519_sk_to_pk(pk.bytes.data(), key.bytes.data());
  return pk;
}

Status SignMaintenanceGrant(const MaintenanceGrant& grant, const GrantSecretKey& key,
                            std::string* token) {
  if (!EnsureSodium()) return Status::Internal("libsodium failed to initialise");
  if (!ValidSessionId(grant.session_id)) {
    return Status::InvalidArgument("session_id: must be 32 lower-case hex digits");
  }
  if (grant.device.empty() || grant.device.size() > 64) {
    return Status::InvalidArgument("device: must be 1..64 characters");
  }
  if (grant.lane.empty() || grant.lane.size() > 64) {
    return Status::InvalidArgument("lane: must be 1..64 characters");
  }
  if (!ValidTechnician(grant.technician)) {
    return Status::InvalidArgument("technician: must be 1..128 printable characters");
  }
  if (grant.expires_s <= grant.not_before_s ||
      grant.expires_s - grant.not_before_s > std::int64_t{kMaxGrantMinutes} * 60) {
    return Status::InvalidArgument("grant window must be 1 s..240 min");
  }
  const std::string claims = json{
      {"v", 1},
      {"session_id", grant.session_id},
      {"device", grant.device},
      {"lane", grant.lane},
      {"technician", grant.technician},
      {"nbf", grant.not_before_s},
      {"exp", grant.expires_s}}.dump();
  const std::string message = SignedMessage(claims);
  unsigned char signature[crypto_sign_BYTES];
  crypto_sign_detached(signature, nullptr, reinterpret_cast<const unsigned char*>(message.data()),
                       message.size(), key.bytes.data());
  *token = Base64(reinterpret_cast<const unsigned char*>(claims.data()), claims.size(),
                  sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
           "." + Base64(signature, sizeof signature, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return Status::Ok();
}

const char* GrantCheckCode(GrantCheck check) {
  switch (check) {
    case GrantCheck::kOk:
      return "ok";
    case GrantCheck::kMalformed:
      return "grant_malformed";
    case GrantCheck::kBadSignature:
      return "grant_signature_invalid";
    case GrantCheck::kWrongDevice:
      return "grant_wrong_device";
    case GrantCheck::kNotYetValid:
      return "grant_not_yet_valid";
    case GrantCheck::kExpired:
      return "grant_expired";
  }
  return "grant_malformed";
}

GrantCheck VerifyMaintenanceGrant(std::string_view token, const GrantPublicKey& key,
                                  const std::string& device, std::int64_t now_s,
                                  std::int64_t skew_s, MaintenanceGrant* grant) {
  if (!EnsureSodium() || token.empty() || token.size() > kMaxTokenBytes) {
    return GrantCheck::kMalformed;
  }
  const std::size_t dot = token.find('.');
  if (dot == std::string_view::npos || token.find('.', dot + 1) != std::string_view::npos) {
    return GrantCheck::kMalformed;
  }
  std::string claims;
  std::string signature;
  if (!Unbase64(token.substr(0, dot), sodium_base64_VARIANT_URLSAFE_NO_PADDING, &claims) ||
      !Unbase64(token.substr(dot + 1), sodium_base64_VARIANT_URLSAFE_NO_PADDING, &signature) ||
      signature.size() != crypto_sign_BYTES) {
    return GrantCheck::kMalformed;
  }
  // The signature first: nothing of an unsigned token is parsed beyond its framing.
  const std::string message = SignedMessage(claims);
  if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                  reinterpret_cast<const unsigned char*>(message.data()),
                                  message.size(), key.bytes.data()) != 0) {
    return GrantCheck::kBadSignature;
  }
  const json doc = json::parse(claims, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return GrantCheck::kMalformed;
  const auto is_string = [&](const char* k) { return doc.contains(k) && doc[k].is_string(); };
  const auto is_int = [&](const char* k) { return doc.contains(k) && doc[k].is_number_integer(); };
  if (!is_int("v") || doc["v"].get<std::int64_t>() != 1 || !is_string("session_id") ||
      !is_string("device") || !is_string("lane") || !is_string("technician") || !is_int("nbf") ||
      !is_int("exp")) {
    return GrantCheck::kMalformed;
  }
  MaintenanceGrant g;
  g.session_id = doc["session_id"].get<std::string>();
  g.device = doc["device"].get<std::string>();
  g.lane = doc["lane"].get<std::string>();
  g.technician = doc["technician"].get<std::string>();
  g.not_before_s = doc["nbf"].get<std::int64_t>();
  g.expires_s = doc["exp"].get<std::int64_t>();
  if (!ValidSessionId(g.session_id)) return GrantCheck::kMalformed;
  if (g.device != device) return GrantCheck::kWrongDevice;
  if (now_s + skew_s < g.not_before_s) return GrantCheck::kNotYetValid;
  if (now_s - skew_s >= g.expires_s) return GrantCheck::kExpired;
  if (grant != nullptr) *grant = std::move(g);
  return GrantCheck::kOk;
}

std::string NewSessionId() {
  EnsureSodium();
  unsigned char bytes[16];
  randombytes_buf(bytes, sizeof bytes);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 0xf]);
  }
  return id;
}

}  // namespace portcullis::lane
