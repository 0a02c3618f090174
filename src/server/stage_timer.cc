#include "server/stage_timer.h"

#include <algorithm>

namespace portcullis::server {

namespace {
thread_local StageTimes* current_stage_times = nullptr;
thread_local const StageTimer* innermost_timer = nullptr;
}  // namespace

void StageTimes::Add(std::string_view stage, double ms) {
  const auto it = std::find_if(entries_.begin(), entries_.end(),
                               [&](const auto& entry) { return entry.first == stage; });
  if (it != entries_.end()) {
    it->second += ms;
  } else {
    entries_.emplace_back(std::string(stage), ms);
  }
}

StageTimes* CurrentStageTimes() { return current_stage_times; }

ScopedStageTimes::ScopedStageTimes(StageTimes* times) : previous_(current_stage_times) {
  current_stage_times = times;
}

ScopedStageTimes::~ScopedStageTimes() { current_stage_times = previous_; }

StageTimer::StageTimer(std::string_view stage)
    : times_(current_stage_times), parent_(innermost_timer) {
  if (times_ == nullptr) return;  // outside a request: costs a thread-local read
  name_ = parent_ != nullptr ? parent_->name_ + "/" + std::string(stage) : std::string(stage);
  innermost_timer = this;
  start_ = std::chrono::steady_clock::now();
}

StageTimer::~StageTimer() {
  if (times_ == nullptr) return;
  times_->Add(
      name_,
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count());
  innermost_timer = parent_;
}

}  // namespace portcullis::server
