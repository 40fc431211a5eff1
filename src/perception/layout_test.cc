#include "perception/layout.h"

#include <gtest/gtest.h>

namespace brainstem::perception {
namespace {

OcrWord W(std::string text, int x, int y, int w = 40, int h = 12) {
  return OcrWord{std::move(text), {x, y, w, h}, 90};
}

TEST(LayoutTest, GroupsWordsIntoLinesAndBlocksInReadingOrder) {
  // Two columns far apart; the left one has two lines.
  PageLayout page = BuildLayout({W("world", 50, 10), W("Right", 600, 11), W("hello", 5, 10),
                                 W("second", 5, 26), W("line", 52, 27)});
  ASSERT_EQ(page.lines.size(), 3u);
  EXPECT_EQ(page.lines[0].text, "hello world");
  EXPECT_EQ(page.lines[1].text, "second line");
  EXPECT_EQ(page.lines[2].text, "Right");
  EXPECT_EQ(page.blocks.size(), 2u);
  EXPECT_EQ(page.text, "hello world\nsecond line\nRight");
}

TEST(LayoutTest, FindRanksExactThenCaseInsensitiveThenFuzzy) {
  PageLayout page =
      BuildLayout({W("SAVE", 5, 10), W("Save", 5, 40), W("Sava", 5, 70), W("Cancel", 60, 40)});
  auto matches = Find(page, "Save", {});
  ASSERT_TRUE(matches.ok());
  ASSERT_EQ(matches->size(), 3u);
  EXPECT_EQ((*matches)[0].kind, MatchKind::kExact);
  EXPECT_EQ((*matches)[0].center_y, 46);
  EXPECT_EQ((*matches)[1].kind, MatchKind::kCaseInsensitive);
  EXPECT_EQ((*matches)[2].kind, MatchKind::kFuzzy);
  auto phrase = Find(page, "Save Cancel", {});
  ASSERT_TRUE(phrase.ok());
  ASSERT_FALSE(phrase->empty());
  EXPECT_EQ((*phrase)[0].box.x, 5);
  EXPECT_EQ((*phrase)[0].box.right(), 100);
}

TEST(LayoutTest, RegexAndErrors) {
  PageLayout page = BuildLayout({W("Total:", 5, 10), W("42.50", 60, 10)});
  FindOptions options;
  options.regex = true;
  auto matches = Find(page, "[0-9]+\\.[0-9]+", options);
  ASSERT_TRUE(matches.ok());
  ASSERT_EQ(matches->size(), 1u);
  EXPECT_EQ((*matches)[0].text, "42.50");
  EXPECT_EQ((*matches)[0].box.x, 60);
  EXPECT_FALSE(Find(page, "(", options).ok());
  EXPECT_FALSE(Find(page, "", {}).ok());
}

TEST(LayoutTest, RegionTextAndEditDistance) {
  PageLayout page = BuildLayout({W("in", 5, 10), W("out", 300, 10)});
  EXPECT_EQ(RegionText(page, {0, 0, 100, 100}), "in");
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
  EXPECT_EQ(EditDistance("", "abc"), 3);
}

}  // namespace
}  // namespace brainstem::perception
