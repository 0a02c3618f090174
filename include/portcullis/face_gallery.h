// Galleries of enrolled face templates and 1:N search.
//
// A Gallery holds the *document-photo* templates (passport/visa chip photos) of the people a lane
// expects — a flight manifest (tens to hundreds) or a watch-list (up to ~1 000 000). A live capture
// (the probe) is compared against all of them and the closest are returned, ranked. Probes are
// never stored: Identify reads the probe and keeps no copy once it returns.
//
//   GalleryOptions options;                 // int8 storage, exact search
//   Gallery gallery(options);
//   Status s = gallery.Enrol("P1234567", document_template);
//   std::vector<Candidate> top;
//   s = gallery.Identify(live_template, 5, &top);   // top[0] is the closest
//
// Memory hygiene: every byte that held template data (the compact codes, the float copies of the
// approximate index, the buffers left behind when storage grows) is overwritten with zeros before
// it is freed — on Remove, Clear, growth and destruction.
//
// Thread-safety: Identify, size() and Serialize may run concurrently from many threads (a shared
// lock); Enrol, Remove, Clear and BuildIndex take an exclusive lock. A Gallery may be shared
// between threads without external locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/env.h"
#include "portcullis/face.h"
#include "portcullis/status.h"

namespace portcullis::face {

// How templates are held in memory for the exact scan (per template, 128 dims).
enum class GalleryStorage {
  kFloat32,  // 512 bytes: bit-exact distances (small per-flight galleries)
  kFloat16,  // 256 bytes: IEEE half, |value| <= 65504
  kInt8,     // 132 bytes: symmetric int8 codes with a per-template scale (max |value| / 127)
};

// Which search Identify runs.
enum class GalleryIndex {
  kExact,  // scan every template (SIMD); exact within the storage's precision
  kHnsw,   // approximate: an HNSW graph (hnswlib) over the stored (decoded) values
  kAuto,   // kHnsw once size() >= auto_hnsw_min_size, else kExact
  kIvf,    // approximate: k-means lists, the probe's nearest lists scanned with the exact kernel
};
// The default is kExact: at 1 000 000 templates with a face-like spectrum, HNSW (M 16) found the
// exact nearest neighbour for only 79-88% of queries (docs/face-search.md), and a watch-list miss
// is a missed alert. Opt in to kHnsw/kAuto only after measuring recall on your own templates.

struct GalleryOptions {
  GalleryStorage storage = GalleryStorage::kInt8;
  GalleryIndex index = GalleryIndex::kExact;
  std::size_t auto_hnsw_min_size = 200000;
  // HNSW parameters (see docs/face-search.md for the recall they give).
  int hnsw_m = 16;
  int hnsw_ef_construction = 200;
  int hnsw_ef_search = 128;  // raised to k when k is larger
  int hnsw_build_threads = 1;
  std::uint64_t hnsw_seed = 100;
  // Inverted-file parameters (kIvf; docs/face-search.md has the recall they give at 1 000 000).
  // Distances it returns are exact; it can miss a nearer template in a list it did not scan.
  int ivf_lists = 0;     // 0: about 4 * sqrt(size()) when the index is built (4 000 at 1M)
  int ivf_probes = 256;  // lists scanned per search, nearest centroid first
  // Early stop: once ivf_min_probes lists are scanned and the k-th best is closer than this, the
  // rest are skipped (a mated probe is ~0.35 from its mate, impostors rarely under 0.6). 0: off.
  float ivf_stop_distance = 0.45f;
  int ivf_min_probes = 32;
  int ivf_train_iterations = 10;
  std::uint64_t ivf_seed = 100;
  // Use the portable scalar kernels even where AVX2 is available (tests and the baseline bench).
  bool force_scalar_kernels = false;
};

// One ranked answer of Identify.
struct Candidate {
  std::string id;
  float distance = 0;    // Euclidean, on the stored values
  float similarity = 0;  // SimilarityFromDistance(distance), the same score as Verify (face.h)
};

// Which SIMD kernels a gallery built with these options uses: "avx2" or "scalar".
const char* GalleryKernelName(const GalleryOptions& options);

class Gallery {
 public:
  explicit Gallery(const GalleryOptions& options = {});
  ~Gallery();
  Gallery(const Gallery&) = delete;
  Gallery& operator=(const Gallery&) = delete;

  // Adds a document template under id (1..255 bytes). Errors:
  //   InvalidArgument — empty or over-long id, NaN/Inf value, value out of the storage's range;
  //   Unsupported     — id already enrolled (re-enrolment must be an explicit Remove + Enrol,
  //                     never a silent overwrite);
  //   ResourceExhausted — more than 2^32 - 2 entries / 4 GiB of ids.
  Status Enrol(std::string_view id, const FaceTemplate& document_template);
  // NotFound if id is not enrolled. The removed template's memory is wiped at once.
  Status Remove(std::string_view id);
  // Removes (and wipes) everything.
  void Clear();
  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] bool Contains(std::string_view id) const;

  // The k (>= 1) closest templates to probe, closest first (ties: earlier enrolment first); fewer
  // than k when the gallery is smaller. Errors: InvalidArgument (k < 1, NaN/Inf probe);
  // NotFound — the gallery is empty (there is no one to identify against; callers usually map
  // this to "no match", but it is distinct so that an unloaded manifest is not read as "stranger").
  Status Identify(const FaceTemplate& probe, int k, std::vector<Candidate>* candidates) const;
  // Exact scan regardless of the index option (for measuring recall).
  Status IdentifyExact(const FaceTemplate& probe, int k, std::vector<Candidate>* candidates) const;

  // Builds the approximate index now (otherwise the first Identify that needs it builds it).
  Status BuildIndex();
  [[nodiscard]] bool uses_approximate_index() const;
  // Changes the HNSW search breadth (recall vs speed) after construction; InvalidArgument if < 1.
  Status SetHnswEfSearch(int ef);
  // Changes the IVF search (GalleryOptions::ivf_probes, ivf_min_probes, ivf_stop_distance);
  // InvalidArgument if probes or min_probes < 1, or stop_distance is negative or not finite.
  Status SetIvfSearch(int probes, int min_probes, float stop_distance);

  // Bytes held for the templates, ids and id lookup (not counting the index), and the
  // approximate index: the HNSW graph with its float copies, or the IVF centroids and list copies
  // (0 when not built).
  [[nodiscard]] std::size_t exact_storage_bytes() const;
  [[nodiscard]] std::size_t index_bytes() const;

  // The gallery file body (no file I/O, so the vault can seal it): see docs/face-search.md.
  //   "PCGL" | u32 format version | u32 template version | u32 dims | u64 count |
  //   count x (u8 id length | id | 128 x f32 LE) | u32 CRC-32 of all preceding bytes
  // Templates are written as stored (decoded values for int8/float16 storage).
  Status Serialize(std::string* out) const;
  // Refuses truncated/corrupt (Corruption), unknown format version (Unsupported), template
  // version or dims not ours (InvalidArgument); never a crash. *out is untouched on error.
  static Status Deserialize(std::string_view bytes, const GalleryOptions& options,
                            std::unique_ptr<Gallery>* out);

  // Test-only: the raw code bytes of every slot (removed slots included), and of every IVF list
  // member (empty when no IVF index is built).
  [[nodiscard]] std::vector<std::uint8_t> RawCodesForTesting() const;
  [[nodiscard]] std::vector<std::uint8_t> RawIvfCodesForTesting() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Gallery files: Serialize/Deserialize plus Env file I/O. Saving is atomic (temporary + rename).
// Loading a missing file is NotFound; a file larger than max_bytes is ResourceExhausted.
inline constexpr std::size_t kDefaultMaxGalleryFileBytes = std::size_t{1} << 30;
Status SaveGalleryFile(Env* env, const std::string& path, const Gallery& gallery);
Status LoadGalleryFile(Env* env, const std::string& path, const GalleryOptions& options,
                       std::unique_ptr<Gallery>* out,
                       std::size_t max_bytes = kDefaultMaxGalleryFileBytes);

}  // namespace portcullis::face
