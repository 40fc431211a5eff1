// Format and device dispatch for LoadBackend. Everything that decides whether a request can be
// served at all (format built in, device present, precision supported, file exists) happens
// here, before any library is touched, so those errors read the same for every backend.

#include "backends/backend.h"

#include <string>
#include <system_error>

#ifdef BRAINSTEM_HAVE_TORCH
#include "backends/torchscript/torchscript_plugin.h"
#endif
#ifdef BRAINSTEM_HAVE_ONNX
#include "backends/onnx/onnx_backend.h"
#endif

namespace brainstem {
namespace {

bool CudaAvailable(ModelFormat format) {
#ifdef BRAINSTEM_HAVE_TORCH
  if (format == ModelFormat::kTorchScript) {
    Result<const TorchPlugin*> plugin = LoadTorchPlugin();
    return plugin.ok() && (*plugin)->cuda_available();
  }
#endif
  (void)format;
  return false;
}

std::string NotBuiltMessage(ModelFormat format) {
  switch (format) {
    case ModelFormat::kTorchScript:
      return "TorchScript backend not built: configure with -DBRAINSTEM_WITH_TORCH=ON and "
             "install libtorch-dev";
    case ModelFormat::kOnnx:
      return "ONNX backend not built: configure with -DBRAINSTEM_WITH_ONNX=ON and install "
             "libopencv-dnn-dev";
  }
  return "unknown model format";
}

// Turns the requested device into the one to use, or says why it cannot be had.
Result<Device> ResolveDevice(ModelFormat format, Device requested) {
  switch (requested) {
    case Device::kAuto:
      return BestDevice(format);
    case Device::kCpu:
      return Device::kCpu;
    case Device::kCuda:
      if (format == ModelFormat::kOnnx) {
        return UnimplementedError(
            "device 'cuda' requested but the ONNX backend (OpenCV DNN) is built for the CPU "
            "target only; use device 'cpu' or the torchscript format");
      }
      if (!CudaAvailable(format)) {
        return UnimplementedError(
            "device 'cuda' requested but this build's LibTorch has no CUDA support (or no GPU "
            "is visible)");
      }
      return Device::kCuda;
    case Device::kMps:
      return UnimplementedError(
          "device 'mps' requested but this is a Linux build: MPS exists only on macOS with "
          "Apple silicon (for TorchScript, with a LibTorch built with MPS); use device 'cpu'");
  }
  return InvalidArgumentError("unknown device");
}

Status CheckPrecision(ModelFormat format, Device device, Precision precision) {
  if (precision == Precision::kFp32) return Status::Ok();
  if (format == ModelFormat::kOnnx) {
    return UnimplementedError(
        "precision 'fp16' is not supported by the ONNX backend: OpenCV DNN's CPU target runs "
        "fp32 only; use precision 'fp32'");
  }
  if (device != Device::kCuda) {
    return UnimplementedError(
        "precision 'fp16' needs device cuda: LibTorch 1.13 has no Half matmul on the CPU; use "
        "precision 'fp32' on device '" +
        std::string(DeviceName(device)) + "'");
  }
  return Status::Ok();
}

Status CheckArguments(int64_t input_width, int64_t output_width, const BackendOptions& options) {
  if (input_width < 1 || output_width < 1) {
    return InvalidArgumentError("input and output widths must be >= 1, got " +
                                std::to_string(input_width) + " and " +
                                std::to_string(output_width));
  }
  if (options.max_batch_size < 1) {
    return InvalidArgumentError("max_batch_size must be >= 1, got " +
                                std::to_string(options.max_batch_size));
  }
  if (options.intra_op_threads < 1) {
    return InvalidArgumentError("intra_op_threads must be >= 1, got " +
                                std::to_string(options.intra_op_threads));
  }
  if (options.warmup_iterations < 0) {
    return InvalidArgumentError("warmup_iterations must be >= 0, got " +
                                std::to_string(options.warmup_iterations));
  }
  return Status::Ok();
}

Status CheckFile(const std::filesystem::path& file) {
  std::error_code ec;
  const auto status = std::filesystem::status(file, ec);
  if (!std::filesystem::exists(status)) {
    return NotFoundError("model file not found: " + file.string());
  }
  if (!std::filesystem::is_regular_file(status)) {
    return InvalidArgumentError("model path is not a regular file: " + file.string());
  }
  return Status::Ok();
}

}  // namespace

std::string_view ModelFormatName(ModelFormat format) {
  switch (format) {
    case ModelFormat::kTorchScript:
      return "torchscript";
    case ModelFormat::kOnnx:
      return "onnx";
  }
  return "unknown";
}

std::string_view DeviceName(Device device) {
  switch (device) {
    case Device::kAuto:
      return "auto";
    case Device::kCpu:
      return "cpu";
    case Device::kCuda:
      return "cuda";
    case Device::kMps:
      return "mps";
  }
  return "unknown";
}

std::string_view PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kFp16:
      return "fp16";
  }
  return "unknown";
}

bool BackendBuiltIn(ModelFormat format) {
  switch (format) {
    case ModelFormat::kTorchScript:
#ifdef BRAINSTEM_HAVE_TORCH
      return true;
#else
      return false;
#endif
    case ModelFormat::kOnnx:
#ifdef BRAINSTEM_HAVE_ONNX
      return true;
#else
      return false;
#endif
  }
  return false;
}

Device BestDevice(ModelFormat format) {
  // No build here can run MPS (Linux only), so the order collapses to cuda, then cpu.
  return CudaAvailable(format) ? Device::kCuda : Device::kCpu;
}

Result<std::unique_ptr<Backend>> LoadBackend(ModelFormat format, const std::filesystem::path& file,
                                             int64_t input_width, int64_t output_width,
                                             const BackendOptions& options) {
  if (!BackendBuiltIn(format)) return UnimplementedError(NotBuiltMessage(format));
  RETURN_IF_ERROR(CheckArguments(input_width, output_width, options));
  ASSIGN_OR_RETURN(const Device device, ResolveDevice(format, options.device));
  RETURN_IF_ERROR(CheckPrecision(format, device, options.precision));
  RETURN_IF_ERROR(CheckFile(file));

  [[maybe_unused]] BackendOptions resolved = options;  // unused when no backend is built
  resolved.device = device;
  switch (format) {
    case ModelFormat::kTorchScript:
#ifdef BRAINSTEM_HAVE_TORCH
    {
      ASSIGN_OR_RETURN(const TorchPlugin* plugin, LoadTorchPlugin());
      return plugin->load(file, input_width, output_width, resolved);
    }
#else
      break;
#endif
    case ModelFormat::kOnnx:
#ifdef BRAINSTEM_HAVE_ONNX
      return LoadOnnxBackend(file, input_width, output_width, resolved);
#else
      break;
#endif
  }
  return UnimplementedError(NotBuiltMessage(format));
}

}  // namespace brainstem
