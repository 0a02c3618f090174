// The web console's routes: GET /console/ (the index) and GET /console/{file}, public (no token:
// the pages hold no data; every figure on them comes from the API with the user's own token).
// The files are compiled into the binary (console_assets.h), so a request can only ever name an
// entry of that table: there is no file system path to traverse.
#include <string>
#include <string_view>
#include <vector>

#include "server/api.h"
#include "server/console_assets.h"

namespace portcullis::server {
namespace {

constexpr std::string_view kPrefix = "/console/";
constexpr std::string_view kIndex = "index.html";

// The same hardening on every console response, errors included: the CSP allows only this
// origin's scripts, styles and API (no inline script, no CDN, no framing), and nosniff makes the
// browser trust the declared content type.
void AddSecurityHeaders(ApiResponse* response) {
  response->headers["Content-Security-Policy"] = std::string(kConsoleCsp);
  response->headers["X-Content-Type-Options"] = "nosniff";
  response->headers["X-Frame-Options"] = "DENY";
  response->headers["Referrer-Policy"] = "no-referrer";
  response->headers["Cross-Origin-Opener-Policy"] = "same-origin";
  response->headers["Cross-Origin-Resource-Policy"] = "same-origin";
  // The pages are small and change with the binary: no cache to go stale after an upgrade.
  response->headers["Cache-Control"] = "no-store";
}

ApiResponse Serve(std::string_view name) {
  ApiResponse response;
  if (const EmbeddedFile* file = FindConsoleAsset(name)) {
    response = ApiResponse::Bytes(200, std::string(file->content_type), std::string(file->bytes));
  } else {
    response = ApiResponse::Error(404, "not_found", "no such console file");
  }
  AddSecurityHeaders(&response);
  return response;
}

}  // namespace

const EmbeddedFile* FindConsoleAsset(std::string_view path) {
  for (const EmbeddedFile& file : ConsoleAssets()) {
    if (file.path == path) return &file;
  }
  return nullptr;
}

void AddConsoleRoutes(ServiceContext& /*ctx*/, std::vector<Route>* routes) {
  // "/console" without the slash: relative links in the index need the directory form.
  routes->push_back(Route{"GET", "/console", "", "", "", false, [](ApiRequest& /*request*/) {
                            ApiResponse response = ApiResponse::Bytes(308, "text/plain", "");
                            response.headers["Location"] = std::string(kPrefix);
                            AddSecurityHeaders(&response);
                            return response;
                          }});
  routes->push_back(Route{"GET", std::string(kPrefix), "", "", "", false,
                          [](ApiRequest& /*request*/) { return Serve(kIndex); }});
  routes->push_back(
      Route{"GET", std::string(kPrefix) + "{file}", "", "", "", false, [](ApiRequest& request) {
              const auto param = request.path_params.find("file");
              if (param != request.path_params.end()) return Serve(param->second);
              // A router that did not fill the parameter: take the path's tail.
              std::string_view path = request.path;
              if (path.substr(0, kPrefix.size()) != kPrefix) return Serve("");
              return Serve(path.substr(kPrefix.size()));
            }});
}

}  // namespace portcullis::server
