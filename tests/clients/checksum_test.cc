#include "brainstem/checksum.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <string>
#include <vector>

namespace brainstem::client {
namespace {

TEST(Crc32c, CheckValue) { EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u); }

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(Crc32c("", 0), 0u);
  // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of 0xFF, and an ascending sequence.
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xFF), ascending(32);
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(ascending.data(), ascending.size()), 0x46DD794Eu);
}

TEST(Crc32c, SlicedPathMatchesBytewiseForEveryLengthAndOffset) {
  std::string text;
  for (int i = 0; i < 200; ++i) text.push_back(static_cast<char>((i * 37) ^ (i >> 3)));
  // Reference: plain bitwise CRC-32C.
  auto reference = [](const uint8_t* p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) {
      crc ^= p[i];
      for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
    }
    return crc ^ 0xFFFFFFFFu;
  };
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t n = 0; n + offset <= text.size(); n += 7) {
      ASSERT_EQ(Crc32c(bytes + offset, n), reference(bytes + offset, n)) << offset << " " << n;
    }
  }
}

TEST(PayloadChecksum, Kinds) {
  const std::string data = "brainstem";
  EXPECT_EQ(PayloadChecksum(shm::ChecksumKind::kNone, data.data(), data.size()), 0u);
  EXPECT_EQ(PayloadChecksum(shm::ChecksumKind::kXxh3, data.data(), data.size()),
            XXH3_64bits(data.data(), data.size()));
  EXPECT_EQ(PayloadChecksum(shm::ChecksumKind::kCrc32c, "123456789", 9), 0xE3069283u);
  // sha256("abc") = ba7816bf 8f01cfea ...; the first 8 bytes read little-endian.
  EXPECT_EQ(PayloadChecksum(shm::ChecksumKind::kSha256, "abc", 3), 0xeacf018fbf1678baull);
  // A flipped bit changes every kind's value.
  std::string flipped = data;
  flipped[3] ^= 1;
  for (auto kind :
       {shm::ChecksumKind::kXxh3, shm::ChecksumKind::kCrc32c, shm::ChecksumKind::kSha256}) {
    EXPECT_NE(PayloadChecksum(kind, data.data(), data.size()),
              PayloadChecksum(kind, flipped.data(), flipped.size()));
  }
}

}  // namespace
}  // namespace brainstem::client
