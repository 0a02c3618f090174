// The vault end to end, side by side in one run (issue 4's table):
//   raw libsodium XChaCha20-Poly1305 on 50 KB blobs   — the ceiling
//   the disk: append 50 KB blocks + one fdatasync per batch — the physical bound of a durable put
//   vault put / get of 50 KB records on SQLite          — seal + wrap + store + audit, durable
//   vault put / get on PostgreSQL                        — needs PORTCULLIS_BENCH_PG_URI
//   audit append, batches of 1 and 64                    — group commit, one fsync per batch
// Throughput is bytes of plaintext per second. Wall time (UseRealTime) is what matters for a
// durable write: it includes waiting for fsync, which CPU time does not see.
//
//   build/bench/vault/vault_bench
//   scripts/pg_test_server.sh start /tmp/pgb
//   PORTCULLIS_BENCH_PG_URI="$(cat /tmp/pgb/uri)" build/bench/vault/vault_bench
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>  // mkdtemp
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "portcullis/audit.h"
#include "portcullis/vault.h"

namespace portcullis::vault {
namespace {

constexpr std::size_t kBlob = std::size_t{50} * 1024;

std::string RandomBlob(std::size_t n) {
  std::string s(n, '\0');
  randombytes_buf(s.data(), n);
  return s;
}

std::string TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "vault_bench.XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) std::abort();
  return pattern;
}

void BM_RawAead(benchmark::State& state) {
  if (sodium_init() < 0) std::abort();
  const std::string plain = RandomBlob(kBlob);
  unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
  unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  crypto_aead_xchacha20poly1305_ietf_keygen(key);
  std::string out(kBlob + crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  for (auto _ : state) {
    randombytes_buf(nonce, sizeof(nonce));
    unsigned long long len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(reinterpret_cast<unsigned char*>(out.data()), &len,
                                               reinterpret_cast<const unsigned char*>(plain.data()),
                                               plain.size(), nullptr, 0, nullptr, nonce, key);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBlob));
}
BENCHMARK(BM_RawAead)->UseRealTime();

// The disk itself: what a durable put could reach at best. Appends `batch` sealed-size 50 KB
// blocks to a file in the directory the vaults use and fdatasyncs once per batch (the segment
// files' pattern), so the table can say what fraction of the physically possible a put reaches.
void BM_DiskAppendFdatasync(benchmark::State& state) {
  const std::string dir = TempDir();
  const std::string path = dir + "/disk";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    state.SkipWithError("cannot create a file");
    return;
  }
  const auto batch = static_cast<std::size_t>(state.range(0));
  const std::string block = RandomBlob(kBlob + 41);  // a sealed 50 KB body
  off_t offset = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < batch; ++i) {
      if (::pwrite(fd, block.data(), block.size(), offset) != static_cast<ssize_t>(block.size())) {
        state.SkipWithError("write failed");
        break;
      }
      offset += static_cast<off_t>(block.size());
    }
    if (::fdatasync(fd) != 0) state.SkipWithError("fdatasync failed");
    // Keep the file from growing without bound (and the page cache from filling) on long runs.
    if (offset > (off_t{256} << 20)) {
      state.PauseTiming();
      offset = 0;
      if (::ftruncate(fd, 0) != 0 || ::fdatasync(fd) != 0) state.SkipWithError("truncate failed");
      state.ResumeTiming();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch * kBlob));
  ::close(fd);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_DiskAppendFdatasync)->Arg(1)->Arg(64)->UseRealTime();

// A vault with a real audit log (group commit) in a fresh directory.
struct BenchVault {
  std::string dir;
  std::unique_ptr<audit::AuditLog> log;
  std::unique_ptr<Vault> vault;
};

bool OpenBenchVault(const std::string& store_uri, BenchVault* bv, std::string* error) {
  bv->dir = TempDir();
  Status s = audit::GenerateKeys(bv->dir + "/audit-keys");
  audit::LogKeys keys;
  if (s.ok()) s = audit::LoadLogKeys(bv->dir + "/audit-keys", &keys);
  if (s.ok()) s = audit::AuditLog::Open(bv->dir + "/audit", keys, {}, &bv->log);
  VaultOptions options;
  options.store_uri = store_uri.empty() ? "sqlite:" + bv->dir + "/vault.db" : store_uri;
  options.key_uri = "keyring:" + bv->dir + "/keyring";
  options.key_secret = "bench";
  options.key_options.create_if_missing = true;
  options.retention_path = std::string(PORTCULLIS_SOURCE_DIR) + "/data/retention.json";
  options.audit = bv->log.get();
  if (s.ok()) s = Vault::Open(options, &bv->vault);
  if (!s.ok()) *error = s.ToString();
  return s.ok();
}

const AccessContext kCtx{"lane:7", "lane_device", "plate read at lane 7"};

void VaultPut(benchmark::State& state, const std::string& store_uri) {
  BenchVault bv;
  std::string error;
  if (!OpenBenchVault(store_uri, &bv, &error)) {
    state.SkipWithError(error.c_str());
    return;
  }
  const auto batch = static_cast<std::size_t>(state.range(0));
  const std::string body = RandomBlob(kBlob);
  std::vector<NewRecord> records(
      batch,
      NewRecord{
          RecordType::kPlateRead, SubjectCategory::kVehicle, "image/jpeg", {{"lane", "7"}}, body});
  std::vector<RecordMeta> metas;
  for (auto _ : state) {
    const Status s = bv.vault->PutBatch(kCtx, records, &metas);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch * kBlob));
  bv.vault.reset();
  bv.log.reset();
  std::filesystem::remove_all(bv.dir);
}

void VaultGet(benchmark::State& state, const std::string& store_uri) {
  BenchVault bv;
  std::string error;
  if (!OpenBenchVault(store_uri, &bv, &error)) {
    state.SkipWithError(error.c_str());
    return;
  }
  const std::string body = RandomBlob(kBlob);
  std::vector<NewRecord> records(
      64, NewRecord{RecordType::kPlateRead, SubjectCategory::kVehicle, "image/jpeg", {}, body});
  std::vector<RecordMeta> metas;
  if (!bv.vault->PutBatch(kCtx, records, &metas).ok()) {
    state.SkipWithError("setup put failed");
    return;
  }
  std::size_t i = 0;
  RecordMeta meta;
  std::string out;
  for (auto _ : state) {
    const Status s = bv.vault->Get(kCtx, metas[i++ % metas.size()].id, &meta, &out);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBlob));
  bv.vault.reset();
  bv.log.reset();
  std::filesystem::remove_all(bv.dir);
}

// Two lane threads sharing one vault (what the server does): one seals its batch while the
// other waits for its fsyncs, and their audit events share the log's group commit.
BenchVault* g_shared = nullptr;

void BM_VaultPutSqliteTwoCallers(benchmark::State& state) {
  static BenchVault shared;
  if (state.thread_index() == 0) {
    std::string error;
    if (!OpenBenchVault("", &shared, &error)) {
      state.SkipWithError(error.c_str());
      return;
    }
    g_shared = &shared;
  }
  const auto batch = static_cast<std::size_t>(state.range(0));
  const std::string body = RandomBlob(kBlob);
  std::vector<NewRecord> records(
      batch,
      NewRecord{
          RecordType::kPlateRead, SubjectCategory::kVehicle, "image/jpeg", {{"lane", "7"}}, body});
  std::vector<RecordMeta> metas;
  for (auto _ : state) {  // starts once thread 0 has opened the vault
    const Status s = g_shared->vault->PutBatch(kCtx, records, &metas);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch * kBlob));
  if (state.thread_index() == 0) {  // after the loop's closing barrier
    shared.vault.reset();
    shared.log.reset();
    std::filesystem::remove_all(shared.dir);
    g_shared = nullptr;
  }
}
BENCHMARK(BM_VaultPutSqliteTwoCallers)->Arg(64)->Threads(2)->UseRealTime()->MeasureProcessCPUTime();

std::string PostgresUri() {
  const char* uri = std::getenv("PORTCULLIS_BENCH_PG_URI");
  return uri == nullptr ? std::string("postgresql://unset-PORTCULLIS_BENCH_PG_URI") : uri;
}

void BM_VaultPutSqlite(benchmark::State& state) { VaultPut(state, ""); }
void BM_VaultGetSqlite(benchmark::State& state) { VaultGet(state, ""); }
void BM_VaultPutPostgres(benchmark::State& state) { VaultPut(state, PostgresUri()); }
void BM_VaultGetPostgres(benchmark::State& state) { VaultGet(state, PostgresUri()); }
// Process CPU time: a large batch is sealed on two threads.
BENCHMARK(BM_VaultPutSqlite)->Arg(1)->Arg(64)->Arg(256)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_VaultGetSqlite)->UseRealTime();
BENCHMARK(BM_VaultPutPostgres)->Arg(1)->Arg(64)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_VaultGetPostgres)->UseRealTime();

void BM_AuditAppend(benchmark::State& state) {
  const std::string dir = TempDir();
  audit::LogKeys keys;
  std::unique_ptr<audit::AuditLog> log;
  if (!audit::GenerateKeys(dir + "/keys").ok() || !audit::LoadLogKeys(dir + "/keys", &keys).ok() ||
      !audit::AuditLog::Open(dir + "/log", keys, {}, &log).ok()) {
    state.SkipWithError("cannot open an audit log");
    return;
  }
  const auto batch = static_cast<std::size_t>(state.range(0));
  std::vector<audit::AuditEvent> events(
      batch, audit::AuditEvent{1795737600000000, "lane:7", "lane_device", "plate read at lane 7",
                               "vault.put", "0123456789abcdef0123456789abcdef", "ok"});
  for (auto _ : state) {
    if (!log->AppendBatch(events).ok()) {
      state.SkipWithError("append failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
  log.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AuditAppend)->Arg(1)->Arg(64)->Arg(1024)->UseRealTime();

}  // namespace
}  // namespace portcullis::vault

BENCHMARK_MAIN();
