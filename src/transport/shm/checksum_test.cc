#include "transport/shm/checksum.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace brainstem::shm {
namespace {

uint64_t Of(ChecksumKind kind, const std::string& text) {
  return Checksum(kind, text.data(), text.size());
}

TEST(ChecksumTest, KnownVectors) {
  EXPECT_EQ(Of(ChecksumKind::kXxh3, ""), 0x2D06800538D394C2ull);
  EXPECT_EQ(Of(ChecksumKind::kCrc32c, "123456789"), 0xE3069283ull);
  EXPECT_EQ(Of(ChecksumKind::kCrc32c, ""), 0u);
  // RFC 3720 (iSCSI) appendix B.4: 32 bytes of zeros and 32 bytes of 0xFF.
  EXPECT_EQ(Of(ChecksumKind::kCrc32c, std::string(32, '\0')), 0x8A9136AAull);
  EXPECT_EQ(Of(ChecksumKind::kCrc32c, std::string(32, '\xFF')), 0x62A8AB43ull);
  // SHA-256("abc") = ba7816bf 8f01cfea ...; the first 8 bytes read little-endian.
  EXPECT_EQ(Of(ChecksumKind::kSha256, "abc"), 0xEACF018FBF1678BAull);
  EXPECT_EQ(Of(ChecksumKind::kNone, "abc"), 0u);
}

TEST(ChecksumTest, PathsAgreeOnEveryLengthAndAlignment) {
  std::mt19937 rng(42);
  std::vector<unsigned char> data(70000);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  for (size_t offset : {0, 1, 3, 7}) {
    for (size_t size : {0, 1, 7, 8, 9, 15, 16, 63, 64, 255, 256, 257, 1000, 4096, 65536}) {
      const unsigned char* p = data.data() + offset;
      EXPECT_EQ(internal::Xxh3Inline(p, size), internal::Xxh3Dispatch(p, size)) << size;
      EXPECT_EQ(Checksum(ChecksumKind::kXxh3, p, size), internal::Xxh3Inline(p, size)) << size;
      if (internal::Crc32cHardwareAvailable()) {
        EXPECT_EQ(internal::Crc32cHardware(p, size), internal::Crc32cTable(p, size)) << size;
      }
      EXPECT_EQ(Checksum(ChecksumKind::kCrc32c, p, size), internal::Crc32cTable(p, size));
    }
  }
}

TEST(ChecksumTest, EveryKindSeesAOneBitChange) {
  std::vector<unsigned char> data(8192, 0x5A);
  for (ChecksumKind kind : {ChecksumKind::kXxh3, ChecksumKind::kCrc32c, ChecksumKind::kSha256}) {
    const uint64_t before = Checksum(kind, data.data(), data.size());
    data[4000] ^= 0x10;
    EXPECT_NE(Checksum(kind, data.data(), data.size()), before) << ChecksumKindName(kind);
    data[4000] ^= 0x10;
    EXPECT_EQ(Checksum(kind, data.data(), data.size()), before) << ChecksumKindName(kind);
  }
}

TEST(ChecksumTest, NamesRoundTrip) {
  for (ChecksumKind kind :
       {ChecksumKind::kNone, ChecksumKind::kXxh3, ChecksumKind::kCrc32c, ChecksumKind::kSha256}) {
    auto parsed = ParseChecksumKind(ChecksumKindName(kind));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_FALSE(ParseChecksumKind("md5").has_value());
  EXPECT_EQ(ChecksumKindName(static_cast<ChecksumKind>(9)), "unknown");
}

}  // namespace
}  // namespace brainstem::shm
