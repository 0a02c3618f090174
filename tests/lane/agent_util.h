// Shared helpers of the lane agent's tests (agent_*_test.cc): a directory with the key files a
// config needs, a valid config document to start from, and a grant key pair.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "lane/agent.h"
#include "lane/pass_detector.h"

#include "lane/maintenance_grant.h"
#include "portcullis/lane_event.h"

namespace portcullis::lane::testing {

struct AgentFixture {
  std::string dir;                // a fresh temporary directory
  std::string config_path;        // dir + "/lane.json" (written by WriteConfig)
  IngestPublicKey ingest_public;  // written to dir/ingest.pub
  std::array<unsigned char, 32> ingest_secret{};
  GrantSecretKey grant_secret;  // its public half written to dir/grant.pub
  GrantPublicKey grant_public;
};

// RunCli options with only a timeout.
portcullis::testing::RunOptions WithTimeout(double seconds);

// Creates the directory and key files. False on failure (the test fails with a message).
bool MakeAgentFixture(AgentFixture* fixture);
// A complete, valid config whose paths are relative to the fixture's directory.
nlohmann::json ValidConfigJson();
bool WriteConfig(const AgentFixture& fixture, const nlohmann::json& config);

// ---- Fakes of the parts (agent.h LaneAgentParts) --------------------------------------------

// A DataDir over a real directory (plain POSIX), with a disk that can fill up: once `full` is
// set every write fails with ResourceExhausted, as ENOSPC does.
class FsDataDir final : public DataDir {
 public:
  explicit FsDataDir(std::string path) : path_(std::move(path)) {}
  [[nodiscard]] const std::string& path() const override { return path_; }
  Status NewAppendFile(const std::string& name, std::unique_ptr<AppendFile>* file) override;
  Status ReadFile(const std::string& name, std::size_t max_bytes, std::string* bytes) override;
  Status WriteFileAtomic(const std::string& name, std::string_view bytes) override;
  Status Truncate(const std::string& name, std::uint64_t size) override;
  Status Remove(const std::string& name) override;
  Status CreateSubdir(const std::string& name) override;
  Status List(const std::string& subdir, std::vector<std::string>* names) override;
  Status FreeBytes(std::uint64_t* bytes) override;

  std::shared_ptr<std::atomic<bool>> full = std::make_shared<std::atomic<bool>>(false);

 private:
  std::string path_;
};

// A sealed queue kept in memory and appended to a file in the DataDir (so a full disk refuses
// it), bounded by max_events. Records survive only as long as the object: tests that restart
// share one through FakeQueueStore.
struct FakeQueueStore {
  std::mutex mutex;
  std::deque<SealedEvent> events;
  std::uint64_t last_sequence = 0;
  std::uint64_t bytes = 0;
};
Status OpenFakeQueue(DataDir* dir, const SealedQueueOptions& options,
                     std::shared_ptr<FakeQueueStore> store, std::unique_ptr<SealedQueue>* queue);

// A camera of `frames` synthetic 640x360 frames, then "ended". on_frame(i) runs before frame i.
struct FakeCameraOptions {
  int frames = 60;
  int frame_interval_ms = 2;
  std::function<void(int)> on_frame;
  // After stall_after frames the camera is stalled (Next fails, state "stalled") for stall_ms,
  // then comes back (one reconnect). -1: never.
  int stall_after = -1;
  int stall_ms = 0;
  // Every corrupt_every-th frame is refused as corrupt (counted, not delivered). 0: none.
  int corrupt_every = 0;
};
Status OpenFakeCamera(const FakeCameraOptions& options, std::unique_ptr<FrameSource>* source);

// One pass per `frames_per_pass` frames, plate text "<prefix><n>" (n from 1) with a real JPEG
// crop attachment: what must never reach the disk in the clear.
Status MakeFakeDetector(const std::string& plate_prefix, int frames_per_pass,
                        std::unique_ptr<PassDetector>* detector);

// The service's end of the link: receives events (dedupe by id, like the real service), opens
// each with the ingest secret key. `up` false: unreachable; `state_when_down` says why.
class FakeService {
 public:
  explicit FakeService(const AgentFixture& fixture) : fixture_(fixture) {}
  std::atomic<bool> up{true};
  std::atomic<int> state_when_down{static_cast<int>(LinkState::kUnreachable)};
  // The next this many new events are stored but their answer is lost (as on a dropped
  // connection): the agent re-sends them and hears "duplicate".
  std::atomic<int> lose_answers{0};

  // Delivered, opened events in arrival order (duplicates not repeated).
  std::vector<LaneEvent> events() const;
  std::vector<std::string> reports() const;
  int duplicates() const;
  // Parts that deliver to this service.
  void Install(LaneAgentParts* parts);

  Status Receive(const SealedEvent& event, LinkState* state, bool* duplicate);
  Status Report(const std::string& json, LinkState* state);

 private:
  const AgentFixture& fixture_;
  mutable std::mutex mutex_;
  std::vector<LaneEvent> events_;
  std::set<std::string> ids_;
  std::vector<std::string> reports_;
  int duplicates_ = 0;
};

// A wall clock the test can jump; defers files to Env::Default().
class JumpingEnv final : public Env {
 public:
  Status ReadFile(const std::string& p, std::size_t max, std::string* c) override {
    return Env::Default()->ReadFile(p, max, c);
  }
  Status WriteFileAtomic(const std::string& p, const std::string& c) override {
    return Env::Default()->WriteFileAtomic(p, c);
  }
  Status ListDirectory(const std::string& p, std::vector<std::string>* n) override {
    return Env::Default()->ListDirectory(p, n);
  }
  FileKind KindOf(const std::string& p) override { return Env::Default()->KindOf(p); }
  std::int64_t NowMicros() override { return Env::Default()->NowMicros() + offset_us.load(); }
  std::atomic<std::int64_t> offset_us{0};
};

// Parts for an in-process agent on fixture.dir/data: FsDataDir, the fake queue, one fake camera
// per configured camera, the fake detector and service. steady clock: the real one.
struct FakeParts {
  std::shared_ptr<FakeQueueStore> queue = std::make_shared<FakeQueueStore>();
  std::shared_ptr<std::atomic<bool>> disk_full = std::make_shared<std::atomic<bool>>(false);
  FakeCameraOptions camera;
  int frames_per_pass = 10;
  std::string plate_prefix = "QX7";
};
LaneAgentParts MakeFakeParts(const FakeParts& fakes, FakeService* service);

// A config for in-process runs: data dir fixture.dir/data, cameras "cam0".."camN-1", no
// maintenance port (unless maintenance), metrics on a free loopback port.
LaneAgentConfig InProcessConfig(const AgentFixture& fixture, int cameras);

// Every occurrence under dir of a JPEG/PNG signature or one of `needles` (the shared scanner,
// plaintext_scan_util.h). Empty: nothing readable found.
std::vector<std::string> ScanForPlaintext(const std::string& dir,
                                          const std::vector<std::string>& needles);

}  // namespace portcullis::lane::testing
