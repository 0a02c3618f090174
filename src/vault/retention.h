// Retention rules: which retention class a record falls in (by record type and subject
// category), how long it is kept, and which time-bucketed KEK seals it. Retention is enforced by
// crypto-shredding: once every record sealed under a bucket's KEK has expired, the KEK is
// destroyed. File format and shipped defaults: docs/vault-keys.md, data/retention.json.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/key_provider.h"
#include "portcullis/status.h"
#include "portcullis/vault_record.h"

namespace portcullis {
class Env;
}  // namespace portcullis

namespace portcullis::vault {

struct RetentionClass {
  std::string name;               // [a-z0-9-]+, part of the KEK id
  std::int64_t retention_micros;  // how long a record is kept after it was created
  std::int64_t bucket_micros;     // width of a KEK's time bucket (<= retention)
};

class RetentionPolicy {
 public:
  // Reads and validates a retention file. InvalidArgument names the file and the JSON path of
  // the first problem ("retention.json: /rules/2/class: unknown class 'x'").
  static Status Load(Env* env, const std::string& path, RetentionPolicy* policy);
  // The same from text; `source` names it in messages.
  static Status Parse(std::string_view json, const std::string& source, RetentionPolicy* policy);

  // The class for a record; NotFound when no rule covers the pair (the vault must refuse to
  // store what it has no retention rule for, rather than keep it forever).
  Status ClassFor(RecordType type, SubjectCategory subject, const RetentionClass** cls) const;
  Status FindClass(std::string_view name, const RetentionClass** cls) const;

  // "kek/<class>/<bucket start, UTC>": YYYYMMDD for whole-day buckets, YYYYMMDDHH for whole
  // hours, YYYYMMDDHHMM for whole minutes, YYYYMMDDHHMMSS otherwise. Buckets are aligned to the
  // Unix epoch (so daily buckets start at 00:00 UTC). created_micros must be >= 0.
  Status KekIdFor(const std::string& class_name, std::int64_t created_micros,
                  std::string* kek_id) const;
  // created + retention.
  Status ExpiryFor(const std::string& class_name, std::int64_t created_micros,
                   std::int64_t* expiry_micros) const;
  // When the KEK of the bucket holding `created_micros` may be destroyed: bucket end + retention
  // (every record in the bucket has expired by then). A record therefore lives between
  // `retention` and `retention + bucket`.
  Status ShredTimeFor(const std::string& class_name, std::int64_t created_micros,
                      std::int64_t* shred_micros) const;
  // The ids among kek_ids whose bucket's shred time is <= now. Ids this policy did not make
  // (other prefixes, unknown classes, malformed or misaligned timestamps) are never returned.
  [[nodiscard]] std::vector<std::string> ExpiredKeks(const std::vector<std::string>& kek_ids,
                                                     std::int64_t now_micros) const;

  [[nodiscard]] const std::vector<RetentionClass>& classes() const { return classes_; }

 private:
  struct Rule {
    RecordType type;
    SubjectCategory subject;
    std::size_t class_index;
  };
  Status BucketStartOf(std::string_view kek_id, const RetentionClass** cls,
                       std::int64_t* start) const;

  std::vector<RetentionClass> classes_;
  std::vector<Rule> rules_;
};

// A rotated KEK keeps its bucket and gains a generation ("kek/plate/20261127/r2"); this returns
// the id without it, i.e. the bucket's original KEK id. Ids without a generation are returned as
// is.
std::string_view WithoutGeneration(std::string_view kek_id);

// Destroys every KEK in `provider` that `policy` says has expired at env->NowMicros(). A KEK
// another process destroyed meanwhile is not an error. `destroyed` lists what this call destroyed.
Status ShredExpiredKeks(KeyProvider& provider, const RetentionPolicy& policy, Env* env,
                        std::vector<std::string>* destroyed);

}  // namespace portcullis::vault
