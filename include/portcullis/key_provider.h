// Key providers: where the vault's key-encryption keys (KEKs) live. A KEK never leaves its
// provider; the vault hands it a data key to wrap or a wrapped key to unwrap. Destroying a KEK
// is crypto-shredding: every data key it wrapped — in the database, in every backup — is dead.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/status.h"

namespace portcullis::vault {

// Key material held in memory: locked against swapping where the OS allows and wiped on
// destruction (libsodium's sodium_malloc/sodium_free).
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t size);
  ~SecretBytes();
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;

  [[nodiscard]] unsigned char* data() { return data_; }
  [[nodiscard]] const unsigned char* data() const { return data_; }
  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

class KeyProvider {
 public:
  virtual ~KeyProvider() = default;

  // "keyring:/path/to/file" or "pkcs11:<token label>": for logs and `vault init` output.
  [[nodiscard]] virtual std::string Describe() const = 0;

  // Creates the KEK named kek_id unless it exists (idempotent).
  virtual Status EnsureKek(const std::string& kek_id) = 0;
  // Wraps (encrypts and authenticates) a data key under a KEK. NotFound if the KEK does not
  // exist (e.g. already destroyed).
  virtual Status WrapKey(const std::string& kek_id, const SecretBytes& data_key,
                         std::string* wrapped) = 0;
  // Unwraps; Corruption when `wrapped` was not made by this KEK or was altered.
  virtual Status UnwrapKey(const std::string& kek_id, std::string_view wrapped,
                           SecretBytes* data_key) = 0;
  // Destroys a KEK irreversibly. NotFound if it does not exist.
  virtual Status DestroyKek(const std::string& kek_id) = 0;
  // The ids of the KEKs that exist, sorted.
  virtual Status ListKeks(std::vector<std::string>* kek_ids) = 0;
};

// Opens a provider from a URI:
//   keyring:PATH      a local keyring file sealed with a passphrase (Argon2id); development only
//   pkcs11:LABEL      a PKCS#11 token (module from $PORTCULLIS_PKCS11_MODULE, default SoftHSM2)
// The passphrase / PIN comes from the caller (the CLI reads it from an environment variable or a
// file, never from argv).
Status OpenKeyProvider(const std::string& uri, const std::string& secret,
                       std::unique_ptr<KeyProvider>* provider);

}  // namespace portcullis::vault
