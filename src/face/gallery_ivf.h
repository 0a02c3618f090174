// The gallery's inverted-file index (GalleryIndex::kIvf). Internal to the face library.
//
// k-means splits the enrolled templates into `lists` cells; each list keeps its own contiguous
// copy of its members' codes (in the gallery's storage encoding) and their slot numbers. A search
// ranks the centroids by distance to the probe and scans the nearest lists with the same SIMD
// kernel as the exact scan, so every distance it returns is bit-identical to the exact one; what
// it can miss is a nearer template in a list it did not scan. The fraction of the gallery it
// scans sets the speed-up directly, which is why it suits this workload: a mated probe lies ~0.35
// from its mate and ~0.9 from everyone else, so its mate's list is almost always among the first
// few, while a graph index (HNSW) must first navigate to it.
//
// Memory hygiene: the list copies live in WipingVectors; Remove wipes the removed code at once.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "face/gallery_kernels.h"
#include "face/gallery_wipe.h"
#include "portcullis/status.h"

namespace portcullis::face::internal {

// Moves a seeded, uniformly random choice of min(count, size) distinct elements to the front of
// *items (a partial Fisher-Yates shuffle): the training sample and the initial centroids.
template <class T>
void SeededPartialShuffle(std::vector<T>* items, std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  count = std::min(count, items->size());
  for (std::size_t i = 0; i < count; ++i) {
    std::uniform_int_distribution<std::size_t> pick(i, items->size() - 1);
    std::swap((*items)[i], (*items)[pick(rng)]);
  }
}

class IvfIndex {
 public:
  // A run of list members held back to back: codes (n x stride bytes, in the gallery's
  // encoding), their scales (int8 storage only, else nullptr) and their gallery slots.
  struct Segment {
    const std::uint8_t* codes = nullptr;
    const float* scales = nullptr;
    const std::uint32_t* slots = nullptr;
    std::size_t n = 0;
  };

  // k-means (Lloyd, `iterations` rounds, seeded random initial centroids) over `sample`
  // (n x kDims floats, n >= 1); lists is clamped to [1, n]. stride: bytes per stored code;
  // int8: whether codes carry a per-template scale. ResourceExhausted when out of memory.
  static Status Train(const float* sample, std::size_t n, std::size_t lists, int iterations,
                      std::uint64_t seed, std::size_t stride, bool int8,
                      std::unique_ptr<IvfIndex>* out);

  // The nearest centroid of each of n templates (BLAS: ||c||^2 - 2 x.c).
  void Assign(const float* values, std::size_t n, std::uint32_t* lists) const;
  // Bulk load, once, right after Train: slots[i] goes to lists[i]. Codes are copied from the
  // gallery's slot-indexed arrays (code of slot s at codes + s * stride; scales may be nullptr)
  // into one buffer in list order, so that a list is one contiguous, huge-page-backed run: the
  // scan then streams as the exact scan does instead of restarting the prefetcher per list.
  void Pack(const std::uint32_t* slots, const std::uint32_t* lists, std::size_t n,
            const std::uint8_t* codes, const float* scales);
  // Later enrolments: appended to the list's own overflow run.
  void Add(std::uint32_t list, std::uint32_t slot, const std::uint8_t* code, float scale);
  // Removes slot from its list (the run's last member moves into its place) and wipes the
  // vacated code; false if the slot is not in the index.
  bool Remove(std::uint32_t slot);

  // The `probes` lists nearest to query, nearest first (ties: lower list first, so a longer
  // ranking starts with a shorter one).
  void RankLists(const float* query, const Kernels& kernels, std::size_t probes,
                 std::vector<std::uint32_t>* order) const;
  // The list's packed run and its overflow run (either may be empty).
  void Segments(std::uint32_t list, Segment* packed, Segment* overflow) const;

  [[nodiscard]] std::size_t list_count() const { return lists_.size(); }
  [[nodiscard]] std::size_t member_count() const { return members_; }
  [[nodiscard]] std::size_t bytes() const;

 private:
  struct List {
    std::size_t begin = 0;             // first packed member (index into the packed arrays)
    std::size_t packed = 0;            // live packed members: [begin, begin + packed)
    WipingVector<std::uint8_t> codes;  // overflow run
    WipingVector<float> scales;
    WipingVector<std::uint32_t> slots;
  };

  IvfIndex(std::size_t stride, bool int8) : stride_(stride), int8_(int8) {}

  std::size_t stride_;
  bool int8_;
  // list_count x kDims. Wiped too: in a small gallery a centroid may be one person's template.
  WipingVector<float> centroids_;
  std::vector<float> centroid_norms_;  // ||c||^2
  std::vector<List> lists_;
  WipingVector<std::uint8_t> packed_codes_;
  WipingVector<float> packed_scales_;
  WipingVector<std::uint32_t> packed_slots_;
  std::vector<std::uint32_t> list_of_slot_;  // kNoList where a slot is not indexed
  std::size_t members_ = 0;
};

}  // namespace portcullis::face::internal
