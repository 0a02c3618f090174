// The "holds nothing readable" check (issue 6): scans every file under a directory for byte
// strings that must never be on a lane device's disk in the clear — image signatures and plate
// texts. Shared by the queue's tests and the agent's end-to-end tests.
//
//   auto needles = ImageSignatures();
//   needles.push_back("ABC1234");
//   EXPECT_THAT(FindPlaintext(data_dir, needles), testing::IsEmpty());
//
// False positives: sealed bytes are uniformly random, so a needle of n bytes occurs by chance
// about once per 2^(8n) bytes scanned. The 3-byte JPEG signature FF D8 FF is the weak one (once
// per ~16 MiB of ciphertext): keep what a test scans well below that, or the test will flake.
#pragma once

#include <string>
#include <vector>

namespace portcullis::lane::testing_util {

// FF D8 FF (JPEG start of image + marker) and 89 50 4E 47 0D 0A 1A 0A (the PNG signature).
std::vector<std::string> ImageSignatures();

// Every occurrence of any needle in any regular file under dir (recursively; symlinks are
// reported, not followed), as "path:offset" (offset in bytes, decimal), sorted. A file or directory
// that cannot be read is reported as "path:unreadable (reason)", so an unreadable tree never
// passes as clean.
std::vector<std::string> FindPlaintext(const std::string& dir,
                                       const std::vector<std::string>& needles);

}  // namespace portcullis::lane::testing_util
