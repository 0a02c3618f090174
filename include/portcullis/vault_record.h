// The vault's record model: what Portcullis keeps (plate reads, gallery photos, templates, match
// decisions, kept captures), described by metadata that is stored in clear so that retention and
// purge can work without keys, and a body that the storage layer only ever sees sealed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/status.h"

namespace portcullis::vault {

// What a record is. The names returned by RecordTypeName are stored in databases and printed in
// --json output: they are a contract and never change.
enum class RecordType {
  kTraveller,      // "traveller": a traveller's identity record
  kDocument,       // "document": a travel document (passport page, visa)
  kGalleryPhoto,   // "gallery_photo": an enrolment photo in the 1:N gallery
  kTemplate,       // "template": a face template derived from a photo
  kPlateRead,      // "plate_read": a licence-plate read and its crop
  kMatchDecision,  // "match_decision": the outcome of a face or plate match
  kKeptCapture,    // "kept_capture": a live capture kept past the decision (e.g. for review)
};

// Whose data it is; decides the retention class together with the record type.
enum class SubjectCategory {
  kCitizen,     // "citizen"
  kNonCitizen,  // "non_citizen"
  kVehicle,     // "vehicle"
};

[[nodiscard]] std::string_view RecordTypeName(RecordType type);
// InvalidArgument for an unknown name (names are exact, lower case).
Status ParseRecordType(std::string_view name, RecordType* type);
[[nodiscard]] std::string_view SubjectCategoryName(SubjectCategory subject);
Status ParseSubjectCategory(std::string_view name, SubjectCategory* subject);

// Labels are for finding records (lane, flight, camera), never for personal data: they are stored
// in clear. Kept small so that a listing stays cheap.
inline constexpr std::size_t kMaxLabels = 16;
inline constexpr std::size_t kMaxLabelKeyBytes = 64;
inline constexpr std::size_t kMaxLabelValueBytes = 256;

struct RecordMeta {
  std::string id;  // NewRecordId(): 32 lower-case hex digits (128 random bits)
  RecordType type = RecordType::kPlateRead;
  SubjectCategory subject = SubjectCategory::kVehicle;
  std::string retention_class;      // e.g. "face-citizen"; decided by the retention rules
  std::string content_type;         // of the plaintext, e.g. "image/jpeg", "application/json"
  std::int64_t created_micros = 0;  // microseconds since the Unix epoch
  std::int64_t expires_micros = 0;  // the record is purged by DeleteExpired(now >= expires)
  std::map<std::string, std::string> labels;  // e.g. {"lane": "3", "flight": "BA117"}
  std::uint64_t size = 0;                     // plaintext bytes

  bool operator==(const RecordMeta&) const = default;
};

// A record as the storage layer holds it: the metadata, the name of the key-encryption key that
// wrapped the data key, the wrapped data key, and the sealed body. Nothing in it is key material.
struct StoredRecord {
  RecordMeta meta;
  std::string kek_id;       // e.g. "kek/face-citizen/2026112703"
  std::string wrapped_key;  // bytes: the data key wrapped by kek_id
  std::string sealed;       // bytes: the body sealed with the data key

  bool operator==(const StoredRecord&) const = default;
};

// A new record id from the operating system's CSPRNG (libsodium randombytes_buf): 128 bits as
// 32 lower-case hex digits. Unguessable, so an id does not leak arrival order or volume.
[[nodiscard]] std::string NewRecordId();
[[nodiscard]] bool IsValidRecordId(std::string_view id);

// Checks what the store relies on: a valid id, non-empty retention class and KEK id, labels
// within the limits above, expiry not before creation. InvalidArgument names the field.
Status ValidateStoredRecord(const StoredRecord& record);

// Which records List returns. Every set field narrows the result; the order is
// (created_micros, id), and `cursor` resumes after the last record of the previous page.
struct RecordFilter {
  std::optional<RecordType> type;
  std::optional<SubjectCategory> subject;
  std::optional<std::string> retention_class;
  std::optional<std::string> kek_id;           // records whose data key this KEK wraps
  std::optional<std::int64_t> created_from;    // created_micros >= created_from
  std::optional<std::int64_t> created_until;   // created_micros < created_until
  std::optional<std::int64_t> expires_before;  // expires_micros < expires_before
  std::size_t limit = 100;                     // 1..kMaxListLimit
  std::string cursor;                          // RecordPage::next_cursor, or empty
};
inline constexpr std::size_t kMaxListLimit = 10000;

struct RecordPage {
  std::vector<RecordMeta> records;
  std::string next_cursor;  // empty when there is nothing after this page
};

}  // namespace portcullis::vault
