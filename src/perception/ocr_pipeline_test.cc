// AnalyzeFrame with a fake PieceReader (no Tesseract): which pieces reach the engine and what
// their pixels look like.
#include "perception/ocr_pipeline.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace brainstem::perception {
namespace {

OwnedFrame Fill(uint32_t w, uint32_t h, uint8_t value) {
  OwnedFrame f;
  f.width = w;
  f.height = h;
  f.stride = w * 4;
  f.pixels.assign(size_t{f.stride} * h, value);
  return f;
}

void Paint(OwnedFrame* f, int x0, int y0, int x1, int y1, uint8_t value) {
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x)
      for (int c = 0; c < 3; ++c) f->pixels[size_t(y) * f->stride + size_t(x) * 4 + c] = value;
}

// Glyph-like ink: a checkerboard is uniform in no direction, so the content mask keeps it.
void Ink(OwnedFrame* f, int x0, int y0, int x1, int y1, uint8_t ink, uint8_t paper) {
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x)
      for (int c = 0; c < 3; ++c)
        f->pixels[size_t(y) * f->stride + size_t(x) * 4 + c] = (x + y) % 2 == 0 ? ink : paper;
}

struct Seen {
  GrayImage image;
  int offset_x = 0;
  int offset_y = 0;
};

// Records every piece and answers one word covering the piece's content (inside its 3 px
// margin, as Tesseract's boxes are tight to the ink), named after its frame row.
PieceReader Recorder(std::vector<Seen>* seen) {
  return [seen](std::vector<Piece>* pieces) {
    for (Piece& p : *pieces) {
      Seen s;
      s.image.width = p.image.width;
      s.image.height = p.image.height;
      for (int y = 0; y < p.image.height; ++y) {
        const uint8_t* row = p.image.data + size_t(y) * p.image.stride;
        s.image.pixels.insert(s.image.pixels.end(), row, row + p.image.width);
      }
      s.offset_x = p.offset_x;
      s.offset_y = p.offset_y;
      seen->push_back(std::move(s));
      p.words = {{"row" + std::to_string(p.offset_y + p.image.height / 2),
                  {3, 3, p.image.width - 6, p.image.height - 6},
                  90}};
    }
  };
}

TEST(OcrPipelineTest, AChangedLineReadsOnlyThatLineNotItsNeighbours) {
  // Three lines 4 px apart, like xterm rows: each re-read region is padded by 16 px, which
  // reaches the neighbouring lines.
  OwnedFrame a = Fill(300, 120, 255);
  Ink(&a, 10, 20, 200, 35, 0, 255);
  Ink(&a, 10, 39, 200, 54, 0, 255);
  Ink(&a, 10, 58, 200, 73, 0, 255);
  PipelineOptions options;
  options.tile_size = 64;
  StreamState state;
  std::vector<Seen> seen;
  Result<OcrOutcome> first = AnalyzeFrame(a.view(), options, Recorder(&seen), &state);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->stats.full_read);
  EXPECT_EQ(seen.size(), 3u);
  ASSERT_EQ(first->page->lines.size(), 3u);

  OwnedFrame b = a;
  Ink(&b, 10, 39, 150, 54, 255, 0);  // the middle line's glyphs change
  seen.clear();
  Result<OcrOutcome> second = AnalyzeFrame(b.view(), options, Recorder(&seen), &state);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->stats.full_read);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(second->stats.pieces, 1);
  EXPECT_EQ(seen[0].offset_y + seen[0].image.height / 2, 46);  // the middle line
  // The neighbours come from the cache; the page still has three lines.
  EXPECT_EQ(second->page->lines.size(), 3u);
  // The grey image kept for the next frame is the new frame's, not a mix.
  GrayImage expected;
  ToGray(b.view(), &expected);
  EXPECT_EQ(state.gray.pixels, expected.pixels);
}

TEST(OcrPipelineTest, PiecesGetAPlainMarginWithoutBordersOrNeighbours) {
  OwnedFrame a = Fill(200, 60, 255);
  Ink(&a, 12, 20, 150, 34, 0, 255);
  Paint(&a, 9, 0, 10, 60, 0);  // a window border 2 px left of the text
  PipelineOptions options;
  StreamState state;
  std::vector<Seen> seen;
  ASSERT_TRUE(AnalyzeFrame(a.view(), options, Recorder(&seen), &state).ok());
  ASSERT_EQ(seen.size(), 1u);
  const GrayImage& img = seen[0].image;
  EXPECT_EQ(img.width, 138 + 6);
  EXPECT_EQ(img.height, 14 + 6);
  EXPECT_EQ(seen[0].offset_x, 12 - 3);
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      const bool margin = x < 3 || y < 3 || x >= img.width - 3 || y >= img.height - 3;
      if (margin) {
        ASSERT_EQ(img.at(x, y), 255) << x << "," << y;
      }
    }
  }
}

TEST(OcrPipelineTest, LightTextOnDarkIsInvertedAndAFrameEdgePieceKeepsItsMargin) {
  OwnedFrame a = Fill(200, 60, 30);  // a dark title bar
  Ink(&a, 0, 20, 120, 34, 240, 30);  // light text that starts at the frame's left edge
  PipelineOptions options;
  StreamState state;
  std::vector<Seen> seen;
  Result<OcrOutcome> r = AnalyzeFrame(a.view(), options, Recorder(&seen), &state);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(r->stats.pieces_inverted, 1);
  const GrayImage& img = seen[0].image;
  EXPECT_EQ(img.width, 120 + 6);  // the synthetic margin is there at the frame edge too
  EXPECT_EQ(seen[0].offset_x, -3);
  EXPECT_EQ(img.at(0, 10), 255 - 30);  // background, inverted: light
  EXPECT_EQ(img.at(3, 3), 255 - 240);  // a glyph pixel, inverted: dark
  // The word's box is clipped to the frame.
  ASSERT_EQ(r->page->words.size(), 1u);
  EXPECT_EQ(r->page->words[0].box.x, 0);
}

TEST(OcrPipelineTest, NarrowedLinesAreAveragedAndTheirWordsMappedBackToTheFrame) {
  OwnedFrame a = Fill(300, 60, 255);
  Ink(&a, 41, 20, 240, 34, 0, 255);  // 199 px of glyph-like ink, 14 px tall
  PipelineOptions options;
  options.line_width_scale = 0.5;
  StreamState state;
  std::vector<Seen> seen;
  Result<OcrOutcome> r = AnalyzeFrame(a.view(), options, Recorder(&seen), &state);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(seen.size(), 1u);
  const GrayImage& img = seen[0].image;
  EXPECT_EQ(img.width, (199 + 6 + 1) / 2);  // the piece with its 3 px margins, halved
  EXPECT_EQ(img.height, 14 + 6);            // height untouched
  EXPECT_EQ(img.at(0, 10), 255);            // margin
  // Each narrowed column averages about two source columns of the 0/255 checkerboard.
  EXPECT_NEAR(img.at(50, 10), 128, 8);
  EXPECT_NEAR(img.at(51, 11), 128, 8);
  // The fake reader answers a word at narrowed columns [3, 100): columns [6, 200) of the
  // piece, which starts at frame column 41 - 3.
  ASSERT_EQ(r->page->words.size(), 1u);
  const OcrBox& box = r->page->words[0].box;
  EXPECT_EQ(box.x, 38 + 6);
  EXPECT_EQ(box.right(), 38 + 200);
  EXPECT_EQ(box.y, 20);
  EXPECT_EQ(box.h, 14);
}

TEST(OcrPipelineTest, UncertainWordsOfNarrowedLinesAreReadAgainAlone) {
  OwnedFrame a = Fill(300, 60, 255);
  Ink(&a, 20, 20, 80, 34, 0, 255);    // "sure"
  Ink(&a, 90, 20, 150, 34, 0, 255);   // "unsure": misread when narrowed
  Ink(&a, 160, 20, 220, 34, 0, 255);  // "lost": unreadable narrowed, also alone
  PipelineOptions options;
  options.line_width_scale = 0.5;
  int calls = 0;
  std::vector<Piece> alone;
  PieceReader reader = [&](std::vector<Piece>* pieces) {
    ++calls;
    for (Piece& p : *pieces) {
      if (p.x_scale != 1.0) {
        // The narrowed line: three words at the ink's narrowed columns (piece starts at 17).
        auto at = [&](int x0, int x1) {
          return OcrBox{static_cast<int>((x0 - 17) * 0.5), 3, static_cast<int>((x1 - x0) * 0.5),
                        14};
        };
        p.words = {
            {"sure", at(20, 80), 95}, {"un5ure", at(90, 150), 70}, {"l0st", at(160, 220), 60}};
      } else {
        alone.push_back(p);
        const bool second = p.offset_x + p.image.width / 2 < 155;
        p.words = {
            {second ? "unsure" : "lost", {3, 3, p.image.width - 6, 14}, second ? 92.0f : 40.0f}};
      }
    }
  };
  StreamState state;
  Result<OcrOutcome> r = AnalyzeFrame(a.view(), options, reader, &state);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(calls, 2);  // the lines, then the rechecks
  ASSERT_EQ(alone.size(), 2u);
  for (const Piece& p : alone) EXPECT_EQ(p.image.height, 14 + 6);  // the line's full height
  // Each recheck holds its word's columns at full width, and a few more.
  EXPECT_NEAR(alone[0].offset_x + 3, 90 - 3, 2);
  EXPECT_NEAR(alone[0].image.width, 60 + 6 + 6, 3);
  EXPECT_EQ(r->stats.words_rechecked, 2);
  EXPECT_EQ(r->stats.words_corrected, 1);
  ASSERT_EQ(r->page->lines.size(), 1u);
  // "unsure" read better alone; "l0st" did not (40 < 60) and keeps its narrowed reading.
  EXPECT_EQ(r->page->lines[0].text, "sure unsure l0st");
  const OcrBox& box = r->page->words[static_cast<size_t>(r->page->lines[0].words[1])].box;
  // In frame coordinates: the fake answers the whole recheck piece but its margin, which
  // includes the 3 columns of context on each side.
  EXPECT_NEAR(box.x, 90 - 3, 2);
  EXPECT_NEAR(box.right(), 150 + 3, 2);
}

TEST(OcrPipelineTest, TextThatScrolledIsNotReadAgain) {
  // A terminal scrolls by one row: two lines move up, one new line appears at the bottom.
  // (Rows 20 px apart keep the checkerboard's phase: the moved lines' pixels are the same.)
  OwnedFrame a = Fill(300, 120, 255);
  Ink(&a, 10, 20, 200, 35, 0, 255);
  Ink(&a, 10, 40, 160, 55, 0, 255);
  Ink(&a, 10, 60, 130, 75, 0, 255);
  OwnedFrame b = Fill(300, 120, 255);
  Ink(&b, 10, 20, 160, 35, 0, 255);
  Ink(&b, 10, 40, 130, 55, 0, 255);
  Ink(&b, 10, 60, 180, 75, 0, 255);
  PipelineOptions options;
  options.tile_size = 64;
  StreamState state;
  std::vector<Seen> seen;
  ASSERT_TRUE(AnalyzeFrame(a.view(), options, Recorder(&seen), &state).ok());
  ASSERT_EQ(seen.size(), 3u);
  seen.clear();
  Result<OcrOutcome> r = AnalyzeFrame(b.view(), options, Recorder(&seen), &state);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(seen.size(), 1u);  // only the new line
  EXPECT_EQ(seen[0].image.width, 170 + 6);
  EXPECT_EQ(r->stats.pieces, 1);
  EXPECT_EQ(r->stats.pieces_remembered, 2);
  // The remembered words sit where their lines are now.
  ASSERT_EQ(r->page->lines.size(), 3u);
  const int widths[] = {150, 120, 170};
  const int tops[] = {20, 40, 60};
  for (int i = 0; i < 3; ++i) {
    const TextLine& line = r->page->lines[static_cast<size_t>(i)];
    EXPECT_EQ(line.box.y, tops[i]) << i;
    EXPECT_EQ(line.box.w, widths[i]) << i;
  }
  // Read from the first frame, where those lines were one row lower.
  EXPECT_EQ(r->page->lines[0].text, "row47");
  EXPECT_EQ(r->page->lines[1].text, "row67");

  // A new stream remembers nothing: everything is read.
  StreamState fresh;
  seen.clear();
  ASSERT_TRUE(AnalyzeFrame(b.view(), options, Recorder(&seen), &fresh).ok());
  EXPECT_EQ(seen.size(), 3u);
}

TEST(OcrPipelineTest, ThinStreaksAreNotRead) {
  OwnedFrame a = Fill(200, 60, 255);
  Ink(&a, 10, 10, 100, 13, 0, 255);  // 3 px tall: an underline or a cursor's edge
  PipelineOptions options;
  StreamState state;
  std::vector<Seen> seen;
  Result<OcrOutcome> r = AnalyzeFrame(a.view(), options, Recorder(&seen), &state);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(seen.empty());
  EXPECT_EQ(r->stats.pieces, 0);
}

}  // namespace
}  // namespace brainstem::perception
