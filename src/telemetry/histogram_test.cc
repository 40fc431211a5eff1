#include "telemetry/histogram.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "telemetry/process_stats.h"

namespace brainstem {
namespace {

TEST(HistogramTest, CountsSumAndQuantiles) {
  Histogram h({1, 2, 4, 8});
  for (double v : {0.5, 1.5, 1.5, 3.0, 100.0}) h.Observe(v);
  auto s = h.Read();
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.sum, 106.5);
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{1, 2, 1, 0, 1}));
  double median = s.Quantile(0.5);
  EXPECT_GT(median, 1.0);
  EXPECT_LE(median, 2.0);
}

TEST(HistogramTest, PrometheusBucketsAreCumulative) {
  Histogram h({1, 2});
  h.Observe(0.5);
  h.Observe(1.5);
  h.Observe(5);
  std::string out;
  h.AppendPrometheus("x", "a=\"b\"", &out);
  EXPECT_NE(out.find("x_bucket{a=\"b\",le=\"1\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{a=\"b\",le=\"2\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_count{a=\"b\"} 3\n"), std::string::npos) << out;
}

TEST(HistogramTest, ConcurrentObserversLoseNothing) {
  Histogram h(Histogram::LatencyBuckets());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) h.Observe(1e-5);
    });
  }
  for (auto& t : threads) t.join();
  auto s = h.Read();
  EXPECT_EQ(s.count, 40000u);
  EXPECT_NEAR(s.sum, 0.4, 1e-9);
}

TEST(ProcessStatsTest, ReadsPlausibleValues) {
  ProcessStats p = ReadProcessStats();
  EXPECT_GT(p.rss_bytes, 1 << 20);
  EXPECT_GE(p.threads, 1);
  EXPECT_GE(p.uptime_seconds, 0);
  EXPECT_LT(p.uptime_seconds, 3600);
}

}  // namespace
}  // namespace brainstem
