// Keys shared by several nodes (docs/deployment.md): two processes open one key provider — one
// keyring file, or one SoftHSM2 token directory — and create the same KEK ids at the same time,
// as two nodes do when the first records of a new retention bucket arrive on both. Afterwards
// each process must unwrap the data keys the other wrapped: had either created its own copy of a
// KEK and lost it to the other's rewrite, the other's records would be undecryptable.
#include <stdlib.h>  // mkdtemp, setenv
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "portcullis/key_provider.h"
#include "portcullis/vault.h"

namespace portcullis::vault {
namespace {

constexpr int kKeks = 12;

std::string SourceDir() {
  // tests/server/multinode_keys_test.cc -> the repository root.
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().string();
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4U];
    out += kDigits[c & 15U];
  }
  return out;
}

std::string Unhex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

class SharedKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "portcullis_shared_keys_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  Status OpenProvider(const KeyProviderOptions& options, std::unique_ptr<KeyProvider>* p) const {
    return OpenKeyProvider(uri_, secret_, options, p);
  }

  // Child `me` of two: creates KEKs kek/shared/0..N-1 (the same ids as the other), wraps one
  // data key under each, writes "<kek> <data key hex> <wrapped hex>" lines to its file, then
  // (after the parent says both are done) unwraps every line of the other's file.
  [[noreturn]] void Child(int me, int ready_fd, int go_fd, const KeyProviderOptions& options) {
    std::unique_ptr<KeyProvider> p;
    if (!OpenProvider(options, &p).ok()) ::_exit(10);
    std::ofstream out(dir_ + "/wrapped" + std::to_string(me));
    for (int i = 0; i < kKeks; ++i) {
      const std::string kek = "kek/shared/" + std::to_string(i);
      if (!p->EnsureKek(kek).ok()) ::_exit(11);
      const SecretBytes key = SecretBytes::Random(32);
      std::string wrapped;
      if (!p->WrapKey(kek, key, &wrapped).ok()) ::_exit(12);
      out << kek << ' '
          << Hex(std::string_view(reinterpret_cast<const char*>(key.data()), key.size())) << ' '
          << Hex(wrapped) << '\n';
    }
    out.close();
    if (::write(ready_fd, "r", 1) != 1) ::_exit(13);
    char c = 0;
    if (::read(go_fd, &c, 1) != 1) ::_exit(14);
    std::ifstream in(dir_ + "/wrapped" + std::to_string(1 - me));
    std::string kek, key_hex, wrapped_hex;
    int checked = 0;
    while (in >> kek >> key_hex >> wrapped_hex) {
      SecretBytes back;
      if (!p->UnwrapKey(kek, Unhex(wrapped_hex), &back).ok()) ::_exit(15);
      const std::string got(reinterpret_cast<const char*>(back.data()), back.size());
      if (Hex(got) != key_hex) ::_exit(16);
      ++checked;
    }
    ::_exit(checked == kKeks ? 0 : 17);
  }

  void RaceTwoProcesses(const KeyProviderOptions& options) {
    int ready[2];
    int go[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(go), 0);
    std::vector<pid_t> pids;
    for (int me = 0; me < 2; ++me) {
      const pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) Child(me, ready[1], go[0], options);
      pids.push_back(pid);
    }
    char c = 0;
    int ready_count = 0;
    for (int i = 0; i < 2; ++i) ready_count += ::read(ready[0], &c, 1) == 1 ? 1 : 0;
    ASSERT_EQ(::write(go[1], "gg", 2), 2);
    for (pid_t pid : pids) {
      int status = 0;
      ASSERT_EQ(::waitpid(pid, &status, 0), pid);
      ASSERT_TRUE(WIFEXITED(status));
      EXPECT_EQ(WEXITSTATUS(status), 0) << "child exit code (see Child for the step)";
    }
    EXPECT_EQ(ready_count, 2);
    for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
    // One KEK per id in the end, whatever the interleaving.
    std::unique_ptr<KeyProvider> p;
    ASSERT_TRUE(OpenProvider(options, &p).ok());
    std::vector<std::string> ids;
    ASSERT_TRUE(p->ListKeks(&ids).ok());
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    EXPECT_EQ(ids.size(), std::size_t{kKeks});
  }

  std::string dir_, uri_, secret_;
};

TEST_F(SharedKeysTest, TwoProcessesOnOneKeyringFileCreateTheSameKeksSafely) {
  uri_ = "keyring:" + dir_ + "/keyring";
  secret_ = "shared by the nodes";
  KeyProviderOptions options;
  options.keyring_opslimit = 1;
  options.keyring_memlimit = 8192;
  {
    KeyProviderOptions create = options;
    create.create_if_missing = true;
    std::unique_ptr<KeyProvider> p;
    ASSERT_TRUE(OpenProvider(create, &p).ok());
  }
  for (int round = 0; round < 3; ++round) {
    std::filesystem::remove(dir_ + "/wrapped0");
    std::filesystem::remove(dir_ + "/wrapped1");
    RaceTwoProcesses(options);
  }
}

TEST_F(SharedKeysTest, TwoProcessesOnOneSoftHsmTokenCreateTheSameKeksSafely) {
  const std::string token_dir = dir_ + "/softhsm";
  const std::string cmd = SourceDir() + "/scripts/softhsm_token.sh " + token_dir +
                          " portcullis-shared 123456 654321 >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  ASSERT_EQ(::setenv("SOFTHSM2_CONF", (token_dir + "/softhsm2.conf").c_str(), 1), 0);
  uri_ = "pkcs11:portcullis-shared";
  secret_ = "123456";
  RaceTwoProcesses({});
  ::unsetenv("SOFTHSM2_CONF");
}

}  // namespace
}  // namespace portcullis::vault
