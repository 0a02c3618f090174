// Envelope encryption throughput for 50 KB blobs against its ceiling, raw libsodium
// XChaCha20-Poly1305 in the same run, plus the latency of wrapping a data key in a keyring and in
// a SoftHSM2 token. Run: build/bench/vault/keys_bench (numbers in docs/vault-keys.md).
#include <sodium.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>

#include "portcullis/envelope.h"
#include "portcullis/key_provider.h"

namespace portcullis::vault {
namespace {

constexpr std::size_t kBlob = std::size_t{50} * 1024;

std::string RandomBlob(std::size_t n) {
  std::string s(n, '\0');
  randombytes_buf(s.data(), n);
  return s;
}

std::string TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "keys_bench.XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) std::abort();
  return pattern;
}

KeyProvider& Keyring() {
  static std::unique_ptr<KeyProvider> p = [] {
    KeyProviderOptions o;
    o.create_if_missing = true;
    o.keyring_opslimit = 1;  // opening cost is not what is measured here
    o.keyring_memlimit = 8192;
    std::unique_ptr<KeyProvider> out;
    if (!OpenKeyProvider("keyring:" + TempDir() + "/keyring", "bench", o, &out).ok() ||
        !out->EnsureKek("kek/bench").ok()) {
      std::abort();
    }
    return out;
  }();
  return *p;
}

// A private SoftHSM2 token, made by the same script the tests use; nullptr if that fails.
KeyProvider* Token() {
  static std::unique_ptr<KeyProvider> p = []() -> std::unique_ptr<KeyProvider> {
    const std::string dir = TempDir() + "/softhsm";
    const std::string cmd = std::string(PORTCULLIS_SOFTHSM_TOKEN_SCRIPT) + " " + dir +
                            " keys-bench 1234 5678 >/dev/null";
    if (std::system(cmd.c_str()) != 0) return nullptr;
    ::setenv("SOFTHSM2_CONF", (dir + "/softhsm2.conf").c_str(), 1);
    std::unique_ptr<KeyProvider> out;
    if (!OpenKeyProvider("pkcs11:keys-bench", "1234", &out).ok() ||
        !out->EnsureKek("kek/bench").ok()) {
      return nullptr;
    }
    return out;
  }();
  return p.get();
}

const std::string& Aad() {
  static const std::string aad = [] {
    std::string out;
    (void)EncodeAad(
        {"2026-11-27T03:00:00Z/lane-3/000123", {{"type", "kept_capture"}, {"subject", "citizen"}}},
        &out);
    return out;
  }();
  return aad;
}

// The ceiling: one AEAD call with a fresh nonce into a buffer allocated once.
void BM_RawAeadEncrypt(benchmark::State& state) {
  const std::string plain = RandomBlob(kBlob);
  unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
  unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  crypto_aead_xchacha20poly1305_ietf_keygen(key);
  std::string out(kBlob + crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  for (auto _ : state) {
    randombytes_buf(nonce, sizeof(nonce));
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        reinterpret_cast<unsigned char*>(out.data()), nullptr,
        reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
        reinterpret_cast<const unsigned char*>(Aad().data()), Aad().size(), nullptr, nonce, key);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBlob));
}
BENCHMARK(BM_RawAeadEncrypt);

void BM_RawAeadDecrypt(benchmark::State& state) {
  const std::string plain = RandomBlob(kBlob);
  unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
  unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  crypto_aead_xchacha20poly1305_ietf_keygen(key);
  randombytes_buf(nonce, sizeof(nonce));
  std::string sealed(kBlob + crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(sealed.data()), nullptr,
      reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
      reinterpret_cast<const unsigned char*>(Aad().data()), Aad().size(), nullptr, nonce, key);
  std::string out(kBlob, '\0');
  for (auto _ : state) {
    const int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
        reinterpret_cast<unsigned char*>(out.data()), nullptr, nullptr,
        reinterpret_cast<const unsigned char*>(sealed.data()), sealed.size(),
        reinterpret_cast<const unsigned char*>(Aad().data()), Aad().size(), nonce, key);
    benchmark::DoNotOptimize(rc);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBlob));
}
BENCHMARK(BM_RawAeadDecrypt);

// SealBlob alone (the data key already exists): the format's own overhead.
void BM_SealBlob(benchmark::State& state) {
  const std::string plain = RandomBlob(kBlob);
  const SecretBytes key = NewDataKey();
  std::string sealed;
  for (auto _ : state) {
    if (!SealBlob(key, Aad(), plain, &sealed).ok()) state.SkipWithError("seal failed");
    benchmark::DoNotOptimize(sealed.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBlob));
}
BENCHMARK(BM_SealBlob);

// What a vault put costs in keys: AAD encoding, a new data key (sodium_malloc), the keyring wrap
// and the seal.
void BM_SealRecordKeyring(benchmark::State& state) {
  const std::string plain = RandomBlob(kBlob);
  const BlobContext ctx{"2026-11-27T03:00:00Z/lane-3/000123",
                        {{"type", "kept_capture"}, {"subject", "citizen"}}};
  SealedRecord record;
  for (auto _ : state) {
    if (!SealRecord(Keyring(), "kek/bench", ctx, plain, &record).ok())
      state.SkipWithError("seal failed");
    benchmark::DoNotOptimize(record.blob.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBlob));
}
BENCHMARK(BM_SealRecordKeyring);

void BM_OpenRecordKeyring(benchmark::State& state) {
  const std::string plain = RandomBlob(kBlob);
  const BlobContext ctx{"2026-11-27T03:00:00Z/lane-3/000123",
                        {{"type", "kept_capture"}, {"subject", "citizen"}}};
  SealedRecord record;
  if (!SealRecord(Keyring(), "kek/bench", ctx, plain, &record).ok()) std::abort();
  std::string out;
  for (auto _ : state) {
    if (!OpenRecord(Keyring(), "kek/bench", ctx, record, &out).ok())
      state.SkipWithError("open failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBlob));
}
BENCHMARK(BM_OpenRecordKeyring);

void BM_NewDataKey(benchmark::State& state) {
  for (auto _ : state) {
    SecretBytes key = NewDataKey();
    benchmark::DoNotOptimize(key.data());
  }
}
BENCHMARK(BM_NewDataKey);

void BM_WrapKeyring(benchmark::State& state) {
  const SecretBytes key = NewDataKey();
  std::string wrapped;
  for (auto _ : state) {
    if (!Keyring().WrapKey("kek/bench", key, &wrapped).ok()) state.SkipWithError("wrap failed");
  }
}
BENCHMARK(BM_WrapKeyring);

void BM_WrapPkcs11(benchmark::State& state) {
  KeyProvider* token = Token();
  if (token == nullptr) {
    state.SkipWithError("no SoftHSM2 token (is softhsm2 installed?)");
    return;
  }
  const SecretBytes key = NewDataKey();
  std::string wrapped;
  for (auto _ : state) {
    if (!token->WrapKey("kek/bench", key, &wrapped).ok()) state.SkipWithError("wrap failed");
  }
}
BENCHMARK(BM_WrapPkcs11);

void BM_UnwrapPkcs11(benchmark::State& state) {
  KeyProvider* token = Token();
  if (token == nullptr) {
    state.SkipWithError("no SoftHSM2 token (is softhsm2 installed?)");
    return;
  }
  std::string wrapped;
  if (!token->WrapKey("kek/bench", NewDataKey(), &wrapped).ok()) std::abort();
  for (auto _ : state) {
    SecretBytes key;
    if (!token->UnwrapKey("kek/bench", wrapped, &key).ok()) state.SkipWithError("unwrap failed");
  }
}
BENCHMARK(BM_UnwrapPkcs11);

}  // namespace
}  // namespace portcullis::vault

BENCHMARK_MAIN();
