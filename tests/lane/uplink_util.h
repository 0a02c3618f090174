// Test helpers of the link between the lane agent and the service (uplink_*_test.cc,
// lane_events tests): a cheap keyring, sample events, an in-memory SealedQueue, and a real
// service on loopback with mutual TLS and lane ingest configured, plus a lane device's identity.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lane/ingest_key.h"
#include "lane/sealed_queue.h"
#include "lane/uplink.h"
#include "portcullis/key_provider.h"
#include "portcullis/lane_event.h"
#include "portcullis/vault.h"
#include "server/service.h"
#include "server_test_util.h"

namespace portcullis::lane::uplinktest {

// A keyring with the cheapest Argon2id cost, created when missing.
std::unique_ptr<vault::KeyProvider> OpenTestKeyring(const std::string& path,
                                                    const std::string& passphrase);

// A vehicle pass on `lane` by device "lane:<lane>": one plate with a crop of crop_bytes bytes
// (a JPEG signature then filler) and, with_face, one face capture.
LaneEvent SampleEvent(const std::string& lane, std::uint64_t sequence, std::size_t crop_bytes = 256,
                      bool with_face = true);

// An in-memory SealedQueue (until the durable one lands): ordered, bounded by max_events.
class MemoryQueue final : public SealedQueue {
 public:
  explicit MemoryQueue(std::size_t max_events = 1'000'000) : max_events_(max_events) {}
  Status Append(const SealedEvent& event) override;
  Status Front(SealedEvent* event) override;
  Status PopFront(const std::string& event_id) override;
  [[nodiscard]] SealedQueueStats stats() const override;
  void set_fail_reads(bool fail);

 private:
  mutable std::mutex mutex_;
  std::deque<SealedEvent> events_;
  std::size_t max_events_;
  std::uint64_t last_sequence_ = 0;
  bool fail_reads_ = false;
};

// One service (in-process, the real server::Service) with mTLS, a SQLite vault, access store and
// audit log in dir, lane_ingest configured; a lane device "lane:<lane>" with a certificate from
// the device CA and a token file. Several LinkServices may share one dir's stores (two nodes).
struct LinkWorld {
  std::string dir;
  std::string lane = "7";
  std::string device = "lane:7";
  testing::CertFiles server_cert, device_ca, device_cert, other_ca;
  std::string token_file;
  IngestPublicKey public_key;
  std::string ingest_key_file;
  std::string passphrase = "link test passphrase";
  std::string access_uri;  // sqlite:dir/access.db unless set before Init (PostgreSQL)
  std::string vault_uri;
  std::string audit_log;

  // Creates everything; false (with a gtest failure) when something fails.
  bool Init();
  // The config of one node; port 0 = any.
  [[nodiscard]] server::ServiceConfig NodeConfig(const std::string& node,
                                                 std::uint16_t port = 0) const;
  // The device's uplink settings against port.
  [[nodiscard]] UplinkConfig DeviceConfig(std::uint16_t port) const;
  // Records in the vault labelled with this event id ("" = every lane record).
  std::size_t CountRecords(const std::string& event_id = "");
  // The test's own handle on the vault (as an auditor would have), opened on first use.
  vault::Vault* Vault();

  std::string lane_token;

 private:
  std::unique_ptr<testing::FakeAuditLog> vault_audit_;
  std::unique_ptr<vault::Vault> vault_;
};

// A running node: Start() listens (on `port` when non-zero), Stop() shuts it down.
class LinkService {
 public:
  LinkService(const LinkWorld& world, const std::string& node) : config(world.NodeConfig(node)) {}
  ~LinkService() { Stop(); }
  Status Start(std::uint16_t port = 0);
  void Stop();
  [[nodiscard]] std::uint16_t port() const { return port_; }
  server::ServiceConfig config;  // editable before Start (the world's NodeConfig)

 private:
  std::unique_ptr<server::Service> service_;
  std::uint16_t port_ = 0;
};

// A TCP port that nothing listens on right now.
std::uint16_t FreePort();

}  // namespace portcullis::lane::uplinktest
