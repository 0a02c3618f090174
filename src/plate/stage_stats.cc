#include "plate/stage_stats.h"

#include <time.h>

namespace portcullis::plate {

StageStats& ThreadStageStats() {
  thread_local StageStats stats;
  return stats;
}

double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace portcullis::plate
