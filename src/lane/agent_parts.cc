// DefaultLaneAgentParts: the real parts the agent is composed of.
//
// The data dir and queue (lane-queue), the cameras and pass detector (lane-vision) and the
// uplink (lane-link) are built alongside the agent; until each lands on main, its entry here
// fails with Unsupported naming what is missing, so `portcullis lane` refuses to start (exit 3)
// instead of running without it.
#include <chrono>

#include "agent.h"

namespace portcullis::lane {

LaneAgentParts DefaultLaneAgentParts() {
  LaneAgentParts parts;
  const auto missing = [](const char* what) {
    return Status::Unsupported(std::string(what) + " is not part of this build yet");
  };
  parts.open_data_dir = [missing](const std::string&, std::unique_ptr<DataDir>*) {
    return missing("DataDir");
  };
  parts.open_queue = [missing](DataDir*, const SealedQueueOptions&, std::unique_ptr<SealedQueue>*) {
    return missing("SealedQueue");
  };
  parts.open_camera = [missing](const CameraConfig&, std::unique_ptr<FrameSource>*) {
    return missing("FrameSource");
  };
  parts.make_detector = [missing](const LaneAgentConfig&, const CameraConfig&,
                                  std::unique_ptr<PassDetector>*) {
    return missing("PassDetector");
  };
  parts.open_uplink = [missing](const UplinkConfig&, std::unique_ptr<Uplink>*) {
    return missing("Uplink");
  };
  parts.run_drainer = [](SealedQueue*, Uplink*, const UplinkConfig&, const std::function<bool()>&,
                         const std::function<void(const DrainStats&)>&) {};
  parts.steady_micros = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  parts.disable_core_dumps = [missing] { return missing("DisableCoreDumps"); };
  parts.core_dumps_disabled = [] { return false; };
  return parts;
}

}  // namespace portcullis::lane
