// The client's side of the named rendezvous (docs/shm-protocol.md section 8): for a server that
// shares /dev/shm with this process (ipc: host) but whose socket this process cannot reach.
// Opens the lobby /dev/shm/brainstem-<uid>-<name>.lobby after checking owner, mode and size,
// claims a slot under an OFD lock (the session's life line: the server sees the lock vanish when
// this process dies), leaves the hello, waits for the welcome and opens the region whose name the
// server wrote, after checking that name and the file. Everything read from the lobby is checked
// before use.
// Thread-compatible: a LobbyAttachment belongs to one session; LobbyServerGone and RingLobby may
// be called from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "transport/shm/lobby_layout.h"

namespace brainstem::client {

// A claim in a lobby. Move-only; closing it (destructor) releases the claim's lock, which ends
// the session as far as the server is concerned.
struct LobbyAttachment {
  LobbyAttachment() = default;
  LobbyAttachment(LobbyAttachment&& other) noexcept;
  LobbyAttachment& operator=(LobbyAttachment&& other) noexcept;
  LobbyAttachment(const LobbyAttachment&) = delete;
  LobbyAttachment& operator=(const LobbyAttachment&) = delete;
  ~LobbyAttachment();

  int lobby_fd = -1;                  // its OFD holds the claim's lock
  shm::LobbyHeader* lobby = nullptr;  // mapping of kLobbySize bytes
  uint32_t claim = 0;
  bool claimed = false;           // `claim` is this client's (its lock is held)
  int region_fd = -1;             // opened by name; the name is unlinked once attached
  shm::WelcomeMessage welcome{};  // status != 0: refused (no region_fd)
};

// Claims a slot of lobby `name` (shm.name of the server), sends `hello` and waits up to
// `timeout_ms` for the answer. A refusal is not an error: welcome.status says why. Errors:
// kUnavailable (no lobby, a stale lobby of a dead server, the lobby is full or closing, no answer
// in time), kFailedPrecondition (a lobby or region that fails the owner, mode, size or format
// checks, or that this uid may not open).
Result<LobbyAttachment> ClaimThroughLobby(const std::string& name, const shm::HelloMessage& hello,
                                          int timeout_ms);

// Tells the server that the region is mapped and checked (ATTACHED), so it removes the region's
// name and starts polling it.
void MarkAttached(const LobbyAttachment& attachment);

// Whether the lobby's server is gone: its lock on byte 0 is free or it said it is closing.
bool LobbyServerGone(int lobby_fd, const shm::LobbyHeader* lobby);

// Wakes the server through the lobby's doorbell (its waker thread writes the server's eventfd).
void RingLobby(shm::LobbyHeader* lobby);

}  // namespace brainstem::client
