// Per-request stage timings (stage_timer.h): nesting names, accumulation, and nothing recorded
// outside a request.
#include "server/stage_timer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

namespace portcullis::server {
namespace {

double Get(const StageTimes& times, const std::string& stage) {
  for (const auto& [name, ms] : times.entries()) {
    if (name == stage) return ms;
  }
  return -1;
}

TEST(StageTimerTest, NestedTimersAreNamedOuterSlashInnerAndOuterIncludesInner) {
  StageTimes times;
  {
    const ScopedStageTimes scoped(&times);
    const StageTimer outer("vault_put");
    {
      const StageTimer inner("audit_append");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ASSERT_EQ(times.entries().size(), 2u);
  const double inner = Get(times, "vault_put/audit_append");
  const double outer = Get(times, "vault_put");
  EXPECT_GE(inner, 4.0);
  EXPECT_GE(outer, inner);
  EXPECT_EQ(CurrentStageTimes(), nullptr);  // restored when the scope ended
}

TEST(StageTimerTest, RepeatedStagesAccumulateAndSiblingsStayFlat) {
  StageTimes times;
  const ScopedStageTimes scoped(&times);
  for (int i = 0; i < 3; ++i) {
    const StageTimer timer("engine");
  }
  { const StageTimer timer("vault_put"); }
  times.Add("engine", 10.0);
  ASSERT_EQ(times.entries().size(), 2u);
  EXPECT_EQ(times.entries()[0].first, "engine");
  EXPECT_GE(Get(times, "engine"), 10.0);
  EXPECT_EQ(times.entries()[1].first, "vault_put");  // not "engine/vault_put"
}

TEST(StageTimerTest, OutsideARequestNothingIsRecordedAndOtherThreadsAreUnaffected) {
  { const StageTimer timer("engine"); }  // no StageTimes installed: a no-op
  StageTimes times;
  const ScopedStageTimes scoped(&times);
  std::thread other([] {
    EXPECT_EQ(CurrentStageTimes(), nullptr);  // per thread
    const StageTimer timer("elsewhere");
  });
  other.join();
  EXPECT_TRUE(times.empty());
}

}  // namespace
}  // namespace portcullis::server
