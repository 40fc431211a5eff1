#include "engine/scheduler.h"

#include <pthread.h>

#include <algorithm>
#include <string>

namespace brainstem {

Result<std::unique_ptr<Scheduler>> Scheduler::Create(
    SchedulerOptions options, std::vector<std::unique_ptr<Backend>> instances,
    ServerMetrics* metrics) {
  if (instances.empty()) return InvalidArgumentError("scheduler needs at least one instance");
  for (const auto& instance : instances) {
    if (instance->input_width() != instances[0]->input_width() ||
        instance->output_width() != instances[0]->output_width()) {
      return InvalidArgumentError("scheduler instances disagree on input/output widths");
    }
  }
  if (options.max_batch_size < 1) return InvalidArgumentError("max_batch_size must be >= 1");
  if (options.queue_capacity < 1) return InvalidArgumentError("queue_capacity must be >= 1");
  std::sort(options.preferred_batch_sizes.begin(), options.preferred_batch_sizes.end());
  return std::unique_ptr<Scheduler>(
      new Scheduler(std::move(options), std::move(instances), metrics));
}

Scheduler::Scheduler(SchedulerOptions options, std::vector<std::unique_ptr<Backend>> instances,
                     ServerMetrics* metrics)
    : options_(std::move(options)),
      input_width_(instances[0]->input_width()),
      output_width_(instances[0]->output_width()),
      metrics_(metrics) {
  for (auto& backend : instances) {
    auto instance = std::make_unique<Instance>();
    instance->backend = std::move(backend);
    instance->inputs.reserve(static_cast<size_t>(options_.max_batch_size * input_width_));
    instance->outputs.reserve(static_cast<size_t>(options_.max_batch_size * output_width_));
    instances_.push_back(std::move(instance));
  }
  for (size_t i = 0; i < instances_.size(); ++i) {
    workers_.emplace_back([this, i] {
      std::string name = "bs-model-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      WorkerLoop(instances_[i].get());
    });
  }
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& worker : workers_) worker.join();
}

Status Scheduler::Admit(InferRequest& request, TimePoint now) const {
  if (request.batch < 1) return InvalidArgumentError("a request needs at least one row");
  if (request.inputs.size() != static_cast<size_t>(request.batch * input_width_)) {
    return InvalidArgumentError("input holds " + std::to_string(request.inputs.size()) +
                                " values; expected " + std::to_string(request.batch) + " x " +
                                std::to_string(input_width_));
  }
  if (request.deadline <= now) return DeadlineExceededError("deadline passed before queueing");
  request.timings.submitted = now;
  return Status::Ok();
}

Scheduler::Instance* Scheduler::TryIdleInstance() {
  if (!options_.inline_when_idle || queued_.load(std::memory_order_acquire) != 0) return nullptr;
  for (auto& instance : instances_) {
    if (instance->run_mu.try_lock()) return instance.get();
  }
  return nullptr;
}

Status Scheduler::Submit(std::unique_ptr<InferRequest> request) {
  RETURN_IF_ERROR(Admit(*request, Clock::now()));
  // An idle instance with nothing queued runs the request here: no hand-off, no wake-up.
  if (Instance* instance = TryIdleInstance(); instance != nullptr) {
    std::unique_ptr<InferRequest> single[1] = {std::move(request)};
    RunBatch(instance, single);
    instance->run_mu.unlock();
    metrics_->inline_batches_total.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }
  return Enqueue(std::move(request));
}

std::vector<Status> Scheduler::SubmitMany(std::vector<std::unique_ptr<InferRequest>> requests) {
  std::vector<Status> statuses(requests.size());
  const TimePoint now = Clock::now();
  std::vector<size_t> admitted;
  for (size_t i = 0; i < requests.size(); ++i) {
    statuses[i] = Admit(*requests[i], now);
    if (statuses[i].ok()) admitted.push_back(i);
  }
  if (admitted.empty()) return statuses;
  if (Instance* instance = TryIdleInstance(); instance != nullptr) {
    // Merged while they fit in max_batch_size rows; a larger request runs alone.
    std::vector<std::unique_ptr<InferRequest>> batch;
    int64_t rows = 0;
    auto run = [&] {
      RunBatch(instance, batch);
      metrics_->inline_batches_total.fetch_add(1, std::memory_order_relaxed);
      batch.clear();
      rows = 0;
    };
    for (size_t i : admitted) {
      if (!batch.empty() && rows + requests[i]->batch > options_.max_batch_size) run();
      rows += requests[i]->batch;
      batch.push_back(std::move(requests[i]));
    }
    run();
    instance->run_mu.unlock();
    return statuses;
  }
  for (size_t i : admitted) statuses[i] = Enqueue(std::move(requests[i]));
  return statuses;
}

Status Scheduler::Enqueue(std::unique_ptr<InferRequest> request) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return UnavailableError("server is shutting down");
    if (static_cast<int64_t>(queue_.size()) >= options_.queue_capacity) {
      metrics_->rejected_queue_full_total.fetch_add(1, std::memory_order_relaxed);
      return UnavailableError("queue is full (" + std::to_string(options_.queue_capacity) +
                              " requests waiting); retry later");
    }
    queue_.push_back(std::move(request));
    queued_.store(static_cast<int64_t>(queue_.size()), std::memory_order_release);
    metrics_->queue_depth.store(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
  }
  cv_.notify_one();
  return Status::Ok();
}

int64_t Scheduler::TargetBatchSize(int64_t current) const {
  for (int64_t size : options_.preferred_batch_sizes) {
    if (size >= current) return std::min(size, options_.max_batch_size);
  }
  return options_.max_batch_size;
}

void Scheduler::TakeQueued(std::vector<std::unique_ptr<InferRequest>>* batch, int64_t* rows,
                           std::vector<std::unique_ptr<InferRequest>>* expired) {
  const TimePoint now = Clock::now();
  while (!queue_.empty()) {
    InferRequest& next = *queue_.front();
    if (next.deadline <= now) {
      expired->push_back(std::move(queue_.front()));
      queue_.pop_front();
      continue;
    }
    // A request larger than max_batch_size still runs, alone; otherwise merge while it fits.
    if (!batch->empty() && *rows + next.batch > options_.max_batch_size) break;
    *rows += next.batch;
    batch->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  queued_.store(static_cast<int64_t>(queue_.size()), std::memory_order_release);
  metrics_->queue_depth.store(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
}

void Scheduler::CompleteWithError(std::vector<std::unique_ptr<InferRequest>>& requests,
                                  const Status& status) {
  for (auto& request : requests) {
    if (status.code() == StatusCode::kDeadlineExceeded) {
      metrics_->deadline_exceeded_total.fetch_add(1, std::memory_order_relaxed);
    }
    InferResult result;
    result.status = status;
    result.timings = request->timings;
    request->done(std::move(result));
  }
  requests.clear();
}

void Scheduler::WorkerLoop(Instance* instance) {
  std::vector<std::unique_ptr<InferRequest>> batch;
  std::vector<std::unique_ptr<InferRequest>> expired;
  batch.reserve(static_cast<size_t>(options_.max_batch_size));
  for (;;) {
    int64_t rows = 0;
    bool stop = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) {
        while (!queue_.empty()) {
          expired.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        queued_.store(0, std::memory_order_release);
        stop = true;
      } else {
        TakeQueued(&batch, &rows, &expired);
        // Under load, wait briefly for the batch to fill; a lone request never waits.
        if (options_.max_queue_delay_us > 0 && instance->last_batch_merged && !batch.empty() &&
            rows < TargetBatchSize(rows)) {
          const TimePoint until =
              Clock::now() + std::chrono::microseconds(options_.max_queue_delay_us);
          while (rows < TargetBatchSize(rows) && !stopping_) {
            if (!cv_.wait_until(lock, until, [this] { return stopping_ || !queue_.empty(); })) {
              break;
            }
            TakeQueued(&batch, &rows, &expired);
            if (!queue_.empty()) break;  // the next request does not fit
          }
        }
      }
    }
    if (!expired.empty()) {
      CompleteWithError(expired, stop ? UnavailableError("server is shutting down")
                                      : DeadlineExceededError("deadline passed while queued"));
    }
    if (stop) return;
    if (batch.empty()) continue;
    {
      std::lock_guard run_lock(instance->run_mu);
      RunBatch(instance, batch);
    }
    instance->last_batch_merged = batch.size() > 1;
    batch.clear();
  }
}

void Scheduler::RunBatch(Instance* instance, std::span<std::unique_ptr<InferRequest>> batch) {
  int64_t rows = 0;
  for (const auto& request : batch) rows += request->batch;
  std::span<const float> inputs;
  if (batch.size() == 1) {
    inputs = batch[0]->inputs;  // no copy for a lone request
  } else {
    instance->inputs.resize(static_cast<size_t>(rows * input_width_));
    float* cursor = instance->inputs.data();
    for (const auto& request : batch) {
      cursor = std::copy(request->inputs.begin(), request->inputs.end(), cursor);
    }
    inputs = instance->inputs;
  }
  instance->outputs.resize(static_cast<size_t>(rows * output_width_));

  const TimePoint compute_start = Clock::now();
  Status status = instance->backend->Run(inputs, rows, instance->outputs);
  const TimePoint compute_end = Clock::now();

  metrics_->compute_seconds.Observe(NanosBetween(compute_start, compute_end) / 1e9);
  metrics_->batch_observations.Observe(static_cast<double>(rows));
  metrics_->batch_requests.Observe(static_cast<double>(batch.size()));
  metrics_->batches_total.fetch_add(1, std::memory_order_relaxed);
  metrics_->observations_total.fetch_add(static_cast<uint64_t>(rows), std::memory_order_relaxed);
  if (!status.ok()) metrics_->inference_errors_total.fetch_add(1, std::memory_order_relaxed);

  size_t offset = 0;
  for (auto& request : batch) {
    RequestTimings& t = request->timings;
    t.compute_start = compute_start;
    t.compute_end = compute_end;
    t.batch_observations = rows;
    t.batch_requests = static_cast<int64_t>(batch.size());
    metrics_->queue_seconds.Observe(NanosBetween(t.submitted, compute_start) / 1e9);
    const size_t count = static_cast<size_t>(request->batch * output_width_);
    InferResult result;
    result.status = status;
    if (status.ok())
      result.outputs = std::span<const float>(instance->outputs).subspan(offset, count);
    result.timings = t;
    offset += count;
    request->done(std::move(result));
  }
}

}  // namespace brainstem
