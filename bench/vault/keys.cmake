# keys_bench: envelope Seal/Open against raw XChaCha20-Poly1305 (the ceiling), and PKCS#11 wrap
# latency on a SoftHSM2 token the benchmark creates for itself.
find_package(benchmark REQUIRED)
add_executable(keys_bench ${CMAKE_CURRENT_LIST_DIR}/keys_bench.cc)
target_link_libraries(keys_bench PRIVATE portcullis_vault_keys benchmark::benchmark)
target_compile_definitions(keys_bench PRIVATE
  PORTCULLIS_SOFTHSM_TOKEN_SCRIPT="${PROJECT_SOURCE_DIR}/scripts/softhsm_token.sh")
portcullis_warnings(keys_bench)
