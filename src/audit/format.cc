// Record frames, leaf and tree-head encodings, key files and file helpers.
#include "audit/format.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace portcullis::audit {
namespace internal {
namespace {

// CRC-32C (Castagnoli), reflected, table-driven: detects torn and bit-flipped frames. It is not
// a defence against an attacker (the Merkle tree and the signatures are); it tells a crash from
// a record.
struct CrcTable {
  std::array<std::uint32_t, 256> t{};
  CrcTable() {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? (c >> 1) ^ 0x82F63B78U : c >> 1;
      t[i] = c;
    }
  }
};

std::uint32_t GetU32Le(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

void PutU32Le(std::uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFFU));
}

bool AllZero(std::string_view s) {
  for (char c : s) {
    if (c != 0) return false;
  }
  return true;
}

}  // namespace

constexpr char kSthContext[] = "portcullis-audit-sth-v1";
constexpr char kRecordContext[] = "portcullis-record-v1:";
constexpr std::size_t kMaxField = 65535;

inline void PutString(std::string_view s, std::string* out) {
  out->push_back(static_cast<char>((s.size() >> 8) & 0xFFU));
  out->push_back(static_cast<char>(s.size() & 0xFFU));
  out->append(s);
}

inline bool GetString(std::string_view* in, std::string* s) {
  if (in->size() < 2) return false;
  const std::size_t n = (static_cast<std::size_t>(static_cast<std::uint8_t>((*in)[0])) << 8) |
                        static_cast<std::uint8_t>((*in)[1]);
  if (in->size() < 2 + n) return false;
  s->assign(in->substr(2, n));
  in->remove_prefix(2 + n);
  return true;
}

namespace {

Status ReadHexKeyFile(const std::string& path, std::uint8_t* out, std::size_t size) {
  std::string text;
  PORTCULLIS_RETURN_IF_ERROR(ReadWholeFile(path, &text));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  if (!HexToBytes(text, out, size)) {
    return Status::Corruption(path + ": not a " + std::to_string(size) + "-byte hex key");
  }
  return Status::Ok();
}

// O_EXCL so that keygen never overwrites a key (a lost signing key breaks every later audit).
Status WriteNewFile(const std::string& path, const std::string& contents, mode_t mode) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (fd.get() < 0) {
    if (errno == EEXIST) return Status::InvalidArgument(path + ": already exists; not replaced");
    return ErrnoStatus(path, "create", errno);
  }
  // The umask may have widened nothing but can have narrowed the public key; set it exactly.
  if (::fchmod(fd.get(), mode) != 0) return ErrnoStatus(path, "chmod", errno);
  PORTCULLIS_RETURN_IF_ERROR(PWriteAll(fd.get(), path, contents, 0));
  return SyncFd(fd.get(), path);
}

}  // namespace

std::uint32_t Crc32c(std::string_view data) {
  static const CrcTable table;
  std::uint32_t c = 0xFFFFFFFFU;
  for (char ch : data) c = table.t[(c ^ static_cast<std::uint8_t>(ch)) & 0xFFU] ^ (c >> 8);
  return c ^ 0xFFFFFFFFU;
}

void AppendFrame(std::string_view payload, std::string* out) {
  PutU32Le(static_cast<std::uint32_t>(payload.size()), out);
  PutU32Le(Crc32c(payload), out);
  out->append(payload);
}

Status ScanFrames(std::string_view contents, std::string_view magic, std::uint32_t max_payload,
                  FrameScan* scan) {
  *scan = FrameScan{};
  if (contents.size() < kHeaderSize) {
    // A crash can leave a file created but its magic unwritten; nothing was ever acknowledged.
    if (AllZero(contents) || magic.substr(0, contents.size()) == contents) {
      scan->tail = contents.empty() ? TailState::kClean : TailState::kTorn;
      scan->problem = "incomplete file header";
      return Status::Ok();
    }
    return Status::Corruption("bad file header");
  }
  if (contents.substr(0, kHeaderSize) != magic) {
    return Status::Corruption("bad file header (expected " + std::string(magic) + ")");
  }
  std::uint64_t offset = kHeaderSize;
  scan->valid_end = offset;
  while (offset < contents.size()) {
    const std::uint64_t remaining = contents.size() - offset;
    std::string problem;
    bool torn = true;  // a crash leaves only the end of a file incomplete (or zero-filled)
    if (remaining < kFrameHeader) {
      problem = "incomplete frame header";
    } else {
      const std::uint32_t len = GetU32Le(contents.data() + offset);
      const std::uint32_t crc = GetU32Le(contents.data() + offset + 4);
      if (len == 0 || len > max_payload) {
        problem = "bad frame length " + std::to_string(len);
        torn = AllZero(contents.substr(offset));
      } else if (remaining < kFrameHeader + len) {
        problem = "frame runs past the end of the file";
      } else {
        const std::uint64_t frame_end = offset + kFrameHeader + len;
        if (Crc32c(contents.substr(offset + kFrameHeader, len)) != crc) {
          problem = "frame checksum mismatch";
          torn = AllZero(contents.substr(frame_end));
        } else {
          scan->offsets.push_back(offset);
          scan->lengths.push_back(len);
          offset = frame_end;
          scan->valid_end = offset;
          continue;
        }
      }
    }
    scan->tail = torn ? TailState::kTorn : TailState::kCorrupt;
    scan->problem = problem + " at record " + std::to_string(scan->offsets.size());
    return Status::Ok();
  }
  return Status::Ok();
}

std::string EncodeTreeHead(const SignedTreeHead& sth) {
  std::string out;
  out.push_back(1);
  PutU64(sth.tree_size, &out);
  PutU64(static_cast<std::uint64_t>(sth.timestamp_micros), &out);
  out.append(reinterpret_cast<const char*>(sth.root_hash.data()), sth.root_hash.size());
  out.append(reinterpret_cast<const char*>(sth.signature.data()), sth.signature.size());
  return out;
}

Status DecodeTreeHead(std::string_view payload, SignedTreeHead* sth) {
  if (payload.size() != kSthPayload || payload[0] != 1) {
    return Status::Corruption("tree head record of unknown version or size");
  }
  sth->tree_size = GetU64(payload.data() + 1);
  sth->timestamp_micros = static_cast<std::int64_t>(GetU64(payload.data() + 9));
  std::memcpy(sth->root_hash.data(), payload.data() + 17, 32);
  std::memcpy(sth->signature.data(), payload.data() + 49, 64);
  return Status::Ok();
}

Status SignTreeHead(const LogKeys& keys, SignedTreeHead* sth) {
  const std::string msg = TreeHeadSignedBytes(*sth);
  if (crypto_sign_detached(sth->signature.data(), nullptr,
                           reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                           keys.signing_key.data()) != 0) {
    return Status::Internal("Ed25519 signing failed");
  }
  return Status::Ok();
}

std::string BytesToHex(const std::uint8_t* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xFU];
  }
  return out;
}

bool HexToBytes(std::string_view hex, std::uint8_t* out, std::size_t size) {
  if (hex.size() != 2 * size) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < size; ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return true;
}

void PutU64(std::uint64_t v, std::string* out) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFFU));
}

std::uint64_t GetU64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

Status ErrnoStatus(const std::string& path, const char* what, int err) {
  std::string msg = path + ": " + what + ": " + std::strerror(err);
  if (err == ENOENT) return Status::NotFound(msg);
  return Status::IOError(msg);
}

Status ReadWholeFile(const std::string& path, std::string* contents) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(path, "open", errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(path, "stat", errno);
  if (!S_ISREG(st.st_mode)) return Status::IOError(path + ": not a regular file");
  contents->assign(static_cast<std::size_t>(st.st_size), '\0');
  return PReadAll(fd.get(), path, contents->data(), contents->size(), 0);
}

Status PWriteAll(int fd, const std::string& path, std::string_view data, std::uint64_t offset) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(path, "write", errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return Status::Ok();
}

Status PReadAll(int fd, const std::string& path, char* data, std::size_t size,
                std::uint64_t offset) {
  while (size > 0) {
    const ssize_t n = ::pread(fd, data, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(path, "read", errno);
    }
    if (n == 0) return Status::Corruption(path + ": shorter than expected");
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return Status::Ok();
}

Status SyncFd(int fd, const std::string& path) {
  if (::fdatasync(fd) != 0) return ErrnoStatus(path, "fsync", errno);
  return Status::Ok();
}

Status SyncDirectory(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(dir, "open directory", errno);
  // Some file systems cannot fsync a directory; the entries are then as durable as they get.
  if (::fsync(fd.get()) != 0 && errno != EINVAL && errno != ENOTSUP) {
    return ErrnoStatus(dir, "fsync directory", errno);
  }
  return Status::Ok();
}

}  // namespace internal

using internal::BytesToHex;
using internal::GetString;
using internal::HexToBytes;
using internal::kMaxField;
using internal::kRecordContext;
using internal::kSthContext;
using internal::PutString;

PublicKey LogKeys::public_key() const {
  PublicKey pk{};
  crypto_sign_ed25519_sk_to_pk(pk.data(), signing_key.data());
  return pk;
}

Status GenerateKeys(const std::string& key_dir) {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  if (::mkdir(key_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return internal::ErrnoStatus(key_dir, "mkdir", errno);
  }
  LogKeys keys;
  PublicKey pk{};
  crypto_sign_keypair(pk.data(), keys.signing_key.data());
  randombytes_buf(keys.id_key.data(), keys.id_key.size());
  const std::string sk_hex = BytesToHex(keys.signing_key.data(), keys.signing_key.size()) + "\n";
  const std::string id_hex = BytesToHex(keys.id_key.data(), keys.id_key.size()) + "\n";
  const std::string pk_hex = BytesToHex(pk.data(), pk.size()) + "\n";
  PORTCULLIS_RETURN_IF_ERROR(internal::WriteNewFile(key_dir + "/signing.key", sk_hex, 0600));
  PORTCULLIS_RETURN_IF_ERROR(internal::WriteNewFile(key_dir + "/id.key", id_hex, 0600));
  PORTCULLIS_RETURN_IF_ERROR(internal::WriteNewFile(key_dir + "/signing.pub", pk_hex, 0644));
  sodium_memzero(keys.signing_key.data(), keys.signing_key.size());
  return internal::SyncDirectory(key_dir);
}

Status LoadLogKeys(const std::string& key_dir, LogKeys* keys) {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  const std::string sk_path = key_dir + "/signing.key";
  PORTCULLIS_RETURN_IF_ERROR(
      internal::ReadHexKeyFile(sk_path, keys->signing_key.data(), keys->signing_key.size()));
  // A secret key that others can read is no longer secret: refuse it rather than sign with it.
  struct stat st {};
  if (::stat(sk_path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    return Status::InvalidArgument(sk_path + ": readable by others (chmod 600 it)");
  }
  // libsodium's sk carries its public key; a key file whose halves disagree is corrupt.
  std::array<std::uint8_t, 32> seed{};
  std::memcpy(seed.data(), keys->signing_key.data(), seed.size());
  PublicKey pk{};
  std::array<std::uint8_t, 64> sk{};
  crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data());
  const bool same = sodium_memcmp(sk.data(), keys->signing_key.data(), sk.size()) == 0;
  sodium_memzero(sk.data(), sk.size());
  sodium_memzero(seed.data(), seed.size());
  if (!same) return Status::Corruption(sk_path + ": not a valid Ed25519 secret key");
  return LoadIdKey(key_dir + "/id.key", &keys->id_key);
}

Status LoadPublicKey(const std::string& path, PublicKey* key) {
  return internal::ReadHexKeyFile(path, key->data(), key->size());
}

Status LoadIdKey(const std::string& path, IdKey* key) {
  return internal::ReadHexKeyFile(path, key->data(), key->size());
}

Hash RecordRef(const IdKey& id_key, std::string_view record_id) {
  std::string msg = kRecordContext;
  msg.append(record_id);
  Hash out{};
  crypto_auth_hmacsha256(out.data(), reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                         id_key.data());
  return out;
}

Status EncodeLeaf(const AuditEvent& event, const IdKey& id_key, std::string* leaf) {
  for (const std::string* f :
       {&event.principal, &event.role, &event.purpose, &event.action, &event.result}) {
    if (f->size() > kMaxField) return Status::InvalidArgument("audit event field over 64 KiB");
  }
  leaf->clear();
  leaf->push_back(1);  // version
  internal::PutU64(static_cast<std::uint64_t>(event.time_micros), leaf);
  PutString(event.principal, leaf);
  PutString(event.role, leaf);
  PutString(event.purpose, leaf);
  PutString(event.action, leaf);
  PutString(event.result, leaf);
  if (event.record_id.empty()) {
    leaf->push_back(0);
  } else {
    leaf->push_back(1);
    const Hash ref = RecordRef(id_key, event.record_id);
    leaf->append(reinterpret_cast<const char*>(ref.data()), ref.size());
  }
  return Status::Ok();
}

Status DecodeLeaf(std::string_view leaf, LeafRecord* record) {
  if (leaf.size() < 9 || leaf[0] != 1) return Status::Corruption("leaf of unknown version");
  record->version = 1;
  record->time_micros = static_cast<std::int64_t>(internal::GetU64(leaf.data() + 1));
  leaf.remove_prefix(9);
  for (std::string* f :
       {&record->principal, &record->role, &record->purpose, &record->action, &record->result}) {
    if (!GetString(&leaf, f)) return Status::Corruption("leaf field runs past the end");
  }
  if (leaf.empty()) return Status::Corruption("leaf lacks its record marker");
  const char kind = leaf[0];
  leaf.remove_prefix(1);
  if (kind == 0) {
    record->has_record = false;
  } else if (kind == 1 && leaf.size() >= 32) {
    record->has_record = true;
    std::memcpy(record->record_ref.data(), leaf.data(), 32);
    leaf.remove_prefix(32);
  } else {
    return Status::Corruption("leaf has a bad record reference");
  }
  if (!leaf.empty()) return Status::Corruption("leaf has trailing bytes");
  return Status::Ok();
}

std::string TreeHeadSignedBytes(const SignedTreeHead& sth) {
  std::string msg(kSthContext, sizeof(kSthContext));  // includes the terminating 0x00
  internal::PutU64(sth.tree_size, &msg);
  internal::PutU64(static_cast<std::uint64_t>(sth.timestamp_micros), &msg);
  msg.append(reinterpret_cast<const char*>(sth.root_hash.data()), sth.root_hash.size());
  return msg;
}

Status VerifyTreeHeadSignature(const SignedTreeHead& sth, const PublicKey& key) {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  const std::string msg = TreeHeadSignedBytes(sth);
  if (crypto_sign_verify_detached(sth.signature.data(),
                                  reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                                  key.data()) != 0) {
    return Status::Corruption("tree head signature does not verify");
  }
  return Status::Ok();
}

std::string HashToHex(const Hash& hash) { return BytesToHex(hash.data(), hash.size()); }

bool HashFromHex(std::string_view hex, Hash* hash) {
  return HexToBytes(hex, hash->data(), hash->size());
}

Status AppendWitness(const std::string& path, const SignedTreeHead& sth) {
  internal::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (fd.get() < 0) return internal::ErrnoStatus(path, "open", errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return internal::ErrnoStatus(path, "stat", errno);
  std::string text;
  if (st.st_size == 0) text = "# portcullis audit witness v1\n";
  text += std::to_string(sth.tree_size) + " " + std::to_string(sth.timestamp_micros) + " " +
          HashToHex(sth.root_hash) + " " + BytesToHex(sth.signature.data(), sth.signature.size()) +
          "\n";
  std::string_view rest = text;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd.get(), rest.data(), rest.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return internal::ErrnoStatus(path, "write", errno);
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  return internal::SyncFd(fd.get(), path);
}

Status ReadWitness(const std::string& path, std::vector<SignedTreeHead>* heads) {
  std::string text;
  PORTCULLIS_RETURN_IF_ERROR(internal::ReadWholeFile(path, &text));
  heads->clear();
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line_no == 1) {
      if (line != "# portcullis audit witness v1") {
        return Status::Corruption(path + ": not a portcullis witness file");
      }
      continue;
    }
    if (line.empty()) continue;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    char root_hex[65] = {};
    char sig_hex[129] = {};
    unsigned long long size = 0;  // NOLINT(google-runtime-int): sscanf's type
    long long ts = 0;             // NOLINT(google-runtime-int)
    int consumed = 0;
    if (std::sscanf(line.c_str(), "%llu %lld %64s %128s%n", &size, &ts, root_hex, sig_hex,
                    &consumed) != 4 ||
        static_cast<std::size_t>(consumed) != line.size()) {
      return Status::Corruption(where + "malformed witness line");
    }
    SignedTreeHead sth;
    sth.tree_size = size;
    sth.timestamp_micros = ts;
    if (!HashFromHex(root_hex, &sth.root_hash) ||
        !HexToBytes(sig_hex, sth.signature.data(), sth.signature.size())) {
      return Status::Corruption(where + "malformed hex in witness line");
    }
    heads->push_back(sth);
  }
  if (line_no == 0) return Status::Corruption(path + ": empty witness file");
  return Status::Ok();
}

}  // namespace portcullis::audit
