#include "telemetry/system_sampler.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "telemetry/process_stats.h"

namespace brainstem {
namespace {

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string_view KindOf(const std::vector<std::string>& kinds, int cpu) {
  if (cpu >= 0 && static_cast<size_t>(cpu) < kinds.size()) return kinds[cpu];
  return "unknown";
}

// Prometheus label values and JSON strings share the escapes we need (\\, ", newline).
std::string Escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (static_cast<unsigned char>(c) >= 0x20) {
      out.push_back(c);
    }
  }
  return out;
}

// Whole numbers (byte counts) exactly, fractions with 6 significant digits.
std::string Number(double value) {
  char buffer[32];
  if (value == static_cast<double>(static_cast<int64_t>(value)) && std::abs(value) < 9.0e15) {
    std::snprintf(buffer, sizeof(buffer), "%lld", static_cast<long long>(value));
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  }
  return buffer;
}

void Header(std::string* out, const char* name, const char* type, const char* help) {
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

}  // namespace

Result<std::map<int, CpuTimes>> ParseProcStat(std::string_view text) {
  std::map<int, CpuTimes> cpus;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    // "cpu3 4705 356 584 3699 23 23 0 0 0 0"; the aggregate line is "cpu  ...".
    if (line.size() < 4 || line.compare(0, 3, "cpu") != 0 || line[3] < '0' || line[3] > '9') {
      continue;
    }
    std::istringstream fields(line.substr(3));
    int cpu = -1;
    uint64_t v[8] = {};
    fields >> cpu;
    int read = 0;
    while (read < 8 && fields >> v[read]) ++read;
    // Kernels since 2.6.11 print at least user..steal (8 values); older ones 4 to 7.
    if (cpu < 0 || read < 4) {
      return InvalidArgumentError("malformed /proc/stat line '" + line + "'");
    }
    const uint64_t idle = v[3] + v[4];
    const uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    cpus[cpu] = CpuTimes{busy, busy + idle};
  }
  if (cpus.empty()) return InvalidArgumentError("/proc/stat text has no cpuN line");
  return cpus;
}

double UtilizationPercent(const CpuTimes& before, const CpuTimes& after) {
  if (after.total <= before.total || after.busy < before.busy) return 0;
  const double busy = static_cast<double>(after.busy - before.busy);
  const double total = static_cast<double>(after.total - before.total);
  return std::clamp(100.0 * busy / total, 0.0, 100.0);
}

// NVML through dlopen: the binary must start on machines without the NVIDIA driver, and
// linking libnvidia-ml would make it a hard dependency. Only the handful of entry points we
// call are declared, with NVML's stable C ABI.
class SystemSampler::Nvml {
 public:
  Nvml() {
    library_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (library_ == nullptr) {
      const char* error = dlerror();
      status_ = std::string("NVML not available: ") + (error ? error : "libnvidia-ml.so.1");
      return;
    }
    init_ = reinterpret_cast<int (*)()>(dlsym(library_, "nvmlInit_v2"));
    shutdown_ = reinterpret_cast<int (*)()>(dlsym(library_, "nvmlShutdown"));
    count_ = reinterpret_cast<int (*)(unsigned*)>(dlsym(library_, "nvmlDeviceGetCount_v2"));
    handle_ = reinterpret_cast<int (*)(unsigned, Device*)>(
        dlsym(library_, "nvmlDeviceGetHandleByIndex_v2"));
    name_ =
        reinterpret_cast<int (*)(Device, char*, unsigned)>(dlsym(library_, "nvmlDeviceGetName"));
    utilization_ = reinterpret_cast<int (*)(Device, Utilization*)>(
        dlsym(library_, "nvmlDeviceGetUtilizationRates"));
    memory_ =
        reinterpret_cast<int (*)(Device, Memory*)>(dlsym(library_, "nvmlDeviceGetMemoryInfo"));
    if (!init_ || !shutdown_ || !count_ || !handle_ || !name_ || !utilization_ || !memory_) {
      status_ = "NVML library lacks an expected entry point";
      return;
    }
    int rc = init_();
    if (rc != 0) {
      status_ = "nvmlInit failed with code " + std::to_string(rc);
      return;
    }
    initialized_ = true;
    status_ = "ok";
  }
  ~Nvml() {
    if (initialized_) shutdown_();
    if (library_ != nullptr) dlclose(library_);
  }

  bool available() const { return initialized_; }
  const std::string& status() const { return status_; }

  std::vector<GpuSample> Read() {
    std::vector<GpuSample> gpus;
    if (!initialized_) return gpus;
    unsigned count = 0;
    if (count_(&count) != 0) return gpus;
    for (unsigned i = 0; i < count; ++i) {
      Device device = nullptr;
      if (handle_(i, &device) != 0) continue;
      GpuSample gpu;
      gpu.index = static_cast<int>(i);
      char name[96] = {};
      if (name_(device, name, sizeof(name)) == 0) gpu.name = name;
      Utilization utilization{};
      if (utilization_(device, &utilization) == 0) {
        gpu.utilization_percent = utilization.gpu;
        gpu.memory_utilization_percent = utilization.memory;
      }
      Memory memory{};
      if (memory_(device, &memory) == 0) {
        gpu.memory_used_bytes = static_cast<int64_t>(memory.used);
        gpu.memory_total_bytes = static_cast<int64_t>(memory.total);
      }
      gpus.push_back(std::move(gpu));
    }
    return gpus;
  }

 private:
  using Device = void*;  // nvmlDevice_t
  struct Utilization {   // nvmlUtilization_t
    unsigned gpu;
    unsigned memory;
  };
  struct Memory {  // nvmlMemory_t
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
  };

  void* library_ = nullptr;
  bool initialized_ = false;
  std::string status_;
  int (*init_)() = nullptr;
  int (*shutdown_)() = nullptr;
  int (*count_)(unsigned*) = nullptr;
  int (*handle_)(unsigned, Device*) = nullptr;
  int (*name_)(Device, char*, unsigned) = nullptr;
  int (*utilization_)(Device, Utilization*) = nullptr;
  int (*memory_)(Device, Memory*) = nullptr;
};

SystemSampler::SystemSampler(SystemSamplerOptions options) : options_(std::move(options)) {
  if (options_.enable_gpu) nvml_ = std::make_unique<Nvml>();
  snapshot_.gpu_available = nvml_ && nvml_->available();
  snapshot_.gpu_status = nvml_ ? nvml_->status() : "disabled";
}

SystemSampler::~SystemSampler() { Stop(); }

void SystemSampler::Start() {
  SampleNow();
  thread_ = std::thread([this] { Run(); });
}

void SystemSampler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SystemSampler::Run() {
  if (options_.on_thread_start) {
    options_.on_thread_start();
  } else {
    pthread_setname_np(pthread_self(), "bs-sampler");
  }
  const auto interval = std::chrono::milliseconds(std::max(1, options_.interval_ms));
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (wake_.wait_for(lock, interval, [this] { return stopping_; })) return;
    }
    SampleNow();
  }
}

void SystemSampler::SampleNow() {
  std::lock_guard<std::mutex> sample_lock(sample_mu_);
  // Read everything before taking mu_, so readers of the snapshot never wait on /proc.
  std::map<int, CpuTimes> cpu_times;
  {
    std::ifstream in(options_.proc_stat_path);
    std::stringstream text;
    text << in.rdbuf();
    Result<std::map<int, CpuTimes>> parsed = ParseProcStat(text.str());
    if (parsed.ok()) cpu_times = std::move(parsed).value();
  }
  const double wall = NowSeconds();
  const ProcessStats process = ReadProcessStats();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::vector<GpuSample> gpus = nvml_ ? nvml_->Read() : std::vector<GpuSample>{};

  std::lock_guard<std::mutex> lock(mu_);
  SystemSnapshot& s = snapshot_;
  const double process_cpu = process.cpu_user_seconds + process.cpu_system_seconds;
  if (s.samples > 0) {
    s.interval_seconds = wall - last_wall_seconds_;
    s.process_cpu_percent =
        s.interval_seconds > 0
            ? std::max(0.0, 100.0 * (process_cpu - last_process_cpu_seconds_) / s.interval_seconds)
            : 0;
    s.cpus.clear();
    std::map<std::string, std::pair<CpuTimes, CpuTimes>> by_kind;  // kind -> (before, after)
    std::map<std::string, int> kind_cpus;
    for (const auto& [cpu, now] : cpu_times) {
      auto previous = last_cpu_.find(cpu);
      if (previous == last_cpu_.end()) continue;  // CPU came online since the last reading
      std::string kind(KindOf(options_.cpu_kinds, cpu));
      s.cpus.push_back(CpuUtilization{cpu, kind, UtilizationPercent(previous->second, now)});
      if (now.total >= previous->second.total && now.busy >= previous->second.busy) {
        auto& [before, after] = by_kind[kind];
        before.busy += previous->second.busy;
        before.total += previous->second.total;
        after.busy += now.busy;
        after.total += now.total;
      }
      ++kind_cpus[kind];
    }
    s.kinds.clear();
    for (const auto& [kind, times] : by_kind) {
      s.kinds.push_back(
          KindUtilization{kind, kind_cpus[kind], UtilizationPercent(times.first, times.second)});
    }
  }
  ++s.samples;
  s.rss_bytes = process.rss_bytes;
  s.voluntary_context_switches = usage.ru_nvcsw;
  s.involuntary_context_switches = usage.ru_nivcsw;
  s.gpus = std::move(gpus);
  last_cpu_ = std::move(cpu_times);
  last_process_cpu_seconds_ = process_cpu;
  last_wall_seconds_ = wall;
}

SystemSnapshot SystemSampler::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

void SystemSampler::AppendPrometheus(std::string* out) const {
  const SystemSnapshot s = Snapshot();
  Header(out, "brainstem_cpu_utilization", "gauge",
         "Busy percent of each CPU over the last sampling interval.");
  for (const CpuUtilization& c : s.cpus) {
    out->append("brainstem_cpu_utilization{cpu=\"")
        .append(std::to_string(c.cpu))
        .append("\",kind=\"")
        .append(Escape(c.kind))
        .append("\"} ")
        .append(Number(c.percent))
        .append("\n");
  }
  Header(out, "brainstem_cpu_kind_utilization", "gauge",
         "Busy percent of all CPUs of a kind (performance, efficiency) over the last interval.");
  for (const KindUtilization& k : s.kinds) {
    out->append("brainstem_cpu_kind_utilization{kind=\"")
        .append(Escape(k.kind))
        .append("\"} ")
        .append(Number(k.percent))
        .append("\n");
  }
  Header(out, "process_cpu_percent", "gauge",
         "CPU used by this process over the last interval, in percent of one CPU.");
  out->append("process_cpu_percent ").append(Number(s.process_cpu_percent)).append("\n");
  Header(out, "process_context_switches_total", "counter",
         "Context switches of all threads of this process.");
  out->append("process_context_switches_total{type=\"voluntary\"} ")
      .append(std::to_string(s.voluntary_context_switches))
      .append("\n");
  out->append("process_context_switches_total{type=\"involuntary\"} ")
      .append(std::to_string(s.involuntary_context_switches))
      .append("\n");
  Header(out, "brainstem_gpu_available", "gauge", "1 when NVML reports GPUs, else 0.");
  out->append("brainstem_gpu_available ").append(s.gpu_available ? "1" : "0").append("\n");
  if (s.gpus.empty()) return;
  auto series = [&](const char* name, const char* type, const char* help, auto value_of) {
    Header(out, name, type, help);
    for (const GpuSample& g : s.gpus) {
      out->append(name)
          .append("{gpu=\"")
          .append(std::to_string(g.index))
          .append("\",name=\"")
          .append(Escape(g.name))
          .append("\"} ")
          .append(Number(value_of(g)))
          .append("\n");
    }
  };
  series("brainstem_gpu_utilization_percent", "gauge", "GPU busy percent (NVML).",
         [](const GpuSample& g) { return g.utilization_percent; });
  series("brainstem_gpu_memory_utilization_percent", "gauge",
         "GPU memory controller busy percent (NVML).",
         [](const GpuSample& g) { return g.memory_utilization_percent; });
  series("brainstem_gpu_memory_used_bytes", "gauge", "GPU memory in use (NVML).",
         [](const GpuSample& g) { return static_cast<double>(g.memory_used_bytes); });
  series("brainstem_gpu_memory_total_bytes", "gauge", "GPU memory installed (NVML).",
         [](const GpuSample& g) { return static_cast<double>(g.memory_total_bytes); });
}

std::string SystemSampler::ToJson() const {
  const SystemSnapshot s = Snapshot();
  std::string out = "{\"samples\":" + std::to_string(s.samples);
  out.append(",\"interval_seconds\":").append(Number(s.interval_seconds));
  out.append(",\"cpus\":[");
  for (size_t i = 0; i < s.cpus.size(); ++i) {
    if (i) out.push_back(',');
    out.append("{\"cpu\":")
        .append(std::to_string(s.cpus[i].cpu))
        .append(",\"kind\":\"")
        .append(Escape(s.cpus[i].kind))
        .append("\",\"percent\":")
        .append(Number(s.cpus[i].percent))
        .append("}");
  }
  out.append("],\"kinds\":[");
  for (size_t i = 0; i < s.kinds.size(); ++i) {
    if (i) out.push_back(',');
    out.append("{\"kind\":\"")
        .append(Escape(s.kinds[i].kind))
        .append("\",\"cpus\":")
        .append(std::to_string(s.kinds[i].cpus))
        .append(",\"percent\":")
        .append(Number(s.kinds[i].percent))
        .append("}");
  }
  out.append("],\"process\":{\"cpu_percent\":")
      .append(Number(s.process_cpu_percent))
      .append(",\"rss_bytes\":")
      .append(std::to_string(s.rss_bytes))
      .append(",\"context_switches\":{\"voluntary\":")
      .append(std::to_string(s.voluntary_context_switches))
      .append(",\"involuntary\":")
      .append(std::to_string(s.involuntary_context_switches))
      .append("}},\"gpu\":{\"available\":")
      .append(s.gpu_available ? "true" : "false")
      .append(",\"status\":\"")
      .append(Escape(s.gpu_status))
      .append("\",\"devices\":[");
  for (size_t i = 0; i < s.gpus.size(); ++i) {
    const GpuSample& g = s.gpus[i];
    if (i) out.push_back(',');
    out.append("{\"index\":")
        .append(std::to_string(g.index))
        .append(",\"name\":\"")
        .append(Escape(g.name))
        .append("\",\"utilization_percent\":")
        .append(Number(g.utilization_percent))
        .append(",\"memory_utilization_percent\":")
        .append(Number(g.memory_utilization_percent))
        .append(",\"memory_used_bytes\":")
        .append(std::to_string(g.memory_used_bytes))
        .append(",\"memory_total_bytes\":")
        .append(std::to_string(g.memory_total_bytes))
        .append("}");
  }
  out.append("]}}");
  return out;
}

}  // namespace brainstem
