#include "transport/shm/validation.h"

#include <cstdio>

namespace brainstem::shm {
namespace {

std::string Hex(uint64_t value) {
  char buf[19];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(value));
  return buf;
}

std::string Range(uint64_t lo, uint64_t hi) {
  return " (allowed: " + std::to_string(lo) + ".." + std::to_string(hi) + ")";
}

}  // namespace

Result<AcceptedHello> ValidateHello(const HelloMessage& hello, const ServerLimits& limits) {
  if (hello.magic != kMagic) {
    return InvalidArgumentError("hello.magic: " + Hex(hello.magic) +
                                " is not a brainstem shm client's (expected " + Hex(kMagic) + ")");
  }
  if (hello.abi_version != kAbiVersion) {
    return UnimplementedError("hello.abi_version: " + std::to_string(hello.abi_version) +
                              " is not supported; this server speaks ABI " +
                              std::to_string(kAbiVersion));
  }
  if (hello.reserved != 0) return InvalidArgumentError("hello.reserved: must be 0");
  if (hello.tensor_slot_count > limits.max_tensor_slots) {
    return InvalidArgumentError(
        "hello.tensor_slot_count: " + std::to_string(hello.tensor_slot_count) +
        " is over the limit" + Range(0, limits.max_tensor_slots));
  }
  if (hello.max_rows < 1 || hello.max_rows > limits.max_rows) {
    return InvalidArgumentError("hello.max_rows: " + std::to_string(hello.max_rows) +
                                " is out of range" + Range(1, limits.max_rows));
  }
  if (hello.frame_slot_count > limits.max_frame_slots) {
    return InvalidArgumentError(
        "hello.frame_slot_count: " + std::to_string(hello.frame_slot_count) + " is over the limit" +
        Range(0, limits.max_frame_slots));
  }
  if (hello.frame_slot_count > 0 &&
      (hello.frame_capacity < 1 || hello.frame_capacity > limits.max_frame_bytes)) {
    return InvalidArgumentError("hello.frame_capacity: " + std::to_string(hello.frame_capacity) +
                                " is out of range" + Range(1, limits.max_frame_bytes));
  }
  if (hello.tensor_slot_count == 0 && hello.frame_slot_count == 0) {
    return InvalidArgumentError(
        "hello.tensor_slot_count and hello.frame_slot_count: both are 0; ask for at least one "
        "slot");
  }
  AcceptedHello accepted;
  if (hello.checksum_kind == kChecksumServerDefault) {
    accepted.checksum = limits.default_checksum;
  } else if (hello.checksum_kind <= static_cast<uint32_t>(ChecksumKind::kSha256)) {
    accepted.checksum = static_cast<ChecksumKind>(hello.checksum_kind);
  } else {
    return InvalidArgumentError("hello.checksum_kind: " + std::to_string(hello.checksum_kind) +
                                " is unknown (allowed: 0 none, 1 xxh3, 2 crc32c, 3 sha256, " +
                                std::to_string(kChecksumServerDefault) + " server default)");
  }
  accepted.geometry.max_rows = hello.max_rows;
  accepted.geometry.tensor_slot_count = hello.tensor_slot_count;
  accepted.geometry.frame_slot_count = hello.frame_slot_count;
  accepted.geometry.frame_capacity = hello.frame_slot_count > 0 ? hello.frame_capacity : 0;
  return accepted;
}

ShmStatus ToShmStatus(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return ShmStatus::kOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kResourceExhausted:
      return ShmStatus::kInvalidArgument;
    case StatusCode::kDataLoss:
      return ShmStatus::kChecksumMismatch;
    case StatusCode::kUnavailable:
      return ShmStatus::kUnavailable;
    case StatusCode::kDeadlineExceeded:
      return ShmStatus::kDeadlineExceeded;
    case StatusCode::kUnimplemented:
      return ShmStatus::kUnsupported;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kInternal:
      return ShmStatus::kInternal;
  }
  return ShmStatus::kInternal;
}

TensorRequest ReadTensorRequest(const TensorSlot& slot) {
  TensorRequest r;
  r.sequence = ReadOnce(slot.sequence);
  r.rows = ReadOnce(slot.rows);
  r.flags = ReadOnce(slot.flags);
  r.seed = ReadOnce(slot.seed);
  r.checksum = ReadOnce(slot.checksum);
  return r;
}

Status ValidateTensorRequest(const TensorRequest& request, const RegionGeometry& geometry,
                             bool model_stochastic) {
  if (request.rows < 1 || request.rows > geometry.max_rows) {
    return InvalidArgumentError("rows: " + std::to_string(request.rows) + " is out of range" +
                                Range(1, geometry.max_rows));
  }
  if ((request.flags & ~kFlagStochastic) != 0) {
    return InvalidArgumentError("flags: unknown bits set (" +
                                Hex(request.flags & ~kFlagStochastic) +
                                "); only bit 0 (stochastic) is defined");
  }
  if ((request.flags & kFlagStochastic) != 0 && !model_stochastic) {
    return InvalidArgumentError(
        "flags: stochastic sampling requested, but the model card has no log_std (the policy "
        "is deterministic only)");
  }
  return Status::Ok();
}

FrameRequest ReadFrameRequest(const FrameSlot& slot) {
  FrameRequest r;
  r.sequence = ReadOnce(slot.sequence);
  r.width = ReadOnce(slot.width);
  r.height = ReadOnce(slot.height);
  r.stride = ReadOnce(slot.stride);
  r.format = ReadOnce(slot.format);
  r.timestamp_ns = ReadOnce(slot.timestamp_ns);
  r.payload_bytes = ReadOnce(slot.payload_bytes);
  r.checksum = ReadOnce(slot.checksum);
  r.request = ReadOnce(slot.request);
  return r;
}

Status ValidateFrameRequest(const FrameRequest& request, const RegionGeometry& geometry) {
  if (request.request != 0) {
    return UnimplementedError("request: " + std::to_string(request.request) +
                              " is not supported (0 = verify and acknowledge)");
  }
  if (request.width < 1 || request.width > kMaxFrameDimension) {
    return InvalidArgumentError("width: " + std::to_string(request.width) + " is out of range" +
                                Range(1, kMaxFrameDimension));
  }
  if (request.height < 1 || request.height > kMaxFrameDimension) {
    return InvalidArgumentError("height: " + std::to_string(request.height) + " is out of range" +
                                Range(1, kMaxFrameDimension));
  }
  const uint32_t bpp = BytesPerPixel(static_cast<PixelFormat>(request.format));
  if (bpp == 0) {
    return InvalidArgumentError("format: " + std::to_string(request.format) +
                                " is unknown (allowed: 1 BGRA8, 2 RGBA8, 3 RGB8, 4 GRAY8)");
  }
  const uint64_t min_stride = uint64_t{request.width} * bpp;
  if (request.stride < min_stride) {
    return InvalidArgumentError("stride: " + std::to_string(request.stride) +
                                " is less than width x bytes per pixel (" +
                                std::to_string(min_stride) + ")");
  }
  const uint64_t expected = uint64_t{request.stride} * request.height;
  if (request.payload_bytes != expected) {
    return InvalidArgumentError("payload_bytes: " + std::to_string(request.payload_bytes) +
                                " is not stride x height (" + std::to_string(expected) + ")");
  }
  if (request.payload_bytes > geometry.frame_capacity) {
    return InvalidArgumentError("payload_bytes: " + std::to_string(request.payload_bytes) +
                                " exceeds the frame capacity (" +
                                std::to_string(geometry.frame_capacity) + ")");
  }
  return Status::Ok();
}

}  // namespace brainstem::shm
