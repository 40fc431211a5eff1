// TorchScript backend: runs a `torch.jit.save`d module with LibTorch. The module is frozen and
// passed through torch::jit::optimize_for_inference at load, then warmed up. This header is
// free of torch includes on purpose: <torch/script.h> costs ~20 s per translation unit, so only
// torchscript_backend.cc includes it and everything else sees this factory.
// Thread safety: the factory is thread-safe; each returned Backend follows backend.h's rule
// (one caller at a time per instance).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "backends/backend.h"
#include "common/result.h"

namespace brainstem {

// Loads `file` as TorchScript. Called by LoadBackend after it has resolved options.device
// (never kAuto here) and checked the device/precision pair and that the file exists.
// Errors: kInvalidArgument (not a TorchScript file, or shapes disagree with the widths),
// kInternal (LibTorch failed otherwise).
Result<std::unique_ptr<Backend>> LoadTorchScriptBackend(const std::filesystem::path& file,
                                                        int64_t input_width, int64_t output_width,
                                                        const BackendOptions& options);

// Whether the linked LibTorch was built with CUDA and sees at least one GPU.
bool TorchCudaAvailable();

}  // namespace brainstem
