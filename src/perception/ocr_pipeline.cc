#include "perception/ocr_pipeline.h"

#include <algorithm>
#include <chrono>
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

// Mean of the outermost ring of pixels: the piece's background.
int RingMean(const GrayView& v) {
  int64_t sum = 0;
  int64_t n = 0;
  for (int x = 0; x < v.width; ++x) {
    sum += v.data[x] + v.data[static_cast<size_t>(v.height - 1) * v.stride + x];
    n += 2;
  }
  for (int y = 1; y + 1 < v.height; ++y) {
    sum += v.data[static_cast<size_t>(y) * v.stride] +
           v.data[static_cast<size_t>(y) * v.stride + v.width - 1];
    n += 2;
  }
  return n == 0 ? 255 : static_cast<int>(sum / n);
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
  ToGray(frame, &gray);
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
  std::vector<std::unique_ptr<GrayImage>> inverted;
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
      // A few pixels of background around each piece; the engine misreads glyphs that touch
      // the image edge.
      const OcrBox p = Inflate(b, 3, view.width, view.height);
      if (p.w < 4 || p.h < 6) continue;  // specks and rules: no text fits
      Piece piece;
      piece.image = {view.data + static_cast<size_t>(p.y) * view.stride + p.x, p.w, p.h,
                     view.stride};
      if (options.polarity_fix && RingMean(piece.image) < 128) {
        auto copy = std::make_unique<GrayImage>();
        Crop(w.crop, p, copy.get());
        for (uint8_t& v : copy->pixels) v = static_cast<uint8_t>(255 - v);
        piece.image = copy->view();
        inverted.push_back(std::move(copy));
        ++stats.pieces_inverted;
      }
      piece.psm = !options.xy_cut                  ? options.whole_psm
                  : p.h <= options.max_line_height ? kPsmSingleLine
                                                   : options.whole_psm;
      piece.offset_x = w.padded.x + p.x;
      piece.offset_y = w.padded.y + p.y;
      stats.pixels_read += int64_t{p.w} * p.h;
      pieces.push_back(piece);
      piece_region.push_back(i);
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
