// The web console's static files (src/server/console/), embedded in the binary at build time by
// cmake/EmbedFiles.cmake, and the routes that serve them (routes_console.cc, docs/console.md).
#pragma once

#include <span>
#include <string_view>

namespace portcullis::server {

struct EmbeddedFile {
  std::string_view path;          // relative to src/server/console/, e.g. "app.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view bytes;
};

// Every embedded console file, sorted by path (generated: console_assets.cc in the build tree).
std::span<const EmbeddedFile> ConsoleAssets();

// The file named by a request path's last part, or null. Only names in the table match, so no
// path (traversal, encoded separators, empty) can reach anything else.
const EmbeddedFile* FindConsoleAsset(std::string_view path);

// The headers every console response carries (CSP, nosniff, ...), for the routes and the tests.
inline constexpr std::string_view kConsoleCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

}  // namespace portcullis::server
