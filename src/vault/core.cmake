# portcullis_vault: the Vault, composing the store, the keys, the retention rules and the audit log.
# Retention rules live here rather than with the keys: they tie the record model (store) to KEK
# names (keys).
add_library(portcullis_vault STATIC
  ${CMAKE_CURRENT_LIST_DIR}/retention.cc
  ${CMAKE_CURRENT_LIST_DIR}/vault.cc
)
target_include_directories(portcullis_vault PUBLIC ${PROJECT_SOURCE_DIR}/include
                                            PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(portcullis_vault PUBLIC portcullis_vault_store portcullis_vault_keys
                                              portcullis_audit portcullis_common
                                       PRIVATE nlohmann_json::nlohmann_json)
target_compile_definitions(portcullis_vault PRIVATE
  PORTCULLIS_DEFAULT_DATA_DIR="${PORTCULLIS_DATA_DIR}")
portcullis_warnings(portcullis_vault)
