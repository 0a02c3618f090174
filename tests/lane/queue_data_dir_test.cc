// The data dir confines every write: names that escape it, symlinks planted in it and data dirs
// that are links or shared with other users are refused, and nothing lands outside.
#include "lane/data_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "queue_util.h"

namespace portcullis::lane {
namespace {

namespace fs = std::filesystem;
using testing_util::FaultyDataDir;
using testing_util::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every way of naming a file a DataDir offers, tried with one name.
std::vector<Status> WriteEveryWay(DataDir* dir, const std::string& name) {
  std::vector<Status> out;
  out.push_back(dir->WriteFileAtomic(name, "secret"));
  std::unique_ptr<AppendFile> f;
  Status s = dir->NewAppendFile(name, &f);
  if (s.ok()) s = f->Append("secret");
  out.push_back(s);
  out.push_back(dir->Truncate(name, 0));
  out.push_back(dir->Remove(name));
  std::string bytes;
  out.push_back(dir->ReadFile(name, 1024, &bytes));
  return out;
}

TEST(DataDir, CreatesDirectoryAndFilesPrivate) {
  TempDir tmp;
  const std::string path = tmp.path() + "/data";
  std::unique_ptr<DataDir> dir;
  ASSERT_TRUE(DataDir::Open(path, &dir).ok());
  ASSERT_TRUE(dir->CreateSubdir("queue").ok());
  ASSERT_TRUE(dir->CreateSubdir("queue").ok());  // idempotent
  ASSERT_TRUE(dir->WriteFileAtomic("queue/state", "abc").ok());
  std::unique_ptr<AppendFile> f;
  ASSERT_TRUE(dir->NewAppendFile("log", &f).ok());
  ASSERT_TRUE(f->Append("hello ").ok());
  ASSERT_TRUE(f->Append("world").ok());
  ASSERT_TRUE(f->Sync().ok());
  EXPECT_EQ(f->size(), 11u);

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((path + "/queue").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((path + "/queue/state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((path + "/log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  std::string bytes;
  ASSERT_TRUE(dir->ReadFile("queue/state", 100, &bytes).ok());
  EXPECT_EQ(bytes, "abc");
  ASSERT_TRUE(dir->ReadFile("log", 100, &bytes).ok());
  EXPECT_EQ(bytes, "hello world");
  EXPECT_EQ(dir->ReadFile("log", 5, &bytes).code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(dir->ReadFile("missing", 5, &bytes).code(), Status::Code::kNotFound);
  EXPECT_EQ(dir->Remove("missing").code(), Status::Code::kNotFound);

  // Reopening for append continues at the end.
  ASSERT_TRUE(dir->NewAppendFile("log", &f).ok());
  EXPECT_EQ(f->size(), 11u);
  ASSERT_TRUE(f->Append("!").ok());
  EXPECT_EQ(Slurp(path + "/log"), "hello world!");

  ASSERT_TRUE(dir->Truncate("log", 5).ok());
  EXPECT_EQ(Slurp(path + "/log"), "hello");

  // Atomic replace leaves no temporary behind.
  ASSERT_TRUE(dir->WriteFileAtomic("queue/state", "def").ok());
  std::vector<std::string> names;
  ASSERT_TRUE(dir->List("queue", &names).ok());
  EXPECT_EQ(names, std::vector<std::string>{"state"});
  ASSERT_TRUE(dir->List("", &names).ok());
  EXPECT_EQ(names, (std::vector<std::string>{"log", "queue"}));
  ASSERT_TRUE(dir->Remove("log").ok());
  EXPECT_FALSE(fs::exists(path + "/log"));

  std::uint64_t free_bytes = 0;
  ASSERT_TRUE(dir->FreeBytes(&free_bytes).ok());
  EXPECT_GT(free_bytes, 0u);

  std::unique_ptr<RandomAccessFile> r;
  ASSERT_TRUE(dir->NewRandomAccessFile("queue/state", &r).ok());
  EXPECT_EQ(r->size(), 3u);
  ASSERT_TRUE(r->Read(1, 10, &bytes).ok());
  EXPECT_EQ(bytes, "ef");
}

TEST(DataDir, RefusesNamesThatEscape) {
  TempDir tmp;
  std::unique_ptr<DataDir> dir;
  ASSERT_TRUE(DataDir::Open(tmp.path() + "/data", &dir).ok());
  ASSERT_TRUE(dir->CreateSubdir("sub").ok());
  const std::string outside = tmp.path() + "/x";
  for (const std::string& name :
       {std::string("../x"), tmp.path() + "/x", std::string("/tmp/x"), std::string("sub/../x"),
        std::string("./x"), std::string(".."), std::string("."), std::string(""),
        std::string("sub/"), std::string("/x"), std::string("a/b/c"), std::string("sub//x"),
        std::string("x\0y", 3), std::string(256, 'a'), std::string("sub/..")}) {
    for (const Status& s : WriteEveryWay(dir.get(), name)) {
      EXPECT_EQ(s.code(), Status::Code::kInvalidArgument)
          << "name '" << name << "': " << s.ToString();
    }
  }
  EXPECT_FALSE(fs::exists(outside));
  EXPECT_EQ(dir->CreateSubdir("../up").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(dir->CreateSubdir("a/b").code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(tmp.path() + "/up"));
  std::vector<std::string> names;
  EXPECT_EQ(dir->List("..", &names).code(), Status::Code::kInvalidArgument);
  // 255 bytes is a legal name.
  EXPECT_TRUE(dir->WriteFileAtomic(std::string(255, 'a'), "ok").ok());
}

TEST(DataDir, RefusesSymlinksPlantedInside) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  const std::string usb = tmp.path() + "/usb";  // stands for removable media
  fs::create_directory(usb);
  { std::ofstream(usb + "/victim") << "original"; }
  std::unique_ptr<DataDir> dir;
  ASSERT_TRUE(DataDir::Open(data, &dir).ok());
  // A symlinked file, a symlinked subdirectory and a dangling link to a new file on the stick.
  fs::create_symlink(usb + "/victim", data + "/link");
  fs::create_directory_symlink(usb, data + "/sublink");
  fs::create_symlink(usb + "/new", data + "/dangling");
  // Through a linked subdirectory every call is refused.
  for (const std::string& name : {std::string("sublink/victim"), std::string("sublink/new")}) {
    for (const Status& s : WriteEveryWay(dir.get(), name)) {
      EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << name << ": " << s.ToString();
    }
  }
  // A linked file is never opened through (rename and unlink act on the link itself, which is
  // harmless, and are tested below).
  for (const std::string& name : {std::string("link"), std::string("dangling")}) {
    std::unique_ptr<AppendFile> f;
    EXPECT_EQ(dir->NewAppendFile(name, &f).code(), Status::Code::kInvalidArgument) << name;
    EXPECT_EQ(dir->Truncate(name, 0).code(), Status::Code::kInvalidArgument) << name;
    std::string bytes;
    EXPECT_EQ(dir->ReadFile(name, 100, &bytes).code(), Status::Code::kInvalidArgument) << name;
    std::unique_ptr<RandomAccessFile> r;
    EXPECT_EQ(dir->NewRandomAccessFile(name, &r).code(), Status::Code::kInvalidArgument) << name;
  }
  ASSERT_TRUE(dir->Remove("link").ok());
  EXPECT_FALSE(fs::exists(data + "/link"));
  EXPECT_EQ(dir->CreateSubdir("sublink").code(), Status::Code::kInvalidArgument);
  std::vector<std::string> names;
  EXPECT_EQ(dir->List("sublink", &names).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Slurp(usb + "/victim"), "original");
  EXPECT_FALSE(fs::exists(usb + "/new"));
  EXPECT_EQ(std::distance(fs::directory_iterator(usb), fs::directory_iterator()), 1);
}

TEST(DataDir, WriteFileAtomicReplacesAPlantedLinkWithoutFollowingIt) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  const std::string target = tmp.path() + "/target";
  { std::ofstream(target) << "original"; }
  std::unique_ptr<DataDir> dir;
  ASSERT_TRUE(DataDir::Open(data, &dir).ok());
  fs::create_symlink(target, data + "/state");
  ASSERT_TRUE(dir->WriteFileAtomic("state", "new").ok());
  EXPECT_FALSE(fs::is_symlink(data + "/state"));
  EXPECT_EQ(Slurp(data + "/state"), "new");
  EXPECT_EQ(Slurp(target), "original");
}

TEST(DataDir, RefusesHardLinksFifosAndDirectoriesAsFiles) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  std::unique_ptr<DataDir> dir;
  ASSERT_TRUE(DataDir::Open(data, &dir).ok());
  { std::ofstream(tmp.path() + "/other") << "original"; }
  ASSERT_EQ(::link((tmp.path() + "/other").c_str(), (data + "/hard").c_str()), 0);
  ASSERT_EQ(::mkfifo((data + "/fifo").c_str(), 0600), 0);
  ASSERT_TRUE(dir->CreateSubdir("d").ok());
  std::unique_ptr<AppendFile> f;
  EXPECT_EQ(dir->NewAppendFile("hard", &f).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(dir->NewAppendFile("fifo", &f).code(), Status::Code::kIOError);  // ENXIO: no reader
  std::string bytes;
  EXPECT_EQ(dir->ReadFile("fifo", 10, &bytes).code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(dir->NewAppendFile("d", &f).ok());
  EXPECT_EQ(Slurp(tmp.path() + "/other"), "original");
}

TEST(DataDir, RefusesADataDirThatIsALinkOrShared) {
  TempDir tmp;
  const std::string real = tmp.path() + "/real";
  fs::create_directory(real);
  fs::permissions(real, fs::perms::owner_all, fs::perm_options::replace);
  fs::create_directory_symlink(real, tmp.path() + "/link");
  std::unique_ptr<DataDir> dir;
  EXPECT_EQ(DataDir::Open(tmp.path() + "/link", &dir).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(DataDir::Open(real, &dir).ok());

  fs::permissions(real, fs::perms::owner_all | fs::perms::group_write, fs::perm_options::replace);
  EXPECT_EQ(DataDir::Open(real, &dir).code(), Status::Code::kInvalidArgument);
  fs::permissions(real, fs::perms::owner_all | fs::perms::others_write, fs::perm_options::replace);
  EXPECT_EQ(DataDir::Open(real, &dir).code(), Status::Code::kInvalidArgument);

  { std::ofstream(tmp.path() + "/file") << "x"; }
  EXPECT_EQ(DataDir::Open(tmp.path() + "/file", &dir).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(DataDir::Open("", &dir).code(), Status::Code::kInvalidArgument);

  // Not owned by us: only root can make such a directory, so only root runs this half.
  if (::geteuid() == 0) {
    const std::string foreign = tmp.path() + "/foreign";
    fs::create_directory(foreign);
    fs::permissions(foreign, fs::perms::owner_all, fs::perm_options::replace);
    ASSERT_EQ(::chown(foreign.c_str(), 65534, 65534), 0);
    EXPECT_EQ(DataDir::Open(foreign, &dir).code(), Status::Code::kInvalidArgument);
  }
}

TEST(DataDir, FaultyDataDirFailsWhenFullAndDiesAtTheCrashByte) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  std::unique_ptr<DataDir> real;
  ASSERT_TRUE(DataDir::Open(data, &real).ok());
  FaultyDataDir full(real.get());
  full.set_full_after_bytes(5);
  std::unique_ptr<AppendFile> f;
  ASSERT_TRUE(full.NewAppendFile("a", &f).ok());
  ASSERT_TRUE(f->Append("abc").ok());
  EXPECT_EQ(f->Append("defg").code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(Slurp(data + "/a"), "abcde");  // what fitted is on disk, as with a real ENOSPC
  EXPECT_EQ(full.WriteFileAtomic("b", "x").code(), Status::Code::kResourceExhausted);
  full.set_full_after_bytes(FaultyDataDir::kNever);  // space freed
  EXPECT_TRUE(f->Append("fg").ok());
  EXPECT_EQ(Slurp(data + "/a"), "abcdefg");

  FaultyDataDir crash(real.get());
  crash.set_crash_after_bytes(2);
  ASSERT_TRUE(crash.NewAppendFile("c", &f).ok());
  EXPECT_EQ(f->Append("xyz").code(), Status::Code::kIOError);
  EXPECT_TRUE(crash.crashed());
  EXPECT_FALSE(f->Append("more").ok());
  EXPECT_FALSE(f->Sync().ok());
  EXPECT_FALSE(crash.WriteFileAtomic("d", "x").ok());
  EXPECT_EQ(Slurp(data + "/c"), "xy");
  EXPECT_FALSE(fs::exists(data + "/d"));
}

}  // namespace
}  // namespace portcullis::lane
