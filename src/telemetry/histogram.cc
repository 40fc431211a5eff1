#include "telemetry/histogram.h"

#include <algorithm>
#include <bit>
#include <charconv>

namespace brainstem {

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      counts_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]) {
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double value) {
  size_t bucket = static_cast<size_t>(
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  uint64_t old_bits = sum_bits_.load(std::memory_order_relaxed);
  while (!sum_bits_.compare_exchange_weak(
      old_bits, std::bit_cast<uint64_t>(std::bit_cast<double>(old_bits) + value),
      std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.upper_bounds = upper_bounds_;
  s.counts.resize(upper_bounds_.size() + 1);
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    s.counts[i] = counts_[i].load(std::memory_order_relaxed);
    s.count += s.counts[i];
  }
  s.sum = std::bit_cast<double>(sum_bits_.load(std::memory_order_relaxed));
  return s;
}

double Histogram::Snapshot::Quantile(double q) const {
  if (count == 0) return 0;
  double rank = q * static_cast<double>(count);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    if (static_cast<double>(seen + counts[i]) >= rank) {
      double low = i == 0 ? 0 : upper_bounds[i - 1];
      double high = i < upper_bounds.size() ? upper_bounds[i] : low;
      double within = (rank - static_cast<double>(seen)) / static_cast<double>(counts[i]);
      return low + (high - low) * std::clamp(within, 0.0, 1.0);
    }
    seen += counts[i];
  }
  return upper_bounds.empty() ? 0 : upper_bounds.back();
}

namespace {

void AppendNumber(double v, std::string* out) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, ec == std::errc() ? end : buf);
}

void AppendLine(const std::string& name, const std::string& labels, const std::string& extra,
                double value, std::string* out) {
  out->append(name);
  if (!labels.empty() || !extra.empty()) {
    out->push_back('{');
    out->append(labels);
    if (!labels.empty() && !extra.empty()) out->push_back(',');
    out->append(extra);
    out->push_back('}');
  }
  out->push_back(' ');
  AppendNumber(value, out);
  out->push_back('\n');
}

}  // namespace

void Histogram::AppendPrometheus(const std::string& name, const std::string& labels,
                                 std::string* out) const {
  Snapshot s = Read();
  uint64_t cumulative = 0;
  for (size_t i = 0; i < s.counts.size(); ++i) {
    cumulative += s.counts[i];
    std::string le = "le=\"";
    if (i < s.upper_bounds.size()) {
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), s.upper_bounds[i]);
      le.append(buf, end);
    } else {
      le += "+Inf";
    }
    le += '"';
    AppendLine(name + "_bucket", labels, le, static_cast<double>(cumulative), out);
  }
  AppendLine(name + "_sum", labels, "", s.sum, out);
  AppendLine(name + "_count", labels, "", static_cast<double>(s.count), out);
}

std::vector<double> Histogram::LatencyBuckets() {
  std::vector<double> b;
  for (double decade = 1e-6; decade < 10; decade *= 10) {
    for (double m : {1.0, 2.0, 5.0}) b.push_back(decade * m);
  }
  b.push_back(10);
  return b;
}

std::vector<double> Histogram::SizeBuckets() {
  std::vector<double> b;
  for (double v = 1; v <= 4096; v *= 2) b.push_back(v);
  return b;
}

}  // namespace brainstem
