// The deciding rule for the queue: events whose plaintext holds a JPEG, a PNG and a plate
// string leave no trace of any of them on disk — after appends, a drain, and a crash mid-write.
#include <sodium.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <gtest/gtest.h>

#include "lane/sealed_queue.h"
#include "plaintext_scan_util.h"
#include "portcullis/lane_event.h"
#include "queue_util.h"

namespace portcullis::lane {
namespace {

using testing_util::FaultyDataDir;
using testing_util::FindPlaintext;
using testing_util::ImageSignatures;
using testing_util::TempDir;

constexpr const char* kPlate = "KX52YTR";

std::string Encode(const char* ext) {
  cv::Mat img(24, 32, CV_8UC3, cv::Scalar(40, 120, 200));
  cv::putText(img, "KX", {2, 18}, cv::FONT_HERSHEY_SIMPLEX, 0.5, cv::Scalar(255, 255, 255));
  std::vector<uchar> bytes;
  cv::imencode(ext, img, bytes);
  return {bytes.begin(), bytes.end()};
}

LaneEvent PassWithImages(std::uint64_t sequence) {
  LaneEvent e;
  e.event_id = NewEventId();
  e.sequence = sequence;
  e.device = "lane:7-a";
  e.lane = "7";
  e.camera = "cam0";
  LanePlate plate;
  plate.text = kPlate;
  plate.confidence = 0.9f;
  plate.candidates = {{kPlate, 0.9f}};
  plate.crop = "plate-0";
  e.plates.push_back(plate);
  e.attachments.push_back({"frame", "image/jpeg", Encode(".jpg")});
  e.attachments.push_back({"plate-0", "image/png", Encode(".png")});
  return e;
}

std::vector<std::string> Needles() {
  std::vector<std::string> n = ImageSignatures();
  n.emplace_back(kPlate);
  return n;
}

TEST(SealedQueuePlaintext, NothingReadableOnDiskAfterAppendDrainAndCrash) {
  ASSERT_GE(sodium_init(), 0);
  IngestPublicKey pk;
  std::array<unsigned char, crypto_box_SECRETKEYBYTES> sk{};
  crypto_box_keypair(pk.bytes.data(), sk.data());

  // The control: the plaintext really holds every needle, and the scanner finds them on disk.
  const LaneEvent sample = PassWithImages(1);
  std::string plaintext;
  ASSERT_TRUE(EncodeLaneEvent(sample, &plaintext).ok());
  TempDir control;
  {
    std::unique_ptr<DataDir> dir;
    ASSERT_TRUE(DataDir::Open(control.path() + "/data", &dir).ok());
    ASSERT_TRUE(dir->WriteFileAtomic("leak", plaintext).ok());
  }
  for (const std::string& needle : Needles()) {
    EXPECT_FALSE(FindPlaintext(control.path(), {needle}).empty()) << "control misses a needle";
  }

  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  std::unique_ptr<DataDir> dir;
  ASSERT_TRUE(DataDir::Open(data, &dir).ok());
  std::unique_ptr<SealedQueue> q;
  ASSERT_TRUE(SealedQueue::Open(dir.get(), {}, &q).ok());
  // Few, small events: sealed bytes are random and FF D8 FF turns up by chance once per ~16 MiB
  // (plaintext_scan_util.h), so keep the scanned bytes tiny.
  for (std::uint64_t s = 1; s <= 3; ++s) {
    SealedEvent sealed;
    ASSERT_TRUE(SealLaneEvent(PassWithImages(s), pk, &sealed).ok());
    ASSERT_TRUE(q->Append(sealed).ok());
  }
  EXPECT_EQ(FindPlaintext(tmp.path(), Needles()), std::vector<std::string>{});

  SealedEvent front;
  ASSERT_TRUE(q->Front(&front).ok());
  ASSERT_TRUE(q->PopFront(front.event_id).ok());
  EXPECT_EQ(FindPlaintext(tmp.path(), Needles()), std::vector<std::string>{});

  // A crash half-way through the next record, then recovery.
  {
    FaultyDataDir faulty(dir.get());
    std::unique_ptr<SealedQueue> crashing;
    q.reset();
    ASSERT_TRUE(SealedQueue::Open(&faulty, {}, &crashing).ok());
    SealedEvent sealed;
    ASSERT_TRUE(SealLaneEvent(PassWithImages(4), pk, &sealed).ok());
    faulty.set_crash_after_bytes(sealed.sealed.size() / 2);
    EXPECT_FALSE(crashing->Append(sealed).ok());
  }
  EXPECT_EQ(FindPlaintext(tmp.path(), Needles()), std::vector<std::string>{});
  ASSERT_TRUE(SealedQueue::Open(dir.get(), {}, &q).ok());
  EXPECT_EQ(q->stats().dropped_torn, 1u);
  EXPECT_EQ(q->stats().events, 2u);
  EXPECT_EQ(FindPlaintext(tmp.path(), Needles()), std::vector<std::string>{});
  sodium_memzero(sk.data(), sk.size());
}

}  // namespace
}  // namespace portcullis::lane
