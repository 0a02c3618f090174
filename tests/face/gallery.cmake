# Galleries and 1:N search (face-search helper). No models or shared data needed.
find_package(GTest REQUIRED)
include(GoogleTest)
add_executable(portcullis_face_gallery_tests
  ${CMAKE_CURRENT_LIST_DIR}/gallery_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/gallery_file_test.cc
)
target_include_directories(portcullis_face_gallery_tests PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(portcullis_face_gallery_tests PRIVATE portcullis_face GTest::gtest_main)
portcullis_warnings(portcullis_face_gallery_tests)
gtest_discover_tests(portcullis_face_gallery_tests DISCOVERY_TIMEOUT 60)

# The CLI helpers (src/cli/face_gallery_json.cc) are compiled in directly so that this test does
# not need the whole CLI library (and its plate engine) built.
add_executable(portcullis_face_gallery_cli_tests ${CMAKE_CURRENT_LIST_DIR}/gallery_cli_test.cc)
target_include_directories(portcullis_face_gallery_cli_tests PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(portcullis_face_gallery_cli_tests PRIVATE portcullis_cli GTest::gtest_main)
portcullis_warnings(portcullis_face_gallery_cli_tests)
gtest_discover_tests(portcullis_face_gallery_cli_tests DISCOVERY_TIMEOUT 60)
