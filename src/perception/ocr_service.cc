#include "perception/ocr_service.h"

#include <pthread.h>

#include <future>

namespace brainstem::perception {

struct OcrService::Worker {
  int index = 0;
  std::unique_ptr<OcrEngine> engine;
  std::thread thread;
};

// The pieces of one frame: how many are still being read, and who waits for them.
struct PieceBatch {
  int remaining = 0;  // guarded by the service's mu_
};

namespace {

double SecondsSince(TimePoint start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

OcrService::OcrService(OcrServiceOptions options, ServerMetrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {}

Result<std::unique_ptr<OcrService>> OcrService::Create(OcrServiceOptions options,
                                                       ServerMetrics* metrics) {
  if (options.workers < 1) return InvalidArgumentError("ocr.workers: must be at least 1");
  std::unique_ptr<OcrService> service(new OcrService(std::move(options), metrics));
  for (int i = 0; i < service->options_.workers; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->index = i;
    if (service->options_.preload) {
      // On the caller's thread (Tesseract keeps no thread affinity) so that a missing language
      // fails Create instead of a worker.
      ASSIGN_OR_RETURN(const OcrPlugin* plugin, LoadOcrPlugin());
      ASSIGN_OR_RETURN(worker->engine, plugin->create(service->options_.engine));
    }
    service->workers_.push_back(std::move(worker));
  }
  for (auto& worker : service->workers_) {
    Worker* w = worker.get();
    OcrService* self = service.get();
    w->thread = std::thread([self, w] {
      const std::string name = "bs-ocr-" + std::to_string(w->index);
      pthread_setname_np(pthread_self(), name.c_str());
      if (self->options_.on_worker_start) self->options_.on_worker_start(w->index);
      self->WorkerLoop(w);
    });
  }
  return service;
}

OcrService::~OcrService() {
  std::deque<std::unique_ptr<OcrJob>> left;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    left.swap(frames_);
  }
  cv_.notify_all();
  for (auto& job : left) job->done(UnavailableError("ocr: the server is stopping"));
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
  }
}

Status OcrService::Submit(std::unique_ptr<OcrJob> job) {
  if (job->deadline != TimePoint{} && Clock::now() >= job->deadline) {
    if (metrics_) metrics_->ocr_deadline_exceeded_total.fetch_add(1, std::memory_order_relaxed);
    return DeadlineExceededError("ocr: the deadline passed before the frame was queued");
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) return UnavailableError("ocr: the server is stopping");
    if (static_cast<int64_t>(frames_.size()) >= options_.queue_capacity) {
      if (metrics_) metrics_->ocr_rejected_total.fetch_add(1, std::memory_order_relaxed);
      return UnavailableError("ocr: " + std::to_string(frames_.size()) +
                              " frames are waiting (ocr.queue_capacity); retry later");
    }
    frames_.push_back(std::move(job));
    if (metrics_) metrics_->ocr_queue_depth.store(static_cast<int64_t>(frames_.size()));
  }
  cv_.notify_all();
  return Status::Ok();
}

Result<OcrOutcome> OcrService::Run(const FrameView& frame, const std::string& stream) {
  std::promise<Result<OcrOutcome>> promise;
  auto job = std::make_unique<OcrJob>();
  job->frame = frame;
  job->stream = stream;
  job->done = [&promise](Result<OcrOutcome>&& r) { promise.set_value(std::move(r)); };
  auto future = promise.get_future();
  RETURN_IF_ERROR(Submit(std::move(job)));
  return future.get();
}

void OcrService::WorkerLoop(Worker* worker) {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !pieces_.empty() || !frames_.empty(); });
    // Pieces first: they belong to a frame already being answered.
    if (!pieces_.empty()) {
      PieceTask task = pieces_.front();
      pieces_.pop_front();
      lock.unlock();
      ReadOne(worker, task.piece);
      lock.lock();
      if (--task.batch->remaining == 0) cv_.notify_all();
      continue;
    }
    if (stopping_) return;
    std::unique_ptr<OcrJob> job = std::move(frames_.front());
    frames_.pop_front();
    if (metrics_) metrics_->ocr_queue_depth.store(static_cast<int64_t>(frames_.size()));
    lock.unlock();
    RunFrame(worker, std::move(job));
    lock.lock();
  }
}

std::shared_ptr<OcrService::Stream> OcrService::FindStream(const std::string& name) {
  std::lock_guard lock(streams_mu_);
  auto it = streams_.find(name);
  if (it == streams_.end()) {
    if (static_cast<int>(streams_.size()) >= options_.max_streams) {
      auto oldest = streams_.begin();
      for (auto s = streams_.begin(); s != streams_.end(); ++s) {
        if (s->second->last_used < oldest->second->last_used) oldest = s;
      }
      streams_.erase(oldest);
    }
    it = streams_.emplace(name, std::make_shared<Stream>()).first;
  }
  it->second->last_used = ++stream_clock_;
  return it->second;
}

void OcrService::RunFrame(Worker* worker, std::unique_ptr<OcrJob> job) {
  if (job->deadline != TimePoint{} && Clock::now() >= job->deadline) {
    if (metrics_) metrics_->ocr_deadline_exceeded_total.fetch_add(1, std::memory_order_relaxed);
    job->done(DeadlineExceededError("ocr: the deadline passed while the frame was queued"));
    return;
  }
  const TimePoint start = Clock::now();
  std::shared_ptr<Stream> stream = FindStream(job->stream);
  Result<OcrOutcome> outcome = [&] {
    std::lock_guard lock(stream->mu);
    return AnalyzeFrame(
        job->frame, options_.pipeline,
        [this, worker](std::vector<Piece>* pieces) { ReadPieces(worker, pieces); }, &stream->state);
  }();
  if (metrics_) {
    if (outcome.ok()) {
      const OcrStats& s = outcome->stats;
      metrics_->ocr_images_total.fetch_add(1, std::memory_order_relaxed);
      metrics_->ocr_seconds.Observe(SecondsSince(start));
      (s.cache_hit ? metrics_->ocr_cache_hits_total : metrics_->ocr_cache_misses_total)
          .fetch_add(1, std::memory_order_relaxed);
      if (s.full_read) metrics_->ocr_full_reads_total.fetch_add(1, std::memory_order_relaxed);
      metrics_->ocr_tiles_total.fetch_add(static_cast<uint64_t>(s.tiles));
      metrics_->ocr_tiles_reread_total.fetch_add(static_cast<uint64_t>(s.tiles_changed));
      metrics_->ocr_pieces_total.fetch_add(static_cast<uint64_t>(s.pieces));
      metrics_->ocr_pixels_read_total.fetch_add(static_cast<uint64_t>(s.pixels_read));
    } else {
      metrics_->ocr_errors_total.fetch_add(1, std::memory_order_relaxed);
    }
  }
  job->done(std::move(outcome));
}

std::string OcrService::engine_version() const {
  Result<const OcrPlugin*> plugin = LoadOcrPlugin();
  return plugin.ok() ? (*plugin)->version() : "unavailable: " + plugin.status().message();
}

uint64_t OcrService::serial_openmp_regions() const {
  Result<const OcrPlugin*> plugin = LoadOcrPlugin();
  return plugin.ok() ? (*plugin)->serial_openmp_regions() : 0;
}

void OcrService::ReadOne(Worker* worker, Piece* piece) {
  if (worker->engine == nullptr) {  // first frame of this worker (no preload)
    Result<const OcrPlugin*> plugin = LoadOcrPlugin();
    if (!plugin.ok()) {
      piece->status = plugin.status();
      return;
    }
    Result<std::unique_ptr<OcrEngine>> engine = (*plugin)->create(options_.engine);
    if (!engine.ok()) {
      piece->status = engine.status();
      return;
    }
    worker->engine = std::move(engine).value();
  }
  Result<std::vector<OcrWord>> words = worker->engine->Recognize(piece->image, piece->psm);
  if (words.ok()) {
    piece->words = std::move(words).value();
  } else {
    piece->status = words.status();
  }
}

void OcrService::ReadPieces(Worker* worker, std::vector<Piece>* pieces) {
  if (workers_.size() == 1 || pieces->size() == 1) {
    for (Piece& piece : *pieces) ReadOne(worker, &piece);
    return;
  }
  // Largest first, so that the last piece to finish is a small one.
  std::vector<Piece*> order;
  for (Piece& piece : *pieces) order.push_back(&piece);
  std::stable_sort(order.begin(), order.end(), [](const Piece* a, const Piece* b) {
    return int64_t{a->image.width} * a->image.height > int64_t{b->image.width} * b->image.height;
  });
  PieceBatch batch;
  std::unique_lock lock(mu_);
  batch.remaining = static_cast<int>(order.size());
  for (Piece* piece : order) pieces_.push_back({piece, &batch});
  cv_.notify_all();
  // Read pieces (this frame's or another's) until every piece of this frame is done.
  while (batch.remaining > 0) {
    if (!pieces_.empty()) {
      PieceTask task = pieces_.front();
      pieces_.pop_front();
      lock.unlock();
      ReadOne(worker, task.piece);
      lock.lock();
      if (--task.batch->remaining == 0) cv_.notify_all();
      continue;
    }
    cv_.wait(lock, [&] { return batch.remaining == 0 || !pieces_.empty(); });
  }
}

}  // namespace brainstem::perception
