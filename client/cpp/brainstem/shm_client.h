// ShmClient: the Client interface over the shared-memory transport (docs/shm-protocol.md,
// ABI 1). Connects to the server's Unix socket, sends a HelloMessage, receives the region memfd
// and the doorbell eventfd by SCM_RIGHTS, maps the region and validates its header. A call
// claims a slot (CAS FREE->WRITING), writes the rows where the server will read them, stamps and
// submits it, rings the doorbell only when the server sleeps, then spins ~20 us on the slot's
// state before sleeping on it with FUTEX_WAIT (100 ms at a time, checking the session socket for
// hang-up in between).
//
// Named rendezvous (docs/shm-protocol.md section 8): with shm+named://name, or shm://name when
// the socket file is missing or refuses, the client finds the server through its /dev/shm lobby
// instead (shm_lobby.h): the region then comes by name, the doorbell is a futex word in the
// lobby, and the client's lock on its claim takes the socket's place as the session's life line.
//
// Session life cycle: the socket (or the lobby claim) is the session. When the server goes away
// (restart, crash, clean stop) the call that notices fails with kUnavailable "server closed the
// session (restarted?)" and the next call connects again; the new region has a new generation().
//
// Thread-safe: any number of threads may call Predict/PredictRaw/SubmitFrame at once; each
// claims its own slot. With more callers than slots, the extra callers wait for a free slot.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "brainstem/client.h"
#include "brainstem/url.h"

namespace brainstem::client {

class ShmClient final : public Client {
 public:
  // Connects and maps the region. Errors: kUnavailable (nothing listens at `socket_path`, or the
  // server hung up), kInvalidArgument / kUnavailable (the server refused the hello: its message),
  // kFailedPrecondition (the region failed validation: wrong magic, ABI, size).
  static Result<std::unique_ptr<ShmClient>> Create(std::string socket_path,
                                                   ShmRegionRequest request);
  // The same for a parsed shm URL, with its rendezvous mode (socket, socket then lobby, lobby).
  // Errors as above; when the lobby fallback also fails, kUnavailable naming both attempts.
  static Result<std::unique_ptr<ShmClient>> Create(const Endpoint& endpoint);
  ~ShmClient() override;

  std::string_view transport() const override { return "shm"; }
  int32_t input_width() const override { return input_width_; }
  int32_t output_width() const override { return output_width_; }
  const std::vector<InputFeature>& input_features() const override { return features_; }
  const std::vector<std::string>& output_names() const override { return names_; }
  uint64_t generation() const override;

  // Rows per call the region allows (PredictRaw's n_rows limit).
  int32_t max_rows() const { return max_rows_; }
  // The region's checksum kind (the server may choose another than the one asked for).
  shm::ChecksumKind checksum_kind() const;

  Status PredictRaw(const float* rows, int32_t n_rows, float* actions_out,
                    const PredictOptions& options = {}) override;
  Result<FrameAck> SubmitFrame(const uint8_t* pixels, uint32_t width, uint32_t height,
                               uint32_t stride, PixelFormat format,
                               const FrameOptions& options = {}) override;
  Result<FrameBuffer> AcquireFrameBuffer() override;
  Result<FrameAck> SubmitFrameBuffer(FrameBuffer buffer, uint32_t width, uint32_t height,
                                     uint32_t stride, PixelFormat format,
                                     const FrameOptions& options = {}) override;

  struct Session;  // one handshake's socket, mapping and doorbell (shm_client.cc)

 private:
  ShmClient(std::string socket_path, ShmRegionRequest request, Endpoint::Rendezvous rendezvous,
            std::string shm_name);
  // A new session by the endpoint's rendezvous mode.
  Result<std::shared_ptr<Session>> Connect() const;

  // The live session, connecting again when the last one broke.
  Result<std::shared_ptr<Session>> CurrentSession();

  // Constant after construction.
  const std::string socket_path_;
  const ShmRegionRequest request_;
  const Endpoint::Rendezvous rendezvous_;
  const std::string shm_name_;  // the lobby's name (kSocketThenNamed, kNamed)
  int32_t input_width_ = 0;
  int32_t output_width_ = 0;
  int32_t max_rows_ = 0;
  std::vector<InputFeature> features_;
  std::vector<std::string> names_;

  mutable std::mutex mu_;
  std::shared_ptr<Session> session_;  // guarded by mu_
};

}  // namespace brainstem::client
