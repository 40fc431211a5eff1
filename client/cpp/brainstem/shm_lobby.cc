#include "brainstem/shm_lobby.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "transport/shm/ofd_lock.h"

namespace brainstem::client {
namespace {

using shm::ClaimState;

constexpr uint32_t U(ClaimState s) { return static_cast<uint32_t>(s); }
constexpr int64_t kWaitSliceNs = 50'000'000;  // re-check the server's lock this often
// How long a connect waits for a claim when all are taken: more than the server's lock-probe
// period (100 ms), so claims of clients that died come back within it.
constexpr uint32_t kFullLobbyWaitMs = 300;

uint64_t NowNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t Random64() {
  uint64_t value = 0;
  if (::getrandom(&value, sizeof(value), 0) != static_cast<ssize_t>(sizeof(value))) {
    value = NowNs() * 0x9E3779B97F4A7C15ull;
  }
  return value;
}

std::string Errno() { return std::strerror(errno); }

// Checks an object opened by shm_open: a regular file of this uid, mode 0600, `size` bytes.
Status CheckFile(int fd, const std::string& what, uint64_t size, bool size_mismatch_retryable) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return InternalError("shm: fstat " + what + ": " + Errno());
  if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
    return FailedPreconditionError("shm: " + what + " belongs to uid " + std::to_string(st.st_uid) +
                                   ", not to this process (uid " + std::to_string(::geteuid()) +
                                   "); refusing it");
  }
  if ((st.st_mode & 0777) != 0600) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%03o", st.st_mode & 0777);
    return FailedPreconditionError("shm: " + what + " has mode " + mode +
                                   " (expected 0600); refusing it");
  }
  if (static_cast<uint64_t>(st.st_size) != size) {
    std::string text = "shm: " + what + " holds " + std::to_string(st.st_size) +
                       " bytes (expected " + std::to_string(size) + ")";
    return size_mismatch_retryable ? UnavailableError(text) : FailedPreconditionError(text);
  }
  return Status::Ok();
}

// The region name the server wrote: NUL-terminated inside the field, this lobby's prefix, then
// "<hex>.<decimal>.<hex>" and nothing else, so it can name no other object.
Result<std::string> CheckRegionName(const char (&field)[shm::kRegionNameCapacity],
                                    const std::string& prefix) {
  const size_t length = ::strnlen(field, sizeof(field));
  if (length == sizeof(field)) {
    return FailedPreconditionError("shm: lobby region_name is not NUL-terminated");
  }
  std::string name(field, length);
  if (!name.starts_with(prefix)) {
    return FailedPreconditionError("shm: lobby region_name '" + name + "' does not start with '" +
                                   prefix + "'");
  }
  int part = 0;
  size_t run = 0;
  for (char c : name.substr(prefix.size())) {
    if (c == '.') {
      if (run == 0) break;
      ++part;
      run = 0;
      continue;
    }
    const bool ok =
        part == 1 ? (c >= '0' && c <= '9') : ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!ok) {
      part = -1;
      break;
    }
    ++run;
  }
  if (part != 2 || run == 0) {
    return FailedPreconditionError("shm: lobby region_name '" + name +
                                   "' is not <prefix><generation>.<claim>.<random>");
  }
  return name;
}

void RingDoorbell(shm::LobbyHeader* lobby);

// Gives the claim back and unmaps and closes what `a` holds. A claim this client finished with
// (attached, or refused) is marked LEAVING and unlocked before the ring, so the server frees it
// on that ring instead of its next lock probe; the CAS leaves a claim the server already freed
// (and maybe gave to another client) alone. Closing the descriptor drops the lock in any case.
void Close(LobbyAttachment* a) {
  if (a->lobby != nullptr && a->claimed) {
    std::atomic<uint32_t>& state = shm::ClaimAt(a->lobby, a->claim)->state;
    for (uint32_t from : {U(ClaimState::kAttached), U(ClaimState::kRefused)}) {
      uint32_t expected = from;
      if (state.compare_exchange_strong(expected, U(ClaimState::kLeaving),
                                        std::memory_order_seq_cst)) {
        shm::UnlockByte(a->lobby_fd, shm::ClaimLockByte(a->claim));
        RingDoorbell(a->lobby);
        break;
      }
    }
  }
  a->claimed = false;
  if (a->lobby != nullptr) ::munmap(a->lobby, shm::kLobbySize);
  if (a->region_fd >= 0) ::close(a->region_fd);
  if (a->lobby_fd >= 0) ::close(a->lobby_fd);
  a->lobby = nullptr;
  a->region_fd = a->lobby_fd = -1;
}

void FutexWake(std::atomic<uint32_t>* word) {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

}  // namespace

LobbyAttachment::LobbyAttachment(LobbyAttachment&& other) noexcept { *this = std::move(other); }

LobbyAttachment& LobbyAttachment::operator=(LobbyAttachment&& other) noexcept {
  if (this != &other) {
    Close(this);
    lobby_fd = std::exchange(other.lobby_fd, -1);
    lobby = std::exchange(other.lobby, nullptr);
    claim = other.claim;
    claimed = std::exchange(other.claimed, false);
    region_fd = std::exchange(other.region_fd, -1);
    welcome = other.welcome;
  }
  return *this;
}

LobbyAttachment::~LobbyAttachment() { Close(this); }

bool LobbyServerGone(int lobby_fd, const shm::LobbyHeader* lobby) {
  if (lobby->server_state.load(std::memory_order_acquire) != 1) return true;
  return !shm::ByteLockedByOther(lobby_fd, shm::kLobbyServerLockByte);
}

void RingLobby(shm::LobbyHeader* lobby) { RingDoorbell(lobby); }

namespace {

void RingDoorbell(shm::LobbyHeader* lobby) {
  // seq_cst, after the caller's seq_cst store of the slot state (docs/shm-protocol.md 3 and 8).
  lobby->doorbell.fetch_add(1, std::memory_order_seq_cst);
  FutexWake(&lobby->doorbell);
}

}  // namespace

void MarkAttached(const LobbyAttachment& attachment) {
  shm::LobbyClaim* claim = shm::ClaimAt(attachment.lobby, attachment.claim);
  claim->state.store(U(ClaimState::kAttached), std::memory_order_seq_cst);
  RingLobby(attachment.lobby);
}

Result<LobbyAttachment> ClaimThroughLobby(const std::string& name, const shm::HelloMessage& hello,
                                          int timeout_ms) {
  const uint32_t uid = ::geteuid();
  const std::string lobby_name = shm::LobbyShmName(uid, name);
  const std::string where = "lobby /dev/shm" + lobby_name;
  LobbyAttachment a;
  a.lobby_fd = ::shm_open(lobby_name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (a.lobby_fd < 0) {
    if (errno == ENOENT) {
      return UnavailableError("shm: no " + where +
                              " (is `brainstem serve` running with shm.rendezvous=named or both, "
                              "as uid " +
                              std::to_string(uid) + ", sharing /dev/shm with this process?)");
    }
    return FailedPreconditionError("shm: cannot open " + where + ": " + Errno());
  }
  RETURN_IF_ERROR(CheckFile(a.lobby_fd, where, shm::kLobbySize, /*retryable=*/true));
  void* base = ::mmap(nullptr, shm::kLobbySize, PROT_READ | PROT_WRITE, MAP_SHARED, a.lobby_fd, 0);
  if (base == MAP_FAILED) return InternalError("shm: mmap " + where + ": " + Errno());
  a.lobby = static_cast<shm::LobbyHeader*>(base);
  if (LobbyServerGone(a.lobby_fd, a.lobby)) {
    return UnavailableError("shm: no server holds " + where +
                            " (it stopped or died; a new server replaces the lobby)");
  }
  const shm::LobbyHeader& h = *a.lobby;
  if (h.magic != shm::kLobbyMagic || h.abi_version != shm::kAbiVersion ||
      h.claim_count != shm::kLobbyClaimCount || h.lobby_size != shm::kLobbySize ||
      h.claims_offset != shm::kLobbyHeaderSize || h.claim_stride != shm::kLobbyClaimStride) {
    return FailedPreconditionError("shm: " + where +
                                   " has another layout (magic, ABI or claim geometry)");
  }
  // Lock first, then the state: the server takes a non-FREE claim without its lock for one
  // whose owner is gone. When every claim is taken, wait a little: claims of clients that just
  // left or died come back within the server's lock-probe period.
  const uint64_t full_deadline = NowNs() + uint64_t{kFullLobbyWaitMs} * 1'000'000;
  for (;;) {
    const uint32_t start = static_cast<uint32_t>(Random64() % shm::kLobbyClaimCount);
    for (uint32_t k = 0; k < shm::kLobbyClaimCount && !a.claimed; ++k) {
      const uint32_t i = (start + k) % shm::kLobbyClaimCount;
      const shm::LockResult lock = shm::TryLockByte(a.lobby_fd, shm::ClaimLockByte(i));
      if (lock == shm::LockResult::kError)
        return InternalError("shm: lock a lobby claim: " + Errno());
      if (lock == shm::LockResult::kBusy) continue;
      uint32_t expected = U(ClaimState::kFree);
      if (shm::ClaimAt(a.lobby, i)
              ->state.compare_exchange_strong(expected, U(ClaimState::kClaimed),
                                              std::memory_order_acq_rel)) {
        a.claim = i;
        a.claimed = true;
      } else {
        // A dead client's; the server sweeps it.
        shm::UnlockByte(a.lobby_fd, shm::ClaimLockByte(i));
      }
    }
    if (a.claimed || NowNs() >= full_deadline) break;
    ::usleep(2000);
  }
  if (!a.claimed) {
    return UnavailableError("shm: " + where + " is full (" + std::to_string(shm::kLobbyClaimCount) +
                            " claims in use for " + std::to_string(kFullLobbyWaitMs) +
                            " ms); retry");
  }
  shm::LobbyClaim* claim = shm::ClaimAt(a.lobby, a.claim);
  claim->nonce = Random64();
  std::memcpy(&claim->hello, &hello, sizeof(hello));
  claim->state.store(U(ClaimState::kHello), std::memory_order_seq_cst);
  RingLobby(a.lobby);

  const uint64_t deadline = NowNs() + uint64_t(timeout_ms) * 1'000'000;
  uint32_t state;
  for (;;) {
    state = claim->state.load(std::memory_order_seq_cst);
    if (state == U(ClaimState::kWelcome) || state == U(ClaimState::kRefused)) break;
    if (state != U(ClaimState::kHello)) {
      return FailedPreconditionError("shm: " + where + ": claim state " + std::to_string(state) +
                                     " is not an answer");
    }
    const uint64_t now = NowNs();
    if (now >= deadline) {
      return UnavailableError("shm: no welcome from the server within " +
                              std::to_string(timeout_ms) + " ms (" + where + ")");
    }
    const int64_t slice = std::min<int64_t>(kWaitSliceNs, static_cast<int64_t>(deadline - now));
    timespec ts{0, static_cast<long>(slice)};
    ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&claim->state), FUTEX_WAIT, state, &ts,
              nullptr, 0);
    if (claim->state.load(std::memory_order_acquire) == state &&
        LobbyServerGone(a.lobby_fd, a.lobby)) {
      return UnavailableError("shm: the server left " + where + " during the handshake");
    }
  }
  // One copy of the answer; only the copy is checked and used.
  std::memcpy(&a.welcome, &claim->welcome, sizeof(a.welcome));
  a.welcome.message[sizeof(a.welcome.message) - 1] = '\0';
  if (state == U(ClaimState::kRefused)) {
    if (a.welcome.status == 0) a.welcome.status = static_cast<uint32_t>(shm::ShmStatus::kInternal);
    return a;  // the caller reports it; closing the attachment frees the claim
  }
  if (a.welcome.status != 0) {
    return FailedPreconditionError("shm: " + where + ": a welcome with status " +
                                   std::to_string(a.welcome.status));
  }
  char field[shm::kRegionNameCapacity];
  std::memcpy(field, claim->region_name, sizeof(field));
  ASSIGN_OR_RETURN(std::string region_name,
                   CheckRegionName(field, shm::RegionShmNamePrefix(uid, name)));
  a.region_fd = ::shm_open(region_name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (a.region_fd < 0) {
    return UnavailableError("shm: cannot open region /dev/shm" + region_name + ": " + Errno());
  }
  RETURN_IF_ERROR(CheckFile(a.region_fd, "region /dev/shm" + region_name, a.welcome.region_size,
                            /*retryable=*/false));
  return a;
}

}  // namespace brainstem::client
