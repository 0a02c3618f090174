// The service's config (every field validated, errors name the field) and the OpenAPI document
// (every route documented, nothing documented that does not exist).
#include "server/service.h"

#include <set>
#include <string>
#include <utility>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace portcullis::server {
namespace {

nlohmann::json MinimalConfig() {
  return nlohmann::json::parse(R"({
    "node": "n1", "listen": "127.0.0.1:8443",
    "tls": {"cert": "tls/cert.pem", "key": "/etc/portcullis/key.pem"},
    "vault": {"store": "sqlite:vault.db", "keys": "keyring:vault.keyring", "secret_file": "secret"},
    "audit": {"log": "audit", "keys": "audit-keys"},
    "access": {"store": "sqlite:access.db", "policy": "policy.json"}})");
}

Status Parse(const nlohmann::json& j, ServiceConfig* c) {
  return ParseServiceConfig(j.dump(), "/srv/p", c);
}

TEST(ServiceConfigTest, MinimalConfigGetsDefaultsAndResolvedPaths) {
  ServiceConfig c;
  ASSERT_TRUE(Parse(MinimalConfig(), &c).ok());
  EXPECT_EQ(c.node, "n1");
  EXPECT_EQ(c.host, "127.0.0.1");
  EXPECT_EQ(c.port, 8443);
  EXPECT_EQ(c.tls.cert, "/srv/p/tls/cert.pem");
  EXPECT_EQ(c.tls.key, "/etc/portcullis/key.pem");
  EXPECT_EQ(c.vault.store, "sqlite:/srv/p/vault.db");
  EXPECT_EQ(c.vault.keys, "keyring:/srv/p/vault.keyring");
  EXPECT_EQ(c.vault.secret_file, "/srv/p/secret");
  EXPECT_EQ(c.audit.log, "/srv/p/audit");
  EXPECT_EQ(c.access.store, "sqlite:/srv/p/access.db");
  EXPECT_EQ(c.gates.traveller_key, "/srv/p/traveller.key");
  EXPECT_EQ(c.limits.max_body_bytes, 16u * 1024 * 1024);
  EXPECT_EQ(c.limits.workers, 0u);
  EXPECT_TRUE(c.models.plates);
}

TEST(ServiceConfigTest, PostgresUrisAndLimitsAreTaken) {
  nlohmann::json j = MinimalConfig();
  j["vault"]["store"] = "postgresql://p@db/portcullis";
  j["audit"]["log"] = "postgresql://p@db/portcullis";
  j["access"]["store"] = "postgres://p@db/portcullis";
  j["vault"].erase("secret_file");
  j["vault"]["secret_env"] = "PORTCULLIS_SECRET";
  j["listen"] = "[::1]:0";
  j["limits"] = {{"workers", 2}, {"queue", 3}, {"rate_per_minute", 120}, {"max_body_bytes", 4096}};
  ServiceConfig c;
  ASSERT_TRUE(Parse(j, &c).ok());
  EXPECT_EQ(c.vault.store, "postgresql://p@db/portcullis");
  EXPECT_EQ(c.audit.log, "postgresql://p@db/portcullis");
  EXPECT_EQ(c.host, "::1");
  EXPECT_EQ(c.port, 0);
  EXPECT_EQ(c.limits.workers, 2u);
  EXPECT_EQ(c.limits.queue, 3u);
  EXPECT_EQ(c.limits.rate_per_minute, 120);
  EXPECT_EQ(c.vault.secret_env, "PORTCULLIS_SECRET");
}

TEST(ServiceConfigTest, ErrorsNameTheField) {
  struct Case {
    std::string what;
    nlohmann::json config;
    std::string field;
  };
  std::vector<Case> cases;
  auto with = [](auto edit) {
    nlohmann::json j = MinimalConfig();
    edit(j);
    return j;
  };
  cases.push_back({"missing node", with([](auto& j) { j.erase("node"); }), "node"});
  cases.push_back({"bad node", with([](auto& j) { j["node"] = "a b"; }), "node"});
  cases.push_back({"no port", with([](auto& j) { j["listen"] = "127.0.0.1"; }), "listen"});
  cases.push_back({"big port", with([](auto& j) { j["listen"] = "127.0.0.1:70000"; }), "listen"});
  cases.push_back({"no tls", with([](auto& j) { j.erase("tls"); }), "tls"});
  cases.push_back({"tls typo", with([](auto& j) { j["tls"]["clientca"] = "x"; }), "tls.clientca"});
  cases.push_back({"no key", with([](auto& j) { j["tls"].erase("key"); }), "tls.key"});
  cases.push_back(
      {"two secrets", with([](auto& j) { j["vault"]["secret_env"] = "X"; }), "vault.secret_file"});
  cases.push_back(
      {"bad store", with([](auto& j) { j["vault"]["store"] = "mysql://x"; }), "vault.store"});
  cases.push_back(
      {"bad keys", with([](auto& j) { j["vault"]["keys"] = "vault.keyring"; }), "vault.keys"});
  cases.push_back({"audit keys", with([](auto& j) { j["audit"]["keys"] = 3; }), "audit.keys"});
  cases.push_back({"access", with([](auto& j) { j["access"].erase("policy"); }), "access.policy"});
  cases.push_back({"workers", with([](auto& j) {
                     j["limits"] = {{"workers", 0}};
                   }),
                   "limits.workers"});
  cases.push_back({"workers type", with([](auto& j) {
                     j["limits"] = {{"workers", "2"}};
                   }),
                   "limits.workers"});
  cases.push_back({"fraction", with([](auto& j) {
                     j["limits"] = {{"queue", 1.5}};
                   }),
                   "limits.queue"});
  cases.push_back({"limits typo", with([](auto& j) {
                     j["limits"] = {{"worker", 2}};
                   }),
                   "limits.worker"});
  cases.push_back({"body", with([](auto& j) {
                     j["limits"] = {{"max_body_bytes", 10}};
                   }),
                   "limits.max_body_bytes"});
  cases.push_back({"keep", with([](auto& j) {
                     j["gates"] = {{"keep_citizen", "maybe"}};
                   }),
                   "gates.keep_citizen"});
  cases.push_back({"models", with([](auto& j) {
                     j["models"] = {{"faces", "yes"}};
                   }),
                   "models.faces"});
  cases.push_back(
      {"top typo", with([](auto& j) { j["limit"] = nlohmann::json::object(); }), "limit"});
  for (const Case& c : cases) {
    ServiceConfig config;
    const Status s = Parse(c.config, &config);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << c.what;
    EXPECT_EQ(s.message().rfind(c.field + ":", 0), 0u) << c.what << ": " << s.ToString();
  }
  ServiceConfig config;
  EXPECT_FALSE(ParseServiceConfig("{not json", "/", &config).ok());
  EXPECT_FALSE(ParseServiceConfig("[1]", "/", &config).ok());
  EXPECT_EQ(LoadServiceConfig("/nonexistent/portcullis.json", &config).code(),
            Status::Code::kNotFound);
}

// ---- OpenAPI
// ---------------------------------------------------------------------------------------

TEST(OpenApiTest, DocumentsExactlyTheRouteTable) {
  const nlohmann::json doc = nlohmann::json::parse(OpenApiDocument(), nullptr, false);
  ASSERT_TRUE(doc.is_object()) << "openapi.json does not parse";
  EXPECT_EQ(doc["openapi"].get<std::string>().rfind("3.0", 0), 0u);
  std::set<std::pair<std::string, std::string>> documented;
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      std::string upper = method;
      for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      documented.insert({upper, path});
    }
  }
  ServiceContext ctx;
  std::set<std::pair<std::string, std::string>> served;
  for (const Route& route : BuildRouteTable(ctx)) served.insert({route.method, route.pattern});
  for (const auto& [method, path] : served) {
    EXPECT_TRUE(documented.count({method, path})) << method << " " << path << " is not documented";
  }
  for (const auto& [method, path] : documented) {
    EXPECT_TRUE(served.count({method, path}))
        << method << " " << path << " is documented but not served";
  }
  EXPECT_EQ(served.size(), documented.size());
  EXPECT_GE(served.size(), 38u);  // every group registered something
}

TEST(OpenApiTest, EveryOperationHasResponsesAndProtectedOnesAnAction) {
  const nlohmann::json doc = nlohmann::json::parse(OpenApiDocument());
  ASSERT_TRUE(doc["components"]["securitySchemes"].contains("bearer"));
  ServiceContext ctx;
  std::map<std::pair<std::string, std::string>, Route> routes;
  for (const Route& route : BuildRouteTable(ctx)) routes[{route.method, route.pattern}] = route;
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, op] : item.items()) {
      EXPECT_TRUE(op.contains("responses") && !op["responses"].empty()) << method << " " << path;
      std::string upper = method;
      for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      auto it = routes.find({upper, path});
      if (it == routes.end()) continue;
      const bool is_public = it->second.action.empty();
      EXPECT_EQ(op.contains("security") && op["security"].empty(), is_public)
          << method << " " << path;
      if (!is_public) {
        EXPECT_EQ(op.value("x-portcullis-action", ""), it->second.action) << method << " " << path;
        EXPECT_EQ(op.value("x-portcullis-category", ""), it->second.category)
            << method << " " << path;
      }
    }
  }
}

TEST(OpenApiTest, BodyRulesComeFromRequestBodies) {
  std::map<std::pair<std::string, std::string>, HttpServerOptions::BodyRule> rules;
  ASSERT_TRUE(BodyRulesFromOpenApi(OpenApiDocument(), &rules).ok());
  const auto& reads = rules.at({"POST", "/v1/lanes/{lane}/reads"});
  EXPECT_TRUE(reads.required);
  EXPECT_NE(std::find(reads.media_types.begin(), reads.media_types.end(), "video/*"),
            reads.media_types.end());
  EXPECT_EQ(rules.at({"POST", "/v1/principals"}).media_types,
            std::vector<std::string>{"application/json"});
  EXPECT_FALSE(rules.at({"POST", "/v1/exports/{id}/approve"}).required);
  EXPECT_EQ(rules.count({"GET", "/v1/plates/{id}"}), 0u);
  EXPECT_FALSE(BodyRulesFromOpenApi("{}", &rules).ok());
}

}  // namespace
}  // namespace portcullis::server
