# Tests of the vault's key side (envelope, keyring, PKCS#11, retention).
#
# The provider suite runs against a private SoftHSM2 token that the softhsm_token_setup fixture
# creates in the build dir (scripts/softhsm_token.sh), so a plain `ctest` works on a machine where
# scripts/install.sh installed softhsm2. Without the token those tests fail; they are never
# skipped. SoftHSM2's file object store is not safe against several processes changing one token
# at once (a reader can briefly see no token), so the token's tests hold a RESOURCE_LOCK.
set(PORTCULLIS_TEST_SOFTHSM_DIR ${CMAKE_CURRENT_BINARY_DIR}/softhsm)
set(PORTCULLIS_TEST_TOKEN_LABEL portcullis-test)
set(PORTCULLIS_TEST_TOKEN_PIN 271828)

add_executable(portcullis_vault_keys_tests
  ${CMAKE_CURRENT_LIST_DIR}/keys_envelope_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/keys_keyring_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/keys_retention_test.cc
)
add_executable(portcullis_vault_provider_tests ${CMAKE_CURRENT_LIST_DIR}/keys_provider_test.cc)
foreach(target portcullis_vault_keys_tests portcullis_vault_provider_tests)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/src/vault)
  target_link_libraries(${target} PRIVATE portcullis_vault_keys portcullis_vault GTest::gtest_main)
  target_compile_definitions(${target} PRIVATE
    PORTCULLIS_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    PORTCULLIS_TEST_SOFTHSM_CONF="${PORTCULLIS_TEST_SOFTHSM_DIR}/softhsm2.conf"
    PORTCULLIS_TEST_TOKEN_LABEL="${PORTCULLIS_TEST_TOKEN_LABEL}"
    PORTCULLIS_TEST_TOKEN_PIN="${PORTCULLIS_TEST_TOKEN_PIN}")
  portcullis_warnings(${target})
endforeach()

add_test(NAME softhsm_token_setup
         COMMAND ${PROJECT_SOURCE_DIR}/scripts/softhsm_token.sh ${PORTCULLIS_TEST_SOFTHSM_DIR}
                 ${PORTCULLIS_TEST_TOKEN_LABEL} ${PORTCULLIS_TEST_TOKEN_PIN} 314159)
set_tests_properties(softhsm_token_setup PROPERTIES FIXTURES_SETUP portcullis_softhsm
                                                    RESOURCE_LOCK portcullis_softhsm)

gtest_discover_tests(portcullis_vault_keys_tests DISCOVERY_TIMEOUT 60)
gtest_discover_tests(portcullis_vault_provider_tests DISCOVERY_TIMEOUT 60
  PROPERTIES FIXTURES_REQUIRED portcullis_softhsm
             RESOURCE_LOCK portcullis_softhsm
             ENVIRONMENT "SOFTHSM2_CONF=${PORTCULLIS_TEST_SOFTHSM_DIR}/softhsm2.conf")
