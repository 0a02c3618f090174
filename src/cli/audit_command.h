// `portcullis audit ...`: keys, appending, offline verification, proofs and witnesses for the
// tamper-evident audit log (docs/audit.md documents every command's output and exit codes).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "portcullis/audit.h"

namespace portcullis::cli {

// The JSON contract of a signed tree head: {"tree_size", "timestamp_micros", "root_hash",
// "signature"} (hashes and signature in lower-case hex).
nlohmann::json TreeHeadToJson(const audit::SignedTreeHead& sth);

// Registers `audit keygen|append|verify|prove|verify-proof|consistency|witness|query`;
// *exit_code is set when one of them ran.
void AddAuditCommands(CLI::App& app, int* exit_code);

}  // namespace portcullis::cli
