// Gallery: enrol/remove/identify against a float32 brute force, error codes, SIMD/scalar
// equality, compact-storage accuracy, HNSW recall, concurrency and wiping.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "face/gallery_kernels.h"
#include "face/gallery_synth.h"
#include "face/gallery_wipe.h"
#include "portcullis/face_gallery.h"

namespace portcullis::face {
namespace {

using testing::TemplateSynth;

std::string IdFor(std::size_t i) { return "P" + std::to_string(1000000 + i); }

// The reference: float32 Distance to every template, sorted (distance, enrolment order).
std::vector<std::pair<float, std::size_t>> BruteForce(const std::vector<FaceTemplate>& gallery,
                                                      const FaceTemplate& probe) {
  std::vector<std::pair<float, std::size_t>> all;
  for (std::size_t i = 0; i < gallery.size(); ++i) all.emplace_back(Distance(gallery[i], probe), i);
  std::sort(all.begin(), all.end());
  return all;
}

GalleryOptions Exact(GalleryStorage storage, bool scalar = false) {
  GalleryOptions o;
  o.storage = storage;
  o.index = GalleryIndex::kExact;
  o.force_scalar_kernels = scalar;
  return o;
}

TEST(GalleryTest, Float32RankingMatchesBruteForce) {
  TemplateSynth synth(1);
  std::vector<FaceTemplate> enrolled;
  Gallery gallery(Exact(GalleryStorage::kFloat32));
  for (std::size_t i = 0; i < 500; ++i) {
    enrolled.push_back(synth.Identity());
    ASSERT_TRUE(gallery.Enrol(IdFor(i), enrolled.back()).ok());
  }
  EXPECT_EQ(gallery.size(), 500u);
  for (int q = 0; q < 50; ++q) {
    const FaceTemplate probe =
        q % 2 == 0 ? synth.Capture(enrolled[static_cast<std::size_t>(q) * 7]) : synth.Identity();
    std::vector<Candidate> got;
    ASSERT_TRUE(gallery.Identify(probe, 10, &got).ok());
    const auto want = BruteForce(enrolled, probe);
    ASSERT_EQ(got.size(), 10u);
    for (std::size_t r = 0; r < got.size(); ++r) {
      EXPECT_EQ(got[r].id, IdFor(want[r].second)) << "query " << q << " rank " << r;
      EXPECT_NEAR(got[r].distance, want[r].first, 1e-5f);
      EXPECT_FLOAT_EQ(got[r].similarity, SimilarityFromDistance(got[r].distance));
      if (r > 0) {
        EXPECT_LE(got[r - 1].distance, got[r].distance);
      }
    }
    if (q % 2 == 0) {
      EXPECT_EQ(got[0].id, IdFor(static_cast<std::size_t>(q) * 7));
    }
  }
}

TEST(GalleryTest, KLargerThanGalleryReturnsEveryone) {
  TemplateSynth synth(2);
  Gallery gallery(Exact(GalleryStorage::kInt8));
  for (std::size_t i = 0; i < 3; ++i) ASSERT_TRUE(gallery.Enrol(IdFor(i), synth.Identity()).ok());
  std::vector<Candidate> got;
  ASSERT_TRUE(gallery.Identify(synth.Identity(), 10, &got).ok());
  EXPECT_EQ(got.size(), 3u);
}

TEST(GalleryTest, ErrorsAreDistinct) {
  TemplateSynth synth(3);
  Gallery gallery;
  std::vector<Candidate> got;
  // Empty gallery: NotFound, not an empty "no match".
  EXPECT_EQ(gallery.Identify(synth.Identity(), 1, &got).code(), Status::Code::kNotFound);

  const FaceTemplate t = synth.Identity();
  ASSERT_TRUE(gallery.Enrol("A", t).ok());
  EXPECT_EQ(gallery.Enrol("A", synth.Identity()).code(), Status::Code::kUnsupported);
  EXPECT_EQ(gallery.size(), 1u);
  EXPECT_EQ(gallery.Enrol("", t).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(gallery.Enrol(std::string(256, 'x'), t).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(gallery.Enrol(std::string(255, 'x'), t).ok());

  for (const float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
        -std::numeric_limits<float>::infinity()}) {
    FaceTemplate b = synth.Identity();
    b.mutable_values()[17] = bad;
    EXPECT_EQ(gallery.Enrol("B", b).code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(gallery.Identify(b, 1, &got).code(), Status::Code::kInvalidArgument);
  }
  EXPECT_FALSE(gallery.Contains("B"));
  EXPECT_EQ(gallery.Identify(t, 0, &got).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(gallery.Remove("nobody").code(), Status::Code::kNotFound);

  GalleryOptions half;
  half.storage = GalleryStorage::kFloat16;
  Gallery g16(half);
  FaceTemplate big = synth.Identity();
  big.mutable_values()[0] = 70000.0f;
  EXPECT_EQ(g16.Enrol("big", big).code(), Status::Code::kInvalidArgument);
}

TEST(GalleryTest, WrongVersionTemplateNeverReachesTheGallery) {
  // Templates come in serialized; a wrong version is refused by Deserialize before Enrol.
  TemplateSynth synth(4);
  std::string bytes = synth.Identity().Serialize();
  bytes[4] = static_cast<char>(kTemplateVersion + 1);
  FaceTemplate t;
  EXPECT_EQ(FaceTemplate::Deserialize(bytes, &t).code(), Status::Code::kInvalidArgument);
}

TEST(GalleryTest, RemoveAndReEnrolMatchAModel) {
  // Random enrol/remove traffic against a std::map model: exercises slot reuse, the open
  // addressing table's backward-shift deletion and id compaction.
  TemplateSynth synth(5);
  std::mt19937 rng(5);
  Gallery gallery(Exact(GalleryStorage::kFloat32));
  std::map<std::string, FaceTemplate> model;
  for (int step = 0; step < 6000; ++step) {
    const std::string id = "id" + std::to_string(rng() % 700);
    if (rng() % 3 != 0) {
      const FaceTemplate t = synth.Identity();
      const Status s = gallery.Enrol(id, t);
      if (model.count(id) != 0) {
        EXPECT_EQ(s.code(), Status::Code::kUnsupported);
      } else {
        ASSERT_TRUE(s.ok()) << s.ToString();
        model.emplace(id, t);
      }
    } else {
      const Status s = gallery.Remove(id);
      EXPECT_EQ(s.ok(), model.erase(id) == 1) << id;
    }
    ASSERT_EQ(gallery.size(), model.size());
  }
  // Every model entry is found at distance 0 as its own nearest neighbour; no removed id appears.
  std::vector<Candidate> got;
  for (const auto& [id, t] : model) {
    ASSERT_TRUE(gallery.Contains(id));
    ASSERT_TRUE(gallery.Identify(t, 3, &got).ok());
    EXPECT_EQ(got[0].id, id);
    EXPECT_EQ(got[0].distance, 0.0f);
    for (const Candidate& c : got) EXPECT_EQ(model.count(c.id), 1u) << c.id;
  }
  for (int i = 0; i < 700; ++i) {
    const std::string id = "id" + std::to_string(i);
    EXPECT_EQ(gallery.Contains(id), model.count(id) == 1) << id;
  }
}

TEST(GalleryTest, RemoveWipesTheSlotAtOnce) {
  TemplateSynth synth(6);
  for (const GalleryStorage storage :
       {GalleryStorage::kFloat32, GalleryStorage::kFloat16, GalleryStorage::kInt8}) {
    Gallery gallery(Exact(storage));
    for (std::size_t i = 0; i < 3; ++i) ASSERT_TRUE(gallery.Enrol(IdFor(i), synth.Identity()).ok());
    const std::vector<std::uint8_t> before = gallery.RawCodesForTesting();
    const std::size_t stride = before.size() / 3;
    auto slot_is_zero = [&](const std::vector<std::uint8_t>& raw, std::size_t slot) {
      return std::all_of(raw.begin() + static_cast<std::ptrdiff_t>(slot * stride),
                         raw.begin() + static_cast<std::ptrdiff_t>((slot + 1) * stride),
                         [](std::uint8_t b) { return b == 0; });
    };
    ASSERT_FALSE(slot_is_zero(before, 1));
    ASSERT_TRUE(gallery.Remove(IdFor(1)).ok());
    const std::vector<std::uint8_t> after = gallery.RawCodesForTesting();
    EXPECT_TRUE(slot_is_zero(after, 1));
    EXPECT_FALSE(slot_is_zero(after, 0));
    EXPECT_FALSE(slot_is_zero(after, 2));
  }
}

// Wipe-on-release, observed through the allocator hook: every block the gallery frees (growth,
// Clear, destruction) must be all zeros at the moment it is handed back.
struct WipeLog {
  std::size_t blocks = 0;
  std::size_t bytes = 0;
  std::size_t dirty_blocks = 0;
};
WipeLog g_wipe_log;
void RecordWipe(const void* p, std::size_t n) {
  ++g_wipe_log.blocks;
  g_wipe_log.bytes += n;
  const auto* b = static_cast<const unsigned char*>(p);
  if (std::any_of(b, b + n, [](unsigned char c) { return c != 0; })) ++g_wipe_log.dirty_blocks;
}

TEST(GalleryTest, EveryReleasedBufferIsWiped) {
  TemplateSynth synth(7);
  for (const GalleryStorage storage :
       {GalleryStorage::kFloat32, GalleryStorage::kFloat16, GalleryStorage::kInt8}) {
    g_wipe_log = {};
    internal::SetWipeObserverForTesting(&RecordWipe);
    {
      Gallery gallery(Exact(storage));
      for (std::size_t i = 0; i < 300; ++i) {  // growth frees old buffers many times
        ASSERT_TRUE(gallery.Enrol(IdFor(i), synth.Identity()).ok());
      }
      gallery.Clear();
      EXPECT_EQ(gallery.size(), 0u);
      for (std::size_t i = 0; i < 50; ++i) {
        ASSERT_TRUE(gallery.Enrol(IdFor(i), synth.Identity()).ok());
      }
    }  // destruction
    internal::SetWipeObserverForTesting(nullptr);
    EXPECT_EQ(g_wipe_log.dirty_blocks, 0u);
    // The hook must really have seen the template storage (at least the final 300-entry buffer
    // and the 50-entry one), or this test would pass vacuously.
    EXPECT_GE(g_wipe_log.bytes, 350 * internal::kDims);
    EXPECT_GT(g_wipe_log.blocks, 10u);
  }
}

TEST(GalleryTest, WipeBytesReallyZeroes) {
  std::vector<unsigned char> buffer(64, 0xAB);
  internal::WipeBytes(buffer.data(), buffer.size());
  EXPECT_TRUE(std::all_of(buffer.begin(), buffer.end(), [](unsigned char c) { return c == 0; }));
}

// --- kernels ---------------------------------------------------------------------------------

TEST(GalleryKernelTest, HalfConversionRoundTripsEveryFiniteHalf) {
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    const auto half = static_cast<std::uint16_t>(h);
    if ((half & 0x7C00u) == 0x7C00u) continue;  // Inf/NaN are refused before encoding
    const float f = internal::HalfToFloat(half);
    ASSERT_EQ(internal::FloatToHalf(f), half) << h;
  }
  // Rounding to nearest even, checked on values between two halves.
  EXPECT_EQ(internal::FloatToHalf(1.0f + 1.0f / 2048.0f), 0x3C00u);          // tie -> even
  EXPECT_EQ(internal::FloatToHalf(1.0f + 3.0f / 2048.0f), 0x3C02u);          // tie -> even (up)
  EXPECT_EQ(internal::FloatToHalf(1.0f + 1.0f / 2048.0f + 1e-6f), 0x3C01u);  // above tie
  EXPECT_EQ(internal::FloatToHalf(70000.0f), 0x7C00u);
  EXPECT_EQ(internal::FloatToHalf(1e-9f), 0x0000u);
}

TEST(GalleryKernelTest, SimdAndScalarGiveBitIdenticalDistances) {
  std::mt19937 rng(8);
  std::normal_distribution<float> g(0.0f, 0.1f);
  const std::size_t n = 37;  // not a multiple of the 4-template unroll
  std::vector<float> f32(n * internal::kDims);
  for (float& v : f32) v = g(rng);
  std::vector<std::uint16_t> f16(f32.size());
  for (std::size_t i = 0; i < f32.size(); ++i) f16[i] = internal::FloatToHalf(f32[i]);
  std::vector<std::int8_t> i8(f32.size());
  std::vector<float> scales(n);
  for (std::size_t j = 0; j < n; ++j) {
    scales[j] =
        internal::QuantizeInt8(f32.data() + j * internal::kDims, i8.data() + j * internal::kDims);
  }
  std::vector<float> query(internal::kDims);
  for (float& v : query) v = g(rng);

  const internal::Kernels& simd = internal::BestKernels();
  const internal::Kernels& scalar = internal::ScalarKernels();
  EXPECT_EQ(std::string(simd.name), internal::CpuHasAvx2() ? "avx2" : "scalar");
  std::vector<float> a(n), b(n);
  simd.float32(query.data(), f32.data(), n, a.data());
  scalar.float32(query.data(), f32.data(), n, b.data());
  EXPECT_EQ(a, b);
  // Sanity: the scalar kernel computes the squared distance.
  float want = 0;
  for (std::size_t i = 0; i < internal::kDims; ++i) {
    want += (query[i] - f32[i]) * (query[i] - f32[i]);
  }
  EXPECT_NEAR(b[0], want, 1e-5f);
  simd.float16(query.data(), f16.data(), n, a.data());
  scalar.float16(query.data(), f16.data(), n, b.data());
  EXPECT_EQ(a, b);
  simd.int8(query.data(), i8.data(), scales.data(), n, a.data());
  scalar.int8(query.data(), i8.data(), scales.data(), n, b.data());
  EXPECT_EQ(a, b);
}

TEST(GalleryKernelTest, SimdAndScalarGalleriesAgree) {
  TemplateSynth synth(9);
  std::vector<FaceTemplate> enrolled;
  for (std::size_t i = 0; i < 301; ++i) enrolled.push_back(synth.Identity());
  for (const GalleryStorage storage :
       {GalleryStorage::kFloat32, GalleryStorage::kFloat16, GalleryStorage::kInt8}) {
    Gallery simd(Exact(storage, false));
    Gallery scalar(Exact(storage, true));
    for (std::size_t i = 0; i < enrolled.size(); ++i) {
      ASSERT_TRUE(simd.Enrol(IdFor(i), enrolled[i]).ok());
      ASSERT_TRUE(scalar.Enrol(IdFor(i), enrolled[i]).ok());
    }
    for (int q = 0; q < 20; ++q) {
      const FaceTemplate probe = synth.Capture(enrolled[static_cast<std::size_t>(q)]);
      std::vector<Candidate> a, b;
      ASSERT_TRUE(simd.Identify(probe, 8, &a).ok());
      ASSERT_TRUE(scalar.Identify(probe, 8, &b).ok());
      ASSERT_EQ(a.size(), b.size());
      for (std::size_t r = 0; r < a.size(); ++r) {
        EXPECT_EQ(a[r].id, b[r].id);
        EXPECT_EQ(a[r].distance, b[r].distance);
      }
    }
  }
}

// Compact storage vs float32: rank-1 agreement on mated and non-mated probes, distance error.
TEST(GalleryAccuracyTest, CompactStorageAgreesWithFloat32) {
  TemplateSynth synth(10);
  std::vector<FaceTemplate> enrolled;
  Gallery f32(Exact(GalleryStorage::kFloat32));
  Gallery f16(Exact(GalleryStorage::kFloat16));
  Gallery i8(Exact(GalleryStorage::kInt8));
  for (std::size_t i = 0; i < 2000; ++i) {
    enrolled.push_back(synth.Identity());
    ASSERT_TRUE(f32.Enrol(IdFor(i), enrolled.back()).ok());
    ASSERT_TRUE(f16.Enrol(IdFor(i), enrolled.back()).ok());
    ASSERT_TRUE(i8.Enrol(IdFor(i), enrolled.back()).ok());
  }
  int agree16 = 0, agree8 = 0;
  float max_err16 = 0, max_err8 = 0;
  const int queries = 200;
  for (int q = 0; q < queries; ++q) {
    const FaceTemplate probe =
        q % 4 == 3 ? synth.Identity() : synth.Capture(enrolled[static_cast<std::size_t>(q)]);
    std::vector<Candidate> a, b, c;
    ASSERT_TRUE(f32.Identify(probe, 1, &a).ok());
    ASSERT_TRUE(f16.Identify(probe, 1, &b).ok());
    ASSERT_TRUE(i8.Identify(probe, 1, &c).ok());
    agree16 += a[0].id == b[0].id ? 1 : 0;
    agree8 += a[0].id == c[0].id ? 1 : 0;
    max_err16 = std::max(max_err16, std::fabs(a[0].distance - b[0].distance));
    max_err8 = std::max(max_err8, std::fabs(a[0].distance - c[0].distance));
  }
  EXPECT_GE(agree16, queries - 1);
  EXPECT_GE(agree8, queries * 98 / 100);
  EXPECT_LT(max_err16, 1e-3f);
  EXPECT_LT(max_err8, 5e-3f);  // int8 step is max|v|/127 ~ 0.0016 per dim
  EXPECT_GT(max_err8, 0.0f);   // it is lossy: the test would notice float32 sneaking in
}

TEST(GalleryHnswTest, RecallAgainstExact) {
  TemplateSynth synth(11);
  GalleryOptions options;
  options.storage = GalleryStorage::kInt8;
  options.index = GalleryIndex::kHnsw;
  options.hnsw_ef_construction = 100;
  Gallery gallery(options);
  std::vector<FaceTemplate> enrolled;
  for (std::size_t i = 0; i < 3000; ++i) {
    enrolled.push_back(synth.Identity());
    ASSERT_TRUE(gallery.Enrol(IdFor(i), enrolled.back()).ok());
  }
  ASSERT_TRUE(gallery.BuildIndex().ok());
  EXPECT_TRUE(gallery.uses_approximate_index());
  EXPECT_GT(gallery.index_bytes(), 3000u * internal::kDims * sizeof(float));
  int hits = 0;
  const int queries = 300;
  for (int q = 0; q < queries; ++q) {
    const FaceTemplate probe =
        q % 3 == 2 ? synth.Identity() : synth.Capture(enrolled[static_cast<std::size_t>(q) * 9]);
    std::vector<Candidate> approx, exact;
    ASSERT_TRUE(gallery.Identify(probe, 1, &approx).ok());
    ASSERT_TRUE(gallery.IdentifyExact(probe, 1, &exact).ok());
    hits += approx[0].id == exact[0].id ? 1 : 0;
  }
  EXPECT_GE(hits, queries * 97 / 100);

  // The index follows Remove and Enrol (including reuse of a removed slot).
  const FaceTemplate probe = synth.Capture(enrolled[5]);
  ASSERT_TRUE(gallery.Remove(IdFor(5)).ok());
  std::vector<Candidate> got;
  ASSERT_TRUE(gallery.Identify(probe, 5, &got).ok());
  for (const Candidate& c : got) EXPECT_NE(c.id, IdFor(5));
  ASSERT_TRUE(gallery.Enrol("returning", enrolled[5]).ok());
  ASSERT_TRUE(gallery.Identify(probe, 1, &got).ok());
  EXPECT_EQ(got[0].id, "returning");
}

TEST(GalleryHnswTest, AutoSwitchesAtTheThreshold) {
  TemplateSynth synth(12);
  GalleryOptions options;
  options.index = GalleryIndex::kAuto;
  options.auto_hnsw_min_size = 100;
  options.hnsw_ef_construction = 32;  // structure, not recall, is under test here
  Gallery gallery(options);
  for (std::size_t i = 0; i < 99; ++i) ASSERT_TRUE(gallery.Enrol(IdFor(i), synth.Identity()).ok());
  EXPECT_FALSE(gallery.uses_approximate_index());
  std::vector<Candidate> got;
  ASSERT_TRUE(gallery.Identify(synth.Identity(), 1, &got).ok());
  EXPECT_EQ(gallery.index_bytes(), 0u);
  ASSERT_TRUE(gallery.Enrol(IdFor(99), synth.Identity()).ok());
  EXPECT_TRUE(gallery.uses_approximate_index());
  ASSERT_TRUE(gallery.Identify(synth.Identity(), 1, &got).ok());  // builds lazily
  EXPECT_GT(gallery.index_bytes(), 0u);
  // Growing past the graph's capacity rebuilds it rather than reallocating unwiped.
  for (std::size_t i = 100; i < 1600; ++i) {
    ASSERT_TRUE(gallery.Enrol(IdFor(i), synth.Identity()).ok());
  }
  const FaceTemplate last = synth.Identity();
  ASSERT_TRUE(gallery.Enrol("last", last).ok());
  ASSERT_TRUE(gallery.Identify(last, 1, &got).ok());
  EXPECT_EQ(got[0].id, "last");
}

// --- IVF ---------------------------------------------------------------------------------------
GalleryOptions Ivf(GalleryStorage storage, int lists) {
  GalleryOptions o;
  o.storage = storage;
  o.index = GalleryIndex::kIvf;
  o.ivf_lists = lists;
  o.ivf_stop_distance = 0;  // the early stop is tested on its own
  return o;
}

// How many of `queries` fresh identities get a rank-1 other than the exact scan's (-1 on error).
int NonMatedMisses(const Gallery& gallery, TemplateSynth* synth, int queries) {
  int misses = 0;
  for (int q = 0; q < queries; ++q) {
    const FaceTemplate probe = synth->Identity();
    std::vector<Candidate> ivf, exact;
    if (!gallery.Identify(probe, 1, &ivf).ok() || !gallery.IdentifyExact(probe, 1, &exact).ok() ||
        ivf.size() != 1 || exact.size() != 1) {
      ADD_FAILURE() << "search failed";
      return -1;
    }
    misses += ivf[0].id != exact[0].id ? 1 : 0;
  }
  return misses;
}

TEST(GalleryIvfTest, ScanningEveryListIsTheExactSearch) {
  // With probes = lists the IVF scans everyone with the exact kernel: the same candidates, the
  // same bit-identical distances and the same tie order as the exact scan, for every storage,
  // also after removals, re-use of a removed slot and enrolments made after the build.
  for (const GalleryStorage storage :
       {GalleryStorage::kFloat32, GalleryStorage::kFloat16, GalleryStorage::kInt8}) {
    TemplateSynth synth(21, 0.8);
    GalleryOptions options = Ivf(storage, 24);
    options.ivf_probes = 24;
    Gallery gallery(options);
    std::vector<FaceTemplate> enrolled;
    for (std::size_t i = 0; i < 600; ++i) {
      enrolled.push_back(synth.Identity());
      ASSERT_TRUE(gallery.Enrol(IdFor(i), enrolled.back()).ok());
    }
    ASSERT_TRUE(gallery.Enrol("twin", enrolled[3]).ok());  // an exact tie with P1000003
    ASSERT_TRUE(gallery.BuildIndex().ok());
    EXPECT_TRUE(gallery.uses_approximate_index());
    EXPECT_GT(gallery.index_bytes(), 600u * internal::kDims);
    for (std::size_t i = 0; i < 600; i += 7) ASSERT_TRUE(gallery.Remove(IdFor(i)).ok());
    for (std::size_t i = 0; i < 40; ++i) {
      ASSERT_TRUE(gallery.Enrol("late" + std::to_string(i), synth.Identity()).ok());
    }
    for (std::size_t i = 0; i < 40; i += 3) {  // out of the runs added after the build
      ASSERT_TRUE(gallery.Remove("late" + std::to_string(i)).ok());
    }
    const std::size_t indexed = gallery.RawIvfCodesForTesting().size();
    EXPECT_EQ(indexed, gallery.size() * (storage == GalleryStorage::kFloat32   ? 512u
                                         : storage == GalleryStorage::kFloat16 ? 256u
                                                                               : 128u));
    for (int q = 0; q < 60; ++q) {
      const FaceTemplate probe =
          q % 2 == 0 ? synth.Identity() : synth.Capture(enrolled[static_cast<std::size_t>(q) * 9]);
      std::vector<Candidate> ivf, exact;
      ASSERT_TRUE(gallery.Identify(probe, 7, &ivf).ok());
      ASSERT_TRUE(gallery.IdentifyExact(probe, 7, &exact).ok());
      ASSERT_EQ(ivf.size(), exact.size());
      for (std::size_t i = 0; i < ivf.size(); ++i) {
        EXPECT_EQ(ivf[i].id, exact[i].id) << q << " rank " << i;
        EXPECT_EQ(ivf[i].distance, exact[i].distance);
      }
    }
    // k = everyone: every list's every member, in the exact scan's order.
    std::vector<Candidate> all_ivf, all_exact;
    const FaceTemplate probe = synth.Identity();
    ASSERT_TRUE(gallery.Identify(probe, 10000, &all_ivf).ok());
    ASSERT_TRUE(gallery.IdentifyExact(probe, 10000, &all_exact).ok());
    ASSERT_EQ(all_ivf.size(), gallery.size());
    ASSERT_EQ(all_exact.size(), gallery.size());
    for (std::size_t i = 0; i < all_ivf.size(); ++i) EXPECT_EQ(all_ivf[i].id, all_exact[i].id);
    std::vector<Candidate> got;
    ASSERT_TRUE(gallery.Identify(enrolled[3], 2, &got).ok());
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].id, IdFor(3));  // earlier enrolment first on a tie, as in the exact scan
    EXPECT_EQ(got[1].id, "twin");
  }
}

TEST(GalleryIvfTest, FewProbesStillFindMates) {
  TemplateSynth synth(22, 0.8);
  GalleryOptions options = Ivf(GalleryStorage::kInt8, 0);  // 0: 4 * sqrt(4000) = 253 lists
  options.ivf_probes = 16;
  Gallery gallery(options);
  std::vector<FaceTemplate> enrolled;
  for (std::size_t i = 0; i < 4000; ++i) {
    enrolled.push_back(synth.Identity());
    ASSERT_TRUE(gallery.Enrol(IdFor(i), enrolled.back()).ok());
  }
  int mates_found = 0, agree = 0;
  for (std::size_t q = 0; q < 200; ++q) {
    std::vector<Candidate> ivf, exact;
    const FaceTemplate probe = synth.Capture(enrolled[q * 19]);
    ASSERT_TRUE(gallery.Identify(probe, 1, &ivf).ok());
    ASSERT_TRUE(gallery.IdentifyExact(probe, 1, &exact).ok());
    ASSERT_EQ(ivf.size(), 1u);
    mates_found += ivf[0].id == IdFor(q * 19) ? 1 : 0;
    agree += ivf[0].id == exact[0].id ? 1 : 0;
  }
  EXPECT_GE(mates_found, 198);  // 16 of 253 lists: ~6% of the gallery scanned
  EXPECT_GE(agree, 198);
  // One probed list of ~16 members still answers k = 100 in full: the search goes on to the next
  // nearest lists rather than return fewer candidates than the exact scan.
  ASSERT_TRUE(gallery.SetIvfSearch(1, 1, 0).ok());
  std::vector<Candidate> many;
  ASSERT_TRUE(gallery.Identify(synth.Identity(), 100, &many).ok());
  EXPECT_EQ(many.size(), 100u);
  // A non-mated probe scanning 1 list of 253 misses its true nearest neighbour now and then:
  // the index is approximate, and this is what ivf_probes trades.
  ASSERT_TRUE(gallery.SetIvfSearch(1, 1, 0).ok());
  EXPECT_GT(NonMatedMisses(gallery, &synth, 200), 0);
}

TEST(GalleryIvfTest, EarlyStopSkipsListsOnlyForCloseMatches) {
  TemplateSynth synth(23, 0.8);
  GalleryOptions options = Ivf(GalleryStorage::kInt8, 50);
  options.ivf_probes = 50;  // every list, unless stopped early
  options.ivf_min_probes = 1;
  options.ivf_stop_distance = 0.6f;
  Gallery gallery(options);
  std::vector<FaceTemplate> enrolled;
  for (std::size_t i = 0; i < 2000; ++i) {
    enrolled.push_back(synth.Identity());
    ASSERT_TRUE(gallery.Enrol(IdFor(i), enrolled.back()).ok());
  }
  // A mated probe stops as soon as it has seen something within 0.6 (impostors are ~0.9 away, so
  // that is its mate): the mate comes back.
  for (std::size_t q = 0; q < 100; ++q) {
    std::vector<Candidate> got;
    ASSERT_TRUE(gallery.Identify(synth.Capture(enrolled[q * 13]), 1, &got).ok());
    EXPECT_EQ(got[0].id, IdFor(q * 13));
    EXPECT_LT(got[0].distance, 0.6f);
  }
  // A non-mated probe never gets below the stop distance, so it scans every list: exact.
  for (int q = 0; q < 50; ++q) {
    const FaceTemplate probe = synth.Identity();
    std::vector<Candidate> ivf, exact;
    ASSERT_TRUE(gallery.Identify(probe, 1, &ivf).ok());
    ASSERT_TRUE(gallery.IdentifyExact(probe, 1, &exact).ok());
    ASSERT_EQ(ivf.size(), 1u);
    if (exact[0].distance >= 0.6f) {
      EXPECT_EQ(ivf[0].id, exact[0].id);
    }
  }
  // The stop really skips lists: with a stop distance everything beats, a search ends after its
  // first list, and non-mated probes then miss their true nearest neighbour now and then.
  ASSERT_TRUE(gallery.SetIvfSearch(50, 1, 100.0f).ok());
  EXPECT_GT(NonMatedMisses(gallery, &synth, 100), 0);
}

TEST(GalleryIvfTest, BadSearchParametersAreRefused) {
  Gallery gallery(Ivf(GalleryStorage::kInt8, 4));
  EXPECT_EQ(gallery.SetIvfSearch(0, 1, 0).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(gallery.SetIvfSearch(1, 0, 0).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(gallery.SetIvfSearch(1, 1, -1).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(gallery.SetIvfSearch(1, 1, std::numeric_limits<float>::quiet_NaN()).code(),
            Status::Code::kInvalidArgument);
  EXPECT_TRUE(gallery.SetIvfSearch(3, 1, 0.5f).ok());
  // An empty gallery has nothing to index or search; more lists than entries are clamped.
  std::vector<Candidate> got;
  EXPECT_TRUE(gallery.BuildIndex().ok());
  EXPECT_EQ(gallery.Identify(FaceTemplate(), 1, &got).code(), Status::Code::kNotFound);
  TemplateSynth synth(24);
  const FaceTemplate only = synth.Identity();
  ASSERT_TRUE(gallery.Enrol("only", only).ok());
  ASSERT_TRUE(gallery.Identify(only, 3, &got).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, "only");
}

TEST(GalleryIvfTest, GrowthRebuildsAndRemovalWipesTheListCopy) {
  TemplateSynth synth(25);
  GalleryOptions options = Ivf(GalleryStorage::kInt8, 0);
  options.ivf_probes = 1000;  // every list: results must equal the exact scan throughout
  Gallery gallery(options);
  for (std::size_t i = 0; i < 300; ++i) ASSERT_TRUE(gallery.Enrol(IdFor(i), synth.Identity()).ok());
  ASSERT_TRUE(gallery.BuildIndex().ok());
  const std::size_t small_index = gallery.index_bytes();
  EXPECT_EQ(gallery.RawIvfCodesForTesting().size(), 300u * internal::kDims);
  // 4x growth drops the index; the next search rebuilds it with more lists.
  for (std::size_t i = 300; i < 1300; ++i) {
    ASSERT_TRUE(gallery.Enrol(IdFor(i), synth.Identity()).ok());
  }
  const FaceTemplate last = synth.Identity();
  ASSERT_TRUE(gallery.Enrol("last", last).ok());
  std::vector<Candidate> got;
  ASSERT_TRUE(gallery.Identify(last, 1, &got).ok());
  EXPECT_EQ(got[0].id, "last");
  EXPECT_GT(gallery.index_bytes(), small_index);
  EXPECT_EQ(gallery.RawIvfCodesForTesting().size(), 1301u * internal::kDims);
  // Remove takes the template out of its list at once: the list copy shrinks, and a search
  // never returns it.
  ASSERT_TRUE(gallery.Remove("last").ok());
  EXPECT_EQ(gallery.RawIvfCodesForTesting().size(), 1300u * internal::kDims);
  ASSERT_TRUE(gallery.Identify(last, 1, &got).ok());
  EXPECT_NE(got[0].id, "last");
}

TEST(GalleryIvfTest, EveryReleasedListBufferIsWiped) {
  TemplateSynth synth(26);
  g_wipe_log = {};
  internal::SetWipeObserverForTesting(&RecordWipe);
  {
    Gallery gallery(Ivf(GalleryStorage::kInt8, 8));
    for (std::size_t i = 0; i < 400; ++i) {
      ASSERT_TRUE(gallery.Enrol(IdFor(i), synth.Identity()).ok());
    }
    ASSERT_TRUE(gallery.BuildIndex().ok());
    for (std::size_t i = 0; i < 100; ++i) ASSERT_TRUE(gallery.Remove(IdFor(i)).ok());
    gallery.Clear();
  }
  internal::SetWipeObserverForTesting(nullptr);
  EXPECT_EQ(g_wipe_log.dirty_blocks, 0u);
  // The slot store (400 codes) and the list copies (400 more) were both released through it.
  EXPECT_GE(g_wipe_log.bytes, 800 * internal::kDims);
}

TEST(GalleryTest, ConcurrentIdentifyWhileEnrolling) {
  TemplateSynth synth(13);
  Gallery gallery(Exact(GalleryStorage::kInt8));
  std::vector<FaceTemplate> enrolled;
  for (std::size_t i = 0; i < 400; ++i) {
    enrolled.push_back(synth.Identity());
    ASSERT_TRUE(gallery.Enrol(IdFor(i), enrolled.back()).ok());
  }
  std::vector<FaceTemplate> extra;
  for (std::size_t i = 0; i < 200; ++i) extra.push_back(synth.Identity());
  std::vector<int> correct(4, 0);
  std::vector<std::thread> readers;
  for (std::size_t t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (std::size_t q = 0; q < 100; ++q) {
        std::vector<Candidate> got;
        const std::size_t target = (q * 4 + t) % 400;
        if (gallery.Identify(enrolled[target], 1, &got).ok() && got[0].id == IdFor(target)) {
          ++correct[t];
        }
      }
    });
  }
  for (std::size_t i = 0; i < extra.size(); ++i) {
    ASSERT_TRUE(gallery.Enrol("extra" + std::to_string(i), extra[i]).ok());
  }
  for (auto& r : readers) r.join();
  for (const int c : correct) EXPECT_EQ(c, 100);
  EXPECT_EQ(gallery.size(), 600u);
}

}  // namespace
}  // namespace portcullis::face
