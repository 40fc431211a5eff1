// Images for perception: a borrowed frame in one of the pixel formats brainstem accepts (the
// shared-memory frame formats), its conversion to 8-bit grey for OCR, the polarity fix that
// turns light-on-dark text into dark-on-light, and PNG decoding/encoding (libpng).
// Thread-compatible: plain values and pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backends/ocr/ocr_engine.h"
#include "common/result.h"

namespace brainstem::perception {

// Same numbering as the shared-memory frame slot's `format` (shm_layout.h PixelFormat).
enum class PixelFormat : uint32_t { kBgra8 = 1, kRgba8 = 2, kRgb8 = 3, kGray8 = 4 };

inline constexpr uint32_t kMaxDimension = 16384;

uint32_t BytesPerPixel(PixelFormat format);  // 0 for an unknown value
// "bgra8" | "rgba8" | "rgb8" | "gray8"; parses the same names (case-insensitive).
const char* PixelFormatName(PixelFormat format);
Result<PixelFormat> ParsePixelFormat(std::string_view name);

// A borrowed frame. `data` holds stride * height bytes.
struct FrameView {
  const uint8_t* data = nullptr;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t stride = 0;
  PixelFormat format = PixelFormat::kBgra8;
};

// A frame that owns its pixels (decoded PNGs, copies).
struct OwnedFrame {
  std::vector<uint8_t> pixels;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t stride = 0;
  PixelFormat format = PixelFormat::kBgra8;
  FrameView view() const { return {pixels.data(), width, height, stride, format}; }
};

// Checks a frame's geometry: 1 <= width, height <= 16384, a known format, stride >= width *
// bytes per pixel, width * height <= max_pixels and, when `available_bytes` is given, stride *
// height <= it. Errors: kInvalidArgument naming the field (`width`, `height`, `stride`,
// `format`, `pixels`) and the allowed range.
Status ValidateFrame(const FrameView& frame, uint64_t max_pixels, uint64_t available_bytes);

// An 8-bit grey image that owns its pixels (stride == width).
struct GrayImage {
  std::vector<uint8_t> pixels;
  int width = 0;
  int height = 0;
  GrayView view() const { return {pixels.data(), width, height, width}; }
  uint8_t at(int x, int y) const { return pixels[static_cast<size_t>(y) * width + x]; }
};

// Luma (BT.601 integer weights) of the whole frame. REQUIRES: a valid frame.
void ToGray(const FrameView& frame, GrayImage* out);

// Luma of the rectangle `box` of `frame`, written at the same place in `out`; the rest of
// `out` is left as it was. Lets a changed frame convert only its changed tiles (at 1080p the
// whole frame costs ~2.5 ms, a tile ~10 us). REQUIRES: a valid frame; out is frame-sized; box
// inside the frame.
void ToGrayRect(const FrameView& frame, const OcrBox& box, GrayImage* out);

// Copies the rectangle of `source` into `out`. REQUIRES: box inside source.
void Crop(const GrayImage& source, const OcrBox& box, GrayImage* out);

// Polarity fix: a pixel whose neighbourhood (a (2r+1)^2 box, mean from an integral image) is
// darker than mid-grey belongs to a dark background, so it is inverted. Light text on dark
// buttons and title bars becomes dark on light, which Tesseract reads; dark-on-light areas are
// untouched. Returns the number of inverted pixels.
int64_t NormalizePolarity(GrayImage* image, int radius);

// Decodes a PNG (any colour type) to BGRA8. Errors: kInvalidArgument with libpng's reason
// (truncated, not a PNG) or when width * height exceeds max_pixels (checked before decoding).
Result<OwnedFrame> DecodePng(std::span<const uint8_t> bytes, uint64_t max_pixels);

// Encodes a frame as PNG (libpng's fast compression when `fast`). Errors: kInternal.
Result<std::string> EncodePng(const FrameView& frame, bool fast = true);

}  // namespace brainstem::perception
