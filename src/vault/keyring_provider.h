// The keyring provider (`keyring:PATH`): KEKs in a local file sealed with a passphrase. For
// development and tests only — the KEKs live in the process's memory while it runs; production
// uses a PKCS#11 token. File format and limits: docs/vault-keys.md.
#pragma once

#include <memory>
#include <string>

#include "portcullis/key_provider.h"

namespace portcullis::vault {

// Opens the keyring at `path` (NotFound when it is missing unless options.create_if_missing).
// A wrong passphrase is InvalidArgument("wrong passphrase or corrupt keyring"); a damaged or
// truncated file is Corruption.
Status OpenKeyringProvider(const std::string& path, const std::string& passphrase,
                           const KeyProviderOptions& options,
                           std::unique_ptr<KeyProvider>* provider);

// Size of a keyring-wrapped data key: version(1) + nonce(24) + key(32) + tag(16).
inline constexpr std::size_t kKeyringWrappedBytes = 1 + 24 + 32 + 16;

}  // namespace portcullis::vault
