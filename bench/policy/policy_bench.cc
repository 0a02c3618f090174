// The per-request cost of access control: the policy decision and the token lookup the server
// does before every handler. Baselines in the same run: a one-rule policy for Decide (what the
// rule scan adds), and the SHA-256 of a token for Authenticate (what the database lookup adds).
//   policy_bench [--benchmark_filter=...]   (SQLite in a temporary directory; set
//   PORTCULLIS_BENCH_PG_URI=postgresql://... to add the PostgreSQL backend)
#include <benchmark/benchmark.h>
#include <sodium.h>
#include <stdlib.h>  // mkdtemp

#include <array>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "portcullis/access_store.h"
#include "portcullis/policy.h"

namespace portcullis::policy {
namespace {

std::unique_ptr<AccessPolicy> MustLoad(const std::string& path) {
  std::unique_ptr<AccessPolicy> policy;
  if (!LoadPolicyFile(path, &policy).ok()) std::abort();
  return policy;
}

void BM_DecideDefaultPolicy(benchmark::State& state) {
  auto policy = MustLoad(std::string(PORTCULLIS_SOURCE_DIR) + "/data/policy.json");
  Principal who{"vendor:acme", Role::kVendor, {"7", "8"}};
  AccessRequest request{&who, "plate.crop", "plate_crop", "", "7", true};
  for (auto _ : state) benchmark::DoNotOptimize(policy->Decide(request));
}
BENCHMARK(BM_DecideDefaultPolicy);

void BM_DecideOneRuleBaseline(benchmark::State& state) {
  std::unique_ptr<AccessPolicy> policy;
  if (!ParsePolicy(R"({"version": 1, "rules": [{"id": "c", "roles": ["vendor"],
      "actions": ["plate.crop"], "categories": ["plate_crop"], "purpose": "optional",
      "scope": "lane", "ticket": "required"}]})",
                   &policy)
           .ok()) {
    std::abort();
  }
  Principal who{"vendor:acme", Role::kVendor, {"7", "8"}};
  AccessRequest request{&who, "plate.crop", "plate_crop", "", "7", true};
  for (auto _ : state) benchmark::DoNotOptimize(policy->Decide(request));
}
BENCHMARK(BM_DecideOneRuleBaseline);

// A store with `principals` principals; returns one valid token.
struct Fixture {
  std::string dir;
  std::unique_ptr<AccessStore> store;
  std::string token;
};

Fixture MakeStore(const std::string& uri_or_empty, int principals) {
  Fixture f;
  std::string uri = uri_or_empty;
  if (uri.empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "policy_bench_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    f.dir = pattern;
    uri = "sqlite:" + f.dir + "/access.db";
  }
  if (!OpenAccessStore(uri, {}, &f.store).ok()) std::abort();
  // Unique names per run, so a shared PostgreSQL database can be reused.
  std::array<unsigned char, 4> salt{};
  randombytes_buf(salt.data(), salt.size());
  const std::string run = std::to_string(salt[0]) + std::to_string(salt[1]) +
                          std::to_string(salt[2]) + std::to_string(salt[3]);
  for (int i = 0; i < principals; ++i) {
    std::string token;
    NewPrincipal p{"lane:" + run + "." + std::to_string(i), Role::kLaneDevice, {"1"}, 0};
    if (!f.store->CreatePrincipal(p, &token).ok()) std::abort();
    if (i == principals / 2) f.token = token;
  }
  return f;
}

void RunAuthenticate(benchmark::State& state, const std::string& uri) {
  Fixture f = MakeStore(uri, static_cast<int>(state.range(0)));
  AuthOutcome outcome = AuthOutcome::kUnknown;
  Principal who;
  for (auto _ : state) {
    if (!f.store->Authenticate(f.token, &outcome, &who).ok() || outcome != AuthOutcome::kOk) {
      state.SkipWithError("authentication failed");
      break;
    }
  }
  f.store.reset();
  if (!f.dir.empty()) std::filesystem::remove_all(f.dir);
}

void BM_AuthenticateSqlite(benchmark::State& state) { RunAuthenticate(state, ""); }
BENCHMARK(BM_AuthenticateSqlite)->Arg(10)->Arg(1000);

void BM_AuthenticatePostgres(benchmark::State& state) {
  const char* uri = std::getenv("PORTCULLIS_BENCH_PG_URI");
  if (uri == nullptr) {
    state.SkipWithError("set PORTCULLIS_BENCH_PG_URI to measure PostgreSQL");
    for (auto _ : state) {
    }
    return;
  }
  RunAuthenticate(state, uri);
}
BENCHMARK(BM_AuthenticatePostgres)->Arg(1000);

void BM_TokenHashBaseline(benchmark::State& state) {
  const std::string token = "pct_" + std::string(43, 'A');
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  for (auto _ : state) {
    crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(token.data()),
                       token.size());
    benchmark::DoNotOptimize(digest);
  }
}
BENCHMARK(BM_TokenHashBaseline);

}  // namespace
}  // namespace portcullis::policy

BENCHMARK_MAIN();
