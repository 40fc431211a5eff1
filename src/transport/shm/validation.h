// The server's checks of everything a shared-memory peer writes: the hello (which becomes the
// region's geometry) and each submitted tensor or frame slot. Slot fields are copied out of
// shared memory exactly once (ReadOnce) into a snapshot, and only the snapshot is validated
// and used, so a client that rewrites a field after submitting cannot slip a value past the
// checks. Errors name the field and the allowed range.
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "transport/shm/shm_layout.h"

namespace brainstem::shm {

// Reads a field of shared memory once, as the Linux kernel's READ_ONCE: the compiler may not
// re-read it later, so a value checked is the value used.
template <typename T>
T ReadOnce(const T& field) {
  return *static_cast<const volatile T*>(&field);
}

// The server's ceilings for one region (from the shm.* config keys).
struct ServerLimits {
  uint32_t max_tensor_slots = 64;
  uint32_t max_rows = 1024;
  uint32_t max_frame_slots = 4;
  uint64_t max_frame_bytes = 32ull << 20;
  ChecksumKind default_checksum = ChecksumKind::kXxh3;
};

struct AcceptedHello {
  RegionGeometry geometry;  // input_width/output_width left 0: the model fills them in
  ChecksumKind checksum = ChecksumKind::kXxh3;
};

// Checks every field of a hello against `limits`. Errors: kInvalidArgument naming the field
// (bad magic, counts over the limits, unknown checksum kind, non-zero reserved),
// kUnimplemented for another ABI version. A hello with no tensor and no frame slots is refused.
// frame_capacity is ignored (treated as 0) when frame_slot_count is 0.
Result<AcceptedHello> ValidateHello(const HelloMessage& hello, const ServerLimits& limits);

// What a refusal carries back to the client for a Status from this module or the scheduler.
ShmStatus ToShmStatus(StatusCode code);

struct TensorRequest {
  uint64_t sequence = 0;
  uint32_t rows = 0;
  uint32_t flags = 0;
  uint64_t seed = 0;
  uint64_t checksum = 0;
};
TensorRequest ReadTensorRequest(const TensorSlot& slot);

// Errors (kInvalidArgument, naming the field): rows outside 1..geometry.max_rows, unknown
// flag bits, the stochastic flag for a model without log_std.
Status ValidateTensorRequest(const TensorRequest& request, const RegionGeometry& geometry,
                             bool model_stochastic);

struct FrameRequest {
  uint64_t sequence = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t stride = 0;
  uint32_t format = 0;
  uint64_t timestamp_ns = 0;
  uint64_t payload_bytes = 0;
  uint64_t checksum = 0;
  uint32_t request = 0;
};
FrameRequest ReadFrameRequest(const FrameSlot& slot);

// Errors: kInvalidArgument naming the field (width/height outside 1..kMaxFrameDimension,
// unknown format, stride < width * bytes per pixel, payload_bytes != stride * height,
// payload_bytes > frame_capacity); kUnimplemented for a `request` other than 0 (verify).
Status ValidateFrameRequest(const FrameRequest& request, const RegionGeometry& geometry);

}  // namespace brainstem::shm
