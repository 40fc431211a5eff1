#include "perception/layout.h"

#include <algorithm>
#include <cctype>
#include <numeric>
#include <regex>

namespace brainstem::perception {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int VerticalOverlap(const OcrBox& a, const OcrBox& b) {
  return std::min(a.bottom(), b.bottom()) - std::max(a.y, b.y);
}

int HorizontalOverlap(const OcrBox& a, const OcrBox& b) {
  return std::min(a.right(), b.right()) - std::max(a.x, b.x);
}

}  // namespace

OcrBox Union(const OcrBox& a, const OcrBox& b) {
  if (a.w <= 0 || a.h <= 0) return b;
  if (b.w <= 0 || b.h <= 0) return a;
  const int x0 = std::min(a.x, b.x);
  const int y0 = std::min(a.y, b.y);
  return {x0, y0, std::max(a.right(), b.right()) - x0, std::max(a.bottom(), b.bottom()) - y0};
}

bool Intersects(const OcrBox& a, const OcrBox& b) {
  return a.x < b.right() && b.x < a.right() && a.y < b.bottom() && b.y < a.bottom();
}

OcrBox Inflate(const OcrBox& box, int margin, int max_width, int max_height) {
  const int x0 = std::max(0, box.x - margin);
  const int y0 = std::max(0, box.y - margin);
  const int x1 = std::min(max_width, box.right() + margin);
  const int y1 = std::min(max_height, box.bottom() + margin);
  return {x0, y0, std::max(0, x1 - x0), std::max(0, y1 - y0)};
}

PageLayout BuildLayout(std::vector<OcrWord> words) {
  PageLayout page;
  page.words = std::move(words);
  std::vector<int> order(page.words.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return page.words[a].box.x < page.words[b].box.x; });
  // Lines: left to right, a word joins the line it overlaps vertically by half its height and
  // follows closely (a gap under ~2.5 line heights: beyond that it is another column).
  std::vector<TextLine> lines;
  for (int index : order) {
    const OcrBox& box = page.words[index].box;
    int best = -1;
    int best_gap = 0;
    for (size_t l = 0; l < lines.size(); ++l) {
      const OcrBox& line = lines[l].box;
      const int min_h = std::min(box.h, line.h);
      if (VerticalOverlap(box, line) * 2 < min_h) continue;
      const int gap = box.x - line.right();
      const int limit = std::max(line.h, box.h) * 5 / 2 + 4;
      if (gap > limit || gap < -std::max(line.h, box.h)) continue;
      if (best < 0 || gap < best_gap) {
        best = static_cast<int>(l);
        best_gap = gap;
      }
    }
    if (best < 0) {
      lines.push_back(TextLine{box, {index}, {}});
    } else {
      lines[best].box = Union(lines[best].box, box);
      lines[best].words.push_back(index);
    }
  }
  // Blocks: stacked lines, top to bottom, with a gap under ~1.2 line heights and overlapping
  // columns.
  std::sort(lines.begin(), lines.end(), [](const TextLine& a, const TextLine& b) {
    return a.box.y != b.box.y ? a.box.y < b.box.y : a.box.x < b.box.x;
  });
  std::vector<TextBlock> blocks;
  std::vector<int> last_line;  // per block: its bottom line
  for (size_t l = 0; l < lines.size(); ++l) {
    const OcrBox& box = lines[l].box;
    int chosen = -1;
    for (size_t b = 0; b < blocks.size(); ++b) {
      const OcrBox& prev = lines[static_cast<size_t>(last_line[b])].box;
      const int gap = box.y - prev.bottom();
      if (gap < -box.h / 2 || gap > std::max(box.h, prev.h) * 6 / 5 + 2) continue;
      if (HorizontalOverlap(box, prev) <= 0 && std::abs(box.x - prev.x) > 2 * box.h) continue;
      chosen = static_cast<int>(b);
      break;
    }
    if (chosen < 0) {
      blocks.push_back(TextBlock{box, {static_cast<int>(l)}});
      last_line.push_back(static_cast<int>(l));
    } else {
      blocks[chosen].box = Union(blocks[chosen].box, box);
      blocks[chosen].lines.push_back(static_cast<int>(l));
      last_line[chosen] = static_cast<int>(l);
    }
  }
  std::vector<int> block_order(blocks.size());
  std::iota(block_order.begin(), block_order.end(), 0);
  std::sort(block_order.begin(), block_order.end(), [&](int a, int b) {
    const OcrBox& x = blocks[a].box;
    const OcrBox& y = blocks[b].box;
    // Blocks side by side (overlapping rows) read left to right; otherwise top to bottom.
    if (VerticalOverlap(x, y) > 0 && HorizontalOverlap(x, y) <= 0) return x.x < y.x;
    return x.y != y.y ? x.y < y.y : x.x < y.x;
  });
  // Renumber lines in reading order and build the texts.
  for (int b : block_order) {
    TextBlock block = blocks[b];
    std::vector<int> renumbered;
    for (int l : block.lines) {
      TextLine line = lines[static_cast<size_t>(l)];
      std::sort(line.words.begin(), line.words.end(),
                [&](int a, int c) { return page.words[a].box.x < page.words[c].box.x; });
      for (size_t i = 0; i < line.words.size(); ++i) {
        if (i) line.text.push_back(' ');
        line.text += page.words[line.words[i]].text;
      }
      if (!page.text.empty()) page.text.push_back('\n');
      page.text += line.text;
      renumbered.push_back(static_cast<int>(page.lines.size()));
      page.lines.push_back(std::move(line));
    }
    block.lines = std::move(renumbered);
    page.blocks.push_back(std::move(block));
  }
  return page;
}

const char* MatchKindName(MatchKind kind) {
  switch (kind) {
    case MatchKind::kExact:
      return "exact";
    case MatchKind::kSubstring:
      return "substring";
    case MatchKind::kCaseInsensitive:
      return "case_insensitive";
    case MatchKind::kFuzzy:
      return "fuzzy";
    case MatchKind::kRegex:
      return "regex";
  }
  return "unknown";
}

int EditDistance(std::string_view a, std::string_view b) {
  std::vector<int> row(b.size() + 1);
  std::iota(row.begin(), row.end(), 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    int diagonal = row[0];
    row[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

namespace {

// The box of characters [begin, end) of `line`'s text: whole words, narrowed in proportion
// to the characters when the match lies inside a single word.
OcrBox SpanBox(const PageLayout& page, const TextLine& line, size_t begin, size_t end) {
  OcrBox box{};
  size_t pos = 0;
  for (int index : line.words) {
    const OcrWord& word = page.words[static_cast<size_t>(index)];
    const size_t word_begin = pos;
    const size_t word_end = pos + word.text.size();
    pos = word_end + 1;
    if (word_end <= begin || word_begin >= end) continue;
    OcrBox part = word.box;
    if (!word.text.empty() && (begin > word_begin || end < word_end)) {
      const double per_char = static_cast<double>(word.box.w) / word.text.size();
      const size_t from = std::max(begin, word_begin) - word_begin;
      const size_t to = std::min(end, word_end) - word_begin;
      part.x = word.box.x + static_cast<int>(from * per_char);
      part.w = std::max(1, static_cast<int>((to - from) * per_char + 0.5));
    }
    box = Union(box, part);
  }
  return box;
}

int CountWords(std::string_view s) {
  int n = 0;
  bool in_word = false;
  for (char c : s) {
    const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

}  // namespace

Result<std::vector<FindMatch>> Find(const PageLayout& page, std::string_view query,
                                    const FindOptions& options) {
  if (query.empty()) return InvalidArgumentError("query: empty (give a string or a regex)");
  struct Candidate {
    FindMatch match;
    size_t order;
  };
  std::vector<Candidate> found;
  auto add = [&](const TextLine& line, size_t begin, size_t end, double score, MatchKind kind,
                 size_t order) {
    FindMatch m;
    m.text = line.text.substr(begin, end - begin);
    m.box = SpanBox(page, line, begin, end);
    m.center_x = m.box.x + m.box.w / 2;
    m.center_y = m.box.y + m.box.h / 2;
    m.score = score;
    m.kind = kind;
    found.push_back({std::move(m), order});
  };
  if (options.regex) {
    std::regex re;
    try {
      re = std::regex(std::string(query), std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return InvalidArgumentError("query: not a valid regular expression (" +
                                  std::string(e.what()) + ")");
    }
    for (size_t l = 0; l < page.lines.size(); ++l) {
      const std::string& text = page.lines[l].text;
      for (auto it = std::sregex_iterator(text.begin(), text.end(), re);
           it != std::sregex_iterator(); ++it) {
        if (it->length() == 0) continue;
        const size_t begin = static_cast<size_t>(it->position());
        add(page.lines[l], begin, begin + static_cast<size_t>(it->length()), 1.0, MatchKind::kRegex,
            l);
      }
    }
  } else {
    const std::string lower_query = Lower(query);
    const int query_words = std::max(1, CountWords(query));
    for (size_t l = 0; l < page.lines.size(); ++l) {
      const TextLine& line = page.lines[l];
      const std::string lower_line = Lower(line.text);
      // Word-aligned spans of the query's word count: exact, case-insensitive or fuzzy.
      std::vector<size_t> starts;
      size_t pos = 0;
      for (int index : line.words) {
        starts.push_back(pos);
        pos += page.words[static_cast<size_t>(index)].text.size() + 1;
      }
      std::vector<bool> covered(line.text.size() + 1, false);
      for (size_t i = 0; i + static_cast<size_t>(query_words) <= starts.size(); ++i) {
        const size_t begin = starts[i];
        const size_t end =
            (i + query_words < starts.size() ? starts[i + query_words] - 1 : line.text.size());
        const std::string_view span(line.text.data() + begin, end - begin);
        if (span == query) {
          add(line, begin, end, 1.0, MatchKind::kExact, l);
          covered[begin] = true;
          continue;
        }
        const std::string lower_span = Lower(span);
        if (lower_span == lower_query) {
          add(line, begin, end, 0.9, MatchKind::kCaseInsensitive, l);
          covered[begin] = true;
          continue;
        }
        // Substrings are reported below; a fuzzy match must not shadow them.
        if (lower_span.find(lower_query) != std::string::npos) continue;
        const int distance = EditDistance(lower_span, lower_query);
        const int allowed = std::max(1, static_cast<int>(lower_query.size()) / 4);
        if (distance <= allowed) {
          add(line, begin, end,
              0.8 * (1.0 - static_cast<double>(distance) / (lower_query.size() + 1)),
              MatchKind::kFuzzy, l);
        }
      }
      // Substrings inside longer words ("Save" in "Save:"), case-sensitive first.
      for (size_t at = line.text.find(query); at != std::string::npos;
           at = line.text.find(query, at + 1)) {
        if (!covered[at]) add(line, at, at + query.size(), 0.95, MatchKind::kSubstring, l);
        covered[at] = true;
      }
      for (size_t at = lower_line.find(lower_query); at != std::string::npos;
           at = lower_line.find(lower_query, at + 1)) {
        if (!covered[at]) add(line, at, at + query.size(), 0.85, MatchKind::kCaseInsensitive, l);
        covered[at] = true;
      }
    }
  }
  std::stable_sort(found.begin(), found.end(), [](const Candidate& a, const Candidate& b) {
    return a.match.score != b.match.score ? a.match.score > b.match.score : a.order < b.order;
  });
  std::vector<FindMatch> out;
  for (auto& c : found) {
    if (static_cast<int>(out.size()) >= options.max_results) break;
    out.push_back(std::move(c.match));
  }
  return out;
}

std::string RegionText(const PageLayout& page, const OcrBox& rect) {
  std::string out;
  for (const TextLine& line : page.lines) {
    std::string text;
    for (int index : line.words) {
      const OcrWord& word = page.words[static_cast<size_t>(index)];
      const int cx = word.box.x + word.box.w / 2;
      const int cy = word.box.y + word.box.h / 2;
      if (cx < rect.x || cx >= rect.right() || cy < rect.y || cy >= rect.bottom()) continue;
      if (!text.empty()) text.push_back(' ');
      text += word.text;
    }
    if (text.empty()) continue;
    if (!out.empty()) out.push_back('\n');
    out += text;
  }
  return out;
}

}  // namespace brainstem::perception
