#include "agent_util.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <opencv2/imgcodecs.hpp>

#include "cli_runner.h"
#include "plaintext_scan_util.h"

namespace portcullis::lane::testing {

portcullis::testing::RunOptions WithTimeout(double seconds) {
  portcullis::testing::RunOptions options;
  options.timeout_s = seconds;
  return options;
}

bool MakeAgentFixture(AgentFixture* f) {
  if (sodium_init() < 0) return false;
  f->dir = portcullis::testing::MakeTempDir();
  if (f->dir.empty()) return false;
  f->config_path = f->dir + "/lane.json";
  crypto_box_keypair(f->ingest_public.bytes.data(), f->ingest_secret.data());
  if (!GenerateGrantKeyPair(&f->grant_secret, &f->grant_public).ok()) return false;
  return portcullis::testing::WriteBytes(f->dir + "/ingest.pub",
                                         FormatIngestPublicKey(f->ingest_public) + "\n") &&
         portcullis::testing::WriteBytes(f->dir + "/grant.pub",
                                         FormatGrantPublicKey(f->grant_public));
}

nlohmann::json ValidConfigJson() {
  return {
      {"device", "lane:7-a"},
      {"lane", "7"},
      {"data_dir", "data"},
      {"ingest_public_key_file", "ingest.pub"},
      {"cameras",
       {{{"id", "cam0"}, {"source", "video.mp4"}, {"frame_stride", 2}, {"loop", false}}}},
      {"service",
       {{"url", "https://127.0.0.1:8443"},
        {"ca_file", "ca.pem"},
        {"cert_file", "device.pem"},
        {"key_file", "device.key"},
        {"token_file", "token"}}},
      {"maintenance",
       {{"listen", "127.0.0.1:0"},
        {"cert_file", "maint.pem"},
        {"key_file", "maint.key"},
        {"grant_public_key_file", "grant.pub"}}},
      {"metrics_listen", "127.0.0.1:0"},
  };
}

bool WriteConfig(const AgentFixture& fixture, const nlohmann::json& config) {
  return portcullis::testing::WriteBytes(fixture.config_path, config.dump(2));
}

// ---- Fakes ------------------------------------------------------------------------------------

namespace {

bool SafeName(const std::string& name) {
  if (name.empty() || name.find("..") != std::string::npos || name[0] == '/') return false;
  return std::count(name.begin(), name.end(), '/') <= 1;
}

class FsAppendFile final : public AppendFile {
 public:
  FsAppendFile(int fd, std::uint64_t size, std::shared_ptr<std::atomic<bool>> full)
      : fd_(fd), size_(size), full_(std::move(full)) {}
  ~FsAppendFile() override { ::close(fd_); }
  Status Append(std::string_view bytes) override {
    if (full_->load()) return Status::ResourceExhausted("No space left on device (injected)");
    if (::write(fd_, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
      return Status::IOError("short write");
    }
    size_ += bytes.size();
    return Status::Ok();
  }
  Status Sync() override { return ::fdatasync(fd_) == 0 ? Status::Ok() : Status::IOError("sync"); }
  [[nodiscard]] std::uint64_t size() const override { return size_; }

 private:
  int fd_;
  std::uint64_t size_;
  std::shared_ptr<std::atomic<bool>> full_;
};

}  // namespace

Status FsDataDir::NewAppendFile(const std::string& name, std::unique_ptr<AppendFile>* file) {
  if (!SafeName(name)) return Status::InvalidArgument("bad name " + name);
  const int fd =
      ::open((path_ + "/" + name).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("open " + name);
  struct stat st {};
  ::fstat(fd, &st);
  *file = std::make_unique<FsAppendFile>(fd, static_cast<std::uint64_t>(st.st_size), full);
  return Status::Ok();
}
Status FsDataDir::ReadFile(const std::string& name, std::size_t max_bytes, std::string* bytes) {
  if (!SafeName(name)) return Status::InvalidArgument("bad name " + name);
  return Env::Default()->ReadFile(path_ + "/" + name, max_bytes, bytes);
}
Status FsDataDir::WriteFileAtomic(const std::string& name, std::string_view bytes) {
  if (!SafeName(name)) return Status::InvalidArgument("bad name " + name);
  if (full->load()) return Status::ResourceExhausted("No space left on device (injected)");
  return Env::Default()->WriteFileAtomic(path_ + "/" + name, std::string(bytes));
}
Status FsDataDir::Truncate(const std::string& name, std::uint64_t size) {
  if (!SafeName(name)) return Status::InvalidArgument("bad name " + name);
  return ::truncate((path_ + "/" + name).c_str(), static_cast<off_t>(size)) == 0
             ? Status::Ok()
             : Status::IOError("truncate " + name);
}
Status FsDataDir::Remove(const std::string& name) {
  if (!SafeName(name)) return Status::InvalidArgument("bad name " + name);
  return ::unlink((path_ + "/" + name).c_str()) == 0 ? Status::Ok() : Status::NotFound(name);
}
Status FsDataDir::CreateSubdir(const std::string& name) {
  if (!SafeName(name) || name.find('/') != std::string::npos) {
    return Status::InvalidArgument("bad name " + name);
  }
  if (::mkdir((path_ + "/" + name).c_str(), 0700) == 0 || errno == EEXIST) return Status::Ok();
  return Status::IOError("mkdir " + name);
}
Status FsDataDir::List(const std::string& subdir, std::vector<std::string>* names) {
  return Env::Default()->ListDirectory(subdir.empty() ? path_ : path_ + "/" + subdir, names);
}
Status FsDataDir::FreeBytes(std::uint64_t* bytes) {
  *bytes = full->load() ? 0 : std::uint64_t{10} << 30;
  return Status::Ok();
}

namespace {

class FakeQueue final : public SealedQueue {
 public:
  FakeQueue(std::unique_ptr<AppendFile> file, SealedQueueOptions options,
            std::shared_ptr<FakeQueueStore> store)
      : file_(std::move(file)), options_(std::move(options)), store_(std::move(store)) {}
  Status Append(const SealedEvent& event) override {
    std::lock_guard<std::mutex> lock(store_->mutex);
    if (event.sequence <= store_->last_sequence) return Status::InvalidArgument("sequence");
    if (store_->events.size() >= options_.max_events) return Status::ResourceExhausted("full");
    PORTCULLIS_RETURN_IF_ERROR(file_->Append(event.sealed));
    PORTCULLIS_RETURN_IF_ERROR(file_->Sync());
    store_->events.push_back(event);
    store_->last_sequence = event.sequence;
    store_->bytes += event.sealed.size();
    return Status::Ok();
  }
  Status Front(SealedEvent* event) override {
    std::lock_guard<std::mutex> lock(store_->mutex);
    if (store_->events.empty()) return Status::NotFound("empty");
    *event = store_->events.front();
    return Status::Ok();
  }
  Status PopFront(const std::string& event_id) override {
    std::lock_guard<std::mutex> lock(store_->mutex);
    if (store_->events.empty() || store_->events.front().event_id != event_id) {
      return Status::InvalidArgument("not the front");
    }
    store_->bytes -= store_->events.front().sealed.size();
    store_->events.pop_front();
    return Status::Ok();
  }
  [[nodiscard]] SealedQueueStats stats() const override {
    std::lock_guard<std::mutex> lock(store_->mutex);
    SealedQueueStats s;
    s.events = store_->events.size();
    s.bytes = store_->bytes;
    s.oldest_sequence = store_->events.empty() ? 0 : store_->events.front().sequence;
    return s;
  }

 private:
  std::unique_ptr<AppendFile> file_;
  SealedQueueOptions options_;
  std::shared_ptr<FakeQueueStore> store_;
};

class FakeCamera final : public FrameSource {
 public:
  explicit FakeCamera(FakeCameraOptions options) : options_(std::move(options)) {}
  Status Next(int /*timeout_ms*/, Frame* frame) override {
    if (index_ >= options_.frames) {
      state_ = CameraState::kEnded;
      return Status::NotFound("end of file");
    }
    if (index_ == options_.stall_after && !stalled_) {
      stalled_ = true;
      state_ = CameraState::kStalled;
      stall_until_ =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.stall_ms);
    }
    if (state_ == CameraState::kStalled) {
      if (std::chrono::steady_clock::now() < stall_until_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return Status::IOError("camera stalled (fake)");
      }
      ++reconnects_;
      state_ = CameraState::kOk;
    }
    // A refused frame is only counted by a real FrameSource (never delivered); so here.
    if (options_.corrupt_every > 0 && index_ % options_.corrupt_every == 0) ++corrupt_;
    if (options_.on_frame) options_.on_frame(index_);
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.frame_interval_ms));
    frame->bgr = cv::Mat(360, 640, CV_8UC3, cv::Scalar(index_ % 255, 80, 160));
    frame->index = index_++;
    frame->monotonic_micros = std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count();
    frame->wall_micros = Env::Default()->NowMicros();
    state_ = CameraState::kOk;
    return Status::Ok();
  }
  [[nodiscard]] CameraState state() const override { return state_; }
  [[nodiscard]] std::int64_t corrupt_frames() const override { return corrupt_; }
  [[nodiscard]] std::int64_t reconnects() const override { return reconnects_; }

 private:
  FakeCameraOptions options_;
  int index_ = 0;
  std::atomic<CameraState> state_{CameraState::kOk};
  bool stalled_ = false;
  std::chrono::steady_clock::time_point stall_until_;
  std::atomic<std::int64_t> corrupt_{0};
  std::atomic<std::int64_t> reconnects_{0};
};

class FakeDetector final : public PassDetector {
 public:
  FakeDetector(std::string prefix, int frames_per_pass)
      : prefix_(std::move(prefix)), frames_per_pass_(frames_per_pass) {}
  Status Analyse(const Frame& frame, std::vector<LaneEvent>* events) override {
    ++stats_.frames;
    if (!open_) {
      open_ = true;
      started_ = frame.wall_micros;
      std::vector<unsigned char> jpeg;
      cv::imencode(".jpg", frame.bgr(cv::Rect(0, 0, 120, 40)), jpeg);
      crop_.assign(jpeg.begin(), jpeg.end());
    }
    if (++in_pass_ >= frames_per_pass_) Finish(frame.wall_micros, events);
    return Status::Ok();
  }
  Status Flush(std::vector<LaneEvent>* events) override {
    if (open_) Finish(Env::Default()->NowMicros(), events);
    return Status::Ok();
  }
  [[nodiscard]] PassDetectorStats stats() const override { return stats_; }

 private:
  void Finish(std::int64_t ended, std::vector<LaneEvent>* events) {
    LaneEvent e;
    e.kind = EventKind::kVehiclePass;
    e.started_wall_micros = started_;
    e.ended_wall_micros = ended;
    LanePlate plate;
    plate.text = prefix_ + std::to_string(++passes_);
    plate.confidence = passes_ % 3 == 0 ? 0.5f : 0.9f;
    plate.region = "us";
    plate.frames_seen = in_pass_;
    plate.crop = "plate-0";
    e.plates.push_back(plate);
    e.attachments.push_back({"plate-0", "image/jpeg", crop_});
    events->push_back(std::move(e));
    ++stats_.passes;
    open_ = false;
    in_pass_ = 0;
  }
  std::string prefix_;
  int frames_per_pass_;
  bool open_ = false;
  int in_pass_ = 0;
  int passes_ = 0;
  std::int64_t started_ = 0;
  std::string crop_;
  PassDetectorStats stats_;
};

class FakeUplink final : public Uplink {
 public:
  explicit FakeUplink(FakeService* service) : service_(service) {}
  Status SendEvent(const SealedEvent& event, LinkState* state, int* retry_after_ms,
                   bool* duplicate) override {
    *retry_after_ms = 0;
    return service_->Receive(event, state, duplicate);
  }
  Status SendReport(const std::string& json, LinkState* state) override {
    return service_->Report(json, state);
  }

 private:
  FakeService* service_;
};

}  // namespace

Status OpenFakeQueue(DataDir* dir, const SealedQueueOptions& options,
                     std::shared_ptr<FakeQueueStore> store, std::unique_ptr<SealedQueue>* queue) {
  PORTCULLIS_RETURN_IF_ERROR(dir->CreateSubdir(options.subdir));
  std::unique_ptr<AppendFile> file;
  PORTCULLIS_RETURN_IF_ERROR(dir->NewAppendFile(options.subdir + "/fake.q", &file));
  *queue = std::make_unique<FakeQueue>(std::move(file), options, std::move(store));
  return Status::Ok();
}

Status OpenFakeCamera(const FakeCameraOptions& options, std::unique_ptr<FrameSource>* source) {
  *source = std::make_unique<FakeCamera>(options);
  return Status::Ok();
}

Status MakeFakeDetector(const std::string& plate_prefix, int frames_per_pass,
                        std::unique_ptr<PassDetector>* detector) {
  *detector = std::make_unique<FakeDetector>(plate_prefix, frames_per_pass);
  return Status::Ok();
}

std::vector<LaneEvent> FakeService::events() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_;
}
std::vector<std::string> FakeService::reports() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reports_;
}
int FakeService::duplicates() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return duplicates_;
}

Status FakeService::Receive(const SealedEvent& event, LinkState* state, bool* duplicate) {
  *duplicate = false;
  if (!up.load()) {
    *state = static_cast<LinkState>(state_when_down.load());
    return Status::IOError("service down");
  }
  *state = LinkState::kUp;
  std::string plaintext(event.sealed.size() - crypto_box_SEALBYTES, '\0');
  if (crypto_box_seal_open(reinterpret_cast<unsigned char*>(plaintext.data()),
                           reinterpret_cast<const unsigned char*>(event.sealed.data()),
                           event.sealed.size(), fixture_.ingest_public.bytes.data(),
                           fixture_.ingest_secret.data()) != 0) {
    return Status::Corruption("cannot open");
  }
  LaneEvent opened;
  PORTCULLIS_RETURN_IF_ERROR(DecodeLaneEvent(plaintext, &opened));
  if (opened.event_id != event.event_id || opened.sequence != event.sequence) {
    return Status::Corruption("header mismatch");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (!ids_.insert(event.event_id).second) {
    ++duplicates_;
    *duplicate = true;
    return Status::Ok();
  }
  events_.push_back(std::move(opened));
  if (lose_answers.load() > 0) {
    --lose_answers;
    *state = LinkState::kUnreachable;
    return Status::IOError("answer lost (injected)");
  }
  return Status::Ok();
}

Status FakeService::Report(const std::string& json, LinkState* state) {
  if (!up.load()) {
    *state = static_cast<LinkState>(state_when_down.load());
    return Status::IOError("service down");
  }
  *state = LinkState::kUp;
  std::lock_guard<std::mutex> lock(mutex_);
  reports_.push_back(json);
  return Status::Ok();
}

void FakeService::Install(LaneAgentParts* parts) {
  parts->open_uplink = [this](const UplinkConfig&, std::unique_ptr<Uplink>* uplink) {
    *uplink = std::make_unique<FakeUplink>(this);
    return Status::Ok();
  };
  // The drain loop of uplink.h's QueueDrainer, in small: in order, pop only when acknowledged.
  parts->run_drainer = [](SealedQueue* queue, Uplink* uplink, const UplinkConfig&,
                          const std::function<bool()>& stop,
                          const std::function<void(const DrainStats&)>& on_change) {
    DrainStats stats;
    while (!stop()) {
      SealedEvent event;
      if (!queue->Front(&event).ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      int retry = 0;
      bool duplicate = false;
      LinkState state = LinkState::kUp;
      const Status s = uplink->SendEvent(event, &state, &retry, &duplicate);
      stats.acknowledged.clear();
      if (s.ok() && queue->PopFront(event.event_id).ok()) {
        ++stats.delivered;
        if (duplicate) ++stats.duplicates;
        stats.acknowledged = event.event_id;
        stats.acknowledged_duplicate = duplicate;
      }
      const bool changed = stats.state != state || s.ok();
      stats.state = state;
      if (changed) on_change(stats);
      if (!s.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
}

LaneAgentParts MakeFakeParts(const FakeParts& fakes, FakeService* service) {
  LaneAgentParts parts;
  auto full = fakes.disk_full;
  parts.open_data_dir = [full](const std::string& path, std::unique_ptr<DataDir>* dir) {
    ::mkdir(path.c_str(), 0700);
    auto d = std::make_unique<FsDataDir>(path);
    d->full = full;
    *dir = std::move(d);
    return Status::Ok();
  };
  auto store = fakes.queue;
  parts.open_queue = [store](DataDir* dir, const SealedQueueOptions& options,
                             std::unique_ptr<SealedQueue>* queue) {
    return OpenFakeQueue(dir, options, store, queue);
  };
  const FakeCameraOptions camera = fakes.camera;
  parts.open_camera = [camera](const CameraConfig&, std::unique_ptr<FrameSource>* source) {
    return OpenFakeCamera(camera, source);
  };
  const std::string prefix = fakes.plate_prefix;
  const int per_pass = fakes.frames_per_pass;
  parts.make_detector = [prefix, per_pass](const LaneAgentConfig&, const CameraConfig& c,
                                           std::unique_ptr<PassDetector>* detector) {
    return MakeFakeDetector(prefix + c.id, per_pass, detector);
  };
  service->Install(&parts);
  parts.steady_micros = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  parts.disable_core_dumps = [] { return Status::Ok(); };
  parts.core_dumps_disabled = [] { return true; };
  return parts;
}

LaneAgentConfig InProcessConfig(const AgentFixture& fixture, int cameras) {
  LaneAgentConfig c;
  c.device = "lane:7-a";
  c.lane = "7";
  c.data_dir = fixture.dir + "/data";
  c.ingest_public_key_file = fixture.dir + "/ingest.pub";
  c.ingest_public_key = fixture.ingest_public;
  for (int i = 0; i < cameras; ++i) {
    CameraConfig camera;
    camera.id = "cam" + std::to_string(i);
    camera.source = fixture.dir + "/video.mp4";
    c.cameras.push_back(camera);
  }
  c.service.url = "https://127.0.0.1:1";
  c.service.lane = "7";
  c.service.cert_file = fixture.dir + "/device.pem";
  c.maintenance.listen.clear();
  c.maintenance.grant_public_key = fixture.grant_public;
  c.metrics_listen = "127.0.0.1:0";
  c.health_report_interval_s = 3600;
  return c;
}

std::vector<std::string> ScanForPlaintext(const std::string& dir,
                                          const std::vector<std::string>& needles) {
  std::vector<std::string> all = testing_util::ImageSignatures();
  all.insert(all.end(), needles.begin(), needles.end());
  return testing_util::FindPlaintext(dir, all);
}

}  // namespace portcullis::lane::testing
