// The POSIX DataDir: every operation is relative to one directory descriptor opened at start-up,
// every open uses O_NOFOLLOW, and names are validated before they reach the kernel. Together these
// make "write outside the data directory" impossible to express: there is no path argument, only
// names, and a symlink planted by someone with a shell (to a USB stick, say) is refused, not
// followed.
#include "data_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/unique_fd.h"

namespace portcullis::lane {
namespace {

constexpr std::size_t kMaxNameBytes = 255;

std::string ErrnoText(int err) { return std::strerror(err); }

// ENOSPC and EDQUOT are "the disk is full" for every caller: the queue refuses the event and the
// health check says so; anything else is an I/O error with the OS's words.
Status ErrnoStatus(int err, const std::string& what) {
  if (err == ENOSPC || err == EDQUOT) {
    return Status::ResourceExhausted(what + ": " + ErrnoText(err));
  }
  if (err == ENOENT) return Status::NotFound(what + ": " + ErrnoText(err));
  // ELOOP is what O_NOFOLLOW answers for a symlink: a refusal of the request, not an I/O fault.
  if (err == ELOOP) return Status::InvalidArgument(what + ": symlink refused");
  return Status::IOError(what + ": " + ErrnoText(err));
}

using Fd = UniqueFd;

bool ValidComponent(std::string_view c) {
  if (c.empty() || c.size() > kMaxNameBytes || c == "." || c == "..") return false;
  return c.find('/') == std::string_view::npos && c.find('\0') == std::string_view::npos;
}

// Splits "name" or "sub/name" into (sub, leaf); sub is "" for a top-level name.
Status SplitName(const std::string& name, std::string* sub, std::string* leaf) {
  const std::size_t slash = name.find('/');
  if (slash == std::string::npos) {
    sub->clear();
    *leaf = name;
  } else {
    *sub = name.substr(0, slash);
    *leaf = name.substr(slash + 1);
    if (!ValidComponent(*sub)) return Status::InvalidArgument("invalid data dir name");
  }
  if (!ValidComponent(*leaf)) return Status::InvalidArgument("invalid data dir name");
  return Status::Ok();
}

Status WriteAll(int fd, std::string_view bytes, std::uint64_t* written, const std::string& what) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, what);
    }
    if (n == 0) return Status::IOError(what + ": short write");
    bytes.remove_prefix(static_cast<std::size_t>(n));
    *written += static_cast<std::uint64_t>(n);
  }
  return Status::Ok();
}

// Opened files must be plain files with one link, owned by us: a FIFO would block the agent and a
// hard link planted in the data dir would let a write land in someone else's file.
Status CheckRegular(int fd, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, what);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(what + ": not a regular file");
  if (st.st_uid != ::geteuid()) return Status::InvalidArgument(what + ": not owned by this user");
  if (st.st_nlink > 1) return Status::InvalidArgument(what + ": has other hard links");
  return Status::Ok();
}

class PosixAppendFile final : public AppendFile {
 public:
  PosixAppendFile(Fd fd, std::uint64_t size, std::string name)
      : fd_(std::move(fd)), size_(size), name_(std::move(name)) {}
  Status Append(std::string_view bytes) override {
    return WriteAll(fd_.get(), bytes, &size_, "append " + name_);
  }
  Status Sync() override {
    while (::fdatasync(fd_.get()) != 0) {
      if (errno != EINTR) return ErrnoStatus(errno, "fdatasync " + name_);
    }
    return Status::Ok();
  }
  [[nodiscard]] std::uint64_t size() const override { return size_; }

 private:
  Fd fd_;
  std::uint64_t size_;
  std::string name_;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(Fd fd, std::uint64_t size, std::string name)
      : fd_(std::move(fd)), size_(size), name_(std::move(name)) {}
  Status Read(std::uint64_t offset, std::size_t n, std::string* bytes) const override {
    bytes->resize(n);
    std::size_t got = 0;
    while (got < n) {
      const ssize_t r =
          ::pread(fd_.get(), bytes->data() + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "read " + name_);
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    bytes->resize(got);
    return Status::Ok();
  }
  [[nodiscard]] std::uint64_t size() const override { return size_; }

 private:
  Fd fd_;
  std::uint64_t size_;
  std::string name_;
};

// Serves reads from a copy of the whole file (the fallback for DataDirs without positional reads).
class StringRandomAccessFile final : public RandomAccessFile {
 public:
  explicit StringRandomAccessFile(std::string bytes) : bytes_(std::move(bytes)) {}
  Status Read(std::uint64_t offset, std::size_t n, std::string* bytes) const override {
    if (offset >= bytes_.size()) {
      bytes->clear();
      return Status::Ok();
    }
    *bytes = bytes_.substr(static_cast<std::size_t>(offset), n);
    return Status::Ok();
  }
  [[nodiscard]] std::uint64_t size() const override { return bytes_.size(); }

 private:
  std::string bytes_;
};

Status SyncDir(int fd, const std::string& what) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "fsync dir " + what);
  }
  return Status::Ok();
}

class PosixDataDir final : public DataDir {
 public:
  PosixDataDir(std::string path, Fd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  [[nodiscard]] const std::string& path() const override { return path_; }

  Status NewAppendFile(const std::string& name, std::unique_ptr<AppendFile>* file) override {
    std::string leaf;
    Fd dir;
    PORTCULLIS_RETURN_IF_ERROR(OpenParent(name, &dir, &leaf));
    // O_EXCL first so that a newly created file's directory entry is made durable too: a synced
    // append to a file whose name a crash then loses would be an acknowledged event lost.
    const int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
    bool created = true;
    Fd fd(::openat(dir.get(), leaf.c_str(), flags | O_CREAT | O_EXCL, 0600));
    if (!fd.valid() && errno == EEXIST) {
      created = false;
      fd = Fd(::openat(dir.get(), leaf.c_str(), flags));
    }
    if (!fd.valid()) return ErrnoStatus(errno, "open " + name);
    PORTCULLIS_RETURN_IF_ERROR(CheckRegular(fd.get(), name));
    if (created) PORTCULLIS_RETURN_IF_ERROR(SyncDir(dir.get(), name));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "stat " + name);
    *file = std::make_unique<PosixAppendFile>(std::move(fd), static_cast<std::uint64_t>(st.st_size),
                                              name);
    return Status::Ok();
  }

  Status ReadFile(const std::string& name, std::size_t max_bytes, std::string* bytes) override {
    std::unique_ptr<RandomAccessFile> file;
    PORTCULLIS_RETURN_IF_ERROR(NewRandomAccessFile(name, &file));
    if (file->size() > max_bytes) {
      return Status::ResourceExhausted("read " + name + ": larger than the limit");
    }
    return file->Read(0, static_cast<std::size_t>(file->size()), bytes);
  }

  Status NewRandomAccessFile(const std::string& name,
                             std::unique_ptr<RandomAccessFile>* file) override {
    std::string leaf;
    Fd dir;
    PORTCULLIS_RETURN_IF_ERROR(OpenParent(name, &dir, &leaf));
    Fd fd(::openat(dir.get(), leaf.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd.valid()) return ErrnoStatus(errno, "open " + name);
    PORTCULLIS_RETURN_IF_ERROR(CheckRegular(fd.get(), name));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "stat " + name);
    *file = std::make_unique<PosixRandomAccessFile>(std::move(fd),
                                                    static_cast<std::uint64_t>(st.st_size), name);
    return Status::Ok();
  }

  Status WriteFileAtomic(const std::string& name, std::string_view bytes) override {
    std::string leaf;
    Fd dir;
    PORTCULLIS_RETURN_IF_ERROR(OpenParent(name, &dir, &leaf));
    // A short random temporary name: the final name may already be 255 bytes long.
    if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    std::string tmp = ".tmp-";
    static constexpr char kHex[] = "0123456789abcdef";
    for (unsigned char b : rnd) {
      tmp.push_back(kHex[b >> 4]);
      tmp.push_back(kHex[b & 0xf]);
    }
    Fd fd(::openat(dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                   0600));
    if (!fd.valid()) return ErrnoStatus(errno, "create temporary for " + name);
    std::uint64_t written = 0;
    Status s = WriteAll(fd.get(), bytes, &written, "write " + name);
    if (s.ok()) {
      while (::fsync(fd.get()) != 0) {
        if (errno != EINTR) {
          s = ErrnoStatus(errno, "fsync " + name);
          break;
        }
      }
    }
    fd.Reset();
    if (s.ok() && ::renameat(dir.get(), tmp.c_str(), dir.get(), leaf.c_str()) != 0) {
      s = ErrnoStatus(errno, "rename " + name);
    }
    if (!s.ok()) {
      ::unlinkat(dir.get(), tmp.c_str(), 0);
      return s;
    }
    return SyncDir(dir.get(), name);
  }

  Status Truncate(const std::string& name, std::uint64_t size) override {
    std::string leaf;
    Fd dir;
    PORTCULLIS_RETURN_IF_ERROR(OpenParent(name, &dir, &leaf));
    Fd fd(::openat(dir.get(), leaf.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd.valid()) return ErrnoStatus(errno, "open " + name);
    PORTCULLIS_RETURN_IF_ERROR(CheckRegular(fd.get(), name));
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
      return ErrnoStatus(errno, "truncate " + name);
    }
    while (::fsync(fd.get()) != 0) {
      if (errno != EINTR) return ErrnoStatus(errno, "fsync " + name);
    }
    return Status::Ok();
  }

  Status Remove(const std::string& name) override {
    std::string leaf;
    Fd dir;
    PORTCULLIS_RETURN_IF_ERROR(OpenParent(name, &dir, &leaf));
    if (::unlinkat(dir.get(), leaf.c_str(), 0) != 0) return ErrnoStatus(errno, "remove " + name);
    return SyncDir(dir.get(), name);
  }

  Status CreateSubdir(const std::string& name) override {
    if (!ValidComponent(name)) return Status::InvalidArgument("invalid data dir subdirectory");
    if (::mkdirat(fd_.get(), name.c_str(), 0700) == 0) return SyncDir(fd_.get(), name);
    if (errno != EEXIST) return ErrnoStatus(errno, "mkdir " + name);
    Fd sub;
    return OpenSubdir(name, &sub);  // exists: it must be a real directory of ours
  }

  Status List(const std::string& subdir, std::vector<std::string>* names) override {
    names->clear();
    Fd dir;
    if (subdir.empty()) {
      dir = Fd(::openat(fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!dir.valid()) return ErrnoStatus(errno, "open data dir");
    } else {
      if (!ValidComponent(subdir)) return Status::InvalidArgument("invalid data dir subdirectory");
      PORTCULLIS_RETURN_IF_ERROR(OpenSubdir(subdir, &dir));
    }
    DIR* d = ::fdopendir(dir.get());
    if (d == nullptr) return ErrnoStatus(errno, "list " + subdir);
    dir.Release();  // owned by d now
    errno = 0;
    while (const dirent* e = ::readdir(d)) {
      const std::string_view n = e->d_name;
      if (n != "." && n != "..") names->emplace_back(n);
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoStatus(err, "list " + subdir);
    std::sort(names->begin(), names->end());
    return Status::Ok();
  }

  Status FreeBytes(std::uint64_t* bytes) override {
    struct statvfs st {};
    if (::fstatvfs(fd_.get(), &st) != 0) return ErrnoStatus(errno, "statvfs data dir");
    *bytes = static_cast<std::uint64_t>(st.f_bavail) * static_cast<std::uint64_t>(st.f_frsize);
    return Status::Ok();
  }

 private:
  Status OpenSubdir(const std::string& sub, Fd* out) {
    Fd fd(::openat(fd_.get(), sub.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) {
      // O_DIRECTORY|O_NOFOLLOW on a symlink answers ENOTDIR or ELOOP: both are refusals.
      if (errno == ENOTDIR || errno == ELOOP) {
        return Status::InvalidArgument("data dir subdirectory " + sub +
                                       " is a symlink or not a directory");
      }
      return ErrnoStatus(errno, "open " + sub);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "stat " + sub);
    if (st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
      return Status::InvalidArgument("data dir subdirectory " + sub +
                                     " is not owned by this user or is writable by others");
    }
    *out = std::move(fd);
    return Status::Ok();
  }

  // The directory descriptor a name lives in (the data dir or its one-level subdirectory).
  Status OpenParent(const std::string& name, Fd* dir, std::string* leaf) {
    std::string sub;
    PORTCULLIS_RETURN_IF_ERROR(SplitName(name, &sub, leaf));
    if (sub.empty()) {
      *dir = Fd(::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
      if (!dir->valid()) return ErrnoStatus(errno, "dup data dir");
      return Status::Ok();
    }
    return OpenSubdir(sub, dir);
  }

  std::string path_;
  Fd fd_;
};

}  // namespace

Status DataDir::NewRandomAccessFile(const std::string& name,
                                    std::unique_ptr<RandomAccessFile>* file) {
  std::string bytes;
  PORTCULLIS_RETURN_IF_ERROR(ReadFile(name, std::size_t{1} << 31, &bytes));
  *file = std::make_unique<StringRandomAccessFile>(std::move(bytes));
  return Status::Ok();
}

Status DataDir::Open(const std::string& path, std::unique_ptr<DataDir>* dir) {
  if (path.empty() || path.find('\0') != std::string::npos) {
    return Status::InvalidArgument("data dir path is empty");
  }
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "create data dir " + path);
  }
  // O_NOFOLLOW refuses a data dir that is itself a symlink (someone pointing it at removable
  // media); the checks below refuse one that someone else could plant files in.
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOTDIR || errno == ELOOP) {
      return Status::InvalidArgument("data dir " + path + " is a symlink or not a directory");
    }
    return ErrnoStatus(errno, "open data dir " + path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "stat data dir " + path);
  if (st.st_uid != ::geteuid()) {
    return Status::InvalidArgument("data dir " + path + " is not owned by this user");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Status::InvalidArgument("data dir " + path + " is writable by group or others");
  }
  *dir = std::make_unique<PosixDataDir>(path, std::move(fd));
  return Status::Ok();
}

}  // namespace portcullis::lane
