// Histogram: a fixed-bucket, lock-free histogram of non-negative values (seconds, sizes) for
// Prometheus export and percentile estimates. Observe() is wait-free (two relaxed atomic adds
// and one bucket increment), so it sits on the request path.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace brainstem {

class Histogram {
 public:
  // `upper_bounds` must be strictly increasing; an implicit +Inf bucket follows.
  explicit Histogram(std::vector<double> upper_bounds);

  void Observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> counts;  // per bucket (not cumulative), last is +Inf
    uint64_t count = 0;
    double sum = 0;
    // Linear interpolation inside the bucket holding quantile q (0..1); 0 when empty.
    double Quantile(double q) const;
  };
  Snapshot Read() const;

  // Appends the Prometheus text of this histogram (cumulative _bucket lines, _sum, _count).
  // `labels` is either empty or of the form `route="/predict"` (no braces).
  void AppendPrometheus(const std::string& name, const std::string& labels, std::string* out) const;

  // Buckets from 1 µs to ~10 s, for latencies in seconds.
  static std::vector<double> LatencyBuckets();
  // 1, 2, 4, ... 4096, for batch sizes.
  static std::vector<double> SizeBuckets();

 private:
  const std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_bits_{0};  // double stored as bits, updated by CAS
};

}  // namespace brainstem
