#include "perception/ocr_json.h"

#include <cstdio>

namespace brainstem::perception {
namespace {

void AppendInt(std::string* out, int64_t v) { out->append(std::to_string(v)); }

void AppendBox(std::string* out, const OcrBox& b) {
  out->push_back('[');
  AppendInt(out, b.x);
  out->push_back(',');
  AppendInt(out, b.y);
  out->push_back(',');
  AppendInt(out, b.w);
  out->push_back(',');
  AppendInt(out, b.h);
  out->push_back(']');
}

void AppendDouble(std::string* out, double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  out->append(buf);
}

void AppendCache(std::string* out, const OcrStats& s) {
  out->append("\"cache\":{\"hit\":");
  out->append(s.cache_hit ? "true" : "false");
  out->append(",\"full_read\":");
  out->append(s.full_read ? "true" : "false");
  out->append(",\"tiles\":" + std::to_string(s.tiles));
  out->append(",\"tiles_changed\":" + std::to_string(s.tiles_changed));
  out->append(",\"regions\":" + std::to_string(s.regions));
  out->append(",\"pieces\":" + std::to_string(s.pieces));
  out->append(",\"pieces_remembered\":" + std::to_string(s.pieces_remembered));
  out->append(",\"pixels_read\":" + std::to_string(s.pixels_read));
  out->append(",\"words_rechecked\":" + std::to_string(s.words_rechecked));
  out->append(",\"words_corrected\":" + std::to_string(s.words_corrected));
  out->append("},\"timing_ms\":{\"hash\":");
  AppendDouble(out, s.hash_ms, 3);
  out->append(",\"prepare\":");
  AppendDouble(out, s.prepare_ms, 3);
  out->append(",\"ocr\":");
  AppendDouble(out, s.ocr_ms, 3);
  out->append(",\"total\":");
  AppendDouble(out, s.total_ms, 3);
  out->append("}");
}

// Length of the longest prefix of `s` of at most `n` bytes that ends on a UTF-8 boundary.
size_t Utf8Prefix(std::string_view s, size_t n) {
  if (n >= s.size()) return s.size();
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

void AppendMatch(std::string* out, const FindMatch& m) {
  out->append("{\"text\":");
  AppendJsonString(out, m.text);
  out->append(",\"box\":");
  AppendBox(out, m.box);
  out->append(",\"center\":[");
  AppendInt(out, m.center_x);
  out->push_back(',');
  AppendInt(out, m.center_y);
  out->append("],\"score\":");
  AppendDouble(out, m.score, 3);
  out->append(",\"kind\":\"");
  out->append(MatchKindName(m.kind));
  out->append("\"}");
}

}  // namespace

std::string PageJson(const OcrOutcome& outcome, bool words) {
  const PageLayout& page = *outcome.page;
  std::string out = "{\"width\":";
  AppendInt(&out, outcome.width);
  out.append(",\"height\":");
  AppendInt(&out, outcome.height);
  out.append(",\"text\":");
  AppendJsonString(&out, page.text);
  out.append(",\"blocks\":[");
  for (size_t b = 0; b < page.blocks.size(); ++b) {
    if (b) out.push_back(',');
    out.append("{\"box\":");
    AppendBox(&out, page.blocks[b].box);
    out.append(",\"lines\":[");
    for (size_t i = 0; i < page.blocks[b].lines.size(); ++i) {
      const TextLine& line = page.lines[static_cast<size_t>(page.blocks[b].lines[i])];
      if (i) out.push_back(',');
      out.append("{\"box\":");
      AppendBox(&out, line.box);
      out.append(",\"text\":");
      AppendJsonString(&out, line.text);
      if (words) {
        out.append(",\"words\":[");
        for (size_t w = 0; w < line.words.size(); ++w) {
          const OcrWord& word = page.words[static_cast<size_t>(line.words[w])];
          if (w) out.push_back(',');
          out.append("{\"text\":");
          AppendJsonString(&out, word.text);
          out.append(",\"box\":");
          AppendBox(&out, word.box);
          out.append(",\"confidence\":");
          AppendDouble(&out, word.confidence, 1);
          out.push_back('}');
        }
        out.push_back(']');
      }
      out.push_back('}');
    }
    out.append("]}");
  }
  out.append("],");
  AppendCache(&out, outcome.stats);
  out.push_back('}');
  return out;
}

std::string FindJson(const OcrOutcome& outcome, std::string_view query, bool regex,
                     const std::vector<FindMatch>& matches) {
  std::string out = "{\"query\":";
  AppendJsonString(&out, query);
  out.append(",\"regex\":");
  out.append(regex ? "true" : "false");
  out.append(",\"matches\":[");
  for (size_t i = 0; i < matches.size(); ++i) {
    if (i) out.push_back(',');
    AppendMatch(&out, matches[i]);
  }
  out.append("],");
  AppendCache(&out, outcome.stats);
  out.push_back('}');
  return out;
}

std::string RegionJson(const OcrOutcome& outcome, const OcrBox& region, std::string_view text) {
  std::string out = "{\"region\":";
  AppendBox(&out, region);
  out.append(",\"text\":");
  AppendJsonString(&out, text);
  out.push_back(',');
  AppendCache(&out, outcome.stats);
  out.push_back('}');
  return out;
}

namespace {

std::string CompactHead(const OcrOutcome& outcome) {
  const OcrStats& s = outcome.stats;
  std::string out = "{\"width\":";
  AppendInt(&out, outcome.width);
  out.append(",\"height\":");
  AppendInt(&out, outcome.height);
  out.append(",\"cache_hit\":");
  out.append(s.cache_hit ? "true" : "false");
  out.append(",\"tiles_changed\":");
  AppendInt(&out, s.tiles_changed);
  out.append(",\"pieces\":");
  AppendInt(&out, s.pieces);
  out.append(",\"ms\":");
  AppendDouble(&out, s.total_ms, 3);
  return out;
}

}  // namespace

std::string CompactTextJson(const OcrOutcome& outcome, std::string_view text, size_t budget) {
  const std::string head = CompactHead(outcome);
  std::string out = head + ",\"truncated\":false,\"text\":";
  AppendJsonString(&out, text);
  out.push_back('}');
  if (out.size() <= budget) return out;
  // Binary search the longest text prefix whose escaped form fits.
  size_t lo = 0, hi = text.size();
  std::string best;
  while (lo <= hi) {
    const size_t mid = Utf8Prefix(text, lo + (hi - lo) / 2);
    std::string candidate =
        head + ",\"truncated\":true,\"text_bytes\":" + std::to_string(text.size()) + ",\"text\":";
    AppendJsonString(&candidate, text.substr(0, mid));
    candidate.push_back('}');
    if (candidate.size() <= budget) {
      best = std::move(candidate);
      lo = mid + 1;
    } else {
      if (mid == 0) break;
      hi = mid - 1;
    }
  }
  return best;
}

std::string CompactFindJson(const OcrOutcome& outcome, const std::vector<FindMatch>& matches,
                            size_t budget) {
  const std::string head = CompactHead(outcome);
  for (size_t n = matches.size() + 1; n-- > 0;) {
    std::string out = head + ",\"truncated\":" + (n < matches.size() ? "true" : "false") +
                      ",\"match_count\":" + std::to_string(matches.size()) + ",\"matches\":[";
    for (size_t i = 0; i < n; ++i) {
      if (i) out.push_back(',');
      AppendMatch(&out, matches[i]);
    }
    out.append("]}");
    if (out.size() <= budget) return out;
  }
  return "{\"truncated\":true}";
}

}  // namespace brainstem::perception
