// CpuTopology: what the processor looks like to the placement code: every logical CPU with its
// physical core, package, NUMA node and kind (performance or efficiency on hybrid chips), the
// caches and which CPUs share them, and the NUMA nodes. Detected with hwloc (its CPU kinds
// rank cores by efficiency) and, when hwloc is unavailable or finds nothing, from Linux sysfs
// (cpu_capacity, then cpuinfo_max_freq). Both readers take an explicit source (a sysfs root,
// an hwloc XML file) so that recorded machines can be parsed in tests. Config overrides
// (`cpu.performance_cores`, `cpu.efficiency_cores`) are applied on top by ApplyCpuOverrides.
// Thread-compatible: a CpuTopology is an immutable value once built; the free functions are
// thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace brainstem {

enum class CoreKind { kPerformance, kEfficiency, kUnknown };

// "performance" | "efficiency" | "unknown": the label used in metrics and output.
std::string_view CoreKindName(CoreKind kind);

// One logical CPU (hardware thread).
struct Core {
  int cpu = 0;      // logical CPU id, as the kernel numbers it (sched_setaffinity's index)
  int core_id = 0;  // physical core id within the package (not unique across packages)
  int package = 0;
  int numa_node = 0;
  CoreKind kind = CoreKind::kUnknown;
  int capacity = 0;               // Linux cpu_capacity (1024 = the biggest core); 0 = not exposed
  int64_t max_freq_khz = 0;       // cpuinfo_max_freq; 0 = not exposed
  std::vector<int> smt_siblings;  // other logical CPUs of the same physical core (not `cpu`)
  bool allowed = true;  // in this process's affinity mask / cpuset; placement skips others
};

struct Cache {
  int level = 0;     // 1, 2, 3
  std::string type;  // "data" | "instruction" | "unified"
  int64_t size_bytes = 0;
  std::vector<int> cpus;  // logical CPUs that share this cache instance, ascending
};

struct NumaNode {
  int id = 0;
  std::vector<int> cpus;
  int64_t memory_bytes = 0;  // 0 = unknown
};

struct CpuTopology {
  std::vector<Core> cores;           // ascending by cpu
  std::vector<Cache> caches;         // one entry per cache instance, by level then first cpu
  std::vector<NumaNode> numa_nodes;  // ascending by id
  // Where the data came from: "hwloc", "hwloc-xml:<path>", "sysfs:<root>", "fallback"; with
  // "+overrides" appended when the config changed the kinds.
  std::string source;

  // True when both performance and efficiency CPUs exist.
  bool hybrid() const;
  // Logical CPUs of a kind, ascending; only allowed ones unless include_disallowed.
  std::vector<int> CpusOfKind(CoreKind kind, bool include_disallowed = false) const;
  std::vector<int> AllowedCpus() const;
  // nullptr when there is no such CPU. The pointer lives as long as this topology.
  const Core* FindCpu(int cpu) const;
  // Label per logical CPU id ("performance", ...), sized max cpu id + 1; ids without a CPU
  // (holes) are "unknown". This is what the system sampler groups utilization by.
  std::vector<std::string> KindLabels() const;
  // Physical cores: each entry is the ascending logical CPUs of one (package, core_id).
  std::vector<std::vector<int>> PhysicalCores() const;
};

// Parses a Linux CPU list ("0-3,8,10-11"; whitespace around items allowed) into ascending,
// de-duplicated ids. The empty string (or only whitespace) is the empty list.
// Errors: kInvalidArgument naming the offending item (not a number, reversed range, id above
// kMaxCpuId).
inline constexpr int kMaxCpuId = 4095;
Result<std::vector<int>> ParseCpuList(std::string_view text);

// The inverse: "0-3,8,10-11"; "" for an empty list.
std::string FormatCpuList(const std::vector<int>& cpus);

// Reads the topology from Linux sysfs under `root` ("/" for this machine; tests pass a
// fixture directory holding sys/devices/system/{cpu,node}). Kinds: when cpu_capacity (else
// cpuinfo_max_freq) differs between CPUs, CPUs within 80% of the largest value are
// performance and the rest efficiency (the margin keeps turbo-binned "favoured" cores in the
// performance class); when all are equal or the files are absent, every CPU is performance
// (a uniform machine has nothing slower to prefer).
// Errors: kNotFound when root holds no sys/devices/system/cpu/online; kInvalidArgument for an
// unparsable file (naming it).
Result<CpuTopology> ReadSysfsTopology(const std::filesystem::path& root = "/");

// Reads the topology with hwloc: from an XML export (lstopo --of xml) when xml_path is given,
// else from this machine (hwloc's Linux backend, restricted to the CPUs this process may use).
// Kinds: hwloc's CPU kinds ranked by efficiency; the kind(s) with the highest efficiency rank
// are performance, the others efficiency; a single kind (or none) means a uniform machine.
// capacity and max_freq_khz come from the kinds' LinuxCapacity / FrequencyMaxMHz infos.
// hwloc's I/O plugins are skipped (HWLOC_PLUGINS_BLACKLIST, unless set): they cost 5-25 ms.
// REQUIRES: no other thread is calling setenv/getenv (call at start-up).
// Errors: kUnavailable when built without hwloc; kInternal when hwloc fails to load.
Result<CpuTopology> ReadHwlocTopology(const std::filesystem::path& xml_path = {});

// This machine: hwloc, else sysfs, else one uniform CPU per std::thread::hardware_concurrency.
// CPUs outside this process's affinity mask are marked !allowed. Never fails. About 1 ms with
// hwloc on this VM. REQUIRES: as ReadHwlocTopology (start-up, before other threads).
CpuTopology DetectTopology();

// Applies `cpu.performance_cores` / `cpu.efficiency_cores` (CPU lists; empty = not set):
//  - only performance set: those CPUs are performance, every other CPU efficiency;
//  - only efficiency set: those are efficiency, every other CPU performance;
//  - both set: as listed; CPUs named in neither become kUnknown and placement leaves them
//    alone (a way to keep brainstem off CPUs reserved for something else).
// Errors: kInvalidArgument naming the key for a bad list, a CPU this machine does not have, a
// CPU in both lists, or a performance list that would leave no performance CPU.
Status ApplyCpuOverrides(std::string_view performance_cores, std::string_view efficiency_cores,
                         CpuTopology* topology);

// `cpu.pinning`: auto (pin by the placement plan) | off (only name threads).
enum class PinningMode { kAuto, kOff };
// Errors: kInvalidArgument naming `cpu.pinning` and the allowed values.
Result<PinningMode> ParsePinningMode(std::string_view text);

// Human-readable description (what `brainstem topology` prints): cores by kind, SMT, caches,
// NUMA nodes.
std::string DescribeTopology(const CpuTopology& topology);

}  // namespace brainstem
