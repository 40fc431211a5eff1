#include "backends/torchscript/torchscript_plugin.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace brainstem {
namespace {

std::vector<std::filesystem::path> CandidateDirs() {
  std::vector<std::filesystem::path> dirs;
  if (const char* env = std::getenv("BRAINSTEM_PLUGIN_DIR"); env != nullptr && *env != '\0') {
    dirs.emplace_back(env);
  }
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back(exe.parent_path());
    dirs.push_back(exe.parent_path().parent_path() / "lib");
  }
#ifdef BRAINSTEM_PLUGIN_BUILD_DIR
  dirs.emplace_back(BRAINSTEM_PLUGIN_BUILD_DIR);
#endif
  return dirs;
}

}  // namespace

Result<const TorchPlugin*> LoadTorchPlugin() {
  static std::once_flag once;
  static const TorchPlugin* plugin = nullptr;
  static std::string failure;
  std::call_once(once, [] {
    std::string tried;
    for (const auto& dir : CandidateDirs()) {
      const std::filesystem::path file = dir / kTorchPluginFile;
      std::error_code ec;
      if (!std::filesystem::exists(file, ec)) {
        tried += "\n  " + file.string() + ": not found";
        continue;
      }
      // RTLD_LOCAL keeps LibTorch's symbols out of the global namespace of the process.
      void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) {
        tried += "\n  " + file.string() + ": " + dlerror();
        continue;
      }
      using Entry = const TorchPlugin* (*)();
      auto entry = reinterpret_cast<Entry>(dlsym(handle, kTorchPluginSymbol));
      if (entry == nullptr) {
        tried += "\n  " + file.string() + ": no symbol " + kTorchPluginSymbol;
        continue;
      }
      plugin = entry();
      return;
    }
    failure = std::string("TorchScript backend plugin ") + kTorchPluginFile +
              " could not be loaded (set BRAINSTEM_PLUGIN_DIR to its directory); tried:" + tried;
  });
  if (plugin == nullptr) return UnimplementedError(failure);
  return plugin;
}

}  // namespace brainstem
