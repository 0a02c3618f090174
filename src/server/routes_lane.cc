// Lanes and plates (docs/api.md, docs/service-lanes.md): plate reads posted by lane devices,
// plate lookups and crops, lane statistics, device health, the retention view and purge.
// The server has authenticated and authorised each request before a handler runs; handlers check
// what only they can see (the lane a stored record belongs to) and leave every data access to the
// vault, which audits it.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>

#include "portcullis/access_store.h"
#include "portcullis/env.h"
#include "portcullis/image.h"
#include "portcullis/plate.h"
#include "portcullis/vault.h"
#include "server/api.h"
#include "server/device_reports.h"
#include "server/lane_activity.h"
#include "server/lane_clip.h"
#include "server/lane_records.h"
#include "server/lane_routes.h"
#include "server/metrics.h"
#include "vault/record_sql.h"
#include "vault/retention.h"

namespace portcullis::server {
namespace {

using nlohmann::json;
using policy::Role;

constexpr std::int64_t kHourMicros = 3600LL * 1000 * 1000;
constexpr std::size_t kDefaultListLimit = 50;

// ---- Shared helpers ---------------------------------------------------------------------------

// What the vault is told about the caller. The purpose is the stated one, verbatim; when none was
// stated (the policy let this role act without one, or the server would have refused) the route's
// fixed description stands in, so the vault's audit line still says why. The server's decision
// entry records that no purpose was stated.
vault::AccessContext VaultContext(const ApiRequest& request, const char* default_purpose) {
  return {request.principal.name, std::string(policy::RoleName(request.principal.role)),
          request.purpose.empty() ? std::string(default_purpose) : request.purpose};
}

// Roles whose reach is their scope's lanes (devices, vendors). Officers and staff are scoped by
// the policy alone.
bool LaneScoped(Role role) {
  return role == Role::kVendor || role == Role::kLaneDevice || role == Role::kGateDevice;
}

ApiResponse FromStatus(const Status& s) {
  switch (s.code()) {
    case Status::Code::kNotFound:
      return ApiResponse::Error(404, "not_found", s.message());
    case Status::Code::kInvalidArgument:
      return ApiResponse::Error(400, "invalid_argument", s.message());
    default:
      return ApiResponse::Error(500, "internal", s.ToString());
  }
}

std::string QueryOr(const ApiRequest& request, const std::string& key,
                    const std::string& fallback) {
  const auto it = request.query.find(key);
  return it == request.query.end() ? fallback : it->second;
}

bool HasQuery(const ApiRequest& request, const std::string& key) {
  return request.query.count(key) != 0;
}

// A whole decimal integer in [lo, hi]; nullopt otherwise.
std::optional<std::int64_t> ParseInt(std::string_view text, std::int64_t lo, std::int64_t hi) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (value < lo || value > hi) return std::nullopt;
  return value;
}

// Lane names follow the path-parameter rule of docs/api.md: [A-Za-z0-9._-]{1,64}.
bool IsValidLane(std::string_view lane) {
  if (lane.empty() || lane.size() > 64) return false;
  return std::all_of(lane.begin(), lane.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
}

// ---- The routes' shared state -----------------------------------------------------------------

struct LaneState {
  ServiceContext* ctx = nullptr;
  LaneOptions options;
  std::unique_ptr<LaneActivity> activity;
  vault::RetentionPolicy retention;
  Status retention_status;  // why the retention rules could not be loaded, if they could not

  [[nodiscard]] std::int64_t Now() const {
    return ctx->env != nullptr ? ctx->env->NowMicros() : Env::Default()->NowMicros();
  }
  [[nodiscard]] Env* env() const { return ctx->env != nullptr ? ctx->env : Env::Default(); }

  void Count(const std::string& lane, FrameOutcome outcome, std::uint64_t reads) {
    activity->Record(lane, outcome, reads, Now());
    if (ctx->metrics != nullptr) {
      ctx->metrics->Increment("frames_total", "Frames and clips posted by lane devices, by outcome",
                              {{"lane", lane}, {"outcome", FrameOutcomeName(outcome)}});
    }
  }
};

// ---- POST /v1/lanes/{lane}/reads ----------------------------------------------------------------

const char* ConfidenceBand(float confidence) {
  if (confidence < 0.5f) return "lt_0.5";
  if (confidence < 0.8f) return "0.5_0.8";
  if (confidence < 0.9f) return "0.8_0.9";
  if (confidence < 0.95f) return "0.9_0.95";
  return "ge_0.95";
}

// The reader decodes under every grammar it loaded; a requested region keeps the plates read
// under that region's grammar.
bool RegionWanted(const std::string& wanted, const plate::PlateRead& read) {
  return wanted == "auto" || read.region == wanted;
}

struct FrameResult {
  FrameOutcome outcome = FrameOutcome::kNoPlate;
  ApiResponse error;  // when outcome is an error
  std::vector<LaneRead> reads;
};

FrameResult Fail(FrameOutcome outcome, int status, std::string_view code, std::string_view msg) {
  FrameResult r;
  r.outcome = outcome;
  r.error = ApiResponse::Error(status, code, msg);
  return r;
}

FrameResult ReadImage(const LaneState& state, const ApiRequest& request, const std::string& region,
                      plate::PlateReader* reader) {
  const ImageFormat declared =
      request.content_type == "image/png" ? ImageFormat::kPng : ImageFormat::kJpeg;
  if (request.body.empty()) {
    return Fail(FrameOutcome::kBadImage, 400, "bad_image",
                "empty body: expected one " + request.content_type + " frame");
  }
  if (SniffImageFormat(request.body) != declared) {
    return Fail(FrameOutcome::kBadImage, 400, "bad_image",
                "the body is not a " + std::string(declared == ImageFormat::kPng ? "PNG" : "JPEG") +
                    " image (Content-Type: " + request.content_type + ")");
  }
  cv::Mat bgr;
  const Status decoded = DecodeImage(request.body, state.options.image_limits, &bgr);
  if (!decoded.ok()) return Fail(FrameOutcome::kBadImage, 400, "bad_image", decoded.ToString());
  std::vector<plate::PlateRead> plates;
  Status s;
  try {
    s = reader->Read(bgr, &plates);
  } catch (const std::exception& e) {
    s = Status::Internal(std::string("plate reader threw: ") + e.what());
  }
  if (!s.ok()) return Fail(FrameOutcome::kEngineError, 500, "internal", s.ToString());
  FrameResult result;
  for (auto& p : plates) {
    if (!RegionWanted(region, p)) continue;
    LaneRead r;
    r.crop_jpeg = EncodeCrop(bgr, p.box);
    r.read = std::move(p);
    result.reads.push_back(std::move(r));
  }
  result.outcome = result.reads.empty() ? FrameOutcome::kNoPlate : FrameOutcome::kRead;
  return result;
}

FrameResult ReadClipBody(const LaneState& state, const ApiRequest& request,
                         const std::string& region, plate::PlateReader* reader) {
  if (request.body.empty()) {
    return Fail(FrameOutcome::kBadImage, 400, "bad_image", "empty body: expected a video clip");
  }
  std::unique_ptr<ScratchFile> file;
  const Status created = ScratchFile::Create(state.options.scratch_dir, request.body, &file);
  if (!created.ok()) {
    return Fail(FrameOutcome::kEngineError, 500, "internal",
                "cannot hold the clip for decoding: " + created.message());
  }
  std::vector<ClipPass> passes;
  Status s;
  try {
    s = ReadClip(state.env(), reader, file->path(), state.options.clip, &passes);
  } catch (const std::exception& e) {
    s = Status::Internal(std::string("clip reading threw: ") + e.what());
  }
  file.reset();  // the clip is gone before anything else happens
  if (!s.ok()) {
    if (s.code() == Status::Code::kInternal) {
      return Fail(FrameOutcome::kEngineError, 500, "internal", s.ToString());
    }
    return Fail(FrameOutcome::kBadImage, 400, "bad_image", "unreadable video clip: " + s.message());
  }
  FrameResult result;
  for (auto& p : passes) {
    if (!RegionWanted(region, p.pass.best)) continue;
    LaneRead r;
    r.extra = {{"frame", p.pass.best_frame},
               {"time_ms", p.pass.best_time_ms},
               {"first_frame", p.pass.first_frame},
               {"last_frame", p.pass.last_frame},
               {"frames_seen", p.pass.frames_seen}};
    r.read = std::move(p.pass.best);
    r.crop_jpeg = std::move(p.crop_jpeg);
    result.reads.push_back(std::move(r));
  }
  result.outcome = result.reads.empty() ? FrameOutcome::kNoPlate : FrameOutcome::kRead;
  return result;
}

ApiResponse PostReads(LaneState& state, ApiRequest& request) {
  const auto started = std::chrono::steady_clock::now();
  const auto lane_it = request.path_params.find("lane");
  if (lane_it == request.path_params.end() || !IsValidLane(lane_it->second)) {
    return ApiResponse::Error(400, "invalid_path", "the lane must match [A-Za-z0-9._-]{1,64}");
  }
  const std::string& lane_name = lane_it->second;
  const std::string region = QueryOr(request, "region", "auto");
  if (region != "auto" && region != "us" && region != "eu" && region != "br") {
    state.Count(lane_name, FrameOutcome::kInvalidArgument, 0);
    return ApiResponse::Error(400, "invalid_argument",
                              "region must be one of us, eu, br, auto; got '" + region + "'");
  }
  plate::PlateReader* reader = request.engines.plates;
  if (reader == nullptr) {
    state.Count(lane_name, FrameOutcome::kEngineError, 0);
    return ApiResponse::Error(500, "internal", "no plate reader on this worker");
  }
  if (region != "auto") {
    const std::vector<std::string> loaded = reader->Regions();
    if (std::find(loaded.begin(), loaded.end(), region) == loaded.end()) {
      state.Count(lane_name, FrameOutcome::kInvalidArgument, 0);
      return ApiResponse::Error(400, "invalid_argument",
                                "region '" + region + "' is not loaded on this server");
    }
  }

  FrameResult result;
  const std::string& type = request.content_type;
  std::string kind;
  if (type == "image/jpeg" || type == "image/png") {
    kind = "image";
    result = ReadImage(state, request, region, reader);
  } else if (type.rfind("video/", 0) == 0) {
    kind = "video";
    result = ReadClipBody(state, request, region, reader);
  } else {
    state.Count(lane_name, FrameOutcome::kUnsupportedMedia, 0);
    return ApiResponse::Error(415, "unsupported_media_type",
                              "expected image/jpeg, image/png or video/*; got '" +
                                  (type.empty() ? std::string("none") : type) + "'");
  }
  if (IsFrameError(result.outcome)) {
    state.Count(lane_name, result.outcome, 0);
    return result.error;
  }

  json stored = json::array();
  if (!result.reads.empty()) {
    const Status s = StoreLaneReads(state.ctx->vault, VaultContext(request, "lane capture"),
                                    lane_name, state.Now(), result.reads, &stored);
    if (!s.ok()) {
      state.Count(lane_name, FrameOutcome::kStoreError, 0);
      return ApiResponse::Error(500, "internal", "the reads could not be stored: " + s.ToString());
    }
  }
  state.Count(lane_name, result.outcome, stored.size());
  if (Metrics* m = state.ctx->metrics; m != nullptr) {
    for (const auto& r : result.reads) {
      m->Increment("plate_reads_total", "Plate reads stored, by lane", {{"lane", lane_name}});
      m->Increment("plate_read_confidence_total", "Plate reads stored, by confidence band",
                   {{"lane", lane_name}, {"band", ConfidenceBand(r.read.confidence)}});
    }
    m->Observe("plate_read_seconds", "Time to read and store one posted frame or clip",
               {{"kind", kind}},
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  return ApiResponse::Json(200,
                           {{"lane", lane_name}, {"reads", stored}, {"stored", stored.size()}});
}

// ---- GET /v1/plates, /v1/plates/{id}, /v1/plates/{id}/crop ----------------------------------

// Plate text as the engine writes it: upper-case letters and digits. Spaces and dashes a person
// types are dropped.
std::optional<std::string> NormalisePlateText(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == ' ' || c == '-') continue;
    if (std::isalnum(static_cast<unsigned char>(c)) == 0) return std::nullopt;
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (out.empty() || out.size() > 16) return std::nullopt;
  return out;
}

bool TextMatches(const json& read, const std::string& text) {
  if (read.value("text", "") == text) return true;
  const auto it = read.find("candidates");
  if (it == read.end() || !it->is_array()) return false;
  return std::any_of(it->begin(), it->end(),
                     [&](const json& c) { return c.is_object() && c.value("text", "") == text; });
}

json ReadSummary(const vault::RecordMeta& meta) {
  return {{"id", meta.id},
          {"lane", LaneOf(meta)},
          {"created_micros", meta.created_micros},
          {"read_at", FormatRfc3339(meta.created_micros)},
          {"expires_micros", meta.expires_micros},
          {"crop", meta.labels.count("crop") != 0}};
}

// The response for one stored read: its body, and what the metadata adds.
json ReadResponse(const vault::RecordMeta& meta, json body) {
  body["id"] = meta.id;
  body["lane"] = LaneOf(meta);
  body["created_micros"] = meta.created_micros;
  body["expires_micros"] = meta.expires_micros;
  body["crop"] = body.contains("crop") && body["crop"].is_string();
  return body;
}

ApiResponse ListPlates(LaneState& state, ApiRequest& request) {
  const LaneOptions& options = state.options;
  const std::string lane = QueryOr(request, "lane", "");
  if (HasQuery(request, "lane") && !IsValidLane(lane)) {
    return ApiResponse::Error(400, "invalid_argument", "lane must match [A-Za-z0-9._-]{1,64}");
  }
  const bool scoped = LaneScoped(request.principal.role);
  if (!lane.empty() && scoped && !request.principal.InScope(lane)) {
    return ApiResponse::Error(403, "out_of_scope", "lane '" + lane + "' is not in your scope");
  }
  std::optional<std::string> text;
  if (HasQuery(request, "text")) {
    text = NormalisePlateText(request.query.at("text"));
    if (!text) {
      return ApiResponse::Error(400, "invalid_argument",
                                "text must be 1-16 letters or digits (spaces and dashes ignored)");
    }
  }
  vault::RecordFilter filter;
  filter.type = vault::RecordType::kPlateRead;
  filter.subject = vault::SubjectCategory::kVehicle;
  for (const char* key : {"from_micros", "until_micros"}) {
    if (!HasQuery(request, key)) continue;
    const auto value = ParseInt(request.query.at(key), 0, INT64_MAX);
    if (!value) {
      return ApiResponse::Error(400, "invalid_argument",
                                std::string(key) + " must be microseconds since the epoch");
    }
    (std::string_view(key) == "from_micros" ? filter.created_from : filter.created_until) = *value;
  }
  if (filter.created_from && filter.created_until &&
      *filter.created_from >= *filter.created_until) {
    return ApiResponse::Error(400, "invalid_argument", "from_micros must be before until_micros");
  }
  std::size_t limit = kDefaultListLimit;
  if (HasQuery(request, "limit")) {
    const auto value =
        ParseInt(request.query.at("limit"), 1, static_cast<std::int64_t>(options.max_list_limit));
    if (!value) {
      return ApiResponse::Error(400, "invalid_argument",
                                "limit must be 1.." + std::to_string(options.max_list_limit));
    }
    limit = static_cast<std::size_t>(*value);
  }
  filter.cursor = QueryOr(request, "cursor", "");
  if (filter.cursor.size() > 128) {
    return ApiResponse::Error(400, "invalid_argument", "malformed cursor");
  }

  const vault::AccessContext vctx = VaultContext(request, "plate lookup");
  json plates = json::array();
  std::size_t scanned = 0;
  std::size_t decrypted = 0;
  std::string cursor = filter.cursor;  // after the last record examined
  bool exhausted = false;
  bool stop = false;
  while (!stop) {
    // Full already, or out of decryptions: stop before asking the vault for another page.
    if (plates.size() >= limit || (text && decrypted >= options.max_text_decrypts)) break;
    filter.cursor = cursor;
    filter.limit = std::min<std::size_t>(1000, options.max_list_scan - scanned);
    vault::RecordPage page;
    const Status s = state.ctx->vault->List(vctx, filter, &page);
    if (!s.ok()) return FromStatus(s);
    for (const auto& meta : page.records) {
      if (plates.size() >= limit || (text && decrypted >= options.max_text_decrypts)) {
        stop = true;
        break;
      }
      ++scanned;
      cursor = vault::MakeCursor(meta);
      if (!IsReadRecord(meta)) continue;
      const std::string record_lane = LaneOf(meta);
      if (!lane.empty() && record_lane != lane) continue;
      if (scoped && !request.principal.InScope(record_lane)) continue;
      if (!text) {
        plates.push_back(ReadSummary(meta));
        continue;
      }
      // Matching text needs the body: each Get is one audited decryption, bounded per call.
      ++decrypted;
      vault::RecordMeta got;
      std::string body;
      const Status g = state.ctx->vault->Get(vctx, meta.id, &got, &body);
      if (g.code() == Status::Code::kNotFound) continue;  // purged meanwhile
      if (!g.ok()) return FromStatus(g);
      json read;
      if (!ParseReadBody(body, &read).ok()) continue;
      if (TextMatches(read, *text)) plates.push_back(ReadResponse(got, std::move(read)));
    }
    if (!stop && page.next_cursor.empty()) {
      exhausted = true;
      break;
    }
    if (scanned >= options.max_list_scan) break;
  }
  json response = {{"plates", plates},
                   {"next_cursor", exhausted ? json(nullptr) : json(cursor)},
                   {"scanned", scanned},
                   {"decrypted", decrypted}};
  return ApiResponse::Json(200, response);
}

// Gets a stored read named by the path, checked to be a read and in the caller's reach.
ApiResponse GetRead(LaneState& state, const ApiRequest& request, const char* purpose,
                    vault::RecordMeta* meta, json* read) {
  const auto it = request.path_params.find("id");
  if (it == request.path_params.end() || !vault::IsValidRecordId(it->second)) {
    return ApiResponse::Error(404, "not_found", "no such plate read");
  }
  std::string body;
  const Status s = state.ctx->vault->Get(VaultContext(request, purpose), it->second, meta, &body);
  if (s.code() == Status::Code::kNotFound || (s.ok() && !IsReadRecord(*meta))) {
    return ApiResponse::Error(404, "not_found", "no such plate read");
  }
  if (!s.ok()) return FromStatus(s);
  const std::string lane = LaneOf(*meta);
  if (LaneScoped(request.principal.role) && !request.principal.InScope(lane)) {
    return ApiResponse::Error(403, "out_of_scope",
                              "this read belongs to a lane that is not in your scope");
  }
  // The server authorised the request (scope, a vendor's ticket) for the lane the query names.
  if (const auto named = request.query.find("lane");
      named != request.query.end() && named->second != lane) {
    return ApiResponse::Error(403, "out_of_scope",
                              "this read is not from lane '" + named->second + "'");
  }
  const Status p = ParseReadBody(body, read);
  if (!p.ok()) return FromStatus(p);
  return ApiResponse::Json(200, nullptr);
}

ApiResponse GetPlate(LaneState& state, ApiRequest& request) {
  vault::RecordMeta meta;
  json read;
  ApiResponse r = GetRead(state, request, "plate lookup", &meta, &read);
  if (r.status != 200) return r;
  return ApiResponse::Json(200, ReadResponse(meta, std::move(read)));
}

ApiResponse GetCrop(LaneState& state, ApiRequest& request) {
  vault::RecordMeta meta;
  json read;
  ApiResponse r = GetRead(state, request, "plate crop", &meta, &read);
  if (r.status != 200) return r;
  const std::string lane = LaneOf(meta);
  // A vendor's ticket is for one lane; the server checked that it is live, and here it must be the
  // lane of this record (the path does not name one).
  if (request.principal.role == Role::kVendor) {
    if (request.ticket_id.empty() || request.query.count("lane") == 0) {
      return ApiResponse::Error(403, "ticket_required",
                                "a vendor needs a ticket for this read's lane, named in ?lane=");
    }
    if (state.ctx->access == nullptr) {
      return ApiResponse::Error(500, "internal", "no access store to check the vendor's ticket");
    }
    {
      std::vector<policy::TicketInfo> tickets;
      const Status t = state.ctx->access->ListTickets(&tickets);
      if (!t.ok()) return FromStatus(t);
      const auto ticket = std::find_if(tickets.begin(), tickets.end(), [&](const auto& info) {
        return info.id == request.ticket_id;
      });
      if (ticket == tickets.end() || ticket->vendor != request.principal.name ||
          ticket->lane != lane) {
        return ApiResponse::Error(403, "ticket_invalid", "the ticket is not for this read's lane");
      }
    }
  }
  const auto crop = read.find("crop");
  if (crop == read.end() || !crop->is_string()) {
    return ApiResponse::Error(404, "not_found", "no crop was kept for this read");
  }
  vault::RecordMeta crop_meta;
  std::string jpeg;
  const Status s = state.ctx->vault->Get(VaultContext(request, "plate crop"),
                                         crop->get<std::string>(), &crop_meta, &jpeg);
  if (s.code() == Status::Code::kNotFound) {
    return ApiResponse::Error(404, "not_found", "the crop of this read is no longer kept");
  }
  if (!s.ok()) return FromStatus(s);
  if (!IsCropRecord(crop_meta) || LaneOf(crop_meta) != lane) {
    return ApiResponse::Error(500, "internal", "the read names a record that is not its crop");
  }
  ApiResponse out = ApiResponse::Bytes(200, kCropContentType, std::move(jpeg));
  out.headers["Cache-Control"] = "no-store";
  return out;
}

// ---- GET /v1/stats/lanes ----------------------------------------------------------------------

ApiResponse LaneStats(LaneState& state, ApiRequest& request) {
  std::int64_t hours = 24;
  if (HasQuery(request, "hours")) {
    const auto value = ParseInt(request.query.at("hours"), 1, 168);
    if (!value) return ApiResponse::Error(400, "invalid_argument", "hours must be 1..168");
    hours = *value;
  }
  const std::int64_t now = state.Now();
  // Whole UTC hours, the current one last (so far).
  const std::int64_t current_hour = now - (now % kHourMicros);
  const std::int64_t from = current_hour - (hours - 1) * kHourMicros;
  vault::RecordFilter filter;
  filter.type = vault::RecordType::kPlateRead;
  filter.subject = vault::SubjectCategory::kVehicle;
  filter.created_from = from;
  filter.created_until = current_hour + kHourMicros;
  filter.limit = vault::kMaxListLimit;
  const vault::AccessContext vctx = VaultContext(request, "lane statistics");
  std::map<std::string, std::vector<std::uint64_t>> per_lane;
  std::size_t scanned = 0;
  bool complete = true;
  while (true) {
    vault::RecordPage page;
    const Status s = state.ctx->vault->List(vctx, filter, &page);
    if (!s.ok()) return FromStatus(s);
    for (const auto& meta : page.records) {
      ++scanned;
      if (!IsReadRecord(meta)) continue;
      const auto slot = static_cast<std::size_t>((meta.created_micros - from) / kHourMicros);
      auto& counts = per_lane[LaneOf(meta)];
      counts.resize(static_cast<std::size_t>(hours), 0);
      if (slot < counts.size()) ++counts[slot];
    }
    if (page.next_cursor.empty()) break;
    if (scanned >= state.options.max_stats_scan) {
      complete = false;
      break;
    }
    filter.cursor = page.next_cursor;
  }
  json hour_starts = json::array();
  for (std::int64_t h = 0; h < hours; ++h) hour_starts.push_back(from + h * kHourMicros);
  json lanes = json::array();
  for (const auto& [lane, counts] : per_lane) {
    std::uint64_t total = 0;
    for (auto c : counts) total += c;
    lanes.push_back({{"lane", lane}, {"total", total}, {"reads_per_hour", counts}});
  }
  return ApiResponse::Json(200, {{"hours", hours},
                                 {"from_micros", from},
                                 {"until_micros", now},
                                 {"hour_starts_micros", hour_starts},
                                 {"lanes", lanes},
                                 {"complete", complete}});
}

// ---- GET /v1/devices/health -------------------------------------------------------------------

ApiResponse DeviceHealth(LaneState& state, ApiRequest& request) {
  const std::int64_t now = state.Now();
  const bool scoped = LaneScoped(request.principal.role);
  json lanes = json::array();
  for (const auto& h : state.activity->Snapshot(now)) {
    if (scoped && !request.principal.InScope(h.lane)) continue;
    lanes.push_back(
        {{"lane", h.lane},
         {"last_frame_micros",
          h.last_frame_micros == 0 ? json(nullptr) : json(h.last_frame_micros)},
         {"last_read_micros", h.last_read_micros == 0 ? json(nullptr) : json(h.last_read_micros)},
         {"last_read_at",
          h.last_read_micros == 0 ? json(nullptr) : json(FormatRfc3339(h.last_read_micros))},
         {"reads_last_hour", h.reads_last_hour},
         {"frames_total", h.frames_total},
         {"errors", h.errors.empty() ? json::object() : json(h.errors)}});
  }
  // The lane agents' own reports (POST /v1/lanes/{lane}/reports), latest of each kind per device.
  json devices = json::array();
  if (state.ctx->device_reports != nullptr) {
    for (const DeviceReport& r : state.ctx->device_reports->Snapshot()) {
      if (scoped && !request.principal.InScope(r.lane)) continue;
      devices.push_back({{"device", r.device},
                         {"lane", r.lane},
                         {"kind", r.kind},
                         {"received_micros", r.received_micros},
                         {"report", r.report}});
    }
  }
  return ApiResponse::Json(200, {{"node", state.ctx->node_name},
                                 {"since_micros", state.activity->started_micros()},
                                 {"now_micros", now},
                                 {"lanes", lanes},
                                 {"agent_reports", devices}});
}

// ---- GET /v1/retention, POST /v1/retention/purge -----------------------------------------------

constexpr vault::RecordType kAllTypes[] = {
    vault::RecordType::kTraveller,    vault::RecordType::kDocument,
    vault::RecordType::kGalleryPhoto, vault::RecordType::kTemplate,
    vault::RecordType::kPlateRead,    vault::RecordType::kMatchDecision,
    vault::RecordType::kKeptCapture};
constexpr vault::SubjectCategory kAllSubjects[] = {vault::SubjectCategory::kCitizen,
                                                   vault::SubjectCategory::kNonCitizen,
                                                   vault::SubjectCategory::kVehicle};

ApiResponse Retention(LaneState& state, ApiRequest& request) {
  if (!state.retention_status.ok()) {
    return ApiResponse::Error(500, "internal",
                              "retention rules unavailable: " + state.retention_status.ToString());
  }
  const vault::RetentionPolicy& rules = state.retention;
  json classes = json::array();
  for (const auto& cls : rules.classes()) {
    json covers = json::array();
    for (auto type : kAllTypes) {
      for (auto subject : kAllSubjects) {
        const vault::RetentionClass* found = nullptr;
        if (rules.ClassFor(type, subject, &found).ok() && found->name == cls.name) {
          covers.push_back({{"record_type", vault::RecordTypeName(type)},
                            {"subject", vault::SubjectCategoryName(subject)}});
        }
      }
    }
    classes.push_back({{"name", cls.name},
                       {"retention_seconds", cls.retention_micros / 1000000},
                       {"bucket_seconds", cls.bucket_micros / 1000000},
                       {"covers", covers}});
  }

  // The shredding schedule: per KEK the vault's records name, how many records and when its whole
  // bucket has expired (the KEK is destroyed at the first purge after that). Metadata only.
  const vault::AccessContext vctx = VaultContext(request, "retention schedule");
  std::vector<std::string> keks;
  const Status k = state.ctx->vault->ListKeks(vctx, &keks);
  if (!k.ok()) return FromStatus(k);
  const std::int64_t now = state.Now();
  std::size_t scanned = 0;
  bool complete = true;
  struct Bucket {
    std::string kek, retention_class;
    std::uint64_t records = 0;
    std::int64_t oldest = 0, shred_at = 0;
  };
  std::vector<Bucket> buckets;
  for (const auto& kek : keks) {
    Bucket b;
    b.kek = kek;
    vault::RecordFilter filter;
    filter.kek_id = kek;
    filter.limit = vault::kMaxListLimit;
    while (true) {
      vault::RecordPage page;
      const Status s = state.ctx->vault->List(vctx, filter, &page);
      if (!s.ok()) return FromStatus(s);
      for (const auto& meta : page.records) {
        if (b.records++ == 0) {
          b.oldest = meta.created_micros;
          b.retention_class = meta.retention_class;
        }
      }
      scanned += page.records.size();
      if (page.next_cursor.empty()) break;
      if (scanned >= state.options.max_stats_scan) {
        complete = false;
        break;
      }
      filter.cursor = page.next_cursor;
    }
    if (b.records == 0) continue;  // shredded meanwhile
    if (!rules.ShredTimeFor(b.retention_class, b.oldest, &b.shred_at).ok()) b.shred_at = 0;
    buckets.push_back(std::move(b));
  }
  std::sort(buckets.begin(), buckets.end(), [](const Bucket& a, const Bucket& b) {
    return a.shred_at != b.shred_at ? a.shred_at < b.shred_at : a.kek < b.kek;
  });
  json schedule = json::array();
  for (const auto& b : buckets) {
    schedule.push_back(
        {{"kek", b.kek},
         {"class", b.retention_class},
         {"records", b.records},
         {"shred_at_micros", b.shred_at == 0 ? json(nullptr) : json(b.shred_at)},
         {"shred_at", b.shred_at == 0 ? json(nullptr) : json(FormatRfc3339(b.shred_at))},
         {"due", b.shred_at != 0 && b.shred_at <= now}});
  }
  return ApiResponse::Json(
      200,
      {{"now_micros", now}, {"classes", classes}, {"schedule", schedule}, {"complete", complete}});
}

ApiResponse Purge(LaneState& state, ApiRequest& request) {
  const std::string dry = QueryOr(request, "dry_run", "false");
  if (dry != "true" && dry != "false" && dry != "1" && dry != "0") {
    return ApiResponse::Error(400, "invalid_argument", "dry_run must be true or false");
  }
  const bool dry_run = dry == "true" || dry == "1";
  vault::PurgeReport report;
  const Status s =
      state.ctx->vault->Purge(VaultContext(request, "retention purge"), dry_run, &report);
  if (!s.ok()) return FromStatus(s);
  if (!dry_run && state.ctx->metrics != nullptr) {
    state.ctx->metrics->Increment("retention_keks_destroyed_total",
                                  "KEKs crypto-shredded by purges", {},
                                  static_cast<double>(report.keks.size()));
    state.ctx->metrics->Increment("retention_records_deleted_total", "Records deleted by purges",
                                  {}, static_cast<double>(report.records.size()));
  }
  return ApiResponse::Json(200, {{"dry_run", report.dry_run},
                                 {"keks", report.keks},
                                 {"records_deleted", report.records.size()},
                                 {"node", state.ctx->node_name}});
}

std::string DefaultRetentionPath() {
  if (const char* dir = std::getenv("PORTCULLIS_DATA_DIR"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/retention.json";
  }
  return std::string(PORTCULLIS_DEFAULT_DATA_DIR) + "/retention.json";
}

}  // namespace

void AddLaneRoutes(ServiceContext& ctx, const LaneOptions& options, std::vector<Route>* routes) {
  auto state = std::make_shared<LaneState>();
  state->ctx = &ctx;
  state->options = options;
  if (state->options.scratch_dir.empty()) state->options.scratch_dir = ctx.scratch_dir;
  if (state->options.scratch_dir.empty()) {
    std::error_code ec;
    state->options.scratch_dir = std::filesystem::temp_directory_path(ec).string();
    if (ec) state->options.scratch_dir = "/tmp";
  }
  if (state->options.retention_path.empty()) state->options.retention_path = ctx.retention_path;
  if (state->options.retention_path.empty()) state->options.retention_path = DefaultRetentionPath();
  state->activity = std::make_unique<LaneActivity>(state->Now());
  state->retention_status =
      vault::RetentionPolicy::Load(state->env(), state->options.retention_path, &state->retention);

  const auto bind = [state](ApiResponse (*fn)(LaneState&, ApiRequest&)) -> Handler {
    return [state, fn](ApiRequest& request) { return fn(*state, request); };
  };
  routes->push_back({"POST", "/v1/lanes/{lane}/reads", "plate.read", "plate_read", "lane", true,
                     bind(PostReads)});
  // The plate routes name no lane in their path; an optional query parameter `lane` does, and the
  // server checks scope and vendor tickets against it (the handlers check the records are from it).
  routes->push_back(
      {"GET", "/v1/plates", "plate.lookup", "plate_read", "lane", false, bind(ListPlates)});
  routes->push_back(
      {"GET", "/v1/plates/{id}", "plate.lookup", "plate_read", "lane", false, bind(GetPlate)});
  routes->push_back(
      {"GET", "/v1/plates/{id}/crop", "plate.crop", "plate_crop", "lane", false, bind(GetCrop)});
  routes->push_back(
      {"GET", "/v1/stats/lanes", "stats.read", "aggregate_stats", "", false, bind(LaneStats)});
  routes->push_back({"GET", "/v1/devices/health", "device.health", "device_health", "", false,
                     bind(DeviceHealth)});
  routes->push_back(
      {"GET", "/v1/retention", "retention.read", "retention", "", false, bind(Retention)});
  routes->push_back(
      {"POST", "/v1/retention/purge", "retention.purge", "retention", "", false, bind(Purge)});
}

void AddLaneRoutes(ServiceContext& ctx, std::vector<Route>* routes) {
  AddLaneRoutes(ctx, LaneOptions{}, routes);
}

}  // namespace portcullis::server
