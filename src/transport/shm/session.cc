#include "transport/shm/session.h"

#include <unistd.h>

namespace brainstem::shm {

Session::Session(uint64_t id, int socket_fd, PeerCredentials peer, std::unique_ptr<Region> region)
    : id_(id), socket_fd_(socket_fd), peer_(peer), region_(std::move(region)) {}

Session::~Session() { CloseSocket(); }

void Session::CloseSocket() {
  if (socket_fd_ >= 0) close(socket_fd_);
  socket_fd_ = -1;
}

}  // namespace brainstem::shm
