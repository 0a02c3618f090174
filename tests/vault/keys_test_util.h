// Shared helpers for the vault key tests: temporary directories, a cheap keyring cost, an Env
// that fails writes on demand and an Env with a settable clock.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>

#include "portcullis/env.h"
#include "portcullis/key_provider.h"

namespace portcullis::vault::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "portcullis_keys_test.XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// libsodium's minimum Argon2id cost: the tests open keyrings hundreds of times.
inline KeyProviderOptions CheapKeyring(bool create = true) {
  KeyProviderOptions o;
  o.create_if_missing = create;
  o.keyring_opslimit = 1;
  o.keyring_memlimit = 8192;
  return o;
}

// Forwards to the real Env; WriteFileAtomic fails while fail_writes is set, and NowMicros is
// whatever the test says.
class TestEnv final : public Env {
 public:
  Status ReadFile(const std::string& path, std::size_t max_bytes, std::string* contents) override {
    return Env::Default()->ReadFile(path, max_bytes, contents);
  }
  Status WriteFileAtomic(const std::string& path, const std::string& contents) override {
    if (fail_writes.load()) return Status::IOError(path + ": injected: No space left on device");
    return Env::Default()->WriteFileAtomic(path, contents);
  }
  Status ListDirectory(const std::string& path, std::vector<std::string>* names) override {
    return Env::Default()->ListDirectory(path, names);
  }
  FileKind KindOf(const std::string& path) override { return Env::Default()->KindOf(path); }
  std::int64_t NowMicros() override { return now_micros.load(); }

  std::atomic<bool> fail_writes{false};
  std::atomic<std::int64_t> now_micros{0};
};

// A name no other test process (ctest -j) uses on a shared token.
inline std::string UniqueKekId(const std::string& stem) {
  static std::atomic<int> counter{0};
  return "kek/test/" + stem + "/" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

}  // namespace portcullis::vault::testing
