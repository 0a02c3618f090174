// PlateTracker: links per-frame plate reads into per-vehicle tracks and votes on their text.
//
// Matching is greedy per frame: every (read, open track) pair that links at all gets a rank, the
// pairs are taken best rank first, and each read and each track is used at most once. A pair
// links when the boxes overlap (IoU >= min_iou) or when the texts are close (Levenshtein distance
// <= max_edit_distance to the track's leading text). Overlap ranks above text because the box is
// what the detector is surest of; text similarity only rescues a plate that moved far between
// analysed frames (fast vehicle, large stride).
//
// Voting: a track keeps, per distinct text, the sum of the confidences of its reads and the single
// most confident read. The winning text is the one with the largest sum, so a character misread
// in a few frames is outvoted by the frames that read it right, and the reported read is a real
// read of that text (its box, polygon and candidates are consistent with each other).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "portcullis/plate_video.h"

namespace portcullis::plate {

namespace {

// One distinct text seen in a track.
struct Vote {
  std::string text;
  double confidence_sum = 0;  // double: hundreds of float confidences add up without drift
  PlateRead best;             // the most confident read of this text
  std::int64_t best_frame = 0;
  double best_time_ms = 0;
};

double BoxIoU(const Box& a, const Box& b) {
  if (a.width <= 0 || a.height <= 0 || b.width <= 0 || b.height <= 0) return 0;
  // 64-bit: a hostile or buggy reader could report boxes whose areas overflow int.
  const std::int64_t ax1 = std::int64_t{a.x} + a.width;
  const std::int64_t ay1 = std::int64_t{a.y} + a.height;
  const std::int64_t bx1 = std::int64_t{b.x} + b.width;
  const std::int64_t by1 = std::int64_t{b.y} + b.height;
  const std::int64_t iw = std::min(ax1, bx1) - std::max<std::int64_t>(a.x, b.x);
  const std::int64_t ih = std::min(ay1, by1) - std::max<std::int64_t>(a.y, b.y);
  if (iw <= 0 || ih <= 0) return 0;
  const std::int64_t inter = iw * ih;
  const std::int64_t area_a = std::int64_t{a.width} * a.height;
  const std::int64_t area_b = std::int64_t{b.width} * b.height;
  return static_cast<double>(inter) / static_cast<double>(area_a + area_b - inter);
}

// Levenshtein distance, or limit + 1 once it is known to exceed limit (plates are short, but a
// reader could hand us long garbage and this runs for every read x track pair).
int EditDistance(const std::string& a, const std::string& b, int limit) {
  const std::ptrdiff_t length_gap =
      std::abs(static_cast<std::ptrdiff_t>(a.size()) - static_cast<std::ptrdiff_t>(b.size()));
  if (length_gap > limit) return limit + 1;
  std::vector<int> previous(b.size() + 1);
  std::vector<int> current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = static_cast<int>(j);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = static_cast<int>(i);
    int row_min = current[0];
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const int substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
      row_min = std::min(row_min, current[j]);
    }
    if (row_min > limit) return limit + 1;
    std::swap(previous, current);
  }
  return std::min(previous[b.size()], limit + 1);
}

// True when vote a beats vote b: more confidence in total, then the more confident best read.
bool Outvotes(const Vote& a, const Vote& b) {
  if (a.confidence_sum != b.confidence_sum) return a.confidence_sum > b.confidence_sum;
  return a.best.confidence > b.best.confidence;
}

}  // namespace

struct PlateTracker::Track {
  std::int64_t id = 0;  // creation order; breaks first_frame ties when passes are emitted
  std::int64_t first_frame = 0;
  std::int64_t last_frame = 0;
  int frames_seen = 0;
  Box last_box;
  std::vector<Vote> votes;  // in order of first appearance, so ties keep the earlier text
  std::size_t leading = 0;  // index into votes of the current winner

  void Add(const PlateRead& read, std::int64_t frame_index, double time_ms) {
    last_frame = frame_index;
    ++frames_seen;
    last_box = read.box;
    auto it = std::find_if(votes.begin(), votes.end(),
                           [&](const Vote& v) { return v.text == read.text; });
    if (it == votes.end()) {
      votes.push_back(Vote{read.text, 0, read, frame_index, time_ms});
      it = votes.end() - 1;
    } else if (read.confidence > it->best.confidence) {
      // Strictly greater: on equal confidence the earlier read stays, so output is stable.
      it->best = read;
      it->best_frame = frame_index;
      it->best_time_ms = time_ms;
    }
    it->confidence_sum += read.confidence;
    for (std::size_t i = 0; i < votes.size(); ++i) {
      if (Outvotes(votes[i], votes[leading])) leading = i;
    }
  }

  [[nodiscard]] const std::string& LeadingText() const { return votes[leading].text; }

  [[nodiscard]] PlatePass ToPass() const {
    const Vote& winner = votes[leading];
    PlatePass pass;
    pass.best = winner.best;
    pass.best_frame = winner.best_frame;
    pass.best_time_ms = winner.best_time_ms;
    pass.first_frame = first_frame;
    pass.last_frame = last_frame;
    pass.frames_seen = frames_seen;
    return pass;
  }
};

PlateTracker::PlateTracker(TrackerOptions options) : options_(options) {}

PlateTracker::~PlateTracker() = default;

namespace {

// A possible link between read r and open track t, ranked for the greedy assignment.
struct Link {
  std::size_t read = 0;
  std::size_t track = 0;
  bool by_box = false;
  bool by_text = false;
  double iou = 0;
  int distance = 0;
};

// Box overlap first; among overlapping pairs one whose text also agrees wins (a plate passing
// close to another still keeps its own track), then larger overlap, then closer text. Index
// order last, so equal pairs resolve the same way on every run.
bool RanksBefore(const Link& a, const Link& b) {
  if (a.by_box != b.by_box) return a.by_box;
  if (a.by_text != b.by_text) return a.by_text;
  if (a.iou != b.iou) return a.iou > b.iou;
  if (a.distance != b.distance) return a.distance < b.distance;
  if (a.read != b.read) return a.read < b.read;
  return a.track < b.track;
}

// Appends the passes of finished tracks, oldest first, dropping those seen in too few frames to be
// more than noise. A template only because PlateTracker::Track is private to the class.
template <typename TrackT>
void EmitOldestFirst(std::vector<TrackT>* tracks, int min_frames,
                     std::vector<PlatePass>* finished) {
  std::sort(tracks->begin(), tracks->end(), [](const TrackT& a, const TrackT& b) {
    return a.first_frame != b.first_frame ? a.first_frame < b.first_frame : a.id < b.id;
  });
  for (const TrackT& track : *tracks) {
    if (track.frames_seen >= min_frames && finished != nullptr) finished->push_back(track.ToPass());
  }
}

}  // namespace

void PlateTracker::Observe(std::int64_t frame_index, double time_ms,
                           const std::vector<PlateRead>& reads, std::vector<PlatePass>* finished) {
  if (observed_any_ && frame_index > last_observed_frame_) {
    const std::int64_t step = frame_index - last_observed_frame_;
    stride_ = stride_ == 0 ? step : std::min(stride_, step);
  }
  observed_any_ = true;
  last_observed_frame_ = frame_index;

  // Expire before linking, so a plate that comes back after a long gap starts a new pass instead
  // of reviving the old one.
  const std::int64_t stride = std::max<std::int64_t>(stride_, 1);
  const std::int64_t max_gap = std::int64_t{std::max(options_.max_gap_frames, 0)} * stride;
  std::vector<Track> expired;
  std::vector<Track> open;
  for (Track& track : tracks_) {
    (frame_index - track.last_frame > max_gap ? expired : open).push_back(std::move(track));
  }
  tracks_ = std::move(open);
  EmitOldestFirst(&expired, options_.min_frames, finished);

  // Reads without text cannot vote, and low-confidence reads are more often noise than plates.
  // Written as >= so that a NaN confidence is dropped too.
  std::vector<std::size_t> usable;
  for (std::size_t r = 0; r < reads.size(); ++r) {
    if (!reads[r].text.empty() && reads[r].confidence >= options_.min_confidence) {
      usable.push_back(r);
    }
  }

  std::vector<Link> links;
  for (const std::size_t r : usable) {
    for (std::size_t t = 0; t < tracks_.size(); ++t) {
      Link link;
      link.read = r;
      link.track = t;
      link.iou = BoxIoU(reads[r].box, tracks_[t].last_box);
      link.distance =
          EditDistance(reads[r].text, tracks_[t].LeadingText(), options_.max_edit_distance);
      // iou > 0 as well: with min_iou = 0, boxes that do not touch must still not link.
      link.by_box = link.iou > 0 && link.iou >= static_cast<double>(options_.min_iou);
      link.by_text = link.distance <= options_.max_edit_distance;
      if (link.by_box || link.by_text) links.push_back(link);
    }
  }
  std::sort(links.begin(), links.end(), RanksBefore);

  std::vector<bool> read_used(reads.size(), false);
  std::vector<bool> track_used(tracks_.size(), false);
  for (const Link& link : links) {
    if (read_used[link.read] || track_used[link.track]) continue;
    read_used[link.read] = true;
    track_used[link.track] = true;
    tracks_[link.track].Add(reads[link.read], frame_index, time_ms);
  }
  for (const std::size_t r : usable) {
    if (read_used[r]) continue;
    Track track;
    track.id = next_id_++;
    track.first_frame = frame_index;
    track.Add(reads[r], frame_index, time_ms);
    tracks_.push_back(std::move(track));
  }
}

void PlateTracker::Flush(std::vector<PlatePass>* finished) {
  std::vector<Track> tracks = std::move(tracks_);
  tracks_.clear();
  EmitOldestFirst(&tracks, options_.min_frames, finished);
  // The next Observe may start another stream, whose stride and frame numbering are its own.
  stride_ = 0;
  observed_any_ = false;
}

}  // namespace portcullis::plate
