#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "common/blas_threads.h"

namespace portcullis {

const char* ChooseOpenBlasCore(const char* loaded_core, const char* user_choice, bool avx512,
                               bool avx2_fma) {
  if (loaded_core == nullptr || user_choice != nullptr) return nullptr;  // not ours to change
  if (std::strcmp(loaded_core, "Prescott") != 0) return nullptr;         // OpenBLAS knew the CPU
  if (avx512) return "SkylakeX";
  if (avx2_fma) return "Haswell";
  return nullptr;  // the generic kernels are right for this CPU
}

void ReexecWithKnownOpenBlasKernels(char** argv) {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  const bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const char* core =
      ChooseOpenBlasCore(OpenBlasCoreName(), std::getenv("OPENBLAS_CORETYPE"), avx512, avx2_fma);
  if (core == nullptr || argv == nullptr || argv[0] == nullptr) return;
  if (setenv("OPENBLAS_CORETYPE", core, /*overwrite=*/1) != 0) return;
  ::execv("/proc/self/exe", argv);
  // Only reached if the exec failed (no /proc, say): go on with the generic kernels. The
  // variable stays set, so a child process this one starts does not try again.
}

}  // namespace portcullis
