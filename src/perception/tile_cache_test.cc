#include "perception/tile_cache.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace brainstem::perception {
namespace {

OwnedFrame White(uint32_t w, uint32_t h) {
  OwnedFrame f;
  f.width = w;
  f.height = h;
  f.stride = w * 4;
  f.pixels.assign(size_t{f.stride} * h, 255);
  return f;
}

void Ink(OwnedFrame* f, int x0, int y0, int x1, int y1) {
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x)
      for (int c = 0; c < 3; ++c)  // a checkerboard: glyph-like, not uniform in any direction
        f->pixels[size_t(y) * f->stride + size_t(x) * 4 + c] = (x + y) % 2 == 0 ? 0 : 255;
}

TEST(TileCacheTest, IdenticalFramesHashEqualAndAChangeIsLocalized) {
  OwnedFrame a = White(300, 200);
  Ink(&a, 10, 10, 60, 20);
  OwnedFrame b = a;
  TileHashes ha = HashTiles(a.view(), 64);
  EXPECT_EQ(ha.cols, 5);
  EXPECT_EQ(ha.rows, 4);
  EXPECT_EQ(ha.hashes, HashTiles(b.view(), 64).hashes);
  Ink(&b, 200, 150, 210, 160);
  TileHashes hb = HashTiles(b.view(), 64);
  GrayImage ga, gb;
  ToGray(a.view(), &ga);
  ToGray(b.view(), &gb);
  // The change touches a previous line box: the re-read grows to the whole line.
  ChangePlan plan = PlanRereads(ha, hb, ga, gb, {{150, 148, 120, 14}});
  EXPECT_EQ(plan.tiles_changed, 1);
  ASSERT_EQ(plan.regions.size(), 1u);
  EXPECT_EQ(plan.regions[0].x, 150);
  EXPECT_EQ(plan.regions[0].right(), 270);
  EXPECT_EQ(plan.regions[0].y, 148);
  EXPECT_EQ(plan.regions[0].bottom(), 162);
}

TEST(TileCacheTest, XyCutSeparatesLinesAndColumns) {
  OwnedFrame a = White(400, 100);
  Ink(&a, 10, 10, 100, 20);   // line 1, left
  Ink(&a, 300, 10, 390, 20);  // line 1, far right: another piece
  Ink(&a, 10, 40, 100, 50);   // line 2
  GrayImage g;
  ToGray(a.view(), &g);
  std::vector<OcrBox> boxes = XyCut(g.view(), 16);
  ASSERT_EQ(boxes.size(), 3u);
  EXPECT_EQ(boxes[0].x, 10);
  EXPECT_EQ(boxes[0].w, 90);
  EXPECT_EQ(boxes[0].h, 10);
  EXPECT_EQ(boxes[1].x, 300);
  EXPECT_EQ(boxes[2].y, 40);
}

TEST(TileCacheTest, OnlyPiecesThatCanYieldRegionWordsAreRead) {
  const OcrBox region{10, 100, 300, 20};  // a re-read line: rows 100..119
  // The changed line itself.
  EXPECT_TRUE(MayHoldRegionWords({12, 101, 200, 17}, region, /*single_line=*/true));
  // The line above, in the region's padding: its lower edge overlaps, its middle does not.
  EXPECT_FALSE(MayHoldRegionWords({12, 84, 200, 19}, region, true));
  // The line below likewise; and a piece beside the region overlaps nothing.
  EXPECT_FALSE(MayHoldRegionWords({12, 117, 200, 18}, region, true));
  EXPECT_FALSE(MayHoldRegionWords({320, 101, 50, 17}, region, true));
  // A centre on the region's first row counts, one on the row past its end does not.
  EXPECT_TRUE(MayHoldRegionWords({12, 90, 200, 20}, region, true));
  EXPECT_FALSE(MayHoldRegionWords({12, 110, 200, 20}, region, true));
  // A taller piece (not one line) is read whenever it overlaps: words anywhere in it count.
  EXPECT_TRUE(MayHoldRegionWords({12, 40, 200, 62}, region, /*single_line=*/false));
  EXPECT_FALSE(MayHoldRegionWords({12, 40, 200, 60}, region, false));
}

TEST(TileCacheTest, GrayOfARectangleMatchesTheWholeFrame) {
  OwnedFrame a = White(70, 40);
  for (size_t i = 0; i < a.pixels.size(); ++i) a.pixels[i] = static_cast<uint8_t>(i * 37 % 251);
  GrayImage whole, part;
  ToGray(a.view(), &whole);
  part = whole;
  std::fill(part.pixels.begin(), part.pixels.end(), 7);
  ToGrayRect(a.view(), {5, 3, 40, 20}, &part);
  for (int y = 0; y < 40; ++y) {
    for (int x = 0; x < 70; ++x) {
      const bool inside = x >= 5 && x < 45 && y >= 3 && y < 23;
      ASSERT_EQ(part.at(x, y), inside ? whole.at(x, y) : 7) << x << "," << y;
    }
  }
}

TEST(TileCacheTest, PolarityFixInvertsDarkBackgrounds) {
  GrayImage g;
  g.width = 100;
  g.height = 50;
  g.pixels.assign(5000, 255);
  for (int y = 0; y < 50; ++y)
    for (int x = 50; x < 100; ++x) g.pixels[size_t(y) * 100 + x] = 20;  // dark right half
  NormalizePolarity(&g, 8);
  EXPECT_EQ(g.at(10, 25), 255);
  EXPECT_EQ(g.at(90, 25), 235);
}

}  // namespace
}  // namespace brainstem::perception
