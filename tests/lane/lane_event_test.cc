// The sealed lane-event format: round trip, sealing that only the secret key opens, and decoding
// that refuses every malformed input with Corruption instead of crashing.
#include "portcullis/lane_event.h"

#include <sodium.h>

#include <gtest/gtest.h>

namespace portcullis::lane {
namespace {

LaneEvent SampleEvent() {
  LaneEvent e;
  e.event_id = NewEventId();
  e.sequence = 42;
  e.device = "lane:7-a";
  e.lane = "7";
  e.camera = "cam0";
  e.started_wall_micros = 1'790'000'000'000'000;
  e.ended_wall_micros = 1'790'000'002'000'000;
  e.monotonic_micros = 123'456;
  e.clock_jump = true;
  LanePlate plate;
  plate.text = "ABC1234";
  plate.confidence = 0.93f;
  plate.region = "us";
  plate.format = "LLLDDDD";
  plate.box = {10, 20, 120, 40};
  plate.candidates = {{"ABC1234", 0.93f}, {"A8C1234", 0.04f}};
  plate.frames_seen = 9;
  plate.crop = "plate-0";
  e.plates.push_back(plate);
  e.faces.push_back(LaneFace{{300, 100, 80, 80}, 0.7f, "face-0"});
  e.attachments.push_back({"frame", "image/jpeg", std::string("\xff\xd8\xff\xe0 frame", 10)});
  e.attachments.push_back({"plate-0", "image/jpeg", std::string("\xff\xd8\xff crop\0x", 11)});
  e.attachments.push_back({"face-0", "image/jpeg", ""});
  return e;
}

TEST(LaneEvent, EncodeDecodeRoundTrip) {
  const LaneEvent e = SampleEvent();
  std::string bytes;
  ASSERT_TRUE(EncodeLaneEvent(e, &bytes).ok());
  LaneEvent d;
  ASSERT_TRUE(DecodeLaneEvent(bytes, &d).ok());
  EXPECT_EQ(d.event_id, e.event_id);
  EXPECT_EQ(d.sequence, 42u);
  EXPECT_EQ(d.kind, EventKind::kVehiclePass);
  EXPECT_EQ(d.device, "lane:7-a");
  EXPECT_EQ(d.started_wall_micros, e.started_wall_micros);
  EXPECT_TRUE(d.clock_jump);
  ASSERT_EQ(d.plates.size(), 1u);
  EXPECT_EQ(d.plates[0].text, "ABC1234");
  EXPECT_FLOAT_EQ(d.plates[0].confidence, 0.93f);
  EXPECT_EQ(d.plates[0].box, (std::array<int, 4>{10, 20, 120, 40}));
  ASSERT_EQ(d.plates[0].candidates.size(), 2u);
  EXPECT_EQ(d.plates[0].candidates[1].first, "A8C1234");
  ASSERT_EQ(d.faces.size(), 1u);
  EXPECT_EQ(d.faces[0].capture, "face-0");
  ASSERT_EQ(d.attachments.size(), 3u);
  EXPECT_EQ(d.attachments[1].bytes, e.attachments[1].bytes);
  EXPECT_TRUE(d.attachments[2].bytes.empty());
}

TEST(LaneEvent, EncodeRefusesAMalformedId) {
  LaneEvent e = SampleEvent();
  e.event_id = "../../etc";
  std::string bytes;
  EXPECT_EQ(EncodeLaneEvent(e, &bytes).code(), Status::Code::kInvalidArgument);
}

TEST(LaneEvent, SealedOnlyOpensWithTheSecretKeyAndHidesThePlaintext) {
  ASSERT_EQ(sodium_init() >= 0, true);
  IngestPublicKey pk;
  unsigned char sk[crypto_box_SECRETKEYBYTES];
  crypto_box_keypair(pk.bytes.data(), sk);
  const LaneEvent e = SampleEvent();
  SealedEvent sealed;
  ASSERT_TRUE(SealLaneEvent(e, pk, &sealed).ok());
  EXPECT_EQ(sealed.event_id, e.event_id);
  EXPECT_EQ(sealed.sequence, 42u);
  EXPECT_EQ(sealed.sealed.find("ABC1234"), std::string::npos);
  EXPECT_EQ(sealed.sealed.find("\xff\xd8\xff"), std::string::npos);

  std::string plain(sealed.sealed.size() - crypto_box_SEALBYTES, '\0');
  ASSERT_EQ(crypto_box_seal_open(reinterpret_cast<unsigned char*>(plain.data()),
                                 reinterpret_cast<const unsigned char*>(sealed.sealed.data()),
                                 sealed.sealed.size(), pk.bytes.data(), sk),
            0);
  LaneEvent d;
  ASSERT_TRUE(DecodeLaneEvent(plain, &d).ok());
  EXPECT_EQ(d.plates.at(0).text, "ABC1234");

  // Another key pair cannot open it.
  IngestPublicKey other_pk;
  unsigned char other_sk[crypto_box_SECRETKEYBYTES];
  crypto_box_keypair(other_pk.bytes.data(), other_sk);
  EXPECT_NE(crypto_box_seal_open(reinterpret_cast<unsigned char*>(plain.data()),
                                 reinterpret_cast<const unsigned char*>(sealed.sealed.data()),
                                 sealed.sealed.size(), other_pk.bytes.data(), other_sk),
            0);
}

TEST(LaneEvent, EveryTruncationAndEveryByteFlipOfTheFrameIsRefusedWithoutACrash) {
  std::string bytes;
  ASSERT_TRUE(EncodeLaneEvent(SampleEvent(), &bytes).ok());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    LaneEvent d;
    EXPECT_FALSE(DecodeLaneEvent(std::string_view(bytes).substr(0, n), &d).ok()) << n;
  }
  // Flipping a byte in the framing (magic, version, lengths) must be caught; flips inside the JSON
  // may still parse, but must never crash.
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
    LaneEvent d;
    const Status s = DecodeLaneEvent(flipped, &d);
    if (i < 9) {
      EXPECT_FALSE(s.ok()) << i;
    }
  }
  LaneEvent d;
  EXPECT_EQ(DecodeLaneEvent(bytes + "x", &d).code(), Status::Code::kCorruption);
}

TEST(LaneEvent, WipeClearsImagesAndPlateText) {
  LaneEvent e = SampleEvent();
  e.Wipe();
  EXPECT_TRUE(e.attachments.empty());
  EXPECT_TRUE(e.plates.empty());
}

TEST(IngestPublicKey, FormatParseRoundTripAndRefusals) {
  ASSERT_EQ(sodium_init() >= 0, true);
  IngestPublicKey pk;
  unsigned char sk[crypto_box_SECRETKEYBYTES];
  crypto_box_keypair(pk.bytes.data(), sk);
  const std::string text = FormatIngestPublicKey(pk);
  IngestPublicKey parsed;
  ASSERT_TRUE(ParseIngestPublicKey(text + "\n", &parsed).ok());
  EXPECT_EQ(parsed.bytes, pk.bytes);
  EXPECT_EQ(ParseIngestPublicKey("ssh-ed25519 AAAA", &parsed).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseIngestPublicKey("portcullis-ingest-v1 AAAA", &parsed).code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace portcullis::lane
