// vault_store_writer: a child process for the crash and disk-full tests. Writes batches of
// deterministic records and prints "ack N" after each Put returned OK — the parent SIGKILLs it at
// any moment, or limits its file size, and then checks that every acknowledged batch is intact.
//   vault_store_writer URI FIRST_BATCH BATCHES BATCH_SIZE MAX_BODY [FSIZE_LIMIT_BYTES]
// With VAULT_WRITER_KILL_AT=POINT:BATCH in the environment (SQLite only) it SIGKILLs itself at
// that fault point of the Put of batch BATCH ("bodies-written", "bodies-synced": see
// sqlite_store.h), so a test can crash it exactly between a body write and its row's commit.
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "store_test_records.h"
#include "vault/record_store.h"
#include "vault/sqlite_store.h"

namespace {

void WriteLine(const std::string& line) {
  // One write(2) per line, unbuffered: the parent sees an ack the moment Put has returned.
  std::string out = line + "\n";
  const char* p = out.data();
  std::size_t left = out.size();
  while (left > 0) {
    ssize_t n = ::write(STDOUT_FILENO, p, left);
    if (n <= 0) std::_Exit(4);
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

std::string g_kill_point;
std::uint64_t g_kill_batch = 0;
std::uint64_t g_batch = 0;

void KillAt(const char* point) {
  if (g_batch == g_kill_batch && g_kill_point == point) ::kill(::getpid(), SIGKILL);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6 && argc != 7) {
    std::fprintf(stderr, "usage: %s URI FIRST_BATCH BATCHES BATCH_SIZE MAX_BODY [FSIZE]\n",
                 argv[0]);
    return 2;
  }
  const std::string uri = argv[1];
  const std::uint64_t first = std::strtoull(argv[2], nullptr, 10);
  const std::uint64_t batches = std::strtoull(argv[3], nullptr, 10);
  const auto batch_size = static_cast<std::uint32_t>(std::strtoul(argv[4], nullptr, 10));
  const std::size_t max_body = std::strtoull(argv[5], nullptr, 10);
  if (argc == 7) {
    // A "disk" that fills at this size: write() fails with EFBIG instead of killing us.
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{};
    limit.rlim_cur = limit.rlim_max = std::strtoull(argv[6], nullptr, 10);
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 5;
  }
  if (const char* kill_at = std::getenv("VAULT_WRITER_KILL_AT"); kill_at != nullptr) {
    const std::string spec = kill_at;
    const std::size_t colon = spec.find(':');
    if (colon == std::string::npos) return 2;
    g_kill_point = spec.substr(0, colon);
    g_kill_batch = std::strtoull(spec.c_str() + colon + 1, nullptr, 10);
    portcullis::vault::SetSqliteFaultHookForTesting(&KillAt);
  }
  std::unique_ptr<portcullis::vault::RecordStore> store;
  portcullis::Status status = portcullis::vault::RecordStore::Open(uri, &store);
  if (status.ok()) status = store->Migrate();
  if (!status.ok()) {
    WriteLine("error " + status.ToString());
    return 3;
  }
  for (std::uint64_t b = first; b < first + batches; ++b) {
    g_batch = b;
    status = store->Put(portcullis::vault::testing::Batch(b, batch_size, max_body));
    if (!status.ok()) {
      WriteLine("error " + status.ToString());
      return 3;
    }
    WriteLine("ack " + std::to_string(b));
  }
  return 0;
}
