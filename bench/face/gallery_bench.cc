// gallery_bench: 1:N identification on synthetic templates. Prints one table comparing, in the
// same run, the float32 scalar baseline with the gallery's storages/kernels and the HNSW index.
//
//   gallery_bench [--n 1000000] [--queries 100] [--hnsw-n 200000] [--hnsw-threads 2]
//                 [--hnsw-ef-construction 100] [--hnsw-m 16] [--decay 0] [--skip-scalar-int8]
//                 [--ivf-n 0] [--ivf-lists 0] [--ivf-probes 16,32,64,128,192,256]
//                 [--ivf-stop 0.6]
//
// Templates: src/face/gallery_synth.h (impostor distances ~0.9, norms ~0.65-1.0; --decay sets
// the spectrum, 0 = isotropic); queries: 3/4 mated (identity + N(0, 0.031^2) per dim: distance
// ~0.35), 1/4 non-mated (fresh identities).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "face/gallery_synth.h"
#include "face/gallery_wipe.h"
#include "portcullis/face_gallery.h"

namespace pf = portcullis::face;

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of this thread: on a shared machine the wall clock also counts time spent waiting for
// a core; CPU time (which includes memory stalls) is the single-core cost.
double CpuNow() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Resident set size in bytes (/proc/self/status VmRSS).
std::size_t RssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

std::string IdFor(std::size_t i) { return "P" + std::to_string(100000000 + i); }

struct Query {
  pf::FaceTemplate probe;
  std::size_t mate = 0;  // index of the enrolled identity, or SIZE_MAX for non-mated
};

// The baseline: float32 storage, a plain scalar loop, nothing clever.
std::size_t BaselineNearest(const std::vector<float>& data, std::size_t n, const float* q,
                            float* best_distance) {
  float best = INFINITY;
  std::size_t best_index = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const float* t = data.data() + j * 128;
    float sum = 0;
    for (std::size_t i = 0; i < 128; ++i) {
      const float d = q[i] - t[i];
      sum += d * d;
    }
    if (sum < best) {
      best = sum;
      best_index = j;
    }
  }
  *best_distance = std::sqrt(best);
  return best_index;
}

struct Row {
  std::string name;
  double build_s = 0;
  double ms_per_query = 0;
  double cpu_ms_per_query = 0;
  double rss_mb = 0;
  double accounted_mb = 0;
  double agree = 0;        // rank-1 agreement with the float32 baseline (or with exact, for HNSW)
  double mated_rank1 = 0;  // mated queries whose rank-1 is the mate
  double mean_err = 0;     // |distance - float32 distance| of the rank-1, mean and max
  double max_err = 0;
};

void PrintRow(const Row& r) {
  std::printf("| %-36s | %8.1f | %9.2f | %9.2f | %8.1f | %9.1f | %7.4f | %7.4f | %9.2e | %9.2e |\n",
              r.name.c_str(), r.build_s, r.ms_per_query, r.cpu_ms_per_query, r.rss_mb,
              r.accounted_mb, r.agree, r.mated_rank1, r.mean_err, r.max_err);
  std::fflush(stdout);
}

std::vector<int> ParseIntList(const std::string& text) {
  std::vector<int> values;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t end = std::min(text.find(',', begin), text.size());
    values.push_back(std::stoi(text.substr(begin, end - begin)));
    begin = end + 1;
  }
  return values;
}

// One IVF (or exact) configuration over the query set, mated and non-mated apart: a watch-list
// sees mostly non-mated probes, and they are the hard ones for any index.
struct KindStats {
  int queries = 0;
  int agree = 0;  // rank-1 equal to the exact scan's
  int mate_found = 0;
  double cpu_s = 0;
};

void PrintIvfRow(const std::string& name, const KindStats& mated, const KindStats& non_mated,
                 const KindStats& exact_mated, const KindStats& exact_non_mated) {
  const int all = mated.queries + non_mated.queries;
  const double cpu_all = (mated.cpu_s + non_mated.cpu_s) * 1e3 / all;
  const double exact_all = (exact_mated.cpu_s + exact_non_mated.cpu_s) * 1e3 / all;
  const double cpu_mated = mated.cpu_s * 1e3 / std::max(mated.queries, 1);
  const double cpu_non = non_mated.cpu_s * 1e3 / std::max(non_mated.queries, 1);
  std::printf(
      "| %-30s | %8.2f | %6.1fx | %7.4f | %7.4f | %8.2f | %6.1fx | %8.2f | %6.1fx | %7.4f |\n",
      name.c_str(), cpu_all, exact_all / cpu_all,
      static_cast<double>(mated.agree + non_mated.agree) / all,
      static_cast<double>(mated.mate_found) / std::max(mated.queries, 1), cpu_mated,
      exact_mated.cpu_s * 1e3 / std::max(exact_mated.queries, 1) / cpu_mated, cpu_non,
      exact_non_mated.cpu_s * 1e3 / std::max(exact_non_mated.queries, 1) / cpu_non,
      static_cast<double>(non_mated.agree) / std::max(non_mated.queries, 1));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 1000000, num_queries = 100, hnsw_n = 200000;
  int hnsw_threads = 2, hnsw_efc = 100, hnsw_m = 16;
  bool skip_scalar_int8 = false;
  std::size_t ivf_n = 0;
  int ivf_lists = 0;
  std::vector<int> ivf_probes = {16, 32, 64, 128, 192, 256};
  float ivf_stop = 0.6f;
  double decay = 0.0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--n") {
      n = std::stoull(next());
    } else if (a == "--queries") {
      num_queries = std::stoull(next());
    } else if (a == "--hnsw-n") {
      hnsw_n = std::stoull(next());
    } else if (a == "--hnsw-threads") {
      hnsw_threads = std::stoi(next());
    } else if (a == "--hnsw-ef-construction") {
      hnsw_efc = std::stoi(next());
    } else if (a == "--hnsw-m") {
      hnsw_m = std::stoi(next());
    } else if (a == "--decay") {
      decay = std::stod(next());
    } else if (a == "--ivf-n") {
      ivf_n = std::stoull(next());
    } else if (a == "--ivf-lists") {
      ivf_lists = std::stoi(next());
    } else if (a == "--ivf-probes") {
      ivf_probes = ParseIntList(next());
    } else if (a == "--ivf-stop") {
      ivf_stop = std::stof(next());
    } else if (a == "--skip-scalar-int8") {
      skip_scalar_int8 = true;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  const std::size_t max_n = std::max({n, hnsw_n, ivf_n});
  std::printf(
      "gallery_bench: n=%zu queries=%zu hnsw_n=%zu (M=%d, ef_construction=%d, %d build "
      "threads), spectrum decay=%.2f, kernels=%s, one query thread\n",
      n, num_queries, hnsw_n, hnsw_m, hnsw_efc, hnsw_threads, decay,
      pf::GalleryKernelName(pf::GalleryOptions{}));

  pf::testing::TemplateSynth synth(2026, decay);
  std::vector<float> data(max_n * 128);
  for (std::size_t j = 0; j < max_n; ++j) {
    const pf::FaceTemplate t = synth.Identity();
    std::copy(t.values().begin(), t.values().end(),
              data.begin() + static_cast<std::ptrdiff_t>(j * 128));
  }
  auto template_at = [&](std::size_t j) {
    std::array<float, 128> v{};
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(j * 128), 128, v.begin());
    return pf::FaceTemplate(v);
  };
  auto make_queries = [&](std::size_t size) {
    std::vector<Query> qs;
    for (std::size_t q = 0; q < num_queries; ++q) {
      if (q % 4 == 3) {
        qs.push_back({synth.Identity(), SIZE_MAX});
      } else {
        const std::size_t mate = (q * 7919 + 13) % size;
        qs.push_back({synth.Capture(template_at(mate)), mate});
      }
    }
    return qs;
  };

  std::printf("\n| %-36s | %8s | %9s | %9s | %8s | %9s | %7s | %7s | %9s | %9s |\n",
              "configuration", "build s", "ms/query", "cpu ms/q", "RSS MB", "acct MB", "agree@1",
              "mated@1", "mean err", "max err");
  std::printf(
      "|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(38, '-').c_str(),
      std::string(10, '-').c_str(), std::string(11, '-').c_str(), std::string(11, '-').c_str(),
      std::string(10, '-').c_str(), std::string(11, '-').c_str(), std::string(9, '-').c_str(),
      std::string(9, '-').c_str(), std::string(11, '-').c_str(), std::string(11, '-').c_str());

  // --- exact search at n ---
  const std::vector<Query> queries = make_queries(n);
  std::vector<std::size_t> base_index(queries.size());
  std::vector<float> base_distance(queries.size());
  {
    Row r;
    r.name = "float32 scalar baseline (plain loop)";
    r.rss_mb = static_cast<double>(n * 512) / 1e6;
    r.accounted_mb = r.rss_mb;
    const double t0 = Now();
    const double c0 = CpuNow();
    int mated_ok = 0, mated = 0;
    for (std::size_t q = 0; q < queries.size(); ++q) {
      base_index[q] = BaselineNearest(data, n, queries[q].probe.values().data(), &base_distance[q]);
      if (queries[q].mate != SIZE_MAX) {
        ++mated;
        mated_ok += base_index[q] == queries[q].mate ? 1 : 0;
      }
    }
    r.ms_per_query = (Now() - t0) * 1e3 / static_cast<double>(queries.size());
    r.cpu_ms_per_query = (CpuNow() - c0) * 1e3 / static_cast<double>(queries.size());
    r.agree = 1;
    r.mated_rank1 = mated > 0 ? mated_ok / static_cast<double>(mated) : 0;
    PrintRow(r);
  }

  {
    // The roofline: one streaming read of a buffer the size of the int8 gallery (same allocator),
    // best of 5. On a bandwidth-bound scan no kernel can beat this.
    Row r;
    r.name = "read " + std::to_string(n * 132 / 1000000) + " MB (memory roofline)";
    pf::internal::WipingVector<std::uint64_t> buffer(n * 132 / 8, 1);
    double best = 1e9;
    std::uint64_t sum = 0;
    for (int rep = 0; rep < 5; ++rep) {
      const double t0 = Now();
      for (const std::uint64_t x : buffer) sum += x;
      best = std::min(best, Now() - t0);
    }
    r.ms_per_query = best * 1e3;
    r.cpu_ms_per_query = best * 1e3;  // best-of-5 wall time: the least disturbed pass
    r.accounted_mb = static_cast<double>(buffer.size() * 8) / 1e6;
    volatile std::uint64_t sink = sum;  // keeps the loop alive
    (void)sink;
    PrintRow(r);
    std::printf("|   streaming read bandwidth: %.2f GB/s\n", r.accounted_mb / 1e3 / best);
  }

  struct Config {
    const char* name;
    pf::GalleryStorage storage;
    bool scalar;
  };
  std::vector<Config> configs = {
      {"float32 avx2", pf::GalleryStorage::kFloat32, false},
      {"float16 avx2", pf::GalleryStorage::kFloat16, false},
      {"int8 avx2", pf::GalleryStorage::kInt8, false},
  };
  if (!skip_scalar_int8)
    configs.push_back({"int8 scalar fallback", pf::GalleryStorage::kInt8, true});
  for (const Config& c : configs) {
    Row r;
    r.name = std::string(c.name) + " (exact)";
    pf::GalleryOptions options;
    options.storage = c.storage;
    options.index = pf::GalleryIndex::kExact;
    options.force_scalar_kernels = c.scalar;
    const std::size_t rss0 = RssBytes();
    const double b0 = Now();
    auto gallery = std::make_unique<pf::Gallery>(options);
    for (std::size_t j = 0; j < n; ++j) {
      const portcullis::Status s = gallery->Enrol(IdFor(j), template_at(j));
      if (!s.ok()) {
        std::fprintf(stderr, "enrol: %s\n", s.ToString().c_str());
        return 1;
      }
    }
    r.build_s = Now() - b0;
    r.rss_mb = static_cast<double>(RssBytes() - rss0) / 1e6;
    r.accounted_mb = static_cast<double>(gallery->exact_storage_bytes()) / 1e6;
    int agree = 0, mated_ok = 0, mated = 0;
    double err_sum = 0;
    std::vector<pf::Candidate> got;
    const double t0 = Now();
    const double c0 = CpuNow();
    for (std::size_t q = 0; q < queries.size(); ++q) {
      const portcullis::Status s = gallery->Identify(queries[q].probe, 1, &got);
      if (!s.ok()) {
        std::fprintf(stderr, "identify: %s\n", s.ToString().c_str());
        return 1;
      }
      agree += got[0].id == IdFor(base_index[q]) ? 1 : 0;
      if (queries[q].mate != SIZE_MAX) {
        ++mated;
        mated_ok += got[0].id == IdFor(queries[q].mate) ? 1 : 0;
      }
      const double err = std::fabs(static_cast<double>(got[0].distance - base_distance[q]));
      err_sum += err;
      r.max_err = std::max(r.max_err, err);
    }
    r.ms_per_query = (Now() - t0) * 1e3 / static_cast<double>(queries.size());
    r.cpu_ms_per_query = (CpuNow() - c0) * 1e3 / static_cast<double>(queries.size());
    r.agree = agree / static_cast<double>(queries.size());
    r.mated_rank1 = mated > 0 ? mated_ok / static_cast<double>(mated) : 0;
    r.mean_err = err_sum / static_cast<double>(queries.size());
    PrintRow(r);
  }

  // --- approximate index at hnsw_n, against the exact int8 scan of the same gallery ---
  if (hnsw_n > 0) {
    pf::GalleryOptions options;
    options.storage = pf::GalleryStorage::kInt8;
    options.index = pf::GalleryIndex::kHnsw;
    options.hnsw_m = hnsw_m;
    options.hnsw_ef_construction = hnsw_efc;
    options.hnsw_build_threads = hnsw_threads;
    pf::Gallery gallery(options);
    for (std::size_t j = 0; j < hnsw_n; ++j) {
      if (!gallery.Enrol(IdFor(j), template_at(j)).ok()) return 1;
    }
    const std::vector<Query> hq = make_queries(hnsw_n);
    std::vector<std::string> exact_id(hq.size());
    std::vector<float> exact_distance(hq.size());
    std::vector<pf::Candidate> got;
    Row exact_row;
    exact_row.name = "int8 avx2 exact @hnsw_n=" + std::to_string(hnsw_n);
    exact_row.accounted_mb = static_cast<double>(gallery.exact_storage_bytes()) / 1e6;
    int mated = 0, mated_ok = 0;
    double t0 = Now();
    double c0 = CpuNow();
    for (std::size_t q = 0; q < hq.size(); ++q) {
      if (!gallery.IdentifyExact(hq[q].probe, 1, &got).ok()) return 1;
      exact_id[q] = got[0].id;
      exact_distance[q] = got[0].distance;
      if (hq[q].mate != SIZE_MAX) {
        ++mated;
        mated_ok += got[0].id == IdFor(hq[q].mate) ? 1 : 0;
      }
    }
    const double exact_ms = (Now() - t0) * 1e3 / static_cast<double>(hq.size());
    exact_row.ms_per_query = exact_ms;
    const double exact_cpu_ms = (CpuNow() - c0) * 1e3 / static_cast<double>(hq.size());
    exact_row.cpu_ms_per_query = exact_cpu_ms;
    exact_row.agree = 1;
    exact_row.mated_rank1 = mated_ok / static_cast<double>(std::max(mated, 1));
    PrintRow(exact_row);

    const std::size_t rss0 = RssBytes();
    t0 = Now();
    if (!gallery.BuildIndex().ok()) return 1;
    const double build_s = Now() - t0;
    const double rss_mb = static_cast<double>(RssBytes() - rss0) / 1e6;
    for (const int ef : {32, 64, 128, 256}) {
      if (!gallery.SetHnswEfSearch(ef).ok()) return 1;
      Row r;
      r.name = "hnsw ef_search=" + std::to_string(ef) + " @hnsw_n";
      r.build_s = build_s;
      r.rss_mb = rss_mb;
      r.accounted_mb = static_cast<double>(gallery.index_bytes()) / 1e6;
      int agree = 0;
      mated_ok = 0;
      double err_sum = 0;
      t0 = Now();
      c0 = CpuNow();
      for (std::size_t q = 0; q < hq.size(); ++q) {
        if (!gallery.Identify(hq[q].probe, 1, &got).ok()) return 1;
        agree += got[0].id == exact_id[q] ? 1 : 0;
        if (hq[q].mate != SIZE_MAX) mated_ok += got[0].id == IdFor(hq[q].mate) ? 1 : 0;
        const double err = std::fabs(static_cast<double>(got[0].distance - exact_distance[q]));
        err_sum += err;
        r.max_err = std::max(r.max_err, err);
      }
      r.ms_per_query = (Now() - t0) * 1e3 / static_cast<double>(hq.size());
      r.cpu_ms_per_query = (CpuNow() - c0) * 1e3 / static_cast<double>(hq.size());
      r.agree = agree / static_cast<double>(hq.size());
      r.mated_rank1 = mated_ok / static_cast<double>(std::max(mated, 1));
      r.mean_err = err_sum / static_cast<double>(hq.size());
      PrintRow(r);
      std::printf("|   speed-up vs exact int8 avx2 at hnsw_n: %.1fx wall, %.1fx cpu\n",
                  exact_ms / r.ms_per_query, exact_cpu_ms / r.cpu_ms_per_query);
    }
  }
  // --- inverted file at ivf_n, against the exact int8 scan of the same gallery ---
  if (ivf_n > 0) {
    pf::GalleryOptions options;
    options.storage = pf::GalleryStorage::kInt8;
    options.index = pf::GalleryIndex::kIvf;
    options.ivf_lists = ivf_lists;
    pf::Gallery gallery(options);
    for (std::size_t j = 0; j < ivf_n; ++j) {
      if (!gallery.Enrol(IdFor(j), template_at(j)).ok()) return 1;
    }
    const std::vector<Query> iq = make_queries(ivf_n);
    std::vector<std::string> exact_id(iq.size());
    std::vector<pf::Candidate> got;
    // search(q) runs one query; returns false on error.
    auto run = [&](const std::function<bool(const Query&)>& search, KindStats* mated,
                   KindStats* non_mated) {
      for (std::size_t q = 0; q < iq.size(); ++q) {
        KindStats* kind = iq[q].mate == SIZE_MAX ? non_mated : mated;
        const double c0 = CpuNow();
        if (!search(iq[q])) return false;
        kind->cpu_s += CpuNow() - c0;
        ++kind->queries;
        kind->agree += got[0].id == exact_id[q] ? 1 : 0;
        if (iq[q].mate != SIZE_MAX) kind->mate_found += got[0].id == IdFor(iq[q].mate) ? 1 : 0;
      }
      return true;
    };
    for (std::size_t q = 0; q < iq.size(); ++q) {  // the reference answers
      if (!gallery.IdentifyExact(iq[q].probe, 1, &got).ok()) return 1;
      exact_id[q] = got[0].id;
    }
    KindStats exact_mated, exact_non_mated;
    if (!run([&](const Query& q) { return gallery.IdentifyExact(q.probe, 1, &got).ok(); },
             &exact_mated, &exact_non_mated)) {
      return 1;
    }
    const std::size_t rss0 = RssBytes();
    const double t0 = Now();
    if (!gallery.BuildIndex().ok()) return 1;
    std::printf(
        "\nIVF at ivf_n=%zu: build %.1f s (k-means + assignment), %.1f MB accounted, %.1f MB RSS "
        "growth; speed-ups are CPU time against the exact int8 scan of the same gallery\n",
        ivf_n, Now() - t0, static_cast<double>(gallery.index_bytes()) / 1e6,
        static_cast<double>(RssBytes() - rss0) / 1e6);
    std::printf("| %-30s | %8s | %7s | %7s | %7s | %8s | %7s | %8s | %7s | %7s |\n",
                "configuration", "cpu ms/q", "speedup", "recall", "mated@1", "mated ms", "speedup",
                "non ms", "speedup", "non rec");
    std::printf(
        "|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(32, '-').c_str(),
        std::string(10, '-').c_str(), std::string(9, '-').c_str(), std::string(9, '-').c_str(),
        std::string(9, '-').c_str(), std::string(10, '-').c_str(), std::string(9, '-').c_str(),
        std::string(10, '-').c_str(), std::string(9, '-').c_str(), std::string(9, '-').c_str());
    PrintIvfRow("int8 avx2 exact", exact_mated, exact_non_mated, exact_mated, exact_non_mated);
    std::vector<float> stops = {0.0f};
    if (ivf_stop > 0) stops.push_back(ivf_stop);
    for (const float stop : stops) {
      for (const int probes : ivf_probes) {
        if (!gallery.SetIvfSearch(probes, std::min(probes, 32), stop).ok()) return 1;
        KindStats mated, non_mated;
        if (!run([&](const Query& q) { return gallery.Identify(q.probe, 1, &got).ok(); }, &mated,
                 &non_mated)) {
          return 1;
        }
        char name[64];
        std::snprintf(name, sizeof(name), "ivf probes=%d%s", probes,
                      stop > 0 ? (" stop=" + std::to_string(stop).substr(0, 4)).c_str() : "");
        PrintIvfRow(name, mated, non_mated, exact_mated, exact_non_mated);
      }
    }
    std::printf(
        "recall: rank-1 equal to the exact scan's, all queries; mated@1: mated queries whose "
        "rank-1 is the mate; mated/non ms: CPU ms per mated / non-mated query; non rec: recall of "
        "non-mated queries; stop: early stop once the best is within that distance (after "
        "min(probes, 32) lists)\n");
  }
  std::printf(
      "\nagree@1: rank-1 id equal to the float32 baseline's (HNSW rows: to the exact int8 "
      "scan of the same gallery); mated@1: mated queries whose rank-1 is the mate;\n"
      "err: |rank-1 distance - reference rank-1 distance|; cpu ms/q: thread CPU time per query; "
      "RSS MB: VmRSS growth while "
      "enrolling (HNSW: while building the graph); acct MB: bytes the gallery accounts.\n");
  return 0;
}
