// The named rendezvous's binary layout (docs/shm-protocol.md section 8): the lobby, a POSIX
// shared-memory object in /dev/shm where clients that cannot reach the server's socket (another
// container sharing only the IPC namespace) claim a slot, leave their hello and find the name of
// their region. Shared by the server transport and the client library, like shm_layout.h; the
// region itself is ABI 1 unchanged.
// Thread-safety: the structs live in memory shared with other processes. Every field a peer
// writes is untrusted: the server copies a claim's hello once and validates the copy, the client
// checks the welcome and the region name before it opens anything.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "transport/shm/shm_layout.h"

namespace brainstem::shm {

inline constexpr uint64_t kLobbyMagic = 0x3159424C42524E42ull;  // "BNRBLBY1" little-endian
inline constexpr uint32_t kLobbyClaimCount = 64;
inline constexpr uint64_t kLobbyHeaderSize = 4096;

// A claim's `state`. Only the transitions of section 8 are legal; the server treats anything
// else as a forged claim and refuses it.
enum class ClaimState : uint32_t {
  kFree = 0,
  kClaimed = 1,   // client: holds the claim's lock, writing its hello
  kHello = 2,     // client: hello written, waiting for the server
  kWelcome = 3,   // server: region created, welcome and region_name written
  kRefused = 4,   // server: welcome carries the refusal; the client lets go of the claim
  kAttached = 5,  // client: region mapped and checked; the server unlinks its name
  kLeaving = 6,   // client: done with the claim (set from ATTACHED or REFUSED, then unlocked)
};
inline constexpr uint32_t kClaimStateMax = 6;

struct LobbyHeader {
  uint64_t magic;
  uint32_t abi_version;  // the regions' ABI (kAbiVersion)
  uint32_t claim_count;
  uint64_t lobby_size;
  uint64_t generation;  // the server's; every region it creates carries the same value
  uint32_t claims_offset;
  uint32_t claim_stride;
  alignas(64) std::atomic<uint32_t> server_state;  // 1 serving (stored last), 2 closing
  alignas(64) std::atomic<uint32_t> doorbell;      // futex word: clients add 1 and FUTEX_WAKE
};
static_assert(sizeof(LobbyHeader) <= kLobbyHeaderSize);

inline constexpr size_t kRegionNameCapacity = 128;  // bytes, NUL included

struct LobbyClaim {
  alignas(64) std::atomic<uint32_t> state;  // ClaimState; the client's futex word
  uint32_t reserved;
  uint64_t nonce;
  HelloMessage hello;
  WelcomeMessage welcome;
  char region_name[kRegionNameCapacity];
};

inline constexpr uint64_t kLobbyClaimStride = AlignUp(sizeof(LobbyClaim));
inline constexpr uint64_t kLobbySize =
    (kLobbyHeaderSize + kLobbyClaimCount * kLobbyClaimStride + 4095) / 4096 * 4096;
static_assert(kLobbyClaimStride == 512 && kLobbySize == 36864, "docs/shm-protocol.md section 8");

// The byte of the lobby file whose OFD write lock the server holds for its lifetime.
inline constexpr uint64_t kLobbyServerLockByte = 0;
// The byte whose OFD write lock the owner of claim `i` holds for its session.
constexpr uint64_t ClaimLockByte(uint32_t i) { return kLobbyHeaderSize + i * kLobbyClaimStride; }

inline LobbyClaim* ClaimAt(void* lobby_base, uint32_t i) {
  return reinterpret_cast<LobbyClaim*>(static_cast<uint8_t*>(lobby_base) + ClaimLockByte(i));
}

// shm_open names (a leading '/', no other). `uid` is the server's effective uid, `name` its
// shm.name (1..64 of A-Z a-z 0-9 . _ -).
inline std::string LobbyShmName(uint32_t uid, const std::string& name) {
  return "/brainstem-" + std::to_string(uid) + "-" + name + ".lobby";
}
// Every region name of that lobby starts with this; the client refuses any other.
inline std::string RegionShmNamePrefix(uint32_t uid, const std::string& name) {
  return "/brainstem-" + std::to_string(uid) + "-" + name + ".";
}

}  // namespace brainstem::shm
