#include "server/lane_records.h"

#include <cstdio>
#include <ctime>
#include <exception>
#include <utility>

#include "portcullis/plate_json.h"

namespace portcullis::server {

std::string FormatRfc3339(std::int64_t micros) {
  std::int64_t seconds = micros / 1000000;
  std::int64_t fraction = micros % 1000000;
  if (fraction < 0) {
    fraction += 1000000;
    --seconds;
  }
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return "";
  char buffer[40];
  const int n = std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<int>(fraction));
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
}

bool IsReadRecord(const vault::RecordMeta& meta) {
  return meta.type == vault::RecordType::kPlateRead && meta.content_type == kReadContentType;
}

bool IsCropRecord(const vault::RecordMeta& meta) {
  return meta.type == vault::RecordType::kPlateRead && meta.content_type == kCropContentType;
}

std::string LaneOf(const vault::RecordMeta& meta) {
  const auto it = meta.labels.find("lane");
  return it == meta.labels.end() ? std::string() : it->second;
}

Status ParseReadBody(const std::string& body, nlohmann::json* read) {
  try {
    nlohmann::json parsed = nlohmann::json::parse(body);
    if (!parsed.is_object() || !parsed.contains("text") || !parsed["text"].is_string()) {
      return Status::Corruption("stored plate read is not a read object");
    }
    *read = std::move(parsed);
    return Status::Ok();
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("stored plate read does not parse: ") + e.what());
  }
}

Status StoreLaneReads(vault::Vault* vault, const vault::AccessContext& ctx, const std::string& lane,
                      std::int64_t now_micros, const std::vector<LaneRead>& reads,
                      nlohmann::json* stored,
                      const std::map<std::string, std::string>& extra_labels,
                      std::vector<vault::RecordMeta>* all_metas,
                      const std::vector<vault::NewRecord>& also) {
  *stored = nlohmann::json::array();
  if (reads.empty() && also.empty()) return Status::Ok();

  // One batch: one SQLite commit and one audit batch for the whole set, and all or nothing. A
  // read names its crop by id, so the crops' ids are chosen here rather than by the vault.
  std::vector<vault::NewRecord> records;
  records.reserve(2 * reads.size() + also.size());
  std::vector<std::string> crop_id;  // per read, "" when it kept no crop
  for (const auto& r : reads) {
    if (r.crop_jpeg.empty()) {
      crop_id.emplace_back();
      continue;
    }
    vault::NewRecord record;
    record.type = vault::RecordType::kPlateRead;
    record.subject = vault::SubjectCategory::kVehicle;
    record.content_type = kCropContentType;
    record.labels = extra_labels;
    record.labels["lane"] = lane;
    record.labels["part"] = "crop";
    record.body = r.crop_jpeg;
    record.id = vault::NewRecordId();
    crop_id.push_back(record.id);
    records.push_back(std::move(record));
  }
  const std::size_t first_read = records.size();

  std::vector<std::string> bodies;
  std::vector<nlohmann::json> responses;
  bodies.reserve(reads.size());
  for (std::size_t i = 0; i < reads.size(); ++i) {
    nlohmann::json plate = plate::PlateReadToJson(reads[i].read);
    for (const auto& [key, value] : reads[i].extra.items()) plate[key] = value;
    nlohmann::json body = plate;
    body["lane"] = lane;
    body["read_at"] = FormatRfc3339(now_micros);
    body["read_at_micros"] = now_micros;
    body["crop"] = crop_id[i].empty() ? nlohmann::json(nullptr) : nlohmann::json(crop_id[i]);
    bodies.push_back(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    responses.push_back(std::move(plate));
  }
  for (std::size_t i = 0; i < reads.size(); ++i) {
    vault::NewRecord record;
    record.type = vault::RecordType::kPlateRead;
    record.subject = vault::SubjectCategory::kVehicle;
    record.content_type = kReadContentType;
    record.labels = extra_labels;
    record.labels["lane"] = lane;
    record.labels["part"] = "read";
    if (!crop_id[i].empty()) record.labels["crop"] = crop_id[i];
    record.body = bodies[i];
    records.push_back(std::move(record));
  }
  records.insert(records.end(), also.begin(), also.end());

  std::vector<vault::RecordMeta> metas;
  PORTCULLIS_RETURN_IF_ERROR(vault->PutBatch(ctx, records, &metas));
  if (metas.size() != records.size()) return Status::Internal("vault stored a partial batch");
  for (std::size_t i = 0; i < responses.size(); ++i) {
    nlohmann::json out = {{"id", metas[first_read + i].id}};
    for (const auto& [key, value] : responses[i].items()) out[key] = value;
    out["crop"] = !crop_id[i].empty();
    stored->push_back(std::move(out));
  }
  if (all_metas != nullptr) all_metas->insert(all_metas->end(), metas.begin(), metas.end());
  return Status::Ok();
}

}  // namespace portcullis::server
