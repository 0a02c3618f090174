// Put/get throughput of 50 KB records (random bytes standing in for ciphertext) on both store
// backends, batch sizes 1 and 64, against the baseline the store cannot beat: the same bytes
// written to a plain file and fsynced (put), or read back with pread (get).
//
//   store_bench                                  SQLite and the file baseline (in $TMPDIR)
//   PORTCULLIS_BENCH_PG_URI=postgresql://... store_bench   also PostgreSQL
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <pqxx/pqxx>
#include <random>
#include <string>
#include <vector>

#include "vault/record_store.h"

namespace portcullis::vault {
namespace {

constexpr std::size_t kRecordBytes = std::size_t{50} * 1024;

std::string RandomBytes(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  return bytes;
}

StoredRecord SampleRecord(std::int64_t i) {
  static const std::string body = RandomBytes(kRecordBytes, 1);
  static const std::string wrapped = RandomBytes(72, 2);
  StoredRecord r;
  r.meta.id = NewRecordId();
  r.meta.type = RecordType::kPlateRead;
  r.meta.subject = SubjectCategory::kVehicle;
  r.meta.retention_class = "plate";
  r.meta.content_type = "image/jpeg";
  r.meta.created_micros = i;
  r.meta.expires_micros = i + 86400000000LL;
  r.meta.labels = {{"lane", "3"}};
  r.meta.size = body.size();
  r.kek_id = "kek/plate/2026112703";
  r.wrapped_key = wrapped;
  r.sealed = body;
  return r;
}

std::string TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "store_bench_XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

// A fresh store for one benchmark: a SQLite file in a temporary directory, or a private schema
// on the PostgreSQL server named by $PORTCULLIS_BENCH_PG_URI. Removed afterwards.
class BenchStore {
 public:
  explicit BenchStore(bool postgres) {
    if (!postgres) {
      dir_ = TempDir();
      uri_ = "sqlite:" + dir_ + "/bench.db";
    } else {
      const char* base = std::getenv("PORTCULLIS_BENCH_PG_URI");
      if (base == nullptr) {
        error_ = "set PORTCULLIS_BENCH_PG_URI (scripts/pg_test_server.sh start DIR writes one)";
        return;
      }
      base_ = base;
      schema_ = "bench_" + NewRecordId();
      try {
        pqxx::connection conn(base_);
        pqxx::nontransaction txn(conn);
        txn.exec("CREATE SCHEMA " + schema_);
      } catch (const std::exception& e) {
        error_ = e.what();
        return;
      }
      uri_ = base_ + (base_.find('?') == std::string::npos ? "?" : "&") +
             "options=-csearch_path%3D" + schema_;
    }
    Status s = RecordStore::Open(uri_, &store_);
    if (s.ok()) s = store_->Migrate();
    if (!s.ok()) error_ = s.ToString();
  }
  ~BenchStore() {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    if (!schema_.empty()) {
      try {
        pqxx::connection conn(base_);
        pqxx::nontransaction txn(conn);
        txn.exec("DROP SCHEMA " + schema_ + " CASCADE");
      } catch (const std::exception&) {
      }
    }
  }
  BenchStore(const BenchStore&) = delete;
  BenchStore& operator=(const BenchStore&) = delete;

  RecordStore* get() { return store_.get(); }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  std::string uri_, dir_, base_, schema_, error_;
  std::unique_ptr<RecordStore> store_;
};

void Put(benchmark::State& state, bool postgres) {
  BenchStore store(postgres);
  if (!store.error().empty()) {
    state.SkipWithError(store.error().c_str());
    return;
  }
  const auto batch_size = static_cast<std::size_t>(state.range(0));
  std::vector<StoredRecord> batch;
  for (std::size_t i = 0; i < batch_size; ++i) batch.push_back(SampleRecord(0));
  for (auto _ : state) {
    for (StoredRecord& r : batch) r.meta.id = NewRecordId();
    Status s = store.get()->Put(batch);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * state.range(0) *
                          static_cast<std::int64_t>(kRecordBytes));
}

void Get(benchmark::State& state, bool postgres) {
  BenchStore store(postgres);
  if (!store.error().empty()) {
    state.SkipWithError(store.error().c_str());
    return;
  }
  std::vector<std::string> ids;
  std::vector<StoredRecord> batch;
  for (int i = 0; i < 1000; ++i) {
    batch.push_back(SampleRecord(i));
    ids.push_back(batch.back().meta.id);
    if (batch.size() == 100) {
      if (!store.get()->Put(batch).ok()) {
        state.SkipWithError("setup Put failed");
        return;
      }
      batch.clear();
    }
  }
  std::mt19937 rng(3);
  StoredRecord got;
  for (auto _ : state) {
    Status s = store.get()->Get(ids[rng() % ids.size()], &got);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(got.sealed.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kRecordBytes));
}

// Baseline: append the batch's bytes to a file and fsync once per batch, as a store must.
void BM_FileWriteFsync(benchmark::State& state) {
  std::string dir = TempDir();
  std::string path = dir + "/baseline.bin";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  const std::string body = RandomBytes(kRecordBytes, 1);
  for (auto _ : state) {
    for (std::int64_t i = 0; i < state.range(0); ++i) {
      if (::write(fd, body.data(), body.size()) != static_cast<ssize_t>(body.size())) {
        state.SkipWithError("write failed");
        break;
      }
    }
    if (::fsync(fd) != 0) state.SkipWithError("fsync failed");
  }
  ::close(fd);
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * state.range(0) *
                          static_cast<std::int64_t>(kRecordBytes));
}

// Baseline: pread 50 KB at a random record offset of a file in the page cache.
void BM_FileRead(benchmark::State& state) {
  std::string dir = TempDir();
  std::string path = dir + "/baseline.bin";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0600);
  const std::string body = RandomBytes(kRecordBytes, 1);
  constexpr int kRecords = 1000;
  for (int i = 0; i < kRecords; ++i) {
    if (::write(fd, body.data(), body.size()) != static_cast<ssize_t>(body.size())) break;
  }
  std::mt19937 rng(3);
  std::string buffer(kRecordBytes, '\0');
  for (auto _ : state) {
    auto offset = static_cast<off_t>((rng() % kRecords) * kRecordBytes);
    if (::pread(fd, buffer.data(), buffer.size(), offset) != static_cast<ssize_t>(buffer.size())) {
      state.SkipWithError("pread failed");
      break;
    }
    benchmark::DoNotOptimize(buffer.data());
  }
  ::close(fd);
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kRecordBytes));
}

void BM_SqlitePut(benchmark::State& state) { Put(state, false); }
void BM_PostgresPut(benchmark::State& state) { Put(state, true); }
void BM_SqliteGet(benchmark::State& state) { Get(state, false); }
void BM_PostgresGet(benchmark::State& state) { Get(state, true); }

BENCHMARK(BM_FileWriteFsync)->Arg(1)->Arg(64)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SqlitePut)->Arg(1)->Arg(64)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PostgresPut)->Arg(1)->Arg(64)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FileRead)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SqliteGet)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PostgresGet)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace portcullis::vault

BENCHMARK_MAIN();
