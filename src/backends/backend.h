// Backend: runs one loaded model artifact on a batch of float32 rows. One Backend object is
// one model *instance*; the scheduler owns instances and never calls Run concurrently on the
// same instance, so implementations need no locks for their own state.
// Backends know nothing of transports, HTTP or JSON; library exceptions stop at this boundary.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/status.h"

namespace brainstem {

enum class ModelFormat { kTorchScript, kOnnx };
enum class Device { kAuto, kCpu, kCuda, kMps };
enum class Precision { kFp32, kFp16 };

std::string_view ModelFormatName(ModelFormat format);  // "torchscript" | "onnx"
std::string_view DeviceName(Device device);            // "auto" | "cpu" | "cuda" | "mps"
std::string_view PrecisionName(Precision precision);   // "fp32" | "fp16"

struct BackendOptions {
  Device device = Device::kCpu;
  Precision precision = Precision::kFp32;
  // Threads the library may use inside one Run call. 1 was fastest for every engine measured
  // on 2 cores; more only oversubscribes the cores the scheduler owns.
  int intra_op_threads = 1;
  // Calls with a zero batch run after load so that the first real request is not the slow one.
  int warmup_iterations = 20;
  // Largest batch Run will be given; warm-up covers it too.
  int64_t max_batch_size = 64;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Runs the model on `batch` rows of input_width() float32 features (row-major in `input`)
  // and writes batch * output_width() float32 values (row-major) into `output`.
  // REQUIRES: input.size() == batch * input_width(), output.size() == batch * output_width(),
  //           1 <= batch. Not called concurrently on one instance.
  // Errors: kInternal when the library fails; the instance stays usable.
  virtual Status Run(std::span<const float> input, int64_t batch, std::span<float> output) = 0;

  virtual int64_t input_width() const = 0;
  virtual int64_t output_width() const = 0;
  virtual ModelFormat format() const = 0;
  // The device actually used (never kAuto).
  virtual Device device() const = 0;
  virtual Precision precision() const = 0;
};

// Loads `file` as `format` and checks that it maps input_width features to output_width
// outputs (a trial batch is run). Warm-up runs before it returns.
// Errors: kNotFound (no file), kUnimplemented (format or device not built in, with the name of
// what is missing), kInvalidArgument (the artifact's shapes disagree with the widths), kInternal.
Result<std::unique_ptr<Backend>> LoadBackend(ModelFormat format, const std::filesystem::path& file,
                                             int64_t input_width, int64_t output_width,
                                             const BackendOptions& options);

// Which formats and devices this build can run, e.g. for /healthz and startup errors.
bool BackendBuiltIn(ModelFormat format);
// The best device available to this build for `format` (cuda, then mps, then cpu).
Device BestDevice(ModelFormat format);

}  // namespace brainstem
