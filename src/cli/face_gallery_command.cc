// `portcullis face enrol --gallery G [--id ID]... IMAGE...` and
// `portcullis face identify --gallery G IMAGE...`: a flight's gallery of document-photo templates
// (the file) and the live probes searched against it (never written anywhere).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/exit_codes.h"
#include "cli/face_command.h"
#include "cli/face_gallery_json.h"
#include "cli/progress.h"
#include "portcullis/env.h"
#include "portcullis/face_gallery.h"

namespace portcullis::cli {
namespace {

using face::FaceCapture;
using face::FaceEngine;
using face::FaceTemplate;
using nlohmann::json;

struct GalleryFlags {
  std::string gallery;
  std::vector<std::string> ids;
  std::vector<std::string> images;
  int top = 5;
  bool json = false;
  FaceEngineFlags engine;
};

// Exit code of a failed image or gallery operation.
int ExitCodeFor(const Status& s, const FaceCapture& capture) {
  if (capture.issue != face::QualityIssue::kNone) return kExitFaceQuality;
  switch (s.code()) {
    case Status::Code::kUnsupported:  // an id already enrolled, or a newer gallery format
    case Status::Code::kInvalidArgument:
      return kExitUsage;
    default:
      return ExitCodeForInput(s);
  }
}

// Reads one image and embeds its one face through the quality gate.
Status Embed(FaceEngine* engine, const std::string& path, FaceTemplate* t, FaceCapture* capture) {
  cv::Mat bgr;
  PORTCULLIS_RETURN_IF_ERROR(LoadFaceImage(path, &bgr));
  const Status s = engine->Enrol(bgr, t, capture);
  return s.ok() ? s : s.WithContext(path);
}

void AddQuality(json* record, const Status& s, const FaceCapture& capture) {
  if (s.ok() || capture.issue == face::QualityIssue::kNone) return;
  (*record)["error_code"] = "quality";
  (*record)["issue"] = face::QualityIssueName(capture.issue);
}

void Print(const GalleryFlags& flags, const json& record, const std::string& human) {
  if (flags.json) {
    std::printf("%s\n", record.dump().c_str());
  } else {
    std::printf("%s\n", human.c_str());
  }
  std::fflush(stdout);
}

int RunEnrol(const GalleryFlags& flags) {
  if (!flags.ids.empty() && flags.ids.size() != flags.images.size()) {
    std::fprintf(stderr,
                 "portcullis face enrol: %zu --id for %zu images: give one per image, "
                 "or none to use the file names\n",
                 flags.ids.size(), flags.images.size());
    return kExitUsage;
  }
  Env* env = Env::Default();
  std::unique_ptr<face::Gallery> gallery;
  Status s = OpenGallery(env, flags.gallery, /*create_if_missing=*/true, &gallery);
  if (!s.ok()) {
    std::fprintf(stderr, "portcullis face enrol: %s\n", s.ToString().c_str());
    return ExitCodeFor(s, {});
  }
  std::unique_ptr<FaceEngine> engine;
  if (const int code = OpenFaceEngine(flags.engine, &engine); code != kExitOk) return code;

  std::vector<int> failures;
  std::size_t enrolled = 0;
  ProgressBar progress("enrol", static_cast<std::int64_t>(flags.images.size()),
                       ProgressBar::StderrIsTerminal());
  for (std::size_t i = 0; i < flags.images.size(); ++i) {
    const std::string& image = flags.images[i];
    const std::string id =
        flags.ids.empty() ? std::filesystem::path(image).stem().string() : flags.ids[i];
    FaceTemplate t;
    FaceCapture capture;
    s = Embed(engine.get(), image, &t, &capture);
    if (s.ok()) s = gallery->Enrol(id, t);
    if (s.ok()) {
      ++enrolled;
    } else {
      failures.push_back(ExitCodeFor(s, capture));
    }
    json record = GalleryEnrolRecord(image, id, flags.gallery, s, gallery->size());
    AddQuality(&record, s, capture);
    Print(flags, record,
          image + ": " + (s.ok() ? "enrolled as " + id : "not enrolled: " + s.ToString()));
    progress.Update(static_cast<std::int64_t>(i + 1));
  }
  progress.Finish();
  // One atomic write for the batch: a crash leaves the old gallery or the new one, never half.
  if (enrolled > 0) {
    s = SaveGalleryFile(env, flags.gallery, *gallery);
    if (!s.ok()) {
      std::fprintf(stderr, "portcullis face enrol: cannot save %s: %s\n", flags.gallery.c_str(),
                   s.ToString().c_str());
      return ExitCodeForInput(s);
    }
  }
  return ExitCodeForBatch(failures);
}

int RunIdentify(const GalleryFlags& flags) {
  Env* env = Env::Default();
  std::unique_ptr<face::Gallery> gallery;
  Status s = OpenGallery(env, flags.gallery, /*create_if_missing=*/false, &gallery);
  if (!s.ok()) {
    std::fprintf(stderr, "portcullis face identify: %s\n", s.ToString().c_str());
    return ExitCodeFor(s, {});
  }
  std::unique_ptr<FaceEngine> engine;
  if (const int code = OpenFaceEngine(flags.engine, &engine); code != kExitOk) return code;

  std::vector<int> failures;
  ProgressBar progress("identify", static_cast<std::int64_t>(flags.images.size()),
                       ProgressBar::StderrIsTerminal());
  for (std::size_t i = 0; i < flags.images.size(); ++i) {
    const std::string& image = flags.images[i];
    FaceTemplate probe;  // wiped when it goes out of scope: the probe is never kept
    FaceCapture capture;
    std::vector<face::Candidate> candidates;
    s = Embed(engine.get(), image, &probe, &capture);
    if (s.ok()) s = gallery->Identify(probe, flags.top, &candidates);
    if (!s.ok()) failures.push_back(ExitCodeFor(s, capture));
    json record =
        GalleryIdentifyRecord(image, flags.gallery, candidates, engine->match_threshold(), s);
    AddQuality(&record, s, capture);
    std::string human = image + ": ";
    if (!s.ok()) {
      human += "error: " + s.ToString();
    } else if (!candidates.empty() && candidates[0].distance <= engine->match_threshold()) {
      human += "MATCH " + candidates[0].id + " (distance " +
               std::to_string(candidates[0].distance).substr(0, 5) + ")";
    } else {
      human += "no match in the gallery";
    }
    Print(flags, record, human);
    progress.Update(static_cast<std::int64_t>(i + 1));
  }
  progress.Finish();
  return ExitCodeForBatch(failures);
}

}  // namespace

void AddFaceGalleryCommands(CLI::App& app, int* exit_code) {
  CLI::App* group = FaceCommandGroup(app);
  auto flags = std::make_shared<GalleryFlags>();

  CLI::App* enrol = group->add_subcommand(
      "enrol", "Add document-photo faces to a gallery file (one per traveller id)");
  enrol->add_option("--gallery", flags->gallery, "Gallery file (created if missing)")->required();
  // One value per --id (repeat it), so that the images after it stay positional.
  enrol->add_option("--id", flags->ids, "Traveller id, one per image (default: the file name)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  enrol->add_option("images", flags->images, "Document photos")->required();
  enrol->add_flag("--json", flags->json, "JSON Lines on stdout: one record per image");
  AddFaceEngineFlags(enrol, &flags->engine);
  enrol->callback([flags, exit_code] { *exit_code = RunEnrol(*flags); });

  CLI::App* identify = group->add_subcommand(
      "identify", "Search live captures against a gallery (the captures are never stored)");
  identify->add_option("--gallery", flags->gallery, "Gallery file")->required();
  identify->add_option("--top", flags->top, "Candidates reported per capture")
      ->check(CLI::Range(1, 100));
  identify->add_option("images", flags->images, "Live captures")->required();
  identify->add_flag("--json", flags->json, "JSON Lines on stdout: one record per image");
  AddFaceEngineFlags(identify, &flags->engine);
  identify->callback([flags, exit_code] { *exit_code = RunIdentify(*flags); });
}

}  // namespace portcullis::cli
