// Small helpers that append JSON tokens to a std::string: strings with escaping, and numbers
// in their shortest round-trip form (std::to_chars). Responses are built by appending, with
// no DOM and no allocation beyond the output string's growth.
// Thread-safe: free functions.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>

namespace brainstem {

inline void AppendJsonString(std::string* out, std::string_view text) {
  out->push_back('"');
  for (char c : text) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          out->append(buf);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

// The shortest text that reads back as the same value of its type (a float is written as the
// float, not as its double widening). Non-finite numbers have no JSON form: written as null.
template <typename Number>
requires(std::is_arithmetic_v<Number> &&
         !std::is_same_v<Number, bool>) void AppendJsonNumber(std::string* out, Number value) {
  if constexpr (std::is_floating_point_v<Number>) {
    if (!std::isfinite(value)) {
      out->append("null");
      return;
    }
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, static_cast<size_t>(end - buf));
}

// Appends {"key":"value",...} for a map of strings (in the map's order).
template <typename StringMap>
void AppendJsonStringMap(std::string* out, const StringMap& map) {
  out->push_back('{');
  bool first = true;
  for (const auto& [key, value] : map) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, key);
    out->push_back(':');
    AppendJsonString(out, value);
  }
  out->push_back('}');
}

}  // namespace brainstem
