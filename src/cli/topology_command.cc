// `brainstem topology`: what this machine looks like (CPU kinds, SMT, caches, NUMA) and where
// each brainstem thread would run for the configured (or given) thread counts.
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "topology/placement.h"
#include "topology/topology.h"

namespace brainstem {
namespace {

struct TopologyFlags {
  ConfigFlags config;
  std::optional<int> io_threads;
  std::optional<int> workers;
  std::optional<int> shm_threads;
  std::string pinning = "auto";
  std::string performance_cores;
  std::string efficiency_cores;
  std::string sysfs_root;
  std::string hwloc_xml;
};

int RunTopology(const TopologyFlags& flags) {
  Result<ConfigInputs> inputs = flags.config.ToInputs();
  if (!inputs.ok()) {
    std::cerr << "brainstem: " << inputs.status().message() << "\n";
    return 2;
  }
  Result<Config> config = LoadConfig(*inputs);
  if (!config.ok()) {
    std::cerr << "brainstem: " << config.status().message() << "\n";
    return 2;
  }
  Result<PinningMode> pinning = ParsePinningMode(flags.pinning);
  if (!pinning.ok()) {
    std::cerr << "brainstem: " << pinning.status().message() << "\n";
    return 2;
  }

  CpuTopology topology;
  if (!flags.hwloc_xml.empty()) {
    Result<CpuTopology> read = ReadHwlocTopology(flags.hwloc_xml);
    if (!read.ok()) {
      std::cerr << "brainstem: " << read.status().message() << "\n";
      return 1;
    }
    topology = std::move(read).value();
  } else if (!flags.sysfs_root.empty()) {
    Result<CpuTopology> read = ReadSysfsTopology(flags.sysfs_root);
    if (!read.ok()) {
      std::cerr << "brainstem: " << read.status().message() << "\n";
      return 1;
    }
    topology = std::move(read).value();
  } else {
    topology = DetectTopology();
  }
  Status overridden = ApplyCpuOverrides(flags.performance_cores, flags.efficiency_cores, &topology);
  if (!overridden.ok()) {
    std::cerr << "brainstem: " << overridden.message() << "\n";
    return 2;
  }

  PlanRequest request;
  request.io_threads = flags.io_threads.value_or(config->server.io_threads);
  request.model_workers = flags.workers.value_or(config->scheduler.instances);
  request.shm_threads = flags.shm_threads.value_or(config->shm.enabled ? 1 : 0);
  request.pinning = *pinning;
  PlacementPlan plan = MakePlan(topology, request);

  std::cout << DescribeTopology(topology) << "\n";
  std::cout << "threads requested: " << request.io_threads << " I/O, " << request.model_workers
            << " model workers, " << request.shm_threads << " shm\n";
  std::cout << DescribePlan(plan, topology);
  std::cout << "library pools (set at start-up unless already in the environment): "
               "OMP_NUM_THREADS=1 OMP_THREAD_LIMIT=1 OMP_WAIT_POLICY=PASSIVE "
               "OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1\n";
  return 0;
}

}  // namespace

std::function<int()> RegisterTopology(CLI::App* app) {
  CLI::App* command =
      app->add_subcommand("topology", "Show CPU kinds, caches, NUMA and the thread placement");
  auto flags = std::make_shared<TopologyFlags>();
  flags->config.AddTo(command);
  command->add_option("--io-threads", flags->io_threads, "I/O threads (default: config)");
  command->add_option("--workers", flags->workers, "Model workers (default: config)");
  command->add_option("--shm-threads", flags->shm_threads,
                      "Shared-memory threads (default: 1 when shm is enabled)");
  command->add_option("--pinning", flags->pinning, "auto | off")->default_str("auto");
  command->add_option("--performance-cores", flags->performance_cores,
                      "Override: CPU list of performance cores, e.g. 0-3");
  command->add_option("--efficiency-cores", flags->efficiency_cores,
                      "Override: CPU list of efficiency cores, e.g. 4-9");
  command->add_option("--sysfs-root", flags->sysfs_root,
                      "Read a recorded machine: directory holding sys/devices/system/cpu");
  command->add_option("--hwloc-xml", flags->hwloc_xml,
                      "Read a recorded machine: hwloc XML (lstopo --of xml)");
  return [flags]() { return RunTopology(*flags); };
}

}  // namespace brainstem
