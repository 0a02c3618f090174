// The agent's two small local servers: /healthz + /metrics (plain HTTP, loopback) and the
// maintenance port (HTTPS). Both see a handful of requests an hour, from one machine or one
// technician's laptop, so this is deliberately small: one request per connection, a bounded
// number of connections each on its own thread, strict limits on what a request may be (a
// 16 KiB head, a 1 MiB body, 10 s to send it), and never a file on disk.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "portcullis/status.h"

namespace portcullis::lane {

struct LocalRequest {
  std::string method;
  std::string path;                            // without the query string
  std::string query;                           // after '?', raw
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct LocalResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;
  // A streamed response (the MJPEG preview): called after the head is sent, with a writer that
  // returns false once the client is gone; the stream ends when this returns.
  std::function<void(const std::function<bool(std::string_view)>& write)> stream;

  static LocalResponse Json(int status, const std::string& json_body);
  static LocalResponse Error(int status, const std::string& code, const std::string& message);
};

using LocalHandler = std::function<LocalResponse(const LocalRequest&)>;

struct LocalHttpOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;                   // 0: any free port
  std::string tls_cert_file, tls_key_file;  // both set: HTTPS
  int max_connections = 8;
  std::size_t max_body_bytes = 1 << 20;
  int request_timeout_ms = 10000;
};

class LocalHttpServer {
 public:
  static Status Start(const LocalHttpOptions& options, LocalHandler handler,
                      std::unique_ptr<LocalHttpServer>* server);
  virtual ~LocalHttpServer() = default;
  [[nodiscard]] virtual std::uint16_t port() const = 0;
  // Stops accepting, ends streams, joins every thread. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace portcullis::lane
