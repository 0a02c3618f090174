// Runs the real `portcullis` binary (PORTCULLIS_CLI_PATH) for end-to-end tests of the command
// line: exit codes, stdout/stderr, JSON Lines. Shared by every subsystem's CLI tests.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace portcullis::testing {

struct RunOptions {
  std::vector<std::pair<std::string, std::string>> env;  // added to (or replacing) the environment
  bool as_nobody = false;  // when root, drop to uid/gid 65534 so that file permissions apply
  double timeout_s = 300;
  std::string cwd;  // working directory of the child; empty: inherited
  // Polled (every 50 ms) with the child's stderr so far; once it returns true the child gets
  // SIGKILL. For "killed mid-run" tests that must not depend on how fast the machine is.
  std::function<bool(const std::string& err_so_far)> kill_when;
};

struct RunResult {
  int exit_code = -1;  // WEXITSTATUS, or 128 + signal when the child was killed
  bool signalled = false;
  bool timed_out = false;
  bool killed_on_condition = false;  // kill_when returned true and the child was killed
  std::string out;
  std::string err;
  double seconds = 0;
};

std::ostream& operator<<(std::ostream& os, const RunResult& r);

std::string ReadAll(const std::string& path);
bool WriteBytes(const std::string& path, const std::string& bytes);
// A fresh directory under the system temp dir ("" on failure).
std::string MakeTempDir();

// Runs `portcullis args...` with stdin from /dev/null and stdout/stderr captured in files (never
// a terminal, so no progress bar may appear). Kills the child if it outlives the timeout.
RunResult RunCli(const std::vector<std::string>& args, const RunOptions& options = {});

// Splits stdout into lines; every line must be one JSON object (a test failure otherwise).
std::vector<nlohmann::json> JsonLines(const RunResult& r);

}  // namespace portcullis::testing
