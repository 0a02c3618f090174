#include "face/gallery_ivf.h"

#include <cblas.h>

#include <algorithm>
#include <limits>
#include <new>
#include <numeric>

namespace portcullis::face::internal {

namespace {

constexpr std::uint32_t kNoList = std::numeric_limits<std::uint32_t>::max();
// Rows per BLAS product when assigning: a rows x lists block of scores stays a few MB.
constexpr std::size_t kAssignRows = 2048;

}  // namespace

Status IvfIndex::Train(const float* sample, std::size_t n, std::size_t lists, int iterations,
                       std::uint64_t seed, std::size_t stride, bool int8,
                       std::unique_ptr<IvfIndex>* out) {
  if (n == 0) return Status::InvalidArgument("IVF training needs at least one template");
  lists = std::clamp<std::size_t>(lists, 1, n);
  try {
    std::unique_ptr<IvfIndex> index(new IvfIndex(stride, int8));
    index->centroids_.resize(lists * kDims);
    index->centroid_norms_.assign(lists, 0.0f);
    index->lists_.resize(lists);

    // Initial centroids: distinct sample rows, chosen by a seeded shuffle.
    std::vector<std::size_t> rows(n);
    std::iota(rows.begin(), rows.end(), std::size_t{0});
    SeededPartialShuffle(&rows, lists, seed);
    for (std::size_t i = 0; i < lists; ++i) {
      std::copy_n(sample + rows[i] * kDims, kDims, index->centroids_.data() + i * kDims);
    }
    auto update_norms = [&index, lists] {
      for (std::size_t c = 0; c < lists; ++c) {
        const float* v = index->centroids_.data() + c * kDims;
        index->centroid_norms_[c] = std::inner_product(v, v + kDims, v, 0.0f);
      }
    };
    update_norms();

    std::vector<std::uint32_t> assignment(n);
    std::vector<double> sums(lists * kDims);
    std::vector<std::size_t> counts(lists);
    for (int round = 0; round < iterations; ++round) {
      index->Assign(sample, n, assignment.data());
      std::fill(sums.begin(), sums.end(), 0.0);
      std::fill(counts.begin(), counts.end(), std::size_t{0});
      for (std::size_t r = 0; r < n; ++r) {
        double* sum = sums.data() + std::size_t{assignment[r]} * kDims;
        const float* v = sample + r * kDims;
        for (std::size_t d = 0; d < kDims; ++d) sum[d] += v[d];
        ++counts[assignment[r]];
      }
      for (std::size_t c = 0; c < lists; ++c) {
        if (counts[c] == 0) continue;
        for (std::size_t d = 0; d < kDims; ++d) {
          index->centroids_[c * kDims + d] =
              static_cast<float>(sums[c * kDims + d] / static_cast<double>(counts[c]));
        }
      }
      // An empty cell takes half of the largest one: both centroids move apart slightly along
      // the largest one's position, and the next round splits its members between them.
      for (std::size_t c = 0; c < lists; ++c) {
        if (counts[c] != 0) continue;
        const auto largest = static_cast<std::size_t>(
            std::max_element(counts.begin(), counts.end()) - counts.begin());
        float* empty = index->centroids_.data() + c * kDims;
        float* big = index->centroids_.data() + largest * kDims;
        for (std::size_t d = 0; d < kDims; ++d) {
          empty[d] = big[d] * (1.0f + 1.0f / 1024.0f);
          big[d] *= 1.0f - 1.0f / 1024.0f;
        }
        counts[c] = counts[largest] / 2;
        counts[largest] -= counts[c];
      }
      update_norms();
    }
    WipeBytes(sums.data(), sums.size() * sizeof(double));  // sums of templates
    *out = std::move(index);
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory training the IVF index");
  }
  return Status::Ok();
}

void IvfIndex::Assign(const float* values, std::size_t n, std::uint32_t* lists) const {
  const std::size_t count = lists_.size();
  std::vector<float> scores(std::min(n, kAssignRows) * count);
  for (std::size_t begin = 0; begin < n; begin += kAssignRows) {
    const std::size_t rows = std::min(kAssignRows, n - begin);
    // scores = values[begin .. begin + rows) x centroids^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                static_cast<int>(count), static_cast<int>(kDims), 1.0f, values + begin * kDims,
                static_cast<int>(kDims), centroids_.data(), static_cast<int>(kDims), 0.0f,
                scores.data(), static_cast<int>(count));
    for (std::size_t r = 0; r < rows; ++r) {
      const float* row = scores.data() + r * count;
      std::uint32_t best = 0;
      float best_score = std::numeric_limits<float>::infinity();
      for (std::size_t c = 0; c < count; ++c) {
        const float score = centroid_norms_[c] - 2.0f * row[c];  // ||x - c||^2 - ||x||^2
        if (score < best_score) {
          best_score = score;
          best = static_cast<std::uint32_t>(c);
        }
      }
      lists[begin + r] = best;
    }
  }
  WipeBytes(scores.data(), scores.size() * sizeof(float));  // dot products with templates
}

void IvfIndex::Pack(const std::uint32_t* slots, const std::uint32_t* lists, std::size_t n,
                    const std::uint8_t* codes, const float* scales) {
  std::vector<std::size_t> next(lists_.size() + 1, 0);
  for (std::size_t i = 0; i < n; ++i) ++next[std::size_t{lists[i]} + 1];
  for (std::size_t l = 0; l < lists_.size(); ++l) {
    next[l + 1] += next[l];
    lists_[l].begin = next[l];
    lists_[l].packed = next[l + 1] - next[l];
  }
  packed_codes_.resize(n * stride_);
  packed_slots_.resize(n);
  if (int8_) packed_scales_.resize(n);
  std::uint32_t max_slot = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t at = next[lists[i]]++;
    std::copy_n(codes + std::size_t{slots[i]} * stride_, stride_,
                packed_codes_.data() + at * stride_);
    if (int8_) packed_scales_[at] = scales != nullptr ? scales[slots[i]] : 0.0f;
    packed_slots_[at] = slots[i];
    max_slot = std::max(max_slot, slots[i]);
  }
  if (n > 0 && list_of_slot_.size() <= max_slot) {
    list_of_slot_.resize(std::size_t{max_slot} + 1, kNoList);
  }
  for (std::size_t i = 0; i < n; ++i) list_of_slot_[slots[i]] = lists[i];
  members_ += n;
}

void IvfIndex::Add(std::uint32_t list, std::uint32_t slot, const std::uint8_t* code, float scale) {
  List& l = lists_[list];
  l.codes.insert(l.codes.end(), code, code + stride_);
  if (int8_) l.scales.push_back(scale);
  l.slots.push_back(slot);
  if (list_of_slot_.size() <= slot) list_of_slot_.resize(std::size_t{slot} + 1, kNoList);
  list_of_slot_[slot] = list;
  ++members_;
}

bool IvfIndex::Remove(std::uint32_t slot) {
  if (slot >= list_of_slot_.size() || list_of_slot_[slot] == kNoList) return false;
  List& l = lists_[list_of_slot_[slot]];
  // Swap-remove inside one run of `count` members.
  auto remove_from = [this, slot](std::uint8_t* codes, float* scales, std::uint32_t* slots,
                                  std::size_t count) -> bool {
    const std::uint32_t* found = std::find(slots, slots + count, slot);
    if (found == slots + count) return false;
    const auto pos = static_cast<std::size_t>(found - slots);
    const std::size_t last = count - 1;
    if (pos != last) {
      std::copy_n(codes + last * stride_, stride_, codes + pos * stride_);
      if (int8_) scales[pos] = scales[last];
      slots[pos] = slots[last];
    }
    WipeBytes(codes + last * stride_, stride_);
    if (int8_) scales[last] = 0;
    return true;
  };
  if (remove_from(packed_codes_.data() + l.begin * stride_,
                  int8_ ? packed_scales_.data() + l.begin : nullptr, packed_slots_.data() + l.begin,
                  l.packed)) {
    --l.packed;
  } else if (remove_from(l.codes.data(), int8_ ? l.scales.data() : nullptr, l.slots.data(),
                         l.slots.size())) {
    l.codes.resize(l.codes.size() - stride_);
    if (int8_) l.scales.pop_back();
    l.slots.pop_back();
  } else {
    return false;
  }
  list_of_slot_[slot] = kNoList;
  --members_;
  return true;
}

void IvfIndex::Segments(std::uint32_t list, Segment* packed, Segment* overflow) const {
  const List& l = lists_[list];
  packed->codes = packed_codes_.data() + l.begin * stride_;
  packed->scales = int8_ ? packed_scales_.data() + l.begin : nullptr;
  packed->slots = packed_slots_.data() + l.begin;
  packed->n = l.packed;
  overflow->codes = l.codes.data();
  overflow->scales = int8_ ? l.scales.data() : nullptr;
  overflow->slots = l.slots.data();
  overflow->n = l.slots.size();
}

void IvfIndex::RankLists(const float* query, const Kernels& kernels, std::size_t probes,
                         std::vector<std::uint32_t>* order) const {
  const std::size_t count = lists_.size();
  probes = std::min(probes, count);
  std::vector<float> distances(count);
  kernels.float32(query, centroids_.data(), count, distances.data());
  order->resize(count);
  std::iota(order->begin(), order->end(), std::uint32_t{0});
  auto closer = [&distances](std::uint32_t a, std::uint32_t b) {
    return distances[a] < distances[b] || (distances[a] == distances[b] && a < b);
  };
  std::partial_sort(order->begin(), order->begin() + static_cast<std::ptrdiff_t>(probes),
                    order->end(), closer);
  order->resize(probes);
  WipeBytes(distances.data(), distances.size() * sizeof(float));  // they locate the probe
}

std::size_t IvfIndex::bytes() const {
  std::size_t total =
      centroids_.capacity() * sizeof(float) + centroid_norms_.capacity() * sizeof(float) +
      lists_.capacity() * sizeof(List) + list_of_slot_.capacity() * sizeof(std::uint32_t) +
      packed_codes_.capacity() + packed_scales_.capacity() * sizeof(float) +
      packed_slots_.capacity() * sizeof(std::uint32_t);
  for (const List& l : lists_) {
    total += l.codes.capacity() + l.scales.capacity() * sizeof(float) +
             l.slots.capacity() * sizeof(std::uint32_t);
  }
  return total;
}

}  // namespace portcullis::face::internal
