// Test doubles and helpers for the data dir and the sealed queue.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "lane/data_dir.h"
#include "lane/sealed_queue.h"

namespace portcullis::lane::testing_util {

// A DataDir that forwards to a real one but injects faults into appended bytes, so disk-full and
// torn-write cases are deterministic:
//  - full_after_bytes: once this many bytes have been appended (over all files), the rest of an
//    Append is refused with ResourceExhausted (the bytes that fit are written, as a real ENOSPC
//    would leave them) until set_full_after_bytes() raises the budget ("space freed").
//  - crash_after_bytes: byte K+1 onwards is never written and the dir "dies": that Append and
//    every later operation fails with IOError, as if the process had been killed at that byte.
//    Reopening the real directory afterwards shows exactly what a crash would have left.
//  - fail_truncate: Truncate fails with IOError (a disk that cannot even shrink a file).
class FaultyDataDir final : public DataDir {
 public:
  static constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();
  explicit FaultyDataDir(DataDir* base) : base_(base) {}

  void set_full_after_bytes(std::uint64_t n) { full_after_ = n; }
  void set_crash_after_bytes(std::uint64_t n) { crash_after_ = n; }
  void set_fail_truncate(bool fail) { fail_truncate_ = fail; }
  [[nodiscard]] std::uint64_t appended() const { return appended_; }
  [[nodiscard]] bool crashed() const { return crashed_; }

  [[nodiscard]] const std::string& path() const override { return base_->path(); }
  Status NewAppendFile(const std::string& name, std::unique_ptr<AppendFile>* file) override;
  Status ReadFile(const std::string& name, std::size_t max_bytes, std::string* bytes) override;
  Status WriteFileAtomic(const std::string& name, std::string_view bytes) override;
  Status Truncate(const std::string& name, std::uint64_t size) override;
  Status Remove(const std::string& name) override;
  Status CreateSubdir(const std::string& name) override;
  Status List(const std::string& subdir, std::vector<std::string>* names) override;
  Status FreeBytes(std::uint64_t* bytes) override;
  Status NewRandomAccessFile(const std::string& name,
                             std::unique_ptr<RandomAccessFile>* file) override;

  // Used by the wrapped append files.
  Status AppendThrough(AppendFile* file, std::string_view bytes);
  [[nodiscard]] Status Alive() const;

 private:
  DataDir* base_;
  std::uint64_t full_after_ = kNever;
  std::uint64_t crash_after_ = kNever;
  std::uint64_t appended_ = 0;
  bool fail_truncate_ = false;
  bool crashed_ = false;
};

// A fresh, empty directory under $TEST_TMPDIR or /tmp (removed by the destructor).
class TempDir {
 public:
  TempDir();
  // Under `base` instead (e.g. MemoryTempBase()).
  explicit TempDir(const std::string& base);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A sealed-looking event whose id and payload are a pure function of (sequence, bytes), so a
// reader can check that what came back is exactly what was appended.
SealedEvent MakeQueueEvent(std::uint64_t sequence, std::size_t bytes);
// True when event is MakeQueueEvent(event.sequence, event.sealed.size()).
bool IsIntactQueueEvent(const SealedEvent& event);

// Drains the queue (Front + PopFront until empty) and returns what it held.
Status DrainQueue(SealedQueue* queue, std::vector<SealedEvent>* events);

// /dev/shm when it is a writable directory, else "": for tests whose faults are injected
// logically (FaultyDataDir), where a real disk's fsync latency buys nothing but minutes.
std::string MemoryTempBase();

// Copies a directory tree (a queue's state before an injected fault).
void CopyTree(const std::string& from, const std::string& to);

}  // namespace portcullis::lane::testing_util
