// `portcullis access ...`: bootstrap and administration of the access store from the shell, for
// the moments the API cannot serve (no admin exists yet, the admin's token is lost) and for
// breach scoping without a running service. docs/policy.md documents the commands and their
// --json output.
#pragma once

#include <CLI/CLI.hpp>

namespace portcullis::cli {

// Registers `access init`, `access principal add|list|revoke|rotate`, `access ticket list`,
// `access export list` and `access fingerprint`; *exit_code is set when one of them ran.
void AddAccessCommands(CLI::App& app, int* exit_code);

}  // namespace portcullis::cli
