// audit_bench: append throughput of the audit log at batch sizes 1, 64 and 1024 (and with
// concurrent group commit) against baselines in the same run, and proof generation time at
// n = 1e6 against recomputing the root from every leaf. Prints a table. With --pg, the same
// appends and proofs against the PostgreSQL log (one fresh schema per case), after the file log
// rows of the same run.
//
//   audit_bench [--dir DIR] [--leaves N (0: no proofs)] [--pg postgresql://...]
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>  // mkdtemp
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <pqxx/pqxx>
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

// ---- PostgreSQL ----

// A fresh schema per case, so each starts from an empty log.
std::string PgScratch(const std::string& base, const std::string& name) {
  const std::string schema = "audit_bench_" + std::to_string(::getpid()) + "_" + name;
  try {
    pqxx::connection conn(base);
    pqxx::nontransaction txn(conn);
    txn.exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
    txn.exec("CREATE SCHEMA " + schema);
  } catch (const std::exception& e) {
    Die(Status::IOError(std::string("PostgreSQL: ") + e.what()));
  }
  return base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" +
         schema;
}

std::unique_ptr<TransparencyLog> PgOpen(const std::string& uri, const std::string& key_dir) {
  std::unique_ptr<TransparencyLog> log;
  if (Status s = OpenTransparencyLog(uri, key_dir, {}, &log); !s.ok()) Die(s);
  return log;
}

void PgAppendBatches(const std::string& base, const std::string& key_dir, std::uint64_t n,
                     std::uint64_t batch) {
  auto log = PgOpen(PgScratch(base, "b" + std::to_string(batch)), key_dir);
  std::vector<AuditEvent> events;
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < n; i += batch) {
    events.clear();
    for (std::uint64_t j = i; j < i + batch && j < n; ++j) events.push_back(Event(j));
    if (Status s = log->AppendAll(events); !s.ok()) Die(s);
  }
  const double s = Seconds(start);
  const std::string what = "PostgreSQL log AppendAll, batch " + std::to_string(batch);
  Row(what.c_str(), static_cast<double>(n) / s);
}

// `writers` processes' worth of logs (each its own connections) x `threads` threads each.
void PgConcurrent(const std::string& base, const std::string& key_dir, int writers, int threads,
                  std::uint64_t per_thread) {
  const std::string uri = PgScratch(base, "c" + std::to_string(writers));
  std::vector<std::unique_ptr<TransparencyLog>> logs;
  for (int w = 0; w < writers; ++w) logs.push_back(PgOpen(uri, key_dir));
  std::vector<std::thread> pool;
  std::atomic<int> failures{0};
  const auto start = Clock::now();
  for (int w = 0; w < writers; ++w) {
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, w, t] {
        for (std::uint64_t i = 0; i < per_thread; ++i) {
          if (!logs[static_cast<std::size_t>(w)]
                   ->Append(Event(i + static_cast<std::uint64_t>(t)))
                   .ok()) {
            ++failures;
          }
        }
      });
    }
  }
  for (auto& th : pool) th.join();
  const double s = Seconds(start);
  if (failures > 0) Die(Status::Internal("concurrent PostgreSQL appends failed"));
  const std::string what = "PostgreSQL log Append, " + std::to_string(writers) + " writer(s) x " +
                           std::to_string(threads) + " threads";
  Row(what.c_str(), static_cast<double>(per_thread) * writers * threads / s);
}

void PgProofs(const std::string& base, const std::string& key_dir, std::uint64_t n) {
  auto log = PgOpen(PgScratch(base, "proofs"), key_dir);
  std::vector<AuditEvent> events;
  auto start = Clock::now();
  for (std::uint64_t i = 0; i < n; i += 4096) {
    events.clear();
    for (std::uint64_t j = i; j < i + 4096 && j < n; ++j) events.push_back(Event(j));
    if (Status s = log->AppendAll(events); !s.ok()) Die(s);
  }
  std::printf("built a PostgreSQL log of %llu events in %.2f s\n",
              static_cast<unsigned long long>(n), Seconds(start));
  std::mt19937_64 rng(42);
  constexpr int kProofs = 500;
  start = Clock::now();
  for (int i = 0; i < kProofs; ++i) {
    InclusionProof p;
    if (Status s = log->ProveInclusion(rng() % n, n, &p); !s.ok()) Die(s);
  }
  std::printf("%-58s %14.2f us\n", "PostgreSQL inclusion proof at n (2 queries)",
              Seconds(start) * 1e6 / kProofs);
  start = Clock::now();
  for (int i = 0; i < kProofs; ++i) {
    ConsistencyProof p;
    if (Status s = log->ProveConsistency(1 + rng() % (n - 1), n, &p); !s.ok()) Die(s);
  }
  std::printf("%-58s %14.2f us\n", "PostgreSQL consistency proof (random old size)",
              Seconds(start) * 1e6 / kProofs);
  start = Clock::now();
  const std::string export_dir = std::filesystem::temp_directory_path().string() +
                                 "/audit_bench_export_" + std::to_string(::getpid());
  if (Status s = ExportLog(*log, export_dir); !s.ok()) Die(s);
  std::printf("%-58s %14.3f s\n", "export to the file format", Seconds(start));
  std::filesystem::remove_all(export_dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::string base = std::filesystem::temp_directory_path().string();
  std::uint64_t leaves = 1'000'000;
  std::string pg;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dir") == 0) base = argv[i + 1];
    if (std::strcmp(argv[i], "--leaves") == 0) leaves = std::stoull(argv[i + 1]);
    if (std::strcmp(argv[i], "--pg") == 0) pg = argv[i + 1];
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
  if (!pg.empty()) {
    PgAppendBatches(pg, dir + "/keys", 300, 1);
    PgAppendBatches(pg, dir + "/keys", 200'000, 1024);
    PgConcurrent(pg, dir + "/keys", 1, 8, 300);
    PgConcurrent(pg, dir + "/keys", 2, 8, 300);
    PgProofs(pg, dir + "/keys", 100'000);
  }
  if (leaves > 0) Proofs(dir, keys, leaves);
  std::filesystem::remove_all(dir);
  return 0;
}
