// The gallery helpers for the face CLI: open/create semantics and the JSON record contracts.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/face_gallery_json.h"
#include "face/gallery_synth.h"

namespace portcullis::cli {
namespace {

TEST(GalleryCliTest, EnrolThenIdentifyThroughAFile) {
  const std::string path = ::testing::TempDir() + "/gallery_cli_test.pcgl";
  std::remove(path.c_str());
  std::unique_ptr<face::Gallery> gallery;
  // identify before any enrol: an error, not "stranger".
  EXPECT_EQ(OpenGallery(Env::Default(), path, false, &gallery).code(), Status::Code::kNotFound);
  ASSERT_TRUE(OpenGallery(Env::Default(), path, true, &gallery).ok());
  EXPECT_EQ(gallery->size(), 0u);

  face::testing::TemplateSynth synth(31);
  const face::FaceTemplate alice = synth.Identity();
  ASSERT_TRUE(gallery->Enrol("ALICE", alice).ok());
  ASSERT_TRUE(face::SaveGalleryFile(Env::Default(), path, *gallery).ok());

  // A second "enrol" call re-opens the file and adds to it.
  ASSERT_TRUE(OpenGallery(Env::Default(), path, true, &gallery).ok());
  ASSERT_EQ(gallery->size(), 1u);
  const Status dup = gallery->Enrol("ALICE", synth.Identity());
  const nlohmann::json dup_record =
      GalleryEnrolRecord("a2.jpg", "ALICE", path, dup, gallery->size());
  EXPECT_EQ(dup_record["enrolled"], false);
  EXPECT_EQ(dup_record["error_code"], "already_enrolled");
  EXPECT_EQ(dup_record["gallery_size"], 1);

  ASSERT_TRUE(gallery->Enrol("BOB", synth.Identity()).ok());
  const nlohmann::json ok_record =
      GalleryEnrolRecord("b.jpg", "BOB", path, Status::Ok(), gallery->size());
  EXPECT_EQ(ok_record["enrolled"], true);
  EXPECT_TRUE(ok_record["error"].is_null());
  EXPECT_FALSE(ok_record.contains("error_code"));
  EXPECT_EQ(ok_record["gallery_size"], 2);
  ASSERT_TRUE(face::SaveGalleryFile(Env::Default(), path, *gallery).ok());

  ASSERT_TRUE(OpenGallery(Env::Default(), path, false, &gallery).ok());
  std::vector<face::Candidate> candidates;
  ASSERT_TRUE(gallery->Identify(synth.Capture(alice), 2, &candidates).ok());
  const nlohmann::json record =
      GalleryIdentifyRecord("live.jpg", path, candidates, 0.6f, Status::Ok());
  ASSERT_EQ(record["candidates"].size(), 2u);
  EXPECT_EQ(record["candidates"][0]["id"], "ALICE");
  EXPECT_EQ(record["candidates"][0]["match"], true);
  EXPECT_EQ(record["candidates"][1]["match"], false);  // BOB is ~0.9 away
  EXPECT_EQ(record["match"]["id"], "ALICE");
  EXPECT_FLOAT_EQ(record["match"]["distance"].get<float>(), candidates[0].distance);
  EXPECT_TRUE(record["error"].is_null());
  std::remove(path.c_str());
}

TEST(GalleryCliTest, StrangerAndErrorRecords) {
  face::testing::TemplateSynth synth(32);
  face::Gallery gallery(CliGalleryOptions());
  ASSERT_TRUE(gallery.Enrol("ALICE", synth.Identity()).ok());
  std::vector<face::Candidate> candidates;
  ASSERT_TRUE(gallery.Identify(synth.Identity(), 1, &candidates).ok());
  const nlohmann::json stranger =
      GalleryIdentifyRecord("x.jpg", "g", candidates, 0.6f, Status::Ok());
  EXPECT_TRUE(stranger["match"].is_null());
  EXPECT_EQ(stranger["candidates"].size(), 1u);

  const nlohmann::json corrupt = GalleryIdentifyRecord(
      "x.jpg", "g", {}, 0.6f, Status::Corruption("gallery checksum mismatch"));
  EXPECT_EQ(corrupt["error_code"], "corrupt");
  EXPECT_EQ(corrupt["error"], "Corruption: gallery checksum mismatch");
  EXPECT_TRUE(corrupt["match"].is_null());
  EXPECT_EQ(GalleryErrorCodeName(Status::Code::kUnsupported, false), "unsupported");
  EXPECT_EQ(GalleryErrorCodeName(Status::Code::kNotFound, false), "not_found");
}

TEST(GalleryCliTest, CorruptFileIsAnErrorEvenWhenCreating) {
  const std::string path = ::testing::TempDir() + "/gallery_cli_corrupt.pcgl";
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(path, "PCGL garbage").ok());
  std::unique_ptr<face::Gallery> gallery;
  // create_if_missing never papers over a damaged gallery with an empty one.
  EXPECT_EQ(OpenGallery(Env::Default(), path, true, &gallery).code(), Status::Code::kCorruption);
  EXPECT_EQ(gallery, nullptr);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace portcullis::cli
