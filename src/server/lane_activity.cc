#include "server/lane_activity.h"

namespace portcullis::server {

const char* FrameOutcomeName(FrameOutcome outcome) {
  switch (outcome) {
    case FrameOutcome::kRead:
      return "read";
    case FrameOutcome::kNoPlate:
      return "no_plate";
    case FrameOutcome::kBadImage:
      return "bad_image";
    case FrameOutcome::kUnsupportedMedia:
      return "unsupported_media";
    case FrameOutcome::kInvalidArgument:
      return "invalid_argument";
    case FrameOutcome::kEngineError:
      return "engine_error";
    case FrameOutcome::kStoreError:
      return "store_error";
  }
  return "engine_error";
}

bool IsFrameError(FrameOutcome outcome) {
  return outcome != FrameOutcome::kRead && outcome != FrameOutcome::kNoPlate;
}

void LaneActivity::Record(const std::string& lane, FrameOutcome outcome, std::uint64_t reads,
                          std::int64_t now_micros) {
  const std::lock_guard<std::mutex> lock(mutex_);
  Lane& l = lanes_[lane];
  l.last_frame_micros = now_micros;
  ++l.frames_total;
  if (IsFrameError(outcome)) ++l.errors[FrameOutcomeName(outcome)];
  const std::int64_t minute = now_micros / kMinute;
  if (reads > 0) {
    l.last_read_micros = now_micros;
    // A wall clock that stepped back is counted in the newest minute rather than reordering.
    if (!l.minutes.empty() && l.minutes.back().first >= minute) {
      l.minutes.back().second += reads;
    } else {
      l.minutes.emplace_back(minute, reads);
    }
  }
  // Forget minutes that can no longer count towards "the last hour".
  while (!l.minutes.empty() && l.minutes.front().first <= minute - 60) l.minutes.pop_front();
}

std::uint64_t LaneActivity::ReadsInLastHour(const Lane& lane, std::int64_t now_micros) {
  const std::int64_t minute = now_micros / kMinute;
  std::uint64_t total = 0;
  for (const auto& [m, reads] : lane.minutes) {
    if (m > minute - 60) total += reads;
  }
  return total;
}

std::vector<LaneHealth> LaneActivity::Snapshot(std::int64_t now_micros) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  std::vector<LaneHealth> out;
  out.reserve(lanes_.size());
  for (const auto& [name, l] : lanes_) {
    LaneHealth h;
    h.lane = name;
    h.last_frame_micros = l.last_frame_micros;
    h.last_read_micros = l.last_read_micros;
    h.reads_last_hour = ReadsInLastHour(l, now_micros);
    h.frames_total = l.frames_total;
    h.errors = l.errors;
    out.push_back(std::move(h));
  }
  return out;
}

}  // namespace portcullis::server
