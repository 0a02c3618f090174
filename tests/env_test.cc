#include "portcullis/env.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace portcullis {
namespace {

namespace fs = std::filesystem;
using Code = Status::Code;

class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "portcullis_env_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << "mkdtemp failed";
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Written without Env, so that Env's reads are checked against an independent writer.
  void WriteRaw(const std::string& name, const std::string& contents) const {
    std::ofstream out(Path(name), std::ios::binary);
    out << contents;
    ASSERT_TRUE(out.good());
  }

  std::vector<std::string> Entries(const std::string& dir) const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }

  Env* env_ = Env::Default();
  std::string dir_;
};

std::string BinaryPayload(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xFF);
  return s;
}

TEST_F(EnvTest, DefaultIsASingleton) {
  ASSERT_NE(Env::Default(), nullptr);
  EXPECT_EQ(Env::Default(), Env::Default());
}

TEST_F(EnvTest, WriteThenReadRoundTripsBinaryData) {
  const std::string payload = BinaryPayload(1 << 20);  // several read() chunks, embedded NULs
  ASSERT_TRUE(env_->WriteFileAtomic(Path("blob"), payload).ok());
  std::string read;
  Status s = env_->ReadFile(Path("blob"), payload.size(), &read);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(read.size(), payload.size());
  EXPECT_TRUE(read == payload);
}

TEST_F(EnvTest, WriteEmptyFile) {
  ASSERT_TRUE(env_->WriteFileAtomic(Path("empty"), "").ok());
  std::string read = "stale";
  ASSERT_TRUE(env_->ReadFile(Path("empty"), 0, &read).ok());
  EXPECT_EQ(read, "");
}

TEST_F(EnvTest, WriteReplacesExistingFileAndLeavesNoTemporaries) {
  WriteRaw("target", "old contents that are longer than the new ones");
  ASSERT_TRUE(env_->WriteFileAtomic(Path("target"), "new").ok());
  std::string read;
  ASSERT_TRUE(env_->ReadFile(Path("target"), 1024, &read).ok());
  EXPECT_EQ(read, "new");
  EXPECT_EQ(Entries(dir_), std::vector<std::string>{"target"});
}

TEST_F(EnvTest, WriteRelativePathUsesCurrentDirectory) {
  const fs::path old_cwd = fs::current_path();
  fs::current_path(dir_);
  Status s = env_->WriteFileAtomic("relative.txt", "hello");
  fs::current_path(old_cwd);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::string read;
  ASSERT_TRUE(env_->ReadFile(Path("relative.txt"), 100, &read).ok());
  EXPECT_EQ(read, "hello");
  EXPECT_EQ(Entries(dir_), std::vector<std::string>{"relative.txt"});
}

TEST_F(EnvTest, ReadAtExactlyTheLimitSucceeds) {
  WriteRaw("f", std::string(1000, 'x'));
  std::string read;
  Status s = env_->ReadFile(Path("f"), 1000, &read);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(read.size(), 1000u);
}

TEST_F(EnvTest, ReadOverTheLimitIsResourceExhausted) {
  WriteRaw("f", std::string(1001, 'x'));
  std::string read = "stale";
  Status s = env_->ReadFile(Path("f"), 1000, &read);
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find(Path("f")), std::string::npos) << s.message();
  EXPECT_TRUE(read.empty());
}

TEST_F(EnvTest, ReadLimitIsEnforcedWhenTheSizeIsUnknown) {
  // A character device has no size, so only the guard in the read loop can stop it.
  std::string read;
  Status s = env_->ReadFile("/dev/zero", 100000, &read);
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  EXPECT_TRUE(read.empty());
}

TEST_F(EnvTest, ReadDoesNotTrustAZeroStatSize) {
  // /proc files report st_size 0 but have contents.
  std::string read;
  Status s = env_->ReadFile("/proc/self/status", 1 << 20, &read);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_NE(read.find("Pid:"), std::string::npos);
}

TEST_F(EnvTest, ReadMissingFileIsNotFound) {
  std::string read;
  Status s = env_->ReadFile(Path("missing.jpg"), 100, &read);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find(Path("missing.jpg")), std::string::npos) << s.message();
}

TEST_F(EnvTest, ReadDirectoryIsIOError) {
  std::string read;
  Status s = env_->ReadFile(dir_, 100, &read);
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find(dir_), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("directory"), std::string::npos) << s.message();
}

TEST_F(EnvTest, ReadThroughAFileAsIfADirectoryIsIOError) {
  // ENOTDIR: the OS refuses even root, unlike chmod 000.
  WriteRaw("plain", "x");
  std::string read;
  Status s = env_->ReadFile(Path("plain/child.jpg"), 100, &read);
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
}

TEST_F(EnvTest, WriteIntoMissingDirectoryIsIOError) {
  const std::string target = Path("no/such/dir/out.json");
  Status s = env_->WriteFileAtomic(target, "data");
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find(target), std::string::npos) << s.message();
  EXPECT_TRUE(Entries(dir_).empty());
}

TEST_F(EnvTest, FailedRenameRemovesTheTemporaryFile) {
  // The temporary is written in full, then rename() fails because the target is a non-empty
  // directory: the one failure that happens after the temporary exists.
  ASSERT_TRUE(fs::create_directory(Path("target")));
  WriteRaw("target/inside", "x");
  Status s = env_->WriteFileAtomic(Path("target"), "data");
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find(Path("target")), std::string::npos) << s.message();
  EXPECT_EQ(Entries(dir_), std::vector<std::string>{"target"});
  EXPECT_EQ(env_->KindOf(Path("target")), FileKind::kDirectory);
}

// Runs in a forked child, because it lowers the process's file-size limit.
[[noreturn]] void WriteWithFileSizeLimit(Env* env, const std::string& dir) {
  const std::string target = dir + "/target";
  // A file larger than RLIMIT_FSIZE fails exactly like a full disk: write() stops part way and
  // then fails (EFBIG rather than ENOSPC), with SIGXFSZ ignored so that it returns at all.
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit limit{};
  limit.rlim_cur = limit.rlim_max = 4096;
  if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) {
    std::fprintf(stderr, "setrlimit failed\n");
    std::_Exit(2);
  }
  Status s = env->WriteFileAtomic(target, std::string(64 * 1024, 'n'));
  int code = 0;
  if (s.code() != Status::Code::kIOError) {
    std::fprintf(stderr, "expected IOError, got %s\n", s.ToString().c_str());
    code = 3;
  } else if (s.message().find(target) == std::string::npos) {
    std::fprintf(stderr, "error does not name the path: %s\n", s.ToString().c_str());
    code = 4;
  }
  std::string old;
  Status r = env->ReadFile(target, 1 << 20, &old);
  if (!r.ok() || old != "old") {
    std::fprintf(stderr, "target was damaged: %s [%s]\n", r.ToString().c_str(), old.c_str());
    code = 5;
  }
  std::vector<std::string> names;
  if (!env->ListDirectory(dir, &names).ok() || names != std::vector<std::string>{"target"}) {
    std::fprintf(stderr, "stray files left behind (%zu entries)\n", names.size());
    code = 6;
  }
  std::_Exit(code);
}

TEST_F(EnvTest, DiskFullKeepsTheOldFileAndLeavesNoTemporaries) {
  // The default ("fast") death-test style forks, so the child works in this fixture's directory.
  WriteRaw("target", "old");
  EXPECT_EXIT(WriteWithFileSizeLimit(env_, dir_), ::testing::ExitedWithCode(0), "");
  // The parent checks too, in case the child's checks were wrong.
  std::string read;
  ASSERT_TRUE(env_->ReadFile(Path("target"), 100, &read).ok());
  EXPECT_EQ(read, "old");
  EXPECT_EQ(Entries(dir_), std::vector<std::string>{"target"});
}

TEST_F(EnvTest, ListDirectoryIsSortedWithoutDotEntries) {
  for (const char* name : {"b", "a.txt", "C", "a", ".hidden"}) WriteRaw(name, "x");
  ASSERT_TRUE(fs::create_directory(Path("z")));
  std::vector<std::string> names = {"stale"};
  Status s = env_->ListDirectory(dir_, &names);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(names, (std::vector<std::string>{".hidden", "C", "a", "a.txt", "b", "z"}));
}

TEST_F(EnvTest, ListEmptyDirectory) {
  std::vector<std::string> names = {"stale"};
  ASSERT_TRUE(env_->ListDirectory(dir_, &names).ok());
  EXPECT_TRUE(names.empty());
}

TEST_F(EnvTest, ListMissingDirectoryIsNotFound) {
  std::vector<std::string> names;
  Status s = env_->ListDirectory(Path("missing"), &names);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find(Path("missing")), std::string::npos) << s.message();
}

TEST_F(EnvTest, ListRegularFileIsIOError) {
  WriteRaw("plain", "x");
  std::vector<std::string> names;
  Status s = env_->ListDirectory(Path("plain"), &names);
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
}

TEST_F(EnvTest, KindOf) {
  WriteRaw("file", "x");
  ASSERT_TRUE(fs::create_directory(Path("dir")));
  fs::create_symlink(Path("file"), Path("link"));
  fs::create_symlink(Path("nowhere"), Path("dangling"));
  EXPECT_EQ(env_->KindOf(Path("file")), FileKind::kRegular);
  EXPECT_EQ(env_->KindOf(Path("dir")), FileKind::kDirectory);
  EXPECT_EQ(env_->KindOf(Path("link")), FileKind::kRegular);
  EXPECT_EQ(env_->KindOf(Path("dangling")), FileKind::kMissing);
  EXPECT_EQ(env_->KindOf(Path("missing")), FileKind::kMissing);
  EXPECT_EQ(env_->KindOf(Path("file/child")), FileKind::kMissing);
  EXPECT_EQ(env_->KindOf("/dev/null"), FileKind::kOther);
}

TEST_F(EnvTest, NowMicrosIsWallClockMicroseconds) {
  const auto expected = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  const std::int64_t now = env_->NowMicros();
  EXPECT_LT(std::abs(now - expected), 5'000'000LL);
  ::usleep(2000);
  EXPECT_GE(env_->NowMicros() - now, 1000);
}

}  // namespace
}  // namespace portcullis
