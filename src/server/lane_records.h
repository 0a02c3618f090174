// How a lane's plate reads are kept in the vault (docs/service-lanes.md, "Storage"):
//   - the read: a `plate_read` record (subject vehicle), content type application/json, labels
//     {"lane": L, "part": "read", "crop": <crop record id>}; body = the CLI's plate JSON plus
//     lane, read_at, read_at_micros, crop (id or null) and, for a clip, the pass's frames;
//   - its crop: a second `plate_read` record, content type image/jpeg, labels
//     {"lane": L, "part": "crop"}; body = the JPEG.
// Two records rather than one body so that a lookup or a text search never decrypts a vehicle's
// picture, and the vault's own audit line says exactly when an image was opened. Never in a
// label: the plate text. Never stored: the frame.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "portcullis/plate.h"
#include "portcullis/status.h"
#include "portcullis/vault.h"

namespace portcullis::server {

inline constexpr const char* kReadContentType = "application/json";
inline constexpr const char* kCropContentType = "image/jpeg";

// One read to keep: the engine's read, its crop ("" for none) and extra fields for the body and
// the response (a clip pass's frame numbers).
struct LaneRead {
  plate::PlateRead read;
  std::string crop_jpeg;
  nlohmann::json extra = nlohmann::json::object();
};

// Stores the reads of one frame or clip, each read with its crop, plus the records in `also` (a
// lane event's face captures), in ONE PutBatch: one SQLite commit and one audit batch, all or
// nothing. The crops' ids are chosen here (NewRecordId) so that a read can name its crop in the
// same batch. *stored gets, per read, its response JSON ({"id", plate fields, extra}).
// extra_labels go on every read and crop (a lane event's "event", "camera", "device"); *metas
// (optional) gets every record stored, in batch order (crops, reads, then `also`); on failure
// nothing was stored and *metas is unchanged.
Status StoreLaneReads(vault::Vault* vault, const vault::AccessContext& ctx, const std::string& lane,
                      std::int64_t now_micros, const std::vector<LaneRead>& reads,
                      nlohmann::json* stored,
                      const std::map<std::string, std::string>& extra_labels = {},
                      std::vector<vault::RecordMeta>* metas = nullptr,
                      const std::vector<vault::NewRecord>& also = {});

// "2026-11-27T08:15:02.123456Z"
std::string FormatRfc3339(std::int64_t micros);

// Parses a stored read body; Corruption when it is not the JSON object StoreLaneReads wrote.
Status ParseReadBody(const std::string& body, nlohmann::json* read);

// True when the record is a read (not a crop) by its metadata.
bool IsReadRecord(const vault::RecordMeta& meta);
bool IsCropRecord(const vault::RecordMeta& meta);
std::string LaneOf(const vault::RecordMeta& meta);

}  // namespace portcullis::server
