// The plaintext scanner must find what it looks for, or every "nothing readable" test that uses
// it passes vacuously.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "plaintext_scan_util.h"
#include "queue_util.h"

namespace portcullis::lane {
namespace {

namespace fs = std::filesystem;
using testing_util::FindPlaintext;
using testing_util::ImageSignatures;

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(PlaintextScan, FindsSignaturesAndPlatesAnywhereInTheTree) {
  testing_util::TempDir tmp;
  fs::create_directories(tmp.path() + "/a/b");
  Write(tmp.path() + "/clean", std::string(5000, 'x'));
  Write(tmp.path() + "/a/jpeg", "xx" + std::string("\xFF\xD8\xFF\xE0", 4) + "yy");
  Write(tmp.path() + "/a/b/png", std::string("\x89PNG\r\n\x1A\n", 8));
  // A plate straddling the 1 MiB read chunk boundary, and a second one later.
  std::string big(std::size_t{1} << 20, 'z');
  big.replace(big.size() - 3, 3, "ABC");
  big += "1234....ABC1234";
  Write(tmp.path() + "/a/b/big", big);
  auto needles = ImageSignatures();
  needles.emplace_back("ABC1234");
  const std::vector<std::string> found = FindPlaintext(tmp.path(), needles);
  const std::vector<std::string> expected = {
      tmp.path() + "/a/b/big:" + std::to_string((std::size_t{1} << 20) - 3),
      tmp.path() + "/a/b/big:" + std::to_string((std::size_t{1} << 20) + 8),
      tmp.path() + "/a/b/png:0",
      tmp.path() + "/a/jpeg:2",
  };
  EXPECT_EQ(found, expected);
}

TEST(PlaintextScan, CleanTreeIsEmptyAndMissingOrLinkedIsReported) {
  testing_util::TempDir tmp;
  Write(tmp.path() + "/clean", "nothing to see");
  EXPECT_TRUE(FindPlaintext(tmp.path(), ImageSignatures()).empty());
  EXPECT_EQ(FindPlaintext(tmp.path() + "/missing", ImageSignatures()).size(), 1u);
  fs::create_symlink("/etc/hostname", tmp.path() + "/link");
  const auto found = FindPlaintext(tmp.path(), ImageSignatures());
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0], tmp.path() + "/link:symlink");
}

}  // namespace
}  // namespace portcullis::lane
