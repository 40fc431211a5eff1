// The TorchScript backend lives in its own shared object, libbrainstem_torch.so, loaded with
// dlopen the first time a TorchScript model (or its CUDA probe) is needed. A process that
// serves only ONNX therefore never maps LibTorch's ~285 libraries: that is what keeps its
// start-up and resident memory small. The plugin exports one C symbol returning this table.
// Thread-safe: the table is immutable; LoadTorchPlugin may be called from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "backends/backend.h"
#include "common/result.h"

namespace brainstem {

struct TorchPlugin {
  Result<std::unique_ptr<Backend>> (*load)(const std::filesystem::path& file, int64_t input_width,
                                           int64_t output_width, const BackendOptions& options);
  bool (*cuda_available)();
};

inline constexpr const char kTorchPluginSymbol[] = "brainstem_torch_plugin";
inline constexpr const char kTorchPluginFile[] = "libbrainstem_torch.so";

// Finds and loads the plugin once: $BRAINSTEM_PLUGIN_DIR, then the directory of the running
// executable, then its ../lib, then the build tree it was compiled in.
// Errors: kUnimplemented naming every place searched and dlopen's reason.
Result<const TorchPlugin*> LoadTorchPlugin();

}  // namespace brainstem
