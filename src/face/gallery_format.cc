#include "face/gallery_format.h"

#include <array>
#include <bit>
#include <cstring>

#include "face/gallery_wipe.h"

namespace portcullis::face::internal {
namespace {

constexpr char kMagic[4] = {'P', 'C', 'G', 'L'};
constexpr std::size_t kValueBytes = 4 * static_cast<std::size_t>(kTemplateDims);

constexpr std::array<std::uint32_t, 256> MakeCrcTable() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    table[i] = c;
  }
  return table;
}
constexpr std::array<std::uint32_t, 256> kCrcTable = MakeCrcTable();

void PutU32(std::string* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}

std::uint64_t GetLE(std::string_view in, std::size_t offset, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<std::uint64_t>(
             static_cast<unsigned char>(in[offset + static_cast<std::size_t>(i)]))
         << (8 * i);
  }
  return v;
}

}  // namespace

std::uint32_t Crc32(std::string_view bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (const char c : bytes) {
    crc = kCrcTable[(crc ^ static_cast<unsigned char>(c)) & 0xFFu] ^ (crc >> 8);
  }
  return ~crc;
}

void WipeString(std::string* s) {
  if (!s->empty()) WipeBytes(s->data(), s->size());
  s->clear();
}

GalleryWriter::GalleryWriter(std::size_t count) {
  // Reserved up front (ids at their longest) so the buffer is never reallocated: a reallocation
  // would free a copy of the templates without wiping it.
  bytes_.reserve(kGalleryHeaderBytes + count * (1 + 255 + kValueBytes) + 4);
  bytes_.append(kMagic, sizeof(kMagic));
  PutU32(&bytes_, kGalleryFormatVersion);
  PutU32(&bytes_, kTemplateVersion);
  PutU32(&bytes_, static_cast<std::uint32_t>(kTemplateDims));
  PutU32(&bytes_, static_cast<std::uint32_t>(count & 0xFFFFFFFFu));
  PutU32(&bytes_, static_cast<std::uint32_t>(static_cast<std::uint64_t>(count) >> 32));
}

void GalleryWriter::Add(std::string_view id, const float* values) {
  bytes_.push_back(static_cast<char>(id.size()));
  bytes_.append(id);
  for (int i = 0; i < kTemplateDims; ++i) PutU32(&bytes_, std::bit_cast<std::uint32_t>(values[i]));
}

void GalleryWriter::Finish(std::string* out) {
  PutU32(&bytes_, Crc32(bytes_));
  WipeString(out);
  out->swap(bytes_);
}

Status ParseGallery(std::string_view bytes, const std::function<void(std::size_t)>& reserve,
                    const std::function<Status(std::string_view, const FaceTemplate&)>& entry) {
  if (bytes.size() < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::InvalidArgument("not a Portcullis gallery (bad magic)");
  }
  if (bytes.size() < kGalleryHeaderBytes + 4) {
    return Status::Corruption("gallery truncated: " + std::to_string(bytes.size()) + " bytes");
  }
  const auto format = static_cast<std::uint32_t>(GetLE(bytes, 4, 4));
  if (format != kGalleryFormatVersion) {
    return Status::Unsupported("gallery format version " + std::to_string(format) +
                               " (this build reads version " +
                               std::to_string(kGalleryFormatVersion) + ")");
  }
  const auto template_version = static_cast<std::uint32_t>(GetLE(bytes, 8, 4));
  if (template_version != kTemplateVersion) {
    return Status::InvalidArgument(
        "gallery holds face templates of version " + std::to_string(template_version) +
        ", not comparable with version " + std::to_string(kTemplateVersion));
  }
  const auto dims = static_cast<std::uint32_t>(GetLE(bytes, 12, 4));
  if (dims != static_cast<std::uint32_t>(kTemplateDims)) {
    return Status::InvalidArgument("gallery templates have " + std::to_string(dims) +
                                   " dims, expected " + std::to_string(kTemplateDims));
  }
  const std::uint64_t count = GetLE(bytes, 16, 8);
  const std::size_t body_end = bytes.size() - 4;
  if (count > (body_end - kGalleryHeaderBytes) / (2 + kValueBytes)) {
    return Status::Corruption("gallery truncated: header claims " + std::to_string(count) +
                              " entries");
  }
  // First pass: bounds only, so that nothing is reported from a file that turns out corrupt.
  std::size_t pos = kGalleryHeaderBytes;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (pos >= body_end)
      return Status::Corruption("gallery truncated in entry " + std::to_string(i));
    const auto id_length = static_cast<std::size_t>(static_cast<unsigned char>(bytes[pos]));
    if (id_length == 0)
      return Status::Corruption("gallery entry " + std::to_string(i) + " has an empty id");
    if (body_end - pos < 1 + id_length + kValueBytes) {
      return Status::Corruption("gallery truncated in entry " + std::to_string(i));
    }
    pos += 1 + id_length + kValueBytes;
  }
  if (pos != body_end) return Status::Corruption("gallery has trailing bytes after its entries");
  if (Crc32(bytes.substr(0, body_end)) != static_cast<std::uint32_t>(GetLE(bytes, body_end, 4))) {
    return Status::Corruption("gallery checksum mismatch");
  }
  reserve(static_cast<std::size_t>(count));
  pos = kGalleryHeaderBytes;
  FaceTemplate t;
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto id_length = static_cast<std::size_t>(static_cast<unsigned char>(bytes[pos]));
    const std::string_view id = bytes.substr(pos + 1, id_length);
    pos += 1 + id_length;
    for (std::size_t d = 0; d < static_cast<std::size_t>(kTemplateDims); ++d) {
      t.mutable_values()[d] =
          std::bit_cast<float>(static_cast<std::uint32_t>(GetLE(bytes, pos + 4 * d, 4)));
    }
    pos += kValueBytes;
    PORTCULLIS_RETURN_IF_ERROR(entry(id, t));
  }
  return Status::Ok();
}

}  // namespace portcullis::face::internal
