// Run-once periodic jobs across nodes: the retention purge and tree-head publication.
#include "server/purge_job.h"

#include <utility>

#include "portcullis/access_store.h"
#include "portcullis/audit.h"
#include "portcullis/env.h"
#include "server/api.h"

namespace portcullis::server {
namespace {

constexpr char kPurgeJob[] = "retention.purge";
constexpr char kTreeHeadJob[] = "audit.tree_head";

// The start of the period holding `now` (floor, so a clock before 1970 still works).
std::int64_t PeriodStart(std::int64_t now, std::int64_t period) {
  std::int64_t rem = now % period;
  if (rem < 0) rem += period;
  return now - rem;
}

}  // namespace

ClaimJobFn ClaimWith(policy::AccessStore* store) {
  return
      [store](const std::string& job, std::int64_t period, const std::string& node, bool* claimed) {
        if (store == nullptr) return Status::InvalidArgument("no access store to claim jobs in");
        return store->ClaimJobRun(job, period, node, claimed);
      };
}

PeriodicJobs::PeriodicJobs(Env* env, vault::Vault* vault, audit::TransparencyLog* log,
                           ClaimJobFn claim, std::string node, PeriodicJobsOptions options)
    : env_(env != nullptr ? env : Env::Default()),
      vault_(vault),
      log_(log),
      claim_(std::move(claim)),
      node_(std::move(node)),
      options_(options) {
  // Periods <= 0 switch a job off (RunDue skips it); a poll interval must be positive.
  if (options_.poll_interval.count() <= 0) options_.poll_interval = std::chrono::milliseconds(1000);
}

PeriodicJobs::PeriodicJobs(const ServiceContext& ctx, PeriodicJobsOptions options)
    : PeriodicJobs(ctx.env, ctx.vault, ctx.audit, ClaimWith(ctx.access), ctx.node_name, options) {}

PeriodicJobs::~PeriodicJobs() { Stop(); }

Status PeriodicJobs::RunDue(JobPass* pass) {
  std::lock_guard<std::mutex> one_pass(pass_mu_);
  JobPass local;
  JobPass* p = pass != nullptr ? pass : &local;
  *p = JobPass{};
  const std::int64_t now = env_->NowMicros();
  Status first_error;

  if (vault_ != nullptr && options_.purge_period_micros > 0) {
    const std::int64_t period = PeriodStart(now, options_.purge_period_micros);
    if (period > purge_tried_) {
      p->purge_period = period;
      bool claimed = false;
      Status s = claim_(kPurgeJob, period, node_, &claimed);
      if (s.ok()) {
        purge_tried_ = period;  // won or lost, this period is settled for this node
        p->purge_claimed = claimed;
        if (claimed) {
          const vault::AccessContext ctx{"system:" + node_, "admin", "scheduled retention purge"};
          s = vault_->Purge(ctx, /*dry_run=*/false, &p->purge);
          p->purge_ran = s.ok();
        }
      }
      if (!s.ok() && first_error.ok()) first_error = s.WithContext("retention purge");
    }
  }

  if (log_ != nullptr && options_.tree_head_period_micros > 0) {
    const std::int64_t period = PeriodStart(now, options_.tree_head_period_micros);
    if (period > head_tried_) {
      p->head_period = period;
      bool claimed = false;
      Status s = claim_(kTreeHeadJob, period, node_, &claimed);
      if (s.ok()) {
        head_tried_ = period;
        if (claimed) {
          s = log_->PublishTreeHead(nullptr);
          p->head_claimed = s.ok();
        }
      }
      if (!s.ok() && first_error.ok()) first_error = s.WithContext("tree head publication");
    }
  }

  std::lock_guard<std::mutex> lock(mu_);
  last_error_ = first_error;
  return first_error;
}

void PeriodicJobs::Start() {
  std::lock_guard<std::mutex> guard(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      (void)RunDue(nullptr);  // the error is kept in last_error_
      lock.lock();
      cv_.wait_for(lock, options_.poll_interval, [this] { return stop_; });
    }
  });
}

void PeriodicJobs::Stop() {
  std::thread thread;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    thread = std::move(thread_);
  }
  cv_.notify_all();
  if (thread.joinable()) thread.join();
}

Status PeriodicJobs::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

}  // namespace portcullis::server
