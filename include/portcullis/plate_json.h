// The JSON shape of one plate read. It is a contract shared by `portcullis plate read --json`
// (README, "JSON output") and the HTTP API (docs/api.md), so it lives with the engine rather than
// in either front end: both emit exactly these fields, and evaluators depend on them.
#pragma once

#include <nlohmann/json.hpp>

#include "portcullis/plate.h"

namespace portcullis::plate {

// {"text", "confidence", "region", "format", "box": [x, y, w, h], "polygon": [[x, y] x4],
//  "candidates": [{"text", "confidence", "format"}]}
nlohmann::json PlateReadToJson(const PlateRead& read);

}  // namespace portcullis::plate
