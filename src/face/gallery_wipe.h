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

template <class T>
struct WipingAllocator {
  using value_type = T;
  WipingAllocator() = default;
  template <class U>
  explicit WipingAllocator(const WipingAllocator<U>& /*other*/) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) {
    WipeBytes(p, n * sizeof(T));
    NotifyWipeObserver(p, n * sizeof(T));
    ::operator delete(p);
  }
  friend bool operator==(const WipingAllocator& /*a*/, const WipingAllocator& /*b*/) {
    return true;
  }
};

template <class T>
using WipingVector = std::vector<T, WipingAllocator<T>>;

}  // namespace portcullis::face::internal
