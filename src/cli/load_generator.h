// LoadGenerator: drives a brainstem server through the client library (shm or http) and
// measures what a user sees: closed loop (N clients, each sending its next request when the
// last one answered) or open loop (a fixed total rate; latency counted from the scheduled
// send time, so a slow server cannot hide queueing). Percentiles come from every sample, not
// from buckets. Over shm it also reports where the time went (handoff, queue, compute, answer).
// Thread-compatible: one Run at a time; Run starts and joins its own client threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace brainstem {

struct LoadOptions {
  std::string url;        // shm://name, shm:///path.sock or http://host:port
  int clients = 1;        // concurrent clients (threads, one connection/region each)
  double rate = 0;        // total requests/s for open loop; 0 = closed loop
  double duration_s = 5;  // measured phase
  int64_t requests = 0;   // stop after this many (all clients together); 0 = by duration
  double warmup_s = 1;    // unmeasured phase before
  int observations = 1;   // observations per request
  uint64_t seed = 1;      // for the generated observations
  // Frames instead of policy steps (shm only): each request hands a width x height BGRA frame
  // to the server in place (AcquireFrameBuffer + SubmitFrameBuffer: no copy) and waits for the
  // acknowledgement. The checksum kind comes from the URL (?checksum=none|xxh3|...).
  int frame_width = 0;
  int frame_height = 0;
};

struct LoadReport {
  std::string transport;
  int clients = 0;
  int observations = 0;
  double rate = 0;
  int64_t requests = 0;
  int64_t errors = 0;
  std::string first_error;
  double seconds = 0;
  double requests_per_s = 0;
  double observations_per_s = 0;
  // Latency percentiles in microseconds: p50, p90, p95, p99, p99.9, max.
  double p50_us = 0, p90_us = 0, p95_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
  // shm only: medians of each leg of a call, in microseconds.
  bool has_breakdown = false;
  double handoff_us = 0, queue_us = 0, compute_us = 0, answer_us = 0, server_us = 0;
};

Result<LoadReport> RunLoad(const LoadOptions& options);

}  // namespace brainstem
