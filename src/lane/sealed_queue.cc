// The sealed offline queue: append-only segment files of checksummed records, an append-only ack
// log and a small state file holding the last acknowledged sequence. The on-disk format and the
// recovery rules are documented byte by byte in docs/lane-queue.md; the comments here say why.
#include "sealed_queue.h"

#include <sodium.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>

namespace portcullis::lane {
namespace {

constexpr std::string_view kRecordMagic = "PCQ1";
constexpr std::string_view kStateMagic = "PCQS";
constexpr std::string_view kAckMagic = "PCQA";
constexpr std::uint32_t kStateVersion = 1;
constexpr std::size_t kIdBytes = 32;
constexpr std::size_t kCheckBytes = 16;  // BLAKE2b-128 (crypto_generichash_BYTES_MIN)
// magic(4) length(4) sequence(8) event id(32) | header check(16) | payload | record check(16)
constexpr std::size_t kHeaderFields = 4 + 4 + 8 + kIdBytes;
constexpr std::size_t kHeaderBytes = kHeaderFields + kCheckBytes;
constexpr std::size_t kOverheadBytes = kHeaderBytes + kCheckBytes;
// A sealed event is a few frames and crops; a larger length is a corrupt header, not a record.
constexpr std::uint32_t kMaxPayloadBytes = std::uint32_t{1} << 30;
// The state file and each record of the ack log: magic(4) version(4) sequence(8) check(16).
constexpr std::size_t kStateBytes = 4 + 4 + 8 + kCheckBytes;
constexpr std::string_view kSegmentSuffix = ".pcq";
constexpr std::size_t kSegmentDigits = 20;

void PutU32(std::uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xffU));
}
void PutU64(std::uint64_t v, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xffU));
}
std::uint64_t GetLE(const char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return v;
}

std::array<unsigned char, kCheckBytes> Check(const char* data, std::size_t n) {
  std::array<unsigned char, kCheckBytes> out{};
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(data), n,
                     nullptr, 0);
  return out;
}
void PutCheck(std::string* out, std::size_t from) {
  const auto c = Check(out->data() + from, out->size() - from);
  out->append(reinterpret_cast<const char*>(c.data()), c.size());
}
bool CheckMatches(const char* data, std::size_t n, const char* expected) {
  const auto c = Check(data, n);
  return sodium_memcmp(c.data(), expected, c.size()) == 0;
}

bool ValidEventId(std::string_view id) {
  if (id.size() != kIdBytes) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string SegmentName(std::uint64_t number) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(number));
  return std::string(buf) + std::string(kSegmentSuffix);
}

bool ParseSegmentName(const std::string& name, std::uint64_t* number) {
  if (name.size() != kSegmentDigits + kSegmentSuffix.size() ||
      name.compare(kSegmentDigits, std::string::npos, kSegmentSuffix) != 0) {
    return false;
  }
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < kSegmentDigits; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return false;
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  *number = v;
  return true;
}

// What a header promises, once its own checksum has been verified.
struct Header {
  std::uint32_t length = 0;
  std::uint64_t sequence = 0;
  std::string_view event_id;
};

bool ParseHeader(std::string_view bytes, Header* h) {
  if (bytes.size() < kHeaderBytes || bytes.substr(0, 4) != kRecordMagic) return false;
  if (!CheckMatches(bytes.data(), kHeaderFields, bytes.data() + kHeaderFields)) return false;
  h->length = static_cast<std::uint32_t>(GetLE(bytes.data() + 4, 4));
  h->sequence = GetLE(bytes.data() + 8, 8);
  h->event_id = bytes.substr(16, kIdBytes);
  return h->length <= kMaxPayloadBytes;
}

// A whole record at the start of bytes: header, payload and record checksum all verified.
bool ParseRecord(std::string_view bytes, Header* h) {
  if (!ParseHeader(bytes, h)) return false;
  const std::size_t body = kHeaderBytes + h->length;
  if (bytes.size() < body + kCheckBytes) return false;
  return CheckMatches(bytes.data(), body, bytes.data() + body);
}

std::string EncodeAcked(std::string_view magic, std::uint64_t sequence) {
  std::string out(magic);
  PutU32(kStateVersion, &out);
  PutU64(sequence, &out);
  PutCheck(&out, 0);
  return out;
}

bool DecodeAcked(std::string_view bytes, std::string_view magic, std::uint64_t* sequence) {
  if (bytes.size() < kStateBytes || bytes.substr(0, 4) != magic ||
      GetLE(bytes.data() + 4, 4) != kStateVersion ||
      !CheckMatches(bytes.data(), kStateBytes - kCheckBytes,
                    bytes.data() + kStateBytes - kCheckBytes)) {
    return false;
  }
  *sequence = GetLE(bytes.data() + 8, 8);
  return true;
}

struct Entry {
  std::uint64_t segment = 0;  // segment number
  std::uint64_t offset = 0;
  std::uint32_t length = 0;  // payload bytes
  std::uint64_t sequence = 0;
  std::array<char, kIdBytes> event_id{};
};

struct Segment {
  std::uint64_t number = 0;
  std::uint64_t size = 0;  // valid bytes (a failed append's partial record is not counted)
};

class SegmentedQueue final : public SealedQueue {
 public:
  SegmentedQueue(DataDir* dir, SealedQueueOptions options)
      : dir_(dir), options_(std::move(options)) {}

  Status Recover();

  Status Append(const SealedEvent& event) override;
  Status Front(SealedEvent* event) override;
  Status PopFront(const std::string& event_id) override;
  [[nodiscard]] SealedQueueStats stats() const override;

 private:
  [[nodiscard]] std::string PathOf(const std::string& leaf) const {
    return options_.subdir + "/" + leaf;
  }
  [[nodiscard]] std::string SegmentPath(std::uint64_t number) const {
    return PathOf(SegmentName(number));
  }
  Status RecoverSegment(std::uint64_t number, bool last, std::uint64_t* prev_sequence);
  Status DiscardFailedTail();
  Status RemoveConsumedSegments();
  Status RecoverAcks();
  Status WriteAck(std::uint64_t acked);
  void CompactAcks();

  DataDir* dir_;
  const SealedQueueOptions options_;
  mutable std::mutex mu_;
  std::deque<Segment> segments_;        // oldest first; the last one is appended to
  std::deque<Entry> entries_;           // unacknowledged records, oldest first
  std::unique_ptr<AppendFile> active_;  // open on segments_.back(), or null
  bool dirty_tail_ = false;  // a failed append may have left bytes past segments_.back().size
  std::uint64_t next_segment_ = 1;
  std::uint64_t last_sequence_ = 0;  // the highest sequence appended or acknowledged
  std::uint64_t acked_sequence_ = 0;
  std::uint64_t bytes_ = 0;
  std::uint64_t dropped_torn_ = 0;
  std::uint64_t refused_full_ = 0;
  std::uint64_t failed_writes_ = 0;
  std::unique_ptr<AppendFile> acks_;  // the ack log, opened at the first PopFront
  std::uint64_t acks_size_ = 0;       // valid bytes in the ack log
  bool acks_dirty_ = false;           // a failed ack append may have left bytes past acks_size_
  std::unique_ptr<RandomAccessFile> reader_;  // on reader_segment_, for Front
  std::uint64_t reader_segment_ = 0;
  std::string frame_;  // reused encoding buffer
};

// One PopFront = one 32-byte record appended to the ack log and fdatasync'd: a single flush,
// where an atomic state-file replace costs two and a rename.
Status SegmentedQueue::WriteAck(std::uint64_t acked) {
  const std::string ack_path = PathOf("acks");
  if (acks_dirty_) {
    acks_.reset();
    PORTCULLIS_RETURN_IF_ERROR(dir_->Truncate(ack_path, acks_size_));
    acks_dirty_ = false;
  }
  if (acks_ == nullptr) {
    PORTCULLIS_RETURN_IF_ERROR(dir_->NewAppendFile(ack_path, &acks_));
    acks_size_ = acks_->size();
  }
  Status s = acks_->Append(EncodeAcked(kAckMagic, acked));
  if (s.ok()) s = acks_->Sync();
  if (!s.ok()) {
    acks_dirty_ = true;  // cut before the next ack; Open drops it as a torn tail meanwhile
    return s;
  }
  acks_size_ += kStateBytes;
  return Status::Ok();
}

// Folds the ack log into the state file once it has grown: state first (atomic), then the log is
// emptied. A crash in between leaves both saying the same thing, and Open takes the larger.
void SegmentedQueue::CompactAcks() {
  if (acks_size_ < options_.acks_compact_bytes) return;
  if (!dir_->WriteFileAtomic(PathOf("state"), EncodeAcked(kStateMagic, acked_sequence_)).ok()) {
    return;  // the log still holds every ack; try again at a later pop
  }
  acks_.reset();
  if (dir_->Truncate(PathOf("acks"), 0).ok()) acks_size_ = 0;
}

Status SegmentedQueue::RecoverAcks() {
  std::string log;
  const Status read = dir_->ReadFile(PathOf("acks"), std::size_t{1} << 30, &log);
  if (read.code() == Status::Code::kNotFound) return Status::Ok();
  PORTCULLIS_RETURN_IF_ERROR(read);
  std::uint64_t offset = 0;
  std::uint64_t prev = 0;
  for (; offset + kStateBytes <= log.size(); offset += kStateBytes) {
    std::uint64_t sequence = 0;
    if (!DecodeAcked(std::string_view(log).substr(offset), kAckMagic, &sequence)) break;
    if (sequence <= prev) return Status::Corruption("ack log sequence does not increase");
    prev = sequence;
  }
  if (offset < log.size()) {
    // Like a segment's tail: a bad last record is a torn write (the ack never returned OK, so
    // the event is sent again, which ids make harmless); a bad record before a good one is not.
    for (std::uint64_t later = offset + kStateBytes; later + kStateBytes <= log.size();
         later += kStateBytes) {
      std::uint64_t sequence = 0;
      if (DecodeAcked(std::string_view(log).substr(later), kAckMagic, &sequence)) {
        return Status::Corruption("ack log damaged at byte " + std::to_string(offset));
      }
    }
    PORTCULLIS_RETURN_IF_ERROR(dir_->Truncate(PathOf("acks"), offset));
  }
  acks_size_ = offset;
  acked_sequence_ = std::max(acked_sequence_, prev);
  return Status::Ok();
}

Status SegmentedQueue::Recover() {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  PORTCULLIS_RETURN_IF_ERROR(dir_->CreateSubdir(options_.subdir));
  std::vector<std::string> names;
  PORTCULLIS_RETURN_IF_ERROR(dir_->List(options_.subdir, &names));
  std::vector<std::uint64_t> numbers;
  for (const std::string& name : names) {
    std::uint64_t number = 0;
    if (ParseSegmentName(name, &number)) {
      numbers.push_back(number);
    } else if (name.rfind(".tmp-", 0) == 0) {
      // A state write that a crash interrupted before its rename: never the live state.
      PORTCULLIS_RETURN_IF_ERROR(dir_->Remove(PathOf(name)));
    }
  }
  std::string state;
  Status read = dir_->ReadFile(PathOf("state"), 4096, &state);
  if (read.ok()) {
    // Written atomically, so any defect is damage, not a crash: refuse rather than guess.
    if (state.size() != kStateBytes || !DecodeAcked(state, kStateMagic, &acked_sequence_)) {
      return Status::Corruption("queue state file is damaged");
    }
  } else if (read.code() != Status::Code::kNotFound) {
    return read;
  }
  PORTCULLIS_RETURN_IF_ERROR(RecoverAcks());
  last_sequence_ = acked_sequence_;
  std::uint64_t prev_sequence = 0;
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    PORTCULLIS_RETURN_IF_ERROR(RecoverSegment(numbers[i], i + 1 == numbers.size(), &prev_sequence));
    next_segment_ = numbers[i] + 1;
  }
  last_sequence_ = std::max(last_sequence_, prev_sequence);
  PORTCULLIS_RETURN_IF_ERROR(RemoveConsumedSegments());
  if (!segments_.empty()) {
    PORTCULLIS_RETURN_IF_ERROR(dir_->NewAppendFile(SegmentPath(segments_.back().number), &active_));
  }
  return Status::Ok();
}

Status SegmentedQueue::RecoverSegment(std::uint64_t number, bool last,
                                      std::uint64_t* prev_sequence) {
  const std::string path = SegmentPath(number);
  std::unique_ptr<RandomAccessFile> file;
  PORTCULLIS_RETURN_IF_ERROR(dir_->NewRandomAccessFile(path, &file));
  const std::uint64_t size = file->size();
  std::uint64_t offset = 0;
  std::string bytes;
  while (offset < size) {
    Header h;
    bool valid = false;
    PORTCULLIS_RETURN_IF_ERROR(file->Read(offset, kHeaderBytes, &bytes));
    if (ParseHeader(bytes, &h) && offset + kOverheadBytes + h.length <= size) {
      PORTCULLIS_RETURN_IF_ERROR(file->Read(offset, kOverheadBytes + h.length, &bytes));
      valid = ParseRecord(bytes, &h) && ValidEventId(h.event_id);
    }
    if (!valid) {
      const std::string where = path + " at byte " + std::to_string(offset);
      if (!last) return Status::Corruption("bad record in " + where);
      // The last segment may end in the one record a crash interrupted. It is a torn tail only
      // if no valid record follows it; a valid record after a bad one is damage in the middle.
      PORTCULLIS_RETURN_IF_ERROR(
          file->Read(offset, static_cast<std::size_t>(size - offset), &bytes));
      const std::string_view rest = bytes;
      for (std::size_t p = rest.find(kRecordMagic, 1); p != std::string_view::npos;
           p = rest.find(kRecordMagic, p + 1)) {
        Header later;
        if (ParseRecord(rest.substr(p), &later)) {
          return Status::Corruption("bad record followed by valid ones in " + where);
        }
      }
      PORTCULLIS_RETURN_IF_ERROR(dir_->Truncate(path, offset));
      ++dropped_torn_;
      break;
    }
    if (h.sequence <= *prev_sequence) {
      return Status::Corruption("sequence does not increase in " + path + " at byte " +
                                std::to_string(offset));
    }
    *prev_sequence = h.sequence;
    if (h.sequence > acked_sequence_) {
      Entry e;
      e.segment = number;
      e.offset = offset;
      e.length = h.length;
      e.sequence = h.sequence;
      std::memcpy(e.event_id.data(), h.event_id.data(), kIdBytes);
      entries_.push_back(e);
    }
    offset += kOverheadBytes + h.length;
  }
  segments_.push_back({number, offset});
  bytes_ += offset;
  return Status::Ok();
}

// Segments holding no unacknowledged record are deleted, the active one included (the next
// append starts a new segment), so an empty queue holds no event bytes at all.
Status SegmentedQueue::RemoveConsumedSegments() {
  while (!segments_.empty() &&
         (entries_.empty() || entries_.front().segment != segments_.front().number)) {
    const Segment s = segments_.front();
    if (segments_.size() == 1) {
      active_.reset();
      dirty_tail_ = false;
    }
    if (reader_ != nullptr && reader_segment_ == s.number) reader_.reset();
    Status removed = dir_->Remove(SegmentPath(s.number));
    if (!removed.ok() && removed.code() != Status::Code::kNotFound) return removed;
    segments_.pop_front();
    bytes_ -= s.size;
  }
  return Status::Ok();
}

// Cuts a failed append's partial record off the active segment, so the next record follows the
// last good one (a crash before this succeeds leaves a torn tail that Open drops).
Status SegmentedQueue::DiscardFailedTail() {
  if (!dirty_tail_) return Status::Ok();
  const Segment& s = segments_.back();
  // Until the truncation succeeds the segment stays active and dirty: rolling to a new segment
  // would leave the garbage in the middle of the queue, where Open rightly calls it Corruption.
  PORTCULLIS_RETURN_IF_ERROR(dir_->Truncate(SegmentPath(s.number), s.size));
  dirty_tail_ = false;
  active_.reset();  // its idea of the file size is stale now
  return dir_->NewAppendFile(SegmentPath(s.number), &active_);
}

Status SegmentedQueue::Append(const SealedEvent& event) {
  if (!ValidEventId(event.event_id)) {
    return Status::InvalidArgument("queue: event id is not 32 lower-case hex digits");
  }
  if (event.sealed.size() > kMaxPayloadBytes) {
    return Status::InvalidArgument("queue: sealed event larger than 1 GiB");
  }
  const std::lock_guard<std::mutex> lock(mu_);
  if (event.sequence <= last_sequence_) {
    return Status::InvalidArgument("queue: sequence " + std::to_string(event.sequence) +
                                   " is not greater than " + std::to_string(last_sequence_));
  }
  const std::uint64_t record = kOverheadBytes + event.sealed.size();
  if (entries_.size() >= options_.max_events || bytes_ + record > options_.max_bytes) {
    ++refused_full_;
    return Status::ResourceExhausted("queue full (" + std::to_string(entries_.size()) +
                                     " events, " + std::to_string(bytes_) + " bytes)");
  }
  Status s = DiscardFailedTail();
  if (!s.ok()) {
    ++failed_writes_;
    return s;
  }
  if (active_ == nullptr || segments_.back().size >= options_.segment_bytes) {
    const std::uint64_t number = next_segment_;
    std::unique_ptr<AppendFile> file;
    s = dir_->NewAppendFile(SegmentPath(number), &file);
    if (!s.ok()) {
      ++failed_writes_;
      return s;
    }
    ++next_segment_;
    segments_.push_back({number, file->size()});
    bytes_ += file->size();
    active_ = std::move(file);
  }

  frame_.clear();
  frame_.reserve(record);
  frame_.append(kRecordMagic);
  PutU32(static_cast<std::uint32_t>(event.sealed.size()), &frame_);
  PutU64(event.sequence, &frame_);
  frame_.append(event.event_id);
  PutCheck(&frame_, 0);
  frame_.append(event.sealed);
  PutCheck(&frame_, 0);

  Segment& seg = segments_.back();
  s = active_->Append(frame_);
  if (s.ok()) s = active_->Sync();
  if (!s.ok()) {
    // Not acknowledged: cut the partial record off now if the disk lets us, else before the next
    // append (Open drops it after a crash). The queue stays as it was before this call.
    ++failed_writes_;
    dirty_tail_ = true;
    const Status discarded = DiscardFailedTail();
    (void)discarded;  // the append's own error is the one to report
    return s;
  }
  Entry e;
  e.segment = seg.number;
  e.offset = seg.size;
  e.length = static_cast<std::uint32_t>(event.sealed.size());
  e.sequence = event.sequence;
  std::memcpy(e.event_id.data(), event.event_id.data(), kIdBytes);
  entries_.push_back(e);
  seg.size += record;
  bytes_ += record;
  last_sequence_ = event.sequence;
  return Status::Ok();
}

Status SegmentedQueue::Front(SealedEvent* event) {
  const std::lock_guard<std::mutex> lock(mu_);
  if (entries_.empty()) return Status::NotFound("queue is empty");
  const Entry& e = entries_.front();
  if (reader_ == nullptr || reader_segment_ != e.segment) {
    reader_.reset();
    PORTCULLIS_RETURN_IF_ERROR(dir_->NewRandomAccessFile(SegmentPath(e.segment), &reader_));
    reader_segment_ = e.segment;
  }
  std::string bytes;
  PORTCULLIS_RETURN_IF_ERROR(reader_->Read(e.offset, kOverheadBytes + e.length, &bytes));
  if (bytes.size() < kOverheadBytes + e.length) {
    // A reader that snapshots the file (a DataDir without positional reads) predates the record.
    PORTCULLIS_RETURN_IF_ERROR(dir_->NewRandomAccessFile(SegmentPath(e.segment), &reader_));
    PORTCULLIS_RETURN_IF_ERROR(reader_->Read(e.offset, kOverheadBytes + e.length, &bytes));
  }
  Header h;
  // Verified again on every read: the disk may have changed since Open checked it.
  if (!ParseRecord(bytes, &h) || h.sequence != e.sequence || h.length != e.length ||
      h.event_id != std::string_view(e.event_id.data(), kIdBytes)) {
    return Status::Corruption("queue record " + std::to_string(e.sequence) + " is damaged");
  }
  event->event_id.assign(e.event_id.data(), kIdBytes);
  event->sequence = e.sequence;
  event->sealed.assign(bytes, kHeaderBytes, e.length);
  return Status::Ok();
}

Status SegmentedQueue::PopFront(const std::string& event_id) {
  const std::lock_guard<std::mutex> lock(mu_);
  if (entries_.empty()) return Status::NotFound("queue is empty");
  const Entry& e = entries_.front();
  if (event_id != std::string_view(e.event_id.data(), kIdBytes)) {
    return Status::InvalidArgument("queue: " + event_id + " is not the front event");
  }
  // Durable before it is forgotten in memory: a failed ack write leaves the event queued.
  PORTCULLIS_RETURN_IF_ERROR(WriteAck(e.sequence));
  acked_sequence_ = e.sequence;
  entries_.pop_front();
  CompactAcks();
  // The acknowledgement is durable; a segment that cannot be removed now is removed by the next
  // pop or the next Open (its records are all at or below the acknowledged sequence).
  const Status removed = RemoveConsumedSegments();
  (void)removed;
  return Status::Ok();
}

SealedQueueStats SegmentedQueue::stats() const {
  const std::lock_guard<std::mutex> lock(mu_);
  SealedQueueStats s;
  s.events = entries_.size();
  s.bytes = bytes_;
  s.oldest_sequence = entries_.empty() ? 0 : entries_.front().sequence;
  s.dropped_torn = dropped_torn_;
  s.refused_full = refused_full_;
  s.failed_writes = failed_writes_;
  return s;
}

}  // namespace

Status SealedQueue::Open(DataDir* dir, const SealedQueueOptions& options,
                         std::unique_ptr<SealedQueue>* queue) {
  if (dir == nullptr) return Status::InvalidArgument("queue: no data dir");
  if (options.max_events == 0 || options.max_bytes == 0 || options.segment_bytes == 0) {
    return Status::InvalidArgument("queue: bounds must be positive");
  }
  auto q = std::make_unique<SegmentedQueue>(dir, options);
  PORTCULLIS_RETURN_IF_ERROR(q->Recover().WithContext("queue"));
  *queue = std::move(q);
  return Status::Ok();
}

}  // namespace portcullis::lane
