// Lane agents' endpoints (docs/lane-link.md, docs/api.md):
//   POST /v1/lanes/{lane}/events   (event.submit)  a sealed vehicle-pass event, exactly once
//   POST /v1/lanes/{lane}/reports  (device.report) a health / maintenance report, no personal data
//
// Exactly once. An agent re-sends an event until it gets an answer, so the same event id can
// arrive twice on one node, on two nodes at once, or after a node crashed between storing and
// answering. Each delivery first claims the event id in the access store (one row per id, an
// atomic INSERT ... ON CONFLICT DO NOTHING shared by every node); only the claimant stores the
// records, each labelled {"event": id}, and then finishes the claim with the records' ids. Every
// other delivery is answered from the finished row (200, duplicate) or told to retry while the
// claim is live (503 + Retry-After). A claim left unfinished past claim_timeout (its node died) is
// taken over by a compare-and-swap on its claim token, and the taker first deletes whatever the
// dead node stored under that event label before storing afresh; a claimant whose claim was taken
// over meanwhile deletes its own records. The argument in full: docs/lane-link.md.
#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lane/ingest_key.h"
#include "portcullis/access_store.h"
#include "portcullis/audit.h"
#include "portcullis/env.h"
#include "portcullis/lane_event.h"
#include "portcullis/vault.h"
#include "server/api.h"
#include "server/device_reports.h"
#include "server/lane_records.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server/stage_timer.h"

namespace portcullis::server {
namespace {

using nlohmann::json;

constexpr const char* kEventsHelp = "Sealed lane events received, by outcome";
// A dead node's records were stored after its claim; clocks of two nodes may differ by this much.
constexpr std::int64_t kClockSkewMicros = 5LL * 60 * 1000 * 1000;
// Records examined when looking for a dead claimant's records (a takeover only).
constexpr std::size_t kMaxOrphanScan = 200000;
constexpr std::size_t kMaxReportBytes = std::size_t{64} * 1024;

struct EventState {
  ServiceContext* ctx = nullptr;

  [[nodiscard]] std::int64_t Now() const {
    return ctx->env != nullptr ? ctx->env->NowMicros() : Env::Default()->NowMicros();
  }
  void Count(const std::string& lane, const char* outcome) const {
    if (ctx->metrics != nullptr) {
      ctx->metrics->Increment("lane_events_total", kEventsHelp,
                              {{"lane", lane}, {"outcome", outcome}});
    }
  }
};

vault::AccessContext IngestContext(const ApiRequest& request) {
  return {request.principal.name, std::string(policy::RoleName(request.principal.role)),
          request.purpose.empty() ? std::string("lane event ingest") : request.purpose};
}

bool IsEventId(const std::string& id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool ParseSequence(const std::string& text, std::uint64_t* value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size() &&
         *value <= static_cast<std::uint64_t>(INT64_MAX);
}

std::string HeaderOr(const ApiRequest& request, const char* name) {
  const auto it = request.headers.find(name);
  return it == request.headers.end() ? std::string() : it->second;
}

// Deletes records by id (best effort: a failure is logged; the records then stay sealed until
// their retention bucket is shredded, never readable by anyone without the vault).
void DeleteRecords(ServiceContext& ctx, const vault::AccessContext& who,
                   const std::vector<std::string>& ids, const std::string& event_id) {
  for (const std::string& id : ids) {
    const Status s = ctx.vault->Delete(who, id);
    if (!s.ok() && s.code() != Status::Code::kNotFound) {
      LogEvent("warn", "lane event record not deleted",
               {{"event_id", event_id}, {"record", id}, {"error", s.ToString()}});
    }
  }
}

// The records a dead claimant stored for event_id: created after its claim (minus clock skew),
// labelled with the event id. Scans metadata only.
Status FindEventRecords(ServiceContext& ctx, const vault::AccessContext& who,
                        const std::string& event_id, std::int64_t claimed_micros,
                        std::int64_t now_micros, std::vector<std::string>* ids) {
  std::size_t scanned = 0;
  for (vault::RecordType type : {vault::RecordType::kPlateRead, vault::RecordType::kKeptCapture}) {
    vault::RecordFilter filter;
    filter.type = type;
    filter.created_from = claimed_micros - kClockSkewMicros;
    filter.created_until = now_micros + kClockSkewMicros;
    filter.limit = 1000;
    while (true) {
      vault::RecordPage page;
      PORTCULLIS_RETURN_IF_ERROR(ctx.vault->List(who, filter, &page));
      for (const vault::RecordMeta& meta : page.records) {
        const auto it = meta.labels.find("event");
        if (it != meta.labels.end() && it->second == event_id) ids->push_back(meta.id);
      }
      scanned += page.records.size();
      if (scanned > kMaxOrphanScan) {
        return Status::ResourceExhausted("too many records to scan for event " + event_id);
      }
      if (page.next_cursor.empty()) break;
      filter.cursor = page.next_cursor;
    }
  }
  return Status::Ok();
}

const lane::Attachment* FindAttachment(const lane::LaneEvent& event, const std::string& name) {
  if (name.empty()) return nullptr;
  for (const auto& a : event.attachments) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

// Stores one opened event's plate reads, crops and face captures in one vault batch (one SQLite
// commit, one audit batch: docs/lane-link.md "The commit path of an event"). On failure
// nothing is stored. *metas gets every record stored.
Status StoreEvent(EventState& state, const ApiRequest& request, const lane::LaneEvent& event,
                  std::vector<vault::RecordMeta>* metas, std::uint64_t* faces_dropped) {
  ServiceContext& ctx = *state.ctx;
  const vault::AccessContext who = IngestContext(request);
  const std::map<std::string, std::string> labels = {
      {"event", event.event_id}, {"camera", event.camera}, {"device", event.device}};
  if (event.kind != lane::EventKind::kVehiclePass) return Status::Ok();

  std::vector<LaneRead> reads;
  reads.reserve(event.plates.size());
  for (const lane::LanePlate& p : event.plates) {
    LaneRead r;
    r.read.text = p.text;
    r.read.confidence = p.confidence;
    r.read.region = p.region;
    r.read.format = p.format;
    r.read.box = {p.box[0], p.box[1], p.box[2], p.box[3]};
    for (const auto& [text, confidence] : p.candidates) {
      r.read.candidates.push_back({text, confidence, ""});
    }
    if (const lane::Attachment* crop = FindAttachment(event, p.crop); crop != nullptr) {
      r.crop_jpeg = crop->bytes;
    }
    r.extra = {{"event_id", event.event_id},    {"sequence", event.sequence},
               {"device", event.device},        {"camera", event.camera},
               {"frames_seen", p.frames_seen},  {"passed_at_micros", event.ended_wall_micros},
               {"clock_jump", event.clock_jump}};
    reads.push_back(std::move(r));
  }

  // Occupants' faces: their citizenship is unknown at the lane, so they are kept as a
  // non-citizen's kept capture (the retention file's rule for kept captures of non-citizens,
  // face-non-citizen: 14 days). Without such a rule the vault refuses and the face is dropped.
  std::vector<vault::NewRecord> faces;
  for (std::size_t i = 0; i < event.faces.size(); ++i) {
    const lane::Attachment* capture = FindAttachment(event, event.faces[i].capture);
    if (capture == nullptr || capture->bytes.empty()) continue;
    vault::NewRecord record;
    record.type = vault::RecordType::kKeptCapture;
    record.subject = vault::SubjectCategory::kNonCitizen;
    record.content_type = capture->content_type.empty() ? "image/jpeg" : capture->content_type;
    record.labels = labels;
    record.labels["lane"] = event.lane;
    record.labels["part"] = "face";
    record.labels["quality"] = std::to_string(static_cast<int>(event.faces[i].quality * 100));
    record.body = capture->bytes;
    faces.push_back(std::move(record));
  }

  json stored;
  Status s =
      StoreLaneReads(ctx.vault, who, event.lane, state.Now(), reads, &stored, labels, metas, faces);
  if (s.code() == Status::Code::kNotFound && !faces.empty()) {
    // A missing retention rule refuses the whole batch; nothing is kept without a rule, so the
    // faces are dropped and the reads stored alone (a second round only in this misconfiguration;
    // when the plates' own rule is missing this fails the same way and the event is retried).
    *faces_dropped += faces.size();
    s = StoreLaneReads(ctx.vault, who, event.lane, state.Now(), reads, &stored, labels, metas);
  }
  for (LaneRead& r : reads) {
    sodium_memzero(r.read.text.data(), r.read.text.size());
    sodium_memzero(r.crop_jpeg.data(), r.crop_jpeg.size());
  }
  return s;
}

json RecordsJson(const std::vector<vault::RecordMeta>& metas) {
  json records = json::array();
  for (const vault::RecordMeta& meta : metas) {
    const auto part = meta.labels.find("part");
    records.push_back({{"id", meta.id},
                       {"type", std::string(vault::RecordTypeName(meta.type))},
                       {"part", part == meta.labels.end() ? "" : part->second}});
  }
  return records;
}

ApiResponse Duplicate(EventState& state, const std::string& lane, const ApiRequest& request,
                      const policy::IngestedEvent& row) {
  if (row.device != request.principal.name || row.lane != lane) {
    state.Count(lane, "rejected");
    return ApiResponse::Error(409, "event_id_conflict",
                              "this event id was delivered by another device or lane");
  }
  json records = json::parse(row.records, nullptr, false);
  if (records.is_discarded() || !records.is_array()) records = json::array();
  state.Count(lane, "duplicate");
  return ApiResponse::Json(200,
                           {{"event_id", row.event_id}, {"records", records}, {"duplicate", true}});
}

ApiResponse RetryLater(std::int64_t after_micros, const char* code, const std::string& message) {
  ApiResponse r = ApiResponse::Error(503, code, message);
  const std::int64_t seconds = std::max<std::int64_t>(1, (after_micros + 999'999) / 1'000'000);
  r.headers["Retry-After"] = std::to_string(seconds);
  return r;
}

ApiResponse PostEvent(EventState& state, ApiRequest& request) {
  ServiceContext& ctx = *state.ctx;
  const std::string lane = request.path_params["lane"];
  if (ctx.ingest_key == nullptr) {
    return ApiResponse::Error(503, "ingest_not_configured",
                              "this service has no lane_ingest key file configured");
  }
  if (ctx.access == nullptr || ctx.vault == nullptr) {
    return ApiResponse::Error(500, "internal", "no access store or vault");
  }
  lane::SealedEvent sealed;
  sealed.event_id = HeaderOr(request, "x-event-id");
  if (!IsEventId(sealed.event_id)) {
    state.Count(lane, "rejected");
    return ApiResponse::Error(400, "invalid_argument",
                              "X-Event-Id must be 32 lower-case hex digits");
  }
  if (!ParseSequence(HeaderOr(request, "x-event-sequence"), &sealed.sequence)) {
    state.Count(lane, "rejected");
    return ApiResponse::Error(400, "invalid_argument",
                              "X-Event-Sequence must be a decimal integer");
  }
  sealed.sealed = std::move(request.body);

  lane::LaneEvent event;
  Status s;
  {
    const StageTimer timer("event_open");
    s = lane::OpenSealedEvent(sealed, *ctx.ingest_key, &event);
  }
  if (!s.ok()) {
    state.Count(lane, "rejected");
    LogEvent("warn", "sealed event refused",
             {{"event_id", sealed.event_id}, {"lane", lane}, {"error", s.ToString()}});
    return ApiResponse::Error(400, "sealed_event_invalid",
                              "the sealed event does not open or its ids differ from the headers");
  }
  struct Wiper {
    lane::LaneEvent* e;
    ~Wiper() { e->Wipe(); }
  } wiper{&event};
  if (event.lane != lane || event.device != request.principal.name) {
    state.Count(lane, "rejected");
    return ApiResponse::Error(400, "event_mismatch",
                              "the event's lane or device differs from the path or the caller");
  }

  const policy::EventClaim claim{event.event_id, lane, event.device, ctx.node_name,
                                 static_cast<std::int64_t>(event.sequence)};
  policy::EventClaimOutcome outcome = policy::EventClaimOutcome::kInProgress;
  policy::IngestedEvent row;
  {
    const StageTimer timer("event_claim");
    s = ctx.access->ClaimEvent(claim, ctx.ingest_claim_timeout_micros, &outcome, &row);
  }
  if (!s.ok()) {
    return RetryLater(1'000'000, "store_unavailable", "event claim failed: " + s.ToString());
  }
  switch (outcome) {
    case policy::EventClaimOutcome::kDone:
      return Duplicate(state, lane, request, row);
    case policy::EventClaimOutcome::kInProgress:
      return RetryLater(row.claimed_micros + ctx.ingest_claim_timeout_micros - state.Now(),
                        "event_in_progress", "another delivery of this event is being stored");
    case policy::EventClaimOutcome::kTakenOver:
    case policy::EventClaimOutcome::kClaimed:
      break;
  }
  if (row.device != request.principal.name || row.lane != lane) {
    // A taken-over claim of another device's event id: leave it to that device's retry.
    state.Count(lane, "rejected");
    return ApiResponse::Error(409, "event_id_conflict",
                              "this event id was delivered by another device or lane");
  }

  const vault::AccessContext who = IngestContext(request);
  if (outcome == policy::EventClaimOutcome::kTakenOver) {
    // The node that held the claim died after storing some or all of the records: remove them
    // first, so that exactly one record set remains.
    std::vector<std::string> orphans;
    s = FindEventRecords(ctx, who, event.event_id, row.previous_claimed_micros, state.Now(),
                         &orphans);
    if (!s.ok()) {
      (void)ctx.access->ReleaseEvent(event.event_id, row.claim);
      return RetryLater(1'000'000, "store_unavailable", s.ToString());
    }
    DeleteRecords(ctx, who, orphans, event.event_id);
    LogEvent("warn", "lane event claim taken over",
             {{"event_id", event.event_id}, {"lane", lane}, {"orphans", orphans.size()}});
    if (ctx.metrics != nullptr) {
      ctx.metrics->Increment("lane_event_takeovers_total",
                             "Unfinished event claims taken over from a dead node", {});
    }
  }

  std::vector<vault::RecordMeta> metas;
  std::uint64_t faces_dropped = 0;
  {
    const StageTimer timer("vault_put");
    s = StoreEvent(state, request, event, &metas, &faces_dropped);
  }
  std::vector<std::string> ids;
  ids.reserve(metas.size());
  for (const auto& m : metas) ids.push_back(m.id);
  if (!s.ok()) {
    // One batch: nothing of this event was stored, so releasing the claim is all there is to undo.
    (void)ctx.access->ReleaseEvent(event.event_id, row.claim);
    state.Count(lane, "store_error");
    LogEvent("error", "lane event not stored",
             {{"event_id", event.event_id}, {"lane", lane}, {"error", s.ToString()}});
    return RetryLater(1'000'000, "store_error", "the event's records could not be stored");
  }
  const json records = RecordsJson(metas);
  bool completed = false;
  {
    const StageTimer timer("event_complete");
    s = ctx.access->CompleteEvent(event.event_id, row.claim, records.dump(), &completed);
  }
  if (!s.ok() || !completed) {
    // Either the store failed (the claim stays unfinished; a retry after the timeout takes it
    // over and removes these records itself) or another node took the claim over while we were
    // slow: remove ours, the other node's set stands.
    if (s.ok()) DeleteRecords(ctx, who, ids, event.event_id);
    return RetryLater(1'000'000, "event_in_progress",
                      s.ok() ? "the event's claim was taken over; retry" : s.ToString());
  }
  if (faces_dropped != 0 && ctx.metrics != nullptr) {
    ctx.metrics->Increment("lane_event_faces_dropped_total",
                           "Face captures not kept: no retention rule covers them",
                           {{"lane", lane}}, static_cast<double>(faces_dropped));
  }
  state.Count(lane, "ingested");
  return ApiResponse::Json(
      201, {{"event_id", event.event_id}, {"records", records}, {"duplicate", false}});
}

// ---- POST /v1/lanes/{lane}/reports -------------------------------------------------------------

ApiResponse PostReport(EventState& state, ApiRequest& request) {
  ServiceContext& ctx = *state.ctx;
  const std::string lane = request.path_params["lane"];
  if (request.body.size() > kMaxReportBytes) {
    return ApiResponse::Error(413, "body_too_large", "a report is at most 64 KiB");
  }
  json report = json::parse(request.body, nullptr, false);
  if (report.is_discarded() || !report.is_object()) {
    return ApiResponse::Error(400, "invalid_json", "a report is a JSON object");
  }
  const auto kind = report.find("kind");
  if (kind == report.end() || !kind->is_string() || (*kind != "health" && *kind != "maintenance")) {
    return ApiResponse::Error(400, "invalid_argument",
                              "kind must be \"health\" or \"maintenance\"");
  }
  std::string device = request.principal.name;
  if (const auto d = report.find("device"); d != report.end()) {
    if (!d->is_string() || d->get<std::string>() != request.principal.name) {
      return ApiResponse::Error(400, "event_mismatch", "a device reports only about itself");
    }
  }
  std::string status = "unknown";
  if (const auto st = report.find("status"); st != report.end() && st->is_string()) {
    status = st->get<std::string>().substr(0, 32);
  }
  const std::int64_t now = state.Now();
  if (ctx.audit != nullptr) {
    // One line per report: who, which kind, which state. The report itself stays out of the log.
    audit::AuditEvent line;
    line.time_micros = now;
    line.principal = request.principal.name;
    line.role = std::string(policy::RoleName(request.principal.role));
    line.purpose = "lane " + lane + " " + kind->get<std::string>() + " report";
    line.action = "lane.report";
    line.result = "ok:" + status;
    const Status s = ctx.audit->Append(line);
    if (!s.ok()) {
      return RetryLater(1'000'000, "audit_unavailable", "the report could not be audited");
    }
  }
  if (ctx.device_reports != nullptr) {
    ctx.device_reports->Record({device, lane, kind->get<std::string>(), now, report});
  }
  if (ctx.metrics != nullptr) {
    ctx.metrics->Increment("lane_reports_total", "Device reports received",
                           {{"lane", lane}, {"kind", kind->get<std::string>()}});
  }
  return ApiResponse::Json(202, {{"device", device}, {"kind", *kind}, {"received_micros", now}});
}

}  // namespace

void AddLaneEventRoutes(ServiceContext& ctx, std::vector<Route>* routes) {
  auto state = std::make_shared<EventState>();
  state->ctx = &ctx;
  const auto bind = [state](ApiResponse (*fn)(EventState&, ApiRequest&)) -> Handler {
    return [state, fn](ApiRequest& request) { return fn(*state, request); };
  };
  // Heavy: opening and storing an event with crops and faces is CPU (the seal, the vault's AEAD)
  // and store work; the bounded worker pool keeps a burst from starving the control threads.
  routes->push_back({"POST", "/v1/lanes/{lane}/events", "event.submit", "plate_read", "lane", true,
                     bind(PostEvent)});
  routes->push_back({"POST", "/v1/lanes/{lane}/reports", "device.report", "device_health", "lane",
                     false, bind(PostReport)});
}

}  // namespace portcullis::server
