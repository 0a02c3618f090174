// Test helpers for the service over HTTPS (server_test_util.h).
#include "server_test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

namespace portcullis::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A client writing to a connection the server has closed (413, 408, shutdown) must see an error,
// not die of SIGPIPE: the tests exercise exactly those cases.
[[maybe_unused]] const bool kIgnoreSigpipe = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

bool WritePem(const std::string& path, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  const bool ok = cert != nullptr
                      ? PEM_write_X509(f, cert) == 1
                      : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(f);
  return ok;
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
  if (ext != nullptr) {
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
}

bool MakeCert(const std::string& dir, const std::string& name, const std::string& cn,
              const CertFiles* issuer, CertFiles* out, long not_before_s = -3600,
              long not_after_s = 7L * 24 * 3600) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) return false;
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  static long serial = 1000;
  ASN1_INTEGER_set(X509_get_serialNumber(cert), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(cert), not_after_s);
  X509_set_pubkey(cert, key);
  X509_NAME* subject = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer_cert = nullptr;
  EVP_PKEY* issuer_key = nullptr;
  bool ok = true;
  if (issuer != nullptr) {
    FILE* f = std::fopen(issuer->cert.c_str(), "r");
    if (f != nullptr) {
      issuer_cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
      std::fclose(f);
    }
    f = std::fopen(issuer->key.c_str(), "r");
    if (f != nullptr) {
      issuer_key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
      std::fclose(f);
    }
    ok = issuer_cert != nullptr && issuer_key != nullptr;
  }
  if (ok) {
    X509_set_issuer_name(cert,
                         issuer_cert != nullptr ? X509_get_subject_name(issuer_cert) : subject);
    X509* ext_issuer = issuer_cert != nullptr ? issuer_cert : cert;
    if (issuer == nullptr) {
      AddExtension(cert, ext_issuer, NID_basic_constraints, "critical,CA:TRUE");
      AddExtension(cert, ext_issuer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    } else {
      AddExtension(cert, ext_issuer, NID_basic_constraints, "critical,CA:FALSE");
      AddExtension(cert, ext_issuer, NID_ext_key_usage, "clientAuth");
    }
    AddExtension(cert, ext_issuer, NID_subject_key_identifier, "hash");
    ok = X509_sign(cert, issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0;
  }
  if (ok) {
    out->cert = dir + "/" + name + ".crt";
    out->key = dir + "/" + name + ".key";
    ok = WritePem(out->cert, cert, nullptr) && WritePem(out->key, nullptr, key);
  }
  X509_free(issuer_cert);
  EVP_PKEY_free(issuer_key);
  X509_free(cert);
  EVP_PKEY_free(key);
  return ok;
}

}  // namespace

bool MakeSelfSigned(const std::string& dir, const std::string& name, const std::string& cn,
                    CertFiles* out) {
  return MakeCert(dir, name, cn, nullptr, out);
}

bool MakeSignedBy(const CertFiles& ca, const std::string& dir, const std::string& name,
                  const std::string& cn, CertFiles* out) {
  return MakeCert(dir, name, cn, &ca, out);
}

bool MakeSignedByValid(const CertFiles& ca, const std::string& dir, const std::string& name,
                       const std::string& cn, long not_before_s, long not_after_s, CertFiles* out) {
  return MakeCert(dir, name, cn, &ca, out, not_before_s, not_after_s);
}

// ---- Client
// ----------------------------------------------------------------------------------------

nlohmann::json HttpResponse::Json() const { return nlohmann::json::parse(body, nullptr, false); }

std::string HttpResponse::ErrorCode() const {
  const nlohmann::json j = Json();
  if (j.is_object() && j.contains("error") && j["error"].is_object() &&
      j["error"].contains("code") && j["error"]["code"].is_string()) {
    return j["error"]["code"].get<std::string>();
  }
  return "";
}

int ConnectTcp(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

namespace {

// Waits until fd is readable/writable; false on timeout.
bool WaitFd(int fd, short events, double timeout_s) {
  pollfd p{fd, events, 0};
  const int ms = static_cast<int>(timeout_s * 1000);
  int r;
  do {
    r = ::poll(&p, 1, ms);
  } while (r < 0 && errno == EINTR);
  return r > 0;
}

}  // namespace

HttpsConnection::HttpsConnection(std::uint16_t port, const ClientOptions& options)
    : timeout_s_(options.timeout_s) {
  fd_ = ConnectTcp(port);
  if (fd_ < 0) return;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  ctx_ = ctx;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // tests trust the server they started
  if (options.client_cert != nullptr) {
    if (SSL_CTX_use_certificate_file(ctx, options.client_cert->cert.c_str(), SSL_FILETYPE_PEM) !=
            1 ||
        SSL_CTX_use_PrivateKey_file(ctx, options.client_cert->key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return;
    }
  }
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd_);
  struct timeval tv {};
  tv.tv_sec = static_cast<time_t>(timeout_s_);
  tv.tv_usec = static_cast<suseconds_t>((timeout_s_ - static_cast<double>(tv.tv_sec)) * 1e6);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (SSL_connect(ssl) != 1) {
    ERR_clear_error();
    SSL_free(ssl);
    return;
  }
  ssl_ = ssl;
}

HttpsConnection::~HttpsConnection() {
  if (ssl_ != nullptr) SSL_free(static_cast<SSL*>(ssl_));
  if (ctx_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
  if (fd_ >= 0) ::close(fd_);
}

bool HttpsConnection::SendRaw(const std::string& bytes) {
  if (ssl_ == nullptr) return false;
  std::size_t done = 0;
  while (done < bytes.size()) {
    const int n = SSL_write(static_cast<SSL*>(ssl_), bytes.data() + done,
                            static_cast<int>(std::min<std::size_t>(bytes.size() - done, 1 << 20)));
    if (n <= 0) {
      ERR_clear_error();
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool HttpsConnection::ReadMore() {
  if (ssl_ == nullptr) return false;
  char buffer[16384];
  const int n = SSL_read(static_cast<SSL*>(ssl_), buffer, sizeof buffer);
  if (n <= 0) {
    ERR_clear_error();
    return false;
  }
  pending_.append(buffer, static_cast<std::size_t>(n));
  return true;
}

HttpResponse HttpsConnection::ReadResponse() {
  HttpResponse response;
  std::size_t end;
  while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
    if (!ReadMore()) return response;
  }
  const std::string head = pending_.substr(0, end);
  pending_.erase(0, end + 4);
  std::size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12) return response;
  const int status = std::atoi(status_line.substr(9, 3).c_str());
  while (line_end != std::string::npos) {
    const std::size_t next = head.find("\r\n", line_end + 2);
    const std::string line = head.substr(
        line_end + 2, next == std::string::npos ? std::string::npos : next - line_end - 2);
    const std::size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      response.headers[name] = value;
    }
    line_end = next;
  }
  std::size_t length = 0;
  if (auto it = response.headers.find("content-length"); it != response.headers.end()) {
    length = static_cast<std::size_t>(std::stoull(it->second));
  }
  while (pending_.size() < length) {
    if (!ReadMore()) return response;
  }
  response.body = pending_.substr(0, length);
  pending_.erase(0, length);
  response.status = status;
  return response;
}

bool HttpsConnection::WaitClosed(double timeout_s) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (Clock::now() < deadline) {
    if (ssl_ == nullptr) return true;
    if (!WaitFd(fd_, POLLIN, 0.05)) continue;
    char buffer[4096];
    const int n = SSL_read(static_cast<SSL*>(ssl_), buffer, sizeof buffer);
    if (n <= 0) {
      const int err = SSL_get_error(static_cast<SSL*>(ssl_), n);
      ERR_clear_error();
      if (err != SSL_ERROR_WANT_READ) return true;
    } else {
      pending_.append(buffer, static_cast<std::size_t>(n));
    }
  }
  return false;
}

HttpResponse HttpsConnection::Request(const std::string& method, const std::string& target,
                                      const std::map<std::string, std::string>& headers,
                                      const std::string& body) {
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  bool has_length = false;
  for (const auto& [name, value] : headers) {
    request += name + ": " + value + "\r\n";
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "content-length" || lower == "transfer-encoding") has_length = true;
  }
  if (!has_length && (!body.empty() || method == "POST")) {
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n" + body;
  if (!SendRaw(request)) return {};
  return ReadResponse();
}

HttpResponse HttpsRequest(std::uint16_t port, const std::string& method, const std::string& target,
                          const std::map<std::string, std::string>& headers,
                          const std::string& body, const ClientOptions& options) {
  HttpsConnection connection(port, options);
  if (!connection.ok()) return {};
  return connection.Request(method, target, headers, body);
}

std::map<std::string, std::string> Bearer(const std::string& token,
                                          std::map<std::string, std::string> extra) {
  extra["Authorization"] = "Bearer " + token;
  return extra;
}

// ---- FakeAccessStore
// ----------------------------------------------------------------------------------

void FakeAccessStore::AddToken(const std::string& token, const policy::Principal& principal,
                               policy::AuthOutcome outcome) {
  std::lock_guard<std::mutex> lock(mutex_);
  tokens_[token] = TokenEntry{principal, outcome};
}

void FakeAccessStore::AddTicket(const std::string& id, const std::string& vendor,
                                const std::string& lane, std::uint32_t uses) {
  std::lock_guard<std::mutex> lock(mutex_);
  tickets_[id] = Ticket{vendor, lane, uses};
}

Status FakeAccessStore::Authenticate(std::string_view token, policy::AuthOutcome* outcome,
                                     policy::Principal* principal) {
  if (fail_) return Status::IOError("fake access store: down");
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = tokens_.find(std::string(token));
  if (it == tokens_.end()) {
    *outcome = policy::AuthOutcome::kUnknown;
    return Status::Ok();
  }
  *outcome = it->second.outcome;
  if (*outcome == policy::AuthOutcome::kOk) *principal = it->second.principal;
  return Status::Ok();
}

Status FakeAccessStore::UseTicket(const std::string& ticket_id, const std::string& vendor,
                                  const std::string& lane, policy::TicketOutcome* outcome) {
  if (fail_) return Status::IOError("fake access store: down");
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = tickets_.find(ticket_id);
  if (it == tickets_.end()) {
    *outcome = policy::TicketOutcome::kUnknown;
  } else if (it->second.vendor != vendor) {
    *outcome = policy::TicketOutcome::kWrongVendor;
  } else if (it->second.lane != lane) {
    *outcome = policy::TicketOutcome::kWrongLane;
  } else if (it->second.uses_left == 0) {
    *outcome = policy::TicketOutcome::kUsedUp;
  } else {
    --it->second.uses_left;
    *outcome = policy::TicketOutcome::kOk;
  }
  return Status::Ok();
}

Status FakeAccessStore::CreatePrincipal(const policy::NewPrincipal&, std::string*) {
  return Status::Unsupported("fake");
}
Status FakeAccessStore::RotateToken(const std::string&, std::int64_t, std::string*) {
  return Status::Unsupported("fake");
}
Status FakeAccessStore::RevokePrincipal(const std::string&) { return Status::Unsupported("fake"); }
Status FakeAccessStore::ListPrincipals(std::vector<policy::PrincipalInfo>*) {
  return Status::Unsupported("fake");
}
Status FakeAccessStore::GrantTicket(const std::string&, const policy::NewTicket&,
                                    policy::TicketInfo*) {
  return Status::Unsupported("fake");
}
Status FakeAccessStore::ListTickets(std::vector<policy::TicketInfo>* tickets) {
  if (fail_) return Status::IOError("fake access store: down");
  std::lock_guard<std::mutex> lock(mutex_);
  tickets->clear();
  for (const auto& [id, t] : tickets_) {
    policy::TicketInfo info;
    info.id = id;
    info.vendor = t.vendor;
    info.lane = t.lane;
    tickets->push_back(info);
  }
  return Status::Ok();
}
Status FakeAccessStore::RequestExport(const std::string&, const policy::NewExport&,
                                      policy::ExportInfo*) {
  return Status::Unsupported("fake");
}
Status FakeAccessStore::ApproveExport(const std::string&, const std::string&, std::int64_t,
                                      policy::ApproveOutcome*) {
  return Status::Unsupported("fake");
}
Status FakeAccessStore::RecordDownload(const std::string&, const std::string&,
                                       const std::vector<policy::ExportedFile>&,
                                       policy::DownloadOutcome*) {
  return Status::Unsupported("fake");
}
Status FakeAccessStore::GetExport(const std::string&, policy::ExportInfo*) {
  return Status::Unsupported("fake");
}
Status FakeAccessStore::ListExports(std::vector<policy::ExportInfo>*) {
  return Status::Unsupported("fake");
}
Status FakeAccessStore::FindExportedFile(const std::string&, std::vector<std::string>*) {
  return Status::Unsupported("fake");
}
Status FakeAccessStore::ClaimJobRun(const std::string&, std::int64_t, const std::string&,
                                    bool* claimed) {
  *claimed = true;
  return Status::Ok();
}

// ---- FakeAuditLog
// ---------------------------------------------------------------------------------------

Status FakeAuditLog::Append(const audit::AuditEvent& event) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fail_) return Status::IOError("fake audit log: disk full");
  events_.push_back(event);
  return Status::Ok();
}
Status FakeAuditLog::Size(std::uint64_t* tree_size) const {
  std::lock_guard<std::mutex> lock(mutex_);
  *tree_size = events_.size();
  return Status::Ok();
}
Status FakeAuditLog::LatestTreeHead(audit::SignedTreeHead* sth) const {
  std::lock_guard<std::mutex> lock(mutex_);
  *sth = audit::SignedTreeHead{};
  sth->tree_size = events_.size();
  return Status::Ok();
}
Status FakeAuditLog::PublishTreeHead(audit::SignedTreeHead* sth) { return LatestTreeHead(sth); }
Status FakeAuditLog::ProveInclusion(std::uint64_t, std::uint64_t, audit::InclusionProof*) const {
  return Status::Unsupported("fake");
}
Status FakeAuditLog::ProveConsistency(std::uint64_t, std::uint64_t,
                                      audit::ConsistencyProof*) const {
  return Status::Unsupported("fake");
}
Status FakeAuditLog::ReadLeaves(std::uint64_t, std::uint64_t, std::vector<std::string>*) const {
  return Status::Unsupported("fake");
}
Status FakeAuditLog::TreeHeads(std::vector<audit::SignedTreeHead>*) const {
  return Status::Unsupported("fake");
}
std::vector<audit::AuditEvent> FakeAuditLog::events() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_;
}
std::vector<audit::AuditEvent> FakeAuditLog::WithAction(const std::string& action) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<audit::AuditEvent> out;
  for (const audit::AuditEvent& e : events_) {
    if (e.action == action) out.push_back(e);
  }
  return out;
}
bool FakeAuditLog::Find(const std::string& result, audit::AuditEvent* event) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = events_.rbegin(); it != events_.rend(); ++it) {
    if (it->result == result) {
      *event = *it;
      return true;
    }
  }
  return false;
}
void FakeAuditLog::set_fail(bool fail) {
  std::lock_guard<std::mutex> lock(mutex_);
  fail_ = fail;
}

// ---- ServeProcess
// -----------------------------------------------------------------------------------------

ServeProcess::ServeProcess(const std::string& config_path, double start_timeout_s) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return;
  }
  if (pid == 0) {
    ::dup2(pipe_fds[1], 2);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    const int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
    }
    std::string path = PORTCULLIS_CLI_PATH;
    std::string serve = "serve";
    std::string flag = "--config";
    std::string config = config_path;
    char* argv[] = {path.data(), serve.data(), flag.data(), config.data(), nullptr};
    ::execv(argv[0], argv);
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  pid_ = pid;
  err_fd_ = pipe_fds[0];
  pump_ = std::thread([this] {
    char buffer[8192];
    for (;;) {
      const ssize_t n = ::read(err_fd_, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      std::lock_guard<std::mutex> lock(mutex_);
      log_.append(buffer, static_cast<std::size_t>(n));
    }
  });
  const auto deadline = Clock::now() + std::chrono::duration<double>(start_timeout_s);
  std::size_t start = 0;
  while (port_ == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const std::string log = Log();
    while (true) {
      const std::size_t end = log.find('\n', start);
      if (end == std::string::npos) break;
      const nlohmann::json line =
          nlohmann::json::parse(log.substr(start, end - start), nullptr, false);
      if (line.is_object() && line.value("msg", "") == "listening" && line.contains("port")) {
        port_ = line["port"].get<std::uint16_t>();
      }
      start = end + 1;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
  }
}

std::string ServeProcess::Log() {
  std::lock_guard<std::mutex> lock(mutex_);
  return log_;
}

int ServeProcess::Terminate(double timeout_s) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

ServeProcess::~ServeProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (pump_.joinable()) pump_.join();  // EOF once the child is gone
  if (err_fd_ >= 0) ::close(err_fd_);
}

}  // namespace portcullis::testing
