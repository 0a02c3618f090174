// The gallery byte format (no file I/O, so the vault can seal the bytes):
//   "PCGL" | u32 format version | u32 template version | u32 dims | u64 count |
//   count x (u8 id length | id bytes | dims x f32) | u32 CRC-32 (IEEE) of all preceding bytes
// All integers and floats little-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "portcullis/face.h"
#include "portcullis/status.h"

namespace portcullis::face::internal {

inline constexpr std::uint32_t kGalleryFormatVersion = 1;
inline constexpr std::size_t kGalleryHeaderBytes = 24;

std::uint32_t Crc32(std::string_view bytes);

class GalleryWriter {
 public:
  explicit GalleryWriter(std::size_t count);
  GalleryWriter(const GalleryWriter&) = delete;
  GalleryWriter& operator=(const GalleryWriter&) = delete;
  void Add(std::string_view id, const float* values);
  // Moves the finished bytes into *out (its previous contents are wiped).
  void Finish(std::string* out);

 private:
  std::string bytes_;
};

// Validates the whole byte string (header, bounds, checksum) before the first entry is reported,
// then calls reserve(count) and entry(id, template) for each entry in order; an entry error stops
// parsing and is returned.
Status ParseGallery(std::string_view bytes, const std::function<void(std::size_t)>& reserve,
                    const std::function<Status(std::string_view, const FaceTemplate&)>& entry);

// Overwrites a string's bytes (the buffer is about to be dropped).
void WipeString(std::string* s);

}  // namespace portcullis::face::internal
