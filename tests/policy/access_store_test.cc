// The access store on both backends (SQLite, and PostgreSQL on the CTest fixture's private server):
// tokens, tickets, two-person exports, fingerprints, job claims, and the races between nodes.
#include "portcullis/access_store.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store_test_util.h"
#include "vault/record_store.h"

namespace portcullis::policy {
namespace {

using vault::testing::Backend;
using vault::testing::ScratchStore;

constexpr std::int64_t kSecond = 1000 * 1000;
constexpr std::int64_t kMinute = 60 * kSecond;
constexpr std::int64_t kHour = 60 * kMinute;
constexpr std::int64_t kDay = 24 * kHour;
constexpr std::int64_t kStart = 1795737600LL * kSecond;  // 2026-11-27 00:00:00 UTC

// The real Env with a clock the test moves (thread-safe: the race tests share it).
class ClockEnv : public Env {
 public:
  Status ReadFile(const std::string& p, std::size_t max, std::string* c) override {
    return Env::Default()->ReadFile(p, max, c);
  }
  Status WriteFileAtomic(const std::string& p, const std::string& c) override {
    return Env::Default()->WriteFileAtomic(p, c);
  }
  Status ListDirectory(const std::string& p, std::vector<std::string>* n) override {
    return Env::Default()->ListDirectory(p, n);
  }
  FileKind KindOf(const std::string& p) override { return Env::Default()->KindOf(p); }
  std::int64_t NowMicros() override { return now.load(); }
  void Advance(std::int64_t micros) { now += micros; }
  std::atomic<std::int64_t> now{kStart};
};

std::string Sha256Hex(const std::string& data) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(data.data()),
                     data.size());
  std::array<char, 2 * crypto_hash_sha256_BYTES + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  return hex.data();
}

class AccessStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    scratch_ = std::make_unique<ScratchStore>(GetParam());
    ASSERT_FALSE(scratch_->uri().empty()) << scratch_->error();
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<AccessStore> Open() {
    AccessStoreOptions options;
    options.env = &env_;
    std::unique_ptr<AccessStore> store;
    const Status s = OpenAccessStore(scratch_->uri(), options, &store);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return store;
  }

  std::string MustCreate(const std::string& name, Role role, std::vector<std::string> scope = {},
                         std::int64_t ttl = 0) {
    NewPrincipal p;
    p.name = name;
    p.role = role;
    p.scope = std::move(scope);
    p.token_ttl_micros = ttl;
    std::string token;
    const Status s = store_->CreatePrincipal(p, &token);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return token;
  }

  AuthOutcome Auth(const std::string& token, Principal* who = nullptr) {
    Principal ignored;
    AuthOutcome outcome = AuthOutcome::kOk;
    const Status s = store_->Authenticate(token, &outcome, who != nullptr ? who : &ignored);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return outcome;
  }

  TicketInfo MustGrant(const std::string& vendor, const std::string& lane, std::uint32_t uses,
                       std::int64_t ttl = kHour) {
    NewTicket t{vendor, lane, uses, ttl, "camera 3 focus check"};
    TicketInfo info;
    const Status s = store_->GrantTicket("supervisor:ann", t, &info);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return info;
  }

  TicketOutcome Use(const std::string& id, const std::string& vendor, const std::string& lane,
                    AccessStore* store = nullptr) {
    TicketOutcome outcome = TicketOutcome::kOk;
    const Status s =
        (store != nullptr ? store : store_.get())->UseTicket(id, vendor, lane, &outcome);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return outcome;
  }

  ExportInfo MustRequest(const std::string& by = "supervisor:ann") {
    NewExport e;
    e.lane = "7";
    e.record_types = {"plate_read"};
    e.from_micros = kStart - kDay;
    e.until_micros = kStart;
    e.reason = "court order 2026/441";
    ExportInfo info;
    const Status s = store_->RequestExport(by, e, &info);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return info;
  }

  ApproveOutcome Approve(const std::string& id, const std::string& by,
                         AccessStore* store = nullptr) {
    ApproveOutcome outcome = ApproveOutcome::kOk;
    const Status s =
        (store != nullptr ? store : store_.get())->ApproveExport(id, by, kHour, &outcome);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return outcome;
  }

  DownloadOutcome Download(const std::string& id, const std::string& by,
                           const std::vector<ExportedFile>& files = {}) {
    DownloadOutcome outcome = DownloadOutcome::kOk;
    const Status s = store_->RecordDownload(id, by, files, &outcome);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return outcome;
  }

  ExportState StateOf(const std::string& id) {
    ExportInfo info;
    const Status s = store_->GetExport(id, &info);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return info.state;
  }

  ClockEnv env_;
  std::unique_ptr<ScratchStore> scratch_;
  std::unique_ptr<AccessStore> store_;
};

// ---- Principals and tokens -------------------------------------------------------------------

TEST_P(AccessStoreTest, CreatedTokenAuthenticatesAsThePrincipal) {
  const std::string token = MustCreate("lane:7", Role::kLaneDevice, {"7"});
  ASSERT_EQ(token.size(), 47u);
  EXPECT_EQ(token.substr(0, 4), "pct_");
  Principal who;
  EXPECT_EQ(Auth(token, &who), AuthOutcome::kOk);
  EXPECT_EQ(who.name, "lane:7");
  EXPECT_EQ(who.role, Role::kLaneDevice);
  EXPECT_EQ(who.scope, std::vector<std::string>{"7"});
  std::vector<PrincipalInfo> list;
  ASSERT_TRUE(store_->ListPrincipals(&list).ok());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].token_prefix, token.substr(0, 12));
  EXPECT_EQ(list[0].created_micros, kStart);
  EXPECT_EQ(list[0].expires_micros, 0);
  EXPECT_FALSE(list[0].revoked);
}

TEST_P(AccessStoreTest, OnlyTheTokensHashIsStored) {
  const std::string token = MustCreate("officer:1", Role::kOfficer);
  // The hash is the SHA-256 of the token: a second principal with the same hash cannot exist.
  std::vector<PrincipalInfo> list;
  ASSERT_TRUE(store_->ListPrincipals(&list).ok());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_NE(list[0].token_prefix, token);
  // The raw check: the token's secret part appears nowhere in the row.
  std::string found;
  if (GetParam() == Backend::kSqlite) {
    std::string path = scratch_->uri().substr(7);
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ifstream wal(path + "-wal", std::ios::binary);
    bytes.append((std::istreambuf_iterator<char>(wal)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(token.substr(12)), std::string::npos) << "token in the database file";
    EXPECT_NE(bytes.find(Sha256Hex(token)), std::string::npos) << "hash not in the file";
  }
}

TEST_P(AccessStoreTest, TokensAreDistinct) {
  std::set<std::string> tokens;
  for (int i = 0; i < 50; ++i) {
    tokens.insert(MustCreate("device:" + std::to_string(i), Role::kLaneDevice, {"1"}));
  }
  EXPECT_EQ(tokens.size(), 50u);
}

TEST_P(AccessStoreTest, BadPrincipalsAreRefused) {
  MustCreate("officer:1", Role::kOfficer);
  std::string token;
  NewPrincipal p{"officer:1", Role::kOfficer, {}, 0};
  EXPECT_EQ(store_->CreatePrincipal(p, &token).code(), Status::Code::kInvalidArgument);
  for (const char* bad : {"", "Officer:1", "officer 1", "a/b", "x\n"}) {
    p.name = bad;
    EXPECT_EQ(store_->CreatePrincipal(p, &token).code(), Status::Code::kInvalidArgument) << bad;
  }
  p.name = std::string(65, 'a');
  EXPECT_EQ(store_->CreatePrincipal(p, &token).code(), Status::Code::kInvalidArgument);
  p.name = "lane:9";
  p.scope = {"../etc"};
  EXPECT_EQ(store_->CreatePrincipal(p, &token).code(), Status::Code::kInvalidArgument);
  p.scope = {"9"};
  p.token_ttl_micros = -1;
  EXPECT_EQ(store_->CreatePrincipal(p, &token).code(), Status::Code::kInvalidArgument);
  std::vector<PrincipalInfo> list;
  ASSERT_TRUE(store_->ListPrincipals(&list).ok());
  EXPECT_EQ(list.size(), 1u);
}

TEST_P(AccessStoreTest, MalformedAndUnknownTokens) {
  const std::string token = MustCreate("officer:1", Role::kOfficer);
  EXPECT_EQ(Auth(""), AuthOutcome::kMalformed);
  EXPECT_EQ(Auth("pct_"), AuthOutcome::kMalformed);
  EXPECT_EQ(Auth("Bearer " + token), AuthOutcome::kMalformed);
  EXPECT_EQ(Auth("pcx_" + token.substr(4)), AuthOutcome::kMalformed);
  EXPECT_EQ(Auth(token.substr(0, 46)), AuthOutcome::kMalformed);
  EXPECT_EQ(Auth(token + "A"), AuthOutcome::kMalformed);
  std::string plus = token;
  plus[20] = '+';
  EXPECT_EQ(Auth(plus), AuthOutcome::kMalformed);
  std::string nul = token;
  nul[20] = '\0';
  EXPECT_EQ(Auth(nul), AuthOutcome::kMalformed);
  // Well formed, never issued.
  std::string other = token;
  other[20] = other[20] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Auth(other), AuthOutcome::kUnknown);
  EXPECT_EQ(Auth(token), AuthOutcome::kOk);
}

TEST_P(AccessStoreTest, TokensExpire) {
  const std::string token = MustCreate("vendor:acme", Role::kVendor, {"7"}, kHour);
  EXPECT_EQ(Auth(token), AuthOutcome::kOk);
  env_.Advance(kHour - 1);
  EXPECT_EQ(Auth(token), AuthOutcome::kOk);
  env_.Advance(1);
  EXPECT_EQ(Auth(token), AuthOutcome::kExpired);
  std::vector<PrincipalInfo> list;
  ASSERT_TRUE(store_->ListPrincipals(&list).ok());
  EXPECT_EQ(list.at(0).expires_micros, kStart + kHour);
}

TEST_P(AccessStoreTest, RevokedTokensStopWorking) {
  const std::string token = MustCreate("vendor:acme", Role::kVendor, {"7"});
  ASSERT_TRUE(store_->RevokePrincipal("vendor:acme").ok());
  EXPECT_EQ(Auth(token), AuthOutcome::kRevoked);
  EXPECT_TRUE(store_->RevokePrincipal("vendor:acme").ok());  // idempotent
  EXPECT_EQ(store_->RevokePrincipal("vendor:nobody").code(), Status::Code::kNotFound);
  std::string fresh;
  EXPECT_EQ(store_->RotateToken("vendor:acme", 0, &fresh).code(), Status::Code::kInvalidArgument);
  std::vector<PrincipalInfo> list;
  ASSERT_TRUE(store_->ListPrincipals(&list).ok());
  EXPECT_TRUE(list.at(0).revoked);
  // The name stays taken.
  NewPrincipal again{"vendor:acme", Role::kVendor, {"7"}, 0};
  EXPECT_EQ(store_->CreatePrincipal(again, &fresh).code(), Status::Code::kInvalidArgument);
}

TEST_P(AccessStoreTest, RotationReplacesTheToken) {
  const std::string old_token = MustCreate("admin:root", Role::kAdmin, {"*"});
  std::string fresh;
  ASSERT_TRUE(store_->RotateToken("admin:root", kDay, &fresh).ok());
  EXPECT_NE(fresh, old_token);
  EXPECT_EQ(Auth(old_token), AuthOutcome::kUnknown);
  Principal who;
  EXPECT_EQ(Auth(fresh, &who), AuthOutcome::kOk);
  EXPECT_EQ(who.scope, std::vector<std::string>{"*"});
  env_.Advance(kDay);
  EXPECT_EQ(Auth(fresh), AuthOutcome::kExpired);
  EXPECT_EQ(store_->RotateToken("admin:nobody", 0, &fresh).code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->RotateToken("admin:root", -5, &fresh).code(), Status::Code::kInvalidArgument);
}

// ---- Tickets ------------------------------------------------------------------------------

TEST_P(AccessStoreTest, TicketCountsItsUses) {
  MustCreate("vendor:acme", Role::kVendor, {"7", "8"});
  const TicketInfo t = MustGrant("vendor:acme", "7", 3);
  EXPECT_EQ(t.id.size(), 32u);
  EXPECT_EQ(t.granted_by, "supervisor:ann");
  EXPECT_EQ(t.expires_micros, kStart + kHour);
  EXPECT_EQ(Use(t.id, "vendor:acme", "7"), TicketOutcome::kOk);
  EXPECT_EQ(Use(t.id, "vendor:acme", "7"), TicketOutcome::kOk);
  EXPECT_EQ(Use(t.id, "vendor:other", "7"), TicketOutcome::kWrongVendor);
  EXPECT_EQ(Use(t.id, "vendor:acme", "8"), TicketOutcome::kWrongLane);
  EXPECT_EQ(Use(t.id, "vendor:acme", "7"), TicketOutcome::kOk);
  EXPECT_EQ(Use(t.id, "vendor:acme", "7"), TicketOutcome::kUsedUp);
  EXPECT_EQ(Use("0123456789abcdef0123456789abcdef", "vendor:acme", "7"), TicketOutcome::kUnknown);
  EXPECT_EQ(Use("not-an-id", "vendor:acme", "7"), TicketOutcome::kUnknown);
  std::vector<TicketInfo> list;
  ASSERT_TRUE(store_->ListTickets(&list).ok());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].used, 3u);
  EXPECT_EQ(list[0].max_uses, 3u);
  EXPECT_EQ(list[0].reason, "camera 3 focus check");
}

TEST_P(AccessStoreTest, TicketsExpire) {
  MustCreate("vendor:acme", Role::kVendor, {"7"});
  const TicketInfo t = MustGrant("vendor:acme", "7", 10, 10 * kMinute);
  EXPECT_EQ(Use(t.id, "vendor:acme", "7"), TicketOutcome::kOk);
  env_.Advance(10 * kMinute);
  EXPECT_EQ(Use(t.id, "vendor:acme", "7"), TicketOutcome::kExpired);
}

TEST_P(AccessStoreTest, BadTicketsAreRefused) {
  MustCreate("vendor:acme", Role::kVendor, {"7"});
  MustCreate("officer:1", Role::kOfficer, {"*"});
  MustCreate("vendor:gone", Role::kVendor, {"7"});
  ASSERT_TRUE(store_->RevokePrincipal("vendor:gone").ok());
  TicketInfo info;
  auto grant = [&](NewTicket t) { return store_->GrantTicket("supervisor:ann", t, &info).code(); };
  EXPECT_EQ(grant({"vendor:acme", "7", 0, kHour, "r"}), Status::Code::kInvalidArgument);
  EXPECT_EQ(grant({"vendor:acme", "7", 1001, kHour, "r"}), Status::Code::kInvalidArgument);
  EXPECT_EQ(grant({"vendor:acme", "7", 1000, kMinute - 1, "r"}), Status::Code::kInvalidArgument);
  EXPECT_EQ(grant({"vendor:acme", "7", 1, 7 * kDay + 1, "r"}), Status::Code::kInvalidArgument);
  EXPECT_EQ(grant({"vendor:acme", "7", 1, kHour, ""}), Status::Code::kInvalidArgument);
  EXPECT_EQ(grant({"vendor:acme", "", 1, kHour, "r"}), Status::Code::kInvalidArgument);
  EXPECT_EQ(grant({"vendor:acme", "8", 1, kHour, "r"}), Status::Code::kInvalidArgument);
  EXPECT_EQ(grant({"vendor:nobody", "7", 1, kHour, "r"}), Status::Code::kNotFound);
  EXPECT_EQ(grant({"officer:1", "7", 1, kHour, "r"}), Status::Code::kInvalidArgument);
  EXPECT_EQ(grant({"vendor:gone", "7", 1, kHour, "r"}), Status::Code::kInvalidArgument);
  // The limits themselves are allowed.
  EXPECT_EQ(grant({"vendor:acme", "7", 1000, 7 * kDay, "r"}), Status::Code::kOk);
  EXPECT_EQ(grant({"vendor:acme", "7", 1, kMinute, "r"}), Status::Code::kOk);
  std::vector<TicketInfo> list;
  ASSERT_TRUE(store_->ListTickets(&list).ok());
  EXPECT_EQ(list.size(), 2u);
}

TEST_P(AccessStoreTest, ConcurrentTicketUsesNeverExceedTheLimit) {
  MustCreate("vendor:acme", Role::kVendor, {"7"});
  const TicketInfo t = MustGrant("vendor:acme", "7", 25);
  // Four stores = four connections, as four service nodes would have.
  std::vector<std::unique_ptr<AccessStore>> stores;
  for (int i = 0; i < 4; ++i) stores.push_back(Open());
  std::atomic<int> ok{0};
  std::atomic<int> used_up{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 10; ++j) {
        TicketOutcome outcome = TicketOutcome::kUnknown;
        if (!stores[static_cast<std::size_t>(i)]
                 ->UseTicket(t.id, "vendor:acme", "7", &outcome)
                 .ok()) {
          continue;
        }
        if (outcome == TicketOutcome::kOk) ++ok;
        if (outcome == TicketOutcome::kUsedUp) ++used_up;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(ok.load(), 25);
  EXPECT_EQ(used_up.load(), 15);
}

// ---- Exports ------------------------------------------------------------------------------

TEST_P(AccessStoreTest, ExportRunsPendingApprovedDownloaded) {
  const ExportInfo e = MustRequest();
  EXPECT_EQ(e.id.size(), 32u);
  EXPECT_EQ(e.state, ExportState::kPending);
  EXPECT_EQ(StateOf(e.id), ExportState::kPending);
  EXPECT_EQ(Download(e.id, "supervisor:ann"), DownloadOutcome::kNotApproved);
  EXPECT_EQ(Approve(e.id, "supervisor:ann"), ApproveOutcome::kSelfApproval);
  EXPECT_EQ(StateOf(e.id), ExportState::kPending);
  env_.Advance(kMinute);
  EXPECT_EQ(Approve(e.id, "supervisor:bob"), ApproveOutcome::kOk);
  ExportInfo info;
  ASSERT_TRUE(store_->GetExport(e.id, &info).ok());
  EXPECT_EQ(info.state, ExportState::kApproved);
  EXPECT_EQ(info.approved_by, "supervisor:bob");
  EXPECT_EQ(info.approved_micros, kStart + kMinute);
  EXPECT_EQ(info.window_ends_micros, kStart + kMinute + kHour);
  EXPECT_EQ(info.request.record_types, std::vector<std::string>{"plate_read"});
  EXPECT_EQ(info.request.lane, "7");
  EXPECT_EQ(info.request.reason, "court order 2026/441");
  // A replayed approval, by the same or a third supervisor.
  EXPECT_EQ(Approve(e.id, "supervisor:bob"), ApproveOutcome::kNotPending);
  EXPECT_EQ(Approve(e.id, "supervisor:cat"), ApproveOutcome::kNotPending);
  EXPECT_EQ(Download(e.id, "supervisor:bob"), DownloadOutcome::kNotRequester);
  const std::vector<ExportedFile> files = {{"r1", Sha256Hex("file one")},
                                           {"r2", Sha256Hex("file two")}};
  EXPECT_EQ(Download(e.id, "supervisor:ann", files), DownloadOutcome::kOk);
  EXPECT_EQ(StateOf(e.id), ExportState::kDownloaded);
  EXPECT_EQ(Download(e.id, "supervisor:ann", files), DownloadOutcome::kAlreadyDownloaded);
  std::vector<std::string> ids;
  ASSERT_TRUE(store_->FindExportedFile(Sha256Hex("file two"), &ids).ok());
  EXPECT_EQ(ids, std::vector<std::string>{e.id});
  ASSERT_TRUE(store_->FindExportedFile(Sha256Hex("never exported"), &ids).ok());
  EXPECT_TRUE(ids.empty());
  EXPECT_EQ(store_->FindExportedFile("ABC", &ids).code(), Status::Code::kInvalidArgument);
  // Even after it is downloaded, a late approval is not pending.
  EXPECT_EQ(Approve(e.id, "supervisor:cat"), ApproveOutcome::kNotPending);
}

TEST_P(AccessStoreTest, TheSameFileInTwoExportsNamesBoth) {
  const ExportInfo a = MustRequest();
  const ExportInfo b = MustRequest();
  for (const ExportInfo* e : {&a, &b}) {
    ASSERT_EQ(Approve(e->id, "supervisor:bob"), ApproveOutcome::kOk);
    ASSERT_EQ(Download(e->id, "supervisor:ann", {{"r1", Sha256Hex("same")}}), DownloadOutcome::kOk);
  }
  std::vector<std::string> ids;
  ASSERT_TRUE(store_->FindExportedFile(Sha256Hex("same"), &ids).ok());
  std::vector<std::string> expected = {a.id, b.id};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ids, expected);
}

TEST_P(AccessStoreTest, TheDownloadWindowCloses) {
  const ExportInfo e = MustRequest();
  ASSERT_EQ(Approve(e.id, "supervisor:bob"), ApproveOutcome::kOk);
  env_.Advance(kHour);
  EXPECT_EQ(StateOf(e.id), ExportState::kExpired);
  EXPECT_EQ(Download(e.id, "supervisor:ann"), DownloadOutcome::kExpired);
  EXPECT_EQ(Approve(e.id, "supervisor:cat"), ApproveOutcome::kNotPending);
}

TEST_P(AccessStoreTest, StaleRequestsExpire) {
  const ExportInfo e = MustRequest();
  env_.Advance(7 * kDay);
  EXPECT_EQ(StateOf(e.id), ExportState::kExpired);
  EXPECT_EQ(Approve(e.id, "supervisor:bob"), ApproveOutcome::kExpired);
  EXPECT_EQ(Download(e.id, "supervisor:ann"), DownloadOutcome::kExpired);
}

TEST_P(AccessStoreTest, UnknownExports) {
  EXPECT_EQ(Approve("0123456789abcdef0123456789abcdef", "supervisor:bob"),
            ApproveOutcome::kUnknown);
  EXPECT_EQ(Approve("../../etc", "supervisor:bob"), ApproveOutcome::kUnknown);
  EXPECT_EQ(Download("0123456789abcdef0123456789abcdef", "supervisor:ann"),
            DownloadOutcome::kUnknown);
  ExportInfo info;
  EXPECT_EQ(store_->GetExport("0123456789abcdef0123456789abcdef", &info).code(),
            Status::Code::kNotFound);
  EXPECT_EQ(store_->GetExport("nope", &info).code(), Status::Code::kNotFound);
}

TEST_P(AccessStoreTest, AFailedFingerprintWriteLeavesTheExportDownloadable) {
  const ExportInfo e = MustRequest();
  ASSERT_EQ(Approve(e.id, "supervisor:bob"), ApproveOutcome::kOk);
  DownloadOutcome outcome = DownloadOutcome::kOk;
  // The same record twice violates the table's key: the whole download is rolled back.
  const Status s = store_->RecordDownload(
      e.id, "supervisor:ann", {{"r1", Sha256Hex("a")}, {"r1", Sha256Hex("b")}}, &outcome);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(StateOf(e.id), ExportState::kApproved);
  std::vector<std::string> ids;
  ASSERT_TRUE(store_->FindExportedFile(Sha256Hex("a"), &ids).ok());
  EXPECT_TRUE(ids.empty());
  EXPECT_EQ(store_->RecordDownload(e.id, "supervisor:ann", {{"r1", "xyz"}}, &outcome).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(Download(e.id, "supervisor:ann", {{"r1", Sha256Hex("a")}}), DownloadOutcome::kOk);
}

TEST_P(AccessStoreTest, BadExportRequestsAreRefused) {
  ExportInfo info;
  NewExport e;
  e.record_types = {"plate_read"};
  e.from_micros = 0;
  e.until_micros = kStart;
  e.reason = "audit";
  EXPECT_TRUE(store_->RequestExport("supervisor:ann", e, &info).ok());  // lane "" = all in scope
  NewExport bad = e;
  bad.record_types = {};
  EXPECT_EQ(store_->RequestExport("supervisor:ann", bad, &info).code(),
            Status::Code::kInvalidArgument);
  bad.record_types = {"passport_scan"};
  EXPECT_EQ(store_->RequestExport("supervisor:ann", bad, &info).code(),
            Status::Code::kInvalidArgument);
  bad = e;
  bad.until_micros = bad.from_micros;
  EXPECT_EQ(store_->RequestExport("supervisor:ann", bad, &info).code(),
            Status::Code::kInvalidArgument);
  bad = e;
  bad.lane = "7/../8";
  EXPECT_EQ(store_->RequestExport("supervisor:ann", bad, &info).code(),
            Status::Code::kInvalidArgument);
  bad = e;
  bad.reason = "";
  EXPECT_EQ(store_->RequestExport("supervisor:ann", bad, &info).code(),
            Status::Code::kInvalidArgument);
  ApproveOutcome outcome = ApproveOutcome::kOk;
  EXPECT_EQ(store_->ApproveExport(info.id, "supervisor:bob", 0, &outcome).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->ApproveExport(info.id, "supervisor:bob", 7 * kDay + 1, &outcome).code(),
            Status::Code::kInvalidArgument);
  std::vector<ExportInfo> list;
  ASSERT_TRUE(store_->ListExports(&list).ok());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].state, ExportState::kPending);
}

TEST_P(AccessStoreTest, ConcurrentApprovalsHaveOneWinner) {
  for (int round = 0; round < 3; ++round) {
    const ExportInfo e = MustRequest();
    std::vector<std::unique_ptr<AccessStore>> stores;
    for (int i = 0; i < 4; ++i) stores.push_back(Open());
    std::atomic<int> ok{0};
    std::atomic<int> not_pending{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&, i] {
        ApproveOutcome outcome = ApproveOutcome::kUnknown;
        const std::string who = "supervisor:s" + std::to_string(i);
        if (!stores[static_cast<std::size_t>(i)]->ApproveExport(e.id, who, kHour, &outcome).ok()) {
          return;
        }
        if (outcome == ApproveOutcome::kOk) ++ok;
        if (outcome == ApproveOutcome::kNotPending) ++not_pending;
      });
    }
    for (std::thread& th : threads) th.join();
    EXPECT_EQ(ok.load(), 1);
    EXPECT_EQ(not_pending.load(), 3);
  }
}

// ---- Jobs, schema ---------------------------------------------------------------------------

TEST_P(AccessStoreTest, AJobRunsOncePerPeriod) {
  bool claimed = false;
  ASSERT_TRUE(store_->ClaimJobRun("retention.purge", kStart, "n1", &claimed).ok());
  EXPECT_TRUE(claimed);
  ASSERT_TRUE(store_->ClaimJobRun("retention.purge", kStart, "n2", &claimed).ok());
  EXPECT_FALSE(claimed);
  ASSERT_TRUE(store_->ClaimJobRun("retention.purge", kStart + kHour, "n2", &claimed).ok());
  EXPECT_TRUE(claimed);
  ASSERT_TRUE(store_->ClaimJobRun("audit.tree_head", kStart, "n2", &claimed).ok());
  EXPECT_TRUE(claimed);
  EXPECT_EQ(store_->ClaimJobRun("", kStart, "n2", &claimed).code(), Status::Code::kInvalidArgument);
  // Racing nodes: one winner.
  std::vector<std::unique_ptr<AccessStore>> stores;
  for (int i = 0; i < 4; ++i) stores.push_back(Open());
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      bool mine = false;
      if (stores[static_cast<std::size_t>(i)]
              ->ClaimJobRun("retention.purge", kStart + 2 * kHour, "n" + std::to_string(i), &mine)
              .ok() &&
          mine) {
        ++winners;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(winners.load(), 1);
}

TEST_P(AccessStoreTest, ReopeningKeepsEverything) {
  const std::string token = MustCreate("auditor:eve", Role::kAuditor, {"*"});
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(Auth(token), AuthOutcome::kOk);
}

TEST_P(AccessStoreTest, SharesADatabaseWithTheVault) {
  std::unique_ptr<vault::RecordStore> records;
  ASSERT_TRUE(vault::RecordStore::Open(scratch_->uri(), &records).ok());
  const Status s = records->Migrate();
  EXPECT_TRUE(s.ok()) << s.ToString();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
}

TEST_P(AccessStoreTest, ANewerSchemaIsRefused) {
  vault::testing::ExecRaw(GetParam(), scratch_->uri(),
                          "INSERT INTO access_schema_version (version, description, "
                          "applied_micros) VALUES (99, 'from the future', 0)");
  AccessStoreOptions options;
  std::unique_ptr<AccessStore> store;
  const Status s = OpenAccessStore(scratch_->uri(), options, &store);
  EXPECT_EQ(s.code(), Status::Code::kUnsupported) << s.ToString();
  EXPECT_EQ(store, nullptr);
}

INSTANTIATE_TEST_SUITE_P(Backends, AccessStoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         vault::testing::BackendName);

// ---- Opening ------------------------------------------------------------------------------

TEST(AccessStoreOpen, BadUrisAndFiles) {
  std::unique_ptr<AccessStore> store;
  AccessStoreOptions options;
  EXPECT_EQ(OpenAccessStore("mysql://x", options, &store).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(OpenAccessStore("sqlite:", options, &store).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(OpenAccessStore("sqlite:/nonexistent/dir/access.db", options, &store).code(),
            Status::Code::kIOError);
  const std::string dir = vault::testing::MakeTempDir();
  ASSERT_FALSE(dir.empty());
  {
    std::ofstream garbage(dir + "/garbage.db", std::ios::binary);
    garbage << std::string(8192, 'x');
  }
  EXPECT_EQ(OpenAccessStore("sqlite:" + dir + "/garbage.db", options, &store).code(),
            Status::Code::kCorruption);
  EXPECT_EQ(store, nullptr);
  std::filesystem::remove_all(dir);
}

TEST(AccessStoreOpen, OutcomeNames) {
  EXPECT_EQ(AuthOutcomeName(AuthOutcome::kMalformed), "malformed");
  EXPECT_EQ(TicketOutcomeName(TicketOutcome::kUsedUp), "used_up");
  EXPECT_EQ(ExportStateName(ExportState::kDownloaded), "downloaded");
  EXPECT_EQ(ApproveOutcomeName(ApproveOutcome::kSelfApproval), "self_approval");
  EXPECT_EQ(DownloadOutcomeName(DownloadOutcome::kAlreadyDownloaded), "already_downloaded");
}

}  // namespace
}  // namespace portcullis::policy
