// Byte-level formats of the audit log: record frames, tree-head records, key files, and the
// small POSIX file helpers the log uses. docs/audit.md describes every format here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"
#include "portcullis/audit.h"

namespace portcullis::audit::internal {

// Every log file starts with an 8-byte magic naming the file and its format version.
inline constexpr std::size_t kHeaderSize = 8;
inline constexpr std::string_view kEventsMagic = "PCAEVT01";
inline constexpr std::string_view kTreeMagic = "PCATRE01";
inline constexpr std::string_view kSthMagic = "PCASTH01";
inline constexpr char kEventsFile[] = "events.log";
inline constexpr char kTreeFile[] = "tree";
inline constexpr char kSthFile[] = "sth.log";

// Frames: u32 LE payload length, u32 LE CRC-32C of the payload, payload.
inline constexpr std::size_t kFrameHeader = 8;
inline constexpr std::uint32_t kMaxLeafBytes = 1U << 20;
inline constexpr std::size_t kSthPayload = 1 + 8 + 8 + 32 + 64;

std::uint32_t Crc32c(std::string_view data);
void AppendFrame(std::string_view payload, std::string* out);

enum class TailState { kClean, kTorn, kCorrupt };

struct FrameScan {
  std::vector<std::uint64_t> offsets;  // of each valid frame's header, in order
  std::vector<std::uint32_t> lengths;  // payload length of each valid frame
  std::uint64_t valid_end = 0;         // just after the last valid frame
  TailState tail = TailState::kClean;
  std::string problem;  // for kTorn/kCorrupt
};

// Walks the frames of a file's contents (magic included). A bad frame that is the last thing in
// the file (it runs past the end, or nothing but zeros follows it) is a torn write; a bad frame
// with data after it is corruption, reported at its index (offsets.size()).
Status ScanFrames(std::string_view contents, std::string_view magic, std::uint32_t max_payload,
                  FrameScan* scan);

std::string EncodeTreeHead(const SignedTreeHead& sth);
Status DecodeTreeHead(std::string_view payload, SignedTreeHead* sth);
Status SignTreeHead(const LogKeys& keys, SignedTreeHead* sth);

std::string BytesToHex(const std::uint8_t* data, std::size_t size);
bool HexToBytes(std::string_view hex, std::uint8_t* out, std::size_t size);

// Big-endian integers (the leaf and tree-head encodings are network order).
void PutU64(std::uint64_t v, std::string* out);
std::uint64_t GetU64(const char* p);

// File helpers (POSIX). Errors name the file.
Status ReadWholeFile(const std::string& path, std::string* contents);
Status PWriteAll(int fd, const std::string& path, std::string_view data, std::uint64_t offset);
Status PReadAll(int fd, const std::string& path, char* data, std::size_t size,
                std::uint64_t offset);
Status SyncFd(int fd, const std::string& path);
Status SyncDirectory(const std::string& dir);
Status ErrnoStatus(const std::string& path, const char* what, int err);

// The shared move-only descriptor; the audit code predates it and still says Fd.
using Fd = ::portcullis::UniqueFd;

}  // namespace portcullis::audit::internal
