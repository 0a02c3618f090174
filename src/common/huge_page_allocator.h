// Memory for the networks: large buffers on transparent huge pages, freed memory kept for reuse.
//
// A network's buffers are allocated whenever it runs at a new input size (OpenCV sets the net up
// again, src/plate/text_detector.h), and every 4 KiB page of fresh memory then costs a page
// fault on first touch: on the development VMs ~9 us each. The plate detector's first run at a
// second look's 2 MP size touched ~860 MB (220,000 faults) and took 2.5 s against 0.6 s warm.
// Two things make that memory cheaper, and TuneMemoryForNetworks() sets both up:
// - Buffers of 32 MiB and more (the largest activations; glibc would map each on its own and
//   unmap it when freed) are mapped here, 2 MiB aligned with madvise(MADV_HUGEPAGE), so the
//   kernel faults them in 2 MiB at a time. Debian's kernels ship transparent huge pages in
//   "madvise" mode, so memory must ask for them; where they are off, nothing else changes.
//   Freed mappings are kept (up to a bound) for the next buffer of about the same size.
// - glibc's thresholds are fixed so that buffers below 32 MiB come from the heap and freed heap
//   stays with the process (up to 256 MiB) instead of going back to the system, to be faulted
//   in again by the next image.
// Smaller thresholds for the huge-page mappings were measured too: 4 MiB made the eu set's many
// small first runs slower (fresh 2 MiB pages where glibc reused heap), 16 MiB was no better
// than 32 (docs/benchmarks.md, "Memory for the networks").
#pragma once

#include <cstddef>
#include <memory>

#include <opencv2/core/mat.hpp>

namespace portcullis {

class HugePageMatAllocator final : public cv::MatAllocator {
 public:
  // Buffers of at least min_bytes are mapped here; up to max_cached_bytes of freed mappings are
  // kept for reuse.
  explicit HugePageMatAllocator(std::size_t min_bytes = std::size_t{32} << 20,
                                std::size_t max_cached_bytes = std::size_t{256} << 20);
  ~HugePageMatAllocator() override;
  HugePageMatAllocator(const HugePageMatAllocator&) = delete;
  HugePageMatAllocator& operator=(const HugePageMatAllocator&) = delete;

  cv::UMatData* allocate(int dims, const int* sizes, int type, void* data, size_t* step,
                         cv::AccessFlag flags, cv::UMatUsageFlags usage) const override;
  bool allocate(cv::UMatData* data, cv::AccessFlag flags, cv::UMatUsageFlags usage) const override;
  void deallocate(cv::UMatData* data) const override;

  // What it holds now (tests, diagnostics).
  [[nodiscard]] std::size_t MappedBytes() const;  // live large buffers
  [[nodiscard]] std::size_t CachedBytes() const;  // freed mappings kept for reuse

 private:
  struct State;
  std::size_t min_bytes_;
  std::size_t max_cached_bytes_;
  std::unique_ptr<State> state_;
};

// Huge-page mappings for buffers outside cv::Mat (the layers' scratch vectors): `bytes` rounded
// up to 2 MiB, 2 MiB aligned, MADV_HUGEPAGE. Throws std::bad_alloc when there is no memory.
void* MapHugePages(std::size_t bytes);
void UnmapHugePages(void* memory, std::size_t bytes);
// The size from which HugePageVectorAllocator maps (SIZE_MAX under AddressSanitizer, which then
// sees every buffer).
std::size_t HugePageVectorThreshold();

// A std::vector allocator: large arrays on huge pages, small ones from the heap as usual.
template <class T>
struct HugePageVectorAllocator {
  using value_type = T;
  HugePageVectorAllocator() = default;
  template <class U>
  explicit HugePageVectorAllocator(const HugePageVectorAllocator<U>& /*other*/) {}
  T* allocate(std::size_t n) {
    if (n * sizeof(T) < HugePageVectorThreshold()) return std::allocator<T>().allocate(n);
    return static_cast<T*>(MapHugePages(n * sizeof(T)));
  }
  void deallocate(T* memory, std::size_t n) {
    if (n * sizeof(T) < HugePageVectorThreshold()) {
      std::allocator<T>().deallocate(memory, n);
    } else {
      UnmapHugePages(memory, n * sizeof(T));
    }
  }
  friend bool operator==(const HugePageVectorAllocator& /*a*/,
                         const HugePageVectorAllocator& /*b*/) {
    return true;
  }
};

// Makes a process-wide HugePageMatAllocator OpenCV's default for new cv::Mat buffers and fixes
// glibc's mmap and trim thresholds (above), once; later calls do nothing. Call it early in
// main(). Buffers allocated before keep their allocator. Under AddressSanitizer it does nothing,
// so that the sanitizer still sees every buffer.
void TuneMemoryForNetworks();

}  // namespace portcullis
