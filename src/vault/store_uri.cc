#include "vault/store_uri.h"

#include <string_view>

namespace portcullis::vault {

Status ParseStoreUri(const std::string& uri, StoreUri* parsed) {
  constexpr std::string_view kSqlite = "sqlite:";
  constexpr std::string_view kPostgresql = "postgresql://";
  constexpr std::string_view kPostgres = "postgres://";
  if (uri.find('\0') != std::string::npos) {
    return Status::InvalidArgument("store URI contains a NUL byte");
  }
  std::string_view view(uri);
  if (view.starts_with(kSqlite)) {
    std::string path(view.substr(kSqlite.size()));
    if (path.empty()) return Status::InvalidArgument("store URI 'sqlite:' names no file");
    // SQLite's own "file:" URIs and ":memory:" would bypass the durability settings.
    if (path.starts_with("file:") || path == ":memory:") {
      return Status::InvalidArgument("store URI '" + uri + "': give a plain file path");
    }
    parsed->backend = StoreBackend::kSqlite;
    parsed->sqlite_path = std::move(path);
    return Status::Ok();
  }
  if (view.starts_with(kPostgresql) || view.starts_with(kPostgres)) {
    parsed->backend = StoreBackend::kPostgres;
    parsed->postgres_uri = uri;
    return Status::Ok();
  }
  return Status::InvalidArgument("store URI '" + RedactStoreUri(uri) +
                                 "': expected sqlite:PATH, postgresql://... or postgres://...");
}

std::string RedactStoreUri(const std::string& uri) {
  // scheme://user:password@host -> scheme://user:***@host
  std::size_t scheme = uri.find("://");
  if (scheme == std::string::npos) return uri;
  std::size_t start = scheme + 3;
  std::size_t at = uri.find('@', start);
  std::size_t slash = uri.find('/', start);
  std::string out = uri;
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    std::size_t colon = uri.find(':', start);
    if (colon != std::string::npos && colon < at) {
      out = uri.substr(0, colon + 1) + "***" + uri.substr(at);
    }
  }
  // ...?password=secret&... -> ...?password=***&...
  std::size_t pw = out.find("password=");
  if (pw != std::string::npos && (pw == 0 || out[pw - 1] == '?' || out[pw - 1] == '&')) {
    std::size_t end = out.find('&', pw);
    out = out.substr(0, pw + 9) + "***" + (end == std::string::npos ? "" : out.substr(end));
  }
  return out;
}

}  // namespace portcullis::vault
