# portcullis_vault_keys: key providers (keyring file, PKCS#11 token), envelope encryption and
# retention rules. Included from src/vault/CMakeLists.txt.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PORTCULLIS_KEYS_SODIUM REQUIRED IMPORTED_TARGET libsodium)
# Only the PKCS#11 header from p11-kit: the module itself is dlopen()ed at run time.
pkg_check_modules(PORTCULLIS_KEYS_P11KIT REQUIRED p11-kit-1)

add_library(portcullis_vault_keys STATIC
  ${CMAKE_CURRENT_LIST_DIR}/secret_bytes.cc
  ${CMAKE_CURRENT_LIST_DIR}/envelope.cc
  ${CMAKE_CURRENT_LIST_DIR}/key_provider.cc
  ${CMAKE_CURRENT_LIST_DIR}/keyring_provider.cc
  ${CMAKE_CURRENT_LIST_DIR}/pkcs11_provider.cc
)
target_include_directories(portcullis_vault_keys PUBLIC ${PROJECT_SOURCE_DIR}/include
                                                 PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_include_directories(portcullis_vault_keys SYSTEM PRIVATE ${PORTCULLIS_KEYS_P11KIT_INCLUDE_DIRS})
target_link_libraries(portcullis_vault_keys
  PUBLIC portcullis_common PkgConfig::PORTCULLIS_KEYS_SODIUM
  PRIVATE nlohmann_json::nlohmann_json ${CMAKE_DL_LIBS})
portcullis_warnings(portcullis_vault_keys)
