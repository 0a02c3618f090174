// `portcullis serve --config FILE [--check]`: the HTTPS service (docs/service.md).
#pragma once

#include <CLI/CLI.hpp>

namespace portcullis::cli {

// Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT) or a valid --check; 2 (kExitUsage) for
// an invalid config; 3 (kExitSetup) when a dependency cannot be opened (audit log, vault, keys,
// access store, policy, models, TLS files) or the address cannot be bound; 1 on an internal error.
void AddServeCommands(CLI::App& app, int* exit_code);

}  // namespace portcullis::cli
