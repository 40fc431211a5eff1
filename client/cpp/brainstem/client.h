// The brainstem client library: one interface, two transports. `Connect("shm://default")`
// hands policy steps and image frames to a server on the same host through shared memory
// (docs/shm-protocol.md); `Connect("http://127.0.0.1:8080")` speaks the CarlaRL HTTP API
// (docs/api.md) over one keep-alive TCP connection per concurrent caller. Both answer with the
// same actions for the same inputs: raw feature values travel as float32 either way and the
// server does all preprocessing and clipping.
// Thread-safe: every method of Client may be called from many threads at once (shm: each call
// claims its own slot; http: each call borrows its own connection).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "transport/shm/shm_layout.h"

namespace brainstem::client {

using PixelFormat = ::brainstem::shm::PixelFormat;

// One CarlaRL observation in raw units (speed in km/h, steering in [-1, 1], the card's sensors).
struct Observation {
  float speed = 0.0f;
  float steering = 0.0f;
  std::vector<float> sensors;
};

// One CarlaRL action, already clipped by the server to the card's bounds.
struct Action {
  float throttle = 0.0f;
  float brake = 0.0f;
  float steer = 0.0f;
};

// One input feature of the served model, in column order (for the CarlaRL schema: speed 1,
// steering 1, sensors N).
struct InputFeature {
  std::string name;
  int32_t size = 0;
};

// Where the time of one call went, in nanoseconds. Over shm every field is measured from the
// slot's CLOCK_MONOTONIC stamps (both processes share the clock); over http only `total_ns` and
// `server_ns` (the server's `timingMs`) are known and the others are 0.
struct CallTimings {
  uint64_t total_ns = 0;     // client: call entry to answer read
  uint64_t request_ns = 0;   // t_submit -> t_received: handoff to the server (spin or wake)
  uint64_t queue_ns = 0;     // t_received -> t_compute_start: scheduler queue and batching
  uint64_t compute_ns = 0;   // t_compute_start -> t_compute_end: the backend
  uint64_t response_ns = 0;  // t_compute_end -> client saw DONE: decode, answer, wake
  uint64_t server_ns = 0;    // t_received -> t_done (http: the server's timingMs)
};

struct PredictOptions {
  // false samples mean + exp(log_std) * N(0, 1); refused for a model without log_std.
  bool deterministic = true;
  // Seed for a stochastic call; unset: the client (shm) or server (http) picks one.
  std::optional<uint64_t> seed;
  // Give up waiting after this long (kDeadlineExceeded); 0 waits as long as the server lives.
  int64_t timeout_ms = 0;
  // When not null, receives where the time went (see CallTimings).
  CallTimings* timings = nullptr;
  // FOR TESTS ONLY (shm): flips one payload byte after the checksum is computed, so the server
  // must answer CHECKSUM_MISMATCH. Ignored by http and by regions without a checksum.
  bool corrupt_after_checksum = false;
};

// What the server does with a frame (FrameOptions::request; docs/shm-protocol.md section 3).
inline constexpr uint32_t kFrameVerify = shm::kFrameRequestVerify;        // checksum, acknowledge
inline constexpr uint32_t kFrameOcrText = shm::kFrameRequestOcrText;      // all text, reading order
inline constexpr uint32_t kFrameOcrFind = shm::kFrameRequestOcrFind;      // boxes matching `query`
inline constexpr uint32_t kFrameOcrRegion = shm::kFrameRequestOcrRegion;  // text in "x,y,w,h"
// The longest query and answer a frame slot carries, in bytes.
inline constexpr size_t kFrameQueryCapacity = shm::kFrameResultCapacity;

struct FrameOptions {
  uint64_t timestamp_ns = 0;  // capture time, passed through to the server
  uint32_t request = kFrameVerify;
  // kFrameOcrFind: the text to find (UTF-8, not empty); kFrameOcrRegion: "x,y,w,h" in pixels.
  // At most kFrameQueryCapacity bytes; ignored by the other kinds.
  std::string query;
  int64_t timeout_ms = 0;               // as in PredictOptions
  bool corrupt_after_checksum = false;  // FOR TESTS ONLY, as in PredictOptions
};

// The server's answer to a frame.
struct FrameAck {
  uint64_t sequence = 0;
  // The server's answer: empty for kFrameVerify over shm; for the OCR kinds JSON, compact over
  // shm (it must fit the slot: docs/perception.md) and the full /v1/ocr answer over http.
  std::string result;
  CallTimings timings;
};

class ShmClient;

// A frame slot claimed for writing in place (zero copy). Move-only; destroying it unsubmitted
// gives the slot back. Lives no longer than the Client that made it.
class FrameBuffer {
 public:
  FrameBuffer() = default;
  FrameBuffer(FrameBuffer&& other) noexcept;
  FrameBuffer& operator=(FrameBuffer&& other) noexcept;
  FrameBuffer(const FrameBuffer&) = delete;
  FrameBuffer& operator=(const FrameBuffer&) = delete;
  ~FrameBuffer();

  // Pixels go here: `capacity()` bytes in the shared region. Valid until submitted or destroyed.
  uint8_t* data() const { return data_; }
  uint64_t capacity() const { return capacity_; }
  // The shared region's memfd and the byte offset of data() in it, for producers that write
  // through their own mapping (an X server attaching the fd with MIT-SHM). The fd stays owned
  // by the client and valid while this buffer lives.
  int region_fd() const { return region_fd_; }
  uint64_t region_offset() const { return region_offset_; }
  bool valid() const { return data_ != nullptr; }

 private:
  friend class ShmClient;
  std::shared_ptr<void> session_;  // keeps the mapping alive
  ShmClient* owner_ = nullptr;
  uint8_t* data_ = nullptr;
  uint64_t capacity_ = 0;
  int region_fd_ = -1;
  uint64_t region_offset_ = 0;
  uint32_t slot_ = 0;
  void Release();
};

class Client {
 public:
  virtual ~Client() = default;

  // "shm" or "http".
  virtual std::string_view transport() const = 0;
  // Raw feature values per observation row (the model's input width).
  virtual int32_t input_width() const = 0;
  // Actions per row.
  virtual int32_t output_width() const = 0;
  // Input features in column order. http: from /metadata. shm: the region carries no names, so
  // this is the CarlaRL layout speed(1), steering(1), sensors(input_width - 2).
  virtual const std::vector<InputFeature>& input_features() const = 0;
  // Action names in column order. http: from /metadata. shm: throttle, brake, steer when
  // output_width is 3 (the CarlaRL action space), else a0..aN-1.
  virtual const std::vector<std::string>& output_names() const = 0;
  // The server process's generation (shm: from the region; changes when the server restarts).
  // http: 0.
  virtual uint64_t generation() const = 0;

  // Actions for `observations`, in order. Errors: kInvalidArgument (the server or the client
  // refused an input; the message names it), kUnavailable (queue full, server stopping or
  // restarted: retry; shm reconnects on the next call), kDeadlineExceeded, kDataLoss (checksum
  // mismatch), kInternal, kFailedPrecondition (the model's actions are not throttle/brake/steer:
  // use PredictRaw).
  virtual Result<std::vector<Action>> Predict(std::span<const Observation> observations,
                                              const PredictOptions& options = {});

  // The zero-allocation path (shm): `rows` holds n_rows * input_width() raw feature values in
  // the model's column order; writes n_rows * output_width() actions to `actions_out`.
  // REQUIRES: 1 <= n_rows; for shm n_rows <= max_rows of the region (else kInvalidArgument).
  virtual Status PredictRaw(const float* rows, int32_t n_rows, float* actions_out,
                            const PredictOptions& options = {}) = 0;

  // Hands one image to the server (copies it into a frame slot) and waits for the answer.
  // `stride` is bytes per row. http: the OCR kinds are posted as raw pixels to /v1/ocr or
  // /v1/ocr/find; kFrameVerify is kUnimplemented (it exists to measure the shm handoff).
  virtual Result<FrameAck> SubmitFrame(const uint8_t* pixels, uint32_t width, uint32_t height,
                                       uint32_t stride, PixelFormat format,
                                       const FrameOptions& options = {}) = 0;

  // Zero copy: claims a frame slot for the caller to write in place, then SubmitFrameBuffer.
  // Blocks while every frame slot is busy. http: kUnimplemented.
  virtual Result<FrameBuffer> AcquireFrameBuffer() = 0;
  // Submits a buffer from AcquireFrameBuffer whose first stride*height bytes hold the image;
  // consumes it whatever the outcome.
  virtual Result<FrameAck> SubmitFrameBuffer(FrameBuffer buffer, uint32_t width, uint32_t height,
                                             uint32_t stride, PixelFormat format,
                                             const FrameOptions& options = {}) = 0;
};

// Connects to a server. `url`:
//   shm://<name>            socket $XDG_RUNTIME_DIR/brainstem/<name>.sock, else
//                           /tmp/brainstem-<uid>/<name>.sock
//   shm:///abs/path.sock    that socket (never anything else)
//   shm+named://<name>      the server's /dev/shm lobby (docs/shm-protocol.md section 8), for a
//                           container that shares /dev/shm (ipc: host) but not the socket;
//                           shm://<name> falls back to it when its socket file is missing or
//                           refuses the connection
//   http://host:port        the HTTP API (port defaults to 80)
// shm URLs take query parameters for the region the client asks for:
//   ?slots=8&rows=64&frames=2&frame_bytes=8388608&checksum=xxh3|crc32c|sha256|none
// Errors: kInvalidArgument (bad URL), kUnavailable (nothing listens there), kFailedPrecondition
// (the server refused the handshake; the message is the server's).
Result<std::unique_ptr<Client>> Connect(std::string_view url);

}  // namespace brainstem::client
