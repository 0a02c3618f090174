// The audit log writer (group commit, crash recovery) and the read-only reader.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "audit/format.h"
#include "audit/tree.h"
#include "portcullis/audit.h"

namespace portcullis::audit {

using internal::Fd;
using internal::FrameScan;
using internal::TailState;

namespace {

std::string Join(const std::string& dir, const char* name) { return dir + "/" + name; }

// Opens (creating if missing) a log file and makes sure it starts with its magic.
Status OpenLogFile(const std::string& path, std::string_view magic, Fd* fd, bool* created) {
  Fd f(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (f.get() < 0) return internal::ErrnoStatus(path, "open", errno);
  struct stat st {};
  if (::fstat(f.get(), &st) != 0) return internal::ErrnoStatus(path, "stat", errno);
  *created = st.st_size < static_cast<off_t>(internal::kHeaderSize);
  if (*created) {
    // Empty or a header torn by a crash at creation: nothing in it was ever acknowledged.
    if (::ftruncate(f.get(), 0) != 0) return internal::ErrnoStatus(path, "truncate", errno);
    PORTCULLIS_RETURN_IF_ERROR(internal::PWriteAll(f.get(), path, magic, 0));
    PORTCULLIS_RETURN_IF_ERROR(internal::SyncFd(f.get(), path));
  }
  *fd = std::move(f);
  return Status::Ok();
}

Status Truncate(int fd, const std::string& path, std::uint64_t size) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return internal::ErrnoStatus(path, "truncate", errno);
  }
  return internal::SyncFd(fd, path);
}

Status ReadTreeHeads(const std::string& path, std::string_view contents, FrameScan* scan,
                     std::vector<SignedTreeHead>* heads) {
  PORTCULLIS_RETURN_IF_ERROR(
      internal::ScanFrames(contents, internal::kSthMagic, internal::kSthPayload, scan)
          .WithContext(path));
  if (scan->tail == TailState::kCorrupt) return Status::Corruption(path + ": " + scan->problem);
  heads->clear();
  for (std::size_t i = 0; i < scan->offsets.size(); ++i) {
    SignedTreeHead sth;
    PORTCULLIS_RETURN_IF_ERROR(
        internal::DecodeTreeHead(
            contents.substr(scan->offsets[i] + internal::kFrameHeader, scan->lengths[i]), &sth)
            .WithContext(path + ": tree head " + std::to_string(i)));
    heads->push_back(sth);
  }
  return Status::Ok();
}

std::string_view FramePayload(std::string_view contents, const FrameScan& scan, std::size_t i) {
  return contents.substr(scan.offsets[i] + internal::kFrameHeader, scan.lengths[i]);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Writer.

struct AuditLog::Impl {
  // One caller waiting in Append/AppendBatch/PublishTreeHead.
  struct Waiter {
    std::vector<std::string> leaves;
    Status status;
    std::uint64_t first_index = 0;
    bool done = false;
    std::condition_variable cv;
  };

  std::string dir;
  LogKeys keys;
  AuditLogOptions options;
  Env* env = nullptr;
  std::string events_path, tree_path, sth_path;
  Fd events, tree, sth;

  mutable std::mutex mu;
  std::deque<Waiter*> waiters;  // the front one writes for the group
  // Committed state (guarded by mu; only the group leader changes it).
  std::uint64_t events_end = 0;
  std::uint64_t tree_nodes = 0;
  std::uint64_t sth_end = 0;
  internal::Frontier frontier;
  // Where each committed leaf's frame starts in events.log and its payload length, so that
  // ReadLeaves is one pread per leaf (12 bytes of memory per event).
  std::vector<std::uint64_t> leaf_offsets;
  std::vector<std::uint32_t> leaf_lengths;
  SignedTreeHead last_sth;
  bool has_sth = false;
  Status error;  // sticky after an I/O failure

  Status Recover();
  Status WriteGroup(const std::vector<const std::string*>& leaves, bool force_head,
                    std::unique_lock<std::mutex>* lock);
  Status Enqueue(Waiter* w);
  internal::TreeFileSource Source() const {
    return internal::TreeFileSource(tree.get(), tree_path, tree_nodes);
  }
};

Status AuditLog::Impl::Recover() {
  // 1. Tree heads: the last one says how many events were acknowledged.
  std::string contents;
  PORTCULLIS_RETURN_IF_ERROR(internal::ReadWholeFile(sth_path, &contents));
  FrameScan scan;
  std::vector<SignedTreeHead> heads;
  PORTCULLIS_RETURN_IF_ERROR(ReadTreeHeads(sth_path, contents, &scan, &heads));
  if (scan.tail == TailState::kTorn) {
    PORTCULLIS_RETURN_IF_ERROR(Truncate(sth.get(), sth_path, scan.valid_end));
  }
  sth_end = scan.valid_end;
  std::uint64_t signed_size = 0;
  if (!heads.empty()) {
    last_sth = heads.back();
    has_sth = true;
    signed_size = last_sth.tree_size;
    if (!VerifyTreeHeadSignature(last_sth, keys.public_key()).ok()) {
      return Status::InvalidArgument(sth_path + ": the latest tree head is not signed by this key");
    }
  }

  // 2. Events: a torn final record is cut off; anything worse is refused.
  PORTCULLIS_RETURN_IF_ERROR(internal::ReadWholeFile(events_path, &contents));
  PORTCULLIS_RETURN_IF_ERROR(
      internal::ScanFrames(contents, internal::kEventsMagic, internal::kMaxLeafBytes, &scan)
          .WithContext(events_path));
  if (scan.tail == TailState::kCorrupt) {
    return Status::Corruption(events_path + ": " + scan.problem);
  }
  const std::uint64_t n = scan.offsets.size();
  if (n < signed_size) {
    return Status::Corruption(events_path + ": holds " + std::to_string(n) +
                              " events but the latest signed tree head covers " +
                              std::to_string(signed_size) +
                              (scan.tail == TailState::kTorn ? " (" + scan.problem + ")" : ""));
  }
  if (scan.tail == TailState::kTorn) {
    PORTCULLIS_RETURN_IF_ERROR(Truncate(events.get(), events_path, scan.valid_end));
  }
  events_end = scan.valid_end;

  // 3. Tree store: derived data, so it is recomputed from the leaves and compared (the leaves
  // were just read for their checksums anyway); a store that differs, whether torn by a crash or
  // damaged, is rewritten. The leaves must give the latest signed root, or they were altered.
  std::string nodes(internal::kTreeMagic);
  internal::Frontier f;
  Hash signed_root = EmptyTreeHash();
  for (std::uint64_t i = 0; i < n; ++i) {
    f.Add(LeafHash(FramePayload(contents, scan, i)), &nodes);
    if (i + 1 == signed_size) signed_root = f.Root();
  }
  if (has_sth && signed_root != last_sth.root_hash) {
    return Status::Corruption(events_path +
                              ": the events do not match the latest signed tree head");
  }
  std::string stored;
  PORTCULLIS_RETURN_IF_ERROR(internal::ReadWholeFile(tree_path, &stored));
  if (stored != nodes) {
    if (::ftruncate(tree.get(), 0) != 0) return internal::ErrnoStatus(tree_path, "truncate", errno);
    PORTCULLIS_RETURN_IF_ERROR(internal::PWriteAll(tree.get(), tree_path, nodes, 0));
    PORTCULLIS_RETURN_IF_ERROR(internal::SyncFd(tree.get(), tree_path));
  }
  tree_nodes = internal::NodesFor(n);
  frontier = f;
  leaf_offsets = scan.offsets;
  leaf_lengths = scan.lengths;

  // 4. Events that reached the disk without a head are now part of the log: sign them.
  if (n > signed_size || !has_sth) {
    std::unique_lock<std::mutex> lock(mu);
    PORTCULLIS_RETURN_IF_ERROR(WriteGroup({}, true, &lock));
  }
  return Status::Ok();
}

Status AuditLog::Impl::WriteGroup(const std::vector<const std::string*>& leaves, bool force_head,
                                  std::unique_lock<std::mutex>* lock) {
  if (!error.ok()) return error;
  if (leaves.empty() && !force_head) return Status::Ok();
  internal::Frontier f = frontier;
  const std::uint64_t old_events = events_end;
  const std::uint64_t old_tree = internal::kHeaderSize + tree_nodes * sizeof(Hash);
  const std::uint64_t old_sth = sth_end;
  const std::int64_t last_ts = has_sth ? last_sth.timestamp_micros : 0;
  lock->unlock();  // only the leader gets here; readers may proceed on the committed state

  std::string event_bytes;
  std::string node_bytes;
  std::vector<std::uint64_t> offsets;
  offsets.reserve(leaves.size());
  for (const std::string* leaf : leaves) {
    offsets.push_back(old_events + event_bytes.size());
    internal::AppendFrame(*leaf, &event_bytes);
    f.Add(LeafHash(*leaf), &node_bytes);
  }
  SignedTreeHead head;
  head.tree_size = f.size();
  // Heads are ordered by time even if the wall clock steps back.
  head.timestamp_micros = std::max(env->NowMicros(), last_ts);
  head.root_hash = f.Root();
  std::string head_bytes;
  Status s = internal::SignTreeHead(keys, &head);
  if (s.ok()) internal::AppendFrame(internal::EncodeTreeHead(head), &head_bytes);
  // Order matters: a head is written only once the events it covers are on disk, so every head
  // found after a crash covers events that are there. The tree nodes are not fsynced: they are
  // derived data, recomputed from the leaves and repaired when the log is opened.
  if (s.ok()) s = internal::PWriteAll(events.get(), events_path, event_bytes, old_events);
  if (s.ok() && !event_bytes.empty()) s = internal::SyncFd(events.get(), events_path);
  if (s.ok()) s = internal::PWriteAll(tree.get(), tree_path, node_bytes, old_tree);
  if (s.ok()) s = internal::PWriteAll(sth.get(), sth_path, head_bytes, old_sth);
  if (s.ok()) s = internal::SyncFd(sth.get(), sth_path);
  if (!s.ok()) {
    // Best effort: leave the files as they were, so reopening finds no half batch. Whether or
    // not that works, this log takes nothing more until it is reopened (after a failed fsync
    // the kernel's page cache state is unknown).
    (void)!::ftruncate(sth.get(), static_cast<off_t>(old_sth));
    (void)!::ftruncate(events.get(), static_cast<off_t>(old_events));
    (void)!::ftruncate(tree.get(), static_cast<off_t>(old_tree));
  }

  lock->lock();
  if (!s.ok()) {
    error = s;
    return s;
  }
  events_end = old_events + event_bytes.size();
  tree_nodes += node_bytes.size() / sizeof(Hash);
  sth_end = old_sth + head_bytes.size();
  frontier = f;
  leaf_offsets.insert(leaf_offsets.end(), offsets.begin(), offsets.end());
  for (const std::string* leaf : leaves) {
    leaf_lengths.push_back(static_cast<std::uint32_t>(leaf->size()));
  }
  last_sth = head;
  has_sth = true;
  return Status::Ok();
}

Status AuditLog::Impl::Enqueue(Waiter* w) {
  std::unique_lock<std::mutex> lock(mu);
  waiters.push_back(w);
  while (!w->done && w != waiters.front()) w->cv.wait(lock);
  if (w->done) return w->status;

  // Leader: take this and following waiters, up to max_group leaves (at least this one's).
  std::vector<Waiter*> group;
  std::vector<const std::string*> leaves;
  for (Waiter* other : waiters) {
    if (!group.empty() && leaves.size() + other->leaves.size() > options.max_group) break;
    group.push_back(other);
    for (const std::string& leaf : other->leaves) leaves.push_back(&leaf);
  }
  std::uint64_t next = frontier.size();
  Status s = WriteGroup(leaves, true, &lock);
  for (Waiter* member : group) {
    member->status = s;
    member->first_index = next;
    next += member->leaves.size();
    member->done = true;
    waiters.pop_front();
    if (member != w) member->cv.notify_one();
  }
  if (!waiters.empty()) waiters.front()->cv.notify_one();
  return s;
}

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditLog::~AuditLog() = default;

Status AuditLog::Open(const std::string& dir, const LogKeys& keys, const AuditLogOptions& options,
                      std::unique_ptr<AuditLog>* log) {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->keys = keys;
  impl->options = options;
  if (impl->options.max_group == 0) impl->options.max_group = 1;
  impl->env = options.env != nullptr ? options.env : Env::Default();
  if (::mkdir(dir.c_str(), 0700) == 0) {
    const auto slash = dir.find_last_of('/');
    PORTCULLIS_RETURN_IF_ERROR(
        internal::SyncDirectory(slash == std::string::npos ? "." : dir.substr(0, slash + 1)));
  } else if (errno != EEXIST) {
    return internal::ErrnoStatus(dir, "mkdir", errno);
  }
  impl->events_path = Join(dir, internal::kEventsFile);
  impl->tree_path = Join(dir, internal::kTreeFile);
  impl->sth_path = Join(dir, internal::kSthFile);
  bool created_events = false;
  bool created_tree = false;
  bool created_sth = false;
  PORTCULLIS_RETURN_IF_ERROR(
      OpenLogFile(impl->events_path, internal::kEventsMagic, &impl->events, &created_events));
  PORTCULLIS_RETURN_IF_ERROR(
      OpenLogFile(impl->tree_path, internal::kTreeMagic, &impl->tree, &created_tree));
  PORTCULLIS_RETURN_IF_ERROR(
      OpenLogFile(impl->sth_path, internal::kSthMagic, &impl->sth, &created_sth));
  if (created_events || created_tree || created_sth) {
    PORTCULLIS_RETURN_IF_ERROR(internal::SyncDirectory(dir));
  }
  PORTCULLIS_RETURN_IF_ERROR(impl->Recover());
  *log = std::unique_ptr<AuditLog>(new AuditLog(std::move(impl)));
  return Status::Ok();
}

Status AuditLog::Append(const AuditEvent& event) {
  Impl::Waiter w;
  w.leaves.emplace_back();
  PORTCULLIS_RETURN_IF_ERROR(EncodeLeaf(event, impl_->keys.id_key, &w.leaves.back()));
  return impl_->Enqueue(&w);
}

Status AuditLog::AppendBatch(const std::vector<AuditEvent>& events, std::uint64_t* first_index) {
  Impl::Waiter w;
  w.leaves.resize(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    PORTCULLIS_RETURN_IF_ERROR(EncodeLeaf(events[i], impl_->keys.id_key, &w.leaves[i]));
  }
  // A batch bigger than a group is still written as one: its events must not interleave.
  Status s = impl_->Enqueue(&w);
  if (s.ok() && first_index != nullptr) *first_index = w.first_index;
  return s;
}

Status AuditLog::PublishTreeHead(SignedTreeHead* sth) {
  Impl::Waiter w;
  PORTCULLIS_RETURN_IF_ERROR(impl_->Enqueue(&w));
  return sth != nullptr ? LatestTreeHead(sth) : Status::Ok();
}

std::uint64_t AuditLog::size() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->frontier.size();
}

PublicKey AuditLog::public_key() const { return impl_->keys.public_key(); }

Status AuditLog::Size(std::uint64_t* tree_size) const {
  *tree_size = size();
  return Status::Ok();
}

Status AuditLog::ReadLeaves(std::uint64_t start, std::uint64_t end,
                            std::vector<std::string>* leaves) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  const std::uint64_t n = impl_->frontier.size();
  if (start > end || end > n) {
    return Status::InvalidArgument("leaves [" + std::to_string(start) + ", " + std::to_string(end) +
                                   ") are not in a log of " + std::to_string(n));
  }
  // Copies: the vectors may grow (and move) while the lock is released for the reads.
  const std::vector<std::uint64_t> offsets(
      impl_->leaf_offsets.begin() + static_cast<std::ptrdiff_t>(start),
      impl_->leaf_offsets.begin() + static_cast<std::ptrdiff_t>(end));
  const std::vector<std::uint32_t> lengths(
      impl_->leaf_lengths.begin() + static_cast<std::ptrdiff_t>(start),
      impl_->leaf_lengths.begin() + static_cast<std::ptrdiff_t>(end));
  lock.unlock();  // committed frames never change
  std::vector<std::string> out(offsets.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].assign(lengths[i], '\0');
    PORTCULLIS_RETURN_IF_ERROR(internal::PReadAll(impl_->events.get(), impl_->events_path,
                                                  out[i].data(), out[i].size(),
                                                  offsets[i] + internal::kFrameHeader));
  }
  *leaves = std::move(out);
  return Status::Ok();
}

Status AuditLog::TreeHeads(std::vector<SignedTreeHead>* heads) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  const std::uint64_t end = impl_->sth_end;
  lock.unlock();
  std::string contents(end, '\0');
  PORTCULLIS_RETURN_IF_ERROR(
      internal::PReadAll(impl_->sth.get(), impl_->sth_path, contents.data(), end, 0));
  FrameScan scan;
  return ReadTreeHeads(impl_->sth_path, contents, &scan, heads);
}

Status AuditLog::LatestTreeHead(SignedTreeHead* sth) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->has_sth) return Status::NotFound("the log has no tree head yet");
  *sth = impl_->last_sth;
  return Status::Ok();
}

namespace {

Status CheckSize(std::uint64_t asked, std::uint64_t have) {
  if (asked > have) {
    return Status::InvalidArgument("tree size " + std::to_string(asked) +
                                   " is larger than the log (" + std::to_string(have) + ")");
  }
  return Status::Ok();
}

}  // namespace

Status AuditLog::RootAt(std::uint64_t tree_size, Hash* root) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  const auto src = impl_->Source();
  PORTCULLIS_RETURN_IF_ERROR(CheckSize(tree_size, impl_->frontier.size()));
  lock.unlock();  // the nodes below the committed size never change
  return internal::RootAt(src, tree_size, root);
}

Status AuditLog::ProveInclusion(std::uint64_t leaf_index, std::uint64_t tree_size,
                                InclusionProof* proof) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  const auto src = impl_->Source();
  PORTCULLIS_RETURN_IF_ERROR(CheckSize(tree_size, impl_->frontier.size()));
  lock.unlock();
  return internal::MakeInclusionProof(src, leaf_index, tree_size, proof);
}

Status AuditLog::ProveConsistency(std::uint64_t first_size, std::uint64_t second_size,
                                  ConsistencyProof* proof) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  const auto src = impl_->Source();
  PORTCULLIS_RETURN_IF_ERROR(CheckSize(second_size, impl_->frontier.size()));
  lock.unlock();
  return internal::MakeConsistencyProof(src, first_size, second_size, proof);
}

// ---------------------------------------------------------------------------------------------
// Reader.

struct LogReader::Impl {
  std::string events_path, tree_path;
  Fd events, tree;
  FrameScan scan;
  std::uint64_t size = 0;
  std::uint64_t tree_nodes = 0;
  std::vector<SignedTreeHead> heads;
  internal::TreeFileSource Source() const {
    return internal::TreeFileSource(tree.get(), tree_path, tree_nodes);
  }
};

LogReader::LogReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LogReader::~LogReader() = default;

Status LogReader::Open(const std::string& dir, std::unique_ptr<LogReader>* reader) {
  auto impl = std::make_unique<Impl>();
  impl->events_path = Join(dir, internal::kEventsFile);
  impl->tree_path = Join(dir, internal::kTreeFile);
  const std::string sth_path = Join(dir, internal::kSthFile);
  std::string contents;
  PORTCULLIS_RETURN_IF_ERROR(internal::ReadWholeFile(sth_path, &contents));
  FrameScan sth_scan;
  PORTCULLIS_RETURN_IF_ERROR(ReadTreeHeads(sth_path, contents, &sth_scan, &impl->heads));

  PORTCULLIS_RETURN_IF_ERROR(internal::ReadWholeFile(impl->events_path, &contents));
  PORTCULLIS_RETURN_IF_ERROR(
      internal::ScanFrames(contents, internal::kEventsMagic, internal::kMaxLeafBytes, &impl->scan)
          .WithContext(impl->events_path));
  if (impl->scan.tail == TailState::kCorrupt) {
    return Status::Corruption(impl->events_path + ": " + impl->scan.problem);
  }
  impl->events = Fd(::open(impl->events_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (impl->events.get() < 0) return internal::ErrnoStatus(impl->events_path, "open", errno);
  impl->tree = Fd(::open(impl->tree_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (impl->tree.get() < 0) return internal::ErrnoStatus(impl->tree_path, "open", errno);
  char magic[internal::kHeaderSize];
  struct stat st {};
  if (::fstat(impl->tree.get(), &st) != 0) {
    return internal::ErrnoStatus(impl->tree_path, "stat", errno);
  }
  if (static_cast<std::uint64_t>(st.st_size) < internal::kHeaderSize ||
      !internal::PReadAll(impl->tree.get(), impl->tree_path, magic, sizeof(magic), 0).ok() ||
      std::string_view(magic, sizeof(magic)) != internal::kTreeMagic) {
    return Status::Corruption(impl->tree_path + ": bad file header");
  }
  impl->tree_nodes =
      (static_cast<std::uint64_t>(st.st_size) - internal::kHeaderSize) / sizeof(Hash);
  impl->size = std::min<std::uint64_t>(impl->scan.offsets.size(),
                                       internal::LeavesCoveredBy(impl->tree_nodes));
  *reader = std::unique_ptr<LogReader>(new LogReader(std::move(impl)));
  return Status::Ok();
}

std::uint64_t LogReader::size() const { return impl_->size; }

const std::vector<SignedTreeHead>& LogReader::tree_heads() const { return impl_->heads; }

Status LogReader::Leaf(std::uint64_t index, std::string* leaf) const {
  if (index >= impl_->scan.offsets.size()) {
    return Status::InvalidArgument("no leaf " + std::to_string(index) + " in the log");
  }
  leaf->assign(impl_->scan.lengths[index], '\0');
  return internal::PReadAll(impl_->events.get(), impl_->events_path, leaf->data(), leaf->size(),
                            impl_->scan.offsets[index] + internal::kFrameHeader);
}

Status LogReader::RootAt(std::uint64_t tree_size, Hash* root) const {
  PORTCULLIS_RETURN_IF_ERROR(CheckSize(tree_size, impl_->size));
  return internal::RootAt(impl_->Source(), tree_size, root);
}

Status LogReader::ProveInclusion(std::uint64_t leaf_index, std::uint64_t tree_size,
                                 InclusionProof* proof) const {
  PORTCULLIS_RETURN_IF_ERROR(CheckSize(tree_size, impl_->size));
  return internal::MakeInclusionProof(impl_->Source(), leaf_index, tree_size, proof);
}

Status LogReader::ProveConsistency(std::uint64_t first_size, std::uint64_t second_size,
                                   ConsistencyProof* proof) const {
  PORTCULLIS_RETURN_IF_ERROR(CheckSize(second_size, impl_->size));
  return internal::MakeConsistencyProof(impl_->Source(), first_size, second_size, proof);
}

Status LogReader::FindRecord(const IdKey& id_key, std::string_view record_id,
                             std::vector<std::uint64_t>* indices) const {
  const Hash ref = RecordRef(id_key, record_id);
  indices->clear();
  std::string leaf;
  LeafRecord record;
  for (std::uint64_t i = 0; i < impl_->scan.offsets.size(); ++i) {
    PORTCULLIS_RETURN_IF_ERROR(Leaf(i, &leaf));
    PORTCULLIS_RETURN_IF_ERROR(DecodeLeaf(leaf, &record).WithContext("leaf " + std::to_string(i)));
    if (record.has_record && record.record_ref == ref) indices->push_back(i);
  }
  return Status::Ok();
}

}  // namespace portcullis::audit
