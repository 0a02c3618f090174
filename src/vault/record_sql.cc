#include "vault/record_sql.h"

#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace portcullis::vault {

Status BuildListQuery(const RecordFilter& filter, SqlDialect dialect, std::string* sql,
                      std::vector<SqlParam>* params) {
  if (filter.limit == 0 || filter.limit > kMaxListLimit) {
    return Status::InvalidArgument("list limit must be 1.." + std::to_string(kMaxListLimit));
  }
  params->clear();
  std::vector<std::string> where;
  auto placeholder = [&]() {
    if (dialect == SqlDialect::kSqlite) return std::string("?");
    // Appended rather than `"$" + to_string(...)`: GCC 12 at -O3 warns (-Wrestrict) on the latter.
    std::string numbered = "$";
    numbered += std::to_string(params->size());
    return numbered;
  };
  auto add_text = [&](const std::string& column, const char* op, std::string value) {
    params->push_back(SqlParam{false, 0, std::move(value)});
    where.push_back(column + " " + op + " " + placeholder());
  };
  auto add_int = [&](const std::string& column, const char* op, std::int64_t value) {
    params->push_back(SqlParam{true, value, {}});
    where.push_back(column + " " + op + " " + placeholder());
  };
  if (filter.type) add_text("type", "=", std::string(RecordTypeName(*filter.type)));
  if (filter.subject) add_text("subject", "=", std::string(SubjectCategoryName(*filter.subject)));
  if (filter.retention_class) add_text("retention_class", "=", *filter.retention_class);
  if (filter.kek_id) add_text("kek_id", "=", *filter.kek_id);
  if (filter.created_from) add_int("created_micros", ">=", *filter.created_from);
  if (filter.created_until) add_int("created_micros", "<", *filter.created_until);
  if (filter.expires_before) add_int("expires_micros", "<", *filter.expires_before);
  if (!filter.cursor.empty()) {
    std::size_t colon = filter.cursor.find(':');
    std::int64_t created = 0;
    std::string_view digits(filter.cursor.data(), colon == std::string::npos ? 0 : colon);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), created);
    std::string id = colon == std::string::npos ? "" : filter.cursor.substr(colon + 1);
    if (colon == std::string::npos || ec != std::errc() || end != digits.data() + digits.size() ||
        !IsValidRecordId(id)) {
      return Status::InvalidArgument("malformed list cursor '" + filter.cursor + "'");
    }
    params->push_back(SqlParam{true, created, {}});
    std::string p_created = placeholder();
    params->push_back(SqlParam{true, created, {}});
    std::string p_created2 = placeholder();
    params->push_back(SqlParam{false, 0, id});
    std::string p_id = placeholder();
    where.push_back("(created_micros > " + p_created + " OR (created_micros = " + p_created2 +
                    " AND id > " + p_id + "))");
  }
  *sql = std::string("SELECT ") + kMetaColumns + " FROM records";
  for (std::size_t i = 0; i < where.size(); ++i) {
    *sql += (i == 0 ? " WHERE " : " AND ") + where[i];
  }
  params->push_back(SqlParam{true, static_cast<std::int64_t>(filter.limit + 1), {}});
  *sql += " ORDER BY created_micros, id LIMIT " + placeholder();
  return Status::Ok();
}

std::string MakeCursor(const RecordMeta& last) {
  return std::to_string(last.created_micros) + ":" + last.id;
}

std::string EncodeLabels(const std::map<std::string, std::string>& labels) {
  nlohmann::json object = nlohmann::json::object();
  for (const auto& [key, value] : labels) object[key] = value;
  return object.dump();
}

Status DecodeLabels(std::string_view json, std::map<std::string, std::string>* labels) {
  labels->clear();
  nlohmann::json object = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return Status::Corruption("stored labels are not a JSON object");
  for (const auto& [key, value] : object.items()) {
    if (!value.is_string()) return Status::Corruption("stored label '" + key + "' is not a string");
    (*labels)[key] = value.get<std::string>();
  }
  return Status::Ok();
}

Status DecodeMeta(std::string id, std::string_view type, std::string_view subject,
                  std::string retention_class, std::string content_type,
                  std::int64_t created_micros, std::int64_t expires_micros, std::string_view labels,
                  std::int64_t size, RecordMeta* meta) {
  if (!ParseRecordType(type, &meta->type).ok()) {
    return Status::Corruption("record " + id + ": unknown stored type '" + std::string(type) + "'");
  }
  if (!ParseSubjectCategory(subject, &meta->subject).ok()) {
    return Status::Corruption("record " + id + ": unknown stored subject '" + std::string(subject) +
                              "'");
  }
  if (size < 0) return Status::Corruption("record " + id + ": negative stored size");
  PORTCULLIS_RETURN_IF_ERROR(DecodeLabels(labels, &meta->labels).WithContext("record " + id));
  meta->id = std::move(id);
  meta->retention_class = std::move(retention_class);
  meta->content_type = std::move(content_type);
  meta->created_micros = created_micros;
  meta->expires_micros = expires_micros;
  meta->size = static_cast<std::uint64_t>(size);
  return Status::Ok();
}

Status ValidateBatch(const std::vector<StoredRecord>& records) {
  std::set<std::string_view> ids;
  for (const StoredRecord& record : records) {
    PORTCULLIS_RETURN_IF_ERROR(ValidateStoredRecord(record));
    if (record.meta.size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return Status::InvalidArgument("record " + record.meta.id + ": size out of range");
    }
    if (!ids.insert(record.meta.id).second) {
      return Status::InvalidArgument("record " + record.meta.id + " appears twice in the batch");
    }
  }
  return Status::Ok();
}

void FinishPage(std::size_t limit, RecordPage* page) {
  if (page->records.size() > limit) {
    page->records.pop_back();
    page->next_cursor = MakeCursor(page->records.back());
  }
}

Status ValidateWrappedKeyUpdates(const std::vector<WrappedKeyUpdate>& updates) {
  for (const WrappedKeyUpdate& u : updates) {
    if (!IsValidRecordId(u.id) || u.new_kek_id.empty() || u.new_wrapped_key.empty()) {
      return Status::InvalidArgument("key update for '" + u.id +
                                     "': needs a valid id, a new KEK id and a wrapped key");
    }
  }
  return Status::Ok();
}

}  // namespace portcullis::vault
