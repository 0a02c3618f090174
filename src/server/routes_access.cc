// Principals, tickets and exports (docs/api.md, "Principals, tickets, exports"): handlers over the
// access store and the vault. The server has authenticated the caller and asked the policy before
// a handler runs; what is left here are the rules that depend on the data: a vendor sees only its
// own tickets, an export's lane must be in the requester's scope, an export is approved by someone
// else (the store refuses self-approval) and downloaded once, by its requester, in its window.
//
// An export download hands out every matching record, images watermarked with the export's id and
// the requester, and records the SHA-256 of every file it hands out (breach scoping: a leaked file
// names its export). The files are built first and handed out only when the store has recorded the
// download, so a download that lost a race (or a replay) gets nothing.
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "portcullis/access_store.h"
#include "portcullis/env.h"
#include "portcullis/image.h"
#include "portcullis/policy.h"
#include "portcullis/vault.h"
#include "portcullis/vault_record.h"
#include "server/api.h"
#include "server/metrics.h"

namespace portcullis::server {
namespace {

using nlohmann::json;
using policy::AccessStore;

constexpr std::int64_t kSecond = 1000000;
constexpr std::int64_t kDefaultExportWindow = 3600 * kSecond;
// An export is built in memory before it is handed out; past these it must be narrowed.
constexpr std::size_t kMaxExportFiles = 10000;
constexpr std::size_t kMaxExportBytes = 256u << 20;

// ---- Small helpers ----------------------------------------------------------------------------

ApiResponse Internal(const Status& status) {
  return ApiResponse::Error(500, "internal", status.ToString());
}

// A store/vault Status that is not OK, as the API's error.
ApiResponse FromStatus(const Status& status) {
  switch (status.code()) {
    case Status::Code::kInvalidArgument:
      return ApiResponse::Error(400, "invalid_argument", status.message());
    case Status::Code::kNotFound:
      return ApiResponse::Error(404, "not_found", status.message());
    default:
      return Internal(status);
  }
}

// A JSON object body, or an empty one when `optional` and nothing was sent.
std::optional<ApiResponse> ParseBody(const ApiRequest& request, bool optional, json* body) {
  if (request.body.empty() && optional) {
    *body = json::object();
    return std::nullopt;
  }
  if (request.content_type != "application/json") {
    return ApiResponse::Error(415, "unsupported_media_type", "send application/json");
  }
  try {
    *body = json::parse(request.body);
  } catch (const json::exception&) {
    return ApiResponse::Error(400, "malformed_json", "the body is not valid JSON");
  }
  if (!body->is_object()) {
    return ApiResponse::Error(400, "malformed_json", "the body must be a JSON object");
  }
  return std::nullopt;
}

// Field readers: InvalidArgument naming the field when present with the wrong type.
Status GetString(const json& body, const char* field, bool required, std::string* out) {
  auto it = body.find(field);
  if (it == body.end()) {
    return required ? Status::InvalidArgument(std::string("missing \"") + field + "\"")
                    : Status::Ok();
  }
  if (!it->is_string())
    return Status::InvalidArgument(std::string("\"") + field + "\" must be a string");
  *out = it->get<std::string>();
  return Status::Ok();
}

Status GetInt(const json& body, const char* field, bool required, std::int64_t* out) {
  auto it = body.find(field);
  if (it == body.end()) {
    return required ? Status::InvalidArgument(std::string("missing \"") + field + "\"")
                    : Status::Ok();
  }
  if (!it->is_number_integer()) {
    return Status::InvalidArgument(std::string("\"") + field + "\" must be an integer");
  }
  *out = it->get<std::int64_t>();
  return Status::Ok();
}

Status GetStringList(const json& body, const char* field, bool required,
                     std::vector<std::string>* out) {
  auto it = body.find(field);
  if (it == body.end()) {
    return required ? Status::InvalidArgument(std::string("missing \"") + field + "\"")
                    : Status::Ok();
  }
  if (!it->is_array() ||
      !std::all_of(it->begin(), it->end(), [](const json& v) { return v.is_string(); })) {
    return Status::InvalidArgument(std::string("\"") + field + "\" must be a list of strings");
  }
  *out = it->get<std::vector<std::string>>();
  return Status::Ok();
}

// Whole seconds from the API become the store's microseconds, refusing what would overflow.
Status SecondsToMicros(std::int64_t seconds, const char* field, std::int64_t* micros) {
  constexpr std::int64_t kMaxSeconds = 10LL * 365 * 24 * 3600;  // ten years
  if (seconds < 0 || seconds > kMaxSeconds) {
    return Status::InvalidArgument(std::string("\"") + field + "\" out of range");
  }
  *micros = seconds * kSecond;
  return Status::Ok();
}

std::string HexOf(const unsigned char* data, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * size);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0x0f]);
  }
  return out;
}

std::string Sha256Hex(const std::string& data) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return HexOf(digest.data(), digest.size());
}

std::string Base64(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// ---- JSON shapes (docs/api.md) -----------------------------------------------------------------

json PrincipalJson(const policy::PrincipalInfo& info) {
  return {{"name", info.principal.name},
          {"role", policy::RoleName(info.principal.role)},
          {"scope", info.principal.scope},
          {"token_prefix", info.token_prefix},
          {"created_micros", info.created_micros},
          {"expires_micros", info.expires_micros},
          {"revoked", info.revoked}};
}

json TicketJson(const policy::TicketInfo& t, std::int64_t now) {
  return {{"id", t.id},
          {"vendor", t.vendor},
          {"lane", t.lane},
          {"granted_by", t.granted_by},
          {"reason", t.reason},
          {"max_uses", t.max_uses},
          {"used", t.used},
          {"created_micros", t.created_micros},
          {"expires_micros", t.expires_micros},
          {"live", now < t.expires_micros && t.used < t.max_uses}};
}

json ExportJson(const policy::ExportInfo& e) {
  return {{"id", e.id},
          {"state", policy::ExportStateName(e.state)},
          {"requested_by", e.requested_by},
          {"approved_by", e.approved_by},
          {"lane", e.request.lane},
          {"record_types", e.request.record_types},
          {"from_micros", e.request.from_micros},
          {"until_micros", e.request.until_micros},
          {"reason", e.request.reason},
          {"created_micros", e.created_micros},
          {"approved_micros", e.approved_micros},
          {"window_ends_micros", e.window_ends_micros}};
}

// ---- Principals ------------------------------------------------------------------------------

Status FindPrincipal(AccessStore* store, const std::string& name, bool* found, bool* revoked) {
  std::vector<policy::PrincipalInfo> all;
  PORTCULLIS_RETURN_IF_ERROR(store->ListPrincipals(&all));
  auto it = std::find_if(all.begin(), all.end(),
                         [&](const policy::PrincipalInfo& p) { return p.principal.name == name; });
  *found = it != all.end();
  *revoked = *found && it->revoked;
  return Status::Ok();
}

ApiResponse CreatePrincipal(ServiceContext& ctx, ApiRequest& request) {
  json body;
  if (auto error = ParseBody(request, false, &body)) return *error;
  policy::NewPrincipal p;
  std::string role;
  std::int64_t ttl_seconds = 0;
  Status s = GetString(body, "name", true, &p.name);
  if (s.ok()) s = GetString(body, "role", true, &role);
  if (s.ok()) s = policy::ParseRole(role, &p.role);
  if (s.ok()) s = GetStringList(body, "scope", false, &p.scope);
  if (s.ok()) s = GetInt(body, "token_ttl_seconds", false, &ttl_seconds);
  if (s.ok()) s = SecondsToMicros(ttl_seconds, "token_ttl_seconds", &p.token_ttl_micros);
  if (!s.ok()) return ApiResponse::Error(400, "invalid_argument", s.message());
  bool found = false;
  bool revoked = false;
  s = FindPrincipal(ctx.access, p.name, &found, &revoked);
  if (!s.ok()) return Internal(s);
  if (found) return ApiResponse::Error(409, "conflict", "principal '" + p.name + "' exists");
  std::string token;
  s = ctx.access->CreatePrincipal(p, &token);
  if (!s.ok()) return FromStatus(s);
  if (ctx.metrics != nullptr) {
    ctx.metrics->Increment("principals_created_total", "Principals created through the API",
                           {{"role", std::string(policy::RoleName(p.role))}});
  }
  // The token is shown this once; the store keeps only its hash.
  return ApiResponse::Json(
      201,
      {{"name", p.name},
       {"role", policy::RoleName(p.role)},
       {"scope", p.scope},
       {"token", token},
       {"token_prefix", token.substr(0, 12)},
       {"expires_micros", p.token_ttl_micros > 0 ? ctx.env->NowMicros() + p.token_ttl_micros : 0}});
}

ApiResponse ListPrincipals(ServiceContext& ctx, ApiRequest& /*request*/) {
  std::vector<policy::PrincipalInfo> all;
  const Status s = ctx.access->ListPrincipals(&all);
  if (!s.ok()) return Internal(s);
  json list = json::array();
  for (const policy::PrincipalInfo& p : all) list.push_back(PrincipalJson(p));
  return ApiResponse::Json(200, {{"principals", list}});
}

ApiResponse RotateToken(ServiceContext& ctx, ApiRequest& request) {
  json body;
  if (auto error = ParseBody(request, true, &body)) return *error;
  const std::string& name = request.path_params["name"];
  std::int64_t ttl_seconds = 0;
  std::int64_t ttl = 0;
  Status s = GetInt(body, "token_ttl_seconds", false, &ttl_seconds);
  if (s.ok()) s = SecondsToMicros(ttl_seconds, "token_ttl_seconds", &ttl);
  if (!s.ok()) return ApiResponse::Error(400, "invalid_argument", s.message());
  bool found = false;
  bool revoked = false;
  s = FindPrincipal(ctx.access, name, &found, &revoked);
  if (!s.ok()) return Internal(s);
  if (!found) return ApiResponse::Error(404, "not_found", "no principal '" + name + "'");
  if (revoked) {
    return ApiResponse::Error(409, "conflict",
                              "principal '" + name + "' is revoked; create a new principal");
  }
  std::string token;
  s = ctx.access->RotateToken(name, ttl, &token);
  if (!s.ok()) return FromStatus(s);
  return ApiResponse::Json(200, {{"name", name},
                                 {"token", token},
                                 {"token_prefix", token.substr(0, 12)},
                                 {"expires_micros", ttl > 0 ? ctx.env->NowMicros() + ttl : 0}});
}

ApiResponse RevokePrincipal(ServiceContext& ctx, ApiRequest& request) {
  const std::string& name = request.path_params["name"];
  const Status s = ctx.access->RevokePrincipal(name);
  if (!s.ok()) return FromStatus(s);
  return ApiResponse::Json(200, {{"name", name}, {"revoked", true}});
}

// ---- Tickets ---------------------------------------------------------------------------------

ApiResponse GrantTicket(ServiceContext& ctx, ApiRequest& request) {
  json body;
  if (auto error = ParseBody(request, false, &body)) return *error;
  policy::NewTicket t;
  std::int64_t max_uses = 0;
  std::int64_t ttl_seconds = 0;
  Status s = GetString(body, "vendor", true, &t.vendor);
  if (s.ok()) s = GetString(body, "lane", true, &t.lane);
  if (s.ok()) s = GetInt(body, "max_uses", true, &max_uses);
  if (s.ok()) s = GetInt(body, "ttl_seconds", true, &ttl_seconds);
  if (s.ok()) s = GetString(body, "reason", true, &t.reason);
  if (s.ok() && (max_uses < 1 || max_uses > 1000)) {
    s = Status::InvalidArgument("\"max_uses\" must be 1..1000");
  }
  if (s.ok()) s = SecondsToMicros(ttl_seconds, "ttl_seconds", &t.ttl_micros);
  if (!s.ok()) return ApiResponse::Error(400, "invalid_argument", s.message());
  t.max_uses = static_cast<std::uint32_t>(max_uses);
  policy::TicketInfo info;
  s = ctx.access->GrantTicket(request.principal.name, t, &info);
  if (!s.ok()) return FromStatus(s);
  if (ctx.metrics != nullptr) {
    ctx.metrics->Increment("tickets_granted_total", "Vendor tickets granted", {{"lane", t.lane}});
  }
  return ApiResponse::Json(201, TicketJson(info, ctx.env->NowMicros()));
}

ApiResponse ListTickets(ServiceContext& ctx, ApiRequest& request) {
  std::vector<policy::TicketInfo> all;
  const Status s = ctx.access->ListTickets(&all);
  if (!s.ok()) return Internal(s);
  const std::int64_t now = ctx.env->NowMicros();
  const bool vendor = request.principal.role == policy::Role::kVendor;
  json list = json::array();
  for (const policy::TicketInfo& t : all) {
    // A vendor sees its own tickets, never another vendor's.
    if (vendor && t.vendor != request.principal.name) continue;
    list.push_back(TicketJson(t, now));
  }
  return ApiResponse::Json(200, {{"tickets", list}});
}

// ---- Exports ---------------------------------------------------------------------------------

ApiResponse RequestExport(ServiceContext& ctx, ApiRequest& request) {
  json body;
  if (auto error = ParseBody(request, false, &body)) return *error;
  policy::NewExport e;
  Status s = GetString(body, "lane", false, &e.lane);
  if (s.ok()) s = GetStringList(body, "record_types", true, &e.record_types);
  if (s.ok()) s = GetInt(body, "from_micros", true, &e.from_micros);
  if (s.ok()) s = GetInt(body, "until_micros", true, &e.until_micros);
  if (s.ok()) s = GetString(body, "reason", true, &e.reason);
  if (!s.ok()) return ApiResponse::Error(400, "invalid_argument", s.message());
  if (!e.lane.empty() && !request.principal.InScope(e.lane)) {
    return ApiResponse::Error(403, "out_of_scope", "lane '" + e.lane + "' is outside your scope");
  }
  policy::ExportInfo info;
  s = ctx.access->RequestExport(request.principal.name, e, &info);
  if (!s.ok()) return FromStatus(s);
  return ApiResponse::Json(201, ExportJson(info));
}

ApiResponse ListExports(ServiceContext& ctx, ApiRequest& request) {
  std::optional<std::string> state;
  if (auto it = request.query.find("state"); it != request.query.end()) {
    static const std::array<std::string_view, 5> kStates = {"pending", "approved", "downloaded",
                                                            "expired", "rejected"};
    if (std::find(kStates.begin(), kStates.end(), it->second) == kStates.end()) {
      return ApiResponse::Error(400, "invalid_argument",
                                "state must be pending, approved, downloaded, expired or rejected");
    }
    state = it->second;
  }
  std::vector<policy::ExportInfo> all;
  const Status s = ctx.access->ListExports(&all);
  if (!s.ok()) return Internal(s);
  json list = json::array();
  for (const policy::ExportInfo& e : all) {
    if (state && policy::ExportStateName(e.state) != *state) continue;
    list.push_back(ExportJson(e));
  }
  return ApiResponse::Json(200, {{"exports", list}});
}

ApiResponse ApproveExport(ServiceContext& ctx, ApiRequest& request) {
  json body;
  if (auto error = ParseBody(request, true, &body)) return *error;
  std::int64_t window_seconds = kDefaultExportWindow / kSecond;
  std::int64_t window = 0;
  Status s = GetInt(body, "window_seconds", false, &window_seconds);
  if (s.ok()) s = SecondsToMicros(window_seconds, "window_seconds", &window);
  if (!s.ok()) return ApiResponse::Error(400, "invalid_argument", s.message());
  const std::string& id = request.path_params["id"];
  policy::ApproveOutcome outcome = policy::ApproveOutcome::kUnknown;
  s = ctx.access->ApproveExport(id, request.principal.name, window, &outcome);
  if (!s.ok()) return FromStatus(s);
  switch (outcome) {
    case policy::ApproveOutcome::kOk:
      break;
    case policy::ApproveOutcome::kUnknown:
      return ApiResponse::Error(404, "not_found", "no export " + id);
    case policy::ApproveOutcome::kSelfApproval:
      return ApiResponse::Error(403, "self_approval",
                                "an export is approved by a different supervisor");
    case policy::ApproveOutcome::kNotPending:
      return ApiResponse::Error(409, "conflict", "export " + id + " is not pending");
    case policy::ApproveOutcome::kExpired:
      return ApiResponse::Error(410, "expired", "export request " + id + " has expired");
  }
  policy::ExportInfo info;
  s = ctx.access->GetExport(id, &info);
  if (!s.ok()) return FromStatus(s);
  return ApiResponse::Json(200, ExportJson(info));
}

// The refusal for a download that cannot proceed, or nullopt.
std::optional<ApiResponse> DownloadRefusal(policy::DownloadOutcome outcome, const std::string& id) {
  switch (outcome) {
    case policy::DownloadOutcome::kOk:
      return std::nullopt;
    case policy::DownloadOutcome::kUnknown:
      return ApiResponse::Error(404, "not_found", "no export " + id);
    case policy::DownloadOutcome::kNotRequester:
      return ApiResponse::Error(403, "forbidden", "only the requester downloads an export");
    case policy::DownloadOutcome::kNotApproved:
      return ApiResponse::Error(409, "conflict", "export " + id + " is not approved");
    case policy::DownloadOutcome::kAlreadyDownloaded:
      return ApiResponse::Error(409, "conflict", "export " + id + " was already downloaded");
    case policy::DownloadOutcome::kExpired:
      return ApiResponse::Error(410, "expired", "export " + id + " has expired");
  }
  return ApiResponse::Error(500, "internal", "unexpected download outcome");
}

// What a download would get before anything is built (the store decides again, atomically).
policy::DownloadOutcome Precheck(const policy::ExportInfo& e, const std::string& caller) {
  if (e.requested_by != caller) return policy::DownloadOutcome::kNotRequester;
  switch (e.state) {
    case policy::ExportState::kApproved:
      return policy::DownloadOutcome::kOk;
    case policy::ExportState::kDownloaded:
      return policy::DownloadOutcome::kAlreadyDownloaded;
    case policy::ExportState::kExpired:
      return policy::DownloadOutcome::kExpired;
    default:
      return policy::DownloadOutcome::kNotApproved;
  }
}

// Draws "EXPORT <id> <requester>" on an image, in a band added under it so that the picture
// itself stays intact and the text stays readable however small the image (a plate crop); the
// result is re-encoded in the original format. Non-images are returned unchanged.
Status Watermark(const std::string& content_type, const std::string& text, std::string* body) {
  const bool jpeg = content_type == "image/jpeg";
  const bool png = content_type == "image/png";
  if (!jpeg && !png) return Status::Ok();
  cv::Mat image;
  ImageLimits limits;
  limits.min_side = 1;
  PORTCULLIS_RETURN_IF_ERROR(DecodeImage(*body, limits, &image));
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  const double scale = 0.5;
  const int thickness = 1;
  int baseline = 0;
  const cv::Size size = cv::getTextSize(text, font, scale, thickness, &baseline);
  const int band = size.height + baseline + 8;
  const int width = std::max(image.cols, size.width + 8);
  cv::Mat out(image.rows + band, width, CV_8UC3, cv::Scalar(255, 255, 255));
  image.copyTo(out(cv::Rect(0, 0, image.cols, image.rows)));
  cv::putText(out, text, cv::Point(4, image.rows + 4 + size.height), font, scale,
              cv::Scalar(0, 0, 0), thickness, cv::LINE_AA);
  // And once across the picture itself, so that cutting the band off leaves a mark.
  cv::putText(out, text, cv::Point(2, std::max(size.height + 2, image.rows / 2)), font, scale,
              cv::Scalar(0, 0, 255), thickness, cv::LINE_AA);
  std::vector<unsigned char> encoded;
  if (!cv::imencode(jpeg ? ".jpg" : ".png", out, encoded)) {
    return Status::Internal("cannot re-encode a watermarked image");
  }
  body->assign(encoded.begin(), encoded.end());
  return Status::Ok();
}

struct ExportFile {
  vault::RecordMeta meta;
  std::string body;
  std::string sha256;
};

// Every record the export covers: its types, created in [from, until), on its lane (or, for an
// export of "all lanes", on a lane in the requester's scope).
Status CollectRecords(ServiceContext& ctx, const vault::AccessContext& actx,
                      const policy::ExportInfo& e, const policy::Principal& requester,
                      std::vector<vault::RecordMeta>* records) {
  for (const std::string& type_name : e.request.record_types) {
    vault::RecordFilter filter;
    vault::RecordType type = vault::RecordType::kPlateRead;
    PORTCULLIS_RETURN_IF_ERROR(vault::ParseRecordType(type_name, &type));
    filter.type = type;
    filter.created_from = e.request.from_micros;
    filter.created_until = e.request.until_micros;
    filter.limit = 1000;
    for (;;) {
      vault::RecordPage page;
      PORTCULLIS_RETURN_IF_ERROR(ctx.vault->List(actx, filter, &page));
      for (vault::RecordMeta& meta : page.records) {
        auto lane = meta.labels.find("lane");
        const std::string record_lane = lane == meta.labels.end() ? "" : lane->second;
        const bool wanted =
            e.request.lane.empty() ? requester.InScope(record_lane) : record_lane == e.request.lane;
        if (!wanted) continue;
        if (records->size() >= kMaxExportFiles) {
          return Status::ResourceExhausted(
              "the export covers more than 10000 records; request a "
              "narrower one");
        }
        records->push_back(std::move(meta));
      }
      if (page.next_cursor.empty()) break;
      filter.cursor = page.next_cursor;
    }
  }
  return Status::Ok();
}

ApiResponse DownloadExport(ServiceContext& ctx, ApiRequest& request) {
  const std::string& id = request.path_params["id"];
  policy::ExportInfo e;
  Status s = ctx.access->GetExport(id, &e);
  if (s.code() == Status::Code::kNotFound) return ApiResponse::Error(404, "not_found", s.message());
  if (!s.ok()) return Internal(s);
  if (auto refusal = DownloadRefusal(Precheck(e, request.principal.name), id)) return *refusal;

  vault::AccessContext actx;
  actx.principal = request.principal.name;
  actx.role = std::string(policy::RoleName(request.principal.role));
  actx.purpose =
      request.purpose.empty() ? "export " + id + ": " + e.request.reason : request.purpose;
  std::vector<vault::RecordMeta> records;
  s = CollectRecords(ctx, actx, e, request.principal, &records);
  if (s.code() == Status::Code::kResourceExhausted) {
    return ApiResponse::Error(400, "invalid_argument", s.message());
  }
  if (!s.ok()) return Internal(s);

  const std::string mark = "EXPORT " + id + " " + e.requested_by;
  std::vector<ExportFile> files;
  std::size_t total = 0;
  for (const vault::RecordMeta& listed : records) {
    ExportFile file;
    s = ctx.vault->Get(actx, listed.id, &file.meta, &file.body);
    // Shredded between the listing and now: it is gone for everyone, the export included.
    if (s.code() == Status::Code::kNotFound) continue;
    if (!s.ok()) return Internal(s.WithContext("record " + listed.id));
    s = Watermark(file.meta.content_type, mark, &file.body);
    if (!s.ok()) return Internal(s.WithContext("watermark record " + listed.id));
    file.sha256 = Sha256Hex(file.body);
    total += file.body.size();
    if (total > kMaxExportBytes) {
      return ApiResponse::Error(400, "invalid_argument",
                                "the export is larger than 256 MiB; request a narrower one");
    }
    files.push_back(std::move(file));
  }

  std::vector<policy::ExportedFile> fingerprints;
  fingerprints.reserve(files.size());
  for (const ExportFile& f : files) fingerprints.push_back({f.meta.id, f.sha256});
  policy::DownloadOutcome outcome = policy::DownloadOutcome::kUnknown;
  s = ctx.access->RecordDownload(id, request.principal.name, fingerprints, &outcome);
  if (!s.ok()) return Internal(s);
  if (auto refusal = DownloadRefusal(outcome, id)) return *refusal;

  std::string out;
  for (const ExportFile& f : files) {
    out += json{{"record_id", f.meta.id},
                {"type", vault::RecordTypeName(f.meta.type)},
                {"content_type", f.meta.content_type},
                {"sha256", f.sha256},
                {"data_base64", Base64(f.body)}}
               .dump();
    out += '\n';
  }
  if (ctx.metrics != nullptr) {
    ctx.metrics->Increment("exports_downloaded_total", "Two-person exports downloaded");
    ctx.metrics->Increment("export_files_total", "Files handed out by exports", {},
                           static_cast<double>(files.size()));
  }
  ApiResponse response = ApiResponse::Bytes(200, "application/x-ndjson", std::move(out));
  response.headers["Content-Disposition"] = "attachment; filename=\"export-" + id + ".ndjson\"";
  return response;
}

ApiResponse FindFingerprint(ServiceContext& ctx, ApiRequest& request) {
  const std::string& sha = request.path_params["sha256"];
  std::vector<std::string> ids;
  Status s = ctx.access->FindExportedFile(sha, &ids);
  if (!s.ok()) return FromStatus(s);
  json list = json::array();
  for (const std::string& export_id : ids) {
    policy::ExportInfo info;
    s = ctx.access->GetExport(export_id, &info);
    if (!s.ok()) return Internal(s);
    list.push_back(ExportJson(info));
  }
  return ApiResponse::Json(200, {{"sha256", sha}, {"exports", list}});
}

Route MakeRoute(ServiceContext& ctx, std::string method, std::string pattern, std::string action,
                std::string category, ApiResponse (*handler)(ServiceContext&, ApiRequest&)) {
  Route route;
  route.method = std::move(method);
  route.pattern = std::move(pattern);
  route.action = std::move(action);
  route.category = std::move(category);
  ServiceContext* context = &ctx;
  route.handler = [context, handler](ApiRequest& request) { return handler(*context, request); };
  return route;
}

}  // namespace

void AddAccessRoutes(ServiceContext& ctx, std::vector<Route>* routes) {
  routes->push_back(
      MakeRoute(ctx, "POST", "/v1/principals", "principal.manage", "principal", CreatePrincipal));
  routes->push_back(
      MakeRoute(ctx, "GET", "/v1/principals", "principal.read", "principal", ListPrincipals));
  routes->push_back(MakeRoute(ctx, "POST", "/v1/principals/{name}/token", "principal.manage",
                              "principal", RotateToken));
  routes->push_back(MakeRoute(ctx, "DELETE", "/v1/principals/{name}", "principal.manage",
                              "principal", RevokePrincipal));
  routes->push_back(MakeRoute(ctx, "POST", "/v1/tickets", "ticket.grant", "ticket", GrantTicket));
  routes->push_back(MakeRoute(ctx, "GET", "/v1/tickets", "ticket.read", "ticket", ListTickets));
  routes->push_back(
      MakeRoute(ctx, "POST", "/v1/exports", "export.request", "export", RequestExport));
  routes->push_back(MakeRoute(ctx, "GET", "/v1/exports", "export.read", "export", ListExports));
  routes->push_back(MakeRoute(ctx, "POST", "/v1/exports/{id}/approve", "export.approve", "export",
                              ApproveExport));
  // Decrypting and watermarking up to 10000 files is long work: it runs on the worker pool, not on
  // the connection threads.
  Route download = MakeRoute(ctx, "GET", "/v1/exports/{id}/download", "export.download", "export",
                             DownloadExport);
  download.heavy = true;
  routes->push_back(std::move(download));
  routes->push_back(MakeRoute(ctx, "GET", "/v1/exports/fingerprints/{sha256}", "export.read",
                              "export", FindFingerprint));
}

}  // namespace portcullis::server
