// `portcullis vault ...`: operators' access to the vault. Every command names who is asking, in
// which role and why (--as, --role, --purpose); each lands in the audit log.
#pragma once

#include <CLI/CLI.hpp>

namespace portcullis::cli {

// Registers `vault init|put|get|list|purge|rotate`; *exit_code is set when one of them ran.
void AddVaultCommands(CLI::App& app, int* exit_code);

}  // namespace portcullis::cli
