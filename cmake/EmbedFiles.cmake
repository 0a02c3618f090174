# Embeds every file of a directory in a target as byte arrays with a lookup table (path, content
# type, bytes), so the binary serves them without reading the disk at run time: nothing to
# install next to it, and nothing on disk that an attacker could swap for a page of their own.
# Pure CMake (no xxd, no Python): the same on every machine that can build the project.
#
# Two roles in one file:
#   include(cmake/EmbedFiles.cmake) defines portcullis_embed_files(...) for a CMakeLists.txt;
#   cmake -DEMBED_DIR=... -P cmake/EmbedFiles.cmake is the generator that function runs at build
#   time (so an edited page is re-embedded by the next build, no re-configure needed).
#
# The generated .cc defines `std::span<const EmbeddedFile> FUNCTION()` in NAMESPACE, declared in
# HEADER (a hand-written header that defines EmbeddedFile {path, content_type, bytes}). Files are
# sorted by their path relative to the directory ('/'-separated). Hidden files and editor backups
# are left out; a file whose extension has no known content type stops the build, so nothing is
# ever served with a guessed type.

# Content types by extension (lower case). Text types say their charset, so the browser never
# sniffs one ('|' stands for "; ", which a CMake list would split on).
set(_PORTCULLIS_EMBED_TYPES
  "html=text/html|charset=utf-8"
  "css=text/css|charset=utf-8"
  "js=text/javascript|charset=utf-8"
  "mjs=text/javascript|charset=utf-8"
  "json=application/json"
  "svg=image/svg+xml"
  "png=image/png"
  "ico=image/x-icon"
  "txt=text/plain|charset=utf-8")

function(_portcullis_embed_list_files dir out_var)
  file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE "${dir}" "${dir}/*")
  set(kept "")
  foreach(file IN LISTS files)
    get_filename_component(name "${file}" NAME)
    if(name MATCHES "^\\." OR name MATCHES "~$")
      continue()
    endif()
    list(APPEND kept "${file}")
  endforeach()
  list(SORT kept)
  set(${out_var} "${kept}" PARENT_SCOPE)
endfunction()

# portcullis_embed_files(TARGET DIR NAME NAMESPACE FUNCTION HEADER)
#   adds ${CMAKE_CURRENT_BINARY_DIR}/NAME.cc, generated from the files under DIR, to TARGET.
function(portcullis_embed_files target dir name namespace function header)
  # CONFIGURE_DEPENDS: a file added to or removed from DIR re-runs the configure step, which
  # refreshes the DEPENDS list below.
  file(GLOB_RECURSE inputs CONFIGURE_DEPENDS "${dir}/*")
  set(output "${CMAKE_CURRENT_BINARY_DIR}/${name}.cc")
  add_custom_command(
    OUTPUT "${output}"
    COMMAND "${CMAKE_COMMAND}" "-DEMBED_DIR=${dir}" "-DEMBED_OUTPUT=${output}"
            "-DEMBED_NAMESPACE=${namespace}" "-DEMBED_FUNCTION=${function}"
            "-DEMBED_HEADER=${header}" -P "${CMAKE_CURRENT_FUNCTION_LIST_FILE}"
    DEPENDS ${inputs} "${CMAKE_CURRENT_FUNCTION_LIST_FILE}"
    COMMENT "Embedding ${dir} in ${name}.cc"
    VERBATIM)
  target_sources(${target} PRIVATE "${output}")
endfunction()

# ---- The generator (script mode) -----------------------------------------------------------
if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  foreach(var EMBED_DIR EMBED_OUTPUT EMBED_NAMESPACE EMBED_FUNCTION EMBED_HEADER)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
      message(FATAL_ERROR "EmbedFiles.cmake: -D${var}=... is required")
    endif()
  endforeach()
  if(NOT IS_DIRECTORY "${EMBED_DIR}")
    message(FATAL_ERROR "EmbedFiles.cmake: ${EMBED_DIR} is not a directory")
  endif()

  _portcullis_embed_list_files("${EMBED_DIR}" files)
  set(arrays "")
  set(entries "")
  set(index 0)
  foreach(file IN LISTS files)
    if(NOT file MATCHES "^[A-Za-z0-9._/-]+$")
      message(FATAL_ERROR "EmbedFiles.cmake: ${file}: only [A-Za-z0-9._/-] in embedded names")
    endif()
    get_filename_component(ext "${file}" LAST_EXT)
    string(SUBSTRING "${ext}" 1 -1 ext)
    string(TOLOWER "${ext}" ext)
    set(type "")
    foreach(pair IN LISTS _PORTCULLIS_EMBED_TYPES)
      string(FIND "${pair}" "=" eq)
      string(SUBSTRING "${pair}" 0 ${eq} key)
      if(key STREQUAL ext)
        math(EXPR start "${eq} + 1")
        string(SUBSTRING "${pair}" ${start} -1 type)
        string(REPLACE "|" "; " type "${type}")
      endif()
    endforeach()
    if(type STREQUAL "")
      message(FATAL_ERROR "EmbedFiles.cmake: ${file}: no content type for '.${ext}' "
                          "(add it to _PORTCULLIS_EMBED_TYPES)")
    endif()

    file(READ "${EMBED_DIR}/${file}" hex HEX)
    string(LENGTH "${hex}" hex_length)
    math(EXPR size "${hex_length} / 2")
    if(size EQUAL 0)
      set(bytes "'\\0'")  # a C++ array cannot be empty; the entry's size stays 0
    else()
      # 16 bytes a line, each as a character literal ('\x3c'): valid for any byte value.
      string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
      string(REPEAT "'[^']+'," 16 line)  # CMake's regex has no {16}
      string(REGEX REPLACE "(${line})" "\\1\n    " bytes "${bytes}")
    endif()
    string(APPEND arrays "// ${file}\nconstexpr char kFile${index}[] = {\n    ${bytes}};\n")
    string(APPEND entries
           "    {\"${file}\", \"${type}\", std::string_view(kFile${index}, ${size})},\n")
    math(EXPR index "${index} + 1")
  endforeach()
  if(index EQUAL 0)
    message(FATAL_ERROR "EmbedFiles.cmake: no files under ${EMBED_DIR}")
  endif()

  set(content "// Generated by cmake/EmbedFiles.cmake from ${EMBED_DIR}. Do not edit.\n")
  string(APPEND content "#include \"${EMBED_HEADER}\"\n\n#include <array>\n#include <span>\n")
  string(APPEND content "#include <string_view>\n\nnamespace ${EMBED_NAMESPACE} {\nnamespace {\n\n")
  string(APPEND content "${arrays}\n")
  string(APPEND content "constexpr std::array<EmbeddedFile, ${index}> kFiles = {{\n${entries}}};\n\n")
  string(APPEND content "}  // namespace\n\n")
  string(APPEND content "std::span<const EmbeddedFile> ${EMBED_FUNCTION}() { return kFiles; }\n\n")
  string(APPEND content "}  // namespace ${EMBED_NAMESPACE}\n")

  # Write only when changed, so an unchanged console does not recompile the server.
  set(old "")
  if(EXISTS "${EMBED_OUTPUT}")
    file(READ "${EMBED_OUTPUT}" old)
  endif()
  if(NOT old STREQUAL content)
    file(WRITE "${EMBED_OUTPUT}" "${content}")
  endif()
endif()
