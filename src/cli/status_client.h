// StatusClient: what `brainstem monitor` and `brainstem validate` know of a server, read over
// HTTP: GET /v1/status parsed into ServerStatus (docs/api.md lists the fields), and single
// values from the Prometheus text at /metrics. One short-lived connection per call, so a
// server restart between calls is no problem.
// Thread-compatible: free functions and plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "config/config.h"

namespace brainstem {

struct HttpEndpoint {
  std::string host;
  std::string port;
  std::string url;  // as given, without a trailing slash
};

// "http://host:port" (port defaults to 80; a path is ignored). Errors: kInvalidArgument.
Result<HttpEndpoint> ParseHttpEndpoint(std::string_view url);

// GET `target` and return the body. Errors: kUnavailable (cannot connect, naming the address),
// kInternal (a status other than 200, with the start of the body).
Result<std::string> HttpGet(const HttpEndpoint& endpoint, std::string_view target,
                            double timeout_s = 10);

struct ServerStatus {
  std::string model, version, format, device;
  int64_t pid = 0;
  double uptime_seconds = 0;
  double startup_seconds = 0;
  double model_load_seconds = 0;
  double model_warmup_seconds = 0;
  double window_seconds = 0;
  // Totals since start.
  uint64_t requests_total = 0, http_requests = 0, shm_requests = 0;
  uint64_t rejected_queue_full = 0, deadline_exceeded = 0, inference_errors = 0;
  // Over the window.
  double requests_per_s = 0, observations_per_s = 0, frames_per_s = 0;
  std::optional<double> http_p50_us, http_p90_us, http_p99_us;  // absent: no HTTP request
  std::optional<double> compute_p50_us, queue_p50_us;
  std::optional<double> batch_mean, batch_p90;
  std::vector<std::pair<std::string, uint64_t>> batch_distribution;  // "<=4" -> calls (window)
  int64_t queue_depth = 0, queue_capacity = 0;
  std::vector<std::pair<std::string, double>> kind_load;  // kind -> percent busy
  int64_t rss_bytes = 0;
  double cpu_percent = 0;  // server, over the window, percent of one core
  bool shm_enabled = false;
  std::string shm_url;  // "shm:///path.sock"
  int64_t shm_sessions = 0, shm_bytes_mapped = 0;
  uint64_t shm_frames = 0, shm_checksum_failures = 0;
  bool ocr_available = false;
  std::optional<double> ocr_images_per_s;
  struct PlannedThread {
    std::string name, role;
    std::vector<int> cpus;
  };
  std::string placement_rule;
  bool pinning = false;
  std::vector<PlannedThread> threads;
  TargetsConfig targets;
};

// Parses a /v1/status document. Errors: kInvalidArgument naming the first missing field.
Result<ServerStatus> ParseServerStatus(std::string_view json);

// GET /v1/status?window=<window_s> and parse it.
Result<ServerStatus> FetchStatus(const HttpEndpoint& endpoint, double window_s);

// The value of the first sample of `name` (no labels, or any labels) in Prometheus text.
std::optional<double> PrometheusValue(std::string_view text, std::string_view name);

}  // namespace brainstem
