// Memory that held templates is zeroed before it goes back to the allocator, including the old
// buffers a growing std::vector frees. Internal to the face library.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace portcullis::face::internal {

// Zeros n bytes in a way the optimiser may not drop (the memory is about to be freed).
void WipeBytes(void* p, std::size_t n);

// Test hook: called with every block a WipingAllocator frees, after wiping and before freeing, so a
// test can check that the bytes really are zero. nullptr (the default) disables it.
using WipeObserver = void (*)(const void* p, std::size_t bytes);
void SetWipeObserverForTesting(WipeObserver observer);
void NotifyWipeObserver(const void* p, std::size_t bytes);

// Blocks of at least this size are 2 MiB-aligned and marked for transparent huge pages: the
// exact scan streams the whole gallery, and fewer TLB misses measurably raise the read bandwidth
// (most on virtual machines, where a TLB miss costs a two-level page walk).
inline constexpr std::size_t kHugeBlockBytes = std::size_t{4} << 20;
inline constexpr std::align_val_t kHugePageAlignment{std::size_t{2} << 20};
void AdviseHugePages(void* p, std::size_t bytes);

template <class T>
struct WipingAllocator {
  using value_type = T;
  WipingAllocator() = default;
  template <class U>
  explicit WipingAllocator(const WipingAllocator<U>& /*other*/) {}
  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kHugeBlockBytes) return static_cast<T*>(::operator new(bytes));
    void* p = ::operator new(bytes, kHugePageAlignment);
    AdviseHugePages(p, bytes);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    WipeBytes(p, bytes);
    NotifyWipeObserver(p, bytes);
    if (bytes < kHugeBlockBytes) {
      ::operator delete(p);
    } else {
      ::operator delete(p, kHugePageAlignment);
    }
  }
  friend bool operator==(const WipingAllocator& /*a*/, const WipingAllocator& /*b*/) {
    return true;
  }
};

template <class T>
using WipingVector = std::vector<T, WipingAllocator<T>>;

}  // namespace portcullis::face::internal
