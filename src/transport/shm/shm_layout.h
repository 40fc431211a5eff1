// The shared-memory protocol's binary layout, ABI version 1 (docs/shm-protocol.md is the prose
// form). Both the server transport and the client libraries include this header and nothing
// else to agree on offsets. Plain structs of fixed-size fields; atomics are std::atomic of
// lock-free 32-bit words, which have the same size and representation as the integers.
// Thread-safety: the structs live in memory shared with another process; every read of a field
// the peer writes must be validated (the server's checks are in transport/shm/validation.h).
// Plain fields are published by the release store of a slot's `state` and read after its
// acquire load; the sleep/wake handshakes need sequentially consistent ordering (section 3
// and 4 of the protocol document).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace brainstem::shm {

inline constexpr uint64_t kMagic = 0x314D545342524E42ull;  // "BNRBSTM1" little-endian
inline constexpr uint32_t kAbiVersion = 1;
inline constexpr uint64_t kHeaderSize = 4096;
inline constexpr uint64_t kAlign = 64;

enum class ChecksumKind : uint32_t { kNone = 0, kXxh3 = 1, kCrc32c = 2, kSha256 = 3 };
// HelloMessage::checksum_kind value meaning "whatever the server is configured with"
// (shm.checksum); the header's checksum_kind then says which kind the region uses.
inline constexpr uint32_t kChecksumServerDefault = 255;
enum class PixelFormat : uint32_t { kBgra8 = 1, kRgba8 = 2, kRgb8 = 3, kGray8 = 4 };
enum class SlotState : uint32_t {
  kFree = 0,
  kWriting = 1,
  kSubmitted = 2,
  kProcessing = 3,
  kDone = 4
};
enum class ShmStatus : uint32_t {
  kOk = 0,
  kInvalidArgument = 1,
  kChecksumMismatch = 2,
  kUnavailable = 3,
  kDeadlineExceeded = 4,
  kInternal = 5,
  kUnsupported = 6,
  kPermissionDenied = 7,  // handshake only: the peer's uid is not allowed
};

inline constexpr uint32_t kFlagStochastic = 1u << 0;

// Limits the server enforces on a hello (and so on every region it creates).
inline constexpr uint32_t kMaxTensorSlots = 256;
inline constexpr uint32_t kMaxRowsPerSlot = 1024;
inline constexpr uint32_t kMaxFrameSlots = 16;
inline constexpr uint64_t kMaxFrameBytes = 256ull << 20;
inline constexpr uint32_t kMaxFrameDimension = 16384;

constexpr uint64_t AlignUp(uint64_t value) { return (value + kAlign - 1) / kAlign * kAlign; }

constexpr uint32_t BytesPerPixel(PixelFormat format) {
  switch (format) {
    case PixelFormat::kBgra8:
    case PixelFormat::kRgba8:
      return 4;
    case PixelFormat::kRgb8:
      return 3;
    case PixelFormat::kGray8:
      return 1;
  }
  return 0;
}

struct RegionHeader {
  uint64_t magic;
  uint32_t abi_version;
  uint32_t header_size;
  uint64_t region_size;
  uint64_t generation;
  uint32_t input_width;
  uint32_t output_width;
  uint32_t max_rows;
  uint32_t tensor_slot_count;
  uint64_t tensor_slots_offset;
  uint64_t tensor_slot_stride;
  uint32_t frame_slot_count;
  uint32_t checksum_kind;
  uint64_t frame_slots_offset;
  uint64_t frame_slot_stride;
  uint64_t frame_capacity;
  alignas(64) std::atomic<uint32_t> server_state;  // 1 serving, 2 closing
  alignas(64) std::atomic<uint32_t> server_sleeping;
};
static_assert(sizeof(RegionHeader) <= kHeaderSize);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

struct SlotResponse {
  uint64_t response_sequence;
  uint32_t status;  // ShmStatus
  uint32_t error_length;
  char error[192];
  uint64_t t_received_ns;
  uint64_t t_compute_start_ns;
  uint64_t t_compute_end_ns;
  uint64_t t_done_ns;
};

struct TensorSlot {
  alignas(64) std::atomic<uint32_t> state;  // SlotState; also the futex word for the client
  std::atomic<uint32_t> client_waiting;
  uint64_t sequence;
  uint32_t rows;
  uint32_t flags;
  uint64_t seed;
  uint64_t checksum;
  uint64_t t_submit_ns;
  alignas(64) SlotResponse response;
};
inline constexpr uint64_t kTensorInputOffset = AlignUp(sizeof(TensorSlot));

struct FrameSlot {
  alignas(64) std::atomic<uint32_t> state;
  std::atomic<uint32_t> client_waiting;
  uint64_t sequence;
  uint32_t width;
  uint32_t height;
  uint32_t stride;
  uint32_t format;  // PixelFormat
  uint64_t timestamp_ns;
  uint64_t payload_bytes;
  uint64_t checksum;
  uint64_t t_submit_ns;
  // What to do with the frame: 0 = verify and acknowledge; with OCR (docs/perception.md)
  // 1 = OCR text, 2 = find (query written by the client into `result`/`result_length`),
  // 3 = text in a region (query "x,y,w,h" the same way). Answers are JSON in `result`, with
  // "truncated": true when they did not fit.
  uint32_t request;
  uint32_t reserved;
  alignas(64) SlotResponse response;
  uint32_t result_length;
  char result[3072];
};
inline constexpr uint64_t kFramePixelsOffset = 4096;
static_assert(sizeof(FrameSlot) <= kFramePixelsOffset);

// FrameSlot.request kinds. 2 and 3 carry their query (UTF-8; for 3 "x,y,w,h") in `result` with
// `result_length`, written by the client before submitting; every answer is JSON in `result`.
inline constexpr uint32_t kFrameRequestVerify = 0;
inline constexpr uint32_t kFrameRequestOcrText = 1;
inline constexpr uint32_t kFrameRequestOcrFind = 2;
inline constexpr uint32_t kFrameRequestOcrRegion = 3;
// Bytes a query or an answer may use in `result` (NUL-terminated).
inline constexpr size_t kFrameResultCapacity = sizeof(FrameSlot::result) - 1;

// Geometry derived from a hello; both sides compute it the same way.
struct RegionGeometry {
  uint32_t input_width = 0;
  uint32_t output_width = 0;
  uint32_t max_rows = 0;
  uint32_t tensor_slot_count = 0;
  uint32_t frame_slot_count = 0;
  uint64_t frame_capacity = 0;

  uint64_t tensor_output_offset() const {
    return AlignUp(kTensorInputOffset + uint64_t{max_rows} * input_width * sizeof(float));
  }
  uint64_t tensor_slot_stride() const {
    return AlignUp(tensor_output_offset() + uint64_t{max_rows} * output_width * sizeof(float));
  }
  uint64_t tensor_slots_offset() const { return kHeaderSize; }
  uint64_t frame_slot_stride() const { return AlignUp(kFramePixelsOffset + frame_capacity); }
  uint64_t frame_slots_offset() const {
    return AlignUp(tensor_slots_offset() + uint64_t{tensor_slot_count} * tensor_slot_stride());
  }
  uint64_t region_size() const {
    uint64_t end = frame_slots_offset() + uint64_t{frame_slot_count} * frame_slot_stride();
    return (end + 4095) / 4096 * 4096;
  }
};

// Handshake messages over the Unix socket (fixed size, sent whole).
struct HelloMessage {
  uint64_t magic;
  uint32_t abi_version;
  uint32_t tensor_slot_count;
  uint32_t max_rows;
  uint32_t frame_slot_count;
  uint64_t frame_capacity;
  uint32_t checksum_kind;
  uint32_t reserved;
};

struct WelcomeMessage {
  uint64_t magic;
  uint32_t abi_version;
  uint32_t status;  // ShmStatus; non-zero: refused, no descriptors follow
  uint64_t region_size;
  uint64_t generation;
  char message[256];
};

}  // namespace brainstem::shm
