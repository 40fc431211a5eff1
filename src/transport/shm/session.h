// Session: one connected shared-memory client: its socket (the session's life line: when it
// closes, the client is gone), its peer credentials and its region. The server's thread owns
// the socket; requests in flight hold a shared_ptr to the session, so a region whose client
// died stays mapped until the last of its completions has written into it.
// Thread-safety: constant after construction except the socket, which only the server's
// thread touches, and in_flight, an atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "transport/shm/region.h"
#include "transport/shm/rendezvous.h"

namespace brainstem::shm {

class Session {
 public:
  // Takes ownership of `socket_fd` and `region`.
  Session(uint64_t id, int socket_fd, PeerCredentials peer, std::unique_ptr<Region> region);
  // Closes the socket if still open; the region unmaps itself.
  ~Session();

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  uint64_t id() const { return id_; }
  int socket_fd() const { return socket_fd_; }
  const PeerCredentials& peer() const { return peer_; }
  const Region& region() const { return *region_; }
  const RegionView& view() const { return region_->view(); }

  // Called by the server's thread when the client left or the server stops.
  void CloseSocket();

  // Requests submitted to the scheduler and not yet completed (for metrics and tests).
  std::atomic<int> in_flight{0};

 private:
  const uint64_t id_;
  int socket_fd_;
  const PeerCredentials peer_;
  const std::unique_ptr<Region> region_;
};

}  // namespace brainstem::shm
