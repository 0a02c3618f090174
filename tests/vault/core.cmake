# The vault as a whole (store + keys + retention + audit), on SQLite and on the private
# PostgreSQL server that store.cmake's fixture starts.
add_executable(portcullis_vault_tests
  ${CMAKE_CURRENT_LIST_DIR}/vault_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/store_test_util.cc
)
target_include_directories(portcullis_vault_tests PRIVATE ${PROJECT_SOURCE_DIR}/src
                                                          ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(portcullis_vault_tests PRIVATE
  portcullis_vault SQLite::SQLite3 PkgConfig::PORTCULLIS_STORE_TEST_PQXX GTest::gtest_main)
target_compile_definitions(portcullis_vault_tests PRIVATE
  PORTCULLIS_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
portcullis_warnings(portcullis_vault_tests)
gtest_discover_tests(portcullis_vault_tests DISCOVERY_TIMEOUT 60
  PROPERTIES FIXTURES_REQUIRED vault_postgres
             ENVIRONMENT "PORTCULLIS_TEST_PG_URI_FILE=${PORTCULLIS_PG_TEST_DIR}/uri"
             TIMEOUT 120)

# `portcullis vault ...` through the real binary.
add_executable(portcullis_vault_cli_tests ${CMAKE_CURRENT_LIST_DIR}/vault_cli_test.cc)
target_include_directories(portcullis_vault_cli_tests PRIVATE ${PROJECT_SOURCE_DIR}/src
                                                              ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(portcullis_vault_cli_tests PRIVATE portcullis_cli_runner GTest::gtest_main)
portcullis_warnings(portcullis_vault_cli_tests)
gtest_discover_tests(portcullis_vault_cli_tests DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300)
