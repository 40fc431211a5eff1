#include "topology/placement.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>

namespace brainstem {
namespace {

const std::string kFixtures = BRAINSTEM_TOPOLOGY_FIXTURES;

CpuTopology Load(const std::string& machine) {
  Result<CpuTopology> topology = ReadSysfsTopology(kFixtures + "/" + machine);
  EXPECT_TRUE(topology.ok()) << topology.status().ToString();
  return topology.ok() ? *topology : CpuTopology{};
}

std::vector<ThreadPlacement> OfRole(const PlacementPlan& plan, Role role) {
  std::vector<ThreadPlacement> out;
  for (const ThreadPlacement& t : plan.threads) {
    if (t.role == role) out.push_back(t);
  }
  return out;
}

bool AllOfKind(const CpuTopology& t, const std::vector<int>& cpus, CoreKind kind) {
  return !cpus.empty() && std::all_of(cpus.begin(), cpus.end(), [&](int cpu) {
    return t.FindCpu(cpu) != nullptr && t.FindCpu(cpu)->kind == kind;
  });
}

std::pair<int, int> PhysicalCoreOf(const CpuTopology& t, int cpu) {
  const Core* core = t.FindCpu(cpu);
  return {core->package, core->core_id};
}

TEST(MakePlan, IntelHybridPutsWorkersOnSeparatePerformanceCores) {
  CpuTopology t = Load("intel-8p8e");
  PlacementPlan plan = MakePlan(t, {.io_threads = 2, .model_workers = 3, .shm_threads = 1});
  EXPECT_EQ(plan.rule, "hybrid");
  std::vector<ThreadPlacement> workers = OfRole(plan, Role::kModelWorker);
  ASSERT_EQ(workers.size(), 3u);
  std::set<std::pair<int, int>> worker_cores;
  std::set<int> taken;
  for (const ThreadPlacement& w : workers) {
    ASSERT_EQ(w.cpus.size(), 1u);
    EXPECT_TRUE(w.dedicated);
    EXPECT_TRUE(AllOfKind(t, w.cpus, CoreKind::kPerformance));
    worker_cores.insert(PhysicalCoreOf(t, w.cpus[0]));
    taken.insert(w.cpus[0]);
  }
  EXPECT_EQ(worker_cores.size(), 3u) << "two workers share a physical core";
  for (Role role : {Role::kIo, Role::kShm}) {
    for (const ThreadPlacement& x : OfRole(plan, role)) {
      ASSERT_EQ(x.cpus.size(), 1u);
      EXPECT_TRUE(AllOfKind(t, x.cpus, CoreKind::kPerformance));
      EXPECT_EQ(worker_cores.count(PhysicalCoreOf(t, x.cpus[0])), 0u)
          << RoleName(role) << " on a worker's core while free cores remain";
      EXPECT_TRUE(taken.insert(x.cpus[0]).second);
    }
  }
  EXPECT_EQ(OfRole(plan, Role::kIo).size(), 2u);
  EXPECT_EQ(OfRole(plan, Role::kShm).size(), 1u);
  EXPECT_EQ(plan.background_cpus, t.CpusOfKind(CoreKind::kEfficiency));
  EXPECT_TRUE(plan.notes.empty());
}

TEST(MakePlan, HybridFallsBackToSmtSiblingsThenSharing) {
  CpuTopology t = Load("intel-8p8e");
  PlacementPlan plan = MakePlan(t, {.io_threads = 2, .model_workers = 8, .shm_threads = 0});
  std::vector<ThreadPlacement> io = OfRole(plan, Role::kIo);
  ASSERT_EQ(io.size(), 2u);
  // All eight P cores hold a worker: I/O gets the hyper-threads of the first two.
  EXPECT_EQ(io[0].cpus, (std::vector<int>{1}));
  EXPECT_EQ(io[1].cpus, (std::vector<int>{3}));
  EXPECT_FALSE(plan.notes.empty());

  plan = MakePlan(t, {.io_threads = 1, .model_workers = 12, .shm_threads = 0});
  for (const ThreadPlacement& w : OfRole(plan, Role::kModelWorker)) {
    EXPECT_EQ(w.cpus, t.CpusOfKind(CoreKind::kPerformance)) << "never spill onto E cores";
    EXPECT_FALSE(w.dedicated);
  }
  ASSERT_FALSE(plan.notes.empty());
  EXPECT_NE(plan.notes[0].find("12 model workers"), std::string::npos);
}

TEST(MakePlan, AppleLayoutUsesTheFourPerformanceCores) {
  CpuTopology t = Load("apple-4p6e");
  PlacementPlan plan = MakePlan(t, {.io_threads = 1, .model_workers = 4, .shm_threads = 0});
  EXPECT_EQ(plan.rule, "hybrid");
  std::vector<int> worker_cpus;
  for (const ThreadPlacement& w : OfRole(plan, Role::kModelWorker)) {
    worker_cpus.insert(worker_cpus.end(), w.cpus.begin(), w.cpus.end());
  }
  EXPECT_EQ(worker_cpus, (std::vector<int>{6, 7, 8, 9}));
  // No fifth P core and no SMT: the I/O thread shares the P cores, never an E core.
  std::vector<ThreadPlacement> io = OfRole(plan, Role::kIo);
  ASSERT_EQ(io.size(), 1u);
  EXPECT_EQ(io[0].cpus, (std::vector<int>{6, 7, 8, 9}));
  for (const ThreadPlacement& w : OfRole(plan, Role::kModelWorker)) EXPECT_FALSE(w.dedicated);
  EXPECT_EQ(plan.background_cpus, (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

TEST(MakePlan, ThisVmSharesBothCpusAndGivesBackgroundTheLast) {
  CpuTopology t = Load("vm-2vcpu");
  PlacementPlan plan = MakePlan(t, {.io_threads = 1, .model_workers = 1, .shm_threads = 0});
  EXPECT_EQ(plan.rule, "uniform-shared");
  for (const ThreadPlacement& x : plan.threads) EXPECT_EQ(x.cpus, (std::vector<int>{0, 1}));
  EXPECT_EQ(plan.background_cpus, (std::vector<int>{1}));
}

TEST(MakePlan, BigUniformMachinePartitionsWithinTheFirstNumaNode) {
  CpuTopology t = Load("xeon-2s-numa");
  PlacementPlan plan = MakePlan(t, {.io_threads = 1, .model_workers = 2, .shm_threads = 1});
  EXPECT_EQ(plan.rule, "uniform-partitioned");
  std::set<int> used;
  for (const ThreadPlacement& x : plan.threads) {
    ASSERT_EQ(x.cpus.size(), 1u);
    EXPECT_TRUE(x.dedicated);
    EXPECT_EQ(t.FindCpu(x.cpus[0])->numa_node, 0);
    EXPECT_TRUE(used.insert(x.cpus[0]).second);
    EXPECT_LT(x.cpus[0], 8) << "a hyper-thread while whole cores are free";
  }
  // The last physical core, both of its hardware threads.
  EXPECT_EQ(plan.background_cpus, (std::vector<int>{7, 15}));

  // A fifth thread no longer fits node 0's four cores: whole cores come before SMT siblings,
  // so it takes node 1's first core (documented in docs/topology.md).
  plan = MakePlan(t, {.io_threads = 2, .model_workers = 2, .shm_threads = 1});
  EXPECT_EQ(plan.Find(Role::kShm, 0).cpus, (std::vector<int>{4}));
}

TEST(MakePlan, OverriddenUnknownCpusAreLeftAlone) {
  CpuTopology t = Load("apple-4p6e");
  ASSERT_TRUE(ApplyCpuOverrides("6-7", "0-1", &t).ok());
  PlacementPlan plan = MakePlan(t, {.io_threads = 1, .model_workers = 1, .shm_threads = 0});
  EXPECT_EQ(OfRole(plan, Role::kModelWorker)[0].cpus, (std::vector<int>{6}));
  EXPECT_EQ(OfRole(plan, Role::kIo)[0].cpus, (std::vector<int>{7}));
  EXPECT_EQ(plan.background_cpus, (std::vector<int>{0, 1}));
}

TEST(PlacementPlan, FindWrapsExtraIndicesAndCoversBackground) {
  CpuTopology t = Load("intel-8p8e");
  PlacementPlan plan = MakePlan(t, {.io_threads = 2, .model_workers = 2, .shm_threads = 0});
  EXPECT_EQ(plan.Find(Role::kIo, 2).cpus, plan.Find(Role::kIo, 0).cpus);
  EXPECT_FALSE(plan.Find(Role::kIo, 2).dedicated);
  EXPECT_EQ(plan.Find(Role::kBackground, 7).cpus, plan.background_cpus);
  EXPECT_TRUE(plan.Find(Role::kShm, 0).cpus.empty());
}

TEST(ThreadNames, FollowTheRoleScheme) {
  EXPECT_EQ(DefaultThreadName(Role::kIo, 0), "bs-io-0");
  EXPECT_EQ(DefaultThreadName(Role::kModelWorker, 3), "bs-model-3");
  EXPECT_EQ(DefaultThreadName(Role::kShm, 0), "bs-shm");
  EXPECT_EQ(DefaultThreadName(Role::kShm, 1), "bs-shm-1");
}

// What the kernel says about one of our threads.
struct TaskView {
  std::string comm;
  std::string cpus_allowed_list;
};

TaskView ReadTask(pid_t tid) {
  TaskView view;
  const std::string dir = "/proc/self/task/" + std::to_string(tid);
  std::ifstream comm(dir + "/comm");
  std::getline(comm, view.comm);
  std::ifstream status(dir + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Cpus_allowed_list:", 0) == 0) {
      view.cpus_allowed_list = line.substr(line.find_first_not_of(" \t", 18));
    }
  }
  return view;
}

// Runs PinCurrentThread on a fresh thread and reports what /proc saw afterwards.
TaskView PinOnThread(const PlacementPlan& plan, Role role, int index, std::string name,
                     Status* status) {
  TaskView view;
  std::thread thread([&] {
    *status = PinCurrentThread(plan, role, index, name);
    view = ReadTask(static_cast<pid_t>(syscall(SYS_gettid)));
  });
  thread.join();
  return view;
}

TEST(PinCurrentThread, SetsAffinityAndNameVisibleInProc) {
  CpuTopology t = DetectTopology();
  PlacementPlan plan = MakePlan(t, {.io_threads = 1, .model_workers = 1, .shm_threads = 0});
  Status status;
  TaskView worker = PinOnThread(plan, Role::kModelWorker, 0, "", &status);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(worker.comm, "bs-model-0");
  EXPECT_EQ(worker.cpus_allowed_list, FormatCpuList(plan.Find(Role::kModelWorker, 0).cpus));

  TaskView sampler = PinOnThread(plan, Role::kBackground, 0, "bs-sampler", &status);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(sampler.comm, "bs-sampler");
  EXPECT_EQ(sampler.cpus_allowed_list, FormatCpuList(plan.background_cpus));

  // A one-CPU placement on whatever CPU is allowed first differs from the default mask
  // whenever the machine has two or more CPUs, so this proves the mask really changed.
  PlacementPlan single;
  single.rule = "test";
  single.threads.push_back(ThreadPlacement{Role::kIo, 0, {t.AllowedCpus().front()}, true});
  TaskView io = PinOnThread(single, Role::kIo, 0, "", &status);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(io.comm, "bs-io-0");
  EXPECT_EQ(io.cpus_allowed_list, std::to_string(t.AllowedCpus().front()));
}

TEST(PinCurrentThread, PinningOffOnlyNamesAndLongNamesAreCut) {
  CpuTopology t = DetectTopology();
  PlacementPlan plan;
  plan.pinning = false;
  plan.threads.push_back(ThreadPlacement{Role::kIo, 0, {t.AllowedCpus().front()}, true});
  const std::string before = ReadTask(static_cast<pid_t>(syscall(SYS_gettid))).cpus_allowed_list;
  Status status;
  TaskView io = PinOnThread(plan, Role::kIo, 0, "bs-a-very-long-thread-name", &status);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(io.comm, "bs-a-very-long-");
  EXPECT_EQ(io.cpus_allowed_list, before);
}

TEST(PinCurrentThread, ImpossibleCpuIsAnErrorButTheThreadIsStillNamed) {
  PlacementPlan plan;
  plan.threads.push_back(ThreadPlacement{Role::kIo, 0, {kMaxCpuId}, true});
  Status status;
  TaskView io = PinOnThread(plan, Role::kIo, 0, "", &status);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("bs-io-0"), std::string::npos) << status.message();
  EXPECT_EQ(io.comm, "bs-io-0");
}

TEST(PinNamedThreads, PinsRunningThreadsByTheirNames) {
  CpuTopology t = DetectTopology();
  const int first = t.AllowedCpus().front();
  PlacementPlan plan;
  plan.threads.push_back(ThreadPlacement{Role::kModelWorker, 0, {first}, true});
  plan.background_cpus = {t.AllowedCpus().back()};
  // Threads that named themselves the way the scheduler and the sampler do, then wait.
  std::atomic<int> ready{0};
  std::atomic<bool> done{false};
  std::atomic<pid_t> worker_tid{0}, sampler_tid{0}, other_tid{0};
  auto park = [&](const char* name, std::atomic<pid_t>* tid) {
    return std::thread([&, name, tid] {
      pthread_setname_np(pthread_self(), name);
      tid->store(static_cast<pid_t>(syscall(SYS_gettid)));
      ++ready;
      while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  };
  std::thread worker = park("bs-model-0", &worker_tid);
  std::thread sampler = park("bs-sampler", &sampler_tid);
  std::thread other = park("not-ours", &other_tid);
  while (ready < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::string before = ReadTask(other_tid).cpus_allowed_list;
  Result<int> pinned = PinNamedThreads(plan);
  TaskView worker_view = ReadTask(worker_tid);
  TaskView sampler_view = ReadTask(sampler_tid);
  TaskView other_view = ReadTask(other_tid);
  plan.pinning = false;
  Result<int> off = PinNamedThreads(plan);
  done = true;
  worker.join();
  sampler.join();
  other.join();
  ASSERT_TRUE(pinned.ok()) << pinned.status().ToString();
  EXPECT_EQ(*pinned, 2);
  EXPECT_EQ(worker_view.cpus_allowed_list, std::to_string(first));
  EXPECT_EQ(sampler_view.cpus_allowed_list, std::to_string(t.AllowedCpus().back()));
  EXPECT_EQ(other_view.cpus_allowed_list, before);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(*off, 0);
}

TEST(ConfineLibraryThreads, SetsOnlyWhatTheUserLeftUnset) {
  unsetenv("OMP_NUM_THREADS");
  unsetenv("OMP_THREAD_LIMIT");
  unsetenv("OPENBLAS_NUM_THREADS");
  setenv("MKL_NUM_THREADS", "4", 1);
  std::vector<std::string> set = ConfineLibraryThreads(PlacementPlan{}, /*intra_op_threads=*/2);
  // OpenMP follows model.intra_op_threads so the limit never undercuts LibTorch's pool.
  EXPECT_STREQ(std::getenv("OMP_NUM_THREADS"), "2");
  EXPECT_STREQ(std::getenv("OMP_THREAD_LIMIT"), "2");
  EXPECT_STREQ(std::getenv("OPENBLAS_NUM_THREADS"), "1");
  EXPECT_STREQ(std::getenv("MKL_NUM_THREADS"), "4");
  EXPECT_NE(std::find(set.begin(), set.end(), "OMP_NUM_THREADS=2"), set.end());
  for (const std::string& s : set) EXPECT_EQ(s.rfind("MKL_NUM_THREADS", 0), std::string::npos);
}

}  // namespace
}  // namespace brainstem
