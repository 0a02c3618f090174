// Deterministic test records, shared by the store tests and the crash-test writer: the parent
// regenerates from (batch, index) exactly the bytes the child wrote and compares them.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "portcullis/vault_record.h"

namespace portcullis::vault::testing {

inline std::uint64_t SplitMix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline std::string RandomBytes(std::uint64_t seed, std::size_t size) {
  std::mt19937_64 rng(seed);
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; i += 8) {
    std::uint64_t word = rng();
    for (std::size_t j = 0; j < 8 && i + j < size; ++j) {
      bytes[i + j] = static_cast<char>(static_cast<unsigned char>(word >> (8 * j)));
    }
  }
  return bytes;
}

inline std::string HexId(std::uint64_t hi, std::uint64_t lo) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (std::uint64_t word : {hi, lo}) {
    for (int shift = 60; shift >= 0; shift -= 4) id.push_back(kHex[(word >> shift) & 0xf]);
  }
  return id;
}

// Record `index` of batch `batch`: a body of 1..max_body bytes (never empty, includes NULs).
inline StoredRecord BatchRecord(std::uint64_t batch, std::uint32_t index, std::size_t max_body) {
  std::uint64_t seed = SplitMix64(batch * 1000003ULL + index);
  StoredRecord r;
  r.meta.id = HexId(SplitMix64(seed), SplitMix64(seed ^ 0x5555));
  r.meta.type = RecordType::kPlateRead;
  r.meta.subject = SubjectCategory::kVehicle;
  r.meta.retention_class = "plate";
  r.meta.content_type = "image/jpeg";
  r.meta.created_micros = static_cast<std::int64_t>(batch * 1000 + index);
  r.meta.expires_micros = r.meta.created_micros + 1000000;
  r.meta.labels = {{"batch", std::to_string(batch)}, {"lane", std::to_string(index % 4)}};
  std::size_t body = 1 + static_cast<std::size_t>(SplitMix64(seed + 1) % max_body);
  r.meta.size = body;
  r.kek_id = "kek/plate/" + std::to_string(batch % 3);
  r.wrapped_key = RandomBytes(seed + 2, 72);
  r.sealed = RandomBytes(seed + 3, body);
  return r;
}

inline std::vector<StoredRecord> Batch(std::uint64_t batch, std::uint32_t size,
                                       std::size_t max_body) {
  std::vector<StoredRecord> records;
  for (std::uint32_t i = 0; i < size; ++i) records.push_back(BatchRecord(batch, i, max_body));
  return records;
}

}  // namespace portcullis::vault::testing
