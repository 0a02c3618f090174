#include "common/huge_page_allocator.h"

#include <malloc.h>
#include <sys/mman.h>

#include <cstdint>
#include <iterator>
#include <list>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>

namespace portcullis {

namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

std::size_t RoundUpToHugePage(std::size_t bytes) {
  return (bytes + kHugePage - 1) / kHugePage * kHugePage;
}

// An anonymous mapping of `length` bytes (a multiple of 2 MiB) starting on a 2 MiB boundary, so
// the kernel can back all of it with huge pages; nullptr when the system has no memory for it.
void* MapAligned(std::size_t length) {
  void* raw = ::mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::size_t head = (kHugePage - start % kHugePage) % kHugePage;
  const std::size_t tail = kHugePage - head;
  char* memory = static_cast<char*>(raw) + head;
  if (head > 0) ::munmap(raw, head);
  if (tail > 0) ::munmap(memory + length, tail);
  // Only a hint: without transparent huge pages the mapping is ordinary memory.
  ::madvise(memory, length, MADV_HUGEPAGE);
  return memory;
}

}  // namespace

void* MapHugePages(std::size_t bytes) {
  void* memory = MapAligned(RoundUpToHugePage(bytes));
  if (memory == nullptr) throw std::bad_alloc();
  return memory;
}

void UnmapHugePages(void* memory, std::size_t bytes) {
  if (memory != nullptr) ::munmap(memory, RoundUpToHugePage(bytes));
}

struct HugePageMatAllocator::State {
  mutable std::mutex mutex;
  std::unordered_map<void*, std::size_t> live;      // buffer -> mapping length
  std::list<std::pair<void*, std::size_t>> cached;  // freed mappings, most recent first
  std::size_t live_bytes = 0;
  std::size_t cached_bytes = 0;
};

HugePageMatAllocator::HugePageMatAllocator(std::size_t min_bytes, std::size_t max_cached_bytes)
    : min_bytes_(min_bytes),
      max_cached_bytes_(max_cached_bytes),
      state_(std::make_unique<State>()) {}

HugePageMatAllocator::~HugePageMatAllocator() {
  // Buffers still alive keep their mappings (their Mats outlive this allocator only in a process
  // that is exiting); the cache is ours to return.
  for (const auto& [memory, length] : state_->cached) ::munmap(memory, length);
}

cv::UMatData* HugePageMatAllocator::allocate(int dims, const int* sizes, int type, void* data,
                                             size_t* step, cv::AccessFlag flags,
                                             cv::UMatUsageFlags usage) const {
  const cv::MatAllocator* standard = cv::Mat::getStdAllocator();
  // Memory the caller provides (with its own steps) is OpenCV's business.
  if (data != nullptr) return standard->allocate(dims, sizes, type, data, step, flags, usage);
  std::size_t total = CV_ELEM_SIZE(type);
  for (int i = 0; i < dims; ++i) total *= static_cast<std::size_t>(sizes[i]);
  if (total < min_bytes_) return standard->allocate(dims, sizes, type, data, step, flags, usage);
  const std::size_t length = RoundUpToHugePage(total);
  void* memory = nullptr;
  std::size_t mapped = length;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    // A freed mapping of this size (or up to a quarter larger) is reused as it is: its pages are
    // already mapped.
    auto best = state_->cached.end();
    for (auto it = state_->cached.begin(); it != state_->cached.end(); ++it) {
      if (it->second < length || it->second > length + length / 4) continue;
      if (best == state_->cached.end() || it->second < best->second) best = it;
    }
    if (best != state_->cached.end()) {
      memory = best->first;
      mapped = best->second;
      state_->cached_bytes -= mapped;
      state_->cached.erase(best);
    }
  }
  if (memory == nullptr) memory = MapAligned(length);
  // No address space for a mapping: OpenCV's allocator reports it the usual way.
  if (memory == nullptr) return standard->allocate(dims, sizes, type, data, step, flags, usage);
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->live.emplace(memory, mapped);
    state_->live_bytes += mapped;
  }
  // Dense steps, as OpenCV's own allocator sets them.
  if (step != nullptr) {
    std::size_t stride = CV_ELEM_SIZE(type);
    for (int i = dims - 1; i >= 0; --i) {
      step[i] = stride;
      stride *= static_cast<std::size_t>(sizes[i]);
    }
  }
  auto* u = new cv::UMatData(this);
  u->data = u->origdata = static_cast<uchar*>(memory);
  u->size = total;
  return u;
}

bool HugePageMatAllocator::allocate(cv::UMatData* data, cv::AccessFlag /*flags*/,
                                    cv::UMatUsageFlags /*usage*/) const {
  return data != nullptr;
}

void HugePageMatAllocator::deallocate(cv::UMatData* data) const {
  if (data == nullptr) return;
  CV_Assert(data->urefcount == 0 && data->refcount == 0);
  void* memory = data->origdata;
  delete data;
  std::size_t length = 0;
  std::list<std::pair<void*, std::size_t>> evicted;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    const auto it = state_->live.find(memory);
    CV_Assert(it != state_->live.end());
    length = it->second;
    state_->live.erase(it);
    state_->live_bytes -= length;
    if (length <= max_cached_bytes_) {
      // Keep it; the least recently freed mappings make room.
      while (state_->cached_bytes + length > max_cached_bytes_) {
        state_->cached_bytes -= state_->cached.back().second;
        evicted.splice(evicted.end(), state_->cached, std::prev(state_->cached.end()));
      }
      state_->cached.emplace_front(memory, length);
      state_->cached_bytes += length;
      memory = nullptr;
    }
  }
  if (memory != nullptr) ::munmap(memory, length);
  for (const auto& [old, old_length] : evicted) ::munmap(old, old_length);
}

std::size_t HugePageMatAllocator::MappedBytes() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->live_bytes;
}

std::size_t HugePageMatAllocator::CachedBytes() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->cached_bytes;
}

#if defined(__SANITIZE_ADDRESS__)
#define PORTCULLIS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PORTCULLIS_ASAN 1
#endif
#endif

std::size_t HugePageVectorThreshold() {
#ifdef PORTCULLIS_ASAN
  return SIZE_MAX;
#else
  return kHugePage;
#endif
}

void TuneMemoryForNetworks() {
#ifndef PORTCULLIS_ASAN
  static const bool installed = [] {
    // The largest M_MMAP_THRESHOLD glibc accepts on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX).
    // Declared here, not at namespace scope: under AddressSanitizer this block is compiled out,
    // and clang then rejects an unused constant (-Wunused-const-variable).
    constexpr int kGlibcLargestMmapThreshold = 32 << 20;
    // glibc maps anything above M_MMAP_THRESHOLD on its own and unmaps it when freed, and it
    // returns the heap's free top to the system above M_TRIM_THRESHOLD; either way the next
    // buffer is fresh memory, faulted in again. Fixed thresholds (which also stop glibc's own
    // adjusting of them) keep buffers up to 32 MiB, and up to 256 MiB of freed heap, for reuse.
    mallopt(M_MMAP_THRESHOLD, kGlibcLargestMmapThreshold);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    // Never destroyed: Mats freed during exit still find their allocator.
    static auto* allocator = new HugePageMatAllocator();
    cv::Mat::setDefaultAllocator(allocator);
    return true;
  }();
  (void)installed;
#endif
}

}  // namespace portcullis
