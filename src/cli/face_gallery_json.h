// Helpers for the (not yet wired) `face enrol --gallery G --id ID IMAGE` and
// `face identify --gallery G IMAGE` commands: opening/saving the gallery file and the JSON Lines
// records, so that the command code only adds the face engine. See docs/face-search.md.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "portcullis/env.h"
#include "portcullis/face_gallery.h"
#include "portcullis/status.h"

namespace portcullis::cli {

// CLI galleries are per-flight sized and rewritten on every enrol: float32 storage (no repeated
// quantisation), exact search.
face::GalleryOptions CliGalleryOptions();

// Loads the gallery at path; a missing file gives an empty gallery when create_if_missing (enrol),
// NotFound otherwise (identify against a gallery that was never made is an error, not "stranger").
Status OpenGallery(Env* env, const std::string& path, bool create_if_missing,
                   std::unique_ptr<face::Gallery>* gallery);

// Stable snake_case names for the "error_code" field.
std::string GalleryErrorCodeName(Status::Code code, bool enrolling);

// {"file", "id", "gallery", "enrolled": bool, "gallery_size": int, "error", "error_code"?}
nlohmann::json GalleryEnrolRecord(const std::string& file, const std::string& id,
                                  const std::string& gallery_path, const Status& status,
                                  std::size_t gallery_size);

// {"file", "gallery", "threshold", "match": {"id","distance","similarity"} | null,
//  "candidates": [{"id","distance","similarity","match"}...], "error", "error_code"?}
nlohmann::json GalleryIdentifyRecord(const std::string& file, const std::string& gallery_path,
                                     const std::vector<face::Candidate>& candidates,
                                     float threshold, const Status& status);

}  // namespace portcullis::cli
