#include "transport/http/status_api.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "common/json_writer.h"
#include "telemetry/process_stats.h"
#include "telemetry/system_sampler.h"

#ifndef BRAINSTEM_GIT_SHA
#define BRAINSTEM_GIT_SHA "unknown"
#endif

namespace brainstem {
namespace {

constexpr auto kMinSpacing = std::chrono::milliseconds(100);
constexpr auto kKeep = std::chrono::seconds(31);

// `now` minus `base`, bucket by bucket; a counter that went backwards (cannot happen for these
// monotonic histograms, but a zero base is the common case) clamps at 0.
Histogram::Snapshot Minus(const Histogram::Snapshot& now, const Histogram::Snapshot& base) {
  Histogram::Snapshot d = now;
  if (base.counts.size() != now.counts.size()) return d;  // base is the empty start-up sample
  for (size_t i = 0; i < d.counts.size(); ++i) {
    d.counts[i] = now.counts[i] >= base.counts[i] ? now.counts[i] - base.counts[i] : 0;
  }
  d.count = now.count >= base.count ? now.count - base.count : 0;
  d.sum = std::max(0.0, now.sum - base.sum);
  return d;
}

void Key(std::string* out, std::string_view key) {
  AppendJsonString(out, key);
  out->push_back(':');
}

void NumberOrNull(std::string* out, double value, bool known) {
  if (known) {
    AppendJsonNumber(out, value);
  } else {
    out->append("null");
  }
}

// The upper bound of the bucket holding quantile q: right for integer sizes in power-of-two
// buckets ("p50 batch = 4" means half the calls had at most 4 rows), where interpolating
// inside (0, 1] would report a batch of 0.5.
double UpperBoundQuantile(const Histogram::Snapshot& h, double q) {
  const double rank = q * static_cast<double>(h.count);
  uint64_t seen = 0;
  for (size_t i = 0; i < h.counts.size(); ++i) {
    seen += h.counts[i];
    if (h.counts[i] > 0 && static_cast<double>(seen) >= rank) {
      return i < h.upper_bounds.size() ? h.upper_bounds[i] : h.upper_bounds.back();
    }
  }
  return h.upper_bounds.empty() ? 0 : h.upper_bounds.back();
}

// Bucket bounds such as 5e-5 s become 49.99999 us in binary; round to what was meant.
double Tidy(double value) { return std::round(value * 1000.0) / 1000.0; }

// {"count":N,"mean":..,"p50":..,"p90":..,"p99":..} with latencies in microseconds (scale 1e6,
// interpolated inside buckets) or sizes (scale 1, bucket upper bounds); percentiles are null
// when nothing was observed.
void AppendSummary(std::string* out, const Histogram::Snapshot& h, double scale) {
  const bool any = h.count > 0;
  out->append("{\"count\":");
  AppendJsonNumber(out, h.count);
  out->append(",\"mean\":");
  NumberOrNull(out, any ? h.sum / static_cast<double>(h.count) * scale : 0, any);
  for (auto [name, q] : {std::pair{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}}) {
    out->append(",\"").append(name).append("\":");
    const double value = scale == 1 ? UpperBoundQuantile(h, q) : Tidy(h.Quantile(q) * scale);
    NumberOrNull(out, value, any);
  }
  out->push_back('}');
}

// [{"le":1,"count":N},...,{"le":null,"count":N}]: per bucket, not cumulative; buckets above
// the last non-empty one are left out to keep the document short.
void AppendBuckets(std::string* out, const Histogram::Snapshot& h, double scale) {
  size_t last = 0;
  for (size_t i = 0; i < h.counts.size(); ++i) {
    if (h.counts[i] > 0) last = i + 1;
  }
  out->push_back('[');
  for (size_t i = 0; i < last; ++i) {
    if (i) out->push_back(',');
    out->append("{\"le\":");
    if (i < h.upper_bounds.size()) {
      AppendJsonNumber(out, Tidy(h.upper_bounds[i] * scale));
    } else {
      out->append("null");
    }
    out->append(",\"count\":");
    AppendJsonNumber(out, h.counts[i]);
    out->push_back('}');
  }
  out->push_back(']');
}

void AppendCpuList(std::string* out, const std::vector<int>& cpus) {
  out->push_back('[');
  for (size_t i = 0; i < cpus.size(); ++i) {
    if (i) out->push_back(',');
    AppendJsonNumber(out, static_cast<int64_t>(cpus[i]));
  }
  out->push_back(']');
}

}  // namespace

StatusApi::StatusApi(const Config* config, const LoadedModel* model, const ServerMetrics* metrics)
    : config_(config), model_(model), metrics_(metrics), git_(BRAINSTEM_GIT_SHA) {}

void StatusApi::SetInfo(StatusInfo info) { info_ = std::move(info); }

StatusApi::Sample StatusApi::Take() const {
  Sample s;
  s.at = Clock::now();
  s.request = metrics_->request_seconds.Read();
  s.queue = metrics_->queue_seconds.Read();
  s.compute = metrics_->compute_seconds.Read();
  s.batch = metrics_->batch_observations.Read();
  s.http_requests = s.request.count;
  s.shm_requests = metrics_->shm_requests_total.load(std::memory_order_relaxed);
  s.observations = metrics_->observations_total.load(std::memory_order_relaxed);
  s.batches = metrics_->batches_total.load(std::memory_order_relaxed);
  s.frames = metrics_->shm_frames_total.load(std::memory_order_relaxed);
  s.frame_bytes = metrics_->shm_frame_bytes_total.load(std::memory_order_relaxed);
  s.checksum_failures = metrics_->shm_checksum_failures_total.load(std::memory_order_relaxed);
  s.ocr_images = metrics_->ocr_images_total.load(std::memory_order_relaxed);
  s.ocr_cache_hits = metrics_->ocr_cache_hits_total.load(std::memory_order_relaxed);
  s.rejected = metrics_->rejected_queue_full_total.load(std::memory_order_relaxed);
  return s;
}

std::string StatusApi::Render(double window_seconds) {
  if (!std::isfinite(window_seconds)) window_seconds = 5.0;
  window_seconds = std::clamp(window_seconds, 0.2, 30.0);
  const ProcessStats process = ReadProcessStats();
  Sample now = Take();
  now.cpu_seconds = process.cpu_user_seconds + process.cpu_system_seconds;
  const double startup = metrics_->startup_seconds.load();

  // The base to compare with: the newest stored sample at least ~window old (80%, so a poller
  // with the same period as the window does not skip its previous call for a few ms of
  // jitter); else the oldest stored one; else "ready", when every counter was (nearly) zero.
  Sample base;
  base.at = now.at - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                         std::max(0.001, process.uptime_seconds - startup)));
  {
    std::lock_guard lock(mu_);
    const auto cutoff = now.at - std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(0.8 * window_seconds));
    const Sample* chosen = nullptr;
    for (const Sample& s : ring_) {
      if (s.at <= cutoff) chosen = &s;
    }
    if (chosen == nullptr && !ring_.empty()) chosen = &ring_.front();
    if (chosen != nullptr) base = *chosen;
    if (ring_.empty() || now.at - ring_.back().at >= kMinSpacing) ring_.push_back(now);
    while (!ring_.empty() && now.at - ring_.front().at > kKeep) ring_.pop_front();
  }
  const double dt = std::max(1e-3, NanosBetween(base.at, now.at) / 1e9);
  auto rate = [dt](uint64_t a, uint64_t b) {
    return a >= b ? static_cast<double>(a - b) / dt : 0.0;
  };

  const SystemSampler* sampler = metrics_->system_sampler.load();
  std::string o;
  o.reserve(8 << 10);
  o.append("{");
  Key(&o, "model");
  AppendJsonString(&o, model_->name);
  o.append(",\"version\":");
  AppendJsonString(&o, model_->version);
  o.append(",\"format\":");
  AppendJsonString(&o, ModelFormatName(model_->format));
  o.append(",\"device\":");
  AppendJsonString(&o, DeviceName(model_->device));
  o.append(",\"git\":");
  AppendJsonString(&o, git_);
  o.append(",\"pid\":");
  AppendJsonNumber(&o, info_.pid != 0 ? info_.pid : static_cast<int64_t>(getpid()));
  o.append(",\"timestamp\":");
  AppendJsonString(&o, Iso8601Now());
  o.append(",\"uptime_seconds\":");
  AppendJsonNumber(&o, process.uptime_seconds);
  o.append(",\"startup_seconds\":");
  AppendJsonNumber(&o, startup);
  o.append(",\"model_load_seconds\":");
  AppendJsonNumber(&o, metrics_->model_load_seconds.load());
  o.append(",\"model_warmup_seconds\":");
  AppendJsonNumber(&o, metrics_->warmup_seconds.load());
  o.append(",\"window_seconds\":");
  AppendJsonNumber(&o, dt);

  o.append(",\"requests\":{\"http_predict\":");
  AppendJsonNumber(&o, now.http_requests);
  o.append(",\"shm\":");
  AppendJsonNumber(&o, now.shm_requests);
  o.append(",\"total\":");
  AppendJsonNumber(&o, now.http_requests + now.shm_requests);
  o.append(",\"observations\":");
  AppendJsonNumber(&o, now.observations);
  o.append(",\"batches\":");
  AppendJsonNumber(&o, now.batches);
  o.append(",\"inline_batches\":");
  AppendJsonNumber(&o, metrics_->inline_batches_total.load(std::memory_order_relaxed));
  o.append(",\"rejected_queue_full\":");
  AppendJsonNumber(&o, now.rejected);
  o.append(",\"deadline_exceeded\":");
  AppendJsonNumber(&o, metrics_->deadline_exceeded_total.load(std::memory_order_relaxed));
  o.append(",\"inference_errors\":");
  AppendJsonNumber(&o, metrics_->inference_errors_total.load(std::memory_order_relaxed));
  o.append(",\"http\":[");
  bool first = true;
  for (const auto& [key, count] : metrics_->RequestCounts()) {
    if (!first) o.push_back(',');
    first = false;
    o.append("{\"route\":");
    AppendJsonString(&o, key.first);
    o.append(",\"status\":");
    AppendJsonNumber(&o, static_cast<int64_t>(key.second));
    o.append(",\"count\":");
    AppendJsonNumber(&o, count);
    o.push_back('}');
  }
  o.append("]}");

  o.append(",\"rates\":{\"requests_per_s\":");
  AppendJsonNumber(
      &o, rate(now.http_requests + now.shm_requests, base.http_requests + base.shm_requests));
  o.append(",\"http_requests_per_s\":");
  AppendJsonNumber(&o, rate(now.http_requests, base.http_requests));
  o.append(",\"shm_requests_per_s\":");
  AppendJsonNumber(&o, rate(now.shm_requests, base.shm_requests));
  o.append(",\"observations_per_s\":");
  AppendJsonNumber(&o, rate(now.observations, base.observations));
  o.append(",\"batches_per_s\":");
  AppendJsonNumber(&o, rate(now.batches, base.batches));
  o.append(",\"frames_per_s\":");
  AppendJsonNumber(&o, rate(now.frames, base.frames));
  o.append(",\"frame_bytes_per_s\":");
  AppendJsonNumber(&o, rate(now.frame_bytes, base.frame_bytes));
  o.append(",\"rejected_per_s\":");
  AppendJsonNumber(&o, rate(now.rejected, base.rejected));
  o.append(",\"checksum_failures_per_s\":");
  AppendJsonNumber(&o, rate(now.checksum_failures, base.checksum_failures));
  // Percent of one CPU over the same window (the sampler's figure is per sampler interval).
  o.append(",\"process_cpu_percent\":");
  AppendJsonNumber(&o, std::max(0.0, 100.0 * (now.cpu_seconds - base.cpu_seconds) / dt));
  o.append("}");

  // HTTP /predict round trip (parsed to response ready); queue and compute are the scheduler's
  // and cover both transports.
  o.append(",\"latency_us\":{");
  const std::pair<const char*, const Histogram::Snapshot Sample::*> kLatencies[] = {
      {"http", &Sample::request}, {"queue", &Sample::queue}, {"compute", &Sample::compute}};
  for (size_t i = 0; i < std::size(kLatencies); ++i) {
    const auto& [name, field] = kLatencies[i];
    if (i) o.push_back(',');
    Key(&o, name);
    o.append("{\"window\":");
    AppendSummary(&o, Minus(now.*field, base.*field), 1e6);
    o.append(",\"total\":");
    AppendSummary(&o, now.*field, 1e6);
    o.push_back('}');
  }
  o.append("},\"latency_histogram_us\":");
  AppendBuckets(&o, Minus(now.request, base.request), 1e6);

  const Histogram::Snapshot batch_window = Minus(now.batch, base.batch);
  o.append(",\"batch\":{\"window\":");
  AppendSummary(&o, batch_window, 1);
  o.append(",\"total\":");
  AppendSummary(&o, now.batch, 1);
  o.append(",\"window_distribution\":");
  AppendBuckets(&o, batch_window, 1);
  o.append(",\"distribution\":");
  AppendBuckets(&o, now.batch, 1);
  o.append(",\"max_batch_size\":");
  AppendJsonNumber(&o, config_->scheduler.max_batch_size);
  o.append("}");

  o.append(",\"queue\":{\"depth\":");
  AppendJsonNumber(&o, metrics_->queue_depth.load(std::memory_order_relaxed));
  o.append(",\"capacity\":");
  AppendJsonNumber(&o, config_->scheduler.queue_capacity);
  o.append(",\"instances\":");
  AppendJsonNumber(&o, static_cast<int64_t>(config_->scheduler.instances));
  o.append("}");

  o.append(",\"process\":{\"rss_bytes\":");
  AppendJsonNumber(&o, process.rss_bytes);
  o.append(",\"cpu_seconds\":");
  AppendJsonNumber(&o, now.cpu_seconds);
  o.append(",\"cpu_percent\":");
  AppendJsonNumber(&o, std::max(0.0, 100.0 * (now.cpu_seconds - base.cpu_seconds) / dt));
  o.append(",\"threads\":");
  AppendJsonNumber(&o, process.threads);
  o.append("}");

  // Per-CPU and per-core-kind load, context switches, GPU: the sampler's last reading.
  o.append(",\"system\":");
  if (sampler != nullptr) {
    o.append(sampler->ToJson());
  } else {
    o.append("null");
  }

  o.append(",\"shm\":{\"enabled\":");
  o.append(info_.shm_socket.empty() ? "false" : "true");
  o.append(",\"socket\":");
  AppendJsonString(&o, info_.shm_socket);
  o.append(",\"url\":");
  if (info_.shm_socket.empty()) {
    o.append("null");
  } else {
    AppendJsonString(&o, "shm://" + info_.shm_socket);
  }
  o.append(",\"checksum\":");
  AppendJsonString(&o, config_->shm.checksum);
  o.append(",\"sessions\":");
  AppendJsonNumber(&o, metrics_->shm_sessions.load(std::memory_order_relaxed));
  o.append(",\"sessions_total\":");
  AppendJsonNumber(&o, metrics_->shm_sessions_total.load(std::memory_order_relaxed));
  o.append(",\"bytes_mapped\":");
  AppendJsonNumber(&o, metrics_->shm_bytes_mapped.load(std::memory_order_relaxed));
  o.append(",\"requests\":");
  AppendJsonNumber(&o, now.shm_requests);
  o.append(",\"frames\":");
  AppendJsonNumber(&o, now.frames);
  o.append(",\"zero_copy_frames\":");
  AppendJsonNumber(&o, now.frames);
  o.append(",\"frame_bytes\":");
  AppendJsonNumber(&o, now.frame_bytes);
  o.append(",\"checksum_failures\":");
  AppendJsonNumber(&o, now.checksum_failures);
  o.append(",\"bad_slots\":");
  AppendJsonNumber(&o, metrics_->shm_bad_slots_total.load(std::memory_order_relaxed));
  o.append(",\"client_deaths\":");
  AppendJsonNumber(&o, metrics_->shm_client_deaths_total.load(std::memory_order_relaxed));
  o.append("}");

  o.append(",\"ocr\":{\"available\":");
  o.append(info_.ocr_enabled ? "true" : "false");
  o.append(",\"images_per_s\":");
  if (info_.ocr_enabled) {
    AppendJsonNumber(&o, rate(now.ocr_images, base.ocr_images));
  } else {
    o.append("null");
  }
  o.append(",\"images_total\":");
  AppendJsonNumber(&o, now.ocr_images);
  o.append(",\"cache_hits_total\":");
  AppendJsonNumber(&o, now.ocr_cache_hits);
  {
    // Since start: a hit is a frame identical to its stream's previous one (nothing read).
    const uint64_t misses = metrics_->ocr_cache_misses_total.load(std::memory_order_relaxed);
    const uint64_t looked = now.ocr_cache_hits + misses;
    o.append(",\"cache_hit_ratio\":");
    if (looked == 0) {
      o.append("null");
    } else {
      AppendJsonNumber(&o, static_cast<double>(now.ocr_cache_hits) / static_cast<double>(looked));
    }
    o.append(",\"tiles_reread_total\":");
    AppendJsonNumber(&o, metrics_->ocr_tiles_reread_total.load(std::memory_order_relaxed));
    o.append(",\"model\":");
    AppendJsonString(&o, info_.ocr_model);
  }
  {
    const Histogram::Snapshot latency = metrics_->ocr_seconds.Read();
    o.append(",\"p50_ms\":");
    AppendJsonNumber(&o, latency.Quantile(0.5) * 1e3);
    o.append(",\"p90_ms\":");
    AppendJsonNumber(&o, latency.Quantile(0.9) * 1e3);
    o.append(",\"p99_ms\":");
    AppendJsonNumber(&o, latency.Quantile(0.99) * 1e3);
  }
  o.append("}");

  o.append(",\"placement\":{\"rule\":");
  AppendJsonString(&o, info_.placement_rule);
  o.append(",\"pinning\":");
  o.append(info_.pinning ? "true" : "false");
  o.append(",\"threads\":[");
  for (size_t i = 0; i < info_.threads.size(); ++i) {
    const StatusInfo::Thread& t = info_.threads[i];
    if (i) o.push_back(',');
    o.append("{\"name\":");
    AppendJsonString(&o, t.name);
    o.append(",\"role\":");
    AppendJsonString(&o, t.role);
    o.append(",\"cpus\":");
    AppendCpuList(&o, t.cpus);
    o.append(",\"dedicated\":");
    o.append(t.dedicated ? "true" : "false");
    o.push_back('}');
  }
  o.append("],\"background_cpus\":");
  AppendCpuList(&o, info_.background_cpus);
  o.append(",\"notes\":[");
  for (size_t i = 0; i < info_.notes.size(); ++i) {
    if (i) o.push_back(',');
    AppendJsonString(&o, info_.notes[i]);
  }
  o.append("]}");

  const TargetsConfig& t = config_->targets;
  o.append(",\"targets\":{\"startup_ms\":");
  AppendJsonNumber(&o, t.startup_ms);
  o.append(",\"idle_cpu_percent\":");
  AppendJsonNumber(&o, t.idle_cpu_percent);
  o.append(",\"idle_rss_mb\":");
  AppendJsonNumber(&o, t.idle_rss_mb);
  o.append(",\"http_p50_us\":");
  AppendJsonNumber(&o, t.http_p50_us);
  o.append(",\"http_p99_us\":");
  AppendJsonNumber(&o, t.http_p99_us);
  o.append(",\"shm_p50_us\":");
  AppendJsonNumber(&o, t.shm_p50_us);
  o.append(",\"shm_p99_us\":");
  AppendJsonNumber(&o, t.shm_p99_us);
  o.append(",\"shm_throughput_rps\":");
  AppendJsonNumber(&o, t.shm_throughput_rps);
  o.append("}}");
  return o;
}

}  // namespace brainstem
