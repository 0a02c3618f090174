// FaceTemplate: the in-memory and serialized form of one face embedding.
#include <bit>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "portcullis/face.h"

namespace portcullis::face {
namespace {

constexpr char kMagic[4] = {'P', 'C', 'F', 'T'};
// magic + version + dims + values + crc
constexpr std::size_t kSerializedSize = 4 + 4 + 4 + 4 * kTemplateDims + 4;

std::uint32_t Crc32(std::string_view bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (const char c : bytes) {
    crc ^= static_cast<unsigned char>(c);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
  }
  return ~crc;
}

void PutU32(std::string* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}

std::uint32_t GetU32(std::string_view in, std::size_t offset) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v |= static_cast<std::uint32_t>(
             static_cast<unsigned char>(in[offset + static_cast<std::size_t>(i)]))
         << (8 * i);
  }
  return v;
}

}  // namespace

FaceTemplate::~FaceTemplate() { Wipe(); }

FaceTemplate::FaceTemplate(FaceTemplate&& other) noexcept : values_(other.values_) { other.Wipe(); }

FaceTemplate& FaceTemplate::operator=(FaceTemplate&& other) noexcept {
  if (this != &other) {
    values_ = other.values_;
    other.Wipe();
  }
  return *this;
}

void FaceTemplate::Wipe() {
  // A volatile pointer: the compiler may not drop stores to memory it is about to free.
  volatile float* p = values_.data();
  for (std::size_t i = 0; i < values_.size(); ++i) p[i] = 0.0f;
}

std::string FaceTemplate::Serialize() const {
  std::string out(kMagic, sizeof(kMagic));
  PutU32(&out, kTemplateVersion);
  PutU32(&out, static_cast<std::uint32_t>(kTemplateDims));
  for (const float v : values_) PutU32(&out, std::bit_cast<std::uint32_t>(v));
  PutU32(&out, Crc32(out));
  return out;
}

Status FaceTemplate::Deserialize(std::string_view bytes, FaceTemplate* out) {
  if (bytes.size() < 12 || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::InvalidArgument("not a face template (bad magic)");
  }
  const std::uint32_t version = GetU32(bytes, 4);
  if (version != kTemplateVersion) {
    return Status::InvalidArgument("face template version " + std::to_string(version) +
                                   " is not comparable with version " +
                                   std::to_string(kTemplateVersion));
  }
  const std::uint32_t dims = GetU32(bytes, 8);
  if (dims != static_cast<std::uint32_t>(kTemplateDims) || bytes.size() != kSerializedSize) {
    return Status::InvalidArgument("face template has the wrong length (" +
                                   std::to_string(bytes.size()) + " bytes, " +
                                   std::to_string(dims) + " dims)");
  }
  if (Crc32(bytes.substr(0, kSerializedSize - 4)) != GetU32(bytes, kSerializedSize - 4)) {
    return Status::Corruption("face template checksum mismatch");
  }
  FaceTemplate parsed;
  for (int i = 0; i < kTemplateDims; ++i) {
    const float v = std::bit_cast<float>(GetU32(bytes, 12 + 4 * static_cast<std::size_t>(i)));
    if (!std::isfinite(v)) return Status::InvalidArgument("face template holds NaN or Inf");
    parsed.values_[static_cast<std::size_t>(i)] = v;
  }
  *out = std::move(parsed);
  return Status::Ok();
}

float Distance(const FaceTemplate& a, const FaceTemplate& b) {
  float sum = 0;
  for (std::size_t i = 0; i < static_cast<std::size_t>(kTemplateDims); ++i) {
    const float d = a.values()[i] - b.values()[i];
    sum += d * d;
  }
  return std::sqrt(sum);
}

}  // namespace portcullis::face
