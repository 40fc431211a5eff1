// Rendezvous: the Unix socket where shared-memory clients find the server. Resolves the
// socket path from the config, prepares its directory (0700), replaces a stale socket left by
// a dead server but refuses to steal one a live server still listens on, and sends the
// welcome with its descriptors (SCM_RIGHTS).
// Thread-compatible: a Listener is used by the one shm thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "transport/shm/shm_layout.h"

namespace brainstem::shm {

// The socket path for `name` when shm.path is empty: $XDG_RUNTIME_DIR/brainstem/<name>.sock,
// else /tmp/brainstem-<uid>/<name>.sock. `xdg_runtime_dir` is the variable's value ("" when
// unset). Errors: kInvalidArgument when the path is longer than a socket address holds.
Result<std::string> DefaultSocketPath(const std::string& name, const std::string& xdg_runtime_dir,
                                      uid_t uid);

class Listener {
 public:
  // Creates the socket's directory if missing (mode 0700; for the default directories an
  // existing one must belong to this uid and is tightened to 0700), removes a stale socket
  // file, binds (socket mode 0600) and listens; the socket is non-blocking and close-on-exec.
  // `own_directory`: the directory is brainstem's (the default path), so its owner and mode
  // are enforced; for a configured shm.path only missing directories are created.
  // Errors: kFailedPrecondition "another server is listening on <path>"; kInvalidArgument for
  // a path that is too long or exists and is not a socket; kInternal for system call failures.
  static Result<std::unique_ptr<Listener>> Create(const std::string& path, bool own_directory);
  // Closes the socket and removes the socket file if it is still the one this listener bound.
  ~Listener();

  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  Listener(int fd, std::string path, dev_t dev, ino_t ino);

  const int fd_;
  const std::string path_;
  const dev_t dev_;  // identity of the bound socket file, so a successor's is never removed
  const ino_t ino_;
};

// The peer's credentials (SO_PEERCRED). Errors: kInternal.
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};
Result<PeerCredentials> GetPeerCredentials(int socket_fd);

// Sends `welcome` whole, with `fds` attached (none for a refusal). The socket may be
// non-blocking: a fresh connection's send buffer always has room for one message, so a short
// or would-block send is an error. Errors: kUnavailable naming errno (the peer went away).
Status SendWelcome(int socket_fd, const WelcomeMessage& welcome, const std::vector<int>& fds);

// A refusal or acceptance message with `message` copied (truncated to fit, NUL-terminated).
WelcomeMessage MakeWelcome(ShmStatus status, const std::string& message, uint64_t region_size,
                           uint64_t generation);

}  // namespace brainstem::shm
