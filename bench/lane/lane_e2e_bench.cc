// lane_e2e_bench: the lane agent end to end — the real `portcullis lane` binary on a 1080p 30 fps
// file, delivering over mutual TLS to a real service (in this process: lane-link's LinkWorld, a
// SQLite vault, access store and audit log), as issue 6's "Measured" paragraph asks:
//
//   1. flat out   the file decoded as fast as the CPU allows: analysed fps sustained, passes/s,
//                 passes read right against the clip's truth.
//   2. real time  the file delivered at 30 fps as a live camera would (cameras[].realtime):
//                 CPU per lane (the agent process's user+sys CPU ÷ seconds of video, decoding
//                 included), peak RSS, and the latency from each pass's last frame to the
//                 service's acknowledgement of its event (the agent's "event acknowledged" log
//                 lines; the same figure as its /metrics histogram), p50 / p95 / max.
//   3. outage     the service down while the queue holds --outage-events events (default 360:
//                 an hour of one vehicle every 10 s, sealed like the live run's events) plus the
//                 clip's own passes; then the service comes back: events/s until the backlog is
//                 empty (from the service's ledger: first to last acknowledgement), and that
//                 every event arrived exactly once (one ledger row, one record set, nothing
//                 extra in the vault) and in order (ledger in sequence order).
//
// The baseline in the same run: the flat-out run against the real-time one (what the pacing and
// the link cost), and for the drain, uplink_bench's transport-only server. Everything is written
// under a temporary directory and deleted.
//
//   build-l6/bench/lane/lane_e2e_bench [--seconds 60] [--vehicles 10] [--outage-events 360]
//                                      [--photos DIR [--photo-count 12]] [--keep]
//                                      [--plate-detector N (cameras[].plate_detector_max_side)]
//                                      [--outage-only [--event-bytes N] (no live runs)]
//
// --photos DIR renders the clip from vehicle photographs (DIR/*.jpg with DIR/*.txt truth
// "name x y w h TEXT", e.g. ../shared/data/alpr/us; benchmark only, never a test) approaching
// the camera across a 1080p frame, instead of the synthetic plate scenes (the repeatable
// default).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

// uplink_util.h first: it names portcullis::testing as `testing::`, which camera_util.h's
// portcullis::lane::testing would otherwise hide.
#include "uplink_util.h"
// (blank line: keeps clang-format from sorting the two back)

#include "camera_util.h"
#include "lane/data_dir.h"
#include "lane/sealed_queue.h"
#include "portcullis/lane_event.h"
#include "portcullis/vault.h"

namespace portcullis::lane {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr double kFps = 30;
constexpr int kWidth = 1920;
constexpr int kHeight = 1080;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int IntFlag(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  }
  return fallback;
}

std::string StringFlag(int argc, char** argv, const char* name) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return "";
}

bool BoolFlag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// ---- The clip -----------------------------------------------------------------------------------

struct Clip {
  std::string path;
  std::vector<std::string> truth;  // plate texts in order of passing
  int frames = 0;
  bool synthetic = true;
};

bool RenderSynthetic(const std::string& path, int seconds, int vehicles, Clip* clip) {
  const char* texts[] = {"ABC1234", "KTM5082", "HZR7391", "BDX4620", "MLP3857",
                         "RWT9104", "CGN2736", "YFE6419", "JVK8053", "SPU1978"};
  testing::LaneClipSpec spec;
  spec.width = kWidth;
  spec.height = kHeight;
  spec.approach = true;
  spec.plate_width = 220;
  spec.frames_per_vehicle = 75;
  const int total = seconds * static_cast<int>(kFps);
  spec.gap_frames = std::max(10, (total - vehicles * spec.frames_per_vehicle) / (vehicles + 1));
  spec.plates.clear();
  for (int v = 0; v < vehicles; ++v) spec.plates.emplace_back(texts[v % 10]);
  cv::VideoWriter writer(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), kFps,
                         cv::Size(kWidth, kHeight));
  if (!writer.isOpened()) return false;
  std::vector<testing::LaneClipTruth> truth;
  testing::RenderLaneClip(spec, &truth, [&](const cv::Mat& f) {
    writer.write(f);
    ++clip->frames;
  });
  for (const auto& t : truth) clip->truth.push_back(t.plate);
  clip->path = path;
  return true;
}

// Vehicle photographs approaching the camera: each photo (scaled to the frame's height) moves
// down the 1080p frame and grows from 80% to 100% over 2.5 s, with 1.5 s of empty road between.
bool RenderPhotos(const std::string& path, const std::string& dir, int count, Clip* clip) {
  std::vector<std::pair<std::string, std::string>> photos;  // jpg, plate text
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".jpg") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    if (static_cast<int>(photos.size()) >= count) break;
    std::ifstream txt(std::filesystem::path(f).replace_extension(".txt"));
    std::string line;
    if (!std::getline(txt, line)) continue;
    std::istringstream fields(line);
    std::string name, text;
    int x = 0, y = 0, w = 0, h = 0;
    // One plate per photo only: a pass is read once, and the truth must be unambiguous.
    if (!(fields >> name >> x >> y >> w >> h >> text)) continue;
    std::string second;
    if (std::getline(txt, second) && !second.empty()) continue;
    photos.emplace_back(f.string(), text);
  }
  if (photos.empty()) return false;
  cv::VideoWriter writer(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), kFps,
                         cv::Size(kWidth, kHeight));
  if (!writer.isOpened()) return false;
  const cv::Mat road(kHeight, kWidth, CV_8UC3, cv::Scalar(90, 95, 100));
  const int in_view = 75;
  const int gap = 45;
  const auto emit = [&](const cv::Mat& f) {
    writer.write(f);
    ++clip->frames;
  };
  for (const auto& [file, text] : photos) {
    const cv::Mat photo = cv::imread(file, cv::IMREAD_COLOR);
    if (photo.empty()) continue;
    for (int i = 0; i < gap; ++i) emit(road);
    for (int i = 0; i < in_view; ++i) {
      const double t = static_cast<double>(i) / (in_view - 1);
      const double scale = (0.8 + 0.2 * t) * kHeight / photo.rows;
      cv::Mat scaled;
      cv::resize(photo, scaled, cv::Size(), scale, scale, cv::INTER_AREA);
      cv::Mat frame = road.clone();
      // Centre horizontally; slide from 15% above to the bottom edge.
      const int x = (kWidth - scaled.cols) / 2;
      const int y = static_cast<int>((-0.15 + 0.15 * t) * kHeight) + (kHeight - scaled.rows);
      const cv::Rect dst =
          cv::Rect(x, y, scaled.cols, scaled.rows) & cv::Rect(0, 0, kWidth, kHeight);
      scaled(cv::Rect(dst.x - x, dst.y - y, dst.width, dst.height)).copyTo(frame(dst));
      emit(frame);
    }
    clip->truth.push_back(text);
  }
  for (int i = 0; i < gap; ++i) emit(road);
  clip->path = path;
  clip->synthetic = false;
  return true;
}

// ---- The agent process
// ----------------------------------------------------------------------------

// GET http://127.0.0.1:port/metrics -> the body ("" when nothing answers).
std::string GetMetrics(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[8192];
      ssize_t n = 0;
      while ((n = ::read(fd, buffer, sizeof buffer)) > 0)
        out.append(buffer, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  const std::size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

// The value of a metric line that starts with `name` (with its labels), or -1.
double Metric(const std::string& text, const std::string& name) {
  const std::size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::atof(text.c_str() + at + name.size() + 2);
}

struct AgentRun {
  double wall = 0;             // spawn to exit
  double first_frame_at = -1;  // seconds after spawn the first frame was counted
  double ended_at = -1;        // ... the camera reported "ended"
  double frames_at_end = 0;    // analysed frames then
  double cpu = 0;              // user + sys of the agent process
  long max_rss_kib = 0;
  int exit_code = -1;
};

// Runs `portcullis lane --config cfg` until it exits by itself (its file ended and its queue
// drained) or timeout_s; polls its /metrics; on_ended runs once when the camera has ended.
AgentRun RunAgent(const std::string& config, std::uint16_t metrics_port, int timeout_s,
                  const std::function<void()>& on_ended = {}) {
  AgentRun run;
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(PORTCULLIS_CLI_PATH, "portcullis", "lane", "--config", config.c_str(),
            "--drain-timeout-ms", "600000", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const std::string ended = "portcullis_lane_camera_state{camera=\"cam0\",state=\"ended\"}";
  const std::string frames = "portcullis_lane_frames_total{camera=\"cam0\"}";
  int status = 0;
  rusage usage{};
  while (true) {
    const pid_t done = ::wait4(pid, &status, WNOHANG, &usage);
    if (done == pid) break;
    if (Since(start) > timeout_s) {
      ::kill(pid, SIGTERM);
      ::wait4(pid, &status, 0, &usage);
      std::fprintf(stderr, "agent: timed out after %d s\n", timeout_s);
      break;
    }
    const std::string m = GetMetrics(metrics_port);
    if (!m.empty()) {
      const double f = Metric(m, frames);
      if (run.first_frame_at < 0 && f > 0) run.first_frame_at = Since(start);
      if (run.ended_at < 0 && Metric(m, ended) == 1) {
        run.ended_at = Since(start);
        run.frames_at_end = f;
        if (on_ended) on_ended();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  run.wall = Since(start);
  run.cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
            static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  run.max_rss_kib = usage.ru_maxrss;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// The agent's log: event id -> kind (queued), and latency_ms per acknowledged event.
struct AgentLogSummary {
  std::map<std::string, std::string> kind;
  std::vector<std::string> queued_order;
  std::map<std::string, double> latency_ms;
  int duplicates = 0;
  double pass_bytes_sum = 0;  // sealed bytes of the vehicle passes queued
  int pass_count = 0;
};

AgentLogSummary ReadAgentLog(const std::string& data_dir) {
  AgentLogSummary s;
  std::ifstream in(data_dir + "/logs/agent.log");
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    const std::string msg = j.value("msg", j.value("message", ""));
    const std::string id = j.value("event_id", "");
    if (msg == "event queued") {
      s.kind[id] = j.value("kind", "");
      s.queued_order.push_back(id);
      if (s.kind[id] == "vehicle_pass") {
        s.pass_bytes_sum += j.value("bytes", 0.0);
        ++s.pass_count;
      }
    } else if (msg == "event acknowledged") {
      s.latency_ms[id] = j.value("latency_ms", 0.0);
      if (j.value("duplicate", false)) ++s.duplicates;
    }
  }
  return s;
}

// ---- The service's side ------------------------------------------------------------------------

struct LedgerRow {
  std::string event_id;
  std::int64_t sequence = 0;
  std::int64_t done_micros = 0;
  std::size_t records = 0;
};

std::vector<LedgerRow> ReadLedger(const std::string& access_db, const std::string& device) {
  std::vector<LedgerRow> rows;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(access_db.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return rows;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT event_id, sequence, done_micros, records FROM "
                         "access_ingested_events WHERE device = ? AND done_micros != 0 "
                         "ORDER BY done_micros",
                         -1, &st, nullptr) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, device.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) {
      LedgerRow r;
      r.event_id = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      r.sequence = sqlite3_column_int64(st, 1);
      r.done_micros = sqlite3_column_int64(st, 2);
      const json records =
          json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st, 3)), nullptr, false);
      r.records = records.is_array() ? records.size() : 0;
      rows.push_back(std::move(r));
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

// Vault records per "event" label (metadata only) and, for read records, their plate text and
// sequence (decrypted: the bench is the auditor here).
struct VaultView {
  std::map<std::string, std::size_t> records_per_event;
  std::map<std::string, std::string> text_of_event;
};

VaultView ReadVault(vault::Vault* v) {
  VaultView view;
  const vault::AccessContext who{"bench", "auditor", "lane e2e benchmark"};
  for (vault::RecordType type : {vault::RecordType::kPlateRead, vault::RecordType::kKeptCapture}) {
    vault::RecordFilter filter;
    filter.type = type;
    filter.limit = 1000;
    while (true) {
      vault::RecordPage page;
      if (!v->List(who, filter, &page).ok()) break;
      for (const vault::RecordMeta& meta : page.records) {
        const auto event = meta.labels.find("event");
        if (event == meta.labels.end()) continue;
        ++view.records_per_event[event->second];
        const auto part = meta.labels.find("part");
        if (part == meta.labels.end() || part->second != "read") continue;
        vault::RecordMeta m;
        std::string body;
        if (!v->Get(who, meta.id, &m, &body).ok()) continue;
        const json j = json::parse(body, nullptr, false);
        if (j.is_object()) view.text_of_event[event->second] = j.value("text", "");
      }
      if (page.next_cursor.empty()) break;
      filter.cursor = page.next_cursor;
    }
  }
  return view;
}

// Passes read right: each truth text found once, in order (as lane_pipeline_bench scores).
void Score(const std::vector<std::string>& got, const std::vector<std::string>& truth, int* correct,
           int* wrong) {
  *correct = 0;
  *wrong = 0;
  std::size_t g = 0;
  for (const std::string& t : truth) {
    std::size_t k = g;
    while (k < got.size() && got[k] != t) ++k;
    if (k < got.size()) {
      ++*correct;
      *wrong += static_cast<int>(k - g);
      g = k + 1;
    }
  }
  *wrong += static_cast<int>(got.size() - g);
}

// cameras[].plate_detector_max_side: --plate-detector N, else sized to the synthetic clip's
// 1200x800 ROI as lane_pipeline_bench's --lane-detector 400 (the same pixels per plate as 640 on
// the whole 1080p picture), else (photo clips, no ROI) the engine's default.
constexpr int kRoiPlateDetector = 400;
int g_plate_detector = -1;

json AgentConfig(const uplinktest::LinkWorld& world, const Clip& clip, const std::string& dir,
                 std::uint16_t service_port, std::uint16_t metrics_port, bool realtime) {
  const UplinkConfig link = world.DeviceConfig(service_port);
  json camera = {{"id", "cam0"},
                 {"source", clip.path},
                 {"frame_stride", 2},
                 {"realtime", realtime},
                 {"stall_timeout_ms", 5000}};
  if (clip.synthetic) {
    // The lane: where plates pass in this camera's view (as lane_pipeline_bench).
    camera["roi"] = {{"x", 360}, {"y", 200}, {"w", 1200}, {"h", 800}};
  }
  const int plate_detector =
      g_plate_detector >= 0 ? g_plate_detector : (clip.synthetic ? kRoiPlateDetector : 0);
  if (plate_detector > 0) camera["plate_detector_max_side"] = plate_detector;
  return {{"device", world.device},
          {"lane", world.lane},
          {"data_dir", dir + "/data"},
          {"ingest_public_key_file", dir + "/ingest.pub"},
          {"cameras", json::array({camera})},
          {"service",
           {{"url", link.url},
            {"ca_file", link.ca_file},
            {"cert_file", link.cert_file},
            {"key_file", link.key_file},
            {"token_file", link.token_file},
            {"connect_timeout_ms", 2000},
            {"request_timeout_ms", 10000},
            {"backoff_initial_ms", 100},
            {"backoff_max_ms", 1000}}},
          {"metrics_listen", "127.0.0.1:" + std::to_string(metrics_port)},
          {"region", "us"}};
}

bool WriteAgentDir(const uplinktest::LinkWorld& world, const Clip& clip, const std::string& dir,
                   std::uint16_t service_port, std::uint16_t metrics_port, bool realtime) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/ingest.pub") << FormatIngestPublicKey(world.public_key) << "\n";
  std::ofstream(dir + "/agent.json")
      << AgentConfig(world, clip, dir, service_port, metrics_port, realtime).dump(2);
  return std::filesystem::exists(dir + "/agent.json");
}

struct LiveResult {
  AgentRun run;
  int passes = 0;
  int correct = 0;
  int wrong = 0;
  std::vector<double> latency_ms;    // vehicle passes
  std::size_t mean_event_bytes = 0;  // sealed, vehicle passes
  bool exactly_once = false;
};

LiveResult Live(uplinktest::LinkWorld& world, const Clip& clip, const std::string& dir,
                std::uint16_t service_port, bool realtime) {
  LiveResult r;
  const std::uint16_t metrics_port = uplinktest::FreePort();
  if (!WriteAgentDir(world, clip, dir, service_port, metrics_port, realtime)) return r;
  // Generous: a shared machine may analyse far slower than real time (the run then says so).
  const double timeout = static_cast<double>(clip.frames) / kFps * 30 + 120;
  r.run = RunAgent(dir + "/agent.json", metrics_port, static_cast<int>(timeout));
  const AgentLogSummary log = ReadAgentLog(dir + "/data");
  const std::vector<LedgerRow> ledger = ReadLedger(world.dir + "/access.db", world.device);
  const VaultView vault = ReadVault(world.Vault());
  std::set<std::string> ours;
  std::vector<std::string> texts;
  std::map<std::int64_t, std::string> by_sequence;
  bool ok = true;
  for (const LedgerRow& row : ledger) {
    if (log.kind.count(row.event_id) == 0) continue;  // another run's event
    ours.insert(row.event_id);
    const auto have = vault.records_per_event.find(row.event_id);
    const std::size_t stored = have == vault.records_per_event.end() ? 0 : have->second;
    if (stored != row.records) ok = false;  // a record set missing, partial or doubled
    if (log.kind.at(row.event_id) != "vehicle_pass") continue;
    by_sequence[row.sequence] = row.event_id;
  }
  for (const auto& [seq, id] : by_sequence) {
    ++r.passes;
    const auto t = vault.text_of_event.find(id);
    texts.push_back(t == vault.text_of_event.end() ? "" : t->second);
    const auto l = log.latency_ms.find(id);
    if (l != log.latency_ms.end()) r.latency_ms.push_back(l->second);
  }
  Score(texts, clip.truth, &r.correct, &r.wrong);
  if (log.pass_count > 0) {
    r.mean_event_bytes = static_cast<std::size_t>(log.pass_bytes_sum / log.pass_count);
  }
  r.exactly_once = ok && ours.size() == log.kind.size() && log.duplicates == 0;
  return r;
}

struct OutageResult {
  int queued = 0;         // events in the queue when the service came back
  int delivered = 0;      // ledger rows of this run
  double drain_s = 0;     // first to last acknowledgement
  double since_up_s = 0;  // service start to last acknowledgement
  bool in_order = false;
  bool exactly_once = false;
  AgentRun run;
};

OutageResult Outage(uplinktest::LinkWorld& world, uplinktest::LinkService* service,
                    const Clip& clip, const std::string& dir, int prefill,
                    std::size_t event_bytes) {
  OutageResult r;
  const std::uint16_t port = service->port();
  service->Stop();
  const std::uint16_t metrics_port = uplinktest::FreePort();
  if (!WriteAgentDir(world, clip, dir, port, metrics_port, /*realtime=*/false)) return r;
  // The backlog an hour's outage leaves: sealed events like the live run's, already queued.
  {
    ::mkdir((dir + "/data").c_str(), 0700);  // as the agent makes it: private
    std::unique_ptr<DataDir> data;
    std::unique_ptr<SealedQueue> queue;
    if (!DataDir::Open(dir + "/data", &data).ok() ||
        !data->CreateSubdir(SealedQueueOptions{}.subdir).ok() ||
        !SealedQueue::Open(data.get(), SealedQueueOptions{}, &queue).ok()) {
      std::fprintf(stderr, "outage: cannot open the agent's queue\n");
      return r;
    }
    for (int i = 1; i <= prefill; ++i) {
      const LaneEvent event =
          uplinktest::SampleEvent(world.lane, static_cast<std::uint64_t>(i), event_bytes, false);
      SealedEvent sealed;
      if (!SealLaneEvent(event, world.public_key, &sealed).ok() || !queue->Append(sealed).ok()) {
        std::fprintf(stderr, "outage: cannot queue event %d\n", i);
        return r;
      }
    }
  }
  Clock::time_point up_at;
  std::int64_t up_wall = 0;
  r.run = RunAgent(dir + "/agent.json", metrics_port,
                   static_cast<int>(static_cast<double>(clip.frames) / kFps * 20 + 900), [&] {
                     const std::string m = GetMetrics(metrics_port);
                     r.queued = static_cast<int>(Metric(m, "portcullis_lane_backlog_events"));
                     if (!service->Start(port).ok())
                       std::fprintf(stderr, "service restart failed\n");
                     up_at = Clock::now();
                     up_wall = Env::Default()->NowMicros();
                   });
  const std::vector<LedgerRow> ledger = ReadLedger(world.dir + "/access.db", world.device);
  const VaultView vault = ReadVault(world.Vault());
  std::vector<const LedgerRow*> ours;
  for (const LedgerRow& row : ledger) {
    if (row.done_micros >= up_wall) ours.push_back(&row);
  }
  r.delivered = static_cast<int>(ours.size());
  if (ours.size() >= 2) {
    r.drain_s = static_cast<double>(ours.back()->done_micros - ours.front()->done_micros) / 1e6;
    r.since_up_s = static_cast<double>(ours.back()->done_micros - up_wall) / 1e6;
  }
  r.in_order = true;
  r.exactly_once = r.delivered == r.queued;
  std::set<std::string> ids;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    if (i > 0 && ours[i]->sequence <= ours[i - 1]->sequence) r.in_order = false;
    if (!ids.insert(ours[i]->event_id).second) r.exactly_once = false;
    const auto have = vault.records_per_event.find(ours[i]->event_id);
    if ((have == vault.records_per_event.end() ? 0 : have->second) != ours[i]->records) {
      r.exactly_once = false;
    }
  }
  const AgentLogSummary log = ReadAgentLog(dir + "/data");
  if (log.duplicates != 0) r.exactly_once = false;
  return r;
}

double LoadAverage() {
  double load[1] = {0};
  return ::getloadavg(load, 1) == 1 ? load[0] : -1;
}

int Main(int argc, char** argv) {
  const int seconds = std::max(10, IntFlag(argc, argv, "--seconds", 60));
  const int vehicles = std::max(1, IntFlag(argc, argv, "--vehicles", 10));
  const int prefill = std::max(0, IntFlag(argc, argv, "--outage-events", 360));
  const std::string photos = StringFlag(argc, argv, "--photos");
  const int photo_count = std::max(1, IntFlag(argc, argv, "--photo-count", 12));
  const bool keep = BoolFlag(argc, argv, "--keep");
  g_plate_detector = IntFlag(argc, argv, "--plate-detector", -1);
  const bool live = !BoolFlag(argc, argv, "--outage-only");

  uplinktest::LinkWorld world;
  if (!world.Init()) return 1;
  uplinktest::LinkService service(world, "bench");
  if (Status s = service.Start(); !s.ok()) {
    std::fprintf(stderr, "service: %s\n", s.ToString().c_str());
    return 1;
  }
  Clip clip;
  const auto render0 = Clock::now();
  const bool rendered = photos.empty()
                            ? RenderSynthetic(world.dir + "/lane.avi", seconds, vehicles, &clip)
                            : RenderPhotos(world.dir + "/lane.avi", photos, photo_count, &clip);
  if (!rendered) {
    std::fprintf(stderr, "cannot render the clip\n");
    return 1;
  }
  const double video_s = clip.frames / kFps;
  std::fprintf(stderr, "clip: %d frames (%.0f s) 1920x1080 @ 30 fps, %zu vehicles (%s), %.1f s\n",
               clip.frames, video_s, clip.truth.size(),
               clip.synthetic ? "synthetic plate scenes" : photos.c_str(), Since(render0));

  std::printf(
      "\nlane_e2e_bench: `portcullis lane` on %.0f s of 1920x1080 @ 30 fps (stride 2), %zu "
      "vehicles (%s), mTLS to an in-process service (SQLite vault); load average %.2f at "
      "start\n\n",
      video_s, clip.truth.size(), clip.synthetic ? "synthetic" : "photographs", LoadAverage());
  std::printf(
      "| run | wall s | analysed fps | passes/s of wall | passes right / vehicles "
      "(wrong) | CPU s | CPU per lane (cores) | peak RSS MiB | ack latency ms p50 / p95 / "
      "max | exactly once |\n|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  std::size_t event_bytes = 4096;
  for (const bool realtime : {false, true}) {
    if (!live) break;
    const LiveResult r =
        Live(world, clip, world.dir + (realtime ? "/realtime" : "/flat"), service.port(), realtime);
    const double analysing = r.run.ended_at - r.run.first_frame_at;
    std::printf(
        "| %s | %.1f | %.1f | %.2f | %d / %zu (%d) | %.1f | %.2f | %.0f | %.0f / %.0f / %.0f "
        "| %s |\n",
        realtime ? "real time (30 fps delivered)" : "flat out (decode as fast as possible)",
        r.run.wall, analysing > 0 ? r.run.frames_at_end / analysing : 0,
        analysing > 0 ? r.passes / analysing : 0, r.correct, clip.truth.size(), r.wrong, r.run.cpu,
        r.run.cpu / video_s, static_cast<double>(r.run.max_rss_kib) / 1024,
        Percentile(r.latency_ms, 0.5), Percentile(r.latency_ms, 0.95),
        Percentile(r.latency_ms, 1.0), r.exactly_once ? "yes" : "NO");
    std::fflush(stdout);
    if (r.run.exit_code != 0) std::fprintf(stderr, "agent exited with %d\n", r.run.exit_code);
    // The backlog's events are sized like the live ones (the crop dominates; ~0.5 KiB of the
    // sealed event is the read, the ids and the seal).
    if (!realtime && r.mean_event_bytes > 1024) event_bytes = r.mean_event_bytes - 512;
  }

  if (prefill > 0) {
    // The backlog's size: the flat-out run's mean sealed pass, or --event-bytes without it.
    if (!live) event_bytes = static_cast<std::size_t>(IntFlag(argc, argv, "--event-bytes", 4096));
    const OutageResult o =
        Outage(world, &service, clip, world.dir + "/outage", prefill, event_bytes);
    std::printf(
        "\n| outage drain | events queued | delivered | first→last ack s | events/s | "
        "service up → empty s | in order | exactly once |\n|---|---|---|---|---|---|---|---|\n");
    std::printf(
        "| %d pre-queued (%zu B crop) + the clip's | %d | %d | %.1f | %.1f | %.1f | %s | %s |\n",
        prefill, event_bytes, o.queued, o.delivered, o.drain_s,
        o.drain_s > 0 ? (o.delivered - 1) / o.drain_s : 0, o.since_up_s, o.in_order ? "yes" : "NO",
        o.exactly_once ? "yes" : "NO");
  }
  std::printf("\nload average at the end: %.2f\n", LoadAverage());
  service.Stop();
  if (keep) {
    std::fprintf(stderr, "kept %s\n", world.dir.c_str());
  } else {
    std::error_code ec;
    std::filesystem::remove_all(world.dir, ec);
  }
  return 0;
}

}  // namespace
}  // namespace portcullis::lane

int main(int argc, char** argv) { return portcullis::lane::Main(argc, argv); }
