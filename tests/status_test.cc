#include "portcullis/status.h"

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace portcullis {
namespace {

using Code = Status::Code;

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(StatusTest, FactoriesSetCodeAndMessage) {
  const std::vector<std::pair<Status, Code>> cases = {
      {Status::InvalidArgument("m"), Code::kInvalidArgument},
      {Status::NotFound("m"), Code::kNotFound},
      {Status::IOError("m"), Code::kIOError},
      {Status::Corruption("m"), Code::kCorruption},
      {Status::Unsupported("m"), Code::kUnsupported},
      {Status::ResourceExhausted("m"), Code::kResourceExhausted},
      {Status::Internal("m"), Code::kInternal},
  };
  for (const auto& [status, code] : cases) {
    EXPECT_FALSE(status.ok()) << Status::CodeName(code);
    EXPECT_EQ(status.code(), code);
    EXPECT_EQ(status.message(), "m");
  }
}

TEST(StatusTest, CodeNamesAreDistinctAndStable) {
  // The names appear in logs and JSON error fields, so they are part of the output contract.
  EXPECT_EQ(Status::CodeName(Code::kOk), "OK");
  EXPECT_EQ(Status::CodeName(Code::kInvalidArgument), "Invalid argument");
  EXPECT_EQ(Status::CodeName(Code::kNotFound), "Not found");
  EXPECT_EQ(Status::CodeName(Code::kIOError), "IO error");
  EXPECT_EQ(Status::CodeName(Code::kCorruption), "Corruption");
  EXPECT_EQ(Status::CodeName(Code::kUnsupported), "Unsupported");
  EXPECT_EQ(Status::CodeName(Code::kResourceExhausted), "Resource exhausted");
  EXPECT_EQ(Status::CodeName(Code::kInternal), "Internal error");
}

TEST(StatusTest, ToStringJoinsNameAndMessage) {
  EXPECT_EQ(Status::Corruption("truncated JPEG").ToString(), "Corruption: truncated JPEG");
  EXPECT_EQ(Status::NotFound("a.jpg").ToString(), "Not found: a.jpg");
  EXPECT_EQ(Status::ResourceExhausted("").ToString(), "Resource exhausted: ");
}

TEST(StatusTest, WithContextPrefixesAndKeepsCode) {
  Status s = Status::Corruption("truncated JPEG").WithContext("us/1.jpg");
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_EQ(s.message(), "us/1.jpg: truncated JPEG");
  EXPECT_EQ(s.ToString(), "Corruption: us/1.jpg: truncated JPEG");

  Status nested = s.WithContext("batch 3");
  EXPECT_EQ(nested.code(), Code::kCorruption);
  EXPECT_EQ(nested.message(), "batch 3: us/1.jpg: truncated JPEG");
}

TEST(StatusTest, WithContextOnOkStaysOk) {
  Status s = Status::Ok().WithContext("us/1.jpg");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.message(), "");
}

TEST(StatusTest, CopiesAreIndependent) {
  Status a = Status::IOError("disk full");
  Status b = a;
  a = Status::Ok();
  EXPECT_TRUE(a.ok());
  EXPECT_EQ(b.code(), Code::kIOError);
  EXPECT_EQ(b.message(), "disk full");
}

Status Step(Status result, int* calls) {
  ++*calls;
  return result;
}

Status TwoSteps(Status first, Status second, int* calls, bool* reached_end) {
  PORTCULLIS_RETURN_IF_ERROR(Step(std::move(first), calls));
  PORTCULLIS_RETURN_IF_ERROR(Step(std::move(second), calls));
  *reached_end = true;
  return Status::Ok();
}

TEST(StatusTest, ReturnIfErrorContinuesOnOk) {
  int calls = 0;
  bool reached_end = false;
  Status s = TwoSteps(Status::Ok(), Status::Ok(), &calls, &reached_end);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(reached_end);
}

TEST(StatusTest, ReturnIfErrorReturnsFirstErrorAndEvaluatesOnce) {
  int calls = 0;
  bool reached_end = false;
  Status s = TwoSteps(Status::NotFound("x"), Status::Internal("y"), &calls, &reached_end);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "x");
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(reached_end);

  calls = 0;
  s = TwoSteps(Status::Ok(), Status::Internal("y"), &calls, &reached_end);
  EXPECT_EQ(s.code(), Code::kInternal);
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(reached_end);
}

TEST(StatusTest, ReturnIfErrorIsOneStatement) {
  // The do/while(false) wrapper must make the macro safe in an unbraced if/else.
  auto f = [](bool fail) -> Status {
    if (fail)
      PORTCULLIS_RETURN_IF_ERROR(Status::Unsupported("u"));
    else
      return Status::Internal("else branch");
    return Status::Ok();
  };
  EXPECT_EQ(f(true).code(), Code::kUnsupported);
  EXPECT_EQ(f(false).code(), Code::kInternal);
}

}  // namespace
}  // namespace portcullis
