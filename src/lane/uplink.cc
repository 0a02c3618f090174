// The lane agent's mutual-TLS link to the service (uplink.h). One keep-alive connection at a time,
// driven synchronously from the drainer's thread: every operation is an asynchronous Beast call
// with a deadline (tcp_stream::expires_after), run to completion on a private io_context, so a
// dead or silent service costs at most connect_timeout_ms / request_timeout_ms, never a hang.
#include "lane/uplink.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <optional>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "portcullis/env.h"

namespace portcullis::lane {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

const char* LinkStateName(LinkState state) {
  switch (state) {
    case LinkState::kUp:
      return "up";
    case LinkState::kUnreachable:
      return "unreachable";
    case LinkState::kCertificateExpired:
      return "certificate_expired";
    case LinkState::kTlsFailed:
      return "tls_failed";
    case LinkState::kRejected:
      return "rejected";
    case LinkState::kServerError:
      return "server_error";
    case LinkState::kUnauthorized:
      return "unauthorized";
  }
  return "unknown";
}

LinkState LinkStateForHttpStatus(int status) {
  if (status >= 200 && status < 300) return LinkState::kUp;
  switch (status) {
    case 400:
    case 409:
    case 413:
    case 415:
    case 422:
      return LinkState::kRejected;
    case 401:
    case 403:
      return LinkState::kUnauthorized;
    default:
      return LinkState::kServerError;  // 5xx, 429, 503, and 404/405/408 (retry later)
  }
}

namespace {

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::int64_t AsnTimeToMicros(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm)) * 1'000'000;
}

std::string OpenSslErrors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {  // NOLINT(google-runtime-int): OpenSSL's type
    char buffer[256];
    ERR_error_string_n(e, buffer, sizeof(buffer));
    if (!out.empty()) out += "; ";
    out += buffer;
  }
  return out;
}

struct ParsedUrl {
  std::string host;
  std::string port = "443";
};

Status ParseUrl(const std::string& url, ParsedUrl* out) {
  const std::string prefix = "https://";
  if (url.rfind(prefix, 0) != 0) return Status::InvalidArgument("uplink url must be https://");
  std::string rest = url.substr(prefix.size());
  if (const std::size_t slash = rest.find('/'); slash != std::string::npos) {
    if (rest.substr(slash) != "/") {
      return Status::InvalidArgument("uplink url must be https://HOST[:PORT] without a path");
    }
    rest.resize(slash);
  }
  if (!rest.empty() && rest[0] == '[') {  // [v6]:port
    const std::size_t close = rest.find(']');
    if (close == std::string::npos) return Status::InvalidArgument("uplink url: bad IPv6 host");
    out->host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return Status::InvalidArgument("uplink url: bad port");
      out->port = rest.substr(close + 2);
    }
  } else if (const std::size_t colon = rest.rfind(':'); colon != std::string::npos) {
    out->host = rest.substr(0, colon);
    out->port = rest.substr(colon + 1);
  } else {
    out->host = rest;
  }
  if (out->host.empty() || out->port.empty() || out->port.size() > 5 ||
      !std::all_of(out->port.begin(), out->port.end(), ::isdigit)) {
    return Status::InvalidArgument("uplink url: bad host or port in " + url);
  }
  return Status::Ok();
}

bool IsIpAddress(const std::string& host) {
  boost::system::error_code ec;
  (void)net::ip::make_address(host, ec);
  return !ec;
}

// A TLS-level failure reported by OpenSSL (an alert from the peer, a verify failure): the link
// state it means. nullopt when ec is not a TLS error (a reset, a timeout, EOF).
std::optional<LinkState> TlsFailureState(const boost::system::error_code& ec,
                                         long verify) {  // NOLINT(google-runtime-int)
  if (verify == X509_V_ERR_CERT_HAS_EXPIRED || verify == X509_V_ERR_CERT_NOT_YET_VALID) {
    return LinkState::kCertificateExpired;  // the service's certificate
  }
  if (ec.category() != net::error::get_ssl_category()) {
    return verify != X509_V_OK ? std::optional<LinkState>(LinkState::kTlsFailed) : std::nullopt;
  }
  // The service refused our certificate as expired: its alert names it. (With TLS 1.3 the alert
  // arrives after our side of the handshake has finished, on the first read.)
  const int reason =
      ERR_GET_REASON(static_cast<unsigned long>(ec.value()));  // NOLINT(google-runtime-int)
  if (reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED) return LinkState::kCertificateExpired;
  return LinkState::kTlsFailed;
}

class HttpsUplink final : public Uplink {
 public:
  HttpsUplink(UplinkConfig config, ParsedUrl url, std::string token)
      : config_(std::move(config)),
        url_(std::move(url)),
        token_(std::move(token)),
        tls_(ssl::context::tls_client) {}

  ~HttpsUplink() override { Close(); }

  Status Init() {
    SSL_CTX* ctx = tls_.native_handle();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(ctx, config_.ca_file.c_str(), nullptr) != 1) {
      return Status::InvalidArgument("uplink ca_file " + config_.ca_file + ": " + OpenSslErrors());
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, config_.cert_file.c_str()) != 1) {
      return Status::InvalidArgument("uplink cert_file " + config_.cert_file + ": " +
                                     OpenSslErrors());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, config_.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      return Status::InvalidArgument("uplink key_file " + config_.key_file + ": " +
                                     OpenSslErrors());
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    return CertificateValidity(config_.cert_file, &not_before_, &not_after_);
  }

  Status SendEvent(const SealedEvent& event, LinkState* state, int* retry_after_ms,
                   bool* duplicate) override {
    *retry_after_ms = 0;
    *duplicate = false;
    http::request<http::string_body> request{http::verb::post,
                                             "/v1/lanes/" + config_.lane + "/events", 11};
    request.set("Content-Type", "application/vnd.portcullis.sealed-event");
    request.set("X-Event-Id", event.event_id);
    request.set("X-Event-Sequence", std::to_string(event.sequence));
    request.body() = event.sealed;
    int status = 0;
    Status s = Exchange(std::move(request), state, retry_after_ms, &status);
    // 201: stored now; 200: the service already had this event id ({"duplicate": true}).
    *duplicate = s.ok() && status == 200;
    return s;
  }

  Status SendReport(const std::string& json, LinkState* state) override {
    http::request<http::string_body> request{http::verb::post,
                                             "/v1/lanes/" + config_.lane + "/reports", 11};
    request.set("Content-Type", "application/json");
    request.body() = json;
    int retry_after_ms = 0;
    return Exchange(std::move(request), state, &retry_after_ms);
  }

 private:
  using Stream = beast::ssl_stream<beast::tcp_stream>;

  // Runs the io_context until the operation started by `start` has called its handler.
  template <typename Start>
  boost::system::error_code Run(Start&& start) {
    boost::system::error_code result = net::error::would_block;
    start([&result](boost::system::error_code ec, auto&&...) { result = ec; });
    ioc_.restart();
    ioc_.run();
    return result;
  }

  std::int64_t NowMicros() const {
    return config_.now_micros ? config_.now_micros() : Env::Default()->NowMicros();
  }

  void Close() {
    if (stream_) {
      boost::system::error_code ignored;
      beast::get_lowest_layer(*stream_).socket().close(ignored);
      stream_.reset();
    }
  }

  Status Connect(LinkState* state) {
    // Our own certificate first: an expired one would fail every handshake, and saying so is
    // more useful to a technician than "handshake failure".
    const std::int64_t now = NowMicros();
    if (now < not_before_ || now >= not_after_) {
      *state = LinkState::kCertificateExpired;
      return Status::Unsupported(std::string("this device's certificate is ") +
                                 (now < not_before_ ? "not yet valid" : "expired"));
    }
    Close();
    stream_.emplace(ioc_, tls_);
    SSL* ssl = stream_->native_handle();
    if (IsIpAddress(url_.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url_.host.c_str());
    } else {
      // SNI (SSL_set_tlsext_host_name, spelled out: the macro's C cast fails -Wold-style-cast).
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(url_.host.c_str()));
      SSL_set1_host(ssl, url_.host.c_str());
    }
    tcp::resolver resolver(ioc_);
    boost::system::error_code ec;
    const auto endpoints = resolver.resolve(url_.host, url_.port, ec);
    if (ec) {
      *state = LinkState::kUnreachable;
      return Status::IOError("resolve " + url_.host + ": " + ec.message());
    }
    auto& tcp_stream = beast::get_lowest_layer(*stream_);
    tcp_stream.expires_after(std::chrono::milliseconds(config_.connect_timeout_ms));
    ec = Run([&](auto handler) { tcp_stream.async_connect(endpoints, handler); });
    if (ec) {
      Close();
      *state = LinkState::kUnreachable;
      return Status::IOError("connect " + url_.host + ":" + url_.port + ": " + ec.message());
    }
    ec = Run([&](auto handler) { stream_->async_handshake(ssl::stream_base::client, handler); });
    if (ec) {
      const long verify = SSL_get_verify_result(ssl);  // NOLINT(google-runtime-int)
      std::string detail = ec.message();
      if (verify != X509_V_OK) {
        detail += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
      }
      Close();
      if (ec == beast::error::timeout) {
        *state = LinkState::kUnreachable;
      } else {
        *state = TlsFailureState(ec, verify).value_or(LinkState::kTlsFailed);
      }
      return Status::IOError("TLS handshake with " + url_.host + ": " + detail);
    }
    return Status::Ok();
  }

  Status Exchange(http::request<http::string_body> request, LinkState* state, int* retry_after_ms,
                  int* http_status = nullptr) {
    request.set(http::field::host, url_.host);
    request.set(http::field::authorization, "Bearer " + token_);
    request.set(http::field::user_agent, "portcullis-lane");
    request.keep_alive(true);
    request.prepare_payload();
    // A kept-alive connection may have been closed by the service meanwhile (idle timeout): one
    // fresh attempt on a new connection. Re-sending is safe: events are idempotent by id.
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = stream_.has_value();
      if (!reused) PORTCULLIS_RETURN_IF_ERROR(Connect(state));
      auto& tcp_stream = beast::get_lowest_layer(*stream_);
      tcp_stream.expires_after(std::chrono::milliseconds(config_.request_timeout_ms));
      boost::system::error_code ec =
          Run([&](auto handler) { http::async_write(*stream_, request, handler); });
      http::response_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      beast::flat_buffer buffer;
      bool got_bytes = false;
      if (!ec) {
        ec = Run([&](auto handler) { http::async_read(*stream_, buffer, parser, handler); });
        got_bytes = buffer.size() > 0 || parser.got_some();
      }
      if (ec) {
        const auto tls_state = TlsFailureState(ec, X509_V_OK);
        Close();
        if (tls_state) {
          *state = *tls_state;
          return Status::IOError("TLS with " + url_.host + ": " + ec.message());
        }
        if (reused && !got_bytes && ec != beast::error::timeout) continue;
        *state = LinkState::kUnreachable;
        return Status::IOError("request to " + url_.host + ": " + ec.message());
      }
      const auto& response = parser.get();
      if (!response.keep_alive()) Close();
      const int status = static_cast<int>(response.result_int());
      if (http_status != nullptr) *http_status = status;
      *state = LinkStateForHttpStatus(status);
      if (*state == LinkState::kUp) return Status::Ok();
      if (const auto it = response.find(http::field::retry_after); it != response.end()) {
        int seconds = 0;
        const std::string value(it->value());
        if (std::sscanf(value.c_str(), "%d", &seconds) == 1 && seconds > 0) {
          *retry_after_ms = std::min(seconds, 3600) * 1000;
        }
      }
      // The error code only: the body could echo anything, and logs must stay free of data.
      std::string code;
      if (const std::size_t at = response.body().find("\"code\":\""); at != std::string::npos) {
        const std::size_t end = response.body().find('"', at + 8);
        if (end != std::string::npos && end - (at + 8) <= 64) {
          code = response.body().substr(at + 8, end - (at + 8));
        }
      }
      const std::string message = "service answered " + std::to_string(status) +
                                  (code.empty() ? std::string() : " " + code);
      if (status == 400 || status == 409 || status == 413 || status == 415 || status == 422) {
        return Status::InvalidArgument(message);
      }
      if (status == 401 || status == 403) return Status::InvalidArgument(message);
      return Status::IOError(message);
    }
    *state = LinkState::kUnreachable;
    return Status::IOError("request to " + url_.host + " failed twice");
  }

  UplinkConfig config_;
  ParsedUrl url_;
  std::string token_;
  net::io_context ioc_;
  ssl::context tls_;
  std::optional<Stream> stream_;
  std::int64_t not_before_ = 0;
  std::int64_t not_after_ = 0;
};

}  // namespace

Status CertificateValidity(const std::string& pem_file, std::int64_t* not_before_micros,
                           std::int64_t* not_after_micros) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_file(pem_file.c_str(), "r"));
  if (!bio) return Status::NotFound("certificate " + pem_file + ": cannot open");
  std::unique_ptr<X509, X509Deleter> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return Status::Corruption("certificate " + pem_file + ": not a PEM certificate");
  *not_before_micros = AsnTimeToMicros(X509_get0_notBefore(cert.get()));
  *not_after_micros = AsnTimeToMicros(X509_get0_notAfter(cert.get()));
  if (*not_after_micros == 0) return Status::Corruption("certificate " + pem_file + ": bad dates");
  return Status::Ok();
}

Status Uplink::Open(const UplinkConfig& config, std::unique_ptr<Uplink>* uplink) {
  ParsedUrl url;
  PORTCULLIS_RETURN_IF_ERROR(ParseUrl(config.url, &url));
  if (config.lane.empty() || config.lane.find('/') != std::string::npos ||
      config.lane.find('?') != std::string::npos) {
    return Status::InvalidArgument("uplink lane must be a plain path segment");
  }
  if (config.connect_timeout_ms <= 0 || config.request_timeout_ms <= 0 ||
      config.backoff_initial_ms <= 0 || config.backoff_max_ms < config.backoff_initial_ms) {
    return Status::InvalidArgument("uplink timeouts and back-off must be positive");
  }
  std::string token;
  PORTCULLIS_RETURN_IF_ERROR(
      Env::Default()->ReadFile(config.token_file, 4096, &token).WithContext("uplink token_file"));
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.empty() || token.find_first_of("\r\n") != std::string::npos) {
    return Status::InvalidArgument("uplink token_file must hold one token on one line");
  }
  auto link = std::make_unique<HttpsUplink>(config, std::move(url), std::move(token));
  PORTCULLIS_RETURN_IF_ERROR(link->Init());
  *uplink = std::move(link);
  return Status::Ok();
}

// ---- QueueDrainer ------------------------------------------------------------------------------

QueueDrainer::QueueDrainer(SealedQueue* queue, Uplink* uplink, const UplinkConfig& config)
    : queue_(queue), uplink_(uplink), config_(config), rng_(std::random_device{}()) {}

DrainStats QueueDrainer::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void QueueDrainer::Notify() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    notified_ = true;
  }
  wake_.notify_all();
}

void QueueDrainer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
}

int QueueDrainer::BackoffMs(std::uint64_t failures, int retry_after_ms) {
  const int cap = std::max(1, config_.backoff_max_ms);
  if (retry_after_ms > 0) return std::min(retry_after_ms, cap);
  std::int64_t delay = std::max(1, config_.backoff_initial_ms);
  for (std::uint64_t i = 1; i < failures && delay < cap; ++i) delay *= 2;
  delay = std::min<std::int64_t>(delay, cap);
  // Equal jitter: many lanes that lost the link together do not come back in lock-step.
  std::uniform_int_distribution<std::int64_t> jitter(0, delay / 2);
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(delay - jitter(rng_));
}

void QueueDrainer::Wait(int ms, bool wake_on_notify, const std::function<bool()>& stop) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_ && !(wake_on_notify && notified_)) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    // Slices of at most 100 ms so that the caller's stop() is seen promptly too.
    wake_.wait_for(lock, std::min<std::chrono::steady_clock::duration>(
                             deadline - now, std::chrono::milliseconds(100)));
    if (stop && stop()) break;
  }
  if (wake_on_notify) notified_ = false;
}

Status QueueDrainer::DrainOne(DrainStats* stats) {
  stats->acknowledged.clear();
  stats->acknowledged_duplicate = false;
  SealedEvent event;
  Status s = queue_->Front(&event);
  if (s.code() == Status::Code::kNotFound) return s;
  if (!s.ok()) {
    // The queue cannot be read (disk error): nothing to send; the agent's health reports it.
    return s;
  }
  LinkState state = LinkState::kUp;
  int retry_after_ms = 0;
  bool duplicate = false;
  Status sent = uplink_->SendEvent(event, &state, &retry_after_ms, &duplicate);
  stats->state = state;
  if (sent.ok()) {
    // Acknowledged: only now may it leave the queue. A crash before PopFront re-sends it after
    // the restart, and the service answers "duplicate".
    PORTCULLIS_RETURN_IF_ERROR(queue_->PopFront(event.event_id));
    ++stats->delivered;
    if (duplicate) ++stats->duplicates;
    stats->backoff_ms = 0;
    stats->acknowledged = event.event_id;
    stats->acknowledged_duplicate = duplicate;
    return Status::Ok();
  }
  if (state == LinkState::kRejected) {
    // A poison event (tampered, malformed, refused for good): it must not block the lane.
    PORTCULLIS_RETURN_IF_ERROR(queue_->PopFront(event.event_id));
    ++stats->rejected;
    return sent;
  }
  ++stats->failures;
  stats->backoff_ms = retry_after_ms;
  return sent;
}

void QueueDrainer::Run(const std::function<bool()>& stop,
                       const std::function<void(const DrainStats&)>& on_change) {
  std::uint64_t consecutive_failures = 0;
  const auto stopped = [&] {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return true;
    }
    return stop && stop();
  };
  while (!stopped()) {
    DrainStats local = stats();
    const Status s = DrainOne(&local);
    if (s.code() == Status::Code::kNotFound) {
      Wait(idle_poll_ms, /*wake_on_notify=*/true, stop);
      continue;
    }
    const bool retry = !s.ok() && local.state != LinkState::kRejected;
    if (retry) {
      ++consecutive_failures;
      local.backoff_ms = BackoffMs(consecutive_failures, local.backoff_ms);
    } else {
      consecutive_failures = 0;
      local.backoff_ms = 0;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_ = local;
    }
    if (on_change) on_change(local);
    if (retry) Wait(local.backoff_ms, /*wake_on_notify=*/false, stop);
  }
}

}  // namespace portcullis::lane
