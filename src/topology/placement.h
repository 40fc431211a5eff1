// Placement: which CPUs each brainstem thread may run on, decided once at start-up from the
// CpuTopology and the configured thread counts, then applied by each thread to itself with
// PinCurrentThread. The plan is a plain value so `brainstem topology` can print it and tests
// can check it without starting threads.
//
// Rules (docs/topology.md has the tables):
//  - Hybrid machine (performance and efficiency CPUs): model workers get one performance core
//    each (one hardware thread per physical core, so two workers never share a core's
//    execution units); I/O threads (which run inference inline when the server is idle) and
//    shm threads get the next free performance cores, then the SMT siblings of the workers'
//    cores, else share the workers' CPUs; background threads (sampler, logging, repository
//    watcher) run on the efficiency cores.
//  - Uniform machine with enough physical cores for workers + I/O + shm + 1: the same, with
//    the last physical core as the background core.
//  - Uniform machine with fewer (e.g. this 2-vCPU VM): workers, batcher, I/O and shm share all
//    CPUs and background threads are pinned to the last CPU. Static partitioning of two CPUs
//    would leave one idle while the other queues work, and inline execution already keeps a
//    lone request on one thread; pinning the background threads keeps their wake-ups off
//    CPU 0, where the kernel routes most device interrupts.
//  - Pinning off: the plan is computed (for display) but PinCurrentThread only names threads.
// Thread-safety: a PlacementPlan is an immutable value; PinCurrentThread may be called from any
// thread concurrently (it changes only the calling thread).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "topology/topology.h"

namespace brainstem {

enum class Role { kIo, kModelWorker, kBatcher, kBackground, kShm };

// "io" | "model-worker" | "batcher" | "background" | "shm".
std::string_view RoleName(Role role);

// The default thread name for a role and index: "bs-io-0", "bs-model-0", "bs-batch-0",
// "bs-bg-0", "bs-shm" (index 0) / "bs-shm-1". At most 15 characters (the kernel's limit).
std::string DefaultThreadName(Role role, int index);

struct PlanRequest {
  int io_threads = 1;     // server.io_threads
  int model_workers = 1;  // scheduler.instances
  int shm_threads = 0;    // shared-memory transport pollers
  int batchers = 0;       // dedicated batcher threads (none today: workers batch)
  PinningMode pinning = PinningMode::kAuto;
};

struct ThreadPlacement {
  Role role = Role::kIo;
  int index = 0;
  std::vector<int> cpus;   // ascending; the thread's affinity when pinning is on
  bool dedicated = false;  // no other planned thread shares these CPUs
};

struct PlacementPlan {
  bool pinning = true;
  // Which rule made the plan: "hybrid", "uniform-partitioned", "uniform-shared", "single-cpu".
  std::string rule;
  std::vector<ThreadPlacement> threads;  // io..., model workers..., batchers, shm..., background
  std::vector<int> background_cpus;      // every background thread (any index) gets these
  // Notes for the operator: fallbacks taken (more workers than performance cores, ...).
  std::vector<std::string> notes;

  // The placement of a role's index-th thread. Background threads all share
  // background_cpus; an index beyond the planned count of a role wraps around (a thread
  // started later than planned still gets its role's CPUs). Empty cpus = not planned.
  ThreadPlacement Find(Role role, int index) const;
};

PlacementPlan MakePlan(const CpuTopology& topology, const PlanRequest& request);

// Table of the plan for people: one line per thread with its CPUs and their kind.
std::string DescribePlan(const PlacementPlan& plan, const CpuTopology& topology);

// Names the calling thread (`name`, or DefaultThreadName(role, index) when empty; names longer
// than 15 characters are cut) and, when plan.pinning, sets its affinity to the plan's CPUs for
// that role and index. Naming happens first, so a failed pin still leaves a named thread.
// Errors: kInternal naming the CPUs and errno when pthread_setaffinity_np fails (for example a
// CPU outside the container's cpuset); callers log it and continue unpinned.
Status PinCurrentThread(const PlacementPlan& plan, Role role, int index,
                        std::string_view name = {});

// Pins threads that are already running, found by name: every thread of this process whose
// name is DefaultThreadName(role, i) for a planned role (bs-io-N, bs-model-N, bs-batch-N,
// bs-shm / bs-shm-N) or "bs-sampler" gets its plan CPUs via sched_setaffinity(tid). This lets
// the server apply the plan after start-up to threads that modules started and named
// themselves (HTTP, scheduler, shm), without those modules knowing about placement. Threads
// started later are not covered; prefer PinCurrentThread in the thread where there is a hook.
// No-op returning 0 when !plan.pinning. Returns how many threads were pinned.
// Errors: kInternal naming the thread when the kernel refuses its affinity (the others are
// still pinned).
Result<int> PinNamedThreads(const PlacementPlan& plan);

// Sizes library thread pools before those libraries start: sets OMP_NUM_THREADS and
// OMP_THREAD_LIMIT to intra_op_threads (model.intra_op_threads, at least 1; the limit also caps
// OpenMP pools of libraries that ignore OMP_NUM_THREADS, such as Tesseract's), OMP_WAIT_POLICY
// to PASSIVE (an idle OpenMP pool sleeps instead of spinning on the workers' cores),
// OPENBLAS_NUM_THREADS and MKL_NUM_THREADS to 1, each only when the user has not set it. An
// OpenBLAS already loaded with the binary read its variable before main(), so it is also told
// through openblas_set_num_threads when that symbol is present. Pool threads inherit the
// affinity of the thread that creates them, so a pool started on a pinned worker stays on the
// worker's cores.
// Call after the config is loaded and before any model is loaded or thread started (libgomp
// reads its variables when LibTorch's plugin is dlopen'ed; setenv is not thread-safe).
// Returns what it changed, as "NAME=value" (shown in the startup log).
std::vector<std::string> ConfineLibraryThreads(const PlacementPlan& plan, int intra_op_threads = 1);

}  // namespace brainstem
