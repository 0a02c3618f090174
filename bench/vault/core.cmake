# vault_bench: the vault end to end against the raw AEAD ceiling, on SQLite and PostgreSQL, and
# audit-log append throughput, in one run (docs/vault.md has the table).
find_package(benchmark REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PORTCULLIS_VAULT_BENCH_SODIUM REQUIRED IMPORTED_TARGET libsodium)
add_executable(vault_bench ${CMAKE_CURRENT_LIST_DIR}/vault_bench.cc)
target_link_libraries(vault_bench PRIVATE portcullis_vault PkgConfig::PORTCULLIS_VAULT_BENCH_SODIUM
                                          benchmark::benchmark)
target_compile_definitions(vault_bench PRIVATE PORTCULLIS_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
portcullis_warnings(vault_bench)
