// Process and memory hygiene. Both core-dump switches are needed: RLIMIT_CORE 0 stops file dumps
// but the kernel ignores it when core_pattern pipes to a helper (systemd-coredump, apport), and
// PR_SET_DUMPABLE 0 stops every dump (and ptrace attach by other processes of the same user)
// unless the host sets fs.suid_dumpable=2.
#include "hygiene.h"

#include <sodium.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>

namespace portcullis::lane {

Status DisableCoreDumps() {
  const rlimit none{0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0) {
    return Status::IOError(std::string("setrlimit(RLIMIT_CORE): ") + std::strerror(errno));
  }
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return Status::IOError(std::string("prctl(PR_SET_DUMPABLE): ") + std::strerror(errno));
  }
  return Status::Ok();
}

bool CoreDumpsDisabled() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_CORE, &limit) != 0 || limit.rlim_cur != 0) return false;
  return ::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0;
}

void WipeMat(cv::Mat* mat) {
  if (mat == nullptr) return;
  // Wipe the whole allocation, not just the rows this header shows: a ROI that outlived its
  // parent still owns the full frame, and a non-continuous Mat has pixels between its rows.
  // Only a sole owner wipes: another Mat (or a UMat) may still be using the buffer, and a Mat
  // wrapping caller memory (u == nullptr, or USER_ALLOCATED) leaves that memory to its owner.
  cv::UMatData* u = mat->u;
  if (u != nullptr && u->refcount == 1 && u->urefcount == 0 && u->data != nullptr &&
      (u->flags & cv::UMatData::USER_ALLOCATED) == 0) {
    sodium_memzero(u->data, u->size);
  }
  mat->release();
}

void WipeString(std::string* bytes) {
  if (bytes == nullptr) return;
  // Bytes past size() but within capacity() may hold an earlier, longer value: wipe them too.
  bytes->resize(bytes->capacity());
  sodium_memzero(bytes->data(), bytes->size());
  bytes->clear();
}

}  // namespace portcullis::lane
