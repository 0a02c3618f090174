// The audit log kept in PostgreSQL, for several nodes sharing one database (docs/audit.md,
// "The PostgreSQL log"). Opened through OpenTransparencyLog.
#pragma once

#include <memory>
#include <string>

#include "portcullis/audit.h"

namespace portcullis::audit::internal {

// uri: "postgresql://..." or "postgres://...". Creates or migrates the schema, refuses a log
// whose tree heads are signed by another key, and writes the size-0 head of a new log.
Status OpenPostgresLog(const std::string& uri, const LogKeys& keys, const AuditLogOptions& options,
                       std::unique_ptr<TransparencyLog>* log);

}  // namespace portcullis::audit::internal
