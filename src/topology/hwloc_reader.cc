// ReadHwlocTopology: the hwloc object tree and CPU kinds turned into a CpuTopology.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "topology/kind_rules.h"
#include "topology/topology.h"

#ifdef BRAINSTEM_HAVE_HWLOC
#include <hwloc.h>
#endif

namespace brainstem {

#ifndef BRAINSTEM_HAVE_HWLOC

Result<CpuTopology> ReadHwlocTopology(const std::filesystem::path&) {
  return UnavailableError("built without hwloc");
}

#else

namespace {

std::vector<int> CpusOf(hwloc_const_cpuset_t set) {
  std::vector<int> cpus;
  unsigned id;
  hwloc_bitmap_foreach_begin(id, set) { cpus.push_back(static_cast<int>(id)); }
  hwloc_bitmap_foreach_end();
  return cpus;
}

const char* FindInfo(const hwloc_info_s* infos, unsigned count, const char* name) {
  for (unsigned i = 0; i < count; ++i) {
    if (std::strcmp(infos[i].name, name) == 0) return infos[i].value;
  }
  return nullptr;
}

// Owns an hwloc topology; hwloc's C API needs an explicit destroy on every path.
class TopologyHandle {
 public:
  TopologyHandle() { ok_ = hwloc_topology_init(&topology_) == 0; }
  ~TopologyHandle() {
    if (ok_) hwloc_topology_destroy(topology_);
  }
  TopologyHandle(const TopologyHandle&) = delete;
  TopologyHandle& operator=(const TopologyHandle&) = delete;
  bool ok() const { return ok_; }
  hwloc_topology_t get() const { return topology_; }

 private:
  hwloc_topology_t topology_ = nullptr;
  bool ok_ = false;
};

void ReadKinds(hwloc_topology_t topo, std::vector<Core>* cores) {
  const int nr = hwloc_cpukinds_get_nr(topo, 0);
  std::map<int, Core*> by_cpu;
  for (Core& core : *cores) by_cpu[core.cpu] = &core;
  if (nr <= 1) {
    // A single kind, or none: hwloc saw no difference between cores.
    for (Core& core : *cores) core.kind = CoreKind::kPerformance;
    if (nr == 1) {
      hwloc_bitmap_t set = hwloc_bitmap_alloc();
      unsigned nr_infos = 0;
      hwloc_info_s* infos = nullptr;
      if (hwloc_cpukinds_get_info(topo, 0, set, nullptr, &nr_infos, &infos, 0) == 0) {
        const char* mhz = FindInfo(infos, nr_infos, "FrequencyMaxMHz");
        const char* capacity = FindInfo(infos, nr_infos, "LinuxCapacity");
        for (int cpu : CpusOf(set)) {
          if (!by_cpu.count(cpu)) continue;
          if (mhz) by_cpu[cpu]->max_freq_khz = std::atoll(mhz) * 1000;
          if (capacity) by_cpu[cpu]->capacity = std::atoi(capacity);
        }
      }
      hwloc_bitmap_free(set);
    }
    return;
  }
  int best = -1;
  bool efficiency_known = true;
  struct Kind {
    std::vector<int> cpus;
    int efficiency;
    std::string core_type;
  };
  std::vector<Kind> kinds;
  for (int k = 0; k < nr; ++k) {
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    int efficiency = -1;
    unsigned nr_infos = 0;
    hwloc_info_s* infos = nullptr;
    if (hwloc_cpukinds_get_info(topo, static_cast<unsigned>(k), set, &efficiency, &nr_infos, &infos,
                                0) == 0) {
      const char* mhz = FindInfo(infos, nr_infos, "FrequencyMaxMHz");
      const char* capacity = FindInfo(infos, nr_infos, "LinuxCapacity");
      const char* core_type = FindInfo(infos, nr_infos, "CoreType");
      Kind kind{CpusOf(set), efficiency, core_type ? core_type : ""};
      for (int cpu : kind.cpus) {
        if (!by_cpu.count(cpu)) continue;
        if (mhz) by_cpu[cpu]->max_freq_khz = std::atoll(mhz) * 1000;
        if (capacity) by_cpu[cpu]->capacity = std::atoi(capacity);
      }
      if (efficiency < 0) efficiency_known = false;
      best = std::max(best, efficiency);
      kinds.push_back(std::move(kind));
    }
    hwloc_bitmap_free(set);
  }
  // hwloc gives every distinct (capacity, max frequency) pair its own kind and rank, so
  // turbo-binned P cores (same capacity, 300 MHz more) come out as a kind above the other P
  // cores. The capacity the kernel reports is the ground truth hwloc ranked by: when every CPU
  // has one, apply the same 80% rule as the sysfs reader.
  const bool all_capacity =
      std::all_of(cores->begin(), cores->end(), [](const Core& c) { return c.capacity > 0; });
  if (all_capacity) {
    topology_internal::AssignKindsByRatio(cores);
    return;
  }
  // Intel's CoreType (from CPUID) says it directly.
  bool typed =
      std::all_of(kinds.begin(), kinds.end(), [](const Kind& k) { return !k.core_type.empty(); });
  if (typed) {
    for (const Kind& kind : kinds) {
      for (int cpu : kind.cpus) {
        if (by_cpu.count(cpu)) {
          by_cpu[cpu]->kind =
              kind.core_type == "IntelAtom" ? CoreKind::kEfficiency : CoreKind::kPerformance;
        }
      }
    }
    return;
  }
  if (efficiency_known) {
    // Top-ranked kind is performance; a lower-ranked kind is too when its max frequency is
    // within the same 80% margin of the top kind's (turbo binning again).
    int64_t top_freq = 0;
    for (const Kind& kind : kinds) {
      if (kind.efficiency == best && !kind.cpus.empty() && by_cpu.count(kind.cpus[0])) {
        top_freq = std::max(top_freq, by_cpu[kind.cpus[0]]->max_freq_khz);
      }
    }
    for (const Kind& kind : kinds) {
      for (int cpu : kind.cpus) {
        if (!by_cpu.count(cpu)) continue;
        Core* core = by_cpu[cpu];
        const bool close = top_freq > 0 && core->max_freq_khz > 0 &&
                           static_cast<double>(core->max_freq_khz) >=
                               topology_internal::kPerformanceFraction * top_freq;
        core->kind =
            kind.efficiency == best || close ? CoreKind::kPerformance : CoreKind::kEfficiency;
      }
    }
    return;
  }
  topology_internal::AssignKindsByRatio(cores);
}

std::string CacheTypeName(hwloc_obj_cache_type_t type) {
  switch (type) {
    case HWLOC_OBJ_CACHE_DATA:
      return "data";
    case HWLOC_OBJ_CACHE_INSTRUCTION:
      return "instruction";
    default:
      return "unified";
  }
}

}  // namespace

Result<CpuTopology> ReadHwlocTopology(const std::filesystem::path& xml_path) {
  // hwloc dlopens its plugins (OpenGL, OpenCL, PCI, libxml2 with ICU) at the first init; they
  // describe I/O devices we do not use and cost 5-25 ms of start-up on this VM, against ~1 ms
  // for the CPU part. The built-in XML parser reads lstopo's exports without libxml2. A user
  // who sets the variable keeps their choice.
  setenv("HWLOC_PLUGINS_BLACKLIST",
         "hwloc_gl,hwloc_opencl,hwloc_pci,hwloc_xml_libxml,hwloc_cuda,hwloc_nvml,hwloc_rsmi,"
         "hwloc_levelzero",
         /*overwrite=*/0);
  TopologyHandle handle;
  if (!handle.ok()) return InternalError("hwloc_topology_init failed");
  hwloc_topology_t topo = handle.get();
  CpuTopology topology;
  // hwloc drops instruction caches by default; keep them so both readers report the same set.
  hwloc_topology_set_icache_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_ALL);
  if (!xml_path.empty()) {
    if (hwloc_topology_set_xml(topo, xml_path.c_str()) != 0) {
      return InvalidArgumentError("hwloc cannot use XML file " + xml_path.string());
    }
    topology.source = "hwloc-xml:" + xml_path.string();
  } else {
    topology.source = "hwloc";
  }
  if (hwloc_topology_load(topo) != 0) {
    return InternalError("hwloc_topology_load failed" +
                         (xml_path.empty() ? std::string() : " for " + xml_path.string()));
  }
  for (hwloc_obj_t pu = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PU, nullptr); pu != nullptr;
       pu = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PU, pu)) {
    Core core;
    core.cpu = static_cast<int>(pu->os_index);
    hwloc_obj_t physical = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
    hwloc_obj_t package = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pu);
    core.core_id = physical && physical->os_index != HWLOC_UNKNOWN_INDEX
                       ? static_cast<int>(physical->os_index)
                       : core.cpu;
    core.package = package && package->os_index != HWLOC_UNKNOWN_INDEX
                       ? static_cast<int>(package->os_index)
                       : 0;
    if (physical) {
      for (int sibling : CpusOf(physical->cpuset)) {
        if (sibling != core.cpu) core.smt_siblings.push_back(sibling);
      }
    }
    topology.cores.push_back(std::move(core));
  }
  std::sort(topology.cores.begin(), topology.cores.end(),
            [](const Core& a, const Core& b) { return a.cpu < b.cpu; });
  ReadKinds(topo, &topology.cores);

  for (hwloc_obj_type_t type : {HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L1ICACHE, HWLOC_OBJ_L2CACHE,
                                HWLOC_OBJ_L3CACHE, HWLOC_OBJ_L4CACHE}) {
    for (hwloc_obj_t obj = hwloc_get_next_obj_by_type(topo, type, nullptr); obj != nullptr;
         obj = hwloc_get_next_obj_by_type(topo, type, obj)) {
      Cache cache;
      cache.level = static_cast<int>(obj->attr->cache.depth);
      cache.type = CacheTypeName(obj->attr->cache.type);
      cache.size_bytes = static_cast<int64_t>(obj->attr->cache.size);
      cache.cpus = CpusOf(obj->cpuset);
      topology.caches.push_back(std::move(cache));
    }
  }
  std::stable_sort(topology.caches.begin(), topology.caches.end(),
                   [](const Cache& a, const Cache& b) {
                     if (a.level != b.level) return a.level < b.level;
                     if (a.type != b.type) return a.type < b.type;
                     return a.cpus < b.cpus;
                   });

  for (hwloc_obj_t obj = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, nullptr);
       obj != nullptr; obj = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, obj)) {
    NumaNode node;
    node.id = obj->os_index == HWLOC_UNKNOWN_INDEX ? 0 : static_cast<int>(obj->os_index);
    node.cpus = CpusOf(obj->cpuset);
    node.memory_bytes = static_cast<int64_t>(obj->attr->numanode.local_memory);
    topology.numa_nodes.push_back(std::move(node));
  }
  std::sort(topology.numa_nodes.begin(), topology.numa_nodes.end(),
            [](const NumaNode& a, const NumaNode& b) { return a.id < b.id; });
  for (Core& core : topology.cores) {
    for (const NumaNode& node : topology.numa_nodes) {
      if (std::binary_search(node.cpus.begin(), node.cpus.end(), core.cpu)) {
        core.numa_node = node.id;
      }
    }
  }
  return topology;
}

#endif  // BRAINSTEM_HAVE_HWLOC

}  // namespace brainstem
