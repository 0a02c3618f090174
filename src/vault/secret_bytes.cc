// SecretBytes on libsodium's guarded heap, and the once-per-process libsodium initialisation.
#include <sodium.h>

#include <mutex>
#include <new>
#include <utility>

#include "portcullis/key_provider.h"

namespace portcullis::vault {

Status EnsureSodium() {
  // sodium_init is itself idempotent, but its first call must not race with another thread's use
  // of the library, so every entry point funnels through this once.
  static const int rc = sodium_init();
  if (rc < 0) return Status::Internal("libsodium failed to initialise (no entropy source?)");
  return Status::Ok();
}

SecretBytes::SecretBytes(std::size_t size) {
  if (size == 0) return;
  if (!EnsureSodium().ok()) throw std::bad_alloc();
  // sodium_malloc: guard pages, mlock (best effort), canary; sodium_free wipes before unmapping.
  data_ = static_cast<unsigned char*>(sodium_malloc(size));
  if (data_ == nullptr) throw std::bad_alloc();
  size_ = size;
}

SecretBytes::~SecretBytes() {
  if (data_ != nullptr) sodium_free(data_);
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) sodium_free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBytes SecretBytes::Random(std::size_t size) {
  SecretBytes out(size);
  if (size > 0) randombytes_buf(out.data(), size);
  return out;
}

bool SecretBytes::Equals(const SecretBytes& other) const {
  if (size_ != other.size_) return false;
  if (size_ == 0) return true;
  return sodium_memcmp(data_, other.data_, size_) == 0;
}

}  // namespace portcullis::vault
