// Retention rules: validation of the file, class lookup, KEK bucket ids and expiry arithmetic
// (on an injected clock), and shredding expired KEKs from a real keyring.
#include "retention.h"

#include <ctime>
#include <string>

#include <gtest/gtest.h>

#include "keys_test_util.h"
#include "portcullis/env.h"

namespace portcullis::vault {
namespace {

using Code = Status::Code;
using testing::CheapKeyring;
using testing::TempDir;
using testing::TestEnv;

constexpr std::int64_t kSec = 1'000'000;
constexpr std::int64_t kHour = 3600 * kSec;
constexpr std::int64_t kDay = 24 * kHour;

std::int64_t Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<std::int64_t>(::timegm(&tm)) * kSec;
}

RetentionPolicy Shipped() {
  RetentionPolicy p;
  const Status s =
      RetentionPolicy::Load(Env::Default(), PORTCULLIS_SOURCE_DIR "/data/retention.json", &p);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return p;
}

std::string Cls(const RetentionPolicy& p, RecordType t, SubjectCategory s) {
  const RetentionClass* c = nullptr;
  const Status st = p.ClassFor(t, s, &c);
  return st.ok() ? c->name : "<" + st.ToString() + ">";
}

TEST(RetentionDefaults, ShippedFileLoadsWithTheDocumentedClasses) {
  const RetentionPolicy p = Shipped();
  using R = RecordType;
  using S = SubjectCategory;
  EXPECT_EQ(Cls(p, R::kKeptCapture, S::kCitizen), "face-citizen");
  EXPECT_EQ(Cls(p, R::kKeptCapture, S::kNonCitizen), "face-non-citizen");
  EXPECT_EQ(Cls(p, R::kPlateRead, S::kVehicle), "plate");
  EXPECT_EQ(Cls(p, R::kGalleryPhoto, S::kNonCitizen), "gallery");
  EXPECT_EQ(Cls(p, R::kTemplate, S::kCitizen), "gallery");
  const RetentionClass* c = nullptr;
  ASSERT_TRUE(p.FindClass("face-citizen", &c).ok());
  EXPECT_EQ(c->retention_micros, 12 * kHour);
  EXPECT_EQ(c->bucket_micros, kHour);
  ASSERT_TRUE(p.FindClass("face-non-citizen", &c).ok());
  EXPECT_EQ(c->retention_micros, 14 * kDay);
  EXPECT_EQ(c->bucket_micros, kDay);
  ASSERT_TRUE(p.FindClass("plate", &c).ok());
  EXPECT_EQ(c->retention_micros, 30 * kDay);
  ASSERT_TRUE(p.FindClass("gallery", &c).ok());
  EXPECT_EQ(c->retention_micros, 48 * kHour);
  // A pair without a rule cannot be stored: NotFound, not "keep forever".
  EXPECT_EQ(p.ClassFor(R::kPlateRead, S::kCitizen, &c).code(), Code::kNotFound);
}

TEST(RetentionNames, RoundTripAndUnknownsAreInvalid) {
  for (auto t : {RecordType::kTraveller, RecordType::kDocument, RecordType::kGalleryPhoto,
                 RecordType::kTemplate, RecordType::kPlateRead, RecordType::kMatchDecision,
                 RecordType::kKeptCapture}) {
    RecordType back{};
    ASSERT_TRUE(ParseRecordType(RecordTypeName(t), &back).ok());
    EXPECT_EQ(back, t);
  }
  for (auto s :
       {SubjectCategory::kCitizen, SubjectCategory::kNonCitizen, SubjectCategory::kVehicle}) {
    SubjectCategory back{};
    ASSERT_TRUE(ParseSubjectCategory(SubjectCategoryName(s), &back).ok());
    EXPECT_EQ(back, s);
  }
  RecordType t{};
  EXPECT_EQ(ParseRecordType("selfie", &t).code(), Code::kInvalidArgument);
  SubjectCategory s{};
  EXPECT_EQ(ParseSubjectCategory("alien", &s).code(), Code::kInvalidArgument);
}

struct BadCase {
  const char* name;
  const char* json;
  const char* expected_in_message;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

std::string Doc(const std::string& classes, const std::string& rules) {
  return R"({"version": 1, "classes": {)" + classes + R"(}, "rules": [)" + rules + "]}";
}
const std::string kOkClass = R"("c": {"retention": "12h", "bucket": "1h"})";
const std::string kOkRule = R"({"record_type": "plate_read", "subject": "vehicle", "class": "c"})";

class RetentionValidation : public ::testing::TestWithParam<BadCase> {};

TEST_P(RetentionValidation, IsInvalidArgumentNamingThePath) {
  RetentionPolicy p;
  const Status s = RetentionPolicy::Parse(GetParam().json, "r.json", &p);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find(GetParam().expected_in_message), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("r.json"), std::string::npos) << s.ToString();
}

const std::string kCases[][3] = {
    {"malformed", R"({"version": 1, "classes": {)", "malformed JSON"},
    {"not_object", "[]", "/: expected an object"},
    {"wrong_version", R"({"version": 2, "classes": {}, "rules": []})", "/version"},
    {"unknown_top_field", R"({"version": 1, "clases": {}, "classes": {}, "rules": []})",
     "/clases: unknown field"},
    {"no_classes", Doc("", kOkRule), "/classes"},
    {"no_rules", Doc(kOkClass, ""), "/rules"},
    {"unknown_class",
     Doc(kOkClass, R"({"record_type": "plate_read", "subject": "vehicle", "class": "nope"})"),
     "/rules/0/class: unknown class 'nope'"},
    {"unknown_type",
     Doc(kOkClass, R"({"record_type": "selfie", "subject": "vehicle", "class": "c"})"),
     "/rules/0/record_type"},
    {"unknown_subject",
     Doc(kOkClass, R"({"record_type": "plate_read", "subject": "alien", "class": "c"})"),
     "/rules/0/subject"},
    {"zero_duration", Doc(R"("c": {"retention": "0h", "bucket": "1h"})", kOkRule),
     "/classes/c/retention: duration must be positive"},
    {"negative_duration", Doc(R"("c": {"retention": "-12h", "bucket": "1h"})", kOkRule),
     "/classes/c/retention: negative"},
    {"negative_bucket", Doc(R"("c": {"retention": "12h", "bucket": "-1h"})", kOkRule),
     "/classes/c/bucket: negative"},
    {"numeric_duration", Doc(R"("c": {"retention": 43200, "bucket": "1h"})", kOkRule),
     "/classes/c/retention"},
    {"bad_unit", Doc(R"("c": {"retention": "12w", "bucket": "1h"})", kOkRule),
     "/classes/c/retention: bad duration unit"},
    {"bucket_over_retention", Doc(R"("c": {"retention": "12h", "bucket": "1d"})", kOkRule),
     "/classes/c/bucket: bucket is longer"},
    {"missing_bucket", Doc(R"("c": {"retention": "12h"})", kOkRule), "/classes/c/bucket: missing"},
    {"bad_class_name", Doc(R"("Face Citizen": {"retention": "12h", "bucket": "1h"})", kOkRule),
     "/classes/Face Citizen"},
    {"unknown_class_field",
     Doc(R"("c": {"retention": "12h", "bucket": "1h", "ttl": "1h"})", kOkRule),
     "/classes/c/ttl: unknown field"},
    {"duplicate_rule", Doc(kOkClass, kOkRule + "," + kOkRule),
     "/rules/1: duplicate rule for plate_read x vehicle"},
    {"duplicate_class", Doc(kOkClass + "," + kOkClass, kOkRule), "duplicate key 'c'"},
    {"rule_not_object", Doc(kOkClass, "\"plate\""), "/rules/0: expected an object"},
    {"rule_missing_class", Doc(kOkClass, R"({"record_type": "plate_read", "subject": "vehicle"})"),
     "/rules/0/class"},
};

std::vector<BadCase> AllCases() {
  std::vector<BadCase> out;
  for (const auto& c : kCases) out.push_back({c[0].c_str(), c[1].c_str(), c[2].c_str()});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Cases, RetentionValidation, ::testing::ValuesIn(AllCases()),
                         [](const auto& test_info) { return std::string(test_info.param.name); });

TEST(RetentionLoad, MissingFileIsNotFound) {
  RetentionPolicy p;
  EXPECT_EQ(RetentionPolicy::Load(Env::Default(), "/nonexistent/retention.json", &p).code(),
            Code::kNotFound);
}

TEST(RetentionBuckets, HourlyIdsFollowTheBucketBoundaries) {
  const RetentionPolicy p = Shipped();
  std::string id;
  ASSERT_TRUE(p.KekIdFor("face-citizen", Utc(2026, 11, 27, 3, 0, 0), &id).ok());
  EXPECT_EQ(id, "kek/face-citizen/2026112703");
  ASSERT_TRUE(p.KekIdFor("face-citizen", Utc(2026, 11, 27, 3, 59, 59) + 999'999, &id).ok());
  EXPECT_EQ(id, "kek/face-citizen/2026112703");
  ASSERT_TRUE(p.KekIdFor("face-citizen", Utc(2026, 11, 27, 4, 0, 0), &id).ok());
  EXPECT_EQ(id, "kek/face-citizen/2026112704");
  ASSERT_TRUE(p.KekIdFor("face-citizen", Utc(2026, 12, 31, 23, 30, 0), &id).ok());
  EXPECT_EQ(id, "kek/face-citizen/2026123123");
  EXPECT_EQ(p.KekIdFor("nope", 0, &id).code(), Code::kNotFound);
  EXPECT_EQ(p.KekIdFor("face-citizen", -1, &id).code(), Code::kInvalidArgument);
}

TEST(RetentionBuckets, DailyIdsStartAtMidnightUtc) {
  const RetentionPolicy p = Shipped();
  std::string id;
  ASSERT_TRUE(p.KekIdFor("plate", Utc(2026, 11, 27, 23, 59, 59), &id).ok());
  EXPECT_EQ(id, "kek/plate/20261127");
  ASSERT_TRUE(p.KekIdFor("plate", Utc(2026, 11, 28), &id).ok());
  EXPECT_EQ(id, "kek/plate/20261128");
  ASSERT_TRUE(p.KekIdFor("face-non-citizen", Utc(2028, 2, 29, 12), &id).ok());
  EXPECT_EQ(id, "kek/face-non-citizen/20280229");
}

TEST(RetentionBuckets, SubHourBucketsUseMinutesAndSeconds) {
  RetentionPolicy p;
  ASSERT_TRUE(
      RetentionPolicy::Parse(
          Doc(R"("q": {"retention": "2h", "bucket": "15m"}, "s": {"retention": "1h", "bucket": "90s"})",
              R"({"record_type": "plate_read", "subject": "vehicle", "class": "q"})"),
          "r.json", &p)
          .ok());
  std::string id;
  ASSERT_TRUE(p.KekIdFor("q", Utc(2026, 11, 27, 3, 44, 59), &id).ok());
  EXPECT_EQ(id, "kek/q/202611270330");
  ASSERT_TRUE(p.KekIdFor("s", Utc(2026, 11, 27, 3, 0, 0) + 91 * kSec, &id).ok());
  EXPECT_EQ(id, "kek/s/20261127030130");
  EXPECT_EQ(p.ExpiredKeks({"kek/q/202611270330"}, Utc(2026, 11, 27, 5, 45)).size(), 1u);
  EXPECT_EQ(p.ExpiredKeks({"kek/q/202611270330"}, Utc(2026, 11, 27, 5, 45) - 1).size(), 0u);
}

TEST(RetentionExpiry, RecordExpiryAndBucketShredTime) {
  const RetentionPolicy p = Shipped();
  const std::int64_t created = Utc(2026, 11, 27, 3, 20);
  std::int64_t t = 0;
  ASSERT_TRUE(p.ExpiryFor("face-citizen", created, &t).ok());
  EXPECT_EQ(t, Utc(2026, 11, 27, 15, 20));
  ASSERT_TRUE(p.ShredTimeFor("face-citizen", created, &t).ok());
  EXPECT_EQ(t, Utc(2026, 11, 27, 16, 0));  // bucket end 04:00 + 12 h
  ASSERT_TRUE(p.ExpiryFor("face-non-citizen", created, &t).ok());
  EXPECT_EQ(t, Utc(2026, 12, 11, 3, 20));
  ASSERT_TRUE(p.ShredTimeFor("face-non-citizen", created, &t).ok());
  EXPECT_EQ(t, Utc(2026, 12, 12));  // bucket end 28 Nov 00:00 + 14 d
  EXPECT_EQ(p.ExpiryFor("nope", created, &t).code(), Code::kNotFound);
}

TEST(RetentionExpiry, ABucketExpiresExactlyAtItsShredTime) {
  const RetentionPolicy p = Shipped();
  const std::vector<std::string> ids = {"kek/face-citizen/2026112703",
                                        "kek/face-citizen/2026112704", "kek/plate/20261027",
                                        "kek/plate/20261028"};
  const std::int64_t shred_03 = Utc(2026, 11, 27, 16);
  EXPECT_TRUE(p.ExpiredKeks({ids[0], ids[1]}, shred_03 - 1).empty());
  EXPECT_EQ(p.ExpiredKeks({ids[0], ids[1]}, shred_03), std::vector<std::string>{ids[0]});
  EXPECT_EQ(p.ExpiredKeks({ids[0], ids[1]}, shred_03 + kHour),
            (std::vector<std::string>{ids[0], ids[1]}));
  // Plate bucket of 27 Oct ends 28 Oct 00:00; + 30 days = 27 Nov 00:00.
  EXPECT_EQ(p.ExpiredKeks({ids[2], ids[3]}, Utc(2026, 11, 27)), std::vector<std::string>{ids[2]});
  EXPECT_EQ(p.ExpiredKeks({ids[2], ids[3]}, Utc(2026, 11, 27) - 1), std::vector<std::string>{});
}

TEST(RetentionExpiry, IdsThisPolicyDidNotMakeAreNeverExpired) {
  const RetentionPolicy p = Shipped();
  const std::int64_t far_future = Utc(2100, 1, 1);
  const std::vector<std::string> foreign = {
      "kek/unknown-class/2026112703",  // no such class
      "kek/face-citizen/20261127",     // daily stamp on an hourly class
      "kek/face-citizen/2026113103",   // 31 November
      "kek/face-citizen/2026112725",   // hour 25
      "kek/plate/2026112703",          // hourly stamp on a daily class
      "kek/plate/2026112x",            // not digits
      "other/plate/20261127",          // not ours
      "kek/plate",                     // no stamp
      "",
  };
  EXPECT_TRUE(p.ExpiredKeks(foreign, far_future).empty());
}

TEST(RetentionShred, DestroysExactlyTheExpiredKeksOnTheInjectedClock) {
  TempDir dir;
  TestEnv env;
  std::unique_ptr<KeyProvider> provider;
  ASSERT_TRUE(OpenKeyProvider("keyring:" + dir.Path("k"), "pw", CheapKeyring(), &provider).ok());
  const RetentionPolicy p = Shipped();
  std::string early;
  std::string late;
  ASSERT_TRUE(p.KekIdFor("face-citizen", Utc(2026, 11, 27, 3, 10), &early).ok());
  ASSERT_TRUE(p.KekIdFor("face-citizen", Utc(2026, 11, 27, 4, 10), &late).ok());
  for (const auto& id : {early, late, std::string("kek/manual-key")})
    ASSERT_TRUE(provider->EnsureKek(id).ok());

  std::vector<std::string> destroyed;
  env.now_micros = Utc(2026, 11, 27, 15, 59, 59);
  ASSERT_TRUE(ShredExpiredKeks(*provider, p, &env, &destroyed).ok());
  EXPECT_TRUE(destroyed.empty());
  env.now_micros = Utc(2026, 11, 27, 16);
  ASSERT_TRUE(ShredExpiredKeks(*provider, p, &env, &destroyed).ok());
  EXPECT_EQ(destroyed, std::vector<std::string>{early});
  std::vector<std::string> left;
  ASSERT_TRUE(provider->ListKeks(&left).ok());
  EXPECT_EQ(left, (std::vector<std::string>{"kek/face-citizen/2026112704", "kek/manual-key"}));
  env.now_micros = Utc(2030, 1, 1);
  ASSERT_TRUE(ShredExpiredKeks(*provider, p, &env, &destroyed).ok());
  EXPECT_EQ(destroyed, std::vector<std::string>{late});
}

}  // namespace
}  // namespace portcullis::vault
