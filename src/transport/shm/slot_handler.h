// SlotHandler: turns submitted slots of a session's region into work and answers them.
// A tensor slot (a policy step) is validated, its checksum verified, its raw rows normalized
// by PolicyIo into an InferRequest and submitted to the same Scheduler as HTTP, so shm and
// HTTP requests share batches; the completion decodes the actions straight into the slot's
// output and publishes DONE. A frame slot is validated and its checksum verified in place (no
// copy), then acknowledged. A bad slot gets an error status naming the field; nothing a client
// writes can fail the server.
// Tensor requests found in one polling pass over every session are submitted together
// (Flush), so requests of several clients share a backend call when the model is idle.
// Thread-safety: PollTensors, Flush and PollFrames are called by the one shm thread; completions
// run on whichever thread the scheduler finishes a request on and touch only their own slot.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/policy_io.h"
#include "engine/scheduler.h"
#include "telemetry/server_metrics.h"
#include "transport/shm/session.h"

namespace brainstem::shm {

// Frame requests beyond 0 (verify and acknowledge) go to a FrameConsumer: screen perception
// (OCR, docs/perception.md) implements it; the transport knows only this interface.
// The request kinds and the answer's capacity are part of the protocol (shm_layout.h).

class FrameConsumer {
 public:
  struct Frame {
    const uint8_t* pixels = nullptr;  // in the shared region, verified against its checksum
    uint32_t width = 0;
    uint32_t height = 0;
    uint32_t stride = 0;
    uint32_t format = 0;  // PixelFormat
    uint32_t request = 0;
    std::string query;   // kinds 2 and 3
    std::string stream;  // which cache: one per client session
  };
  // Called with the outcome: OK and the result text (<= kFrameResultCapacity bytes), or an
  // error status and message.
  using Done = std::function<void(Status status, std::string result)>;
  virtual ~FrameConsumer() = default;
  // Starts work on `frame` (its pixels stay valid until `done` runs) and calls `done` exactly
  // once, possibly on another thread; or refuses it (kUnimplemented for an unknown request,
  // kUnavailable when busy), and then never calls `done`.
  virtual Status Consume(const Frame& frame, Done done) = 0;
};

struct SlotHandlerOptions {
  int64_t request_timeout_ms = 0;           // deadline per tensor request; 0 = none
  FrameConsumer* frame_consumer = nullptr;  // frame requests other than 0; borrowed
};

class SlotHandler {
 public:
  // `io`, `scheduler` and `metrics` are borrowed. `io` and `metrics` must outlive every
  // completion, i.e. the scheduler; the scheduler must outlive the handler.
  SlotHandler(const PolicyIo* io, Scheduler* scheduler, ServerMetrics* metrics,
              SlotHandlerOptions options);

  // Claims (SUBMITTED -> PROCESSING) every submitted tensor slot of `session`'s region. Valid
  // requests are held until Flush (bad ones are answered at once). Returns the number claimed.
  int PollTensors(const std::shared_ptr<Session>& session);

  // Submits the tensor requests held since the last Flush in one Scheduler::SubmitMany; a
  // refused one is answered with its error. They complete later, possibly on a model thread.
  void Flush();

  // Claims and handles every submitted frame slot of `session`'s region; each is answered or
  // handed to the frame consumer before it returns. Returns the number claimed.
  int PollFrames(const std::shared_ptr<Session>& session);

  // Answers every still-submitted slot of `session` with `status` and `message` (the server is
  // stopping) so that waiting clients wake at once instead of timing out.
  void RefuseSubmitted(const Session& session, ShmStatus status, std::string_view message);

 private:
  void HandleTensor(const std::shared_ptr<Session>& session, uint32_t index);
  void HandleFrame(const std::shared_ptr<Session>& session, uint32_t index);

  struct Pending {
    std::unique_ptr<InferRequest> request;
    std::shared_ptr<Session> session;
    uint32_t index = 0;
  };

  const PolicyIo* const io_;
  Scheduler* const scheduler_;
  ServerMetrics* const metrics_;
  const SlotHandlerOptions options_;
  std::vector<Pending> pending_;  // claimed tensor requests not yet submitted
};

// Writes status and message (truncated to the field) into `response`. Exposed for tests.
void WriteError(SlotResponse* response, ShmStatus status, std::string_view message);

// CLOCK_MONOTONIC now, in nanoseconds (the clock of every t_*_ns field).
uint64_t MonotonicNowNs();

}  // namespace brainstem::shm
