// server_load: sustained request rates, latency percentiles, error rate and memory growth of the
// service over HTTPS, for plate reads (lane frames) and gate matches (live captures), each against
// the engine's own per-call time without HTTP (the baseline: what the cores can do at best).
//
// It runs the real Service in this process on a free port (a temporary directory holds the
// config, a self-signed certificate, the vault, the audit log and the access store) and drives it
// with keep-alive TLS clients on raw OpenSSL. Phases per workload:
//   1. baseline: the engine alone, on one core;
//   2. saturation: closed loop, `clients` connections, for `seconds` -> the sustained rate;
//   3. half load: open loop at 50% of that rate -> the latency the target speaks of
//      (p99 gate match <= 250 ms at 50% load).
// RSS is read from /proc before and after the phases (the process holds server and clients).
// After the gate phases it prints where a gate match's time went at half load: the per-stage
// timings the server reports in its request log ("stages_ms", stage_timer.h), as percentiles.
//
//   server_load [--seconds 20] [--clients 4] [--workers 0] [--lfw DIR] [--plates-only]
//               [--gates-only] [--rate R] [--plate-rate R] [--soak SECONDS]
//   --rate R / --plate-rate R: run the half-load phase of gate matches / plate reads at R
//       requests/s instead of half the saturated rate just measured (so that two builds are
//       compared at the same offered load);
//   --soak S: after start-up, S seconds of mixed lane + gate traffic at the half-load rates
//       (open loop), RSS sampled every 10 s and printed as a table, then the latencies.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "portcullis/access_store.h"
#include "portcullis/audit.h"
#include "portcullis/face.h"
#include "portcullis/image.h"
#include "portcullis/plate.h"
#include "portcullis/plate_synth.h"
#include "server/logging.h"
#include "server/service.h"

namespace {

using Clock = std::chrono::steady_clock;
using portcullis::Status;
namespace fs = std::filesystem;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

void Die(const std::string& what, const Status& s = Status::Ok()) {
  std::fprintf(stderr, "server_load: %s %s\n", what.c_str(), s.ok() ? "" : s.ToString().c_str());
  std::exit(1);
}

std::string Base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += k[v & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// One keep-alive TLS connection.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) {
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
  }
  ~Client() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Status code (0 on a broken connection); body in *body.
  int Post(const std::string& target, const std::string& token, const std::string& type,
           const std::string& payload, std::string* body) {
    if (ssl_ == nullptr) return 0;
    const std::string request = "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                                "Authorization: Bearer " + token + "\r\nContent-Type: " + type +
                                "\r\nContent-Length: " + std::to_string(payload.size()) +
                                "\r\n\r\n" + payload;
    std::size_t done = 0;
    while (done < request.size()) {
      const int n = SSL_write(ssl_, request.data() + done, static_cast<int>(request.size() - done));
      if (n <= 0) return Broken();
      done += static_cast<std::size_t>(n);
    }
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!More()) return Broken();
    }
    const std::string head = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    const int status = head.size() > 12 ? std::atoi(head.c_str() + 9) : 0;
    std::size_t length = 0;
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const std::size_t cl = lower.find("content-length:");
    if (cl != std::string::npos) length = std::strtoul(lower.c_str() + cl + 15, nullptr, 10);
    while (buffer_.size() < length) {
      if (!More()) return Broken();
    }
    *body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    if (lower.find("connection: close") != std::string::npos) Broken();
    return status;
  }
  bool ok() const { return ssl_ != nullptr; }

 private:
  bool More() {
    char chunk[16384];
    const int n = SSL_read(ssl_, chunk, sizeof chunk);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  int Broken() {
    ERR_clear_error();
    if (ssl_ != nullptr) SSL_free(ssl_);
    ssl_ = nullptr;
    return 0;
  }
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  std::string buffer_;
};

struct Result {
  std::string name;
  double seconds = 0;
  std::vector<double> latencies_ms;  // successful requests
  std::size_t errors = 0;
  std::size_t overloaded = 0;  // 503 / 429: back-pressure, counted apart from errors
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t i =
      std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

// Closed loop (rate <= 0: each client sends as soon as it has an answer) or open loop at `rate`
// requests/s in total (each client keeps its share of a fixed schedule).
Result Drive(const std::string& name, std::uint16_t port, int clients, double seconds, double rate,
             const std::function<int(Client&, std::size_t)>& request) {
  Result result;
  result.name = name;
  std::mutex mutex;
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto client = std::make_unique<Client>(port);
      std::vector<double> local;
      std::size_t errors = 0, overloaded = 0, n = 0;
      const double interval = rate > 0 ? clients / rate : 0;
      auto next = start + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(interval * c / clients));
      while (Since(start) < seconds) {
        if (rate > 0) {
          std::this_thread::sleep_until(next);
          next +=
              std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval));
        }
        if (!client->ok()) client = std::make_unique<Client>(port);
        // Latency from the scheduled time in open loop, so queueing delay is not hidden.
        const auto t0 =
            rate > 0 ? std::min(Clock::now(), next - std::chrono::duration_cast<Clock::duration>(
                                                         std::chrono::duration<double>(interval)))
                     : Clock::now();
        int status = request(*client, n);
        if (status == 0 && rate > 0) {
          // A keep-alive connection idle for longer than the server's header deadline (slow
          // open-loop rates, e.g. the soak's lane traffic) is closed by the server; the request
          // never reached it. One retry on a fresh connection; a second failure counts.
          client = std::make_unique<Client>(port);
          status = request(*client, n);
        }
        ++n;
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (status == 200 || status == 201) {
          local.push_back(ms);
        } else if (status == 503 || status == 429) {
          ++overloaded;
        } else {
          ++errors;
        }
      }
      std::lock_guard<std::mutex> lock(mutex);
      result.latencies_ms.insert(result.latencies_ms.end(), local.begin(), local.end());
      result.errors += errors;
      result.overloaded += overloaded;
    });
  }
  for (auto& t : threads) t.join();
  result.seconds = Since(start);
  return result;
}

// Per-stage timings of the requests the server logs, for one route, while `active` is set.
class StageProfile {
 public:
  explicit StageProfile(std::string route) : route_(std::move(route)) {}
  void Start() {
    std::lock_guard<std::mutex> lock(mutex_);
    stages_.clear();
    totals_.clear();
    active_ = true;
  }
  void Stop() {
    std::lock_guard<std::mutex> lock(mutex_);
    active_ = false;
  }
  void OnLine(std::string_view line) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("msg", "") != "request" || j.value("route", "") != route_) {
      return;
    }
    if (j.value("status", 0) != 200) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (!active_) return;
    totals_.push_back(j.value("latency_ms", 0.0));
    if (!j.contains("stages_ms") || !j["stages_ms"].is_object()) return;
    for (const auto& [stage, ms] : j["stages_ms"].items()) {
      if (ms.is_number()) stages_[stage].push_back(ms.get<double>());
    }
  }
  void Print(const std::string& title) const;

 private:
  std::string route_;
  mutable std::mutex mutex_;
  bool active_ = false;
  std::vector<double> totals_;
  std::map<std::string, std::vector<double>> stages_;
};

void StageProfile::Print(const std::string& title) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::printf("\n%s (%zu requests logged with status 200)\n", title.c_str(), totals_.size());
  if (stages_.empty()) {
    std::printf("(the server reported no stage timings: a build without stage_timer.h)\n");
    return;
  }
  std::printf("| %-36s | %6s | %7s | %7s | %7s | %7s |\n", "stage (a/b: b inside a)", "n",
              "mean ms", "p50 ms", "p95 ms", "p99 ms");
  std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(38, '-').c_str(), std::string(8, '-').c_str(),
              std::string(9, '-').c_str(), std::string(9, '-').c_str(), std::string(9, '-').c_str(),
              std::string(9, '-').c_str());
  auto row = [](const std::string& name, const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    std::printf("| %-36s | %6zu | %7.1f | %7.1f | %7.1f | %7.1f |\n", name.c_str(), v.size(),
                v.empty() ? 0 : sum / static_cast<double>(v.size()), Percentile(v, 0.5),
                Percentile(v, 0.95), Percentile(v, 0.99));
  };
  row("total (server: header to response)", totals_);
  for (const auto& [stage, values] : stages_) row(stage, values);
}

void PrintRow(const Result& r, double baseline_ms) {
  const double total = static_cast<double>(r.latencies_ms.size() + r.errors + r.overloaded);
  std::printf("| %-28s | %8.1f | %7.1f | %7.1f | %7.1f | %7.1f | %6.2f%% | %6.2f%% | %8.1f |\n",
              r.name.c_str(), static_cast<double>(r.latencies_ms.size()) / r.seconds,
              Percentile(r.latencies_ms, 0.5), Percentile(r.latencies_ms, 0.95),
              Percentile(r.latencies_ms, 0.99), Percentile(r.latencies_ms, 1.0),
              total > 0 ? 100.0 * static_cast<double>(r.errors) / total : 0,
              total > 0 ? 100.0 * static_cast<double>(r.overloaded) / total : 0, baseline_ms);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 20;
  int clients = 4;
  std::size_t workers = 0;
  bool plates_only = false;
  bool gates_only = false;
  double gate_rate = 0;  // half-load phase rates; 0: half the saturated rate
  double plate_rate = 0;
  double soak_seconds = 0;
  std::string lfw = std::string(PORTCULLIS_SOURCE_DIR) + "/../shared/data/faces/lfw/people";
  if (!fs::exists(lfw)) lfw = "/work/shared/data/faces/lfw/people";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--seconds")
      seconds = std::atof(next().c_str());
    else if (a == "--clients")
      clients = std::atoi(next().c_str());
    else if (a == "--workers")
      workers = static_cast<std::size_t>(std::atoi(next().c_str()));
    else if (a == "--lfw")
      lfw = next();
    else if (a == "--plates-only")
      plates_only = true;
    else if (a == "--gates-only")
      gates_only = true;
    else if (a == "--rate")
      gate_rate = std::atof(next().c_str());
    else if (a == "--plate-rate")
      plate_rate = std::atof(next().c_str());
    else if (a == "--soak")
      soak_seconds = std::atof(next().c_str());
    else
      Die("unknown flag " + a);
  }
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
  // OpenSSL writes with plain send(): a write to a connection the server has closed must be an
  // error the client counts, not a SIGPIPE that ends the run.
  std::signal(SIGPIPE, SIG_IGN);
  // One line per request: not printed, but the gate match lines' stage timings are collected.
  StageProfile match_profile("/v1/gates/{gate}/galleries/{gallery}/match");
  portcullis::server::SetLogSink([&](std::string_view line) { match_profile.OnLine(line); });

  // ---- A service in a temporary directory -------------------------------------------------------
  const fs::path dir =
      fs::temp_directory_path() / ("portcullis-load-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string d = dir.string();
  const std::string openssl =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
      "-nodes -keyout " +
      d + "/key.pem -out " + d +
      "/cert.pem -days 2 "
      "-subj /CN=localhost 2>/dev/null";
  if (std::system(openssl.c_str()) != 0) Die("openssl req failed");
  Status s = portcullis::audit::GenerateKeys(d + "/audit-keys");
  if (!s.ok()) Die("audit keys", s);
  std::ofstream(d + "/secret") << "load-test\n";
  std::unique_ptr<portcullis::policy::AccessStore> store;
  s = portcullis::policy::OpenAccessStore("sqlite:" + d + "/access.db", {}, &store);
  if (!s.ok()) Die("access store", s);
  std::string lane_token, gate_token;
  portcullis::policy::NewPrincipal lane{"lane:7", portcullis::policy::Role::kLaneDevice, {"7"}, 0};
  portcullis::policy::NewPrincipal gate{
      "gate:a1", portcullis::policy::Role::kGateDevice, {"A1"}, 0};
  if (!store->CreatePrincipal(lane, &lane_token).ok() ||
      !store->CreatePrincipal(gate, &gate_token).ok()) {
    Die("principals");
  }
  store.reset();
  const nlohmann::json config = {
      {"node", "load"},
      {"listen", "127.0.0.1:0"},
      {"tls", {{"cert", d + "/cert.pem"}, {"key", d + "/key.pem"}}},
      {"vault",
       {{"store", "sqlite:" + d + "/vault.db"},
        {"keys", "keyring:" + d + "/vault.keyring"},
        {"secret_file", d + "/secret"},
        {"create_keys", true}}},
      {"audit", {{"log", d + "/audit"}, {"keys", d + "/audit-keys"}}},
      {"access",
       {{"store", "sqlite:" + d + "/access.db"},
        {"policy", std::string(PORTCULLIS_SOURCE_DIR) + "/data/policy.json"}}},
      {"limits", {{"workers", workers}, {"queue", 4 * workers}, {"rate_per_minute", 0}}},
      {"models", {{"faces", !plates_only}}},
      {"jobs", {{"enabled", false}}},
  };
  std::ofstream(d + "/config.json") << config.dump(2);
  portcullis::server::ServiceConfig service_config;
  s = portcullis::server::LoadServiceConfig(d + "/config.json", &service_config);
  if (!s.ok()) Die("config", s);
  std::unique_ptr<portcullis::server::Service> service;
  s = portcullis::server::Service::Open(service_config, &service);
  if (s.ok()) s = service->Start();
  if (!s.ok()) Die("service", s);
  const std::uint16_t port = service->port();
  const long rss_start = RssKb();

  // ---- Inputs
  // --------------------------------------------------------------------------------------
  std::vector<std::string> frames;
  for (int i = 0; i < 8; ++i) {
    portcullis::plate::SynthSpec spec;
    spec.text = "LDR" + std::to_string(1000 + i * 37);
    spec.seed = static_cast<std::uint32_t>(i + 1);
    portcullis::plate::SynthTruth truth;
    std::vector<unsigned char> jpeg;
    cv::imencode(".jpg", portcullis::plate::RenderVehicleScene(spec, &truth), jpeg,
                 {cv::IMWRITE_JPEG_QUALITY, 90});
    frames.emplace_back(jpeg.begin(), jpeg.end());
  }

  // Baseline: the plate engine alone, one core, same frames.
  std::unique_ptr<portcullis::plate::PlateReader> reader;
  s = portcullis::plate::PlateReader::Open({}, &reader);
  if (!s.ok()) Die("plate reader", s);
  double plate_ms = 0;
  if (!gates_only && plate_rate <= 0) {  // a given plate rate needs no plate baseline
    const int n = 16;
    const auto t = Clock::now();
    for (int i = 0; i < n; ++i) {
      cv::Mat bgr;
      portcullis::DecodeImage(frames[static_cast<std::size_t>(i) % frames.size()], {}, &bgr);
      std::vector<portcullis::plate::PlateRead> reads;
      reader->Read(bgr, &reads);
    }
    plate_ms = Since(t) * 1000 / n;
  }
  reader.reset();

  std::printf("server_load: %d clients, %zu workers, %.0f s per phase, %u cores\n\n", clients,
              workers, seconds, std::thread::hardware_concurrency());
  std::printf("| %-28s | %8s | %7s | %7s | %7s | %7s | %7s | %7s | %8s |\n", "phase", "req/s",
              "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "503/429", "engine ms");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(30, '-').c_str(),
              std::string(10, '-').c_str(), std::string(9, '-').c_str(),
              std::string(9, '-').c_str(), std::string(9, '-').c_str(), std::string(9, '-').c_str(),
              std::string(9, '-').c_str(), std::string(9, '-').c_str(),
              std::string(10, '-').c_str());
  if (plate_ms > 0) {
    std::printf("| %-28s | %8.1f | %7s | %7s | %7s | %7s | %7s | %7s | %8.1f |\n",
                "plate engine alone (1 core)", 1000.0 / plate_ms, "", "", "", "", "", "", plate_ms);
  }
  std::fflush(stdout);

  auto plate_request = [&](Client& c, std::size_t n) {
    std::string body;
    return c.Post("/v1/lanes/7/reads", lane_token, "image/jpeg", frames[n % frames.size()], &body);
  };
  if (!gates_only && soak_seconds <= 0) {
    const Result plate_sat =
        Drive("plate read, saturated", port, clients, seconds, 0, plate_request);
    PrintRow(plate_sat, plate_ms);
    const double rate =
        plate_rate > 0 ? plate_rate
                       : static_cast<double>(plate_sat.latencies_ms.size()) / plate_sat.seconds / 2;
    const Result plate_half =
        Drive(plate_rate > 0 ? "plate read, fixed rate" : "plate read, 50% load", port, clients,
              seconds, rate, plate_request);
    PrintRow(plate_half, plate_ms);
    std::fflush(stdout);
  }

  if (!plates_only) {
    // Travellers: LFW people with two photos; the first enrols, the second is the live capture.
    std::vector<std::pair<std::string, std::string>> people;  // (enrol jpeg, capture jpeg)
    if (fs::exists(lfw)) {
      std::vector<fs::path> names;
      for (const auto& e : fs::directory_iterator(lfw)) names.push_back(e.path());
      std::sort(names.begin(), names.end());
      for (const fs::path& person : names) {
        const std::string base = person.filename().string();
        const fs::path a = person / (base + "_0001.jpg");
        const fs::path b = person / (base + "_0002.jpg");
        if (!fs::exists(a) || !fs::exists(b)) continue;
        auto read = [](const fs::path& p) {
          std::ifstream in(p, std::ios::binary);
          return std::string(std::istreambuf_iterator<char>(in), {});
        };
        people.emplace_back(read(a), read(b));
        if (people.size() >= 40) break;
      }
    }
    if (people.empty()) {
      std::printf("\n(gate phases skipped: no LFW photos under %s)\n", lfw.c_str());
    } else {
      nlohmann::json manifest = {{"flight", "LD100"}, {"travellers", nlohmann::json::array()}};
      for (std::size_t i = 0; i < people.size(); ++i) {
        manifest["travellers"].push_back({{"id", "T" + std::to_string(i)},
                                          {"subject", i % 2 ? "citizen" : "non_citizen"},
                                          {"photo_jpeg_base64", Base64(people[i].first)}});
      }
      Client c(port);
      std::string body;
      const int status =
          c.Post("/v1/gates/A1/galleries", gate_token, "application/json", manifest.dump(), &body);
      const nlohmann::json opened = nlohmann::json::parse(body, nullptr, false);
      if (status != 201 || !opened.contains("gallery")) Die("gallery open: " + body);
      const std::string gallery = opened["gallery"].get<std::string>();

      // The baseline is one core: OpenBLAS would otherwise use both (the service pins its
      // workers' engines to one thread each as well).
      portcullis::face::SetBlasThreads(1);
      std::unique_ptr<portcullis::face::FaceEngine> engine;
      s = portcullis::face::FaceEngine::Open({}, &engine);
      if (!s.ok()) Die("face engine", s);
      double face_ms = 0;
      {
        const std::size_t n = std::min<std::size_t>(16, people.size());
        const auto t = Clock::now();
        for (std::size_t i = 0; i < n; ++i) {
          cv::Mat bgr;
          portcullis::DecodeImage(people[i].second, {}, &bgr);
          portcullis::face::FaceTemplate tmpl;
          engine->Enrol(bgr, &tmpl);
        }
        face_ms = Since(t) * 1000 / static_cast<double>(n);
      }
      engine.reset();
      std::printf("| %-28s | %8.1f | %7s | %7s | %7s | %7s | %7s | %7s | %8.1f |\n",
                  "face engine alone (1 core)", 1000.0 / face_ms, "", "", "", "", "", "", face_ms);
      std::fflush(stdout);
      auto match_request = [&](Client& client, std::size_t n) {
        std::string out;
        const std::size_t who = n % people.size();
        // 422 (a capture needing a re-take) is an answer, not an error.
        const int st = client.Post("/v1/gates/A1/galleries/" + gallery + "/match", gate_token,
                                   "image/jpeg", people[who].second, &out);
        return st == 422 ? 200 : st;
      };
      if (soak_seconds > 0) {
        // Mixed lane + gate traffic at about half the workers' engine capacity (a quarter each,
        // from the engine baselines above) unless the rates are given.
        const double w = static_cast<double>(workers);
        const double g = gate_rate > 0 ? gate_rate : 0.25 * w * 1000.0 / face_ms;
        const double p = plate_rate > 0 ? plate_rate : 0.25 * w * 1000.0 / plate_ms;
        std::printf(
            "\nsoak: %.0f s, gate matches at %.2f/s and plate reads at %.2f/s "
            "(open loop); RSS every 10 s\n\n",
            soak_seconds, g, p);
        std::printf("| %7s | %8s | %9s |\n", "t s", "RSS MiB", "delta MiB");
        std::printf("|%s|%s|%s|\n", std::string(9, '-').c_str(), std::string(10, '-').c_str(),
                    std::string(11, '-').c_str());
        const long soak_rss_start = RssKb();
        long peak = soak_rss_start;
        std::atomic<bool> done{false};
        std::thread sampler([&] {
          const auto t0 = Clock::now();
          for (int tick = 0;; ++tick) {
            const long rss = RssKb();
            peak = std::max(peak, rss);
            std::printf("| %7d | %8ld | %+9ld |\n", tick * 10, rss / 1024,
                        (rss - soak_rss_start) / 1024);
            std::fflush(stdout);
            const auto next = t0 + std::chrono::seconds(10 * (tick + 1));
            while (!done.load() && Clock::now() < next) {
              std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
            if (done.load()) return;
          }
        });
        Result soak_gate;
        Result soak_plate;
        match_profile.Start();
        std::thread lane_traffic([&] {
          soak_plate = Drive("soak: plate read", port, 2, soak_seconds, p, plate_request);
        });
        soak_gate = Drive("soak: gate match", port, clients, soak_seconds, g, match_request);
        lane_traffic.join();
        match_profile.Stop();
        done.store(true);
        sampler.join();
        const long soak_rss_end = RssKb();
        peak = std::max(peak, soak_rss_end);
        std::printf("\nsoak RSS: start %ld MiB, peak %ld MiB, end %ld MiB (%+ld MiB)\n\n",
                    soak_rss_start / 1024, peak / 1024, soak_rss_end / 1024,
                    (soak_rss_end - soak_rss_start) / 1024);
        PrintRow(soak_plate, plate_ms);
        PrintRow(soak_gate, face_ms);
        match_profile.Print("where a gate match's time went during the soak");
      } else {
        const Result gate_sat =
            Drive("gate match, saturated", port, clients, seconds, 0, match_request);
        PrintRow(gate_sat, face_ms);
        const double rate = gate_rate > 0 ? gate_rate
                                          : static_cast<double>(gate_sat.latencies_ms.size()) /
                                                gate_sat.seconds / 2;
        match_profile.Start();
        const Result gate_half =
            Drive(gate_rate > 0 ? "gate match, fixed rate" : "gate match, 50% load", port, clients,
                  seconds, rate, match_request);
        match_profile.Stop();
        PrintRow(gate_half, face_ms);
        std::printf(
            "\ngate match at %.2f req/s offered: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms "
            "(target p99 <= 250 ms at 50%% load): %s\n",
            rate, Percentile(gate_half.latencies_ms, 0.5), Percentile(gate_half.latencies_ms, 0.95),
            Percentile(gate_half.latencies_ms, 0.99),
            Percentile(gate_half.latencies_ms, 0.99) <= 250 ? "met" : "NOT met");
        match_profile.Print("where a gate match's time went at that load (server side)");
      }
    }
  }
  const long rss_end = RssKb();
  std::printf("\nRSS: %ld MiB at start of load, %ld MiB at end (%+ld MiB)\n", rss_start / 1024,
              rss_end / 1024, (rss_end - rss_start) / 1024);
  service->Shutdown();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
