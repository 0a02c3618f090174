// Gates and travellers, handler level: the real routes (AddGateRoutes) called directly, a real
// vault on a temporary SQLite file (keyring with the cheapest Argon2 cost, an in-memory audit
// sink), a real FaceEngine (models/face) and the labelled face chips Debian's libdlib19.1 ships
// (five people, eleven 150x150 chips each) as document photos and live captures.
#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "portcullis/audit.h"
#include "portcullis/face.h"
#include "portcullis/vault.h"
#include "server/api.h"
#include "server/gate_galleries.h"
#include "server/metrics.h"

namespace portcullis::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kJohns = "/usr/share/doc/libdlib19.1/examples/johns";
const char* kGate = "A12";

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// person -> the encoded JPEG chips, sorted by file name.
const std::map<std::string, std::vector<std::string>>& Johns() {
  static const std::map<std::string, std::vector<std::string>> chips = [] {
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& d : fs::directory_iterator(kJohns)) {
      std::vector<std::string> files;
      for (const auto& f : fs::directory_iterator(d.path())) files.push_back(f.path().string());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) out[d.path().filename().string()].push_back(ReadBytes(f));
    }
    return out;
  }();
  return chips;
}

cv::Mat Decode(const std::string& bytes) {
  return cv::imdecode(std::vector<unsigned char>(bytes.begin(), bytes.end()), cv::IMREAD_COLOR);
}

std::string Chip(const std::string& person, std::size_t i) { return Johns().at(person).at(i); }

std::string Base64(const std::string& bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::string Encode(const cv::Mat& bgr, const std::string& ext) {
  std::vector<unsigned char> buf;
  EXPECT_TRUE(cv::imencode(ext, bgr, buf));
  return std::string(buf.begin(), buf.end());
}

class MemoryAuditSink : public audit::AuditSink {
 public:
  Status Append(const audit::AuditEvent& event) override {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(event);
    return Status::Ok();
  }
  std::mutex mu;
  std::vector<audit::AuditEvent> events;
};

// One service node: its own vault handle (same database and keyring as the others), metrics,
// galleries and routes.
struct Node {
  Node(const std::string& dir, const std::string& traveller_key, GateGalleriesOptions options) {
    vault::VaultOptions vo;
    vo.store_uri = "sqlite:" + dir + "/vault.db";
    vo.key_uri = "keyring:" + dir + "/keyring";
    vo.key_secret = "correct horse battery staple";
    vo.key_options.create_if_missing = true;
    vo.key_options.keyring_opslimit = 1;  // cheapest Argon2id: the suite stays fast
    vo.key_options.keyring_memlimit = 8192;
    vo.retention_path = std::string(PORTCULLIS_SOURCE_DIR) + "/data/retention.json";
    vo.audit = &audit;
    status = vault::Vault::Open(vo, &vault);
    if (!status.ok()) return;
    options.traveller_key = traveller_key;
    galleries = std::make_unique<GateGalleries>(vault.get(), Env::Default(), &metrics, options);
    ctx.env = Env::Default();
    ctx.vault = vault.get();
    ctx.metrics = &metrics;
    ctx.galleries = galleries.get();
    ctx.node_name = "n1";
    AddGateRoutes(ctx, &routes);
  }

  const Route& Find(const std::string& method, const std::string& pattern) const {
    for (const Route& r : routes) {
      if (r.method == method && r.pattern == pattern) return r;
    }
    ADD_FAILURE() << "no route " << method << " " << pattern;
    return routes.front();
  }

  MemoryAuditSink audit;
  Status status;
  std::unique_ptr<vault::Vault> vault;
  Metrics metrics;
  std::unique_ptr<GateGalleries> galleries;
  ServiceContext ctx;
  std::vector<Route> routes;
};

policy::Principal GateDevice(const std::string& gate = kGate) {
  return {"gate:" + gate, policy::Role::kGateDevice, {gate}};
}
policy::Principal Officer() { return {"officer:1234", policy::Role::kOfficer, {"*"}}; }

class GateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(sodium_init() >= 0, true);
    ASSERT_TRUE(fs::is_directory(kJohns)) << kJohns << " missing: apt-get install libdlib19.1";
    ASSERT_EQ(Johns().size(), 5u);
    const Status s = face::FaceEngine::Open(face::FaceEngineOptions{}, &engine_);
    ASSERT_TRUE(s.ok()) << s.ToString() << " (run scripts/install.sh)";
  }
  static void TearDownTestSuite() { engine_.reset(); }

  void SetUp() override {
    char tmpl[] = "/tmp/portcullis-gate-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    key_.assign(kTravellerKeyBytes, '\0');
    randombytes_buf(key_.data(), key_.size());
    node_ = MakeNode();
  }
  void TearDown() override {
    nodes_.clear();
    node_ = nullptr;
    fs::remove_all(dir_);
  }

  Node* MakeNode(GateGalleriesOptions options = {}) {
    nodes_.push_back(std::make_unique<Node>(dir_, key_, options));
    EXPECT_TRUE(nodes_.back()->status.ok()) << nodes_.back()->status.ToString();
    return nodes_.back().get();
  }

  static ApiRequest Request(const std::string& method, const std::string& path,
                            std::map<std::string, std::string> params, std::string content_type,
                            std::string body, policy::Principal principal = GateDevice()) {
    ApiRequest r;
    r.method = method;
    r.path = path;
    r.path_params = std::move(params);
    r.content_type = std::move(content_type);
    r.body = std::move(body);
    r.request_id = "00000000000000aa";
    r.principal = std::move(principal);
    r.engines.faces = engine_.get();
    return r;
  }

  ApiResponse Call(Node* node, const std::string& method, const std::string& pattern,
                   ApiRequest& request) {
    return node->Find(method, pattern).handler(request);
  }

  // The standard manifest: four of the five people (John_Simm is the stranger), two citizens and
  // two non-citizens; one of them enrolled from a template rather than a photo.
  json Manifest() {
    json m;
    m["flight"] = "BA117";
    m["travellers"] = json::array();
    m["travellers"].push_back({{"id", "P-SALLEY"},
                               {"subject", "citizen"},
                               {"photo_jpeg_base64", Base64(Chip("John_Salley", 0))}});
    m["travellers"].push_back({{"id", "P-SAVAGE"},
                               {"subject", "non_citizen"},
                               {"photo_jpeg_base64", Base64(Chip("John_Savage", 0))}});
    m["travellers"].push_back({{"id", "P-SCHNEIDER"},
                               {"subject", "citizen"},
                               {"photo_jpeg_base64", Base64(Chip("John_Schneider", 0))}});
    const cv::Mat bgr = Decode(Chip("John_Shimkus", 0));
    face::FaceTemplate t;
    EXPECT_TRUE(engine_->Enrol(bgr, &t).ok());
    m["travellers"].push_back({{"id", "P-SHIMKUS"},
                               {"subject", "non_citizen"},
                               {"template_base64", Base64(t.Serialize())}});
    return m;
  }

  ApiResponse Open(Node* node, const std::string& body, const std::string& gate = kGate,
                   const std::string& content_type = "application/json") {
    ApiRequest r = Request("POST", "/v1/gates/" + gate + "/galleries", {{"gate", gate}},
                           content_type, body, GateDevice(gate));
    return Call(node, "POST", "/v1/gates/{gate}/galleries", r);
  }

  std::string OpenStandard(Node* node) {
    const ApiResponse r = Open(node, Manifest().dump());
    EXPECT_EQ(r.status, 201) << r.body;
    const json j = json::parse(r.body);
    EXPECT_EQ(j["enrolled"], 4) << r.body;
    EXPECT_TRUE(j["refused"].empty()) << r.body;
    return j["gallery"].get<std::string>();
  }

  ApiResponse Match(Node* node, const std::string& gallery, const std::string& capture,
                    const std::string& claim = "", const std::string& gate = kGate,
                    const std::string& content_type = "image/jpeg",
                    std::string* body_after = nullptr) {
    ApiRequest r =
        Request("POST", "/v1/gates/" + gate + "/galleries/" + gallery + "/match",
                {{"gate", gate}, {"gallery", gallery}}, content_type, capture, GateDevice(gate));
    if (!claim.empty()) r.query["claim"] = claim;
    ApiResponse response = Call(node, "POST", "/v1/gates/{gate}/galleries/{gallery}/match", r);
    if (body_after != nullptr) *body_after = r.body;
    return response;
  }

  ApiResponse Describe(Node* node, const std::string& gallery, const std::string& gate = kGate) {
    ApiRequest r = Request("GET", "/v1/gates/" + gate + "/galleries/" + gallery,
                           {{"gate", gate}, {"gallery", gallery}}, "", "", GateDevice(gate));
    return Call(node, "GET", "/v1/gates/{gate}/galleries/{gallery}", r);
  }

  ApiResponse Close(Node* node, const std::string& gallery, const std::string& gate = kGate) {
    ApiRequest r = Request("DELETE", "/v1/gates/" + gate + "/galleries/" + gallery,
                           {{"gate", gate}, {"gallery", gallery}}, "", "", GateDevice(gate));
    return Call(node, "DELETE", "/v1/gates/{gate}/galleries/{gallery}", r);
  }

  ApiResponse Traveller(Node* node, const std::string& id, bool photo = false) {
    ApiRequest r = Request("GET", "/v1/travellers/" + id + (photo ? "/photo" : ""), {{"id", id}},
                           "", "", Officer());
    r.purpose = "secondary inspection, gate A12";
    return Call(node, "GET", photo ? "/v1/travellers/{id}/photo" : "/v1/travellers/{id}", r);
  }

  ApiResponse Stats(Node* node, const std::string& hours) {
    ApiRequest r = Request("GET", "/v1/stats/gates", {}, "", "", Officer());
    if (!hours.empty()) r.query["hours"] = hours;
    return Call(node, "GET", "/v1/stats/gates", r);
  }

  // Every record's metadata, straight from the vault.
  std::vector<vault::RecordMeta> Records(Node* node, vault::RecordType type) {
    vault::RecordFilter filter;
    filter.type = type;
    filter.limit = vault::kMaxListLimit;
    vault::RecordPage page;
    const Status s = node->vault->List({"test", "auditor", "test inspection"}, filter, &page);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return page.records;
  }

  static std::unique_ptr<face::FaceEngine> engine_;
  std::string dir_;
  std::string key_;
  std::vector<std::unique_ptr<Node>> nodes_;
  Node* node_ = nullptr;
};
std::unique_ptr<face::FaceEngine> GateTest::engine_;

TEST_F(GateTest, ARouteForEveryGateEndpointOfTheContract) {
  ASSERT_EQ(node_->routes.size(), 7u);
  const Route& open = node_->Find("POST", "/v1/gates/{gate}/galleries");
  EXPECT_EQ(open.action, "gallery.open");
  EXPECT_EQ(open.category, "face_template");
  EXPECT_EQ(open.lane_param, "gate");
  EXPECT_TRUE(open.heavy);
  const Route& match = node_->Find("POST", "/v1/gates/{gate}/galleries/{gallery}/match");
  EXPECT_EQ(match.action, "gallery.match");
  EXPECT_EQ(match.category, "match_decision");
  EXPECT_TRUE(match.heavy);
  EXPECT_EQ(node_->Find("DELETE", "/v1/gates/{gate}/galleries/{gallery}").action, "gallery.close");
  EXPECT_EQ(node_->Find("GET", "/v1/travellers/{id}").category, "traveller_record");
  EXPECT_EQ(node_->Find("GET", "/v1/travellers/{id}/photo").category, "traveller_photo");
  EXPECT_EQ(node_->Find("GET", "/v1/stats/gates").action, "stats.read");
  for (const Route& r : node_->routes) {
    EXPECT_TRUE(policy::IsKnownAction(r.action)) << r.action;
    EXPECT_TRUE(policy::IsKnownCategory(r.category)) << r.category;
  }
}

TEST_F(GateTest, OpenStoresSealedTemplatesWithNoIdentityInLabels) {
  const std::string gallery = OpenStandard(node_);
  EXPECT_TRUE(vault::IsValidRecordId(gallery));
  const auto templates = Records(node_, vault::RecordType::kTemplate);
  ASSERT_EQ(templates.size(), 5u);  // the gallery record + one per traveller
  std::size_t self = 0;
  std::map<vault::SubjectCategory, int> subjects;
  for (const auto& meta : templates) {
    EXPECT_EQ(meta.retention_class, "gallery");
    std::set<std::string> keys;
    for (const auto& [k, v] : meta.labels) keys.insert(k);
    EXPECT_EQ(keys, (std::set<std::string>{"gate", "gallery"}));
    EXPECT_EQ(meta.labels.at("gate"), kGate);
    if (meta.id == gallery) {
      EXPECT_EQ(meta.labels.at("gallery"), "self");
      ++self;
    } else {
      EXPECT_EQ(meta.labels.at("gallery"), gallery);
      ++subjects[meta.subject];
    }
  }
  EXPECT_EQ(self, 1u);
  EXPECT_EQ(subjects[vault::SubjectCategory::kCitizen], 2);
  EXPECT_EQ(subjects[vault::SubjectCategory::kNonCitizen], 2);
  const auto travellers = Records(node_, vault::RecordType::kTraveller);
  ASSERT_EQ(travellers.size(), 4u);
  // No traveller id anywhere in clear metadata; no document photo kept by default.
  for (const auto type : {vault::RecordType::kTemplate, vault::RecordType::kTraveller}) {
    for (const auto& meta : Records(node_, type)) {
      for (const auto& [k, v] : meta.labels) {
        EXPECT_EQ(v.find("P-"), std::string::npos) << k << "=" << v;
        EXPECT_EQ(v.find("SALLEY"), std::string::npos) << k << "=" << v;
      }
    }
  }
  EXPECT_TRUE(Records(node_, vault::RecordType::kGalleryPhoto).empty());
  EXPECT_EQ(node_->galleries->cached_galleries(), 1u);
}

TEST_F(GateTest, SamePersonMatchesTheRightTravellerAndAStrangerDoesNot) {
  const std::string gallery = OpenStandard(node_);
  const std::map<std::string, std::string> ids = {{"John_Salley", "P-SALLEY"},
                                                  {"John_Savage", "P-SAVAGE"},
                                                  {"John_Schneider", "P-SCHNEIDER"},
                                                  {"John_Shimkus", "P-SHIMKUS"}};
  for (const auto& [person, id] : ids) {
    for (const std::size_t chip : {3u, 7u}) {
      const ApiResponse r = Match(node_, gallery, Chip(person, chip));
      ASSERT_EQ(r.status, 200) << person << " " << r.body;
      const json j = json::parse(r.body);
      EXPECT_EQ(j["decision"], "match") << person << " " << r.body;
      EXPECT_EQ(j["traveller"], id) << person;
      EXPECT_EQ(j["mode"], "1:N");
      EXPECT_GE(j["score"].get<double>(), j["threshold"].get<double>());
      EXPECT_NEAR(j["threshold"].get<double>(), 0.5, 1e-6);  // the default operating point
      EXPECT_NEAR(j["distance_threshold"].get<double>(), face::kDefaultMatchThreshold, 1e-6);
      EXPECT_TRUE(vault::IsValidRecordId(j["decision_id"].get<std::string>()));
    }
  }
  for (const std::size_t chip : {0u, 5u, 10u}) {
    const ApiResponse r = Match(node_, gallery, Chip("John_Simm", chip));
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = json::parse(r.body);
    EXPECT_EQ(j["decision"], "no_match") << r.body;
    EXPECT_TRUE(j["traveller"].is_null());
    EXPECT_LT(j["score"].get<double>(), j["threshold"].get<double>());
  }
  EXPECT_EQ(node_->metrics.Value("matches_total", {{"gate", kGate}, {"decision", "match"}}), 8);
  EXPECT_EQ(node_->metrics.Value("matches_total", {{"gate", kGate}, {"decision", "no_match"}}), 3);
  EXPECT_NE(node_->metrics.RenderPrometheus().find("portcullis_match_seconds_bucket"),
            std::string::npos);
  EXPECT_EQ(Records(node_, vault::RecordType::kMatchDecision).size(), 11u);
}

TEST_F(GateTest, APngCaptureMatchesToo) {
  const std::string gallery = OpenStandard(node_);
  const std::string jpeg = Chip("John_Savage", 4);
  const cv::Mat bgr = Decode(jpeg);
  const ApiResponse r = Match(node_, gallery, Encode(bgr, ".png"), "", kGate, "image/png");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["traveller"], "P-SAVAGE");
}

TEST_F(GateTest, OneToOneAgainstAClaimedTraveller) {
  const std::string gallery = OpenStandard(node_);
  ApiResponse r = Match(node_, gallery, Chip("John_Salley", 5), "P-SALLEY");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["decision"], "match");
  EXPECT_EQ(j["mode"], "1:1");
  EXPECT_EQ(j["traveller"], "P-SALLEY");
  EXPECT_EQ(j["claim"], "P-SALLEY");
  // Someone else claiming to be P-SALLEY (and P-SALLEY claiming to be someone else).
  r = Match(node_, gallery, Chip("John_Savage", 5), "P-SALLEY");
  ASSERT_EQ(r.status, 200) << r.body;
  j = json::parse(r.body);
  EXPECT_EQ(j["decision"], "no_match");
  EXPECT_TRUE(j["traveller"].is_null());
  EXPECT_EQ(j["claim"], "P-SALLEY");
  r = Match(node_, gallery, Chip("John_Salley", 5), "P-SHIMKUS");
  EXPECT_EQ(json::parse(r.body)["decision"], "no_match");
  // A claim nobody in the gallery holds.
  r = Match(node_, gallery, Chip("John_Salley", 5), "P-NOBODY");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "not_found");
  r = Match(node_, gallery, Chip("John_Salley", 5), "../etc");
  EXPECT_EQ(r.status, 400) << r.body;
}

TEST_F(GateTest, BlankOrTinyCapturesAreQualityRefusalsAndStoreNothing) {
  const std::string gallery = OpenStandard(node_);
  const auto before = Records(node_, vault::RecordType::kMatchDecision).size();
  ApiResponse r =
      Match(node_, gallery, Encode(cv::Mat(240, 320, CV_8UC3, cv::Scalar(128, 128, 128)), ".jpg"));
  ASSERT_EQ(r.status, 422) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["error"]["code"], "quality");
  EXPECT_EQ(j["error"]["reason"], "no_face");
  r = Match(node_, gallery, Encode(cv::Mat(8, 8, CV_8UC3, cv::Scalar(90, 120, 160)), ".png"), "",
            kGate, "image/png");
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["reason"], "face_too_small");
  // A face too small to measure (a chip shrunk onto a canvas, as tests/face does).
  const std::string jpeg = Chip("John_Salley", 1);
  cv::Mat small;
  cv::resize(Decode(jpeg), small, cv::Size(56, 56), 0, 0, cv::INTER_AREA);
  cv::Mat canvas(160, 160, CV_8UC3, cv::Scalar(110, 110, 110));
  small.copyTo(canvas(cv::Rect(52, 52, 56, 56)));
  r = Match(node_, gallery, Encode(canvas, ".png"), "", kGate, "image/png");
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["reason"], "face_too_small");
  EXPECT_EQ(
      node_->metrics.Value("quality_refusals_total", {{"gate", kGate}, {"reason", "no_face"}}), 1);
  EXPECT_EQ(node_->metrics.Value("quality_refusals_total",
                                 {{"gate", kGate}, {"reason", "face_too_small"}}),
            2);
  EXPECT_EQ(Records(node_, vault::RecordType::kMatchDecision).size(), before);
  EXPECT_TRUE(Records(node_, vault::RecordType::kKeptCapture).empty());
}

TEST_F(GateTest, BadCapturesAreRefusedWithTheRightCodes) {
  const std::string gallery = OpenStandard(node_);
  ApiResponse r = Match(node_, gallery, "not an image at all", "", kGate, "image/jpeg");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "bad_image");
  r = Match(node_, gallery, Chip("John_Salley", 2), "", kGate, "application/octet-stream");
  EXPECT_EQ(r.status, 415) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "unsupported_media_type");
  const std::string jpeg = Chip("John_Salley", 2);
  r = Match(node_, gallery, jpeg.substr(0, jpeg.size() / 3));
  EXPECT_EQ(r.status, 400) << r.body;
  r = Match(node_, "0123456789abcdef0123456789abcdef", Chip("John_Salley", 2));
  EXPECT_EQ(r.status, 404) << r.body;
  r = Match(node_, "not-a-gallery-id", Chip("John_Salley", 2));
  EXPECT_EQ(r.status, 404) << r.body;
}

TEST_F(GateTest, CitizenCapturesAreDroppedNonCitizensKeptOnceAndNeverReturned) {
  const std::string gallery = OpenStandard(node_);
  const std::string citizen_capture = Chip("John_Salley", 6);
  std::string body_after;
  ApiResponse r = Match(node_, gallery, citizen_capture, "", kGate, "image/jpeg", &body_after);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["capture"], "dropped");
  EXPECT_LT(r.body.size(), 600u);
  EXPECT_EQ(r.body.find(Base64(citizen_capture).substr(0, 40)), std::string::npos);
  EXPECT_TRUE(body_after.empty()) << "the handler must wipe the capture it was given";
  EXPECT_TRUE(Records(node_, vault::RecordType::kKeptCapture).empty());
  auto decisions = Records(node_, vault::RecordType::kMatchDecision);
  ASSERT_EQ(decisions.size(), 1u);
  EXPECT_EQ(decisions[0].subject, vault::SubjectCategory::kCitizen);
  EXPECT_EQ(decisions[0].retention_class, "face-citizen");

  const std::string non_citizen_capture = Chip("John_Savage", 6);
  r = Match(node_, gallery, non_citizen_capture);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["capture"], "kept");
  const auto kept = Records(node_, vault::RecordType::kKeptCapture);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].subject, vault::SubjectCategory::kNonCitizen);
  EXPECT_EQ(kept[0].retention_class, "face-non-citizen");
  EXPECT_EQ(kept[0].size, non_citizen_capture.size());
  EXPECT_EQ(kept[0].content_type, "image/jpeg");
  // The kept capture opens to exactly the bytes received, and only through the vault.
  std::string stored;
  ASSERT_TRUE(
      node_->vault->Get({"test", "auditor", "test inspection"}, kept[0].id, nullptr, &stored).ok());
  EXPECT_EQ(stored, non_citizen_capture);
  // Neither response carries image bytes: small JSON, no JPEG marker, no base64 of the capture.
  const std::string& body = r.body;
  EXPECT_LT(body.size(), 600u);
  EXPECT_EQ(body.find("\xff\xd8"), std::string::npos);
  EXPECT_EQ(body.find(Base64(non_citizen_capture).substr(0, 40)), std::string::npos);
  const json parsed = json::parse(body);
  std::set<std::string> keys;
  for (auto it = parsed.begin(); it != parsed.end(); ++it) keys.insert(it.key());
  EXPECT_EQ(keys,
            (std::set<std::string>{"decision", "mode", "traveller", "claim", "score", "threshold",
                                   "distance_threshold", "capture", "decision_id"}));
  // A stranger is nobody's citizen: kept as a non-citizen's, for review.
  r = Match(node_, gallery, Chip("John_Simm", 2));
  EXPECT_EQ(json::parse(r.body)["capture"], "kept");
  EXPECT_EQ(Records(node_, vault::RecordType::kKeptCapture).size(), 2u);
}

TEST_F(GateTest, TheKeepPolicyIsConfigurable) {
  GateGalleriesOptions options;
  options.keep.non_citizen = false;
  Node* strict = MakeNode(options);
  const std::string gallery = OpenStandard(strict);
  const ApiResponse r = Match(strict, gallery, Chip("John_Savage", 6));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["capture"], "dropped");
  EXPECT_TRUE(Records(strict, vault::RecordType::kKeptCapture).empty());

  KeepPolicy policy;
  ASSERT_TRUE(ParseKeepPolicy(R"({"citizen": "keep", "non_citizen": "drop"})", &policy).ok());
  EXPECT_TRUE(policy.citizen);
  EXPECT_FALSE(policy.non_citizen);
  EXPECT_EQ(ParseKeepPolicy(R"({"citizen": "maybe"})", &policy).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseKeepPolicy(R"({"tourist": "keep"})", &policy).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseKeepPolicy("[", &policy).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(policy.citizen);  // untouched by the refusals
}

TEST_F(GateTest, CloseDestroysTheTemplatesAndLaterUseIsNotFound) {
  const std::string gallery = OpenStandard(node_);
  ASSERT_EQ(Match(node_, gallery, Chip("John_Salley", 2)).status, 200);
  ApiResponse r = Describe(node_, gallery);
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["size"], 4);
  EXPECT_EQ(j["flight"], "BA117");
  EXPECT_EQ(j["gate"], kGate);
  EXPECT_LT(r.body.size(), 400u);  // size and flight, never templates

  r = Close(node_, gallery);
  ASSERT_EQ(r.status, 200) << r.body;
  j = json::parse(r.body);
  EXPECT_EQ(j["closed"], true);
  EXPECT_EQ(j["templates_destroyed"], 4);
  EXPECT_TRUE(Records(node_, vault::RecordType::kTemplate).empty());
  EXPECT_EQ(node_->galleries->cached_galleries(), 0u);
  // The decision stays (its own retention); manifest entries stay for lookups, without biometrics.
  EXPECT_EQ(Records(node_, vault::RecordType::kMatchDecision).size(), 1u);
  EXPECT_EQ(Records(node_, vault::RecordType::kTraveller).size(), 4u);

  r = Match(node_, gallery, Chip("John_Salley", 2));
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(Describe(node_, gallery).status, 404);
  EXPECT_EQ(Close(node_, gallery).status, 404);
  bool audited = false;
  for (const auto& e : node_->audit.events) {
    if (e.action == "vault.delete" && e.record_id == gallery && e.result == "ok") audited = true;
  }
  EXPECT_TRUE(audited);
}

TEST_F(GateTest, ASecondNodeMatchesAGalleryTheFirstOpenedAndNoticesItsClose) {
  const std::string gallery = OpenStandard(node_);
  Node* second = MakeNode();
  ASSERT_EQ(second->galleries->cached_galleries(), 0u);
  ApiResponse r = Match(second, gallery, Chip("John_Schneider", 4));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["traveller"], "P-SCHNEIDER");
  EXPECT_EQ(second->galleries->cached_galleries(), 1u);
  r = Match(second, gallery, Chip("John_Shimkus", 4), "P-SHIMKUS");
  EXPECT_EQ(json::parse(r.body)["decision"], "match") << r.body;

  // The second node closes it; the first, still holding a cached copy, notices on next use.
  ASSERT_EQ(Close(second, gallery).status, 200);
  ASSERT_EQ(node_->galleries->cached_galleries(), 1u);
  const std::size_t decisions = Records(node_, vault::RecordType::kMatchDecision).size();
  const std::size_t captures = Records(node_, vault::RecordType::kKeptCapture).size();
  r = Match(node_, gallery, Chip("John_Schneider", 4));
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(node_->galleries->cached_galleries(), 0u);
  // The stale node stored nothing for it: the decision's put requires the gallery's record.
  EXPECT_EQ(Records(node_, vault::RecordType::kMatchDecision).size(), decisions);
  EXPECT_EQ(Records(node_, vault::RecordType::kKeptCapture).size(), captures);
  // A capture needing a re-take stores nothing either, and still learns of the close.
  const std::string other = OpenStandard(node_);
  ASSERT_EQ(Match(node_, other, Chip("John_Schneider", 4)).status, 200);
  ASSERT_EQ(Close(second, other).status, 200);
  r = Match(node_, other, Encode(cv::Mat(8, 8, CV_8UC3, cv::Scalar(90, 120, 160)), ".png"), "",
            kGate, "image/png");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(node_->galleries->cached_galleries(), 0u);
}

TEST_F(GateTest, AGalleryBelongsToItsGate) {
  const std::string gallery = OpenStandard(node_);
  EXPECT_EQ(Match(node_, gallery, Chip("John_Salley", 2), "", "B7").status, 404);
  EXPECT_EQ(Describe(node_, gallery, "B7").status, 404);
  EXPECT_EQ(Close(node_, gallery, "B7").status, 404);
  EXPECT_EQ(Records(node_, vault::RecordType::kTemplate).size(), 5u);
}

TEST_F(GateTest, PerTravellerRefusalsDoNotFailTheFlight) {
  json m = Manifest();
  m["travellers"].push_back(
      {{"id", "P-BLANK"},
       {"subject", "citizen"},
       {"photo_jpeg_base64",
        Base64(Encode(cv::Mat(200, 200, CV_8UC3, cv::Scalar(128, 128, 128)), ".jpg"))}});
  m["travellers"].push_back(
      {{"id", "P-GARBAGE"}, {"subject", "citizen"}, {"photo_jpeg_base64", Base64("GIF89a....")}});
  m["travellers"].push_back(
      {{"id", "P-BADTEMPLATE"}, {"subject", "citizen"}, {"template_base64", Base64("PCFTxxxx")}});
  const ApiResponse r = Open(node_, m.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["enrolled"], 4);
  std::map<std::string, std::string> refused;
  for (const auto& x : j["refused"]) refused[x["id"]] = x["reason"];
  EXPECT_EQ(refused, (std::map<std::string, std::string>{{"P-BLANK", "no_face"},
                                                         {"P-GARBAGE", "bad_image"},
                                                         {"P-BADTEMPLATE", "bad_template"}}));
  // Refused travellers still have a manifest entry (so an officer sees why), but no template.
  EXPECT_EQ(Records(node_, vault::RecordType::kTraveller).size(), 7u);
  EXPECT_EQ(Records(node_, vault::RecordType::kTemplate).size(), 5u);
  const ApiResponse t = Traveller(node_, "P-BLANK");
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(json::parse(t.body)["entries"][0]["reason"], "no_face");
  EXPECT_EQ(json::parse(Describe(node_, j["gallery"]).body)["refused"], 3);
}

TEST_F(GateTest, MalformedManifestsAre400WithTheField) {
  struct Case {
    std::string body;
    std::string code;
    std::string field;  // "" when the error names none
  };
  json ok = Manifest();
  auto with = [&](auto edit) {
    json m = ok;
    edit(m);
    return m.dump();
  };
  const std::vector<Case> cases = {
      {"{\"flight\": \"BA117\", \"travellers\": [", "malformed_json", ""},
      {"", "malformed_json", ""},
      {std::string(100000, '[') + std::string(100000, ']'), "malformed_json", ""},
      {"[]", "invalid_argument", "manifest"},
      {with([](json& m) { m.erase("flight"); }), "invalid_argument", "flight"},
      {with([](json& m) { m["flight"] = "BA 117/../x"; }), "invalid_argument", "flight"},
      {with([](json& m) { m["flight"] = 117; }), "invalid_argument", "flight"},
      {with([](json& m) { m["extra"] = 1; }), "invalid_argument", "extra"},
      {with([](json& m) { m["travellers"] = json::array(); }), "invalid_argument", "travellers"},
      {with([](json& m) { m["travellers"] = "all of them"; }), "invalid_argument", "travellers"},
      {with([](json& m) { m["travellers"][1] = 5; }), "invalid_argument", "travellers[1]"},
      {with([](json& m) { m["travellers"][0].erase("id"); }), "invalid_argument",
       "travellers[0].id"},
      {with([](json& m) { m["travellers"][2]["id"] = "P-SALLEY"; }), "invalid_argument",
       "travellers[2].id"},
      {with([](json& m) { m["travellers"][1]["subject"] = "tourist"; }), "invalid_argument",
       "travellers[1].subject"},
      {with([](json& m) { m["travellers"][0]["template_base64"] = "AAAA"; }), "invalid_argument",
       "travellers[0]"},
      {with([](json& m) { m["travellers"][0].erase("photo_jpeg_base64"); }), "invalid_argument",
       "travellers[0]"},
      {with([](json& m) { m["travellers"][0]["photo_jpeg_base64"] = "!!not base64!!"; }),
       "invalid_argument", "travellers[0].photo_jpeg_base64"},
      {with([](json& m) { m["travellers"][0]["photo_jpeg_base64"] = ""; }), "invalid_argument",
       "travellers[0].photo_jpeg_base64"},
      {with([](json& m) { m["travellers"][0]["photo_jpeg_base64"] = 42; }), "invalid_argument",
       "travellers[0].photo_jpeg_base64"},
      {with([](json& m) { m["travellers"][0]["name"] = "John Salley"; }), "invalid_argument",
       "travellers[0].name"},
  };
  for (const Case& c : cases) {
    const ApiResponse r = Open(node_, c.body);
    EXPECT_EQ(r.status, 400) << c.body.substr(0, 200) << " -> " << r.body;
    const json j = json::parse(r.body);
    EXPECT_EQ(j["error"]["code"], c.code) << c.body.substr(0, 200) << " -> " << r.body;
    if (!c.field.empty()) {
      EXPECT_EQ(j["error"]["field"], c.field) << c.body.substr(0, 200) << " -> " << r.body;
    }
  }
  const ApiResponse r = Open(node_, ok.dump(), kGate, "text/plain");
  EXPECT_EQ(r.status, 415) << r.body;
  EXPECT_TRUE(Records(node_, vault::RecordType::kTemplate).empty());
  EXPECT_TRUE(Records(node_, vault::RecordType::kTraveller).empty());
}

TEST_F(GateTest, ManifestLimits) {
  GateGalleriesOptions options;
  options.max_travellers = 3;
  options.max_photo_bytes = 2000;  // smaller than every chip
  Node* small = MakeNode(options);
  ApiResponse r = Open(small, Manifest().dump());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["field"], "travellers");
  json m = Manifest();
  m["travellers"].erase(3);
  r = Open(small, m.dump());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["field"], "travellers[0].photo_jpeg_base64");
  EXPECT_NE(json::parse(r.body)["error"]["message"].get<std::string>().find("larger than"),
            std::string::npos);
  GateGalleriesOptions tight;
  tight.max_manifest_bytes = 1000;
  Node* tiny = MakeNode(tight);
  r = Open(tiny, Manifest().dump());
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "body_too_large");
}

TEST_F(GateTest, TravellerLookupFindsTheManifestEntryAndDecisions) {
  const std::string gallery = OpenStandard(node_);
  ASSERT_EQ(Match(node_, gallery, Chip("John_Savage", 8)).status, 200);
  ASSERT_EQ(Match(node_, gallery, Chip("John_Salley", 8), "P-SAVAGE").status, 200);  // impostor
  ASSERT_EQ(Match(node_, gallery, Chip("John_Salley", 9)).status, 200);
  ApiResponse r = Traveller(node_, "P-SAVAGE");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["traveller"], "P-SAVAGE");
  ASSERT_EQ(j["entries"].size(), 1u);
  EXPECT_EQ(j["entries"][0]["gallery"], gallery);
  EXPECT_EQ(j["entries"][0]["flight"], "BA117");
  EXPECT_EQ(j["entries"][0]["subject"], "non_citizen");
  EXPECT_EQ(j["entries"][0]["enrolled"], true);
  EXPECT_EQ(j["entries"][0]["photo_kept"], false);
  ASSERT_EQ(j["decisions"].size(), 2u) << r.body;
  std::multiset<std::string> outcomes;
  for (const auto& d : j["decisions"]) outcomes.insert(d["decision"].get<std::string>());
  EXPECT_EQ(outcomes, (std::multiset<std::string>{"match", "no_match"}));
  EXPECT_EQ(Traveller(node_, "P-NOBODY").status, 404);
  EXPECT_EQ(Traveller(node_, "..").status, 400);
  // The officer's purpose is what the vault recorded for those reads.
  bool recorded = false;
  for (const auto& e : node_->audit.events) {
    if (e.action == "vault.get" && e.principal == "officer:1234") {
      EXPECT_EQ(e.purpose, "secondary inspection, gate A12");
      recorded = true;
    }
  }
  EXPECT_TRUE(recorded);
  // No photo is kept by default.
  r = Traveller(node_, "P-SAVAGE", /*photo=*/true);
  EXPECT_EQ(r.status, 404) << r.body;
}

TEST_F(GateTest, DocumentPhotosOnlyWhenConfiguredAndGoneWithTheGallery) {
  GateGalleriesOptions options;
  options.keep_document_photos = true;
  Node* keeping = MakeNode(options);
  const std::string gallery = OpenStandard(keeping);
  EXPECT_EQ(Records(keeping, vault::RecordType::kGalleryPhoto).size(), 3u);  // 3 photos, 1 template
  ApiResponse r = Traveller(keeping, "P-SALLEY", /*photo=*/true);
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 200);
  EXPECT_EQ(r.content_type, "image/jpeg");
  EXPECT_EQ(r.body, Chip("John_Salley", 0));
  EXPECT_EQ(Traveller(keeping, "P-SHIMKUS", /*photo=*/true).status, 404);  // a template only
  r = Close(keeping, gallery);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["records_deleted"], 8);  // 4 templates + 3 photos + the gallery
  EXPECT_TRUE(Records(keeping, vault::RecordType::kGalleryPhoto).empty());
  EXPECT_EQ(Traveller(keeping, "P-SALLEY", /*photo=*/true).status, 404);
}

TEST_F(GateTest, GateStatsCountDecisionsFromMetadata) {
  const std::string gallery = OpenStandard(node_);
  ASSERT_EQ(Match(node_, gallery, Chip("John_Salley", 3)).status, 200);
  ASSERT_EQ(Match(node_, gallery, Chip("John_Savage", 3)).status, 200);
  ASSERT_EQ(Match(node_, gallery, Chip("John_Simm", 3)).status, 200);
  ASSERT_EQ(Match(node_, gallery, Chip("John_Simm", 4), "P-SALLEY").status, 200);
  ApiResponse r = Stats(node_, "");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["hours"], 24);
  ASSERT_EQ(j["gates"].size(), 1u);
  EXPECT_EQ(j["gates"][0]["gate"], kGate);
  EXPECT_EQ(j["gates"][0]["decisions"]["match"], 2);
  EXPECT_EQ(j["gates"][0]["decisions"]["no_match"], 2);
  EXPECT_EQ(j["gates"][0]["one_to_one"], 1);
  EXPECT_DOUBLE_EQ(j["gates"][0]["match_rate"].get<double>(), 0.5);
  EXPECT_EQ(j["total"]["total"], 4);
  // Aggregates only: no traveller, no gallery id.
  EXPECT_EQ(r.body.find("P-"), std::string::npos);
  EXPECT_EQ(r.body.find(gallery), std::string::npos);
  // Stats never decrypt: no vault.get on the record.
  const std::size_t gets_before =
      std::count_if(node_->audit.events.begin(), node_->audit.events.end(),
                    [](const audit::AuditEvent& e) { return e.action == "vault.get"; });
  ASSERT_EQ(Stats(node_, "1").status, 200);
  const std::size_t gets_after =
      std::count_if(node_->audit.events.begin(), node_->audit.events.end(),
                    [](const audit::AuditEvent& e) { return e.action == "vault.get"; });
  EXPECT_EQ(gets_before, gets_after);
  for (const char* bad : {"0", "-1", "abc", "100000", "721", "1.5"}) {
    r = Stats(node_, bad);
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
  }
}

TEST_F(GateTest, WithoutGalleriesOrEnginesTheRoutesAreNotReady) {
  ServiceContext bare;
  std::vector<Route> routes;
  AddGateRoutes(bare, &routes);
  for (Route& route : routes) {
    ApiRequest r = Request(route.method, route.pattern,
                           {{"gate", kGate}, {"gallery", std::string(32, 'a')}, {"id", "P-1"}},
                           "application/json", "{}");
    const ApiResponse response = route.handler(r);
    EXPECT_EQ(response.status, 503) << route.pattern << " " << response.body;
  }
  const std::string gallery = OpenStandard(node_);
  ApiRequest r = Request("POST", "", {{"gate", kGate}, {"gallery", gallery}}, "image/jpeg",
                         Chip("John_Salley", 1));
  r.engines.faces = nullptr;
  EXPECT_EQ(Call(node_, "POST", "/v1/gates/{gate}/galleries/{gallery}/match", r).status, 503);
}

TEST_F(GateTest, TravellerKeysAreKeyedAndTheKeyFileIsChecked) {
  const std::string a = node_->galleries->TravellerKey("P-SALLEY");
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a, node_->galleries->TravellerKey("P-SALLEY"));
  EXPECT_NE(a, node_->galleries->TravellerKey("P-SAVAGE"));
  std::string other_key(kTravellerKeyBytes, 'x');
  GateGalleriesOptions options;
  options.traveller_key = other_key;
  GateGalleries other(node_->vault.get(), Env::Default(), nullptr, options);
  EXPECT_NE(a, other.TravellerKey("P-SALLEY"));

  const std::string path = dir_ + "/traveller.key";
  std::string k1;
  std::string k2;
  EXPECT_EQ(LoadTravellerKey(Env::Default(), path, false, &k1).code(), Status::Code::kNotFound);
  ASSERT_TRUE(LoadTravellerKey(Env::Default(), path, true, &k1).ok());
  ASSERT_TRUE(LoadTravellerKey(Env::Default(), path, true, &k2).ok());  // not regenerated
  EXPECT_EQ(k1.size(), kTravellerKeyBytes);
  EXPECT_EQ(k1, k2);
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::group_all, fs::perms::none);
  std::ofstream(path, std::ios::trunc) << "not hex\n";
  EXPECT_EQ(LoadTravellerKey(Env::Default(), path, true, &k1).code(), Status::Code::kCorruption);
}

TEST_F(GateTest, TheGatesSectionOfTheConfig) {
  const std::string path = dir_ + "/gates.key";
  GateGalleriesOptions options;
  const std::string config = R"({"traveller_key": ")" + path +
                             R"(", "create_traveller_key": true, "keep": {"citizen": "keep"},
      "keep_document_photos": true, "max_travellers": 10, "max_photo_bytes": 1000,
      "max_manifest_bytes": 5000, "max_cached_galleries": 2})";
  ASSERT_TRUE(GateGalleriesOptionsFromJson(config, Env::Default(), &options).ok());
  EXPECT_EQ(options.traveller_key.size(), kTravellerKeyBytes);
  EXPECT_TRUE(options.keep.citizen);
  EXPECT_TRUE(options.keep.non_citizen);
  EXPECT_TRUE(options.keep_document_photos);
  EXPECT_EQ(options.max_travellers, 10u);
  EXPECT_EQ(options.max_photo_bytes, 1000u);
  EXPECT_EQ(options.max_manifest_bytes, 5000u);
  EXPECT_EQ(options.max_cached_galleries, 2u);
  const std::string key = R"({"traveller_key": ")" + path + R"(", )";
  for (const std::string& bad :
       {std::string("{}"), std::string("[1]"), std::string("{"), key + R"("max_travellers": 0})",
        key + R"("max_travellers": -3})", key + R"("max_travellers": "ten"})",
        key + R"("keep": {"citizen": "yes"}})", key + R"("keep_document_photos": "no"})",
        key + R"("colour": "blue"})"}) {
    EXPECT_EQ(GateGalleriesOptionsFromJson(bad, Env::Default(), &options).code(),
              Status::Code::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(GateGalleriesOptionsFromJson(R"({"traveller_key": ")" + dir_ + R"(/missing.key"})",
                                         Env::Default(), &options)
                .code(),
            Status::Code::kNotFound);
}

TEST_F(GateTest, ManyThreadsMatchWhileAnotherClosesWithoutACrash) {
  // Engines are per worker; the gallery cache is shared. Two workers match while the gallery is
  // closed under them: each answer is a decision or a 404, never a crash or a stale match after
  // the close returned.
  const std::string gallery = OpenStandard(node_);
  std::unique_ptr<face::FaceEngine> second_engine;
  ASSERT_TRUE(face::FaceEngine::Open(face::FaceEngineOptions{}, &second_engine).ok());
  std::atomic<bool> closed{false};
  std::atomic<int> after_close_matches{0};
  auto worker = [&](face::FaceEngine* engine, const std::string& person) {
    for (std::size_t i = 1; i < 6; ++i) {
      ApiRequest r = Request("POST", "", {{"gate", kGate}, {"gallery", gallery}}, "image/jpeg",
                             Chip(person, i));
      r.engines.faces = engine;
      const bool was_closed = closed.load();
      const ApiResponse response =
          Call(node_, "POST", "/v1/gates/{gate}/galleries/{gallery}/match", r);
      EXPECT_TRUE(response.status == 200 || response.status == 404) << response.body;
      if (was_closed && response.status == 200) ++after_close_matches;
    }
  };
  std::thread a(worker, engine_.get(), "John_Salley");
  std::thread b(worker, second_engine.get(), "John_Savage");
  ASSERT_EQ(Close(node_, gallery).status, 200);
  closed = true;
  a.join();
  b.join();
  EXPECT_EQ(after_close_matches.load(), 0);
  EXPECT_TRUE(Records(node_, vault::RecordType::kTemplate).empty());
}

}  // namespace
}  // namespace portcullis::server
