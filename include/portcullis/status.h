// Status: the result of an operation that can fail, in the manner of LevelDB's Status.
// Every fallible call in Portcullis returns one; nothing throws across the public API.
#pragma once

#include <string>
#include <string_view>

namespace portcullis {

class Status {
 public:
  // The codes are part of the CLI contract: each maps to a documented exit code (see cli/).
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // the caller asked for something malformed (bad flag, bad JSON, bad region)
    kNotFound,         // a file, directory or key that should exist does not
    kIOError,          // the operating system refused (unreadable, permission, disk full)
    kCorruption,       // data that should parse does not (truncated JPEG, malformed grammar)
    kUnsupported,      // a well-formed input we do not handle (not an image, 16-bit video, ...)
    kResourceExhausted,  // an input that would cost more than its limit (decompression bomb)
    kInternal,           // a bug or an engine failure (model did not load, inference threw)
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string_view msg) { return {Code::kInvalidArgument, msg}; }
  static Status NotFound(std::string_view msg) { return {Code::kNotFound, msg}; }
  static Status IOError(std::string_view msg) { return {Code::kIOError, msg}; }
  static Status Corruption(std::string_view msg) { return {Code::kCorruption, msg}; }
  static Status Unsupported(std::string_view msg) { return {Code::kUnsupported, msg}; }
  static Status ResourceExhausted(std::string_view msg) { return {Code::kResourceExhausted, msg}; }
  static Status Internal(std::string_view msg) { return {Code::kInternal, msg}; }

  [[nodiscard]] bool ok() const { return code_ == Code::kOk; }
  [[nodiscard]] Code code() const { return code_; }
  [[nodiscard]] const std::string& message() const { return message_; }
  // "Corruption: truncated JPEG" — for logs and error fields.
  [[nodiscard]] std::string ToString() const;
  // Prefixes context to the message, keeping the code: s.WithContext("us/1.jpg").
  [[nodiscard]] Status WithContext(std::string_view context) const;

  static std::string_view CodeName(Code code);

 private:
  Status(Code code, std::string_view msg) : code_(code), message_(msg) {}
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace portcullis

// Propagates a non-OK status to the caller.
#define PORTCULLIS_RETURN_IF_ERROR(expr)                     \
  do {                                                       \
    ::portcullis::Status portcullis_status_ = (expr);        \
    if (!portcullis_status_.ok()) return portcullis_status_; \
  } while (false)
