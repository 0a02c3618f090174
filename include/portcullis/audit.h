// The audit log: every access to the vault (and, later, every service decision) is appended to a
// tamper-evident Merkle-tree log in the manner of RFC 9162 (Certificate Transparency v2), with
// signed tree heads (Ed25519), inclusion proofs and consistency proofs that anyone holding the
// public key can check offline. Leaves hold no personal data in the clear.
#pragma once

#include <cstdint>
#include <string>

#include "portcullis/status.h"

namespace portcullis::audit {

// One access, as the caller states it. The log never stores record_id in the clear: it keeps a
// keyed hash (HMAC under the log's own key) so an auditor with the key can still ask
// "who touched record X?", while a stolen copy of the log names no one.
struct AuditEvent {
  std::int64_t time_micros = 0;  // from Env::NowMicros() of the caller
  std::string principal;         // who ("vendor:acme-alpr", "officer:1234")
  std::string role;              // in what role ("vendor", "officer", "auditor", ...)
  std::string purpose;           // the stated purpose, verbatim
  std::string action;            // "vault.put", "vault.get", "vault.purge", ...
  std::string record_id;         // the record touched; "" for actions on no single record
  std::string result;            // "ok", "denied", "not_found", "error:<code>"
};

// Where events go. The vault takes one of these, so nothing can reach a record without a line
// in the log; the audit log implements it, tests use an in-memory one.
class AuditSink {
 public:
  virtual ~AuditSink() = default;
  // Durable when it returns OK: an event acknowledged here survives a crash.
  virtual Status Append(const AuditEvent& event) = 0;
};

}  // namespace portcullis::audit
