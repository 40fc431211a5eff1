// ReadSysfsTopology and the kind rule: Linux sysfs files under a root directory.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "topology/kind_rules.h"
#include "topology/topology.h"

namespace brainstem {
namespace topology_internal {

void AssignKindsByRatio(std::vector<Core>* cores) {
  auto classify = [cores](auto value_of) {
    int64_t low = INT64_MAX, high = 0;
    for (const Core& core : *cores) {
      int64_t v = value_of(core);
      if (v <= 0) return false;  // some CPU does not report it: the rule cannot be applied
      low = std::min(low, v);
      high = std::max(high, v);
    }
    if (cores->empty() || low == high) return false;
    for (Core& core : *cores) {
      core.kind = static_cast<double>(value_of(core)) >= kPerformanceFraction * high
                      ? CoreKind::kPerformance
                      : CoreKind::kEfficiency;
    }
    return true;
  };
  if (classify([](const Core& c) { return int64_t{c.capacity}; })) return;
  if (classify([](const Core& c) { return c.max_freq_khz; })) return;
  for (Core& core : *cores) core.kind = CoreKind::kPerformance;
}

}  // namespace topology_internal

namespace {

namespace fs = std::filesystem;

// The first line of a sysfs file, trimmed; nullopt when the file is absent or unreadable.
std::optional<std::string> ReadLine(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
  return line;
}

Result<int64_t> ReadInt(const fs::path& path, int64_t missing) {
  std::optional<std::string> line = ReadLine(path);
  if (!line) return missing;
  try {
    size_t used = 0;
    int64_t value = std::stoll(*line, &used);
    if (used != line->size()) throw std::invalid_argument("trailing");
    return value;
  } catch (const std::exception&) {
    return InvalidArgumentError(path.string() + ": '" + *line + "' is not an integer");
  }
}

Result<std::vector<int>> ReadCpuListFile(const fs::path& path) {
  std::optional<std::string> line = ReadLine(path);
  if (!line) return NotFoundError(path.string() + " does not exist");
  Result<std::vector<int>> cpus = ParseCpuList(*line);
  if (!cpus.ok()) return InvalidArgumentError(path.string() + ": " + cpus.status().message());
  return cpus;
}

// "48K", "2048K", "30M", "1G" or plain bytes.
Result<int64_t> ParseCacheSize(const fs::path& path, const std::string& text) {
  try {
    size_t used = 0;
    int64_t value = std::stoll(text, &used);
    std::string unit = text.substr(used);
    if (unit.empty()) return value;
    if (unit == "K") return value << 10;
    if (unit == "M") return value << 20;
    if (unit == "G") return value << 30;
  } catch (const std::exception&) {
  }
  return InvalidArgumentError(path.string() + ": '" + text + "' is not a cache size");
}

std::string LowerType(const std::string& type) {
  if (type == "Data") return "data";
  if (type == "Instruction") return "instruction";
  if (type == "Unified") return "unified";
  return type;
}

}  // namespace

Result<CpuTopology> ReadSysfsTopology(const fs::path& root) {
  const fs::path cpu_dir = root / "sys/devices/system/cpu";
  if (!fs::exists(cpu_dir / "online")) {
    return NotFoundError((cpu_dir / "online").string() + " does not exist: not a Linux sysfs");
  }
  ASSIGN_OR_RETURN(std::vector<int> online, ReadCpuListFile(cpu_dir / "online"));
  CpuTopology topology;
  topology.source = "sysfs:" + root.string();
  std::map<std::tuple<int, std::string, std::vector<int>>, Cache> caches;
  for (int cpu : online) {
    const fs::path dir = cpu_dir / ("cpu" + std::to_string(cpu));
    Core core;
    core.cpu = cpu;
    ASSIGN_OR_RETURN(int64_t core_id, ReadInt(dir / "topology/core_id", cpu));
    ASSIGN_OR_RETURN(int64_t package, ReadInt(dir / "topology/physical_package_id", 0));
    ASSIGN_OR_RETURN(int64_t capacity, ReadInt(dir / "cpu_capacity", 0));
    ASSIGN_OR_RETURN(int64_t max_freq, ReadInt(dir / "cpufreq/cpuinfo_max_freq", 0));
    core.core_id = static_cast<int>(core_id);
    core.package = static_cast<int>(package);
    core.capacity = static_cast<int>(capacity);
    core.max_freq_khz = max_freq;
    // Kernels before 5.7 have only thread_siblings_list; newer ones add core_cpus_list.
    Result<std::vector<int>> siblings = ReadCpuListFile(dir / "topology/thread_siblings_list");
    if (!siblings.ok()) siblings = ReadCpuListFile(dir / "topology/core_cpus_list");
    if (siblings.ok()) {
      for (int sibling : *siblings) {
        if (sibling != cpu) core.smt_siblings.push_back(sibling);
      }
    }
    for (int index = 0;; ++index) {
      const fs::path cache_dir = dir / "cache" / ("index" + std::to_string(index));
      if (!fs::exists(cache_dir / "level")) break;
      Cache cache;
      ASSIGN_OR_RETURN(int64_t level, ReadInt(cache_dir / "level", 0));
      cache.level = static_cast<int>(level);
      cache.type = LowerType(ReadLine(cache_dir / "type").value_or("unified"));
      std::string size_text = ReadLine(cache_dir / "size").value_or("0");
      ASSIGN_OR_RETURN(cache.size_bytes, ParseCacheSize(cache_dir / "size", size_text));
      Result<std::vector<int>> shared = ReadCpuListFile(cache_dir / "shared_cpu_list");
      cache.cpus = shared.ok() ? *shared : std::vector<int>{cpu};
      caches.emplace(std::make_tuple(cache.level, cache.type, cache.cpus), cache);
    }
    topology.cores.push_back(std::move(core));
  }
  topology_internal::AssignKindsByRatio(&topology.cores);

  for (auto& [key, cache] : caches) topology.caches.push_back(std::move(cache));
  std::stable_sort(topology.caches.begin(), topology.caches.end(),
                   [](const Cache& a, const Cache& b) {
                     if (a.level != b.level) return a.level < b.level;
                     if (a.type != b.type) return a.type < b.type;
                     return a.cpus < b.cpus;
                   });

  const fs::path node_dir = root / "sys/devices/system/node";
  Result<std::vector<int>> nodes = ReadCpuListFile(node_dir / "online");
  if (nodes.ok()) {
    for (int id : *nodes) {
      const fs::path dir = node_dir / ("node" + std::to_string(id));
      NumaNode node;
      node.id = id;
      Result<std::vector<int>> cpus = ReadCpuListFile(dir / "cpulist");
      if (cpus.ok()) node.cpus = *cpus;
      // "Node 0 MemTotal:       16777216 kB"
      std::ifstream meminfo(dir / "meminfo");
      std::string line;
      while (std::getline(meminfo, line)) {
        std::istringstream words(line);
        std::string node_word, node_id, key;
        int64_t kb = 0;
        if (words >> node_word >> node_id >> key >> kb && key == "MemTotal:") {
          node.memory_bytes = kb * 1024;
        }
      }
      topology.numa_nodes.push_back(std::move(node));
    }
  }
  if (topology.numa_nodes.empty()) {
    // No NUMA support in the kernel: one node holds everything.
    topology.numa_nodes.push_back(NumaNode{0, online, 0});
  }
  for (Core& core : topology.cores) {
    for (const NumaNode& node : topology.numa_nodes) {
      if (std::binary_search(node.cpus.begin(), node.cpus.end(), core.cpu)) {
        core.numa_node = node.id;
      }
    }
  }
  return topology;
}

}  // namespace brainstem
