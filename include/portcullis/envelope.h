// Envelope encryption of the vault's blobs: each blob gets its own random 256-bit data key, the
// blob is sealed with XChaCha20-Poly1305-IETF under that key, and the data key is wrapped by a
// KEK in a KeyProvider. The sealed blob is bound to its record (id and metadata) through the
// associated data, so a blob copied onto another record does not open. Formats: docs/vault-keys.md.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "portcullis/key_provider.h"
#include "portcullis/status.h"

namespace portcullis::vault {

inline constexpr std::size_t kDataKeyBytes = 32;    // XChaCha20-Poly1305 key
inline constexpr std::size_t kBlobNonceBytes = 24;  // 192-bit random nonce
inline constexpr std::size_t kBlobTagBytes = 16;    // Poly1305 tag
// version byte + nonce + tag: a sealed blob is plaintext size + this.
inline constexpr std::size_t kSealedBlobOverhead = 1 + kBlobNonceBytes + kBlobTagBytes;

// What a sealed blob is bound to. Metadata keys must be unique; their order does not matter
// (the encoding sorts them).
struct BlobContext {
  std::string record_id;
  std::vector<std::pair<std::string, std::string>> metadata;
};

// The canonical associated-data encoding (version 1):
//   0x01 | u32be len(record_id) | record_id | u32be n | n x (u32be len(k) | k | u32be len(v) | v)
// with the pairs sorted by key. InvalidArgument on a duplicate key or a field over 4 GiB.
Status EncodeAad(const BlobContext& context, std::string* aad);

// A fresh random data key (kDataKeyBytes from the CSPRNG).
SecretBytes NewDataKey();

// Seals `plaintext` under `data_key`: sealed = 0x01 | nonce(24) | ciphertext | tag(16).
// The AEAD's associated data is the version byte followed by `aad`.
Status SealBlob(const SecretBytes& data_key, std::string_view aad, std::string_view plaintext,
                std::string* sealed);
// Opens a sealed blob. Corruption for anything that does not authenticate (a flipped bit, another
// record's aad, another key, a truncated blob, an unknown version); never returns plaintext then.
Status OpenBlob(const SecretBytes& data_key, std::string_view aad, std::string_view sealed,
                std::string* plaintext);

// The vault's whole envelope in one call: a new data key, the sealed blob and the data key
// wrapped by `kek_id` in `provider`. The data key is wiped before returning.
struct SealedRecord {
  std::string wrapped_key;
  std::string blob;
};
Status SealRecord(KeyProvider& provider, const std::string& kek_id, const BlobContext& context,
                  std::string_view plaintext, SealedRecord* record);
// The reverse: NotFound when the KEK has been destroyed (the record is crypto-shredded),
// Corruption when the wrapped key or the blob has been altered or belongs to another record.
Status OpenRecord(KeyProvider& provider, const std::string& kek_id, const BlobContext& context,
                  const SealedRecord& record, std::string* plaintext);

}  // namespace portcullis::vault
