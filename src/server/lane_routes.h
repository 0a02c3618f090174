// The lane endpoints (docs/service-lanes.md): plate reads from lane devices, plate lookups and
// crops, lane statistics, device health and the retention view/purge. AddLaneRoutes (api.h)
// registers them with the defaults below; tests and the service may pass their own limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "portcullis/image.h"
#include "server/api.h"
#include "server/lane_clip.h"

namespace portcullis::server {

struct LaneOptions {
  // One posted frame. Tighter than the library default: a lane camera sends at most 8K frames.
  ImageLimits image_limits = {16, 8192, 8192LL * 8192, 64u << 20};
  ClipLimits clip;             // posted clips: frames, stride, frame size
  std::string scratch_dir;     // where clips wait while decoded; "" = ctx.scratch_dir, then $TMPDIR
  std::string retention_path;  // "" = ctx.retention_path, then the vault's default
  // GET /v1/plates: rows per response, record bodies decrypted per call when matching `text`,
  // and metadata rows examined per call; a call that stops early returns next_cursor.
  std::size_t max_list_limit = 500;
  std::size_t max_text_decrypts = 1000;
  std::size_t max_list_scan = 20000;
  // GET /v1/stats/lanes and GET /v1/retention: metadata rows examined per call.
  std::size_t max_stats_scan = 2000000;
};

void AddLaneRoutes(ServiceContext& ctx, const LaneOptions& options, std::vector<Route>* routes);

}  // namespace portcullis::server
