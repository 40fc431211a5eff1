#include "brainstem/shm_client.h"

#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <random>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "brainstem/checksum.h"
#include "brainstem/shm_lobby.h"

namespace brainstem::client {
namespace {

using shm::SlotState;

// After the busy-wait (ShmRegionRequest::spin_us) a caller yields for this much longer, then
// sleeps on FUTEX_WAIT.
constexpr uint64_t kYieldNs = 30'000;
constexpr int64_t kFutexSliceNs = 100'000'000;  // sleep at most this long between hang-up checks
constexpr int kHandshakeTimeoutMs = 5000;

uint64_t MonotonicNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

constexpr uint32_t U(SlotState s) { return static_cast<uint32_t>(s); }

// Shared (not private) futex: the word lives in a MAP_SHARED mapping the server also maps.
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, int64_t timeout_ns) {
  timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
              static_cast<long>(timeout_ns % 1'000'000'000)};
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

uint64_t Diff(uint64_t from, uint64_t to) { return (from != 0 && to > from) ? to - from : 0; }

Status StatusFromShm(uint32_t code, const shm::SlotResponse& r) {
  const size_t length = std::min<size_t>(r.error_length, sizeof(r.error));
  std::string message(r.error, strnlen(r.error, length));
  if (message.empty()) message = "server answered status " + std::to_string(code);
  switch (static_cast<shm::ShmStatus>(code)) {
    case shm::ShmStatus::kOk:
      return Status::Ok();
    case shm::ShmStatus::kInvalidArgument:
      return InvalidArgumentError(message);
    case shm::ShmStatus::kChecksumMismatch:
      return DataLossError(message);
    case shm::ShmStatus::kUnavailable:
      return UnavailableError(message);
    case shm::ShmStatus::kDeadlineExceeded:
      return DeadlineExceededError(message);
    case shm::ShmStatus::kInternal:
      return InternalError(message);
    case shm::ShmStatus::kUnsupported:
      return UnimplementedError(message);
    default:
      break;  // kPermissionDenied (handshake) and codes newer than this client
  }
  if (code == 7) return FailedPreconditionError(message);
  return InternalError("server answered unknown status " + std::to_string(code) + ": " + message);
}

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

void FillTimings(uint64_t call_start, uint64_t seen, uint64_t t_submit, const shm::SlotResponse& r,
                 CallTimings* t) {
  t->total_ns = Diff(call_start, seen);
  t->request_ns = Diff(t_submit, r.t_received_ns);
  t->queue_ns = Diff(r.t_received_ns, r.t_compute_start_ns);
  t->compute_ns = Diff(r.t_compute_start_ns, r.t_compute_end_ns);
  t->response_ns = Diff(r.t_compute_end_ns != 0 ? r.t_compute_end_ns : r.t_received_ns, seen);
  t->server_ns = Diff(r.t_received_ns, r.t_done_ns);
}

uint32_t ThreadHint() {
  thread_local uint32_t hint =
      static_cast<uint32_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()) * 2654435761u);
  return hint;
}

uint64_t RandomSeed() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng();
}

}  // namespace

struct ShmClient::Session {
  int socket_fd = -1;
  int doorbell_fd = -1;
  // Kept open so that a producer (e.g. an X server via MIT-SHM) can write frames straight into
  // a frame slot: FrameBuffer::region_fd().
  int region_fd = -1;
  uint8_t* base = nullptr;
  uint64_t size = 0;
  shm::RegionHeader* header = nullptr;
  uint64_t generation = 0;
  shm::ChecksumKind checksum = shm::ChecksumKind::kNone;
  uint64_t spin_ns = 20'000;  // ShmRegionRequest::spin_us
  std::atomic<bool> broken{false};
  // Per slot, touched only by the thread that holds the slot.
  std::unique_ptr<uint64_t[]> tensor_sequence;
  std::unique_ptr<uint64_t[]> frame_sequence;
  // A slot whose caller gave up (deadline) while the server still held it: the next claimer
  // that finds it DONE takes it over.
  std::unique_ptr<std::atomic<bool>[]> tensor_abandoned;
  std::unique_ptr<std::atomic<bool>[]> frame_abandoned;
  // A session found through the lobby: its claim (whose lock is the life line) and the lobby's
  // doorbell. Released after the region is unmapped (members outlive the destructor's body).
  LobbyAttachment lobby;

  ~Session() {
    if (base != nullptr) ::munmap(base, size);
    if (doorbell_fd >= 0) ::close(doorbell_fd);
    if (region_fd >= 0) ::close(region_fd);
    if (socket_fd >= 0) ::close(socket_fd);
  }

  shm::TensorSlot* tensor(uint32_t i) const {
    return reinterpret_cast<shm::TensorSlot*>(base + header->tensor_slots_offset +
                                              uint64_t{i} * header->tensor_slot_stride);
  }
  float* input(uint32_t i) const {
    return reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(tensor(i)) +
                                    shm::kTensorInputOffset);
  }
  float* output(uint32_t i, uint64_t output_offset) const {
    return reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(tensor(i)) + output_offset);
  }
  shm::FrameSlot* frame(uint32_t i) const {
    return reinterpret_cast<shm::FrameSlot*>(base + header->frame_slots_offset +
                                             uint64_t{i} * header->frame_slot_stride);
  }
  uint8_t* pixels(uint32_t i) const {
    return reinterpret_cast<uint8_t*>(frame(i)) + shm::kFramePixelsOffset;
  }

  Status Broken() {
    broken.store(true, std::memory_order_release);
    return UnavailableError("server closed the session (restarted?); the next call reconnects");
  }

  bool HungUp() const {
    if (lobby.lobby != nullptr) return LobbyServerGone(lobby.lobby_fd, lobby.lobby);
    pollfd p{socket_fd, POLLIN | POLLRDHUP, 0};
    int n = ::poll(&p, 1, 0);
    return n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
  }

  void Ring() {
    if (header->server_sleeping.load(std::memory_order_seq_cst) != 0) {
      if (lobby.lobby != nullptr) {
        RingLobby(lobby.lobby);
        return;
      }
      uint64_t one = 1;
      ssize_t n = ::write(doorbell_fd, &one, sizeof(one));
      (void)n;  // a full counter (EAGAIN) still wakes the server
    }
  }

  // Claims a FREE slot (or a DONE one its caller abandoned) of `count` by CAS, waiting while
  // all are busy.
  template <typename SlotAt>
  Result<uint32_t> Claim(uint32_t count, SlotAt slot_at, std::atomic<bool>* abandoned) {
    if (count == 0) return UnimplementedError("this region has no slots of that kind");
    const uint32_t hint = ThreadHint();
    for (uint32_t round = 0;; ++round) {
      for (uint32_t k = 0; k < count; ++k) {
        const uint32_t i = (hint + k) % count;
        std::atomic<uint32_t>& state = slot_at(i)->state;
        uint32_t expected = U(SlotState::kFree);
        if (state.load(std::memory_order_relaxed) == expected &&
            state.compare_exchange_strong(expected, U(SlotState::kWriting),
                                          std::memory_order_acquire)) {
          return i;
        }
        if (abandoned[i].load(std::memory_order_acquire)) {
          expected = U(SlotState::kDone);
          if (state.compare_exchange_strong(expected, U(SlotState::kWriting),
                                            std::memory_order_acquire)) {
            abandoned[i].store(false, std::memory_order_release);
            return i;
          }
        }
      }
      if (broken.load(std::memory_order_acquire)) return Broken();
      if (header->server_state.load(std::memory_order_acquire) == 2) return Broken();
      if (round < 64) {
        CpuRelax();
      } else if (round < 256) {
        ::sched_yield();
      } else {
        ::usleep(50);
        if ((round & 1023) == 0 && HungUp()) return Broken();
      }
    }
  }

  // Submits a slot whose fields are written, then waits for DONE.
  // On failure the slot is abandoned (deadline) or the session is broken (hang-up).
  Status SubmitAndWait(std::atomic<uint32_t>& state, std::atomic<uint32_t>& client_waiting,
                       std::atomic<bool>& abandoned, int64_t timeout_ms) {
    client_waiting.store(0, std::memory_order_relaxed);
    state.store(U(SlotState::kSubmitted), std::memory_order_seq_cst);
    Ring();
    const uint64_t start = MonotonicNs();
    const uint64_t deadline = timeout_ms > 0 ? start + uint64_t(timeout_ms) * 1'000'000 : 0;
    const uint32_t done = U(SlotState::kDone);
    // Phase 1: spin. A busy server answers a batch-1 step within a few microseconds.
    for (uint32_t i = 0;; ++i) {
      if (state.load(std::memory_order_acquire) == done) return Status::Ok();
      if ((i & 63) == 63 && MonotonicNs() - start >= spin_ns) break;
      CpuRelax();
    }
    // Phase 1b: yield. On a machine with more runnable threads than cores, the server's thread
    // may be waiting for this very core; sched_yield hands it over without a futex round trip.
    while (MonotonicNs() - start < spin_ns + kYieldNs) {
      if (state.load(std::memory_order_acquire) == done) return Status::Ok();
      ::sched_yield();
    }
    // Phase 2: sleep on the state word. client_waiting is set before the state is read again
    // (both seq_cst), and the server stores DONE before reading client_waiting, so one of the
    // two always sees the other: no lost wake-up.
    for (;;) {
      client_waiting.store(1, std::memory_order_seq_cst);
      uint32_t s = state.load(std::memory_order_seq_cst);
      if (s == done) break;
      int64_t slice = kFutexSliceNs;
      if (deadline != 0) {
        uint64_t now = MonotonicNs();
        if (now >= deadline) {
          client_waiting.store(0, std::memory_order_relaxed);
          abandoned.store(true, std::memory_order_release);
          return DeadlineExceededError("shm: no answer within " + std::to_string(timeout_ms) +
                                       " ms");
        }
        slice = std::min<int64_t>(slice, static_cast<int64_t>(deadline - now));
      }
      FutexWait(&state, s, slice);
      if (state.load(std::memory_order_acquire) == done) break;
      if (HungUp()) return Broken();
    }
    client_waiting.store(0, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    return Status::Ok();
  }
};

namespace {

Status SendAll(int fd, const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return UnavailableError(Errno("shm: send hello"));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Receives the WelcomeMessage and the descriptors that ride on it.
Status ReceiveWelcome(int fd, shm::WelcomeMessage* welcome, std::vector<int>* fds) {
  auto* p = reinterpret_cast<uint8_t*>(welcome);
  size_t got = 0;
  const uint64_t deadline = MonotonicNs() + uint64_t{kHandshakeTimeoutMs} * 1'000'000;
  while (got < sizeof(*welcome)) {
    uint64_t now = MonotonicNs();
    if (now >= deadline) return UnavailableError("shm: no welcome from the server within 5 s");
    pollfd pfd{fd, POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>((deadline - now) / 1'000'000 + 1));
    if (ready < 0 && errno != EINTR) return UnavailableError(Errno("shm: poll"));
    if (ready <= 0) continue;
    iovec iov{p + got, sizeof(*welcome) - got};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return UnavailableError(Errno("shm: recvmsg welcome"));
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t k = 0; k < count; ++k) {
          int received;
          std::memcpy(&received, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
          fds->push_back(received);
        }
      }
    }
    if ((msg.msg_flags & MSG_CTRUNC) != 0) {
      return InternalError("shm: the server sent more descriptors than the protocol allows");
    }
    if (n == 0) {
      return UnavailableError("shm: the server closed the socket during the handshake");
    }
    got += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status ValidateHeader(const shm::RegionHeader& h, const shm::WelcomeMessage& welcome,
                      uint64_t mapped_size) {
  auto fail = [](std::string what) {
    return FailedPreconditionError("shm: region header invalid: " + what);
  };
  if (h.magic != shm::kMagic) return fail("bad magic");
  if (h.abi_version != shm::kAbiVersion) {
    return fail("ABI version " + std::to_string(h.abi_version) + ", this client speaks " +
                std::to_string(shm::kAbiVersion));
  }
  if (h.header_size != shm::kHeaderSize)
    return fail("header_size " + std::to_string(h.header_size));
  if (h.region_size != mapped_size || h.region_size != welcome.region_size) {
    return fail("region_size " + std::to_string(h.region_size) + " but the memfd holds " +
                std::to_string(mapped_size) + " and the welcome said " +
                std::to_string(welcome.region_size));
  }
  if (h.generation != welcome.generation) return fail("generation differs from the welcome");
  if (h.input_width < 1 || h.output_width < 1 || h.max_rows < 1 ||
      h.max_rows > shm::kMaxRowsPerSlot || h.tensor_slot_count < 1 ||
      h.tensor_slot_count > shm::kMaxTensorSlots || h.frame_slot_count > shm::kMaxFrameSlots ||
      h.frame_capacity > shm::kMaxFrameBytes || h.input_width > (1u << 20) ||
      h.output_width > (1u << 16)) {
    return fail("widths, counts or capacities out of range");
  }
  if (h.checksum_kind > static_cast<uint32_t>(shm::ChecksumKind::kSha256)) {
    return fail("unknown checksum_kind " + std::to_string(h.checksum_kind));
  }
  shm::RegionGeometry g;
  g.input_width = h.input_width;
  g.output_width = h.output_width;
  g.max_rows = h.max_rows;
  g.tensor_slot_count = h.tensor_slot_count;
  g.frame_slot_count = h.frame_slot_count;
  g.frame_capacity = h.frame_capacity;
  if (h.tensor_slots_offset != g.tensor_slots_offset() ||
      h.tensor_slot_stride != g.tensor_slot_stride() ||
      (h.frame_slot_count > 0 && (h.frame_slots_offset != g.frame_slots_offset() ||
                                  h.frame_slot_stride != g.frame_slot_stride())) ||
      g.region_size() > h.region_size) {
    return fail("slot offsets or strides differ from the ABI 1 geometry");
  }
  return Status::Ok();
}

shm::HelloMessage MakeHello(const ShmRegionRequest& request) {
  shm::HelloMessage hello{};
  hello.magic = shm::kMagic;
  hello.abi_version = shm::kAbiVersion;
  hello.tensor_slot_count = request.tensor_slots;
  hello.max_rows = request.max_rows;
  hello.frame_slot_count = request.frame_slots;
  hello.frame_capacity = request.frame_slots > 0 ? request.frame_bytes : 0;
  hello.checksum_kind = request.checksum;
  return hello;
}

// The welcome's verdict, the same for both rendezvous: a refusal becomes the server's message
// with its status mapped like a slot's.
Status CheckWelcome(shm::WelcomeMessage& welcome) {
  if (welcome.magic != shm::kMagic) return FailedPreconditionError("shm: welcome has a bad magic");
  if (welcome.status != 0) {
    welcome.message[sizeof(welcome.message) - 1] = '\0';
    shm::SlotResponse r{};
    std::string text = "shm: the server refused the session: ";
    text += welcome.message;
    std::memcpy(r.error, text.data(), std::min(text.size(), sizeof(r.error)));
    r.error_length = static_cast<uint32_t>(std::min(text.size(), sizeof(r.error)));
    return StatusFromShm(welcome.status, r);
  }
  if (welcome.abi_version != shm::kAbiVersion) {
    return FailedPreconditionError("shm: server speaks ABI " + std::to_string(welcome.abi_version) +
                                   ", this client " + std::to_string(shm::kAbiVersion));
  }
  return Status::Ok();
}

// Maps the region in session->region_fd and validates its header against the welcome.
Status MapRegion(ShmClient::Session* session, const shm::WelcomeMessage& welcome) {
  const int memfd = session->region_fd;
  struct stat st {};
  if (::fstat(memfd, &st) != 0) return InternalError(Errno("shm: fstat region"));
  if (st.st_size < static_cast<off_t>(shm::kHeaderSize)) {
    return FailedPreconditionError("shm: region smaller than its header");
  }
  session->size = static_cast<uint64_t>(st.st_size);
  void* base = ::mmap(nullptr, session->size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (base == MAP_FAILED) return InternalError(Errno("shm: mmap region"));
  session->base = static_cast<uint8_t*>(base);
  session->header = reinterpret_cast<shm::RegionHeader*>(base);
  RETURN_IF_ERROR(ValidateHeader(*session->header, welcome, session->size));
  session->generation = session->header->generation;
  session->checksum = static_cast<shm::ChecksumKind>(session->header->checksum_kind);
  const uint32_t tensors = session->header->tensor_slot_count;
  const uint32_t frames = session->header->frame_slot_count;
  session->tensor_sequence = std::make_unique<uint64_t[]>(tensors);
  session->frame_sequence = std::make_unique<uint64_t[]>(std::max(frames, 1u));
  session->tensor_abandoned = std::make_unique<std::atomic<bool>[]>(tensors);
  session->frame_abandoned = std::make_unique<std::atomic<bool>[]>(std::max(frames, 1u));
  return Status::Ok();
}

// Over the socket (section 1). `connect_errno` receives connect's errno when it fails (0 when
// the connection was made), so the caller can decide on the lobby fallback.
Result<std::shared_ptr<ShmClient::Session>> Handshake(const std::string& path,
                                                      const ShmRegionRequest& request,
                                                      int* connect_errno) {
  *connect_errno = 0;
  auto session = std::make_shared<ShmClient::Session>();
  session->spin_ns = uint64_t{request.spin_us} * 1000;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgumentError("shm: socket path longer than " +
                                std::to_string(sizeof(addr.sun_path) - 1) + " bytes: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  session->socket_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (session->socket_fd < 0) return InternalError(Errno("shm: socket"));
  if (::connect(session->socket_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    *connect_errno = errno;
    return UnavailableError("shm: cannot connect to " + path + ": " + std::strerror(errno) +
                            " (is `brainstem serve` running with shm enabled?)");
  }
  const shm::HelloMessage hello = MakeHello(request);
  // A server that refuses a peer outright (another uid) writes its refusal and closes before
  // reading the hello; the send then fails, but the refusal is still waiting to be read, and it
  // says why far better than "broken pipe".
  Status sent = SendAll(session->socket_fd, &hello, sizeof(hello));

  shm::WelcomeMessage welcome{};
  std::vector<int> fds;
  Status received = ReceiveWelcome(session->socket_fd, &welcome, &fds);
  if (!sent.ok() && !received.ok()) return sent;
  // Adopt every descriptor at once so none leaks on any error path below.
  struct FdCloser {
    std::vector<int>* fds;
    ~FdCloser() {
      for (int fd : *fds) ::close(fd);
    }
  } closer{&fds};
  RETURN_IF_ERROR(received);
  RETURN_IF_ERROR(CheckWelcome(welcome));
  if (fds.size() != 2) {
    return FailedPreconditionError("shm: expected 2 descriptors with the welcome, got " +
                                   std::to_string(fds.size()));
  }
  session->region_fd = fds[0];
  session->doorbell_fd = fds[1];
  fds.clear();  // both descriptors now belong to the session
  RETURN_IF_ERROR(MapRegion(session.get(), welcome));
  return session;
}

// Through the /dev/shm lobby of `name` (section 8).
Result<std::shared_ptr<ShmClient::Session>> NamedHandshake(const std::string& name,
                                                           const ShmRegionRequest& request) {
  auto session = std::make_shared<ShmClient::Session>();
  session->spin_ns = uint64_t{request.spin_us} * 1000;
  ASSIGN_OR_RETURN(session->lobby,
                   ClaimThroughLobby(name, MakeHello(request), kHandshakeTimeoutMs));
  shm::WelcomeMessage welcome = session->lobby.welcome;
  RETURN_IF_ERROR(CheckWelcome(welcome));  // a refusal: the session's destructor frees the claim
  session->region_fd = std::exchange(session->lobby.region_fd, -1);
  RETURN_IF_ERROR(MapRegion(session.get(), welcome));
  MarkAttached(session->lobby);
  return session;
}

// By the endpoint's mode: shm://name falls back to the lobby only when nothing listens at the
// socket path (missing file, or a stale one that refuses); a server that answered is final.
Result<std::shared_ptr<ShmClient::Session>> ConnectSession(const std::string& socket_path,
                                                           const std::string& shm_name,
                                                           Endpoint::Rendezvous rendezvous,
                                                           const ShmRegionRequest& request) {
  if (rendezvous == Endpoint::Rendezvous::kNamed) return NamedHandshake(shm_name, request);
  int connect_errno = 0;
  auto session = Handshake(socket_path, request, &connect_errno);
  if (session.ok() || rendezvous != Endpoint::Rendezvous::kSocketThenNamed ||
      (connect_errno != ENOENT && connect_errno != ECONNREFUSED)) {
    return session;
  }
  auto named = NamedHandshake(shm_name, request);
  if (named.ok() || named.status().code() != StatusCode::kUnavailable) return named;
  return UnavailableError(session.status().message() +
                          "; and through the lobby: " + named.status().message());
}

}  // namespace

// --- FrameBuffer --------------------------------------------------------------------------

FrameBuffer::FrameBuffer(FrameBuffer&& other) noexcept { *this = std::move(other); }

FrameBuffer& FrameBuffer::operator=(FrameBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    session_ = std::move(other.session_);
    owner_ = std::exchange(other.owner_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
    region_fd_ = std::exchange(other.region_fd_, -1);
    region_offset_ = std::exchange(other.region_offset_, 0);
    slot_ = other.slot_;
  }
  return *this;
}

FrameBuffer::~FrameBuffer() { Release(); }

void FrameBuffer::Release() {
  if (data_ != nullptr) {
    auto* slot = reinterpret_cast<shm::FrameSlot*>(data_ - shm::kFramePixelsOffset);
    slot->state.store(U(SlotState::kFree), std::memory_order_release);
  }
  data_ = nullptr;
  owner_ = nullptr;
  session_.reset();
}

// --- ShmClient ----------------------------------------------------------------------------

ShmClient::ShmClient(std::string socket_path, ShmRegionRequest request,
                     Endpoint::Rendezvous rendezvous, std::string shm_name)
    : socket_path_(std::move(socket_path)),
      request_(request),
      rendezvous_(rendezvous),
      shm_name_(std::move(shm_name)) {}

Result<std::shared_ptr<ShmClient::Session>> ShmClient::Connect() const {
  return ConnectSession(socket_path_, shm_name_, rendezvous_, request_);
}

Result<std::unique_ptr<ShmClient>> ShmClient::Create(std::string socket_path,
                                                     ShmRegionRequest request) {
  Endpoint endpoint;
  endpoint.rendezvous = Endpoint::Rendezvous::kSocket;
  endpoint.socket_path = std::move(socket_path);
  endpoint.region = request;
  return Create(endpoint);
}

ShmClient::~ShmClient() = default;

Result<std::unique_ptr<ShmClient>> ShmClient::Create(const Endpoint& endpoint) {
  std::unique_ptr<ShmClient> client(
      new ShmClient(endpoint.socket_path, endpoint.region, endpoint.rendezvous, endpoint.shm_name));
  ASSIGN_OR_RETURN(client->session_, client->Connect());
  const shm::RegionHeader& h = *client->session_->header;
  client->input_width_ = static_cast<int32_t>(h.input_width);
  client->output_width_ = static_cast<int32_t>(h.output_width);
  client->max_rows_ = static_cast<int32_t>(h.max_rows);
  // The region carries widths, not names: assume the CarlaRL layout (docs/clients.md).
  if (h.input_width >= 2) {
    client->features_ = {{"speed", 1}, {"steering", 1}};
    if (h.input_width > 2) {
      client->features_.push_back({"sensors", static_cast<int32_t>(h.input_width - 2)});
    }
  } else {
    client->features_ = {{"x", static_cast<int32_t>(h.input_width)}};
  }
  if (h.output_width == 3) {
    client->names_ = {"throttle", "brake", "steer"};
  } else {
    for (uint32_t i = 0; i < h.output_width; ++i) {
      std::string name = std::to_string(i);
      name.insert(name.begin(), 'a');
      client->names_.push_back(std::move(name));
    }
  }
  return client;
}

uint64_t ShmClient::generation() const {
  std::lock_guard lock(mu_);
  return session_ ? session_->generation : 0;
}

shm::ChecksumKind ShmClient::checksum_kind() const {
  std::lock_guard lock(mu_);
  return session_ ? session_->checksum : shm::ChecksumKind::kNone;
}

Result<std::shared_ptr<ShmClient::Session>> ShmClient::CurrentSession() {
  std::lock_guard lock(mu_);
  if (session_ && !session_->broken.load(std::memory_order_acquire)) {
    if (session_->header->server_state.load(std::memory_order_acquire) != 2) return session_;
    // The server announced it is closing: this call fails, the next one reconnects.
    return session_->Broken();
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Session> fresh, Connect());
  const shm::RegionHeader& h = *fresh->header;
  if (static_cast<int32_t>(h.input_width) != input_width_ ||
      static_cast<int32_t>(h.output_width) != output_width_ ||
      static_cast<int32_t>(h.max_rows) != max_rows_) {
    return FailedPreconditionError("shm: the restarted server serves a model of other widths (" +
                                   std::to_string(h.input_width) + " in, " +
                                   std::to_string(h.output_width) + " out); create a new client");
  }
  session_ = std::move(fresh);
  return session_;
}

Status ShmClient::PredictRaw(const float* rows, int32_t n_rows, float* actions_out,
                             const PredictOptions& options) {
  const uint64_t call_start = MonotonicNs();
  if (n_rows < 1 || n_rows > max_rows_) {
    return InvalidArgumentError("predict: rows must be 1.." + std::to_string(max_rows_) +
                                " for this region (got " + std::to_string(n_rows) +
                                "; connect with ?rows=N for more)");
  }
  const size_t values = static_cast<size_t>(n_rows) * static_cast<size_t>(input_width_);
  for (size_t k = 0; k < values; ++k) {
    if (!std::isfinite(rows[k])) {
      return InvalidArgumentError("observations[" + std::to_string(k / input_width_) + "] column " +
                                  std::to_string(k % input_width_) + ": must be a finite number");
    }
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Session> session, CurrentSession());
  Session& s = *session;
  ASSIGN_OR_RETURN(uint32_t index,
                   s.Claim(
                       s.header->tensor_slot_count, [&s](uint32_t i) { return s.tensor(i); },
                       s.tensor_abandoned.get()));
  shm::TensorSlot* slot = s.tensor(index);
  const uint64_t sequence = ++s.tensor_sequence[index];
  float* input = s.input(index);
  std::memcpy(input, rows, values * sizeof(float));
  slot->sequence = sequence;
  slot->rows = static_cast<uint32_t>(n_rows);
  slot->flags = options.deterministic ? 0u : shm::kFlagStochastic;
  slot->seed = options.deterministic ? 0 : (options.seed ? *options.seed : RandomSeed());
  slot->checksum = PayloadChecksum(s.checksum, input, values * sizeof(float));
  if (options.corrupt_after_checksum) reinterpret_cast<uint8_t*>(input)[0] ^= 0x01;
  slot->t_submit_ns = MonotonicNs();
  const uint64_t t_submit = slot->t_submit_ns;
  RETURN_IF_ERROR(s.SubmitAndWait(slot->state, slot->client_waiting, s.tensor_abandoned[index],
                                  options.timeout_ms));
  const uint64_t seen = MonotonicNs();
  const shm::SlotResponse& r = slot->response;
  Status result = Status::Ok();
  if (r.response_sequence != sequence) {
    result = InternalError("shm: stale answer (sequence " + std::to_string(r.response_sequence) +
                           ", expected " + std::to_string(sequence) + ")");
  } else if (r.status != 0) {
    result = StatusFromShm(r.status, r);
  } else {
    shm::RegionGeometry g;
    g.input_width = s.header->input_width;
    g.output_width = s.header->output_width;
    g.max_rows = s.header->max_rows;
    std::memcpy(actions_out, s.output(index, g.tensor_output_offset()),
                static_cast<size_t>(n_rows) * static_cast<size_t>(output_width_) * sizeof(float));
  }
  if (options.timings != nullptr) FillTimings(call_start, seen, t_submit, r, options.timings);
  slot->state.store(U(SlotState::kFree), std::memory_order_release);
  return result;
}

Result<FrameBuffer> ShmClient::AcquireFrameBuffer() {
  ASSIGN_OR_RETURN(std::shared_ptr<Session> session, CurrentSession());
  Session& s = *session;
  if (s.header->frame_slot_count == 0) {
    return UnimplementedError("shm: this region has no frame slots (connect with ?frames=N)");
  }
  ASSIGN_OR_RETURN(uint32_t index,
                   s.Claim(
                       s.header->frame_slot_count, [&s](uint32_t i) { return s.frame(i); },
                       s.frame_abandoned.get()));
  FrameBuffer buffer;
  buffer.owner_ = this;
  buffer.data_ = s.pixels(index);
  buffer.capacity_ = s.header->frame_capacity;
  buffer.region_fd_ = s.region_fd;
  buffer.region_offset_ = static_cast<uint64_t>(buffer.data_ - s.base);
  buffer.slot_ = index;
  buffer.session_ = std::move(session);
  return buffer;
}

Result<FrameAck> ShmClient::SubmitFrame(const uint8_t* pixels, uint32_t width, uint32_t height,
                                        uint32_t stride, PixelFormat format,
                                        const FrameOptions& options) {
  if (pixels == nullptr) return InvalidArgumentError("frame: pixels is null");
  const uint64_t bytes = uint64_t{stride} * height;
  ASSIGN_OR_RETURN(FrameBuffer buffer, AcquireFrameBuffer());
  if (bytes > buffer.capacity()) {
    return InvalidArgumentError("frame: " + std::to_string(bytes) + " bytes exceed the slot's " +
                                std::to_string(buffer.capacity()) +
                                " (connect with ?frame_bytes=N)");
  }
  std::memcpy(buffer.data(), pixels, bytes);
  return SubmitFrameBuffer(std::move(buffer), width, height, stride, format, options);
}

Result<FrameAck> ShmClient::SubmitFrameBuffer(FrameBuffer buffer, uint32_t width, uint32_t height,
                                              uint32_t stride, PixelFormat format,
                                              const FrameOptions& options) {
  const uint64_t call_start = MonotonicNs();
  if (!buffer.valid() || buffer.owner_ != this) {
    return InvalidArgumentError(
        "frame: the buffer does not come from this client's "
        "AcquireFrameBuffer");
  }
  auto session = std::static_pointer_cast<Session>(buffer.session_);
  Session& s = *session;
  if (s.broken.load(std::memory_order_acquire)) return s.Broken();
  const uint32_t bpp = shm::BytesPerPixel(format);
  const uint64_t bytes = uint64_t{stride} * height;
  if (bpp == 0) return InvalidArgumentError("frame: unknown pixel format");
  if (width < 1 || height < 1 || width > shm::kMaxFrameDimension ||
      height > shm::kMaxFrameDimension) {
    return InvalidArgumentError("frame: width and height must be 1.." +
                                std::to_string(shm::kMaxFrameDimension));
  }
  if (uint64_t{stride} < uint64_t{width} * bpp) {
    return InvalidArgumentError("frame: stride " + std::to_string(stride) + " < width * " +
                                std::to_string(bpp) + " bytes per pixel");
  }
  if (bytes > buffer.capacity()) {
    return InvalidArgumentError("frame: " + std::to_string(bytes) + " bytes exceed the slot's " +
                                std::to_string(buffer.capacity()));
  }
  const bool has_query = options.request == kFrameOcrFind || options.request == kFrameOcrRegion;
  if (has_query && options.query.size() > kFrameQueryCapacity) {
    return InvalidArgumentError("frame: query is " + std::to_string(options.query.size()) +
                                " bytes (at most " + std::to_string(kFrameQueryCapacity) + ")");
  }
  const uint32_t index = buffer.slot_;
  shm::FrameSlot* slot = s.frame(index);
  const uint64_t sequence = ++s.frame_sequence[index];
  slot->sequence = sequence;
  slot->width = width;
  slot->height = height;
  slot->stride = stride;
  slot->format = static_cast<uint32_t>(format);
  slot->timestamp_ns = options.timestamp_ns;
  slot->payload_bytes = bytes;
  slot->request = options.request;
  // The query travels in the answer's field; the server copies it out before answering.
  const size_t query_bytes = has_query ? options.query.size() : 0;
  std::memcpy(slot->result, options.query.data(), query_bytes);
  slot->result[query_bytes] = '\0';
  slot->result_length = static_cast<uint32_t>(query_bytes);
  slot->checksum = PayloadChecksum(s.checksum, buffer.data(), bytes);
  if (options.corrupt_after_checksum && bytes > 0) buffer.data()[bytes / 2] ^= 0x01;
  slot->t_submit_ns = MonotonicNs();
  const uint64_t t_submit = slot->t_submit_ns;
  // From here the slot belongs to the protocol, not to the buffer.
  buffer.data_ = nullptr;
  buffer.session_.reset();
  RETURN_IF_ERROR(s.SubmitAndWait(slot->state, slot->client_waiting, s.frame_abandoned[index],
                                  options.timeout_ms));
  const uint64_t seen = MonotonicNs();
  const shm::SlotResponse& r = slot->response;
  Status status = Status::Ok();
  FrameAck ack;
  if (r.response_sequence != sequence) {
    status =
        InternalError("shm: stale frame answer (sequence " + std::to_string(r.response_sequence) +
                      ", expected " + std::to_string(sequence) + ")");
  } else if (r.status != 0) {
    status = StatusFromShm(r.status, r);
  } else {
    ack.sequence = sequence;
    const size_t length = std::min<size_t>(slot->result_length, sizeof(slot->result));
    ack.result.assign(slot->result, length);
    FillTimings(call_start, seen, t_submit, r, &ack.timings);
  }
  slot->state.store(U(SlotState::kFree), std::memory_order_release);
  if (!status.ok()) return status;
  return ack;
}

}  // namespace brainstem::client
