// The change-aware part of screen perception. A frame is cut into square tiles, each hashed
// with xxh3 over its raw pixels; comparing the hashes with the previous frame's says which
// tiles changed (an identical frame costs one pass of hashing and nothing else). Inside the
// changed tiles the exact changed pixels are found against the previous grey image, and that
// box is grown to the whole text lines it touches (the previous frame's line boxes), so the
// re-read covers whole words and lines, never half a word at a tile edge.
// Thread-compatible: plain values and pure functions; TileCache state is guarded by its owner.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/ocr/ocr_engine.h"
#include "perception/image.h"

namespace brainstem::perception {

struct TileHashes {
  uint32_t width = 0;
  uint32_t height = 0;
  PixelFormat format = PixelFormat::kBgra8;
  int tile_size = 0;
  int cols = 0;
  int rows = 0;
  std::vector<uint64_t> hashes;  // row-major, cols * rows

  bool SameGeometry(const TileHashes& other) const {
    return width == other.width && height == other.height && format == other.format &&
           tile_size == other.tile_size;
  }
  OcrBox TileBox(int index) const;
};

// Hashes every tile of `frame` (xxh3-64 over the tile's bytes, row by row).
TileHashes HashTiles(const FrameView& frame, int tile_size);

// What must be read again after a change.
struct ChangePlan {
  int tiles_changed = 0;
  std::vector<OcrBox> regions;  // disjoint boxes to re-read, grown to whole lines
};

// Compares `now` with `before` (same geometry) and plans the re-reads: the tight box of
// changed grey pixels in each changed tile, merged with neighbours, grown to every previous
// line box it touches (repeated until stable), then merged again.
// REQUIRES: now.SameGeometry(before); gray_now and gray_before are the frames' grey images.
ChangePlan PlanRereads(const TileHashes& before, const TileHashes& now,
                       const GrayImage& gray_before, const GrayImage& gray_now,
                       const std::vector<OcrBox>& previous_lines);

// Whether a piece at `piece` (frame coordinates, tight to its content) can yield a word whose
// centre lies in `region` (only those words replace cached ones). A single line's words sit
// on its middle row, so a line counts when its vertical centre lies in the region and it
// overlaps the region horizontally; any other piece when it overlaps the region. Pieces that
// fail are the unchanged neighbours in the padding around a region.
bool MayHoldRegionWords(const OcrBox& piece, const OcrBox& region, bool single_line);

// Recursive XY-cut: splits `image` at uniform rows (any gap) and uniform columns (gaps of at
// least `min_column_gap` pixels) into boxes that each hold one line or one text piece. Boxes
// are in the image's coordinates, tight to their content.
std::vector<OcrBox> XyCut(const GrayView& image, int min_column_gap);

}  // namespace brainstem::perception
