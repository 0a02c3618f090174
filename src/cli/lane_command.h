// `portcullis lane`: the lane agent and its host tools (docs/lane-agent.md).
//   lane --config FILE [--check]   run the agent (SIGTERM/SIGINT: graceful stop) / validate
//   lane check-host [--json] [--root DIR] [--data-dir DIR | --config FILE]
//   lane grant-key --out FILE --public-out FILE   the service's maintenance grant key pair
#pragma once

#include <CLI/CLI.hpp>

namespace portcullis::cli {

// Exit codes: 0 clean stop / valid config / host locked down / key written; 2 (kExitUsage) bad
// config or flags; 3 (kExitSetup) the agent cannot start (data dir, queue, listen address);
// 22 (kExitHostNotLockedDown) check-host found the host not locked down; 1 internal error.
void AddLaneCommands(CLI::App& app, int* exit_code);

}  // namespace portcullis::cli
