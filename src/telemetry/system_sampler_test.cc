#include "telemetry/system_sampler.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

namespace brainstem {
namespace {

using Clock = std::chrono::steady_clock;

TEST(ParseProcStat, ReadsPerCpuLinesAndSkipsTheAggregate) {
  const char* text =
      "cpu  300 0 30 600 10 0 5 5 0 0\n"
      "cpu0 100 10 20 400 5 1 2 3 7 0\n"
      "cpu1 200 0 10 200 5 0 3 2 0 0\n"
      "intr 12345 0 0\n"
      "ctxt 999\n";
  Result<std::map<int, CpuTimes>> cpus = ParseProcStat(text);
  ASSERT_TRUE(cpus.ok()) << cpus.status().ToString();
  ASSERT_EQ(cpus->size(), 2u);
  // busy = user+nice+system+irq+softirq+steal; guest (7) is inside user already.
  EXPECT_EQ(cpus->at(0).busy, 100u + 10 + 20 + 1 + 2 + 3);
  EXPECT_EQ(cpus->at(0).total, 136u + 400 + 5);
  EXPECT_EQ(cpus->at(1).busy, 215u);
  EXPECT_EQ(cpus->at(1).total, 420u);
}

TEST(ParseProcStat, AcceptsOldKernelsAndRejectsGarbage) {
  Result<std::map<int, CpuTimes>> old = ParseProcStat("cpu3 10 0 10 80\n");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->at(3).total, 100u);
  Result<std::map<int, CpuTimes>> bad = ParseProcStat("cpu0 10 x 3\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cpu0 10 x 3"), std::string::npos);
  EXPECT_FALSE(ParseProcStat("intr 1 2 3\n").ok());
}

TEST(ParseProcStat, ParsesThisMachinesRecordedStat) {
  std::ifstream in(std::string(BRAINSTEM_TOPOLOGY_FIXTURES) + "/vm-2vcpu/proc/stat");
  ASSERT_TRUE(in) << "fixture missing";
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Result<std::map<int, CpuTimes>> cpus = ParseProcStat(text);
  ASSERT_TRUE(cpus.ok());
  EXPECT_EQ(cpus->size(), 2u);
  for (const auto& [cpu, t] : *cpus) EXPECT_LT(t.busy, t.total);
}

TEST(UtilizationPercent, IsTheBusyShareClampedAndSafe) {
  EXPECT_DOUBLE_EQ(UtilizationPercent({100, 200}, {150, 300}), 50.0);
  EXPECT_DOUBLE_EQ(UtilizationPercent({100, 200}, {100, 200}), 0.0);
  EXPECT_DOUBLE_EQ(UtilizationPercent({100, 200}, {10, 20}), 0.0);  // counters reset
  EXPECT_DOUBLE_EQ(UtilizationPercent({0, 0}, {7, 7}), 100.0);
}

// A /proc/stat the test writes, so utilization is known exactly.
class FakeStat {
 public:
  FakeStat() : path_(testing::TempDir() + "/stat-" + std::to_string(getpid())) {}
  ~FakeStat() { std::remove(path_.c_str()); }
  void Write(const std::string& text) { std::ofstream(path_) << text; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(SystemSampler, GroupsUtilizationByKind) {
  FakeStat stat;
  SystemSamplerOptions options;
  options.cpu_kinds = {"performance", "performance", "efficiency"};
  options.enable_gpu = false;
  options.proc_stat_path = stat.path();
  SystemSampler sampler(options);
  stat.Write(
      "cpu0 100 0 0 100 0 0 0 0\ncpu1 100 0 0 100 0 0 0 0\n"
      "cpu2 100 0 0 100 0 0 0 0\ncpu3 0 0 0 10 0 0 0 0\n");
  sampler.SampleNow();
  EXPECT_TRUE(sampler.Snapshot().cpus.empty()) << "one reading cannot give a rate";
  // cpu0: 50 of 100 jiffies busy; cpu1: all busy; cpu2: idle; cpu3 (no kind given): 25%.
  stat.Write(
      "cpu0 150 0 0 150 0 0 0 0\ncpu1 200 0 0 100 0 0 0 0\n"
      "cpu2 100 0 0 200 0 0 0 0\ncpu3 5 0 0 25 0 0 0 0\n");
  sampler.SampleNow();
  SystemSnapshot s = sampler.Snapshot();
  ASSERT_EQ(s.cpus.size(), 4u);
  EXPECT_DOUBLE_EQ(s.cpus[0].percent, 50.0);
  EXPECT_DOUBLE_EQ(s.cpus[1].percent, 100.0);
  EXPECT_DOUBLE_EQ(s.cpus[2].percent, 0.0);
  EXPECT_EQ(s.cpus[3].kind, "unknown");
  ASSERT_EQ(s.kinds.size(), 3u);  // efficiency, performance, unknown (sorted by name)
  EXPECT_EQ(s.kinds[1].kind, "performance");
  EXPECT_EQ(s.kinds[1].cpus, 2);
  EXPECT_DOUBLE_EQ(s.kinds[1].percent, 75.0);
  EXPECT_DOUBLE_EQ(s.kinds[0].percent, 0.0);
  EXPECT_DOUBLE_EQ(s.kinds[2].percent, 25.0);

  std::string prometheus;
  sampler.AppendPrometheus(&prometheus);
  EXPECT_NE(prometheus.find("brainstem_cpu_utilization{cpu=\"0\",kind=\"performance\"} 50\n"),
            std::string::npos)
      << prometheus;
  EXPECT_NE(prometheus.find("brainstem_cpu_kind_utilization{kind=\"performance\"} 75\n"),
            std::string::npos);
  EXPECT_NE(prometheus.find("# TYPE process_context_switches_total counter"), std::string::npos);
  EXPECT_NE(prometheus.find("process_context_switches_total{type=\"involuntary\"}"),
            std::string::npos);
  EXPECT_NE(prometheus.find("brainstem_gpu_available 0\n"), std::string::npos);
  EXPECT_EQ(prometheus.find("brainstem_gpu_utilization_percent"), std::string::npos);

  std::string json = sampler.ToJson();
  EXPECT_NE(json.find("{\"kind\":\"performance\",\"cpus\":2,\"percent\":75}"), std::string::npos)
      << json;
  EXPECT_NE(json.find("\"gpu\":{\"available\":false,\"status\":\"disabled\""), std::string::npos)
      << json;
}

std::vector<std::string> ThreadNames() {
  std::vector<std::string> names;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return names;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
    std::string name;
    std::getline(comm, name);
    names.push_back(name);
  }
  closedir(dir);
  return names;
}

TEST(SystemSampler, SeesAKnownLoad) {
  SystemSamplerOptions options;
  options.interval_ms = 250;
  options.cpu_kinds = {"performance", "performance"};
  SystemSampler sampler(options);
  sampler.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  bool named = false;
  for (const std::string& name : ThreadNames()) named |= name == "bs-sampler";
  EXPECT_TRUE(named) << "the sampler thread names itself";

  // Spin one thread for ~1.5 s; keep the highest readings seen while it runs.
  std::atomic<bool> spinning{true};
  std::thread busy([&] {
    volatile uint64_t x = 0;
    while (spinning.load(std::memory_order_relaxed)) x = x + 1;
  });
  double max_process = 0, max_cpu = 0, max_kind = 0;
  const auto end = Clock::now() + std::chrono::milliseconds(1500);
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  while (Clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    SystemSnapshot s = sampler.Snapshot();
    EXPECT_GE(s.process_cpu_percent, 0.0);
    EXPECT_LE(s.process_cpu_percent, 100.0 * cpus + 20.0);  // timer granularity slack
    max_process = std::max(max_process, s.process_cpu_percent);
    for (const CpuUtilization& c : s.cpus) {
      EXPECT_GE(c.percent, 0.0);
      EXPECT_LE(c.percent, 100.0);
      max_cpu = std::max(max_cpu, c.percent);
    }
    for (const KindUtilization& k : s.kinds) max_kind = std::max(max_kind, k.percent);
  }
  spinning = false;
  busy.join();
  SystemSnapshot s = sampler.Snapshot();
  sampler.Stop();
  // Loose: the 2-vCPU build machine is shared, so the spinner may get only part of a core.
  EXPECT_GT(max_process, 30.0);
  EXPECT_GT(max_cpu, 30.0);
  EXPECT_GT(max_kind, 15.0);
  EXPECT_GE(s.samples, 5);
  EXPECT_GT(s.rss_bytes, 1 << 20);
  EXPECT_GT(s.voluntary_context_switches + s.involuntary_context_switches, 0);
  // NVML: present on GPU hosts, absent here; either way a reason is given.
  EXPECT_FALSE(s.gpu_status.empty());
  if (!s.gpu_available) {
    EXPECT_TRUE(s.gpus.empty());
    EXPECT_NE(s.gpu_status.find("NVML"), std::string::npos) << s.gpu_status;
  } else {
    ASSERT_FALSE(s.gpus.empty());
    EXPECT_GT(s.gpus[0].memory_total_bytes, 0);
    std::string prometheus;
    sampler.AppendPrometheus(&prometheus);
    // Byte counts print exactly, not as 1.50755e+11.
    EXPECT_NE(
        prometheus.find("brainstem_gpu_memory_total_bytes{gpu=\"0\",name=\"" + s.gpus[0].name +
                        "\"} " + std::to_string(s.gpus[0].memory_total_bytes) + "\n"),
        std::string::npos)
        << prometheus;
  }
}

TEST(SystemSampler, StopDoesNotWaitOutTheIntervalAndRunsTheHook) {
  std::atomic<bool> hook_ran{false};
  SystemSamplerOptions options;
  options.interval_ms = 10000;
  options.enable_gpu = false;
  options.on_thread_start = [&] { hook_ran = true; };
  SystemSampler sampler(options);
  sampler.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto start = Clock::now();
  sampler.Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));
  EXPECT_TRUE(hook_ran);
  EXPECT_EQ(sampler.Snapshot().samples, 1);
}

}  // namespace
}  // namespace brainstem
