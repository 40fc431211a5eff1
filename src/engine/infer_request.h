// InferRequest: one unit of work handed to the scheduler: a block of preprocessed float32
// observation rows, a deadline and the completion to call. InferResult is what the
// completion receives. Neither knows which transport produced the request.
// Thread-compatible: a request is owned by exactly one stage at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace brainstem {

// Timing points shared by every backend and transport (one definition feeds every histogram).
struct RequestTimings {
  TimePoint submitted;             // accepted by the scheduler
  TimePoint compute_start;         // backend call began (the request left the queue)
  TimePoint compute_end;           // backend call returned
  int64_t batch_observations = 0;  // rows in the backend call that carried this request
  int64_t batch_requests = 0;      // requests merged into that call
};

struct InferResult {
  Status status;
  // batch * output_width values, row-major. Valid only during the completion call: it points
  // into the batch's output buffer, which is reused afterwards.
  std::span<const float> outputs;
  RequestTimings timings;
};

struct InferRequest {
  std::vector<float> inputs;  // batch * input_width values, row-major, already preprocessed
  int64_t batch = 0;
  TimePoint deadline = TimePoint::max();
  RequestTimings timings;  // filled in by the scheduler
  // Called exactly once, on whichever thread finished the request (a model worker, or the
  // submitting thread when the request ran inline). Must not block for long.
  std::function<void(InferResult&&)> done;
};

}  // namespace brainstem
