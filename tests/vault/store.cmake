# Tests of the vault store: one suite, run against SQLite and a private PostgreSQL server.
find_package(SQLite3 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PORTCULLIS_STORE_TEST_PQXX REQUIRED IMPORTED_TARGET libpqxx)

# The crash and disk-full tests' child process.
add_executable(vault_store_writer ${CMAKE_CURRENT_LIST_DIR}/store_writer.cc)
target_include_directories(vault_store_writer PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(vault_store_writer PRIVATE portcullis_vault_store)
portcullis_warnings(vault_store_writer)

add_executable(portcullis_vault_store_tests
  ${CMAKE_CURRENT_LIST_DIR}/store_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/store_bad_input_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/store_test_util.cc
)
target_include_directories(portcullis_vault_store_tests PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(portcullis_vault_store_tests PRIVATE
  portcullis_vault_store SQLite::SQLite3 PkgConfig::PORTCULLIS_STORE_TEST_PQXX GTest::gtest_main)
target_compile_definitions(portcullis_vault_store_tests PRIVATE
  PORTCULLIS_VAULT_STORE_WRITER="$<TARGET_FILE:vault_store_writer>")
add_dependencies(portcullis_vault_store_tests vault_store_writer)
portcullis_warnings(portcullis_vault_store_tests)

# A throwaway PostgreSQL cluster in the build dir for the duration of the run (see
# scripts/pg_test_server.sh); every store test requires it, so `ctest` alone works.
set(PORTCULLIS_PG_TEST_DIR ${CMAKE_CURRENT_BINARY_DIR}/pgtest)
add_test(NAME postgres_server_setup
         COMMAND ${PROJECT_SOURCE_DIR}/scripts/pg_test_server.sh start ${PORTCULLIS_PG_TEST_DIR})
set_tests_properties(postgres_server_setup PROPERTIES FIXTURES_SETUP vault_postgres TIMEOUT 120)
add_test(NAME postgres_server_cleanup
         COMMAND ${PROJECT_SOURCE_DIR}/scripts/pg_test_server.sh stop ${PORTCULLIS_PG_TEST_DIR})
set_tests_properties(postgres_server_cleanup PROPERTIES FIXTURES_CLEANUP vault_postgres TIMEOUT 60)
gtest_discover_tests(portcullis_vault_store_tests DISCOVERY_TIMEOUT 60
  PROPERTIES FIXTURES_REQUIRED vault_postgres
             ENVIRONMENT "PORTCULLIS_TEST_PG_URI_FILE=${PORTCULLIS_PG_TEST_DIR}/uri"
             TIMEOUT 120)
