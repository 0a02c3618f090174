// queue_bench: is the sealed queue fsync-bound (as it must be) or CPU-bound?
//
//   build-lq/bench/lane/queue_bench [--benchmark_filter=...]
//   PORTCULLIS_BENCH_DIR=/path/on/the/disk/to/measure  (default /tmp; tmpfs runs use /dev/shm)
//
// Append/<bytes>/<disk>      SealedQueue::Append of a sealed event (framing, BLAKE2b, write,
//                            fdatasync); disk 1 = PORTCULLIS_BENCH_DIR, 0 = /dev/shm (no fsync
//                            cost: what is left is the queue's CPU)
// RawWriteSync/<bytes>/<disk> the baseline: write(2) of the same record bytes + fdatasync
// Drain/<disk>               Front + PopFront of 4 KiB events (one atomic state write each)
// StateWrite/<disk>          the baseline: DataDir::WriteFileAtomic of the 32-byte state file
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <benchmark/benchmark.h>

#include "lane/data_dir.h"
#include "lane/sealed_queue.h"

namespace portcullis::lane {
namespace {

constexpr std::size_t kOverhead = 80;  // record framing (docs/lane-queue.md)

std::string BaseDir(bool disk) {
  if (!disk) return "/dev/shm";
  const char* env = std::getenv("PORTCULLIS_BENCH_DIR");
  return env != nullptr ? env : "/tmp";
}

// A private directory for one benchmark run, removed afterwards.
class ScratchDir {
 public:
  explicit ScratchDir(bool disk) {
    std::string tmpl = BaseDir(disk) + "/portcullis-queue-bench-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

SealedEvent Event(std::uint64_t sequence, const std::string& payload) {
  SealedEvent e;
  e.sequence = sequence;
  char id[33];
  std::snprintf(id, sizeof id, "%016llx%016llx", static_cast<unsigned long long>(sequence),
                static_cast<unsigned long long>(sequence * 0x9E3779B97F4A7C15ULL));
  e.event_id.assign(id, 32);
  e.sealed = payload;
  return e;
}

std::string Payload(std::size_t bytes) {
  std::string p(bytes, '\0');
  for (std::size_t i = 0; i < bytes; ++i) p[i] = static_cast<char>((i * 131 + 7) & 0xff);
  return p;
}

void Open(const ScratchDir& scratch, std::unique_ptr<DataDir>* dir,
          std::unique_ptr<SealedQueue>* queue) {
  if (!DataDir::Open(scratch.path() + "/data", dir).ok()) std::abort();
  SealedQueueOptions options;
  options.max_bytes = std::uint64_t{64} << 30;
  options.max_events = 100'000'000;
  if (!SealedQueue::Open(dir->get(), options, queue).ok()) std::abort();
}

void BM_Append(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const ScratchDir scratch(state.range(1) != 0);
  std::unique_ptr<DataDir> dir;
  std::unique_ptr<SealedQueue> queue;
  Open(scratch, &dir, &queue);
  SealedEvent e = Event(1, Payload(bytes));
  for (auto _ : state) {
    if (!queue->Append(e).ok()) {
      state.SkipWithError("append failed");
      break;
    }
    ++e.sequence;  // the id may repeat: the queue checks only the format and the sequence
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

void BM_RawWriteSync(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const ScratchDir scratch(state.range(1) != 0);
  const std::string path = scratch.path() + "/raw";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  const std::string record = Payload(bytes + kOverhead);
  for (auto _ : state) {
    if (::write(fd, record.data(), record.size()) != static_cast<ssize_t>(record.size()) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("write failed");
      break;
    }
  }
  ::close(fd);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

// Fixed iteration count: the backlog is filled before the timed loop.
constexpr std::int64_t kDrainEvents = 400;

void BM_Drain(benchmark::State& state) {
  const ScratchDir scratch(state.range(0) != 0);
  std::unique_ptr<DataDir> dir;
  std::unique_ptr<SealedQueue> queue;
  Open(scratch, &dir, &queue);
  const std::string payload = Payload(4096);
  for (std::int64_t s = 1; s <= kDrainEvents; ++s) {
    if (!queue->Append(Event(static_cast<std::uint64_t>(s), payload)).ok()) std::abort();
  }
  SealedEvent e;
  for (auto _ : state) {
    if (!queue->Front(&e).ok() || !queue->PopFront(e.event_id).ok()) {
      state.SkipWithError("drain failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 4096));
}

void BM_StateWrite(benchmark::State& state) {
  const ScratchDir scratch(state.range(0) != 0);
  std::unique_ptr<DataDir> dir;
  if (!DataDir::Open(scratch.path() + "/data", &dir).ok()) std::abort();
  const std::string bytes(32, 'x');
  for (auto _ : state) {
    if (!dir->WriteFileAtomic("state", bytes).ok()) {
      state.SkipWithError("write failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

BENCHMARK(BM_Append)
    ->ArgNames({"bytes", "disk"})
    ->ArgsProduct({{4096, 204800}, {1, 0}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime()
    ->MinTime(1.0);
BENCHMARK(BM_RawWriteSync)
    ->ArgNames({"bytes", "disk"})
    ->ArgsProduct({{4096, 204800}, {1, 0}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime()
    ->MinTime(1.0);
BENCHMARK(BM_Drain)
    ->ArgNames({"disk"})
    ->Arg(1)
    ->Arg(0)
    ->Iterations(kDrainEvents)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_StateWrite)
    ->ArgNames({"disk"})
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace portcullis::lane

BENCHMARK_MAIN();
