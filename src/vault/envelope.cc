// Envelope encryption: per-blob data keys, XChaCha20-Poly1305-IETF, canonical associated data.
#include "portcullis/envelope.h"

#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace portcullis::vault {
namespace {

constexpr unsigned char kAadVersion = 0x01;
constexpr unsigned char kBlobVersion = 0x01;

static_assert(kDataKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(kBlobNonceBytes == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kBlobTagBytes == crypto_aead_xchacha20poly1305_ietf_ABYTES);

void PutU32(std::string* out, std::size_t v) {
  const auto x = static_cast<std::uint32_t>(v);
  out->push_back(static_cast<char>((x >> 24) & 0xff));
  out->push_back(static_cast<char>((x >> 16) & 0xff));
  out->push_back(static_cast<char>((x >> 8) & 0xff));
  out->push_back(static_cast<char>(x & 0xff));
}

bool FitsU32(std::size_t v) { return v <= std::numeric_limits<std::uint32_t>::max(); }

// The AEAD's associated data: the blob's version byte, then the caller's canonical AAD, so a
// blob relabelled with another version number does not authenticate either. Built in a small
// stack buffer when it fits, to keep the hot path free of heap allocations.
class BlobAd {
 public:
  explicit BlobAd(std::string_view aad) {
    if (aad.size() + 1 <= sizeof(small_)) {
      small_[0] = kBlobVersion;
      std::copy(aad.begin(), aad.end(), small_ + 1);
      data_ = small_;
    } else {
      large_.reserve(aad.size() + 1);
      large_.push_back(static_cast<char>(kBlobVersion));
      large_.append(aad);
      data_ = reinterpret_cast<const unsigned char*>(large_.data());
    }
    size_ = aad.size() + 1;
  }
  [[nodiscard]] const unsigned char* data() const { return data_; }
  [[nodiscard]] unsigned long long size() const { return size_; }

 private:
  unsigned char small_[512] = {};
  std::string large_;
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

Status CheckKey(const SecretBytes& key) {
  if (key.size() != kDataKeyBytes) {
    return Status::InvalidArgument("data key must be " + std::to_string(kDataKeyBytes) +
                                   " bytes, got " + std::to_string(key.size()));
  }
  return Status::Ok();
}

// One data-key buffer per thread, reused by SealRecord/OpenRecord: sodium_malloc costs an mmap,
// two mprotects and an mlock (tens of microseconds, a third of a 50 KB put), while the key itself
// only needs to live for one call. It is wiped when each call returns.
SecretBytes& ScratchDataKey() {
  thread_local SecretBytes key(kDataKeyBytes);
  return key;
}

class WipeOnReturn {
 public:
  explicit WipeOnReturn(SecretBytes* key) : key_(key) {}
  WipeOnReturn(const WipeOnReturn&) = delete;
  WipeOnReturn& operator=(const WipeOnReturn&) = delete;
  ~WipeOnReturn() {
    if (!key_->empty()) sodium_memzero(key_->data(), key_->size());
  }

 private:
  SecretBytes* key_;
};

}  // namespace

Status EncodeAad(const BlobContext& context, std::string* aad) {
  aad->clear();
  std::vector<const std::pair<std::string, std::string>*> sorted;
  sorted.reserve(context.metadata.size());
  std::size_t size = 1 + 4 + context.record_id.size() + 4;
  for (const auto& kv : context.metadata) {
    if (!FitsU32(kv.first.size()) || !FitsU32(kv.second.size())) {
      return Status::InvalidArgument("metadata field over 4 GiB");
    }
    sorted.push_back(&kv);
    size += 8 + kv.first.size() + kv.second.size();
  }
  if (!FitsU32(context.record_id.size()) || !FitsU32(sorted.size())) {
    return Status::InvalidArgument("record id or metadata too large");
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i - 1]->first == sorted[i]->first) {
      return Status::InvalidArgument("duplicate metadata key '" + sorted[i]->first + "'");
    }
  }
  aad->reserve(size);
  aad->push_back(static_cast<char>(kAadVersion));
  PutU32(aad, context.record_id.size());
  aad->append(context.record_id);
  PutU32(aad, sorted.size());
  for (const auto* kv : sorted) {
    PutU32(aad, kv->first.size());
    aad->append(kv->first);
    PutU32(aad, kv->second.size());
    aad->append(kv->second);
  }
  return Status::Ok();
}

SecretBytes NewDataKey() { return SecretBytes::Random(kDataKeyBytes); }

Status SealBlob(const SecretBytes& data_key, std::string_view aad, std::string_view plaintext,
                std::string* sealed) {
  PORTCULLIS_RETURN_IF_ERROR(EnsureSodium());
  PORTCULLIS_RETURN_IF_ERROR(CheckKey(data_key));
  if (plaintext.size() >
      crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX - kSealedBlobOverhead) {
    return Status::ResourceExhausted("blob too large to seal");
  }
  // One allocation: the output is sized once and the cipher writes straight into it.
  sealed->resize(plaintext.size() + kSealedBlobOverhead);
  auto* out = reinterpret_cast<unsigned char*>(sealed->data());
  out[0] = kBlobVersion;
  unsigned char* nonce = out + 1;
  randombytes_buf(nonce, kBlobNonceBytes);
  const BlobAd ad(aad);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + kBlobNonceBytes, &written, reinterpret_cast<const unsigned char*>(plaintext.data()),
      plaintext.size(), ad.data(), ad.size(), nullptr, nonce, data_key.data());
  if (written != plaintext.size() + kBlobTagBytes) {
    sealed->clear();
    return Status::Internal("AEAD encryption wrote an unexpected length");
  }
  return Status::Ok();
}

Status OpenBlob(const SecretBytes& data_key, std::string_view aad, std::string_view sealed,
                std::string* plaintext) {
  plaintext->clear();
  PORTCULLIS_RETURN_IF_ERROR(EnsureSodium());
  PORTCULLIS_RETURN_IF_ERROR(CheckKey(data_key));
  if (sealed.size() < kSealedBlobOverhead) {
    return Status::Corruption("sealed blob truncated: " + std::to_string(sealed.size()) + " bytes");
  }
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  if (in[0] != kBlobVersion) {
    return Status::Corruption("sealed blob has unknown version " + std::to_string(in[0]));
  }
  const unsigned char* nonce = in + 1;
  const unsigned char* ciphertext = nonce + kBlobNonceBytes;
  const std::size_t ciphertext_size = sealed.size() - 1 - kBlobNonceBytes;
  plaintext->resize(ciphertext_size - kBlobTagBytes);
  const BlobAd ad(aad);
  unsigned long long written = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plaintext->data()), &written, nullptr, ciphertext,
          ciphertext_size, ad.data(), ad.size(), nonce, data_key.data()) != 0) {
    // libsodium writes nothing on failure, but leave no doubt: no partial plaintext escapes.
    sodium_memzero(plaintext->data(), plaintext->size());
    plaintext->clear();
    return Status::Corruption(
        "sealed blob does not authenticate (altered, wrong key or wrong record)");
  }
  return Status::Ok();
}

Status SealRecord(KeyProvider& provider, const std::string& kek_id, const BlobContext& context,
                  std::string_view plaintext, SealedRecord* record) {
  std::string aad;
  PORTCULLIS_RETURN_IF_ERROR(EncodeAad(context, &aad));
  PORTCULLIS_RETURN_IF_ERROR(EnsureSodium());
  SecretBytes& data_key = ScratchDataKey();
  if (data_key.size() != kDataKeyBytes) data_key = SecretBytes(kDataKeyBytes);
  const WipeOnReturn wipe(&data_key);
  randombytes_buf(data_key.data(), data_key.size());
  PORTCULLIS_RETURN_IF_ERROR(provider.WrapKey(kek_id, data_key, &record->wrapped_key));
  return SealBlob(data_key, aad, plaintext, &record->blob);
}

Status OpenRecord(KeyProvider& provider, const std::string& kek_id, const BlobContext& context,
                  const SealedRecord& record, std::string* plaintext) {
  plaintext->clear();
  std::string aad;
  PORTCULLIS_RETURN_IF_ERROR(EncodeAad(context, &aad));
  SecretBytes& data_key = ScratchDataKey();
  const WipeOnReturn wipe(&data_key);
  PORTCULLIS_RETURN_IF_ERROR(provider.UnwrapKey(kek_id, record.wrapped_key, &data_key));
  return OpenBlob(data_key, aad, record.blob, plaintext);
}

}  // namespace portcullis::vault
