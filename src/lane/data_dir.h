// The only place the lane agent writes. A DataDir is opened once on the configured directory and
// every later file operation is relative to its directory descriptor (openat with O_NOFOLLOW,
// names without '/' or ".."), so no path in a config, a log line or an attacker's symlink can make
// the agent write to a USB stick or anywhere else: such a write is refused with InvalidArgument.
//
// It is also the fault-injection seam: tests substitute a DataDir that fails with ENOSPC after N
// bytes or "crashes" (stops writing) at a chosen byte, so disk-full and torn-write cases are
// deterministic.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "portcullis/status.h"

namespace portcullis::lane {

class AppendFile {
 public:
  virtual ~AppendFile() = default;
  // IOError on a short write; ResourceExhausted when the disk is full (ENOSPC/EDQUOT).
  virtual Status Append(std::string_view bytes) = 0;
  virtual Status Sync() = 0;  // fdatasync: what was appended is durable when this returns OK
  [[nodiscard]] virtual std::uint64_t size() const = 0;
};

// Positional reads of a file in the DataDir (the queue reads one record at a time).
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to n bytes at offset into *bytes (fewer only at the end of the file).
  virtual Status Read(std::uint64_t offset, std::size_t n, std::string* bytes) const = 0;
  [[nodiscard]] virtual std::uint64_t size() const = 0;
};

class DataDir {
 public:
  virtual ~DataDir() = default;
  // Opens (creating with mode 0700 when missing) the directory `path`; fails when it is not a
  // directory, is a symlink, is not owned by this user or is writable by group or others
  // (InvalidArgument). Files are created 0600, subdirectories 0700.
  static Status Open(const std::string& path, std::unique_ptr<DataDir>* dir);

  [[nodiscard]] virtual const std::string& path() const = 0;
  // `name` is one file name (no '/', not "." or ".."), optionally under one level of
  // subdirectory given as "sub/name"; anything else is InvalidArgument.
  virtual Status NewAppendFile(const std::string& name, std::unique_ptr<AppendFile>* file) = 0;
  virtual Status ReadFile(const std::string& name, std::size_t max_bytes, std::string* bytes) = 0;
  virtual Status WriteFileAtomic(const std::string& name, std::string_view bytes) = 0;  // 0600
  virtual Status Truncate(const std::string& name, std::uint64_t size) = 0;
  virtual Status Remove(const std::string& name) = 0;        // NotFound when missing
  virtual Status CreateSubdir(const std::string& name) = 0;  // one level, 0700, idempotent
  virtual Status List(const std::string& subdir, std::vector<std::string>* names) = 0;  // sorted
  // Bytes free on the file system (statvfs), for the disk-full health check.
  virtual Status FreeBytes(std::uint64_t* bytes) = 0;
  // Opens an existing file for positional reads (same name rules; NotFound when missing). Not
  // pure: the default reads the whole file through ReadFile, so a test double need not add it.
  virtual Status NewRandomAccessFile(const std::string& name,
                                     std::unique_ptr<RandomAccessFile>* file);
};

}  // namespace portcullis::lane
