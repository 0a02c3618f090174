// `portcullis plate ...`: the command-line face of the plate engine.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "portcullis/plate.h"
#include "portcullis/plate_video.h"

namespace portcullis::cli {

// The JSON contract of one plate (README, "JSON output"). Stable: evaluators depend on it.
nlohmann::json PlateToJson(const plate::PlateRead& read);

// One JSON Lines record for an input: {"file", "plates", "error"} (+ "error_code" on failure,
// + "frame"/"time_ms" for a video pass).
nlohmann::json ImageRecord(const std::string& file, const std::vector<plate::PlateRead>& plates,
                           const Status& status);
nlohmann::json PassRecord(const std::string& file, const plate::PlatePass& pass);

// Registers `plate read` and `plate demo` on app; *exit_code is set when one of them ran.
void AddPlateCommands(CLI::App& app, int* exit_code);

}  // namespace portcullis::cli
