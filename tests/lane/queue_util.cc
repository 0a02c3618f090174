#include "queue_util.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace portcullis::lane::testing_util {
namespace {

class FaultyAppendFile final : public AppendFile {
 public:
  FaultyAppendFile(FaultyDataDir* dir, std::unique_ptr<AppendFile> base)
      : dir_(dir), base_(std::move(base)) {}
  Status Append(std::string_view bytes) override { return dir_->AppendThrough(base_.get(), bytes); }
  Status Sync() override {
    PORTCULLIS_RETURN_IF_ERROR(dir_->Alive());
    return base_->Sync();
  }
  [[nodiscard]] std::uint64_t size() const override { return base_->size(); }

 private:
  FaultyDataDir* dir_;
  std::unique_ptr<AppendFile> base_;
};

}  // namespace

Status FaultyDataDir::Alive() const {
  return crashed_ ? Status::IOError("injected crash: the process is dead") : Status::Ok();
}

Status FaultyDataDir::AppendThrough(AppendFile* file, std::string_view bytes) {
  PORTCULLIS_RETURN_IF_ERROR(Alive());
  const std::uint64_t limit = std::min(full_after_, crash_after_);
  const std::uint64_t room = limit > appended_ ? limit - appended_ : 0;
  if (bytes.size() <= room) {
    PORTCULLIS_RETURN_IF_ERROR(file->Append(bytes));
    appended_ += bytes.size();
    return Status::Ok();
  }
  const std::string_view fits = bytes.substr(0, static_cast<std::size_t>(room));
  if (!fits.empty()) PORTCULLIS_RETURN_IF_ERROR(file->Append(fits));
  appended_ += fits.size();
  if (crash_after_ <= full_after_) {
    crashed_ = true;
    return Status::IOError("injected crash mid-write");
  }
  return Status::ResourceExhausted("injected disk full: No space left on device");
}

Status FaultyDataDir::NewAppendFile(const std::string& name, std::unique_ptr<AppendFile>* file) {
  PORTCULLIS_RETURN_IF_ERROR(Alive());
  std::unique_ptr<AppendFile> base;
  PORTCULLIS_RETURN_IF_ERROR(base_->NewAppendFile(name, &base));
  *file = std::make_unique<FaultyAppendFile>(this, std::move(base));
  return Status::Ok();
}

Status FaultyDataDir::ReadFile(const std::string& name, std::size_t max_bytes, std::string* bytes) {
  PORTCULLIS_RETURN_IF_ERROR(Alive());
  return base_->ReadFile(name, max_bytes, bytes);
}

Status FaultyDataDir::WriteFileAtomic(const std::string& name, std::string_view bytes) {
  PORTCULLIS_RETURN_IF_ERROR(Alive());
  // A full disk refuses the temporary file too (the rename never happens).
  if (appended_ >= full_after_) return Status::ResourceExhausted("injected disk full");
  return base_->WriteFileAtomic(name, bytes);
}

Status FaultyDataDir::Truncate(const std::string& name, std::uint64_t size) {
  PORTCULLIS_RETURN_IF_ERROR(Alive());
  if (fail_truncate_) return Status::IOError("injected truncate failure");
  return base_->Truncate(name, size);
}

Status FaultyDataDir::Remove(const std::string& name) {
  PORTCULLIS_RETURN_IF_ERROR(Alive());
  return base_->Remove(name);
}

Status FaultyDataDir::CreateSubdir(const std::string& name) {
  PORTCULLIS_RETURN_IF_ERROR(Alive());
  return base_->CreateSubdir(name);
}

Status FaultyDataDir::List(const std::string& subdir, std::vector<std::string>* names) {
  PORTCULLIS_RETURN_IF_ERROR(Alive());
  return base_->List(subdir, names);
}

Status FaultyDataDir::FreeBytes(std::uint64_t* bytes) {
  PORTCULLIS_RETURN_IF_ERROR(Alive());
  return base_->FreeBytes(bytes);
}

Status FaultyDataDir::NewRandomAccessFile(const std::string& name,
                                          std::unique_ptr<RandomAccessFile>* file) {
  PORTCULLIS_RETURN_IF_ERROR(Alive());
  return base_->NewRandomAccessFile(name, file);
}

SealedEvent MakeQueueEvent(std::uint64_t sequence, std::size_t bytes) {
  SealedEvent e;
  e.sequence = sequence;
  char id[33];
  std::snprintf(id, sizeof id, "%016llx%016llx", static_cast<unsigned long long>(sequence),
                static_cast<unsigned long long>(sequence * 0x9E3779B97F4A7C15ULL));
  e.event_id.assign(id, 32);
  e.sealed.resize(bytes);
  std::uint64_t x = sequence * 0x2545F4914F6CDD1DULL + bytes + 1;  // xorshift64: cheap noise
  for (char& c : e.sealed) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x & 0xffU);
  }
  return e;
}

bool IsIntactQueueEvent(const SealedEvent& event) {
  const SealedEvent expected = MakeQueueEvent(event.sequence, event.sealed.size());
  return expected.event_id == event.event_id && expected.sealed == event.sealed;
}

Status DrainQueue(SealedQueue* queue, std::vector<SealedEvent>* events) {
  events->clear();
  while (true) {
    SealedEvent e;
    const Status s = queue->Front(&e);
    if (s.code() == Status::Code::kNotFound) return Status::Ok();
    PORTCULLIS_RETURN_IF_ERROR(s);
    PORTCULLIS_RETURN_IF_ERROR(queue->PopFront(e.event_id));
    events->push_back(std::move(e));
  }
}

void CopyTree(const std::string& from, const std::string& to) {
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

std::string MemoryTempBase() { return ::access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : ""; }

TempDir::TempDir() : TempDir("") {}

TempDir::TempDir(const std::string& base) {
  const char* env = std::getenv("TEST_TMPDIR");
  const std::string root = !base.empty() ? base : (env != nullptr ? env : "/tmp");
  std::string tmpl = root + "/portcullis-lane-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace portcullis::lane::testing_util
