// Key providers: where the vault's key-encryption keys (KEKs) live. A KEK never leaves its
// provider; the vault hands it a data key to wrap or a wrapped key to unwrap. Destroying a KEK
// is crypto-shredding: every data key it wrapped — in the database, in every backup — is dead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/status.h"

namespace portcullis {
class Env;
}  // namespace portcullis

namespace portcullis::vault {

// Key material held in memory: locked against swapping where the OS allows and wiped on
// destruction (libsodium's sodium_malloc/sodium_free). Allocation failure throws std::bad_alloc,
// like every other allocation in the process.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t size);
  ~SecretBytes();
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;

  // `size` bytes from the operating system's CSPRNG (randombytes_buf).
  static SecretBytes Random(std::size_t size);

  [[nodiscard]] unsigned char* data() { return data_; }
  [[nodiscard]] const unsigned char* data() const { return data_; }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  // Constant-time comparison of contents (sodium_memcmp); false when the sizes differ.
  [[nodiscard]] bool Equals(const SecretBytes& other) const;

 private:
  unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

// Initialises libsodium once per process (thread-safe; every function here calls it). Returns
// Internal if the library cannot initialise (no entropy source).
Status EnsureSodium();

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
  // Unwraps; Corruption when `wrapped` was not made by this KEK or was altered. NotFound if the
  // KEK does not exist (destroyed: the data key is gone for good).
  virtual Status UnwrapKey(const std::string& kek_id, std::string_view wrapped,
                           SecretBytes* data_key) = 0;
  // Destroys a KEK irreversibly. NotFound if it does not exist.
  virtual Status DestroyKek(const std::string& kek_id) = 0;
  // The ids of the KEKs that exist, sorted.
  virtual Status ListKeks(std::vector<std::string>* kek_ids) = 0;
};

// How OpenKeyProvider opens (or creates) a provider.
struct KeyProviderOptions {
  // keyring: create a new, empty keyring when the file does not exist (`vault init`). Without it
  // a missing keyring is NotFound. Ignored by pkcs11 (a token is initialised by its own tools).
  bool create_if_missing = false;
  // keyring: Argon2id cost for a keyring created now (an existing keyring keeps the cost it was
  // made with, recorded in its header). The defaults are libsodium's "moderate" (3 passes,
  // 256 MiB, about a second); tests pass the minimum so that the suite stays fast.
  std::uint64_t keyring_opslimit = 3;
  std::size_t keyring_memlimit = std::size_t{256} << 20;
  // Files go through this Env (nullptr: Env::Default()).
  Env* env = nullptr;
};

// Opens a provider from a URI:
//   keyring:PATH      a local keyring file sealed with a passphrase (Argon2id); development only
//   pkcs11:LABEL      a PKCS#11 token (module from $PORTCULLIS_PKCS11_MODULE, default SoftHSM2)
// The passphrase / PIN comes from the caller (the CLI reads it from an environment variable or a
// file, never from argv). Errors: InvalidArgument for a bad URI or a wrong passphrase / PIN,
// NotFound for a missing keyring file, PKCS#11 module or token, Corruption for a damaged keyring.
Status OpenKeyProvider(const std::string& uri, const std::string& secret,
                       std::unique_ptr<KeyProvider>* provider);
Status OpenKeyProvider(const std::string& uri, const std::string& secret,
                       const KeyProviderOptions& options, std::unique_ptr<KeyProvider>* provider);

// Key rotation: unwraps `wrapped` under old_kek and wraps the same data key under new_kek (which
// must exist: EnsureKek it first). The ciphertext the data key protects is never touched.
Status Rewrap(KeyProvider& provider, const std::string& old_kek, const std::string& new_kek,
              std::string_view wrapped, std::string* rewrapped);

}  // namespace portcullis::vault
