// FaceNet: dlib's face-metric ResNet, filled from face-api's TF.js weight files.
//
// Mapping (face-api's FaceRecognitionNet.ts mirrors dlib's network layer for layer):
//   <block>/conv/filters  [kh, kw, in, out] (HWIO)  -> con_ filters, dlib order [out, in, kh, kw]
//   <block>/conv/bias     [out]                     -> con_ biases (after the filters in params)
//   <block>/scale/weights [out]                     -> affine_ gamma (CONV_MODE: one per channel)
//   <block>/scale/biases  [out]                     -> affine_ beta
//   fc                    [256, 128]                -> fc_no_bias weights ([in, out], same order)
// Input normalisation is dlib's input_rgb_image_sized<150>: (x - mean RGB) / 256 with mean
// (122.782, 117.001, 104.298); face-api divides by 255 instead, an approximation of the original
// (the weights were trained in dlib).
#include "face/face_net.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <dlib/dnn.h>
#include <dlib/image_transforms.h>
#include <nlohmann/json.hpp>

#include "common/blas_threads.h"

namespace portcullis::face::internal {
namespace {

// Joins message parts in one allocation (clang-tidy: no chains of temporary strings).
std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (const std::string_view part : parts) out.append(part);
  return out;
}

// ---- dlib's network, exactly as in dnn_face_recognition_ex.cpp --------------------------------
// NOLINTBEGIN: dlib's template vocabulary, kept verbatim so it can be compared with the original.
template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual = dlib::add_prev1<block<N, BN, 1, dlib::tag1<SUBNET>>>;

template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual_down = dlib::add_prev2<
    dlib::avg_pool<2, 2, 2, 2, dlib::skip1<dlib::tag2<block<N, BN, 2, dlib::tag1<SUBNET>>>>>>;

template <int N, template <typename> class BN, int stride, typename SUBNET>
using block =
    BN<dlib::con<N, 3, 3, 1, 1, dlib::relu<BN<dlib::con<N, 3, 3, stride, stride, SUBNET>>>>>;

template <int N, typename SUBNET>
using ares = dlib::relu<residual<block, N, dlib::affine, SUBNET>>;
template <int N, typename SUBNET>
using ares_down = dlib::relu<residual_down<block, N, dlib::affine, SUBNET>>;

template <typename SUBNET>
using alevel0 = ares_down<256, SUBNET>;
template <typename SUBNET>
using alevel1 = ares<256, ares<256, ares_down<256, SUBNET>>>;
template <typename SUBNET>
using alevel2 = ares<128, ares<128, ares_down<128, SUBNET>>>;
template <typename SUBNET>
using alevel3 = ares<64, ares<64, ares<64, ares_down<64, SUBNET>>>>;
template <typename SUBNET>
using alevel4 = ares<32, ares<32, ares<32, SUBNET>>>;

using anet_type = dlib::loss_metric<dlib::fc_no_bias<
    128, dlib::avg_pool_everything<alevel0<alevel1<alevel2<alevel3<alevel4<dlib::max_pool<
             3, 3, 2, 2,
             dlib::relu<dlib::affine<
                 dlib::con<32, 7, 7, 2, 2, dlib::input_rgb_image_sized<150>>>>>>>>>>>>>;
// NOLINTEND

// The convolution blocks in input-to-output order: one stem convolution, then two convolutions
// per residual unit.
struct ConvSpec {
  std::string name;  // "conv32_down" or "conv64_1/conv2"
  int kernel;
  int in;
  int out;
};

std::vector<ConvSpec> ConvSpecs() {
  std::vector<ConvSpec> specs{{"conv32_down", 7, 3, 32}};
  struct Unit {
    const char* name;
    int in;
    int out;
  };
  const Unit units[] = {
      {"conv32_1", 32, 32},    {"conv32_2", 32, 32},          {"conv32_3", 32, 32},
      {"conv64_down", 32, 64}, {"conv64_1", 64, 64},          {"conv64_2", 64, 64},
      {"conv64_3", 64, 64},    {"conv128_down", 64, 128},     {"conv128_1", 128, 128},
      {"conv128_2", 128, 128}, {"conv256_down", 128, 256},    {"conv256_1", 256, 256},
      {"conv256_2", 256, 256}, {"conv256_down_out", 256, 256}};
  for (const Unit& u : units) {
    specs.push_back({std::string(u.name) + "/conv1", 3, u.in, u.out});
    specs.push_back({std::string(u.name) + "/conv2", 3, u.out, u.out});
  }
  return specs;
}

constexpr int kEmbeddingInputs = 256;

// One tensor of the manifest, dequantised to float.
struct Tensor {
  std::vector<int> shape;
  std::vector<float> values;
};

std::size_t ElementCount(const std::vector<int>& shape) {
  std::size_t n = 1;
  for (const int d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

// A file name from the manifest must stay inside the model directory.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name != "." && name != ".." &&
         name.find('\0') == std::string::npos;
}

Status ParseManifest(Env* env, const std::string& dir, std::map<std::string, Tensor>* tensors) {
  const std::string manifest_path = dir + "/" + kManifestName;
  std::string text;
  Status s = env->ReadFile(manifest_path, 1u << 20, &text);
  if (!s.ok()) return s.WithContext(manifest_path);
  const nlohmann::json manifest = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (manifest.is_discarded() || !manifest.is_array() || manifest.empty()) {
    return Status::Corruption(manifest_path + ": not a TF.js weights manifest (a JSON array)");
  }
  for (const nlohmann::json& group : manifest) {
    if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array() ||
        !group.contains("weights") || !group["weights"].is_array()) {
      return Status::Corruption(manifest_path + ": a group lacks 'paths' or 'weights'");
    }
    // The group's weights are the concatenation of its shards, in order.
    std::string bytes;
    for (const nlohmann::json& path : group["paths"]) {
      if (!path.is_string() || !IsPlainFileName(path.get<std::string>())) {
        return Status::Corruption(manifest_path + ": a shard path is not a plain file name");
      }
      std::string shard;
      const std::string shard_path = dir + "/" + path.get<std::string>();
      s = env->ReadFile(shard_path, 64u << 20, &shard);
      if (!s.ok()) return s.WithContext(shard_path);
      bytes += shard;
    }
    std::size_t offset = 0;
    for (const nlohmann::json& w : group["weights"]) {
      if (!w.is_object() || !w.contains("name") || !w["name"].is_string() || !w.contains("shape") ||
          !w["shape"].is_array() || !w.contains("dtype") || !w["dtype"].is_string()) {
        return Status::Corruption(manifest_path + ": a weight entry lacks name, shape or dtype");
      }
      const std::string name = w["name"].get<std::string>();
      Tensor t;
      for (const nlohmann::json& d : w["shape"]) {
        if (!d.is_number_integer() || d.get<std::int64_t>() <= 0 ||
            d.get<std::int64_t>() > (1 << 20)) {
          return Status::Corruption(Cat({manifest_path, ": ", name, " has a bad shape"}));
        }
        t.shape.push_back(d.get<int>());
      }
      if (w["dtype"] != "float32") {
        return Status::Unsupported(Cat({manifest_path, ": ", name, " has dtype ", w["dtype"].dump(),
                                        " (only float32 is supported)"}));
      }
      const std::size_t n = ElementCount(t.shape);
      if (n > (16u << 20))
        return Status::Corruption(Cat({manifest_path, ": ", name, " is too big"}));
      t.values.resize(n);
      if (w.contains("quantization")) {
        const nlohmann::json& q = w["quantization"];
        if (!q.is_object() || !q.contains("dtype") || !q.contains("scale") || !q.contains("min") ||
            !q["scale"].is_number() || !q["min"].is_number()) {
          return Status::Corruption(Cat({manifest_path, ": ", name, " has a bad quantization"}));
        }
        const double scale = q["scale"].get<double>();
        const double min = q["min"].get<double>();
        if (!std::isfinite(scale) || !std::isfinite(min)) {
          return Status::Corruption(
              Cat({manifest_path, ": ", name, " quantization is not finite"}));
        }
        std::size_t width = 0;
        if (q["dtype"] == "uint8") {
          width = 1;
        } else if (q["dtype"] == "uint16") {
          width = 2;
        } else {
          return Status::Unsupported(Cat({manifest_path, ": ", name, " is quantised as ",
                                          q["dtype"].dump(), " (uint8 and uint16 are supported)"}));
        }
        if (bytes.size() - offset < n * width) {
          return Status::Corruption(Cat({dir, ": weight file too short for ", name}));
        }
        for (std::size_t i = 0; i < n; ++i) {
          std::uint32_t v = static_cast<unsigned char>(bytes[offset + i * width]);
          if (width == 2)
            v |= static_cast<std::uint32_t>(
                     static_cast<unsigned char>(bytes[offset + i * width + 1]))
                 << 8;
          t.values[i] = static_cast<float>(min + scale * v);
        }
        offset += n * width;
      } else {
        if (bytes.size() - offset < n * 4) {
          return Status::Corruption(Cat({dir, ": weight file too short for ", name}));
        }
        std::memcpy(t.values.data(), bytes.data() + offset, n * 4);  // little-endian hosts only
        for (const float v : t.values) {
          if (!std::isfinite(v))
            return Status::Corruption(Cat({dir, ": ", name, " holds NaN/Inf"}));
        }
        offset += n * 4;
      }
      if (!tensors->emplace(name, std::move(t)).second) {
        return Status::Corruption(Cat({manifest_path, ": tensor ", name, " appears twice"}));
      }
    }
    if (offset != bytes.size()) {
      return Status::Corruption(dir + ": weight file has " + std::to_string(bytes.size() - offset) +
                                " bytes more than the manifest describes");
    }
  }
  return Status::Ok();
}

Status Take(std::map<std::string, Tensor>* tensors, const std::string& name,
            const std::vector<int>& shape, Tensor* out) {
  auto it = tensors->find(name);
  if (it == tensors->end()) return Status::Corruption("weights manifest lacks tensor " + name);
  if (it->second.shape != shape) {
    std::string want;
    for (const int d : shape) want += (want.empty() ? "" : "x") + std::to_string(d);
    return Status::Corruption("tensor " + name + " has the wrong shape (want " + want + ")");
  }
  *out = std::move(it->second);
  tensors->erase(it);
  return Status::Ok();
}

// Collects the network's parameterised layers; dlib visits from the output back to the input.
// (dlib passes visitors by value, hence the pointer to the results.)
struct LayerCollector {
  struct Found {
    std::vector<dlib::tensor*> convs;  // params: filters then biases
    std::vector<dlib::affine_*> affines;
    dlib::tensor* fc = nullptr;
  };
  Found* found;

  template <long N, long NR, long NC, int SY, int SX, int PY, int PX>
  void operator()(dlib::con_<N, NR, NC, SY, SX, PY, PX>& l) {
    found->convs.push_back(&l.get_layer_params());
  }
  void operator()(dlib::affine_& l) { found->affines.push_back(&l); }
  void operator()(dlib::fc_<128, dlib::FC_NO_BIAS>& l) { found->fc = &l.get_layer_params(); }
  template <typename T>
  void operator()(T& /*other layers have no parameters*/) {}
};

struct ModeSetter {
  void operator()(dlib::affine_& l) { l = dlib::affine_(dlib::CONV_MODE); }
  template <typename T>
  void operator()(T& /*unused*/) {}
};

}  // namespace

struct FaceNet::Impl {
  anet_type net;
  dlib::matrix<dlib::rgb_pixel> chip;
};

FaceNet::FaceNet() : impl_(std::make_unique<Impl>()) {}
FaceNet::~FaceNet() = default;

Status FaceNet::Load(Env* env, const std::string& dir, std::unique_ptr<FaceNet>* out) {
  std::map<std::string, Tensor> tensors;
  PORTCULLIS_RETURN_IF_ERROR(ParseManifest(env, dir, &tensors));

  const std::vector<ConvSpec> specs = ConvSpecs();
  std::vector<Tensor> filters(specs.size()), biases(specs.size()), gammas(specs.size()),
      betas(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const ConvSpec& c = specs[i];
    PORTCULLIS_RETURN_IF_ERROR(
        Take(&tensors, c.name + "/conv/filters", {c.kernel, c.kernel, c.in, c.out}, &filters[i]));
    PORTCULLIS_RETURN_IF_ERROR(Take(&tensors, c.name + "/conv/bias", {c.out}, &biases[i]));
    PORTCULLIS_RETURN_IF_ERROR(Take(&tensors, c.name + "/scale/weights", {c.out}, &gammas[i]));
    PORTCULLIS_RETURN_IF_ERROR(Take(&tensors, c.name + "/scale/biases", {c.out}, &betas[i]));
  }
  Tensor fc;
  PORTCULLIS_RETURN_IF_ERROR(Take(&tensors, "fc", {kEmbeddingInputs, kTemplateDims}, &fc));
  if (!tensors.empty()) {
    return Status::Corruption("weights manifest has an unexpected tensor " +
                              tensors.begin()->first);
  }

  std::unique_ptr<FaceNet> face_net(new FaceNet());
  try {
    anet_type& net = face_net->impl_->net;
    // The affine layers must scale per channel (CONV_MODE), as dlib's converted batch norms do.
    dlib::visit_computational_layers(net, ModeSetter{});
    // One forward pass allocates every layer's parameters (dlib sizes them lazily).
    dlib::matrix<dlib::rgb_pixel> blank(kChipSize, kChipSize);
    dlib::assign_all_pixels(blank, dlib::rgb_pixel(0, 0, 0));
    (void)net(blank);

    LayerCollector::Found layers;
    dlib::visit_computational_layers(net, LayerCollector{&layers});
    if (layers.convs.size() != specs.size() || layers.affines.size() != specs.size() ||
        layers.fc == nullptr) {
      return Status::Internal("face network layout does not match the weight map");
    }
    for (std::size_t li = 0; li < specs.size(); ++li) {
      // Visiting order is output-to-input; the specs are input-to-output.
      const std::size_t i = specs.size() - 1 - li;
      const ConvSpec& c = specs[i];
      dlib::tensor& params = *layers.convs[li];
      const std::size_t k2 =
          static_cast<std::size_t>(c.kernel) * static_cast<std::size_t>(c.kernel);
      const std::size_t in = static_cast<std::size_t>(c.in);
      const std::size_t outs = static_cast<std::size_t>(c.out);
      if (params.size() != k2 * in * outs + outs) {
        return Status::Internal("face network layer " + c.name + " has an unexpected size");
      }
      float* p = params.host();
      const std::size_t kk = static_cast<std::size_t>(c.kernel);
      for (std::size_t o = 0; o < outs; ++o) {
        for (std::size_t ci = 0; ci < in; ++ci) {
          for (std::size_t y = 0; y < kk; ++y) {
            for (std::size_t x = 0; x < kk; ++x) {
              p[((o * in + ci) * kk + y) * kk + x] =
                  filters[i].values[((y * kk + x) * in + ci) * outs + o];
            }
          }
        }
      }
      std::memcpy(p + k2 * in * outs, biases[i].values.data(), outs * sizeof(float));
      auto gamma = layers.affines[li]->get_gamma();
      auto beta = layers.affines[li]->get_beta();
      if (gamma.size() != outs || beta.size() != outs) {
        return Status::Internal("face network affine layer " + c.name + " has an unexpected size");
      }
      std::memcpy(gamma.host(), gammas[i].values.data(), outs * sizeof(float));
      std::memcpy(beta.host(), betas[i].values.data(), outs * sizeof(float));
    }
    if (layers.fc->size() != fc.values.size()) {
      return Status::Internal("face network fc layer has an unexpected size");
    }
    std::memcpy(layers.fc->host(), fc.values.data(), fc.values.size() * sizeof(float));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("face network setup failed: ") + e.what());
  }
  *out = std::move(face_net);
  return Status::Ok();
}

Status FaceNet::Embed(const cv::Mat& chip_bgr, FaceTemplate* out, int jitter) {
  if (jitter < 0 || jitter > kMaxJitter) {
    return Status::InvalidArgument("jitter must be in 0.." + std::to_string(kMaxJitter));
  }
  if (chip_bgr.type() != CV_8UC3 || chip_bgr.rows != kChipSize || chip_bgr.cols != kChipSize) {
    return Status::InvalidArgument("face chip must be 150x150 BGR");
  }
  dlib::matrix<dlib::rgb_pixel>& chip = impl_->chip;
  chip.set_size(kChipSize, kChipSize);
  for (int y = 0; y < kChipSize; ++y) {
    const auto* row = chip_bgr.ptr<cv::Vec3b>(y);
    for (int x = 0; x < kChipSize; ++x) {
      chip(y, x) = dlib::rgb_pixel(row[x][2], row[x][1], row[x][0]);
    }
  }
  try {
    dlib::matrix<float, 0, 1> e;
    if (jitter > 1) {
      // As dlib's compute_face_descriptor(num_jitters): the mean over jittered copies only. A
      // generator made per chip (dlib's default seed) makes a template a function of the image.
      dlib::rand rnd;
      std::vector<dlib::matrix<dlib::rgb_pixel>> copies;
      copies.reserve(static_cast<std::size_t>(jitter));
      for (int i = 0; i < jitter; ++i) copies.push_back(dlib::jitter_image(chip, rnd));
      e = dlib::mean(dlib::mat(impl_->net(copies)));
    } else {
      e = impl_->net(chip);
    }
    if (e.size() != kTemplateDims) return Status::Internal("face network output has wrong size");
    FaceTemplate t;
    for (int i = 0; i < kTemplateDims; ++i) {
      const float v = e(i);
      if (!std::isfinite(v)) return Status::Internal("face network produced NaN/Inf");
      t.mutable_values()[static_cast<std::size_t>(i)] = v;
    }
    *out = std::move(t);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("face embedding failed: ") + e.what());
  }
  return Status::Ok();
}

bool SetBlasThreads(int threads) { return SetOpenBlasThreads(threads); }

}  // namespace portcullis::face::internal
