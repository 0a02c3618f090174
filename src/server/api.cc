// The API's response helpers: one JSON error shape for every failure (docs/api.md).
#include "server/api.h"

#include <utility>

#include <nlohmann/json.hpp>

namespace portcullis::server {

ApiResponse ApiResponse::Json(int status, const nlohmann::json& body) {
  ApiResponse response;
  response.status = status;
  response.content_type = "application/json";
  // Replace invalid UTF-8 rather than throw: a handler echoing client bytes must not crash us.
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

ApiResponse ApiResponse::Error(int status, std::string_view code, std::string_view message) {
  // request_id is filled in by the server, which knows it; handlers need not.
  return Json(status, nlohmann::json{{"error", {{"code", code}, {"message", message}}}});
}

ApiResponse ApiResponse::Bytes(int status, std::string content_type, std::string body) {
  ApiResponse response;
  response.status = status;
  response.content_type = std::move(content_type);
  response.body = std::move(body);
  return response;
}

}  // namespace portcullis::server
