// What this node has seen of each lane's device: when it last posted a frame and got a read,
// how many reads in the last hour, and how its frames failed. Kept in memory (a node restart
// starts afresh; each node of a cluster reports what it observed) because it describes the
// devices, not the data: it never holds plate text, only counts and times per lane.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace portcullis::server {

// How one posted frame or clip ended. The names are the `outcome` label of
// portcullis_frames_total and the keys of the health report's "errors": a contract.
enum class FrameOutcome {
  kRead,              // "read": at least one plate read and stored
  kNoPlate,           // "no_plate": decoded fine, nothing readable
  kBadImage,          // "bad_image": empty, corrupt, oversized, undecodable media
  kUnsupportedMedia,  // "unsupported_media": a content type we do not take
  kInvalidArgument,   // "invalid_argument": e.g. an unknown region
  kEngineError,       // "engine_error": the reader failed on a decodable frame
  kStoreError,        // "store_error": the vault refused to keep the reads
};
[[nodiscard]] const char* FrameOutcomeName(FrameOutcome outcome);
[[nodiscard]] bool IsFrameError(FrameOutcome outcome);

struct LaneHealth {
  std::string lane;
  std::int64_t last_frame_micros = 0;  // 0: none seen
  std::int64_t last_read_micros = 0;   // last frame that gave a stored read; 0: none
  std::uint64_t reads_last_hour = 0;   // stored reads in the last 60 minutes (minute steps)
  std::uint64_t frames_total = 0;      // frames and clips posted since started_micros
  std::map<std::string, std::uint64_t> errors;  // FrameOutcomeName -> count, errors only
};

class LaneActivity {
 public:
  explicit LaneActivity(std::int64_t started_micros) : started_micros_(started_micros) {}

  // One frame (or clip) of `lane` ended with `outcome`, giving `reads` stored reads.
  void Record(const std::string& lane, FrameOutcome outcome, std::uint64_t reads,
              std::int64_t now_micros);
  // Every lane seen, sorted by lane name.
  [[nodiscard]] std::vector<LaneHealth> Snapshot(std::int64_t now_micros) const;
  [[nodiscard]] std::int64_t started_micros() const { return started_micros_; }

 private:
  static constexpr std::int64_t kMinute = 60LL * 1000 * 1000;
  static constexpr std::int64_t kHour = 60 * kMinute;
  struct Lane {
    std::int64_t last_frame_micros = 0;
    std::int64_t last_read_micros = 0;
    std::uint64_t frames_total = 0;
    std::map<std::string, std::uint64_t> errors;
    // (minute index, reads in that minute), oldest first; at most 61 entries, so the memory per
    // lane is bounded however busy it is.
    std::deque<std::pair<std::int64_t, std::uint64_t>> minutes;
  };
  static std::uint64_t ReadsInLastHour(const Lane& lane, std::int64_t now_micros);

  const std::int64_t started_micros_;
  mutable std::mutex mutex_;
  std::map<std::string, Lane> lanes_;
};

}  // namespace portcullis::server
