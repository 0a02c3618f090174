// The BLAS library's thread count, for the engines whose arithmetic runs through it (the face
// network, the plate detector's convolutions). Looked up at run time: libblas.so.3 may be OpenBLAS
// (scripts/install.sh pins it) or the reference BLAS, which has no threads and no such knob.
// Callers link ${CMAKE_DL_LIBS}.
#pragma once

#include <dlfcn.h>

#include <cstring>

namespace portcullis {

// Sets OpenBLAS's thread count (process-wide); false when the BLAS in use is not OpenBLAS.
inline bool SetOpenBlasThreads(int threads) {
  using SetThreads = void (*)(int);
  void* symbol = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
  if (symbol == nullptr) return false;
  SetThreads set = nullptr;
  static_assert(sizeof(set) == sizeof(symbol));
  std::memcpy(&set, &symbol, sizeof(set));
  set(threads);
  return true;
}

}  // namespace portcullis
