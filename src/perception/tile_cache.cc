#include "perception/tile_cache.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cstdlib>

#include "perception/layout.h"

namespace brainstem::perception {

OcrBox TileHashes::TileBox(int index) const {
  const int tx = index % cols;
  const int ty = index / cols;
  const int x = tx * tile_size;
  const int y = ty * tile_size;
  return {x, y, std::min(tile_size, static_cast<int>(width) - x),
          std::min(tile_size, static_cast<int>(height) - y)};
}

TileHashes HashTiles(const FrameView& frame, int tile_size) {
  TileHashes t;
  t.width = frame.width;
  t.height = frame.height;
  t.format = frame.format;
  t.tile_size = tile_size;
  t.cols = static_cast<int>((frame.width + tile_size - 1) / tile_size);
  t.rows = static_cast<int>((frame.height + tile_size - 1) / tile_size);
  t.hashes.assign(static_cast<size_t>(t.cols) * t.rows, 0);
  const uint32_t bpp = BytesPerPixel(frame.format);
  // Row by row across all tiles of a tile row: memory is read in order, once.
  std::vector<XXH3_state_t> states(static_cast<size_t>(t.cols));
  for (int ty = 0; ty < t.rows; ++ty) {
    for (auto& s : states) XXH3_64bits_reset(&s);
    const uint32_t y0 = static_cast<uint32_t>(ty * tile_size);
    const uint32_t y1 = std::min(frame.height, y0 + static_cast<uint32_t>(tile_size));
    for (uint32_t y = y0; y < y1; ++y) {
      const uint8_t* row = frame.data + size_t{y} * frame.stride;
      for (int tx = 0; tx < t.cols; ++tx) {
        const uint32_t x0 = static_cast<uint32_t>(tx * tile_size);
        const uint32_t x1 = std::min(frame.width, x0 + static_cast<uint32_t>(tile_size));
        XXH3_64bits_update(&states[tx], row + size_t{x0} * bpp, size_t{x1 - x0} * bpp);
      }
    }
    for (int tx = 0; tx < t.cols; ++tx) {
      t.hashes[static_cast<size_t>(ty) * t.cols + tx] = XXH3_64bits_digest(&states[tx]);
    }
  }
  return t;
}

namespace {

// Merges boxes that overlap or lie within `slack` pixels of each other, until none do.
void MergeBoxes(std::vector<OcrBox>* boxes, int slack) {
  bool merged = true;
  while (merged) {
    merged = false;
    for (size_t i = 0; i < boxes->size() && !merged; ++i) {
      for (size_t j = i + 1; j < boxes->size(); ++j) {
        OcrBox grown{(*boxes)[i].x - slack, (*boxes)[i].y - slack, (*boxes)[i].w + 2 * slack,
                     (*boxes)[i].h + 2 * slack};
        if (Intersects(grown, (*boxes)[j])) {
          (*boxes)[i] = Union((*boxes)[i], (*boxes)[j]);
          boxes->erase(boxes->begin() + static_cast<std::ptrdiff_t>(j));
          merged = true;
          break;
        }
      }
    }
  }
}

}  // namespace

ChangePlan PlanRereads(const TileHashes& before, const TileHashes& now,
                       const GrayImage& gray_before, const GrayImage& gray_now,
                       const std::vector<OcrBox>& previous_lines) {
  ChangePlan plan;
  std::vector<OcrBox> boxes;
  for (size_t i = 0; i < now.hashes.size(); ++i) {
    if (now.hashes[i] == before.hashes[i]) continue;
    ++plan.tiles_changed;
    const OcrBox tile = now.TileBox(static_cast<int>(i));
    int x0 = tile.right(), y0 = tile.bottom(), x1 = tile.x - 1, y1 = tile.y - 1;
    for (int y = tile.y; y < tile.bottom(); ++y) {
      const uint8_t* a = gray_before.pixels.data() + static_cast<size_t>(y) * gray_before.width;
      const uint8_t* b = gray_now.pixels.data() + static_cast<size_t>(y) * gray_now.width;
      for (int x = tile.x; x < tile.right(); ++x) {
        if (a[x] == b[x]) continue;
        x0 = std::min(x0, x);
        x1 = std::max(x1, x);
        y0 = std::min(y0, y);
        y1 = std::max(y1, y);
      }
    }
    // A change invisible in grey (a colour shift of equal luma) needs no re-read.
    if (x1 >= x0) boxes.push_back({x0, y0, x1 - x0 + 1, y1 - y0 + 1});
  }
  MergeBoxes(&boxes, 2);
  // Grow to whole previous lines: a changed glyph re-reads its whole line.
  bool grown = true;
  while (grown) {
    grown = false;
    for (OcrBox& box : boxes) {
      for (const OcrBox& line : previous_lines) {
        if (!Intersects(box, line)) continue;
        const OcrBox u = Union(box, line);
        if (u.x != box.x || u.y != box.y || u.w != box.w || u.h != box.h) {
          box = u;
          grown = true;
        }
      }
    }
    MergeBoxes(&boxes, 2);
  }
  plan.regions = std::move(boxes);
  return plan;
}

bool MayHoldRegionWords(const OcrBox& piece, const OcrBox& region, bool single_line) {
  if (!Intersects(piece, region)) return false;
  if (!single_line) return true;
  // Twice the centre, so that odd heights need no rounding.
  const int center2 = 2 * piece.y + piece.h;
  return center2 >= 2 * region.y && center2 < 2 * region.bottom();
}

namespace {

// The content mask: a pixel is background when it lies in a horizontal or vertical run of
// near-equal values at least kRun long (window and button fills, borders, rules); what is left
// is glyph strokes and other small detail. Cutting on this mask, not on raw uniformity, lets
// the cut separate text from the window edges next to it.
constexpr int kRun = 24;

struct Mask {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> content;
  bool at(int x, int y) const { return content[static_cast<size_t>(y) * width + x] != 0; }
};

Mask ContentMask(const GrayView& img) {
  Mask m;
  m.width = img.width;
  m.height = img.height;
  m.content.assign(static_cast<size_t>(img.width) * img.height, 1);
  auto near = [](uint8_t a, uint8_t b) { return std::abs(int{a} - int{b}) <= 8; };
  for (int y = 0; y < img.height; ++y) {
    const uint8_t* row = img.data + static_cast<size_t>(y) * img.stride;
    int start = 0;
    for (int x = 1; x <= img.width; ++x) {
      if (x < img.width && near(row[x], row[start])) continue;
      if (x - start >= kRun) {
        std::fill_n(m.content.begin() + static_cast<std::ptrdiff_t>(y) * img.width + start,
                    x - start, 0);
      }
      start = x;
    }
  }
  std::vector<int> start(static_cast<size_t>(img.width), 0);
  for (int y = 1; y <= img.height; ++y) {
    const uint8_t* row = img.data + static_cast<size_t>(std::min(y, img.height - 1)) * img.stride;
    for (int x = 0; x < img.width; ++x) {
      const int s0 = start[static_cast<size_t>(x)];
      if (y < img.height && near(row[x], img.data[static_cast<size_t>(s0) * img.stride + x])) {
        continue;
      }
      if (y - s0 >= kRun) {
        for (int k = s0; k < y; ++k) m.content[static_cast<size_t>(k) * img.width + x] = 0;
      }
      start[static_cast<size_t>(x)] = y;
    }
  }
  return m;
}

bool RowUniform(const Mask& m, int y, int x0, int x1) {
  for (int x = x0; x < x1; ++x) {
    if (m.at(x, y)) return false;
  }
  return true;
}

bool ColumnUniform(const Mask& m, int x, int y0, int y1) {
  for (int y = y0; y < y1; ++y) {
    if (m.at(x, y)) return false;
  }
  return true;
}

void Cut(const Mask& img, OcrBox box, bool horizontal, int depth, int min_column_gap,
         std::vector<OcrBox>* out) {
  std::vector<OcrBox> parts;
  if (horizontal) {
    int start = -1;
    for (int y = box.y; y <= box.bottom(); ++y) {
      const bool uniform = y == box.bottom() || RowUniform(img, y, box.x, box.right());
      if (!uniform && start < 0) start = y;
      if (uniform && start >= 0) {
        parts.push_back({box.x, start, box.w, y - start});
        start = -1;
      }
    }
  } else {
    int start = -1;
    int gap = 0;
    int last_content = -1;
    for (int x = box.x; x <= box.right(); ++x) {
      const bool uniform = x == box.right() || ColumnUniform(img, x, box.y, box.bottom());
      if (!uniform) {
        if (start < 0) start = x;
        last_content = x;
        gap = 0;
        continue;
      }
      ++gap;
      if (start >= 0 && (gap >= min_column_gap || x == box.right())) {
        parts.push_back({start, box.y, last_content - start + 1, box.h});
        start = -1;
      }
    }
  }
  if (parts.empty()) return;  // nothing but background
  if (parts.size() == 1 && depth > 0) {
    // No cut in this direction; stop when the other direction also found none.
    const OcrBox& p = parts[0];
    if (p.x == box.x && p.y == box.y && p.w == box.w && p.h == box.h) {
      out->push_back(p);
      return;
    }
  }
  if (depth >= 6) {
    for (const OcrBox& p : parts) out->push_back(p);
    return;
  }
  for (const OcrBox& p : parts) Cut(img, p, !horizontal, depth + 1, min_column_gap, out);
}

}  // namespace

std::vector<OcrBox> XyCut(const GrayView& image, int min_column_gap) {
  std::vector<OcrBox> out;
  if (image.width <= 0 || image.height <= 0) return out;
  const Mask mask = ContentMask(image);
  Cut(mask, {0, 0, image.width, image.height}, true, 0, min_column_gap, &out);
  return out;
}

}  // namespace brainstem::perception
