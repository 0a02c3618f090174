// LoadLaneAgentConfig: the agent's config file, validated strictly. A lane computer is set up
// once and then left alone for months, so a typo must stop it at start with a message naming the
// field, never fall back silently to a default (a mistyped "data_dir" would be the worst kind).
#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "agent.h"
#include "portcullis/face.h"

namespace portcullis::lane {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxConfigBytes = 1 << 20;
constexpr std::size_t kMaxKeyFileBytes = 4096;
constexpr std::size_t kMaxCameras = 16;

// Reads one JSON object's fields, remembering which were read so unknown ones are refused.
class Fields {
 public:
  Fields(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  [[nodiscard]] std::string Name(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  // allow_empty: "" is a meaningful value (e.g. a listen address that turns an endpoint off).
  Status String(const std::string& key, bool required, std::string* out, bool allow_empty = false) {
    seen_.insert(key);
    if (!object_.contains(key)) {
      return required ? Status::InvalidArgument(Name(key) + ": required") : Status::Ok();
    }
    if (!object_[key].is_string() || (!allow_empty && object_[key].get<std::string>().empty())) {
      return Status::InvalidArgument(Name(key) + ": must be a non-empty string");
    }
    *out = object_[key].get<std::string>();
    return Status::Ok();
  }
  template <typename T>
  Status Integer(const std::string& key, T min, T max, T* out) {
    seen_.insert(key);
    if (!object_.contains(key)) return Status::Ok();
    const json& v = object_[key];
    if (!v.is_number_integer()) return Status::InvalidArgument(Name(key) + ": must be an integer");
    // Every bound here fits in int64; a value that does not is out of range anyway.
    const bool huge = v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t{1} << 62;
    const std::int64_t value = huge ? 0 : v.get<std::int64_t>();
    if (huge || value < static_cast<std::int64_t>(min) || value > static_cast<std::int64_t>(max)) {
      return Status::InvalidArgument(Name(key) + ": must be in " + std::to_string(min) + ".." +
                                     std::to_string(max));
    }
    *out = static_cast<T>(value);
    return Status::Ok();
  }
  Status Bool(const std::string& key, bool* out) {
    seen_.insert(key);
    if (!object_.contains(key)) return Status::Ok();
    if (!object_[key].is_boolean()) {
      return Status::InvalidArgument(Name(key) + ": must be true or false");
    }
    *out = object_[key].get<bool>();
    return Status::Ok();
  }
  Status Object(const std::string& key, bool required, const json** out) {
    seen_.insert(key);
    if (!object_.contains(key)) {
      return required ? Status::InvalidArgument(Name(key) + ": required") : Status::Ok();
    }
    if (!object_[key].is_object()) {
      return Status::InvalidArgument(Name(key) + ": must be an object");
    }
    *out = &object_[key];
    return Status::Ok();
  }
  Status Array(const std::string& key, bool required, const json** out) {
    seen_.insert(key);
    if (!object_.contains(key)) {
      return required ? Status::InvalidArgument(Name(key) + ": required") : Status::Ok();
    }
    if (!object_[key].is_array()) return Status::InvalidArgument(Name(key) + ": must be an array");
    *out = &object_[key];
    return Status::Ok();
  }
  void Ignore(const std::string& key) { seen_.insert(key); }
  [[nodiscard]] Status NoOthers() const {
    for (const auto& [key, value] : object_.items()) {
      if (seen_.count(key) == 0) return Status::InvalidArgument(Name(key) + ": unknown field");
    }
    return Status::Ok();
  }

 private:
  const json& object_;
  std::string path_;
  std::set<std::string> seen_;
};

std::string Resolve(const std::string& base, const std::string& value) {
  if (value.empty() || value[0] == '/' || base.empty()) return value;
  return base + "/" + value;
}

bool IsStreamOrDevice(const std::string& source) {
  return source.find("://") != std::string::npos || source.rfind("v4l2:", 0) == 0;
}

// The same alphabets the service uses: principal names [a-z0-9:._-], lanes [A-Za-z0-9._-].
bool ValidDevice(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' || c == '.' || c == '_' ||
           c == '-';
  });
}
bool ValidLane(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
}
bool ValidCameraId(const std::string& s) {
  return !s.empty() && s.size() <= 32 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
  });
}

Status ParseCamera(const json& item, std::size_t index, const std::string& base,
                   CameraConfig* camera) {
  const std::string name = "cameras[" + std::to_string(index) + "]";
  if (!item.is_object()) return Status::InvalidArgument(name + ": must be an object");
  Fields f(item, name);
  CameraConfig c;
  PORTCULLIS_RETURN_IF_ERROR(f.String("id", true, &c.id));
  if (!ValidCameraId(c.id)) {
    return Status::InvalidArgument(name + ".id: must be 1-32 characters of [A-Za-z0-9_-]");
  }
  PORTCULLIS_RETURN_IF_ERROR(f.String("source", true, &c.source));
  PORTCULLIS_RETURN_IF_ERROR(f.Integer("frame_stride", 1, 60, &c.frame_stride));
  PORTCULLIS_RETURN_IF_ERROR(f.Integer("stall_timeout_ms", 100, 600000, &c.stall_timeout_ms));
  PORTCULLIS_RETURN_IF_ERROR(f.Integer("retry_initial_ms", 10, 600000, &c.retry_initial_ms));
  PORTCULLIS_RETURN_IF_ERROR(f.Integer("retry_max_ms", 10, 3600000, &c.retry_max_ms));
  PORTCULLIS_RETURN_IF_ERROR(f.Bool("loop", &c.loop));
  PORTCULLIS_RETURN_IF_ERROR(f.Bool("realtime", &c.realtime));
  PORTCULLIS_RETURN_IF_ERROR(f.Bool("faces", &c.faces));
  PORTCULLIS_RETURN_IF_ERROR(
      f.Integer("plate_detector_max_side", 0, 4096, &c.plate_detector_max_side));
  if (c.plate_detector_max_side != 0 && c.plate_detector_max_side < 64) {
    return Status::InvalidArgument(name + ".plate_detector_max_side: must be 0 or in [64, 4096]");
  }
  PORTCULLIS_RETURN_IF_ERROR(
      f.Integer("face_min_pixels", 0, face::kMaxMinFacePixels, &c.face_min_pixels));
  const json* roi = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(f.Object("roi", false, &roi));
  if (roi != nullptr) {
    Fields r(*roi, name + ".roi");
    PORTCULLIS_RETURN_IF_ERROR(r.Integer("x", 0, 100000, &c.roi_x));
    PORTCULLIS_RETURN_IF_ERROR(r.Integer("y", 0, 100000, &c.roi_y));
    PORTCULLIS_RETURN_IF_ERROR(r.Integer("w", 1, 100000, &c.roi_w));
    PORTCULLIS_RETURN_IF_ERROR(r.Integer("h", 1, 100000, &c.roi_h));
    PORTCULLIS_RETURN_IF_ERROR(r.NoOthers());
    if (c.roi_w == 0 || c.roi_h == 0) {
      return Status::InvalidArgument(name + ".roi: w and h are required");
    }
  }
  PORTCULLIS_RETURN_IF_ERROR(f.NoOthers());
  if (c.retry_max_ms < c.retry_initial_ms) {
    return Status::InvalidArgument(name + ".retry_max_ms: must be >= retry_initial_ms");
  }
  if (c.loop && IsStreamOrDevice(c.source)) {
    return Status::InvalidArgument(name + ".loop: only a video file can loop");
  }
  if (c.realtime && IsStreamOrDevice(c.source)) {
    return Status::InvalidArgument(name + ".realtime: only a video file is paced");
  }
  if (!IsStreamOrDevice(c.source)) c.source = Resolve(base, c.source);
  *camera = std::move(c);
  return Status::Ok();
}

Status ReadKeyFile(Env* env, const std::string& path, const std::string& field, std::string* text) {
  return env->ReadFile(path, kMaxKeyFileBytes, text).WithContext(field + " '" + path + "'");
}

}  // namespace

Status ParseListenAddress(const std::string& listen, std::string* host, std::uint16_t* port) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("must be HOST:PORT, e.g. 127.0.0.1:9445");
  }
  std::string h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const std::string p = listen.substr(colon + 1);
  if (h.empty() || p.empty() || p.size() > 5 ||
      !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoul(p) > 65535) {
    return Status::InvalidArgument("must be HOST:PORT with a port 0..65535");
  }
  *host = h;
  *port = static_cast<std::uint16_t>(std::stoul(p));
  return Status::Ok();
}

Status ParseLaneAgentConfig(std::string_view text, const std::string& base_dir, Env* env,
                            LaneAgentConfig* config) {
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return Status::InvalidArgument("config: malformed JSON");
  if (!doc.is_object()) return Status::InvalidArgument("config: must be a JSON object");
  LaneAgentConfig c;
  Fields top(doc, "");
  top.Ignore("comment");
  PORTCULLIS_RETURN_IF_ERROR(top.String("device", true, &c.device));
  if (!ValidDevice(c.device)) {
    return Status::InvalidArgument("device: must be 1-64 characters of [a-z0-9:._-]");
  }
  PORTCULLIS_RETURN_IF_ERROR(top.String("lane", true, &c.lane));
  if (!ValidLane(c.lane)) {
    return Status::InvalidArgument("lane: must be 1-64 characters of [A-Za-z0-9._-]");
  }
  PORTCULLIS_RETURN_IF_ERROR(top.String("data_dir", true, &c.data_dir));
  PORTCULLIS_RETURN_IF_ERROR(top.String("ingest_public_key_file", true, &c.ingest_public_key_file));

  const json* cameras = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Array("cameras", true, &cameras));
  if (cameras->empty() || cameras->size() > kMaxCameras) {
    return Status::InvalidArgument("cameras: must list 1.." + std::to_string(kMaxCameras) +
                                   " cameras");
  }
  std::set<std::string> ids;
  for (std::size_t i = 0; i < cameras->size(); ++i) {
    CameraConfig camera;
    PORTCULLIS_RETURN_IF_ERROR(ParseCamera((*cameras)[i], i, base_dir, &camera));
    if (!ids.insert(camera.id).second) {
      return Status::InvalidArgument("cameras[" + std::to_string(i) + "].id: '" + camera.id +
                                     "' is used twice");
    }
    c.cameras.push_back(std::move(camera));
  }

  const json* service = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Object("service", true, &service));
  {
    Fields s(*service, "service");
    UplinkConfig& u = c.service;
    PORTCULLIS_RETURN_IF_ERROR(s.String("url", true, &u.url));
    PORTCULLIS_RETURN_IF_ERROR(s.String("ca_file", true, &u.ca_file));
    PORTCULLIS_RETURN_IF_ERROR(s.String("cert_file", true, &u.cert_file));
    PORTCULLIS_RETURN_IF_ERROR(s.String("key_file", true, &u.key_file));
    PORTCULLIS_RETURN_IF_ERROR(s.String("token_file", true, &u.token_file));
    PORTCULLIS_RETURN_IF_ERROR(s.Integer("connect_timeout_ms", 100, 120000, &u.connect_timeout_ms));
    PORTCULLIS_RETURN_IF_ERROR(s.Integer("request_timeout_ms", 100, 600000, &u.request_timeout_ms));
    PORTCULLIS_RETURN_IF_ERROR(s.Integer("backoff_initial_ms", 10, 600000, &u.backoff_initial_ms));
    PORTCULLIS_RETURN_IF_ERROR(s.Integer("backoff_max_ms", 10, 3600000, &u.backoff_max_ms));
    PORTCULLIS_RETURN_IF_ERROR(s.NoOthers());
    // The link carries sealed events and a bearer token: plain HTTP is never acceptable.
    if (u.url.rfind("https://", 0) != 0 || u.url.size() <= 8) {
      return Status::InvalidArgument("service.url: must be https://HOST[:PORT]");
    }
    while (u.url.back() == '/') u.url.pop_back();
    if (u.backoff_max_ms < u.backoff_initial_ms) {
      return Status::InvalidArgument("service.backoff_max_ms: must be >= backoff_initial_ms");
    }
    u.lane = c.lane;
    u.ca_file = Resolve(base_dir, u.ca_file);
    u.cert_file = Resolve(base_dir, u.cert_file);
    u.key_file = Resolve(base_dir, u.key_file);
    u.token_file = Resolve(base_dir, u.token_file);
  }

  const json* queue = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Object("queue", false, &queue));
  if (queue != nullptr) {
    Fields q(*queue, "queue");
    SealedQueueOptions& o = c.queue;
    PORTCULLIS_RETURN_IF_ERROR(q.Integer<std::uint64_t>("max_bytes", std::uint64_t{1} << 20,
                                                        std::uint64_t{1} << 40, &o.max_bytes));
    PORTCULLIS_RETURN_IF_ERROR(
        q.Integer<std::uint64_t>("max_events", 1, 100'000'000, &o.max_events));
    PORTCULLIS_RETURN_IF_ERROR(q.Integer<std::uint64_t>("segment_bytes", std::uint64_t{64} << 10,
                                                        std::uint64_t{1} << 30, &o.segment_bytes));
    PORTCULLIS_RETURN_IF_ERROR(q.NoOthers());
    if (o.segment_bytes > o.max_bytes) {
      return Status::InvalidArgument("queue.segment_bytes: must be <= queue.max_bytes");
    }
  }

  const json* maintenance = nullptr;
  PORTCULLIS_RETURN_IF_ERROR(top.Object("maintenance", false, &maintenance));
  if (maintenance != nullptr) {
    Fields m(*maintenance, "maintenance");
    MaintenanceConfig& mc = c.maintenance;
    PORTCULLIS_RETURN_IF_ERROR(m.String("listen", false, &mc.listen, /*allow_empty=*/true));
    PORTCULLIS_RETURN_IF_ERROR(m.String("cert_file", false, &mc.cert_file));
    PORTCULLIS_RETURN_IF_ERROR(m.String("key_file", false, &mc.key_file));
    PORTCULLIS_RETURN_IF_ERROR(m.String("grant_public_key_file", false, &mc.grant_public_key_file));
    PORTCULLIS_RETURN_IF_ERROR(m.Integer("max_preview_fps", 1, 30, &mc.max_preview_fps));
    PORTCULLIS_RETURN_IF_ERROR(m.Integer("clock_skew_s", 0, 3600, &mc.clock_skew_s));
    PORTCULLIS_RETURN_IF_ERROR(m.NoOthers());
  } else {
    c.maintenance.listen.clear();  // no maintenance section: no maintenance port
  }
  if (!c.maintenance.listen.empty()) {
    std::string host;
    std::uint16_t port = 0;
    PORTCULLIS_RETURN_IF_ERROR(
        ParseListenAddress(c.maintenance.listen, &host, &port).WithContext("maintenance.listen"));
    for (const auto& [field, value] :
         {std::pair{"maintenance.cert_file", &c.maintenance.cert_file},
          std::pair{"maintenance.key_file", &c.maintenance.key_file},
          std::pair{"maintenance.grant_public_key_file", &c.maintenance.grant_public_key_file}}) {
      if (value->empty()) {
        return Status::InvalidArgument(std::string(field) +
                                       ": required when maintenance.listen is set");
      }
      *value = Resolve(base_dir, *value);
    }
    std::string key_text;
    PORTCULLIS_RETURN_IF_ERROR(ReadKeyFile(env, c.maintenance.grant_public_key_file,
                                           "maintenance.grant_public_key_file", &key_text));
    PORTCULLIS_RETURN_IF_ERROR(ParseGrantPublicKey(key_text, &c.maintenance.grant_public_key)
                                   .WithContext("maintenance.grant_public_key_file"));
  }

  PORTCULLIS_RETURN_IF_ERROR(
      top.String("metrics_listen", false, &c.metrics_listen, /*allow_empty=*/true));
  if (!c.metrics_listen.empty()) {
    std::string host;
    std::uint16_t port = 0;
    PORTCULLIS_RETURN_IF_ERROR(
        ParseListenAddress(c.metrics_listen, &host, &port).WithContext("metrics_listen"));
  }
  PORTCULLIS_RETURN_IF_ERROR(top.String("region", false, &c.region));
  if (c.region != "auto" && !std::all_of(c.region.begin(), c.region.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
      })) {
    return Status::InvalidArgument("region: must be \"auto\" or a region name like \"us\"");
  }
  PORTCULLIS_RETURN_IF_ERROR(top.String("model_dir", false, &c.model_dir));
  PORTCULLIS_RETURN_IF_ERROR(
      top.Integer("health_report_interval_s", 5, 86400, &c.health_report_interval_s));
  PORTCULLIS_RETURN_IF_ERROR(
      top.Integer("clock_jump_threshold_ms", 100, 3'600'000, &c.clock_jump_threshold_ms));
  PORTCULLIS_RETURN_IF_ERROR(top.NoOthers());

  c.data_dir = Resolve(base_dir, c.data_dir);
  c.ingest_public_key_file = Resolve(base_dir, c.ingest_public_key_file);
  c.model_dir = Resolve(base_dir, c.model_dir);
  std::string key_text;
  PORTCULLIS_RETURN_IF_ERROR(
      ReadKeyFile(env, c.ingest_public_key_file, "ingest_public_key_file", &key_text));
  PORTCULLIS_RETURN_IF_ERROR(
      ParseIngestPublicKey(key_text, &c.ingest_public_key).WithContext("ingest_public_key_file"));
  *config = std::move(c);
  return Status::Ok();
}

Status LoadLaneAgentConfig(const std::string& path, Env* env, LaneAgentConfig* config) {
  std::string text;
  PORTCULLIS_RETURN_IF_ERROR(env->ReadFile(path, kMaxConfigBytes, &text).WithContext(path));
  const std::size_t slash = path.rfind('/');
  const std::string base = slash == std::string::npos ? "." : path.substr(0, slash);
  return ParseLaneAgentConfig(text, base.empty() ? "/" : base, env, config).WithContext(path);
}

}  // namespace portcullis::lane
