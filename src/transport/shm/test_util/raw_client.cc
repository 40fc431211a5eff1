#include "transport/shm/test_util/raw_client.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "transport/shm/checksum.h"
#include "transport/shm/lobby_layout.h"
#include "transport/shm/ofd_lock.h"
#include "transport/shm/slot_handler.h"

namespace brainstem::shm {

HelloMessage RawClient::MakeHello(uint32_t tensor_slots, uint32_t max_rows, uint32_t frame_slots,
                                  uint64_t frame_capacity, uint32_t checksum_kind) {
  HelloMessage hello{};
  hello.magic = kMagic;
  hello.abi_version = kAbiVersion;
  hello.tensor_slot_count = tensor_slots;
  hello.max_rows = max_rows;
  hello.frame_slot_count = frame_slots;
  hello.frame_capacity = frame_capacity;
  hello.checksum_kind = checksum_kind;
  return hello;
}

Result<std::unique_ptr<RawClient>> RawClient::Connect(const std::string& socket_path,
                                                      const HelloMessage& hello) {
  std::unique_ptr<RawClient> client(new RawClient());
  client->socket_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client->socket_fd_ < 0) return UnavailableError("socket");
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof(address.sun_path) - 1);
  if (connect(client->socket_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return UnavailableError(std::string("connect: ") + std::strerror(errno));
  }
  // A refusal may arrive before the hello is read (uid check); ignore EPIPE then.
  [[maybe_unused]] ssize_t sent = send(client->socket_fd_, &hello, sizeof(hello), MSG_NOSIGNAL);

  iovec iov{&client->welcome_, sizeof(client->welcome_)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t got = recvmsg(client->socket_fd_, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC);
  if (got != static_cast<ssize_t>(sizeof(WelcomeMessage))) {
    return UnavailableError("welcome: got " + std::to_string(got) + " bytes");
  }
  int fds[2] = {-1, -1};
  int fd_count = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      fd_count = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      std::memcpy(fds, CMSG_DATA(c), sizeof(int) * static_cast<size_t>(std::min(fd_count, 2)));
    }
  }
  if (client->welcome_.magic != kMagic) return InternalError("welcome: bad magic");
  if (client->welcome_.status != static_cast<uint32_t>(ShmStatus::kOk)) {
    if (fd_count != 0) return InternalError("refusal carried descriptors");
    return client;
  }
  if (fd_count != 2) return InternalError("welcome carried " + std::to_string(fd_count) + " fds");
  client->memfd_ = fds[0];
  client->doorbell_fd_ = fds[1];
  RETURN_IF_ERROR(client->MapRegion());
  return client;
}

Result<std::unique_ptr<RawClient>> RawClient::ConnectNamed(const std::string& lobby_shm_name,
                                                           const HelloMessage& hello) {
  std::unique_ptr<RawClient> client(new RawClient());
  client->lobby_fd_ = shm_open(lobby_shm_name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (client->lobby_fd_ < 0)
    return UnavailableError("shm_open lobby: " + std::string(strerror(errno)));
  void* lobby = mmap(nullptr, kLobbySize, PROT_READ | PROT_WRITE, MAP_SHARED, client->lobby_fd_, 0);
  if (lobby == MAP_FAILED) return InternalError("mmap lobby");
  client->lobby_ = lobby;
  for (uint32_t i = 0; i < kLobbyClaimCount && client->claim_ < 0; ++i) {
    if (TryLockByte(client->lobby_fd_, ClaimLockByte(i)) != LockResult::kLocked) continue;
    uint32_t expected = static_cast<uint32_t>(ClaimState::kFree);
    if (ClaimAt(lobby, i)->state.compare_exchange_strong(
            expected, static_cast<uint32_t>(ClaimState::kClaimed))) {
      client->claim_ = static_cast<int>(i);
    } else {
      UnlockByte(client->lobby_fd_, ClaimLockByte(i));
    }
  }
  if (client->claim_ < 0) return UnavailableError("lobby full");
  LobbyClaim* claim = ClaimAt(lobby, static_cast<uint32_t>(client->claim_));
  claim->hello = hello;
  claim->state.store(static_cast<uint32_t>(ClaimState::kHello), std::memory_order_seq_cst);
  auto* header = static_cast<LobbyHeader*>(lobby);
  header->doorbell.fetch_add(1, std::memory_order_seq_cst);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&header->doorbell), FUTEX_WAKE, 1, nullptr,
          nullptr, 0);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  uint32_t state;
  while ((state = claim->state.load(std::memory_order_seq_cst)) ==
         static_cast<uint32_t>(ClaimState::kHello)) {
    if (std::chrono::steady_clock::now() > until) return UnavailableError("no welcome in 5 s");
    timespec ts{0, 10'000'000};
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&claim->state), FUTEX_WAIT, state, &ts, nullptr,
            0);
  }
  client->welcome_ = claim->welcome;
  if (state == static_cast<uint32_t>(ClaimState::kRefused)) return client;
  if (state != static_cast<uint32_t>(ClaimState::kWelcome)) {
    return InternalError("claim state " + std::to_string(state));
  }
  const std::string name(claim->region_name, strnlen(claim->region_name, kRegionNameCapacity));
  client->memfd_ = shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (client->memfd_ < 0) return InternalError("shm_open region " + name);
  RETURN_IF_ERROR(client->MapRegion());
  claim->state.store(static_cast<uint32_t>(ClaimState::kAttached), std::memory_order_seq_cst);
  header->doorbell.fetch_add(1, std::memory_order_seq_cst);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&header->doorbell), FUTEX_WAKE, 1, nullptr,
          nullptr, 0);
  return client;
}

Status RawClient::MapRegion() {
  size_ = welcome_.region_size;
  void* base = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0);
  if (base == MAP_FAILED) return InternalError(std::string("mmap: ") + std::strerror(errno));
  auto* header = static_cast<RegionHeader*>(base);
  if (header->magic != kMagic || header->abi_version != kAbiVersion ||
      header->region_size != size_ || header->generation != welcome_.generation) {
    munmap(base, size_);
    return InternalError("region header does not match the welcome");
  }
  RegionGeometry g;
  g.input_width = header->input_width;
  g.output_width = header->output_width;
  g.max_rows = header->max_rows;
  g.tensor_slot_count = header->tensor_slot_count;
  g.frame_slot_count = header->frame_slot_count;
  g.frame_capacity = header->frame_capacity;
  if (g.region_size() != size_ || g.tensor_slot_stride() != header->tensor_slot_stride ||
      g.frame_slots_offset() != header->frame_slots_offset) {
    munmap(base, size_);
    return InternalError("region geometry does not match the header");
  }
  view_ = RegionView{static_cast<uint8_t*>(base), g};
  return Status::Ok();
}

RawClient::~RawClient() {
  if (view_.base != nullptr) munmap(view_.base, size_);
  CloseSocket();
  if (memfd_ >= 0) close(memfd_);
  if (doorbell_fd_ >= 0) close(doorbell_fd_);
}

std::string RawClient::welcome_message() const {
  return std::string(welcome_.message, strnlen(welcome_.message, sizeof(welcome_.message)));
}

void RawClient::CloseSocket() {
  if (socket_fd_ >= 0) close(socket_fd_);
  socket_fd_ = -1;
  if (lobby_ != nullptr) munmap(lobby_, kLobbySize);
  lobby_ = nullptr;
  if (lobby_fd_ >= 0) close(lobby_fd_);  // drops the claim's lock: the session ends
  lobby_fd_ = -1;
}

void RawClient::Submit(std::atomic<uint32_t>& state, uint64_t* t_submit_ns) {
  *t_submit_ns = MonotonicNowNs();
  // Both seq_cst: pairs with the server storing server_sleeping and then re-reading the slots.
  state.store(static_cast<uint32_t>(SlotState::kSubmitted), std::memory_order_seq_cst);
  if (header()->server_sleeping.load(std::memory_order_seq_cst) != 0) {
    if (lobby_ != nullptr) {
      auto* lobby = static_cast<LobbyHeader*>(lobby_);
      lobby->doorbell.fetch_add(1, std::memory_order_seq_cst);
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&lobby->doorbell), FUTEX_WAKE, 1, nullptr,
              nullptr, 0);
      return;
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t written = write(doorbell_fd_, &one, sizeof(one));
  }
}

void RawClient::SubmitTensorRaw(uint32_t slot) {
  TensorSlot* s = view_.tensor_slot(slot);
  Submit(s->state, &s->t_submit_ns);
}

void RawClient::SubmitFrameRaw(uint32_t slot) {
  FrameSlot* s = view_.frame_slot(slot);
  Submit(s->state, &s->t_submit_ns);
}

void RawClient::SubmitTensor(uint32_t slot, std::span<const float> inputs, uint32_t rows,
                             uint32_t flags, uint64_t seed,
                             std::optional<uint64_t> checksum_override) {
  TensorSlot* s = view_.tensor_slot(slot);
  s->state.store(static_cast<uint32_t>(SlotState::kWriting), std::memory_order_relaxed);
  std::memcpy(view_.tensor_input(slot), inputs.data(), inputs.size_bytes());
  s->sequence = next_sequence_++;
  s->rows = rows;
  s->flags = flags;
  s->seed = seed;
  s->checksum = checksum_override.has_value()
                    ? *checksum_override
                    : Checksum(checksum(), view_.tensor_input(slot), inputs.size_bytes());
  SubmitTensorRaw(slot);
}

void RawClient::SubmitFrame(uint32_t slot, std::span<const uint8_t> payload, uint32_t width,
                            uint32_t height, uint32_t stride, PixelFormat format,
                            std::optional<uint64_t> checksum_override) {
  FrameSlot* s = view_.frame_slot(slot);
  s->state.store(static_cast<uint32_t>(SlotState::kWriting), std::memory_order_relaxed);
  std::memcpy(view_.frame_pixels(slot), payload.data(), payload.size());
  s->sequence = next_sequence_++;
  s->width = width;
  s->height = height;
  s->stride = stride;
  s->format = static_cast<uint32_t>(format);
  s->timestamp_ns = MonotonicNowNs();
  s->payload_bytes = payload.size();
  s->request = 0;
  s->reserved = 0;
  s->checksum = checksum_override.has_value()
                    ? *checksum_override
                    : Checksum(checksum(), view_.frame_pixels(slot), payload.size());
  SubmitFrameRaw(slot);
}

bool RawClient::Wait(std::atomic<uint32_t>& state, std::atomic<uint32_t>& client_waiting,
                     std::chrono::milliseconds timeout) {
  constexpr uint32_t kDone = static_cast<uint32_t>(SlotState::kDone);
  const auto start = std::chrono::steady_clock::now();
  // Spin first: an idle server answers a small request within a few microseconds.
  while (std::chrono::steady_clock::now() - start < std::chrono::microseconds(30)) {
    if (state.load(std::memory_order_acquire) == kDone) return true;
  }
  client_waiting.store(1, std::memory_order_seq_cst);
  bool done = false;
  while (!(done = state.load(std::memory_order_seq_cst) == kDone)) {
    const auto left = timeout - (std::chrono::steady_clock::now() - start);
    if (left <= std::chrono::nanoseconds(0)) break;
    const uint32_t seen = state.load(std::memory_order_seq_cst);
    if (seen == kDone) continue;
    timespec ts{0, 10'000'000};  // re-check every 10 ms so a dead server is noticed
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&state), FUTEX_WAIT, seen, &ts, nullptr, 0);
  }
  client_waiting.store(0, std::memory_order_relaxed);
  return done;  // the seq_cst load that saw DONE also acquired the answer
}

bool RawClient::WaitTensor(uint32_t slot, std::chrono::milliseconds timeout) {
  TensorSlot* s = view_.tensor_slot(slot);
  return Wait(s->state, s->client_waiting, timeout);
}

bool RawClient::WaitFrame(uint32_t slot, std::chrono::milliseconds timeout) {
  FrameSlot* s = view_.frame_slot(slot);
  return Wait(s->state, s->client_waiting, timeout);
}

void RawClient::ReleaseTensor(uint32_t slot) {
  view_.tensor_slot(slot)->state.store(static_cast<uint32_t>(SlotState::kFree),
                                       std::memory_order_release);
}

void RawClient::ReleaseFrame(uint32_t slot) {
  view_.frame_slot(slot)->state.store(static_cast<uint32_t>(SlotState::kFree),
                                      std::memory_order_release);
}

std::string RawClient::TensorError(uint32_t slot) const {
  const SlotResponse& r = view_.tensor_slot(slot)->response;
  return std::string(r.error, std::min<size_t>(r.error_length, sizeof(r.error)));
}

ShmStatus RawClient::TensorStatus(uint32_t slot) const {
  return static_cast<ShmStatus>(view_.tensor_slot(slot)->response.status);
}

ShmStatus RawClient::FrameStatus(uint32_t slot) const {
  return static_cast<ShmStatus>(view_.frame_slot(slot)->response.status);
}

}  // namespace brainstem::shm
