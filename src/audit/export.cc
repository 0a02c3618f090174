// ExportLog: any TransparencyLog as a log directory the offline verifier reads.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "audit/format.h"
#include "audit/tree.h"
#include "portcullis/audit.h"

namespace portcullis::audit {
namespace {

// Leaves are read in pages so an export of millions of events needs no more memory than one page
// and the files being built.
constexpr std::uint64_t kPage = 10'000;

Status WriteNew(const std::string& path, const std::string& bytes) {
  internal::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) return internal::ErrnoStatus(path, "create", errno);
  PORTCULLIS_RETURN_IF_ERROR(internal::PWriteAll(fd.get(), path, bytes, 0));
  return internal::SyncFd(fd.get(), path);
}

}  // namespace

Status ExportLog(const TransparencyLog& log, const std::string& dir, std::uint64_t* exported_size) {
  // Heads first: the snapshot is the latest of them; leaves appended meanwhile are left out, so
  // the export is exactly what those heads sign.
  std::vector<SignedTreeHead> heads;
  PORTCULLIS_RETURN_IF_ERROR(log.TreeHeads(&heads));
  const std::uint64_t size = heads.empty() ? 0 : heads.back().tree_size;

  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return Status::InvalidArgument(dir + " already exists");
    return internal::ErrnoStatus(dir, "mkdir", errno);
  }
  std::string events(internal::kEventsMagic);
  std::string nodes(internal::kTreeMagic);
  internal::Frontier frontier;
  std::vector<std::string> page;
  for (std::uint64_t start = 0; start < size; start += kPage) {
    const std::uint64_t end = std::min(size, start + kPage);
    PORTCULLIS_RETURN_IF_ERROR(log.ReadLeaves(start, end, &page));
    for (const std::string& leaf : page) {
      internal::AppendFrame(leaf, &events);
      frontier.Add(LeafHash(leaf), &nodes);
    }
  }
  std::string sth(internal::kSthMagic);
  for (const SignedTreeHead& head : heads) {
    internal::AppendFrame(internal::EncodeTreeHead(head), &sth);
  }
  PORTCULLIS_RETURN_IF_ERROR(WriteNew(dir + "/" + internal::kEventsFile, events));
  PORTCULLIS_RETURN_IF_ERROR(WriteNew(dir + "/" + internal::kTreeFile, nodes));
  PORTCULLIS_RETURN_IF_ERROR(WriteNew(dir + "/" + internal::kSthFile, sth));
  PORTCULLIS_RETURN_IF_ERROR(internal::SyncDirectory(dir));
  if (exported_size != nullptr) *exported_size = size;
  return Status::Ok();
}

}  // namespace portcullis::audit
