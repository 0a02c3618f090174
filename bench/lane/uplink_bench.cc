// uplink_bench: how fast a lane agent's backlog drains after an outage (docs/lane-link.md).
//
// For 4 KiB and 200 KiB events it fills an in-memory queue with sealed events, then drains it
// through QueueDrainer + the mutual-TLS Uplink into the real service on loopback (open the seal,
// claim the event id, store read + crop + face in a SQLite vault), and prints events/s. The
// baseline in the same run: the same client sending the same bodies over the same kind of
// connection to a route of the same HTTP server that answers 201 without opening or storing
// anything — the transport's own cost. Sealing on the device is timed separately.
//
//   build-ll/bench/lane/uplink_bench [events_per_size]      (default 300)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "lane/uplink.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server_test_util.h"
#include "uplink_util.h"

namespace portcullis::lane {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Row {
  std::string what;
  std::size_t size = 0;
  int events = 0;
  double seconds = 0;
};

// Drains the queue through a fresh uplink to port; returns seconds, or -1 on a failure.
double Drain(uplinktest::MemoryQueue* queue, const UplinkConfig& config) {
  std::unique_ptr<Uplink> link;
  if (Status s = Uplink::Open(config, &link); !s.ok()) {
    std::fprintf(stderr, "uplink: %s\n", s.ToString().c_str());
    return -1;
  }
  QueueDrainer drainer(queue, link.get(), config);
  DrainStats stats;
  const auto start = Clock::now();
  Status s;
  while ((s = drainer.DrainOne(&stats)).ok()) {
  }
  const double seconds = Seconds(Clock::now() - start);
  if (s.code() != Status::Code::kNotFound) {
    std::fprintf(stderr, "drain stopped: %s (%s)\n", s.ToString().c_str(),
                 LinkStateName(stats.state));
    return -1;
  }
  return seconds;
}

int Main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 300;
  uplinktest::LinkWorld world;
  if (!world.Init()) return 1;
  uplinktest::LinkService service(world, "bench");
  if (Status s = service.Start(); !s.ok()) {
    std::fprintf(stderr, "service: %s\n", s.ToString().c_str());
    return 1;
  }

  // The baseline server: same HttpServer, same mTLS, one public route that only answers.
  testing::FakeAccessStore store;
  testing::FakeAuditLog audit;
  server::Metrics metrics;
  server::ServiceContext ctx;
  ctx.access = &store;
  ctx.audit = &audit;
  ctx.metrics = &metrics;
  std::unique_ptr<policy::AccessPolicy> policy;
  if (!policy::LoadPolicyFile(std::string(PORTCULLIS_SOURCE_DIR) + "/data/policy.json", &policy)
           .ok()) {
    return 1;
  }
  ctx.policy = policy.get();
  server::HttpServerOptions options;
  options.cert_file = world.server_cert.cert;
  options.key_file = world.server_cert.key;
  options.client_ca_file = world.device_ca.cert;
  options.max_body_bytes = 16 << 20;
  options.rate_per_minute = 1e9;
  server::Route echo;
  echo.method = "POST";
  echo.pattern = "/v1/lanes/{lane}/events";
  echo.heavy = true;
  echo.handler = [](server::ApiRequest& request) {
    return server::ApiResponse::Json(201, {{"event_id", request.headers["x-event-id"]},
                                           {"records", nlohmann::json::array()},
                                           {"duplicate", false}});
  };
  std::unique_ptr<server::HttpServer> baseline;
  if (!server::HttpServer::Create(options, &ctx, {echo}, std::vector<server::WorkerEngines>(2),
                                  &baseline)
           .ok() ||
      !baseline->Start().ok()) {
    std::fprintf(stderr, "baseline server failed to start\n");
    return 1;
  }

  std::vector<Row> rows;
  for (const std::size_t size : {std::size_t{4} << 10, std::size_t{200} << 10}) {
    // Seal n events of about `size` bytes (crop = size; the face is small).
    uplinktest::MemoryQueue sealed_queue, plain_queue;
    const auto seal_start = Clock::now();
    std::uint64_t sequence = size;  // distinct per size
    std::vector<SealedEvent> events;
    for (int i = 0; i < n; ++i) {
      const LaneEvent event = uplinktest::SampleEvent(world.lane, ++sequence, size, true);
      SealedEvent sealed;
      if (!SealLaneEvent(event, world.public_key, &sealed).ok()) return 1;
      events.push_back(std::move(sealed));
    }
    rows.push_back(
        {"seal on the device (SealLaneEvent)", size, n, Seconds(Clock::now() - seal_start)});
    for (const SealedEvent& e : events) {
      if (!sealed_queue.Append(e).ok() || !plain_queue.Append(e).ok()) return 1;
    }
    const double base = Drain(&plain_queue, world.DeviceConfig(baseline->port()));
    const double full = Drain(&sealed_queue, world.DeviceConfig(service.port()));
    if (base < 0 || full < 0) return 1;
    rows.push_back({"baseline: same HTTPS requests, no open/store", size, n, base});
    rows.push_back({"drain: open + claim + store in the vault", size, n, full});
    if (world.CountRecords() == 0) return 1;
  }
  std::printf("%-46s %9s %7s %9s %10s %9s\n", "path", "event", "events", "seconds", "events/s",
              "MiB/s");
  for (const Row& r : rows) {
    std::printf("%-46s %7zuK %7d %9.3f %10.1f %9.1f\n", r.what.c_str(), r.size >> 10, r.events,
                r.seconds, r.events / r.seconds,
                static_cast<double>(r.size) * r.events / r.seconds / (1 << 20));
  }
  baseline->Shutdown();
  return 0;
}

}  // namespace
}  // namespace portcullis::lane

int main(int argc, char** argv) { return portcullis::lane::Main(argc, argv); }
