#include "backends/torchscript/torchscript_plugin.h"

#include "common/plugin_loader.h"

namespace brainstem {

Result<const TorchPlugin*> LoadTorchPlugin() {
  // Loaded once; a failure is remembered too (the files will not appear while we run).
  static const Result<const TorchPlugin*> plugin = []() -> Result<const TorchPlugin*> {
    ASSIGN_OR_RETURN(void* entry, LoadPluginEntry(kTorchPluginFile, kTorchPluginSymbol,
                                                  "TorchScript backend plugin"));
    return reinterpret_cast<const TorchPlugin* (*)()>(entry)();
  }();
  return plugin;
}

}  // namespace brainstem
