// Crashes: a write torn at every byte of the last record, and a real process SIGKILLed while it
// appends. After either, every acknowledged event is there, in order and intact, and nothing
// half-written is ever returned.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "lane/sealed_queue.h"
#include "queue_util.h"

namespace portcullis::lane {
namespace {

using testing_util::CopyTree;
using testing_util::DrainQueue;
using testing_util::FaultyDataDir;
using testing_util::IsIntactQueueEvent;
using testing_util::MakeQueueEvent;
using testing_util::TempDir;

constexpr std::size_t kOverhead = 80;
constexpr std::size_t kPayload = 40;
constexpr std::size_t kRecord = kOverhead + kPayload;

TEST(SealedQueueCrash, TornTailAtEveryByteRecoversTheAcknowledgedPrefix) {
  // Two layouts: the torn record in the same segment as the acknowledged ones, and the torn
  // record the first of a freshly rolled segment.
  for (const std::uint64_t segment_bytes : {std::uint64_t{64} << 20, std::uint64_t{3 * kRecord}}) {
    SealedQueueOptions options;
    options.segment_bytes = segment_bytes;
    TempDir base(testing_util::MemoryTempBase());
    {
      std::unique_ptr<DataDir> dir;
      ASSERT_TRUE(DataDir::Open(base.path() + "/data", &dir).ok());
      std::unique_ptr<SealedQueue> q;
      ASSERT_TRUE(SealedQueue::Open(dir.get(), options, &q).ok());
      for (std::uint64_t s = 1; s <= 3; ++s) {
        ASSERT_TRUE(q->Append(MakeQueueEvent(s, kPayload)).ok());
      }
    }
    for (std::uint64_t k = 0; k <= kRecord; ++k) {
      SCOPED_TRACE("segment_bytes " + std::to_string(segment_bytes) + ", crash after byte " +
                   std::to_string(k));
      TempDir run(testing_util::MemoryTempBase());
      const std::string data = run.path() + "/data";
      CopyTree(base.path() + "/data", data);
      std::unique_ptr<DataDir> dir;
      ASSERT_TRUE(DataDir::Open(data, &dir).ok());
      {
        FaultyDataDir faulty(dir.get());
        std::unique_ptr<SealedQueue> q;
        ASSERT_TRUE(SealedQueue::Open(&faulty, options, &q).ok());
        faulty.set_crash_after_bytes(k);
        const Status s = q->Append(MakeQueueEvent(4, kPayload));
        EXPECT_EQ(s.ok(), k == kRecord) << s.ToString();
      }
      std::unique_ptr<SealedQueue> q;
      ASSERT_TRUE(SealedQueue::Open(dir.get(), options, &q).ok());
      EXPECT_EQ(q->stats().dropped_torn, (k > 0 && k < kRecord) ? 1u : 0u);
      // The torn event was never acknowledged, so the agent may append it again.
      if (k < kRecord) {
        ASSERT_TRUE(q->Append(MakeQueueEvent(4, kPayload)).ok());
      }
      std::vector<SealedEvent> events;
      ASSERT_TRUE(DrainQueue(q.get(), &events).ok());
      ASSERT_EQ(events.size(), 4u);
      for (std::size_t i = 0; i < events.size(); ++i) {
        EXPECT_EQ(events[i].sequence, i + 1);
        EXPECT_TRUE(IsIntactQueueEvent(events[i]));
      }
    }
  }
}

// What the child reports through the pipe, each only after the call returned OK.
enum class Report : char { kAppended = 'A', kPopped = 'P' };

std::size_t PayloadFor(std::uint64_t sequence) { return 16384 + (sequence * 7919) % 49152; }

// The child: appends from `first` on, acknowledging every third event, reporting each success.
[[noreturn]] void AppendForever(const std::string& data, std::uint64_t first, int out) {
  std::unique_ptr<DataDir> dir;
  std::unique_ptr<SealedQueue> q;
  if (!DataDir::Open(data, &dir).ok() || !SealedQueue::Open(dir.get(), {}, &q).ok()) ::_exit(3);
  for (std::uint64_t s = first;; ++s) {
    if (!q->Append(MakeQueueEvent(s, PayloadFor(s))).ok()) ::_exit(4);
    char msg[9];
    msg[0] = static_cast<char>(Report::kAppended);
    std::memcpy(msg + 1, &s, 8);
    if (::write(out, msg, sizeof msg) != static_cast<ssize_t>(sizeof msg)) ::_exit(5);
    if (s % 3 == 0) {
      SealedEvent front;
      if (!q->Front(&front).ok() || !q->PopFront(front.event_id).ok()) ::_exit(6);
      msg[0] = static_cast<char>(Report::kPopped);
      std::memcpy(msg + 1, &front.sequence, 8);
      if (::write(out, msg, sizeof msg) != static_cast<ssize_t>(sizeof msg)) ::_exit(5);
    }
  }
}

TEST(SealedQueueCrash, SigkillMidStreamLosesNoAcknowledgedEvent) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  std::uint64_t next = 1;
  std::uint64_t total_seen = 0;
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      AppendForever(data, next, fds[1]);
    }
    ::close(fds[1]);
    // Let it run for a varying number of acknowledged appends, then kill it wherever it is.
    const std::size_t kill_after = 20 + static_cast<std::size_t>(round) * 13;
    std::vector<std::uint64_t> appended;
    std::uint64_t popped = 0;
    char msg[9];
    std::size_t have = 0;
    bool killed = false;
    while (true) {
      const ssize_t n = ::read(fds[0], msg + have, sizeof msg - have);
      if (n <= 0) break;  // EOF: the child is dead and everything it reported has been read
      have += static_cast<std::size_t>(n);
      if (have < sizeof msg) continue;
      have = 0;
      std::uint64_t s = 0;
      std::memcpy(&s, msg + 1, 8);
      if (msg[0] == static_cast<char>(Report::kAppended)) {
        appended.push_back(s);
      } else {
        popped = s;
      }
      if (!killed && appended.size() >= kill_after) {
        ::kill(pid, SIGKILL);
        killed = true;
      }
    }
    ::close(fds[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child exited " << status;
    ASSERT_GE(appended.size(), kill_after);

    std::unique_ptr<DataDir> dir;
    ASSERT_TRUE(DataDir::Open(data, &dir).ok());
    std::unique_ptr<SealedQueue> q;
    const Status opened = SealedQueue::Open(dir.get(), {}, &q);
    ASSERT_TRUE(opened.ok()) << opened.ToString();
    EXPECT_LE(q->stats().dropped_torn, 1u);
    std::vector<SealedEvent> events;
    ASSERT_TRUE(DrainQueue(q.get(), &events).ok());
    ASSERT_FALSE(events.empty());
    for (std::size_t i = 0; i < events.size(); ++i) {
      EXPECT_TRUE(IsIntactQueueEvent(events[i])) << events[i].sequence;
      EXPECT_EQ(events[i].sealed.size(), PayloadFor(events[i].sequence));
      if (i > 0) {
        EXPECT_EQ(events[i].sequence, events[i - 1].sequence + 1);
      }
    }
    // Acknowledged pops never come back; at most one pop finished unreported.
    EXPECT_GT(events.front().sequence, popped);
    EXPECT_LE(events.front().sequence, popped + 2);
    // Every reported append not popped is there; at most one finished unreported.
    std::set<std::uint64_t> present;
    for (const SealedEvent& e : events) present.insert(e.sequence);
    for (std::uint64_t s : appended) {
      if (s >= events.front().sequence) {
        EXPECT_TRUE(present.count(s)) << "lost " << s;
      }
    }
    EXPECT_GE(events.back().sequence, appended.back());
    EXPECT_LE(events.back().sequence, appended.back() + 1);
    total_seen += events.size();
    next = events.back().sequence + 1;
  }
  EXPECT_GT(total_seen, 0u);
}

}  // namespace
}  // namespace portcullis::lane
