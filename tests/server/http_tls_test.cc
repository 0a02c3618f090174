// TLS: plain HTTP on the TLS port is refused cleanly, and with mutual TLS configured a device must
// present a certificate from the configured CA whose CN is its principal name.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "http_test_fixture.h"

namespace portcullis::server {
namespace {

using test::Bearer;
using test::CertFiles;
using test::ClientOptions;
using test::HttpResponse;
using test::HttpServerTest;
using test::HttpsRequest;

TEST_F(HttpServerTest, PlainHttpToTheTlsPortIsRefusedCleanly) {
  StartServer();
  const int fd = testing::ConnectTcp(port_);
  ASSERT_GE(fd, 0);
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string received;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    received.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  EXPECT_EQ(received.find("HTTP/1.1 200"), std::string::npos);  // never served in clear
  EXPECT_LT(received.size(), 100u);                             // at most a TLS alert
  EXPECT_EQ(Get("/healthz").status, 200);                       // and the server lives on
}

class MutualTlsTest : public HttpServerTest {
 protected:
  void SetUp() override {
    HttpServerTest::SetUp();
    ASSERT_TRUE(testing::MakeSelfSigned(dir_, "ca", "Portcullis Test CA", &ca_));
    ASSERT_TRUE(testing::MakeSignedBy(ca_, dir_, "lane7", "lane:7", &lane7_));
    ASSERT_TRUE(testing::MakeSignedBy(ca_, dir_, "lane8", "lane:8", &lane8_));
    ASSERT_TRUE(testing::MakeSelfSigned(dir_, "rogue-ca", "Rogue CA", &rogue_ca_));
    ASSERT_TRUE(testing::MakeSignedBy(rogue_ca_, dir_, "rogue", "lane:7", &rogue_));
    options_.client_ca_file = ca_.cert;
  }
  CertFiles ca_, lane7_, lane8_, rogue_ca_, rogue_;
};

HttpResponse PostRead(std::uint16_t port, const CertFiles* cert) {
  ClientOptions options;
  options.client_cert = cert;
  return HttpsRequest(port, "POST", "/v1/lanes/7/reads",
                      Bearer("tok-lane7", {{"Content-Type", "image/jpeg"}}), "jpeg", options);
}

TEST_F(MutualTlsTest, DeviceMustPresentItsOwnCertificate) {
  StartServer();
  HttpResponse r = PostRead(port_, nullptr);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.ErrorCode(), "unauthenticated");
  EXPECT_EQ(LastEvent().result, "denied:unauthenticated");
  r = PostRead(port_, &lane8_);  // a valid certificate, but another device's
  EXPECT_EQ(r.status, 401);
  r = PostRead(port_, &lane7_);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(heavy_done_.load(), 1);
}

TEST_F(MutualTlsTest, CertificateFromAnotherCaFailsTheHandshake) {
  StartServer();
  const HttpResponse r = PostRead(port_, &rogue_);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(heavy_started_.load(), 0);
}

TEST_F(MutualTlsTest, PeopleNeedNoCertificate) {
  StartServer();
  const HttpResponse r = Get("/v1/plates/abc", Bearer("tok-officer", {{"X-Purpose", "p"}}));
  EXPECT_EQ(r.status, 200) << r.body;
}

}  // namespace
}  // namespace portcullis::server
