#include "brainstem/checksum.h"

#include <openssl/evp.h>
#include <xxhash.h>

#include <array>
#include <cstring>

namespace brainstem::client {
namespace {

// Slicing-by-8 tables: table[0] is the classic byte table, table[k] advances a byte k places.
struct Crc32cTables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr Crc32cTables() {
    constexpr uint32_t kReflectedPoly = 0x82F63B78u;
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t crc = i;
      for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? kReflectedPoly : 0u);
      t[0][i] = crc;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (size_t k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
    }
  }
};
constexpr Crc32cTables kTables;

}  // namespace

uint32_t Crc32c(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t crc = 0xFFFFFFFFu;
  const auto& t = kTables.t;
  while (size >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);  // little-endian host (x86-64, aarch64): low byte first
    word ^= crc;
    crc = t[7][word & 0xFF] ^ t[6][(word >> 8) & 0xFF] ^ t[5][(word >> 16) & 0xFF] ^
          t[4][(word >> 24) & 0xFF] ^ t[3][(word >> 32) & 0xFF] ^ t[2][(word >> 40) & 0xFF] ^
          t[1][(word >> 48) & 0xFF] ^ t[0][word >> 56];
    p += 8;
    size -= 8;
  }
  while (size-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFF];
  return crc ^ 0xFFFFFFFFu;
}

uint64_t PayloadChecksum(shm::ChecksumKind kind, const void* data, size_t size) {
  switch (kind) {
    case shm::ChecksumKind::kNone:
      return 0;
    case shm::ChecksumKind::kXxh3:
      return XXH3_64bits(data, size);
    case shm::ChecksumKind::kCrc32c:
      return Crc32c(data, size);
    case shm::ChecksumKind::kSha256: {
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int length = 0;
      if (EVP_Digest(data, size, digest, &length, EVP_sha256(), nullptr) != 1 || length < 8) {
        return 0;  // the server's check then fails: a clean CHECKSUM_MISMATCH, never a crash
      }
      uint64_t value;
      std::memcpy(&value, digest, 8);
      return value;
    }
    default:
      return 0;  // a kind this client does not know; the server refuses such a region
  }
}

}  // namespace brainstem::client
