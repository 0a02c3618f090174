// The principals, tickets and exports handlers (routes_access.cc), called directly over a real
// SQLite access store and a real vault in a temporary directory. The server's part (auth, policy,
// audit of the decision) is tested with the server; here: what the handlers themselves decide.
#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "portcullis/access_store.h"
#include "portcullis/audit.h"
#include "portcullis/env.h"
#include "portcullis/image.h"
#include "portcullis/policy.h"
#include "portcullis/vault.h"
#include "server/api.h"

namespace portcullis::server {
namespace {

using nlohmann::json;

constexpr std::int64_t kSecond = 1000 * 1000;
constexpr std::int64_t kHour = 3600 * kSecond;
constexpr std::int64_t kDay = 24 * kHour;
constexpr std::int64_t kStart = 1795737600LL * kSecond;  // 2026-11-27 00:00:00 UTC

class AccessClockEnv : public Env {
 public:
  Status ReadFile(const std::string& p, std::size_t max, std::string* c) override {
    return Env::Default()->ReadFile(p, max, c);
  }
  Status WriteFileAtomic(const std::string& p, const std::string& c) override {
    return Env::Default()->WriteFileAtomic(p, c);
  }
  Status ListDirectory(const std::string& p, std::vector<std::string>* n) override {
    return Env::Default()->ListDirectory(p, n);
  }
  FileKind KindOf(const std::string& p) override { return Env::Default()->KindOf(p); }
  std::int64_t NowMicros() override { return now.load(); }
  std::atomic<std::int64_t> now{kStart};
};

class AccessAuditSink : public audit::AuditSink {
 public:
  Status Append(const audit::AuditEvent& /*event*/) override {
    ++events;
    return Status::Ok();
  }
  int events = 0;
};

std::string Sha256Hex(const std::string& data) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(data.data()),
                     data.size());
  std::array<char, 2 * crypto_hash_sha256_BYTES + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  return hex.data();
}

std::string FromBase64(const std::string& text) {
  std::string out(text.size(), '\0');
  std::size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    ADD_FAILURE() << "not base64";
    return "";
  }
  out.resize(length);
  return out;
}

std::string Jpeg(int width, int height) {
  cv::Mat image(height, width, CV_8UC3, cv::Scalar(40, 120, 200));
  std::vector<unsigned char> bytes;
  EXPECT_TRUE(cv::imencode(".jpg", image, bytes));
  return {bytes.begin(), bytes.end()};
}

class AccessRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    dir_ = ::testing::TempDir() + "access_routes_XXXXXX";
    ASSERT_NE(::mkdtemp(dir_.data()), nullptr);
    policy::AccessStoreOptions store_options;
    store_options.env = &env_;
    const Status s =
        policy::OpenAccessStore("sqlite:" + dir_ + "/access.db", store_options, &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    vault::VaultOptions options;
    options.store_uri = "sqlite:" + dir_ + "/vault.db";
    options.key_uri = "keyring:" + dir_ + "/keyring";
    options.key_secret = "correct horse battery staple";
    options.key_options.create_if_missing = true;
    options.key_options.keyring_opslimit = 1;  // cheapest Argon2id: the suite stays fast
    options.key_options.keyring_memlimit = 8192;
    options.retention_path = std::string(PORTCULLIS_SOURCE_DIR) + "/data/retention.json";
    options.audit = &audit_;
    options.env = &env_;
    const Status v = vault::Vault::Open(options, &vault_);
    ASSERT_TRUE(v.ok()) << v.ToString();
    ctx_.env = &env_;
    ctx_.vault = vault_.get();
    ctx_.access = store_.get();
    ctx_.node_name = "n1";
    AddAccessRoutes(ctx_, &routes_);
  }
  void TearDown() override {
    vault_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  static policy::Principal Who(const std::string& name, policy::Role role,
                               std::vector<std::string> scope = {"*"}) {
    policy::Principal p;
    p.name = name;
    p.role = role;
    p.scope = std::move(scope);
    return p;
  }

  // Calls the handler of the route (method, pattern) as the server would after authorisation.
  ApiResponse Call(const std::string& method, const std::string& pattern,
                   const policy::Principal& who, const std::string& body = "",
                   std::map<std::string, std::string> params = {},
                   std::map<std::string, std::string> query = {},
                   const std::string& content_type = "application/json") {
    auto it = std::find_if(routes_.begin(), routes_.end(), [&](const Route& r) {
      return r.method == method && r.pattern == pattern;
    });
    if (it == routes_.end()) {
      ADD_FAILURE() << "no route " << method << " " << pattern;
      return {};
    }
    ApiRequest request;
    request.method = method;
    request.path_params = std::move(params);
    request.query = std::move(query);
    request.content_type = body.empty() ? "" : content_type;
    request.body = body;
    request.request_id = "0123456789abcdef";
    request.principal = who;
    return it->handler(request);
  }

  static json Body(const ApiResponse& r) { return json::parse(r.body); }
  static std::string Code(const ApiResponse& r) {
    return Body(r)["error"]["code"].get<std::string>();
  }

  std::string CreateVendor(const std::string& name, std::vector<std::string> scope) {
    std::string token;
    policy::NewPrincipal p{name, policy::Role::kVendor, std::move(scope), 0};
    EXPECT_TRUE(store_->CreatePrincipal(p, &token).ok());
    return token;
  }

  vault::RecordMeta Put(vault::RecordType type, const std::string& lane,
                        const std::string& content_type, const std::string& body) {
    vault::NewRecord record;
    record.type = type;
    record.subject = vault::SubjectCategory::kVehicle;
    record.content_type = content_type;
    record.labels = {{"lane", lane}};
    record.body = body;
    vault::RecordMeta meta;
    const Status s = vault_->Put({"lane:" + lane, "lane_device", "plate read"}, record, &meta);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return meta;
  }

  std::string RequestExport(const policy::Principal& by, const std::string& lane) {
    json body = {{"record_types", {"plate_read"}},
                 {"from_micros", kStart - kHour},
                 {"until_micros", kStart + kHour},
                 {"reason", "court order 2026/441"}};
    if (!lane.empty()) body["lane"] = lane;
    const ApiResponse r = Call("POST", "/v1/exports", by, body.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    return Body(r)["id"].get<std::string>();
  }

  std::string dir_;
  AccessClockEnv env_;
  AccessAuditSink audit_;
  std::unique_ptr<policy::AccessStore> store_;
  std::unique_ptr<vault::Vault> vault_;
  ServiceContext ctx_;
  std::vector<Route> routes_;
  const policy::Principal admin_ = Who("admin:root", policy::Role::kAdmin);
  const policy::Principal ann_ = Who("supervisor:ann", policy::Role::kSupervisor);
  const policy::Principal bob_ = Who("supervisor:bob", policy::Role::kSupervisor);
};

TEST_F(AccessRoutesTest, RoutesMatchTheApiTable) {
  std::vector<std::string> seen;
  for (const Route& r : routes_) {
    seen.push_back(r.method + " " + r.pattern + " " + r.action + "/" + r.category);
    EXPECT_TRUE(policy::IsKnownAction(r.action)) << r.action;
    EXPECT_TRUE(policy::IsKnownCategory(r.category)) << r.category;
    EXPECT_TRUE(r.lane_param.empty());
  }
  std::sort(seen.begin(), seen.end());
  const std::vector<std::string> expected = {
      "DELETE /v1/principals/{name} principal.manage/principal",
      "GET /v1/exports export.read/export",
      "GET /v1/exports/fingerprints/{sha256} export.read/export",
      "GET /v1/exports/{id}/download export.download/export",
      "GET /v1/principals principal.read/principal",
      "GET /v1/tickets ticket.read/ticket",
      "POST /v1/exports export.request/export",
      "POST /v1/exports/{id}/approve export.approve/export",
      "POST /v1/principals principal.manage/principal",
      "POST /v1/principals/{name}/token principal.manage/principal",
      "POST /v1/tickets ticket.grant/ticket",
  };
  EXPECT_EQ(seen, expected);
}

TEST_F(AccessRoutesTest, PrincipalsAreCreatedListedRotatedAndRevoked) {
  ApiResponse r = Call("POST", "/v1/principals", admin_,
                       R"({"name": "lane:7", "role": "lane_device", "scope": ["7"],
                           "token_ttl_seconds": 86400})");
  ASSERT_EQ(r.status, 201) << r.body;
  json created = Body(r);
  const std::string token = created["token"];
  EXPECT_EQ(token.size(), 47u);
  EXPECT_EQ(created["token_prefix"], token.substr(0, 12));
  EXPECT_EQ(created["expires_micros"], kStart + kDay);
  policy::AuthOutcome outcome = policy::AuthOutcome::kUnknown;
  policy::Principal who;
  ASSERT_TRUE(store_->Authenticate(token, &outcome, &who).ok());
  EXPECT_EQ(outcome, policy::AuthOutcome::kOk);
  EXPECT_EQ(who.scope, std::vector<std::string>{"7"});

  r = Call("POST", "/v1/principals", admin_, R"({"name": "lane:7", "role": "lane_device"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "conflict");

  r = Call("GET", "/v1/principals", Who("auditor:eve", policy::Role::kAuditor));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find(token), std::string::npos) << "a listing must never carry a token";
  json list = Body(r)["principals"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "lane:7");
  EXPECT_EQ(list[0]["role"], "lane_device");
  EXPECT_EQ(list[0]["revoked"], false);

  r = Call("POST", "/v1/principals/{name}/token", admin_, "", {{"name", "lane:7"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string fresh = Body(r)["token"];
  EXPECT_NE(fresh, token);
  ASSERT_TRUE(store_->Authenticate(token, &outcome, &who).ok());
  EXPECT_EQ(outcome, policy::AuthOutcome::kUnknown);

  r = Call("DELETE", "/v1/principals/{name}", admin_, "", {{"name", "lane:7"}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["revoked"], true);
  ASSERT_TRUE(store_->Authenticate(fresh, &outcome, &who).ok());
  EXPECT_EQ(outcome, policy::AuthOutcome::kRevoked);
  r = Call("POST", "/v1/principals/{name}/token", admin_, "", {{"name", "lane:7"}});
  EXPECT_EQ(r.status, 409);

  r = Call("DELETE", "/v1/principals/{name}", admin_, "", {{"name", "lane:8"}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Code(r), "not_found");
  r = Call("POST", "/v1/principals/{name}/token", admin_, "", {{"name", "lane:8"}});
  EXPECT_EQ(r.status, 404);
}

TEST_F(AccessRoutesTest, BadPrincipalRequests) {
  ApiResponse r = Call("POST", "/v1/principals", admin_, "{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Code(r), "malformed_json");
  r = Call("POST", "/v1/principals", admin_, "[1]");
  EXPECT_EQ(Code(r), "malformed_json");
  r = Call("POST", "/v1/principals", admin_, R"({"name": "x", "role": "officer"})", {}, {},
           "text/plain");
  EXPECT_EQ(r.status, 415);
  EXPECT_EQ(Code(r), "unsupported_media_type");
  r = Call("POST", "/v1/principals", admin_, "");
  EXPECT_EQ(r.status, 415);
  r = Call("POST", "/v1/principals", admin_, R"({"name": "x", "role": "janitor"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Code(r), "invalid_argument");
  r = Call("POST", "/v1/principals", admin_, R"({"role": "officer"})");
  EXPECT_EQ(Code(r), "invalid_argument");
  r = Call("POST", "/v1/principals", admin_, R"({"name": "Bad Name", "role": "officer"})");
  EXPECT_EQ(Code(r), "invalid_argument");
  r = Call("POST", "/v1/principals", admin_, R"({"name": "x", "role": "officer", "scope": "7"})");
  EXPECT_EQ(Code(r), "invalid_argument");
  r = Call("POST", "/v1/principals", admin_,
           R"({"name": "x", "role": "officer", "token_ttl_seconds": -1})");
  EXPECT_EQ(Code(r), "invalid_argument");
  r = Call("POST", "/v1/principals", admin_,
           R"({"name": "x", "role": "officer", "token_ttl_seconds": 9223372036854775807})");
  EXPECT_EQ(Code(r), "invalid_argument");
  std::vector<policy::PrincipalInfo> all;
  ASSERT_TRUE(store_->ListPrincipals(&all).ok());
  EXPECT_TRUE(all.empty());
}

TEST_F(AccessRoutesTest, TicketsAreGrantedAndVendorsSeeOnlyTheirOwn) {
  CreateVendor("vendor:acme", {"7"});
  CreateVendor("vendor:other", {"7"});
  ApiResponse r = Call("POST", "/v1/tickets", ann_,
                       R"({"vendor": "vendor:acme", "lane": "7", "max_uses": 5,
                           "ttl_seconds": 3600, "reason": "focus"})");
  ASSERT_EQ(r.status, 201) << r.body;
  json t = Body(r);
  EXPECT_EQ(t["granted_by"], "supervisor:ann");
  EXPECT_EQ(t["max_uses"], 5);
  EXPECT_EQ(t["used"], 0);
  EXPECT_EQ(t["live"], true);
  EXPECT_EQ(t["expires_micros"], kStart + kHour);
  r = Call("POST", "/v1/tickets", ann_,
           R"({"vendor": "vendor:other", "lane": "7", "max_uses": 1, "ttl_seconds": 600,
               "reason": "lens"})");
  ASSERT_EQ(r.status, 201) << r.body;

  r = Call("GET", "/v1/tickets", Who("vendor:acme", policy::Role::kVendor, {"7"}));
  ASSERT_EQ(r.status, 200);
  json mine = Body(r)["tickets"];
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0]["vendor"], "vendor:acme");
  r = Call("GET", "/v1/tickets", Who("auditor:eve", policy::Role::kAuditor));
  EXPECT_EQ(Body(r)["tickets"].size(), 2u);

  for (
      const char* bad :
      {R"({"vendor": "vendor:acme", "lane": "7", "max_uses": 0, "ttl_seconds": 3600, "reason": "x"})",
       R"({"vendor": "vendor:acme", "lane": "7", "max_uses": 1001, "ttl_seconds": 3600, "reason": "x"})",
       R"({"vendor": "vendor:acme", "lane": "7", "max_uses": 1, "ttl_seconds": 10, "reason": "x"})",
       R"({"vendor": "vendor:acme", "lane": "8", "max_uses": 1, "ttl_seconds": 3600, "reason": "x"})",
       R"({"vendor": "vendor:acme", "lane": "7", "max_uses": "1", "ttl_seconds": 3600, "reason": "x"})",
       R"({"vendor": "vendor:acme", "lane": "7", "max_uses": 1, "ttl_seconds": 3600})"}) {
    r = Call("POST", "/v1/tickets", ann_, bad);
    EXPECT_EQ(r.status, 400) << bad << " -> " << r.body;
    EXPECT_EQ(Code(r), "invalid_argument");
  }
  r = Call("POST", "/v1/tickets", ann_,
           R"({"vendor": "vendor:nobody", "lane": "7", "max_uses": 1, "ttl_seconds": 3600,
               "reason": "x"})");
  EXPECT_EQ(r.status, 404);
}

TEST_F(AccessRoutesTest, ATwoPersonExportEndToEnd) {
  const std::string jpeg = Jpeg(96, 32);
  const vault::RecordMeta crop = Put(vault::RecordType::kPlateRead, "7", "image/jpeg", jpeg);
  const vault::RecordMeta read =
      Put(vault::RecordType::kPlateRead, "7", "application/json", R"({"text":"ABC1234"})");
  Put(vault::RecordType::kPlateRead, "8", "image/jpeg", jpeg);            // another lane
  Put(vault::RecordType::kMatchDecision, "7", "application/json", "{}");  // another type
  env_.now += 2 * kHour;
  Put(vault::RecordType::kPlateRead, "7", "image/jpeg", jpeg);  // after the range
  env_.now -= kHour;

  const std::string id = RequestExport(ann_, "7");
  ApiResponse r = Call("GET", "/v1/exports", ann_, "", {}, {{"state", "pending"}});
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(Body(r)["exports"].size(), 1u);
  EXPECT_EQ(Body(r)["exports"][0]["id"], id);
  r = Call("GET", "/v1/exports", ann_, "", {}, {{"state", "approved"}});
  EXPECT_TRUE(Body(r)["exports"].empty());
  r = Call("GET", "/v1/exports", ann_, "", {}, {{"state", "bogus"}});
  EXPECT_EQ(r.status, 400);

  // Not approved yet: no download.
  r = Call("GET", "/v1/exports/{id}/download", ann_, "", {{"id", id}});
  EXPECT_EQ(r.status, 409);
  // Nobody approves their own request.
  r = Call("POST", "/v1/exports/{id}/approve", ann_, "", {{"id", id}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Code(r), "self_approval");
  r = Call("POST", "/v1/exports/{id}/approve", bob_, R"({"window_seconds": 600})", {{"id", id}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["state"], "approved");
  EXPECT_EQ(Body(r)["approved_by"], "supervisor:bob");
  EXPECT_EQ(Body(r)["window_ends_micros"], env_.now.load() + 600 * kSecond);
  // A replayed approval.
  r = Call("POST", "/v1/exports/{id}/approve", bob_, "", {{"id", id}});
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "conflict");
  // Only the requester downloads.
  r = Call("GET", "/v1/exports/{id}/download", bob_, "", {{"id", id}});
  EXPECT_EQ(r.status, 403);

  r = Call("GET", "/v1/exports/{id}/download", ann_, "", {{"id", id}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/x-ndjson");
  std::istringstream lines(r.body);
  std::string line;
  std::map<std::string, json> files;
  while (std::getline(lines, line)) {
    json f = json::parse(line);
    files[f["record_id"].get<std::string>()] = f;
  }
  ASSERT_EQ(files.size(), 2u) << r.body;
  ASSERT_EQ(files.count(crop.id), 1u);
  ASSERT_EQ(files.count(read.id), 1u);
  for (auto& [record_id, f] : files) {
    EXPECT_EQ(f["type"], "plate_read");
    const std::string data = FromBase64(f["data_base64"].get<std::string>());
    EXPECT_EQ(f["sha256"], Sha256Hex(data)) << record_id;
  }
  // The JSON read is handed out as stored; the image carries the watermark band.
  EXPECT_EQ(FromBase64(files[read.id]["data_base64"]), R"({"text":"ABC1234"})");
  const std::string marked = FromBase64(files[crop.id]["data_base64"]);
  EXPECT_NE(marked, jpeg);
  cv::Mat image;
  ImageLimits limits;
  limits.min_side = 1;
  ASSERT_TRUE(DecodeImage(marked, limits, &image).ok());
  EXPECT_GT(image.rows, 32);
  EXPECT_GT(image.cols, 96);  // widened to fit "EXPORT <id> <requester>"

  // Breach scoping: the leaked file names this export and who took it.
  r = Call("GET", "/v1/exports/fingerprints/{sha256}", Who("auditor:eve", policy::Role::kAuditor),
           "", {{"sha256", Sha256Hex(marked)}});
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(Body(r)["exports"].size(), 1u);
  EXPECT_EQ(Body(r)["exports"][0]["id"], id);
  EXPECT_EQ(Body(r)["exports"][0]["requested_by"], "supervisor:ann");
  EXPECT_EQ(Body(r)["exports"][0]["approved_by"], "supervisor:bob");
  EXPECT_EQ(Body(r)["exports"][0]["state"], "downloaded");
  r = Call("GET", "/v1/exports/fingerprints/{sha256}", ann_, "", {{"sha256", Sha256Hex(jpeg)}});
  EXPECT_TRUE(Body(r)["exports"].empty());
  r = Call("GET", "/v1/exports/fingerprints/{sha256}", ann_, "", {{"sha256", "abc"}});
  EXPECT_EQ(r.status, 400);

  // Once.
  r = Call("GET", "/v1/exports/{id}/download", ann_, "", {{"id", id}});
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "conflict");
}

TEST_F(AccessRoutesTest, AllLanesMeansTheRequestersScope) {
  const std::string jpeg = Jpeg(64, 32);
  Put(vault::RecordType::kPlateRead, "7", "image/jpeg", jpeg);
  Put(vault::RecordType::kPlateRead, "8", "image/jpeg", jpeg);
  Put(vault::RecordType::kPlateRead, "9", "image/jpeg", jpeg);
  const policy::Principal scoped = Who("supervisor:sam", policy::Role::kSupervisor, {"7", "9"});
  const std::string id = RequestExport(scoped, "");
  ASSERT_EQ(Call("POST", "/v1/exports/{id}/approve", bob_, "", {{"id", id}}).status, 200);
  const ApiResponse r = Call("GET", "/v1/exports/{id}/download", scoped, "", {{"id", id}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(std::count(r.body.begin(), r.body.end(), '\n'), 2);
  // And a lane outside the scope cannot be requested at all.
  const ApiResponse out = Call("POST", "/v1/exports", scoped,
                               R"({"lane": "8", "record_types": ["plate_read"], "from_micros": 0,
                                   "until_micros": 1, "reason": "x"})");
  EXPECT_EQ(out.status, 403);
  EXPECT_EQ(Code(out), "out_of_scope");
}

TEST_F(AccessRoutesTest, ExpiredAndUnknownExports) {
  const std::string id = RequestExport(ann_, "7");
  ASSERT_EQ(
      Call("POST", "/v1/exports/{id}/approve", bob_, R"({"window_seconds": 60})", {{"id", id}})
          .status,
      200);
  env_.now += 60 * kSecond;
  ApiResponse r = Call("GET", "/v1/exports/{id}/download", ann_, "", {{"id", id}});
  EXPECT_EQ(r.status, 410);
  EXPECT_EQ(Code(r), "expired");

  const std::string stale = RequestExport(ann_, "7");
  env_.now += 7 * kDay;
  r = Call("POST", "/v1/exports/{id}/approve", bob_, "", {{"id", stale}});
  EXPECT_EQ(r.status, 410);

  const std::string unknown = "0123456789abcdef0123456789abcdef";
  r = Call("POST", "/v1/exports/{id}/approve", bob_, "", {{"id", unknown}});
  EXPECT_EQ(r.status, 404);
  r = Call("GET", "/v1/exports/{id}/download", ann_, "", {{"id", unknown}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Code(r), "not_found");
  r = Call("POST", "/v1/exports/{id}/approve", bob_, R"({"window_seconds": 0})", {{"id", id}});
  EXPECT_EQ(r.status, 400);
}

TEST_F(AccessRoutesTest, BadExportRequests) {
  for (const char* bad :
       {R"({"from_micros": 0, "until_micros": 1, "reason": "x"})",
        R"({"record_types": ["passport"], "from_micros": 0, "until_micros": 1, "reason": "x"})",
        R"({"record_types": ["plate_read"], "from_micros": 5, "until_micros": 1, "reason": "x"})",
        R"({"record_types": ["plate_read"], "from_micros": 0, "until_micros": 1})",
        R"({"record_types": "plate_read", "from_micros": 0, "until_micros": 1, "reason": "x"})"}) {
    const ApiResponse r = Call("POST", "/v1/exports", ann_, bad);
    EXPECT_EQ(r.status, 400) << bad << " -> " << r.body;
  }
  EXPECT_EQ(Call("POST", "/v1/exports", ann_, "{").status, 400);
}

}  // namespace
}  // namespace portcullis::server
