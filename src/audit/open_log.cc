// OpenTransparencyLog: the one place a log URI becomes a backend.
#include <memory>
#include <string>

#include "audit/postgres_log.h"
#include "portcullis/audit.h"

namespace portcullis::audit {

Status OpenTransparencyLog(const std::string& uri, const std::string& key_dir,
                           const AuditLogOptions& options, std::unique_ptr<TransparencyLog>* log) {
  if (uri.empty()) return Status::InvalidArgument("audit log: empty location");
  LogKeys keys;
  PORTCULLIS_RETURN_IF_ERROR(LoadLogKeys(key_dir, &keys));
  if (uri.starts_with("postgresql://") || uri.starts_with("postgres://")) {
    return internal::OpenPostgresLog(uri, keys, options, log);
  }
  std::string dir = uri;
  if (uri.starts_with("file:")) dir = uri.substr(5);
  if (dir.empty()) return Status::InvalidArgument("audit log: \"file:\" names no directory");
  // Anything else with a scheme is a mistake, not a directory called "sqlite:x".
  const auto colon = dir.find(':');
  if (colon != std::string::npos && dir.find('/') > colon && !uri.starts_with("file:")) {
    return Status::InvalidArgument("audit log: unsupported location \"" + uri +
                                   "\" (a directory, file:DIR or postgresql://...)");
  }
  std::unique_ptr<AuditLog> file_log;
  PORTCULLIS_RETURN_IF_ERROR(AuditLog::Open(dir, keys, options, &file_log));
  *log = std::move(file_log);
  return Status::Ok();
}

}  // namespace portcullis::audit
