// OcrPipeline: one frame in, a page layout out, re-reading only what changed since the
// previous frame of the same stream. Steps: hash tiles (an identical frame is answered from
// the cache here); convert to grey (only the changed tiles when a previous frame exists); plan
// the re-reads (everything for a first frame or a new geometry, else the changed lines:
// tile_cache.h); cut each region (XY-cut) into pieces of text, drop those that cannot change
// the answer (unchanged neighbours in the region's padding, streaks under 4 px), copy each into
// a plain margin with its polarity fixed, narrow single lines (line_width_scale); answer a
// piece whose pixels the stream read before (text that scrolled or moved) from memory, read the
// others with an engine (single lines with PSM 7, taller pieces with PSM 11), then read the
// uncertain words of narrowed lines again alone at full width; keep the previous words outside
// the regions; group into lines and blocks.
// Reading the pieces is delegated to a PieceReader so that the worker pool can spread one
// frame's pieces over several engines.
// Thread-compatible: a StreamState is used by one frame at a time (the pool locks it).
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "backends/ocr/ocr_engine.h"
#include "common/result.h"
#include "perception/image.h"
#include "perception/layout.h"
#include "perception/tile_cache.h"

namespace brainstem::perception {

struct PipelineOptions {
  int tile_size = 128;
  int whole_psm = kPsmSparseText;  // pieces taller than a line (and the "tesseract" mode)
  bool polarity_fix = true;
  int polarity_radius = 16;  // padding around re-read regions (background context)
  // "xycut": cut regions into lines/pieces and read each (lines with PSM 7);
  // "tesseract": hand each region to Tesseract whole with whole_psm.
  bool xy_cut = true;
  int min_column_gap = 16;    // pixels of background that separate two pieces on one row
  int max_line_height = 40;   // pieces up to this tall are read as one line (PSM 7)
  float min_confidence = 30;  // words below this are dropped (icons, borders read as text)
  // Single lines are narrowed to this fraction of their width before reading. Tesseract
  // scales every line to 36 px high and steps its LSTM along the width, so the time of a line
  // follows its width; screen fonts are wide enough that 0.65 still reads them (measured on
  // dense 11 px terminal text: 36% less time, CER 1.8% -> 1.1%; docs/perception.md).
  double line_width_scale = 1.0;
  // Words read from a narrowed line below this confidence are read again alone at full width;
  // the better-confident reading wins.
  float recheck_below_confidence = 85;
  // Above this fraction of the frame's area changed, everything is re-read.
  double full_reread_fraction = 0.6;
};

// One piece of a region to read, and what was read.
struct Piece {
  GrayView image;  // owned by AnalyzeFrame, valid while the reader runs
  int psm = kPsmSingleLine;
  int offset_x = 0;  // where image(0, 0) lies in the frame (< 0 at the frame edge: the margin)
  int offset_y = 0;
  double x_scale = 1.0;  // image columns per frame column (line_width_scale for squeezed lines)
  std::vector<OcrWord> words;  // out, in the piece's coordinates
  Status status;               // out
};
// Reads every piece (possibly in parallel); returns when all are done.
using PieceReader = std::function<void(std::vector<Piece>* pieces)>;

struct OcrStats {
  bool cache_hit = false;  // identical frame: answered from the cache
  bool full_read = false;  // no usable previous frame (first, new size) or too much changed
  int tiles = 0;
  int tiles_changed = 0;
  int regions = 0;            // regions re-read
  int pieces = 0;             // engine calls
  int pieces_remembered = 0;  // pieces seen before in this stream (moved text): not read
  int pieces_inverted = 0;    // of which read inverted (light text on a dark background)
  int64_t pixels_read = 0;    // area handed to the engine
  int words_rechecked = 0;    // uncertain words of narrowed lines read again at full width
  int words_corrected = 0;    // of which the full-width reading was more confident
  double hash_ms = 0;
  double prepare_ms = 0;  // grey, planning, polarity, cutting
  double ocr_ms = 0;
  double total_ms = 0;
};

struct OcrOutcome {
  std::shared_ptr<const PageLayout> page;  // shared with the cache; immutable
  OcrStats stats;
  uint32_t width = 0;
  uint32_t height = 0;
};

// What the engine read from one piece, relative to the piece's origin.
struct RememberedPiece {
  std::vector<OcrWord> words;
  uint64_t last_used = 0;  // StreamState::frame_number
};

// The cache of one stream (one screen): the last frame's hashes, grey image and page, and
// the readings of recent pieces by their pixels, so that text which moved (a terminal that
// scrolled, a dragged window) is not read again. Pieces are compared as the engine would
// see them, so a remembered reading is the one the engine would give.
struct StreamState {
  bool valid = false;
  TileHashes tiles;
  GrayImage gray;
  std::shared_ptr<const PageLayout> page;
  uint64_t frame_number = 0;
  std::unordered_map<uint64_t, RememberedPiece> pieces;  // by PieceKey (ocr_pipeline.cc)
};

// Reads `frame`, updating `state`. REQUIRES: a valid frame (ValidateFrame).
// Errors: the first piece's engine error (the stream's cache then holds the previous frame;
// only the recency of remembered pieces has moved).
Result<OcrOutcome> AnalyzeFrame(const FrameView& frame, const PipelineOptions& options,
                                const PieceReader& reader, StreamState* state);

}  // namespace brainstem::perception
