#include "perception/ocr_pipeline.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

namespace brainstem::perception {
namespace {

using SteadyClock = std::chrono::steady_clock;

double MsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

bool CenterInside(const OcrBox& word, const OcrBox& region) {
  const int cx = word.x + word.w / 2;
  const int cy = word.y + word.h / 2;
  return cx >= region.x && cx < region.right() && cy >= region.y && cy < region.bottom();
}

// Background around each piece handed to the engine: glyphs that touch the image edge are
// misread. Tesseract scales every line to 36 px for its LSTM, so a taller piece means smaller
// glyphs and fewer time steps: on the dense 1080p bench frame 4 px took 8% less time but
// dropped quoted words under the confidence filter (dense-text CER 1.2% -> 1.6%), 6 px took
// 15% less and misread a known line; 3 px is the most accurate (docs/perception.md).
constexpr int kPieceMargin = 3;
constexpr int kMinContentHeight = 4;

// Median of the pixels on the outline of `box` (inside `v`): the background around a piece.
// The median, not the mean, so that a glyph cut by the frame edge does not darken it.
int OutlineMedian(const GrayView& v, const OcrBox& box) {
  int histogram[256] = {};
  int n = 0;
  auto add = [&](int x, int y) {
    ++histogram[v.data[static_cast<size_t>(y) * v.stride + x]];
    ++n;
  };
  for (int x = box.x; x < box.right(); ++x) {
    add(x, box.y);
    if (box.h > 1) add(x, box.bottom() - 1);
  }
  for (int y = box.y + 1; y + 1 < box.bottom(); ++y) {
    add(box.x, y);
    if (box.w > 1) add(box.right() - 1, y);
  }
  int seen = 0;
  for (int value = 0; value < 256; ++value) {
    seen += histogram[value];
    if (2 * seen >= n) return value;
  }
  return 255;
}

// Copies `box` of `v` into the middle of `out`, with kPieceMargin pixels of `fill` on every
// side. The margin is synthetic, not the real surroundings: those hold the edges of the lines
// above and below (4 px away in an xterm) and window borders, which Tesseract read as extra
// letters ("lyou") or which sank whole lines under the confidence filter. With `invert` every
// pixel becomes 255 - value.
void CopyPiece(const GrayView& v, const OcrBox& box, uint8_t fill, bool invert, GrayImage* out) {
  const int m = kPieceMargin;
  out->width = box.w + 2 * m;
  out->height = box.h + 2 * m;
  out->pixels.assign(static_cast<size_t>(out->width) * out->height, fill);
  for (int y = 0; y < box.h; ++y) {
    std::memcpy(out->pixels.data() + static_cast<size_t>(y + m) * out->width + m,
                v.data + static_cast<size_t>(box.y + y) * v.stride + box.x,
                static_cast<size_t>(box.w));
  }
  if (invert) {
    for (uint8_t& p : out->pixels) p = static_cast<uint8_t>(255 - p);
  }
}

// A region prepared for reading: its padded grey crop (polarity fixed) and its pieces.
struct RegionWork {
  OcrBox region;  // words whose centre lies here are replaced
  OcrBox padded;  // the crop's place in the frame
  GrayImage crop;
};

}  // namespace

Result<OcrOutcome> AnalyzeFrame(const FrameView& frame, const PipelineOptions& options,
                                const PieceReader& reader, StreamState* state) {
  const auto start = SteadyClock::now();
  OcrOutcome outcome;
  outcome.width = frame.width;
  outcome.height = frame.height;
  OcrStats& stats = outcome.stats;
  TileHashes tiles = HashTiles(frame, options.tile_size);
  stats.tiles = static_cast<int>(tiles.hashes.size());
  stats.hash_ms = MsSince(start);
  const bool comparable = state->valid && state->tiles.SameGeometry(tiles);
  if (comparable && state->tiles.hashes == tiles.hashes) {
    stats.cache_hit = true;
    outcome.page = state->page;
    stats.total_ms = MsSince(start);
    return outcome;
  }

  const auto prepare_start = SteadyClock::now();
  GrayImage gray;
  if (comparable) {
    // An unchanged tile has the previous frame's grey pixels; converting only the changed
    // tiles took a changed line's grey step from ~2.5 ms to ~0.3 ms (mostly the copy) at 1080p.
    gray = state->gray;
    for (size_t i = 0; i < tiles.hashes.size(); ++i) {
      if (tiles.hashes[i] != state->tiles.hashes[i]) {
        ToGrayRect(frame, tiles.TileBox(static_cast<int>(i)), &gray);
      }
    }
  } else {
    ToGray(frame, &gray);
  }
  const int width = gray.width;
  const int height = gray.height;
  std::vector<OcrBox> regions;
  if (comparable) {
    std::vector<OcrBox> previous_lines;
    for (const TextLine& line : state->page->lines) previous_lines.push_back(line.box);
    ChangePlan plan = PlanRereads(state->tiles, tiles, state->gray, gray, previous_lines);
    stats.tiles_changed = plan.tiles_changed;
    int64_t area = 0;
    for (const OcrBox& r : plan.regions) area += int64_t{r.w} * r.h;
    if (area > options.full_reread_fraction * width * height) {
      stats.full_read = true;
      regions = {{0, 0, width, height}};
    } else {
      regions = std::move(plan.regions);
    }
  } else {
    stats.full_read = true;
    stats.tiles_changed = stats.tiles;
    regions = {{0, 0, width, height}};
  }
  stats.regions = static_cast<int>(regions.size());

  // Crops are padded so that the polarity fix sees the background around the text and the
  // engine gets a margin; words are kept only when their centre lies in the region itself.
  const int pad = std::max(4, options.polarity_radius);
  std::vector<RegionWork> work(regions.size());
  std::vector<Piece> pieces;
  std::vector<size_t> piece_region;
  for (size_t i = 0; i < regions.size(); ++i) {
    RegionWork& w = work[i];
    w.region = regions[i];
    w.padded = Inflate(regions[i], pad, width, height);
    Crop(gray, w.padded, &w.crop);
  }
  // Pieces on a dark background (their padding ring is dark) are read inverted: light text
  // on dark buttons and title bars becomes dark on light. Deciding per piece rather than per
  // pixel leaves no halo at the edge of a dark area (a per-pixel local-mean rule ate the first
  // letters of lines next to a window border).
  std::vector<std::unique_ptr<GrayImage>> piece_pixels;
  for (size_t i = 0; i < work.size(); ++i) {
    RegionWork& w = work[i];
    const GrayView view = w.crop.view();
    std::vector<OcrBox> boxes;
    if (options.xy_cut) {
      boxes = XyCut(view, options.min_column_gap);
    } else {
      boxes = {{0, 0, view.width, view.height}};
    }
    for (const OcrBox& b : boxes) {
      // Content under 4 px tall holds no readable glyph (underlines, rules, the bottom edge
      // of a cursor block); such pieces came back empty or as noise ("Lal").
      if (b.h < kMinContentHeight) continue;
      const int psm = !options.xy_cut                                     ? options.whole_psm
                      : b.h + 2 * kPieceMargin <= options.max_line_height ? kPsmSingleLine
                                                                          : options.whole_psm;
      const OcrBox in_frame{w.padded.x + b.x, w.padded.y + b.y, b.w, b.h};
      // Text in the padding around a region was kept from the cache; reading it again only
      // to drop its words cost a changed line half its time (the neighbouring line).
      if (!MayHoldRegionWords(in_frame, w.region, psm == kPsmSingleLine)) continue;
      const OcrBox ring = Inflate(b, kPieceMargin, view.width, view.height);
      const int background = OutlineMedian(view, ring);
      const bool invert = options.polarity_fix && background < 128;
      auto pixels = std::make_unique<GrayImage>();
      CopyPiece(view, b, static_cast<uint8_t>(background), invert, pixels.get());
      if (invert) ++stats.pieces_inverted;
      Piece piece;
      piece.image = pixels->view();
      piece.psm = psm;
      piece.offset_x = in_frame.x - kPieceMargin;
      piece.offset_y = in_frame.y - kPieceMargin;
      stats.pixels_read += int64_t{piece.image.width} * piece.image.height;
      pieces.push_back(piece);
      piece_region.push_back(i);
      piece_pixels.push_back(std::move(pixels));
    }
  }
  stats.pieces = static_cast<int>(pieces.size());
  stats.prepare_ms = MsSince(prepare_start);

  const auto ocr_start = SteadyClock::now();
  if (!pieces.empty()) reader(&pieces);
  stats.ocr_ms = MsSince(ocr_start);
  for (const Piece& piece : pieces) {
    if (!piece.status.ok()) return piece.status;
  }

  std::vector<OcrWord> words;
  if (!stats.full_read && state->page != nullptr) {
    for (const OcrWord& word : state->page->words) {
      bool replaced = false;
      for (const OcrBox& r : regions) replaced = replaced || CenterInside(word.box, r);
      if (!replaced) words.push_back(word);
    }
  }
  for (size_t k = 0; k < pieces.size(); ++k) {
    const OcrBox& region = work[piece_region[k]].region;
    for (OcrWord word : pieces[k].words) {
      if (word.confidence < options.min_confidence) continue;
      word.box.x += pieces[k].offset_x;
      word.box.y += pieces[k].offset_y;
      // A word may start in the synthetic margin of a piece at the frame edge.
      word.box = Inflate(word.box, 0, width, height);
      if (!CenterInside(word.box, region)) continue;
      words.push_back(word);
    }
  }
  auto page = std::make_shared<const PageLayout>(BuildLayout(std::move(words)));
  state->valid = true;
  state->tiles = std::move(tiles);
  state->gray = std::move(gray);
  state->page = page;
  outcome.page = std::move(page);
  stats.total_ms = MsSince(start);
  return outcome;
}

}  // namespace brainstem::perception
