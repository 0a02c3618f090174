// The SQLite backend of RecordStore: one file in WAL mode with synchronous=FULL, so a committed
// batch survives a crash of the process or of the machine.
#pragma once

#include <memory>
#include <string>

#include "vault/record_store.h"

namespace portcullis::vault {

Status OpenSqliteStore(const std::string& path, std::unique_ptr<RecordStore>* store);

}  // namespace portcullis::vault
