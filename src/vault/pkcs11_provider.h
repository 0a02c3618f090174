// The PKCS#11 provider (`pkcs11:LABEL`): KEKs are AES-256 secret-key objects on a token
// (non-extractable, sensitive), and wrapping happens inside the token with CKM_AES_KEY_WRAP_PAD
// (RFC 5649). Tested against SoftHSM2; see docs/vault-keys.md.
#pragma once

#include <memory>
#include <string>

#include "portcullis/key_provider.h"

namespace portcullis::vault {

inline constexpr char kDefaultPkcs11Module[] = "/usr/lib/softhsm/libsofthsm2.so";

struct Pkcs11Options {
  // The module to load; empty: $PORTCULLIS_PKCS11_MODULE, else kDefaultPkcs11Module.
  std::string module_path;
};

// Opens the token labelled `token_label` and logs in as the user with `pin`. Errors:
// NotFound for a missing module or token, Unsupported for a file that is not a PKCS#11 module,
// InvalidArgument for a wrong PIN, IOError for a locked PIN.
Status OpenPkcs11Provider(const std::string& token_label, const std::string& pin,
                          const Pkcs11Options& options, std::unique_ptr<KeyProvider>* provider);

// How a PKCS#11 return value (CK_RV) becomes a Status; `what` names the call. Exposed for tests.
Status Pkcs11Status(unsigned long rv, const std::string& what);

}  // namespace portcullis::vault
