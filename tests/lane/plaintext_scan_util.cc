#include "plaintext_scan_util.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <system_error>

namespace portcullis::lane::testing_util {
namespace {

namespace fs = std::filesystem;

// Reads in chunks that overlap by the longest needle minus one byte, so a needle straddling two
// chunks is still found, without loading a large queue segment whole.
void ScanFile(const fs::path& path, const std::vector<std::string>& needles,
              std::vector<std::string>* found) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    found->push_back(path.string() + ":unreadable (open failed)");
    return;
  }
  std::size_t longest = 1;
  for (const std::string& n : needles) longest = std::max(longest, n.size());
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  std::string window;  // the last (longest - 1) bytes of the previous chunk, then the new chunk
  std::uint64_t window_start = 0;  // file offset of window[0]
  std::string chunk(kChunk, '\0');
  while (true) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    if (got == 0) break;
    const std::size_t carried = window.size();
    window.append(chunk, 0, got);
    for (const std::string& needle : needles) {
      if (needle.empty()) continue;
      for (std::size_t pos = window.find(needle); pos != std::string::npos;
           pos = window.find(needle, pos + 1)) {
        // A match lying wholly in the carried bytes was reported with the previous chunk.
        if (pos + needle.size() <= carried) continue;
        found->push_back(path.string() + ":" + std::to_string(window_start + pos));
      }
    }
    const std::size_t keep = std::min(window.size(), longest - 1);
    window_start += window.size() - keep;
    window.erase(0, window.size() - keep);
  }
  if (in.bad()) found->push_back(path.string() + ":unreadable (read failed)");
}

}  // namespace

std::vector<std::string> ImageSignatures() {
  return {std::string("\xFF\xD8\xFF", 3), std::string("\x89PNG\r\n\x1A\n", 8)};
}

std::vector<std::string> FindPlaintext(const std::string& dir,
                                       const std::vector<std::string>& needles) {
  std::vector<std::string> found;
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(dir, ec))) {
    found.push_back(dir + ":unreadable (not a directory)");
    return found;
  }
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  if (ec) {
    found.push_back(dir + ":unreadable (" + ec.message() + ")");
    return found;
  }
  for (const fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) {
      found.push_back(dir + ":unreadable (" + ec.message() + ")");
      return found;
    }
    const fs::file_status st = it->symlink_status(ec);
    if (ec) {
      found.push_back(it->path().string() + ":unreadable (" + ec.message() + ")");
      continue;
    }
    if (fs::is_symlink(st)) {
      // A link could point at plaintext elsewhere; a data dir has no business holding one.
      found.push_back(it->path().string() + ":symlink");
    } else if (fs::is_regular_file(st)) {
      ScanFile(it->path(), needles, &found);
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace portcullis::lane::testing_util
