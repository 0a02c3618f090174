// The keyring provider: a passphrase-sealed file of KEKs (development only).
//
// File (all integers little-endian), header = the first 92 bytes, used whole as the AEAD's
// associated data:
//   "PCKR" | version 0x01 | kdf 0x01 (Argon2id v1.3) | 0x0000 | opslimit u32 | memlimit u64 |
//   salt[16] | check[32] | nonce[24] | XChaCha20-Poly1305(body) (body + 16-byte tag)
// Argon2id(passphrase, salt) gives 64 bytes: the first 32 are the file key, BLAKE2b-256 of the
// other 32 is `check`, which tells a wrong passphrase (InvalidArgument) from a damaged file
// (Corruption) without weakening anything (the ciphertext already lets an attacker test guesses).
// body: count u32 | count x (id_len u16 | id | key[32]), sorted by id.
#include "keyring_provider.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "common/unique_fd.h"
#include "keys_internal.h"
#include "portcullis/env.h"

namespace portcullis::vault {
namespace {

constexpr char kMagic[4] = {'P', 'C', 'K', 'R'};
constexpr unsigned char kFileVersion = 0x01;
constexpr unsigned char kKdfArgon2id13 = 0x01;
constexpr std::size_t kSaltBytes = crypto_pwhash_SALTBYTES;  // 16
constexpr std::size_t kCheckBytes = 32;
constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr std::size_t kKekBytes = 32;
constexpr std::size_t kHeaderBytes = 4 + 1 + 1 + 2 + 4 + 8 + kSaltBytes + kCheckBytes + kNonceBytes;
constexpr std::size_t kMaxKeyringBytes = std::size_t{64} << 20;
// Bounds on the cost read from a file: a tampered header must not make Open allocate 1 TiB.
constexpr std::uint64_t kMaxOpslimit = 64;
constexpr std::uint64_t kMaxMemlimit = std::uint64_t{4} << 30;
constexpr unsigned char kWrapVersion = 0x01;

static_assert(kHeaderBytes == 92);
static_assert(kKeyringWrappedBytes == 1 + kNonceBytes + kKekBytes + kTagBytes);

void PutLe(std::string* out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t GetLe(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct KdfParams {
  std::uint64_t opslimit = 0;
  std::uint64_t memlimit = 0;
  unsigned char salt[kSaltBytes] = {};
  unsigned char check[kCheckBytes] = {};

  [[nodiscard]] bool SameDerivation(const KdfParams& o) const {
    return opslimit == o.opslimit && memlimit == o.memlimit &&
           std::memcmp(salt, o.salt, kSaltBytes) == 0;
  }
};

// Which file we last loaded: a rewrite is a rename, so a changed inode or times means another
// process (or we) replaced it.
struct FileIdentity {
  bool valid = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtime{};
  timespec ctime{};
  bool operator==(const FileIdentity& o) const {
    return valid && o.valid && dev == o.dev && ino == o.ino && size == o.size &&
           mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec &&
           ctime.tv_sec == o.ctime.tv_sec && ctime.tv_nsec == o.ctime.tv_nsec;
  }
};

FileIdentity Identify(const std::string& path) {
  FileIdentity id;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return id;
  id.valid = true;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.size = st.st_size;
  id.mtime = st.st_mtim;
  id.ctime = st.st_ctim;
  return id;
}

using Fd = UniqueFd;

// An exclusive flock held for one read-modify-write of the keyring, so that two processes never
// both rewrite it from the same old state (the second would silently undo the first's change).
class FileLock {
 public:
  static Status Acquire(int fd, const std::string& what, FileLock* lock) {
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) return Status::IOError(what + ": flock: " + std::strerror(errno));
    }
    lock->fd_ = fd;
    return Status::Ok();
  }
  FileLock() = default;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::flock(fd_, LOCK_UN);
  }

 private:
  int fd_ = -1;
};

Status WrongPassphrase() { return Status::InvalidArgument("wrong passphrase or corrupt keyring"); }

class KeyringProvider final : public KeyProvider {
 public:
  KeyringProvider(Env* env, std::string path, const std::string& passphrase, Fd lock_fd)
      : env_(env),
        path_(std::move(path)),
        passphrase_(passphrase.size()),
        lock_fd_(std::move(lock_fd)) {
    if (!passphrase.empty()) std::memcpy(passphrase_.data(), passphrase.data(), passphrase.size());
  }

  // Loads the keyring, creating an empty one when it is missing and `create` is set.
  Status Init(const KeyProviderOptions& options) {
    std::lock_guard<std::mutex> guard(mu_);
    FileLock lock;
    PORTCULLIS_RETURN_IF_ERROR(FileLock::Acquire(lock_fd_.get(), path_, &lock));
    const FileKind kind = env_->KindOf(path_);
    if (kind == FileKind::kMissing) {
      if (!options.create_if_missing)
        return Status::NotFound(path_ + ": no keyring (create it with vault init)");
      if (options.keyring_opslimit < crypto_pwhash_OPSLIMIT_MIN ||
          options.keyring_opslimit > kMaxOpslimit ||
          options.keyring_memlimit < crypto_pwhash_MEMLIMIT_MIN ||
          options.keyring_memlimit > kMaxMemlimit) {
        return Status::InvalidArgument("keyring Argon2id cost out of range");
      }
      params_.opslimit = options.keyring_opslimit;
      params_.memlimit = options.keyring_memlimit;
      randombytes_buf(params_.salt, kSaltBytes);
      PORTCULLIS_RETURN_IF_ERROR(Derive(&params_, &file_key_));
      return Persist();
    }
    if (kind != FileKind::kRegular) return Status::IOError(path_ + ": not a regular file");
    return Load();
  }

  [[nodiscard]] std::string Describe() const override { return "keyring:" + path_; }

  Status EnsureKek(const std::string& kek_id) override {
    PORTCULLIS_RETURN_IF_ERROR(ValidateKekId(kek_id));
    std::lock_guard<std::mutex> guard(mu_);
    PORTCULLIS_RETURN_IF_ERROR(Refresh());
    if (keks_.count(kek_id) != 0) return Status::Ok();
    FileLock lock;
    PORTCULLIS_RETURN_IF_ERROR(FileLock::Acquire(lock_fd_.get(), path_, &lock));
    PORTCULLIS_RETURN_IF_ERROR(Refresh());  // another process may have changed it meanwhile
    if (keks_.count(kek_id) != 0) return Status::Ok();
    keks_.emplace(kek_id, SecretBytes::Random(kKekBytes));
    Status s = Persist();
    if (!s.ok()) {
      keks_.erase(kek_id);
      loaded_ = {};  // re-read the file next time: it is the truth
    }
    return s;
  }

  Status WrapKey(const std::string& kek_id, const SecretBytes& data_key,
                 std::string* wrapped) override {
    wrapped->clear();
    if (data_key.size() != kKekBytes) return Status::InvalidArgument("data key must be 32 bytes");
    std::lock_guard<std::mutex> guard(mu_);
    PORTCULLIS_RETURN_IF_ERROR(Refresh());
    auto it = keks_.find(kek_id);
    if (it == keks_.end()) return Status::NotFound("no KEK '" + kek_id + "' in " + Describe());
    wrapped->resize(kKeyringWrappedBytes);
    auto* out = reinterpret_cast<unsigned char*>(wrapped->data());
    out[0] = kWrapVersion;
    randombytes_buf(out + 1, kNonceBytes);
    const std::string ad = WrapAd(kek_id);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + 1 + kNonceBytes, nullptr, data_key.data(),
                                               data_key.size(),
                                               reinterpret_cast<const unsigned char*>(ad.data()),
                                               ad.size(), nullptr, out + 1, it->second.data());
    return Status::Ok();
  }

  Status UnwrapKey(const std::string& kek_id, std::string_view wrapped,
                   SecretBytes* data_key) override {
    if (wrapped.size() != kKeyringWrappedBytes) {
      return Status::Corruption("wrapped key has " + std::to_string(wrapped.size()) +
                                " bytes, expected " + std::to_string(kKeyringWrappedBytes));
    }
    const auto* in = reinterpret_cast<const unsigned char*>(wrapped.data());
    if (in[0] != kWrapVersion)
      return Status::Corruption("wrapped key is not a keyring-wrapped key");
    std::lock_guard<std::mutex> guard(mu_);
    PORTCULLIS_RETURN_IF_ERROR(Refresh());
    auto it = keks_.find(kek_id);
    if (it == keks_.end()) return Status::NotFound("no KEK '" + kek_id + "' in " + Describe());
    // Decrypts straight into the caller's buffer when it has the right size (the envelope reuses
    // one per thread), so an unwrap costs no sodium_malloc.
    if (data_key->size() != kKekBytes) *data_key = SecretBytes(kKekBytes);
    const std::string ad = WrapAd(kek_id);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            data_key->data(), nullptr, nullptr, in + 1 + kNonceBytes, kKekBytes + kTagBytes,
            reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), in + 1,
            it->second.data()) != 0) {
      *data_key = SecretBytes();
      return Status::Corruption("wrapped key does not authenticate under KEK '" + kek_id + "'");
    }
    return Status::Ok();
  }

  Status DestroyKek(const std::string& kek_id) override {
    std::lock_guard<std::mutex> guard(mu_);
    FileLock lock;
    PORTCULLIS_RETURN_IF_ERROR(FileLock::Acquire(lock_fd_.get(), path_, &lock));
    PORTCULLIS_RETURN_IF_ERROR(Refresh());
    auto node = keks_.extract(kek_id);
    if (node.empty()) return Status::NotFound("no KEK '" + kek_id + "' in " + Describe());
    Status s = Persist();
    if (!s.ok()) {
      keks_.insert(std::move(node));
      loaded_ = {};
    }
    return s;  // `node` (the KEK) is wiped here by sodium_free
  }

  Status ListKeks(std::vector<std::string>* kek_ids) override {
    kek_ids->clear();
    std::lock_guard<std::mutex> guard(mu_);
    PORTCULLIS_RETURN_IF_ERROR(Refresh());
    for (const auto& kv : keks_) kek_ids->push_back(kv.first);
    return Status::Ok();
  }

 private:
  static std::string WrapAd(const std::string& kek_id) {
    std::string ad(1, static_cast<char>(kWrapVersion));
    ad += kek_id;
    return ad;
  }

  Status Derive(KdfParams* params, SecretBytes* key) const {
    SecretBytes out(64);
    if (crypto_pwhash(out.data(), out.size(), reinterpret_cast<const char*>(passphrase_.data()),
                      passphrase_.size(), params->salt, params->opslimit,
                      static_cast<std::size_t>(params->memlimit),
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
      return Status::ResourceExhausted("Argon2id: not enough memory for the keyring's cost");
    }
    crypto_generichash(params->check, kCheckBytes, out.data() + 32, 32, nullptr, 0);
    SecretBytes k(32);
    std::memcpy(k.data(), out.data(), 32);
    *key = std::move(k);
    return Status::Ok();
  }

  // Reloads when the file on disk is no longer the one we loaded (another process changed it).
  Status Refresh() {
    if (Identify(path_) == loaded_) return Status::Ok();
    return Load();
  }

  Status Load() {
    const FileIdentity before = Identify(path_);
    std::string file;
    Status s = env_->ReadFile(path_, kMaxKeyringBytes, &file);
    if (!s.ok())
      return s.code() == Status::Code::kResourceExhausted ? Status::Corruption(s.message()) : s;
    if (file.size() < kHeaderBytes + kTagBytes + 4) {
      return Status::Corruption(path_ + ": keyring truncated (" + std::to_string(file.size()) +
                                " bytes)");
    }
    const auto* p = reinterpret_cast<const unsigned char*>(file.data());
    if (std::memcmp(p, kMagic, 4) != 0)
      return Status::Corruption(path_ + ": not a Portcullis keyring");
    if (p[4] != kFileVersion || p[5] != kKdfArgon2id13 || p[6] != 0 || p[7] != 0) {
      return Status::Corruption(path_ + ": unknown keyring version or KDF");
    }
    KdfParams params;
    params.opslimit = GetLe(p + 8, 4);
    params.memlimit = GetLe(p + 12, 8);
    std::memcpy(params.salt, p + 20, kSaltBytes);
    const unsigned char* check = p + 20 + kSaltBytes;
    const unsigned char* nonce = check + kCheckBytes;
    if (params.opslimit < crypto_pwhash_OPSLIMIT_MIN || params.opslimit > kMaxOpslimit ||
        params.memlimit < crypto_pwhash_MEMLIMIT_MIN || params.memlimit > kMaxMemlimit) {
      return Status::Corruption(path_ + ": keyring header has an out-of-range Argon2id cost");
    }
    if (file_key_.empty() || !params.SameDerivation(params_)) {
      SecretBytes key;
      PORTCULLIS_RETURN_IF_ERROR(Derive(&params, &key));
      if (sodium_memcmp(params.check, check, kCheckBytes) != 0) return WrongPassphrase();
      params_ = params;
      file_key_ = std::move(key);
    } else if (sodium_memcmp(params_.check, check, kCheckBytes) != 0) {
      return WrongPassphrase();
    }
    const std::size_t body_size = file.size() - kHeaderBytes - kTagBytes;
    SecretBytes body(body_size);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(body.data(), nullptr, nullptr, p + kHeaderBytes,
                                                   body_size + kTagBytes, p, kHeaderBytes, nonce,
                                                   file_key_.data()) != 0) {
      return Status::Corruption(path_ + ": keyring does not authenticate (damaged file)");
    }
    std::map<std::string, SecretBytes> keks;
    PORTCULLIS_RETURN_IF_ERROR(ParseBody(body, &keks));
    keks_ = std::move(keks);
    loaded_ = before;
    return Status::Ok();
  }

  Status ParseBody(const SecretBytes& body, std::map<std::string, SecretBytes>* keks) const {
    const unsigned char* p = body.data();
    std::size_t left = body.size();
    auto bad = [this] { return Status::Corruption(path_ + ": keyring body malformed"); };
    if (left < 4) return bad();
    const std::uint64_t count = GetLe(p, 4);
    p += 4;
    left -= 4;
    for (std::uint64_t i = 0; i < count; ++i) {
      if (left < 2) return bad();
      const auto id_len = static_cast<std::size_t>(GetLe(p, 2));
      p += 2;
      left -= 2;
      if (left < id_len + kKekBytes) return bad();
      std::string id(reinterpret_cast<const char*>(p), id_len);
      SecretBytes kek(kKekBytes);
      std::memcpy(kek.data(), p + id_len, kKekBytes);
      p += id_len + kKekBytes;
      left -= id_len + kKekBytes;
      if (!keks->emplace(std::move(id), std::move(kek)).second) return bad();
    }
    if (left != 0) return bad();
    return Status::Ok();
  }

  // Rewrites the whole file atomically, then overwrites the replaced file's blocks through a
  // descriptor opened before the rename, so that the old contents (with a destroyed KEK) do not
  // linger in the freed inode. Limits (journal, SSD remapping, snapshots): docs/vault-keys.md.
  Status Persist() {
    std::size_t body_size = 4;
    for (const auto& kv : keks_) body_size += 2 + kv.first.size() + kKekBytes;
    SecretBytes body(body_size);
    unsigned char* w = body.data();
    auto put = [&w](std::uint64_t v, int bytes) {
      for (int i = 0; i < bytes; ++i) *w++ = static_cast<unsigned char>((v >> (8 * i)) & 0xff);
    };
    put(keks_.size(), 4);
    for (const auto& kv : keks_) {
      put(kv.first.size(), 2);
      std::copy(kv.first.begin(), kv.first.end(), w);
      w += kv.first.size();
      std::memcpy(w, kv.second.data(), kKekBytes);
      w += kKekBytes;
    }
    std::string file(kMagic, 4);
    file.push_back(static_cast<char>(kFileVersion));
    file.push_back(static_cast<char>(kKdfArgon2id13));
    PutLe(&file, 0, 2);
    PutLe(&file, params_.opslimit, 4);
    PutLe(&file, params_.memlimit, 8);
    file.append(reinterpret_cast<const char*>(params_.salt), kSaltBytes);
    file.append(reinterpret_cast<const char*>(params_.check), kCheckBytes);
    unsigned char nonce[kNonceBytes];
    randombytes_buf(nonce, kNonceBytes);
    file.append(reinterpret_cast<const char*>(nonce), kNonceBytes);
    file.resize(kHeaderBytes + body_size + kTagBytes);
    auto* f = reinterpret_cast<unsigned char*>(file.data());
    crypto_aead_xchacha20poly1305_ietf_encrypt(f + kHeaderBytes, nullptr, body.data(), body_size, f,
                                               kHeaderBytes, nullptr, nonce, file_key_.data());

    Fd old(::open(path_.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    PORTCULLIS_RETURN_IF_ERROR(env_->WriteFileAtomic(path_, file));
    // Env writes with the process umask; the keyring is for its owner only (its contents are
    // sealed by the passphrase, so the moment before this chmod exposes only ciphertext).
    ::chmod(path_.c_str(), 0600);
    loaded_ = Identify(path_);
    if (old.get() >= 0) ShredReplaced(old.get());
    return Status::Ok();
  }

  // Best effort: the new keyring is already in place, so a failure here loses nothing.
  static void ShredReplaced(int fd) {
    // Whatever names still point at the old inode (a hard link someone made) are overwritten too:
    // the point is that the destroyed KEK exists nowhere on this file system any more.
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
    unsigned char noise[4096];
    off_t offset = 0;
    while (offset < st.st_size) {
      const auto n = static_cast<std::size_t>(std::min<off_t>(st.st_size - offset, sizeof(noise)));
      randombytes_buf(noise, n);
      const ssize_t wrote = ::pwrite(fd, noise, n, offset);
      if (wrote <= 0) {
        if (wrote < 0 && errno == EINTR) continue;
        return;
      }
      offset += wrote;
    }
    ::fdatasync(fd);
  }

  std::mutex mu_;
  Env* env_;
  std::string path_;
  SecretBytes passphrase_;
  Fd lock_fd_;
  KdfParams params_;
  SecretBytes file_key_;
  std::map<std::string, SecretBytes> keks_;
  FileIdentity loaded_;
};

}  // namespace

Status OpenKeyringProvider(const std::string& path, const std::string& passphrase,
                           const KeyProviderOptions& options,
                           std::unique_ptr<KeyProvider>* provider) {
  provider->reset();
  PORTCULLIS_RETURN_IF_ERROR(EnsureSodium());
  if (path.empty()) return Status::InvalidArgument("keyring: empty path");
  if (passphrase.empty()) return Status::InvalidArgument("keyring: empty passphrase");
  Env* env = options.env != nullptr ? options.env : Env::Default();
  // The lock lives in a sibling file: the keyring itself is replaced on every write, so a lock on
  // it would be a lock on an inode that is about to disappear.
  const std::string lock_path = path + ".lock";
  Fd lock_fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (lock_fd.get() < 0) {
    const int err = errno;
    std::string msg = lock_path + ": " + std::strerror(err);
    if (err == ENOENT) return Status::NotFound(msg);
    return Status::IOError(msg);
  }
  auto keyring = std::make_unique<KeyringProvider>(env, path, passphrase, std::move(lock_fd));
  PORTCULLIS_RETURN_IF_ERROR(keyring->Init(options));
  *provider = std::move(keyring);
  return Status::Ok();
}

}  // namespace portcullis::vault
