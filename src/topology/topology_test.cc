#include "topology/topology.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <tuple>

namespace brainstem {
namespace {

const std::string kFixtures = BRAINSTEM_TOPOLOGY_FIXTURES;

CpuTopology LoadSysfs(const std::string& machine) {
  Result<CpuTopology> topology = ReadSysfsTopology(kFixtures + "/" + machine);
  EXPECT_TRUE(topology.ok()) << topology.status().ToString();
  return topology.ok() ? *topology : CpuTopology{};
}

std::vector<int> Range(int first, int last) {
  std::vector<int> out;
  for (int i = first; i <= last; ++i) out.push_back(i);
  return out;
}

int CountCaches(const CpuTopology& t, int level, const std::string& type, int64_t size) {
  int n = 0;
  for (const Cache& c : t.caches) n += c.level == level && c.type == type && c.size_bytes == size;
  return n;
}

TEST(ParseCpuList, AcceptsRangesSinglesAndWhitespace) {
  Result<std::vector<int>> cpus = ParseCpuList("0-3,8,10-11");
  ASSERT_TRUE(cpus.ok()) << cpus.status().ToString();
  EXPECT_EQ(*cpus, (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  cpus = ParseCpuList(" 5 , 1-2,2 ");
  ASSERT_TRUE(cpus.ok());
  EXPECT_EQ(*cpus, (std::vector<int>{1, 2, 5}));
  cpus = ParseCpuList("");
  ASSERT_TRUE(cpus.ok());
  EXPECT_TRUE(cpus->empty());
}

TEST(ParseCpuList, RejectsMalformedLists) {
  for (const char* bad : {"a", "3-1", "1,,2", "-1", "1-", "1-2-3", "99999", "0x3", "1;2"}) {
    Result<std::vector<int>> cpus = ParseCpuList(bad);
    EXPECT_FALSE(cpus.ok()) << bad;
    if (!cpus.ok()) {
      EXPECT_EQ(cpus.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(cpus.status().message().find(bad), std::string::npos) << cpus.status().message();
    }
  }
}

TEST(FormatCpuList, CompressesRanges) {
  EXPECT_EQ(FormatCpuList({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
  EXPECT_EQ(FormatCpuList({7, 5, 6, 5}), "5-7");
  EXPECT_EQ(FormatCpuList({}), "");
  Result<std::vector<int>> back = ParseCpuList(FormatCpuList({1, 4, 5, 6, 9}));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, (std::vector<int>{1, 4, 5, 6, 9}));
}

TEST(SysfsTopology, ThisVmIsUniformWithoutSmt) {
  CpuTopology t = LoadSysfs("vm-2vcpu");
  ASSERT_EQ(t.cores.size(), 2u);
  EXPECT_FALSE(t.hybrid());
  EXPECT_EQ(t.CpusOfKind(CoreKind::kPerformance), (std::vector<int>{0, 1}));
  for (const Core& c : t.cores) {
    EXPECT_TRUE(c.smt_siblings.empty());
    EXPECT_EQ(c.capacity, 1024);
  }
  EXPECT_EQ(t.PhysicalCores().size(), 2u);
  EXPECT_EQ(CountCaches(t, 1, "data", 48 << 10), 2);
  EXPECT_EQ(CountCaches(t, 2, "unified", 2048 << 10), 2);
  ASSERT_EQ(CountCaches(t, 3, "unified", int64_t{491520} << 10), 1);
  EXPECT_EQ(t.caches.back().cpus, (std::vector<int>{0, 1}));
  ASSERT_EQ(t.numa_nodes.size(), 1u);
  EXPECT_EQ(t.numa_nodes[0].cpus, (std::vector<int>{0, 1}));
}

TEST(SysfsTopology, IntelHybridSplitsByCapacityNotTurboBins) {
  CpuTopology t = LoadSysfs("intel-8p8e");
  ASSERT_EQ(t.cores.size(), 24u);
  EXPECT_TRUE(t.hybrid());
  // Cores 2 and 3 (CPUs 4-7) have a higher max frequency than the other P cores; capacity
  // says they are the same kind.
  EXPECT_EQ(t.CpusOfKind(CoreKind::kPerformance), Range(0, 15));
  EXPECT_EQ(t.CpusOfKind(CoreKind::kEfficiency), Range(16, 23));
  EXPECT_EQ(t.FindCpu(0)->smt_siblings, (std::vector<int>{1}));
  EXPECT_EQ(t.FindCpu(15)->smt_siblings, (std::vector<int>{14}));
  EXPECT_TRUE(t.FindCpu(16)->smt_siblings.empty());
  EXPECT_EQ(t.FindCpu(16)->capacity, 600);
  EXPECT_EQ(t.FindCpu(4)->max_freq_khz, 5200000);
  EXPECT_EQ(t.FindCpu(16)->max_freq_khz, 3900000);
  EXPECT_EQ(t.PhysicalCores().size(), 16u);
  EXPECT_EQ(CountCaches(t, 1, "data", 48 << 10), 8);
  EXPECT_EQ(CountCaches(t, 1, "data", 32 << 10), 8);
  EXPECT_EQ(CountCaches(t, 2, "unified", 1280 << 10), 8);
  EXPECT_EQ(CountCaches(t, 2, "unified", 2048 << 10), 2);
  EXPECT_EQ(CountCaches(t, 3, "unified", 30 << 20), 1);
  std::set<std::vector<int>> e_l2;
  for (const Cache& c : t.caches) {
    if (c.level == 2 && c.size_bytes == 2048 << 10) e_l2.insert(c.cpus);
  }
  EXPECT_EQ(e_l2, (std::set<std::vector<int>>{Range(16, 19), Range(20, 23)}));
  EXPECT_EQ(t.KindLabels()[3], "performance");
  EXPECT_EQ(t.KindLabels()[20], "efficiency");
}

TEST(SysfsTopology, AppleLayoutListsEfficiencyCoresFirst) {
  CpuTopology t = LoadSysfs("apple-4p6e");
  ASSERT_EQ(t.cores.size(), 10u);
  EXPECT_TRUE(t.hybrid());
  EXPECT_EQ(t.CpusOfKind(CoreKind::kPerformance), Range(6, 9));
  EXPECT_EQ(t.CpusOfKind(CoreKind::kEfficiency), Range(0, 5));
  for (const Core& c : t.cores) EXPECT_TRUE(c.smt_siblings.empty());
  EXPECT_EQ(CountCaches(t, 2, "unified", 4 << 20), 1);
  EXPECT_EQ(CountCaches(t, 2, "unified", 16 << 20), 1);
  for (const Cache& c : t.caches) EXPECT_LT(c.level, 3);
}

TEST(SysfsTopology, TwoSocketServerHasTwoNumaNodesAndSmt) {
  CpuTopology t = LoadSysfs("xeon-2s-numa");
  ASSERT_EQ(t.cores.size(), 16u);
  EXPECT_FALSE(t.hybrid());
  EXPECT_EQ(t.CpusOfKind(CoreKind::kPerformance).size(), 16u);
  ASSERT_EQ(t.numa_nodes.size(), 2u);
  EXPECT_EQ(t.numa_nodes[1].cpus, (std::vector<int>{4, 5, 6, 7, 12, 13, 14, 15}));
  EXPECT_EQ(t.numa_nodes[1].memory_bytes, int64_t{16} << 30);
  EXPECT_EQ(t.FindCpu(5)->numa_node, 1);
  EXPECT_EQ(t.FindCpu(5)->package, 1);
  EXPECT_EQ(t.FindCpu(0)->smt_siblings, (std::vector<int>{8}));
  EXPECT_EQ(t.PhysicalCores().size(), 8u);
  EXPECT_EQ(CountCaches(t, 3, "unified", 60 << 20), 2);
}

TEST(SysfsTopology, MissingRootIsNotFound) {
  Result<CpuTopology> t = ReadSysfsTopology(kFixtures + "/no-such-machine");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
}

#ifdef BRAINSTEM_HAVE_HWLOC
// hwloc's own Linux backend produced each hwloc.xml from the same sysfs fixture, so the two
// readers must agree CPU for CPU.
class HwlocMatchesSysfs : public testing::TestWithParam<const char*> {};

TEST_P(HwlocMatchesSysfs, SameKindsSiblingsCachesAndNodes) {
  const std::string machine = GetParam();
  CpuTopology sysfs = LoadSysfs(machine);
  Result<CpuTopology> hwloc = ReadHwlocTopology(kFixtures + "/" + machine + "/hwloc.xml");
  ASSERT_TRUE(hwloc.ok()) << hwloc.status().ToString();
  ASSERT_EQ(hwloc->cores.size(), sysfs.cores.size());
  for (size_t i = 0; i < sysfs.cores.size(); ++i) {
    const Core& a = sysfs.cores[i];
    const Core& b = hwloc->cores[i];
    EXPECT_EQ(a.cpu, b.cpu);
    EXPECT_EQ(a.kind, b.kind) << machine << " cpu " << a.cpu;
    EXPECT_EQ(a.smt_siblings, b.smt_siblings) << machine << " cpu " << a.cpu;
    EXPECT_EQ(a.package, b.package);
    EXPECT_EQ(a.numa_node, b.numa_node);
    if (a.capacity > 0 && hwloc->hybrid()) {
      EXPECT_EQ(a.capacity, b.capacity);
    }
  }
  auto key = [](const CpuTopology& t) {
    std::multiset<std::tuple<int, std::string, int64_t, std::vector<int>>> out;
    for (const Cache& c : t.caches) out.insert({c.level, c.type, c.size_bytes, c.cpus});
    return out;
  };
  EXPECT_EQ(key(sysfs), key(*hwloc));
  ASSERT_EQ(sysfs.numa_nodes.size(), hwloc->numa_nodes.size());
  for (size_t i = 0; i < sysfs.numa_nodes.size(); ++i) {
    EXPECT_EQ(sysfs.numa_nodes[i].cpus, hwloc->numa_nodes[i].cpus);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HwlocMatchesSysfs,
                         testing::Values("vm-2vcpu", "intel-8p8e", "apple-4p6e", "xeon-2s-numa"));
#endif

TEST(DetectTopology, ThisMachineAgreesWithItsSysfs) {
  CpuTopology live = DetectTopology();
  ASSERT_FALSE(live.cores.empty());
  EXPECT_FALSE(live.AllowedCpus().empty());
  Result<CpuTopology> sysfs = ReadSysfsTopology("/");
  ASSERT_TRUE(sysfs.ok());
  // hwloc hides CPUs outside our cpuset; every CPU it reports must exist in sysfs with the
  // same kind.
  for (const Core& core : live.cores) {
    const Core* same = sysfs->FindCpu(core.cpu);
    ASSERT_NE(same, nullptr) << core.cpu;
    EXPECT_EQ(same->kind, core.kind) << core.cpu;
  }
}

TEST(CpuOverrides, BothListsSetKindsAndLeaveTheRestUnknown) {
  CpuTopology t = LoadSysfs("apple-4p6e");
  ASSERT_TRUE(ApplyCpuOverrides("0-3", "4-9", &t).ok());
  EXPECT_EQ(t.CpusOfKind(CoreKind::kPerformance), Range(0, 3));
  EXPECT_EQ(t.CpusOfKind(CoreKind::kEfficiency), Range(4, 9));
  EXPECT_NE(t.source.find("+overrides"), std::string::npos);

  t = LoadSysfs("apple-4p6e");
  ASSERT_TRUE(ApplyCpuOverrides("6-7", "0-1", &t).ok());
  EXPECT_EQ(t.CpusOfKind(CoreKind::kUnknown), (std::vector<int>{2, 3, 4, 5, 8, 9}));
}

TEST(CpuOverrides, OneListImpliesTheOther) {
  CpuTopology t = LoadSysfs("vm-2vcpu");
  ASSERT_TRUE(ApplyCpuOverrides("0", "", &t).ok());
  EXPECT_EQ(t.CpusOfKind(CoreKind::kPerformance), (std::vector<int>{0}));
  EXPECT_EQ(t.CpusOfKind(CoreKind::kEfficiency), (std::vector<int>{1}));
  EXPECT_TRUE(t.hybrid());

  t = LoadSysfs("intel-8p8e");
  ASSERT_TRUE(ApplyCpuOverrides("", "12-23", &t).ok());
  EXPECT_EQ(t.CpusOfKind(CoreKind::kPerformance), Range(0, 11));

  t = LoadSysfs("intel-8p8e");
  ASSERT_TRUE(ApplyCpuOverrides("", "", &t).ok());
  EXPECT_EQ(t.CpusOfKind(CoreKind::kPerformance), Range(0, 15));
  EXPECT_EQ(t.source.find("+overrides"), std::string::npos);
}

TEST(CpuOverrides, BadListsAreRejectedNamingTheKey) {
  struct Case {
    const char* performance;
    const char* efficiency;
    const char* key;
    const char* detail;
  };
  for (const Case& c : {Case{"0-3,x", "", "cpu.performance_cores", "'x'"},
                        Case{"", "9-4", "cpu.efficiency_cores", "backwards"},
                        Case{"0-3", "12", "cpu.efficiency_cores", "does not exist"},
                        Case{"0-3", "3-5", "cpu.efficiency_cores", "CPU 3"},
                        Case{"", "0-9", "cpu.efficiency_cores", "no performance CPU"}}) {
    CpuTopology t = LoadSysfs("apple-4p6e");
    const CpuTopology before = t;
    Status s = ApplyCpuOverrides(c.performance, c.efficiency, &t);
    ASSERT_FALSE(s.ok()) << c.performance << " / " << c.efficiency;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(c.key), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(c.detail), std::string::npos) << s.message();
    // A rejected override leaves the topology as it was.
    EXPECT_EQ(t.CpusOfKind(CoreKind::kPerformance), before.CpusOfKind(CoreKind::kPerformance));
  }
}

TEST(PinningMode, ParsesAutoAndOff) {
  EXPECT_EQ(*ParsePinningMode("auto"), PinningMode::kAuto);
  EXPECT_EQ(*ParsePinningMode("off"), PinningMode::kOff);
  Result<PinningMode> bad = ParsePinningMode("on");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cpu.pinning"), std::string::npos);
  EXPECT_NE(bad.status().message().find("auto, off"), std::string::npos);
}

TEST(DescribeTopology, NamesKindsCachesAndNodes) {
  std::string text = DescribeTopology(LoadSysfs("intel-8p8e"));
  EXPECT_NE(text.find("performance: CPUs 0-15 (16), capacity 1024"), std::string::npos) << text;
  EXPECT_NE(text.find("efficiency: CPUs 16-23 (8), capacity 600"), std::string::npos) << text;
  EXPECT_NE(text.find("SMT on 8"), std::string::npos) << text;
  EXPECT_NE(text.find("L2 unified 2 MiB x2, each shared by 4 CPUs: [16-19] [20-23]"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("NUMA nodes: 1"), std::string::npos) << text;
}

}  // namespace
}  // namespace brainstem
