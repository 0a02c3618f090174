// The HTTPS server: Boost.Beast over OpenSSL, HTTP/1.1, async I/O on a few threads. It does
// everything around the handlers (api.h) for every request, in this order:
//   1. header read under a deadline (408), header size limit (431), well-formed HTTP (400);
//   2. routing: path checks (400 invalid_path), method + pattern -> Route (404, 405);
//      public routes (no action) skip 3-8 and the audit entry;
//   3. authentication: Bearer token -> Principal (401), and with mTLS a device's certificate CN;
//   4. per-principal rate limit (429 + Retry-After);
//   5. body limits from the header: Content-Length over the limit (413, body never read),
//      media type the route does not accept (415); X-Purpose length (400);
//   6. vendor ticket (X-Ticket) for the route's lane, or the ticket's own lane when the path
//      names none (403 ticket_invalid);
//   7. AccessPolicy::Decide (403 with the denial code);
//   8. heavy routes: a slot in the worker queue is reserved (503 overloaded + Retry-After);
//   9. body read under a deadline (408; 413 while reading a chunked body), JSON well-formedness
//      for JSON routes (400 malformed_json);
//  10. one audit event with the outcome of 2-9 ("ok" or "denied:<code>"); a decision that cannot
//      be recorded is not acted on (503 not_ready);
//  11. the handler: on the worker pool with its engines when the route is heavy.
// Blocking work (token lookup, audit append, handlers) never runs on the I/O threads: steps 3-8
// and 10-11 run on a small pool of "control" threads, heavy handlers on the worker pool.
// docs/service.md explains the order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "portcullis/status.h"
#include "server/api.h"

namespace portcullis::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: a free port, see HttpServer::port()
  std::string cert_file;   // PEM certificate chain
  std::string key_file;    // PEM private key
  // Mutual TLS: when set, client certificates are verified against these CAs, and principals with
  // a device role must present one whose subject CN equals their principal name.
  std::string client_ca_file;

  std::size_t io_threads = 2;       // socket I/O only
  std::size_t control_threads = 4;  // auth, policy, audit, light handlers
  std::size_t max_connections = 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 16 * 1024 * 1024;
  std::uint32_t header_timeout_ms = 10'000;   // the whole header (and a keep-alive's idle wait)
  std::uint32_t request_timeout_ms = 30'000;  // the whole body; also the response write
  std::size_t queue = 16;                     // heavy requests waiting for a worker
  std::size_t control_queue = 256;            // requests waiting for a control thread
  double rate_per_minute = 0;                 // per principal; 0: no limit
  double rate_burst = 0;                      // bucket size; 0: rate_per_minute / 6, at least 1
  std::uint32_t shutdown_grace_ms = 10'000;   // how long in-flight requests may still run
  std::uint32_t retry_after_s = 1;            // Retry-After on 503 overloaded / shutting_down

  // The request media types each route accepts, by (method, pattern); from openapi.json's
  // requestBody. A route absent here takes no body type check (GETs, DELETEs). "image/*"-style
  // wildcards allowed. A JSON type also gets the body checked for well-formedness.
  struct BodyRule {
    std::vector<std::string> media_types;
    bool required = false;
  };
  std::map<std::pair<std::string, std::string>, BodyRule> body_rules;
};

// Runs the server until Shutdown. Thread-safe.
class HttpServer {
 public:
  // ctx: access, policy, audit, metrics, env and node_name are used (access/policy/audit may be
  // null only when every route is public). workers: one entry per worker thread, whose engines
  // the heavy handlers it runs borrow (they stay owned by the caller and must outlive the server).
  static Status Create(const HttpServerOptions& options, ServiceContext* ctx,
                       std::vector<Route> routes, std::vector<WorkerEngines> workers,
                       std::unique_ptr<HttpServer>* server);
  ~HttpServer();  // Shutdown() if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the threads. IOError when the address cannot be bound.
  Status Start();
  [[nodiscard]] std::uint16_t port() const;
  // Graceful: stops accepting, answers queued-but-unstarted heavy work 503 shutting_down and new
  // requests on open connections likewise, lets started requests finish (up to
  // shutdown_grace_ms), then stops. Idempotent; blocks until stopped.
  void Shutdown();
  // Blocks until Shutdown has completed (from another thread or a signal handler thread).
  void Wait();

  struct Stats {
    std::size_t in_flight = 0;    // requests between header and response written
    std::size_t queued = 0;       // heavy requests waiting for a worker
    std::size_t connections = 0;  // open connections
  };
  [[nodiscard]] Stats stats() const;

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Path checks and pattern matching, exposed for tests.
// A path is acceptable when it starts with '/', and has no '%', '\\', "//", control characters,
// or "." / ".." segments.
[[nodiscard]] bool IsCleanPath(std::string_view path);
// Matches "/v1/lanes/{lane}/reads" against a clean path. kParamInvalid when the shape matches but
// a parameter is outside [A-Za-z0-9._:-]{1,64}.
enum class MatchResult { kNo, kYes, kParamInvalid };
MatchResult MatchPattern(std::string_view pattern, std::string_view path,
                         std::map<std::string, std::string>* params);
// Query string "a=1&b=x%20y" -> {"a":"1","b":"x y"}; false on a bad percent escape.
bool ParseQuery(std::string_view query, std::map<std::string, std::string>* out);

}  // namespace portcullis::server
