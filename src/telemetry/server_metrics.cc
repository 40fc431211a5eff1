#include "telemetry/server_metrics.h"

#include <charconv>

#include "telemetry/process_stats.h"
#include "telemetry/system_sampler.h"

namespace brainstem {
namespace {

void AppendValue(double v, std::string* out) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, ec == std::errc() ? end : buf);
}

void AppendMetric(std::string* out, std::string_view name, std::string_view type,
                  std::string_view help, std::string_view labels, double value) {
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
  out->append(name);
  if (!labels.empty()) out->append("{").append(labels).append("}");
  out->push_back(' ');
  AppendValue(value, out);
  out->push_back('\n');
}

void AppendHistogram(std::string* out, const std::string& name, std::string_view help,
                     const std::string& labels, const Histogram& h) {
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" histogram\n");
  h.AppendPrometheus(name, labels, out);
}

}  // namespace

ServerMetrics::ServerMetrics()
    : request_seconds(Histogram::LatencyBuckets()),
      queue_seconds(Histogram::LatencyBuckets()),
      compute_seconds(Histogram::LatencyBuckets()),
      batch_observations(Histogram::SizeBuckets()),
      batch_requests(Histogram::SizeBuckets()),
      ocr_seconds(Histogram::LatencyBuckets()) {}

void ServerMetrics::CountRequest(std::string_view route, int http_status) {
  std::lock_guard lock(requests_mu_);
  ++requests_[{std::string(route), http_status}];
}

std::map<std::pair<std::string, int>, uint64_t> ServerMetrics::RequestCounts() const {
  std::lock_guard lock(requests_mu_);
  return requests_;
}

std::string ServerMetrics::RenderPrometheus(const std::string& model,
                                            const std::string& version) const {
  std::string out;
  out.reserve(16 << 10);
  out.append("# HELP brainstem_requests_total HTTP requests by route and status code.\n");
  out.append("# TYPE brainstem_requests_total counter\n");
  {
    std::lock_guard lock(requests_mu_);
    for (const auto& [key, count] : requests_) {
      out.append("brainstem_requests_total{route=\"").append(key.first);
      out.append("\",status=\"").append(std::to_string(key.second)).append("\"} ");
      AppendValue(static_cast<double>(count), &out);
      out.push_back('\n');
    }
  }
  const std::string labels = "model=\"" + model + "\",version=\"" + version + "\"";
  AppendHistogram(&out, "brainstem_request_duration_seconds",
                  "Time from request parsed to response ready.", labels, request_seconds);
  AppendHistogram(&out, "brainstem_queue_duration_seconds",
                  "Time a request waited for a model instance.", labels, queue_seconds);
  AppendHistogram(&out, "brainstem_compute_duration_seconds", "Time of one backend call.", labels,
                  compute_seconds);
  AppendHistogram(&out, "brainstem_batch_observations", "Observations per backend call.", labels,
                  batch_observations);
  AppendHistogram(&out, "brainstem_batch_requests", "Requests merged into one backend call.",
                  labels, batch_requests);
  AppendMetric(&out, "brainstem_queue_depth", "gauge", "Requests waiting for a model instance.",
               labels, static_cast<double>(queue_depth.load()));
  AppendMetric(&out, "brainstem_observations_total", "counter", "Observations inferred.", labels,
               static_cast<double>(observations_total.load()));
  AppendMetric(&out, "brainstem_batches_total", "counter", "Backend calls.", labels,
               static_cast<double>(batches_total.load()));
  AppendMetric(&out, "brainstem_inline_batches_total", "counter",
               "Backend calls run on the receiving thread because an instance was idle.", labels,
               static_cast<double>(inline_batches_total.load()));
  AppendMetric(&out, "brainstem_rejected_queue_full_total", "counter",
               "Requests refused with 503 because the queue was full.", labels,
               static_cast<double>(rejected_queue_full_total.load()));
  AppendMetric(&out, "brainstem_deadline_exceeded_total", "counter",
               "Requests whose deadline passed before they ran.", labels,
               static_cast<double>(deadline_exceeded_total.load()));
  AppendMetric(&out, "brainstem_inference_errors_total", "counter", "Backend calls that failed.",
               labels, static_cast<double>(inference_errors_total.load()));
  AppendMetric(&out, "brainstem_model_load_seconds", "gauge",
               "Time to verify, load and warm up the model.", labels, model_load_seconds.load());
  AppendMetric(&out, "brainstem_model_warmup_seconds", "gauge", "Part of load spent warming up.",
               labels, warmup_seconds.load());
  AppendMetric(&out, "brainstem_startup_seconds", "gauge",
               "Process start (by the kernel) to ready to serve.", "", startup_seconds.load());
  AppendMetric(&out, "brainstem_shm_sessions", "gauge", "Shared-memory clients connected now.", "",
               static_cast<double>(shm_sessions.load()));
  AppendMetric(&out, "brainstem_shm_sessions_total", "counter",
               "Shared-memory clients welcomed since start.", "",
               static_cast<double>(shm_sessions_total.load()));
  AppendMetric(&out, "brainstem_shm_requests_total", "counter",
               "Tensor requests received over shared memory.", labels,
               static_cast<double>(shm_requests_total.load()));
  AppendMetric(&out, "brainstem_shm_frames_total", "counter",
               "Frames verified in place (zero copy) and acknowledged.", "",
               static_cast<double>(shm_frames_total.load()));
  AppendMetric(&out, "brainstem_shm_frame_bytes_total", "counter",
               "Payload bytes of those frames, none of them copied.", "",
               static_cast<double>(shm_frame_bytes_total.load()));
  AppendMetric(&out, "brainstem_shm_checksum_failures_total", "counter",
               "Shared-memory payloads that did not match their checksum.", "",
               static_cast<double>(shm_checksum_failures_total.load()));
  AppendMetric(&out, "brainstem_shm_bad_slots_total", "counter",
               "Shared-memory slots refused for an invalid field.", "",
               static_cast<double>(shm_bad_slots_total.load()));
  AppendMetric(&out, "brainstem_shm_bytes_mapped", "gauge",
               "Bytes of shared-memory regions mapped by the server.", "",
               static_cast<double>(shm_bytes_mapped.load()));
  AppendMetric(&out, "brainstem_shm_client_deaths_total", "counter",
               "Shared-memory sessions ended by the client hanging up (a clean close and a crash "
               "look the same).",
               "", static_cast<double>(shm_client_deaths_total.load()));
  AppendMetric(&out, "brainstem_shm_named_sessions", "gauge",
               "Shared-memory clients connected through the /dev/shm lobby now (also counted in "
               "brainstem_shm_sessions).",
               "", static_cast<double>(shm_named_sessions.load()));
  AppendMetric(&out, "brainstem_shm_named_sessions_total", "counter",
               "Shared-memory clients welcomed through the /dev/shm lobby since start.", "",
               static_cast<double>(shm_named_sessions_total.load()));
  AppendHistogram(&out, "brainstem_ocr_duration_seconds",
                  "Time to answer one OCR frame (cache check, re-reads, layout).", "model=\"ocr\"",
                  ocr_seconds);
  const std::pair<const char*, const std::atomic<uint64_t>*> ocr_counters[] = {
      {"brainstem_ocr_images_total", &ocr_images_total},
      {"brainstem_ocr_cache_hits_total", &ocr_cache_hits_total},
      {"brainstem_ocr_cache_misses_total", &ocr_cache_misses_total},
      {"brainstem_ocr_full_reads_total", &ocr_full_reads_total},
      {"brainstem_ocr_tiles_total", &ocr_tiles_total},
      {"brainstem_ocr_tiles_reread_total", &ocr_tiles_reread_total},
      {"brainstem_ocr_pieces_total", &ocr_pieces_total},
      {"brainstem_ocr_pixels_read_total", &ocr_pixels_read_total},
      {"brainstem_ocr_rejected_total", &ocr_rejected_total},
      {"brainstem_ocr_deadline_exceeded_total", &ocr_deadline_exceeded_total},
      {"brainstem_ocr_errors_total", &ocr_errors_total},
      {"brainstem_ocr_bad_inputs_total", &ocr_bad_inputs_total},
  };
  for (const auto& [name, counter] : ocr_counters) {
    AppendMetric(&out, name, "counter", "OCR frames; see docs/perception.md.", "",
                 static_cast<double>(counter->load()));
  }
  AppendMetric(&out, "brainstem_ocr_queue_depth", "gauge", "OCR frames waiting for a worker.", "",
               static_cast<double>(ocr_queue_depth.load()));
  if (!ocr_model_name.empty()) {
    // Label values are escaped as the exposition format requires (a directory name may hold
    // any character).
    auto label = [](const std::string& v) {
      std::string e;
      for (char c : v) {
        if (c == '\\' || c == '"') e.push_back('\\');
        if (c == '\n') {
          e += "\\n";
          continue;
        }
        e.push_back(c);
      }
      return e;
    };
    AppendMetric(&out, "brainstem_ocr_model_info", "gauge",
                 "The OCR model served (from its card); hash_verified=false: the traineddata "
                 "file differs from the one the card pins.",
                 "name=\"" + label(ocr_model_name) + "\",version=\"" + label(ocr_model_version) +
                     "\",language=\"" + label(ocr_model_language) + "\",hash_verified=\"" +
                     (ocr_model_hash_verified ? "true" : "false") + "\"",
                 1.0);
  }
  ProcessStats p = ReadProcessStats();
  AppendMetric(&out, "process_resident_memory_bytes", "gauge", "Resident set size.", "",
               static_cast<double>(p.rss_bytes));
  AppendMetric(&out, "process_cpu_seconds_total", "counter", "User and system CPU time.", "",
               p.cpu_user_seconds + p.cpu_system_seconds);
  AppendMetric(&out, "process_threads", "gauge", "Threads in the process.", "",
               static_cast<double>(p.threads));
  AppendMetric(&out, "process_uptime_seconds", "gauge", "Seconds since the process started.", "",
               p.uptime_seconds);
  if (const SystemSampler* sampler = system_sampler.load()) sampler->AppendPrometheus(&out);
  return out;
}

}  // namespace brainstem
