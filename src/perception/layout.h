// Layout and queries over OCR words: words are grouped into lines (same baseline band, small
// horizontal gaps) and lines into blocks (stacked, overlapping columns); blocks are put in
// reading order (top to bottom, then left to right) to give the plain text. The agent queries
// run on a layout: `find` (a string or regex -> boxes with centres, best match first),
// `region` (the text inside a rectangle). Grouping is done here rather than taken from
// Tesseract because a page is assembled from cached words and freshly read crops.
// Thread-compatible: pure functions over values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backends/ocr/ocr_engine.h"
#include "common/result.h"

namespace brainstem::perception {

struct TextLine {
  OcrBox box;
  std::vector<int> words;  // indices into PageLayout::words, left to right
  std::string text;        // words joined by single spaces
};

struct TextBlock {
  OcrBox box;
  std::vector<int> lines;  // indices into PageLayout::lines, top to bottom
};

struct PageLayout {
  std::vector<OcrWord> words;
  std::vector<TextLine> lines;    // in reading order
  std::vector<TextBlock> blocks;  // in reading order
  std::string text;               // lines in reading order, one per row of text
};

OcrBox Union(const OcrBox& a, const OcrBox& b);
bool Intersects(const OcrBox& a, const OcrBox& b);
OcrBox Inflate(const OcrBox& box, int margin, int max_width, int max_height);

// Groups `words` (any order) into lines and blocks in reading order.
PageLayout BuildLayout(std::vector<OcrWord> words);

enum class MatchKind { kExact, kSubstring, kCaseInsensitive, kFuzzy, kRegex };
const char* MatchKindName(MatchKind kind);

struct FindMatch {
  std::string text;  // the matched words as read
  OcrBox box;
  int center_x = 0;
  int center_y = 0;
  double score = 0;  // 1 exact ... > 0 fuzzy
  MatchKind kind = MatchKind::kExact;
};

struct FindOptions {
  bool regex = false;  // query is an ECMAScript regular expression, matched within lines
  int max_results = 20;
};

// Matches, best first: exact word(s) > substring > case-insensitive > fuzzy (edit distance at
// most a quarter of the query's length, at least 1), then reading order.
// Errors: kInvalidArgument for an empty query or a bad regular expression.
Result<std::vector<FindMatch>> Find(const PageLayout& page, std::string_view query,
                                    const FindOptions& options);

// The lines (text of their words whose centre lies inside `rect`) in reading order.
std::string RegionText(const PageLayout& page, const OcrBox& rect);

// Levenshtein distance over bytes.
int EditDistance(std::string_view a, std::string_view b);

}  // namespace brainstem::perception
