#include "cli/plate_command.h"

#include <sys/stat.h>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include <iterator>

#include <opencv2/imgcodecs.hpp>

#include "cli/exit_codes.h"
#include "cli/progress.h"
#include "portcullis/env.h"
#include "portcullis/image.h"
#include "portcullis/plate_json.h"
#include "portcullis/plate_synth.h"

namespace portcullis::cli {
namespace {

using plate::PlateRead;

// The lower-cased text after the last dot ("" if none). Only used to pick a directory's
// inputs: each file is still judged by its content when read.
std::string LowerExtension(const std::string& name) {
  auto dot = name.find_last_of('.');
  if (dot == std::string::npos) return "";
  std::string ext = name.substr(dot + 1);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

bool HasImageOrVideoExtension(const std::string& name) {
  static const std::set<std::string> kExtensions = {"jpg", "jpeg", "png", "bmp", "mp4",
                                                    "avi", "mkv",  "mov", "webm"};
  return kExtensions.count(LowerExtension(name)) > 0;
}

struct Input {
  std::string path;
  Status status;  // a failure known before reading (e.g. an unreadable directory)
};

// Expands the command line's paths: a directory stands for its images and videos (sorted, not
// recursive); anything else is taken as given and judged when read.
std::vector<Input> ExpandInputs(Env* env, const std::vector<std::string>& paths) {
  std::vector<Input> inputs;
  for (const auto& path : paths) {
    if (env->KindOf(path) != FileKind::kDirectory) {
      inputs.push_back({path, Status::Ok()});
      continue;
    }
    std::vector<std::string> names;
    Status s = env->ListDirectory(path, &names);
    if (!s.ok()) {
      inputs.push_back({path, s});
      continue;
    }
    std::string prefix = path.back() == '/' ? path : path + "/";
    for (const auto& name : names) {
      if (HasImageOrVideoExtension(name)) inputs.push_back({prefix + name, {}});
    }
  }
  return inputs;
}

struct ReadFlags {
  std::vector<std::string> paths;
  std::string region = "auto";
  bool json = false;
  int top = 5;
  int max_plates = 4;
  int threads = 1;
  int detector_size = plate::PlateReaderOptions{}.detector_max_side;
  int coarse_size = plate::PlateReaderOptions{}.coarse_detector_max_side;
  bool exhaustive = false;
  double second_look = plate::PlateReaderOptions{}.second_look_scale;
  int stride = 2;
};

void PrintHuman(const std::string& file, const std::vector<PlateRead>& plates, const Status& s,
                const std::string& suffix = "") {
  if (!s.ok()) {
    std::printf("%s%s: error: %s\n", file.c_str(), suffix.c_str(), s.ToString().c_str());
    return;
  }
  if (plates.empty()) {
    std::printf("%s%s: no plate\n", file.c_str(), suffix.c_str());
    return;
  }
  for (std::size_t i = 0; i < plates.size(); ++i) {
    const auto& p = plates[i];
    std::printf("%s%s: %s  %.0f%%  %s%s%s  box %d,%d %dx%d", file.c_str(), suffix.c_str(),
                p.text.c_str(), 100.0 * p.confidence, p.region.empty() ? "-" : p.region.c_str(),
                p.format.empty() ? "" : "/", p.format.c_str(), p.box.x, p.box.y, p.box.width,
                p.box.height);
    if (p.candidates.size() > 1) {
      std::printf("  (also:");
      for (std::size_t k = 1; k < p.candidates.size(); ++k) {
        std::printf(" %s %.0f%%", p.candidates[k].text.c_str(), 100.0 * p.candidates[k].confidence);
      }
      std::printf(")");
    }
    std::printf("\n");
  }
}

void Emit(const nlohmann::json& record) {
  std::printf("%s\n", record.dump().c_str());
  std::fflush(stdout);  // JSON Lines consumers read as we go
}

// Opens a reader configured by the flags; returns an exit code (kExitOk on success). A video's
// reader takes no second look: most frames of a stream hold no plate, and the tracker sees a
// vehicle's plate grow as it approaches.
int OpenReader(const ReadFlags& flags, std::unique_ptr<plate::PlateReader>* reader,
               bool for_video = false) {
  plate::PlateReaderOptions options;
  options.region = flags.region;
  options.top_n = flags.top;
  options.max_plates = flags.max_plates;
  options.threads = flags.threads;
  options.detector_max_side = flags.detector_size;
  options.coarse_detector_max_side = flags.coarse_size;
  options.exhaustive = flags.exhaustive;
  options.second_look_scale = for_video ? 0.0 : flags.second_look;
  Status s = plate::PlateReader::Open(options, reader);
  if (s.ok()) return kExitOk;
  std::fprintf(stderr, "portcullis: %s\n", s.ToString().c_str());
  return s.code() == Status::Code::kInvalidArgument ? kExitUsage : kExitSetup;
}

int RunRead(const ReadFlags& flags) {
  std::unique_ptr<plate::PlateReader> reader, video_reader;  // video_reader: opened at a video
  if (int code = OpenReader(flags, &reader); code != kExitOk) return code;
  Env* env = Env::Default();
  std::vector<Input> inputs = ExpandInputs(env, flags.paths);
  const bool batch = inputs.size() > 1;
  ProgressBar progress("plate read", static_cast<std::int64_t>(inputs.size()),
                       batch && ProgressBar::StderrIsTerminal());
  std::vector<int> failures;
  std::vector<std::string> failed_files;
  std::int64_t done = 0;
  for (const auto& input : inputs) {
    Status status = input.status;
    std::vector<PlateRead> plates;
    if (status.ok() && plate::LooksLikeVideo(env, input.path)) {
      if (!video_reader) {
        if (int code = OpenReader(flags, &video_reader, true); code != kExitOk) return code;
      }
      plate::VideoOptions video;
      video.frame_stride = flags.stride;
      bool any = false;
      status = plate::ReadVideo(
          video_reader.get(), input.path, video, [&](const plate::PlatePass& pass) {
            any = true;
            if (flags.json) {
              Emit(PassRecord(input.path, pass));
            } else {
              PrintHuman(input.path, {pass.best}, Status::Ok(),
                         " @" + std::to_string(static_cast<long long>(pass.best_time_ms)) + "ms");
            }
          });
      if (status.ok()) {
        if (!any && !flags.json) PrintHuman(input.path, {}, Status::Ok());
        progress.Update(++done);
        continue;
      }
    } else if (status.ok()) {
      cv::Mat image;
      status = ReadImageFile(env, input.path, ImageLimits{}, &image);
      if (status.ok()) status = reader->Read(image, &plates);
    }
    if (!status.ok()) {
      failures.push_back(ExitCodeForInput(status));
      failed_files.push_back(input.path);
    }
    if (flags.json) {
      Emit(ImageRecord(input.path, plates, status));
    } else {
      PrintHuman(input.path, plates, status);
    }
    progress.Update(++done);
  }
  progress.Finish();
  if (!failures.empty()) {
    std::fprintf(stderr, "portcullis: %zu of %zu inputs failed:", failures.size(), inputs.size());
    for (const auto& f : failed_files) std::fprintf(stderr, " %s", f.c_str());
    std::fprintf(stderr, "\n");
  }
  return ExitCodeForBatch(failures);
}

struct DemoScene {
  const char* text;
  const char* style;
  int plate_width;
  float tilt, yaw, blur, noise;
};

// Scenes the demo renders: each region's layouts, straight and skewed, sharp and soft.
constexpr DemoScene kDemoScenes[] = {
    {"7KDT482", "us", 240, 0, 0, 0, 2},       {"LKR4915", "us", 180, 4, 0.15f, 0.8f, 4},
    {"BA512CK", "eu", 300, -3, 0, 0, 2},      {"RK863AT", "eu", 260, 2, -0.12f, 0.7f, 3},
    {"BRA2E19", "br", 280, 0, 0.1f, 0.5f, 2}, {"JQV5526", "br", 260, -4, 0, 1.0f, 4},
};

int RunDemo(const std::string& out_dir, const ReadFlags& flags) {
  Env* env = Env::Default();
  if (env->KindOf(out_dir) != FileKind::kDirectory) {
    if (::mkdir(out_dir.c_str(), 0755) != 0) {
      std::fprintf(stderr, "portcullis: cannot create %s: %s\n", out_dir.c_str(),
                   std::strerror(errno));
      return kExitUnreadable;
    }
  }
  std::unique_ptr<plate::PlateReader> reader;
  if (int code = OpenReader(flags, &reader); code != kExitOk) return code;
  Status s;
  std::printf(
      "Portcullis plate demo: %zu synthetic vehicle scenes in %s, read with region=auto\n\n",
      std::size(kDemoScenes), out_dir.c_str());
  std::printf("%-14s %-9s %-9s %-6s %-12s %s\n", "scene", "truth", "read", "conf", "region",
              "result");
  int correct = 0;
  std::uint32_t seed = 11;
  for (const auto& scene : kDemoScenes) {
    plate::SynthSpec spec;
    spec.text = scene.text;
    spec.style = scene.style;
    spec.plate_width = scene.plate_width;
    spec.tilt_degrees = scene.tilt;
    spec.yaw = scene.yaw;
    spec.blur_sigma = scene.blur;
    spec.noise_sigma = scene.noise;
    spec.seed = seed++;
    plate::SynthTruth truth;
    cv::Mat image = plate::RenderVehicleScene(spec, &truth);
    std::vector<uchar> png;
    cv::imencode(".png", image, png);
    const std::string name = std::string(scene.style) + "-" + scene.text + ".png";
    std::string path = out_dir;
    path += '/';
    path += name;
    s = env->WriteFileAtomic(path, std::string(png.begin(), png.end()));
    if (!s.ok()) {
      std::fprintf(stderr, "portcullis: %s\n", s.ToString().c_str());
      return ExitCodeForInput(s);
    }
    std::vector<PlateRead> plates;
    s = reader->Read(image, &plates);
    if (!s.ok()) {
      std::fprintf(stderr, "portcullis: %s\n", s.ToString().c_str());
      return kExitInternal;
    }
    const std::string read = plates.empty() ? "-" : plates[0].text;
    const bool ok = read == truth.text;
    correct += ok ? 1 : 0;
    std::printf(
        "%-14s %-9s %-9s %-6s %-12s %s\n", name.substr(0, 14).c_str(), truth.text.c_str(),
        read.c_str(),
        plates.empty()
            ? "-"
            : (std::to_string(static_cast<int>(std::lround(100 * plates[0].confidence))) + "%")
                  .c_str(),
        plates.empty() ? "-" : (plates[0].region + "/" + plates[0].format).c_str(),
        ok ? "ok" : "MISREAD");
  }
  std::printf(
      "\n%d of %zu plates read exactly. Read them again with:\n  portcullis plate read %s\n",
      correct, std::size(kDemoScenes), out_dir.c_str());
  return kExitOk;
}

}  // namespace

nlohmann::json PlateToJson(const PlateRead& read) {
  // The shape is shared with the HTTP API, so it is defined once, next to the engine.
  return plate::PlateReadToJson(read);
}

nlohmann::json ImageRecord(const std::string& file, const std::vector<PlateRead>& plates,
                           const Status& status) {
  nlohmann::json record;
  record["file"] = file;
  record["plates"] = nlohmann::json::array();
  if (status.ok()) {
    for (const auto& p : plates) record["plates"].push_back(PlateToJson(p));
    record["error"] = nullptr;
  } else {
    record["error"] = status.ToString();
    record["error_code"] = ErrorCodeName(status.code(), ErrorVocabulary::kImage);
  }
  return record;
}

nlohmann::json PassRecord(const std::string& file, const plate::PlatePass& pass) {
  nlohmann::json record = ImageRecord(file, {pass.best}, Status::Ok());
  record["frame"] = pass.best_frame;
  record["time_ms"] = pass.best_time_ms;
  record["first_frame"] = pass.first_frame;
  record["last_frame"] = pass.last_frame;
  record["frames_seen"] = pass.frames_seen;
  return record;
}

void AddPlateCommands(CLI::App& app, int* exit_code) {
  CLI::App* plate_cmd = app.add_subcommand("plate", "Read licence plates");
  plate_cmd->require_subcommand(1);

  auto flags = std::make_shared<ReadFlags>();
  auto add_engine_flags = [flags](CLI::App* cmd) {
    cmd->add_option("--top", flags->top, "Alternatives per plate (1-50)")->check(CLI::Range(1, 50));
    cmd->add_option("--threads", flags->threads, "Inference threads")->check(CLI::Range(1, 64));
    cmd->add_option("--detector-size", flags->detector_size,
                    "Longer image side seen by the text detector (speed/recall trade-off)")
        ->check(CLI::Range(64, 4096));
    cmd->add_option("--coarse-size", flags->coarse_size,
                    "Cheaper first detector pass at this size; 0 disables it")
        ->check(CLI::Range(0, 4096));
    cmd->add_flag("--exhaustive", flags->exhaustive,
                  "Recognise every candidate line (several vehicles per image)");
    cmd->add_option("--second-look", flags->second_look,
                    "Image with no read: detect again at this multiple of --detector-size "
                    "(0 disables; never on videos)")
        ->check(CLI::Validator(
            [](std::string& value) -> std::string {
              double v = -1;
              std::istringstream in(value);
              in >> v;
              return in && in.eof() && (v == 0.0 || (v > 1.0 && v <= 4.0))
                         ? ""
                         : "must be 0 or in (1, 4]";
            },
            "0 or (1,4]"));
  };

  CLI::App* read = plate_cmd->add_subcommand("read", "Read plates in images, directories, videos");
  read->add_option("inputs", flags->paths, "IMAGE, DIR (its images and videos) or VIDEO/URL")
      ->required();
  read->add_option("--region", flags->region,
                   "us, eu, br (a file in the region directory) or auto");
  read->add_flag("--json", flags->json, "JSON Lines on stdout: one object per image or pass");
  read->add_option("--max-plates", flags->max_plates, "Plates reported per image")
      ->check(CLI::Range(1, 64));
  read->add_option("--stride", flags->stride, "Video: analyse every Nth frame")
      ->check(CLI::Range(1, 1000));
  add_engine_flags(read);
  read->callback([flags, exit_code] { *exit_code = RunRead(*flags); });

  auto out_dir = std::make_shared<std::string>("demo-out");
  CLI::App* demo = plate_cmd->add_subcommand(
      "demo", "Render synthetic vehicle scenes with known plates, write them, and read them");
  demo->add_option("--out", *out_dir, "Directory for the rendered scenes");
  add_engine_flags(demo);
  demo->callback([flags, out_dir, exit_code] {
    flags->region = "auto";  // the demo mixes regions
    *exit_code = RunDemo(*out_dir, *flags);
  });
}

}  // namespace portcullis::cli
