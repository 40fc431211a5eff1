#include "perception/tile_cache.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>

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

namespace {

bool RowUniform(const GrayView& img, int y, int x0, int x1) {
  const uint8_t* row = img.data + static_cast<size_t>(y) * img.stride;
  uint8_t lo = row[x0], hi = row[x0];
  for (int x = x0 + 1; x < x1; ++x) {
    lo = std::min(lo, row[x]);
    hi = std::max(hi, row[x]);
  }
  return hi - lo <= 24;
}

bool ColumnUniform(const GrayView& img, int x, int y0, int y1) {
  uint8_t lo = img.data[static_cast<size_t>(y0) * img.stride + x], hi = lo;
  for (int y = y0 + 1; y < y1; ++y) {
    const uint8_t v = img.data[static_cast<size_t>(y) * img.stride + x];
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  return hi - lo <= 24;
}

void Cut(const GrayView& img, OcrBox box, bool horizontal, int depth, int min_column_gap,
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
  Cut(image, {0, 0, image.width, image.height}, true, 0, min_column_gap, &out);
  return out;
}

}  // namespace brainstem::perception
