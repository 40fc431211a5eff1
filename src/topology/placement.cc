#include "topology/placement.h"

#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace brainstem {
namespace {

constexpr size_t kMaxThreadNameLength = 15;  // the kernel's TASK_COMM_LEN minus the NUL

// Physical cores (ascending logical CPUs each) restricted to `cpus`, in CPU order.
std::vector<std::vector<int>> CoresWithin(const CpuTopology& topology,
                                          const std::vector<int>& cpus) {
  std::vector<std::vector<int>> out;
  for (const std::vector<int>& core : topology.PhysicalCores()) {
    std::vector<int> kept;
    for (int cpu : core) {
      if (std::binary_search(cpus.begin(), cpus.end(), cpu)) kept.push_back(cpu);
    }
    if (!kept.empty()) out.push_back(std::move(kept));
  }
  return out;
}

std::vector<int> Flatten(const std::vector<std::vector<int>>& cores) {
  std::vector<int> out;
  for (const auto& core : cores) out.insert(out.end(), core.begin(), core.end());
  std::sort(out.begin(), out.end());
  return out;
}

// Hands out CPUs to latency-critical threads: first a whole free physical core each (its first
// hardware thread), then SMT siblings of cores already handed out, then nothing (the caller
// falls back to sharing).
class CoreAllocator {
 public:
  explicit CoreAllocator(std::vector<std::vector<int>> cores) : cores_(std::move(cores)) {}

  size_t free_cores() const { return cores_.size() - next_core_; }

  // One CPU on a physical core nobody else got; -1 when none is left.
  int TakeCore() {
    if (next_core_ == cores_.size()) return -1;
    const std::vector<int>& core = cores_[next_core_++];
    spare_siblings_.insert(spare_siblings_.end(), core.begin() + 1, core.end());
    return core.front();
  }
  // A CPU whose sibling is taken; -1 when none is left.
  int TakeSibling() {
    if (next_sibling_ == spare_siblings_.size()) return -1;
    return spare_siblings_[next_sibling_++];
  }

 private:
  std::vector<std::vector<int>> cores_;
  size_t next_core_ = 0;
  std::vector<int> spare_siblings_;
  size_t next_sibling_ = 0;
};

void AddThreads(PlacementPlan* plan, Role role, int count, const std::vector<int>& cpus,
                bool dedicated) {
  for (int i = 0; i < count; ++i)
    plan->threads.push_back(ThreadPlacement{role, i, cpus, dedicated});
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kIo:
      return "io";
    case Role::kModelWorker:
      return "model-worker";
    case Role::kBatcher:
      return "batcher";
    case Role::kBackground:
      return "background";
    case Role::kShm:
      return "shm";
  }
  return "unknown";
}

std::string DefaultThreadName(Role role, int index) {
  const std::string n = std::to_string(index);
  switch (role) {
    case Role::kIo:
      return "bs-io-" + n;
    case Role::kModelWorker:
      return "bs-model-" + n;
    case Role::kBatcher:
      return "bs-batch-" + n;
    case Role::kBackground:
      return "bs-bg-" + n;
    case Role::kShm:
      return index == 0 ? "bs-shm" : "bs-shm-" + n;
  }
  return "bs-" + n;
}

ThreadPlacement PlacementPlan::Find(Role role, int index) const {
  if (role == Role::kBackground) return ThreadPlacement{role, index, background_cpus, false};
  int count = 0;
  for (const ThreadPlacement& t : threads) count += t.role == role ? 1 : 0;
  if (count == 0 || index < 0) return ThreadPlacement{role, index, {}, false};
  const int wanted = index % count;
  for (const ThreadPlacement& t : threads) {
    if (t.role == role && t.index == wanted) {
      ThreadPlacement found = t;
      found.index = index;
      // A wrapped index shares the CPUs with the thread it wrapped onto.
      if (index != wanted) found.dedicated = false;
      return found;
    }
  }
  return ThreadPlacement{role, index, {}, false};
}

PlacementPlan MakePlan(const CpuTopology& topology, const PlanRequest& request) {
  PlacementPlan plan;
  plan.pinning = request.pinning == PinningMode::kAuto;
  const int workers = std::max(0, request.model_workers);
  const int io = std::max(0, request.io_threads);
  const int shm = std::max(0, request.shm_threads);
  const int batchers = std::max(0, request.batchers);

  std::vector<int> performance = topology.CpusOfKind(CoreKind::kPerformance);
  std::vector<int> efficiency = topology.CpusOfKind(CoreKind::kEfficiency);
  if (performance.empty()) {
    // Only reachable when every allowed CPU is efficiency/unknown (a cpuset holding only E
    // cores): run everything where we are allowed to.
    performance = topology.AllowedCpus();
    efficiency.clear();
    plan.notes.push_back("no performance CPU is allowed: every thread uses the allowed CPUs");
  }
  if (performance.empty()) {
    plan.rule = "none";
    plan.notes.push_back("no CPU is known: threads are left unpinned");
    AddThreads(&plan, Role::kIo, io, {}, false);
    AddThreads(&plan, Role::kModelWorker, workers, {}, false);
    AddThreads(&plan, Role::kBatcher, batchers, {}, false);
    AddThreads(&plan, Role::kShm, shm, {}, false);
    return plan;
  }

  std::vector<std::vector<int>> pool = CoresWithin(topology, performance);
  const size_t critical = static_cast<size_t>(workers + io + shm);
  if (!efficiency.empty()) {
    plan.rule = "hybrid";
    plan.background_cpus = efficiency;
  } else if (pool.size() >= critical + 1 && pool.size() >= 2) {
    plan.rule = "uniform-partitioned";
    plan.background_cpus = pool.back();
    pool.pop_back();
  } else if (performance.size() == 1) {
    plan.rule = "single-cpu";
    plan.background_cpus = performance;
  } else {
    plan.rule = "uniform-shared";
    plan.background_cpus = {performance.back()};
    plan.notes.push_back(std::to_string(pool.size()) + " physical cores for " +
                         std::to_string(critical) +
                         " latency-critical threads: they share all CPUs; background threads "
                         "take the last CPU");
    AddThreads(&plan, Role::kIo, io, performance, false);
    AddThreads(&plan, Role::kModelWorker, workers, performance, false);
    AddThreads(&plan, Role::kBatcher, batchers, performance, false);
    AddThreads(&plan, Role::kShm, shm, performance, false);
    return plan;
  }

  const std::vector<int> pool_cpus = Flatten(pool);
  if (plan.rule == "single-cpu") {
    AddThreads(&plan, Role::kIo, io, pool_cpus, false);
    AddThreads(&plan, Role::kModelWorker, workers, pool_cpus, false);
    AddThreads(&plan, Role::kBatcher, batchers, pool_cpus, false);
    AddThreads(&plan, Role::kShm, shm, pool_cpus, false);
    return plan;
  }

  CoreAllocator allocator(pool);
  std::vector<int> worker_cpus;
  if (static_cast<size_t>(workers) <= allocator.free_cores()) {
    for (int i = 0; i < workers; ++i) {
      int cpu = allocator.TakeCore();
      worker_cpus.push_back(cpu);
      plan.threads.push_back(ThreadPlacement{Role::kModelWorker, i, {cpu}, true});
    }
  } else {
    plan.notes.push_back(std::to_string(workers) + " model workers but " +
                         std::to_string(pool.size()) +
                         " performance cores: workers share all performance CPUs");
    worker_cpus = pool_cpus;
    AddThreads(&plan, Role::kModelWorker, workers, pool_cpus, false);
    // Every core is spoken for; I/O and shm share too.
    allocator = CoreAllocator({});
  }
  std::sort(worker_cpus.begin(), worker_cpus.end());

  bool shared_note = false;
  bool sibling_note = false;
  auto place = [&](Role role, int count) {
    for (int i = 0; i < count; ++i) {
      int cpu = allocator.TakeCore();
      if (cpu < 0) {
        cpu = allocator.TakeSibling();
        if (cpu >= 0 && !sibling_note) {
          plan.notes.push_back("no free performance core left: " + std::string(RoleName(role)) +
                               " threads use SMT siblings of worker cores");
          sibling_note = true;
        }
      }
      if (cpu >= 0) {
        plan.threads.push_back(ThreadPlacement{role, i, {cpu}, true});
      } else {
        if (!shared_note) {
          plan.notes.push_back("not enough performance CPUs for one each: remaining " +
                               std::string(RoleName(role)) + " threads share all performance CPUs");
          shared_note = true;
        }
        plan.threads.push_back(ThreadPlacement{role, i, pool_cpus, false});
      }
    }
  };
  place(Role::kIo, io);
  place(Role::kShm, shm);
  // A batcher only hands batches to workers: keep it on the workers' CPUs, where the data is.
  AddThreads(&plan, Role::kBatcher, batchers, worker_cpus, false);

  // A CPU given to one thread as "dedicated" that another thread's shared set also covers is
  // not really dedicated; fix the flag so the printed plan does not overpromise.
  for (ThreadPlacement& t : plan.threads) {
    if (!t.dedicated) continue;
    for (const ThreadPlacement& other : plan.threads) {
      if (&other == &t || other.dedicated) continue;
      if (std::includes(other.cpus.begin(), other.cpus.end(), t.cpus.begin(), t.cpus.end())) {
        t.dedicated = false;
      }
    }
  }
  std::stable_sort(plan.threads.begin(), plan.threads.end(),
                   [](const ThreadPlacement& a, const ThreadPlacement& b) {
                     return static_cast<int>(a.role) < static_cast<int>(b.role);
                   });
  return plan;
}

std::string DescribePlan(const PlacementPlan& plan, const CpuTopology& topology) {
  std::ostringstream out;
  auto kinds_of = [&topology](const std::vector<int>& cpus) {
    std::set<std::string_view> kinds;
    for (int cpu : cpus) {
      const Core* core = topology.FindCpu(cpu);
      kinds.insert(core ? CoreKindName(core->kind) : "unknown");
    }
    std::string joined;
    for (std::string_view kind : kinds) {
      if (!joined.empty()) joined.push_back('+');
      joined.append(kind);
    }
    return joined;
  };
  out << "placement (" << plan.rule << ", pinning " << (plan.pinning ? "on" : "off") << "):\n";
  auto line = [&](const std::string& name, Role role, const std::vector<int>& cpus,
                  bool dedicated) {
    std::string padded = name;
    padded.resize(std::max<size_t>(padded.size(), 12), ' ');
    std::string role_name(RoleName(role));
    role_name.resize(std::max<size_t>(role_name.size(), 13), ' ');
    out << "  " << padded << " " << role_name << " CPUs "
        << (cpus.empty() ? "(unpinned)" : FormatCpuList(cpus));
    if (!cpus.empty()) out << " (" << kinds_of(cpus) << (dedicated ? ", dedicated" : ", shared");
    out << (cpus.empty() ? "" : ")") << "\n";
  };
  for (const ThreadPlacement& t : plan.threads) {
    line(DefaultThreadName(t.role, t.index), t.role, t.cpus, t.dedicated);
  }
  line("bs-sampler", Role::kBackground, plan.background_cpus, false);
  out << "  (every background thread: sampler, logging, repository watcher)\n";
  for (const std::string& note : plan.notes) out << "  note: " << note << "\n";
  return out.str();
}

Status PinCurrentThread(const PlacementPlan& plan, Role role, int index, std::string_view name) {
  std::string thread_name = name.empty() ? DefaultThreadName(role, index) : std::string(name);
  if (thread_name.size() > kMaxThreadNameLength) thread_name.resize(kMaxThreadNameLength);
  // Naming cannot fail for a short name on Linux; ignore the result like every other caller.
  pthread_setname_np(pthread_self(), thread_name.c_str());
  if (!plan.pinning) return Status::Ok();
  ThreadPlacement placement = plan.Find(role, index);
  if (placement.cpus.empty()) return Status::Ok();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : placement.cpus) {
    if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_SET(cpu, &set);
  }
  int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (rc != 0) {
    return InternalError("cannot pin " + thread_name + " to CPUs " + FormatCpuList(placement.cpus) +
                         ": " + std::strerror(rc));
  }
  return Status::Ok();
}

Result<int> PinNamedThreads(const PlacementPlan& plan) {
  if (!plan.pinning) return 0;
  // Name -> CPUs for every planned thread, plus the sampler on the background CPUs.
  std::vector<std::pair<std::string, std::vector<int>>> wanted;
  for (const ThreadPlacement& t : plan.threads) {
    if (!t.cpus.empty()) wanted.emplace_back(DefaultThreadName(t.role, t.index), t.cpus);
  }
  if (!plan.background_cpus.empty()) wanted.emplace_back("bs-sampler", plan.background_cpus);
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr)
    return InternalError("cannot list /proc/self/task: " + std::string(std::strerror(errno)));
  int pinned = 0;
  std::string failures;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const pid_t tid = static_cast<pid_t>(std::atoi(entry->d_name));
    std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
    std::string name;
    std::getline(comm, name);
    for (const auto& [wanted_name, cpus] : wanted) {
      if (name != wanted_name) continue;
      cpu_set_t set;
      CPU_ZERO(&set);
      for (int cpu : cpus) {
        if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_SET(cpu, &set);
      }
      if (sched_setaffinity(tid, sizeof(set), &set) == 0) {
        ++pinned;
      } else {
        failures += (failures.empty() ? "" : "; ") + name + " to CPUs " + FormatCpuList(cpus) +
                    ": " + std::strerror(errno);
      }
    }
  }
  closedir(dir);
  if (!failures.empty()) return InternalError("cannot pin " + failures);
  return pinned;
}

std::vector<std::string> ConfineLibraryThreads(const PlacementPlan& /*plan*/,
                                               int intra_op_threads) {
  // Pools of one thread whatever the plan says: every model worker is one thread on one core,
  // and a pool of N would put N-1 more runnable threads on cores the plan gave to others. The
  // plan is taken so that a later rule (intra-op threads spanning a worker's cores) can size
  // pools from it without changing callers.
  const std::string omp = std::to_string(std::max(1, intra_op_threads));
  const std::pair<const char*, std::string> variables[] = {
      {"OMP_NUM_THREADS", omp},      {"OMP_THREAD_LIMIT", omp}, {"OMP_WAIT_POLICY", "PASSIVE"},
      {"OPENBLAS_NUM_THREADS", "1"}, {"MKL_NUM_THREADS", "1"},
  };
  std::vector<std::string> changed;
  for (const auto& [name, value] : variables) {
    if (std::getenv(name) != nullptr) continue;  // the user's choice wins
    if (setenv(name, value.c_str(), /*overwrite=*/0) == 0) changed.push_back(name + ("=" + value));
  }
  if (std::getenv("OPENBLAS_NUM_THREADS") != nullptr &&
      std::string(std::getenv("OPENBLAS_NUM_THREADS")) == "1") {
    using SetThreads = void (*)(int);
    if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
      set(1);
      changed.push_back("openblas_set_num_threads(1)");
    }
  }
  return changed;
}

}  // namespace brainstem
