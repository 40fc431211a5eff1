#include <cstdlib>

#include "backends/ocr/ocr_engine.h"
#include "common/plugin_loader.h"

namespace brainstem {

Result<const OcrPlugin*> LoadOcrPlugin() {
  // Loaded once; a failure is remembered too.
  static const Result<const OcrPlugin*> plugin = []() -> Result<const OcrPlugin*> {
    // libgomp reads its environment once, when it is loaded (as Tesseract's dependency, by the
    // dlopen below, unless LibTorch loaded it earlier: serve's ConfineLibraryThreads sets the
    // same variable before any plugin). overwrite=0: an operator's explicit value wins.
    setenv("OMP_THREAD_LIMIT", "1", /*overwrite=*/0);
    ASSIGN_OR_RETURN(void* entry, LoadPluginEntry(kOcrPluginFile, kOcrPluginSymbol, "OCR plugin"));
    return reinterpret_cast<const OcrPlugin* (*)()>(entry)();
  }();
  return plugin;
}

}  // namespace brainstem
