#include "cli_runner.h"

#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>  // mkdtemp
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>
#include <thread>

#include <gtest/gtest.h>

extern char** environ;

namespace portcullis::testing {

namespace fs = std::filesystem;
using nlohmann::json;

std::ostream& operator<<(std::ostream& os, const RunResult& r) {
  return os << "exit " << r.exit_code << (r.signalled ? " (signalled)" : "")
            << (r.timed_out ? " (timed out)" : "")
            << (r.killed_on_condition ? " (killed on condition)" : "") << "\n--- stdout ---\n"
            << r.out << "--- stderr ---\n"
            << r.err;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  return out.good();
}

std::string MakeTempDir() {
  std::string pattern = (fs::temp_directory_path() / "portcullis_cli_XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

// Runs `portcullis args...` with stdin from /dev/null and stdout/stderr captured in files (never
// a terminal, so no progress bar may appear). Kills the child if it outlives the timeout.
RunResult RunCli(const std::vector<std::string>& args, const RunOptions& options) {
  RunResult result;
  const std::string dir = MakeTempDir();
  if (dir.empty()) {
    ADD_FAILURE() << "mkdtemp failed";
    return result;
  }
  const std::string out_path = dir + "/stdout";
  const std::string err_path = dir + "/stderr";

  // Everything the child needs is built before fork: after it only async-signal-safe calls.
  std::vector<std::string> argv_storage;
  argv_storage.emplace_back(PORTCULLIS_CLI_PATH);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    bool replaced = false;
    for (const auto& [key, value] : options.env) {
      replaced = replaced || entry.rfind(key + "=", 0) == 0;
    }
    if (!replaced) env_storage.push_back(entry);
  }
  for (const auto& [key, value] : options.env) env_storage.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  const int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out_fd < 0 || err_fd < 0 || in_fd < 0) {
    ADD_FAILURE() << "cannot open capture files in " << dir;
    return result;
  }
  const bool drop = options.as_nobody && ::geteuid() == 0;
  const std::string& cwd = options.cwd;

  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
      static constexpr char kMsg[] = "cli_runner: cannot chdir\n";
      (void)!::write(2, kMsg, sizeof(kMsg) - 1);
      ::_exit(125);
    }
    if (drop && (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)) {
      static constexpr char kMsg[] = "cli_test: cannot drop privileges\n";
      (void)!::write(2, kMsg, sizeof(kMsg) - 1);
      ::_exit(126);
    }
    ::execve(argv[0], argv.data(), envp.data());
    static constexpr char kMsg[] = "cli_test: exec failed\n";
    (void)!::write(2, kMsg, sizeof(kMsg) - 1);
    ::_exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  ::close(in_fd);
  if (pid < 0) {
    ADD_FAILURE() << "fork failed: " << std::strerror(errno);
    return result;
  }

  int status = 0;
  auto last_poll = start;
  while (true) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) {
      ADD_FAILURE() << "waitpid failed: " << std::strerror(errno);
      break;
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed > options.timeout_s && !result.timed_out && !result.killed_on_condition) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
    }
    const auto now = std::chrono::steady_clock::now();
    if (options.kill_when && !result.timed_out && !result.killed_on_condition &&
        now - last_poll >= std::chrono::milliseconds(50)) {
      last_poll = now;
      if (options.kill_when(ReadAll(err_path))) {
        result.killed_on_condition = true;
        ::kill(pid, SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signalled = true;
    result.exit_code = 128 + WTERMSIG(status);
  }
  result.out = ReadAll(out_path);
  result.err = ReadAll(err_path);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return result;
}

// Splits stdout into lines; every line must be one JSON object.
std::vector<json> JsonLines(const RunResult& r) {
  std::vector<json> records;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(record.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(record.is_object()) << line;
    if (!record.is_discarded()) records.push_back(std::move(record));
  }
  if (!r.out.empty()) {
    EXPECT_EQ(r.out.back(), '\n') << "last JSON line is not terminated";
  }
  return records;
}

}  // namespace portcullis::testing
