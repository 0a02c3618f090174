// The console's embedded files and routes: the table holds exactly the files of
// src/server/console/ byte for byte, with the right content types; the routes serve them with the
// security headers; and no request path, however crafted, reaches anything outside the table.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/api.h"
#include "server/console_assets.h"

namespace portcullis::server {
namespace {

namespace fs = std::filesystem;

const fs::path kConsoleDir = fs::path(PORTCULLIS_SOURCE_DIR) / "src" / "server" / "console";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// An attribute like ` onclick=` (space, "on", letters, optional spaces, '='), any case.
bool HasInlineHandler(std::string_view html) {
  const auto lower = [](char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); };
  for (std::size_t i = 0; i + 3 < html.size(); ++i) {
    if (std::isspace(static_cast<unsigned char>(html[i])) == 0 || lower(html[i + 1]) != 'o' ||
        lower(html[i + 2]) != 'n') {
      continue;
    }
    std::size_t j = i + 3;
    while (j < html.size() && lower(html[j]) >= 'a' && lower(html[j]) <= 'z') ++j;
    if (j == i + 3) continue;
    while (j < html.size() && std::isspace(static_cast<unsigned char>(html[j])) != 0) ++j;
    if (j < html.size() && html[j] == '=') return true;
  }
  return false;
}

std::vector<Route> ConsoleRoutes() {
  ServiceContext ctx;
  std::vector<Route> routes;
  AddConsoleRoutes(ctx, &routes);
  return routes;
}

const Route& FindRoute(const std::vector<Route>& routes, std::string_view pattern) {
  const auto it = std::find_if(routes.begin(), routes.end(),
                               [&](const Route& r) { return r.pattern == pattern; });
  EXPECT_NE(it, routes.end()) << pattern;
  return *it;
}

ApiResponse GetFile(const std::string& name) {
  const std::vector<Route> routes = ConsoleRoutes();
  ApiRequest request;
  request.method = "GET";
  request.path = "/console/" + name;
  request.path_params["file"] = name;
  return FindRoute(routes, "/console/{file}").handler(request);
}

void ExpectSecurityHeaders(const ApiResponse& response) {
  const auto csp = response.headers.find("Content-Security-Policy");
  ASSERT_NE(csp, response.headers.end());
  EXPECT_NE(csp->second.find("default-src 'self'"), std::string::npos);
  EXPECT_NE(csp->second.find("script-src 'self'"), std::string::npos);
  EXPECT_NE(csp->second.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(csp->second.find("unsafe"), std::string::npos) << "no unsafe-inline / unsafe-eval";
  EXPECT_EQ(csp->second.find("http"), std::string::npos) << "no other origin is allowed";
  ASSERT_TRUE(response.headers.count("X-Content-Type-Options"));
  EXPECT_EQ(response.headers.at("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(response.headers.at("X-Frame-Options"), "DENY");
  EXPECT_EQ(response.headers.at("Cache-Control"), "no-store");
}

void ExpectNotFound(const ApiResponse& response, const std::string& name) {
  SCOPED_TRACE("path part: " + name);
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.content_type, "application/json");
  const nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << response.body;
  EXPECT_EQ(body["error"]["code"], "not_found");
  ExpectSecurityHeaders(response);
}

TEST(ConsoleAssets, TableHoldsExactlyTheSourceFilesByteForByte) {
  std::set<std::string> on_disk;
  for (const auto& entry : fs::recursive_directory_iterator(kConsoleDir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.front() == '.' || name.back() == '~') continue;
    on_disk.insert(fs::relative(entry.path(), kConsoleDir).generic_string());
  }
  ASSERT_FALSE(on_disk.empty()) << kConsoleDir;

  std::set<std::string> embedded;
  std::string previous;
  for (const EmbeddedFile& file : ConsoleAssets()) {
    const std::string path(file.path);
    EXPECT_LT(previous, path) << "sorted and unique";
    previous = path;
    embedded.insert(path);
    EXPECT_EQ(file.bytes, ReadFile(kConsoleDir / path)) << path << " differs from its source";
  }
  EXPECT_EQ(embedded, on_disk);
  EXPECT_TRUE(embedded.count("index.html"));
}

TEST(ConsoleAssets, ContentTypesFollowTheExtension) {
  for (const EmbeddedFile& file : ConsoleAssets()) {
    SCOPED_TRACE(std::string(file.path));
    if (EndsWith(file.path, ".html")) {
      EXPECT_EQ(file.content_type, "text/html; charset=utf-8");
    } else if (EndsWith(file.path, ".js")) {
      EXPECT_EQ(file.content_type, "text/javascript; charset=utf-8");
    } else if (EndsWith(file.path, ".css")) {
      EXPECT_EQ(file.content_type, "text/css; charset=utf-8");
    } else {
      ADD_FAILURE() << "a console file type this test does not know";
    }
  }
}

// "No CDN": nothing in the console names another origin; the only URL is the SVG namespace,
// an identifier the browser never fetches. And no inline script or style, which the CSP would
// block anyway (the page would silently not work).
TEST(ConsoleAssets, NothingRefersToAnotherOriginOrInlinesCode) {
  for (const EmbeddedFile& file : ConsoleAssets()) {
    SCOPED_TRACE(std::string(file.path));
    std::string text(file.bytes);
    const std::string svg_ns = "http://www.w3.org/2000/svg";
    for (auto at = text.find(svg_ns); at != std::string::npos; at = text.find(svg_ns)) {
      text.erase(at, svg_ns.size());
    }
    EXPECT_EQ(text.find("http:"), std::string::npos);
    EXPECT_EQ(text.find("https:"), std::string::npos);
    EXPECT_EQ(text.find("//cdn"), std::string::npos);
    EXPECT_EQ(text.find("innerHTML"), std::string::npos) << "data goes in as text nodes";
    if (EndsWith(file.path, ".html")) {
      EXPECT_EQ(text.find(" style="), std::string::npos);
      EXPECT_EQ(text.find("<style"), std::string::npos);
      EXPECT_FALSE(HasInlineHandler(text)) << "no inline event handlers";
      for (auto at = text.find("<script"); at != std::string::npos;
           at = text.find("<script", at + 1)) {
        const std::string tag = text.substr(at, text.find('>', at) - at);
        EXPECT_NE(tag.find(" src="), std::string::npos) << "inline script: " << tag;
      }
    }
  }
}

TEST(ConsoleAssets, InlineHandlerDetectorFindsThem) {
  EXPECT_TRUE(HasInlineHandler("<a href=x onclick=\"go()\">"));
  EXPECT_TRUE(HasInlineHandler("<body\nOnLoad = 'x'>"));
  EXPECT_FALSE(HasInlineHandler("<p>its own scripts only; nothing</p>"));
  EXPECT_FALSE(HasInlineHandler("<input name=one>"));
}

TEST(ConsoleRoutes, ArePublicGetRoutes) {
  const std::vector<Route> routes = ConsoleRoutes();
  ASSERT_EQ(routes.size(), 3U);
  for (const Route& route : routes) {
    EXPECT_EQ(route.method, "GET");
    EXPECT_TRUE(route.action.empty()) << route.pattern << ": static pages need no token";
    EXPECT_TRUE(route.category.empty());
    EXPECT_FALSE(route.heavy);
    EXPECT_TRUE(route.handler);
  }
}

TEST(ConsoleRoutes, IndexIsServedAtTheDirectory) {
  const std::vector<Route> routes = ConsoleRoutes();
  ApiRequest request;
  request.method = "GET";
  request.path = "/console/";
  const ApiResponse response = FindRoute(routes, "/console/").handler(request);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(response.body, ReadFile(kConsoleDir / "index.html"));
  ExpectSecurityHeaders(response);
}

TEST(ConsoleRoutes, BarePathRedirectsToTheDirectory) {
  const std::vector<Route> routes = ConsoleRoutes();
  ApiRequest request;
  request.method = "GET";
  request.path = "/console";
  const ApiResponse response = FindRoute(routes, "/console").handler(request);
  EXPECT_EQ(response.status, 308);
  EXPECT_EQ(response.headers.at("Location"), "/console/");
}

TEST(ConsoleRoutes, EveryFileIsServedWithItsTypeAndHeaders) {
  for (const EmbeddedFile& file : ConsoleAssets()) {
    const ApiResponse response = GetFile(std::string(file.path));
    SCOPED_TRACE(std::string(file.path));
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.content_type, file.content_type);
    EXPECT_EQ(response.body, file.bytes);
    ExpectSecurityHeaders(response);
  }
}

TEST(ConsoleRoutes, NoPathReachesAnythingOutsideTheTable) {
  const std::vector<std::string> hostile = {
      "",
      ".",
      "..",
      "../CMakeLists.txt",
      "..%2FCMakeLists.txt",
      "%2e%2e%2fapi.h",
      "../../../../etc/passwd",
      "/etc/passwd",
      "routes_console.cc",
      "console_assets.h",
      "index.html/",
      "./index.html",
      "INDEX.HTML",
      "index.html%00",
      std::string("app.js\0.png", 11),
      "app.js?x=1",
      "index",
      "app.js.map",
      std::string(4096, 'a'),
  };
  for (const std::string& name : hostile) ExpectNotFound(GetFile(name), name);
  EXPECT_EQ(FindConsoleAsset("../index.html"), nullptr);
  EXPECT_EQ(FindConsoleAsset(""), nullptr);
}

// A router that does not fill path_params still gets the file from the path, and still only from
// the table.
TEST(ConsoleRoutes, FileFromThePathWhenNoParameter) {
  const std::vector<Route> routes = ConsoleRoutes();
  const Route& route = FindRoute(routes, "/console/{file}");
  ApiRequest request;
  request.method = "GET";
  request.path = "/console/app.js";
  EXPECT_EQ(route.handler(request).status, 200);
  request.path = "/console/../server/api.h";
  ExpectNotFound(route.handler(request), request.path);
  request.path = "/elsewhere/app.js";
  ExpectNotFound(route.handler(request), request.path);
}

}  // namespace
}  // namespace portcullis::server
