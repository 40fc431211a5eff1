// OcrService: the OCR worker pool behind both transports (HTTP /v1/ocr and shared-memory frame
// slots). Each worker thread owns one Tesseract engine. Frames wait in a bounded queue (full:
// kUnavailable, which HTTP answers 503 + Retry-After, like the policy scheduler); a frame whose
// deadline passed before a worker took it completes with kDeadlineExceeded (504). A worker
// runs a frame through the change-aware pipeline under its stream's lock (frames of one
// screen are compared in order) and spreads the frame's pieces over every idle worker, so
// two workers halve a dense frame instead of only serving two clients.
// It is not the policy Scheduler: that one batches float rows into one backend call, while
// OCR work is one frame at a time, split into pieces; the admission rules are the same.
// Thread-safe: Submit may be called from any thread; `done` runs on a worker thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/ocr/ocr_engine.h"
#include "common/clock.h"
#include "common/result.h"
#include "perception/ocr_pipeline.h"
#include "telemetry/server_metrics.h"

namespace brainstem::perception {

struct OcrServiceOptions {
  int workers = 1;
  int64_t queue_capacity = 16;  // frames waiting; beyond it: kUnavailable
  int max_streams = 16;         // caches kept (least recently used dropped)
  uint64_t max_image_pixels = 8192ull * 8192ull;
  OcrEngineOptions engine;
  PipelineOptions pipeline;
  // Called on each worker thread before it creates its engine (pinning, naming).
  std::function<void(int worker)> on_worker_start;
  // true: load Tesseract and create every engine in Create, so a missing language fails at
  // start-up. false: each worker does so on its first frame, so a process that never reads
  // the screen (a policy server) pays neither the ~85 ms nor the ~25 MB.
  bool preload = false;
};

struct OcrJob {
  FrameView frame;                     // borrowed until `done` runs
  std::shared_ptr<const void> pixels;  // keeps the frame's memory alive when owned elsewhere
  std::string stream = "default";      // which cache to compare against
  TimePoint deadline{};                // TimePoint{} = none
  std::function<void(Result<OcrOutcome>&&)> done;
};

struct PieceBatch;  // the pieces of one frame in flight (ocr_service.cc)

class OcrService {
 public:
  // Starts the workers; with options.preload also loads the OCR plugin and creates one engine
  // per worker (fails fast: a missing language is reported here, not on the first request).
  // Without preload the first frame of each worker pays that, and its errors reach the frame.
  // `metrics` may be null.
  // Errors: kUnimplemented (plugin missing), kNotFound (language data missing), kInternal.
  static Result<std::unique_ptr<OcrService>> Create(OcrServiceOptions options,
                                                    ServerMetrics* metrics);
  ~OcrService();  // Stops the workers; queued frames complete with kUnavailable.

  OcrService(const OcrService&) = delete;
  OcrService& operator=(const OcrService&) = delete;

  // Accepts the job (then `done` runs exactly once, on a worker) or refuses it (then `done` is
  // never called): kUnavailable (queue full, stopping), kDeadlineExceeded (already expired).
  Status Submit(std::unique_ptr<OcrJob> job);

  // Submit and wait: for tools and tests.
  Result<OcrOutcome> Run(const FrameView& frame, const std::string& stream = "default");

  const OcrServiceOptions& options() const { return options_; }
  // Loads the plugin if nothing has yet; "unavailable: <reason>" when it cannot be loaded.
  std::string engine_version() const;
  // OcrPlugin::serial_openmp_regions (loads the plugin like engine_version); 0 when it cannot
  // be loaded.
  uint64_t serial_openmp_regions() const;

 private:
  struct Worker;
  struct PieceTask {
    Piece* piece;
    PieceBatch* batch;
  };

  OcrService(OcrServiceOptions options, ServerMetrics* metrics);
  void WorkerLoop(Worker* worker);
  void RunFrame(Worker* worker, std::unique_ptr<OcrJob> job);
  void ReadPieces(Worker* worker, std::vector<Piece>* pieces);
  void ReadOne(Worker* worker, Piece* piece);
  struct Stream {
    std::mutex mu;           // held while a frame of this stream is analysed
    StreamState state;       // guarded by mu
    uint64_t last_used = 0;  // guarded by streams_mu_
  };
  std::shared_ptr<Stream> FindStream(const std::string& name);

  const OcrServiceOptions options_;
  ServerMetrics* const metrics_;
  std::vector<std::unique_ptr<Worker>> workers_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<OcrJob>> frames_;  // guarded by mu_
  std::deque<PieceTask> pieces_;                // guarded by mu_
  bool stopping_ = false;                       // guarded by mu_

  std::mutex streams_mu_;
  // shared_ptr: a stream dropped from the map stays alive while a worker still reads it.
  std::map<std::string, std::shared_ptr<Stream>> streams_;  // guarded by streams_mu_
  uint64_t stream_clock_ = 0;                               // guarded by streams_mu_
};

}  // namespace brainstem::perception
