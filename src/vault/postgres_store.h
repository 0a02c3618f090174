// The PostgreSQL backend of RecordStore (libpqxx). A batch is one transaction; Put returns after
// the server acknowledged the commit (durable under the server's default synchronous_commit=on).
#pragma once

#include <memory>
#include <string>

#include "vault/record_store.h"

namespace portcullis::vault {

Status OpenPostgresStore(const std::string& uri, std::unique_ptr<RecordStore>* store);

}  // namespace portcullis::vault
