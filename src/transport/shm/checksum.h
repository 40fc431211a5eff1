// Payload checksums of the shared-memory protocol (docs/shm-protocol.md): xxh3-64 (the fast
// default), CRC-32C (hardware instruction where the CPU has it) and SHA-256 (first 8 bytes of
// the digest, for those who must use a cryptographic hash). The client computes one over the
// bytes it wrote, the server recomputes it over the same bytes in place, with no copy.
// Thread-safe: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "transport/shm/shm_layout.h"

namespace brainstem::shm {

// The checksum of `size` bytes at `data` by `kind`; 0 for kNone. For kCrc32c the 32-bit CRC
// is zero-extended; for kSha256 the first 8 digest bytes read as a little-endian integer.
// REQUIRES: `kind` is one of the four known kinds (callers validate peer values first).
uint64_t Checksum(ChecksumKind kind, const void* data, size_t size);

// "none", "xxh3", "crc32c", "sha256"; "unknown" for anything else.
std::string_view ChecksumKindName(ChecksumKind kind);
// The inverse of ChecksumKindName; nullopt for an unknown name.
std::optional<ChecksumKind> ParseChecksumKind(std::string_view name);

namespace internal {
// Both CRC-32C paths, exposed so the test can check that they agree. Crc32cHardware
// REQUIRES: Crc32cHardwareAvailable().
uint32_t Crc32cTable(const void* data, size_t size);
uint32_t Crc32cHardware(const void* data, size_t size);
bool Crc32cHardwareAvailable();
// xxh3 through the shared library's runtime-dispatched (AVX2/AVX-512) entry point.
uint64_t Xxh3Dispatch(const void* data, size_t size);
// xxh3 compiled inline into this file (the build's baseline ISA, SSE2 without -march).
uint64_t Xxh3Inline(const void* data, size_t size);
}  // namespace internal

}  // namespace brainstem::shm
