// The lane endpoints, called directly (no HTTP): a real vault (SQLite, a keyring in a temp dir,
// cheapest Argon2), a real PlateReader on the prepared models, synthetic plates whose text is
// known, and a clock the test moves. What the server does before a handler (authentication,
// policy, the decision's audit entry) is tested with the server; here the request arrives as an
// authorised one and the handler must do its job and refuse what only it can see.
#include <stdlib.h>  // mkdtemp
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "portcullis/access_store.h"
#include "portcullis/audit.h"
#include "portcullis/env.h"
#include "portcullis/image.h"
#include "portcullis/plate.h"
#include "portcullis/plate_synth.h"
#include "portcullis/vault.h"
#include "server/api.h"
#include "server/lane_activity.h"
#include "server/lane_records.h"
#include "server/lane_routes.h"
#include "server/metrics.h"

namespace portcullis::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using policy::Principal;
using policy::Role;

constexpr std::int64_t kMinute = 60LL * 1000 * 1000;
constexpr std::int64_t kHour = 60 * kMinute;
constexpr std::int64_t kDay = 24 * kHour;
// 2026-11-27 00:00:00 UTC: a day boundary, so hour and bucket arithmetic is easy to follow.
constexpr std::int64_t kStart = 1795737600LL * 1000 * 1000;

// The real Env with a clock the test moves.
class ClockEnv : public Env {
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
  std::int64_t NowMicros() override { return now; }
  std::int64_t now = kStart;
};

class MemoryAuditSink : public audit::AuditSink {
 public:
  Status Append(const audit::AuditEvent& event) override {
    events.push_back(event);
    return Status::Ok();
  }
  [[nodiscard]] std::size_t Count(const std::string& action) const {
    return static_cast<std::size_t>(std::count_if(
        events.begin(), events.end(), [&](const auto& e) { return e.action == action; }));
  }
  std::vector<audit::AuditEvent> events;
};

// Only tickets are asked of the access store by the lane routes.
class TicketStore final : public policy::AccessStore {
 public:
  Status CreatePrincipal(const policy::NewPrincipal&, std::string*) override { return No(); }
  Status RotateToken(const std::string&, std::int64_t, std::string*) override { return No(); }
  Status RevokePrincipal(const std::string&) override { return No(); }
  Status ListPrincipals(std::vector<policy::PrincipalInfo>*) override { return No(); }
  Status Authenticate(std::string_view, policy::AuthOutcome*, Principal*) override { return No(); }
  Status GrantTicket(const std::string&, const policy::NewTicket&, policy::TicketInfo*) override {
    return No();
  }
  Status UseTicket(const std::string&, const std::string&, const std::string&,
                   policy::TicketOutcome*) override {
    return No();
  }
  Status ListTickets(std::vector<policy::TicketInfo>* out) override {
    *out = tickets;
    return Status::Ok();
  }
  Status RequestExport(const std::string&, const policy::NewExport&, policy::ExportInfo*) override {
    return No();
  }
  Status ApproveExport(const std::string&, const std::string&, std::int64_t,
                       policy::ApproveOutcome*) override {
    return No();
  }
  Status RecordDownload(const std::string&, const std::string&,
                        const std::vector<policy::ExportedFile>&,
                        policy::DownloadOutcome*) override {
    return No();
  }
  Status GetExport(const std::string&, policy::ExportInfo*) override { return No(); }
  Status ListExports(std::vector<policy::ExportInfo>*) override { return No(); }
  Status FindExportedFile(const std::string&, std::vector<std::string>*) override { return No(); }
  Status ClaimJobRun(const std::string&, std::int64_t, const std::string&, bool*) override {
    return No();
  }
  std::vector<policy::TicketInfo> tickets;

 private:
  static Status No() { return Status::Unsupported("not in this fake"); }
};

std::string MakeTempDir() {
  std::string pattern = (fs::temp_directory_path() / "portcullis_lane_test_XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

std::string Encode(const cv::Mat& image, const char* ext) {
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes));
  return {bytes.begin(), bytes.end()};
}

cv::Mat Scene(const std::string& text, std::uint32_t seed, int width = 1280, int height = 720,
              int plate_width = 240) {
  plate::SynthSpec spec;
  spec.text = text;
  spec.style = "us";
  spec.image_width = width;
  spec.image_height = height;
  spec.plate_width = plate_width;
  spec.noise_sigma = 2;
  spec.seed = seed;
  plate::SynthTruth truth;
  return plate::RenderVehicleScene(spec, &truth);
}

Principal Who(std::string name, Role role, std::vector<std::string> scope = {}) {
  Principal p;
  p.name = std::move(name);
  p.role = role;
  p.scope = std::move(scope);
  return p;
}

const Principal kLane7 = Who("lane:7", Role::kLaneDevice, {"7"});
const Principal kOfficer = Who("officer:1234", Role::kOfficer);
const Principal kAdmin = Who("admin:ops", Role::kAdmin);
const Principal kAuditor = Who("auditor:ext", Role::kAuditor);

class LaneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const Status s = plate::PlateReader::Open(plate::PlateReaderOptions{}, &reader_);
    ASSERT_TRUE(s.ok()) << s.ToString() << " (models from scripts/install.sh)";
  }
  static void TearDownTestSuite() { reader_.reset(); }

  void SetUp() override {
    ASSERT_NE(reader_, nullptr);
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    scratch_ = dir_ + "/scratch";
    ASSERT_EQ(::mkdir(scratch_.c_str(), 0700), 0);
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
    const Status s = vault::Vault::Open(options, &vault_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ctx_.env = &env_;
    ctx_.vault = vault_.get();
    ctx_.metrics = &metrics_;
    ctx_.access = &tickets_;
    ctx_.node_name = "n1";
    ctx_.scratch_dir = scratch_;
    ctx_.retention_path = options.retention_path;
    AddRoutes(LaneOptions{});
  }
  void TearDown() override {
    routes_.clear();
    vault_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void AddRoutes(const LaneOptions& options) {
    routes_.clear();
    AddLaneRoutes(ctx_, options, &routes_);
  }

  // Calls the handler of (method, pattern) as the server would after authorising the request.
  ApiResponse Call(const std::string& method, const std::string& pattern, const Principal& who,
                   std::map<std::string, std::string> params = {},
                   std::map<std::string, std::string> query = {}, std::string content_type = "",
                   std::string body = "", std::string purpose = "", std::string ticket = "") {
    for (auto& route : routes_) {
      if (route.method != method || route.pattern != pattern) continue;
      ApiRequest request;
      request.method = method;
      request.path = pattern;
      request.path_params = std::move(params);
      request.query = std::move(query);
      request.content_type = std::move(content_type);
      request.body = std::move(body);
      request.principal = who;
      request.purpose = std::move(purpose);
      request.ticket_id = std::move(ticket);
      if (route.heavy) request.engines.plates = reader_.get();
      return route.handler(request);
    }
    ADD_FAILURE() << "no route " << method << " " << pattern;
    return {};
  }

  ApiResponse PostFrame(const std::string& lane, const std::string& content_type, std::string body,
                        std::map<std::string, std::string> query = {}) {
    return Call("POST", "/v1/lanes/{lane}/reads", kLane7, {{"lane", lane}}, std::move(query),
                content_type, std::move(body));
  }

  ApiResponse GetPlate(const std::string& id, const Principal& who = kOfficer) {
    return Call("GET", "/v1/plates/{id}", who, {{"id", id}}, {}, "", "", "vehicle check");
  }
  ApiResponse GetCrop(const std::string& id, const Principal& who, const std::string& ticket = "",
                      const std::string& lane = "") {
    std::map<std::string, std::string> query;
    if (!lane.empty()) query["lane"] = lane;
    return Call("GET", "/v1/plates/{id}/crop", who, {{"id", id}}, query, "", "",
                who.role == Role::kOfficer ? "vehicle check" : "", ticket);
  }

  static json Body(const ApiResponse& r) {
    EXPECT_EQ(r.content_type, "application/json") << r.body;
    return json::parse(r.body, nullptr, false);
  }
  static std::string ErrorCode(const ApiResponse& r) {
    const json body = json::parse(r.body, nullptr, false);
    if (!body.is_object() || !body.contains("error")) return "<no error: " + r.body + ">";
    return body["error"].value("code", "");
  }

  // Every record of type plate_read, metadata only.
  std::vector<vault::RecordMeta> AllRecords() {
    vault::RecordFilter filter;
    filter.limit = vault::kMaxListLimit;
    vault::RecordPage page;
    EXPECT_TRUE(vault_->List({"test", "auditor", "test"}, filter, &page).ok());
    return page.records;
  }

  // Stores one read (no image involved) as the reads handler would, at the env's current time.
  std::string StoreRead(const std::string& lane, const std::string& text,
                        const std::string& crop = "") {
    LaneRead r;
    r.read.text = text;
    r.read.confidence = 0.9f;
    r.read.region = "us";
    r.read.candidates.push_back({text, 0.9f, "LLLDDDD"});
    r.crop_jpeg = crop;
    json stored;
    const Status s = StoreLaneReads(vault_.get(), {"lane:" + lane, "lane_device", "lane capture"},
                                    lane, env_.now, {r}, &stored);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return stored.empty() ? "" : stored[0].value("id", "");
  }

  static std::unique_ptr<plate::PlateReader> reader_;
  std::string dir_;
  std::string scratch_;
  ClockEnv env_;
  MemoryAuditSink audit_;
  Metrics metrics_;
  TicketStore tickets_;
  std::unique_ptr<vault::Vault> vault_;
  ServiceContext ctx_;
  std::vector<Route> routes_;
};

std::unique_ptr<plate::PlateReader> LaneTest::reader_;

// ---- POST /v1/lanes/{lane}/reads: images --------------------------------------------------------

TEST_F(LaneTest, AFrameIsReadStoredAndReadableBackWithItsCrop) {
  const ApiResponse r = PostFrame("7", "image/jpeg", Encode(Scene("7KDT482", 11), ".jpg"));
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = Body(r);
  EXPECT_EQ(body["lane"], "7");
  EXPECT_EQ(body["stored"], 1);
  ASSERT_EQ(body["reads"].size(), 1u);
  const json& read = body["reads"][0];
  EXPECT_EQ(read["text"], "7KDT482");
  EXPECT_EQ(read["region"], "us");
  EXPECT_GT(read["confidence"].get<double>(), 0.5);
  EXPECT_EQ(read["box"].size(), 4u);
  ASSERT_FALSE(read["candidates"].empty());
  EXPECT_EQ(read["candidates"][0]["text"], "7KDT482");
  EXPECT_EQ(read["crop"], true);
  const std::string id = read["id"];
  EXPECT_TRUE(vault::IsValidRecordId(id));

  // Two records: the read (JSON) and its crop (JPEG); the plate text is in neither's labels.
  const auto records = AllRecords();
  ASSERT_EQ(records.size(), 2u);
  for (const auto& meta : records) {
    EXPECT_EQ(meta.type, vault::RecordType::kPlateRead);
    EXPECT_EQ(meta.subject, vault::SubjectCategory::kVehicle);
    EXPECT_EQ(meta.labels.at("lane"), "7");
    for (const auto& [key, value] : meta.labels)
      EXPECT_EQ(value.find("7KDT482"), std::string::npos);
  }
  // The device's purpose was not stated; the vault was told the route's.
  ASSERT_GE(audit_.Count("vault.put"), 2u);
  for (const auto& e : audit_.events) {
    if (e.action != "vault.put") continue;
    EXPECT_EQ(e.principal, "lane:7");
    EXPECT_EQ(e.role, "lane_device");
    EXPECT_EQ(e.purpose, "lane capture");
  }

  const ApiResponse got = GetPlate(id);
  ASSERT_EQ(got.status, 200) << got.body;
  const json plate = Body(got);
  EXPECT_EQ(plate["id"], id);
  EXPECT_EQ(plate["text"], "7KDT482");
  EXPECT_EQ(plate["lane"], "7");
  EXPECT_EQ(plate["created_micros"], kStart);
  EXPECT_EQ(plate["read_at"], "2026-11-27T00:00:00.000000Z");
  EXPECT_EQ(plate["crop"], true);
  EXPECT_EQ(plate["candidates"][0]["text"], "7KDT482");

  const ApiResponse crop = GetCrop(id, kOfficer);
  ASSERT_EQ(crop.status, 200) << crop.body;
  EXPECT_EQ(crop.content_type, "image/jpeg");
  cv::Mat decoded;
  ASSERT_TRUE(DecodeImage(crop.body, ImageLimits{}, &decoded).ok());
  EXPECT_EQ(SniffImageFormat(crop.body), ImageFormat::kJpeg);
  // A crop, not the frame.
  EXPECT_LT(decoded.cols, 640);
  EXPECT_LT(decoded.rows, 240);
  // Each lookup decrypted exactly what it served: the read for the lookup; read + crop for /crop.
  EXPECT_EQ(audit_.Count("vault.get"), 3u);

  EXPECT_EQ(metrics_.Value("plate_reads_total", {{"lane", "7"}}), 1.0);
  EXPECT_EQ(metrics_.Value("frames_total", {{"lane", "7"}, {"outcome", "read"}}), 1.0);
}

TEST_F(LaneTest, APngFrameIsReadToo) {
  const ApiResponse r = PostFrame("7", "image/png", Encode(Scene("LKR4915", 3), ".png"));
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = Body(r);
  ASSERT_EQ(body["reads"].size(), 1u);
  EXPECT_EQ(body["reads"][0]["text"], "LKR4915");
}

TEST_F(LaneTest, AFrameWithoutAPlateStoresNothing) {
  const cv::Mat blank(480, 640, CV_8UC3, cv::Scalar(90, 90, 90));
  const ApiResponse r = PostFrame("7", "image/jpeg", Encode(blank, ".jpg"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["stored"], 0);
  EXPECT_TRUE(Body(r)["reads"].empty());
  EXPECT_TRUE(AllRecords().empty());
  EXPECT_EQ(metrics_.Value("frames_total", {{"lane", "7"}, {"outcome", "no_plate"}}), 1.0);
}

TEST_F(LaneTest, ARegionNarrowsTheReadsAndAnUnknownOneIsRefused) {
  const std::string jpeg = Encode(Scene("7KDT482", 11), ".jpg");
  const ApiResponse eu = PostFrame("7", "image/jpeg", jpeg, {{"region", "eu"}});
  ASSERT_EQ(eu.status, 200) << eu.body;
  EXPECT_EQ(Body(eu)["stored"], 0);  // a US plate is not an EU read

  const ApiResponse bad = PostFrame("7", "image/jpeg", jpeg, {{"region", "mars"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(ErrorCode(bad), "invalid_argument");
  EXPECT_TRUE(AllRecords().empty());
}

TEST_F(LaneTest, BadFramesGetTheRight4xxAndNothingIsStored) {
  const std::string jpeg = Encode(Scene("7KDT482", 11), ".jpg");

  const ApiResponse empty = PostFrame("7", "image/jpeg", "");
  EXPECT_EQ(empty.status, 400);
  EXPECT_EQ(ErrorCode(empty), "bad_image");

  // A JPEG cut short, and one whose scan data is noise.
  const ApiResponse truncated = PostFrame("7", "image/jpeg", jpeg.substr(0, 300));
  EXPECT_EQ(truncated.status, 400) << truncated.body;
  EXPECT_EQ(ErrorCode(truncated), "bad_image");
  std::string garbled = jpeg;
  for (std::size_t i = 200; i < garbled.size(); i += 3) garbled[i] = static_cast<char>(0xFF);
  const ApiResponse corrupt = PostFrame("7", "image/jpeg", garbled);
  EXPECT_EQ(corrupt.status, 400) << corrupt.body;
  EXPECT_EQ(ErrorCode(corrupt), "bad_image");

  // Not what the content type says.
  const ApiResponse mislabelled = PostFrame("7", "image/png", jpeg);
  EXPECT_EQ(mislabelled.status, 400);
  EXPECT_EQ(ErrorCode(mislabelled), "bad_image");
  const ApiResponse text = PostFrame("7", "text/plain", "ABC1234");
  EXPECT_EQ(text.status, 415);
  EXPECT_EQ(ErrorCode(text), "unsupported_media_type");
  const ApiResponse none = PostFrame("7", "", jpeg);
  EXPECT_EQ(none.status, 415);

  // A PNG header declaring 100000 x 100000 pixels: refused from the header, nothing decoded.
  std::string bomb = Encode(cv::Mat(32, 32, CV_8UC3, cv::Scalar(0, 0, 0)), ".png");
  const unsigned char huge[8] = {0x00, 0x01, 0x86, 0xA0, 0x00, 0x01, 0x86, 0xA0};
  for (int i = 0; i < 8; ++i) bomb[16 + static_cast<std::size_t>(i)] = static_cast<char>(huge[i]);
  const ApiResponse big = PostFrame("7", "image/png", bomb);
  EXPECT_EQ(big.status, 400) << big.body;
  EXPECT_EQ(ErrorCode(big), "bad_image");

  // Too small to hold a plate.
  const ApiResponse tiny = PostFrame("7", "image/png", Encode(cv::Mat(8, 8, CV_8UC3), ".png"));
  EXPECT_EQ(tiny.status, 400);
  EXPECT_EQ(ErrorCode(tiny), "bad_image");

  EXPECT_TRUE(AllRecords().empty());
  EXPECT_EQ(metrics_.Value("frames_total", {{"lane", "7"}, {"outcome", "bad_image"}}), 6.0);
  EXPECT_EQ(metrics_.Value("frames_total", {{"lane", "7"}, {"outcome", "unsupported_media"}}), 2.0);

  // The device's health shows the errors.
  const ApiResponse health = Call("GET", "/v1/devices/health", kAdmin);
  ASSERT_EQ(health.status, 200);
  const json lanes = Body(health)["lanes"];
  ASSERT_EQ(lanes.size(), 1u);
  EXPECT_EQ(lanes[0]["errors"]["bad_image"], 6);
  EXPECT_EQ(lanes[0]["errors"]["unsupported_media"], 2);
  EXPECT_EQ(lanes[0]["frames_total"], 8);
  EXPECT_TRUE(lanes[0]["last_read_micros"].is_null());
}

// ---- POST /v1/lanes/{lane}/reads: clips ---------------------------------------------------------

class LaneClipTest : public LaneTest {
 protected:
  // A lane camera sees each vehicle's plate at about the same place, so passes are told apart by
  // the gap between vehicles; a short gap keeps the clip (and the test) short.
  void SetUp() override {
    LaneTest::SetUp();
    LaneOptions options;
    options.clip.tracker.max_gap_frames = 1;
    AddRoutes(options);
  }

  // Two vehicles, one after the other: 4 frames of each (at stride 2, two analysed frames each)
  // with 4 empty frames between them.
  std::string WriteClip(const std::string& path) {
    cv::VideoWriter writer(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10,
                           cv::Size(640, 360));
    EXPECT_TRUE(writer.isOpened());
    const cv::Mat first = Scene("7KDT482", 11, 640, 360, 170);
    const cv::Mat second = Scene("RXN5521", 29, 640, 360, 170);
    const cv::Mat road(360, 640, CV_8UC3, cv::Scalar(70, 70, 70));
    for (int i = 0; i < 4; ++i) writer.write(first);
    for (int i = 0; i < 4; ++i) writer.write(road);
    for (int i = 0; i < 4; ++i) writer.write(second);
    writer.release();
    std::string bytes;
    EXPECT_TRUE(Env::Default()->ReadFile(path, 64u << 20, &bytes).ok());
    return bytes;
  }
};

TEST_F(LaneClipTest, AClipGivesOneReadPerPassAndLeavesNoFileBehind) {
  const std::string clip = WriteClip(dir_ + "/clip.avi");
  ASSERT_FALSE(clip.empty());
  const ApiResponse r = PostFrame("7", "video/x-msvideo", clip);
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = Body(r);
  ASSERT_EQ(body["reads"].size(), 2u) << r.body;
  std::vector<std::string> texts = {body["reads"][0]["text"], body["reads"][1]["text"]};
  std::sort(texts.begin(), texts.end());
  EXPECT_EQ(texts, (std::vector<std::string>{"7KDT482", "RXN5521"}));
  for (const auto& read : body["reads"]) {
    EXPECT_EQ(read["frames_seen"], 2);
    EXPECT_EQ(read["crop"], true);
    const ApiResponse crop = GetCrop(read["id"], kOfficer);
    ASSERT_EQ(crop.status, 200);
    cv::Mat decoded;
    EXPECT_TRUE(DecodeImage(crop.body, ImageLimits{}, &decoded).ok());
  }
  EXPECT_EQ(AllRecords().size(), 4u);  // two reads, two crops
  EXPECT_TRUE(FilesIn(scratch_).empty());
  EXPECT_EQ(metrics_.Value("plate_reads_total", {{"lane", "7"}}), 2.0);
}

TEST_F(LaneClipTest, ABadClipIsRefusedAndLeavesNoFileBehind) {
  const std::string clip = WriteClip(dir_ + "/clip.avi");
  // Not a container at all; a playlist that would name other files; a real clip cut short.
  for (const std::string& bytes :
       {std::string("this is not a video"),
        std::string("#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n"), clip.substr(0, 200)}) {
    const ApiResponse r = PostFrame("7", "video/mp4", bytes);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(ErrorCode(r), "bad_image");
    EXPECT_TRUE(FilesIn(scratch_).empty());
  }
  const ApiResponse empty = PostFrame("7", "video/mp4", "");
  EXPECT_EQ(empty.status, 400);
  EXPECT_TRUE(AllRecords().empty());
}

TEST_F(LaneClipTest, FramesOverTheLimitAreRefused) {
  LaneOptions options;
  options.clip.max_side = 480;  // the clip is 640 x 360
  AddRoutes(options);
  const ApiResponse r = PostFrame("7", "video/x-msvideo", WriteClip(dir_ + "/clip.avi"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(ErrorCode(r), "bad_image");
  EXPECT_NE(r.body.find("over the limit"), std::string::npos) << r.body;
  EXPECT_TRUE(FilesIn(scratch_).empty());
}

TEST_F(LaneClipTest, AMissingScratchDirectoryIsAServerErrorNotACrash) {
  ctx_.scratch_dir = dir_ + "/no-such-dir";
  AddRoutes(LaneOptions{});
  const ApiResponse r = PostFrame("7", "video/x-msvideo", "RIFF....AVI ");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(ErrorCode(r), "internal");
}

TEST(ScratchFileTest, IsPrivateAndRemovedWithTheObject) {
  const std::string dir = MakeTempDir();
  ASSERT_FALSE(dir.empty());
  std::string path;
  {
    std::unique_ptr<ScratchFile> file;
    ASSERT_TRUE(ScratchFile::Create(dir, "clip bytes", &file).ok());
    path = file->path();
    EXPECT_EQ(path.rfind(dir + "/", 0), 0u);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    std::string bytes;
    ASSERT_TRUE(Env::Default()->ReadFile(path, 100, &bytes).ok());
    EXPECT_EQ(bytes, "clip bytes");
  }
  EXPECT_FALSE(fs::exists(path));
  std::unique_ptr<ScratchFile> file;
  EXPECT_EQ(ScratchFile::Create(dir + "/missing", "x", &file).code(), Status::Code::kIOError);
  EXPECT_EQ(file, nullptr);
  fs::remove_all(dir);
}

// ---- GET /v1/plates/{id}/crop: scope and tickets -----------------------------------------------

TEST_F(LaneTest, AVendorSeesOnlyCropsOfItsTicketedLanes) {
  const std::string crop = Encode(Scene("7KDT482", 11)(cv::Rect(500, 400, 300, 100)), ".jpg");
  const std::string id = StoreRead("7", "7KDT482", crop);
  ASSERT_FALSE(id.empty());
  policy::TicketInfo ticket;
  ticket.id = "0123456789abcdef0123456789abcdef";
  ticket.vendor = "vendor:acme";
  ticket.lane = "7";
  tickets_.tickets = {ticket};

  // The server has checked the ticket for the lane the query names (?lane=); the handler checks
  // the record against it, against the vendor's scope, and the ticket's lane.
  const Principal outside = Who("vendor:acme", Role::kVendor, {"3"});
  const ApiResponse out = GetCrop(id, outside, ticket.id, "7");
  EXPECT_EQ(out.status, 403);
  EXPECT_EQ(ErrorCode(out), "out_of_scope");

  const Principal inside = Who("vendor:acme", Role::kVendor, {"3", "7"});
  const ApiResponse no_ticket = GetCrop(id, inside, "", "7");
  EXPECT_EQ(no_ticket.status, 403);
  EXPECT_EQ(ErrorCode(no_ticket), "ticket_required");
  const ApiResponse no_lane = GetCrop(id, inside, ticket.id);
  EXPECT_EQ(no_lane.status, 403);
  EXPECT_EQ(ErrorCode(no_lane), "ticket_required");

  // A ticket for lane 3 of the contract, used on a lane-7 read: the query says 3 (so the server
  // accepted the ticket), the record says 7.
  tickets_.tickets[0].lane = "3";
  const ApiResponse other_lane = GetCrop(id, inside, ticket.id, "3");
  EXPECT_EQ(other_lane.status, 403);
  EXPECT_EQ(ErrorCode(other_lane), "out_of_scope");
  // Or the query says 7 but the ticket is for 3 (a server that did not check it).
  const ApiResponse wrong_lane = GetCrop(id, inside, ticket.id, "7");
  EXPECT_EQ(wrong_lane.status, 403);
  EXPECT_EQ(ErrorCode(wrong_lane), "ticket_invalid");

  tickets_.tickets[0].lane = "7";
  const ApiResponse ok = GetCrop(id, inside, ticket.id, "7");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body, crop);
  EXPECT_EQ(ok.headers.at("Cache-Control"), "no-store");

  // No access store to check the ticket with: refused, not waved through.
  ctx_.access = nullptr;
  EXPECT_EQ(GetCrop(id, inside, ticket.id, "7").status, 500);
  ctx_.access = &tickets_;

  // An officer naming the wrong lane is refused too.
  EXPECT_EQ(GetCrop(id, kOfficer, "", "9").status, 403);
  EXPECT_EQ(GetCrop(id, kOfficer, "", "7").status, 200);

  // A device of another lane cannot read this lane's records either.
  const ApiResponse device = GetPlate(id, Who("lane:9", Role::kLaneDevice, {"9"}));
  EXPECT_EQ(device.status, 403);
  EXPECT_EQ(ErrorCode(device), "out_of_scope");
}

TEST_F(LaneTest, LookupsOfWhatIsNotAReadAre404) {
  const std::string id = StoreRead("7", "ABC1234");  // no crop kept
  EXPECT_EQ(GetCrop(id, kOfficer).status, 404);
  EXPECT_EQ(GetPlate("00000000000000000000000000000000").status, 404);
  EXPECT_EQ(GetPlate("../etc/passwd").status, 404);
  // The crop record of another read is not a read.
  const std::string with_crop =
      StoreRead("7", "XYZ9876", Encode(cv::Mat(40, 120, CV_8UC3, cv::Scalar(200)), ".jpg"));
  std::string crop_id;
  for (const auto& meta : AllRecords()) {
    if (IsCropRecord(meta)) crop_id = meta.id;
  }
  ASSERT_FALSE(crop_id.empty());
  EXPECT_EQ(GetPlate(crop_id).status, 404);
  EXPECT_EQ(GetCrop(crop_id, kOfficer).status, 404);
  EXPECT_EQ(GetCrop(with_crop, kOfficer).status, 200);
}

// ---- GET /v1/plates
// -------------------------------------------------------------------------------

TEST_F(LaneTest, ListingFiltersByLaneTimeAndTextAndBoundsDecryption) {
  StoreRead("7", "AAA1111");
  env_.now += kMinute;
  StoreRead("9", "BBB2222");
  env_.now += kMinute;
  StoreRead("7", "CCC3333");
  env_.now += kMinute;
  StoreRead("7", "AAA1111");
  const std::size_t gets_before = audit_.Count("vault.get");

  // Without text: metadata only, nothing decrypted.
  const ApiResponse all = Call("GET", "/v1/plates", kOfficer, {}, {{"lane", "7"}}, "", "", "p");
  ASSERT_EQ(all.status, 200) << all.body;
  json body = Body(all);
  EXPECT_EQ(body["plates"].size(), 3u);
  EXPECT_EQ(body["decrypted"], 0);
  EXPECT_TRUE(body["next_cursor"].is_null());
  EXPECT_FALSE(body["plates"][0].contains("text"));
  EXPECT_EQ(audit_.Count("vault.get"), gets_before);

  // Time range: [start + 1 min, start + 3 min) holds the second and third reads.
  body = Body(Call("GET", "/v1/plates", kOfficer, {},
                   {{"from_micros", std::to_string(kStart + kMinute)},
                    {"until_micros", std::to_string(kStart + 3 * kMinute)}},
                   "", "", "p"));
  EXPECT_EQ(body["plates"].size(), 2u);

  // Text (typed with a dash and in lower case): both reads of AAA1111, with their fields.
  body = Body(
      Call("GET", "/v1/plates", kOfficer, {}, {{"text", "aaa-1111"}}, "", "", "vehicle check"));
  ASSERT_EQ(body["plates"].size(), 2u);
  EXPECT_EQ(body["plates"][0]["text"], "AAA1111");
  EXPECT_EQ(body["plates"][0]["lane"], "7");
  EXPECT_EQ(body["decrypted"], 4);
  EXPECT_EQ(audit_.Count("vault.get"), gets_before + 4);

  // A bound of two decryptions per call: the first call stops with a cursor, the next resumes.
  LaneOptions options;
  options.max_text_decrypts = 2;
  AddRoutes(options);
  body = Body(Call("GET", "/v1/plates", kOfficer, {}, {{"text", "AAA1111"}}, "", "", "p"));
  EXPECT_EQ(body["decrypted"], 2);
  ASSERT_EQ(body["plates"].size(), 1u);
  ASSERT_TRUE(body["next_cursor"].is_string());
  body = Body(Call("GET", "/v1/plates", kOfficer, {},
                   {{"text", "AAA1111"}, {"cursor", body["next_cursor"]}}, "", "", "p"));
  EXPECT_EQ(body["decrypted"], 2);
  ASSERT_EQ(body["plates"].size(), 1u);
  EXPECT_EQ(body["plates"][0]["created_micros"], kStart + 3 * kMinute);

  // limit and cursor page through the metadata.
  body = Body(Call("GET", "/v1/plates", kOfficer, {}, {{"limit", "3"}}, "", "", "p"));
  EXPECT_EQ(body["plates"].size(), 3u);
  ASSERT_TRUE(body["next_cursor"].is_string());
  body = Body(Call("GET", "/v1/plates", kOfficer, {},
                   {{"limit", "3"}, {"cursor", body["next_cursor"]}}, "", "", "p"));
  EXPECT_EQ(body["plates"].size(), 1u);
  EXPECT_TRUE(body["next_cursor"].is_null());

  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"limit", "0"},
                                                        {"limit", "100000"},
                                                        {"from_micros", "yesterday"},
                                                        {"text", "A;DROP"},
                                                        {"lane", "../7"},
                                                        {"cursor", "not-a-cursor"}}) {
    const ApiResponse bad = Call("GET", "/v1/plates", kOfficer, {}, {{key, value}}, "", "", "p");
    EXPECT_EQ(bad.status, 400) << key << "=" << value << ": " << bad.body;
    EXPECT_EQ(ErrorCode(bad), "invalid_argument");
  }
}

// ---- GET /v1/stats/lanes ------------------------------------------------------------------------

TEST_F(LaneTest, StatsCountReadsPerLanePerHour) {
  env_.now = kStart + 30 * kMinute;  // hour 00
  StoreRead("7", "AAA1111", "not really a jpeg");
  env_.now = kStart + 90 * kMinute;  // hour 01
  StoreRead("7", "BBB2222");
  StoreRead("9", "CCC3333");
  env_.now = kStart + 119 * kMinute;  // hour 01
  StoreRead("7", "DDD4444");
  env_.now = kStart + 2 * kHour + 10 * kMinute;  // hour 02, now

  const ApiResponse r = Call("GET", "/v1/stats/lanes", kAuditor, {}, {{"hours", "3"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = Body(r);
  EXPECT_EQ(body["hours"], 3);
  EXPECT_EQ(body["from_micros"], kStart);
  EXPECT_EQ(body["hour_starts_micros"], (json{kStart, kStart + kHour, kStart + 2 * kHour}));
  ASSERT_EQ(body["lanes"].size(), 2u);
  EXPECT_EQ(body["lanes"][0]["lane"], "7");
  EXPECT_EQ(body["lanes"][0]["reads_per_hour"], (json{1, 2, 0}));  // the crop is not a read
  EXPECT_EQ(body["lanes"][0]["total"], 3);
  EXPECT_EQ(body["lanes"][1]["lane"], "9");
  EXPECT_EQ(body["lanes"][1]["reads_per_hour"], (json{0, 1, 0}));
  EXPECT_TRUE(body["complete"].get<bool>());
  EXPECT_EQ(audit_.Count("vault.get"), 0u);  // metadata only

  // The last hour alone.
  const json one = Body(Call("GET", "/v1/stats/lanes", kAuditor, {}, {{"hours", "1"}}));
  EXPECT_TRUE(one["lanes"].empty());

  for (const char* bad : {"0", "169", "-1", "two", ""}) {
    const ApiResponse refused = Call("GET", "/v1/stats/lanes", kAuditor, {}, {{"hours", bad}});
    EXPECT_EQ(refused.status, 400) << bad;
    EXPECT_EQ(ErrorCode(refused), "invalid_argument");
  }
}

// ---- GET /v1/devices/health ---------------------------------------------------------------------

TEST(LaneActivityTest, CountsReadsInTheLastHourAndErrorsPerLane) {
  LaneActivity activity(kStart);
  activity.Record("7", FrameOutcome::kRead, 2, kStart);
  activity.Record("7", FrameOutcome::kBadImage, 0, kStart + kMinute);
  activity.Record("9", FrameOutcome::kNoPlate, 0, kStart + kMinute);
  activity.Record("7", FrameOutcome::kRead, 1, kStart + 30 * kMinute);
  auto lanes = activity.Snapshot(kStart + 30 * kMinute);
  ASSERT_EQ(lanes.size(), 2u);
  EXPECT_EQ(lanes[0].lane, "7");
  EXPECT_EQ(lanes[0].reads_last_hour, 3u);
  EXPECT_EQ(lanes[0].frames_total, 3u);
  EXPECT_EQ(lanes[0].last_read_micros, kStart + 30 * kMinute);
  EXPECT_EQ(lanes[0].errors, (std::map<std::string, std::uint64_t>{{"bad_image", 1}}));
  EXPECT_EQ(lanes[1].reads_last_hour, 0u);
  EXPECT_TRUE(lanes[1].errors.empty());
  // An hour after the first read only the later one counts; after two hours, none.
  lanes = activity.Snapshot(kStart + 61 * kMinute);
  EXPECT_EQ(lanes[0].reads_last_hour, 1u);
  lanes = activity.Snapshot(kStart + 2 * kHour);
  EXPECT_EQ(lanes[0].reads_last_hour, 0u);
  EXPECT_EQ(lanes[0].last_read_micros, kStart + 30 * kMinute);
}

TEST_F(LaneTest, DeviceHealthIsScopedForVendors) {
  ASSERT_EQ(PostFrame("7", "image/jpeg", Encode(Scene("7KDT482", 11), ".jpg")).status, 200);
  ASSERT_EQ(PostFrame("9", "text/plain", "x").status, 415);
  env_.now += 5 * kMinute;

  const json all = Body(Call("GET", "/v1/devices/health", kAdmin));
  EXPECT_EQ(all["node"], "n1");
  ASSERT_EQ(all["lanes"].size(), 2u);
  EXPECT_EQ(all["lanes"][0]["lane"], "7");
  EXPECT_EQ(all["lanes"][0]["reads_last_hour"], 1);
  EXPECT_EQ(all["lanes"][0]["last_read_micros"], kStart);
  EXPECT_EQ(all["lanes"][1]["errors"]["unsupported_media"], 1);

  const json vendor =
      Body(Call("GET", "/v1/devices/health", Who("vendor:acme", Role::kVendor, {"9"})));
  ASSERT_EQ(vendor["lanes"].size(), 1u);
  EXPECT_EQ(vendor["lanes"][0]["lane"], "9");
}

// ---- GET /v1/retention, POST /v1/retention/purge ------------------------------------------------

TEST_F(LaneTest, RetentionShowsTheScheduleAndPurgeShredsExpiredBuckets) {
  const std::string first = StoreRead("7", "AAA1111", "crop bytes");
  env_.now = kStart + kDay + kHour;  // the next day's bucket
  const std::string second = StoreRead("7", "BBB2222");

  const ApiResponse r = Call("GET", "/v1/retention", kAuditor);
  ASSERT_EQ(r.status, 200) << r.body;
  json body = Body(r);
  bool plate_class = false;
  for (const auto& cls : body["classes"]) {
    if (cls["name"] != "plate") continue;
    plate_class = true;
    EXPECT_EQ(cls["retention_seconds"], 30 * 24 * 3600);
    EXPECT_EQ(cls["bucket_seconds"], 24 * 3600);
    EXPECT_NE(cls["covers"].dump().find("plate_read"), std::string::npos);
  }
  EXPECT_TRUE(plate_class) << r.body;
  ASSERT_EQ(body["schedule"].size(), 2u) << r.body;
  EXPECT_EQ(body["schedule"][0]["kek"], "kek/plate/20261127");
  EXPECT_EQ(body["schedule"][0]["records"], 2);  // the read and its crop
  EXPECT_EQ(body["schedule"][0]["shred_at_micros"], kStart + kDay + 30 * kDay);
  EXPECT_EQ(body["schedule"][0]["due"], false);
  EXPECT_EQ(body["schedule"][1]["kek"], "kek/plate/20261128");
  EXPECT_EQ(body["schedule"][1]["records"], 1);

  // When the first bucket is due: a dry run says what would go and changes nothing.
  env_.now = kStart + 31 * kDay;
  body = Body(Call("GET", "/v1/retention", kAuditor));
  EXPECT_EQ(body["schedule"][0]["due"], true);
  const ApiResponse dry = Call("POST", "/v1/retention/purge", kAdmin, {}, {{"dry_run", "true"}});
  ASSERT_EQ(dry.status, 200) << dry.body;
  body = Body(dry);
  EXPECT_EQ(body["dry_run"], true);
  EXPECT_EQ(body["keks"], (json{"kek/plate/20261127"}));
  EXPECT_EQ(body["records_deleted"], 2);
  EXPECT_EQ(AllRecords().size(), 3u);
  EXPECT_EQ(GetPlate(first).status, 200);

  // The real purge: the first day's reads are gone, the second day's stay.
  const ApiResponse purge = Call("POST", "/v1/retention/purge", kAdmin);
  ASSERT_EQ(purge.status, 200) << purge.body;
  body = Body(purge);
  EXPECT_EQ(body["dry_run"], false);
  EXPECT_EQ(body["keks"], (json{"kek/plate/20261127"}));
  EXPECT_EQ(body["records_deleted"], 2);
  EXPECT_EQ(AllRecords().size(), 1u);
  EXPECT_EQ(GetPlate(first).status, 404);
  EXPECT_EQ(GetPlate(second).status, 200);
  body = Body(Call("GET", "/v1/retention", kAuditor));
  ASSERT_EQ(body["schedule"].size(), 1u);
  EXPECT_EQ(body["schedule"][0]["kek"], "kek/plate/20261128");
  EXPECT_EQ(metrics_.Value("retention_keks_destroyed_total"), 1.0);

  const ApiResponse bad = Call("POST", "/v1/retention/purge", kAdmin, {}, {{"dry_run", "maybe"}});
  EXPECT_EQ(bad.status, 400);
}

TEST_F(LaneTest, UnreadableRetentionRulesAreAServerError) {
  ctx_.retention_path = dir_ + "/missing.json";
  AddRoutes(LaneOptions{});
  const ApiResponse r = Call("GET", "/v1/retention", kAuditor);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(ErrorCode(r), "internal");
}

TEST_F(LaneTest, TheRoutesAreTheContract) {
  std::vector<std::string> table;
  for (const auto& route : routes_) {
    table.push_back(route.method + " " + route.pattern + " " + route.action + " " + route.category +
                    " " + route.lane_param + (route.heavy ? " heavy" : ""));
  }
  EXPECT_EQ(table, (std::vector<std::string>{
                       "POST /v1/lanes/{lane}/reads plate.read plate_read lane heavy",
                       "GET /v1/plates plate.lookup plate_read lane",
                       "GET /v1/plates/{id} plate.lookup plate_read lane",
                       "GET /v1/plates/{id}/crop plate.crop plate_crop lane",
                       "GET /v1/stats/lanes stats.read aggregate_stats ",
                       "GET /v1/devices/health device.health device_health ",
                       "GET /v1/retention retention.read retention ",
                       "POST /v1/retention/purge retention.purge retention ",
                   }));
}

}  // namespace
}  // namespace portcullis::server
