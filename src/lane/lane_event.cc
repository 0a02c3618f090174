#include "portcullis/lane_event.h"

#include <sodium.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "portcullis/key_provider.h"

namespace portcullis::lane {
namespace {

using nlohmann::json;

constexpr std::string_view kMagic = "PCLE";
constexpr unsigned char kVersion = 1;
// Bounds a decoder trusts before it allocates: an event is a few frames and crops.
constexpr std::size_t kMaxHeaderBytes = std::size_t{1} << 20;
constexpr std::size_t kMaxAttachmentBytes = std::size_t{64} << 20;
constexpr std::uint32_t kMaxAttachments = 64;
constexpr std::string_view kIngestKeyPrefix = "portcullis-ingest-v1 ";

void PutU32(std::uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xffU));
}

bool GetU32(std::string_view* in, std::uint32_t* v) {
  if (in->size() < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i) {
    *v |= static_cast<std::uint32_t>(static_cast<unsigned char>((*in)[static_cast<std::size_t>(i)]))
          << (8 * i);
  }
  in->remove_prefix(4);
  return true;
}

json BoxJson(const std::array<int, 4>& box) {
  return json::array({box[0], box[1], box[2], box[3]});
}

bool ReadBox(const json& j, std::array<int, 4>* box) {
  if (!j.is_array() || j.size() != 4) return false;
  for (std::size_t i = 0; i < 4; ++i) {
    if (!j[i].is_number_integer()) return false;
    (*box)[i] = j[i].get<int>();
  }
  return true;
}

bool ValidEventId(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

json HeaderJson(const LaneEvent& e) {
  json plates = json::array();
  for (const LanePlate& p : e.plates) {
    json candidates = json::array();
    for (const auto& [text, confidence] : p.candidates) {
      candidates.push_back({{"text", text}, {"confidence", confidence}});
    }
    plates.push_back({{"text", p.text},
                      {"confidence", p.confidence},
                      {"region", p.region},
                      {"format", p.format},
                      {"box", BoxJson(p.box)},
                      {"candidates", std::move(candidates)},
                      {"frames_seen", p.frames_seen},
                      {"crop", p.crop}});
  }
  json faces = json::array();
  for (const LaneFace& f : e.faces) {
    faces.push_back({{"box", BoxJson(f.box)}, {"quality", f.quality}, {"capture", f.capture}});
  }
  json attachments = json::array();
  for (const Attachment& a : e.attachments) {
    attachments.push_back({{"name", a.name}, {"content_type", a.content_type}});
  }
  return {{"event_id", e.event_id},
          {"sequence", e.sequence},
          {"kind", EventKindName(e.kind)},
          {"device", e.device},
          {"lane", e.lane},
          {"camera", e.camera},
          {"started_wall_micros", e.started_wall_micros},
          {"ended_wall_micros", e.ended_wall_micros},
          {"monotonic_micros", e.monotonic_micros},
          {"clock_jump", e.clock_jump},
          {"plates", std::move(plates)},
          {"faces", std::move(faces)},
          {"details", e.details_json},
          {"attachments", std::move(attachments)}};
}

Status ParseHeader(const json& h, LaneEvent* e) {
  try {
    if (!h.is_object()) return Status::Corruption("lane event header is not a JSON object");
    e->event_id = h.at("event_id").get<std::string>();
    if (!ValidEventId(e->event_id)) return Status::Corruption("lane event id is malformed");
    e->sequence = h.at("sequence").get<std::uint64_t>();
    const std::string kind = h.at("kind").get<std::string>();
    if (kind == "vehicle_pass") {
      e->kind = EventKind::kVehiclePass;
    } else if (kind == "health") {
      e->kind = EventKind::kHealth;
    } else if (kind == "maintenance") {
      e->kind = EventKind::kMaintenance;
    } else {
      return Status::Corruption("lane event kind '" + kind + "' is unknown");
    }
    e->device = h.at("device").get<std::string>();
    e->lane = h.at("lane").get<std::string>();
    e->camera = h.at("camera").get<std::string>();
    e->started_wall_micros = h.at("started_wall_micros").get<std::int64_t>();
    e->ended_wall_micros = h.at("ended_wall_micros").get<std::int64_t>();
    e->monotonic_micros = h.at("monotonic_micros").get<std::int64_t>();
    e->clock_jump = h.at("clock_jump").get<bool>();
    e->details_json = h.at("details").get<std::string>();
    for (const json& p : h.at("plates")) {
      LanePlate plate;
      plate.text = p.at("text").get<std::string>();
      plate.confidence = p.at("confidence").get<float>();
      plate.region = p.at("region").get<std::string>();
      plate.format = p.at("format").get<std::string>();
      if (!ReadBox(p.at("box"), &plate.box)) return Status::Corruption("lane plate box malformed");
      for (const json& c : p.at("candidates")) {
        plate.candidates.emplace_back(c.at("text").get<std::string>(),
                                      c.at("confidence").get<float>());
      }
      plate.frames_seen = p.at("frames_seen").get<int>();
      plate.crop = p.at("crop").get<std::string>();
      e->plates.push_back(std::move(plate));
    }
    for (const json& f : h.at("faces")) {
      LaneFace face;
      if (!ReadBox(f.at("box"), &face.box)) return Status::Corruption("lane face box malformed");
      face.quality = f.at("quality").get<float>();
      face.capture = f.at("capture").get<std::string>();
      e->faces.push_back(std::move(face));
    }
    const json& attachments = h.at("attachments");
    if (!attachments.is_array() || attachments.size() > kMaxAttachments) {
      return Status::Corruption("lane event attachments malformed");
    }
    for (const json& a : attachments) {
      Attachment attachment;
      attachment.name = a.at("name").get<std::string>();
      attachment.content_type = a.at("content_type").get<std::string>();
      e->attachments.push_back(std::move(attachment));
    }
  } catch (const json::exception& ex) {
    return Status::Corruption(std::string("lane event header malformed: ") + ex.what());
  }
  return Status::Ok();
}

}  // namespace

std::string_view EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kVehiclePass:
      return "vehicle_pass";
    case EventKind::kHealth:
      return "health";
    case EventKind::kMaintenance:
      return "maintenance";
  }
  return "unknown";
}

void LaneEvent::Wipe() {
  for (Attachment& a : attachments) {
    if (!a.bytes.empty()) sodium_memzero(a.bytes.data(), a.bytes.size());
    a.bytes.clear();
  }
  attachments.clear();
  for (LanePlate& p : plates) {
    if (!p.text.empty()) sodium_memzero(p.text.data(), p.text.size());
    for (auto& candidate : p.candidates) {
      if (!candidate.first.empty()) sodium_memzero(candidate.first.data(), candidate.first.size());
    }
  }
  plates.clear();
  faces.clear();
}

std::string NewEventId() {
  unsigned char bytes[16];
  randombytes_buf(bytes, sizeof bytes);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  id.reserve(32);
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 0x0f]);
  }
  return id;
}

Status EncodeLaneEvent(const LaneEvent& event, std::string* plaintext) {
  if (!ValidEventId(event.event_id)) {
    return Status::InvalidArgument("lane event id must be 32 lower-case hex digits");
  }
  if (event.attachments.size() > kMaxAttachments) {
    return Status::InvalidArgument("lane event has too many attachments");
  }
  const std::string header = HeaderJson(event).dump();
  if (header.size() > kMaxHeaderBytes) return Status::InvalidArgument("lane event header too big");
  std::size_t total = kMagic.size() + 1 + 4 + header.size() + 4;
  for (const Attachment& a : event.attachments) {
    if (a.bytes.size() > kMaxAttachmentBytes) {
      return Status::InvalidArgument("lane event attachment '" + a.name + "' is too big");
    }
    total += 4 + a.bytes.size();
  }
  plaintext->clear();
  plaintext->reserve(total);
  plaintext->append(kMagic);
  plaintext->push_back(static_cast<char>(kVersion));
  PutU32(static_cast<std::uint32_t>(header.size()), plaintext);
  plaintext->append(header);
  PutU32(static_cast<std::uint32_t>(event.attachments.size()), plaintext);
  for (const Attachment& a : event.attachments) {
    PutU32(static_cast<std::uint32_t>(a.bytes.size()), plaintext);
    plaintext->append(a.bytes);
  }
  return Status::Ok();
}

Status DecodeLaneEvent(std::string_view in, LaneEvent* event) {
  *event = LaneEvent{};
  if (in.size() < kMagic.size() + 1 || in.substr(0, kMagic.size()) != kMagic) {
    return Status::Corruption("not a lane event (bad magic)");
  }
  in.remove_prefix(kMagic.size());
  if (static_cast<unsigned char>(in[0]) != kVersion) {
    return Status::Unsupported("lane event version " +
                               std::to_string(static_cast<unsigned char>(in[0])) + " is unknown");
  }
  in.remove_prefix(1);
  std::uint32_t header_size = 0;
  if (!GetU32(&in, &header_size) || header_size > kMaxHeaderBytes || header_size > in.size()) {
    return Status::Corruption("lane event header length is bad");
  }
  const json header = json::parse(in.substr(0, header_size), nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return Status::Corruption("lane event header is not JSON");
  in.remove_prefix(header_size);
  PORTCULLIS_RETURN_IF_ERROR(ParseHeader(header, event));
  std::uint32_t count = 0;
  if (!GetU32(&in, &count) || count != event->attachments.size()) {
    return Status::Corruption("lane event attachment count does not match its header");
  }
  for (Attachment& a : event->attachments) {
    std::uint32_t size = 0;
    if (!GetU32(&in, &size) || size > kMaxAttachmentBytes || size > in.size()) {
      return Status::Corruption("lane event attachment '" + a.name + "' is truncated");
    }
    a.bytes.assign(in.substr(0, size));
    in.remove_prefix(size);
  }
  if (!in.empty()) return Status::Corruption("lane event has trailing bytes");
  return Status::Ok();
}

Status SealLaneEvent(const LaneEvent& event, const IngestPublicKey& key, SealedEvent* out) {
  PORTCULLIS_RETURN_IF_ERROR(vault::EnsureSodium());
  std::string plaintext;
  PORTCULLIS_RETURN_IF_ERROR(EncodeLaneEvent(event, &plaintext));
  out->event_id = event.event_id;
  out->sequence = event.sequence;
  out->sealed.assign(plaintext.size() + crypto_box_SEALBYTES, '\0');
  const int rc = crypto_box_seal(reinterpret_cast<unsigned char*>(out->sealed.data()),
                                 reinterpret_cast<const unsigned char*>(plaintext.data()),
                                 plaintext.size(), key.bytes.data());
  sodium_memzero(plaintext.data(), plaintext.size());
  if (rc != 0) {
    out->sealed.clear();
    return Status::Internal("crypto_box_seal failed");
  }
  return Status::Ok();
}

Status ParseIngestPublicKey(std::string_view text, IngestPublicKey* key) {
  PORTCULLIS_RETURN_IF_ERROR(vault::EnsureSodium());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  if (!text.starts_with(kIngestKeyPrefix)) {
    return Status::InvalidArgument("ingest public key must start with 'portcullis-ingest-v1 '");
  }
  text.remove_prefix(kIngestKeyPrefix.size());
  std::size_t length = 0;
  if (sodium_base642bin(key->bytes.data(), key->bytes.size(), text.data(), text.size(), nullptr,
                        &length, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      length != kIngestPublicKeyBytes) {
    return Status::InvalidArgument("ingest public key is not 32 bytes of base64");
  }
  return Status::Ok();
}

std::string FormatIngestPublicKey(const IngestPublicKey& key) {
  std::string b64(sodium_base64_ENCODED_LEN(kIngestPublicKeyBytes, sodium_base64_VARIANT_ORIGINAL),
                  '\0');
  sodium_bin2base64(b64.data(), b64.size(), key.bytes.data(), key.bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  b64.resize(std::strlen(b64.c_str()));
  return std::string(kIngestKeyPrefix) + b64;
}

}  // namespace portcullis::lane
