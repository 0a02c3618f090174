// Core dumps off and buffers wiped: a crash must not write frames to disk, and a dropped frame
// must not linger in freed memory.
#include "lane/hygiene.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include "queue_util.h"

namespace portcullis::lane {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> CoreFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("core", 0) == 0) out.push_back(e.path().string());
  }
  return out;
}

struct ChildResult {
  int wait_status = 0;
  std::string report;  // what the child wrote to the pipe before it died
};

// Forks a child that runs in `cwd`, optionally disables core dumps, reports its dump state
// (rlimit soft/hard, dumpable) through a pipe and then kills itself with `sig`.
ChildResult CrashChild(const std::string& cwd, bool disable, int sig) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (::chdir(cwd.c_str()) != 0) ::_exit(2);
    if (disable) {
      if (!DisableCoreDumps().ok()) ::_exit(3);
    } else {
      // The control: let the kernel dump (as far as the hard limit allows).
      rlimit lim{};
      ::getrlimit(RLIMIT_CORE, &lim);
      lim.rlim_cur = lim.rlim_max;
      ::setrlimit(RLIMIT_CORE, &lim);
      ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
    rlimit lim{};
    ::getrlimit(RLIMIT_CORE, &lim);
    const std::string report = std::to_string(lim.rlim_cur) + " " +
                               std::to_string(::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)) + " " +
                               (CoreDumpsDisabled() ? "disabled" : "enabled");
    if (::write(fds[1], report.data(), report.size()) < 0) ::_exit(4);
    ::close(fds[1]);
    // The kernel's default action (terminate + dump) is what is under test: a sanitizer's own
    // SIGSEGV handler would otherwise turn the crash into an ordinary exit.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    ::_exit(5);  // not reached: the signal's default action ends the process
  }
  ::close(fds[1]);
  ChildResult r;
  char buf[256];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
    r.report.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  ::waitpid(pid, &r.wait_status, 0);
  return r;
}

std::string CorePattern() {
  std::ifstream in("/proc/sys/kernel/core_pattern");
  std::string s;
  std::getline(in, s);
  return s;
}

TEST(Hygiene, DisableCoreDumpsLeavesNoCoreOnSegvOrAbort) {
  for (int sig : {SIGSEGV, SIGABRT}) {
    testing_util::TempDir cwd;
    const ChildResult r = CrashChild(cwd.path(), /*disable=*/true, sig);
    EXPECT_EQ(r.report, "0 0 disabled") << "signal " << sig;
    ASSERT_TRUE(WIFSIGNALED(r.wait_status)) << r.wait_status;
    EXPECT_EQ(WTERMSIG(r.wait_status), sig);
    EXPECT_FALSE(WCOREDUMP(r.wait_status));
    EXPECT_TRUE(CoreFiles(cwd.path()).empty());
  }
}

TEST(Hygiene, ControlChildWithDumpsAllowedIsNotReportedDisabled) {
  // The control proves the check above can fail: without DisableCoreDumps the state reads
  // "enabled", and where this host writes cores into the cwd ("core" pattern, hard limit > 0)
  // the kernel really does write one.
  testing_util::TempDir cwd;
  rlimit lim{};
  ASSERT_EQ(::getrlimit(RLIMIT_CORE, &lim), 0);
  const ChildResult r = CrashChild(cwd.path(), /*disable=*/false, SIGABRT);
  EXPECT_NE(r.report.find("1 enabled"), std::string::npos) << r.report;
  ASSERT_TRUE(WIFSIGNALED(r.wait_status));
  const std::string pattern = CorePattern();
  const bool host_writes_cores_here =
      lim.rlim_max != 0 && !pattern.empty() && pattern[0] != '|' && pattern[0] != '/';
  if (host_writes_cores_here) {
    EXPECT_TRUE(WCOREDUMP(r.wait_status));
    EXPECT_FALSE(CoreFiles(cwd.path()).empty());
  }
  EXPECT_FALSE(CoreDumpsDisabled() && lim.rlim_cur != 0);  // the parent is untouched by the child
}

// A MatAllocator that keeps freed buffers alive until it is destroyed, so a test can look at a
// buffer's bytes after WipeMat released it (reading freed memory would be undefined behaviour).
class KeepAliveAllocator final : public cv::MatAllocator {
 public:
  ~KeepAliveAllocator() override {
    for (void* p : kept_) cv::fastFree(p);
  }
  cv::UMatData* allocate(int dims, const int* sizes, int type, void* data0, size_t* step,
                         cv::AccessFlag /*flags*/, cv::UMatUsageFlags /*usage*/) const override {
    size_t total = CV_ELEM_SIZE(type);
    for (int i = dims - 1; i >= 0; --i) {
      if (step != nullptr) {
        if (data0 != nullptr && step[i] != cv::Mat::AUTO_STEP) {
          total = step[i];
        } else {
          step[i] = total;
        }
      }
      total *= static_cast<size_t>(sizes[i]);
    }
    auto* data =
        data0 != nullptr ? static_cast<uchar*>(data0) : static_cast<uchar*>(cv::fastMalloc(total));
    auto* u = new cv::UMatData(this);  // NOLINT: OpenCV's allocator protocol owns it
    u->data = u->origdata = data;
    u->size = total;
    if (data0 != nullptr) u->flags |= cv::UMatData::USER_ALLOCATED;
    return u;
  }
  bool allocate(cv::UMatData* u, cv::AccessFlag /*flags*/,
                cv::UMatUsageFlags /*usage*/) const override {
    return u != nullptr;
  }
  void deallocate(cv::UMatData* u) const override {
    if (u == nullptr) return;
    if ((u->flags & cv::UMatData::USER_ALLOCATED) == 0) kept_.push_back(u->origdata);
    delete u;  // NOLINT: see allocate
  }

 private:
  mutable std::vector<void*> kept_;
};

bool AllBytes(const uchar* p, size_t n, uchar value) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != value) return false;
  }
  return true;
}

TEST(Hygiene, WipeMatZeroesOnlyWhenSoleOwner) {
  KeepAliveAllocator alloc;
  cv::Mat a;
  a.allocator = &alloc;
  a.create(16, 16, CV_8UC3);
  a.setTo(cv::Scalar(7, 7, 7));
  const uchar* p = a.data;
  const size_t n = a.total() * a.elemSize();
  const cv::Mat view(16, 16, CV_8UC3, const_cast<uchar*>(p));  // non-owning header on the pixels

  cv::Mat shared = a;  // a second owner
  WipeMat(&a);
  EXPECT_TRUE(a.empty());
  EXPECT_TRUE(AllBytes(p, n, 7)) << "wiped a buffer another Mat still owns";
  EXPECT_EQ(view.at<cv::Vec3b>(3, 3)[0], 7);

  WipeMat(&shared);  // now the sole owner
  EXPECT_TRUE(shared.empty());
  EXPECT_TRUE(AllBytes(p, n, 0)) << "sole owner's buffer not wiped";
  EXPECT_EQ(view.at<cv::Vec3b>(3, 3)[0], 0);
}

TEST(Hygiene, WipeMatOfANonContinuousRoiWipesTheWholeFrame) {
  KeepAliveAllocator alloc;
  cv::Mat frame;
  frame.allocator = &alloc;
  frame.create(32, 40, CV_8UC1);
  frame.setTo(cv::Scalar(9));
  const uchar* p = frame.data;
  const size_t n = frame.total() * frame.elemSize();
  cv::Mat roi = frame(cv::Rect(5, 5, 10, 10));
  ASSERT_FALSE(roi.isContinuous());
  WipeMat(&roi);  // frame still owns it too
  EXPECT_TRUE(AllBytes(p, n, 9));
  roi = frame(cv::Rect(5, 5, 10, 10));
  frame.release();  // the ROI is now the only owner of the full frame
  WipeMat(&roi);
  EXPECT_TRUE(roi.empty());
  EXPECT_TRUE(AllBytes(p, n, 0)) << "pixels outside the ROI survived";
}

TEST(Hygiene, WipeMatLeavesCallerMemoryAndHandlesEmpty) {
  std::vector<uchar> mine(64, 5);
  cv::Mat wrap(8, 8, CV_8UC1, mine.data());
  WipeMat(&wrap);
  EXPECT_TRUE(wrap.empty());
  EXPECT_EQ(mine[10], 5);  // not this Mat's to wipe
  cv::Mat empty;
  WipeMat(&empty);
  EXPECT_TRUE(empty.empty());
  WipeMat(nullptr);
  // An ordinary Mat (default allocator) goes through the same path without error.
  cv::Mat plain(4, 4, CV_8UC1, cv::Scalar(1));
  WipeMat(&plain);
  EXPECT_TRUE(plain.empty());
}

TEST(Hygiene, WipeStringZeroesEvenTheSpareCapacity) {
  std::string s = "ABC1234 plate text that is long enough to be on the heap";
  s.resize(7);  // the tail stays in the buffer past size()
  const char* p = s.data();
  const size_t cap = s.capacity();
  WipeString(&s);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.data(), p);  // same buffer, still alive: safe to inspect
  for (size_t i = 0; i < cap; ++i) EXPECT_EQ(p[i], '\0') << i;
  WipeString(nullptr);
}

}  // namespace
}  // namespace portcullis::lane
