// StatusApi: the JSON document behind GET /v1/status, one object with everything an operator
// (or `brainstem monitor`, `brainstem validate`, the dashboard) wants at a glance: model,
// start-up times, request counts, latency percentiles and rates over a recent window,
// batch-size distribution, queue depth, per-CPU and per-core-kind load, process memory and CPU,
// shared-memory occupancy, the thread placement plan and the configured targets.
//
// Rates and "recent" percentiles need two points in time. Rather than run another thread,
// every Render() stores the counters and histogram snapshots it read in a small ring (at most
// one entry per 100 ms, none older than 30 s) and compares with the newest entry at least
// `window` old: rates and percentiles describe the last `window` seconds (default 5 s), or the
// time since the previous call when calls are further apart, or since ready on the first call.
// Thread-safe: Render may run on every I/O thread at once (the ring is guarded by a mutex).
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "engine/model_loader.h"
#include "telemetry/histogram.h"
#include "telemetry/server_metrics.h"

namespace brainstem {

// Facts the server knows at start-up that neither the model nor the metrics hold. The
// transport does not depend on src/topology, so the placement plan arrives as plain values.
struct StatusInfo {
  int64_t pid = 0;           // 0: this process (getpid)
  std::string shm_socket;    // the shared-memory socket; empty when shm is off
  bool ocr_enabled = false;  // an OCR service answers /v1/ocr and shm frame requests 1-3
  std::string ocr_model;     // "screen-ocr 1.0.0"; empty: OCR off or the built-in settings
  struct Thread {
    std::string name;        // e.g. "bs-io-0", "bs-sampler"
    std::string role;        // "io" | "model-worker" | "shm" | "background" | ...
    std::vector<int> cpus;   // the CPUs the plan gives it
    bool dedicated = false;  // no other planned thread shares them
  };
  std::string placement_rule;  // "uniform-shared", "hybrid", ...; empty: no plan
  bool pinning = false;
  std::vector<Thread> threads;
  std::vector<int> background_cpus;
  std::vector<std::string> notes;
};

class StatusApi {
 public:
  // All pointers must outlive the StatusApi.
  StatusApi(const Config* config, const LoadedModel* model, const ServerMetrics* metrics);

  // REQUIRES: called before the server serves (not synchronized with Render).
  void SetInfo(StatusInfo info);

  // The /v1/status body. `window_seconds` (clamped to [0.2, 30]) sets how far back rates and
  // "window" percentiles look. Never fails; values that are unknown are JSON null.
  std::string Render(double window_seconds = 5.0);

 private:
  struct Sample {
    TimePoint at;
    uint64_t http_requests = 0;  // /predict over HTTP (any status)
    uint64_t shm_requests = 0;
    uint64_t observations = 0;
    uint64_t batches = 0;
    uint64_t frames = 0;
    uint64_t frame_bytes = 0;
    uint64_t checksum_failures = 0;
    uint64_t ocr_images = 0;
    uint64_t ocr_cache_hits = 0;
    uint64_t rejected = 0;
    double cpu_seconds = 0;
    Histogram::Snapshot request;
    Histogram::Snapshot queue;
    Histogram::Snapshot compute;
    Histogram::Snapshot batch;
  };
  Sample Take() const;

  // Constant after SetInfo.
  const Config* config_;
  const LoadedModel* model_;
  const ServerMetrics* metrics_;
  StatusInfo info_;
  const std::string git_;

  std::mutex mu_;
  std::deque<Sample> ring_;  // guarded by mu_; oldest first
};

}  // namespace brainstem
