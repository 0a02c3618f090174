#include "portcullis/status.h"

namespace portcullis {

std::string_view Status::CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      return "Invalid argument";
    case Code::kNotFound:
      return "Not found";
    case Code::kIOError:
      return "IO error";
    case Code::kCorruption:
      return "Corruption";
    case Code::kUnsupported:
      return "Unsupported";
    case Code::kResourceExhausted:
      return "Resource exhausted";
    case Code::kInternal:
      return "Internal error";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(CodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += message_;
  return {code_, msg};
}

}  // namespace portcullis
