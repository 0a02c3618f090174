// The auditors' endpoints (docs/api.md, "Audit"): the latest signed tree head, inclusion and
// consistency proofs, leaves, and the whole log as NDJSON. Everything an auditor needs to check
// the log offline comes with it: the public key in every head, proofs as hex, leaves as the exact
// bytes that were hashed (base64) next to their decoded fields. A leaf names the record it touched
// only by its keyed hash (record_ref), never by id.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "portcullis/audit.h"
#include "server/api.h"

namespace portcullis::server {
namespace {

using audit::Hash;
using audit::HashToHex;
using nlohmann::json;

// At most this many leaves per /v1/audit/leaves call (docs/api.md).
constexpr std::uint64_t kMaxLeavesPerCall = 10'000;
// The export reads the log in pages of this many leaves.
constexpr std::uint64_t kExportPage = 10'000;

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v =
        static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i]) << 16U) |
        static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1]) << 8U) |
        static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18U) & 63U];
    out += kAlphabet[(v >> 12U) & 63U];
    out += kAlphabet[(v >> 6U) & 63U];
    out += kAlphabet[v & 63U];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i]) << 16U);
    if (rest == 2) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1]) << 8U);
    out += kAlphabet[(v >> 18U) & 63U];
    out += kAlphabet[(v >> 12U) & 63U];
    out += rest == 2 ? kAlphabet[(v >> 6U) & 63U] : '=';
    out += '=';
  }
  return out;
}

std::string BytesHex(const std::uint8_t* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4U];
    out[2 * i + 1] = kDigits[data[i] & 15U];
  }
  return out;
}

json HeadJson(const audit::SignedTreeHead& sth, const audit::PublicKey& key) {
  return {{"tree_size", sth.tree_size},
          {"timestamp_micros", sth.timestamp_micros},
          {"root_hash", HashToHex(sth.root_hash)},
          {"signature", BytesHex(sth.signature.data(), sth.signature.size())},
          {"public_key", HashToHex(key)}};
}

json PathJson(const std::vector<Hash>& path) {
  json out = json::array();
  for (const Hash& h : path) out.push_back(HashToHex(h));
  return out;
}

// A leaf: its exact bytes (what the tree hashes) and, when it decodes, its fields. A leaf that
// does not decode is reported as such rather than hidden: the auditor must see it.
json LeafJson(std::uint64_t index, const std::string& leaf) {
  json out = {{"index", index},
              {"leaf_base64", Base64(leaf)},
              {"leaf_hash", HashToHex(audit::LeafHash(leaf))}};
  audit::LeafRecord r;
  const Status s = audit::DecodeLeaf(leaf, &r);
  if (!s.ok()) {
    out["decode_error"] = s.message();
    return out;
  }
  out["version"] = r.version;
  out["time_micros"] = r.time_micros;
  out["principal"] = r.principal;
  out["role"] = r.role;
  out["purpose"] = r.purpose;
  out["action"] = r.action;
  out["result"] = r.result;
  out["record_ref"] = r.has_record ? json(HashToHex(r.record_ref)) : json(nullptr);
  return out;
}

ApiResponse FromStatus(const Status& s) {
  switch (s.code()) {
    case Status::Code::kInvalidArgument:
      return ApiResponse::Error(400, "invalid_argument", s.message());
    case Status::Code::kNotFound:
      return ApiResponse::Error(404, "not_found", s.message());
    case Status::Code::kIOError:
    case Status::Code::kResourceExhausted:
      // The log's storage is unreachable (PostgreSQL down): try again later.
      return ApiResponse::Error(503, "not_ready", "the audit log is unavailable: " + s.message());
    default:
      return ApiResponse::Error(500, "internal", s.message());
  }
}

// A query parameter that must be a non-negative decimal integer. Absent: *present = false.
// Anything else (sign, spaces, hex, overflow) is a 400 with a message naming the parameter.
bool ParseU64Param(const ApiRequest& request, const char* name, std::uint64_t* value, bool* present,
                   ApiResponse* error) {
  const auto it = request.query.find(name);
  *present = it != request.query.end();
  if (!*present) return true;
  const std::string& text = it->second;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  if (text.empty() || text.size() > 20 || ec != std::errc() || ptr != end || text[0] == '+') {
    *error = ApiResponse::Error(
        400, "invalid_argument",
        std::string("query parameter '") + name + "' must be a non-negative integer");
    return false;
  }
  return true;
}

bool RequireU64Param(const ApiRequest& request, const char* name, std::uint64_t* value,
                     ApiResponse* error) {
  bool present = false;
  if (!ParseU64Param(request, name, value, &present, error)) return false;
  if (!present) {
    *error = ApiResponse::Error(400, "invalid_argument",
                                std::string("query parameter '") + name + "' is required");
    return false;
  }
  return true;
}

ApiResponse TreeHead(const ServiceContext& ctx) {
  audit::SignedTreeHead sth;
  const Status s = ctx.audit->LatestTreeHead(&sth);
  if (!s.ok()) return FromStatus(s);
  return ApiResponse::Json(200, HeadJson(sth, ctx.audit->public_key()));
}

ApiResponse Inclusion(const ServiceContext& ctx, const ApiRequest& request) {
  ApiResponse error;
  std::uint64_t index = 0;
  std::uint64_t size = 0;
  bool size_given = false;
  if (!RequireU64Param(request, "index", &index, &error) ||
      !ParseU64Param(request, "size", &size, &size_given, &error)) {
    return error;
  }
  audit::SignedTreeHead latest;
  Status s = ctx.audit->LatestTreeHead(&latest);
  if (!s.ok()) return FromStatus(s);
  if (!size_given) size = latest.tree_size;
  audit::InclusionProof proof;
  s = ctx.audit->ProveInclusion(index, size, &proof);
  if (!s.ok()) return FromStatus(s);
  std::vector<std::string> leaf;
  s = ctx.audit->ReadLeaves(index, index + 1, &leaf);
  if (!s.ok()) return FromStatus(s);
  json body = {
      {"leaf_index", proof.leaf_index},
      {"tree_size", proof.tree_size},
      {"leaf_hash", HashToHex(audit::LeafHash(leaf.at(0)))},
      {"path", PathJson(proof.path)},
      // The head to verify against, when the proof is at the latest size; otherwise
      // the auditor uses a head of that size it already holds.
      {"tree_head", proof.tree_size == latest.tree_size ? HeadJson(latest, ctx.audit->public_key())
                                                        : json(nullptr)}};
  return ApiResponse::Json(200, body);
}

ApiResponse Consistency(const ServiceContext& ctx, const ApiRequest& request) {
  ApiResponse error;
  std::uint64_t first = 0;
  std::uint64_t second = 0;
  bool second_given = false;
  if (!RequireU64Param(request, "first", &first, &error) ||
      !ParseU64Param(request, "second", &second, &second_given, &error)) {
    return error;
  }
  audit::SignedTreeHead latest;
  Status s = ctx.audit->LatestTreeHead(&latest);
  if (!s.ok()) return FromStatus(s);
  if (!second_given) second = latest.tree_size;
  audit::ConsistencyProof proof;
  s = ctx.audit->ProveConsistency(first, second, &proof);
  if (!s.ok()) return FromStatus(s);
  json body = {{"first_size", proof.first_size},
               {"second_size", proof.second_size},
               {"path", PathJson(proof.path)},
               {"tree_head", proof.second_size == latest.tree_size
                                 ? HeadJson(latest, ctx.audit->public_key())
                                 : json(nullptr)}};
  return ApiResponse::Json(200, body);
}

ApiResponse Leaves(const ServiceContext& ctx, const ApiRequest& request) {
  ApiResponse error;
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  bool start_given = false;
  bool end_given = false;
  if (!ParseU64Param(request, "start", &start, &start_given, &error) ||
      !ParseU64Param(request, "end", &end, &end_given, &error)) {
    return error;
  }
  std::uint64_t size = 0;
  Status s = ctx.audit->Size(&size);
  if (!s.ok()) return FromStatus(s);
  if (!end_given) end = start < size ? std::min(size, start + kMaxLeavesPerCall) : start;
  if (end < start) {
    return ApiResponse::Error(400, "invalid_argument", "'end' must not be less than 'start'");
  }
  if (end - start > kMaxLeavesPerCall) {
    return ApiResponse::Error(400, "invalid_argument",
                              "at most " + std::to_string(kMaxLeavesPerCall) +
                                  " leaves per call; use /v1/audit/export for the whole log");
  }
  std::vector<std::string> leaves;
  s = ctx.audit->ReadLeaves(start, end, &leaves);
  if (!s.ok()) return FromStatus(s);
  json items = json::array();
  for (std::size_t i = 0; i < leaves.size(); ++i) items.push_back(LeafJson(start + i, leaves[i]));
  return ApiResponse::Json(
      200, {{"start", start}, {"end", end}, {"tree_size", size}, {"leaves", std::move(items)}});
}

// NDJSON: one line per leaf ({"type": "leaf", ...}), then one per signed tree head, oldest first
// ({"type": "tree_head", ...}). A snapshot: the heads are read first and the leaves up to the
// latest of them, so every head in the export is checkable against the leaves in it.
ApiResponse Export(const ServiceContext& ctx) {
  std::vector<audit::SignedTreeHead> heads;
  Status s = ctx.audit->TreeHeads(&heads);
  if (!s.ok()) return FromStatus(s);
  const std::uint64_t size = heads.empty() ? 0 : heads.back().tree_size;
  const audit::PublicKey key = ctx.audit->public_key();
  std::string body;
  std::vector<std::string> page;
  for (std::uint64_t start = 0; start < size; start += kExportPage) {
    const std::uint64_t end = std::min(size, start + kExportPage);
    s = ctx.audit->ReadLeaves(start, end, &page);
    if (!s.ok()) return FromStatus(s);
    for (std::size_t i = 0; i < page.size(); ++i) {
      json line = LeafJson(start + i, page[i]);
      line["type"] = "leaf";
      body += line.dump(-1, ' ', false, json::error_handler_t::replace);
      body += '\n';
    }
  }
  for (const audit::SignedTreeHead& head : heads) {
    json line = HeadJson(head, key);
    line["type"] = "tree_head";
    body += line.dump();
    body += '\n';
  }
  ApiResponse response = ApiResponse::Bytes(200, "application/x-ndjson", std::move(body));
  response.headers["Content-Disposition"] = "attachment; filename=\"audit-log.ndjson\"";
  return response;
}

}  // namespace

void AddAuditRoutes(ServiceContext& ctx, std::vector<Route>* routes) {
  ServiceContext* c = &ctx;
  auto route = [&](std::string pattern, std::string action, Handler handler) {
    Route r;
    r.method = "GET";
    r.pattern = std::move(pattern);
    r.action = std::move(action);
    r.category = "audit_log";
    r.handler = [c, inner = std::move(handler)](ApiRequest& request) {
      if (c->audit == nullptr) {
        return ApiResponse::Error(503, "not_ready", "this node has no audit log configured");
      }
      return inner(request);
    };
    routes->push_back(std::move(r));
  };
  route("/v1/audit/tree-head", "audit.read", [c](ApiRequest&) { return TreeHead(*c); });
  route("/v1/audit/proofs/inclusion", "audit.read",
        [c](ApiRequest& request) { return Inclusion(*c, request); });
  route("/v1/audit/proofs/consistency", "audit.read",
        [c](ApiRequest& request) { return Consistency(*c, request); });
  route("/v1/audit/leaves", "audit.read", [c](ApiRequest& request) { return Leaves(*c, request); });
  route("/v1/audit/export", "audit.export", [c](ApiRequest&) { return Export(*c); });
}

}  // namespace portcullis::server
