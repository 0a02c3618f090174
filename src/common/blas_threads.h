// The BLAS library's thread count and kernel choice, for the engines whose arithmetic runs
// through it (the face network, the plate detector's convolutions). Looked up at run time:
// libblas.so.3 may be OpenBLAS (scripts/install.sh pins it) or the reference BLAS, which has no
// threads and no such knob. Callers link ${CMAKE_DL_LIBS}.
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

// The kernel set OpenBLAS chose when it loaded ("Haswell", "SkylakeX", ...; src/common/blas_core.cc
// explains how it is steered), or nullptr when the BLAS in use is not OpenBLAS.
inline const char* OpenBlasCoreName() {
  using CoreName = char* (*)();
  void* symbol = dlsym(RTLD_DEFAULT, "openblas_get_corename");
  if (symbol == nullptr) return nullptr;
  CoreName get = nullptr;
  static_assert(sizeof(get) == sizeof(symbol));
  std::memcpy(&get, &symbol, sizeof(get));
  return get();
}

// OpenBLAS (Debian 12: 0.3.21, DYNAMIC_ARCH) picks its kernels once, when it loads, from the CPU
// model. A CPU newer than the library is not in its table and gets the generic "Prescott" (SSE3)
// kernels: on the development VM (an AVX-512 Xeon, model 207) that made the face network 1.8x and
// the plate reader 1.3x slower (docs/benchmarks.md). The choice can only be steered by
// OPENBLAS_CORETYPE before the library loads, so when it fell back, this re-executes the program
// (/proc/self/exe, same argv) with OPENBLAS_CORETYPE set from the CPU's features. Call it first
// thing in main(). Nothing happens when OpenBLAS knew the CPU, when the user set
// OPENBLAS_CORETYPE, or when the BLAS is not OpenBLAS; if the exec fails it returns.
void ReexecWithKnownOpenBlasKernels(char** argv);
// The decision, apart from the process (tests): the kernel set to ask for, or nullptr to leave
// OpenBLAS's choice alone.
const char* ChooseOpenBlasCore(const char* loaded_core, const char* user_choice, bool avx512,
                               bool avx2_fma);

}  // namespace portcullis
