// The gate match handler, end to end at handler level on an idle machine, against its baseline:
//   BM_EngineEnrol         the face engine alone on the decoded capture (detect, align, embed)
//   BM_MatchCitizen        POST .../match for a citizen: decode, embed, 1:N, decision stored,
//                          capture dropped
//   BM_MatchNonCitizen     the same for a non-citizen: the capture is also kept (sealed)
//   BM_MatchClaim          a 1:1 claim (citizen)
// The vault is a temporary SQLite file with a file audit log (fsynced, as in the service); the
// gallery holds the five people of Debian's libdlib19.1 example chips. The CPU column is the
// whole process's CPU time (every thread, BLAS included): on a shared, loaded machine it is the
// closest figure to the latency of an idle core. Run:
//   build/bench/gate/gate_bench --benchmark_min_time=2
#include <benchmark/benchmark.h>
#include <sodium.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "portcullis/audit.h"
#include "portcullis/face.h"
#include "portcullis/vault.h"
#include "server/api.h"
#include "server/gate_galleries.h"
#include "server/metrics.h"

namespace portcullis::server {
namespace {

namespace fs = std::filesystem;
const char* kJohns = "/usr/share/doc/libdlib19.1/examples/johns";

[[noreturn]] void Die(const Status& s) {
  std::fprintf(stderr, "gate_bench: %s\n", s.ToString().c_str());
  std::exit(1);
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Base64(const std::string& bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);
  return out;
}

std::string Chip(const std::string& person, int index) {
  std::vector<std::string> files;
  for (const auto& f : fs::directory_iterator(std::string(kJohns) + "/" + person)) {
    files.push_back(f.path().string());
  }
  std::sort(files.begin(), files.end());
  return ReadBytes(files.at(static_cast<std::size_t>(index)));
}

// One node, set up once for all benchmarks.
struct Fixture {
  Fixture() {
    if (sodium_init() < 0) Die(Status::Internal("sodium_init"));
    char tmpl[] = "/tmp/portcullis-gate-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) Die(Status::IOError("mkdtemp"));
    dir = tmpl;
    audit::LogKeys keys;
    if (Status s = audit::GenerateKeys(dir + "/audit-keys"); !s.ok()) Die(s);
    if (Status s = audit::LoadLogKeys(dir + "/audit-keys", &keys); !s.ok()) Die(s);
    if (Status s = audit::AuditLog::Open(dir + "/audit", keys, {}, &log); !s.ok()) Die(s);
    vault::VaultOptions vo;
    vo.store_uri = "sqlite:" + dir + "/vault.db";
    vo.key_uri = "keyring:" + dir + "/keyring";
    vo.key_secret = "bench";
    vo.key_options.create_if_missing = true;
    vo.key_options.keyring_opslimit = 1;
    vo.key_options.keyring_memlimit = 8192;
    vo.retention_path = std::string(PORTCULLIS_SOURCE_DIR) + "/data/retention.json";
    vo.audit = log.get();
    if (Status s = vault::Vault::Open(vo, &vault); !s.ok()) Die(s);
    GateGalleriesOptions options;
    options.traveller_key.assign(kTravellerKeyBytes, 'k');
    galleries = std::make_unique<GateGalleries>(vault.get(), Env::Default(), &metrics, options);
    ctx.env = Env::Default();
    ctx.vault = vault.get();
    ctx.metrics = &metrics;
    ctx.galleries = galleries.get();
    AddGateRoutes(ctx, &routes);
    if (Status s = face::FaceEngine::Open(face::FaceEngineOptions{}, &engine); !s.ok()) Die(s);

    nlohmann::json manifest;
    manifest["flight"] = "BA117";
    const char* people[] = {"John_Salley", "John_Savage", "John_Schneider", "John_Shimkus",
                            "John_Simm"};
    for (int i = 0; i < 5; ++i) {
      manifest["travellers"].push_back({{"id", "P-" + std::to_string(i)},
                                        {"subject", i % 2 == 0 ? "citizen" : "non_citizen"},
                                        {"photo_jpeg_base64", Base64(Chip(people[i], 0))}});
    }
    ApiRequest open = Request("application/json", manifest.dump());
    const ApiResponse r = Find("POST", "/v1/gates/{gate}/galleries").handler(open);
    if (r.status != 201) Die(Status::Internal("open: " + r.body));
    gallery = nlohmann::json::parse(r.body)["gallery"].get<std::string>();
    citizen_capture = Chip("John_Salley", 5);      // P-0, citizen
    non_citizen_capture = Chip("John_Savage", 5);  // P-1, non-citizen
  }
  ~Fixture() {
    routes.clear();
    galleries.reset();
    vault.reset();
    log.reset();
    fs::remove_all(dir);
  }

  ApiRequest Request(const std::string& content_type, std::string body) {
    ApiRequest r;
    r.method = "POST";
    r.path_params = {{"gate", "A12"}, {"gallery", gallery}};
    r.content_type = content_type;
    r.body = std::move(body);
    r.principal = {"gate:A12", policy::Role::kGateDevice, {"A12"}};
    r.engines.faces = engine.get();
    return r;
  }
  const Route& Find(const std::string& method, const std::string& pattern) {
    for (const Route& route : routes) {
      if (route.method == method && route.pattern == pattern) return route;
    }
    Die(Status::NotFound(pattern));
  }

  std::string dir;
  std::unique_ptr<audit::AuditLog> log;
  std::unique_ptr<vault::Vault> vault;
  Metrics metrics;
  std::unique_ptr<GateGalleries> galleries;
  ServiceContext ctx;
  std::vector<Route> routes;
  std::unique_ptr<face::FaceEngine> engine;
  std::string gallery;
  std::string citizen_capture;
  std::string non_citizen_capture;
};

Fixture& F() {
  static Fixture fixture;
  return fixture;
}

void BM_EngineEnrol(benchmark::State& state) {
  Fixture& f = F();
  const std::string& bytes = f.citizen_capture;
  for (auto _ : state) {
    // Decoding is part of the baseline too: the handler must decode what it receives.
    const cv::Mat bgr =
        cv::imdecode(std::vector<unsigned char>(bytes.begin(), bytes.end()), cv::IMREAD_COLOR);
    face::FaceTemplate t;
    if (Status s = f.engine->Enrol(bgr, &t); !s.ok()) Die(s);
    benchmark::DoNotOptimize(t.values().data());
  }
}
BENCHMARK(BM_EngineEnrol)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond);

void Match(benchmark::State& state, const std::string& capture, const std::string& claim,
           const char* expect_capture) {
  Fixture& f = F();
  const Route& route = f.Find("POST", "/v1/gates/{gate}/galleries/{gallery}/match");
  for (auto _ : state) {
    ApiRequest r = f.Request("image/jpeg", capture);
    if (!claim.empty()) r.query["claim"] = claim;
    const ApiResponse response = route.handler(r);
    if (response.status != 200 ||
        nlohmann::json::parse(response.body)["capture"] != expect_capture) {
      Die(Status::Internal("match: " + response.body));
    }
  }
}

void BM_MatchCitizen(benchmark::State& state) { Match(state, F().citizen_capture, "", "dropped"); }
void BM_MatchNonCitizen(benchmark::State& state) {
  Match(state, F().non_citizen_capture, "", "kept");
}
void BM_MatchClaim(benchmark::State& state) { Match(state, F().citizen_capture, "P-0", "dropped"); }
BENCHMARK(BM_MatchCitizen)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MatchNonCitizen)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MatchClaim)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace portcullis::server

BENCHMARK_MAIN();
