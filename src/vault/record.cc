// The record model: names, parsers, ids and validation.
#include <sodium.h>

#include <array>
#include <cstdlib>
#include <string>

#include "portcullis/vault_record.h"

namespace portcullis::vault {
namespace {

constexpr std::array<std::pair<RecordType, std::string_view>, 7> kTypeNames{{
    {RecordType::kTraveller, "traveller"},
    {RecordType::kDocument, "document"},
    {RecordType::kGalleryPhoto, "gallery_photo"},
    {RecordType::kTemplate, "template"},
    {RecordType::kPlateRead, "plate_read"},
    {RecordType::kMatchDecision, "match_decision"},
    {RecordType::kKeptCapture, "kept_capture"},
}};

constexpr std::array<std::pair<SubjectCategory, std::string_view>, 3> kSubjectNames{{
    {SubjectCategory::kCitizen, "citizen"},
    {SubjectCategory::kNonCitizen, "non_citizen"},
    {SubjectCategory::kVehicle, "vehicle"},
}};

constexpr std::size_t kIdBytes = 16;

}  // namespace

std::string_view RecordTypeName(RecordType type) {
  for (const auto& [value, name] : kTypeNames) {
    if (value == type) return name;
  }
  return "unknown";
}

Status ParseRecordType(std::string_view name, RecordType* type) {
  for (const auto& [value, known] : kTypeNames) {
    if (known == name) {
      *type = value;
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("unknown record type '" + std::string(name) + "'");
}

std::string_view SubjectCategoryName(SubjectCategory subject) {
  for (const auto& [value, name] : kSubjectNames) {
    if (value == subject) return name;
  }
  return "unknown";
}

Status ParseSubjectCategory(std::string_view name, SubjectCategory* subject) {
  for (const auto& [value, known] : kSubjectNames) {
    if (known == name) {
      *subject = value;
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("unknown subject category '" + std::string(name) + "'");
}

std::string NewRecordId() {
  // sodium_init is idempotent and thread-safe; it fails only when the OS has no entropy source,
  // and then no id we could make would be safe to use.
  if (sodium_init() < 0) std::abort();
  std::array<unsigned char, kIdBytes> bytes{};
  randombytes_buf(bytes.data(), bytes.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  id.reserve(2 * kIdBytes);
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 0x0f]);
  }
  return id;
}

bool IsValidRecordId(std::string_view id) {
  if (id.size() != 2 * kIdBytes) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status ValidateStoredRecord(const StoredRecord& record) {
  const RecordMeta& meta = record.meta;
  if (!IsValidRecordId(meta.id)) {
    return Status::InvalidArgument("record id '" + meta.id + "' is not 32 lower-case hex digits");
  }
  const std::string where = "record " + meta.id + ": ";
  if (RecordTypeName(meta.type) == "unknown") {
    return Status::InvalidArgument(where + "record type out of range");
  }
  if (SubjectCategoryName(meta.subject) == "unknown") {
    return Status::InvalidArgument(where + "subject category out of range");
  }
  if (meta.retention_class.empty()) return Status::InvalidArgument(where + "empty retention_class");
  if (record.kek_id.empty()) return Status::InvalidArgument(where + "empty kek_id");
  if (record.wrapped_key.empty()) return Status::InvalidArgument(where + "empty wrapped_key");
  if (meta.expires_micros < meta.created_micros) {
    return Status::InvalidArgument(where + "expires_micros before created_micros");
  }
  if (meta.labels.size() > kMaxLabels) {
    return Status::InvalidArgument(where + "more than " + std::to_string(kMaxLabels) + " labels");
  }
  for (const auto& [key, value] : meta.labels) {
    if (key.empty() || key.size() > kMaxLabelKeyBytes) {
      return Status::InvalidArgument(where + "label key empty or longer than " +
                                     std::to_string(kMaxLabelKeyBytes) + " bytes");
    }
    if (value.size() > kMaxLabelValueBytes) {
      std::string msg = where;
      msg += "label '" + key + "' longer than " + std::to_string(kMaxLabelValueBytes) + " bytes";
      return Status::InvalidArgument(msg);
    }
  }
  return Status::Ok();
}

}  // namespace portcullis::vault
