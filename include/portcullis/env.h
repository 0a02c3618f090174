// Env: the seam between Portcullis and the outside world (files, directories, clock), in the manner
// of LevelDB's Env. Engines and the CLI reach the file system only through it, so tests can inject
// faults (unreadable directory, full disk, a clock that jumps) without touching the real machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "portcullis/status.h"

namespace portcullis {

enum class FileKind { kMissing, kRegular, kDirectory, kOther };

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX implementation. Never null; never deleted.
  static Env* Default();

  // Reads a whole file. Fails with ResourceExhausted rather than reading past max_bytes, so a
  // hostile multi-gigabyte "image" cannot exhaust memory.
  virtual Status ReadFile(const std::string& path, std::size_t max_bytes,
                          std::string* contents) = 0;
  // Writes a whole file atomically (temporary file + fsync + rename): readers never see half of it.
  virtual Status WriteFileAtomic(const std::string& path, const std::string& contents) = 0;
  // Names (not paths) of the entries of a directory, sorted, without "." and "..".
  virtual Status ListDirectory(const std::string& path, std::vector<std::string>* names) = 0;
  // kMissing when the path does not exist; kOther also when it cannot be examined (EACCES).
  virtual FileKind KindOf(const std::string& path) = 0;
  // Wall-clock microseconds since the Unix epoch (it can jump; time durations elsewhere).
  virtual std::int64_t NowMicros() = 0;
};

}  // namespace portcullis
