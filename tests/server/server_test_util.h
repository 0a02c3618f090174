// Shared helpers for HTTP-level tests of the service (any helper's tests/server/*_test.cc may use
// them): certificates generated with the OpenSSL API, a small HTTPS client on raw OpenSSL (so a
// test controls every byte and every pause), fakes of the access store and the audit log, and a
// way to run the real `portcullis serve` on a free port.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "portcullis/access_store.h"
#include "portcullis/audit.h"

namespace portcullis::testing {

// ---- Certificates
// --------------------------------------------------------------------------------
struct CertFiles {
  std::string cert;  // PEM
  std::string key;   // PEM (unencrypted)
};
// A self-signed certificate for "CN=<cn>" with subjectAltName IP:127.0.0.1, DNS:localhost; also
// usable as a CA (basicConstraints CA:TRUE) to sign client certificates.
bool MakeSelfSigned(const std::string& dir, const std::string& name, const std::string& cn,
                    CertFiles* out);
// A client certificate for "CN=<cn>" signed by ca.
bool MakeSignedBy(const CertFiles& ca, const std::string& dir, const std::string& name,
                  const std::string& cn, CertFiles* out);
// The same, valid from now + not_before_s until now + not_after_s (seconds; negative: in the
// past), e.g. an expired device certificate: (-7200, -3600).
bool MakeSignedByValid(const CertFiles& ca, const std::string& dir, const std::string& name,
                       const std::string& cn, long not_before_s, long not_after_s,  // NOLINT
                       CertFiles* out);

// ---- An HTTPS client
// ------------------------------------------------------------------------------
struct HttpResponse {
  int status = 0;                              // 0: no response (connection closed, TLS failure)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  [[nodiscard]] nlohmann::json Json() const;  // null when the body is not JSON
  [[nodiscard]] std::string ErrorCode() const;
};

struct ClientOptions {
  const CertFiles* client_cert = nullptr;  // for mutual TLS
  double timeout_s = 10;                   // per read/write
};

// One TLS connection (keep-alive: several requests in turn).
class HttpsConnection {
 public:
  HttpsConnection(std::uint16_t port, const ClientOptions& options = {});
  ~HttpsConnection();
  HttpsConnection(const HttpsConnection&) = delete;
  HttpsConnection& operator=(const HttpsConnection&) = delete;

  [[nodiscard]] bool ok() const { return ssl_ != nullptr; }
  // Raw bytes; false when the write failed.
  bool SendRaw(const std::string& bytes);
  // Reads one response (headers + Content-Length body). status 0 on EOF/timeout.
  HttpResponse ReadResponse();
  // True when the server closed the connection (EOF or reset) within timeout_s.
  bool WaitClosed(double timeout_s);

  HttpResponse Request(const std::string& method, const std::string& target,
                       const std::map<std::string, std::string>& headers = {},
                       const std::string& body = "");

 private:
  int fd_ = -1;
  void* ctx_ = nullptr;  // SSL_CTX*
  void* ssl_ = nullptr;  // SSL*
  std::string pending_;
  double timeout_s_ = 10;
  bool ReadMore();
};

// One request on a fresh connection.
HttpResponse HttpsRequest(std::uint16_t port, const std::string& method, const std::string& target,
                          const std::map<std::string, std::string>& headers = {},
                          const std::string& body = "", const ClientOptions& options = {});
// {"Authorization": "Bearer <token>", ...extra}
std::map<std::string, std::string> Bearer(const std::string& token,
                                          std::map<std::string, std::string> extra = {});
// A plain TCP connection to 127.0.0.1:port (-1 on failure), for plain-HTTP and slowloris tests.
int ConnectTcp(std::uint16_t port);

// ---- Fakes
// ----------------------------------------------------------------------------------------- An
// access store with fixed tokens; tickets by id. Thread-safe.
class FakeAccessStore final : public policy::AccessStore {
 public:
  void AddToken(const std::string& token, const policy::Principal& principal,
                policy::AuthOutcome outcome = policy::AuthOutcome::kOk);
  void AddTicket(const std::string& id, const std::string& vendor, const std::string& lane,
                 std::uint32_t uses);
  bool fail_ = false;  // every call returns IOError

  Status CreatePrincipal(const policy::NewPrincipal&, std::string*) override;
  Status RotateToken(const std::string&, std::int64_t, std::string*) override;
  Status RevokePrincipal(const std::string&) override;
  Status ListPrincipals(std::vector<policy::PrincipalInfo>*) override;
  Status Authenticate(std::string_view token, policy::AuthOutcome* outcome,
                      policy::Principal* principal) override;
  Status GrantTicket(const std::string&, const policy::NewTicket&, policy::TicketInfo*) override;
  Status UseTicket(const std::string& ticket_id, const std::string& vendor, const std::string& lane,
                   policy::TicketOutcome* outcome) override;
  Status ListTickets(std::vector<policy::TicketInfo>*) override;
  Status RequestExport(const std::string&, const policy::NewExport&, policy::ExportInfo*) override;
  Status ApproveExport(const std::string&, const std::string&, std::int64_t,
                       policy::ApproveOutcome*) override;
  Status RecordDownload(const std::string&, const std::string&,
                        const std::vector<policy::ExportedFile>&,
                        policy::DownloadOutcome*) override;
  Status GetExport(const std::string&, policy::ExportInfo*) override;
  Status ListExports(std::vector<policy::ExportInfo>*) override;
  Status FindExportedFile(const std::string&, std::vector<std::string>*) override;
  Status ClaimJobRun(const std::string&, std::int64_t, const std::string&, bool*) override;

 private:
  struct TokenEntry {
    policy::Principal principal;
    policy::AuthOutcome outcome;
  };
  struct Ticket {
    std::string vendor, lane;
    std::uint32_t uses_left;
  };
  std::mutex mutex_;
  std::map<std::string, TokenEntry> tokens_;
  std::map<std::string, Ticket> tickets_;
};

// A TransparencyLog that keeps events in memory (no tree). Thread-safe.
class FakeAuditLog final : public audit::TransparencyLog {
 public:
  Status Append(const audit::AuditEvent& event) override;
  [[nodiscard]] audit::PublicKey public_key() const override { return {}; }
  Status Size(std::uint64_t* tree_size) const override;
  Status LatestTreeHead(audit::SignedTreeHead* sth) const override;
  Status PublishTreeHead(audit::SignedTreeHead* sth) override;
  Status ProveInclusion(std::uint64_t, std::uint64_t, audit::InclusionProof*) const override;
  Status ProveConsistency(std::uint64_t, std::uint64_t, audit::ConsistencyProof*) const override;
  Status ReadLeaves(std::uint64_t, std::uint64_t, std::vector<std::string>*) const override;
  Status TreeHeads(std::vector<audit::SignedTreeHead>*) const override;

  std::vector<audit::AuditEvent> events() const;
  // Events whose action is `action` (e.g. "http.plate.read"), in order.
  std::vector<audit::AuditEvent> WithAction(const std::string& action) const;
  // The last event with this result ("denied:body_too_large"); false when none.
  bool Find(const std::string& result, audit::AuditEvent* event) const;
  void set_fail(bool fail);

 private:
  mutable std::mutex mutex_;
  std::vector<audit::AuditEvent> events_;
  bool fail_ = false;
};

// ---- The real binary
// -------------------------------------------------------------------------------- Runs `portcullis
// serve --config FILE`; reads stderr until the "listening" log line, which gives the port.
// Kill()/Terminate() stop it; the destructor kills it if still running.
class ServeProcess {
 public:
  explicit ServeProcess(const std::string& config_path, double start_timeout_s = 60);
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  [[nodiscard]] bool started() const { return port_ != 0; }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // SIGTERM, then waits up to timeout_s for the exit; returns the exit status (-1 on timeout).
  int Terminate(double timeout_s = 30);
  // Everything it wrote on stderr so far.
  std::string Log();

 private:
  pid_t pid_ = -1;
  int err_fd_ = -1;
  std::mutex mutex_;
  std::string log_;  // under mutex_
  std::uint16_t port_ = 0;
  std::thread pump_;  // reads stderr until EOF, so the child never blocks on a full pipe
};

}  // namespace portcullis::testing
