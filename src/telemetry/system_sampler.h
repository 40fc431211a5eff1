// SystemSampler: a background thread that, once per interval (default 1 s), reads how busy
// the machine and this process are: per-CPU utilization from /proc/stat (grouped by core kind,
// e.g. performance/efficiency), process CPU% and RSS, context switches, and GPU utilization
// and memory through NVML when libnvidia-ml is installed (dlopen'ed at start; absence is
// reported as "unavailable", not an error). The latest values are served to /metrics
// (AppendPrometheus) and a JSON status endpoint (ToJson) without touching /proc on the request
// path.
//
// Telemetry does not depend on src/topology: the caller passes each CPU's kind label (from
// CpuTopology::KindLabels()) and a thread-start hook (to pin and name the thread with
// PinCurrentThread(plan, Role::kBackground, 0, "bs-sampler")).
// Thread-safe: Snapshot/AppendPrometheus/ToJson/SampleNow may be called from any thread while
// the sampler runs.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"

namespace brainstem {

// Jiffies of one /proc/stat cpu line. busy = user+nice+system+irq+softirq+steal (guest time is
// already inside user); idle = idle+iowait. Steal counts as busy, as in psutil and top's
// "100 - idle": on a VM it is time this CPU was not available to us.
struct CpuTimes {
  uint64_t busy = 0;
  uint64_t total = 0;
};

// Parses /proc/stat text into per-CPU times keyed by CPU id (the aggregate "cpu " line is
// skipped). Errors: kInvalidArgument naming the line when a cpuN line is malformed;
// kInvalidArgument when there is no cpuN line at all.
Result<std::map<int, CpuTimes>> ParseProcStat(std::string_view text);

// Busy share of the interval between two readings, in [0, 100]; 0 when no time passed or the
// counters went backwards (CPU hot-unplug resets them).
double UtilizationPercent(const CpuTimes& before, const CpuTimes& after);

struct SystemSamplerOptions {
  int interval_ms = 1000;
  // Kind label per CPU id ("performance", "efficiency", ...); CPUs beyond it are "unknown".
  std::vector<std::string> cpu_kinds;
  // Runs first on the sampler thread; by default the thread names itself "bs-sampler".
  std::function<void()> on_thread_start;
  bool enable_gpu = true;                     // false: never dlopen NVML
  std::string proc_stat_path = "/proc/stat";  // tests point this at a file they write
};

struct CpuUtilization {
  int cpu = 0;
  std::string kind;
  double percent = 0;  // [0, 100]
};

struct KindUtilization {
  std::string kind;
  int cpus = 0;
  double percent = 0;  // busy jiffies / all jiffies of the kind's CPUs, [0, 100]
};

struct GpuSample {
  int index = 0;
  std::string name;
  double utilization_percent = 0;
  double memory_utilization_percent = 0;  // memory controller busy share, not occupancy
  int64_t memory_used_bytes = 0;
  int64_t memory_total_bytes = 0;
};

struct SystemSnapshot {
  int64_t samples = 0;          // readings taken; rates need two, so values are 0 until then
  double interval_seconds = 0;  // wall time between the last two readings
  std::vector<CpuUtilization> cpus;
  std::vector<KindUtilization> kinds;
  // Percent of one CPU, like top: a process using two CPUs fully shows 200.
  double process_cpu_percent = 0;
  int64_t rss_bytes = 0;
  // Whole process, all threads (getrusage: /proc/self/status would count the main thread only).
  int64_t voluntary_context_switches = 0;
  int64_t involuntary_context_switches = 0;
  bool gpu_available = false;
  std::string gpu_status;  // "ok", or why GPU figures are absent
  std::vector<GpuSample> gpus;
};

class SystemSampler {
 public:
  explicit SystemSampler(SystemSamplerOptions options);
  // Stops the thread if running.
  ~SystemSampler();
  SystemSampler(const SystemSampler&) = delete;
  SystemSampler& operator=(const SystemSampler&) = delete;

  // Takes a first reading and starts the thread. REQUIRES: not started.
  void Start();
  // Wakes and joins the thread; prompt (does not wait out the interval). Idempotent.
  void Stop();

  // Takes one reading on the calling thread (the thread calls this every interval).
  void SampleNow();

  SystemSnapshot Snapshot() const;

  // Prometheus text: brainstem_cpu_utilization{cpu,kind}, brainstem_cpu_kind_utilization{kind},
  // process_cpu_percent, process_context_switches_total{type}, brainstem_gpu_available and
  // brainstem_gpu_*{gpu,name} when NVML is present. RSS is left to ServerMetrics
  // (process_resident_memory_bytes) so no family is exported twice.
  void AppendPrometheus(std::string* out) const;

  // {"samples":..,"interval_seconds":..,"cpus":[{"cpu":0,"kind":"performance","percent":..}],
  //  "kinds":[..],"process":{"cpu_percent":..,"rss_bytes":..,"context_switches":{..}},
  //  "gpu":{"available":false,"status":"..","devices":[..]}}
  std::string ToJson() const;

 private:
  class Nvml;
  void Run();

  // Constant after construction.
  const SystemSamplerOptions options_;
  std::unique_ptr<Nvml> nvml_;  // null when disabled

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;                // guarded by mu_
  SystemSnapshot snapshot_;              // guarded by mu_
  std::map<int, CpuTimes> last_cpu_;     // guarded by mu_
  double last_process_cpu_seconds_ = 0;  // guarded by mu_
  double last_wall_seconds_ = 0;         // guarded by mu_
  std::mutex sample_mu_;  // serializes SampleNow (the /proc reads happen outside mu_)
  std::thread thread_;
};

}  // namespace brainstem
