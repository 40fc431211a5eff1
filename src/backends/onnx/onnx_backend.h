// ONNX backend: runs an ONNX graph with OpenCV DNN on the CPU (DNN_BACKEND_OPENCV,
// DNN_TARGET_CPU). OpenCV re-plans its buffers whenever the input shape changes, so the backend
// keeps one planned network per batch size it has seen (see onnx_backend.cc for the measurements
// behind that choice).
// Thread safety: the factory is thread-safe; each returned Backend follows backend.h's rule
// (one caller at a time per instance).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "backends/backend.h"
#include "common/result.h"

namespace brainstem {

// Loads `file` as ONNX. Called by LoadBackend after it has checked that options.device is kCpu,
// the precision is fp32 and the file exists.
// Errors: kInvalidArgument (not an ONNX graph OpenCV can import, or shapes disagree with the
// widths), kInternal (OpenCV failed otherwise).
Result<std::unique_ptr<Backend>> LoadOnnxBackend(const std::filesystem::path& file,
                                                 int64_t input_width, int64_t output_width,
                                                 const BackendOptions& options);

}  // namespace brainstem
