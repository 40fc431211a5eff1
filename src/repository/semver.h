// SemVer: a parsed semantic version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]) ordered by the
// semver.org precedence rules; build metadata is kept but ignored for ordering.
// Thread-compatible value type.
#pragma once

#include <compare>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace brainstem {

struct SemVer {
  int64_t major = 0;
  int64_t minor = 0;
  int64_t patch = 0;
  std::vector<std::string> prerelease;  // dot-separated identifiers, empty for a release
  std::string build;

  bool is_prerelease() const { return !prerelease.empty(); }
  std::string ToString() const;  // without a leading "v"

  friend std::strong_ordering operator<=>(const SemVer& a, const SemVer& b);
  friend bool operator==(const SemVer& a, const SemVer& b) { return (a <=> b) == 0; }
};

// Accepts an optional leading "v" ("v1.2.3" and "1.2.3" are the same version).
// Errors: kInvalidArgument naming the text and what is wrong.
Result<SemVer> ParseSemVer(std::string_view text);

}  // namespace brainstem
