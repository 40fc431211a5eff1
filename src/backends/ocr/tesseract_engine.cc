// The Tesseract engine behind OcrEngine; compiled into libbrainstem_ocr.so only (see
// ocr_engine.h for why it is a plugin). Tesseract and Leptonica exceptions and messages stop
// here.
#include <leptonica/allheaders.h>
#include <tesseract/baseapi.h>
#include <tesseract/resultiterator.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "backends/ocr/ocr_engine.h"

namespace brainstem {
namespace {

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
      if (api_.Recognize(nullptr) != 0) {
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

const OcrPlugin kPlugin{&Create, &Version};

}  // namespace
}  // namespace brainstem

extern "C" __attribute__((visibility("default"))) const brainstem::OcrPlugin*
brainstem_ocr_plugin() {
  return &brainstem::kPlugin;
}
