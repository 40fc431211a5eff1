// backend_microbench: per-call latency of each built backend, straight through the Backend
// interface (no scheduler, no HTTP). Prints load time, the first calls after a load without
// warm-up, and the median / p90 µs per Run at batch 1, 8 and 32.
//
// Usage: backend_microbench [--reps N] [DIR INPUT_WIDTH OUTPUT_WIDTH]...
// DIR holds model.pt and/or model.onnx. With no DIR: the tiny test fixture, plus
// artifacts/lane-keeping/v0.1.0 (10 -> 3) when it exists. Run from the repository root.
// BRAINSTEM_TORCH_PROFILING_EXECUTOR=1 in the environment switches LibTorch back to its default
// profiling executor, to compare first-call latency.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "common/clock.h"

namespace brainstem {
namespace {

struct Model {
  std::filesystem::path dir;
  int64_t input_width;
  int64_t output_width;
};

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

void BenchOne(const Model& model, ModelFormat format, int reps) {
  const std::filesystem::path file =
      model.dir / (format == ModelFormat::kTorchScript ? "model.pt" : "model.onnx");
  if (!std::filesystem::exists(file)) return;
  std::printf("%s %s (%lld -> %lld)\n", std::string(ModelFormatName(format)).c_str(),
              file.string().c_str(), static_cast<long long>(model.input_width),
              static_cast<long long>(model.output_width));

  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  auto make_input = [&](int64_t batch) {
    std::vector<float> in(static_cast<size_t>(batch * model.input_width));
    for (float& x : in) x = normal(rng);
    return in;
  };

  // Cold: no warm-up beyond the load's one trial batch; time the first calls one by one.
  {
    BackendOptions options;
    options.warmup_iterations = 0;
    options.max_batch_size = 2;
    const TimePoint t0 = Clock::now();
    auto backend = LoadBackend(format, file, model.input_width, model.output_width, options);
    const double load_ms = MicrosBetween(t0, Clock::now()) / 1e3;
    if (!backend.ok()) {
      std::printf("  load failed: %s\n", backend.status().ToString().c_str());
      return;
    }
    std::vector<float> in = make_input(1);
    std::vector<float> out(static_cast<size_t>(model.output_width));
    std::printf("  load without warm-up %.1f ms; first batch-1 calls (µs):", load_ms);
    for (int i = 0; i < 6; ++i) {
      const TimePoint s = Clock::now();
      Status st = (*backend)->Run(in, 1, out);
      const double us = MicrosBetween(s, Clock::now());
      if (!st.ok()) std::printf(" [%s]", st.ToString().c_str());
      std::printf(" %.0f", us);
    }
    std::printf("\n");
  }

  // Warm: default options (20 warm-up calls at batch 1, 3 at max_batch_size 64).
  BackendOptions options;
  const TimePoint t0 = Clock::now();
  auto backend = LoadBackend(format, file, model.input_width, model.output_width, options);
  const double load_ms = MicrosBetween(t0, Clock::now()) / 1e3;
  if (!backend.ok()) return;
  std::printf("  load with warm-up %.1f ms\n", load_ms);
  for (int64_t batch : {1, 8, 32}) {
    std::vector<float> in = make_input(batch);
    std::vector<float> out(static_cast<size_t>(batch * model.output_width));
    std::vector<double> us;
    us.reserve(static_cast<size_t>(reps));
    const TimePoint first = Clock::now();
    Status st = (*backend)->Run(in, batch, out);
    const double first_us = MicrosBetween(first, Clock::now());
    for (int i = 0; i < reps && st.ok(); ++i) {
      const TimePoint s = Clock::now();
      st = (*backend)->Run(in, batch, out);
      us.push_back(MicrosBetween(s, Clock::now()));
    }
    if (!st.ok()) {
      std::printf("  batch %lld: %s\n", static_cast<long long>(batch), st.ToString().c_str());
      continue;
    }
    std::printf("  batch %2lld: first %7.1f µs  p50 %7.1f µs  p90 %7.1f µs  (%.2f µs/row)\n",
                static_cast<long long>(batch), first_us, Percentile(us, 0.5), Percentile(us, 0.9),
                Percentile(us, 0.5) / static_cast<double>(batch));
  }
  // Alternating sizes: what a dynamic batcher under mixed load produces.
  {
    std::vector<float> in1 = make_input(1), in8 = make_input(8);
    std::vector<float> out1(static_cast<size_t>(model.output_width));
    std::vector<float> out8(static_cast<size_t>(8 * model.output_width));
    std::vector<double> us;
    for (int i = 0; i < reps; ++i) {
      const bool one = i % 2 == 0;
      const TimePoint s = Clock::now();
      Status st = one ? (*backend)->Run(in1, 1, out1) : (*backend)->Run(in8, 8, out8);
      us.push_back(MicrosBetween(s, Clock::now()));
      if (!st.ok()) return;
    }
    std::printf("  alternating 1/8: p50 %7.1f µs\n", Percentile(us, 0.5));
  }
}

}  // namespace
}  // namespace brainstem

int main(int argc, char** argv) {
  using brainstem::Model;
  int reps = 2000;
  std::vector<Model> models;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (i + 2 < argc) {
      models.push_back({argv[i], std::atoll(argv[i + 1]), std::atoll(argv[i + 2])});
      i += 2;
    } else {
      std::fprintf(stderr, "usage: %s [--reps N] [DIR INPUT_WIDTH OUTPUT_WIDTH]...\n", argv[0]);
      return 2;
    }
  }
  if (models.empty()) {
    models.push_back({"tests/fixtures/tiny_mlp", 5, 3});
    if (std::filesystem::exists("artifacts/lane-keeping/v0.1.0")) {
      models.push_back({"artifacts/lane-keeping/v0.1.0", 10, 3});
    }
  }
  for (const Model& model : models) {
    for (auto format : {brainstem::ModelFormat::kTorchScript, brainstem::ModelFormat::kOnnx}) {
      if (brainstem::BackendBuiltIn(format)) brainstem::BenchOne(model, format, reps);
    }
  }
  return 0;
}
