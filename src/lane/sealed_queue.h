// The offline buffer: a bounded, durable, ordered queue of sealed events on the lane computer.
//
// When the link to the service is down the agent keeps working: each event is sealed
// (lane_event.h) and appended here; the uplink drains the queue in order when the link is back,
// and an event leaves the queue only when the service has acknowledged it. Records are framed
// with a length and a checksum and fsync'd before Append returns, so after a crash (power cut,
// SIGKILL mid-write) reopening the queue drops at most the one torn record at the tail and never
// returns a half-written one. Nothing in it is readable without the vault's ingest secret key.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "data_dir.h"
#include "portcullis/lane_event.h"
#include "portcullis/status.h"

namespace portcullis::lane {

struct SealedQueueOptions {
  std::string subdir = "queue";                      // inside the DataDir
  std::uint64_t max_bytes = std::uint64_t{2} << 30;  // bound on the queue's files on disk
  std::uint64_t max_events = 1'000'000;
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;  // roll to a new file past this
  // PopFront appends 32 bytes to an ack log; past this size the log is folded into the state file.
  std::uint64_t acks_compact_bytes = std::uint64_t{64} << 10;
};

struct SealedQueueStats {
  std::uint64_t events = 0;           // queued, not yet acknowledged (the backlog)
  std::uint64_t bytes = 0;            // on disk
  std::uint64_t oldest_sequence = 0;  // 0 when empty
  std::uint64_t dropped_torn = 0;     // torn tail records dropped when the queue was opened
  std::uint64_t refused_full = 0;     // appends refused because the bound was reached
  std::uint64_t failed_writes = 0;    // appends that failed on the disk (full: ENOSPC, or I/O)
};

// Thread-safe: the camera threads append while the uplink drains (one mutex; an Append holds it
// through its fsync). One process per queue directory.
class SealedQueue {
 public:
  // Opens (or creates) the queue in dir, recovering from a crash: a torn tail is truncated and
  // counted, a corrupt record elsewhere is Corruption (never silently skipped). dir not owned.
  static Status Open(DataDir* dir, const SealedQueueOptions& options,
                     std::unique_ptr<SealedQueue>* queue);
  virtual ~SealedQueue() = default;

  // Durable when OK. ResourceExhausted when the bound or the disk is full (the event is not
  // queued: the caller counts it lost and reports it); InvalidArgument when the sequence is not
  // greater than the last appended one.
  virtual Status Append(const SealedEvent& event) = 0;
  // The oldest unacknowledged event; NotFound when empty.
  virtual Status Front(SealedEvent* event) = 0;
  // Removes the front event after the service acknowledged it; InvalidArgument when event_id is
  // not the front's. Durable when OK (a restart never re-sends an acknowledged event, and a
  // re-send after a crash between ack and this call is harmless: ids are idempotent).
  virtual Status PopFront(const std::string& event_id) = 0;
  [[nodiscard]] virtual SealedQueueStats stats() const = 0;
};

}  // namespace portcullis::lane
