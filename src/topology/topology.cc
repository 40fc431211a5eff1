#include "topology/topology.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace brainstem {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

Result<int> ParseCpuId(std::string_view item, std::string_view whole) {
  item = Trim(item);
  int value = -1;
  auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
  if (item.empty() || ec != std::errc() || end != item.data() + item.size()) {
    // Built by appending: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string&&.
    std::string message = "'";
    message.append(item).append("' in CPU list '").append(whole).append("' is not a CPU number");
    return InvalidArgumentError(std::move(message));
  }
  if (value < 0 || value > kMaxCpuId) {
    return InvalidArgumentError("CPU " + std::string(item) + " in '" + std::string(whole) +
                                "' is out of range 0-" + std::to_string(kMaxCpuId));
  }
  return value;
}

// Exact when the size is a whole number of the unit (caches), else one decimal (memory).
std::string FormatBytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  double value = static_cast<double>(bytes);
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char buffer[32];
  if (value == static_cast<double>(static_cast<int64_t>(value))) {
    std::snprintf(buffer, sizeof(buffer), "%lld %s", static_cast<long long>(value), kUnits[unit]);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.1f %s", value, kUnits[unit]);
  }
  return buffer;
}

}  // namespace

std::string_view CoreKindName(CoreKind kind) {
  switch (kind) {
    case CoreKind::kPerformance:
      return "performance";
    case CoreKind::kEfficiency:
      return "efficiency";
    case CoreKind::kUnknown:
      return "unknown";
  }
  return "unknown";
}

bool CpuTopology::hybrid() const {
  return !CpusOfKind(CoreKind::kPerformance, true).empty() &&
         !CpusOfKind(CoreKind::kEfficiency, true).empty();
}

std::vector<int> CpuTopology::CpusOfKind(CoreKind kind, bool include_disallowed) const {
  std::vector<int> out;
  for (const Core& core : cores) {
    if (core.kind == kind && (core.allowed || include_disallowed)) out.push_back(core.cpu);
  }
  return out;
}

std::vector<int> CpuTopology::AllowedCpus() const {
  std::vector<int> out;
  for (const Core& core : cores) {
    if (core.allowed) out.push_back(core.cpu);
  }
  return out;
}

const Core* CpuTopology::FindCpu(int cpu) const {
  auto it = std::lower_bound(cores.begin(), cores.end(), cpu,
                             [](const Core& core, int id) { return core.cpu < id; });
  return it != cores.end() && it->cpu == cpu ? &*it : nullptr;
}

std::vector<std::string> CpuTopology::KindLabels() const {
  std::vector<std::string> labels;
  for (const Core& core : cores) {
    if (static_cast<size_t>(core.cpu) >= labels.size()) labels.resize(core.cpu + 1, "unknown");
    labels[core.cpu] = std::string(CoreKindName(core.kind));
  }
  return labels;
}

std::vector<std::vector<int>> CpuTopology::PhysicalCores() const {
  std::map<std::pair<int, int>, std::vector<int>> by_core;
  for (const Core& core : cores) by_core[{core.package, core.core_id}].push_back(core.cpu);
  std::vector<std::vector<int>> out;
  for (auto& [key, cpus] : by_core) out.push_back(std::move(cpus));
  // Order by first logical CPU, the order people read CPU lists in.
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<int>> ParseCpuList(std::string_view text) {
  std::set<int> cpus;
  std::string_view rest = text;
  if (Trim(rest).empty()) return std::vector<int>{};
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    if (item.empty()) {
      return InvalidArgumentError("empty item in CPU list '" + std::string(text) + "'");
    }
    size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      ASSIGN_OR_RETURN(int cpu, ParseCpuId(item, text));
      cpus.insert(cpu);
    } else {
      ASSIGN_OR_RETURN(int first, ParseCpuId(item.substr(0, dash), text));
      ASSIGN_OR_RETURN(int last, ParseCpuId(item.substr(dash + 1), text));
      if (last < first) {
        return InvalidArgumentError("range '" + std::string(item) + "' in CPU list '" +
                                    std::string(text) + "' runs backwards");
      }
      for (int cpu = first; cpu <= last; ++cpu) cpus.insert(cpu);
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return std::vector<int>(cpus.begin(), cpus.end());
}

std::string FormatCpuList(const std::vector<int>& cpus) {
  std::vector<int> sorted = cpus;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string out;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(sorted[i]);
    if (j > i) {
      out.push_back('-');
      out += std::to_string(sorted[j]);
    }
    i = j + 1;
  }
  return out;
}

Status ApplyCpuOverrides(std::string_view performance_cores, std::string_view efficiency_cores,
                         CpuTopology* topology) {
  auto parse = [&](std::string_view key, std::string_view text) -> Result<std::vector<int>> {
    Result<std::vector<int>> cpus = ParseCpuList(text);
    if (!cpus.ok()) return InvalidArgumentError(std::string(key) + ": " + cpus.status().message());
    for (int cpu : *cpus) {
      if (topology->FindCpu(cpu) == nullptr) {
        return InvalidArgumentError(std::string(key) + ": CPU " + std::to_string(cpu) +
                                    " does not exist on this machine (CPUs: " +
                                    FormatCpuList(topology->AllowedCpus()) + ")");
      }
    }
    return cpus;
  };
  ASSIGN_OR_RETURN(std::vector<int> performance, parse("cpu.performance_cores", performance_cores));
  ASSIGN_OR_RETURN(std::vector<int> efficiency, parse("cpu.efficiency_cores", efficiency_cores));
  if (performance.empty() && efficiency.empty()) return Status::Ok();
  for (int cpu : performance) {
    if (std::binary_search(efficiency.begin(), efficiency.end(), cpu)) {
      return InvalidArgumentError("cpu.performance_cores and cpu.efficiency_cores both name CPU " +
                                  std::to_string(cpu));
    }
  }
  const CoreKind unnamed = performance.empty()  ? CoreKind::kPerformance
                           : efficiency.empty() ? CoreKind::kEfficiency
                                                : CoreKind::kUnknown;
  std::vector<Core> cores = topology->cores;
  for (Core& core : cores) {
    if (std::binary_search(performance.begin(), performance.end(), core.cpu)) {
      core.kind = CoreKind::kPerformance;
    } else if (std::binary_search(efficiency.begin(), efficiency.end(), core.cpu)) {
      core.kind = CoreKind::kEfficiency;
    } else {
      core.kind = unnamed;
    }
  }
  bool any_performance = std::any_of(cores.begin(), cores.end(), [](const Core& c) {
    return c.kind == CoreKind::kPerformance && c.allowed;
  });
  if (!any_performance) {
    return InvalidArgumentError(
        "cpu.efficiency_cores: leaves no performance CPU this process may run on");
  }
  topology->cores = std::move(cores);
  topology->source += "+overrides";
  return Status::Ok();
}

Result<PinningMode> ParsePinningMode(std::string_view text) {
  if (text == "auto") return PinningMode::kAuto;
  if (text == "off") return PinningMode::kOff;
  return InvalidArgumentError("cpu.pinning: '" + std::string(text) + "' is not one of auto, off");
}

CpuTopology DetectTopology() {
  Result<CpuTopology> found = ReadHwlocTopology();
  if (!found.ok() || found->cores.empty()) found = ReadSysfsTopology("/");
  CpuTopology topology;
  if (found.ok() && !found->cores.empty()) {
    topology = std::move(found).value();
  } else {
    unsigned n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
      Core core;
      core.cpu = static_cast<int>(i);
      core.core_id = static_cast<int>(i);
      core.kind = CoreKind::kPerformance;
      topology.cores.push_back(core);
    }
    topology.numa_nodes.push_back(NumaNode{0, topology.AllowedCpus(), 0});
    topology.source = "fallback";
  }
  // Pinning outside the affinity mask (a container's cpuset, taskset) fails with EINVAL, so
  // such CPUs are kept for display but never planned on.
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof(mask), &mask) == 0) {
    for (Core& core : topology.cores) {
      core.allowed = core.cpu < CPU_SETSIZE && CPU_ISSET(core.cpu, &mask);
    }
  }
  return topology;
}

std::string DescribeTopology(const CpuTopology& topology) {
  std::ostringstream out;
  std::vector<std::vector<int>> physical = topology.PhysicalCores();
  size_t smt_cores = std::count_if(physical.begin(), physical.end(),
                                   [](const std::vector<int>& c) { return c.size() > 1; });
  out << "source: " << topology.source << "\n";
  out << "logical CPUs: " << topology.cores.size() << " (" << physical.size() << " physical cores"
      << (smt_cores ? ", SMT on " + std::to_string(smt_cores) : "")
      << (smt_cores ? " of them" : ", no SMT") << ")"
      << (topology.hybrid() ? ", hybrid" : ", uniform") << "\n";
  std::vector<int> disallowed;
  for (const Core& core : topology.cores) {
    if (!core.allowed) disallowed.push_back(core.cpu);
  }
  if (!disallowed.empty()) {
    out << "outside this process's affinity: " << FormatCpuList(disallowed) << "\n";
  }
  for (CoreKind kind : {CoreKind::kPerformance, CoreKind::kEfficiency, CoreKind::kUnknown}) {
    std::vector<int> cpus = topology.CpusOfKind(kind, true);
    if (cpus.empty()) continue;
    int64_t min_capacity = INT64_MAX, max_capacity = 0, min_mhz = INT64_MAX, max_mhz = 0;
    for (int cpu : cpus) {
      const Core* core = topology.FindCpu(cpu);
      min_capacity = std::min<int64_t>(min_capacity, core->capacity);
      max_capacity = std::max<int64_t>(max_capacity, core->capacity);
      min_mhz = std::min(min_mhz, core->max_freq_khz / 1000);
      max_mhz = std::max(max_mhz, core->max_freq_khz / 1000);
    }
    // A range where cores of one kind differ (turbo-binned cores report a higher maximum).
    auto range = [](int64_t low, int64_t high) {
      return low == high ? std::to_string(low) : std::to_string(low) + "-" + std::to_string(high);
    };
    out << "  " << CoreKindName(kind) << ": CPUs " << FormatCpuList(cpus) << " (" << cpus.size()
        << ")";
    if (min_capacity > 0) out << ", capacity " << range(min_capacity, max_capacity);
    if (min_mhz > 0) out << ", max " << range(min_mhz, max_mhz) << " MHz";
    out << "\n";
  }
  out << "cores (logical CPUs per physical core):";
  for (const std::vector<int>& core : physical) out << " [" << FormatCpuList(core) << "]";
  out << "\n";
  out << "caches:\n";
  std::map<std::tuple<int, std::string, int64_t, size_t>, std::vector<std::string>> groups;
  for (const Cache& cache : topology.caches) {
    groups[{cache.level, cache.type, cache.size_bytes, cache.cpus.size()}].push_back(
        FormatCpuList(cache.cpus));
  }
  for (const auto& [key, instances] : groups) {
    const auto& [level, type, size, width] = key;
    out << "  L" << level << " " << type << " " << FormatBytes(size) << " x" << instances.size()
        << ", each shared by " << width << " CPU" << (width > 1 ? "s" : "") << ":";
    for (const std::string& list : instances) out << " [" << list << "]";
    out << "\n";
  }
  out << "NUMA nodes: " << topology.numa_nodes.size() << "\n";
  for (const NumaNode& node : topology.numa_nodes) {
    out << "  node " << node.id << ": CPUs " << FormatCpuList(node.cpus);
    if (node.memory_bytes > 0) out << ", " << FormatBytes(node.memory_bytes);
    out << "\n";
  }
  return out.str();
}

}  // namespace brainstem
