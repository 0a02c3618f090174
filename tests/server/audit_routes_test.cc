// The auditors' endpoints, called directly (no HTTP): the JSON contracts of docs/api.md, proofs
// that verify with only the head's public key, leaves that never name a record, the NDJSON export
// rebuilt into a log directory and checked by the offline verifier, and every bad parameter a 400.
#include <stdlib.h>  // mkdtemp

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "audit/format.h"
#include "portcullis/audit.h"
#include "server/api.h"

namespace portcullis::server {
namespace {

using nlohmann::json;

std::string Unbase64(const std::string& in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    if (ch == '=') break;
    const auto v = kAlphabet.find(ch);
    if (v == std::string::npos) return "<bad base64>";
    acc = (acc << 6U) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> static_cast<unsigned>(bits)) & 0xFFU);
    }
  }
  return out;
}

audit::Hash HexHash(const std::string& hex) {
  audit::Hash h{};
  EXPECT_TRUE(audit::HashFromHex(hex, &h)) << hex;
  return h;
}

audit::SignedTreeHead HeadFromJson(const json& j) {
  audit::SignedTreeHead sth;
  sth.tree_size = j.at("tree_size").get<std::uint64_t>();
  sth.timestamp_micros = j.at("timestamp_micros").get<std::int64_t>();
  sth.root_hash = HexHash(j.at("root_hash").get<std::string>());
  EXPECT_TRUE(audit::internal::HexToBytes(j.at("signature").get<std::string>(),
                                          sth.signature.data(), sth.signature.size()));
  return sth;
}

std::vector<audit::Hash> PathFromJson(const json& j) {
  std::vector<audit::Hash> path;
  for (const auto& h : j) path.push_back(HexHash(h.get<std::string>()));
  return path;
}

class AuditRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "portcullis_audit_routes_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    ASSERT_TRUE(audit::GenerateKeys(dir_ + "/keys").ok());
    ASSERT_TRUE(audit::LoadLogKeys(dir_ + "/keys", &keys_).ok());
    ASSERT_TRUE(audit::OpenTransparencyLog(dir_ + "/log", dir_ + "/keys", {}, &log_).ok());
    ctx_.audit = log_.get();
    ctx_.node_name = "n1";
    AddAuditRoutes(ctx_, &routes_);
    // 23 events in three batches: some touch a record, some do not.
    for (int b = 0; b < 3; ++b) {
      std::vector<audit::AuditEvent> events;
      for (int i = 0; i < (b == 1 ? 13 : 5); ++i) {
        audit::AuditEvent e;
        e.time_micros = 1'700'000'000'000'000 + b * 100 + i;
        e.principal = "officer:" + std::to_string(i);
        e.role = "officer";
        e.purpose = "case " + std::to_string(b);
        e.action = "http.plate.lookup";
        e.record_id = i % 2 == 0 ? "deadbeefdeadbeefdeadbeefdeadbeef" : "";
        e.result = "ok";
        events.push_back(e);
      }
      ASSERT_TRUE(log_->AppendAll(events).ok());
    }
  }
  void TearDown() override {
    log_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  ApiResponse Call(const std::string& pattern, std::map<std::string, std::string> query = {}) {
    for (Route& r : routes_) {
      if (r.pattern != pattern) continue;
      ApiRequest request;
      request.method = r.method;
      request.path = pattern;
      request.query = std::move(query);
      return r.handler(request);
    }
    ADD_FAILURE() << "no route " << pattern;
    return {};
  }

  static json Body(const ApiResponse& r) { return json::parse(r.body); }

  void ExpectBadRequest(const std::string& pattern, std::map<std::string, std::string> query) {
    const ApiResponse r = Call(pattern, query);
    EXPECT_EQ(r.status, 400) << pattern << " " << r.body;
    ASSERT_EQ(r.content_type, "application/json");
    EXPECT_EQ(Body(r)["error"]["code"], "invalid_argument") << r.body;
  }

  std::string dir_;
  audit::LogKeys keys_;
  std::unique_ptr<audit::TransparencyLog> log_;
  ServiceContext ctx_;
  std::vector<Route> routes_;
};

TEST_F(AuditRoutesTest, RouteTableMatchesTheApiContract) {
  std::map<std::string, std::string> actions;
  for (const Route& r : routes_) {
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.category, "audit_log");
    EXPECT_FALSE(r.heavy);
    actions[r.pattern] = r.action;
  }
  EXPECT_EQ(actions,
            (std::map<std::string, std::string>{{"/v1/audit/tree-head", "audit.read"},
                                                {"/v1/audit/proofs/inclusion", "audit.read"},
                                                {"/v1/audit/proofs/consistency", "audit.read"},
                                                {"/v1/audit/leaves", "audit.read"},
                                                {"/v1/audit/export", "audit.export"}}));
}

TEST_F(AuditRoutesTest, TreeHeadCarriesItsPublicKeyAndVerifies) {
  const ApiResponse r = Call("/v1/audit/tree-head");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = Body(r);
  EXPECT_EQ(j["tree_size"], 23);
  EXPECT_EQ(j["public_key"], audit::HashToHex(keys_.public_key()));
  audit::PublicKey key = HexHash(j["public_key"].get<std::string>());
  EXPECT_TRUE(audit::VerifyTreeHeadSignature(HeadFromJson(j), key).ok());
  audit::SignedTreeHead altered = HeadFromJson(j);
  altered.tree_size = 22;
  EXPECT_FALSE(audit::VerifyTreeHeadSignature(altered, key).ok());
}

TEST_F(AuditRoutesTest, InclusionAndConsistencyProofsVerifyAgainstTheSignedHead) {
  const json head = Body(Call("/v1/audit/tree-head"));
  const audit::SignedTreeHead sth = HeadFromJson(head);
  for (int index : {0, 7, 22}) {
    const ApiResponse r = Call("/v1/audit/proofs/inclusion", {{"index", std::to_string(index)}});
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = Body(r);
    EXPECT_EQ(j["tree_size"], 23);
    EXPECT_EQ(j["tree_head"]["root_hash"], head["root_hash"]);
    audit::InclusionProof proof;
    proof.leaf_index = j["leaf_index"].get<std::uint64_t>();
    proof.tree_size = j["tree_size"].get<std::uint64_t>();
    proof.path = PathFromJson(j["path"]);
    EXPECT_TRUE(audit::VerifyInclusion(HexHash(j["leaf_hash"]), proof, sth.root_hash).ok());
  }
  // At an older size (a head an auditor kept): no embedded head, the proof fits that root.
  const json old = Body(Call("/v1/audit/proofs/inclusion", {{"index", "2"}, {"size", "5"}}));
  EXPECT_TRUE(old["tree_head"].is_null());
  EXPECT_EQ(old["tree_size"], 5);

  std::vector<audit::SignedTreeHead> heads;
  ASSERT_TRUE(log_->TreeHeads(&heads).ok());
  ASSERT_EQ(heads.size(), 4U);  // 0, 5, 18, 23
  const ApiResponse r = Call("/v1/audit/proofs/consistency", {{"first", "5"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = Body(r);
  audit::ConsistencyProof proof;
  proof.first_size = j["first_size"].get<std::uint64_t>();
  proof.second_size = j["second_size"].get<std::uint64_t>();
  proof.path = PathFromJson(j["path"]);
  EXPECT_EQ(proof.second_size, 23U);
  EXPECT_TRUE(audit::VerifyConsistency(proof, heads[1].root_hash, sth.root_hash).ok());
  EXPECT_FALSE(audit::VerifyConsistency(proof, heads[2].root_hash, sth.root_hash).ok());
}

TEST_F(AuditRoutesTest, LeavesAreTheHashedBytesWithFieldsAndNoRecordId) {
  const ApiResponse r = Call("/v1/audit/leaves", {{"start", "3"}, {"end", "9"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find("deadbeef"), std::string::npos) << "a record id leaked";
  const json j = Body(r);
  ASSERT_EQ(j["leaves"].size(), 6U);
  std::vector<std::string> stored;
  ASSERT_TRUE(log_->ReadLeaves(3, 9, &stored).ok());
  const std::string ref =
      audit::HashToHex(audit::RecordRef(keys_.id_key, "deadbeefdeadbeefdeadbeefdeadbeef"));
  for (std::size_t i = 0; i < 6; ++i) {
    const json& leaf = j["leaves"][i];
    EXPECT_EQ(leaf["index"], 3 + i);
    EXPECT_EQ(Unbase64(leaf["leaf_base64"]), stored[i]);
    EXPECT_EQ(leaf["leaf_hash"], audit::HashToHex(audit::LeafHash(stored[i])));
    EXPECT_EQ(leaf["action"], "http.plate.lookup");
    EXPECT_EQ(leaf["role"], "officer");
    audit::LeafRecord decoded;
    ASSERT_TRUE(audit::DecodeLeaf(stored[i], &decoded).ok());
    EXPECT_EQ(leaf["principal"], decoded.principal);
    EXPECT_EQ(leaf["time_micros"], decoded.time_micros);
    if (decoded.has_record) {
      EXPECT_EQ(leaf["record_ref"], ref);
    } else {
      EXPECT_TRUE(leaf["record_ref"].is_null());
    }
  }
  // Defaults: from 0, at most to the end.
  const json all = Body(Call("/v1/audit/leaves"));
  EXPECT_EQ(all["leaves"].size(), 23U);
  EXPECT_EQ(Body(Call("/v1/audit/leaves", {{"start", "23"}}))["leaves"].size(), 0U);
}

// An auditor takes the NDJSON export, rebuilds the log files from the leaf bytes and the heads,
// and runs the offline verifier with the public key: nothing from the server is trusted.
TEST_F(AuditRoutesTest, ExportRebuildsIntoALogTheOfflineVerifierAccepts) {
  ASSERT_TRUE(log_->PublishTreeHead(nullptr).ok());
  const ApiResponse r = Call("/v1/audit/export");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/x-ndjson");
  EXPECT_EQ(r.body.find("deadbeef"), std::string::npos);
  std::istringstream lines(r.body);
  std::string line;
  std::string events(audit::internal::kEventsMagic);
  std::string sth(audit::internal::kSthMagic);
  std::string public_key;
  int leaves = 0;
  int heads = 0;
  while (std::getline(lines, line)) {
    const json j = json::parse(line);
    if (j["type"] == "leaf") {
      EXPECT_EQ(heads, 0) << "leaves come before heads";
      EXPECT_EQ(j["index"], leaves);
      audit::internal::AppendFrame(Unbase64(j["leaf_base64"]), &events);
      ++leaves;
    } else {
      ASSERT_EQ(j["type"], "tree_head");
      audit::internal::AppendFrame(audit::internal::EncodeTreeHead(HeadFromJson(j)), &sth);
      public_key = j["public_key"];
      ++heads;
    }
  }
  EXPECT_EQ(leaves, 23);
  EXPECT_EQ(heads, 5);
  const std::string rebuilt = dir_ + "/rebuilt";
  std::filesystem::create_directory(rebuilt);
  {
    std::ofstream(rebuilt + "/events.log", std::ios::binary) << events;
    std::ofstream(rebuilt + "/sth.log", std::ios::binary) << sth;
    std::ofstream(rebuilt + "/tree", std::ios::binary) << audit::internal::kTreeMagic;
  }
  audit::VerifyReport report;
  const Status s = audit::VerifyLog(rebuilt, HexHash(public_key), {}, &report);
  EXPECT_TRUE(s.ok()) << report.problem;
  EXPECT_EQ(report.tree_size, 23U);
  EXPECT_EQ(report.sth_count, 5U);
  // And one altered leaf in the export is caught, at its index.
  std::string tampered = events;
  tampered[tampered.size() - 3] ^= 1;
  std::ofstream(rebuilt + "/events.log", std::ios::binary | std::ios::trunc) << tampered;
  EXPECT_FALSE(audit::VerifyLog(rebuilt, HexHash(public_key), {}, &report).ok());
  EXPECT_EQ(report.first_bad_index, 22);
}

TEST_F(AuditRoutesTest, BadOrOutOfRangeParametersAre400) {
  const std::string inc = "/v1/audit/proofs/inclusion";
  const std::string con = "/v1/audit/proofs/consistency";
  const std::string leaves = "/v1/audit/leaves";
  ExpectBadRequest(inc, {});  // index required
  ExpectBadRequest(inc, {{"index", "abc"}});
  ExpectBadRequest(inc, {{"index", "-1"}});
  ExpectBadRequest(inc, {{"index", "+1"}});
  ExpectBadRequest(inc, {{"index", " 1"}});
  ExpectBadRequest(inc, {{"index", ""}});
  ExpectBadRequest(inc, {{"index", "0x10"}});
  ExpectBadRequest(inc, {{"index", "99999999999999999999999"}});  // overflow
  ExpectBadRequest(inc, {{"index", "23"}});                       // not in the tree
  ExpectBadRequest(inc, {{"index", "1"}, {"size", "24"}});        // bigger than the log
  ExpectBadRequest(inc, {{"index", "1"}, {"size", "0"}});
  ExpectBadRequest(inc, {{"index", "18446744073709551615"}, {"size", "18446744073709551615"}});
  ExpectBadRequest(con, {});
  ExpectBadRequest(con, {{"first", "6"}, {"second", "5"}});
  ExpectBadRequest(con, {{"first", "1"}, {"second", "24"}});
  ExpectBadRequest(con, {{"first", "1.5"}});
  ExpectBadRequest(leaves, {{"start", "5"}, {"end", "4"}});
  ExpectBadRequest(leaves, {{"start", "0"}, {"end", "24"}});
  ExpectBadRequest(leaves, {{"start", "0"}, {"end", "10001"}});
  ExpectBadRequest(leaves, {{"start", "18446744073709551615"}, {"end", "18446744073709551615"}});
  ExpectBadRequest(leaves, {{"start", "x"}});
}

TEST_F(AuditRoutesTest, NoLogConfiguredIs503NotACrash) {
  ServiceContext empty;
  std::vector<Route> routes;
  AddAuditRoutes(empty, &routes);
  for (Route& r : routes) {
    ApiRequest request;
    const ApiResponse response = r.handler(request);
    EXPECT_EQ(response.status, 503) << r.pattern;
  }
}

}  // namespace
}  // namespace portcullis::server
