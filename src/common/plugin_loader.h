// LoadPluginEntry: finds a brainstem plugin (a shared object built beside the binary, such as
// libbrainstem_torch.so or libbrainstem_ocr.so) and returns its entry point. Plugins keep heavy
// libraries (LibTorch, Tesseract) out of processes that never use them. Search order:
// $BRAINSTEM_PLUGIN_DIR, the running executable's directory, its ../lib, then the build tree
// the binary was compiled in.
// Thread-safe: dlopen and dlsym are; callers cache the result (each plugin is loaded once).
#pragma once

#include <string_view>

#include "common/result.h"

namespace brainstem {

// Loads `file` (RTLD_NOW | RTLD_LOCAL, so its libraries' symbols stay private) from the first
// directory that has it and returns the address of `symbol`.
// Errors: kUnimplemented naming `what`, every place searched and dlopen's reason.
Result<void*> LoadPluginEntry(std::string_view file, std::string_view symbol,
                              std::string_view what);

}  // namespace brainstem
