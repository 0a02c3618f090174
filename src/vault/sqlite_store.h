// The SQLite backend of RecordStore: one file in WAL mode with synchronous=FULL, so a committed
// batch survives a crash of the process or of the machine, plus segment files for large bodies.
#pragma once

#include <memory>
#include <string>

#include "vault/record_store.h"

struct sqlite3;

namespace portcullis::vault {

// SQLite's result code as a Status (disk full and I/O -> IOError, not a database -> Corruption,
// constraint -> InvalidArgument); shared by every SQLite-backed store.
Status SqliteError(int rc, sqlite3* db, const std::string& what);

// Opens (creating if missing) a SQLite store. Sealed bodies over 4 KiB live in append-only
// segment files in PATH.blobs/ (docs/vault-store.md, "Segment files").
Status OpenSqliteStore(const std::string& path, std::unique_ptr<RecordStore>* store);

// Tests only: called at named points of a SQLite Put — "bodies-written" (bodies written to the
// segment, not yet synced) and "bodies-synced" (durable, rows not yet committed). The crash
// tests' writer kills itself there. Not for production use; null (the default) disables it.
using SqliteFaultHook = void (*)(const char* point);
void SetSqliteFaultHookForTesting(SqliteFaultHook hook);

}  // namespace portcullis::vault
