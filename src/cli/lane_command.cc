// `portcullis lane`: runs the lane agent (docs/lane-agent.md) and its host tools. Signals are
// taken synchronously (sigwait on a blocked set, as `serve` does) so no work happens in a handler.
#include "cli/lane_command.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "lane/agent.h"
#include "lane/host_check.h"
#include "lane/maintenance_grant.h"

namespace portcullis::cli {
namespace {

using nlohmann::json;

struct LaneFlags {
  std::string config;
  bool check = false;
  int drain_timeout_ms = 10000;
  // check-host
  bool json_output = false;
  std::string root = "/";
  std::string data_dir;
  // grant-key
  std::string out, public_out;
};

void LogLine(const char* level, const std::string& msg, json fields = json::object()) {
  fields["level"] = level;
  fields["msg"] = msg;
  std::fprintf(stderr, "%s\n", fields.dump().c_str());
}

int RunAgent(const LaneFlags& flags) {
  lane::LaneAgentConfig config;
  const Status loaded = lane::LoadLaneAgentConfig(flags.config, Env::Default(), &config);
  if (!loaded.ok()) {
    LogLine("error", "invalid config", {{"error", loaded.ToString()}});
    return kExitUsage;
  }
  if (flags.check) {
    std::printf("%s\n", json{{"config", flags.config},
                             {"valid", true},
                             {"device", config.device},
                             {"lane", config.lane},
                             {"cameras", config.cameras.size()}}
                            .dump()
                            .c_str());
    return kExitOk;
  }
  lane::LaneAgentParts parts = lane::DefaultLaneAgentParts();
  // Before anything holds a frame: a crash must not write a memory image to disk.
  const Status dumps = parts.disable_core_dumps();
  if (!dumps.ok()) {
    LogLine("error", "cannot disable core dumps", {{"error", dumps.ToString()}});
    return kExitSetup;
  }
  // Block the stop signals before any thread starts, so only the waiter below sees them.
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGTERM);
  sigaddset(&stop_set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  parts.config_path = flags.config;
  std::unique_ptr<lane::LaneAgent> agent;
  const Status created = lane::LaneAgent::Create(config, Env::Default(), parts, &agent);
  if (!created.ok()) {
    LogLine("error", "cannot start", {{"error", created.ToString()}});
    return kExitSetup;
  }
  std::atomic<bool> stop{false};
  // The waiter turns SIGTERM/SIGINT into stop. When the agent ends by itself (every camera a
  // file that ended), the waiter is woken with a SIGTERM aimed at its thread alone.
  std::thread waiter([&stop_set, &stop] {
    int received = 0;
    sigwait(&stop_set, &received);
    if (!stop.exchange(true)) {
      LogLine("info", "stopping", {{"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"}});
    }
  });
  const Status ran = agent->Run(stop, flags.drain_timeout_ms);
  if (!stop.exchange(true)) {
    pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the sigwait; the set is blocked
  }
  waiter.join();
  agent.reset();
  if (!ran.ok()) {
    LogLine("error", "agent failed", {{"error", ran.ToString()}});
    return kExitSetup;
  }
  LogLine("info", "stopped", {{"device", config.device}});
  return kExitOk;
}

int RunCheckHost(const LaneFlags& flags) {
  lane::HostCheckOptions options;
  options.root = flags.root;
  options.data_dir = flags.data_dir;
  if (!flags.config.empty() && options.data_dir.empty()) {
    lane::LaneAgentConfig config;
    const Status s = lane::LoadLaneAgentConfig(flags.config, Env::Default(), &config);
    if (!s.ok()) {
      std::fprintf(stderr, "portcullis lane check-host: %s\n", s.ToString().c_str());
      return kExitUsage;
    }
    options.data_dir = config.data_dir;
  }
  lane::HostCheckReport report;
  const Status s = lane::CheckHostLockdown(options, &report);
  if (!s.ok()) {
    std::fprintf(stderr, "portcullis lane check-host: %s\n", s.ToString().c_str());
    return kExitUsage;
  }
  if (flags.json_output) {
    json checks = json::array();
    for (const auto& c : report.checks) {
      checks.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
    }
    std::printf("%s\n",
                json{{"locked_down", report.locked_down}, {"checks", checks}}.dump().c_str());
  } else {
    for (const auto& c : report.checks) {
      std::printf("%-4s %-22s %s\n", c.ok ? "ok" : "FAIL", c.name.c_str(), c.detail.c_str());
    }
    std::printf("%s\n", report.locked_down ? "host is locked down"
                                           : "host is NOT locked down: run "
                                             "scripts/lane-host-lockdown.sh (docs/lane-agent.md)");
  }
  return report.locked_down ? kExitOk : kExitHostNotLockedDown;
}

bool WritePrivate(const std::string& path, const std::string& text, mode_t mode) {
  std::FILE* file = std::fopen(path.c_str(), "wx");  // never overwrite a key
  if (file == nullptr) return false;
  const bool ok = ::fchmod(fileno(file), mode) == 0 &&
                  std::fwrite(text.data(), 1, text.size(), file) == text.size();
  return std::fclose(file) == 0 && ok;
}

int RunGrantKey(const LaneFlags& flags) {
  lane::GrantSecretKey secret;
  lane::GrantPublicKey public_key;
  if (!lane::GenerateGrantKeyPair(&secret, &public_key).ok()) return kExitInternal;
  std::string text = lane::FormatGrantSecretKey(secret);
  const bool ok = WritePrivate(flags.out, text, 0600);
  std::fill(text.begin(), text.end(), '\0');
  if (!ok) {
    std::fprintf(stderr, "portcullis lane grant-key: cannot create %s (exists?)\n",
                 flags.out.c_str());
    return kExitUnreadable;
  }
  if (!WritePrivate(flags.public_out, lane::FormatGrantPublicKey(public_key), 0644)) {
    std::fprintf(stderr, "portcullis lane grant-key: cannot create %s (exists?)\n",
                 flags.public_out.c_str());
    return kExitUnreadable;
  }
  std::printf(
      "%s\n",
      json{{"secret_key_file", flags.out}, {"public_key_file", flags.public_out}}.dump().c_str());
  return kExitOk;
}

}  // namespace

void AddLaneCommands(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<LaneFlags>();
  CLI::App* lane = app.add_subcommand("lane", "Run the lane agent (docs/lane-agent.md)");
  lane->add_option("--config", flags->config, "Lane agent config file (JSON)");
  lane->add_flag("--check", flags->check, "Validate the config and exit (0 valid, 2 invalid)");
  lane->add_option("--drain-timeout-ms", flags->drain_timeout_ms,
                   "When every camera is a file that ended: how long to drain the queue");

  CLI::App* check_host = lane->add_subcommand(
      "check-host", "Is this host locked down against removable media? (exit 0 yes, 22 no)");
  check_host->add_flag("--json", flags->json_output, "One JSON object on stdout");
  check_host->add_option("--root", flags->root, "Prefix of /etc, /proc and /sys (tests)");
  check_host->add_option("--data-dir", flags->data_dir,
                         "The agent's data dir (else from --config)");
  check_host->add_option("--config", flags->config, "A lane agent config: its data_dir");
  check_host->callback([flags, exit_code] { *exit_code = RunCheckHost(*flags); });

  CLI::App* grant_key = lane->add_subcommand(
      "grant-key", "Create the service's maintenance grant key pair (secret 0600, public 0644)");
  grant_key->add_option("--out", flags->out, "Secret key file (maintenance.grant_key_file)")
      ->required();
  grant_key
      ->add_option("--public-out", flags->public_out,
                   "Public key file (the agent's maintenance.grant_public_key_file)")
      ->required();
  grant_key->callback([flags, exit_code] { *exit_code = RunGrantKey(*flags); });

  lane->callback([lane, flags, exit_code] {
    if (!lane->get_subcommands().empty()) return;  // a subcommand ran
    if (flags->config.empty()) {
      std::fprintf(stderr, "portcullis lane: --config FILE is required\n");
      *exit_code = kExitUsage;
      return;
    }
    *exit_code = RunAgent(*flags);
  });
}

}  // namespace portcullis::cli
