// The HTTPS server (http_server.h has the request pipeline). Threads:
//   - io_threads run the io_context: TLS, reading headers and bodies, writing responses. Each
//     connection lives on its own strand, so its handlers never run concurrently.
//   - control threads run the blocking steps: token lookup, ticket use, policy, the audit append,
//     light handlers. Their queue is bounded (503 overloaded when full).
//   - worker threads each own one set of engines and run heavy handlers from a bounded queue.
// A request moves strand -> control -> strand (body) -> control/worker -> strand (write); at each
// hop exactly one thread touches its state, and the post/dispatch gives the happens-before.
#include "server/http_server.h"

#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include "portcullis/access_store.h"
#include "portcullis/audit.h"
#include "portcullis/env.h"
#include "portcullis/policy.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server/stage_timer.h"

namespace portcullis::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// ---- Paths, patterns, queries -------------------------------------------------------------------

bool IsCleanPath(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u >= 0x7f || c == '%' || c == '\\') return false;
  }
  // Segments: no empty one except a final trailing slash, no "." or "..".
  std::size_t start = 1;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view segment = path.substr(start, end - start);
    if (segment == "." || segment == "..") return false;
    if (segment.empty() && end != path.size()) return false;
    start = end + 1;
  }
  return true;
}

namespace {

bool IsParamValue(std::string_view value) {
  if (value.empty() || value.size() > 64 || value == "." || value == "..") return false;
  return std::all_of(value.begin(), value.end(), [](char c) {
    // ':' because principal names are "role:name" (DELETE /v1/principals/vendor:acme).
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == ':';
  });
}

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t start = 1;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      *out += ' ';
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      *out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      *out += in[i];
    }
  }
  return true;
}

}  // namespace

MatchResult MatchPattern(std::string_view pattern, std::string_view path,
                         std::map<std::string, std::string>* params) {
  const std::vector<std::string_view> want = Split(pattern);
  const std::vector<std::string_view> have = Split(path);
  if (want.size() != have.size()) return MatchResult::kNo;
  std::map<std::string, std::string> found;
  bool invalid = false;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const std::string_view w = want[i];
    if (w.size() >= 2 && w.front() == '{' && w.back() == '}') {
      if (!IsParamValue(have[i])) invalid = true;
      found.emplace(std::string(w.substr(1, w.size() - 2)), std::string(have[i]));
    } else if (w != have[i]) {
      return MatchResult::kNo;
    }
  }
  if (invalid) return MatchResult::kParamInvalid;
  if (params != nullptr) *params = std::move(found);
  return MatchResult::kYes;
}

bool ParseQuery(std::string_view query, std::map<std::string, std::string>* out) {
  out->clear();
  std::size_t start = 0;
  while (start < query.size()) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    const std::string_view pair = query.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    std::string key;
    std::string value;
    if (!PercentDecode(pair.substr(0, eq), &key)) return false;
    if (eq != std::string_view::npos && !PercentDecode(pair.substr(eq + 1), &value)) return false;
    out->emplace(std::move(key), std::move(value));
  }
  return true;
}

namespace {

std::string NewRequestId() {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    // Never fatal: a request id only correlates logs. Fall back to a counter.
    static std::atomic<std::uint64_t> counter{1};
    const std::uint64_t n = counter.fetch_add(1);
    for (std::size_t i = 0; i < sizeof bytes; ++i) {
      bytes[i] = static_cast<unsigned char>(n >> (8 * i));
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string Lower(std::string_view in) {
  std::string out(in);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string MediaType(std::string_view content_type) {
  const std::size_t semi = content_type.find(';');
  std::string_view type = content_type.substr(0, semi);
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  return Lower(type);
}

bool MediaTypeMatches(std::string_view pattern, std::string_view type) {
  if (pattern.size() >= 2 && pattern.substr(pattern.size() - 2) == "/*") {
    const std::string_view prefix = pattern.substr(0, pattern.size() - 1);  // "image/"
    return type.size() > prefix.size() && type.substr(0, prefix.size()) == prefix;
  }
  return pattern == type;
}

bool IsJsonType(std::string_view type) {
  return type == "application/json" || (type.size() > 5 && type.substr(type.size() - 5) == "+json");
}

// Clients choose the method token: only known verbs become label values, so a client cannot
// grow the metrics without bound.
std::string MethodLabel(const std::string& method) {
  for (const char* known : {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"}) {
    if (method == known) return method;
  }
  return method.empty() ? "none" : "other";
}

ApiResponse ErrorWithId(int status, std::string_view code, std::string_view message,
                        const std::string& request_id) {
  return ApiResponse::Json(
      status, nlohmann::json{
                  {"error", {{"code", code}, {"message", message}, {"request_id", request_id}}}});
}

// Handlers build errors without the request id; the server adds it.
void FillRequestId(ApiResponse* response, const std::string& request_id) {
  if (response->status < 400 || response->content_type != "application/json") return;
  nlohmann::json body = nlohmann::json::parse(response->body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("error") ||
      !body["error"].is_object()) {
    return;
  }
  body["error"]["request_id"] = request_id;
  response->body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string_view AuthCode(policy::AuthOutcome outcome) {
  switch (outcome) {
    case policy::AuthOutcome::kExpired:
      return "token_expired";
    case policy::AuthOutcome::kRevoked:
      return "token_revoked";
    default:
      return "unauthenticated";
  }
}

bool IsDeviceRole(policy::Role role) {
  return role == policy::Role::kLaneDevice || role == policy::Role::kGateDevice;
}

// ---- Rate limiting ------------------------------------------------------------------------------

class RateLimiter {
 public:
  RateLimiter(double per_minute, double burst)
      : per_second_(per_minute / 60.0),
        burst_(burst > 0 ? burst : std::max(1.0, std::ceil(per_minute / 6.0))) {}

  // True when a token was taken; otherwise *retry_after_s says when the next one comes.
  bool Take(const std::string& key, std::uint32_t* retry_after_s) {
    if (per_second_ <= 0) return true;
    const Clock::time_point now = Clock::now();
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst_, now});
    Bucket& bucket = it->second;
    if (!inserted) {
      const double elapsed = std::chrono::duration<double>(now - bucket.last).count();
      bucket.tokens = std::min(burst_, bucket.tokens + elapsed * per_second_);
      bucket.last = now;
    }
    if (bucket.tokens >= 1.0) {
      bucket.tokens -= 1.0;
      return true;
    }
    const double wait = (1.0 - bucket.tokens) / per_second_;
    *retry_after_s = static_cast<std::uint32_t>(std::max(1.0, std::ceil(wait)));
    return false;
  }

 private:
  struct Bucket {
    double tokens;
    Clock::time_point last;
  };
  const double per_second_;
  const double burst_;
  std::mutex mutex_;
  std::map<std::string, Bucket> buckets_;  // authenticated principals only: bounded by the store
};

// ---- The worker pool ----------------------------------------------------------------------------

class WorkerPool {
 public:
  // cancelled: the server is shutting down and the task never started; answer 503.
  using Task = std::function<void(const WorkerEngines& engines, bool cancelled)>;

  WorkerPool(std::vector<WorkerEngines> engines, std::size_t capacity,
             std::function<void(std::size_t)> on_depth)
      : capacity_(capacity), on_depth_(std::move(on_depth)) {
    for (const WorkerEngines& e : engines) {
      threads_.emplace_back([this, e] { Run(e); });
    }
  }
  ~WorkerPool() { Stop(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  bool TryReserve() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || threads_.empty() || reserved_ + tasks_.size() >= capacity_) return false;
    ++reserved_;
    return true;
  }
  void Unreserve() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (reserved_ > 0) --reserved_;
  }
  // Uses a reservation made by TryReserve.
  void Submit(Task task) {
    std::size_t depth = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (reserved_ > 0) --reserved_;
      if (stopping_) {
        depth = tasks_.size();
      } else {
        tasks_.push_back(std::move(task));
        depth = tasks_.size();
        task = nullptr;
      }
    }
    if (task) {
      task(WorkerEngines{}, true);
      return;
    }
    on_depth_(depth);
    cv_.notify_one();
  }
  // Queued tasks are answered as cancelled; running ones finish. Joins the threads.
  void Stop() {
    std::deque<Task> cancelled;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopped_) return;
      stopping_ = true;
      cancelled.swap(tasks_);
    }
    on_depth_(0);
    for (Task& task : cancelled) task(WorkerEngines{}, true);
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = true;
  }
  // Stops taking new work but leaves the threads to finish what they hold; queued tasks cancelled.
  void CancelQueued() {
    std::deque<Task> cancelled;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      cancelled.swap(tasks_);
    }
    on_depth_(0);
    for (Task& task : cancelled) task(WorkerEngines{}, true);
    cv_.notify_all();
  }
  std::size_t queued() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return tasks_.size();
  }

 private:
  void Run(WorkerEngines engines) {
    for (;;) {
      Task task;
      std::size_t depth = 0;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
        depth = tasks_.size();
      }
      on_depth_(depth);
      task(engines, false);
    }
  }

  const std::size_t capacity_;
  std::function<void(std::size_t)> on_depth_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  std::size_t reserved_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
  std::vector<std::thread> threads_;
};

class Session;

}  // namespace

// ---- The server ---------------------------------------------------------------------------------

class HttpServer::Impl {
 public:
  Impl(const HttpServerOptions& options, ServiceContext* ctx, std::vector<Route> routes,
       std::vector<WorkerEngines> workers)
      : options_(options),
        ctx_(ctx),
        routes_(std::move(routes)),
        ioc_(static_cast<int>(std::max<std::size_t>(1, options.io_threads))),
        ssl_ctx_(ssl::context::tls_server),
        acceptor_(asio::make_strand(ioc_)),
        control_(std::max<std::size_t>(1, options.control_threads)),
        limiter_(options.rate_per_minute, options.rate_burst),
        workers_(std::move(workers), std::max<std::size_t>(1, options.queue),
                 [this](std::size_t depth) {
                   SetGauge("queue_depth",
                            "Heavy requests waiting "
                            "for a worker",
                            static_cast<double>(depth));
                 }) {}

  ~Impl() { Shutdown(); }

  Status SetUpTls() {
    try {
      ssl_ctx_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                           ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                           ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    } catch (const std::exception& e) {
      return Status::Internal(std::string("TLS setup: ") + e.what());
    }
    boost::system::error_code ec;
    ssl_ctx_.use_certificate_chain_file(options_.cert_file, ec);
    if (ec)
      return Status::InvalidArgument("tls.cert: cannot load " + options_.cert_file + ": " +
                                     ec.message());
    ssl_ctx_.use_private_key_file(options_.key_file, ssl::context::pem, ec);
    if (ec)
      return Status::InvalidArgument("tls.key: cannot load " + options_.key_file + ": " +
                                     ec.message());
    if (SSL_CTX_check_private_key(ssl_ctx_.native_handle()) != 1) {
      return Status::InvalidArgument("tls.key does not match tls.cert");
    }
    if (!options_.client_ca_file.empty()) {
      ssl_ctx_.load_verify_file(options_.client_ca_file, ec);
      if (ec)
        return Status::InvalidArgument("tls.client_ca: cannot load " + options_.client_ca_file +
                                       ": " + ec.message());
      // Ask for a certificate and verify any presented; whether one is required depends on the
      // principal's role, decided after authentication.
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options_.client_ca_file.c_str());
      if (names != nullptr) SSL_CTX_set_client_CA_list(ssl_ctx_.native_handle(), names);
      ssl_ctx_.set_verify_mode(ssl::verify_peer, ec);
      if (ec) return Status::Internal("tls.client_ca: " + ec.message());
    }
    return Status::Ok();
  }

  Status Start() {
    boost::system::error_code ec;
    const asio::ip::address address = asio::ip::make_address(options_.host, ec);
    if (ec) return Status::InvalidArgument("listen: bad address '" + options_.host + "'");
    const tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::IOError("listen: cannot bind " + options_.host + ":" +
                             std::to_string(options_.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint(ec).port();
    running_ = true;
    // Sessions waiting for a worker have no socket operation pending; once the acceptor closes
    // at shutdown, nothing else would keep run() from returning before they answer.
    work_.emplace(ioc_.get_executor());
    Accept();
    for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.io_threads); ++i) {
      io_threads_.emplace_back([this] { ioc_.run(); });
    }
    return Status::Ok();
  }

  void Shutdown() {
    std::unique_lock<std::mutex> lock(shutdown_mutex_);
    if (!running_ || shutdown_started_) {
      shutdown_cv_.wait(lock, [this] { return !running_; });
      return;
    }
    shutdown_started_ = true;
    lock.unlock();
    shutting_down_ = true;
    asio::post(acceptor_.get_executor(), [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
    });
    // Queued heavy work never started: answer it 503 now rather than after the grace period.
    workers_.CancelQueued();
    const Clock::time_point deadline =
        Clock::now() + std::chrono::milliseconds(options_.shutdown_grace_ms);
    while (in_flight_.load() > 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (in_flight_.load() > 0) {
      LogEvent("warn", "shutdown grace period over with requests in flight",
               {{"in_flight", in_flight_.load()}, {"node", ctx_->node_name}});
    }
    // Handlers still running are not interrupted (their writes complete), but nobody will wait
    // for their answer: join the pools before the io_context goes away.
    workers_.Stop();
    control_.join();
    work_.reset();
    ioc_.stop();
    for (std::thread& t : io_threads_) t.join();
    io_threads_.clear();
    lock.lock();
    running_ = false;
    shutdown_cv_.notify_all();
  }

  void Wait() {
    std::unique_lock<std::mutex> lock(shutdown_mutex_);
    shutdown_cv_.wait(lock, [this] { return !running_; });
  }

  void SetGauge(std::string_view name, std::string_view help, double value) {
    if (ctx_->metrics != nullptr) ctx_->metrics->Set(name, help, {}, value);
  }

  void Accept();

  HttpServerOptions options_;
  ServiceContext* ctx_;
  std::vector<Route> routes_;
  // Declared before the io_context: sessions still queued in it are destroyed with it, and their
  // destructors touch these.
  std::atomic<bool> shutting_down_{false};
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::size_t> connections_{0};
  std::atomic<std::size_t> control_pending_{0};
  std::uint16_t port_ = 0;
  std::mutex shutdown_mutex_;
  std::condition_variable shutdown_cv_;
  bool running_ = false;
  bool shutdown_started_ = false;

  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  ssl::context ssl_ctx_;
  tcp::acceptor acceptor_;
  asio::thread_pool control_;
  RateLimiter limiter_;
  WorkerPool workers_;
  std::vector<std::thread> io_threads_;
};

namespace {

// Everything one request carries between the pipeline's steps.
struct RequestState {
  ApiRequest request;
  const Route* route = nullptr;
  std::string route_label = "unmatched";
  Clock::time_point start;
  std::string principal = "anonymous";
  std::string role = "none";
  bool authenticated = false;
  bool public_route = false;
  bool needs_body = false;
  bool chunked = false;
  bool keep_alive = true;
  bool expect_continue = false;
  bool json_body = false;
  bool reserved = false;  // holds a worker-queue slot
  std::optional<std::uint64_t> content_length;
  // Routing outcome, reported after authentication so the denial is attributed.
  int route_status = 0;
  std::string route_code;
  std::string route_message;
  std::vector<std::string> allow;  // for 405
  // Where the time goes: each Lap closes the interval since the previous one under a name.
  StageTimes stages;
  Clock::time_point mark;
  void Lap(std::string_view stage) {
    const Clock::time_point now = Clock::now();
    stages.Add(stage, std::chrono::duration<double, std::milli>(now - mark).count());
    mark = now;
  }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer::Impl* server, tcp::socket socket)
      : server_(server),
        stream_(std::move(socket), server->ssl_ctx_),
        deadline_(stream_.get_executor()) {}

  ~Session() { server_->connections_.fetch_sub(1); }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Handshake(); });
  }

 private:
  using Self = std::shared_ptr<Session>;

  const HttpServerOptions& options() const { return server_->options_; }
  ServiceContext& ctx() const { return *server_->ctx_; }

  void Handshake() {
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::milliseconds(options().header_timeout_ms));
    stream_.async_handshake(
        ssl::stream_base::server,
        [self = shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); });
  }

  void OnHandshake(beast::error_code ec) {
    beast::get_lowest_layer(stream_).expires_never();
    if (ec) {
      // Plain HTTP to the TLS port, a scanner, a client that does not trust us: just close.
      Close();
      return;
    }
    if (X509* cert = SSL_get1_peer_certificate(stream_.native_handle()); cert != nullptr) {
      if (SSL_get_verify_result(stream_.native_handle()) == X509_V_OK) {
        X509_NAME* subject = X509_get_subject_name(cert);
        const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
        if (index >= 0) {
          const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
          client_cn_.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                            static_cast<std::size_t>(ASN1_STRING_length(data)));
          has_client_cert_ = true;
        }
      }
      X509_free(cert);
    }
    ReadHeader();
  }

  void ArmDeadline(std::uint32_t ms) {
    timed_out_ = false;
    deadline_.expires_after(std::chrono::milliseconds(ms));
    deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;  // cancelled: the operation finished in time
      self->timed_out_ = true;
      beast::get_lowest_layer(self->stream_).cancel();
    });
  }

  void ReadHeader() {
    if (server_->shutting_down_) {
      Close();
      return;
    }
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options().max_header_bytes));
    // The body limit is decided after routing and authentication (413 with an audit entry), so
    // the parser must not refuse a large Content-Length on its own here.
    // (Not boost::none: Beast 1.74 compares the length with the optional, and none is smaller.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    // The same deadline for an idle keep-alive connection: one that sent nothing is closed
    // silently, one that sent part of a header gets 408 (slowloris).
    ArmDeadline(options().header_timeout_ms);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    deadline_.cancel();
    if (ec) {
      const bool partial = buffer_.size() > 0;
      if (timed_out_ && partial) {
        StartBareRequest();
        Refuse(408, "request_timeout", "the request header did not arrive in time", true);
      } else if (ec == http::error::header_limit) {
        StartBareRequest();
        Refuse(431, "header_too_large", "the request header is too large", true);
      } else if (partial && ec != http::error::end_of_stream && ec != asio::error::eof &&
                 ec != ssl::error::stream_truncated && !timed_out_ &&
                 ec != asio::error::operation_aborted && ec != asio::error::connection_reset) {
        StartBareRequest();
        Refuse(400, "invalid_argument", "malformed HTTP request", true);
      } else {
        Close();  // the client went away, or an idle keep-alive connection timed out
      }
      return;
    }
    StartBareRequest();
    state_->keep_alive = parser_->keep_alive();
    const auto& message = parser_->get();
    ApiRequest& request = state_->request;
    request.method = std::string(message.method_string());
    const std::string_view target(message.target().data(), message.target().size());
    const std::size_t q = target.find('?');
    request.path = std::string(target.substr(0, q));
    for (const auto& field : message) {
      std::string name =
          Lower(std::string_view(field.name_string().data(), field.name_string().size()));
      std::string value(field.value().data(), field.value().size());
      auto [it, inserted] = request.headers.try_emplace(name, value);
      if (!inserted) it->second += ", " + value;
    }
    if (auto it = request.headers.find("content-type"); it != request.headers.end()) {
      request.content_type = MediaType(it->second);
    }
    if (auto it = request.headers.find("expect"); it != request.headers.end()) {
      state_->expect_continue = Lower(it->second) == "100-continue";
    }
    if (const auto length = parser_->content_length(); length.has_value()) {
      state_->content_length = *length;
    }
    state_->chunked = parser_->chunked();
    state_->needs_body = !parser_->is_done();

    if (server_->shutting_down_) {
      Refuse(503, "shutting_down", "the server is shutting down", true,
             {{"Retry-After", std::to_string(options().retry_after_s)}});
      return;
    }
    // Routing (cheap, here); its failures are reported after authentication, to attribute them.
    if (q != std::string_view::npos && !ParseQuery(target.substr(q + 1), &state_->request.query)) {
      SetRouteError(400, "invalid_path", "bad percent-escape in the query string");
    } else if (!IsCleanPath(request.path)) {
      SetRouteError(400, "invalid_path", "the path is not acceptable");
    } else {
      Route_();
    }
    if (server_->control_pending_.load() >= options().control_queue) {
      Refuse(503, "overloaded", "the server is overloaded", state_->needs_body,
             {{"Retry-After", std::to_string(options().retry_after_s)}});
      return;
    }
    server_->control_pending_.fetch_add(1);
    asio::post(server_->control_, [self = shared_from_this()] {
      self->server_->control_pending_.fetch_sub(1);
      self->Authorise();
    });
  }

  void StartBareRequest() {
    state_ = std::make_shared<RequestState>();
    state_->start = Clock::now();
    state_->mark = state_->start;
    state_->request.request_id = NewRequestId();
    server_->in_flight_.fetch_add(1);
    server_->SetGauge("in_flight", "Requests being served",
                      static_cast<double>(server_->in_flight_.load()));
    counted_ = true;
  }

  void SetRouteError(int status, std::string code, std::string message) {
    state_->route_status = status;
    state_->route_code = std::move(code);
    state_->route_message = std::move(message);
  }

  void Route_() {
    RequestState& s = *state_;
    bool param_invalid = false;
    for (const Route& route : server_->routes_) {
      std::map<std::string, std::string> params;
      const MatchResult match = MatchPattern(route.pattern, s.request.path, &params);
      if (match == MatchResult::kParamInvalid) {
        param_invalid = true;
        continue;
      }
      if (match != MatchResult::kYes) continue;
      if (route.method != s.request.method) {
        s.allow.push_back(route.method);
        continue;
      }
      s.route = &route;
      s.route_label = route.pattern;
      s.request.path_params = std::move(params);
      s.public_route = route.action.empty();
      return;
    }
    if (!s.allow.empty()) {
      SetRouteError(405, "method_not_allowed", "this path does not take " + s.request.method);
    } else if (param_invalid) {
      SetRouteError(400, "invalid_path", "a path parameter is outside [A-Za-z0-9._:-]{1,64}");
    } else {
      SetRouteError(404, "not_found", "no such endpoint");
    }
  }

  // ---- Control thread: steps 3-8 ----
  void Authorise() {
    RequestState& s = *state_;
    s.Lap("queue_control");
    ApiRequest& request = s.request;
    const HttpServerOptions& opt = options();
    if (s.public_route) {
      if (s.content_length.value_or(0) > opt.max_body_bytes) {
        Deny(413, "body_too_large", "the body is over the limit", true);
        return;
      }
      ContinueToBody();
      return;
    }
    // Authentication (also for requests that failed routing, to attribute them).
    policy::AuthOutcome outcome = policy::AuthOutcome::kMalformed;
    bool auth_error = false;
    if (auto it = request.headers.find("authorization"); it != request.headers.end()) {
      const std::string& value = it->second;
      if (value.size() > 7 && Lower(value.substr(0, 7)) == "bearer " && ctx().access != nullptr) {
        policy::Principal principal;
        const Status status =
            ctx().access->Authenticate(std::string_view(value).substr(7), &outcome, &principal);
        if (!status.ok()) {
          auth_error = true;
          LogEvent("error", "access store: authentication failed",
                   {{"request_id", request.request_id}, {"error", status.ToString()}});
        } else if (outcome == policy::AuthOutcome::kOk) {
          request.principal = std::move(principal);
          s.authenticated = true;
          s.principal = request.principal.name;
          s.role = std::string(policy::RoleName(request.principal.role));
        }
      }
    }
    if (s.route_status != 0) {
      std::map<std::string, std::string> headers;
      if (s.route_status == 405) {
        std::string allow;
        for (const std::string& m : s.allow) allow += (allow.empty() ? "" : ", ") + m;
        headers["Allow"] = allow;
      }
      Deny(s.route_status, s.route_code, s.route_message, s.needs_body, headers);
      return;
    }
    if (auth_error) {
      Deny(503, "not_ready", "the access store is unavailable", s.needs_body,
           {{"Retry-After", std::to_string(opt.retry_after_s)}});
      return;
    }
    if (!s.authenticated) {
      Deny(401, AuthCode(outcome), "a valid bearer token is required", s.needs_body);
      return;
    }
    if (!opt.client_ca_file.empty() && IsDeviceRole(request.principal.role) &&
        (!has_client_cert_ || client_cn_ != request.principal.name)) {
      Deny(401, "unauthenticated",
           "a device must present a client certificate whose CN is its principal name",
           s.needs_body);
      return;
    }
    std::uint32_t retry_after = 1;
    if (!server_->limiter_.Take(s.principal, &retry_after)) {
      Deny(429, "too_many_requests", "rate limit exceeded", s.needs_body,
           {{"Retry-After", std::to_string(retry_after)}});
      return;
    }
    // Body limits from the header alone: the body is never read when refused.
    if (s.content_length.has_value() && *s.content_length > opt.max_body_bytes) {
      Deny(413, "body_too_large",
           "the body is over the limit of " + std::to_string(opt.max_body_bytes) + " bytes", true);
      return;
    }
    const auto rule = opt.body_rules.find({s.route->method, s.route->pattern});
    if (rule != opt.body_rules.end()) {
      const bool has_type = !request.content_type.empty();
      const bool accepted =
          has_type && std::any_of(rule->second.media_types.begin(), rule->second.media_types.end(),
                                  [&](const std::string& t) {
                                    return MediaTypeMatches(t, request.content_type);
                                  });
      if ((s.needs_body || has_type || rule->second.required) && !accepted) {
        std::string list;
        for (const std::string& t : rule->second.media_types)
          list += (list.empty() ? "" : ", ") + t;
        Deny(415, "unsupported_media_type", "this endpoint takes " + list, s.needs_body);
        return;
      }
      s.json_body = accepted && IsJsonType(request.content_type);
    }
    if (auto it = request.headers.find("x-purpose"); it != request.headers.end()) {
      if (it->second.size() > 512) {
        Deny(400, "invalid_argument", "X-Purpose is over 512 bytes", s.needs_body);
        return;
      }
      request.purpose = it->second;
    }
    std::string lane;
    if (!s.route->lane_param.empty()) {
      // The lane a request concerns: a path parameter, or else a query parameter of that name
      // (GET /v1/plates/{id}/crop?lane=7: the handler checks the record is from that lane).
      if (auto it = request.path_params.find(s.route->lane_param);
          it != request.path_params.end()) {
        lane = it->second;
      } else if (auto q = request.query.find(s.route->lane_param); q != request.query.end()) {
        lane = q->second;
      }
    }
    bool ticket_valid = false;
    if (auto it = request.headers.find("x-ticket"); it != request.headers.end()) {
      if (ctx().access != nullptr) {
        policy::TicketOutcome ticket = policy::TicketOutcome::kUnknown;
        Status status;
        if (s.route->lane_param.empty()) {
          // The path names no lane (GET /v1/plates/{id}/crop): the ticket's own lane is the one
          // the policy checks against the vendor's scope, and the handler checks that the record
          // is from it.
          std::vector<policy::TicketInfo> tickets;
          status = ctx().access->ListTickets(&tickets);
          for (const policy::TicketInfo& info : tickets) {
            if (info.id == it->second) lane = info.lane;
          }
        }
        if (status.ok()) {
          status = ctx().access->UseTicket(it->second, request.principal.name, lane, &ticket);
        }
        if (!status.ok()) {
          Deny(503, "not_ready", "the access store is unavailable", s.needs_body,
               {{"Retry-After", std::to_string(opt.retry_after_s)}});
          return;
        }
        if (ticket != policy::TicketOutcome::kOk) {
          Deny(403, "ticket_invalid",
               "the ticket is " + std::string(policy::TicketOutcomeName(ticket)) +
                   " for this vendor and lane",
               s.needs_body);
          return;
        }
        ticket_valid = true;
        request.ticket_id = it->second;
      }
    }
    if (ctx().policy == nullptr) {
      Deny(403, "forbidden", "no policy is loaded", s.needs_body);
      return;
    }
    policy::AccessRequest question;
    question.principal = &request.principal;
    question.action = s.route->action;
    question.category = s.route->category;
    question.purpose = request.purpose;
    question.lane = lane;
    question.ticket_valid = ticket_valid;
    const policy::Decision decision = ctx().policy->Decide(question);
    if (!decision.allowed) {
      Deny(403, policy::DenialCode(decision.denial), decision.reason, s.needs_body);
      return;
    }
    if (s.route->heavy) {
      if (!server_->workers_.TryReserve()) {
        Deny(503, "overloaded", "every recognition worker is busy; retry shortly", s.needs_body,
             {{"Retry-After", std::to_string(opt.retry_after_s)}});
        return;
      }
      s.reserved = true;
    }
    ContinueToBody();
  }

  void ContinueToBody() {
    state_->Lap("authorise");
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->ReadBody(); });
  }

  // ---- Strand: step 9 ----
  void ReadBody() {
    if (!state_->needs_body) {
      OnBodyRead();
      return;
    }
    parser_->body_limit(options().max_body_bytes);
    if (state_->expect_continue) {
      auto continue_response =
          std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      beast::get_lowest_layer(stream_).expires_after(
          std::chrono::milliseconds(options().request_timeout_ms));
      http::async_write(
          stream_, *continue_response,
          [self = shared_from_this(), continue_response](beast::error_code ec, std::size_t) {
            beast::get_lowest_layer(self->stream_).expires_never();
            if (ec) {
              self->Aborted();
              return;
            }
            self->ReadBodyNow();
          });
      return;
    }
    ReadBodyNow();
  }

  void ReadBodyNow() {
    ArmDeadline(options().request_timeout_ms);
    http::async_read(
        stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
          self->deadline_.cancel();
          if (!ec) {
            self->OnBodyRead();
          } else if (self->timed_out_) {
            self->Refuse(408, "request_timeout", "the body did not arrive in time", true);
          } else if (ec == http::error::body_limit) {
            self->Refuse(413, "body_too_large", "the body is over the limit", true);
          } else {
            self->Aborted();
          }
        });
  }

  void OnBodyRead() {
    state_->Lap("body");
    state_->request.body = parser_->release().body();
    asio::post(server_->control_, [self = shared_from_this()] { self->Admit(); });
  }

  // The client went away mid-request: record it, answer nobody.
  void Aborted() {
    state_->keep_alive = false;
    asio::post(server_->control_, [self = shared_from_this()] {
      self->ReleaseReservation();
      self->Audit("denied:aborted");
      asio::post(self->stream_.get_executor(), [self] {
        self->Finish(499, 0);
        self->Close();
      });
    });
  }

  // ---- Control thread: steps 10-11 ----
  void Admit() {
    RequestState& s = *state_;
    s.Lap("queue_admit");
    if (s.public_route) {
      RunHandler(WorkerEngines{});
      return;
    }
    if (s.json_body) {
      if (!nlohmann::json::accept(s.request.body)) {
        Deny(400, "malformed_json", "the body is not well-formed JSON", false);
        return;
      }
    }
    const bool recorded = Audit("ok");
    s.Lap("audit_decision");
    if (!recorded) {
      ReleaseReservation();
      Respond(ErrorWithId(503, "not_ready", "the audit log cannot record this request",
                          s.request.request_id),
              false, "not_ready");
      return;
    }
    if (!s.route->heavy) {
      RunHandler(WorkerEngines{});
      return;
    }
    s.reserved = false;
    server_->workers_.Submit(
        [self = shared_from_this()](const WorkerEngines& engines, bool cancelled) {
          if (cancelled) {
            self->Respond(ErrorWithId(503, "shutting_down", "the server is shutting down",
                                      self->state_->request.request_id),
                          false, "shutting_down",
                          {{"Retry-After", std::to_string(self->options().retry_after_s)}});
            return;
          }
          self->state_->Lap("queue_worker");
          self->RunHandler(engines);
        });
  }

  void RunHandler(const WorkerEngines& engines) {
    RequestState& s = *state_;
    s.request.engines = engines;
    ApiResponse response;
    try {
      const ScopedStageTimes scoped(&s.stages);  // StageTimers in the handler add to this request
      response = s.route->handler(s.request);
    } catch (const std::exception& e) {
      LogEvent(
          "error", "handler threw",
          {{"request_id", s.request.request_id}, {"route", s.route_label}, {"what", e.what()}});
      response = ApiResponse::Error(500, "internal", "internal error");
    } catch (...) {
      response = ApiResponse::Error(500, "internal", "internal error");
    }
    s.request.engines = WorkerEngines{};
    s.Lap("handler");
    FillRequestId(&response, s.request.request_id);
    Respond(std::move(response), false, "");
  }

  void ReleaseReservation() {
    if (state_->reserved) {
      server_->workers_.Unreserve();
      state_->reserved = false;
    }
  }

  // Appends the request's audit event; false when the log refused it.
  bool Audit(const std::string& result) {
    RequestState& s = *state_;
    if (s.public_route || ctx().audit == nullptr) return true;
    audit::AuditEvent event;
    event.time_micros = ctx().env != nullptr ? ctx().env->NowMicros() : Env::Default()->NowMicros();
    event.principal = s.principal;
    event.role = s.role;
    event.purpose = s.request.purpose;
    if (event.purpose.empty()) {
      if (auto it = s.request.headers.find("x-purpose");
          it != s.request.headers.end() && it->second.size() <= 512) {
        event.purpose = it->second;
      }
    }
    event.action = s.route != nullptr ? "http." + s.route->action : "http.unrouted";
    if (auto it = s.request.path_params.find("id"); it != s.request.path_params.end()) {
      event.record_id = it->second;
    }
    event.result = result;
    const Status status = ctx().audit->Append(event);
    if (!status.ok()) {
      LogEvent("error", "audit append failed",
               {{"request_id", s.request.request_id}, {"error", status.ToString()}});
      return false;
    }
    return true;
  }

  // A refusal decided on the control thread: audit it, then answer.
  void Deny(int status, std::string_view code, std::string_view message, bool close,
            const std::map<std::string, std::string>& headers = {}) {
    ReleaseReservation();
    state_->Lap("before_denial");
    const std::string code_string(code);
    ApiResponse response;
    const bool recorded = Audit("denied:" + code_string);
    state_->Lap("audit_denial");
    if (!recorded) {
      response = ErrorWithId(503, "not_ready", "the audit log cannot record this request",
                             state_->request.request_id);
    } else {
      response = ErrorWithId(status, code, message, state_->request.request_id);
      response.headers = headers;
    }
    Respond(std::move(response), close, code_string);
  }

  // A refusal decided on the strand (no blocking allowed there): hop to the control pool.
  void Refuse(int status, std::string code, std::string message, bool close,
              std::map<std::string, std::string> headers = {}) {
    asio::post(server_->control_,
               [self = shared_from_this(), status, code = std::move(code),
                message = std::move(message), close, headers = std::move(headers)] {
                 self->Deny(status, code, message, close, headers);
               });
  }

  // From any thread: hand the response to the strand to be written.
  void Respond(ApiResponse response, bool close, std::string denial,
               std::map<std::string, std::string> extra = {}) {
    for (auto& [k, v] : extra) response.headers[k] = v;
    asio::post(stream_.get_executor(), [self = shared_from_this(), response = std::move(response),
                                        close, denial = std::move(denial)]() mutable {
      self->Write(std::move(response), close, denial);
    });
  }

  // ---- Strand: the response ----
  void Write(ApiResponse response, bool close, const std::string& denial) {
    RequestState& s = *state_;
    if (!denial.empty() && ctx().metrics != nullptr) {
      ctx().metrics->Increment("denied_total", "Requests refused, by reason", {{"reason", denial}});
    }
    const bool keep_alive = s.keep_alive && !close && !server_->shutting_down_;
    auto message = std::make_shared<http::response<http::string_body>>();
    message->version(11);
    message->result(static_cast<unsigned>(response.status));
    message->set(http::field::server, "portcullis");
    message->set(http::field::content_type, response.content_type);
    message->set("X-Request-Id", s.request.request_id);
    message->set(http::field::cache_control, "no-store");
    message->set("X-Content-Type-Options", "nosniff");
    for (const auto& [name, value] : response.headers) message->set(name, value);
    message->body() = std::move(response.body);
    message->keep_alive(keep_alive);
    message->prepare_payload();
    const int status = response.status;
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::milliseconds(options().request_timeout_ms));
    http::async_write(stream_, *message,
                      [self = shared_from_this(), message, keep_alive, status](beast::error_code ec,
                                                                               std::size_t) {
                        beast::get_lowest_layer(self->stream_).expires_never();
                        self->Finish(status, message->body().size());
                        if (ec || !keep_alive) {
                          self->LingeringClose();
                        } else {
                          self->ReadHeader();
                        }
                      });
  }

  // Metrics, the log line, and the in-flight count: once per request.
  void Finish(int status, std::size_t bytes) {
    if (!counted_) return;
    counted_ = false;
    RequestState& s = *state_;
    s.Lap("respond");  // the stages then add up to the latency exactly
    const double seconds = std::chrono::duration<double>(s.mark - s.start).count();
    if (Metrics* metrics = ctx().metrics; metrics != nullptr) {
      metrics->Increment("requests_total", "HTTP requests, by route pattern, method and status",
                         {{"route", s.route_label},
                          {"method", MethodLabel(s.request.method)},
                          {"status", std::to_string(status)}});
      metrics->Observe("request_duration_seconds", "Time from header to response, by route",
                       {{"route", s.route_label}}, seconds);
    }
    RequestLogLine line;
    line.request_id = s.request.request_id;
    line.node = ctx().node_name;
    line.principal = s.principal;
    line.role = s.role;
    line.method = MethodLabel(s.request.method);
    line.route = s.route_label;
    line.status = status;
    line.bytes = bytes;
    line.latency_ms = seconds * 1000.0;
    if (!s.public_route) {
      line.stages_ms = s.stages.entries();
      if (Metrics* metrics = ctx().metrics; metrics != nullptr) {
        for (const auto& [stage, ms] : line.stages_ms) {
          metrics->Observe("request_stage_seconds",
                           "Where request time goes, by route and stage (docs/service.md)",
                           {{"route", s.route_label}, {"stage", stage}}, ms / 1000.0);
        }
      }
    }
    LogRequest(line);
    server_->in_flight_.fetch_sub(1);
    server_->SetGauge("in_flight", "Requests being served",
                      static_cast<double>(server_->in_flight_.load()));
  }

  // Close after a response when the client may still be sending (an unread body): stop sending,
  // then drain for a moment, so the kernel does not answer the client's data with a reset that
  // would destroy the response before the client reads it.
  void LingeringClose() {
    auto& socket = beast::get_lowest_layer(stream_).socket();
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(1));
    Drain();
  }

  void Drain() {
    auto& layer = beast::get_lowest_layer(stream_);
    layer.async_read_some(asio::buffer(drain_),
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
                            if (ec) {
                              self->Close();
                            } else {
                              self->Drain();
                            }
                          });
  }

  void Close() {
    deadline_.cancel();
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
  }

  HttpServer::Impl* server_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  asio::steady_timer deadline_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<RequestState> state_;
  std::array<char, 16 * 1024> drain_{};
  std::string client_cn_;
  bool has_client_cert_ = false;
  bool timed_out_ = false;
  bool counted_ = false;  // the in-flight count holds this request
};

}  // namespace

void HttpServer::Impl::Accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      Accept();
      return;
    }
    if (connections_.load() >= options_.max_connections || shutting_down_) {
      boost::system::error_code ignored;
      socket.close(ignored);
    } else {
      connections_.fetch_add(1);
      std::make_shared<Session>(this, std::move(socket))->Start();
    }
    Accept();
  });
}

// ---- HttpServer ---------------------------------------------------------------------------------

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() {
  if (impl_) impl_->Shutdown();
}

Status HttpServer::Create(const HttpServerOptions& options, ServiceContext* ctx,
                          std::vector<Route> routes, std::vector<WorkerEngines> workers,
                          std::unique_ptr<HttpServer>* server) {
  if (ctx == nullptr) return Status::InvalidArgument("http server: no service context");
  for (const Route& route : routes) {
    if (!route.handler) return Status::InvalidArgument("route " + route.pattern + ": no handler");
    if (!route.action.empty() && !policy::IsKnownAction(route.action)) {
      return Status::InvalidArgument("route " + route.pattern + ": unknown action " + route.action);
    }
    if (!route.action.empty() && !policy::IsKnownCategory(route.category)) {
      return Status::InvalidArgument("route " + route.pattern + ": unknown category " +
                                     route.category);
    }
  }
  for (std::size_t i = 0; i < routes.size(); ++i) {
    for (std::size_t j = i + 1; j < routes.size(); ++j) {
      if (routes[i].method == routes[j].method && routes[i].pattern == routes[j].pattern) {
        return Status::InvalidArgument("route " + routes[i].method + " " + routes[i].pattern +
                                       " registered twice");
      }
    }
  }
  auto impl = std::make_unique<Impl>(options, ctx, std::move(routes), std::move(workers));
  PORTCULLIS_RETURN_IF_ERROR(impl->SetUpTls());
  server->reset(new HttpServer(std::move(impl)));
  return Status::Ok();
}

Status HttpServer::Start() { return impl_->Start(); }
std::uint16_t HttpServer::port() const { return impl_->port_; }
void HttpServer::Shutdown() { impl_->Shutdown(); }
void HttpServer::Wait() { impl_->Wait(); }

HttpServer::Stats HttpServer::stats() const {
  Stats stats;
  stats.in_flight = impl_->in_flight_.load();
  stats.queued = impl_->workers_.queued();
  stats.connections = impl_->connections_.load();
  return stats;
}

}  // namespace portcullis::server
