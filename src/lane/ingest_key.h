// The ingest key pair: the X25519 key pair (libsodium crypto_box) to which lane agents seal their
// events (lane_event.h). Agents hold only the public key; the service holds the secret key, and
// only in memory: on disk it exists solely wrapped by a KEK of the vault's key provider (keyring
// or PKCS#11 token), so a copy of the key file is useless without the provider, and shredding the
// KEK ("ingest-v1") makes every sealed event ever queued unreadable.
//
// Key file (JSON, written atomically, docs/lane-link.md):
//   {"format": "portcullis-ingest-key", "version": 1, "kek": "ingest-v1",
//    "public_key": "<base64, 32 bytes>", "wrapped_secret": "<base64 of WrapKey's output>"}
//
//   IngestKeyPair pair;
//   Status s = CreateIngestKeyPair(path, *provider, &pair);   // once, `portcullis vault
//   ingest-key` s = LoadIngestKeyPair(path, *provider, &pair);             // the service, at start
//   s = OpenSealedEvent(sealed, pair, &event);                 // per POSTed event
#pragma once

#include <string>

#include "portcullis/env.h"
#include "portcullis/key_provider.h"
#include "portcullis/lane_event.h"
#include "portcullis/status.h"

namespace portcullis::lane {

inline constexpr const char* kIngestKekId = "ingest-v1";
inline constexpr const char* kIngestKeyFormat = "portcullis-ingest-key";

struct IngestKeyPair {
  IngestPublicKey public_key;
  vault::SecretBytes secret_key;  // 32 bytes (crypto_box_SECRETKEYBYTES), locked and wiped
  std::string kek_id;             // the KEK that wraps it on disk
};

// Generates a fresh key pair, wraps the secret under KEK kek_id (created when missing) and writes
// the key file atomically through env (nullptr: Env::Default()). InvalidArgument when the file
// already exists: a key pair is never replaced silently (agents in the field seal to it).
Status CreateIngestKeyPair(const std::string& path, vault::KeyProvider& provider,
                           IngestKeyPair* pair, Env* env = nullptr,
                           const std::string& kek_id = kIngestKekId);

// The CLI's idempotent form: loads the key file when it exists, else creates it. *created says
// which happened.
Status EnsureIngestKeyPair(const std::string& path, vault::KeyProvider& provider,
                           IngestKeyPair* pair, bool* created, Env* env = nullptr);

// Reads the key file and unwraps the secret. NotFound when the file or its KEK is missing (the
// KEK shredded: the key is gone for good), Corruption when the file is malformed, the wrapped
// secret was altered or the unwrapped secret does not match the public key.
Status LoadIngestKeyPair(const std::string& path, vault::KeyProvider& provider, IngestKeyPair* pair,
                         Env* env = nullptr);

// Opens a sealed event (crypto_box_seal_open), decodes it and checks that the event id and
// sequence inside equal the clear ones the queue and the HTTP headers carried. Corruption when
// the box does not open (tampered, truncated, sealed to another key) or the ids differ; the
// decrypted plaintext is wiped before return whatever the outcome.
Status OpenSealedEvent(const SealedEvent& sealed, const IngestKeyPair& pair, LaneEvent* event);

}  // namespace portcullis::lane
