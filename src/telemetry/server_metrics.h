// ServerMetrics: every number the server exports at /metrics, as named fields rather than a
// generic registry (the set is fixed and the hot path should touch plain atomics).
// Stages record with one definition of each timing point: total = response ready - request
// parsed; queue = picked by a worker - submitted; compute = backend call duration.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "telemetry/histogram.h"

namespace brainstem {

class SystemSampler;

class ServerMetrics {
 public:
  ServerMetrics();

  void CountRequest(std::string_view route, int http_status);

  Histogram request_seconds;     // whole request, parse to response bytes ready
  Histogram queue_seconds;       // submitted to picked up by a model instance
  Histogram compute_seconds;     // one backend call
  Histogram batch_observations;  // observations per backend call
  Histogram batch_requests;      // requests merged into one backend call
  std::atomic<int64_t> queue_depth{0};
  std::atomic<uint64_t> observations_total{0};
  std::atomic<uint64_t> batches_total{0};
  std::atomic<uint64_t> inline_batches_total{0};  // run on the caller's thread (idle instance)
  std::atomic<uint64_t> rejected_queue_full_total{0};
  std::atomic<uint64_t> deadline_exceeded_total{0};
  std::atomic<uint64_t> inference_errors_total{0};
  std::atomic<double> model_load_seconds{0};
  std::atomic<double> warmup_seconds{0};
  std::atomic<double> startup_seconds{0};  // process start (kernel) to ready

  // Shared-memory transport (docs/shm-protocol.md).
  std::atomic<int64_t> shm_sessions{0};            // connected clients
  std::atomic<uint64_t> shm_sessions_total{0};     // welcomed clients since start
  std::atomic<uint64_t> shm_requests_total{0};     // tensor slots claimed (good or bad)
  std::atomic<uint64_t> shm_frames_total{0};       // frames verified in place and acknowledged
  std::atomic<uint64_t> shm_frame_bytes_total{0};  // their payload bytes (none copied)
  std::atomic<uint64_t> shm_checksum_failures_total{0};
  std::atomic<uint64_t> shm_bad_slots_total{0};      // slots refused for an invalid field
  std::atomic<int64_t> shm_bytes_mapped{0};          // bytes of regions the server has mapped
  std::atomic<uint64_t> shm_client_deaths_total{0};  // sessions the client ended by hanging up
  // Of shm_sessions / shm_sessions_total: those that came through the /dev/shm lobby.
  std::atomic<int64_t> shm_named_sessions{0};
  std::atomic<uint64_t> shm_named_sessions_total{0};

  // Screen perception (OCR, docs/perception.md): one "image" is one frame answered.
  Histogram ocr_seconds;                            // per frame: taken by a worker to answered
  std::atomic<uint64_t> ocr_images_total{0};        // frames answered
  std::atomic<uint64_t> ocr_cache_hits_total{0};    // identical to the stream's previous frame
  std::atomic<uint64_t> ocr_cache_misses_total{0};  // something changed (or a first frame)
  std::atomic<uint64_t> ocr_full_reads_total{0};  // whole frame read (first, resized, most changed)
  std::atomic<uint64_t> ocr_tiles_total{0};       // tiles hashed
  std::atomic<uint64_t> ocr_tiles_reread_total{0};  // tiles that changed and were re-read
  std::atomic<uint64_t> ocr_pieces_total{0};        // engine calls (lines and text pieces)
  std::atomic<uint64_t> ocr_pixels_read_total{0};   // pixels handed to the engine
  std::atomic<uint64_t> ocr_rejected_total{0};      // queue full (503)
  std::atomic<uint64_t> ocr_deadline_exceeded_total{0};
  std::atomic<uint64_t> ocr_errors_total{0};      // engine failures
  std::atomic<uint64_t> ocr_bad_inputs_total{0};  // refused: undecodable, bad geometry, checksum
  std::atomic<int64_t> ocr_queue_depth{0};

  // The OCR model being served, exported as brainstem_ocr_model_info{...} 1; not exported
  // while ocr_model_name is empty (OCR off, or the built-in settings without a card).
  // REQUIRES: set before serving, never changed afterwards (read without a lock).
  std::string ocr_model_name;
  std::string ocr_model_version;
  std::string ocr_model_language;
  bool ocr_model_hash_verified = false;

  // Per-core load, context switches and GPU figures; set once before serving, cleared before
  // the sampler stops. Not owned.
  std::atomic<const SystemSampler*> system_sampler{nullptr};

  // Requests counted so far by CountRequest: (route, HTTP status) -> count. A copy.
  std::map<std::pair<std::string, int>, uint64_t> RequestCounts() const;

  // Prometheus text exposition (version 0.0.4) of everything above plus process RSS/CPU.
  // `model` and `version` label the model-level series.
  std::string RenderPrometheus(const std::string& model, const std::string& version) const;

 private:
  mutable std::mutex requests_mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // guarded by requests_mu_
};

}  // namespace brainstem
