// The CLI's exit codes: a contract with scripts and the lane agent, documented in the README.
#pragma once

#include <string>
#include <vector>

#include "portcullis/status.h"

namespace portcullis::cli {

enum ExitCode : int {
  kExitOk = 0,             // every input was read (finding no plate is still success)
  kExitInternal = 1,       // an engine failure: a bug, or inference failed
  kExitUsage = 2,          // bad command line: unknown flag, unknown region, bad number
  kExitSetup = 3,          // models or grammars missing or corrupt: run scripts/install.sh
  kExitNotFound = 10,      // an input does not exist
  kExitUnreadable = 11,    // an input exists but cannot be read (permissions, a directory error)
  kExitCorrupt = 12,       // truncated or corrupt image / video
  kExitNotAnImage = 13,    // not an image or video we can decode
  kExitTooLarge = 14,      // over the size limits (decompression bomb, huge file)
  kExitBadImage = 15,      // an image we refuse on its merits: empty file, too small
  kExitFaceQuality = 16,   // face: the quality gate refused a capture (no face, several, too
                           // small, blurred, not frontal, dark); the JSON "issue" says which
  kExitNoMatch = 17,       // face verify: both faces read, but they are not the same person
  kExitMixed = 19,         // several inputs failed, for different reasons
  kExitVerifyFailed = 20,  // audit: a log, proof or tree head failed verification (tampering)
  kExitConflict = 21,      // access: the store's state forbids it (init on a store that has
                           // principals, a name in use, rotating a revoked principal)
  kExitHostNotLockedDown = 22,  // lane check-host: removable media or core dumps are not locked
                                // down on this host (scripts/lane-host-lockdown.sh fixes it)
};

// Stable snake_case names for the "error_code" field of JSON records (a contract). Commands that
// read images use the image vocabulary (a refused image is "invalid_image", an undecodable one
// "not_an_image"); the others the generic one ("invalid_argument", "unsupported"). Both share
// ok, not_found, unreadable (I/O), corrupt, too_large and internal.
enum class ErrorVocabulary { kImage, kGeneric };
std::string ErrorCodeName(Status::Code code, ErrorVocabulary vocabulary);

// The exit code for one failed input.
int ExitCodeForInput(const Status& status);

// The exit code for a batch: 0 if nothing failed, the shared code if every failure had the same
// one, kExitMixed otherwise.
int ExitCodeForBatch(const std::vector<int>& failure_codes);

}  // namespace portcullis::cli
