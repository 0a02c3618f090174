// `portcullis serve`: loads the config, opens the service, serves until SIGTERM/SIGINT, then
// shuts down gracefully (docs/service.md). Signals are taken synchronously (sigwait on a blocked
// set) so no work happens in a signal handler.
#include "cli/serve_command.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "server/logging.h"
#include "server/service.h"

namespace portcullis::cli {
namespace {

struct ServeFlags {
  std::string config;
  bool check = false;
};

int RunServe(const ServeFlags& flags) {
  server::ServiceConfig config;
  const Status loaded = server::LoadServiceConfig(flags.config, &config);
  if (!loaded.ok()) {
    server::LogEvent("error", "invalid config", {{"error", loaded.ToString()}});
    return kExitUsage;
  }
  if (flags.check) {
    std::printf("%s\n",
                nlohmann::json{{"config", flags.config}, {"valid", true}, {"node", config.node}}
                    .dump()
                    .c_str());
    return kExitOk;
  }
  // Block the stop signals before any thread starts, so every thread inherits the mask and only
  // the sigwait below ever sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<server::Service> service;
  Status s = server::Service::Open(config, &service);
  if (s.ok()) s = service->Start();
  if (!s.ok()) {
    server::LogEvent("error", "cannot start", {{"error", s.ToString()}});
    return kExitSetup;
  }
  int received = 0;
  sigwait(&stop, &received);
  server::LogEvent("info", "shutting down",
                   {{"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"}});
  service->Shutdown();
  server::LogEvent("info", "stopped", {{"node", config.node}});
  return kExitOk;
}

}  // namespace

void AddServeCommands(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* serve = app.add_subcommand("serve", "Run the HTTPS service (docs/service.md)");
  serve->add_option("--config", flags->config, "Service config file (JSON)")->required();
  serve->add_flag("--check", flags->check, "Validate the config and exit (0 valid, 2 invalid)");
  serve->callback([flags, exit_code] { *exit_code = RunServe(*flags); });
}

}  // namespace portcullis::cli
