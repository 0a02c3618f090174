// OpenKeyProvider (URI dispatch), Rewrap and the KEK-id rules shared by the providers.
#include <string>

#include "keyring_provider.h"
#include "keys_internal.h"
#include "pkcs11_provider.h"
#include "portcullis/key_provider.h"

namespace portcullis::vault {

Status ValidateKekId(const std::string& kek_id) {
  if (kek_id.empty() || kek_id.size() > 200) {
    return Status::InvalidArgument("KEK id must be 1..200 characters");
  }
  for (char c : kek_id) {
    if (c < 0x21 || c > 0x7e) {
      return Status::InvalidArgument("KEK id '" + kek_id +
                                     "' has a character outside printable ASCII");
    }
  }
  return Status::Ok();
}

Status OpenKeyProvider(const std::string& uri, const std::string& secret,
                       std::unique_ptr<KeyProvider>* provider) {
  return OpenKeyProvider(uri, secret, KeyProviderOptions{}, provider);
}

Status OpenKeyProvider(const std::string& uri, const std::string& secret,
                       const KeyProviderOptions& options, std::unique_ptr<KeyProvider>* provider) {
  provider->reset();
  constexpr std::string_view kKeyring = "keyring:";
  constexpr std::string_view kPkcs11 = "pkcs11:";
  if (uri.starts_with(kKeyring)) {
    return OpenKeyringProvider(uri.substr(kKeyring.size()), secret, options, provider);
  }
  if (uri.starts_with(kPkcs11)) {
    return OpenPkcs11Provider(uri.substr(kPkcs11.size()), secret, Pkcs11Options{}, provider);
  }
  return Status::InvalidArgument("key provider URI '" + uri +
                                 "' is neither keyring:PATH nor pkcs11:LABEL");
}

Status Rewrap(KeyProvider& provider, const std::string& old_kek, const std::string& new_kek,
              std::string_view wrapped, std::string* rewrapped) {
  rewrapped->clear();
  SecretBytes data_key;
  PORTCULLIS_RETURN_IF_ERROR(provider.UnwrapKey(old_kek, wrapped, &data_key));
  return provider.WrapKey(new_kek, data_key, rewrapped);
}

}  // namespace portcullis::vault
