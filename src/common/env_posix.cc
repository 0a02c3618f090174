// The POSIX Env: the only place in Portcullis that talks to the file system directly.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "portcullis/env.h"

namespace portcullis {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// "<path>: <what>: <strerror>" so that every file-system error names the file it is about.
Status PosixError(const std::string& path, const char* what, int err) {
  std::string msg = path;
  msg += ": ";
  if (what != nullptr) {
    msg += what;
    msg += ": ";
  }
  msg += ErrnoText(err);
  if (err == ENOENT) return Status::NotFound(msg);
  return Status::IOError(msg);
}

std::string DirName(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Status WriteAll(int fd, const std::string& path, const std::string& contents) {
  const char* p = contents.data();
  std::size_t left = contents.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError(path, "write", errno);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

class PosixEnv final : public Env {
 public:
  Status ReadFile(const std::string& path, std::size_t max_bytes, std::string* contents) override {
    contents->clear();
    // O_NONBLOCK so that a FIFO with no writer cannot hang the open; cleared again right after.
    int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (raw < 0) return PosixError(path, nullptr, errno);
    UniqueFd fd(raw);
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags >= 0) ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);

    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return PosixError(path, "stat", errno);
    if (S_ISDIR(st.st_mode)) return PosixError(path, nullptr, EISDIR);
    // Refuse a regular file that is too big before reading any of it.
    if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) > max_bytes) {
      return Status::ResourceExhausted(path + ": file is " + std::to_string(st.st_size) +
                                       " bytes, over the limit of " + std::to_string(max_bytes));
    }
    // st_size is only a hint: /proc files report 0, devices report nothing, and a file can grow
    // while we read it. The read loop below enforces the limit on its own.
    if (S_ISREG(st.st_mode)) contents->reserve(static_cast<std::size_t>(st.st_size));

    char buf[64 * 1024];
    while (true) {
      ssize_t n = ::read(fd.get(), buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        contents->clear();
        return PosixError(path, "read", err);
      }
      if (n == 0) break;
      const auto got = static_cast<std::size_t>(n);
      if (got > max_bytes - contents->size()) {
        contents->clear();
        contents->shrink_to_fit();
        return Status::ResourceExhausted(path + ": file is over the limit of " +
                                         std::to_string(max_bytes) + " bytes");
      }
      contents->append(buf, got);
    }
    return Status::Ok();
  }

  Status WriteFileAtomic(const std::string& path, const std::string& contents) override {
    const std::string dir = DirName(path);
    // A hidden sibling of the target, so that rename() stays within one file system and a
    // directory listing that skips dot files never offers a half-written file.
    std::string tmp;
    int raw = -1;
    for (int attempt = 0; attempt < 100 && raw < 0; ++attempt) {
      tmp = dir + "/." + BaseName(path) + ".tmp." + std::to_string(::getpid()) + "." +
            std::to_string(temp_counter_.fetch_add(1));
      raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (raw < 0 && errno != EEXIST) break;
    }
    if (raw < 0) return Status::IOError(path + ": create temporary file: " + ErrnoText(errno));

    UniqueFd fd(raw);
    Status s = WriteAll(fd.get(), path, contents);
    if (s.ok() && ::fsync(fd.get()) != 0)
      s = Status::IOError(path + ": fsync: " + ErrnoText(errno));
    if (fd.Close() != 0 && s.ok()) s = Status::IOError(path + ": close: " + ErrnoText(errno));
    if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
      s = Status::IOError(path + ": rename: " + ErrnoText(errno));
    }
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    return SyncDirectory(dir, path);
  }

  Status ListDirectory(const std::string& path, std::vector<std::string>* names) override {
    names->clear();
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return PosixError(path, nullptr, errno);
    while (true) {
      errno = 0;
      struct dirent* entry = ::readdir(d);
      if (entry == nullptr) {
        int err = errno;
        ::closedir(d);
        if (err != 0) {
          names->clear();
          return PosixError(path, "readdir", err);
        }
        break;
      }
      std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      names->push_back(std::move(name));
    }
    // readdir order depends on the file system; callers want a reproducible order.
    std::sort(names->begin(), names->end());
    return Status::Ok();
  }

  FileKind KindOf(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      return (errno == ENOENT || errno == ENOTDIR) ? FileKind::kMissing : FileKind::kOther;
    }
    if (S_ISREG(st.st_mode)) return FileKind::kRegular;
    if (S_ISDIR(st.st_mode)) return FileKind::kDirectory;
    return FileKind::kOther;
  }

  std::int64_t NowMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

 private:
  // Without this the rename itself may not survive a power cut, and the old file comes back.
  static Status SyncDirectory(const std::string& dir, const std::string& path) {
    int raw = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (raw < 0) return Status::IOError(path + ": open directory: " + ErrnoText(errno));
    UniqueFd fd(raw);
    // Some file systems (and some FUSE mounts) cannot fsync a directory; the data is already
    // durable in the renamed file, so that is not worth failing the write for.
    if (::fsync(fd.get()) != 0 && errno != EINVAL && errno != ENOTSUP) {
      return Status::IOError(path + ": fsync directory: " + ErrnoText(errno));
    }
    return Status::Ok();
  }

  std::atomic<std::uint64_t> temp_counter_{0};
};

}  // namespace

Env* Env::Default() {
  // Leaked on purpose: it must outlive every static that might still log or read at exit.
  static Env* const env = new PosixEnv;
  return env;
}

}  // namespace portcullis
