// OcrEngine: one Tesseract instance that reads text from an 8-bit grey image and returns words
// with their boxes and confidences. The Tesseract implementation lives in its own shared object,
// libbrainstem_ocr.so, loaded with dlopen on first use (LoadOcrPlugin): Tesseract pulls in
// Leptonica, libgomp, libcurl and libarchive, which a process that serves only policies should
// never map, and libgomp reads OMP_THREAD_LIMIT when it is loaded, so the limit must be in the
// environment before that moment (LoadOcrPlugin sets it).
// Thread-compatible: one engine per thread (the perception worker pool gives each worker its
// own); different engines may run concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace brainstem {

// A pixel rectangle: x, y of the top-left corner, width, height.
struct OcrBox {
  int x = 0;
  int y = 0;
  int w = 0;
  int h = 0;
  int right() const { return x + w; }
  int bottom() const { return y + h; }
};

struct OcrWord {
  std::string text;  // UTF-8
  OcrBox box;
  float confidence = 0;  // 0..100, Tesseract's word confidence
};

// A borrowed 8-bit grey image (0 black, 255 white); rows `stride` bytes apart.
struct GrayView {
  const uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  int stride = 0;
};

// Tesseract page segmentation modes brainstem uses.
inline constexpr int kPsmBlock = 6;        // one uniform block of text
inline constexpr int kPsmSingleLine = 7;   // exactly one line
inline constexpr int kPsmSparseText = 11;  // text anywhere, no order assumed (whole frames)

struct OcrEngineOptions {
  std::string language = "eng";
  std::string
      tessdata_dir;  // "" = Tesseract's default (Debian: /usr/share/tesseract-ocr/5/tessdata)
  int dpi = 96;      // source resolution passed to Tesseract (screens: ~96)
};

class OcrEngine {
 public:
  virtual ~OcrEngine() = default;
  // Reads `image` with page segmentation mode `psm`. Boxes are in the image's coordinates.
  // REQUIRES: image.width, image.height >= 1; stride >= width. Not called concurrently.
  // Errors: kInternal when Tesseract fails; the engine stays usable.
  virtual Result<std::vector<OcrWord>> Recognize(const GrayView& image, int psm) = 0;
};

struct OcrPlugin {
  // Errors: kNotFound (no traineddata for the language; the message names where it looked),
  // kInternal.
  Result<std::unique_ptr<OcrEngine>> (*create)(const OcrEngineOptions& options);
  // "tesseract 5.3.0, leptonica-1.82.0".
  std::string (*version)();
  // Tesseract's OpenMP regions the plugin has run serially itself since it was loaded, as of
  // the last finished Recognize (tesseract_engine.cc); 0 after OCR ran means libgomp took them.
  uint64_t (*serial_openmp_regions)();
};

inline constexpr const char kOcrPluginSymbol[] = "brainstem_ocr_plugin";
inline constexpr const char kOcrPluginFile[] = "libbrainstem_ocr.so";

// Loads the plugin once ($BRAINSTEM_PLUGIN_DIR, the executable's directory, its ../lib, the
// build tree). Before the first dlopen it sets OMP_THREAD_LIMIT=1 unless the environment
// already has a value (OpenMP inside Tesseract was 2-3x slower on 2 cores than one thread per
// engine), so call it before other threads run. Thread-safe.
// Errors: kUnimplemented naming every place searched and dlopen's reason.
Result<const OcrPlugin*> LoadOcrPlugin();

}  // namespace brainstem
