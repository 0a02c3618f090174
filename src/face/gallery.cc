// Gallery: slot storage of compact templates, an open-addressing id index, the exact SIMD scan and
// the optional approximate index (HNSW graph or inverted file).
// hnswlib 0.6.2's SSE path prefetches through `*(datal + j + 1)`, reading one link past the end of
// an upper-layer list: harmless on real hardware (a prefetch of a slack word) but an
// out-of-bounds read that AddressSanitizer rightly reports. Sanitizer builds use hnswlib's plain
// C++ path, which has no such read; release builds keep the SSE distance code.
#if defined(__SANITIZE_ADDRESS__)
#define NO_MANUAL_VECTORIZATION
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_MANUAL_VECTORIZATION
#endif
#endif
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "face/gallery_format.h"
#include "face/gallery_ivf.h"
#include "face/gallery_kernels.h"
#include "face/gallery_wipe.h"
#include "portcullis/face_gallery.h"

namespace portcullis::face {

using internal::kDims;
using internal::WipingVector;

namespace {

constexpr std::uint32_t kEmpty = std::numeric_limits<std::uint32_t>::max();
constexpr std::size_t kMaxIdBytes = 255;
constexpr std::size_t kMaxSlots = std::numeric_limits<std::uint32_t>::max() - 1;
// Distances are computed for a block of slots at a time, then selected.
constexpr std::size_t kBlock = 512;

std::size_t BytesPerTemplate(GalleryStorage storage) {
  switch (storage) {
    case GalleryStorage::kFloat32:
      return kDims * 4;
    case GalleryStorage::kFloat16:
      return kDims * 2;
    case GalleryStorage::kInt8:
      return kDims;
  }
  return kDims * 4;
}

Status CheckFinite(const FaceTemplate& t, const char* what) {
  for (const float v : t.values()) {
    if (!std::isfinite(v)) return Status::InvalidArgument(std::string(what) + " holds NaN or Inf");
  }
  return Status::Ok();
}

// A probe copy that is wiped when Identify returns: probes are never kept.
struct ProbeCopy {
  alignas(32) float values[kDims] = {};
  explicit ProbeCopy(const FaceTemplate& t) {
    std::copy(t.values().begin(), t.values().end(), values);
  }
  ~ProbeCopy() { internal::WipeBytes(values, sizeof(values)); }
  ProbeCopy(const ProbeCopy&) = delete;
  ProbeCopy& operator=(const ProbeCopy&) = delete;
};

// Largest-first heap of the best k (squared distance, slot) seen so far.
class TopK {
 public:
  explicit TopK(std::size_t k) : k_(k) { heap_.reserve(k + 1); }
  [[nodiscard]] bool full() const { return heap_.size() >= k_; }
  [[nodiscard]] float bound() const {
    return heap_.size() < k_ ? std::numeric_limits<float>::infinity() : heap_.front().first;
  }
  // Slots arrive in increasing order, so "strictly better" keeps the earlier slot on ties.
  void Offer(float distance2, std::uint32_t slot) {
    if (heap_.size() < k_) {
      heap_.emplace_back(distance2, slot);
      std::push_heap(heap_.begin(), heap_.end());
    } else if (std::make_pair(distance2, slot) < heap_.front()) {
      std::pop_heap(heap_.begin(), heap_.end());
      heap_.back() = {distance2, slot};
      std::push_heap(heap_.begin(), heap_.end());
    }
  }
  std::vector<std::pair<float, std::uint32_t>> Sorted() {
    std::sort_heap(heap_.begin(), heap_.end());
    return std::move(heap_);
  }

 private:
  std::size_t k_;
  std::vector<std::pair<float, std::uint32_t>> heap_;
};

// hnswlib's graph holds float copies of the templates in malloc'd memory it frees without
// wiping; this owner wipes them first.
struct HnswIndex {
  hnswlib::L2Space space{static_cast<std::size_t>(kDims)};
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;

  HnswIndex() = default;
  HnswIndex(const HnswIndex&) = delete;
  HnswIndex& operator=(const HnswIndex&) = delete;
  ~HnswIndex() {
    if (graph != nullptr) {
      internal::WipeBytes(graph->data_level0_memory_,
                          graph->max_elements_ * graph->size_data_per_element_);
    }
  }
  [[nodiscard]] std::size_t bytes() const {
    if (graph == nullptr) return 0;
    // Level 0 (links + vector + label) for every slot, plus the upper levels (~1/M of elements).
    std::size_t upper = 0;
    for (std::size_t i = 0; i < graph->cur_element_count; ++i) {
      upper += graph->size_links_per_element_ * static_cast<std::size_t>(graph->element_levels_[i]);
    }
    return graph->max_elements_ * graph->size_data_per_element_ + upper;
  }
};

}  // namespace

const char* GalleryKernelName(const GalleryOptions& options) {
  return options.force_scalar_kernels ? internal::ScalarKernels().name
                                      : internal::BestKernels().name;
}

class Gallery::Impl {
 public:
  explicit Impl(const GalleryOptions& options)
      : options_(options),
        kernels_(options.force_scalar_kernels ? internal::ScalarKernels()
                                              : internal::BestKernels()),
        stride_(BytesPerTemplate(options.storage)) {}

  ~Impl() { WipeAll(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  Status Enrol(std::string_view id, const FaceTemplate& t) {
    if (id.empty() || id.size() > kMaxIdBytes) {
      return Status::InvalidArgument("gallery id must be 1 to 255 bytes");
    }
    PORTCULLIS_RETURN_IF_ERROR(CheckFinite(t, "enrolled template"));
    if (options_.storage == GalleryStorage::kFloat16) {
      for (const float v : t.values()) {
        if (std::fabs(v) > 65504.0f) {
          return Status::InvalidArgument("template value out of float16 range");
        }
      }
    }
    std::unique_lock lock(mutex_);
    if (FindSlot(id) != kEmpty) {
      return Status::Unsupported("id already enrolled in the gallery: " + std::string(id));
    }
    std::uint32_t slot = 0;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
    } else {
      if (slot_count_ >= kMaxSlots) return Status::ResourceExhausted("gallery is full");
      slot = static_cast<std::uint32_t>(slot_count_);
    }
    if (id_bytes_.size() + id.size() > std::numeric_limits<std::uint32_t>::max()) {
      return Status::ResourceExhausted("gallery ids exceed 4 GiB");
    }
    try {
      if (slot == slot_count_) {
        codes_.resize(codes_.size() + stride_);
        if (options_.storage == GalleryStorage::kInt8) scales_.push_back(0);
        live_.push_back(0);
        id_offset_.push_back(0);
        id_length_.push_back(0);
        ++slot_count_;
      } else {
        free_slots_.pop_back();
      }
      EncodeInto(slot, t);
      id_offset_[slot] = static_cast<std::uint32_t>(id_bytes_.size());
      id_length_[slot] = static_cast<std::uint8_t>(id.size());
      id_bytes_.insert(id_bytes_.end(), id.begin(), id.end());
      live_[slot] = 1;
      ++live_count_;
      InsertIntoTable(slot);
      // The graph is derived state: if it cannot follow, drop it (wiped) and let the next search
      // that needs it rebuild it, rather than leave the entry enrolled but unsearchable.
      if (hnsw_ != nullptr && !AddToHnsw(slot).ok()) hnsw_.reset();
      if (ivf_ != nullptr) AddToIvf(slot);
    } catch (const std::bad_alloc&) {
      return Status::ResourceExhausted("out of memory enrolling into the gallery");
    }
    return Status::Ok();
  }

  Status Remove(std::string_view id) {
    std::unique_lock lock(mutex_);
    const std::uint32_t slot = FindSlot(id);
    if (slot == kEmpty)
      return Status::NotFound("id not enrolled in the gallery: " + std::string(id));
    EraseFromTable(slot);
    internal::WipeBytes(codes_.data() + static_cast<std::size_t>(slot) * stride_, stride_);
    if (!scales_.empty()) scales_[slot] = 0;
    internal::WipeBytes(id_bytes_.data() + id_offset_[slot], id_length_[slot]);
    dead_id_bytes_ += id_length_[slot];
    id_length_[slot] = 0;
    live_[slot] = 0;
    --live_count_;
    free_slots_.push_back(slot);
    if (hnsw_ != nullptr) {
      try {
        hnsw_->graph->markDelete(slot);
        // The deleted node still routes searches, but no longer carries the template.
        internal::WipeBytes(hnsw_->graph->getDataByInternalId(hnsw_->graph->label_lookup_.at(slot)),
                            kDims * sizeof(float));
      } catch (const std::exception&) {
        hnsw_.reset();  // derived state: rebuilt (without this entry) by the next search
      }
    }
    if (ivf_ != nullptr) ivf_->Remove(slot);
    if (dead_id_bytes_ > 4096 && dead_id_bytes_ * 2 > id_bytes_.size()) CompactIds();
    return Status::Ok();
  }

  void Clear() {
    std::unique_lock lock(mutex_);
    WipeAll();
  }

  std::size_t size() const {
    std::shared_lock lock(mutex_);
    return live_count_;
  }

  bool Contains(std::string_view id) const {
    std::shared_lock lock(mutex_);
    return FindSlot(id) != kEmpty;
  }

  [[nodiscard]] bool WantsHnsw() const {
    switch (options_.index) {
      case GalleryIndex::kExact:
      case GalleryIndex::kIvf:
        return false;
      case GalleryIndex::kHnsw:
        return true;
      case GalleryIndex::kAuto:
        return live_count_ >= options_.auto_hnsw_min_size;
    }
    return false;
  }
  [[nodiscard]] bool WantsIvf() const { return options_.index == GalleryIndex::kIvf; }
  [[nodiscard]] bool IndexMissing() const {
    return (WantsHnsw() && hnsw_ == nullptr) || (WantsIvf() && ivf_ == nullptr);
  }

  Status Identify(const FaceTemplate& probe, int k, std::vector<Candidate>* out, bool exact) const {
    if (out == nullptr) return Status::InvalidArgument("null candidates");
    if (k < 1) return Status::InvalidArgument("k must be at least 1");
    PORTCULLIS_RETURN_IF_ERROR(CheckFinite(probe, "probe"));
    if (!exact) {
      // Build the index outside the shared lock if this is the first search that needs it.
      bool need_build = false;
      {
        std::shared_lock lock(mutex_);
        need_build = IndexMissing();
      }
      if (need_build) PORTCULLIS_RETURN_IF_ERROR(const_cast<Impl*>(this)->BuildIndex());
    }
    std::shared_lock lock(mutex_);
    if (live_count_ == 0) return Status::NotFound("the gallery is empty");
    const ProbeCopy query(probe);
    std::vector<std::pair<float, std::uint32_t>> best;
    try {
      if (!exact && WantsHnsw() && hnsw_ != nullptr) {
        best = SearchHnsw(query.values, static_cast<std::size_t>(k));
      } else if (!exact && WantsIvf() && ivf_ != nullptr) {
        best = SearchIvf(query.values, static_cast<std::size_t>(k));
      } else {
        best = SearchExact(query.values, static_cast<std::size_t>(k));
      }
    } catch (const std::bad_alloc&) {
      return Status::ResourceExhausted("out of memory searching the gallery");
    } catch (const std::exception& e) {
      return Status::Internal(std::string("gallery search: ") + e.what());
    }
    out->clear();
    out->reserve(best.size());
    for (const auto& [distance2, slot] : best) {
      Candidate c;
      c.id = std::string(IdOf(slot));
      c.distance = std::sqrt(distance2);
      c.similarity = SimilarityFromDistance(c.distance);
      out->push_back(std::move(c));
    }
    return Status::Ok();
  }

  Status BuildIndex() {
    std::unique_lock lock(mutex_);
    if (!IndexMissing()) return Status::Ok();
    return WantsIvf() ? BuildIvfLocked() : BuildHnswLocked();
  }

  Status SetIvfSearch(int probes, int min_probes, float stop_distance) {
    if (probes < 1 || min_probes < 1) {
      return Status::InvalidArgument("IVF probes and min_probes must be at least 1");
    }
    if (!std::isfinite(stop_distance) || stop_distance < 0) {
      return Status::InvalidArgument("IVF stop distance must be finite and not negative");
    }
    std::unique_lock lock(mutex_);
    options_.ivf_probes = probes;
    options_.ivf_min_probes = min_probes;
    options_.ivf_stop_distance = stop_distance;
    return Status::Ok();
  }

  Status SetHnswEfSearch(int ef) {
    if (ef < 1) return Status::InvalidArgument("ef must be at least 1");
    std::unique_lock lock(mutex_);
    options_.hnsw_ef_search = ef;
    if (hnsw_ != nullptr) hnsw_->graph->setEf(static_cast<std::size_t>(ef));
    return Status::Ok();
  }

  bool uses_approximate_index() const {
    std::shared_lock lock(mutex_);
    return WantsHnsw() || WantsIvf();
  }

  std::size_t exact_storage_bytes() const {
    std::shared_lock lock(mutex_);
    return codes_.capacity() + scales_.capacity() * sizeof(float) + live_.capacity() +
           id_offset_.capacity() * sizeof(std::uint32_t) + id_length_.capacity() +
           id_bytes_.capacity() + table_.capacity() * sizeof(std::uint32_t) +
           free_slots_.capacity() * sizeof(std::uint32_t);
  }

  std::size_t index_bytes() const {
    std::shared_lock lock(mutex_);
    return (hnsw_ == nullptr ? 0 : hnsw_->bytes()) + (ivf_ == nullptr ? 0 : ivf_->bytes());
  }

  std::vector<std::uint8_t> RawIvfCodes() const {
    std::shared_lock lock(mutex_);
    std::vector<std::uint8_t> all;
    if (ivf_ == nullptr) return all;
    internal::IvfIndex::Segment runs[2];
    for (std::uint32_t l = 0; l < ivf_->list_count(); ++l) {
      ivf_->Segments(l, &runs[0], &runs[1]);
      for (const auto& run : runs) all.insert(all.end(), run.codes, run.codes + run.n * stride_);
    }
    return all;
  }

  std::vector<std::uint8_t> RawCodes() const {
    std::shared_lock lock(mutex_);
    return {codes_.begin(), codes_.end()};
  }

  void Reserve(std::size_t n) {
    codes_.reserve(n * stride_);
    if (options_.storage == GalleryStorage::kInt8) scales_.reserve(n);
    live_.reserve(n);
    id_offset_.reserve(n);
    id_length_.reserve(n);
  }

 private:
  void EncodeInto(std::uint32_t slot, const FaceTemplate& t) {
    std::uint8_t* dst = codes_.data() + static_cast<std::size_t>(slot) * stride_;
    const float* v = t.values().data();
    switch (options_.storage) {
      case GalleryStorage::kFloat32:
        std::copy(v, v + kDims, reinterpret_cast<float*>(dst));
        break;
      case GalleryStorage::kFloat16: {
        auto* h = reinterpret_cast<std::uint16_t*>(dst);
        for (std::size_t i = 0; i < kDims; ++i) h[i] = internal::FloatToHalf(v[i]);
        break;
      }
      case GalleryStorage::kInt8:
        scales_[slot] = internal::QuantizeInt8(v, reinterpret_cast<std::int8_t*>(dst));
        break;
    }
  }

  void Decode(std::uint32_t slot, float* out) const {
    const std::uint8_t* src = codes_.data() + static_cast<std::size_t>(slot) * stride_;
    switch (options_.storage) {
      case GalleryStorage::kFloat32:
        std::copy_n(reinterpret_cast<const float*>(src), kDims, out);
        break;
      case GalleryStorage::kFloat16: {
        const auto* h = reinterpret_cast<const std::uint16_t*>(src);
        for (std::size_t i = 0; i < kDims; ++i) out[i] = internal::HalfToFloat(h[i]);
        break;
      }
      case GalleryStorage::kInt8: {
        const auto* c = reinterpret_cast<const std::int8_t*>(src);
        for (std::size_t i = 0; i < kDims; ++i) out[i] = scales_[slot] * static_cast<float>(c[i]);
        break;
      }
    }
  }

  // distances[j] = squared distance from query to the j-th of n codes stored back to back at
  // `codes` in this gallery's encoding (scales: int8 only).
  void Distances(const float* query, const std::uint8_t* codes, const float* scales, std::size_t n,
                 float* distances) const {
    switch (options_.storage) {
      case GalleryStorage::kFloat32:
        kernels_.float32(query, reinterpret_cast<const float*>(codes), n, distances);
        break;
      case GalleryStorage::kFloat16:
        kernels_.float16(query, reinterpret_cast<const std::uint16_t*>(codes), n, distances);
        break;
      case GalleryStorage::kInt8:
        kernels_.int8(query, reinterpret_cast<const std::int8_t*>(codes), scales, n, distances);
        break;
    }
  }

  std::vector<std::pair<float, std::uint32_t>> SearchExact(const float* query,
                                                           std::size_t k) const {
    TopK top(std::min(k, live_count_));
    float distances[kBlock];
    for (std::size_t begin = 0; begin < slot_count_; begin += kBlock) {
      const std::size_t n = std::min(kBlock, slot_count_ - begin);
      Distances(query, codes_.data() + begin * stride_,
                scales_.empty() ? nullptr : scales_.data() + begin, n, distances);
      float bound = top.bound();
      for (std::size_t j = 0; j < n; ++j) {
        if (distances[j] <= bound && live_[begin + j] != 0) {
          top.Offer(distances[j], static_cast<std::uint32_t>(begin + j));
          bound = top.bound();
        }
      }
    }
    return top.Sorted();
  }

  std::vector<std::pair<float, std::uint32_t>> SearchHnsw(const float* query, std::size_t k) const {
    // ef changes only under the exclusive lock (setEf is not safe during searches); hnswlib
    // searches with max(ef, k), so a k above ef still returns k.
    auto result = hnsw_->graph->searchKnn(query, std::min(k, live_count_));
    std::vector<std::pair<float, std::uint32_t>> best;
    best.reserve(result.size());
    while (!result.empty()) {
      best.emplace_back(result.top().first, static_cast<std::uint32_t>(result.top().second));
      result.pop();
    }
    std::sort(best.begin(), best.end());
    return best;
  }

  // Scans the probe's nearest lists, nearest first, with the exact scan's kernel and selection.
  // Removed entries are not in any list, so no liveness check is needed.
  std::vector<std::pair<float, std::uint32_t>> SearchIvf(const float* query, std::size_t k) const {
    std::vector<std::uint32_t> order;
    ivf_->RankLists(query, kernels_, static_cast<std::size_t>(std::max(1, options_.ivf_probes)),
                    &order);
    TopK top(std::min(k, live_count_));
    const float stop = options_.ivf_stop_distance * options_.ivf_stop_distance;
    const auto min_probes = static_cast<std::size_t>(std::max(1, options_.ivf_min_probes));
    float distances[kBlock];
    internal::IvfIndex::Segment runs[2];
    for (std::size_t i = 0; i < order.size(); ++i) {
      ivf_->Segments(order[i], &runs[0], &runs[1]);
      for (const internal::IvfIndex::Segment& run : runs) {
        for (std::size_t begin = 0; begin < run.n; begin += kBlock) {
          const std::size_t n = std::min(kBlock, run.n - begin);
          Distances(query, run.codes + begin * stride_,
                    run.scales == nullptr ? nullptr : run.scales + begin, n, distances);
          float bound = top.bound();
          for (std::size_t j = 0; j < n; ++j) {
            if (distances[j] <= bound) {
              top.Offer(distances[j], run.slots[begin + j]);
              bound = top.bound();
            }
          }
        }
      }
      if (stop > 0 && i + 1 >= min_probes && top.bound() < stop) break;
      // Fewer than k found in the probed lists (tiny lists, or a large k): go on to the next
      // nearest lists, so that Identify returns min(k, size()) candidates as the exact scan does.
      // The comparator is a total order, so the longer ranking starts with the same lists.
      if (i + 1 == order.size() && !top.full() && order.size() < ivf_->list_count()) {
        ivf_->RankLists(query, kernels_, ivf_->list_count(), &order);
      }
    }
    return top.Sorted();
  }

  // k-means on a seeded sample of at most 64 templates per list, then every live template goes
  // to its nearest list.
  Status BuildIvfLocked() {
    std::unique_ptr<internal::IvfIndex> index;
    try {
      std::vector<std::uint32_t> slots;
      slots.reserve(live_count_);
      for (std::size_t s = 0; s < slot_count_; ++s) {
        if (live_[s] != 0) slots.push_back(static_cast<std::uint32_t>(s));
      }
      if (slots.empty()) return Status::Ok();  // nothing to index: searches say "empty"
      const std::size_t lists =
          options_.ivf_lists > 0
              ? static_cast<std::size_t>(options_.ivf_lists)
              : std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(
                                             4.0 * std::sqrt(static_cast<double>(slots.size())))));
      const std::size_t sample_size = std::min(slots.size(), lists * 64);
      std::vector<std::uint32_t> sample_slots = slots;
      internal::SeededPartialShuffle(&sample_slots, sample_size, options_.ivf_seed);
      WipingVector<float> values(sample_size * kDims);
      for (std::size_t i = 0; i < sample_size; ++i) {
        Decode(sample_slots[i], values.data() + i * kDims);
      }
      PORTCULLIS_RETURN_IF_ERROR(internal::IvfIndex::Train(
          values.data(), sample_size, lists, std::max(0, options_.ivf_train_iterations),
          options_.ivf_seed, stride_, options_.storage == GalleryStorage::kInt8, &index));
      constexpr std::size_t kChunk = 4096;
      values.resize(std::min(kChunk, slots.size()) * kDims);
      std::vector<std::uint32_t> assignment(slots.size());
      for (std::size_t begin = 0; begin < slots.size(); begin += kChunk) {
        const std::size_t n = std::min(kChunk, slots.size() - begin);
        for (std::size_t i = 0; i < n; ++i) Decode(slots[begin + i], values.data() + i * kDims);
        index->Assign(values.data(), n, assignment.data() + begin);
      }
      index->Pack(slots.data(), assignment.data(), slots.size(), codes_.data(),
                  scales_.empty() ? nullptr : scales_.data());
    } catch (const std::bad_alloc&) {
      return Status::ResourceExhausted("out of memory building the IVF index");
    }
    ivf_ = std::move(index);
    ivf_built_size_ = live_count_;
    return Status::Ok();
  }

  // A new entry joins its nearest list. Lists were cut for the size at build time: once the
  // gallery has grown 4x the index is dropped and the next search rebuilds it.
  void AddToIvf(std::uint32_t slot) {
    if (live_count_ > 4 * std::max<std::size_t>(ivf_built_size_, 256)) {
      ivf_.reset();
      return;
    }
    alignas(32) float values[kDims];
    Decode(slot, values);
    std::uint32_t list = 0;
    ivf_->Assign(values, 1, &list);
    internal::WipeBytes(values, sizeof(values));
    ivf_->Add(list, slot, codes_.data() + std::size_t{slot} * stride_,
              scales_.empty() ? 0.0f : scales_[slot]);
  }

  Status BuildHnswLocked() {
    auto index = std::make_unique<HnswIndex>();
    try {
      const std::size_t capacity = std::max<std::size_t>(1024, slot_count_ + slot_count_ / 2);
      index->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
          &index->space, capacity, static_cast<std::size_t>(std::max(2, options_.hnsw_m)),
          static_cast<std::size_t>(std::max(8, options_.hnsw_ef_construction)),
          static_cast<std::size_t>(options_.hnsw_seed));
      index->graph->setEf(static_cast<std::size_t>(std::max(1, options_.hnsw_ef_search)));
      std::vector<std::uint32_t> slots;
      slots.reserve(live_count_);
      for (std::size_t s = 0; s < slot_count_; ++s) {
        if (live_[s] != 0) slots.push_back(static_cast<std::uint32_t>(s));
      }
      const auto threads = static_cast<std::size_t>(std::max(1, options_.hnsw_build_threads));
      std::vector<std::exception_ptr> errors(threads);
      auto worker = [&](std::size_t w) {
        try {
          alignas(32) float values[kDims];
          for (std::size_t i = w; i < slots.size(); i += threads) {
            Decode(slots[i], values);
            index->graph->addPoint(values, slots[i]);
          }
          internal::WipeBytes(values, sizeof(values));
        } catch (...) {
          errors[w] = std::current_exception();
        }
      };
      if (threads == 1) {
        worker(0);
      } else {
        std::vector<std::thread> pool;
        for (std::size_t w = 0; w < threads; ++w) pool.emplace_back(worker, w);
        for (auto& t : pool) t.join();
      }
      for (const auto& e : errors) {
        if (e) std::rethrow_exception(e);
      }
    } catch (const std::bad_alloc&) {
      return Status::ResourceExhausted("out of memory building the HNSW index");
    } catch (const std::exception& e) {
      return Status::Internal(std::string("building the HNSW index: ") + e.what());
    }
    hnsw_ = std::move(index);
    return Status::Ok();
  }

  Status AddToHnsw(std::uint32_t slot) {
    auto& graph = *hnsw_->graph;
    const bool known = graph.label_lookup_.count(slot) != 0;
    if (!known && graph.cur_element_count >= graph.max_elements_) {
      // hnswlib's resizeIndex reallocs (and frees the old vectors unwiped): rebuild instead.
      hnsw_.reset();
      return BuildHnswLocked();
    }
    alignas(32) float values[kDims];
    Decode(slot, values);
    try {
      graph.addPoint(values, slot);  // a removed slot's label is un-deleted and updated
    } catch (const std::exception& e) {
      internal::WipeBytes(values, sizeof(values));
      return Status::Internal(std::string("hnsw addPoint: ") + e.what());
    }
    internal::WipeBytes(values, sizeof(values));
    return Status::Ok();
  }

  // --- ids -------------------------------------------------------------------------------------
  std::string_view IdOf(std::uint32_t slot) const {
    return {id_bytes_.data() + id_offset_[slot], id_length_[slot]};
  }
  static std::size_t Hash(std::string_view id) { return std::hash<std::string_view>{}(id); }

  std::uint32_t FindSlot(std::string_view id) const {
    if (table_.empty()) return kEmpty;
    const std::size_t mask = table_.size() - 1;
    for (std::size_t i = Hash(id) & mask;; i = (i + 1) & mask) {
      const std::uint32_t slot = table_[i];
      if (slot == kEmpty) return kEmpty;
      if (IdOf(slot) == id) return slot;
    }
  }

  void InsertIntoTable(std::uint32_t slot) {
    if ((live_count_ + 1) * 2 > table_.size()) {
      std::size_t capacity = std::max<std::size_t>(16, table_.size());
      while ((live_count_ + 1) * 2 > capacity) capacity *= 2;
      table_.assign(capacity, kEmpty);
      for (std::size_t s = 0; s < slot_count_; ++s) {
        if (live_[s] != 0 && s != slot) PlaceInTable(static_cast<std::uint32_t>(s));
      }
    }
    PlaceInTable(slot);
  }

  void PlaceInTable(std::uint32_t slot) {
    const std::size_t mask = table_.size() - 1;
    std::size_t i = Hash(IdOf(slot)) & mask;
    while (table_[i] != kEmpty) i = (i + 1) & mask;
    table_[i] = slot;
  }

  // Linear-probing deletion by backward shift: no tombstones, lookups stay short.
  void EraseFromTable(std::uint32_t slot) {
    const std::size_t mask = table_.size() - 1;
    std::size_t i = Hash(IdOf(slot)) & mask;
    while (table_[i] != slot) i = (i + 1) & mask;
    table_[i] = kEmpty;
    std::size_t j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (table_[j] == kEmpty) break;
      const std::size_t home = Hash(IdOf(table_[j])) & mask;
      // Keep table_[j] where it is if its home lies cyclically in (i, j].
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      table_[i] = table_[j];
      table_[j] = kEmpty;
      i = j;
    }
  }

  void CompactIds() {
    WipingVector<char> compact;
    compact.reserve(id_bytes_.size() - dead_id_bytes_);
    for (std::size_t s = 0; s < slot_count_; ++s) {
      if (live_[s] == 0) continue;
      const std::string_view id = IdOf(static_cast<std::uint32_t>(s));
      id_offset_[s] = static_cast<std::uint32_t>(compact.size());
      compact.insert(compact.end(), id.begin(), id.end());
    }
    id_bytes_.swap(compact);
    dead_id_bytes_ = 0;
  }

  void WipeAll() {
    hnsw_.reset();
    ivf_.reset();
    // The allocator wipes every buffer it frees; clearing + shrinking frees them now.
    auto release = [](auto& v) {
      std::remove_reference_t<decltype(v)> empty;
      v.swap(empty);
    };
    release(codes_);
    release(scales_);
    release(live_);
    release(id_offset_);
    release(id_length_);
    release(id_bytes_);
    release(table_);
    release(free_slots_);
    slot_count_ = 0;
    live_count_ = 0;
    dead_id_bytes_ = 0;
  }

  GalleryOptions options_;
  const internal::Kernels& kernels_;
  const std::size_t stride_;

  mutable std::shared_mutex mutex_;
  WipingVector<std::uint8_t> codes_;  // slot_count_ * stride_ bytes
  WipingVector<float> scales_;        // int8 storage only
  WipingVector<std::uint8_t> live_;
  WipingVector<std::uint32_t> id_offset_;
  WipingVector<std::uint8_t> id_length_;
  WipingVector<char> id_bytes_;        // all ids, back to back; removed ones zeroed
  WipingVector<std::uint32_t> table_;  // open addressing: slot or kEmpty; size a power of two
  WipingVector<std::uint32_t> free_slots_;
  std::size_t slot_count_ = 0;
  std::size_t live_count_ = 0;
  std::size_t dead_id_bytes_ = 0;
  std::unique_ptr<HnswIndex> hnsw_;
  std::unique_ptr<internal::IvfIndex> ivf_;
  std::size_t ivf_built_size_ = 0;

  friend class Gallery;
};

Gallery::Gallery(const GalleryOptions& options) : impl_(std::make_unique<Impl>(options)) {}
Gallery::~Gallery() = default;

Status Gallery::Enrol(std::string_view id, const FaceTemplate& document_template) {
  return impl_->Enrol(id, document_template);
}
Status Gallery::Remove(std::string_view id) { return impl_->Remove(id); }
void Gallery::Clear() { impl_->Clear(); }
std::size_t Gallery::size() const { return impl_->size(); }
bool Gallery::Contains(std::string_view id) const { return impl_->Contains(id); }
Status Gallery::Identify(const FaceTemplate& probe, int k,
                         std::vector<Candidate>* candidates) const {
  return impl_->Identify(probe, k, candidates, /*exact=*/false);
}
Status Gallery::IdentifyExact(const FaceTemplate& probe, int k,
                              std::vector<Candidate>* candidates) const {
  return impl_->Identify(probe, k, candidates, /*exact=*/true);
}
Status Gallery::BuildIndex() { return impl_->BuildIndex(); }
Status Gallery::SetHnswEfSearch(int ef) { return impl_->SetHnswEfSearch(ef); }
Status Gallery::SetIvfSearch(int probes, int min_probes, float stop_distance) {
  return impl_->SetIvfSearch(probes, min_probes, stop_distance);
}
bool Gallery::uses_approximate_index() const { return impl_->uses_approximate_index(); }
std::size_t Gallery::exact_storage_bytes() const { return impl_->exact_storage_bytes(); }
std::size_t Gallery::index_bytes() const { return impl_->index_bytes(); }
std::vector<std::uint8_t> Gallery::RawCodesForTesting() const { return impl_->RawCodes(); }
std::vector<std::uint8_t> Gallery::RawIvfCodesForTesting() const { return impl_->RawIvfCodes(); }

Status Gallery::Serialize(std::string* out) const {
  if (out == nullptr) return Status::InvalidArgument("null output");
  std::shared_lock lock(impl_->mutex_);
  internal::GalleryWriter writer(impl_->live_count_);
  alignas(32) float values[kDims];
  for (std::size_t slot = 0; slot < impl_->slot_count_; ++slot) {
    if (impl_->live_[slot] == 0) continue;
    impl_->Decode(static_cast<std::uint32_t>(slot), values);
    writer.Add(impl_->IdOf(static_cast<std::uint32_t>(slot)), values);
  }
  internal::WipeBytes(values, sizeof(values));
  writer.Finish(out);
  return Status::Ok();
}

Status Gallery::Deserialize(std::string_view bytes, const GalleryOptions& options,
                            std::unique_ptr<Gallery>* out) {
  if (out == nullptr) return Status::InvalidArgument("null output");
  auto gallery = std::make_unique<Gallery>(options);
  PORTCULLIS_RETURN_IF_ERROR(internal::ParseGallery(
      bytes, [&](std::size_t count) { gallery->impl_->Reserve(count); },
      [&](std::string_view id, const FaceTemplate& t) {
        Status s = gallery->Enrol(id, t);
        if (s.ok()) return s;
        return Status::Corruption("gallery entry '" + std::string(id) + "': " + s.message());
      }));
  *out = std::move(gallery);
  return Status::Ok();
}

}  // namespace portcullis::face
