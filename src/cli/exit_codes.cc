#include "cli/exit_codes.h"

#include <algorithm>

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

int ExitCodeForBatch(const std::vector<int>& failure_codes) {
  if (failure_codes.empty()) return kExitOk;
  const int first = failure_codes.front();
  const bool same = std::all_of(failure_codes.begin(), failure_codes.end(),
                                [first](int code) { return code == first; });
  return same ? first : kExitMixed;
}

}  // namespace portcullis::cli
