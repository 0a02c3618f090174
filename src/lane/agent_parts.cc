// DefaultLaneAgentParts: the real parts the agent is composed of — the confined DataDir and the
// sealed queue (lane-queue), OpenFrameSource and the PassDetector with engines of its own
// (lane-vision), the mTLS Uplink and QueueDrainer (lane-link), process hygiene.
#include <chrono>

#include "agent.h"
#include "hygiene.h"
#include "pass_detector.h"
#include "portcullis/face.h"
#include "portcullis/plate.h"
#include "uplink.h"

namespace portcullis::lane {
namespace {

// A PassDetector that owns the engines it was created with (PassDetector borrows them): one
// per camera thread, since the engines are not thread-safe.
class OwningDetector final : public PassDetector {
 public:
  OwningDetector(std::unique_ptr<plate::PlateReader> plates,
                 std::unique_ptr<face::FaceEngine> faces)
      : plates_(std::move(plates)), faces_(std::move(faces)) {}
  Status Init(const PassDetectorOptions& options) {
    return PassDetector::Create(options, plates_.get(), faces_.get(), &inner_);
  }
  Status Analyse(const Frame& frame, std::vector<LaneEvent>* events) override {
    return inner_->Analyse(frame, events);
  }
  Status Flush(std::vector<LaneEvent>* events) override { return inner_->Flush(events); }
  [[nodiscard]] PassDetectorStats stats() const override { return inner_->stats(); }

 private:
  std::unique_ptr<plate::PlateReader> plates_;
  std::unique_ptr<face::FaceEngine> faces_;
  std::unique_ptr<PassDetector> inner_;
};

Status MakeDetector(const LaneAgentConfig& config, const CameraConfig& camera,
                    std::unique_ptr<PassDetector>* detector) {
  plate::PlateReaderOptions plate_options;
  plate_options.model_dir = config.model_dir;
  plate_options.region = config.region;
  // A camera stream: most frames hold no plate, and a vehicle's plate grows as it approaches,
  // so an empty frame is not worth a second, closer look (plate.h).
  plate_options.second_look_scale = 0;
  if (camera.plate_detector_max_side > 0) {
    plate_options.detector_max_side = camera.plate_detector_max_side;
  }
  std::unique_ptr<plate::PlateReader> plates;
  PORTCULLIS_RETURN_IF_ERROR(
      plate::PlateReader::Open(plate_options, &plates).WithContext("models"));
  std::unique_ptr<face::FaceEngine> faces;
  if (camera.faces) {
    face::SetBlasThreads(1);  // one analysing thread per camera: see face.h
    face::FaceEngineOptions face_options;
    face_options.model_dir = config.model_dir;
    face_options.min_face_pixels = camera.face_min_pixels;
    PORTCULLIS_RETURN_IF_ERROR(
        face::FaceEngine::Open(face_options, &faces).WithContext("face models"));
  }
  PassDetectorOptions options;
  options.device = config.device;
  options.lane = config.lane;
  options.camera = camera;
  auto owning = std::make_unique<OwningDetector>(std::move(plates), std::move(faces));
  PORTCULLIS_RETURN_IF_ERROR(owning->Init(options));
  *detector = std::move(owning);
  return Status::Ok();
}

}  // namespace

LaneAgentParts DefaultLaneAgentParts() {
  LaneAgentParts parts;
  parts.open_data_dir = [](const std::string& path, std::unique_ptr<DataDir>* dir) {
    return DataDir::Open(path, dir);
  };
  parts.open_queue = [](DataDir* dir, const SealedQueueOptions& options,
                        std::unique_ptr<SealedQueue>* queue) {
    return SealedQueue::Open(dir, options, queue);
  };
  parts.open_camera = [](const CameraConfig& camera, std::unique_ptr<FrameSource>* source) {
    return OpenFrameSource(camera, source);
  };
  parts.make_detector = MakeDetector;
  parts.open_uplink = [](const UplinkConfig& config, std::unique_ptr<Uplink>* uplink) {
    return Uplink::Open(config, uplink);
  };
  parts.run_drainer = [](SealedQueue* queue, Uplink* uplink, const UplinkConfig& config,
                         const std::function<bool()>& stop,
                         const std::function<void(const DrainStats&)>& on_change) {
    QueueDrainer drainer(queue, uplink, config);
    // An empty queue is looked at again every 50 ms: a new pass leaves within that.
    drainer.idle_poll_ms = 50;
    drainer.Run(stop, on_change);
  };
  parts.steady_micros = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  parts.disable_core_dumps = DisableCoreDumps;
  parts.core_dumps_disabled = CoreDumpsDisabled;
  return parts;
}

}  // namespace portcullis::lane
