# portcullis_vault_store: the vault's record model and its storage (SQLite and PostgreSQL).
find_package(SQLite3 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PORTCULLIS_STORE_PQXX REQUIRED IMPORTED_TARGET libpqxx)
pkg_check_modules(PORTCULLIS_STORE_SODIUM REQUIRED IMPORTED_TARGET libsodium)

add_library(portcullis_vault_store STATIC
  ${CMAKE_CURRENT_LIST_DIR}/record.cc
  ${CMAKE_CURRENT_LIST_DIR}/record_sql.cc
  ${CMAKE_CURRENT_LIST_DIR}/record_store.cc
  ${CMAKE_CURRENT_LIST_DIR}/store_uri.cc
  ${CMAKE_CURRENT_LIST_DIR}/migrations.cc
  ${CMAKE_CURRENT_LIST_DIR}/sqlite_store.cc
  ${CMAKE_CURRENT_LIST_DIR}/postgres_store.cc
)
target_include_directories(portcullis_vault_store PUBLIC ${PROJECT_SOURCE_DIR}/include
                                                  PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(portcullis_vault_store
  PUBLIC portcullis_common
  PRIVATE SQLite::SQLite3 PkgConfig::PORTCULLIS_STORE_PQXX PkgConfig::PORTCULLIS_STORE_SODIUM
          nlohmann_json::nlohmann_json)
portcullis_warnings(portcullis_vault_store)
