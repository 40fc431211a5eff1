// HttpClient: the Client interface over the CarlaRL HTTP API (docs/api.md). Blocking HTTP/1.1
// with keep-alive over TCP (TCP_NODELAY); requests are built with std::to_chars and answers
// parsed with simdjson. Learns the model's inputs and action names from GET /metadata when it
// connects.
// Thread-safe: each call borrows an idle connection from a small pool (or opens one), so
// concurrent calls run in parallel on separate connections.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "brainstem/client.h"
#include "brainstem/http_json.h"

namespace brainstem::client {

class HttpClient final : public Client {
 public:
  // Connects and reads /metadata. Errors: kUnavailable (cannot connect), kInternal (not a
  // brainstem server).
  static Result<std::unique_ptr<HttpClient>> Create(std::string host, uint16_t port);
  ~HttpClient() override;

  std::string_view transport() const override { return "http"; }
  int32_t input_width() const override { return info_.input_width; }
  int32_t output_width() const override { return static_cast<int32_t>(info_.actions.size()); }
  const std::vector<InputFeature>& input_features() const override { return info_.inputs; }
  const std::vector<std::string>& output_names() const override { return info_.actions; }
  uint64_t generation() const override { return 0; }

  Status PredictRaw(const float* rows, int32_t n_rows, float* actions_out,
                    const PredictOptions& options = {}) override;
  Result<FrameAck> SubmitFrame(const uint8_t* pixels, uint32_t width, uint32_t height,
                               uint32_t stride, PixelFormat format,
                               const FrameOptions& options = {}) override;
  Result<FrameBuffer> AcquireFrameBuffer() override;
  Result<FrameAck> SubmitFrameBuffer(FrameBuffer buffer, uint32_t width, uint32_t height,
                                     uint32_t stride, PixelFormat format,
                                     const FrameOptions& options = {}) override;

  // One raw exchange (used for /metadata; public for tools): the status and body of
  // `method path` with `body`. `extra_headers` is zero or more complete "Name: value\r\n"
  // lines. Errors: kUnavailable when the server cannot be reached.
  struct Reply {
    int status = 0;
    std::string body;
  };
  Result<Reply> Exchange(std::string_view method, std::string_view path, std::string_view body,
                         int64_t timeout_ms, std::string_view content_type = "application/json",
                         std::string_view extra_headers = {});

 private:
  struct Connection;
  HttpClient(std::string host, uint16_t port);

  Result<std::unique_ptr<Connection>> Borrow();
  void Return(std::unique_ptr<Connection> connection);
  Result<std::unique_ptr<Connection>> Open();

  // Constant after construction.
  const std::string host_;
  const uint16_t port_;
  std::string host_header_;
  ModelInfo info_;

  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
};

}  // namespace brainstem::client
