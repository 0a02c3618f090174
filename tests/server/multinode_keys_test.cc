// Keys shared by several nodes (docs/deployment.md): two processes open one key provider — one
// keyring file, or one SoftHSM2 token directory — and create the same KEK ids at the same time,
// as two nodes do when the first records of a new retention bucket arrive on both. Afterwards
// each process must unwrap the data keys the other wrapped: had either created its own copy of a
// KEK and lost it to the other's rewrite, the other's records would be undecryptable.
//
// The providers are opened one after the other before the race, as nodes open theirs at start:
// with SoftHSM2's file store, two processes opening one token at the same moment (or one opening
// while another writes) often fail with "no token labelled ..." (about half the runs here; a
// retried slot scan does not help, SoftHSM2 keeps the bad token until C_Finalize). An open
// provider does see the other process's new objects. docs/deployment.md has the consequence: a
// node that fails to open the token at start exits non-zero and is restarted.
#include <poll.h>
#include <signal.h>
#include <stdlib.h>  // mkdtemp, setenv
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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

std::string SourceDir() { return PORTCULLIS_SOURCE_DIR; }

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
  // Exits with `code` after leaving the reason where the parent can report it.
  [[noreturn]] void ChildFails(int me, int code, const Status& s) const {
    std::ofstream(dir_ + "/error" + std::to_string(me)) << "step " << code << ": " << s.ToString();
    ::_exit(code);
  }

  // Phases, each started by the parent: open the provider (one child after the other, as nodes
  // start), create and wrap (the race), unwrap the other's keys.
  [[noreturn]] void Child(int me, int ready_fd, int go_fd, const KeyProviderOptions& options) {
    char c = 0;
    if (::read(go_fd, &c, 1) != 1) ::_exit(8);
    std::unique_ptr<KeyProvider> p;
    if (Status s = OpenProvider(options, &p); !s.ok()) ChildFails(me, 10, s);
    if (::write(ready_fd, "o", 1) != 1 || ::read(go_fd, &c, 1) != 1) ::_exit(9);
    std::ofstream out(dir_ + "/wrapped" + std::to_string(me));
    for (int i = 0; i < kKeks; ++i) {
      const std::string kek = "kek/shared/" + std::to_string(i);
      if (Status s = p->EnsureKek(kek); !s.ok()) ChildFails(me, 11, s);
      const SecretBytes key = SecretBytes::Random(32);
      std::string wrapped;
      if (Status s = p->WrapKey(kek, key, &wrapped); !s.ok()) ChildFails(me, 12, s);
      out << kek << ' '
          << Hex(std::string_view(reinterpret_cast<const char*>(key.data()), key.size())) << ' '
          << Hex(wrapped) << '\n';
    }
    out.close();
    if (::write(ready_fd, "r", 1) != 1) ::_exit(13);
    if (::read(go_fd, &c, 1) != 1) ::_exit(14);
    std::ifstream in(dir_ + "/wrapped" + std::to_string(1 - me));
    std::string kek, key_hex, wrapped_hex;
    int checked = 0;
    while (in >> kek >> key_hex >> wrapped_hex) {
      SecretBytes back;
      if (Status s = p->UnwrapKey(kek, Unhex(wrapped_hex), &back); !s.ok()) ChildFails(me, 15, s);
      const std::string got(reinterpret_cast<const char*>(back.data()), back.size());
      if (Hex(got) != key_hex) ::_exit(16);
      ++checked;
    }
    ::_exit(checked == kKeks ? 0 : 17);
  }

  // precreate: a third process (the parent) creates the KEKs after the children have opened the
  // provider and before they race, so their EnsureKek finds an existing KEK.
  void RaceTwoProcesses(const KeyProviderOptions& options, bool precreate) {
    int ready[2];
    // One "go" pipe per child: with a shared one, a fast child could take the other's token and
    // run ahead into the next phase.
    int go[2][2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(go[0]), 0);
    ASSERT_EQ(::pipe(go[1]), 0);
    std::vector<pid_t> pids;
    for (int me = 0; me < 2; ++me) {
      const pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) Child(me, ready[1], go[me][0], options);
      pids.push_back(pid);
    }
    // Both children ready, or give up after a minute: a child that failed before it was ready
    // must not leave the parent (and the other child) waiting for ever.
    ::close(ready[1]);
    ::close(go[0][0]);
    ::close(go[1][0]);
    auto wait_ready = [&](int want, int* have) {
      while (*have < want) {
        pollfd pfd{ready[0], POLLIN, 0};
        if (::poll(&pfd, 1, 60'000) <= 0) return;
        char c = 0;
        if (::read(ready[0], &c, 1) != 1) return;  // EOF: both children are gone
        ++*have;
      }
    };
    int opened = 0;
    for (int me = 0; me < 2 && opened == me; ++me) {
      EXPECT_EQ(::write(go[me][1], "g", 1), 1);
      wait_ready(me + 1, &opened);
    }
    int ready_count = 0;
    if (opened == 2) {
      if (precreate) {
        std::unique_ptr<KeyProvider> creator;
        EXPECT_TRUE(OpenProvider(options, &creator).ok());
        for (int i = 0; creator != nullptr && i < kKeks; ++i) {
          EXPECT_TRUE(creator->EnsureKek("kek/shared/" + std::to_string(i)).ok());
        }
      }
      for (int phase = 0; phase < 2; ++phase) {
        if (phase == 1 && ready_count != 2) break;
        EXPECT_EQ(::write(go[0][1], "g", 1), 1);
        EXPECT_EQ(::write(go[1][1], "g", 1), 1);
        if (phase == 0) wait_ready(2, &ready_count);
      }
    }
    if (ready_count != 2) {
      for (pid_t pid : pids) ::kill(pid, SIGKILL);
    }
    ::close(go[0][1]);
    ::close(go[1][1]);
    ::close(ready[0]);
    for (int me = 0; me < 2; ++me) {
      int status = 0;
      ASSERT_EQ(::waitpid(pids[static_cast<std::size_t>(me)], &status, 0),
                pids[static_cast<std::size_t>(me)]);
      std::ifstream error(dir_ + "/error" + std::to_string(me));
      const std::string why((std::istreambuf_iterator<char>(error)),
                            std::istreambuf_iterator<char>());
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "child " << me << " status " << status << " " << why;
    }
    ASSERT_EQ(opened, 2);
    ASSERT_EQ(ready_count, 2);
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
    RaceTwoProcesses(options, /*precreate=*/false);
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
  // Two open providers on a token where a third process created the KEKs: both use them and
  // decrypt each other's keys. (Two processes *creating* one label at the same moment can each
  // end up with their own object, and SoftHSM2 did not always show one process the other's: a
  // cross-unwrap then fails. docs/deployment.md: with a shared SoftHSM2 token, KEKs are created
  // ahead of time by one node.)
  RaceTwoProcesses({}, /*precreate=*/true);
  ::unsetenv("SOFTHSM2_CONF");
}

}  // namespace
}  // namespace portcullis::vault
