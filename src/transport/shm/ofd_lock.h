// Open-file-description locks (fcntl F_OFD_*) on single bytes of a file: the named rendezvous's
// liveness signal (docs/shm-protocol.md section 8). Unlike a pid, an OFD lock means the same in
// every PID namespace, and the kernel drops it when the last descriptor of the open file
// description closes, however its process ended. Header-only so that the client library, which
// depends on the server only through headers, shares the exact calls.
// Thread-safe: free functions; a lock belongs to the open file description, not to a thread.
#pragma once

#include <fcntl.h>

#include <cerrno>
#include <cstdint>

namespace brainstem::shm {

enum class LockResult { kLocked, kBusy, kError };

// A lock request of `type` (F_WRLCK, F_UNLCK) for the single byte `byte`.
inline struct flock ByteLock(short type, uint64_t byte) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = static_cast<off_t>(byte);
  lock.l_len = 1;
  return lock;
}

// Takes a write lock on byte `byte` of `fd` without waiting: kBusy when another open file
// description holds a lock on it, kError (errno set) for anything else.
inline LockResult TryLockByte(int fd, uint64_t byte) {
  struct flock lock = ByteLock(F_WRLCK, byte);
  if (fcntl(fd, F_OFD_SETLK, &lock) == 0) return LockResult::kLocked;
  return (errno == EAGAIN || errno == EACCES) ? LockResult::kBusy : LockResult::kError;
}

// Releases this open file description's lock on `byte` (closing the descriptor does too).
inline void UnlockByte(int fd, uint64_t byte) {
  struct flock lock = ByteLock(F_UNLCK, byte);
  (void)fcntl(fd, F_OFD_SETLK, &lock);
}

// Whether another open file description holds a lock on `byte` (F_OFD_GETLK: locks of `fd`'s
// own description never count). A failing probe answers true: "alive" is the safe guess, the
// next probe decides.
inline bool ByteLockedByOther(int fd, uint64_t byte) {
  struct flock lock = ByteLock(F_WRLCK, byte);
  if (fcntl(fd, F_OFD_GETLK, &lock) != 0) return true;
  return lock.l_type != F_UNLCK;
}

}  // namespace brainstem::shm
