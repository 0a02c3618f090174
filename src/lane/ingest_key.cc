#include "lane/ingest_key.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <string_view>

#include <nlohmann/json.hpp>

namespace portcullis::lane {
namespace {

using nlohmann::json;

constexpr int kKeyFileVersion = 1;
constexpr std::size_t kMaxKeyFileBytes = 64 * 1024;

std::string ToBase64(const unsigned char* data, std::size_t size) {
  std::string out(sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, size, sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

bool FromBase64(std::string_view text, std::string* out) {
  out->assign(text.size(), '\0');
  std::size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out->data()), out->size(), text.data(),
                        text.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return false;
  }
  out->resize(length);
  return true;
}

// True when secret is the X25519 secret key of public_key (crypto_scalarmult_base).
bool Matches(const vault::SecretBytes& secret, const IngestPublicKey& public_key) {
  std::array<unsigned char, crypto_box_PUBLICKEYBYTES> derived{};
  if (crypto_scalarmult_base(derived.data(), secret.data()) != 0) return false;
  return sodium_memcmp(derived.data(), public_key.bytes.data(), derived.size()) == 0;
}

}  // namespace

Status CreateIngestKeyPair(const std::string& path, vault::KeyProvider& provider,
                           IngestKeyPair* pair, Env* env, const std::string& kek_id) {
  static_assert(crypto_box_PUBLICKEYBYTES == kIngestPublicKeyBytes);
  PORTCULLIS_RETURN_IF_ERROR(vault::EnsureSodium());
  if (env == nullptr) env = Env::Default();
  if (env->KindOf(path) != FileKind::kMissing) {
    return Status::InvalidArgument("ingest key file " + path +
                                   " already exists: it is never replaced");
  }
  IngestKeyPair fresh;
  fresh.kek_id = kek_id;
  fresh.secret_key = vault::SecretBytes(crypto_box_SECRETKEYBYTES);
  if (crypto_box_keypair(fresh.public_key.bytes.data(), fresh.secret_key.data()) != 0) {
    return Status::Internal("crypto_box_keypair failed");
  }
  PORTCULLIS_RETURN_IF_ERROR(provider.EnsureKek(kek_id).WithContext("ingest KEK " + kek_id));
  std::string wrapped;
  PORTCULLIS_RETURN_IF_ERROR(
      provider.WrapKey(kek_id, fresh.secret_key, &wrapped).WithContext("ingest KEK " + kek_id));
  const json file = {
      {"format", kIngestKeyFormat},
      {"version", kKeyFileVersion},
      {"kek", kek_id},
      {"public_key", ToBase64(fresh.public_key.bytes.data(), fresh.public_key.bytes.size())},
      {"wrapped_secret",
       ToBase64(reinterpret_cast<const unsigned char*>(wrapped.data()), wrapped.size())}};
  PORTCULLIS_RETURN_IF_ERROR(env->WriteFileAtomic(path, file.dump(2) + "\n").WithContext(path));
  *pair = std::move(fresh);
  return Status::Ok();
}

Status EnsureIngestKeyPair(const std::string& path, vault::KeyProvider& provider,
                           IngestKeyPair* pair, bool* created, Env* env) {
  if (env == nullptr) env = Env::Default();
  *created = env->KindOf(path) == FileKind::kMissing;
  return *created ? CreateIngestKeyPair(path, provider, pair, env)
                  : LoadIngestKeyPair(path, provider, pair, env);
}

Status LoadIngestKeyPair(const std::string& path, vault::KeyProvider& provider, IngestKeyPair* pair,
                         Env* env) {
  PORTCULLIS_RETURN_IF_ERROR(vault::EnsureSodium());
  if (env == nullptr) env = Env::Default();
  std::string text;
  PORTCULLIS_RETURN_IF_ERROR(env->ReadFile(path, kMaxKeyFileBytes, &text).WithContext(path));
  const json file = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (file.is_discarded() || !file.is_object()) {
    return Status::Corruption(path + ": ingest key file is not a JSON object");
  }
  const auto string_field = [&](const char* name, std::string* out) {
    const auto it = file.find(name);
    if (it == file.end() || !it->is_string() || it->get<std::string>().empty()) return false;
    *out = it->get<std::string>();
    return true;
  };
  std::string format, kek, public_b64, wrapped_b64;
  if (!string_field("format", &format) || format != kIngestKeyFormat) {
    return Status::Corruption(path + ": not a portcullis ingest key file");
  }
  if (!file.contains("version") || !file["version"].is_number_integer()) {
    return Status::Corruption(path + ": version missing");
  }
  if (file["version"].get<std::int64_t>() != kKeyFileVersion) {
    return Status::Unsupported(path + ": ingest key file version " + file["version"].dump() +
                               " is unknown");
  }
  if (!string_field("kek", &kek) || !string_field("public_key", &public_b64) ||
      !string_field("wrapped_secret", &wrapped_b64)) {
    return Status::Corruption(path + ": kek, public_key or wrapped_secret missing");
  }
  IngestKeyPair loaded;
  loaded.kek_id = kek;
  std::string public_bytes, wrapped;
  if (!FromBase64(public_b64, &public_bytes) || public_bytes.size() != kIngestPublicKeyBytes) {
    return Status::Corruption(path + ": public_key is not 32 bytes of base64");
  }
  std::copy(public_bytes.begin(), public_bytes.end(), loaded.public_key.bytes.begin());
  if (!FromBase64(wrapped_b64, &wrapped)) {
    return Status::Corruption(path + ": wrapped_secret is not base64");
  }
  PORTCULLIS_RETURN_IF_ERROR(
      provider.UnwrapKey(kek, wrapped, &loaded.secret_key).WithContext(path + ": KEK " + kek));
  if (loaded.secret_key.size() != crypto_box_SECRETKEYBYTES ||
      !Matches(loaded.secret_key, loaded.public_key)) {
    return Status::Corruption(path + ": the unwrapped secret key does not match the public key");
  }
  *pair = std::move(loaded);
  return Status::Ok();
}

Status OpenSealedEvent(const SealedEvent& sealed, const IngestKeyPair& pair, LaneEvent* event) {
  PORTCULLIS_RETURN_IF_ERROR(vault::EnsureSodium());
  if (pair.secret_key.size() != crypto_box_SECRETKEYBYTES) {
    return Status::InvalidArgument("ingest key pair has no secret key");
  }
  if (sealed.sealed.size() < crypto_box_SEALBYTES) {
    return Status::Corruption("sealed event is shorter than a sealed box");
  }
  std::string plaintext(sealed.sealed.size() - crypto_box_SEALBYTES, '\0');
  const int rc = crypto_box_seal_open(reinterpret_cast<unsigned char*>(plaintext.data()),
                                      reinterpret_cast<const unsigned char*>(sealed.sealed.data()),
                                      sealed.sealed.size(), pair.public_key.bytes.data(),
                                      pair.secret_key.data());
  if (rc != 0) {
    sodium_memzero(plaintext.data(), plaintext.size());
    return Status::Corruption("sealed event does not open (tampered, truncated or another key)");
  }
  LaneEvent decoded;
  Status s = DecodeLaneEvent(plaintext, &decoded);
  sodium_memzero(plaintext.data(), plaintext.size());
  if (!s.ok()) {
    decoded.Wipe();
    return s;
  }
  if (decoded.event_id != sealed.event_id || decoded.sequence != sealed.sequence) {
    decoded.Wipe();
    return Status::Corruption("sealed event's id or sequence differs from the clear ones");
  }
  *event = std::move(decoded);
  return Status::Ok();
}

}  // namespace portcullis::lane
