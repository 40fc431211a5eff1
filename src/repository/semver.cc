#include "repository/semver.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace brainstem {
namespace {

bool IsDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool IsIdentifierChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

// Splits on '.', keeping empty pieces so that "1..2" is reported as an empty identifier.
std::vector<std::string_view> SplitDots(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

Status Invalid(std::string_view text, std::string_view why) {
  return InvalidArgumentError("invalid semantic version '" + std::string(text) +
                              "': " + std::string(why));
}

// A numeric identifier per semver.org: digits only, no leading zero unless it is "0".
Result<int64_t> ParseNumber(std::string_view text, std::string_view part, std::string_view what) {
  if (!IsDigits(part)) {
    return Invalid(text, std::string(what) + " '" + std::string(part) + "' is not a number");
  }
  if (part.size() > 1 && part[0] == '0') {
    return Invalid(text, std::string(what) + " '" + std::string(part) + "' has a leading zero");
  }
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
  if (ec != std::errc() || ptr != part.data() + part.size()) {
    return Invalid(text, std::string(what) + " '" + std::string(part) + "' is too large");
  }
  return value;
}

// Precedence of two prerelease identifiers (semver.org rule 11.4): numeric ones compare as
// numbers and sort before alphanumeric ones, which compare in ASCII order.
std::strong_ordering CompareIdentifier(const std::string& a, const std::string& b) {
  const bool a_num = IsDigits(a);
  const bool b_num = IsDigits(b);
  if (a_num && b_num) {
    // Without leading zeros, a longer digit string is the larger number; this also avoids
    // overflow for identifiers longer than int64.
    if (a.size() != b.size()) return a.size() <=> b.size();
    return a.compare(b) <=> 0;
  }
  if (a_num != b_num) return a_num ? std::strong_ordering::less : std::strong_ordering::greater;
  return a.compare(b) <=> 0;
}

}  // namespace

std::string SemVer::ToString() const {
  std::string out =
      std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  for (size_t i = 0; i < prerelease.size(); ++i) {
    out += (i == 0 ? "-" : ".");
    out += prerelease[i];
  }
  if (!build.empty()) out += "+" + build;
  return out;
}

std::strong_ordering operator<=>(const SemVer& a, const SemVer& b) {
  if (auto c = a.major <=> b.major; c != 0) return c;
  if (auto c = a.minor <=> b.minor; c != 0) return c;
  if (auto c = a.patch <=> b.patch; c != 0) return c;
  // A release outranks every prerelease of the same MAJOR.MINOR.PATCH.
  if (a.prerelease.empty() != b.prerelease.empty()) {
    return a.prerelease.empty() ? std::strong_ordering::greater : std::strong_ordering::less;
  }
  const size_t n = std::min(a.prerelease.size(), b.prerelease.size());
  for (size_t i = 0; i < n; ++i) {
    if (auto c = CompareIdentifier(a.prerelease[i], b.prerelease[i]); c != 0) return c;
  }
  // All shared identifiers equal: the longer list is the later version.
  return a.prerelease.size() <=> b.prerelease.size();
}

Result<SemVer> ParseSemVer(std::string_view text) {
  std::string_view rest = text;
  if (!rest.empty() && rest[0] == 'v') rest.remove_prefix(1);
  if (rest.empty()) return Invalid(text, "empty");

  SemVer version;
  if (size_t plus = rest.find('+'); plus != std::string_view::npos) {
    std::string_view build = rest.substr(plus + 1);
    for (std::string_view id : SplitDots(build)) {
      if (id.empty()) return Invalid(text, "empty build identifier");
      for (char c : id) {
        if (!IsIdentifierChar(c)) return Invalid(text, "bad character in build metadata");
      }
    }
    version.build = std::string(build);
    rest = rest.substr(0, plus);
  }
  if (size_t dash = rest.find('-'); dash != std::string_view::npos) {
    std::string_view pre = rest.substr(dash + 1);
    for (std::string_view id : SplitDots(pre)) {
      if (id.empty()) return Invalid(text, "empty pre-release identifier");
      for (char c : id) {
        if (!IsIdentifierChar(c)) return Invalid(text, "bad character in pre-release");
      }
      if (IsDigits(id) && id.size() > 1 && id[0] == '0') {
        return Invalid(
            text, "numeric pre-release identifier '" + std::string(id) + "' has a leading zero");
      }
      version.prerelease.emplace_back(id);
    }
    rest = rest.substr(0, dash);
  }

  std::vector<std::string_view> core = SplitDots(rest);
  if (core.size() != 3) return Invalid(text, "expected MAJOR.MINOR.PATCH");
  auto major = ParseNumber(text, core[0], "major");
  if (!major.ok()) return major.status();
  auto minor = ParseNumber(text, core[1], "minor");
  if (!minor.ok()) return minor.status();
  auto patch = ParseNumber(text, core[2], "patch");
  if (!patch.ok()) return patch.status();
  version.major = *major;
  version.minor = *minor;
  version.patch = *patch;
  return version;
}

}  // namespace brainstem
