#include "agent_http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

namespace portcullis::lane {
namespace {

constexpr std::size_t kMaxHeadBytes = 16 * 1024;

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return status >= 500 ? "Error" : "Status";
  }
}

// A connection: plain fd or TLS over it. Reads and writes honour a deadline.
class Conn {
 public:
  Conn(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~Conn() {
    if (ssl_ != nullptr) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
    }
    ::close(fd_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Bytes read (0: EOF/error/timeout).
  std::size_t Read(char* buffer, std::size_t n, int timeout_ms) {
    if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return 0;
    }
    if (ssl_ != nullptr) {
      const int r = SSL_read(ssl_, buffer, static_cast<int>(std::min<std::size_t>(n, 1 << 20)));
      return r > 0 ? static_cast<std::size_t>(r) : 0;
    }
    const ssize_t r = ::recv(fd_, buffer, n, 0);
    return r > 0 ? static_cast<std::size_t>(r) : 0;
  }
  bool Write(std::string_view bytes) {
    while (!bytes.empty()) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, 10000) <= 0) return false;
      if (ssl_ != nullptr) {
        const int r = SSL_write(ssl_, bytes.data(),
                                static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 20)));
        if (r <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(r));
      } else {
        const ssize_t r = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (r <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(r));
      }
    }
    return true;
  }

 private:
  int fd_;
  SSL* ssl_;
};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Parses the head; false on anything malformed.
bool ParseHead(const std::string& head, LocalRequest* request) {
  std::size_t line_end = head.find("\r\n");
  const std::string first = head.substr(0, line_end);
  const std::size_t sp1 = first.find(' ');
  const std::size_t sp2 = first.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) return false;
  request->method = first.substr(0, sp1);
  std::string target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  if (first.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0 || target.empty() || target[0] != '/') {
    return false;
  }
  const std::size_t q = target.find('?');
  request->path = target.substr(0, q);
  if (q != std::string::npos) request->query = target.substr(q + 1);
  std::size_t pos = line_end + 2;
  while (pos < head.size()) {
    const std::size_t end = head.find("\r\n", pos);
    if (end == std::string::npos || end == pos) break;
    const std::string line = head.substr(pos, end - pos);
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) return false;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    request->headers[Lower(line.substr(0, colon))] = value;
    pos = end + 2;
  }
  return true;
}

std::string Head(const LocalResponse& r, bool streamed, std::size_t length) {
  std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + Reason(r.status) + "\r\n";
  head += "Content-Type: " + r.content_type + "\r\n";
  if (!streamed) head += "Content-Length: " + std::to_string(length) + "\r\n";
  head += "Connection: close\r\n";
  for (const auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
  return head + "\r\n";
}

class Server final : public LocalHttpServer {
 public:
  Server(LocalHttpOptions options, LocalHandler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}
  ~Server() override {
    Stop();
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }

  Status Init() {
    if (!options_.tls_cert_file.empty()) {
      ctx_ = SSL_CTX_new(TLS_server_method());
      if (ctx_ == nullptr) return Status::Internal("SSL_CTX_new failed");
      SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
      if (SSL_CTX_use_certificate_chain_file(ctx_, options_.tls_cert_file.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(ctx_, options_.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
          SSL_CTX_check_private_key(ctx_) != 1) {
        ERR_clear_error();
        return Status::InvalidArgument("cannot load TLS certificate/key " + options_.tls_cert_file);
      }
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(options_.port);
    if (::getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found) != 0 ||
        found == nullptr) {
      return Status::InvalidArgument("listen: '" + options_.host + "' is not a numeric IP address");
    }
    fd_ = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const bool bound =
        fd_ >= 0 && ::bind(fd_, found->ai_addr, found->ai_addrlen) == 0 && ::listen(fd_, 16) == 0;
    ::freeaddrinfo(found);
    if (!bound) {
      return Status::IOError("cannot listen on " + options_.host + ":" + port + ": " +
                             std::strerror(errno));
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
    return Status::Ok();
  }

  [[nodiscard]] std::uint16_t port() const override { return port_; }

  void Stop() override {
    if (stopping_.exchange(true)) return;
    if (acceptor_.joinable()) acceptor_.join();
    std::list<Worker> workers;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      workers.swap(workers_);
    }
    for (Worker& w : workers) w.thread.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  void AcceptLoop() {
    while (!stopping_.load()) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      std::lock_guard<std::mutex> lock(mutex_);
      // Join the connections that ended: the agent runs for months.
      for (auto it = workers_.begin(); it != workers_.end();) {
        if (it->done->load()) {
          it->thread.join();
          it = workers_.erase(it);
        } else {
          ++it;
        }
      }
      if (active_.load() >= options_.max_connections) {
        const std::string busy =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        ::send(client, busy.data(), busy.size(), MSG_NOSIGNAL);
        ::close(client);
        continue;
      }
      ++active_;
      auto done = std::make_shared<std::atomic<bool>>(false);
      workers_.push_back({std::thread([this, client, done] {
                            Serve(client);
                            --active_;
                            done->store(true);
                          }),
                          done});
    }
  }

  void Serve(int fd) {
    SSL* ssl = nullptr;
    if (ctx_ != nullptr) {
      ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      timeval tv{options_.request_timeout_ms / 1000, (options_.request_timeout_ms % 1000) * 1000};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      if (SSL_accept(ssl) != 1) {
        ERR_clear_error();
        SSL_free(ssl);
        ::close(fd);
        return;
      }
    }
    Conn conn(fd, ssl);
    std::string data;
    char buffer[8192];
    std::size_t head_end = std::string::npos;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.request_timeout_ms);
    const auto remaining = [&] {
      return static_cast<int>(std::max<std::int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                   std::chrono::steady_clock::now())
                 .count()));
    };
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      if (data.size() > kMaxHeadBytes)
        return Send(&conn,
                    LocalResponse::Error(431, "header_too_large", "request head over 16 KiB"));
      const std::size_t n = conn.Read(buffer, sizeof buffer, remaining());
      if (n == 0) return;
      data.append(buffer, n);
    }
    LocalRequest request;
    if (!ParseHead(data.substr(0, head_end + 2), &request)) {
      return Send(&conn, LocalResponse::Error(400, "bad_request", "malformed request"));
    }
    std::size_t length = 0;
    if (auto it = request.headers.find("content-length"); it != request.headers.end()) {
      const std::string& v = it->second;
      if (v.empty() || v.size() > 12 ||
          !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return Send(&conn, LocalResponse::Error(400, "bad_request", "bad Content-Length"));
      }
      length = std::stoull(v);
    }
    if (request.headers.count("transfer-encoding") != 0) {
      return Send(&conn, LocalResponse::Error(400, "bad_request", "chunked bodies not accepted"));
    }
    if (length > options_.max_body_bytes) {
      return Send(&conn, LocalResponse::Error(413, "body_too_large", "body over the limit"));
    }
    request.body = data.substr(head_end + 4);
    while (request.body.size() < length) {
      const std::size_t n = conn.Read(buffer, sizeof buffer, remaining());
      if (n == 0) return;
      request.body.append(buffer, n);
    }
    request.body.resize(length);
    LocalResponse response = handler_(request);
    Send(&conn, response);
  }

  void Send(Conn* conn, const LocalResponse& response) {
    if (response.stream) {
      // The stream runs even when the head could not be sent: it owns cleanup (its watcher).
      const bool head_sent = conn->Write(Head(response, true, 0));
      response.stream([this, conn, head_sent](std::string_view bytes) {
        return head_sent && !stopping_.load() && conn->Write(bytes);
      });
      return;
    }
    conn->Write(Head(response, false, response.body.size()) + response.body);
  }

  LocalHttpOptions options_;
  LocalHandler handler_;
  SSL_CTX* ctx_ = nullptr;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};
  std::thread acceptor_;
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::mutex mutex_;
  std::list<Worker> workers_;
};

}  // namespace

LocalResponse LocalResponse::Json(int status, const std::string& json_body) {
  LocalResponse r;
  r.status = status;
  r.body = json_body;
  r.headers["Cache-Control"] = "no-store";
  return r;
}

LocalResponse LocalResponse::Error(int status, const std::string& code,
                                   const std::string& message) {
  return Json(status, nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump());
}

Status LocalHttpServer::Start(const LocalHttpOptions& options, LocalHandler handler,
                              std::unique_ptr<LocalHttpServer>* server) {
  auto s = std::make_unique<Server>(options, std::move(handler));
  PORTCULLIS_RETURN_IF_ERROR(s->Init());
  *server = std::move(s);
  return Status::Ok();
}

}  // namespace portcullis::lane
