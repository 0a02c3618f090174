// Parsing of store URIs (see RecordStore::Open).
#pragma once

#include <string>

#include "portcullis/status.h"

namespace portcullis::vault {

enum class StoreBackend { kSqlite, kPostgres };

struct StoreUri {
  StoreBackend backend = StoreBackend::kSqlite;
  std::string sqlite_path;   // kSqlite: the file
  std::string postgres_uri;  // kPostgres: the URI as given, for libpq
};

// InvalidArgument, naming what is wrong, for anything but "sqlite:PATH" (PATH non-empty, no NUL)
// or "postgresql://..." / "postgres://...".
Status ParseStoreUri(const std::string& uri, StoreUri* parsed);

// The URI with any password replaced by "***", for messages and logs.
std::string RedactStoreUri(const std::string& uri);

}  // namespace portcullis::vault
