#include "vault/record_store.h"

#include "vault/postgres_store.h"
#include "vault/sqlite_store.h"
#include "vault/store_uri.h"

namespace portcullis::vault {

Status RecordStore::Open(const std::string& uri, std::unique_ptr<RecordStore>* store) {
  StoreUri parsed;
  PORTCULLIS_RETURN_IF_ERROR(ParseStoreUri(uri, &parsed));
  if (parsed.backend == StoreBackend::kSqlite) return OpenSqliteStore(parsed.sqlite_path, store);
  return OpenPostgresStore(parsed.postgres_uri, store);
}

}  // namespace portcullis::vault
