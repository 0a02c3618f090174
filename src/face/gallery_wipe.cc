#include "face/gallery_wipe.h"

#include <sys/mman.h>

#include <atomic>
#include <cstring>

namespace portcullis::face::internal {
namespace {
std::atomic<WipeObserver> g_observer{nullptr};
}  // namespace

void WipeBytes(void* p, std::size_t n) {
  if (p == nullptr || n == 0) return;
  std::memset(p, 0, n);
  // A compiler barrier that claims to read the memory: the memset cannot be treated as dead.
  asm volatile("" : : "r"(p) : "memory");
}

void AdviseHugePages(void* p, std::size_t bytes) {
  // Advice only: failure (no THP support) leaves ordinary pages, which is correct, just slower.
  (void)madvise(p, bytes & ~((std::size_t{2} << 20) - 1), MADV_HUGEPAGE);
}

void SetWipeObserverForTesting(WipeObserver observer) { g_observer.store(observer); }

void NotifyWipeObserver(const void* p, std::size_t bytes) {
  const WipeObserver observer = g_observer.load();
  if (observer != nullptr) observer(p, bytes);
}

}  // namespace portcullis::face::internal
