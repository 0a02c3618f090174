#include "uplink_util.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "cli_runner.h"
#include "portcullis/access_store.h"
#include "portcullis/audit.h"

namespace portcullis::lane::uplinktest {

std::unique_ptr<vault::KeyProvider> OpenTestKeyring(const std::string& path,
                                                    const std::string& passphrase) {
  vault::KeyProviderOptions options;
  options.create_if_missing = true;
  options.keyring_opslimit = 1;  // cheapest Argon2id: the suite stays fast
  options.keyring_memlimit = 8192;
  std::unique_ptr<vault::KeyProvider> provider;
  const Status s = vault::OpenKeyProvider("keyring:" + path, passphrase, options, &provider);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return provider;
}

LaneEvent SampleEvent(const std::string& lane, std::uint64_t sequence, std::size_t crop_bytes,
                      bool with_face) {
  LaneEvent e;
  e.event_id = NewEventId();
  e.sequence = sequence;
  e.device = "lane:" + lane;
  e.lane = lane;
  e.camera = "cam0";
  e.started_wall_micros = 1'790'000'000'000'000 + static_cast<std::int64_t>(sequence) * 1000;
  e.ended_wall_micros = e.started_wall_micros + 1'500'000;
  e.monotonic_micros = static_cast<std::int64_t>(sequence) * 1000;
  LanePlate plate;
  plate.text = "LNK" + std::to_string(1000 + sequence % 9000);
  plate.confidence = 0.91f;
  plate.region = "us";
  plate.format = "LLLDDDD";
  plate.box = {100, 200, 160, 40};
  plate.candidates = {{plate.text, 0.91f}};
  plate.frames_seen = 5;
  plate.crop = "plate-0";
  e.plates.push_back(plate);
  std::string crop("\xff\xd8\xff\xe0", 4);
  crop.resize(std::max<std::size_t>(crop_bytes, 4), 'c');
  e.attachments.push_back({"plate-0", "image/jpeg", crop});
  if (with_face) {
    e.faces.push_back(LaneFace{{300, 100, 80, 80}, 0.8f, "face-0"});
    e.attachments.push_back({"face-0", "image/jpeg", std::string("\xff\xd8\xff face", 8)});
  }
  return e;
}

Status MemoryQueue::Append(const SealedEvent& event) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (events_.size() >= max_events_) return Status::ResourceExhausted("memory queue full");
  if (event.sequence <= last_sequence_) {
    return Status::InvalidArgument("sequence not greater than the last appended");
  }
  last_sequence_ = event.sequence;
  events_.push_back(event);
  return Status::Ok();
}

Status MemoryQueue::Front(SealedEvent* event) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fail_reads_) return Status::IOError("memory queue: injected read failure");
  if (events_.empty()) return Status::NotFound("queue empty");
  *event = events_.front();
  return Status::Ok();
}

Status MemoryQueue::PopFront(const std::string& event_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (events_.empty() || events_.front().event_id != event_id) {
    return Status::InvalidArgument("not the front event");
  }
  events_.pop_front();
  return Status::Ok();
}

SealedQueueStats MemoryQueue::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  SealedQueueStats s;
  s.events = events_.size();
  for (const auto& e : events_) s.bytes += e.sealed.size();
  s.oldest_sequence = events_.empty() ? 0 : events_.front().sequence;
  return s;
}

void MemoryQueue::set_fail_reads(bool fail) {
  std::lock_guard<std::mutex> lock(mutex_);
  fail_reads_ = fail;
}

bool LinkWorld::Init() {
  dir = testing::MakeTempDir();
  if (dir.empty()) {
    ADD_FAILURE() << "no temp dir";
    return false;
  }
  bool ok = testing::MakeSelfSigned(dir, "server", "localhost", &server_cert) &&
            testing::MakeSelfSigned(dir, "device-ca", "Lane device CA", &device_ca) &&
            testing::MakeSelfSigned(dir, "other-ca", "Somebody else", &other_ca) &&
            testing::MakeSignedBy(device_ca, dir, "device", device, &device_cert);
  if (!ok) {
    ADD_FAILURE() << "certificates";
    return false;
  }
  if (!audit::GenerateKeys(dir + "/audit-keys").ok() ||
      !testing::WriteBytes(dir + "/vault.secret", passphrase + "\n")) {
    ADD_FAILURE() << "audit keys or secret";
    return false;
  }
  if (access_uri.empty()) access_uri = "sqlite:" + dir + "/access.db";
  if (vault_uri.empty()) vault_uri = "sqlite:" + dir + "/vault.db";
  if (audit_log.empty()) audit_log = dir + "/audit";
  // The keyring (cheap Argon2id) and the ingest key, as `portcullis vault ingest-key` makes them.
  auto provider = OpenTestKeyring(dir + "/vault.keyring", passphrase);
  if (provider == nullptr) return false;
  ingest_key_file = dir + "/ingest.key";
  IngestKeyPair pair;
  Status s = CreateIngestKeyPair(ingest_key_file, *provider, &pair);
  if (!s.ok()) {
    ADD_FAILURE() << s.ToString();
    return false;
  }
  public_key = pair.public_key;

  std::unique_ptr<policy::AccessStore> store;
  s = policy::OpenAccessStore(access_uri, {}, &store);
  if (!s.ok()) {
    ADD_FAILURE() << s.ToString();
    return false;
  }
  policy::NewPrincipal p;
  p.name = device;
  p.role = policy::Role::kLaneDevice;
  p.scope = {lane};
  s = store->CreatePrincipal(p, &lane_token);
  if (!s.ok()) {
    ADD_FAILURE() << s.ToString();
    return false;
  }
  token_file = dir + "/device.token";
  return testing::WriteBytes(token_file, lane_token + "\n");
}

server::ServiceConfig LinkWorld::NodeConfig(const std::string& node, std::uint16_t port) const {
  server::ServiceConfig c;
  c.node = node;
  c.host = "127.0.0.1";
  c.port = port;
  c.tls.cert = server_cert.cert;
  c.tls.key = server_cert.key;
  c.tls.client_ca = device_ca.cert;
  c.vault.store = vault_uri;
  c.vault.keys = "keyring:" + dir + "/vault.keyring";
  c.vault.secret_file = dir + "/vault.secret";
  c.audit.log = audit_log;
  c.audit.keys = dir + "/audit-keys";
  c.access.store = access_uri;
  c.access.policy = std::string(PORTCULLIS_SOURCE_DIR) + "/data/policy.json";
  c.gates.traveller_key = dir + "/traveller.key";
  c.limits.workers = 2;
  c.limits.queue = 16;
  c.limits.rate_per_minute = 1'000'000;  // the drain benchmark and the backlog tests are bursts
  c.limits.shutdown_grace_ms = 1000;
  c.models.plates = false;
  c.models.faces = false;
  c.jobs.enabled = false;
  c.lane_ingest.key_file = ingest_key_file;
  return c;
}

UplinkConfig LinkWorld::DeviceConfig(std::uint16_t port) const {
  UplinkConfig c;
  c.url = "https://127.0.0.1:" + std::to_string(port);
  c.ca_file = server_cert.cert;
  c.cert_file = device_cert.cert;
  c.key_file = device_cert.key;
  c.token_file = token_file;
  c.lane = lane;
  c.connect_timeout_ms = 2000;
  c.request_timeout_ms = 5000;
  c.backoff_initial_ms = 20;
  c.backoff_max_ms = 200;
  return c;
}

vault::Vault* LinkWorld::Vault() {
  if (vault_ == nullptr) {
    vault_audit_ = std::make_unique<testing::FakeAuditLog>();
    vault::VaultOptions options;
    options.store_uri = vault_uri;
    options.key_uri = "keyring:" + dir + "/vault.keyring";
    options.key_secret = passphrase;
    options.audit = vault_audit_.get();
    const Status s = vault::Vault::Open(options, &vault_);
    if (!s.ok()) {
      ADD_FAILURE() << s.ToString();
      return nullptr;
    }
  }
  return vault_.get();
}

std::size_t LinkWorld::CountRecords(const std::string& event_id) {
  if (Vault() == nullptr) return 0;
  std::size_t count = 0;
  const vault::AccessContext who{"auditor:test", "auditor", "count lane event records"};
  for (vault::RecordType type : {vault::RecordType::kPlateRead, vault::RecordType::kKeptCapture}) {
    vault::RecordFilter filter;
    filter.type = type;
    filter.limit = vault::kMaxListLimit;
    while (true) {
      vault::RecordPage page;
      const Status s = vault_->List(who, filter, &page);
      if (!s.ok()) {
        ADD_FAILURE() << s.ToString();
        return count;
      }
      for (const auto& meta : page.records) {
        const auto it = meta.labels.find("event");
        if (event_id.empty() || (it != meta.labels.end() && it->second == event_id)) ++count;
      }
      if (page.next_cursor.empty()) break;
      filter.cursor = page.next_cursor;
    }
  }
  return count;
}

Status LinkService::Start(std::uint16_t port) {
  config.port = port != 0 ? port : port_;  // a restart keeps its port
  PORTCULLIS_RETURN_IF_ERROR(server::Service::Open(config, &service_));
  PORTCULLIS_RETURN_IF_ERROR(service_->Start());
  port_ = service_->port();
  return Status::Ok();
}

void LinkService::Stop() {
  if (service_) {
    service_->Shutdown();
    service_->Wait();
    service_.reset();
  }
}

std::uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace portcullis::lane::uplinktest
