#include "repository/semver.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace brainstem {
namespace {

SemVer V(std::string_view text) {
  Result<SemVer> v = ParseSemVer(text);
  EXPECT_TRUE(v.ok()) << text << ": " << v.status().ToString();
  return v.ok() ? *v : SemVer{};
}

TEST(SemVerTest, ParsesCoreAndPrereleaseAndBuild) {
  SemVer v = V("1.22.333-rc.1+build.7");
  EXPECT_EQ(v.major, 1);
  EXPECT_EQ(v.minor, 22);
  EXPECT_EQ(v.patch, 333);
  EXPECT_EQ(v.prerelease, (std::vector<std::string>{"rc", "1"}));
  EXPECT_EQ(v.build, "build.7");
  EXPECT_TRUE(v.is_prerelease());
  EXPECT_EQ(v.ToString(), "1.22.333-rc.1+build.7");
}

TEST(SemVerTest, LeadingVIsAccepted) {
  EXPECT_EQ(V("v0.1.0"), V("0.1.0"));
  EXPECT_EQ(V("v0.1.0").ToString(), "0.1.0");
  EXPECT_FALSE(V("v0.1.0").is_prerelease());
}

TEST(SemVerTest, RejectsMalformed) {
  for (std::string_view bad : {"", "v", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.x",
                               "1.2.3-", "1.2.3-a..b", "1.2.3-01", "1.2.3+", "1.2.3-a$b", "V1.2.3",
                               "-1.2.3", "1.2.3 ", "99999999999999999999.0.0"}) {
    Result<SemVer> v = ParseSemVer(bad);
    EXPECT_FALSE(v.ok()) << "'" << bad << "' was accepted";
    if (!v.ok()) {
      EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(v.status().message().find(std::string(bad)), std::string::npos)
          << v.status().message();
    }
  }
}

TEST(SemVerTest, PrecedenceFollowsSemverOrg) {
  // The example chain from semver.org rule 11, plus core-number ordering.
  const std::vector<std::string> ordered = {
      "0.9.9",      "1.0.0-0",      "1.0.0-alpha",   "1.0.0-alpha.1", "1.0.0-alpha.beta",
      "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",    "1.0.0",
      "1.0.1",      "1.2.0",        "1.10.0",        "2.0.0-alpha",   "2.0.0"};
  for (size_t i = 0; i + 1 < ordered.size(); ++i) {
    EXPECT_LT(V(ordered[i]), V(ordered[i + 1])) << ordered[i] << " < " << ordered[i + 1];
    EXPECT_GT(V(ordered[i + 1]), V(ordered[i])) << ordered[i + 1] << " > " << ordered[i];
  }
  // Sorting a shuffled copy reproduces the order.
  std::vector<SemVer> shuffled;
  for (const auto& s : ordered) shuffled.push_back(V(s));
  std::mt19937 rng(42);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  std::sort(shuffled.begin(), shuffled.end());
  for (size_t i = 0; i < ordered.size(); ++i) EXPECT_EQ(shuffled[i].ToString(), ordered[i]);
}

TEST(SemVerTest, NumericIdentifiersCompareAsNumbers) {
  EXPECT_LT(V("1.0.0-alpha.2"), V("1.0.0-alpha.10"));
  EXPECT_LT(V("1.0.0-9"), V("1.0.0-10"));
  // Numeric sorts below alphanumeric even when the ASCII order would say otherwise.
  EXPECT_LT(V("1.0.0-999"), V("1.0.0-a"));
  EXPECT_LT(V("1.0.0-999"), V("1.0.0-1a"));
}

TEST(SemVerTest, BuildMetadataIsIgnoredForOrdering) {
  EXPECT_EQ(V("1.0.0+a"), V("1.0.0+b"));
  EXPECT_EQ(V("1.0.0+a") <=> V("1.0.0"), std::strong_ordering::equal);
}

}  // namespace
}  // namespace brainstem
