// PlateTracker on synthetic read sequences: one pass per vehicle, voted text, gaps and strides.

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "portcullis/plate_video.h"

namespace portcullis::plate {
namespace {

PlateRead MakeRead(const std::string& text, float confidence, int x, int y = 100, int width = 80,
                   int height = 20) {
  PlateRead read;
  read.text = text;
  read.confidence = confidence;
  read.region = "us";
  read.format = "LLLDDD";
  read.box = Box{x, y, width, height};
  read.candidates = {Candidate{text, confidence, "LLLDDD"}};
  return read;
}

// Feeds frames and collects everything the tracker emits, remembering at which call each pass
// came out (Observe frame index, or -1 for Flush).
class TrackerHarness {
 public:
  explicit TrackerHarness(TrackerOptions options = {}) : tracker_(options) {}

  void Observe(std::int64_t frame, const std::vector<PlateRead>& reads) {
    std::vector<PlatePass> out;
    tracker_.Observe(frame, static_cast<double>(frame) * 40.0, reads, &out);
    for (const PlatePass& pass : out) {
      passes.push_back(pass);
      emitted_at.push_back(frame);
    }
  }
  void Flush() {
    std::vector<PlatePass> out;
    tracker_.Flush(&out);
    for (const PlatePass& pass : out) {
      passes.push_back(pass);
      emitted_at.push_back(-1);
    }
  }

  std::vector<PlatePass> passes;
  std::vector<std::int64_t> emitted_at;

 private:
  PlateTracker tracker_;
};

TEST(PlateTrackerTest, EmptyReadsEmitNothing) {
  TrackerHarness h;
  for (int f = 0; f < 50; ++f) h.Observe(f, {});
  h.Flush();
  EXPECT_TRUE(h.passes.empty());
}

TEST(PlateTrackerTest, FlushOnFreshTrackerIsEmptyAndNullOutputIsSafe) {
  PlateTracker tracker;
  tracker.Observe(0, 0, {MakeRead("ABC123", 0.9f, 10)}, nullptr);
  tracker.Observe(1, 40, {MakeRead("ABC123", 0.9f, 12)}, nullptr);
  tracker.Flush(nullptr);
  std::vector<PlatePass> out;
  tracker.Flush(&out);
  EXPECT_TRUE(out.empty());
}

TEST(PlateTrackerTest, OnePlateManyFramesIsOnePass) {
  TrackerHarness h;
  const float confidences[] = {0.6f, 0.7f, 0.8f, 0.95f, 0.9f, 0.85f, 0.7f, 0.6f};
  for (int f = 0; f < 8; ++f) h.Observe(f, {MakeRead("ABC123", confidences[f], 10 + 5 * f)});
  h.Flush();
  ASSERT_EQ(h.passes.size(), 1u);
  const PlatePass& pass = h.passes[0];
  EXPECT_EQ(pass.best.text, "ABC123");
  EXPECT_FLOAT_EQ(pass.best.confidence, 0.95f);
  EXPECT_EQ(pass.best_frame, 3);
  EXPECT_DOUBLE_EQ(pass.best_time_ms, 120.0);
  EXPECT_EQ(pass.best.box.x, 25);  // the box of the best frame, not of the last one
  EXPECT_EQ(pass.first_frame, 0);
  EXPECT_EQ(pass.last_frame, 7);
  EXPECT_EQ(pass.frames_seen, 8);
  EXPECT_EQ(h.emitted_at[0], -1);
}

TEST(PlateTrackerTest, VotesFixAOneCharacterMisread) {
  TrackerHarness h;
  // "ABC128" is read three times, once more confidently than any correct read: the per-frame
  // winner would be wrong, the vote (3 x ~0.8 against 5 x 0.8) is right.
  h.Observe(0, {MakeRead("ABC123", 0.80f, 10)});
  h.Observe(1, {MakeRead("ABC128", 0.97f, 14)});
  h.Observe(2, {MakeRead("ABC123", 0.82f, 18)});
  h.Observe(3, {MakeRead("ABC128", 0.70f, 22)});
  h.Observe(4, {MakeRead("ABC123", 0.90f, 26)});
  h.Observe(5, {MakeRead("ABC128", 0.71f, 30)});
  h.Observe(6, {MakeRead("ABC123", 0.85f, 34)});
  h.Observe(7, {MakeRead("ABC123", 0.80f, 38)});
  h.Flush();
  ASSERT_EQ(h.passes.size(), 1u);
  const PlatePass& pass = h.passes[0];
  EXPECT_EQ(pass.best.text, "ABC123");
  EXPECT_EQ(pass.best_frame, 4);
  EXPECT_FLOAT_EQ(pass.best.confidence, 0.90f);
  EXPECT_EQ(pass.best.box.x, 26);
  ASSERT_EQ(pass.best.candidates.size(), 1u);
  EXPECT_EQ(pass.best.candidates[0].text, "ABC123");
  EXPECT_EQ(pass.frames_seen, 8);
}

TEST(PlateTrackerTest, EqualVotesGoToTheMoreConfidentBestRead) {
  TrackerHarness h;
  // Binary fractions, so both sums are exactly 1.25 and the tie is real.
  h.Observe(0, {MakeRead("XYZ789", 0.625f, 10)});
  h.Observe(1, {MakeRead("XYZ780", 0.75f, 12)});
  h.Observe(2, {MakeRead("XYZ789", 0.625f, 14)});
  h.Observe(3, {MakeRead("XYZ780", 0.5f, 16)});
  h.Observe(4, {MakeRead("XYZ789", 0.25f, 18)});  // below min_confidence: no vote, not seen
  h.Flush();
  ASSERT_EQ(h.passes.size(), 1u);
  EXPECT_EQ(h.passes[0].best.text, "XYZ780");
  EXPECT_EQ(h.passes[0].best_frame, 1);
  EXPECT_FLOAT_EQ(h.passes[0].best.confidence, 0.75f);
  EXPECT_EQ(h.passes[0].frames_seen, 4);
  EXPECT_EQ(h.passes[0].last_frame, 3);
}

TEST(PlateTrackerTest, TwoVehiclesAtOnceAreTwoPassesOldestFirst) {
  TrackerHarness h;
  // Truck on the left from frame 0, car on the right from frame 2; both in view until frame 9.
  for (int f = 0; f < 10; ++f) {
    std::vector<PlateRead> reads;
    if (f >= 2) reads.push_back(MakeRead("CAR456", 0.8f + 0.01f * static_cast<float>(f), 400));
    reads.push_back(MakeRead("TRK999", f == 5 ? 0.95f : 0.75f, 20 + f));
    h.Observe(f, reads);
  }
  h.Flush();
  ASSERT_EQ(h.passes.size(), 2u);
  EXPECT_EQ(h.passes[0].best.text, "TRK999");
  EXPECT_EQ(h.passes[0].first_frame, 0);
  EXPECT_EQ(h.passes[0].frames_seen, 10);
  EXPECT_EQ(h.passes[0].best_frame, 5);
  EXPECT_EQ(h.passes[1].best.text, "CAR456");
  EXPECT_EQ(h.passes[1].first_frame, 2);
  EXPECT_EQ(h.passes[1].frames_seen, 8);
  EXPECT_EQ(h.passes[1].best_frame, 9);
}

TEST(PlateTrackerTest, PassesFinishingTogetherComeOutOldestFirst) {
  TrackerOptions options;
  options.max_gap_frames = 2;
  TrackerHarness h(options);
  // NEW111 is listed first in every frame, but OLD222 was seen first.
  h.Observe(0, {MakeRead("OLD222", 0.9f, 10)});
  h.Observe(1, {MakeRead("NEW111", 0.9f, 400), MakeRead("OLD222", 0.9f, 10)});
  h.Observe(2, {MakeRead("NEW111", 0.9f, 400), MakeRead("OLD222", 0.9f, 10)});
  h.Observe(3, {MakeRead("NEW111", 0.9f, 400)});
  h.Observe(4, {});
  EXPECT_TRUE(h.passes.empty());
  // Frame 5 is 3 frames after OLD222's last sighting (2) but only 2 after NEW111's (3).
  h.Observe(5, {});
  ASSERT_EQ(h.passes.size(), 1u);
  EXPECT_EQ(h.passes[0].best.text, "OLD222");
  h.Observe(6, {});
  ASSERT_EQ(h.passes.size(), 2u);
  EXPECT_EQ(h.passes[1].best.text, "NEW111");

  // Two tracks that start in the same frame and end together come out in one call, the first
  // seen (first in the read list) first.
  TrackerHarness g(options);
  g.Observe(0, {MakeRead("NEW111", 0.9f, 400), MakeRead("OLD222", 0.9f, 10)});
  g.Observe(1, {MakeRead("NEW111", 0.9f, 400), MakeRead("OLD222", 0.9f, 10)});
  g.Observe(4, {});
  ASSERT_EQ(g.passes.size(), 2u);
  EXPECT_EQ(g.passes[0].best.text, "NEW111");
  EXPECT_EQ(g.passes[1].best.text, "OLD222");
  EXPECT_EQ(g.emitted_at[0], 4);
  EXPECT_EQ(g.emitted_at[1], 4);

  // Different start frames, same end: one call, ordered by first frame.
  TrackerHarness k(options);
  k.Observe(0, {MakeRead("OLD222", 0.9f, 10)});
  k.Observe(1, {MakeRead("NEW111", 0.9f, 400), MakeRead("OLD222", 0.9f, 10)});
  k.Observe(2, {MakeRead("NEW111", 0.9f, 400), MakeRead("OLD222", 0.9f, 10)});
  k.Flush();
  ASSERT_EQ(k.passes.size(), 2u);
  EXPECT_EQ(k.passes[0].best.text, "OLD222");
  EXPECT_EQ(k.passes[0].first_frame, 0);
  EXPECT_EQ(k.passes[1].best.text, "NEW111");
  EXPECT_EQ(k.passes[1].first_frame, 1);
}

TEST(PlateTrackerTest, ShortGapKeepsTheTrack) {
  TrackerOptions options;
  options.max_gap_frames = 3;
  TrackerHarness h(options);
  for (int f = 0; f <= 4; ++f) h.Observe(f, {MakeRead("GAP001", 0.8f, 10 + 2 * f)});
  h.Observe(5, {});
  h.Observe(6, {});
  h.Observe(7, {MakeRead("GAP001", 0.9f, 30)});  // 7 - 4 = 3 frames: not more than max_gap
  h.Observe(8, {MakeRead("GAP001", 0.8f, 32)});
  h.Flush();
  ASSERT_EQ(h.passes.size(), 1u);
  EXPECT_EQ(h.passes[0].best.text, "GAP001");
  EXPECT_EQ(h.passes[0].first_frame, 0);
  EXPECT_EQ(h.passes[0].last_frame, 8);
  EXPECT_EQ(h.passes[0].frames_seen, 7);
  EXPECT_EQ(h.passes[0].best_frame, 7);
  EXPECT_EQ(h.emitted_at[0], -1);
}

TEST(PlateTrackerTest, LongGapMakesTwoPasses) {
  TrackerOptions options;
  options.max_gap_frames = 3;
  TrackerHarness h(options);
  for (int f = 0; f <= 4; ++f) h.Observe(f, {MakeRead("GAP001", 0.8f, 10)});
  for (int f = 5; f <= 7; ++f) h.Observe(f, {});
  EXPECT_TRUE(h.passes.empty());
  // Frame 8 is 4 frames after the last sighting: the first pass ends here, before the same plate
  // (same place, same text) is linked, so it starts a second pass.
  h.Observe(8, {MakeRead("GAP001", 0.9f, 10)});
  ASSERT_EQ(h.passes.size(), 1u);
  EXPECT_EQ(h.emitted_at[0], 8);
  EXPECT_EQ(h.passes[0].first_frame, 0);
  EXPECT_EQ(h.passes[0].last_frame, 4);
  EXPECT_EQ(h.passes[0].frames_seen, 5);
  EXPECT_EQ(h.passes[0].best_frame, 0);  // equal confidences: the first read stays the best
  h.Observe(9, {MakeRead("GAP001", 0.8f, 10)});
  h.Flush();
  ASSERT_EQ(h.passes.size(), 2u);
  EXPECT_EQ(h.emitted_at[1], -1);
  EXPECT_EQ(h.passes[1].first_frame, 8);
  EXPECT_EQ(h.passes[1].last_frame, 9);
  EXPECT_EQ(h.passes[1].frames_seen, 2);
  EXPECT_EQ(h.passes[1].best_frame, 8);
}

TEST(PlateTrackerTest, GapIsCountedInAnalysedFramesWhenIndicesAreStrided) {
  TrackerOptions options;
  options.max_gap_frames = 3;
  // Every 4th frame analysed. A gap of 12 frame indices is 3 analysed frames: kept.
  TrackerHarness h(options);
  for (int f = 0; f <= 8; f += 4) h.Observe(f, {MakeRead("STR001", 0.8f, 10)});
  for (int f = 12; f <= 16; f += 4) h.Observe(f, {});
  h.Observe(20, {MakeRead("STR001", 0.8f, 10)});  // 20 - 8 = 12 = 3 x 4
  h.Flush();
  ASSERT_EQ(h.passes.size(), 1u);
  EXPECT_EQ(h.passes[0].frames_seen, 4);
  EXPECT_EQ(h.passes[0].last_frame, 20);

  // A gap of 16 indices is 4 analysed frames: two passes.
  TrackerHarness g(options);
  for (int f = 0; f <= 8; f += 4) g.Observe(f, {MakeRead("STR001", 0.8f, 10)});
  for (int f = 12; f <= 20; f += 4) g.Observe(f, {});
  g.Observe(24, {MakeRead("STR001", 0.8f, 10)});
  g.Observe(28, {MakeRead("STR001", 0.8f, 10)});
  g.Flush();
  ASSERT_EQ(g.passes.size(), 2u);
  EXPECT_EQ(g.emitted_at[0], 24);
  EXPECT_EQ(g.passes[0].last_frame, 8);
  EXPECT_EQ(g.passes[1].first_frame, 24);
}

TEST(PlateTrackerTest, LowConfidenceReadsAreIgnored) {
  TrackerHarness h;
  for (int f = 0; f < 10; ++f) h.Observe(f, {MakeRead("GHOST1", 0.3f, 10)});
  h.Observe(10, {MakeRead("GHOST1", std::numeric_limits<float>::quiet_NaN(), 10)});
  h.Observe(11, {MakeRead("", 0.99f, 10)});
  h.Observe(12, {MakeRead("", 0.99f, 10)});
  h.Flush();
  EXPECT_TRUE(h.passes.empty());
}

TEST(PlateTrackerTest, SingleFrameTracksAreDroppedAsNoise) {
  TrackerOptions options;
  options.min_frames = 3;
  TrackerHarness h(options);
  h.Observe(0, {MakeRead("ONCE11", 0.99f, 10)});
  h.Observe(1, {MakeRead("TWICE2", 0.9f, 400)});
  h.Observe(2, {MakeRead("TWICE2", 0.9f, 400)});
  h.Observe(3, {MakeRead("THRICE", 0.9f, 200, 300)});
  h.Observe(4, {MakeRead("THRICE", 0.9f, 200, 300)});
  h.Observe(5, {MakeRead("THRICE", 0.9f, 200, 300)});
  h.Flush();
  ASSERT_EQ(h.passes.size(), 1u);
  EXPECT_EQ(h.passes[0].best.text, "THRICE");
}

TEST(PlateTrackerTest, TextLinksAPlateThatJumpedButNotAStranger) {
  TrackerHarness h;
  // Boxes never overlap between frames (fast vehicle); the text is within two edits.
  h.Observe(0, {MakeRead("FAST12", 0.8f, 0)});
  h.Observe(1, {MakeRead("FAST12", 0.8f, 200)});
  h.Observe(2, {MakeRead("FA5T12", 0.7f, 400)});
  // A different plate far away must not join it.
  h.Observe(3, {MakeRead("QQQ999", 0.9f, 600)});
  h.Observe(4, {MakeRead("QQQ999", 0.9f, 800)});
  h.Flush();
  ASSERT_EQ(h.passes.size(), 2u);
  EXPECT_EQ(h.passes[0].best.text, "FAST12");
  EXPECT_EQ(h.passes[0].frames_seen, 3);
  EXPECT_EQ(h.passes[1].best.text, "QQQ999");
  EXPECT_EQ(h.passes[1].frames_seen, 2);
}

TEST(PlateTrackerTest, EachTrackTakesAtMostOneReadPerFrame) {
  TrackerHarness h;
  h.Observe(0, {MakeRead("ABC123", 0.9f, 100)});
  h.Observe(1, {MakeRead("ABC123", 0.9f, 100)});
  // Two reads overlap the track; the better overlap links, the other starts its own track.
  h.Observe(2, {MakeRead("ZZZ000", 0.9f, 150), MakeRead("ABC123", 0.9f, 102)});
  h.Observe(3, {MakeRead("ZZZ000", 0.9f, 150), MakeRead("ABC123", 0.9f, 104)});
  h.Flush();
  ASSERT_EQ(h.passes.size(), 2u);
  EXPECT_EQ(h.passes[0].best.text, "ABC123");
  EXPECT_EQ(h.passes[0].frames_seen, 4);
  EXPECT_EQ(h.passes[1].best.text, "ZZZ000");
  EXPECT_EQ(h.passes[1].first_frame, 2);
  EXPECT_EQ(h.passes[1].frames_seen, 2);
}

TEST(PlateTrackerTest, OverlapAndMatchingTextBeatsLargerOverlapAlone) {
  TrackerHarness h;
  h.Observe(0, {MakeRead("ABC123", 0.9f, 100), MakeRead("XYZ789", 0.9f, 150)});
  // ABC123 moved right onto where XYZ789 was; XYZ789 left the frame. The read overlaps the
  // XYZ789 track more, but agrees in text with ABC123's.
  h.Observe(1, {MakeRead("ABC123", 0.9f, 140)});
  h.Flush();
  ASSERT_EQ(h.passes.size(), 1u);
  EXPECT_EQ(h.passes[0].best.text, "ABC123");
  EXPECT_EQ(h.passes[0].frames_seen, 2);
}

}  // namespace
}  // namespace portcullis::plate
