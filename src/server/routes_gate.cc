// Gates and travellers (docs/api.md, docs/service-gates.md): the HTTP face of GateGalleries.
// Handlers validate the request (JSON shape, limits, media types), turn it into a call and the
// result into the documented JSON; the capture bytes are wiped before the handler returns.
#include <sodium.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "portcullis/face.h"
#include "portcullis/image.h"
#include "server/api.h"
#include "server/gate_galleries.h"
#include "server/metrics.h"

namespace portcullis::server {
namespace {

using nlohmann::json;

// Manifests nest three levels ({"travellers": [{...}]}); anything much deeper is hostile.
constexpr int kMaxJsonDepth = 8;
constexpr int kMaxStatsHours = 24 * 30;

bool IsName(const std::string& s) {
  if (s.empty() || s.size() > 64 || s == "." || s == "..") return false;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// The nesting depth of a JSON text, without parsing it (so a 100 000-deep "[[[[..." costs a scan,
// not a recursion).
bool DepthWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

std::string Dotted(const std::string& parent, const std::string& child) {
  std::string out = parent;
  out += '.';
  out += child;
  return out;
}

ApiResponse InvalidField(const std::string& field, const std::string& why) {
  ApiResponse r = ApiResponse::Error(400, "invalid_argument", field + ": " + why);
  json body = json::parse(r.body);
  body["error"]["field"] = field;
  return ApiResponse::Json(400, body);
}

ApiResponse FromStatus(const Status& s) {
  switch (s.code()) {
    case Status::Code::kNotFound:
      return ApiResponse::Error(404, "not_found", s.message());
    case Status::Code::kInvalidArgument:
      return ApiResponse::Error(400, "invalid_argument", s.message());
    case Status::Code::kResourceExhausted:
      return ApiResponse::Error(413, "body_too_large", s.message());
    default:
      // Internals (store, keys) are not the client's business; the server logs request ids.
      return ApiResponse::Error(
          500, "internal",
          "the gallery service failed: " + std::string(Status::CodeName(s.code())));
  }
}

vault::AccessContext ContextOf(const ApiRequest& request, const std::string& default_purpose) {
  vault::AccessContext ctx;
  ctx.principal = request.principal.name;
  ctx.role = std::string(policy::RoleName(request.principal.role));
  // The vault wants a purpose on every access. Devices state none: the route's own is recorded.
  ctx.purpose = request.purpose.empty() ? default_purpose : request.purpose;
  return ctx;
}

std::string Param(const ApiRequest& request, const std::string& name) {
  auto it = request.path_params.find(name);
  return it == request.path_params.end() ? std::string() : it->second;
}

std::optional<ApiResponse> CheckNames(const ApiRequest& request,
                                      std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (!IsName(Param(request, name))) {
      return ApiResponse::Error(400, "invalid_path", std::string(name) + ": not a valid name");
    }
  }
  return std::nullopt;
}

// Base64 (standard alphabet, padding optional, whitespace ignored) with a decoded-size limit.
bool DecodeBase64(const std::string& text, std::size_t max_bytes, std::string* out,
                  bool* too_large) {
  *too_large = text.size() / 4 * 3 > max_bytes + 3;
  if (*too_large) return false;
  out->assign(text.size() / 4 * 3 + 3, '\0');
  std::size_t length = 0;
  const char* end = nullptr;
  const int rc =
      sodium_base642bin(reinterpret_cast<unsigned char*>(out->data()), out->size(), text.data(),
                        text.size(), " \r\n\t", &length, &end, sodium_base64_VARIANT_ORIGINAL);
  if (rc != 0 || end != text.data() + text.size()) {
    WipeString(out);
    return false;
  }
  out->resize(length);
  if (length > max_bytes) {
    *too_large = true;
    WipeString(out);
    return false;
  }
  return true;
}

// Parses and checks a manifest; on failure *error is the response.
bool ParseManifest(const ApiRequest& request, const GateGalleriesOptions& options,
                   Manifest* manifest, ApiResponse* error) {
  if (request.body.size() > options.max_manifest_bytes) {
    *error = ApiResponse::Error(
        413, "body_too_large",
        "a manifest is at most " + std::to_string(options.max_manifest_bytes) + " bytes");
    return false;
  }
  if (!DepthWithin(request.body, kMaxJsonDepth)) {
    *error = ApiResponse::Error(400, "malformed_json", "nested deeper than the manifest format");
    return false;
  }
  json doc;
  try {
    doc = json::parse(request.body);
  } catch (const json::exception& e) {
    *error = ApiResponse::Error(400, "malformed_json", e.what());
    return false;
  }
  if (!doc.is_object()) {
    *error = InvalidField("manifest", "must be a JSON object");
    return false;
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "flight" && key != "travellers") {
      *error = InvalidField(key, "unknown field");
      return false;
    }
  }
  if (!doc.contains("flight") || !doc["flight"].is_string() ||
      !IsName(doc["flight"].get<std::string>())) {
    *error = InvalidField("flight", "required, [A-Za-z0-9._-]{1,64}");
    return false;
  }
  manifest->flight = doc["flight"].get<std::string>();
  if (!doc.contains("travellers") || !doc["travellers"].is_array() || doc["travellers"].empty()) {
    *error = InvalidField("travellers", "required, a non-empty array");
    return false;
  }
  json& travellers = doc["travellers"];
  if (travellers.size() > options.max_travellers) {
    *error = InvalidField("travellers",
                          "at most " + std::to_string(options.max_travellers) + " per manifest");
    return false;
  }
  std::set<std::string> ids;
  manifest->travellers.reserve(travellers.size());
  bool ok = true;
  for (std::size_t i = 0; i < travellers.size() && ok; ++i) {
    const std::string at = "travellers[" + std::to_string(i) + "]";
    json& t = travellers[i];
    if (!t.is_object()) {
      *error = InvalidField(at, "must be an object");
      ok = false;
      break;
    }
    for (const auto& [key, value] : t.items()) {
      if (key != "id" && key != "subject" && key != "photo_jpeg_base64" &&
          key != "template_base64") {
        *error = InvalidField(Dotted(at, key), "unknown field");
        ok = false;
        break;
      }
    }
    if (!ok) break;
    ManifestTraveller entry;
    if (!t.contains("id") || !t["id"].is_string() || !IsName(t["id"].get<std::string>())) {
      *error = InvalidField(at + ".id", "required, [A-Za-z0-9._-]{1,64}");
      ok = false;
      break;
    }
    entry.id = t["id"].get<std::string>();
    if (!ids.insert(entry.id).second) {
      *error = InvalidField(at + ".id", "duplicate traveller id");
      ok = false;
      break;
    }
    const std::string subject =
        t.contains("subject") && t["subject"].is_string() ? t["subject"].get<std::string>() : "";
    if (subject == "citizen") {
      entry.subject = vault::SubjectCategory::kCitizen;
    } else if (subject == "non_citizen") {
      entry.subject = vault::SubjectCategory::kNonCitizen;
    } else {
      *error = InvalidField(at + ".subject", "required, \"citizen\" or \"non_citizen\"");
      ok = false;
      break;
    }
    const bool has_photo = t.contains("photo_jpeg_base64");
    const bool has_template = t.contains("template_base64");
    if (has_photo == has_template) {
      *error = InvalidField(at, "exactly one of photo_jpeg_base64 and template_base64");
      ok = false;
      break;
    }
    const std::string field = has_photo ? "photo_jpeg_base64" : "template_base64";
    const std::string field_path = Dotted(at, field);
    if (!t[field].is_string()) {
      *error = InvalidField(field_path, "must be a base64 string");
      ok = false;
      break;
    }
    std::string& text = t[field].get_ref<std::string&>();
    const std::size_t limit = has_photo ? options.max_photo_bytes : std::size_t{4096};
    bool too_large = false;
    if (!DecodeBase64(text, limit, has_photo ? &entry.photo : &entry.template_bytes, &too_large)) {
      *error = too_large
                   ? InvalidField(field_path, "larger than " + std::to_string(limit) + " bytes")
                   : InvalidField(field_path, "not valid base64");
      ok = false;
    }
    if (entry.photo.empty() && entry.template_bytes.empty() && ok) {
      *error = InvalidField(field_path, "empty");
      ok = false;
    }
    WipeString(&text);
    if (ok) manifest->travellers.push_back(std::move(entry));
  }
  // Whatever happened, the parsed copies of the photos go (the body itself is wiped by the caller).
  for (json& t : travellers) {
    if (!t.is_object()) continue;
    for (const char* field : {"photo_jpeg_base64", "template_base64"}) {
      if (t.contains(field) && t[field].is_string()) WipeString(&t[field].get_ref<std::string&>());
    }
  }
  if (!ok) {
    for (ManifestTraveller& m : manifest->travellers) {
      WipeString(&m.photo);
      WipeString(&m.template_bytes);
    }
    manifest->travellers.clear();
  }
  return ok;
}

ApiResponse NotReady(const char* what) {
  ApiResponse r = ApiResponse::Error(503, "not_ready", what);
  r.headers["Retry-After"] = "1";
  return r;
}

json Nullable(const std::string& s) { return s.empty() ? json() : json(s); }

ApiResponse OpenGallery(ServiceContext& ctx, ApiRequest& request) {
  struct BodyWiper {  // the manifest's photos are in the body
    std::string* body;
    ~BodyWiper() { WipeString(body); }
  } wipe_body{&request.body};
  if (auto bad = CheckNames(request, {"gate"})) return *bad;
  if (ctx.galleries == nullptr) return NotReady("gate galleries are not configured");
  if (request.engines.faces == nullptr) return NotReady("no face engine on this worker");
  if (request.content_type != "application/json") {
    return ApiResponse::Error(415, "unsupported_media_type", "a manifest is application/json");
  }
  const std::string gate = Param(request, "gate");
  Manifest manifest;
  ApiResponse error;
  if (!ParseManifest(request, ctx.galleries->options(), &manifest, &error)) return error;
  OpenedGallery opened;
  const Status s = ctx.galleries->Open(
      ContextOf(request, "gallery.open: flight " + manifest.flight + " at gate " + gate), gate,
      &manifest, request.engines.faces, &opened);
  if (!s.ok()) return FromStatus(s);
  json refused = json::array();
  for (const Refusal& r : opened.refused) refused.push_back({{"id", r.id}, {"reason", r.reason}});
  return ApiResponse::Json(201, {{"gallery", opened.gallery},
                                 {"gate", gate},
                                 {"flight", opened.flight},
                                 {"enrolled", opened.enrolled},
                                 {"refused", refused}});
}

ApiResponse MatchCapture(ServiceContext& ctx, ApiRequest& request) {
  const auto started = std::chrono::steady_clock::now();
  struct CaptureWiper {  // the capture: the encoded bytes and the decoded pixels
    std::string* body;
    cv::Mat bgr;
    ~CaptureWiper() {
      WipeMat(&bgr);
      WipeString(body);
    }
  } capture{&request.body, {}};
  if (auto bad = CheckNames(request, {"gate", "gallery"})) return *bad;
  if (ctx.galleries == nullptr) return NotReady("gate galleries are not configured");
  if (request.engines.faces == nullptr) return NotReady("no face engine on this worker");
  if (request.content_type != "image/jpeg" && request.content_type != "image/png") {
    return ApiResponse::Error(415, "unsupported_media_type",
                              "a live capture is image/jpeg or image/png");
  }
  const std::string gate = Param(request, "gate");
  const std::string gallery = Param(request, "gallery");
  std::string claim;
  if (auto it = request.query.find("claim"); it != request.query.end()) {
    claim = it->second;
    if (!IsName(claim)) return InvalidField("claim", "a traveller id, [A-Za-z0-9._-]{1,64}");
  }
  ImageLimits limits = ctx.galleries->options().image_limits;
  limits.min_side = 1;  // a tiny capture is a quality refusal (below), not a bad request
  const Status decoded = DecodeImage(request.body, limits, &capture.bgr);
  if (!decoded.ok()) {
    if (decoded.code() == Status::Code::kResourceExhausted) {
      return ApiResponse::Error(413, "body_too_large", decoded.message());
    }
    return ApiResponse::Error(400, "bad_image", decoded.message());
  }
  MatchOutcome outcome;
  const Status s = ctx.galleries->Match(ContextOf(request, "gallery.match at gate " + gate), gate,
                                        gallery, claim, capture.bgr, request.body,
                                        request.content_type, request.engines.faces, &outcome);
  if (ctx.metrics != nullptr) {
    ctx.metrics->Observe(
        "match_seconds", "Gate match handling time (decode, embed, decide, store)",
        {{"gate", gate}},
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  if (!s.ok()) return FromStatus(s);
  if (outcome.quality != face::QualityIssue::kNone) {
    const std::string reason = face::QualityIssueName(outcome.quality);
    return ApiResponse::Json(422, {{"error",
                                    {{"code", "quality"},
                                     {"reason", reason},
                                     {"message", "the capture needs a re-take: " + reason}}}});
  }
  return ApiResponse::Json(200, {{"decision", outcome.match ? "match" : "no_match"},
                                 {"mode", outcome.mode},
                                 {"traveller", Nullable(outcome.traveller)},
                                 {"claim", Nullable(outcome.claim)},
                                 {"score", outcome.score},
                                 {"threshold", outcome.threshold},
                                 {"distance_threshold", outcome.distance_threshold},
                                 {"capture", outcome.capture_kept ? "kept" : "dropped"},
                                 {"decision_id", outcome.decision_id}});
}

ApiResponse DescribeGallery(ServiceContext& ctx, ApiRequest& request) {
  if (auto bad = CheckNames(request, {"gate", "gallery"})) return *bad;
  if (ctx.galleries == nullptr) return NotReady("gate galleries are not configured");
  const std::string gate = Param(request, "gate");
  GalleryInfo info;
  const Status s = ctx.galleries->Describe(ContextOf(request, "gallery.describe at gate " + gate),
                                           gate, Param(request, "gallery"), &info);
  if (!s.ok()) return FromStatus(s);
  return ApiResponse::Json(200, {{"gallery", info.gallery},
                                 {"gate", info.gate},
                                 {"flight", info.flight},
                                 {"size", info.size},
                                 {"refused", info.refused},
                                 {"created_micros", info.created_micros},
                                 {"expires_micros", info.expires_micros}});
}

ApiResponse CloseGallery(ServiceContext& ctx, ApiRequest& request) {
  if (auto bad = CheckNames(request, {"gate", "gallery"})) return *bad;
  if (ctx.galleries == nullptr) return NotReady("gate galleries are not configured");
  const std::string gate = Param(request, "gate");
  ClosedGallery closed;
  const Status s = ctx.galleries->Close(ContextOf(request, "gallery.close at gate " + gate), gate,
                                        Param(request, "gallery"), &closed);
  if (!s.ok()) return FromStatus(s);
  return ApiResponse::Json(200, {{"closed", true},
                                 {"templates_destroyed", closed.templates_destroyed},
                                 {"records_deleted", closed.records_deleted}});
}

ApiResponse LookupTraveller(ServiceContext& ctx, ApiRequest& request) {
  if (auto bad = CheckNames(request, {"id"})) return *bad;
  if (ctx.galleries == nullptr) return NotReady("gate galleries are not configured");
  const std::string id = Param(request, "id");
  TravellerReport report;
  const Status s =
      ctx.galleries->LookupTraveller(ContextOf(request, "traveller.lookup"), id, &report);
  if (!s.ok()) return FromStatus(s);
  json entries = json::array();
  for (const TravellerEntry& e : report.entries) {
    entries.push_back({{"record", e.record},
                       {"gallery", e.gallery},
                       {"gate", e.gate},
                       {"flight", e.flight},
                       {"subject", vault::SubjectCategoryName(e.subject)},
                       {"enrolled", e.enrolled},
                       {"reason", Nullable(e.reason)},
                       {"photo_kept", !e.photo_record.empty()},
                       {"created_micros", e.created_micros}});
  }
  json decisions = json::array();
  for (const TravellerDecision& d : report.decisions) {
    decisions.push_back({{"id", d.record},
                         {"gate", d.gate},
                         {"gallery", d.gallery},
                         {"decision", d.decision},
                         {"mode", d.mode},
                         {"score", d.score},
                         {"threshold", d.threshold},
                         {"capture", d.capture},
                         {"created_micros", d.created_micros}});
  }
  return ApiResponse::Json(200,
                           {{"traveller", id}, {"entries", entries}, {"decisions", decisions}});
}

ApiResponse TravellerPhoto(ServiceContext& ctx, ApiRequest& request) {
  if (auto bad = CheckNames(request, {"id"})) return *bad;
  if (ctx.galleries == nullptr) return NotReady("gate galleries are not configured");
  std::string content_type;
  std::string bytes;
  const Status s = ctx.galleries->TravellerPhoto(ContextOf(request, "traveller.photo"),
                                                 Param(request, "id"), &content_type, &bytes);
  if (!s.ok()) return FromStatus(s);
  ApiResponse r = ApiResponse::Bytes(200, content_type, std::move(bytes));
  r.headers["Cache-Control"] = "no-store";
  return r;
}

ApiResponse GateStats(ServiceContext& ctx, ApiRequest& request) {
  if (ctx.galleries == nullptr) return NotReady("gate galleries are not configured");
  int hours = 24;
  if (auto it = request.query.find("hours"); it != request.query.end()) {
    const std::string& text = it->second;
    int value = 0;
    bool ok = !text.empty() && text.size() <= 4;
    for (const char c : text) {
      if (c < '0' || c > '9') ok = false;
    }
    if (ok) value = std::stoi(text);
    if (!ok || value < 1 || value > kMaxStatsHours) {
      return InvalidField("hours", "an integer from 1 to " + std::to_string(kMaxStatsHours));
    }
    hours = value;
  }
  GateStatsReport report;
  const Status s = ctx.galleries->Stats(ContextOf(request, "stats.read: gates"), hours, &report);
  if (!s.ok()) return FromStatus(s);
  auto rate = [](std::uint64_t matches, std::uint64_t total) {
    return total == 0 ? json() : json(static_cast<double>(matches) / static_cast<double>(total));
  };
  json gates = json::array();
  std::uint64_t all_matches = 0;
  std::uint64_t all_no_matches = 0;
  for (const GateStat& g : report.gates) {
    const std::uint64_t total = g.matches + g.no_matches;
    all_matches += g.matches;
    all_no_matches += g.no_matches;
    gates.push_back({{"gate", g.gate},
                     {"decisions", {{"match", g.matches}, {"no_match", g.no_matches}}},
                     {"total", total},
                     {"one_to_one", g.one_to_one},
                     {"match_rate", rate(g.matches, total)}});
  }
  const std::uint64_t total = all_matches + all_no_matches;
  return ApiResponse::Json(200,
                           {{"hours", hours},
                            {"from_micros", report.from_micros},
                            {"until_micros", report.until_micros},
                            {"gates", gates},
                            {"total",
                             {{"decisions", {{"match", all_matches}, {"no_match", all_no_matches}}},
                              {"total", total},
                              {"match_rate", rate(all_matches, total)}}}});
}

Route MakeRoute(ServiceContext& ctx, std::string method, std::string pattern, std::string action,
                std::string category, std::string lane_param, bool heavy,
                ApiResponse (*fn)(ServiceContext&, ApiRequest&)) {
  Route route;
  route.method = std::move(method);
  route.pattern = std::move(pattern);
  route.action = std::move(action);
  route.category = std::move(category);
  route.lane_param = std::move(lane_param);
  route.heavy = heavy;
  ServiceContext* c = &ctx;
  route.handler = [c, fn](ApiRequest& request) {
    try {
      return fn(*c, request);
    } catch (const std::exception& e) {
      // Nothing throws by design; a library surprise is a 500, never a dead worker.
      WipeString(&request.body);
      return ApiResponse::Error(500, "internal", "unexpected error in the gate handler");
    }
  };
  return route;
}

}  // namespace

void AddGateRoutes(ServiceContext& ctx, std::vector<Route>* routes) {
  routes->push_back(MakeRoute(ctx, "POST", "/v1/gates/{gate}/galleries", "gallery.open",
                              "face_template", "gate", true, &OpenGallery));
  routes->push_back(MakeRoute(ctx, "POST", "/v1/gates/{gate}/galleries/{gallery}/match",
                              "gallery.match", "match_decision", "gate", true, &MatchCapture));
  routes->push_back(MakeRoute(ctx, "GET", "/v1/gates/{gate}/galleries/{gallery}", "gallery.match",
                              "match_decision", "gate", false, &DescribeGallery));
  routes->push_back(MakeRoute(ctx, "DELETE", "/v1/gates/{gate}/galleries/{gallery}",
                              "gallery.close", "face_template", "gate", false, &CloseGallery));
  routes->push_back(MakeRoute(ctx, "GET", "/v1/travellers/{id}", "traveller.lookup",
                              "traveller_record", "", false, &LookupTraveller));
  routes->push_back(MakeRoute(ctx, "GET", "/v1/travellers/{id}/photo", "traveller.photo",
                              "traveller_photo", "", false, &TravellerPhoto));
  routes->push_back(MakeRoute(ctx, "GET", "/v1/stats/gates", "stats.read", "aggregate_stats", "",
                              false, &GateStats));
}

}  // namespace portcullis::server
