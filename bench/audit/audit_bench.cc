// audit_bench: append throughput of the audit log at batch sizes 1, 64 and 1024 (and with
// concurrent group commit) against baselines in the same run, and proof generation time at
// n = 1e6 against recomputing the root from every leaf. Prints a table.
//
//   audit_bench [--dir DIR] [--leaves N]
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>  // mkdtemp
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "audit/format.h"
#include "portcullis/audit.h"

namespace {

using namespace portcullis;         // NOLINT(google-build-using-namespace): a benchmark driver
using namespace portcullis::audit;  // NOLINT(google-build-using-namespace)
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

AuditEvent Event(std::uint64_t i) {
  AuditEvent e;
  e.time_micros = 1'700'000'000'000'000 + static_cast<std::int64_t>(i);
  e.principal = "officer:" + std::to_string(i % 1000);
  e.role = "officer";
  e.purpose = "secondary inspection at gate " + std::to_string(i % 40);
  e.action = "vault.get";
  e.record_id = "record-" + std::to_string(i);
  e.result = "ok";
  return e;
}

void Row(const char* what, double per_second, const char* unit = "events/s") {
  std::printf("%-58s %14.0f %s\n", what, per_second, unit);
}

void Die(const Status& s) {
  std::fprintf(stderr, "audit_bench: %s\n", s.ToString().c_str());
  std::exit(1);
}

// Baseline: SHA-256 (the leaf hash) of encoded leaves: the hashing floor of an append.
void BaselineHash(const IdKey& id_key, std::uint64_t n) {
  std::vector<std::string> leaves(n);
  for (std::uint64_t i = 0; i < n; ++i) (void)EncodeLeaf(Event(i), id_key, &leaves[i]);
  const auto start = Clock::now();
  unsigned char sink = 0;
  for (const auto& leaf : leaves) {
    Hash h{};
    crypto_hash_sha256(h.data(), reinterpret_cast<const unsigned char*>(leaf.data()), leaf.size());
    sink ^= h[0];
  }
  const double s = Seconds(start);
  std::printf("(checksum %u)\n", sink);
  Row("baseline: SHA-256 of the leaf bytes", static_cast<double>(n) / s);
}

// Baseline: framed leaves written to a file, with an fdatasync per batch or none at all.
void BaselineWrite(const std::string& dir, const IdKey& id_key, std::uint64_t n,
                   std::uint64_t batch, bool sync) {
  const std::string path = dir + "/raw.log";
  internal::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) Die(Status::IOError(path));
  std::string leaf;
  std::string buf;
  std::uint64_t offset = 0;
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < n; i += batch) {
    buf.clear();
    for (std::uint64_t j = i; j < i + batch && j < n; ++j) {
      (void)EncodeLeaf(Event(j), id_key, &leaf);
      internal::AppendFrame(leaf, &buf);
    }
    if (Status s = internal::PWriteAll(fd.get(), path, buf, offset); !s.ok()) Die(s);
    offset += buf.size();
    if (sync) {
      if (Status s = internal::SyncFd(fd.get(), path); !s.ok()) Die(s);
    }
  }
  const double s = Seconds(start);
  const std::string what =
      sync ? "baseline: encode + write + fdatasync, batch " + std::to_string(batch)
           : "baseline: encode + write, no fsync";
  Row(what.c_str(), static_cast<double>(n) / s);
  std::filesystem::remove(path);
}

void AppendBatches(const std::string& dir, const LogKeys& keys, std::uint64_t n,
                   std::uint64_t batch) {
  std::filesystem::remove_all(dir + "/log");
  std::unique_ptr<AuditLog> log;
  if (Status s = AuditLog::Open(dir + "/log", keys, {}, &log); !s.ok()) Die(s);
  std::vector<AuditEvent> events;
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < n; i += batch) {
    events.clear();
    for (std::uint64_t j = i; j < i + batch && j < n; ++j) events.push_back(Event(j));
    if (Status s = log->AppendBatch(events); !s.ok()) Die(s);
  }
  const double s = Seconds(start);
  const std::string what = "audit log AppendBatch, batch " + std::to_string(batch);
  Row(what.c_str(), static_cast<double>(n) / s);
}

void ConcurrentAppends(const std::string& dir, const LogKeys& keys, int threads,
                       std::uint64_t per_thread) {
  std::filesystem::remove_all(dir + "/log");
  std::unique_ptr<AuditLog> log;
  if (Status s = AuditLog::Open(dir + "/log", keys, {}, &log); !s.ok()) Die(s);
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads));
  std::atomic<int> failures{0};
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (std::uint64_t i = 0; i < per_thread; ++i) {
        if (!log->Append(Event(static_cast<std::uint64_t>(t) * per_thread + i)).ok()) ++failures;
      }
    });
  }
  for (auto& th : pool) th.join();
  const double s = Seconds(start);
  if (failures > 0) Die(Status::Internal("concurrent appends failed"));
  const std::string what =
      "audit log Append, " + std::to_string(threads) + " threads (group commit)";
  Row(what.c_str(), static_cast<double>(per_thread) * threads / s);
}

void Proofs(const std::string& dir, const LogKeys& keys, std::uint64_t n) {
  const std::string log_dir = dir + "/big";
  std::filesystem::remove_all(log_dir);
  {
    std::unique_ptr<AuditLog> log;
    if (Status s = AuditLog::Open(log_dir, keys, {}, &log); !s.ok()) Die(s);
    std::vector<AuditEvent> events;
    const auto start = Clock::now();
    for (std::uint64_t i = 0; i < n; i += 4096) {
      events.clear();
      for (std::uint64_t j = i; j < i + 4096 && j < n; ++j) events.push_back(Event(j));
      if (Status s = log->AppendBatch(events); !s.ok()) Die(s);
    }
    std::printf("built a log of %llu events in %.2f s\n", static_cast<unsigned long long>(n),
                Seconds(start));
  }
  auto start = Clock::now();
  std::unique_ptr<AuditLog> log;
  if (Status s = AuditLog::Open(log_dir, keys, {}, &log); !s.ok()) Die(s);
  std::printf("%-58s %14.3f s\n", "reopen the writer (checksums + tree recomputed)",
              Seconds(start));
  start = Clock::now();
  std::unique_ptr<LogReader> reader;
  if (Status s = LogReader::Open(log_dir, &reader); !s.ok()) Die(s);
  std::printf("%-58s %14.3f s\n", "open a reader (frame scan)", Seconds(start));

  std::mt19937_64 rng(42);
  constexpr int kProofs = 2000;
  std::size_t hashes = 0;
  start = Clock::now();
  for (int i = 0; i < kProofs; ++i) {
    InclusionProof p;
    if (Status s = log->ProveInclusion(rng() % n, n, &p); !s.ok()) Die(s);
    hashes += p.path.size();
  }
  double us = Seconds(start) * 1e6 / kProofs;
  std::printf("%-58s %14.2f us (%zu hashes)\n", "inclusion proof at n (from the tree store)", us,
              hashes / kProofs);
  start = Clock::now();
  for (int i = 0; i < kProofs; ++i) {
    ConsistencyProof p;
    const std::uint64_t first = 1 + rng() % (n - 1);
    if (Status s = log->ProveConsistency(first, n, &p); !s.ok()) Die(s);
    hashes += p.path.size();
  }
  us = Seconds(start) * 1e6 / kProofs;
  std::printf("%-58s %14.2f us\n", "consistency proof (random old size, new = n)", us);

  // Baseline: what a proof costs without a node store: the root recomputed from n leaf hashes
  // (leaf hashing itself not even counted).
  std::vector<Hash> leaf_hashes(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string leaf;
    (void)reader->Leaf(i, &leaf);
    leaf_hashes[i] = LeafHash(leaf);
  }
  start = Clock::now();
  const Hash root = MerkleTreeHash(leaf_hashes);
  std::printf("%-58s %14.2f us (root %.8s...)\n", "baseline: MTH from all n leaf hashes",
              Seconds(start) * 1e6, HashToHex(root).c_str());
  std::filesystem::remove_all(log_dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::string base = std::filesystem::temp_directory_path().string();
  std::uint64_t leaves = 1'000'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dir") == 0) base = argv[i + 1];
    if (std::strcmp(argv[i], "--leaves") == 0) leaves = std::stoull(argv[i + 1]);
  }
  std::string pattern = base + "/audit_bench_XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) Die(Status::IOError(base + ": mkdtemp"));
  const std::string dir = pattern;
  if (Status s = GenerateKeys(dir + "/keys"); !s.ok()) Die(s);
  LogKeys keys;
  if (Status s = LoadLogKeys(dir + "/keys", &keys); !s.ok()) Die(s);

  std::printf("audit_bench in %s (%u hardware threads)\n", dir.c_str(),
              std::thread::hardware_concurrency());
  BaselineHash(keys.id_key, 200'000);
  BaselineWrite(dir, keys.id_key, 200'000, 1024, false);
  BaselineWrite(dir, keys.id_key, 500, 1, true);
  BaselineWrite(dir, keys.id_key, 20'000, 64, true);
  BaselineWrite(dir, keys.id_key, 200'000, 1024, true);
  AppendBatches(dir, keys, 500, 1);
  AppendBatches(dir, keys, 20'000, 64);
  AppendBatches(dir, keys, 200'000, 1024);
  ConcurrentAppends(dir, keys, 8, 500);
  Proofs(dir, keys, leaves);
  std::filesystem::remove_all(dir);
  return 0;
}
