// Gallery byte format and files: round trip, and refusal of every kind of bad file.
#include <gtest/gtest.h>

#include <bit>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "face/gallery_format.h"
#include "face/gallery_synth.h"
#include "portcullis/env.h"
#include "portcullis/face_gallery.h"

namespace portcullis::face {
namespace {

using testing::TemplateSynth;

GalleryOptions Float32() {
  GalleryOptions o;
  o.storage = GalleryStorage::kFloat32;
  o.index = GalleryIndex::kExact;
  return o;
}

std::string SampleBytes(std::vector<FaceTemplate>* templates, std::size_t n = 20) {
  TemplateSynth synth(21);
  Gallery gallery(Float32());
  for (std::size_t i = 0; i < n; ++i) {
    templates->push_back(synth.Identity());
    EXPECT_TRUE(gallery.Enrol("T" + std::to_string(i), templates->back()).ok());
  }
  std::string bytes;
  EXPECT_TRUE(gallery.Serialize(&bytes).ok());
  return bytes;
}

void PutU32(std::string* bytes, std::size_t offset, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i)
    (*bytes)[offset + i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
}
// Re-seals a deliberately altered body so that the check under test, not the CRC, refuses it.
void Reseal(std::string* bytes) {
  const std::size_t body = bytes->size() - 4;
  PutU32(bytes, body, internal::Crc32(std::string_view(*bytes).substr(0, body)));
}

Status Parse(std::string_view bytes) {
  std::unique_ptr<Gallery> g;
  return Gallery::Deserialize(bytes, Float32(), &g);
}

TEST(GalleryFormatTest, RoundTripIsExactForFloat32) {
  std::vector<FaceTemplate> templates;
  const std::string bytes = SampleBytes(&templates);
  EXPECT_EQ(bytes.size(), internal::kGalleryHeaderBytes + 20 * (1 + 512) + 10 * 2 + 10 * 3 + 4);
  std::unique_ptr<Gallery> g;
  ASSERT_TRUE(Gallery::Deserialize(bytes, Float32(), &g).ok());
  ASSERT_EQ(g->size(), 20u);
  for (std::size_t i = 0; i < templates.size(); ++i) {
    std::vector<Candidate> got;
    ASSERT_TRUE(g->Identify(templates[i], 1, &got).ok());
    EXPECT_EQ(got[0].id, "T" + std::to_string(i));
    EXPECT_EQ(got[0].distance, 0.0f);
  }
  std::string again;
  ASSERT_TRUE(g->Serialize(&again).ok());
  EXPECT_EQ(again, bytes);
}

TEST(GalleryFormatTest, EmptyGalleryRoundTrips) {
  Gallery empty;
  std::string bytes;
  ASSERT_TRUE(empty.Serialize(&bytes).ok());
  std::unique_ptr<Gallery> g;
  ASSERT_TRUE(Gallery::Deserialize(bytes, {}, &g).ok());
  EXPECT_EQ(g->size(), 0u);
}

TEST(GalleryFormatTest, Int8GalleryReloadsToTheSameRanking) {
  TemplateSynth synth(22);
  GalleryOptions o;
  o.storage = GalleryStorage::kInt8;
  Gallery gallery(o);
  std::vector<FaceTemplate> templates;
  for (std::size_t i = 0; i < 50; ++i) {
    templates.push_back(synth.Identity());
    ASSERT_TRUE(gallery.Enrol("T" + std::to_string(i), templates.back()).ok());
  }
  std::string bytes;
  ASSERT_TRUE(gallery.Serialize(&bytes).ok());
  std::unique_ptr<Gallery> g;
  ASSERT_TRUE(Gallery::Deserialize(bytes, o, &g).ok());
  for (std::size_t i = 0; i < 10; ++i) {
    const FaceTemplate probe = synth.Capture(templates[i]);
    std::vector<Candidate> a, b;
    ASSERT_TRUE(gallery.Identify(probe, 3, &a).ok());
    ASSERT_TRUE(g->Identify(probe, 3, &b).ok());
    for (std::size_t r = 0; r < 3; ++r) {
      EXPECT_EQ(a[r].id, b[r].id);
      EXPECT_NEAR(a[r].distance, b[r].distance, 1e-4f);
    }
  }
}

TEST(GalleryFormatTest, RefusesEveryTruncation) {
  std::vector<FaceTemplate> templates;
  const std::string bytes = SampleBytes(&templates, 3);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const Status s = Parse(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(s.ok()) << n;
    if (n >= 4) {
      EXPECT_EQ(s.code(), Status::Code::kCorruption) << n << " " << s.ToString();
    }
  }
}

TEST(GalleryFormatTest, RefusesEveryFlippedByte) {
  std::vector<FaceTemplate> templates;
  const std::string bytes = SampleBytes(&templates, 2);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    EXPECT_FALSE(Parse(bad).ok()) << "byte " << i;
  }
  std::string extra = bytes + "x";
  EXPECT_EQ(Parse(extra).code(), Status::Code::kCorruption);
}

TEST(GalleryFormatTest, RefusesVersionsAndContentWithClearCodes) {
  std::vector<FaceTemplate> templates;
  const std::string bytes = SampleBytes(&templates, 2);

  std::string magic = bytes;
  magic[0] = 'X';
  EXPECT_EQ(Parse(magic).code(), Status::Code::kInvalidArgument);

  std::string format = bytes;
  PutU32(&format, 4, internal::kGalleryFormatVersion + 1);
  Reseal(&format);
  EXPECT_EQ(Parse(format).code(), Status::Code::kUnsupported);

  std::string tversion = bytes;
  PutU32(&tversion, 8, kTemplateVersion + 1);
  Reseal(&tversion);
  EXPECT_EQ(Parse(tversion).code(), Status::Code::kInvalidArgument);

  std::string dims = bytes;
  PutU32(&dims, 12, 64);
  Reseal(&dims);
  EXPECT_EQ(Parse(dims).code(), Status::Code::kInvalidArgument);

  std::string count = bytes;
  PutU32(&count, 16, 0xFFFFFFFFu);
  Reseal(&count);
  EXPECT_EQ(Parse(count).code(), Status::Code::kCorruption);

  // A well-sealed file with a NaN value or a duplicate id is still refused (not a crash, not a
  // silently dropped entry).
  std::string nan = bytes;
  PutU32(&nan, internal::kGalleryHeaderBytes + 1 + 2 + 4 * 5,
         std::bit_cast<std::uint32_t>(std::numeric_limits<float>::quiet_NaN()));
  Reseal(&nan);
  EXPECT_EQ(Parse(nan).code(), Status::Code::kCorruption);

  std::string dup = bytes;
  dup[internal::kGalleryHeaderBytes + 1 + 2 + 512 + 1 + 1] = '0';  // "T1" -> "T0"
  Reseal(&dup);
  const Status s = Parse(dup);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("T0"), std::string::npos) << s.ToString();
}

// An Env whose writes fail (a full disk) and that remembers what it was asked to read.
class FullDiskEnv : public Env {
 public:
  Status ReadFile(const std::string& path, std::size_t max_bytes, std::string* contents) override {
    return Env::Default()->ReadFile(path, max_bytes, contents);
  }
  Status WriteFileAtomic(const std::string& path, const std::string& /*contents*/) override {
    return Status::IOError(path + ": No space left on device");
  }
  Status ListDirectory(const std::string& path, std::vector<std::string>* names) override {
    return Env::Default()->ListDirectory(path, names);
  }
  FileKind KindOf(const std::string& path) override { return Env::Default()->KindOf(path); }
  std::int64_t NowMicros() override { return 0; }
};

TEST(GalleryFileTest, SaveLoadAndFailures) {
  const std::string path = ::testing::TempDir() + "/gallery_file_test.pcgl";
  std::remove(path.c_str());
  std::unique_ptr<Gallery> loaded;
  EXPECT_EQ(LoadGalleryFile(Env::Default(), path, Float32(), &loaded).code(),
            Status::Code::kNotFound);

  TemplateSynth synth(23);
  Gallery gallery(Float32());
  const FaceTemplate t = synth.Identity();
  ASSERT_TRUE(gallery.Enrol("ALICE", t).ok());
  ASSERT_TRUE(gallery.Enrol("BOB", synth.Identity()).ok());
  ASSERT_TRUE(SaveGalleryFile(Env::Default(), path, gallery).ok());
  ASSERT_TRUE(LoadGalleryFile(Env::Default(), path, Float32(), &loaded).ok());
  EXPECT_EQ(loaded->size(), 2u);
  std::vector<Candidate> got;
  ASSERT_TRUE(loaded->Identify(t, 1, &got).ok());
  EXPECT_EQ(got[0].id, "ALICE");

  // A full disk: the error names the file; the existing file is untouched.
  FullDiskEnv full;
  ASSERT_TRUE(gallery.Enrol("CAROL", synth.Identity()).ok());
  const Status s = SaveGalleryFile(&full, path, gallery);
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_NE(s.message().find(path), std::string::npos);
  ASSERT_TRUE(LoadGalleryFile(Env::Default(), path, Float32(), &loaded).ok());
  EXPECT_EQ(loaded->size(), 2u);

  // Over the size limit: refused before parsing.
  EXPECT_EQ(LoadGalleryFile(Env::Default(), path, Float32(), &loaded, 100).code(),
            Status::Code::kResourceExhausted);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace portcullis::face
