// What both SQL backends share: the List query, cursors and the encoding of labels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "vault/migrations.h"
#include "vault/record_store.h"

namespace portcullis::vault {

// A bound parameter: a 64-bit integer or a text.
struct SqlParam {
  bool is_int = false;
  std::int64_t int_value = 0;
  std::string text;
};

// The columns of RecordMeta, in the order DecodeMeta expects them.
inline constexpr const char* kMetaColumns =
    "id, type, subject, retention_class, content_type, created_micros, expires_micros, labels, "
    "size";

// SELECT kMetaColumns ... for the filter, with ?/$n placeholders; asks for limit + 1 rows so the
// caller knows whether there is a next page. InvalidArgument for a bad limit or cursor.
Status BuildListQuery(const RecordFilter& filter, SqlDialect dialect, std::string* sql,
                      std::vector<SqlParam>* params);
// "created_micros:id" of the last record of a page.
std::string MakeCursor(const RecordMeta& last);
// List queries fetch limit + 1 rows: drops the extra one and, when there was one, sets the cursor.
void FinishPage(std::size_t limit, RecordPage* page);

// Labels as a JSON object; Corruption when the stored text does not decode.
std::string EncodeLabels(const std::map<std::string, std::string>& labels);
Status DecodeLabels(std::string_view json, std::map<std::string, std::string>* labels);

// Builds RecordMeta from the text of its columns; Corruption for a type or subject name this code
// does not know or an impossible size.
Status DecodeMeta(std::string id, std::string_view type, std::string_view subject,
                  std::string retention_class, std::string content_type,
                  std::int64_t created_micros, std::int64_t expires_micros, std::string_view labels,
                  std::int64_t size, RecordMeta* meta);

// Put's checks for a whole batch: every record valid, no id twice in the batch.
Status ValidateBatch(const std::vector<StoredRecord>& records);
// Every update names a valid record and carries a new KEK id and wrapped key.
Status ValidateWrappedKeyUpdates(const std::vector<WrappedKeyUpdate>& updates);

}  // namespace portcullis::vault
