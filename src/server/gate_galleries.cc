// Gate galleries: open (enrol + seal), match (embed, decide, keep or drop), close (delete + wipe),
// traveller lookups and decision counts. The order of the vault calls is part of the design and
// is explained where it happens.
#include "server/gate_galleries.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "server/metrics.h"
#include "server/stage_timer.h"

namespace portcullis::server {
namespace {

using vault::RecordType;
using vault::SubjectCategory;

constexpr char kGalleryMagic[4] = {'P', 'C', 'G', 'B'};
constexpr std::uint32_t kGalleryBlobVersion = 1;
constexpr const char* kGalleryContentType = "application/vnd.portcullis.gallery";
constexpr const char* kTemplateContentType = "application/vnd.portcullis.template";
// Labels: a gallery record says "self"; its members name it.
constexpr const char* kLabelGate = "gate";
constexpr const char* kLabelGallery = "gallery";
constexpr const char* kSelf = "self";
constexpr const char* kLabelTravellerKey = "traveller_key";
constexpr const char* kLabelDecision = "decision";
constexpr const char* kLabelMode = "mode";
// Walking record metadata in pages of this many.
constexpr std::size_t kPage = 1000;
// A decoded gallery header larger than this is corrupt (1000 travellers need ~100 KiB).
constexpr std::size_t kMaxHeaderBytes = std::size_t{16} << 20;

face::GalleryOptions GateGalleryOptions() {
  // Per-flight galleries are small: exact float32 scores, bit-identical to Verify.
  face::GalleryOptions options;
  options.storage = face::GalleryStorage::kFloat32;
  options.index = face::GalleryIndex::kExact;
  return options;
}

void PutU32(std::string* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xffU));
}

std::uint32_t GetU32(std::string_view in) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) {
    v = (v << 8) | static_cast<std::uint8_t>(in[static_cast<std::size_t>(i)]);
  }
  return v;
}

// The gallery record's body: "PCGB" | u32 header length | header JSON | Gallery::Serialize().
struct GalleryHeader {
  std::string gate;
  std::string flight;
  std::vector<std::pair<std::string, SubjectCategory>> travellers;  // enrolled
  std::vector<Refusal> refused;
};

Status EncodeGalleryBlob(const GalleryHeader& header, const face::Gallery& gallery,
                         std::string* out) {
  nlohmann::json j;
  j["version"] = kGalleryBlobVersion;
  j["gate"] = header.gate;
  j["flight"] = header.flight;
  j["travellers"] = nlohmann::json::array();
  for (const auto& [id, subject] : header.travellers) {
    j["travellers"].push_back({{"id", id}, {"subject", vault::SubjectCategoryName(subject)}});
  }
  j["refused"] = nlohmann::json::array();
  for (const Refusal& r : header.refused) {
    j["refused"].push_back({{"id", r.id}, {"reason", r.reason}});
  }
  const std::string text = j.dump();
  std::string templates;
  PORTCULLIS_RETURN_IF_ERROR(gallery.Serialize(&templates));
  out->clear();
  out->reserve(8 + text.size() + templates.size());
  out->append(kGalleryMagic, sizeof(kGalleryMagic));
  PutU32(out, static_cast<std::uint32_t>(text.size()));
  out->append(text);
  out->append(templates);
  WipeString(&templates);
  return Status::Ok();
}

Status DecodeGalleryBlob(std::string_view body, GalleryHeader* header,
                         std::unique_ptr<face::Gallery>* gallery) {
  if (body.size() < 8 || body.substr(0, 4) != std::string_view(kGalleryMagic, 4)) {
    return Status::Corruption("not a gallery record");
  }
  const std::uint32_t length = GetU32(body.substr(4, 4));
  if (length > kMaxHeaderBytes || length > body.size() - 8) {
    return Status::Corruption("gallery record: header length out of range");
  }
  try {
    const nlohmann::json j = nlohmann::json::parse(body.substr(8, length));
    if (j.at("version").get<std::uint32_t>() != kGalleryBlobVersion) {
      return Status::Unsupported("gallery record: unknown version");
    }
    header->gate = j.at("gate").get<std::string>();
    header->flight = j.at("flight").get<std::string>();
    header->travellers.clear();
    for (const auto& t : j.at("travellers")) {
      SubjectCategory subject{};
      PORTCULLIS_RETURN_IF_ERROR(
          vault::ParseSubjectCategory(t.at("subject").get<std::string>(), &subject));
      header->travellers.emplace_back(t.at("id").get<std::string>(), subject);
    }
    header->refused.clear();
    for (const auto& r : j.at("refused")) {
      header->refused.push_back({r.at("id").get<std::string>(), r.at("reason").get<std::string>()});
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(std::string("gallery record header: ") + e.what());
  }
  PORTCULLIS_RETURN_IF_ERROR(
      face::Gallery::Deserialize(body.substr(8 + length), GateGalleryOptions(), gallery));
  if ((*gallery)->size() != header->travellers.size()) {
    return Status::Corruption("gallery record: header and templates disagree");
  }
  for (const auto& t : header->travellers) {
    if (!(*gallery)->Contains(t.first)) {
      return Status::Corruption("gallery record: a traveller has no template");
    }
  }
  return Status::Ok();
}

// A per-traveller template record: u8 id length | id | FaceTemplate::Serialize().
std::string EncodeTemplateRecord(const std::string& id, const face::FaceTemplate& t) {
  std::string out;
  std::string serialized = t.Serialize();
  out.push_back(static_cast<char>(id.size()));
  out.append(id);
  out.append(serialized);
  WipeString(&serialized);
  return out;
}

float Clamp01(float v) { return std::min(1.0f, std::max(0.0f, v)); }

void Count(Metrics* metrics, std::string_view name, std::string_view help,
           const MetricLabels& labels) {
  if (metrics != nullptr) metrics->Increment(name, help, labels);
}

std::string Hex(const unsigned char* data, std::size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), data, n);
  out.resize(n * 2);
  return out;
}

}  // namespace

void WipeString(std::string* s) {
  if (s == nullptr || s->empty()) return;
  sodium_memzero(s->data(), s->size());
  s->clear();
}

void WipeMat(cv::Mat* m) {
  if (m == nullptr || m->empty()) return;
  if (m->isContinuous()) {
    sodium_memzero(m->data, m->total() * m->elemSize());
  } else {
    for (int r = 0; r < m->rows; ++r) {
      sodium_memzero(m->ptr(r), static_cast<std::size_t>(m->cols) * m->elemSize());
    }
  }
  m->release();
}

bool KeepPolicy::Keeps(SubjectCategory subject) const {
  switch (subject) {
    case SubjectCategory::kCitizen:
      return citizen;
    case SubjectCategory::kNonCitizen:
      return non_citizen;
    case SubjectCategory::kVehicle:
      return false;
  }
  return false;
}

Status ParseKeepPolicy(std::string_view json, KeepPolicy* policy) {
  KeepPolicy parsed = *policy;
  try {
    const nlohmann::json j = nlohmann::json::parse(json);
    if (!j.is_object()) return Status::InvalidArgument("keep policy: not a JSON object");
    for (const auto& [key, value] : j.items()) {
      bool* slot = nullptr;
      if (key == "citizen") slot = &parsed.citizen;
      if (key == "non_citizen") slot = &parsed.non_citizen;
      if (slot == nullptr) return Status::InvalidArgument("keep policy: unknown key " + key);
      if (!value.is_string() || (value != "keep" && value != "drop")) {
        return Status::InvalidArgument("keep policy: " + key + " must be \"keep\" or \"drop\"");
      }
      *slot = value == "keep";
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("keep policy: ") + e.what());
  }
  *policy = parsed;
  return Status::Ok();
}

Status LoadTravellerKey(Env* env, const std::string& path, bool create_if_missing,
                        std::string* key) {
  if (env == nullptr) env = Env::Default();
  if (create_if_missing && env->KindOf(path) == FileKind::kMissing) {
    unsigned char fresh[kTravellerKeyBytes];
    randombytes_buf(fresh, sizeof(fresh));
    const std::string text = Hex(fresh, sizeof(fresh)) + "\n";
    sodium_memzero(fresh, sizeof(fresh));
    // O_EXCL: two nodes starting at once must not each write their own key.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      const ssize_t written = ::write(fd, text.data(), text.size());
      const bool synced = ::fsync(fd) == 0;
      ::close(fd);
      if (written != static_cast<ssize_t>(text.size()) || !synced) {
        return Status::IOError("write traveller key " + path);
      }
    } else if (errno != EEXIST) {
      return Status::IOError("create traveller key " + path + ": " + std::strerror(errno));
    }
  }
  std::string text;
  PORTCULLIS_RETURN_IF_ERROR(env->ReadFile(path, 256, &text));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  std::string bytes(kTravellerKeyBytes, '\0');
  std::size_t length = 0;
  if (text.size() != kTravellerKeyBytes * 2 ||
      sodium_hex2bin(reinterpret_cast<unsigned char*>(bytes.data()), bytes.size(), text.data(),
                     text.size(), nullptr, &length, nullptr) != 0 ||
      length != kTravellerKeyBytes) {
    WipeString(&text);
    return Status::Corruption("traveller key " + path + ": expected 64 hex digits");
  }
  WipeString(&text);
  *key = std::move(bytes);
  return Status::Ok();
}

Status GateGalleriesOptionsFromJson(std::string_view json, Env* env, GateGalleriesOptions* out) {
  GateGalleriesOptions options;
  std::string key_path;
  bool create_key = false;
  try {
    const nlohmann::json j = nlohmann::json::parse(json);
    if (!j.is_object()) return Status::InvalidArgument("gates: not a JSON object");
    auto size_of = [](const nlohmann::json& v, const std::string& key, std::size_t* slot) {
      if (!v.is_number_unsigned() || v.get<std::uint64_t>() == 0) {
        return Status::InvalidArgument("gates." + key + ": a positive integer");
      }
      *slot = static_cast<std::size_t>(v.get<std::uint64_t>());
      return Status::Ok();
    };
    for (const auto& [key, value] : j.items()) {
      if (key == "traveller_key" && value.is_string()) {
        key_path = value.get<std::string>();
      } else if (key == "create_traveller_key" && value.is_boolean()) {
        create_key = value.get<bool>();
      } else if (key == "keep_document_photos" && value.is_boolean()) {
        options.keep_document_photos = value.get<bool>();
      } else if (key == "keep") {
        PORTCULLIS_RETURN_IF_ERROR(ParseKeepPolicy(value.dump(), &options.keep));
      } else if (key == "max_travellers") {
        PORTCULLIS_RETURN_IF_ERROR(size_of(value, key, &options.max_travellers));
      } else if (key == "max_photo_bytes") {
        PORTCULLIS_RETURN_IF_ERROR(size_of(value, key, &options.max_photo_bytes));
      } else if (key == "max_manifest_bytes") {
        PORTCULLIS_RETURN_IF_ERROR(size_of(value, key, &options.max_manifest_bytes));
      } else if (key == "max_cached_galleries") {
        PORTCULLIS_RETURN_IF_ERROR(size_of(value, key, &options.max_cached_galleries));
      } else {
        return Status::InvalidArgument("gates." + key + ": unknown key or wrong type");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("gates: ") + e.what());
  }
  if (key_path.empty()) {
    return Status::InvalidArgument("gates.traveller_key: required (a file all nodes share)");
  }
  PORTCULLIS_RETURN_IF_ERROR(LoadTravellerKey(env, key_path, create_key, &options.traveller_key));
  *out = std::move(options);
  return Status::Ok();
}

// What a node holds of an open gallery.
struct GateGalleries::Cached {
  std::string id;
  GalleryHeader header;
  std::map<std::string, SubjectCategory> subjects;
  std::unique_ptr<face::Gallery> gallery;
  std::int64_t created_micros = 0;
  std::int64_t expires_micros = 0;
  std::uint64_t last_use = 0;
};

GateGalleries::GateGalleries(vault::Vault* vault, Env* env, Metrics* metrics,
                             GateGalleriesOptions options)
    : vault_(vault),
      env_(env != nullptr ? env : Env::Default()),
      metrics_(metrics),
      options_(std::move(options)) {}

GateGalleries::~GateGalleries() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, cached] : cache_) cached->gallery->Clear();
  sodium_memzero(options_.traveller_key.data(), options_.traveller_key.size());
}

std::string GateGalleries::TravellerKey(std::string_view traveller) const {
  const std::string message = "portcullis-traveller-v1:" + std::string(traveller);
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state,
                              reinterpret_cast<const unsigned char*>(options_.traveller_key.data()),
                              options_.traveller_key.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(message.data()),
                                message.size());
  crypto_auth_hmacsha256_final(&state, mac);
  sodium_memzero(&state, sizeof(state));
  return Hex(mac, sizeof(mac));
}

std::size_t GateGalleries::cached_galleries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.size();
}

void GateGalleries::Remember(const std::shared_ptr<Cached>& cached) {
  std::lock_guard<std::mutex> lock(mu_);
  cached->last_use = ++use_counter_;
  cache_[cached->id] = cached;
  while (cache_.size() > std::max<std::size_t>(1, options_.max_cached_galleries)) {
    auto oldest = cache_.begin();
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->second->last_use < oldest->second->last_use) oldest = it;
    }
    // Another thread may still be matching against it; its memory is wiped when the last user
    // lets go (Gallery wipes on destruction).
    cache_.erase(oldest);
  }
  if (metrics_ != nullptr) {
    metrics_->Set("gate_galleries_cached", "Galleries this node holds in memory", {},
                  static_cast<double>(cache_.size()));
  }
}

void GateGalleries::Forget(const std::string& gallery) {
  std::shared_ptr<Cached> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(gallery);
    if (it == cache_.end()) return;
    dropped = std::move(it->second);
    cache_.erase(it);
  }
  // Clear wipes the templates now, even while an in-flight match still holds the pointer (it
  // then sees an empty gallery, i.e. no match, never a stale one).
  dropped->gallery->Clear();
}

Status GateGalleries::StillStored(const vault::AccessContext& ctx, const Cached& cached,
                                  bool* stored) {
  // Metadata only: the records created in the gallery record's microsecond. One small query, no
  // decryption, and it sees a close (or a purge) done by any node.
  vault::RecordFilter filter;
  filter.type = RecordType::kTemplate;
  filter.created_from = cached.created_micros;
  filter.created_until = cached.created_micros + 1;
  filter.limit = kPage;
  *stored = false;
  while (true) {
    vault::RecordPage page;
    PORTCULLIS_RETURN_IF_ERROR(vault_->List(ctx, filter, &page));
    for (const vault::RecordMeta& meta : page.records) {
      if (meta.id == cached.id) {
        *stored = true;
        return Status::Ok();
      }
    }
    if (page.next_cursor.empty()) return Status::Ok();
    filter.cursor = page.next_cursor;
  }
}

Status GateGalleries::Load(const vault::AccessContext& ctx, const std::string& gate,
                           const std::string& gallery, std::shared_ptr<Cached>* out,
                           bool verify_stored, bool* fresh_read) {
  if (fresh_read != nullptr) *fresh_read = false;
  if (!vault::IsValidRecordId(gallery)) return Status::NotFound("no gallery " + gallery);
  std::shared_ptr<Cached> cached;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(gallery);
    if (it != cache_.end()) {
      cached = it->second;
      cached->last_use = ++use_counter_;
    }
  }
  auto gone = [&] { return Status::NotFound("no open gallery " + gallery + " at gate " + gate); };
  if (cached != nullptr) {
    bool stored = !verify_stored;
    if (verify_stored) PORTCULLIS_RETURN_IF_ERROR(StillStored(ctx, *cached, &stored));
    if (!stored) {
      Forget(gallery);
      return gone();
    }
  } else {
    vault::RecordMeta meta;
    std::string body;
    Status s = vault_->Get(ctx, gallery, &meta, &body);
    if (s.code() == Status::Code::kNotFound) return gone();
    PORTCULLIS_RETURN_IF_ERROR(s);
    if (meta.type != RecordType::kTemplate || meta.labels.count(kLabelGallery) == 0 ||
        meta.labels.at(kLabelGallery) != kSelf) {
      WipeString(&body);
      return gone();  // some other record's id: not a gallery
    }
    auto fresh = std::make_shared<Cached>();
    fresh->id = gallery;
    fresh->created_micros = meta.created_micros;
    fresh->expires_micros = meta.expires_micros;
    s = DecodeGalleryBlob(body, &fresh->header, &fresh->gallery);
    WipeString(&body);
    PORTCULLIS_RETURN_IF_ERROR(s.WithContext("gallery " + gallery));
    for (const auto& [id, subject] : fresh->header.travellers) fresh->subjects[id] = subject;
    Remember(fresh);
    cached = std::move(fresh);
    if (fresh_read != nullptr) *fresh_read = true;
  }
  // Another gate's gallery does not exist for this gate (a device only sees its own).
  if (cached->header.gate != gate) return gone();
  *out = std::move(cached);
  return Status::Ok();
}

Status GateGalleries::Open(const vault::AccessContext& ctx, const std::string& gate,
                           Manifest* manifest, face::FaceEngine* engine, OpenedGallery* out) {
  if (options_.traveller_key.size() != kTravellerKeyBytes) {
    return Status::InvalidArgument("gate galleries: no traveller key configured");
  }
  if (engine == nullptr) return Status::InvalidArgument("no face engine");
  if (manifest->travellers.empty()) return Status::InvalidArgument("travellers: empty");
  if (manifest->travellers.size() > options_.max_travellers) {
    return Status::InvalidArgument("travellers: more than " +
                                   std::to_string(options_.max_travellers));
  }
  struct Wiper {  // every photo and template of the manifest is wiped, however we leave
    Manifest* m;
    ~Wiper() {
      for (ManifestTraveller& t : m->travellers) {
        WipeString(&t.photo);
        WipeString(&t.template_bytes);
      }
    }
  } wiper{manifest};

  // 1. Enrol. A refusal is about one traveller (a bad scan), never the flight.
  GalleryHeader header;
  header.gate = gate;
  header.flight = manifest->flight;
  face::Gallery gallery(GateGalleryOptions());
  std::vector<face::FaceTemplate> templates(manifest->travellers.size());
  std::vector<bool> enrolled(manifest->travellers.size(), false);
  std::set<std::string> seen;
  bool any_non_citizen = false;
  for (std::size_t i = 0; i < manifest->travellers.size(); ++i) {
    ManifestTraveller& t = manifest->travellers[i];
    if (!seen.insert(t.id).second) {
      return Status::InvalidArgument("travellers[" + std::to_string(i) + "].id: duplicate");
    }
    if (t.subject == SubjectCategory::kNonCitizen) any_non_citizen = true;
    std::string reason;
    if (!t.photo.empty()) {
      cv::Mat bgr;
      ImageLimits limits = options_.image_limits;
      limits.max_file_bytes = std::min(limits.max_file_bytes, options_.max_photo_bytes);
      if (!DecodeImage(t.photo, limits, &bgr).ok()) {
        reason = "bad_image";
      } else {
        face::FaceCapture capture;
        const Status s = engine->Enrol(bgr, &templates[i], &capture);
        if (!s.ok()) {
          reason = capture.issue != face::QualityIssue::kNone
                       ? face::QualityIssueName(capture.issue)
                       : "bad_image";
        }
      }
      WipeMat(&bgr);
    } else if (!face::FaceTemplate::Deserialize(t.template_bytes, &templates[i]).ok()) {
      reason = "bad_template";
    }
    if (reason.empty()) {
      PORTCULLIS_RETURN_IF_ERROR(gallery.Enrol(t.id, templates[i]));
      enrolled[i] = true;
      header.travellers.emplace_back(t.id, t.subject);
    } else {
      header.refused.push_back({t.id, reason});
    }
  }

  // 2. The gallery record first: its id is the gallery id, which every other record names.
  std::string blob;
  PORTCULLIS_RETURN_IF_ERROR(EncodeGalleryBlob(header, gallery, &blob));
  vault::NewRecord gallery_record;
  gallery_record.type = RecordType::kTemplate;
  // Both subjects' templates share the "gallery" retention class; a mixed manifest is filed
  // under non_citizen, the category with the stricter handling rules.
  gallery_record.subject =
      any_non_citizen ? SubjectCategory::kNonCitizen : SubjectCategory::kCitizen;
  gallery_record.content_type = kGalleryContentType;
  gallery_record.labels = {{kLabelGate, gate}, {kLabelGallery, kSelf}};
  gallery_record.body = blob;
  vault::RecordMeta gallery_meta;
  Status s = vault_->Put(ctx, gallery_record, &gallery_meta);
  WipeString(&blob);
  PORTCULLIS_RETURN_IF_ERROR(s);
  const std::string gallery_id = gallery_meta.id;
  std::vector<std::string> written = {gallery_id};
  auto undo = [&](const Status& failure) {
    // Best effort: what stays behind is sealed and expires with the "gallery" class anyway.
    for (auto it = written.rbegin(); it != written.rend(); ++it) (void)vault_->Delete(ctx, *it);
    return failure;
  };
  const std::map<std::string, std::string> member_labels = {{kLabelGate, gate},
                                                            {kLabelGallery, gallery_id}};

  // 3. Document photos, only when configured (templates are all a gate needs).
  std::vector<std::string> photo_ids(manifest->travellers.size());
  if (options_.keep_document_photos) {
    std::vector<vault::NewRecord> photos;
    std::vector<std::size_t> owners;
    for (std::size_t i = 0; i < manifest->travellers.size(); ++i) {
      const ManifestTraveller& t = manifest->travellers[i];
      const ImageFormat format = SniffImageFormat(t.photo);
      if (t.photo.empty() || format == ImageFormat::kUnknown) continue;
      vault::NewRecord r;
      r.type = RecordType::kGalleryPhoto;
      r.subject = t.subject;
      r.content_type = format == ImageFormat::kPng   ? "image/png"
                       : format == ImageFormat::kBmp ? "image/bmp"
                                                     : "image/jpeg";
      r.labels = member_labels;
      r.body = t.photo;
      photos.push_back(std::move(r));
      owners.push_back(i);
    }
    if (!photos.empty()) {
      std::vector<vault::RecordMeta> metas;
      s = vault_->PutBatch(ctx, photos, &metas);
      if (!s.ok()) return undo(s);
      for (std::size_t k = 0; k < metas.size(); ++k) {
        photo_ids[owners[k]] = metas[k].id;
        written.push_back(metas[k].id);
      }
    }
  }

  // 4. One template record per enrolled traveller and one traveller record per manifest entry,
  // in one transaction.
  std::vector<std::string> bodies;  // kept alive (and wiped) around the batch
  bodies.reserve(manifest->travellers.size() * 2);
  std::vector<vault::NewRecord> members;
  for (std::size_t i = 0; i < manifest->travellers.size(); ++i) {
    const ManifestTraveller& t = manifest->travellers[i];
    if (enrolled[i]) {
      bodies.push_back(EncodeTemplateRecord(t.id, templates[i]));
      vault::NewRecord r;
      r.type = RecordType::kTemplate;
      r.subject = t.subject;
      r.content_type = kTemplateContentType;
      r.labels = member_labels;
      r.body = bodies.back();
      members.push_back(std::move(r));
    }
    nlohmann::json entry;
    entry["traveller"] = t.id;
    entry["subject"] = vault::SubjectCategoryName(t.subject);
    entry["flight"] = manifest->flight;
    entry["gate"] = gate;
    entry["gallery"] = gallery_id;
    entry["enrolled"] = enrolled[i];
    entry["reason"] = nullptr;
    for (const Refusal& r : header.refused) {
      if (r.id == t.id) entry["reason"] = r.reason;
    }
    entry["photo_record"] = photo_ids[i].empty() ? nlohmann::json() : nlohmann::json(photo_ids[i]);
    bodies.push_back(entry.dump());
    vault::NewRecord r;
    r.type = RecordType::kTraveller;
    r.subject = t.subject;
    r.content_type = "application/json";
    r.labels = member_labels;
    r.labels[kLabelTravellerKey] = TravellerKey(t.id);
    r.body = bodies.back();
    members.push_back(std::move(r));
  }
  std::vector<vault::RecordMeta> member_metas;
  s = vault_->PutBatch(ctx, members, &member_metas);
  for (std::string& b : bodies) WipeString(&b);
  if (!s.ok()) return undo(s);

  // 5. This node keeps the gallery it just built; others load it from the vault on first use.
  auto cached = std::make_shared<Cached>();
  cached->id = gallery_id;
  cached->created_micros = gallery_meta.created_micros;
  cached->expires_micros = gallery_meta.expires_micros;
  for (const auto& [id, subject] : header.travellers) cached->subjects[id] = subject;
  cached->gallery = std::make_unique<face::Gallery>(GateGalleryOptions());
  for (std::size_t i = 0; i < manifest->travellers.size(); ++i) {
    if (enrolled[i]) {
      PORTCULLIS_RETURN_IF_ERROR(cached->gallery->Enrol(manifest->travellers[i].id, templates[i]));
    }
  }
  out->gallery = gallery_id;
  out->flight = manifest->flight;
  out->enrolled = header.travellers.size();
  out->refused = header.refused;
  cached->header = std::move(header);
  Remember(cached);
  return Status::Ok();
}

Status GateGalleries::Match(const vault::AccessContext& ctx, const std::string& gate,
                            const std::string& gallery, const std::string& claim,
                            const cv::Mat& bgr, std::string_view encoded,
                            const std::string& content_type, face::FaceEngine* engine,
                            MatchOutcome* out) {
  *out = MatchOutcome{};
  if (engine == nullptr) return Status::InvalidArgument("no face engine");
  // A cached gallery is not checked against the vault here: the decision's put below requires the
  // gallery's record in its own transaction (vault::PutOptions::requires_record), which sees a
  // close or purge by any node, atomically, without an audited read (and its own group commit)
  // before every match. Answers that store nothing check the old way (CheckedGone).
  std::shared_ptr<Cached> cached;
  bool fresh = false;
  {
    const StageTimer timer("gallery_load");
    PORTCULLIS_RETURN_IF_ERROR(Load(ctx, gate, gallery, &cached, false, &fresh));
  }
  auto gone = [&] { return Status::NotFound("no open gallery " + gallery + " at gate " + gate); };
  // Before an answer that stores nothing: NotFound when the gallery was closed meanwhile.
  auto checked = [&](Status answer) -> Status {
    if (fresh) return answer;
    const StageTimer timer("gallery_check");
    bool stored = false;
    PORTCULLIS_RETURN_IF_ERROR(StillStored(ctx, *cached, &stored));
    if (!stored) {
      Forget(gallery);
      return gone();
    }
    return answer;
  };
  if (!claim.empty() && cached->subjects.count(claim) == 0) {
    return Status::NotFound("traveller " + claim + " is not enrolled in gallery " + gallery);
  }

  face::FaceTemplate probe;  // wipes itself when this function returns
  face::FaceCapture capture;
  // Smaller than any face the engine could measure: refused without running it.
  const bool tiny =
      bgr.cols < options_.image_limits.min_side || bgr.rows < options_.image_limits.min_side;
  if (tiny) capture.issue = face::QualityIssue::kFaceTooSmall;
  Status embedded;
  {
    const StageTimer timer("engine");
    embedded = tiny ? Status::InvalidArgument("capture smaller than a face")
                    : engine->Enrol(bgr, &probe, &capture);
  }
  if (!embedded.ok()) {
    if (capture.issue == face::QualityIssue::kNone) return embedded;
    out->quality = capture.issue;
    Count(metrics_, "quality_refusals_total", "Live captures refused for quality, by reason",
          {{"gate", gate}, {"reason", face::QualityIssueName(capture.issue)}});
    const Status answer = checked(Status::Ok());
    if (!answer.ok()) out->quality = face::QualityIssue::kNone;
    return answer;
  }

  out->distance_threshold = engine->match_threshold();
  out->threshold = face::SimilarityFromDistance(out->distance_threshold);
  out->claim = claim;
  std::vector<face::Candidate> candidates;
  if (claim.empty()) {
    out->mode = "1:N";
    Status s = cached->gallery->Identify(probe, 1, &candidates);
    // An empty gallery (everyone refused, or wiped by a close racing us) identifies no one.
    if (!s.ok() && s.code() != Status::Code::kNotFound) return s;
  } else {
    out->mode = "1:1";
    // The claimed traveller's distance: an exact scan of a per-flight gallery is microseconds, and
    // keeps a single copy of the templates in memory.
    std::vector<face::Candidate> all;
    Status s = cached->gallery->IdentifyExact(
        probe, static_cast<int>(std::max<std::size_t>(1, cached->gallery->size())), &all);
    if (!s.ok() && s.code() != Status::Code::kNotFound) return s;
    for (face::Candidate& c : all) {
      if (c.id == claim) candidates.push_back(std::move(c));
    }
    if (candidates.empty()) {
      return checked(
          Status::NotFound("traveller " + claim + " is not enrolled in gallery " + gallery));
    }
  }
  if (!candidates.empty()) {
    out->distance = candidates.front().distance;
    out->score = Clamp01(candidates.front().similarity);
    out->match = candidates.front().distance <= out->distance_threshold;
    if (out->match) out->traveller = candidates.front().id;
  } else {
    out->distance = std::numeric_limits<float>::infinity();
    out->score = 0;
  }
  // Whose decision it is: the matched traveller's; an unmatched face is nobody on the manifest.
  out->subject = out->match ? cached->subjects.at(out->traveller) : SubjectCategory::kNonCitizen;
  const std::string decision = out->match ? "match" : "no_match";
  std::map<std::string, std::string> labels = {{kLabelGate, gate},
                                               {kLabelGallery, gallery},
                                               {kLabelDecision, decision},
                                               {kLabelMode, out->mode}};
  const std::string about = out->match ? out->traveller : claim;
  if (!about.empty()) labels[kLabelTravellerKey] = TravellerKey(about);

  // The capture: kept (sealed) only when the keep policy says so for this subject and a
  // retention rule covers it; otherwise it never reaches the vault. It is stored with the decision
  // that names it, in one vault batch: one transaction, one audit batch, one commit of each for
  // the whole match; and either both are kept or neither.
  bool keep = options_.keep.Keeps(out->subject);
  if (keep) {
    std::lock_guard<std::mutex> lock(mu_);
    keep = no_capture_rule_.count(out->subject) == 0;
  }
  std::string decision_text;
  auto batch_of = [&](bool with_capture) {
    std::vector<vault::NewRecord> batch;
    std::string capture_id;
    if (with_capture) {
      vault::NewRecord kept;
      kept.id = vault::NewRecordId();
      kept.type = RecordType::kKeptCapture;
      kept.subject = out->subject;
      kept.content_type = content_type;
      kept.labels = {{kLabelGate, gate}, {kLabelGallery, gallery}};
      kept.body = encoded;
      capture_id = kept.id;
      batch.push_back(std::move(kept));
    }
    nlohmann::json body;
    body["decision"] = decision;
    body["mode"] = out->mode;
    body["traveller"] = out->traveller.empty() ? nlohmann::json() : nlohmann::json(out->traveller);
    body["claim"] = claim.empty() ? nlohmann::json() : nlohmann::json(claim);
    body["score"] = out->score;
    body["threshold"] = out->threshold;
    body["distance"] =
        std::isfinite(out->distance) ? nlohmann::json(out->distance) : nlohmann::json();
    body["distance_threshold"] = out->distance_threshold;
    body["gate"] = gate;
    body["gallery"] = gallery;
    body["flight"] = cached->header.flight;
    body["capture"] = with_capture ? "kept" : "dropped";
    body["capture_record"] = capture_id.empty() ? nlohmann::json() : nlohmann::json(capture_id);
    decision_text = body.dump();
    vault::NewRecord record;
    record.type = RecordType::kMatchDecision;
    record.subject = out->subject;
    record.content_type = "application/json";
    record.labels = labels;
    record.body = decision_text;
    batch.push_back(std::move(record));
    return batch;
  };
  vault::PutOptions put_options;
  put_options.requires_record = gallery;  // a closed gallery takes no decision
  std::vector<vault::RecordMeta> metas;
  Status s;
  {
    const StageTimer timer("vault_put");
    s = vault_->PutBatch(ctx, batch_of(keep), put_options, &metas);
    if (s.code() == Status::Code::kNotFound && keep) {
      // NotFound: the gallery is gone, or no retention rule covers this subject's kept captures
      // (then the capture is dropped, as the keep policy says). The retry without the capture
      // tells them apart; rules do not change while the vault is open, so it is remembered.
      s = vault_->PutBatch(ctx, batch_of(false), put_options, &metas);
      if (s.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        no_capture_rule_.insert(out->subject);
      }
    }
  }
  if (s.code() == Status::Code::kNotFound) {
    Forget(gallery);
    return gone();
  }
  if (!s.ok()) return s;
  out->capture_kept = metas.size() == 2;
  const vault::RecordMeta& meta = metas.back();
  out->decision_id = meta.id;
  Count(metrics_, "matches_total", "Face match decisions at gates",
        {{"gate", gate}, {"decision", decision}});
  return Status::Ok();
}

Status GateGalleries::Describe(const vault::AccessContext& ctx, const std::string& gate,
                               const std::string& gallery, GalleryInfo* out) {
  std::shared_ptr<Cached> cached;
  PORTCULLIS_RETURN_IF_ERROR(Load(ctx, gate, gallery, &cached));
  out->gallery = cached->id;
  out->gate = cached->header.gate;
  out->flight = cached->header.flight;
  out->size = cached->gallery->size();
  out->refused = cached->header.refused.size();
  out->created_micros = cached->created_micros;
  out->expires_micros = cached->expires_micros;
  return Status::Ok();
}

Status GateGalleries::RecordsOf(const vault::AccessContext& ctx, vault::RecordType type,
                                std::int64_t created_from, const std::string& label,
                                const std::string& value, std::vector<vault::RecordMeta>* out) {
  // The vault lists by type and time, not by label: walk the metadata and filter here. Bounded by
  // the records of one type created since created_from (retention keeps that window short).
  vault::RecordFilter filter;
  filter.type = type;
  if (created_from > 0) filter.created_from = created_from;
  filter.limit = kPage;
  while (true) {
    vault::RecordPage page;
    PORTCULLIS_RETURN_IF_ERROR(vault_->List(ctx, filter, &page));
    for (vault::RecordMeta& meta : page.records) {
      auto it = meta.labels.find(label);
      if (it != meta.labels.end() && it->second == value) out->push_back(std::move(meta));
    }
    if (page.next_cursor.empty()) return Status::Ok();
    filter.cursor = page.next_cursor;
  }
}

Status GateGalleries::Close(const vault::AccessContext& ctx, const std::string& gate,
                            const std::string& gallery, ClosedGallery* out) {
  *out = ClosedGallery{};
  std::shared_ptr<Cached> cached;
  PORTCULLIS_RETURN_IF_ERROR(Load(ctx, gate, gallery, &cached));
  // This node stops matching at once.
  Forget(gallery);
  // Members first, the gallery record last: a close that fails half-way can be repeated, because
  // the gallery (and so the close) still exists until everything it names is gone.
  for (const RecordType type : {RecordType::kTemplate, RecordType::kGalleryPhoto}) {
    std::vector<vault::RecordMeta> members;
    PORTCULLIS_RETURN_IF_ERROR(
        RecordsOf(ctx, type, cached->created_micros, kLabelGallery, gallery, &members));
    for (const vault::RecordMeta& meta : members) {
      const Status s = vault_->Delete(ctx, meta.id);
      if (s.code() == Status::Code::kNotFound) continue;  // a concurrent close got there first
      PORTCULLIS_RETURN_IF_ERROR(s);
      ++out->records_deleted;
      if (type == RecordType::kTemplate) ++out->templates_destroyed;
    }
  }
  const Status s = vault_->Delete(ctx, gallery);
  if (s.code() == Status::Code::kNotFound) {
    return Status::NotFound("gallery " + gallery + " was closed meanwhile");
  }
  PORTCULLIS_RETURN_IF_ERROR(s);
  ++out->records_deleted;
  return Status::Ok();
}

Status GateGalleries::LookupTraveller(const vault::AccessContext& ctx, const std::string& traveller,
                                      TravellerReport* out) {
  *out = TravellerReport{};
  if (options_.traveller_key.size() != kTravellerKeyBytes) {
    return Status::InvalidArgument("gate galleries: no traveller key configured");
  }
  const std::string key = TravellerKey(traveller);
  std::vector<vault::RecordMeta> entries;
  PORTCULLIS_RETURN_IF_ERROR(
      RecordsOf(ctx, RecordType::kTraveller, 0, kLabelTravellerKey, key, &entries));
  for (const vault::RecordMeta& meta : entries) {
    std::string body;
    const Status s = vault_->Get(ctx, meta.id, nullptr, &body);
    if (s.code() == Status::Code::kNotFound) continue;  // purged between list and get
    PORTCULLIS_RETURN_IF_ERROR(s);
    try {
      const nlohmann::json j = nlohmann::json::parse(body);
      if (j.at("traveller").get<std::string>() != traveller) continue;  // an HMAC collision
      TravellerEntry e;
      e.record = meta.id;
      e.gallery = j.at("gallery").get<std::string>();
      e.gate = j.at("gate").get<std::string>();
      e.flight = j.at("flight").get<std::string>();
      e.subject = meta.subject;
      e.enrolled = j.at("enrolled").get<bool>();
      if (j.at("reason").is_string()) e.reason = j.at("reason").get<std::string>();
      if (j.at("photo_record").is_string())
        e.photo_record = j.at("photo_record").get<std::string>();
      e.created_micros = meta.created_micros;
      out->entries.push_back(std::move(e));
    } catch (const nlohmann::json::exception& e) {
      return Status::Corruption("traveller record " + meta.id + ": " + e.what());
    }
  }
  std::vector<vault::RecordMeta> decisions;
  PORTCULLIS_RETURN_IF_ERROR(
      RecordsOf(ctx, RecordType::kMatchDecision, 0, kLabelTravellerKey, key, &decisions));
  for (const vault::RecordMeta& meta : decisions) {
    std::string body;
    const Status s = vault_->Get(ctx, meta.id, nullptr, &body);
    if (s.code() == Status::Code::kNotFound) continue;
    PORTCULLIS_RETURN_IF_ERROR(s);
    try {
      const nlohmann::json j = nlohmann::json::parse(body);
      const std::string about = j.at("traveller").is_string() ? j.at("traveller").get<std::string>()
                                : j.at("claim").is_string()   ? j.at("claim").get<std::string>()
                                                              : std::string();
      if (about != traveller) continue;
      TravellerDecision d;
      d.record = meta.id;
      d.gate = j.at("gate").get<std::string>();
      d.gallery = j.at("gallery").get<std::string>();
      d.decision = j.at("decision").get<std::string>();
      d.mode = j.at("mode").get<std::string>();
      d.capture = j.at("capture").get<std::string>();
      d.score = j.at("score").get<float>();
      d.threshold = j.at("threshold").get<float>();
      d.created_micros = meta.created_micros;
      out->decisions.push_back(std::move(d));
    } catch (const nlohmann::json::exception& e) {
      return Status::Corruption("decision record " + meta.id + ": " + e.what());
    }
  }
  if (out->entries.empty() && out->decisions.empty()) {
    return Status::NotFound("no record of traveller " + traveller);
  }
  return Status::Ok();
}

Status GateGalleries::TravellerPhoto(const vault::AccessContext& ctx, const std::string& traveller,
                                     std::string* content_type, std::string* bytes) {
  TravellerReport report;
  PORTCULLIS_RETURN_IF_ERROR(LookupTraveller(ctx, traveller, &report));
  const TravellerEntry* newest = nullptr;
  for (const TravellerEntry& e : report.entries) {
    if (!e.photo_record.empty() &&
        (newest == nullptr || e.created_micros > newest->created_micros)) {
      newest = &e;
    }
  }
  if (newest == nullptr) return Status::NotFound("no document photo is kept for " + traveller);
  vault::RecordMeta meta;
  const Status s = vault_->Get(ctx, newest->photo_record, &meta, bytes);
  if (s.code() == Status::Code::kNotFound) {
    return Status::NotFound("the document photo of " + traveller + " is gone (gallery closed)");
  }
  PORTCULLIS_RETURN_IF_ERROR(s);
  *content_type = meta.content_type;
  return Status::Ok();
}

Status GateGalleries::Stats(const vault::AccessContext& ctx, int hours, GateStatsReport* out) {
  *out = GateStatsReport{};
  out->until_micros = env_->NowMicros();
  out->from_micros = out->until_micros - std::int64_t{hours} * 3600 * 1000 * 1000;
  vault::RecordFilter filter;
  filter.type = RecordType::kMatchDecision;
  filter.created_from = out->from_micros;
  filter.created_until = out->until_micros + 1;
  filter.limit = kPage;
  std::map<std::string, GateStat> by_gate;
  while (true) {
    vault::RecordPage page;
    PORTCULLIS_RETURN_IF_ERROR(vault_->List(ctx, filter, &page));
    for (const vault::RecordMeta& meta : page.records) {
      auto gate = meta.labels.find(kLabelGate);
      auto decision = meta.labels.find(kLabelDecision);
      if (gate == meta.labels.end() || decision == meta.labels.end()) continue;  // a lane's
      GateStat& stat = by_gate[gate->second];
      stat.gate = gate->second;
      if (decision->second == "match") ++stat.matches;
      if (decision->second == "no_match") ++stat.no_matches;
      auto mode = meta.labels.find(kLabelMode);
      if (mode != meta.labels.end() && mode->second == "1:1") ++stat.one_to_one;
    }
    if (page.next_cursor.empty()) break;
    filter.cursor = page.next_cursor;
  }
  for (auto& [gate, stat] : by_gate) out->gates.push_back(std::move(stat));
  return Status::Ok();
}

}  // namespace portcullis::server
