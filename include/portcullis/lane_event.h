// A lane event: what the lane agent (the edge computer at a vehicle lane) learns from one vehicle
// pass, and the sealed form in which it is ever written to disk or sent to the service.
//
// The 2019 breach began at the edge: a technician copied images off an unencrypted lane device.
// So the agent never holds a readable image at rest. It builds a LaneEvent in memory, encodes it,
// and seals it at once to the vault's ingest public key (libsodium sealed box: X25519 +
// XSalsa20-Poly1305). The agent has only the public key: it can seal but never open, so neither
// its disk, its offline queue nor a stolen device yields a plate or a face. Only the service,
// which unwraps the ingest secret key through the vault's key provider, can open a SealedEvent.
//
//   LaneEvent event = ...;                      // from the pass detector
//   SealedEvent sealed;
//   Status s = SealLaneEvent(event, ingest_public_key, &sealed);   // event's buffers may be wiped
//   now
//   ...queue, send...
//   LaneEvent opened;                           // service side
//   s = OpenSealedEvent(sealed, ingest_key_pair, &opened);
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/status.h"

namespace portcullis::lane {

// An image or other binary carried by an event (best frame, plate crop, face capture).
struct Attachment {
  std::string name;          // unique within the event: "frame", "plate-0", "face-0"
  std::string content_type;  // "image/jpeg"
  std::string bytes;         // wiped (sodium_memzero) by whoever drops the event
};

// One plate seen during the pass (the tracker's vote over its frames).
struct LanePlate {
  std::string text;
  float confidence = 0;
  std::string region;  // "us", "eu", "br" or ""
  std::string format;
  std::array<int, 4> box{};                               // x, y, w, h in the best frame
  std::vector<std::pair<std::string, float>> candidates;  // text, confidence; best first
  int frames_seen = 0;
  std::string crop;  // name of the attachment holding the plate crop, or ""
};

// One occupant face captured through the windshield (lanes configured for faces only).
struct LaneFace {
  std::array<int, 4> box{};  // x, y, w, h in the frame it was taken from
  float quality = 0;         // the face engine's quality score in [0, 1]
  std::string capture;       // name of the attachment holding the aligned face chip
};

enum class EventKind {
  kVehiclePass,  // plates (and faces) of one vehicle
  kHealth,       // a health snapshot: no images, no plate text
  kMaintenance,  // a maintenance session opened, used or closed on the device
};
std::string_view EventKindName(EventKind kind);  // "vehicle_pass", "health", "maintenance"

struct LaneEvent {
  std::string event_id;        // 32 lower-case hex digits, random (NewEventId); the idempotency key
  std::uint64_t sequence = 0;  // per device, increasing; the queue's and the service's order
  EventKind kind = EventKind::kVehiclePass;
  std::string device;                    // the device's principal name, e.g. "lane:7-a"
  std::string lane;                      // "7"
  std::string camera;                    // the camera's id in the agent's config
  std::int64_t started_wall_micros = 0;  // wall clock (may jump; see clock_jump)
  std::int64_t ended_wall_micros = 0;
  std::int64_t monotonic_micros = 0;  // the agent's monotonic clock at the end of the pass
  bool clock_jump = false;            // the wall clock jumped during the pass (times suspect)
  std::vector<LanePlate> plates;      // best first
  std::vector<LaneFace> faces;
  std::string details_json;  // kHealth / kMaintenance: a JSON object with the details; else ""
  std::vector<Attachment> attachments;

  // Overwrites every attachment's bytes and the plate texts with zeros, then clears them.
  void Wipe();
};

// 32 lower-case hex digits from the OS CSPRNG.
std::string NewEventId();

// The plaintext encoding (inside the seal): "PCLE" magic, version byte, a JSON header (all fields
// but the attachments' bytes) and the attachments' bytes, each length-prefixed. Decode checks
// every length and field: Corruption on anything malformed, never a crash.
Status EncodeLaneEvent(const LaneEvent& event, std::string* plaintext);
Status DecodeLaneEvent(std::string_view plaintext, LaneEvent* event);

// The ingest key pair: X25519 (crypto_box). The agent's config holds only the public key.
inline constexpr std::size_t kIngestPublicKeyBytes = 32;
struct IngestPublicKey {
  std::array<unsigned char, kIngestPublicKeyBytes> bytes{};
};

// What is written to the queue and sent to the service. Only event_id and sequence are in the
// clear (random id and a counter: no personal data); everything else is in `sealed`.
struct SealedEvent {
  std::string event_id;
  std::uint64_t sequence = 0;
  std::string sealed;  // crypto_box_seal(EncodeLaneEvent(event), ingest public key)
};

// Encodes and seals. The plaintext encoding is wiped before return.
Status SealLaneEvent(const LaneEvent& event, const IngestPublicKey& key, SealedEvent* out);

// Parses "portcullis-ingest-v1 <base64 public key>" (one line, the format `portcullis lane
// ingest-key` writes). InvalidArgument on anything else.
Status ParseIngestPublicKey(std::string_view text, IngestPublicKey* key);
std::string FormatIngestPublicKey(const IngestPublicKey& key);

}  // namespace portcullis::lane
