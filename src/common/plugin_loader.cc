#include "common/plugin_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
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

Result<void*> LoadPluginEntry(std::string_view file, std::string_view symbol,
                              std::string_view what) {
  const std::string symbol_name(symbol);
  std::string tried;
  for (const auto& dir : CandidateDirs()) {
    const std::filesystem::path path = dir / file;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      tried += "\n  " + path.string() + ": not found";
      continue;
    }
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      tried += "\n  " + path.string() + ": " + dlerror();
      continue;
    }
    void* entry = dlsym(handle, symbol_name.c_str());
    if (entry == nullptr) {
      tried += "\n  " + path.string() + ": no symbol " + symbol_name;
      continue;
    }
    return entry;
  }
  return UnimplementedError(std::string(what) + " " + std::string(file) +
                            " could not be loaded (set BRAINSTEM_PLUGIN_DIR to its directory); "
                            "tried:" +
                            tried);
}

}  // namespace brainstem
