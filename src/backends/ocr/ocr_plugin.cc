#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "backends/ocr/ocr_engine.h"

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

Result<const OcrPlugin*> LoadOcrPlugin() {
  static std::once_flag once;
  static const OcrPlugin* plugin = nullptr;
  static std::string failure;
  std::call_once(once, [] {
    // libgomp reads its environment once, when it is loaded (as Tesseract's dependency, by the
    // dlopen below, unless LibTorch loaded it earlier: serve's ConfineLibraryThreads sets the
    // same variable before any plugin). overwrite=0: an operator's explicit value wins.
    setenv("OMP_THREAD_LIMIT", "1", /*overwrite=*/0);
    std::string tried;
    for (const auto& dir : CandidateDirs()) {
      const std::filesystem::path file = dir / kOcrPluginFile;
      std::error_code ec;
      if (!std::filesystem::exists(file, ec)) {
        tried += "\n  " + file.string() + ": not found";
        continue;
      }
      void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) {
        tried += "\n  " + file.string() + ": " + dlerror();
        continue;
      }
      using Entry = const OcrPlugin* (*)();
      auto entry = reinterpret_cast<Entry>(dlsym(handle, kOcrPluginSymbol));
      if (entry == nullptr) {
        tried += "\n  " + file.string() + ": no symbol " + kOcrPluginSymbol;
        continue;
      }
      plugin = entry();
      return;
    }
    failure = std::string("OCR plugin ") + kOcrPluginFile +
              " could not be loaded (set BRAINSTEM_PLUGIN_DIR to its directory); tried:" + tried;
  });
  if (plugin == nullptr) return UnimplementedError(failure);
  return plugin;
}

}  // namespace brainstem
