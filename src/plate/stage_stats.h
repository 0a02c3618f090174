// Per-thread counters of what the networks cost, for benchmarks and profiling: how many detector
// and recogniser runs an image took, at which sizes, and their thread-CPU time. The engine only
// adds to them (a clock read per network run, well under a microsecond against tens of
// milliseconds of inference); bench/alpr_eval resets them before each image and reads them after.
#pragma once

#include <map>

namespace portcullis::plate {

struct StageStats {
  int detector_runs = 0;
  double detector_cpu_ms = 0;  // network forward plus its input preparation
  int detector_input_width = 0, detector_input_height = 0;  // of the last detector run
  int recognizer_runs = 0;
  double recognizer_cpu_ms = 0;
  std::map<int, int> recognizer_widths;  // network input width -> runs

  void Reset() { *this = StageStats{}; }
};

// This thread's counters (the reader runs on its caller's thread).
StageStats& ThreadStageStats();

// Thread-CPU time in milliseconds (CLOCK_THREAD_CPUTIME_ID).
double ThreadCpuMs();

// Adds the thread-CPU time between construction and destruction to *total_ms.
class ScopedCpuTimer {
 public:
  explicit ScopedCpuTimer(double* total_ms) : total_ms_(total_ms), start_(ThreadCpuMs()) {}
  ~ScopedCpuTimer() { *total_ms_ += ThreadCpuMs() - start_; }
  ScopedCpuTimer(const ScopedCpuTimer&) = delete;
  ScopedCpuTimer& operator=(const ScopedCpuTimer&) = delete;

 private:
  double* total_ms_;
  double start_;
};

}  // namespace portcullis::plate
