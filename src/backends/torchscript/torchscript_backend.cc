// TorchScript backend. The only translation unit that includes <torch/script.h>.
//
// Load path: torch::jit::load -> eval -> (cuda/fp16: to device/dtype) -> freeze ->
// optimize_for_inference -> trial batch (shape check) -> warm-up. Run path: from_blob over the
// caller's input (no copy), forward under InferenceMode, then one memcpy into the caller's output
// (or copy_ when the result is not a contiguous CPU float tensor, e.g. on cuda or in fp16).

#include "backends/torchscript/torchscript_backend.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "backends/torchscript/torchscript_plugin.h"

namespace brainstem {
namespace {

// LibTorch's messages carry a C++ backtrace, and interpreter errors a TorchScript traceback
// before the actual error; keep the last unindented line, which is the one a person needs.
// (torch::jit::JITException is a std::runtime_error, so both overloads are needed.)
std::string LastErrorLine(const std::string& message) {
  std::string best;
  size_t start = 0;
  while (start < message.size()) {
    size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    if (end > start && message[start] != ' ' && message[start] != '\t') {
      best = message.substr(start, end - start);
    }
    start = end + 1;
  }
  return best.empty() ? message : best;
}
std::string TorchMessage(const c10::Error& e) { return LastErrorLine(e.what_without_backtrace()); }
std::string TorchMessage(const std::exception& e) { return LastErrorLine(e.what()); }

// Process-wide LibTorch settings, applied once.
//  - Interop threads can be set only once per process, and only before the pool starts.
//  - The profiling graph executor (the default) profiles the first call and re-optimises on
//    the second: measured 2.4-2.9 ms then ~1 ms on an optimized MLP (30 ms then 1.3 ms without
//    optimize_for_inference). The legacy ("simple") executor optimises once on the first call
//    (3.6 ms, then 25 µs) and is as fast in steady state. docs/backends.md has the numbers.
//    BRAINSTEM_TORCH_PROFILING_EXECUTOR=1 restores LibTorch's default (for measurement).
void ConfigureTorchOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    try {
      at::set_num_interop_threads(1);
    } catch (const c10::Error&) {
      // Someone else in the process started the pool first; their setting stands.
    }
    const char* profiling = std::getenv("BRAINSTEM_TORCH_PROFILING_EXECUTOR");
    const bool use_profiling = profiling != nullptr && std::string(profiling) == "1";
    torch::jit::getProfilingMode() = use_profiling;
    torch::jit::getExecutorMode() = use_profiling;
  });
}

// LibTorch's set_num_threads drives OpenMP only; OpenBLAS keeps its own pthread pool sized to
// every core. Found through dlsym so that the build does not depend on which BLAS is installed
// (Debian's alternatives may point libblas.so.3 at reference BLAS, which has no pool).
void SetBlasThreads(int threads) {
  using SetThreadsFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(threads);
  }
}

// OpenMP's thread count is a per-thread setting: apply it on each thread that calls Run.
void SetIntraOpThreadsForThisThread(int threads) {
  thread_local int applied = 0;
  if (applied != threads) {
    at::set_num_threads(threads);
    applied = threads;
  }
}

class TorchScriptBackend final : public Backend {
 public:
  TorchScriptBackend(torch::jit::Module module, int64_t input_width, int64_t output_width,
                     const BackendOptions& options)
      : module_(std::move(module)),
        input_width_(input_width),
        output_width_(output_width),
        device_(options.device),
        precision_(options.precision),
        intra_op_threads_(options.intra_op_threads),
        torch_device_(options.device == Device::kCuda ? torch::kCUDA : torch::kCPU),
        torch_dtype_(options.precision == Precision::kFp16 ? torch::kHalf : torch::kFloat) {
    inputs_.reserve(1);
  }

  Status Run(std::span<const float> input, int64_t batch, std::span<float> output) override {
    if (batch < 1 || input.size() != static_cast<size_t>(batch * input_width_) ||
        output.size() != static_cast<size_t>(batch * output_width_)) {
      return InvalidArgumentError(
          "Run: batch " + std::to_string(batch) + " needs " + std::to_string(batch * input_width_) +
          " inputs and " + std::to_string(batch * output_width_) + " outputs, got " +
          std::to_string(input.size()) + " and " + std::to_string(output.size()));
    }
    SetIntraOpThreadsForThisThread(intra_op_threads_);
    try {
      c10::InferenceMode inference_mode;
      // from_blob borrows the caller's buffer; forward only reads it.
      torch::Tensor x = torch::from_blob(const_cast<float*>(input.data()), {batch, input_width_},
                                         torch::TensorOptions().dtype(torch::kFloat));
      if (torch_device_ != torch::kCPU || torch_dtype_ != torch::kFloat) {
        x = x.to(torch_device_, torch_dtype_);
      }
      inputs_.clear();
      inputs_.emplace_back(std::move(x));
      const torch::jit::IValue result = module_.forward(inputs_);
      inputs_.clear();
      if (!result.isTensor()) {
        return InternalError("TorchScript forward returned " + result.tagKind() +
                             ", expected a Tensor");
      }
      const torch::Tensor& y = result.toTensor();
      if (y.dim() != 2 || y.size(0) != batch || y.size(1) != output_width_) {
        return InvalidArgumentError("TorchScript output has shape " + ShapeString(y) +
                                    ", expected [" + std::to_string(batch) + ", " +
                                    std::to_string(output_width_) + "]");
      }
      if (y.device().is_cpu() && y.scalar_type() == torch::kFloat && y.is_contiguous()) {
        std::memcpy(output.data(), y.data_ptr<float>(), output.size() * sizeof(float));
      } else {
        torch::Tensor out = torch::from_blob(output.data(), {batch, output_width_},
                                             torch::TensorOptions().dtype(torch::kFloat));
        out.copy_(y);
      }
      return Status::Ok();
    } catch (const c10::Error& e) {
      inputs_.clear();
      return InternalError("TorchScript run failed: " + TorchMessage(e));
    } catch (const std::exception& e) {
      inputs_.clear();
      return InternalError("TorchScript run failed: " + TorchMessage(e));
    }
  }

  int64_t input_width() const override { return input_width_; }
  int64_t output_width() const override { return output_width_; }
  ModelFormat format() const override { return ModelFormat::kTorchScript; }
  Device device() const override { return device_; }
  Precision precision() const override { return precision_; }

 private:
  static std::string ShapeString(const torch::Tensor& t) {
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); ++i) {
      if (i > 0) s += ", ";
      s += std::to_string(t.size(i));
    }
    return s + "]";
  }

  // Constant after construction.
  torch::jit::Module module_;
  const int64_t input_width_;
  const int64_t output_width_;
  const Device device_;
  const Precision precision_;
  const int intra_op_threads_;
  const torch::DeviceType torch_device_;
  const torch::ScalarType torch_dtype_;
  // Reused across calls so that Run does not allocate the argument vector each time.
  std::vector<torch::jit::IValue> inputs_;
};

// Runs `rows` zero rows through the backend; used for the shape check and the warm-up.
Status RunZeros(Backend& backend, int64_t rows) {
  std::vector<float> in(static_cast<size_t>(rows * backend.input_width()), 0.0f);
  std::vector<float> out(static_cast<size_t>(rows * backend.output_width()), 0.0f);
  return backend.Run(in, rows, out);
}

}  // namespace

bool TorchCudaAvailable() {
  try {
    return torch::cuda::is_available();
  } catch (const std::exception&) {
    return false;
  }
}

Result<std::unique_ptr<Backend>> LoadTorchScriptBackend(const std::filesystem::path& file,
                                                        int64_t input_width, int64_t output_width,
                                                        const BackendOptions& options) {
  ConfigureTorchOnce();
  SetBlasThreads(options.intra_op_threads);
  SetIntraOpThreadsForThisThread(options.intra_op_threads);

  torch::jit::Module module;
  try {
    module = torch::jit::load(file.string());
  } catch (const c10::Error& e) {
    return InvalidArgumentError("not a loadable TorchScript file: " + file.string() + ": " +
                                TorchMessage(e));
  } catch (const std::exception& e) {
    return InvalidArgumentError("not a loadable TorchScript file: " + file.string() + ": " +
                                TorchMessage(e));
  }

  try {
    module.eval();
    if (options.device == Device::kCuda) module.to(torch::kCUDA);
    if (options.precision == Precision::kFp16) module.to(torch::kHalf);
    module = torch::jit::freeze(module);
    // optimize_for_inference folds conv+bn, pre-packs linear weights and drops dropout; a
    // module it cannot handle still runs frozen, so a failure here is not fatal.
    try {
      module = torch::jit::optimize_for_inference(module);
    } catch (const c10::Error&) {
    }
  } catch (const c10::Error& e) {
    return InvalidArgumentError("cannot prepare TorchScript module " + file.string() + ": " +
                                TorchMessage(e));
  } catch (const std::exception& e) {
    return InternalError("cannot prepare TorchScript module " + file.string() + ": " +
                         TorchMessage(e));
  }

  auto backend =
      std::make_unique<TorchScriptBackend>(std::move(module), input_width, output_width, options);

  // Trial batch of 2 rows: a width mismatch makes forward throw (reported as kInternal by Run)
  // or return the wrong shape; either way the artifact disagrees with the card.
  if (Status trial = RunZeros(*backend, std::min<int64_t>(2, options.max_batch_size));
      !trial.ok()) {
    return InvalidArgumentError("TorchScript model " + file.string() + " does not map " +
                                std::to_string(input_width) + " inputs to " +
                                std::to_string(output_width) + " outputs: " + trial.message());
  }

  for (int i = 0; i < options.warmup_iterations; ++i) RETURN_IF_ERROR(RunZeros(*backend, 1));
  for (int i = 0; i < 3; ++i) RETURN_IF_ERROR(RunZeros(*backend, options.max_batch_size));

  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace brainstem

// The plugin's only exported entry point (see torchscript_plugin.h).
extern "C" __attribute__((visibility("default"))) const brainstem::TorchPlugin*
brainstem_torch_plugin() {
  static const brainstem::TorchPlugin kPlugin = {&brainstem::LoadTorchScriptBackend,
                                                 &brainstem::TorchCudaAvailable};
  return &kPlugin;
}
