// The SQLite backend of RecordStore: one file in WAL mode with synchronous=FULL, so a committed
// batch survives a crash of the process or of the machine.
#pragma once

#include <memory>
#include <string>

#include "vault/record_store.h"

struct sqlite3;

namespace portcullis::vault {

// SQLite's result code as a Status (disk full and I/O -> IOError, not a database -> Corruption,
// constraint -> InvalidArgument); shared by every SQLite-backed store.
Status SqliteError(int rc, sqlite3* db, const std::string& what);

Status OpenSqliteStore(const std::string& path, std::unique_ptr<RecordStore>* store);

}  // namespace portcullis::vault
