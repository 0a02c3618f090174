// Retention rules: parsing and validation of the retention file, KEK bucket and expiry arithmetic.
#include "retention.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <utility>

#include "portcullis/env.h"

namespace portcullis::vault {
namespace {

using json = nlohmann::json;

constexpr std::int64_t kSecond = 1'000'000;
constexpr std::int64_t kMinute = 60 * kSecond;
constexpr std::int64_t kHour = 60 * kMinute;
constexpr std::int64_t kDay = 24 * kHour;
// Far enough for any retention law, small enough that created + retention + bucket never overflows.
constexpr std::int64_t kMaxDuration = 100LL * 366 * kDay;
constexpr std::size_t kMaxRetentionFileBytes = 1 << 20;

std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out += p;
  return out;
}

// "12h", "14d", "30m", "90s": a positive whole number and a unit.
Status ParseDuration(const json& value, const std::string& where, std::int64_t* micros) {
  if (!value.is_string())
    return Status::InvalidArgument(where + ": expected a duration string like \"12h\"");
  const std::string s = value.get<std::string>();
  if (!s.empty() && s[0] == '-')
    return Status::InvalidArgument(where + ": negative duration '" + s + "'");
  if (s.size() < 2 || s.size() > 12)
    return Status::InvalidArgument(where + ": bad duration '" + s + "'");
  std::int64_t unit = 0;
  switch (s.back()) {
    case 's':
      unit = kSecond;
      break;
    case 'm':
      unit = kMinute;
      break;
    case 'h':
      unit = kHour;
      break;
    case 'd':
      unit = kDay;
      break;
    default:
      return Status::InvalidArgument(where + ": bad duration unit in '" + s + "' (s, m, h or d)");
  }
  std::int64_t n = 0;
  for (std::size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9')
      return Status::InvalidArgument(Cat({where, ": bad duration '", s, "'"}));
    n = n * 10 + (s[i] - '0');
    if (n > kMaxDuration / kSecond)
      return Status::InvalidArgument(Cat({where, ": duration '", s, "' too long"}));
  }
  if (n == 0)
    return Status::InvalidArgument(where + ": duration must be positive, got '" + s + "'");
  if (n > kMaxDuration / unit)
    return Status::InvalidArgument(where + ": duration '" + s + "' too long");
  *micros = n * unit;
  return Status::Ok();
}

bool ValidClassName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

Status CheckKeys(const json& obj, const std::string& where,
                 std::initializer_list<std::string_view> allowed) {
  for (const auto& item : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
      return Status::InvalidArgument(where + "/" + item.key() + ": unknown field");
    }
  }
  return Status::Ok();
}

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

// Bucket starts are formatted only as precisely as the bucket width needs.
int TimestampDigits(std::int64_t bucket_micros) {
  if (bucket_micros % kDay == 0) return 8;
  if (bucket_micros % kHour == 0) return 10;
  if (bucket_micros % kMinute == 0) return 12;
  return 14;
}

}  // namespace

Status RetentionPolicy::Load(Env* env, const std::string& path, RetentionPolicy* policy) {
  std::string text;
  Status s = env->ReadFile(path, kMaxRetentionFileBytes, &text);
  if (!s.ok()) return s;
  return Parse(text, path, policy);
}

Status RetentionPolicy::Parse(std::string_view text, const std::string& source,
                              RetentionPolicy* policy) {
  // nlohmann::json keeps the last of duplicate object keys silently; a retention file with two
  // definitions of one class must be refused, so duplicates are caught while parsing.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto on_event = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  json doc;
  try {
    doc = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(source + ": malformed JSON: " + e.what());
  }
  if (!duplicate.empty())
    return Status::InvalidArgument(source + ": duplicate key '" + duplicate + "'");
  if (!doc.is_object()) return Status::InvalidArgument(source + ": /: expected an object");
  PORTCULLIS_RETURN_IF_ERROR(
      CheckKeys(doc, source + ": ", {"version", "classes", "rules", "comment"}));
  if (!doc.contains("version") || doc["version"] != 1) {
    return Status::InvalidArgument(source + ": /version: expected 1");
  }
  if (!doc.contains("classes") || !doc["classes"].is_object() || doc["classes"].empty()) {
    return Status::InvalidArgument(source + ": /classes: expected a non-empty object");
  }
  if (!doc.contains("rules") || !doc["rules"].is_array() || doc["rules"].empty()) {
    return Status::InvalidArgument(source + ": /rules: expected a non-empty array");
  }
  RetentionPolicy out;
  for (const auto& item : doc["classes"].items()) {
    const std::string where = source + ": /classes/" + item.key();
    if (!ValidClassName(item.key())) {
      return Status::InvalidArgument(where + ": class names are 1..64 of [a-z0-9-]");
    }
    const json& c = item.value();
    if (!c.is_object()) return Status::InvalidArgument(where + ": expected an object");
    PORTCULLIS_RETURN_IF_ERROR(CheckKeys(c, where, {"retention", "bucket", "comment"}));
    if (!c.contains("retention")) return Status::InvalidArgument(where + "/retention: missing");
    if (!c.contains("bucket")) return Status::InvalidArgument(where + "/bucket: missing");
    RetentionClass cls{item.key(), 0, 0};
    PORTCULLIS_RETURN_IF_ERROR(
        ParseDuration(c["retention"], where + "/retention", &cls.retention_micros));
    PORTCULLIS_RETURN_IF_ERROR(ParseDuration(c["bucket"], where + "/bucket", &cls.bucket_micros));
    if (cls.bucket_micros > cls.retention_micros) {
      return Status::InvalidArgument(where + "/bucket: bucket is longer than the retention");
    }
    if (cls.bucket_micros % kSecond != 0) {
      return Status::InvalidArgument(where + "/bucket: must be whole seconds");
    }
    out.classes_.push_back(std::move(cls));
  }
  const json& rules = doc["rules"];
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const std::string where = source + ": /rules/" + std::to_string(i);
    const json& r = rules[i];
    if (!r.is_object()) return Status::InvalidArgument(where + ": expected an object");
    PORTCULLIS_RETURN_IF_ERROR(CheckKeys(r, where, {"record_type", "subject", "class", "comment"}));
    for (const char* field : {"record_type", "subject", "class"}) {
      if (!r.contains(field) || !r[field].is_string()) {
        return Status::InvalidArgument(where + "/" + field + ": expected a string");
      }
    }
    Rule rule{};
    Status s = ParseRecordType(r["record_type"].get<std::string>(), &rule.type);
    if (!s.ok()) return s.WithContext(where + "/record_type");
    s = ParseSubjectCategory(r["subject"].get<std::string>(), &rule.subject);
    if (!s.ok()) return s.WithContext(where + "/subject");
    const std::string class_name = r["class"].get<std::string>();
    auto it = std::find_if(out.classes_.begin(), out.classes_.end(),
                           [&](const RetentionClass& c) { return c.name == class_name; });
    if (it == out.classes_.end()) {
      return Status::InvalidArgument(Cat({where, "/class: unknown class '", class_name, "'"}));
    }
    rule.class_index = static_cast<std::size_t>(it - out.classes_.begin());
    for (const Rule& other : out.rules_) {
      if (other.type == rule.type && other.subject == rule.subject) {
        return Status::InvalidArgument(where + ": duplicate rule for " +
                                       std::string(RecordTypeName(rule.type)) + " x " +
                                       std::string(SubjectCategoryName(rule.subject)));
      }
    }
    out.rules_.push_back(rule);
  }
  *policy = std::move(out);
  return Status::Ok();
}

Status RetentionPolicy::ClassFor(RecordType type, SubjectCategory subject,
                                 const RetentionClass** cls) const {
  for (const Rule& r : rules_) {
    if (r.type == type && r.subject == subject) {
      *cls = &classes_[r.class_index];
      return Status::Ok();
    }
  }
  return Status::NotFound("no retention rule for " + std::string(RecordTypeName(type)) + " x " +
                          std::string(SubjectCategoryName(subject)));
}

Status RetentionPolicy::FindClass(std::string_view name, const RetentionClass** cls) const {
  for (const RetentionClass& c : classes_) {
    if (c.name == name) {
      *cls = &c;
      return Status::Ok();
    }
  }
  return Status::NotFound("no retention class '" + std::string(name) + "'");
}

Status RetentionPolicy::KekIdFor(const std::string& class_name, std::int64_t created_micros,
                                 std::string* kek_id) const {
  const RetentionClass* cls = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(FindClass(class_name, &cls));
  if (created_micros < 0) return Status::InvalidArgument("creation time before 1970");
  const std::int64_t start = FloorDiv(created_micros, cls->bucket_micros) * cls->bucket_micros;
  const std::time_t secs = static_cast<std::time_t>(start / kSecond);
  std::tm tm{};
  if (::gmtime_r(&secs, &tm) == nullptr)
    return Status::InvalidArgument("creation time out of range");
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  *kek_id = "kek/" + cls->name + "/" +
            std::string(buf, static_cast<std::size_t>(TimestampDigits(cls->bucket_micros)));
  return Status::Ok();
}

Status RetentionPolicy::ExpiryFor(const std::string& class_name, std::int64_t created_micros,
                                  std::int64_t* expiry_micros) const {
  const RetentionClass* cls = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(FindClass(class_name, &cls));
  if (created_micros < 0 ||
      created_micros > std::numeric_limits<std::int64_t>::max() - 2 * kMaxDuration) {
    return Status::InvalidArgument("creation time out of range");
  }
  *expiry_micros = created_micros + cls->retention_micros;
  return Status::Ok();
}

Status RetentionPolicy::ShredTimeFor(const std::string& class_name, std::int64_t created_micros,
                                     std::int64_t* shred_micros) const {
  const RetentionClass* cls = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(FindClass(class_name, &cls));
  if (created_micros < 0 ||
      created_micros > std::numeric_limits<std::int64_t>::max() - 2 * kMaxDuration) {
    return Status::InvalidArgument("creation time out of range");
  }
  const std::int64_t start = FloorDiv(created_micros, cls->bucket_micros) * cls->bucket_micros;
  *shred_micros = start + cls->bucket_micros + cls->retention_micros;
  return Status::Ok();
}

Status RetentionPolicy::BucketStartOf(std::string_view kek_id, const RetentionClass** cls,
                                      std::int64_t* start) const {
  auto bad = [] { return Status::InvalidArgument("not a retention KEK id"); };
  if (!kek_id.starts_with("kek/")) return bad();
  const std::string_view rest = kek_id.substr(4);
  const std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return bad();
  if (!FindClass(rest.substr(0, slash), cls).ok()) return bad();
  const std::string_view stamp = rest.substr(slash + 1);
  if (stamp.size() != static_cast<std::size_t>(TimestampDigits((*cls)->bucket_micros)))
    return bad();
  int fields[6] = {0, 1, 1, 0, 0, 0};
  const int widths[6] = {4, 2, 2, 2, 2, 2};
  std::size_t pos = 0;
  for (int f = 0; f < 6 && pos < stamp.size(); ++f) {
    int v = 0;
    for (int i = 0; i < widths[f]; ++i, ++pos) {
      const char c = stamp[pos];
      if (c < '0' || c > '9') return bad();
      v = v * 10 + (c - '0');
    }
    fields[f] = v;
  }
  std::tm tm{};
  tm.tm_year = fields[0] - 1900;
  tm.tm_mon = fields[1] - 1;
  tm.tm_mday = fields[2];
  tm.tm_hour = fields[3];
  tm.tm_min = fields[4];
  tm.tm_sec = fields[5];
  const std::time_t secs = ::timegm(&tm);
  if (secs < 0) return bad();
  *start = static_cast<std::int64_t>(secs) * kSecond;
  // Only what KekIdFor would produce: this rejects misaligned starts and dates like 20261131.
  std::string canonical;
  if (!KekIdFor((*cls)->name, *start, &canonical).ok() || canonical != kek_id) return bad();
  return Status::Ok();
}

std::string_view WithoutGeneration(std::string_view kek_id) {
  const std::size_t slash = kek_id.rfind('/');
  if (slash == std::string_view::npos || slash + 2 > kek_id.size() || kek_id[slash + 1] != 'r') {
    return kek_id;
  }
  for (std::size_t i = slash + 2; i < kek_id.size(); ++i) {
    if (kek_id[i] < '0' || kek_id[i] > '9') return kek_id;
  }
  return kek_id.substr(0, slash);
}

std::vector<std::string> RetentionPolicy::ExpiredKeks(const std::vector<std::string>& kek_ids,
                                                      std::int64_t now_micros) const {
  std::vector<std::string> expired;
  for (const std::string& id : kek_ids) {
    const RetentionClass* cls = nullptr;
    std::int64_t start = 0;
    if (!BucketStartOf(std::string(WithoutGeneration(id)), &cls, &start).ok()) continue;
    if (start + cls->bucket_micros + cls->retention_micros <= now_micros) expired.push_back(id);
  }
  return expired;
}

Status ShredExpiredKeks(KeyProvider& provider, const RetentionPolicy& policy, Env* env,
                        std::vector<std::string>* destroyed) {
  destroyed->clear();
  std::vector<std::string> ids;
  PORTCULLIS_RETURN_IF_ERROR(provider.ListKeks(&ids));
  for (const std::string& id : policy.ExpiredKeks(ids, env->NowMicros())) {
    Status s = provider.DestroyKek(id);
    if (s.code() == Status::Code::kNotFound) continue;
    PORTCULLIS_RETURN_IF_ERROR(s);
    destroyed->push_back(id);
  }
  return Status::Ok();
}

}  // namespace portcullis::vault
