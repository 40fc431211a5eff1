#include "perception/ocr_pipeline.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

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
// Columns of context on each side of a word read again alone.
constexpr int kRecheckSlack = 3;
// Piece readings kept per stream; past this, those unused for kPieceMemoryFrames frames go.
constexpr size_t kMaxRememberedPieces = 4096;
constexpr uint64_t kPieceMemoryFrames = 8;

// Identity of a piece as the engine would see it: its prepared pixels (margin, polarity and
// narrowing included), size and mode.
uint64_t PieceKey(const GrayImage& pixels, int psm) {
  const uint64_t seed = (uint64_t(uint32_t(pixels.width)) << 32) ^
                        uint64_t(uint32_t(pixels.height)) ^ (uint64_t(uint32_t(psm)) << 56);
  return XXH3_64bits_withSeed(pixels.pixels.data(), pixels.pixels.size(), seed);
}

// Moves `words` by (dx, dy).
std::vector<OcrWord> Shifted(std::vector<OcrWord> words, int dx, int dy) {
  for (OcrWord& word : words) {
    word.box.x += dx;
    word.box.y += dy;
  }
  return words;
}

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

// Shrinks `image` horizontally by `scale` (0 < scale < 1), each output column the area average
// of the source columns it covers.
void SqueezeHorizontally(double scale, GrayImage* image) {
  const int in_w = image->width;
  const int out_w = std::max(1, static_cast<int>(in_w * scale + 0.5));
  const double step = static_cast<double>(in_w) / out_w;
  GrayImage out;
  out.width = out_w;
  out.height = image->height;
  out.pixels.resize(static_cast<size_t>(out_w) * out.height);
  // Output column x averages source columns first[x] .. first[x] + taps - 1 with 8-bit
  // weights summing to 256 (zero where a column is not covered); computed once per piece.
  const int taps = static_cast<int>(step) + 2;
  std::vector<int> first(static_cast<size_t>(out_w));
  std::vector<int> weights(static_cast<size_t>(out_w) * taps, 0);
  for (int x = 0; x < out_w; ++x) {
    const double lo = x * step;
    const double hi = std::min<double>(in_w, (x + 1) * step);
    first[x] = static_cast<int>(lo);
    int* w = &weights[static_cast<size_t>(x) * taps];
    int sum = 0;
    int last = 0;
    for (int k = 0; k < taps && first[x] + k < hi; ++k) {
      const int sx = first[x] + k;
      const double cover = std::min<double>(sx + 1, hi) - std::max<double>(sx, lo);
      w[k] = static_cast<int>(cover / (hi - lo) * 256 + 0.5);
      sum += w[k];
      last = k;
    }
    w[last] += 256 - sum;
  }
  for (int y = 0; y < image->height; ++y) {
    const uint8_t* row = image->pixels.data() + static_cast<size_t>(y) * in_w;
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(y) * out_w;
    for (int x = 0; x < out_w; ++x) {
      const int* w = &weights[static_cast<size_t>(x) * taps];
      const int n = std::min(taps, in_w - first[x]);
      int acc = 0;
      for (int k = 0; k < n; ++k) acc += w[k] * row[first[x] + k];
      dst[x] = static_cast<uint8_t>(std::clamp((acc + 128) >> 8, 0, 255));
    }
  }
  *image = std::move(out);
}

// Where a piece came from, to read part of it again: its region, its content box in the
// region's crop and how its pixels were prepared; and its PieceKey, to remember its reading.
struct PieceSource {
  size_t region = 0;
  OcrBox box;
  uint8_t background = 255;
  bool invert = false;
  uint64_t key = 0;
};

// Maps a word read from `piece` to frame coordinates (narrowed columns widened back first).
OcrWord ToFrame(const Piece& piece, OcrWord word) {
  if (piece.x_scale != 1.0) {
    const int right = static_cast<int>(word.box.right() / piece.x_scale + 0.5);
    word.box.x = static_cast<int>(word.box.x / piece.x_scale + 0.5);
    word.box.w = right - word.box.x;
  }
  word.box.x += piece.offset_x;
  word.box.y += piece.offset_y;
  return word;
}

// A region prepared for reading: its padded grey crop (polarity fixed) and its pieces.
struct RegionWork {
  OcrBox region;  // words whose centre lies here are replaced
  OcrBox padded;  // the crop's place in the frame
  GrayImage crop;
};

// Per piece, per word: the words that replace it after the re-read pass (empty: keep it).
using Replacements = std::vector<std::vector<std::vector<OcrWord>>>;

// The re-read pass: a narrowed line's uncertain words are read again at full width, each
// alone, and the more confident reading wins. Narrowing saves a third of the time, but a
// misread it causes (11 px "1289.50" as "1289.58") comes back with a low confidence (80 against
// 94), and a word is cheap to read. `read` holds each piece's words in frame coordinates.
Result<Replacements> RecheckUncertainWords(const std::vector<Piece>& pieces,
                                           const std::vector<PieceSource>& sources,
                                           const std::vector<RegionWork>& work,
                                           const std::vector<std::vector<OcrWord>>& read,
                                           const PipelineOptions& options,
                                           const PieceReader& reader, OcrStats* stats) {
  std::vector<Piece> rechecks;
  std::vector<std::pair<size_t, size_t>> rechecked;  // (piece, word) of each recheck
  std::vector<std::unique_ptr<GrayImage>> pixels_of_rechecks;
  for (size_t k = 0; k < pieces.size(); ++k) {
    if (pieces[k].x_scale == 1.0) continue;
    const PieceSource& src = sources[k];
    const RegionWork& w = work[src.region];
    for (size_t j = 0; j < read[k].size(); ++j) {
      if (read[k][j].confidence >= options.recheck_below_confidence) continue;
      // The word's columns in the region's crop, a little wider, within the piece's content.
      const int x0 = std::max(src.box.x, read[k][j].box.x - w.padded.x - kRecheckSlack);
      const int x1 = std::min(src.box.right(), read[k][j].box.right() - w.padded.x + kRecheckSlack);
      if (x1 - x0 < 2) continue;
      auto pixels = std::make_unique<GrayImage>();
      CopyPiece(w.crop.view(), {x0, src.box.y, x1 - x0, src.box.h}, src.background, src.invert,
                pixels.get());
      Piece piece;
      piece.image = pixels->view();
      piece.psm = kPsmSingleLine;
      piece.offset_x = w.padded.x + x0 - kPieceMargin;
      piece.offset_y = pieces[k].offset_y;
      stats->pixels_read += int64_t{piece.image.width} * piece.image.height;
      rechecks.push_back(piece);
      rechecked.emplace_back(k, j);
      pixels_of_rechecks.push_back(std::move(pixels));
    }
  }
  stats->words_rechecked = static_cast<int>(rechecks.size());
  Replacements replacement(pieces.size());
  if (rechecks.empty()) return replacement;
  reader(&rechecks);
  for (size_t r = 0; r < rechecks.size(); ++r) {
    if (!rechecks[r].status.ok()) return rechecks[r].status;
    if (rechecks[r].words.empty()) continue;
    double confidence = 0;
    for (const OcrWord& word : rechecks[r].words) confidence += word.confidence;
    confidence /= static_cast<double>(rechecks[r].words.size());
    const auto [k, j] = rechecked[r];
    if (confidence <= read[k][j].confidence) continue;
    auto& slot = replacement[k];
    slot.resize(read[k].size());
    for (const OcrWord& word : rechecks[r].words) slot[j].push_back(ToFrame(rechecks[r], word));
    ++stats->words_corrected;
  }
  return replacement;
}

// Bounds a stream's piece memory: past kMaxRememberedPieces, those unused for
// kPieceMemoryFrames frames go (all of them if that is not enough).
void ForgetOldPieces(StreamState* state) {
  if (state->pieces.size() <= kMaxRememberedPieces) return;
  std::erase_if(state->pieces, [&](const auto& entry) {
    return entry.second.last_used + kPieceMemoryFrames < state->frame_number;
  });
  if (state->pieces.size() > kMaxRememberedPieces) state->pieces.clear();
}

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
  std::vector<PieceSource> sources;
  // Pieces whose pixels the stream read before (a line that scrolled or a window that moved):
  // their words, moved to where the piece is now.
  std::vector<std::pair<size_t, std::vector<OcrWord>>> remembered;  // (region, frame words)
  ++state->frame_number;
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
      const double x_scale = psm == kPsmSingleLine ? options.line_width_scale : 1.0;
      if (x_scale < 1.0) SqueezeHorizontally(x_scale, pixels.get());
      const int offset_x = in_frame.x - kPieceMargin;
      const int offset_y = in_frame.y - kPieceMargin;
      const uint64_t key = PieceKey(*pixels, psm);
      if (auto it = state->pieces.find(key); it != state->pieces.end()) {
        it->second.last_used = state->frame_number;
        remembered.emplace_back(i, Shifted(it->second.words, offset_x, offset_y));
        ++stats.pieces_remembered;
        continue;
      }
      if (invert) ++stats.pieces_inverted;
      Piece piece;
      piece.image = pixels->view();
      piece.psm = psm;
      piece.offset_x = offset_x;
      piece.offset_y = offset_y;
      stats.pixels_read += int64_t{piece.image.width} * piece.image.height;
      piece.x_scale = x_scale;
      pieces.push_back(piece);
      sources.push_back({i, b, static_cast<uint8_t>(background), invert, key});
      piece_pixels.push_back(std::move(pixels));
    }
  }
  stats.pieces = static_cast<int>(pieces.size());
  stats.prepare_ms = MsSince(prepare_start);

  const auto ocr_start = SteadyClock::now();
  if (!pieces.empty()) reader(&pieces);
  for (const Piece& piece : pieces) {
    if (!piece.status.ok()) return piece.status;
  }
  // Each piece's words in frame coordinates.
  std::vector<std::vector<OcrWord>> read(pieces.size());
  for (size_t k = 0; k < pieces.size(); ++k) {
    for (const OcrWord& word : pieces[k].words) read[k].push_back(ToFrame(pieces[k], word));
  }

  ASSIGN_OR_RETURN(Replacements replacement,
                   RecheckUncertainWords(pieces, sources, work, read, options, reader, &stats));
  stats.ocr_ms = MsSince(ocr_start);

  std::vector<OcrWord> words;
  if (!stats.full_read && state->page != nullptr) {
    for (const OcrWord& word : state->page->words) {
      bool replaced = false;
      for (const OcrBox& r : regions) replaced = replaced || CenterInside(word.box, r);
      if (!replaced) words.push_back(word);
    }
  }
  auto keep = [&](const OcrBox& region, OcrWord word) {
    if (word.confidence < options.min_confidence) return;
    // A word may start in the synthetic margin of a piece at the frame edge.
    word.box = Inflate(word.box, 0, width, height);
    if (CenterInside(word.box, region)) words.push_back(std::move(word));
  };
  ForgetOldPieces(state);
  for (size_t k = 0; k < pieces.size(); ++k) {
    std::vector<OcrWord> final_words;
    for (size_t j = 0; j < read[k].size(); ++j) {
      if (!replacement[k].empty() && !replacement[k][j].empty()) {
        final_words.insert(final_words.end(), replacement[k][j].begin(), replacement[k][j].end());
      } else {
        final_words.push_back(read[k][j]);
      }
    }
    const OcrBox& region = work[sources[k].region].region;
    for (const OcrWord& word : final_words) keep(region, word);
    state->pieces[sources[k].key] = {
        Shifted(std::move(final_words), -pieces[k].offset_x, -pieces[k].offset_y),
        state->frame_number};
  }
  for (auto& [region_index, frame_words] : remembered) {
    for (OcrWord& word : frame_words) keep(work[region_index].region, std::move(word));
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
