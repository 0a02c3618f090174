// The service's periodic jobs, run once across all nodes: the retention purge (once per purge
// period, default 1 h) and the publication of a fresh signed tree head (once per head period,
// default 5 min, so witnesses see the log move even when it is quiet). Every node runs a
// PeriodicJobs; for each period the nodes race to claim the run in the shared access store
// (AccessStore::ClaimJobRun), and only the winner does the work.
//
// Time comes from Env::NowMicros, and RunDue does one pass for "now", so a test moves a fake
// clock and calls RunDue instead of sleeping. Start() runs RunDue on a background thread every
// poll interval (real time) until Stop().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "portcullis/status.h"
#include "portcullis/vault.h"

namespace portcullis {
class Env;
namespace audit {
class TransparencyLog;
}  // namespace audit
namespace policy {
class AccessStore;
}  // namespace policy
}  // namespace portcullis

namespace portcullis::server {

struct ServiceContext;

struct PeriodicJobsOptions {
  std::int64_t purge_period_micros = 3'600'000'000;    // config "jobs.purge_period_s"
  std::int64_t tree_head_period_micros = 300'000'000;  // config "jobs.tree_head_period_s"
  std::chrono::milliseconds poll_interval{1000};       // how often the thread looks at the clock
};

// (job, period_start_micros, node, *claimed): the shared claim, AccessStore::ClaimJobRun.
using ClaimJobFn = std::function<Status(const std::string& job, std::int64_t period_start_micros,
                                        const std::string& node, bool* claimed)>;
ClaimJobFn ClaimWith(policy::AccessStore* store);

// What one pass did (for logs and tests).
struct JobPass {
  bool purge_claimed = false;      // this node won this period's purge claim
  bool purge_ran = false;          // ... and Vault::Purge returned OK
  vault::PurgeReport purge;        // what it destroyed
  bool head_claimed = false;       // this node published this period's tree head
  std::int64_t purge_period = -1;  // period start of the purge looked at (-1: none due)
  std::int64_t head_period = -1;
};

class PeriodicJobs {
 public:
  // vault / log may be null (that job is then skipped). node: this node's name; the purge runs
  // as principal "system:<node>", role "admin", purpose "scheduled retention purge".
  PeriodicJobs(Env* env, vault::Vault* vault, audit::TransparencyLog* log, ClaimJobFn claim,
               std::string node, PeriodicJobsOptions options = {});
  // From the service's context (env, vault, audit, access, node_name).
  PeriodicJobs(const ServiceContext& ctx, PeriodicJobsOptions options = {});
  ~PeriodicJobs();
  PeriodicJobs(const PeriodicJobs&) = delete;
  PeriodicJobs& operator=(const PeriodicJobs&) = delete;

  // One pass at Env::NowMicros(): for each job whose current period this node has not yet tried,
  // claim it and, if claimed, run it. A failed claim (database down) is retried on the next
  // pass; a run that fails after its claim is not retried in that period (another node cannot
  // take it either) and its error is returned.
  Status RunDue(JobPass* pass = nullptr);

  void Start();  // idempotent
  void Stop();   // idempotent; waits for a pass in progress
  // The error of the last background pass, if any (for /readyz-style reporting and logs).
  [[nodiscard]] Status last_error() const;

 private:
  Env* env_;
  vault::Vault* vault_;
  audit::TransparencyLog* log_;
  ClaimJobFn claim_;
  std::string node_;
  PeriodicJobsOptions options_;
  std::int64_t purge_tried_ = -1;  // the last period whose purge this node claimed or lost
  std::int64_t head_tried_ = -1;

  mutable std::mutex mu_;
  std::mutex pass_mu_;  // one pass at a time
  std::condition_variable cv_;
  bool stop_ = false;
  Status last_error_;
  std::thread thread_;
};

}  // namespace portcullis::server
