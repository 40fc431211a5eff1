#include "transport/shm/lobby.h"

#include <dirent.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <new>

#include "transport/shm/ofd_lock.h"
#include "transport/shm/rendezvous.h"
#include "transport/shm/validation.h"

namespace brainstem::shm {
namespace {

Status SysError(const std::string& what) {
  return InternalError("shm lobby: " + what + ": " + std::strerror(errno));
}

constexpr uint32_t U(ClaimState s) { return static_cast<uint32_t>(s); }

// Shared (not private) futex wake: the word is in a mapping other processes share.
void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

std::string Hex(uint64_t value) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(value));
  return buf;
}

uint64_t Random64() {
  uint64_t value = 0;
  if (getrandom(&value, sizeof(value), 0) != static_cast<ssize_t>(sizeof(value))) {
    value = static_cast<uint64_t>(Clock::now().time_since_epoch().count()) * 0x9E3779B97F4A7C15ull;
  }
  return value;
}

// "<hex>.<decimal>.<hex>": the part of a region name after RegionShmNamePrefix.
bool IsRegionSuffix(const std::string& rest) {
  int part = 0;
  size_t length = 0;
  for (char c : rest) {
    if (c == '.') {
      if (length == 0) return false;
      ++part;
      length = 0;
      continue;
    }
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    const bool decimal = c >= '0' && c <= '9';
    if (!(part == 1 ? decimal : hex)) return false;
    ++length;
  }
  return part == 2 && length > 0;
}

// Removes region names a dead server of this lobby left in /dev/shm (it died between creating a
// region and its client attaching). Best effort.
void SweepOrphanRegions(uid_t uid, const std::string& name) {
  const std::string prefix = RegionShmNamePrefix(uid, name).substr(1);  // no leading '/'
  DIR* dir = opendir("/dev/shm");
  if (dir == nullptr) return;
  while (dirent* entry = readdir(dir)) {
    const std::string file = entry->d_name;
    if (!file.starts_with(prefix) || !IsRegionSuffix(file.substr(prefix.size()))) continue;
    struct stat st {};
    if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_uid == uid &&
        S_ISREG(st.st_mode)) {
      shm_unlink(("/" + file).c_str());
    }
  }
  closedir(dir);
}

// An existing lobby at `shm_name`: removed when stale, refused when a live server holds it.
Status ReplaceStaleLobby(const std::string& shm_name, uid_t uid, const std::string& name) {
  const int fd = shm_open(shm_name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    if (errno == EACCES) {
      return FailedPreconditionError("shm lobby /dev/shm" + shm_name +
                                     " exists and this process may not open it (another user's?)");
    }
    return SysError("shm_open " + shm_name);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    Status s = SysError("fstat " + shm_name);
    close(fd);
    return s;
  }
  if (st.st_uid != uid) {
    close(fd);
    return FailedPreconditionError("shm lobby /dev/shm" + shm_name + " belongs to uid " +
                                   std::to_string(st.st_uid) + ", not to this process (uid " +
                                   std::to_string(uid) + ")");
  }
  const LockResult lock = TryLockByte(fd, kLobbyServerLockByte);
  close(fd);  // drops the lock we may have taken
  if (lock == LockResult::kBusy) {
    return FailedPreconditionError("another server is using lobby /dev/shm" + shm_name +
                                   " (stop it, or give this one another shm.name, or set "
                                   "shm.rendezvous=socket)");
  }
  if (lock == LockResult::kError) return SysError("lock " + shm_name);
  if (shm_unlink(shm_name.c_str()) != 0 && errno != ENOENT) {
    return SysError("unlink stale " + shm_name);
  }
  SweepOrphanRegions(uid, name);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Lobby>> Lobby::Create(const std::string& name, uid_t uid,
                                             uint64_t generation, int64_t step_timeout_ms) {
  const std::string shm_name = LobbyShmName(uid, name);
  RETURN_IF_ERROR(ReplaceStaleLobby(shm_name, uid, name));
  const int fd = shm_open(shm_name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return FailedPreconditionError("another server is using lobby /dev/shm" + shm_name +
                                     " (it appeared while this one started)");
    }
    return SysError("shm_open " + shm_name);
  }
  auto fail = [&](const std::string& what) {
    Status s = SysError(what);
    close(fd);
    shm_unlink(shm_name.c_str());
    return s;
  };
  // The lock comes first: a lobby whose byte 0 is unlocked reads as stale to clients and to
  // the next server, which is right for this half-made one too.
  if (TryLockByte(fd, kLobbyServerLockByte) != LockResult::kLocked) return fail("lock byte 0");
  if (fchmod(fd, 0600) != 0) return fail("fchmod 0600");  // shm_open applied the umask
  if (ftruncate(fd, static_cast<off_t>(kLobbySize)) != 0) return fail("ftruncate");
  struct stat st {};
  if (fstat(fd, &st) != 0) return fail("fstat");
  void* base = mmap(nullptr, kLobbySize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return fail("mmap");
  auto* header = new (base) LobbyHeader{};
  header->magic = kLobbyMagic;
  header->abi_version = kAbiVersion;
  header->claim_count = kLobbyClaimCount;
  header->lobby_size = kLobbySize;
  header->generation = generation;
  header->claims_offset = static_cast<uint32_t>(kLobbyHeaderSize);
  header->claim_stride = static_cast<uint32_t>(kLobbyClaimStride);
  header->doorbell.store(0, std::memory_order_relaxed);
  // Stored last: a client that reads 1 (acquire) sees every field above.
  header->server_state.store(1, std::memory_order_release);
  return std::unique_ptr<Lobby>(
      new Lobby(shm_name, name, uid, fd, base, st.st_dev, st.st_ino, generation, step_timeout_ms));
}

Lobby::Lobby(std::string shm_name, std::string name, uid_t uid, int fd, void* base, dev_t dev,
             ino_t ino, uint64_t generation, int64_t step_timeout_ms)
    : shm_name_(std::move(shm_name)),
      name_(std::move(name)),
      uid_(uid),
      fd_(fd),
      base_(base),
      dev_(dev),
      ino_(ino),
      generation_(generation),
      step_timeout_(step_timeout_ms) {}

Lobby::~Lobby() {
  MarkClosing();
  for (Tracked& t : claims_) t.pending.reset();  // unlinks regions nobody attached
  struct stat st {};
  if (stat(("/dev/shm" + shm_name_).c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    shm_unlink(shm_name_.c_str());
  }
  munmap(base_, kLobbySize);
  close(fd_);  // releases the server's lock: clients still mapping the lobby see it gone
}

void Lobby::MarkClosing() {
  header()->server_state.store(2, std::memory_order_seq_cst);
  // Clients waiting on a claim re-check the server's lock when they wake.
  for (uint32_t i = 0; i < kLobbyClaimCount; ++i) FutexWakeAll(&ClaimAt(base_, i)->state);
}

bool Lobby::busy() const {
  for (uint32_t i = 0; i < kLobbyClaimCount; ++i) {
    if (claims_[i].phase != Phase::kNone) return true;
    if (ClaimAt(base_, i)->state.load(std::memory_order_relaxed) != U(ClaimState::kFree)) {
      return true;
    }
  }
  return false;
}

std::string Lobby::RegionName(uint32_t i) const {
  return RegionShmNamePrefix(uid_, name_) + Hex(generation_) + "." + std::to_string(i) + "." +
         Hex(Random64());
}

Lobby::ScanResult Lobby::Scan(TimePoint now, bool probe_locks, const AdmitFn& admit) {
  ScanResult result;
  for (uint32_t i = 0; i < kLobbyClaimCount; ++i) ScanClaim(i, now, probe_locks, admit, &result);
  return result;
}

void Lobby::ScanClaim(uint32_t i, TimePoint now, bool probe_locks, const AdmitFn& admit,
                      ScanResult* result) {
  Tracked& t = claims_[i];
  const uint32_t state = ClaimAt(base_, i)->state.load(std::memory_order_acquire);
  if (t.phase == Phase::kNone && state == U(ClaimState::kFree)) return;
  // The owner's lock, not the state word, says whether anybody is there. Probed on the timer
  // (a syscall per claim), so a dead owner is found within one period, and at once for a claim
  // whose owner says it is leaving (a client that reconnects often must not fill the lobby).
  const bool leaving = state == U(ClaimState::kLeaving);
  if ((probe_locks || leaving) && !ByteLockedByOther(fd_, ClaimLockByte(i))) {
    if (t.phase == Phase::kSession) result->departed.push_back(i);
    Free(i);
    return;
  }
  const bool stalled = now - t.since > step_timeout_;
  switch (t.phase) {
    case Phase::kNone:
    case Phase::kClaimed:
      if (state == U(ClaimState::kHello)) {
        Admit(i, now, admit);
      } else if (state == U(ClaimState::kClaimed)) {
        if (t.phase == Phase::kNone) {
          t.phase = Phase::kClaimed;
          t.since = now;
        } else if (stalled) {
          Refuse(i, now, ShmStatus::kUnavailable,
                 "lobby claim " + std::to_string(i) + ": no hello within " +
                     std::to_string(step_timeout_.count()) + " ms");
        }
      } else if (state != U(ClaimState::kFree)) {
        // WELCOME, REFUSED or ATTACHED that this server never wrote or allowed, or no state
        // at all: a forged or leftover claim.
        Refuse(i, now, ShmStatus::kInvalidArgument,
               "lobby claim " + std::to_string(i) + ": state " + std::to_string(state) +
                   " was not expected (allowed: 1 CLAIMED, 2 HELLO)");
      }
      return;
    case Phase::kWelcomed:
      if (state == U(ClaimState::kAttached)) {
        // Both sides map it now; its name is no longer needed and must not outlive them.
        t.pending->Unlink();
        result->attached.push_back({i, std::move(t.pending)});
        t.phase = Phase::kSession;
        t.since = now;
      } else if (state != U(ClaimState::kWelcome)) {
        Refuse(i, now, ShmStatus::kInvalidArgument,
               "lobby claim " + std::to_string(i) + ": state " + std::to_string(state) +
                   " was not expected after the welcome (allowed: 5 ATTACHED)");
      } else if (stalled) {
        Refuse(i, now, ShmStatus::kUnavailable,
               "lobby claim " + std::to_string(i) + ": the region was not attached within " +
                   std::to_string(step_timeout_.count()) + " ms");
      }
      return;
    case Phase::kSession:
      // The state word is the client's to scribble on now; only its lock matters (above).
      return;
    case Phase::kRefused:
      // The client reads the refusal and lets go of its lock; the probe then frees the claim.
      return;
  }
}

void Lobby::Admit(uint32_t i, TimePoint now, const AdmitFn& admit) {
  LobbyClaim* claim = ClaimAt(base_, i);
  // One copy out of shared memory; only the copy is validated and used.
  HelloMessage hello;
  std::memcpy(&hello, &claim->hello, sizeof(hello));
  const std::string region_name = RegionName(i);
  Admission admission = admit(hello, region_name);
  if (admission.region == nullptr) {
    Refuse(i, now, admission.status, admission.message);
    return;
  }
  const WelcomeMessage welcome =
      MakeWelcome(ShmStatus::kOk, "", admission.region->size(), generation_);
  std::memcpy(&claim->welcome, &welcome, sizeof(welcome));
  std::memset(claim->region_name, 0, sizeof(claim->region_name));
  std::memcpy(claim->region_name, region_name.data(),
              std::min(region_name.size(), sizeof(claim->region_name) - 1));
  Tracked& t = claims_[i];
  t.pending = std::move(admission.region);
  t.phase = Phase::kWelcomed;
  t.since = now;
  // Publishes welcome and name (release); the client futex-waits on the state word, so the
  // store comes before the wake.
  claim->state.store(U(ClaimState::kWelcome), std::memory_order_seq_cst);
  FutexWakeAll(&claim->state);
}

void Lobby::Refuse(uint32_t i, TimePoint now, ShmStatus status, const std::string& message) {
  LobbyClaim* claim = ClaimAt(base_, i);
  const WelcomeMessage welcome = MakeWelcome(status, message, 0, generation_);
  std::memcpy(&claim->welcome, &welcome, sizeof(welcome));
  std::memset(claim->region_name, 0, sizeof(claim->region_name));
  Tracked& t = claims_[i];
  t.pending.reset();  // a welcomed region nobody attached: unmapped and unlinked
  t.phase = Phase::kRefused;
  t.since = now;
  claim->state.store(U(ClaimState::kRefused), std::memory_order_seq_cst);
  FutexWakeAll(&claim->state);
}

void Lobby::Free(uint32_t i) {
  Tracked& t = claims_[i];
  t.pending.reset();
  t.phase = Phase::kNone;
  // Whatever the dead owner left there; the next client finds the claim FREE.
  ClaimAt(base_, i)->state.store(U(ClaimState::kFree), std::memory_order_release);
}

}  // namespace brainstem::shm
