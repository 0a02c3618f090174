# store_bench: put/get throughput of 50 KB sealed records on SQLite and PostgreSQL, against raw
# file write+fsync / pread of the same bytes. PostgreSQL needs PORTCULLIS_BENCH_PG_URI (see
# docs/vault-store.md); without it those rows report an error and the rest still run.
find_package(benchmark REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PORTCULLIS_STORE_BENCH_PQXX REQUIRED IMPORTED_TARGET libpqxx)
add_executable(store_bench ${CMAKE_CURRENT_LIST_DIR}/store_bench.cc)
target_include_directories(store_bench PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(store_bench PRIVATE portcullis_vault_store PkgConfig::PORTCULLIS_STORE_BENCH_PQXX
                                          benchmark::benchmark)
portcullis_warnings(store_bench)
