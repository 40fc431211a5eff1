#include "perception/image.h"

#include <png.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace brainstem::perception {

uint32_t BytesPerPixel(PixelFormat format) {
  switch (format) {
    case PixelFormat::kBgra8:
    case PixelFormat::kRgba8:
      return 4;
    case PixelFormat::kRgb8:
      return 3;
    case PixelFormat::kGray8:
      return 1;
  }
  return 0;
}

const char* PixelFormatName(PixelFormat format) {
  switch (format) {
    case PixelFormat::kBgra8:
      return "bgra8";
    case PixelFormat::kRgba8:
      return "rgba8";
    case PixelFormat::kRgb8:
      return "rgb8";
    case PixelFormat::kGray8:
      return "gray8";
  }
  return "unknown";
}

Result<PixelFormat> ParsePixelFormat(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (PixelFormat f :
       {PixelFormat::kBgra8, PixelFormat::kRgba8, PixelFormat::kRgb8, PixelFormat::kGray8}) {
    if (lower == PixelFormatName(f)) return f;
  }
  return InvalidArgumentError("format: '" + std::string(name) +
                              "' is not a pixel format (allowed: bgra8, rgba8, rgb8, gray8)");
}

Status ValidateFrame(const FrameView& frame, uint64_t max_pixels, uint64_t available_bytes) {
  const std::string dims = " (allowed: 1.." + std::to_string(kMaxDimension) + ")";
  if (frame.width < 1 || frame.width > kMaxDimension) {
    return InvalidArgumentError("width: " + std::to_string(frame.width) + " is out of range" +
                                dims);
  }
  if (frame.height < 1 || frame.height > kMaxDimension) {
    return InvalidArgumentError("height: " + std::to_string(frame.height) + " is out of range" +
                                dims);
  }
  const uint32_t bpp = BytesPerPixel(frame.format);
  if (bpp == 0) {
    return InvalidArgumentError("format: " + std::to_string(static_cast<uint32_t>(frame.format)) +
                                " is not a pixel format (allowed: 1 bgra8, 2 rgba8, 3 rgb8, "
                                "4 gray8)");
  }
  const uint64_t pixels = uint64_t{frame.width} * frame.height;
  if (pixels > max_pixels) {
    return InvalidArgumentError("pixels: " + std::to_string(frame.width) + "x" +
                                std::to_string(frame.height) + " is over the limit of " +
                                std::to_string(max_pixels) + " pixels (ocr.max_image_pixels)");
  }
  if (uint64_t{frame.stride} < uint64_t{frame.width} * bpp) {
    return InvalidArgumentError("stride: " + std::to_string(frame.stride) +
                                " is less than width * bytes per pixel (" +
                                std::to_string(uint64_t{frame.width} * bpp) + ")");
  }
  if (available_bytes != UINT64_MAX && uint64_t{frame.stride} * frame.height != available_bytes) {
    return InvalidArgumentError(
        "stride: stride * height = " + std::to_string(uint64_t{frame.stride} * frame.height) +
        " bytes, but the body holds " + std::to_string(available_bytes));
  }
  return Status::Ok();
}

namespace {

// One row of luma. The channel offsets are template arguments so that the compiler sees a
// fixed stride and vectorises the loop (~2x faster than with run-time offsets).
template <int kBpp, int kRed, int kBlue>
void GrayRow(const uint8_t* src, uint8_t* dst, int n) {
  for (int x = 0; x < n; ++x, src += kBpp) {
    dst[x] = static_cast<uint8_t>((77u * src[kRed] + 150u * src[1] + 29u * src[kBlue]) >> 8);
  }
}

}  // namespace

void ToGray(const FrameView& frame, GrayImage* out) {
  out->width = static_cast<int>(frame.width);
  out->height = static_cast<int>(frame.height);
  out->pixels.resize(size_t{frame.width} * frame.height);
  ToGrayRect(frame, {0, 0, out->width, out->height}, out);
}

void ToGrayRect(const FrameView& frame, const OcrBox& box, GrayImage* out) {
  const uint32_t bpp = BytesPerPixel(frame.format);
  for (int y = box.y; y < box.bottom(); ++y) {
    const uint8_t* src = frame.data + size_t(y) * frame.stride + size_t(box.x) * bpp;
    uint8_t* dst = out->pixels.data() + size_t(y) * out->width + box.x;
    switch (frame.format) {
      case PixelFormat::kBgra8:
        GrayRow<4, 2, 0>(src, dst, box.w);
        break;
      case PixelFormat::kRgba8:
        GrayRow<4, 0, 2>(src, dst, box.w);
        break;
      case PixelFormat::kRgb8:
        GrayRow<3, 0, 2>(src, dst, box.w);
        break;
      case PixelFormat::kGray8:
        std::memcpy(dst, src, static_cast<size_t>(box.w));
        break;
    }
  }
}

void Crop(const GrayImage& source, const OcrBox& box, GrayImage* out) {
  out->width = box.w;
  out->height = box.h;
  out->pixels.resize(static_cast<size_t>(box.w) * box.h);
  for (int y = 0; y < box.h; ++y) {
    std::memcpy(out->pixels.data() + static_cast<size_t>(y) * box.w,
                source.pixels.data() + static_cast<size_t>(box.y + y) * source.width + box.x,
                static_cast<size_t>(box.w));
  }
}

int64_t NormalizePolarity(GrayImage* image, int radius) {
  const int w = image->width;
  const int h = image->height;
  if (w == 0 || h == 0) return 0;
  // Integral image with a zero row and column in front: sum of [0,x) x [0,y).
  std::vector<uint32_t> integral(static_cast<size_t>(w + 1) * (h + 1), 0);
  for (int y = 0; y < h; ++y) {
    uint32_t row = 0;
    const uint8_t* src = image->pixels.data() + static_cast<size_t>(y) * w;
    uint32_t* above = integral.data() + static_cast<size_t>(y) * (w + 1);
    uint32_t* cur = above + (w + 1);
    for (int x = 0; x < w; ++x) {
      row += src[x];
      cur[x + 1] = above[x + 1] + row;
    }
  }
  int64_t inverted = 0;
  for (int y = 0; y < h; ++y) {
    const int y0 = std::max(0, y - radius);
    const int y1 = std::min(h, y + radius + 1);
    const uint32_t* top = integral.data() + static_cast<size_t>(y0) * (w + 1);
    const uint32_t* bottom = integral.data() + static_cast<size_t>(y1) * (w + 1);
    uint8_t* row = image->pixels.data() + static_cast<size_t>(y) * w;
    for (int x = 0; x < w; ++x) {
      const int x0 = std::max(0, x - radius);
      const int x1 = std::min(w, x + radius + 1);
      const uint32_t sum = bottom[x1] - bottom[x0] - top[x1] + top[x0];
      const uint32_t area = static_cast<uint32_t>((x1 - x0) * (y1 - y0));
      if (sum < 128u * area) {
        row[x] = static_cast<uint8_t>(255 - row[x]);
        ++inverted;
      }
    }
  }
  return inverted;
}

Result<OwnedFrame> DecodePng(std::span<const uint8_t> bytes, uint64_t max_pixels) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (bytes.empty()) return InvalidArgumentError("body: empty (expected a PNG image)");
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    std::string reason = image.message;
    png_image_free(&image);
    return InvalidArgumentError("body: not a readable PNG (" + reason + ")");
  }
  if (image.width < 1 || image.height < 1 || image.width > kMaxDimension ||
      image.height > kMaxDimension || uint64_t{image.width} * image.height > max_pixels) {
    const std::string dims = std::to_string(image.width) + "x" + std::to_string(image.height);
    png_image_free(&image);
    return InvalidArgumentError("body: PNG of " + dims + " is over the limit (each side 1.." +
                                std::to_string(kMaxDimension) + ", at most " +
                                std::to_string(max_pixels) + " pixels: ocr.max_image_pixels)");
  }
  image.format = PNG_FORMAT_BGRA;
  OwnedFrame frame;
  frame.width = image.width;
  frame.height = image.height;
  frame.stride = image.width * 4;
  frame.format = PixelFormat::kBgra8;
  frame.pixels.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, frame.pixels.data(), 0, nullptr)) {
    std::string reason = image.message;
    png_image_free(&image);
    return InvalidArgumentError("body: PNG could not be decoded (" + reason +
                                "; truncated or corrupt?)");
  }
  png_image_free(&image);
  return frame;
}

Result<std::string> EncodePng(const FrameView& frame, bool fast) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = frame.width;
  image.height = frame.height;
  switch (frame.format) {
    case PixelFormat::kBgra8:
      image.format = PNG_FORMAT_BGRA;
      break;
    case PixelFormat::kRgba8:
      image.format = PNG_FORMAT_RGBA;
      break;
    case PixelFormat::kRgb8:
      image.format = PNG_FORMAT_RGB;
      break;
    case PixelFormat::kGray8:
      image.format = PNG_FORMAT_GRAY;
      break;
  }
  if (fast) image.flags |= PNG_IMAGE_FLAG_FAST;
  png_alloc_size_t size = 0;
  // The simplified API counts the row stride in components, which are bytes at 8 bits.
  const auto stride = static_cast<png_int_32>(frame.stride);
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, frame.data, stride, nullptr)) {
    return InternalError(std::string("png: ") + image.message);
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&image, out.data(), &size, 0, frame.data, stride, nullptr)) {
    return InternalError(std::string("png: ") + image.message);
  }
  out.resize(size);
  return out;
}

}  // namespace brainstem::perception
