#include "transport/shm/slot_handler.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "transport/shm/checksum.h"
#include "transport/shm/validation.h"

namespace brainstem::shm {
namespace {

// steady_clock is CLOCK_MONOTONIC on Linux, so scheduler timings convert directly.
uint64_t ToNs(TimePoint t) {
  if (t == TimePoint{}) return 0;  // never stamped (the request failed before running)
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

// Publishes a slot's answer. The store of DONE and the load of client_waiting are sequentially
// consistent: the client stores client_waiting = 1 and then re-reads state (in FUTEX_WAIT), so
// with weaker ordering both could miss each other and the client would sleep until its
// timeout. The futex is shared between processes, so no FUTEX_PRIVATE_FLAG.
void Publish(std::atomic<uint32_t>& state, std::atomic<uint32_t>& client_waiting) {
  state.store(static_cast<uint32_t>(SlotState::kDone), std::memory_order_seq_cst);
  if (client_waiting.load(std::memory_order_seq_cst) != 0) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&state), FUTEX_WAKE, INT_MAX, nullptr, nullptr,
            0);
  }
}

constexpr uint32_t kSubmitted = static_cast<uint32_t>(SlotState::kSubmitted);
constexpr uint32_t kProcessing = static_cast<uint32_t>(SlotState::kProcessing);

// Answers a tensor slot with an error and publishes it.
void FailTensorSlot(TensorSlot* slot, ShmStatus status, std::string_view message) {
  WriteError(&slot->response, status, message);
  slot->response.t_done_ns = MonotonicNowNs();
  Publish(slot->state, slot->client_waiting);
}

void BeginResponse(SlotResponse* response, uint64_t sequence, uint64_t received_ns) {
  response->response_sequence = sequence;
  response->status = static_cast<uint32_t>(ShmStatus::kOk);
  response->error_length = 0;
  response->error[0] = '\0';
  response->t_received_ns = received_ns;
  response->t_compute_start_ns = 0;
  response->t_compute_end_ns = 0;
  response->t_done_ns = 0;
}

}  // namespace

uint64_t MonotonicNowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void WriteError(SlotResponse* response, ShmStatus status, std::string_view message) {
  const size_t n = std::min(message.size(), sizeof(response->error) - 1);
  std::memcpy(response->error, message.data(), n);
  response->error[n] = '\0';
  response->error_length = static_cast<uint32_t>(n);
  response->status = static_cast<uint32_t>(status);
}

SlotHandler::SlotHandler(const PolicyIo* io, Scheduler* scheduler, ServerMetrics* metrics,
                         SlotHandlerOptions options)
    : io_(io), scheduler_(scheduler), metrics_(metrics), options_(options) {}

int SlotHandler::PollTensors(const std::shared_ptr<Session>& session) {
  const RegionView& view = session->view();
  int claimed = 0;
  for (uint32_t i = 0; i < view.geometry.tensor_slot_count; ++i) {
    std::atomic<uint32_t>& state = view.tensor_slot(i)->state;
    if (state.load(std::memory_order_relaxed) != kSubmitted) continue;
    uint32_t expected = kSubmitted;
    // Acquire: the client's payload and fields, published by its release store, are visible.
    if (!state.compare_exchange_strong(expected, kProcessing, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      continue;
    }
    ++claimed;
    HandleTensor(session, i);
  }
  return claimed;
}

int SlotHandler::PollFrames(const std::shared_ptr<Session>& session) {
  const RegionView& view = session->view();
  int claimed = 0;
  for (uint32_t i = 0; i < view.geometry.frame_slot_count; ++i) {
    std::atomic<uint32_t>& state = view.frame_slot(i)->state;
    if (state.load(std::memory_order_relaxed) != kSubmitted) continue;
    uint32_t expected = kSubmitted;
    if (!state.compare_exchange_strong(expected, kProcessing, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      continue;
    }
    ++claimed;
    HandleFrame(session, i);
  }
  return claimed;
}

void SlotHandler::RefuseSubmitted(const Session& session, ShmStatus status,
                                  std::string_view message) {
  const RegionView& view = session.view();
  auto refuse = [&](std::atomic<uint32_t>& state, std::atomic<uint32_t>& client_waiting,
                    SlotResponse* response, const uint64_t* sequence) {
    uint32_t expected = static_cast<uint32_t>(SlotState::kSubmitted);
    if (!state.compare_exchange_strong(expected, static_cast<uint32_t>(SlotState::kProcessing),
                                       std::memory_order_acquire, std::memory_order_relaxed)) {
      return;
    }
    BeginResponse(response, ReadOnce(*sequence), MonotonicNowNs());
    WriteError(response, status, message);
    response->t_done_ns = response->t_received_ns;
    Publish(state, client_waiting);
  };
  for (uint32_t i = 0; i < view.geometry.tensor_slot_count; ++i) {
    TensorSlot* slot = view.tensor_slot(i);
    refuse(slot->state, slot->client_waiting, &slot->response, &slot->sequence);
  }
  for (uint32_t i = 0; i < view.geometry.frame_slot_count; ++i) {
    FrameSlot* slot = view.frame_slot(i);
    refuse(slot->state, slot->client_waiting, &slot->response, &slot->sequence);
  }
}

void SlotHandler::HandleTensor(const std::shared_ptr<Session>& session, uint32_t index) {
  const uint64_t received_ns = MonotonicNowNs();
  const RegionView& view = session->view();
  TensorSlot* slot = view.tensor_slot(index);
  metrics_->shm_requests_total.fetch_add(1, std::memory_order_relaxed);
  const TensorRequest request = ReadTensorRequest(*slot);
  BeginResponse(&slot->response, request.sequence, received_ns);

  auto fail = [&](ShmStatus status, std::string_view message) {
    FailTensorSlot(slot, status, message);
  };

  if (Status s = ValidateTensorRequest(request, view.geometry, io_->stochastic()); !s.ok()) {
    metrics_->shm_bad_slots_total.fetch_add(1, std::memory_order_relaxed);
    fail(ToShmStatus(s.code()), s.message());
    return;
  }
  const uint32_t width = view.geometry.input_width;
  const size_t values = size_t{request.rows} * width;
  const float* raw = view.tensor_input(index);
  const ChecksumKind kind = session->region().checksum();
  if (kind != ChecksumKind::kNone) {
    const uint64_t actual = Checksum(kind, raw, values * sizeof(float));
    if (actual != request.checksum) {
      metrics_->shm_checksum_failures_total.fetch_add(1, std::memory_order_relaxed);
      fail(ShmStatus::kChecksumMismatch,
           "checksum: the input does not match its " + std::string(ChecksumKindName(kind)) +
               " checksum (payload corrupted or written after the checksum)");
      return;
    }
  }

  auto infer = std::make_unique<InferRequest>();
  infer->batch = request.rows;
  infer->inputs.resize(values);
  for (uint32_t r = 0; r < request.rows; ++r) {
    for (uint32_t c = 0; c < width; ++c) {
      const size_t k = size_t{r} * width + c;
      const float x = ReadOnce(raw[k]);
      if (!std::isfinite(x)) {
        metrics_->shm_bad_slots_total.fetch_add(1, std::memory_order_relaxed);
        fail(ShmStatus::kInvalidArgument,
             "input[" + std::to_string(r) + "][" + std::to_string(c) + "]: not a finite number");
        return;
      }
      infer->inputs[k] = io_->Preprocess(c, x);
    }
  }
  if (options_.request_timeout_ms > 0) {
    infer->deadline = Clock::now() + std::chrono::milliseconds(options_.request_timeout_ms);
  }
  const bool stochastic = (request.flags & kFlagStochastic) != 0;
  infer->done = [session, index, stochastic, seed = request.seed, io = io_,
                 metrics = metrics_](InferResult&& result) {
    TensorSlot* slot = session->view().tensor_slot(index);
    SlotResponse& response = slot->response;
    response.t_compute_start_ns = ToNs(result.timings.compute_start);
    response.t_compute_end_ns = ToNs(result.timings.compute_end);
    if (!result.status.ok()) {
      WriteError(&response, ToShmStatus(result.status.code()), result.status.message());
    } else {
      const size_t width = static_cast<size_t>(io->output_width());
      const size_t rows = result.outputs.size() / width;
      float* out = session->view().tensor_output(index);
      std::mt19937_64 rng(seed);
      for (size_t r = 0; r < rows; ++r) {
        Status s = io->Decode(result.outputs.subspan(r * width, width), !stochastic, &rng,
                              std::span<float>(out + r * width, width));
        if (!s.ok()) {
          metrics->inference_errors_total.fetch_add(1, std::memory_order_relaxed);
          WriteError(&response, ShmStatus::kInternal, s.message());
          break;
        }
      }
    }
    response.t_done_ns = MonotonicNowNs();
    Publish(slot->state, slot->client_waiting);
    session->in_flight.fetch_sub(1, std::memory_order_acq_rel);
  };
  session->in_flight.fetch_add(1, std::memory_order_acq_rel);
  pending_.push_back({std::move(infer), session, index});
}

void SlotHandler::Flush() {
  if (pending_.empty()) return;
  std::vector<std::unique_ptr<InferRequest>> requests;
  requests.reserve(pending_.size());
  for (Pending& p : pending_) requests.push_back(std::move(p.request));
  const std::vector<Status> statuses = scheduler_->SubmitMany(std::move(requests));
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (statuses[i].ok()) continue;
    // `done` was not called and never will be; the request (and its session reference) is gone.
    Session& session = *pending_[i].session;
    FailTensorSlot(session.view().tensor_slot(pending_[i].index), ToShmStatus(statuses[i].code()),
                   statuses[i].message());
    session.in_flight.fetch_sub(1, std::memory_order_acq_rel);
  }
  pending_.clear();
}

void SlotHandler::HandleFrame(const std::shared_ptr<Session>& session_ptr, uint32_t index) {
  const Session& session = *session_ptr;
  const uint64_t received_ns = MonotonicNowNs();
  const RegionView& view = session.view();
  FrameSlot* slot = view.frame_slot(index);
  FrameRequest request = ReadFrameRequest(*slot);
  // Kinds 2 and 3 carry their query in `result`: copy it out before the answer overwrites it.
  std::string query;
  if (request.request == kFrameRequestOcrFind || request.request == kFrameRequestOcrRegion) {
    const uint32_t length = std::min<uint32_t>(ReadOnce(slot->result_length),
                                               static_cast<uint32_t>(kFrameResultCapacity));
    query.assign(slot->result, length);
  }
  BeginResponse(&slot->response, request.sequence, received_ns);
  slot->result_length = 0;
  slot->result[0] = '\0';
  auto finish = [&] {
    slot->response.t_done_ns = MonotonicNowNs();
    Publish(slot->state, slot->client_waiting);
  };

  // The geometry rules are the same for every kind; validation knows only kind 0.
  const uint32_t kind = request.request;
  if (kind != kFrameRequestVerify && options_.frame_consumer != nullptr) request.request = 0;
  if (Status s = ValidateFrameRequest(request, view.geometry); !s.ok()) {
    metrics_->shm_bad_slots_total.fetch_add(1, std::memory_order_relaxed);
    WriteError(&slot->response, ToShmStatus(s.code()), s.message());
    return finish();
  }
  const ChecksumKind checksum_kind = session.region().checksum();
  const uint64_t start_ns = MonotonicNowNs();
  // Verified where the client wrote it: the pixels are never copied.
  const bool matches =
      checksum_kind == ChecksumKind::kNone ||
      Checksum(checksum_kind, view.frame_pixels(index), request.payload_bytes) == request.checksum;
  const uint64_t end_ns = MonotonicNowNs();
  slot->response.t_compute_start_ns = start_ns;
  slot->response.t_compute_end_ns = end_ns;
  if (!matches) {
    metrics_->shm_checksum_failures_total.fetch_add(1, std::memory_order_relaxed);
    WriteError(&slot->response, ShmStatus::kChecksumMismatch,
               "checksum: the frame's pixels do not match its " +
                   std::string(ChecksumKindName(checksum_kind)) + " checksum");
    return finish();
  }
  metrics_->shm_frames_total.fetch_add(1, std::memory_order_relaxed);
  metrics_->shm_frame_bytes_total.fetch_add(request.payload_bytes, std::memory_order_relaxed);
  if (kind == kFrameRequestVerify) {
    const std::string result = "{\"bytes\":" + std::to_string(request.payload_bytes) +
                               ",\"verify_us\":" + std::to_string((end_ns - start_ns) / 1000) + "}";
    std::memcpy(slot->result, result.data(), result.size());
    slot->result[result.size()] = '\0';
    slot->result_length = static_cast<uint32_t>(result.size());
    return finish();
  }
  // Other kinds run on the frame consumer's threads; the slot is answered from there. The
  // session reference keeps the region mapped until then.
  FrameConsumer::Frame frame;
  frame.pixels = view.frame_pixels(index);
  frame.width = request.width;
  frame.height = request.height;
  frame.stride = request.stride;
  frame.format = request.format;
  frame.request = kind;
  frame.query = std::move(query);
  frame.stream = "shm-" + std::to_string(reinterpret_cast<uintptr_t>(&session));
  session_ptr->in_flight.fetch_add(1, std::memory_order_acq_rel);
  Status s = options_.frame_consumer->Consume(
      frame, [session_ptr, index](Status status, std::string result) {
        FrameSlot* done_slot = session_ptr->view().frame_slot(index);
        done_slot->response.t_compute_end_ns = MonotonicNowNs();
        if (!status.ok()) {
          WriteError(&done_slot->response, ToShmStatus(status.code()), status.message());
        } else {
          const size_t n = std::min(result.size(), kFrameResultCapacity);
          std::memcpy(done_slot->result, result.data(), n);
          done_slot->result[n] = '\0';
          done_slot->result_length = static_cast<uint32_t>(n);
        }
        done_slot->response.t_done_ns = MonotonicNowNs();
        Publish(done_slot->state, done_slot->client_waiting);
        session_ptr->in_flight.fetch_sub(1, std::memory_order_acq_rel);
      });
  if (!s.ok()) {
    session_ptr->in_flight.fetch_sub(1, std::memory_order_acq_rel);
    WriteError(&slot->response, ToShmStatus(s.code()), s.message());
    return finish();
  }
}

}  // namespace brainstem::shm
