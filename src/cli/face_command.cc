#include "cli/face_command.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cli/exit_codes.h"
#include "cli/progress.h"
#include "face/face_metrics.h"
#include "face/face_net.h"
#include "portcullis/env.h"
#include "portcullis/image.h"

namespace portcullis::cli {
namespace {

using face::FaceCapture;
using face::FaceEngine;
using face::FaceTemplate;
using face::QualityIssue;
using nlohmann::json;

double Round(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

// ---- face verify ------------------------------------------------------------------------------

struct VerifyFlags {
  std::string a;
  std::string b;
  bool json = false;
  FaceEngineFlags engine;
};

// One side of a verification: read, enrol. Returns the exit code for a failure (0 when fine).
int EnrolSide(FaceEngine* engine, const std::string& path, FaceTemplate* t, FaceCapture* cap,
              Status* status) {
  cv::Mat bgr;
  *status = LoadFaceImage(path, &bgr);
  if (!status->ok()) return ExitCodeForInput(*status);
  *status = engine->Enrol(bgr, t, cap);
  if (status->ok()) return kExitOk;
  if (cap->issue != QualityIssue::kNone) return kExitFaceQuality;
  return status->code() == Status::Code::kInternal ? kExitInternal : ExitCodeForInput(*status);
}

int RunVerify(const VerifyFlags& flags) {
  std::unique_ptr<FaceEngine> engine;
  if (const int code = OpenFaceEngine(flags.engine, &engine); code != kExitOk) return code;
  FaceTemplate ta;
  FaceTemplate tb;
  FaceCapture ca;
  FaceCapture cb;
  Status sa;
  Status sb;
  const int code_a = EnrolSide(engine.get(), flags.a, &ta, &ca, &sa);
  const int code_b = EnrolSide(engine.get(), flags.b, &tb, &cb, &sb);

  json record;
  record["a"] = flags.a;
  record["b"] = flags.b;
  int exit = kExitOk;
  if (code_a != kExitOk || code_b != kExitOk) {
    // The first failing side is reported; "side" says which.
    const bool a_failed = code_a != kExitOk;
    const Status& s = a_failed ? sa : sb;
    const FaceCapture& c = a_failed ? ca : cb;
    exit = a_failed ? code_a : code_b;
    record["distance"] = nullptr;
    record["similarity"] = nullptr;
    record["match"] = nullptr;
    record["threshold"] = Round(engine->match_threshold(), 4);
    record["error"] = s.ToString();  // the status already names the file
    record["side"] = a_failed ? "a" : "b";
    if (c.issue != QualityIssue::kNone) {
      record["error_code"] = "quality";
      record["issue"] = face::QualityIssueName(c.issue);
    } else {
      record["error_code"] = ErrorCodeName(s.code(), ErrorVocabulary::kImage);
      record["issue"] = nullptr;
    }
  } else {
    const face::VerifyResult r = engine->Verify(ta, tb);
    record["distance"] = Round(r.distance, 4);
    record["similarity"] = Round(r.similarity, 4);
    record["match"] = r.match;
    record["threshold"] = Round(r.threshold, 4);
    record["error"] = nullptr;
    record["quality_a"] = CaptureToJson(ca);
    record["quality_b"] = CaptureToJson(cb);
    exit = r.match ? kExitOk : kExitNoMatch;
  }
  if (flags.json) {
    std::printf("%s\n", record.dump().c_str());
  } else if (record["error"].is_null()) {
    std::printf("%s: distance %.3f, similarity %.3f, threshold %.3f\n",
                record["match"].get<bool>() ? "MATCH" : "NO MATCH",
                record["distance"].get<double>(), record["similarity"].get<double>(),
                record["threshold"].get<double>());
  } else {
    std::fprintf(
        stderr, "portcullis face verify: %s%s%s\n", record["error"].get<std::string>().c_str(),
        record["issue"].is_null() ? "" : " (retake: ",
        record["issue"].is_null() ? "" : (record["issue"].get<std::string>() + ")").c_str());
  }
  std::fflush(stdout);
  return exit;
}

// ---- face eval ----------------------------------------------------------------------------------

struct EvalFlags {
  std::string people;
  std::string pairs;
  std::string plot;
  bool json = false;
  int limit = 0;
  unsigned seed = 1;
  bool pairs_only = false;
  bool list_errors = false;
  std::string scores;
  int threads = 0;  // 0: one per core
  FaceEngineFlags engine;
};

struct ImageRef {
  std::string person;
  std::string path;
};

bool IsImageName(const std::string& name) {
  auto dot = name.find_last_of('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "bmp";
}

// One image's template for the evaluator. A failure to enrol (no face found) is marked and the
// image is embedded from an assumed centred face box instead, so that every pair is still scored
// (LFW's protocol scores every pair).
struct EvalTemplate {
  FaceTemplate t;
  Status status;
  bool centre_crop = false;
};

EvalTemplate EmbedForEval(FaceEngine* engine, const std::string& path) {
  EvalTemplate e;
  cv::Mat bgr;
  e.status = LoadFaceImage(path, &bgr);
  if (!e.status.ok()) return e;
  // LFW's convention: the labelled face is the one centred in the image, so of several faces the
  // most central is taken (a gate's Enrol would refuse the capture instead).
  std::vector<FaceTemplate> all;
  std::vector<FaceCapture> caps;
  const Status s = engine->EmbedAll(bgr, &all, &caps);
  if (s.ok() && !all.empty()) {
    std::size_t best = 0;
    double best_d = 1e18;
    for (std::size_t i = 0; i < caps.size(); ++i) {
      const double dx = caps[i].box.x + caps[i].box.width / 2.0 - bgr.cols / 2.0;
      const double dy = caps[i].box.y + caps[i].box.height / 2.0 - bgr.rows / 2.0;
      if (dx * dx + dy * dy < best_d) {
        best_d = dx * dx + dy * dy;
        best = i;
      }
    }
    e.t = std::move(all[best]);
    return e;
  }
  FaceCapture cap;
  e.centre_crop = true;
  const int side = std::min(bgr.cols, bgr.rows);
  const int box = std::max(1, side * 46 / 100);
  const face::FaceBox fb{(bgr.cols - box) / 2, (bgr.rows - box) / 2, box, box};
  e.status = engine->EmbedRegion(bgr, fb, &e.t, &cap);
  return e;
}

// The embedding cache: each image is read and embedded once, up front, by one engine per thread
// (an engine is not thread-safe; templates are a function of the image alone, so the result does
// not depend on the thread count).
class TemplateCache {
 public:
  // Embeds every path not yet cached; `progress` is called on this thread with the count done.
  void Fill(const std::vector<std::string>& paths, const std::vector<FaceEngine*>& engines,
            const std::function<void(std::int64_t)>& progress) {
    std::vector<std::string> todo;
    for (const std::string& p : paths) {
      if (cache_.count(p) == 0) todo.push_back(p);
    }
    std::sort(todo.begin(), todo.end());
    todo.erase(std::unique(todo.begin(), todo.end()), todo.end());
    std::vector<EvalTemplate> results(todo.size());
    std::atomic<std::size_t> next{0};
    std::atomic<std::int64_t> done{0};
    auto work = [&](FaceEngine* engine) {
      for (std::size_t i = next++; i < todo.size(); i = next++) {
        results[i] = EmbedForEval(engine, todo[i]);
        ++done;
      }
    };
    std::vector<std::thread> workers;
    for (std::size_t k = 1; k < engines.size(); ++k) workers.emplace_back(work, engines[k]);
    work(engines[0]);
    for (;;) {  // the calling thread reports progress until the others finish
      progress(done.load());
      if (done.load() == static_cast<std::int64_t>(todo.size())) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (std::thread& w : workers) w.join();
    for (std::size_t i = 0; i < todo.size(); ++i) {
      if (results[i].centre_crop) {
        ++failures_to_enrol_;
        fte_paths_.push_back(todo[i]);
      }
      if (!results[i].status.ok()) ++unreadable_;
      cache_.emplace(todo[i], std::move(results[i]));
    }
  }

  // Returns false (with the reason) when the image could not be read at all; Fill must have
  // covered the path.
  bool Get(const std::string& path, const FaceTemplate** out, std::string* error) const {
    auto it = cache_.find(path);
    if (it == cache_.end()) {
      *error = "Internal: image not embedded: " + path;
      return false;
    }
    if (!it->second.status.ok()) {
      *error = it->second.status.ToString();
      return false;
    }
    *out = &it->second.t;
    return true;
  }

  [[nodiscard]] int failures_to_enrol() const { return failures_to_enrol_; }
  [[nodiscard]] int unreadable() const { return unreadable_; }
  [[nodiscard]] std::size_t size() const { return cache_.size(); }
  [[nodiscard]] const std::vector<std::string>& fte_paths() const { return fte_paths_; }

 private:
  std::map<std::string, EvalTemplate> cache_;
  int failures_to_enrol_ = 0;
  int unreadable_ = 0;
  std::vector<std::string> fte_paths_;
};

struct PairRef {
  std::string a;
  std::string b;
  bool same = false;
};

Status ListPeople(const std::string& dir, int limit,
                  std::map<std::string, std::vector<std::string>>* people) {
  Env* env = Env::Default();
  if (env->KindOf(dir) != FileKind::kDirectory) return Status::NotFound(dir + ": not a directory");
  std::vector<std::string> names;
  PORTCULLIS_RETURN_IF_ERROR(env->ListDirectory(dir, &names));
  for (const std::string& name : names) {
    std::string sub = dir;
    sub += "/";
    sub += name;
    if (env->KindOf(sub) != FileKind::kDirectory) continue;
    std::vector<std::string> files;
    PORTCULLIS_RETURN_IF_ERROR(env->ListDirectory(sub, &files));
    std::vector<std::string> images;
    for (const std::string& f : files) {
      if (IsImageName(f)) images.push_back(std::string(sub).append("/").append(f));
    }
    if (images.empty()) continue;
    (*people)[name] = std::move(images);
    if (limit > 0 && static_cast<int>(people->size()) >= limit) break;
  }
  if (people->empty()) return Status::NotFound(dir + ": no person folders with images");
  return Status::Ok();
}

// LFW pairs.txt: "Name<TAB>i<TAB>j" (same) or "Name1<TAB>i<TAB>Name2<TAB>j" (different); an
// optional header line ("10<TAB>300": folds and pairs per fold) is skipped.
Status ReadPairs(const std::string& pairs_path, const std::string& dir,
                 std::vector<PairRef>* pairs) {
  std::string text;
  PORTCULLIS_RETURN_IF_ERROR(Env::Default()->ReadFile(pairs_path, 64u << 20, &text));
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  auto image = [&dir](const std::string& name, int index) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "_%04d.jpg", index);
    return dir + "/" + name + "/" + name + buf;
  };
  auto to_int = [](const std::string& s, int* v) {
    if (s.empty() || s.size() > 6 || !std::all_of(s.begin(), s.end(), ::isdigit)) return false;
    *v = std::stoi(s);
    return true;
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, '\t')) f.push_back(field);
    int i = 0;
    int j = 0;
    if (line_no == 1 && f.size() == 2 && to_int(f[0], &i) && to_int(f[1], &j)) continue;
    if (f.size() == 3 && to_int(f[1], &i) && to_int(f[2], &j)) {
      pairs->push_back({image(f[0], i), image(f[0], j), true});
    } else if (f.size() == 4 && to_int(f[1], &i) && to_int(f[3], &j)) {
      pairs->push_back({image(f[0], i), image(f[2], j), false});
    } else {
      return Status::InvalidArgument(pairs_path + ":" + std::to_string(line_no) +
                                     ": not a pairs.txt line");
    }
  }
  if (pairs->empty()) return Status::InvalidArgument(pairs_path + ": no pairs");
  return Status::Ok();
}

// Without a pairs file: every same-person pair, and as many seeded different-person pairs.
void BuildPairs(const std::map<std::string, std::vector<std::string>>& people, unsigned seed,
                std::vector<PairRef>* pairs) {
  std::vector<ImageRef> all;
  for (const auto& [name, images] : people) {
    for (std::size_t i = 0; i < images.size(); ++i) {
      all.push_back({name, images[i]});
      for (std::size_t j = i + 1; j < images.size(); ++j)
        pairs->push_back({images[i], images[j], true});
    }
  }
  const std::size_t genuine = pairs->size();
  if (people.size() < 2 || all.size() < 2) return;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, all.size() - 1);
  std::size_t made = 0;
  for (std::size_t tries = 0;
       made < std::max<std::size_t>(genuine, 1) && tries < 100 * (genuine + 1); ++tries) {
    const ImageRef& x = all[pick(rng)];
    const ImageRef& y = all[pick(rng)];
    if (x.person == y.person) continue;
    pairs->push_back({x.path, y.path, false});
    ++made;
  }
}

void DrawPlot(const std::string& path, const std::vector<face::ScoredPair>& scored,
              Status* status) {
  const int w = 1000;
  const int h = 420;
  cv::Mat img(h, w, CV_8UC3, cv::Scalar(255, 255, 255));
  // Left: ROC (x = log10 FAR from 1e-4 to 1, y = TAR from 0.8 to 1).
  const cv::Rect roc(60, 20, 400, 360);
  const cv::Rect hist(560, 20, 400, 360);
  cv::rectangle(img, roc, cv::Scalar(0, 0, 0));
  cv::rectangle(img, hist, cv::Scalar(0, 0, 0));
  std::vector<float> gen;
  std::vector<float> imp;
  for (const auto& p : scored) (p.same ? gen : imp).push_back(p.distance);
  std::sort(gen.begin(), gen.end());
  std::sort(imp.begin(), imp.end());
  std::vector<cv::Point> curve;
  for (double t = 0; t <= 2.0; t += 0.002) {
    const double far =
        imp.empty()
            ? 0
            : static_cast<double>(std::upper_bound(imp.begin(), imp.end(), t) - imp.begin()) /
                  static_cast<double>(imp.size());
    const double tar =
        gen.empty()
            ? 0
            : static_cast<double>(std::upper_bound(gen.begin(), gen.end(), t) - gen.begin()) /
                  static_cast<double>(gen.size());
    const double lx = std::clamp((std::log10(std::max(far, 1e-4)) + 4.0) / 4.0, 0.0, 1.0);
    const double ly = std::clamp((tar - 0.8) / 0.2, 0.0, 1.0);
    curve.emplace_back(roc.x + static_cast<int>(lx * roc.width),
                       roc.y + roc.height - static_cast<int>(ly * roc.height));
  }
  cv::polylines(img, curve, false, cv::Scalar(200, 0, 0), 2);
  cv::putText(img, "ROC: TAR (0.8-1) vs FAR (1e-4..1, log)", {roc.x, roc.y + roc.height + 30},
              cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0, 0, 0));
  // Right: distance histograms, 0..1.6 in 64 bins; genuine green, impostor red.
  const int bins = 64;
  std::vector<int> hg(bins, 0);
  std::vector<int> hi(bins, 0);
  auto bin = [&](float d) { return std::clamp(static_cast<int>(d / 1.6f * bins), 0, bins - 1); };
  for (const float d : gen) ++hg[static_cast<std::size_t>(bin(d))];
  for (const float d : imp) ++hi[static_cast<std::size_t>(bin(d))];
  const double gmax = std::max(1, *std::max_element(hg.begin(), hg.end()));
  const double imax = std::max(1, *std::max_element(hi.begin(), hi.end()));
  const int bw = hist.width / bins;
  for (int i = 0; i < bins; ++i) {
    const auto ui = static_cast<std::size_t>(i);
    const int gh = static_cast<int>(hg[ui] / gmax * (hist.height - 10));
    const int ih = static_cast<int>(hi[ui] / imax * (hist.height - 10));
    cv::rectangle(img, cv::Rect(hist.x + i * bw, hist.y + hist.height - gh, bw, gh),
                  cv::Scalar(0, 160, 0), cv::FILLED);
    cv::rectangle(img, cv::Rect(hist.x + i * bw, hist.y + hist.height - ih, bw, ih),
                  cv::Scalar(0, 0, 220), 1);
  }
  cv::putText(img, "distance 0..1.6: same (green), different (red)",
              {hist.x, hist.y + hist.height + 30}, cv::FONT_HERSHEY_SIMPLEX, 0.45,
              cv::Scalar(0, 0, 0));
  std::vector<unsigned char> png;
  if (!cv::imencode(".png", img, png)) {
    *status = Status::Internal("PNG encoding failed");
    return;
  }
  *status = Env::Default()->WriteFileAtomic(path, std::string(png.begin(), png.end()));
}

int RunEval(const EvalFlags& flags) {
  std::map<std::string, std::vector<std::string>> people;
  Status s = ListPeople(flags.people, flags.limit, &people);
  if (!s.ok()) {
    std::fprintf(stderr, "portcullis face eval: %s\n", s.ToString().c_str());
    return ExitCodeForInput(s);
  }
  std::vector<PairRef> pairs;
  if (!flags.pairs.empty()) {
    s = ReadPairs(flags.pairs, flags.people, &pairs);
    if (!s.ok()) {
      std::fprintf(stderr, "portcullis face eval: %s\n", s.ToString().c_str());
      return s.code() == Status::Code::kInvalidArgument ? kExitUsage : ExitCodeForInput(s);
    }
  } else {
    BuildPairs(people, flags.seed, &pairs);
  }
  FaceEngineFlags engine_flags = flags.engine;
  engine_flags.no_quality = true;  // evaluation measures the matcher, not the capture gate
  // One engine per thread (each holds its own network and scratch buffers), one BLAS thread each.
  const unsigned threads = flags.threads > 0 ? static_cast<unsigned>(flags.threads)
                                             : std::max(1U, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<FaceEngine>> engines(threads);
  std::vector<FaceEngine*> engine_ptrs;
  for (auto& e : engines) {
    if (const int code = OpenFaceEngine(engine_flags, &e); code != kExitOk) return code;
    engine_ptrs.push_back(e.get());
  }
  FaceEngine* engine = engine_ptrs[0];
  face::internal::SetBlasThreads(1);

  std::vector<std::string> paths;
  for (const PairRef& p : pairs) {
    paths.push_back(p.a);
    paths.push_back(p.b);
  }
  if (!flags.pairs_only) {
    for (const auto& [name, images] : people)
      paths.insert(paths.end(), images.begin(), images.end());
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  TemplateCache cache;
  {
    ProgressBar bar("face eval", static_cast<std::int64_t>(paths.size()),
                    ProgressBar::StderrIsTerminal());
    cache.Fill(paths, engine_ptrs, [&bar](std::int64_t done) { bar.Update(done); });
    bar.Finish();
  }

  // Verification.
  std::vector<face::ScoredPair> scored;
  int unscored = 0;
  std::size_t genuine_seen = 0;
  std::size_t impostor_seen = 0;
  std::size_t genuine_total = 0;
  for (const PairRef& p : pairs) genuine_total += p.same ? 1 : 0;
  const std::size_t impostor_total = pairs.size() - genuine_total;
  std::vector<std::string> errors;
  std::vector<const PairRef*> scored_refs;  // parallel to scored, for --list-errors
  for (const PairRef& p : pairs) {
    const FaceTemplate* a = nullptr;
    const FaceTemplate* b = nullptr;
    std::string error;
    // Folds: the k-th tenth of the genuine pairs and the k-th tenth of the impostor pairs, in file
    // order (LFW's layout: each fold holds a block of each).
    const std::size_t index = p.same ? genuine_seen++ : impostor_seen++;
    const std::size_t of = p.same ? genuine_total : impostor_total;
    const int fold = static_cast<int>(index * 10 / std::max<std::size_t>(of, 1));
    if (cache.Get(p.a, &a, &error) && cache.Get(p.b, &b, &error)) {
      scored.push_back({face::Distance(*a, *b), p.same, fold});
      scored_refs.push_back(&p);
    } else {
      ++unscored;
      if (errors.size() < 5) errors.push_back(error);
    }
  }

  // 1:N over the people set. Enrolled: persons with two or more images (their first image);
  // non-mated probes: images of persons not enrolled (single-image persons, or, when every person
  // has several images, the last fifth of the persons by name).
  std::vector<std::string> names;
  names.reserve(people.size());
  for (const auto& [name, images] : people) names.push_back(name);
  std::map<std::string, bool> enrolled;
  bool any_single = false;
  for (const auto& [name, images] : people) any_single = any_single || images.size() == 1;
  const std::size_t held_out = any_single ? 0 : std::max<std::size_t>(1, names.size() / 5);
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto& images = people[names[i]];
    enrolled[names[i]] = images.size() >= 2 && i < names.size() - held_out;
  }
  std::vector<std::pair<std::string, const FaceTemplate*>> gallery;
  for (const auto& [name, images] : people) {
    if (flags.pairs_only || !enrolled[name]) continue;
    const FaceTemplate* t = nullptr;
    std::string error;
    if (cache.Get(images[0], &t, &error)) gallery.emplace_back(name, t);
  }
  std::vector<face::ProbeResult> probes;
  for (const auto& [name, images] : people) {
    if (flags.pairs_only) break;
    for (std::size_t i = 0; i < images.size(); ++i) {
      if (enrolled[name] && i == 0) continue;
      const FaceTemplate* t = nullptr;
      std::string error;
      if (!cache.Get(images[i], &t, &error) || gallery.empty()) continue;
      face::ProbeResult r;
      r.mated = enrolled[name];
      float best = 1e9f;
      const std::string* best_name = nullptr;
      for (const auto& [gname, gt] : gallery) {
        const float d = face::Distance(*t, *gt);
        if (d < best) {
          best = d;
          best_name = &gname;
        }
      }
      r.nearest_distance = best;
      r.rank1_correct = r.mated && best_name != nullptr && *best_name == name;
      probes.push_back(r);
    }
  }

  const face::FoldAccuracy acc = face::CrossValidatedAccuracy(scored, 10);
  std::vector<face::RocPoint> roc;
  for (const double far : {1e-4, 1e-3, 1e-2, 1e-1}) roc.push_back(face::TarAtFar(scored, far));
  const face::IdentificationStats id = face::Identification(probes, 0.01);
  std::size_t genuine = 0;
  for (const auto& p : scored) genuine += p.same ? 1 : 0;
  std::size_t default_right = 0;
  for (const auto& p : scored)
    default_right += ((p.distance <= engine->match_threshold()) == p.same) ? 1 : 0;

  if (flags.list_errors) {
    for (const std::string& path : cache.fte_paths()) {
      std::fprintf(stderr, "centre-crop fallback: %s\n", path.c_str());
    }
    for (std::size_t i = 0; i < scored.size(); ++i) {
      const bool accepted = scored[i].distance <= acc.mean_threshold;
      if (accepted == scored[i].same) continue;
      std::fprintf(stderr, "%s: %.4f %s %s\n", scored[i].same ? "false non-match" : "false match",
                   scored[i].distance, scored_refs[i]->a.c_str(), scored_refs[i]->b.c_str());
    }
  }

  if (!flags.scores.empty()) {
    std::string tsv;
    char buf[64];
    for (std::size_t i = 0; i < scored.size(); ++i) {
      std::snprintf(buf, sizeof(buf), "\t%d\t%.9g\t%d\n", scored[i].same ? 1 : 0,
                    static_cast<double>(scored[i].distance), scored[i].fold);
      tsv.append(scored_refs[i]->a).append("\t").append(scored_refs[i]->b).append(buf);
    }
    const Status w = Env::Default()->WriteFileAtomic(flags.scores, tsv);
    if (!w.ok()) {
      std::fprintf(stderr, "portcullis face eval: scores: %s\n", w.ToString().c_str());
      return ExitCodeForInput(w);
    }
  }

  Status plot_status;
  if (!flags.plot.empty()) DrawPlot(flags.plot, scored, &plot_status);

  json out;
  out["pairs"] = pairs.size();
  out["pairs_scored"] = scored.size();
  out["pairs_unscored"] = unscored;
  out["genuine_pairs"] = genuine;
  out["impostor_pairs"] = scored.size() - genuine;
  out["images"] = cache.size();
  out["failures_to_enrol"] = cache.failures_to_enrol();
  out["unreadable_images"] = cache.unreadable();
  out["accuracy"] = Round(acc.mean, 5);
  out["accuracy_stddev"] = Round(acc.stddev, 5);
  out["accuracy_threshold"] = Round(acc.mean_threshold, 4);
  out["folds"] = acc.folds;
  out["default_threshold"] = Round(engine->match_threshold(), 4);
  out["accuracy_at_default_threshold"] =
      scored.empty()
          ? 0.0
          : Round(static_cast<double>(default_right) / static_cast<double>(scored.size()), 5);
  json roc_json = json::array();
  for (const auto& r : roc) {
    roc_json.push_back({{"target_far", r.target_far},
                        {"far", Round(r.far, 6)},
                        {"tar", Round(r.tar, 5)},
                        {"threshold", Round(r.threshold, 4)}});
  }
  out["roc"] = roc_json;
  out["tar_at_far_1e-3"] = Round(roc[1].tar, 5);
  out["identification"] = {{"gallery", gallery.size()},
                           {"mated_probes", id.mated_probes},
                           {"non_mated_probes", id.non_mated_probes},
                           {"rank1", Round(id.rank1, 5)},
                           {"fpir_target", id.fpir_target},
                           {"fpir", Round(id.fpir, 5)},
                           {"fnir", Round(id.fnir, 5)},
                           {"threshold", Round(id.threshold, 4)}};
  out["plot"] = flags.plot.empty() ? json(nullptr) : json(flags.plot);
  out["errors"] = errors;

  if (flags.json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("pairs: %zu scored (%zu genuine, %zu impostor), %d unscored\n", scored.size(),
                genuine, scored.size() - genuine, unscored);
    std::printf(
        "images: %zu embedded, %d failures to enrol (embedded from a centre crop), %d unreadable\n",
        cache.size(), cache.failures_to_enrol(), cache.unreadable());
    std::printf("accuracy (10-fold): %.2f%% +- %.2f (mean threshold %.3f)\n", 100 * acc.mean,
                100 * acc.stddev, acc.mean_threshold);
    std::printf("accuracy at default threshold %.3f: %.2f%%\n", engine->match_threshold(),
                100 * out["accuracy_at_default_threshold"].get<double>());
    std::printf("%-10s %-10s %-8s %s\n", "FAR<=", "FAR", "TAR", "threshold");
    for (const auto& r : roc) {
      std::printf("%-10g %-10.5f %-8.4f %.4f\n", r.target_far, r.far, r.tar, r.threshold);
    }
    std::printf(
        "1:N: gallery %zu, %d mated / %d non-mated probes, rank-1 %.2f%%, FNIR %.2f%% at FPIR "
        "%.2f%% (threshold %.3f)\n",
        gallery.size(), id.mated_probes, id.non_mated_probes, 100 * id.rank1, 100 * id.fnir,
        100 * id.fpir, id.threshold);
    for (const auto& e : errors) std::printf("unscored: %s\n", e.c_str());
  }
  if (!plot_status.ok()) {
    std::fprintf(stderr, "portcullis face eval: plot: %s\n", plot_status.ToString().c_str());
    return ExitCodeForInput(plot_status);
  }
  return scored.empty() ? kExitBadImage : kExitOk;
}

}  // namespace

void AddFaceEngineFlags(CLI::App* cmd, FaceEngineFlags* flags) {
  cmd->add_option("--threshold", flags->threshold,
                  "Match when distance <= T (default: the calibrated threshold)")
      ->check(CLI::Range(0.01, 2.0));
  cmd->add_flag("--no-quality", flags->no_quality,
                "Report quality measures but never refuse a capture");
  cmd->add_flag("--no-upsample", flags->no_upsample,
                "Detect on small images (long side <= 400 px) at native size first");
  cmd->add_option("--min-face", flags->min_face_pixels,
                  "Look only for faces at least N px wide: detection runs on a copy shrunk by "
                  "80/N (faster; smaller faces, rivals included, are not seen)")
      ->check(CLI::Range(0, face::kMaxMinFacePixels));
  cmd->add_option("--jitter", flags->jitter,
                  "Embed the mean of N jittered copies of each face (N network passes per face: "
                  "document photos, evaluation)")
      ->check(CLI::Range(0, face::kMaxJitter));
}

int OpenFaceEngine(const FaceEngineFlags& flags, std::unique_ptr<FaceEngine>* engine) {
  face::FaceEngineOptions options;
  options.match_threshold = flags.threshold;
  options.quality.enforce = !flags.no_quality;
  options.upsample_small_images = !flags.no_upsample;
  options.jitter = flags.jitter;
  options.min_face_pixels = flags.min_face_pixels;
  const Status s = FaceEngine::Open(options, engine);
  if (!s.ok()) {
    std::fprintf(stderr, "portcullis face: %s (run scripts/install.sh)\n", s.ToString().c_str());
    return kExitSetup;
  }
  return kExitOk;
}

Status LoadFaceImage(const std::string& path, cv::Mat* bgr) {
  return ReadImageFile(Env::Default(), path, ImageLimits{}, bgr).WithContext(path);
}

json CaptureToJson(const FaceCapture& c) {
  return {{"box", {c.box.x, c.box.y, c.box.width, c.box.height}},
          {"inter_eye_px", Round(c.inter_eye_pixels, 1)},
          {"sharpness", Round(c.sharpness, 1)},
          {"yaw", Round(c.yaw_degrees, 1)},
          {"pitch", Round(c.pitch_degrees, 1)},
          {"roll", Round(c.roll_degrees, 1)},
          {"issue", face::QualityIssueName(c.issue)}};
}

CLI::App* FaceCommandGroup(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands({})) {
    if (sub->get_name() == "face") return sub;
  }
  CLI::App* group = app.add_subcommand("face", "Verify and evaluate faces (match, don't store)");
  group->require_subcommand(1);
  return group;
}

void AddFaceCommands(CLI::App& app, int* exit_code) {
  CLI::App* group = FaceCommandGroup(app);

  auto vflags = std::make_shared<VerifyFlags>();
  CLI::App* verify =
      group->add_subcommand("verify", "Are the faces in two images the same person?");
  verify->add_option("a", vflags->a, "First image (e.g. the document photo)")->required();
  verify->add_option("b", vflags->b, "Second image (e.g. the live capture)")->required();
  verify->add_flag("--json", vflags->json, "One JSON Lines record on stdout");
  AddFaceEngineFlags(verify, &vflags->engine);
  verify->callback([vflags, exit_code] { *exit_code = RunVerify(*vflags); });

  auto eflags = std::make_shared<EvalFlags>();
  CLI::App* eval =
      group->add_subcommand("eval", "Accuracy on a folder-per-person set (LFW layout)");
  eval->add_option("--people", eflags->people, "DIR with one folder of images per person")
      ->required();
  eval->add_option(
      "--pairs", eflags->pairs,
      "LFW pairs.txt (default: all same-person pairs and as many seeded different-person pairs)");
  eval->add_flag("--json", eflags->json, "One JSON object on stdout");
  eval->add_option("--plot", eflags->plot, "Write a PNG of the ROC curve and distance histograms");
  eval->add_option("--limit", eflags->limit, "Use only the first N persons (sorted by name)")
      ->check(CLI::Range(1, 1000000));
  eval->add_option("--seed", eflags->seed, "Seed for the different-person pairs");
  eval->add_flag("--pairs-only", eflags->pairs_only,
                 "Embed only the images of the pairs and skip the 1:N run (quick A/B)");
  eval->add_option("--scores", eflags->scores,
                   "Write every scored pair as TSV: a, b, same (0/1), distance, fold");
  eval->add_flag("--list-errors", eflags->list_errors,
                 "List on stderr the images embedded from a centre crop and the pairs "
                 "misclassified at the cross-validated threshold");
  eval->add_option("--threads", eflags->threads,
                   "Embed on N threads, one engine each (default 0: one per core); the results "
                   "do not depend on N")
      ->check(CLI::Range(0, 256));
  AddFaceEngineFlags(eval, &eflags->engine);
  eval->callback([eflags, exit_code] { *exit_code = RunEval(*eflags); });
}

}  // namespace portcullis::cli
