// Scheduler: the per-model queue and dynamic batcher. Requests from any transport are queued;
// each model instance has one worker thread that merges waiting requests into one backend
// call (up to max_batch_size observations), runs it and completes every request with its own
// rows. An idle instance takes a lone request at once: when the queue is empty and an
// instance is free, the request runs on the submitting thread with no hand-off at all.
// Batching waits (max_queue_delay_us) only under load, i.e. when the previous batch merged
// several requests, and only until the smallest preferred size is reached.
// Results are identical to unbatched execution: rows are independent in every backend.
// Thread-safe: Submit may be called from any number of threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "common/result.h"
#include "engine/infer_request.h"
#include "telemetry/server_metrics.h"

namespace brainstem {

struct SchedulerOptions {
  int64_t max_batch_size = 64;                 // observations per backend call when merging
  std::vector<int64_t> preferred_batch_sizes;  // sorted ascending; empty = none
  int64_t max_queue_delay_us = 200;
  int64_t queue_capacity = 1024;  // waiting requests
  bool inline_when_idle = true;
};

class Scheduler {
 public:
  // Takes ownership of the instances (at least one, all with the same widths) and starts one
  // worker thread per instance. `metrics` must outlive the scheduler.
  static Result<std::unique_ptr<Scheduler>> Create(SchedulerOptions options,
                                                   std::vector<std::unique_ptr<Backend>> instances,
                                                   ServerMetrics* metrics);
  ~Scheduler();  // Stops the workers; queued requests complete with kUnavailable.

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Accepts the request or refuses it. On OK the scheduler owns it and calls request->done
  // exactly once (possibly before Submit returns, on this thread). On error `done` is never
  // called and the caller answers: kUnavailable (queue full or shutting down: retryable),
  // kInvalidArgument (row count or input size wrong), kDeadlineExceeded (already expired).
  Status Submit(std::unique_ptr<InferRequest> request);

  // Submits several requests at once (a transport that found them together, e.g. the shm
  // thread's polling pass over every client). With an instance idle and nothing queued they run
  // here, merged into as few backend calls as max_batch_size allows, instead of one call each;
  // otherwise they are queued. Returns one status per request, in order, with Submit's meaning:
  // a refused request is destroyed without its `done` being called.
  std::vector<Status> SubmitMany(std::vector<std::unique_ptr<InferRequest>> requests);

  int64_t input_width() const { return input_width_; }
  int64_t output_width() const { return output_width_; }
  int instance_count() const { return static_cast<int>(instances_.size()); }
  const Backend& instance(int i) const { return *instances_[static_cast<size_t>(i)]->backend; }

 private:
  struct Instance {
    std::unique_ptr<Backend> backend;
    std::mutex run_mu;               // held while the backend runs (worker or inline caller)
    std::vector<float> inputs;       // merged rows; guarded by run_mu
    std::vector<float> outputs;      // guarded by run_mu
    bool last_batch_merged = false;  // worker-local
  };

  Scheduler(SchedulerOptions options, std::vector<std::unique_ptr<Backend>> instances,
            ServerMetrics* metrics);
  // Submit's checks (rows, input size, deadline); stamps `submitted`.
  Status Admit(InferRequest& request, TimePoint now) const;
  // Queues `request` for the workers. Errors: kUnavailable (full or stopping).
  Status Enqueue(std::unique_ptr<InferRequest> request);
  // An idle instance (run_mu now held by the caller), or nullptr. Only when inline execution
  // is allowed and nothing is queued.
  Instance* TryIdleInstance();
  void WorkerLoop(Instance* instance);
  // Runs `batch` on `instance` (REQUIRES: instance->run_mu held) and completes each request.
  void RunBatch(Instance* instance, std::span<std::unique_ptr<InferRequest>> batch);
  // Moves queued requests into `batch` while they fit in max_batch_size rows (the first one
  // always fits); expired ones go to `expired`. REQUIRES: mu_ held.
  void TakeQueued(std::vector<std::unique_ptr<InferRequest>>* batch, int64_t* rows,
                  std::vector<std::unique_ptr<InferRequest>>* expired);
  void CompleteWithError(std::vector<std::unique_ptr<InferRequest>>& requests,
                         const Status& status);
  int64_t TargetBatchSize(int64_t current) const;

  const SchedulerOptions options_;
  const int64_t input_width_;
  const int64_t output_width_;
  ServerMetrics* const metrics_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::vector<std::thread> workers_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<InferRequest>> queue_;  // guarded by mu_
  bool stopping_ = false;                            // guarded by mu_
  std::atomic<int64_t> queued_{0};  // mirrors queue_.size() for the lock-free idle check
};

}  // namespace brainstem
