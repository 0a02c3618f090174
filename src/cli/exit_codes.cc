#include "cli/exit_codes.h"

#include <algorithm>
#include <string>

namespace portcullis::cli {

int ExitCodeForInput(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk:
      return kExitOk;
    case Status::Code::kNotFound:
      return kExitNotFound;
    case Status::Code::kIOError:
      return kExitUnreadable;
    case Status::Code::kCorruption:
      return kExitCorrupt;
    case Status::Code::kUnsupported:
      return kExitNotAnImage;
    case Status::Code::kResourceExhausted:
      return kExitTooLarge;
    case Status::Code::kInvalidArgument:
      return kExitBadImage;
    case Status::Code::kInternal:
      return kExitInternal;
  }
  return kExitInternal;
}

std::string ErrorCodeName(Status::Code code, ErrorVocabulary vocabulary) {
  const bool image = vocabulary == ErrorVocabulary::kImage;
  switch (code) {
    case Status::Code::kOk:
      return "ok";
    case Status::Code::kInvalidArgument:
      return image ? "invalid_image" : "invalid_argument";
    case Status::Code::kNotFound:
      return "not_found";
    case Status::Code::kIOError:
      return "unreadable";
    case Status::Code::kCorruption:
      return "corrupt";
    case Status::Code::kUnsupported:
      return image ? "not_an_image" : "unsupported";
    case Status::Code::kResourceExhausted:
      return "too_large";
    case Status::Code::kInternal:
      return "internal";
  }
  return "internal";
}

int ExitCodeForBatch(const std::vector<int>& failure_codes) {
  if (failure_codes.empty()) return kExitOk;
  const int first = failure_codes.front();
  const bool same = std::all_of(failure_codes.begin(), failure_codes.end(),
                                [first](int code) { return code == first; });
  return same ? first : kExitMixed;
}

}  // namespace portcullis::cli
