// RawClient: a minimal shared-memory client written straight against shm_layout.h, for the
// server's tests. It speaks the protocol step by step (hello, welcome with descriptors, slot
// transitions, doorbell, futex wait) and exposes the mapped slots so a test can also forge
// fields no real client library would write.
// Thread-compatible: one thread per slot; distinct slots may be used from distinct threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "common/result.h"
#include "transport/shm/region.h"
#include "transport/shm/shm_layout.h"

namespace brainstem::shm {

class RawClient {
 public:
  // A hello asking for these sizes (checksum: the server's default).
  static HelloMessage MakeHello(uint32_t tensor_slots = 4, uint32_t max_rows = 16,
                                uint32_t frame_slots = 0, uint64_t frame_capacity = 0,
                                uint32_t checksum_kind = kChecksumServerDefault);

  // Connects, sends `hello` and reads the welcome. A refusal is not an error: accepted() is
  // false and welcome() holds the status and message. Errors: kUnavailable for socket
  // failures, kInternal when the welcome is malformed or the region does not check out.
  static Result<std::unique_ptr<RawClient>> Connect(const std::string& socket_path,
                                                    const HelloMessage& hello);
  // The same through the lobby `lobby_shm_name` (docs/shm-protocol.md section 8): claims a slot
  // under its lock, leaves the hello, waits for WELCOME or REFUSED, opens and maps the region by
  // name and stores ATTACHED. A refusal is not an error (accepted() false, welcome() says why).
  static Result<std::unique_ptr<RawClient>> ConnectNamed(const std::string& lobby_shm_name,
                                                         const HelloMessage& hello);
  ~RawClient();  // unmaps and closes everything

  bool accepted() const { return view_.base != nullptr; }
  const WelcomeMessage& welcome() const { return welcome_; }
  std::string welcome_message() const;
  const RegionView& view() const { return view_; }
  RegionHeader* header() const { return view_.header(); }
  ChecksumKind checksum() const { return static_cast<ChecksumKind>(header()->checksum_kind); }

  // Claims tensor slot `slot` (FREE -> WRITING), copies `inputs` (rows * input_width raw
  // values), computes the checksum (unless `checksum_override`) and submits it.
  // REQUIRES: the slot is FREE.
  void SubmitTensor(uint32_t slot, std::span<const float> inputs, uint32_t rows, uint32_t flags = 0,
                    uint64_t seed = 0, std::optional<uint64_t> checksum_override = std::nullopt);
  // Publishes whatever the test wrote into the slot: t_submit_ns, SUBMITTED (release), a full
  // fence, then the doorbell when the server sleeps.
  void Submit(std::atomic<uint32_t>& state, uint64_t* t_submit_ns);
  void SubmitTensorRaw(uint32_t slot);
  void SubmitFrameRaw(uint32_t slot);
  // Copies pixels, fills the frame fields with a consistent header and submits.
  void SubmitFrame(uint32_t slot, std::span<const uint8_t> payload, uint32_t width, uint32_t height,
                   uint32_t stride, PixelFormat format,
                   std::optional<uint64_t> checksum_override = std::nullopt);

  // Waits for DONE: spins briefly, then sleeps on the futex. False on timeout.
  bool WaitTensor(uint32_t slot, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  bool WaitFrame(uint32_t slot, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // DONE -> FREE.
  void ReleaseTensor(uint32_t slot);
  void ReleaseFrame(uint32_t slot);

  std::string TensorError(uint32_t slot) const;
  ShmStatus TensorStatus(uint32_t slot) const;
  ShmStatus FrameStatus(uint32_t slot) const;

  // Hangs up the session (the server treats it as client death); the mapping stays. Over the
  // lobby: closes the lobby descriptor, which drops the claim's lock.
  void CloseSocket();
  int claim() const { return claim_; }
  int socket_fd() const { return socket_fd_; }

 private:
  RawClient() = default;
  static bool Wait(std::atomic<uint32_t>& state, std::atomic<uint32_t>& client_waiting,
                   std::chrono::milliseconds timeout);
  Status MapRegion();

  int socket_fd_ = -1;
  int memfd_ = -1;
  int doorbell_fd_ = -1;
  uint64_t size_ = 0;
  WelcomeMessage welcome_{};
  RegionView view_;
  uint64_t next_sequence_ = 1;
  int lobby_fd_ = -1;  // named sessions: its OFD holds the claim's lock
  void* lobby_ = nullptr;
  int claim_ = -1;
};

}  // namespace brainstem::shm
