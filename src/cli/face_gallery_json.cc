#include "cli/face_gallery_json.h"

#include "cli/exit_codes.h"

#include <utility>

namespace portcullis::cli {

face::GalleryOptions CliGalleryOptions() {
  face::GalleryOptions options;
  options.storage = face::GalleryStorage::kFloat32;
  options.index = face::GalleryIndex::kExact;
  return options;
}

Status OpenGallery(Env* env, const std::string& path, bool create_if_missing,
                   std::unique_ptr<face::Gallery>* gallery) {
  if (env == nullptr || gallery == nullptr) return Status::InvalidArgument("null Env or output");
  if (create_if_missing && env->KindOf(path) == FileKind::kMissing) {
    *gallery = std::make_unique<face::Gallery>(CliGalleryOptions());
    return Status::Ok();
  }
  return face::LoadGalleryFile(env, path, CliGalleryOptions(), gallery);
}

std::string GalleryErrorCodeName(Status::Code code, bool enrolling) {
  // A duplicate id is the one Unsupported an enrol can meet (Status has no AlreadyExists).
  if (enrolling && code == Status::Code::kUnsupported) return "already_enrolled";
  return ErrorCodeName(code, ErrorVocabulary::kGeneric);
}

namespace {
void PutError(nlohmann::json* record, const Status& status, bool enrolling) {
  if (status.ok()) {
    (*record)["error"] = nullptr;
  } else {
    (*record)["error"] = status.ToString();
    (*record)["error_code"] = GalleryErrorCodeName(status.code(), enrolling);
  }
}
}  // namespace

nlohmann::json GalleryEnrolRecord(const std::string& file, const std::string& id,
                                  const std::string& gallery_path, const Status& status,
                                  std::size_t gallery_size) {
  nlohmann::json record;
  record["file"] = file;
  record["id"] = id;
  record["gallery"] = gallery_path;
  record["enrolled"] = status.ok();
  record["gallery_size"] = gallery_size;
  PutError(&record, status, /*enrolling=*/true);
  return record;
}

nlohmann::json GalleryIdentifyRecord(const std::string& file, const std::string& gallery_path,
                                     const std::vector<face::Candidate>& candidates,
                                     float threshold, const Status& status) {
  nlohmann::json record;
  record["file"] = file;
  record["gallery"] = gallery_path;
  record["threshold"] = threshold;
  record["candidates"] = nlohmann::json::array();
  record["match"] = nullptr;
  if (status.ok()) {
    for (const face::Candidate& c : candidates) {
      const bool match = c.distance <= threshold;
      record["candidates"].push_back(
          {{"id", c.id}, {"distance", c.distance}, {"similarity", c.similarity}, {"match", match}});
    }
    // Candidates are sorted: only the closest can be "the" match.
    if (!candidates.empty() && candidates.front().distance <= threshold) {
      const face::Candidate& best = candidates.front();
      record["match"] = {
          {"id", best.id}, {"distance", best.distance}, {"similarity", best.similarity}};
    }
  }
  PutError(&record, status, /*enrolling=*/false);
  return record;
}

}  // namespace portcullis::cli
