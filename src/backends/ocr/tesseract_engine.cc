// The Tesseract engine behind OcrEngine; compiled into libbrainstem_ocr.so only (see
// ocr_engine.h for why it is a plugin). Tesseract and Leptonica exceptions and messages stop
// here. The plugin also runs Tesseract's OpenMP regions itself, serially (below).
#include <leptonica/allheaders.h>
#include <tesseract/baseapi.h>
#include <tesseract/resultiterator.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "backends/ocr/ocr_engine.h"

namespace brainstem {
namespace {

// Tesseract's OpenMP regions run by the definitions at the end of this file: counted per
// thread (one per LSTM time step, too many for a shared counter) and added to the total after
// each Recognize.
std::atomic<uint64_t> serial_regions{0};
thread_local uint64_t serial_regions_on_this_thread = 0;

// The sections of the innermost `omp parallel sections` running on this thread.
struct Sections {
  unsigned next = 1;
  unsigned count = 0;
};
thread_local Sections current_sections;

class TesseractEngine final : public OcrEngine {
 public:
  explicit TesseractEngine(int dpi) : dpi_(dpi) {}
  ~TesseractEngine() override { api_.End(); }

  Status Init(const OcrEngineOptions& options) {
    const char* datapath = options.tessdata_dir.empty() ? nullptr : options.tessdata_dir.c_str();
    // Init prints its own diagnostics to stderr on failure; the message we return names the
    // language and directory instead.
    if (api_.Init(datapath, options.language.c_str(), tesseract::OEM_LSTM_ONLY) != 0) {
      return NotFoundError("ocr: Tesseract cannot load language '" + options.language + "' from " +
                           (datapath != nullptr ? options.tessdata_dir
                                                : std::string("its default tessdata directory")) +
                           " (install tesseract-ocr-" + options.language +
                           " or set ocr.tessdata_dir)");
    }
    // Debug output goes nowhere; empty crops otherwise print "Empty page!!" and similar.
    api_.SetVariable("debug_file", "/dev/null");
    return Status::Ok();
  }

  Result<std::vector<OcrWord>> Recognize(const GrayView& image, int psm) override {
    try {
      api_.SetPageSegMode(static_cast<tesseract::PageSegMode>(psm));
      api_.SetImage(image.data, image.width, image.height, 1, image.stride);
      api_.SetSourceResolution(dpi_);
      const int recognized = api_.Recognize(nullptr);
      serial_regions.fetch_add(std::exchange(serial_regions_on_this_thread, 0),
                               std::memory_order_relaxed);
      if (recognized != 0) {
        api_.Clear();
        return std::vector<OcrWord>{};  // nothing recognisable (e.g. an empty crop)
      }
      std::vector<OcrWord> words;
      std::unique_ptr<tesseract::ResultIterator> it(api_.GetIterator());
      if (it != nullptr) {
        do {
          std::unique_ptr<char[]> text(it->GetUTF8Text(tesseract::RIL_WORD));
          if (text == nullptr || text[0] == '\0') continue;
          int left = 0, top = 0, right = 0, bottom = 0;
          if (!it->BoundingBox(tesseract::RIL_WORD, &left, &top, &right, &bottom)) continue;
          OcrWord word;
          word.text = text.get();
          word.box = {left, top, right - left, bottom - top};
          word.confidence = it->Confidence(tesseract::RIL_WORD);
          words.push_back(std::move(word));
        } while (it->Next(tesseract::RIL_WORD));
      }
      api_.Clear();
      return words;
    } catch (const std::exception& e) {
      api_.Clear();
      return InternalError(std::string("ocr: Tesseract failed: ") + e.what());
    } catch (...) {
      api_.Clear();
      return InternalError("ocr: Tesseract failed");
    }
  }

 private:
  tesseract::TessBaseAPI api_;
  const int dpi_;
};

Result<std::unique_ptr<OcrEngine>> Create(const OcrEngineOptions& options) {
  static std::once_flag once;
  // Leptonica reports every empty tile ("pixScanForForeground: no fg pixels") on stderr.
  std::call_once(once, [] { setMsgSeverity(L_SEVERITY_NONE); });
  try {
    auto engine = std::make_unique<TesseractEngine>(options.dpi);
    if (Status s = engine->Init(options); !s.ok()) return s;
    return std::unique_ptr<OcrEngine>(std::move(engine));
  } catch (const std::exception& e) {
    return InternalError(std::string("ocr: cannot create a Tesseract engine: ") + e.what());
  }
}

std::string Version() {
  std::string v = std::string("tesseract ") + tesseract::TessBaseAPI::Version();
  char* lept = getLeptonicaVersion();
  if (lept != nullptr) {
    v += std::string(", ") + lept;
    lept_free(lept);
  }
  return v;
}

uint64_t SerialRegions() { return serial_regions.load(std::memory_order_relaxed); }

const OcrPlugin kPlugin{&Create, &Version, &SerialRegions};

}  // namespace
}  // namespace brainstem

extern "C" __attribute__((visibility("default"))) const brainstem::OcrPlugin*
brainstem_ocr_plugin() {
  return &brainstem::kPlugin;
}

// Tesseract's OpenMP regions, run by the calling thread as a team of one.
//
// brainstem reads a frame's pieces in parallel with its own workers, one engine each, and
// keeps Tesseract to one thread (OMP_THREAD_LIMIT=1: OpenMP teams were 2-3x slower on 2 cores).
// libgomp still pays for a team of one: every region ends in a FUTEX_WAKE system call, and
// Tesseract opens one per LSTM time step, ~226,000 per dense 1080p frame, 18% of its time
// (perf, docs/perception.md). These definitions come first in the symbol lookup of the
// libtesseract that this plugin pulls in with dlopen (the plugin precedes its dependencies in
// that scope, and libgomp is not in the global scope: brainstem itself does not link it), so
// Tesseract's calls land here. omp_get_num_threads() and omp_get_thread_num() still reach
// libgomp, which answers 1 and 0 outside its own regions: what a team of one would see.
// The entry points are those libtesseract imports (nm -D --undefined-only); their signatures are
// libgomp's ABI (GOMP_4.0 / GOMP_1.0).
extern "C" {

__attribute__((visibility("default"))) void GOMP_parallel(void (*fn)(void*), void* data,
                                                          unsigned /*num_threads*/,
                                                          unsigned /*flags*/) {
  ++brainstem::serial_regions_on_this_thread;
  fn(data);
}

// `parallel sections`: the outlined body asks GOMP_sections_next() for section numbers 1..count
// until it answers 0.
__attribute__((visibility("default"))) void GOMP_parallel_sections(void (*fn)(void*), void* data,
                                                                   unsigned /*num_threads*/,
                                                                   unsigned count,
                                                                   unsigned /*flags*/) {
  ++brainstem::serial_regions_on_this_thread;
  const brainstem::Sections outer = brainstem::current_sections;
  brainstem::current_sections = {1, count};
  fn(data);
  brainstem::current_sections = outer;
}

__attribute__((visibility("default"))) unsigned GOMP_sections_next() {
  brainstem::Sections& s = brainstem::current_sections;
  return s.next <= s.count ? s.next++ : 0;
}

__attribute__((visibility("default"))) void GOMP_sections_end_nowait() {}

}  // extern "C"
