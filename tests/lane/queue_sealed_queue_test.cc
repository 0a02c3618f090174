// The sealed offline queue: order, durability, bounds, disk full and corruption.
#include "lane/sealed_queue.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "queue_util.h"

namespace portcullis::lane {
namespace {

namespace fs = std::filesystem;
using testing_util::DrainQueue;
using testing_util::FaultyDataDir;
using testing_util::IsIntactQueueEvent;
using testing_util::MakeQueueEvent;
using testing_util::TempDir;

constexpr std::size_t kOverhead = 80;  // record framing bytes (docs/lane-queue.md)

struct Fixture {
  TempDir tmp;
  std::string data = tmp.path() + "/data";
  std::unique_ptr<DataDir> dir;
  std::unique_ptr<SealedQueue> queue;

  Status Open(const SealedQueueOptions& options = {}, DataDir* through = nullptr) {
    queue.reset();
    if (dir == nullptr) PORTCULLIS_RETURN_IF_ERROR(DataDir::Open(data, &dir));
    return SealedQueue::Open(through != nullptr ? through : dir.get(), options, &queue);
  }
  [[nodiscard]] std::vector<std::string> Files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(data + "/queue")) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  [[nodiscard]] std::string Segment(std::size_t i) const {
    std::vector<std::string> segs;
    for (const std::string& f : Files()) {
      if (f.size() > 4 && f.substr(f.size() - 4) == ".pcq") segs.push_back(f);
    }
    return data + "/queue/" + segs.at(i);
  }
};

std::vector<std::uint64_t> Sequences(const std::vector<SealedEvent>& events) {
  std::vector<std::uint64_t> out;
  out.reserve(events.size());
  for (const SealedEvent& e : events) out.push_back(e.sequence);
  return out;
}

std::vector<std::uint64_t> Range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t s = first; s <= last; ++s) out.push_back(s);
  return out;
}

void FlipByte(const std::string& path, std::uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x5a));
}

TEST(SealedQueue, KeepsOrderAcrossSegmentRollsAndReopen) {
  Fixture fx;
  SealedQueueOptions options;
  options.segment_bytes = 1000;
  ASSERT_TRUE(fx.Open(options).ok());
  for (std::uint64_t s = 1; s <= 50; ++s) {
    ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(s * 3, 200 + (s * 37) % 300)).ok()) << s;
  }
  SealedQueueStats st = fx.queue->stats();
  EXPECT_EQ(st.events, 50u);
  EXPECT_EQ(st.oldest_sequence, 3u);
  EXPECT_GT(fx.Files().size(), 10u);  // rolled many times
  std::uint64_t on_disk = 0;
  for (const std::string& f : fx.Files()) on_disk += fs::file_size(fx.data + "/queue/" + f);
  EXPECT_EQ(st.bytes, on_disk);

  // Half now, the rest after a reopen.
  for (std::uint64_t s = 1; s <= 25; ++s) {
    SealedEvent e;
    ASSERT_TRUE(fx.queue->Front(&e).ok());
    EXPECT_EQ(e.sequence, s * 3);
    EXPECT_TRUE(IsIntactQueueEvent(e));
    ASSERT_TRUE(fx.queue->PopFront(e.event_id).ok());
  }
  ASSERT_TRUE(fx.Open(options).ok());
  EXPECT_EQ(fx.queue->stats().events, 25u);
  EXPECT_EQ(fx.queue->stats().oldest_sequence, 78u);
  std::vector<SealedEvent> rest;
  ASSERT_TRUE(DrainQueue(fx.queue.get(), &rest).ok());
  ASSERT_EQ(rest.size(), 25u);
  for (std::size_t i = 0; i < rest.size(); ++i) {
    EXPECT_EQ(rest[i].sequence, (i + 26) * 3);
    EXPECT_TRUE(IsIntactQueueEvent(rest[i]));
  }
  // Drained: every segment is gone, only the acknowledgement files remain.
  for (const std::string& f : fx.Files()) EXPECT_TRUE(f == "acks" || f == "state") << f;
  st = fx.queue->stats();
  EXPECT_EQ(st.events, 0u);
  EXPECT_EQ(st.bytes, 0u);
  EXPECT_EQ(st.oldest_sequence, 0u);
  SealedEvent e;
  EXPECT_EQ(fx.queue->Front(&e).code(), Status::Code::kNotFound);
}

TEST(SealedQueue, PopFrontRefusesAnyIdButTheFront) {
  Fixture fx;
  ASSERT_TRUE(fx.Open().ok());
  EXPECT_EQ(fx.queue->PopFront(MakeQueueEvent(1, 1).event_id).code(), Status::Code::kNotFound);
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(1, 10)).ok());
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(2, 10)).ok());
  EXPECT_EQ(fx.queue->PopFront(MakeQueueEvent(2, 10).event_id).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(fx.queue->PopFront("").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(fx.queue->stats().events, 2u);
  ASSERT_TRUE(fx.queue->PopFront(MakeQueueEvent(1, 10).event_id).ok());
  EXPECT_EQ(fx.queue->PopFront(MakeQueueEvent(1, 10).event_id).code(),
            Status::Code::kInvalidArgument);  // already acknowledged
  EXPECT_EQ(fx.queue->stats().oldest_sequence, 2u);
}

TEST(SealedQueue, AppendValidatesIdAndSequence) {
  Fixture fx;
  ASSERT_TRUE(fx.Open().ok());
  SealedEvent bad = MakeQueueEvent(1, 10);
  bad.event_id = "not-an-id";
  EXPECT_EQ(fx.queue->Append(bad).code(), Status::Code::kInvalidArgument);
  bad.event_id = std::string(32, 'A');  // upper case is not the id format
  EXPECT_EQ(fx.queue->Append(bad).code(), Status::Code::kInvalidArgument);
  SealedEvent zero = MakeQueueEvent(0, 10);
  EXPECT_EQ(fx.queue->Append(zero).code(), Status::Code::kInvalidArgument);  // sequences start at 1
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(5, 10)).ok());
  EXPECT_EQ(fx.queue->Append(MakeQueueEvent(5, 10)).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(fx.queue->Append(MakeQueueEvent(4, 10)).code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(6, 0)).ok());  // an empty payload is framed too
  EXPECT_EQ(fx.queue->stats().events, 2u);
}

TEST(SealedQueue, AcknowledgementsAndTheSequenceFloorSurviveReopen) {
  Fixture fx;
  ASSERT_TRUE(fx.Open().ok());
  for (std::uint64_t s = 1; s <= 10; ++s) ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(s, 64)).ok());
  for (std::uint64_t s = 1; s <= 4; ++s) {
    ASSERT_TRUE(fx.queue->PopFront(MakeQueueEvent(s, 64).event_id).ok());
  }
  ASSERT_TRUE(fx.Open().ok());
  EXPECT_EQ(fx.queue->stats().events, 6u);
  EXPECT_EQ(fx.queue->Append(MakeQueueEvent(10, 64)).code(), Status::Code::kInvalidArgument);
  std::vector<SealedEvent> events;
  ASSERT_TRUE(DrainQueue(fx.queue.get(), &events).ok());
  EXPECT_EQ(Sequences(events), Range(5, 10));
  // Empty, segments deleted: the last acknowledged sequence still bounds what may come next, so a
  // restarted agent cannot reuse a sequence the service has seen.
  ASSERT_TRUE(fx.Open().ok());
  EXPECT_EQ(fx.queue->stats().events, 0u);
  EXPECT_EQ(fx.queue->Append(MakeQueueEvent(10, 64)).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(fx.queue->Append(MakeQueueEvent(11, 64)).ok());
}

TEST(SealedQueue, BoundsRefuseAndCount) {
  Fixture fx;
  SealedQueueOptions options;
  options.max_events = 5;
  ASSERT_TRUE(fx.Open(options).ok());
  for (std::uint64_t s = 1; s <= 5; ++s) ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(s, 32)).ok());
  EXPECT_EQ(fx.queue->Append(MakeQueueEvent(6, 32)).code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(fx.queue->stats().refused_full, 1u);
  EXPECT_EQ(fx.queue->stats().events, 5u);
  ASSERT_TRUE(fx.queue->PopFront(MakeQueueEvent(1, 32).event_id).ok());
  EXPECT_TRUE(fx.queue->Append(MakeQueueEvent(6, 32)).ok());  // room again; 6 was never queued

  Fixture fb;
  SealedQueueOptions by_bytes;
  by_bytes.max_bytes = 3 * (kOverhead + 100);
  ASSERT_TRUE(fb.Open(by_bytes).ok());
  for (std::uint64_t s = 1; s <= 3; ++s) {
    ASSERT_TRUE(fb.queue->Append(MakeQueueEvent(s, 100)).ok());
  }
  EXPECT_EQ(fb.queue->Append(MakeQueueEvent(4, 1)).code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(fb.queue->Append(MakeQueueEvent(4, 1000)).code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(fb.queue->stats().refused_full, 2u);
  // Once drained, the whole budget is free again (the consumed segment is deleted).
  std::vector<SealedEvent> events;
  ASSERT_TRUE(DrainQueue(fb.queue.get(), &events).ok());
  for (std::uint64_t s = 4; s <= 6; ++s) {
    ASSERT_TRUE(fb.queue->Append(MakeQueueEvent(s, 100)).ok());
  }
  ASSERT_TRUE(fb.Open(by_bytes).ok());
  EXPECT_EQ(fb.queue->stats().events, 3u);
  EXPECT_EQ(fb.queue->stats().refused_full, 0u);  // a counter of this run, not persisted
}

TEST(SealedQueue, DiskFullMidAppendKeepsTheQueueConsistent) {
  Fixture fx;
  ASSERT_TRUE(DataDir::Open(fx.data, &fx.dir).ok());
  FaultyDataDir faulty(fx.dir.get());
  ASSERT_TRUE(fx.Open({}, &faulty).ok());
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(1, 100)).ok());
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(2, 100)).ok());
  const std::uint64_t good = 2 * (kOverhead + 100);
  faulty.set_full_after_bytes(faulty.appended() + 70);  // the third record stops mid-payload
  EXPECT_EQ(fx.queue->Append(MakeQueueEvent(3, 100)).code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(fx.queue->stats().failed_writes, 1u);
  EXPECT_EQ(fx.queue->stats().events, 2u);
  EXPECT_EQ(fs::file_size(fx.Segment(0)), good);  // the partial record was cut off at once
  EXPECT_EQ(fx.queue->Append(MakeQueueEvent(4, 100)).code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(fs::file_size(fx.Segment(0)), good);

  faulty.set_full_after_bytes(FaultyDataDir::kNever);  // space freed
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(5, 100)).ok());
  ASSERT_TRUE(fx.Open().ok());
  EXPECT_EQ(fx.queue->stats().dropped_torn, 0u);
  std::vector<SealedEvent> events;
  ASSERT_TRUE(DrainQueue(fx.queue.get(), &events).ok());
  EXPECT_EQ(Sequences(events), (std::vector<std::uint64_t>{1, 2, 5}));
  for (const SealedEvent& e : events) EXPECT_TRUE(IsIntactQueueEvent(e));
}

TEST(SealedQueue, DiskFullWhenTheTailCannotBeCutIsRepairedLater) {
  Fixture fx;
  ASSERT_TRUE(DataDir::Open(fx.data, &fx.dir).ok());
  FaultyDataDir faulty(fx.dir.get());
  ASSERT_TRUE(fx.Open({}, &faulty).ok());
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(1, 100)).ok());
  faulty.set_full_after_bytes(faulty.appended() + 30);
  faulty.set_fail_truncate(true);
  EXPECT_EQ(fx.queue->Append(MakeQueueEvent(2, 100)).code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(fs::file_size(fx.Segment(0)), kOverhead + 100 + 30);  // garbage left behind
  faulty.set_full_after_bytes(FaultyDataDir::kNever);
  // The tail must go before anything else is written (not even to a new segment).
  EXPECT_EQ(fx.queue->Append(MakeQueueEvent(3, 100)).code(), Status::Code::kIOError);
  faulty.set_fail_truncate(false);
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(4, 100)).ok());
  EXPECT_EQ(fs::file_size(fx.Segment(0)), 2 * (kOverhead + 100));
  ASSERT_TRUE(fx.Open().ok());
  std::vector<SealedEvent> events;
  ASSERT_TRUE(DrainQueue(fx.queue.get(), &events).ok());
  EXPECT_EQ(Sequences(events), (std::vector<std::uint64_t>{1, 4}));
}

TEST(SealedQueue, UncutTailFromAFailedAppendIsDroppedAtOpen) {
  Fixture fx;
  ASSERT_TRUE(DataDir::Open(fx.data, &fx.dir).ok());
  FaultyDataDir faulty(fx.dir.get());
  ASSERT_TRUE(fx.Open({}, &faulty).ok());
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(1, 100)).ok());
  faulty.set_full_after_bytes(faulty.appended() + 130);
  faulty.set_fail_truncate(true);
  EXPECT_FALSE(fx.queue->Append(MakeQueueEvent(2, 100)).ok());
  ASSERT_TRUE(fx.Open().ok());  // the agent restarted without repairing
  EXPECT_EQ(fx.queue->stats().dropped_torn, 1u);
  EXPECT_EQ(fx.queue->stats().events, 1u);
  EXPECT_EQ(fs::file_size(fx.Segment(0)), kOverhead + 100);
}

TEST(SealedQueue, CorruptMiddleRecordIsCorruptionNeverSkipped) {
  const std::uint64_t rec = kOverhead + 100;
  // A flipped payload byte, a flipped length byte (a header that now claims a huge record) and a
  // flipped magic byte in the second of five records: later valid records prove it is not a tail.
  for (const std::uint64_t at : {rec + 64 + 10, rec + 5, rec + 0, rec + 20, rec + 48, rec + 170}) {
    Fixture fx;
    ASSERT_TRUE(fx.Open().ok());
    for (std::uint64_t s = 1; s <= 5; ++s) {
      ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(s, 100)).ok());
    }
    fx.queue.reset();
    FlipByte(fx.Segment(0), at);
    const Status s = fx.Open();
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << "byte " << at << ": " << s.ToString();
    EXPECT_EQ(fs::file_size(fx.Segment(0)), 5 * rec);  // nothing truncated
  }
}

TEST(SealedQueue, BadRecordAtTheEndOfAnEarlierSegmentIsCorruption) {
  Fixture fx;
  SealedQueueOptions options;
  options.segment_bytes = 2 * (kOverhead + 100);
  ASSERT_TRUE(fx.Open(options).ok());
  for (std::uint64_t s = 1; s <= 5; ++s) ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(s, 100)).ok());
  fx.queue.reset();
  fs::resize_file(fx.Segment(0), 2 * (kOverhead + 100) - 1);
  EXPECT_EQ(fx.Open(options).code(), Status::Code::kCorruption);
}

TEST(SealedQueue, BadChecksumOfTheLastRecordIsATornTail) {
  Fixture fx;
  ASSERT_TRUE(fx.Open().ok());
  for (std::uint64_t s = 1; s <= 3; ++s) ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(s, 100)).ok());
  fx.queue.reset();
  FlipByte(fx.Segment(0), 2 * (kOverhead + 100) + 64 + 50);
  ASSERT_TRUE(fx.Open().ok());
  EXPECT_EQ(fx.queue->stats().dropped_torn, 1u);
  std::vector<SealedEvent> events;
  ASSERT_TRUE(DrainQueue(fx.queue.get(), &events).ok());
  EXPECT_EQ(Sequences(events), Range(1, 2));
}

TEST(SealedQueue, DecreasingSequenceOnDiskIsCorruption) {
  // Two well-formed records in the wrong order (spliced from two queues): every checksum holds,
  // so only the sequence rule catches it.
  Fixture a;
  Fixture b;
  ASSERT_TRUE(a.Open().ok());
  ASSERT_TRUE(b.Open().ok());
  ASSERT_TRUE(a.queue->Append(MakeQueueEvent(7, 50)).ok());
  ASSERT_TRUE(b.queue->Append(MakeQueueEvent(3, 50)).ok());
  ASSERT_TRUE(b.queue->Append(MakeQueueEvent(9, 50)).ok());
  a.queue.reset();
  b.queue.reset();
  std::ifstream in(b.Segment(0), std::ios::binary);
  const std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(a.Segment(0), std::ios::binary | std::ios::app) << tail;
  EXPECT_EQ(a.Open().code(), Status::Code::kCorruption);
}

TEST(SealedQueue, DamagedStateFileIsCorruption) {
  Fixture fx;
  SealedQueueOptions options;
  options.acks_compact_bytes = 0;  // every pop folds the ack log into the state file
  ASSERT_TRUE(fx.Open(options).ok());
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(1, 10)).ok());
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(2, 10)).ok());
  ASSERT_TRUE(fx.queue->PopFront(MakeQueueEvent(1, 10).event_id).ok());
  fx.queue.reset();
  EXPECT_EQ(fs::file_size(fx.data + "/queue/acks"), 0u);
  ASSERT_TRUE(fx.Open(options).ok());
  EXPECT_EQ(fx.queue->stats().oldest_sequence, 2u);  // known from the state file alone
  fx.queue.reset();
  FlipByte(fx.data + "/queue/state", 9);
  EXPECT_EQ(fx.Open().code(), Status::Code::kCorruption);
  std::ofstream(fx.data + "/queue/state", std::ios::binary) << "short";
  EXPECT_EQ(fx.Open().code(), Status::Code::kCorruption);
}

TEST(SealedQueue, AckLogCompactsAndSurvivesReopen) {
  Fixture fx;
  SealedQueueOptions options;
  options.acks_compact_bytes = std::uint64_t{3} * 32;
  ASSERT_TRUE(fx.Open(options).ok());
  for (std::uint64_t s = 1; s <= 20; ++s) ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(s, 10)).ok());
  for (std::uint64_t s = 1; s <= 11; ++s) {
    ASSERT_TRUE(fx.queue->PopFront(MakeQueueEvent(s, 10).event_id).ok());
    EXPECT_LT(fs::file_size(fx.data + "/queue/acks"), 3u * 32) << s;
  }
  ASSERT_TRUE(fx.Open(options).ok());
  std::vector<SealedEvent> events;
  ASSERT_TRUE(DrainQueue(fx.queue.get(), &events).ok());
  EXPECT_EQ(Sequences(events), Range(12, 20));
}

TEST(SealedQueue, DamagedAckLogMiddleIsCorruptionTailIsResent) {
  Fixture fx;
  ASSERT_TRUE(fx.Open().ok());
  for (std::uint64_t s = 1; s <= 4; ++s) ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(s, 10)).ok());
  for (std::uint64_t s = 1; s <= 3; ++s) {
    ASSERT_TRUE(fx.queue->PopFront(MakeQueueEvent(s, 10).event_id).ok());
  }
  fx.queue.reset();
  const std::string acks = fx.data + "/queue/acks";
  ASSERT_EQ(fs::file_size(acks), 3u * 32);
  FlipByte(acks, 2 * 32 + 10);  // the last ack: indistinguishable from a torn write
  ASSERT_TRUE(fx.Open().ok());
  EXPECT_EQ(fx.queue->stats().oldest_sequence, 3u);  // sent again; the service dedupes by id
  EXPECT_EQ(fs::file_size(acks), 2u * 32);
  fx.queue.reset();
  FlipByte(acks, 0 * 32 + 10);  // a bad ack before a good one is damage
  EXPECT_EQ(fx.Open().code(), Status::Code::kCorruption);
}

TEST(SealedQueue, PopFrontOnAFullDiskLeavesTheEventQueued) {
  Fixture fx;
  ASSERT_TRUE(DataDir::Open(fx.data, &fx.dir).ok());
  FaultyDataDir faulty(fx.dir.get());
  ASSERT_TRUE(fx.Open({}, &faulty).ok());
  for (std::uint64_t s = 1; s <= 3; ++s) ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(s, 10)).ok());
  ASSERT_TRUE(fx.queue->PopFront(MakeQueueEvent(1, 10).event_id).ok());
  faulty.set_full_after_bytes(faulty.appended() + 5);  // the next ack is torn by ENOSPC
  EXPECT_EQ(fx.queue->PopFront(MakeQueueEvent(2, 10).event_id).code(),
            Status::Code::kResourceExhausted);
  EXPECT_EQ(fx.queue->stats().oldest_sequence, 2u);
  faulty.set_full_after_bytes(FaultyDataDir::kNever);
  ASSERT_TRUE(fx.queue->PopFront(MakeQueueEvent(2, 10).event_id).ok());
  EXPECT_EQ(fs::file_size(fx.data + "/queue/acks"), 2u * 32);  // the torn ack was cut first
  ASSERT_TRUE(fx.Open().ok());
  EXPECT_EQ(fx.queue->stats().oldest_sequence, 3u);
  EXPECT_EQ(fx.queue->stats().events, 1u);
}

TEST(SealedQueue, FrontRechecksTheRecordOnDisk) {
  Fixture fx;
  ASSERT_TRUE(fx.Open().ok());
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(1, 100)).ok());
  FlipByte(fx.Segment(0), 64 + 3);  // damaged after Open checked it
  SealedEvent e;
  EXPECT_EQ(fx.queue->Front(&e).code(), Status::Code::kCorruption);
}

TEST(SealedQueue, LeftoverTemporaryAndForeignFilesAtOpen) {
  Fixture fx;
  ASSERT_TRUE(fx.Open().ok());
  ASSERT_TRUE(fx.queue->Append(MakeQueueEvent(1, 10)).ok());
  fx.queue.reset();
  std::ofstream(fx.data + "/queue/.tmp-0123456789abcdef") << "half a state";
  std::ofstream(fx.data + "/queue/README") << "not a segment";
  ASSERT_TRUE(fx.Open().ok());
  EXPECT_FALSE(fs::exists(fx.data + "/queue/.tmp-0123456789abcdef"));
  EXPECT_TRUE(fs::exists(fx.data + "/queue/README"));  // not ours to delete
  EXPECT_EQ(fx.queue->stats().events, 1u);
  // The queue directory itself must not be a planted symlink.
  fx.queue.reset();
  TempDir other;
  fs::rename(fx.data + "/queue", other.path() + "/q");
  fs::create_directory_symlink(other.path() + "/q", fx.data + "/queue");
  EXPECT_EQ(fx.Open().code(), Status::Code::kInvalidArgument);
}

TEST(SealedQueue, AppendAndDrainFromTwoThreads) {
  // The agent's shape: a camera thread appends while the uplink thread drains.
  TempDir tmp(testing_util::MemoryTempBase());
  std::unique_ptr<DataDir> dir;
  ASSERT_TRUE(DataDir::Open(tmp.path() + "/data", &dir).ok());
  SealedQueueOptions options;
  options.segment_bytes = 4096;  // many rolls and deletions while both run
  std::unique_ptr<SealedQueue> q;
  ASSERT_TRUE(SealedQueue::Open(dir.get(), options, &q).ok());
  constexpr std::uint64_t kEvents = 500;
  std::atomic<bool> append_failed{false};
  std::thread producer([&] {
    for (std::uint64_t s = 1; s <= kEvents; ++s) {
      if (!q->Append(MakeQueueEvent(s, 100 + s % 200)).ok()) append_failed = true;
    }
  });
  std::vector<SealedEvent> got;
  while (got.size() < kEvents && !append_failed) {
    SealedEvent e;
    const Status s = q->Front(&e);
    if (s.code() == Status::Code::kNotFound) {
      std::this_thread::yield();
      continue;
    }
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(q->PopFront(e.event_id).ok());
    got.push_back(std::move(e));
  }
  producer.join();
  EXPECT_FALSE(append_failed);
  EXPECT_EQ(Sequences(got), Range(1, kEvents));
  for (const SealedEvent& e : got) EXPECT_TRUE(IsIntactQueueEvent(e));
  EXPECT_EQ(q->stats().events, 0u);
  EXPECT_EQ(q->stats().bytes, 0u);
}

TEST(SealedQueue, OpenRejectsNonsenseOptions) {
  Fixture fx;
  SealedQueueOptions options;
  options.max_events = 0;
  EXPECT_EQ(fx.Open(options).code(), Status::Code::kInvalidArgument);
  options = {};
  options.subdir = "../escape";
  EXPECT_EQ(fx.Open(options).code(), Status::Code::kInvalidArgument);
  std::unique_ptr<SealedQueue> q;
  EXPECT_EQ(SealedQueue::Open(nullptr, {}, &q).code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace portcullis::lane
