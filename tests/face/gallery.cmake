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
