// Payload checksums of the shm protocol (docs/shm-protocol.md, "checksum"): xxh3-64 (libxxhash),
// crc32c (Castagnoli, implemented here with a slicing table) and sha256 (OpenSSL; the first 8
// digest bytes read as a little-endian u64). The value a client stores in a slot.
// Thread-safe: pure functions over immutable tables.
#pragma once

#include <cstddef>
#include <cstdint>

#include "transport/shm/shm_layout.h"

namespace brainstem::client {

// CRC-32C (polynomial 0x1EDC6F41, reflected, init and final xor 0xFFFFFFFF).
// Check value: Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(const void* data, size_t size);

// The checksum of `size` bytes at `data` for a region whose checksum_kind is `kind`; 0 for
// kNone and for unknown kinds.
uint64_t PayloadChecksum(shm::ChecksumKind kind, const void* data, size_t size);

}  // namespace brainstem::client
