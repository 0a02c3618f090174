// Airport gates: "match, don't store", enforced by code.
//
// A gate opens a gallery from a flight manifest (document photos or templates), matches each live
// capture against it (1:N, or 1:1 against a claimed traveller) and closes it when boarding ends.
// What is kept, and where (docs/service-gates.md has the full story):
//   - the gallery itself: one sealed `template` record (labels {"gate", "gallery": "self"}) whose
//     id IS the gallery id, holding the manifest's ids and subjects and the serialised Gallery.
//     Any node sharing the vault can Get it, so nodes stay stateless; each caches it in memory;
//   - one sealed `template` record per enrolled traveller (subject per traveller, labels
//     {"gate", "gallery"}; the traveller id only inside the sealed body);
//   - one sealed `traveller` record per manifest entry (the manifest entry, no biometrics), found
//     again through a keyed hash of the traveller id (label "traveller_key", HMAC-SHA-256 under
//     a key all nodes share): the vault never sees a traveller id in clear;
//   - one sealed `match_decision` per match, and a `kept_capture` only when the keep policy says
//     so for the subject AND a retention rule covers it. Document photos are not kept unless
//     keep_document_photos is set (`gallery_photo` records).
// The live capture is never returned, never stored in clear, and wiped from memory after use.
//
// Thread-safety: every method may be called from many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "portcullis/env.h"
#include "portcullis/face.h"
#include "portcullis/face_gallery.h"
#include "portcullis/image.h"
#include "portcullis/status.h"
#include "portcullis/vault.h"
#include "portcullis/vault_record.h"

namespace portcullis::server {

class Metrics;

// Whose live captures are kept (encrypted, as `kept_capture`, for the retention class's time)
// after the decision. Default: citizens' captures are dropped, non-citizens' kept. A capture
// nobody was matched to (no_match, 1:N or 1:1) is treated as a non-citizen's: the person at the
// gate is unidentified, and that is the case a secondary review needs. Keeping also needs a
// retention rule for (kept_capture, subject): without one the capture is dropped.
struct KeepPolicy {
  bool citizen = false;
  bool non_citizen = true;
  [[nodiscard]] bool Keeps(vault::SubjectCategory subject) const;
};
// {"citizen": "drop"|"keep", "non_citizen": "drop"|"keep"}; missing keys keep their default.
// InvalidArgument naming the key for anything else.
Status ParseKeepPolicy(std::string_view json, KeepPolicy* policy);

inline constexpr std::size_t kTravellerKeyBytes = 32;
// The key of the traveller lookup labels: a file of 64 hex digits (mode 0600). All nodes sharing
// a vault must share it (like the keyring). create_if_missing writes a fresh random one.
Status LoadTravellerKey(Env* env, const std::string& path, bool create_if_missing,
                        std::string* key);

struct GateGalleriesOptions {
  std::string traveller_key;  // kTravellerKeyBytes; required
  KeepPolicy keep;
  bool keep_document_photos = false;  // as `gallery_photo` records; off: templates only
  std::size_t max_travellers = 1000;  // per manifest
  std::size_t max_photo_bytes = std::size_t{4} << 20;      // one encoded document photo
  std::size_t max_manifest_bytes = std::size_t{64} << 20;  // the whole JSON body (413 above)
  std::size_t max_cached_galleries = 64;                   // per node; least recently used go first
  ImageLimits image_limits;                                // document photos and live captures
};

// The "gates" section of the service config (docs/service-gates.md), every key optional except
// traveller_key:
//   {"traveller_key": PATH, "create_traveller_key": false,
//    "keep": {"citizen": "drop", "non_citizen": "keep"}, "keep_document_photos": false,
//    "max_travellers": 1000, "max_photo_bytes": 4194304, "max_manifest_bytes": 67108864,
//    "max_cached_galleries": 64}
// InvalidArgument naming the key for an unknown key or a wrong type; errors of LoadTravellerKey.
Status GateGalleriesOptionsFromJson(std::string_view json, Env* env, GateGalleriesOptions* out);

// One manifest entry, decoded (the route parses and validates the JSON).
struct ManifestTraveller {
  std::string id;  // [A-Za-z0-9._-]{1,64}, unique in the manifest
  vault::SubjectCategory subject = vault::SubjectCategory::kNonCitizen;
  std::string photo;           // an encoded JPEG/PNG document photo; wiped after use
  std::string template_bytes;  // or a FaceTemplate::Serialize(); wiped after use
};

struct Manifest {
  std::string flight;
  std::vector<ManifestTraveller> travellers;
};

struct Refusal {
  std::string id;
  std::string reason;  // a QualityIssueName, "bad_image" or "bad_template"
};

struct OpenedGallery {
  std::string gallery;  // the id of the gallery's vault record
  std::string flight;
  std::size_t enrolled = 0;
  std::vector<Refusal> refused;
};

struct MatchOutcome {
  // Set when the capture was refused: nothing else below is set, nothing was stored.
  face::QualityIssue quality = face::QualityIssue::kNone;
  std::string mode;  // "1:N" or "1:1"
  bool match = false;
  std::string traveller;  // the matched traveller; "" when none
  std::string claim;      // the claimed traveller (1:1)
  float distance = 0;
  float distance_threshold = 0;  // the engine's operating point
  float score = 0;               // SimilarityFromDistance(distance)
  float threshold = 0;           // SimilarityFromDistance(distance_threshold)
  bool capture_kept = false;
  std::string decision_id;  // the match_decision record
  vault::SubjectCategory subject = vault::SubjectCategory::kNonCitizen;  // of the decision
};

struct GalleryInfo {
  std::string gallery;
  std::string gate;
  std::string flight;
  std::size_t size = 0;     // enrolled templates
  std::size_t refused = 0;  // manifest entries that could not be enrolled
  std::int64_t created_micros = 0;
  std::int64_t expires_micros = 0;
};

struct ClosedGallery {
  std::size_t templates_destroyed = 0;  // the per-traveller template records deleted
  std::size_t records_deleted = 0;      // every record deleted, the gallery record included
};

struct TravellerEntry {  // one manifest entry of the traveller
  std::string record;    // the traveller record's id
  std::string gallery, gate, flight;
  vault::SubjectCategory subject = vault::SubjectCategory::kNonCitizen;
  bool enrolled = false;
  std::string reason;        // why not enrolled
  std::string photo_record;  // the kept document photo, "" when none
  std::int64_t created_micros = 0;
};

struct TravellerDecision {
  std::string record;
  std::string gate, gallery, decision, mode, capture;
  float score = 0;
  float threshold = 0;
  std::int64_t created_micros = 0;
};

struct TravellerReport {
  std::vector<TravellerEntry> entries;
  std::vector<TravellerDecision> decisions;
};

struct GateStat {
  std::string gate;
  std::uint64_t matches = 0;
  std::uint64_t no_matches = 0;
  std::uint64_t one_to_one = 0;  // decisions on a claim
};

struct GateStatsReport {
  std::int64_t from_micros = 0;
  std::int64_t until_micros = 0;
  std::vector<GateStat> gates;  // sorted by gate
};

class GateGalleries {
 public:
  // Not owned; all outlive this. metrics may be null.
  GateGalleries(vault::Vault* vault, Env* env, Metrics* metrics, GateGalleriesOptions options);
  ~GateGalleries();
  GateGalleries(const GateGalleries&) = delete;
  GateGalleries& operator=(const GateGalleries&) = delete;

  // Enrols every traveller it can (per-traveller refusals are not errors) and stores the gallery.
  // The photos and templates in *manifest are wiped. InvalidArgument: no traveller key, too many
  // travellers, duplicate ids; errors of the vault otherwise.
  Status Open(const vault::AccessContext& ctx, const std::string& gate, Manifest* manifest,
              face::FaceEngine* engine, OpenedGallery* out);

  // Embeds the capture and decides. A quality refusal is OK with out->quality set. NotFound: no
  // such gallery at this gate (closed, expired, another gate's) or, with a claim, no such
  // traveller in it. `encoded` (the bytes as received) is what a kept capture stores; the caller
  // wipes it and bgr afterwards.
  Status Match(const vault::AccessContext& ctx, const std::string& gate, const std::string& gallery,
               const std::string& claim, const cv::Mat& bgr, std::string_view encoded,
               const std::string& content_type, face::FaceEngine* engine, MatchOutcome* out);

  Status Describe(const vault::AccessContext& ctx, const std::string& gate,
                  const std::string& gallery, GalleryInfo* out);

  // Deletes the per-traveller templates (and kept document photos), then the gallery record, and
  // wipes this node's cached copy; other nodes notice on their next use (NotFound).
  Status Close(const vault::AccessContext& ctx, const std::string& gate, const std::string& gallery,
               ClosedGallery* out);

  // NotFound when the vault holds neither a manifest entry nor a decision for this id.
  Status LookupTraveller(const vault::AccessContext& ctx, const std::string& traveller,
                         TravellerReport* out);
  // The most recent kept document photo; NotFound when none is kept.
  Status TravellerPhoto(const vault::AccessContext& ctx, const std::string& traveller,
                        std::string* content_type, std::string* bytes);

  // Decision counts per gate over [now - hours, now), from record metadata alone (no decryption).
  Status Stats(const vault::AccessContext& ctx, int hours, GateStatsReport* out);

  // The label that finds a traveller's records: hex HMAC-SHA-256(key, "portcullis-traveller-v1:"
  // || id).
  [[nodiscard]] std::string TravellerKey(std::string_view traveller) const;
  [[nodiscard]] std::size_t cached_galleries() const;
  [[nodiscard]] const GateGalleriesOptions& options() const { return options_; }

 private:
  struct Cached;
  // The gallery, from this node's cache or the vault. A cached one is checked to be still stored
  // (closed or purged by another node: NotFound) unless verify_stored is false: then *fresh
  // (optional) says whether it was just read from the vault, which proves it exists.
  Status Load(const vault::AccessContext& ctx, const std::string& gate, const std::string& gallery,
              std::shared_ptr<Cached>* out, bool verify_stored = true, bool* fresh = nullptr);
  Status StillStored(const vault::AccessContext& ctx, const Cached& cached, bool* stored);
  void Remember(const std::shared_ptr<Cached>& cached);
  void Forget(const std::string& gallery);
  Status RecordsOf(const vault::AccessContext& ctx, vault::RecordType type,
                   std::int64_t created_from, const std::string& label, const std::string& value,
                   std::vector<vault::RecordMeta>* out);

  vault::Vault* vault_;
  Env* env_;
  Metrics* metrics_;
  GateGalleriesOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Cached>> cache_;
  // Subjects whose kept captures no retention rule covers (learned from the vault: dropped).
  std::set<vault::SubjectCategory> no_capture_rule_;
  std::uint64_t use_counter_ = 0;
};

// Zeroes a buffer in a way the optimiser cannot drop (captures, photos, templates after use).
void WipeString(std::string* s);
void WipeMat(cv::Mat* m);

}  // namespace portcullis::server
