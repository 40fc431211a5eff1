// Lobby: the server's side of the named rendezvous (docs/shm-protocol.md section 8), for clients
// that share /dev/shm with the server (ipc: host) but not its socket directory. It publishes
// /dev/shm/brainstem-<uid>-<name>.lobby (0600, holding an OFD lock on byte 0 while it lives),
// replaces a stale lobby of a dead server and refuses a live one, and runs the claim state
// machine: each claim's hello goes to the server's admission function (the same checks as a
// socket hello), an accepted one gets a named region and a welcome, an attached one becomes a
// session whose liveness is its owner's OFD lock on the claim. Everything read from the lobby is
// peer data: the server acts on its own table of claims, the state words only prompt it, and a
// bad claim is refused without touching any other.
// Thread-compatible: used by the one shm thread; doorbell() is also read by the waker thread.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "transport/shm/lobby_layout.h"
#include "transport/shm/region.h"

namespace brainstem::shm {

// The outcome of a hello, for either rendezvous: a region, or a refusal (status and message).
struct Admission {
  std::unique_ptr<Region> region;  // set when accepted
  ShmStatus status = ShmStatus::kOk;
  std::string message;
};

class Lobby {
 public:
  // Validates `hello` (a copy, already out of shared memory) and creates the region under
  // `region_name` (a named region), or refuses.
  using AdmitFn =
      std::function<Admission(const HelloMessage& hello, const std::string& region_name)>;

  struct Attached {
    uint32_t claim = 0;
    std::unique_ptr<Region> region;  // its name already unlinked
  };
  struct ScanResult {
    std::vector<Attached> attached;  // new sessions
    std::vector<uint32_t> departed;  // claims of sessions whose client let go (died or closed)
  };

  // Publishes the lobby for shm.name `name` (LobbyShmName(uid, name)). A lobby already there is
  // replaced when its server's lock is free (the server died; region names it left behind are
  // removed too). `step_timeout_ms` bounds each client step of the handshake.
  // Errors: kFailedPrecondition "another server is using lobby <name>" or a lobby owned by
  // another uid; kInternal naming the failed system call.
  static Result<std::unique_ptr<Lobby>> Create(const std::string& name, uid_t uid,
                                               uint64_t generation, int64_t step_timeout_ms);
  // Marks the lobby closing, removes its name (if still this lobby's), unmaps it and closes it,
  // which releases the server's lock. Regions still waiting for their client are removed.
  ~Lobby();

  Lobby(const Lobby&) = delete;
  Lobby& operator=(const Lobby&) = delete;

  // One pass over the claims: admits hellos, promotes attached claims, refuses claims that
  // stalled past the step timeout or hold a state out of order. With `probe_locks` it also
  // checks the owner's lock of every claim in use (one fcntl each; the server does it on a
  // 100 ms timer) and sweeps claims whose owner is gone. Never fails: a bad claim is refused.
  ScanResult Scan(TimePoint now, bool probe_locks, const AdmitFn& admit);
  // Whether any claim is in use (a session, a handshake, or a state not FREE): the server keeps
  // probing locks while this holds.
  bool busy() const;

  // Sets server_state = 2 (clients then fail their next call and reconnect).
  void MarkClosing();

  const std::string& shm_name() const { return shm_name_; }
  std::atomic<uint32_t>& doorbell() const { return header()->doorbell; }
  // The mapping and descriptor, for tests that act as clients.
  void* base() const { return base_; }
  LobbyHeader* header() const { return static_cast<LobbyHeader*>(base_); }

 private:
  enum class Phase { kNone, kClaimed, kWelcomed, kSession, kRefused };
  struct Tracked {
    Phase phase = Phase::kNone;
    TimePoint since;
    std::unique_ptr<Region> pending;  // kWelcomed: created, waiting for ATTACHED
  };

  Lobby(std::string shm_name, std::string name, uid_t uid, int fd, void* base, dev_t dev, ino_t ino,
        uint64_t generation, int64_t step_timeout_ms);

  void ScanClaim(uint32_t i, TimePoint now, bool probe_locks, const AdmitFn& admit,
                 ScanResult* result);
  void Admit(uint32_t i, TimePoint now, const AdmitFn& admit);
  // Writes the refusal and stores REFUSED; the region of a welcomed claim is dropped.
  void Refuse(uint32_t i, TimePoint now, ShmStatus status, const std::string& message);
  // Back to FREE: the owner is gone.
  void Free(uint32_t i);
  std::string RegionName(uint32_t i) const;

  // Constant after construction.
  const std::string shm_name_;  // "/brainstem-<uid>-<name>.lobby"
  const std::string name_;      // shm.name
  const uid_t uid_;
  const int fd_;
  void* const base_;
  const dev_t dev_;  // identity of the lobby file, so a successor's is never unlinked
  const ino_t ino_;
  const uint64_t generation_;
  const std::chrono::milliseconds step_timeout_;

  std::array<Tracked, kLobbyClaimCount> claims_;
};

}  // namespace brainstem::shm
