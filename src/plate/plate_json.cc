#include "portcullis/plate_json.h"

namespace portcullis::plate {

nlohmann::json PlateReadToJson(const PlateRead& read) {
  nlohmann::json candidates = nlohmann::json::array();
  for (const auto& c : read.candidates) {
    candidates.push_back({{"text", c.text}, {"confidence", c.confidence}, {"format", c.format}});
  }
  nlohmann::json polygon = nlohmann::json::array();
  for (const auto& p : read.polygon) polygon.push_back({p.x, p.y});
  return {{"text", read.text},
          {"confidence", read.confidence},
          {"region", read.region},
          {"format", read.format},
          {"box", {read.box.x, read.box.y, read.box.width, read.box.height}},
          {"polygon", polygon},
          {"candidates", candidates}};
}

}  // namespace portcullis::plate
