// Helpers shared by the audit tests: temporary directories, keys, events, raw file surgery.
#pragma once

#include <stdlib.h>  // mkdtemp

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "audit/format.h"
#include "portcullis/audit.h"

namespace portcullis::audit::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "portcullis_audit_XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline AuditEvent MakeEvent(std::uint64_t i) {
  AuditEvent e;
  e.time_micros = 1'700'000'000'000'000 + static_cast<std::int64_t>(i);
  e.principal = "officer:" + std::to_string(i % 7);
  e.role = "officer";
  e.purpose = "secondary inspection, case " + std::to_string(i);
  e.action = i % 3 == 0 ? "vault.get" : "vault.put";
  e.record_id = i % 5 == 4 ? "" : "rec-" + std::to_string(i);
  e.result = "ok";
  return e;
}

inline std::vector<AuditEvent> MakeEvents(std::uint64_t first, std::uint64_t count) {
  std::vector<AuditEvent> out;
  for (std::uint64_t i = 0; i < count; ++i) out.push_back(MakeEvent(first + i));
  return out;
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

// The payloads of a framed file (events.log or sth.log).
inline std::vector<std::string> ReadFrames(const std::string& path, std::string_view magic) {
  const std::string contents = ReadAll(path);
  internal::FrameScan scan;
  EXPECT_TRUE(internal::ScanFrames(contents, magic, internal::kMaxLeafBytes, &scan).ok());
  std::vector<std::string> out;
  for (std::size_t i = 0; i < scan.offsets.size(); ++i) {
    out.push_back(contents.substr(scan.offsets[i] + internal::kFrameHeader, scan.lengths[i]));
  }
  return out;
}

// Rewrites a framed file with valid frames: what an attacker who knows the format would do.
inline void WriteFrames(const std::string& path, std::string_view magic,
                        const std::vector<std::string>& payloads) {
  std::string out(magic);
  for (const auto& p : payloads) internal::AppendFrame(p, &out);
  WriteAll(path, out);
}

}  // namespace portcullis::audit::testing
