// The C ABI (include/brainstem_client.h) over the C++ client. Every entry point catches all
// exceptions (allocation failure is the only one the client can throw) and turns them into
// BS_INTERNAL, so none crosses into C.
// Thread-safe as the C++ client; the last error is kept per thread.

#include <atomic>
#include <cstring>
#include <memory>
#include <string>

#include "brainstem/client.h"
#include "brainstem_client.h"

namespace bc = brainstem::client;
using brainstem::Status;
using brainstem::StatusCode;

struct bs_client {
  std::unique_ptr<bc::Client> impl;
  std::atomic<bool> corrupt_after_checksum{false};
};

struct bs_frame {
  bs_client* client = nullptr;
  bc::FrameBuffer buffer;
};

namespace {

thread_local std::string last_error;

int CodeFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return BS_OK;
    case StatusCode::kInvalidArgument:
      return BS_INVALID_ARGUMENT;
    case StatusCode::kDataLoss:
      return BS_CHECKSUM_MISMATCH;
    case StatusCode::kUnavailable:
      return BS_UNAVAILABLE;
    case StatusCode::kDeadlineExceeded:
      return BS_DEADLINE_EXCEEDED;
    case StatusCode::kInternal:
      return BS_INTERNAL;
    case StatusCode::kUnimplemented:
      return BS_UNSUPPORTED;
    case StatusCode::kNotFound:
      return BS_NOT_FOUND;
    case StatusCode::kFailedPrecondition:
      return BS_FAILED_PRECONDITION;
    case StatusCode::kResourceExhausted:
      return BS_RESOURCE_EXHAUSTED;
  }
  return BS_INTERNAL;
}

int Report(const Status& s) {
  if (s.ok()) {
    last_error.clear();
    return BS_OK;
  }
  last_error = s.message();
  return CodeFor(s);
}

int Fail(int code, std::string message) {
  last_error = std::move(message);
  return code;
}

void CopyTimings(const bc::CallTimings& t, bs_timings* out) {
  if (out == nullptr) return;
  out->total_ns = t.total_ns;
  out->request_ns = t.request_ns;
  out->queue_ns = t.queue_ns;
  out->compute_ns = t.compute_ns;
  out->response_ns = t.response_ns;
  out->server_ns = t.server_ns;
}

void CopyText(const std::string& text, char* out, size_t capacity) {
  if (out == nullptr || capacity == 0) return;
  size_t n = std::min(text.size(), capacity - 1);
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

bool ValidFormat(uint32_t format) { return format >= BS_BGRA8 && format <= BS_GRAY8; }

int FrameDone(brainstem::Result<bc::FrameAck>& ack, char* result_out, size_t result_capacity,
              bs_timings* timings) {
  if (!ack.ok()) {
    CopyText("", result_out, result_capacity);
    return Report(ack.status());
  }
  CopyText(ack->result, result_out, result_capacity);
  CopyTimings(ack->timings, timings);
  return Report(Status::Ok());
}

}  // namespace

extern "C" {

int bs_connect(const char* url, bs_client** out, char* err, size_t err_len) {
  try {
    if (out != nullptr) *out = nullptr;
    if (url == nullptr || out == nullptr) {
      CopyText("bs_connect: url and out must not be NULL", err, err_len);
      return Fail(BS_INVALID_ARGUMENT, "bs_connect: url and out must not be NULL");
    }
    auto connected = bc::Connect(url);
    if (!connected.ok()) {
      CopyText(connected.status().message(), err, err_len);
      return Report(connected.status());
    }
    auto* client = new bs_client;
    client->impl = std::move(connected).value();
    *out = client;
    CopyText("", err, err_len);
    return Report(Status::Ok());
  } catch (...) {
    CopyText("bs_connect: out of memory", err, err_len);
    return Fail(BS_INTERNAL, "bs_connect: out of memory");
  }
}

void bs_close(bs_client* client) {
  try {
    delete client;
  } catch (...) {
  }
}

const char* bs_last_error(const bs_client*) { return last_error.c_str(); }

const char* bs_transport(const bs_client* client) {
  if (client == nullptr) return "";
  return client->impl->transport() == "shm" ? "shm" : "http";
}

int32_t bs_input_width(const bs_client* client) {
  return client == nullptr ? 0 : client->impl->input_width();
}

int32_t bs_output_width(const bs_client* client) {
  return client == nullptr ? 0 : client->impl->output_width();
}

const char* bs_output_name(const bs_client* client, int32_t i) {
  if (client == nullptr) return nullptr;
  const auto& names = client->impl->output_names();
  if (i < 0 || static_cast<size_t>(i) >= names.size()) return nullptr;
  return names[static_cast<size_t>(i)].c_str();
}

int32_t bs_input_feature_count(const bs_client* client) {
  return client == nullptr ? 0 : static_cast<int32_t>(client->impl->input_features().size());
}

int bs_input_feature(const bs_client* client, int32_t i, const char** name, int32_t* size) {
  if (client == nullptr) return Fail(BS_INVALID_ARGUMENT, "bs_input_feature: client is NULL");
  const auto& features = client->impl->input_features();
  if (i < 0 || static_cast<size_t>(i) >= features.size()) {
    return Fail(BS_NOT_FOUND, "bs_input_feature: index out of range");
  }
  if (name != nullptr) *name = features[static_cast<size_t>(i)].name.c_str();
  if (size != nullptr) *size = features[static_cast<size_t>(i)].size;
  return BS_OK;
}

uint64_t bs_generation(const bs_client* client) {
  return client == nullptr ? 0 : client->impl->generation();
}

int bs_predict_raw(bs_client* client, const float* rows, int32_t n_rows, int32_t row_width,
                   float* actions_out, int32_t actions_capacity, int deterministic, uint64_t seed,
                   bs_timings* timings) {
  try {
    if (client == nullptr || rows == nullptr || actions_out == nullptr) {
      return Fail(BS_INVALID_ARGUMENT,
                  "bs_predict_raw: client, rows and actions_out must not "
                  "be NULL");
    }
    if (row_width != client->impl->input_width()) {
      return Fail(BS_INVALID_ARGUMENT, "bs_predict_raw: row_width " + std::to_string(row_width) +
                                           " but the model takes " +
                                           std::to_string(client->impl->input_width()) +
                                           " values per row");
    }
    if (n_rows < 1) return Fail(BS_INVALID_ARGUMENT, "bs_predict_raw: n_rows must be >= 1");
    const int64_t needed = int64_t{n_rows} * client->impl->output_width();
    if (actions_capacity < needed) {
      return Fail(BS_BUFFER_TOO_SMALL, "bs_predict_raw: actions_out holds " +
                                           std::to_string(actions_capacity) + " floats, " +
                                           std::to_string(needed) + " needed");
    }
    bc::CallTimings t;
    bc::PredictOptions options;
    options.deterministic = deterministic != 0;
    if (!options.deterministic && seed != 0) options.seed = seed;
    options.timings = timings != nullptr ? &t : nullptr;
    options.corrupt_after_checksum = client->corrupt_after_checksum.load(std::memory_order_relaxed);
    Status s = client->impl->PredictRaw(rows, n_rows, actions_out, options);
    if (s.ok()) CopyTimings(t, timings);
    return Report(s);
  } catch (...) {
    return Fail(BS_INTERNAL, "bs_predict_raw: out of memory");
  }
}

int bs_submit_frame(bs_client* client, const uint8_t* pixels, uint32_t width, uint32_t height,
                    uint32_t stride, uint32_t format, uint64_t timestamp_ns, char* result_out,
                    size_t result_capacity, bs_timings* timings) {
  return bs_submit_frame_request(client, pixels, width, height, stride, format, timestamp_ns,
                                 BS_FRAME_VERIFY, nullptr, result_out, result_capacity, timings);
}

int bs_submit_frame_request(bs_client* client, const uint8_t* pixels, uint32_t width,
                            uint32_t height, uint32_t stride, uint32_t format,
                            uint64_t timestamp_ns, uint32_t request, const char* query,
                            char* result_out, size_t result_capacity, bs_timings* timings) {
  try {
    if (client == nullptr) return Fail(BS_INVALID_ARGUMENT, "bs_submit_frame: client is NULL");
    if (!ValidFormat(format)) return Fail(BS_INVALID_ARGUMENT, "bs_submit_frame: unknown format");
    bc::FrameOptions options;
    options.timestamp_ns = timestamp_ns;
    options.request = request;
    if (query != nullptr) options.query = query;
    options.corrupt_after_checksum = client->corrupt_after_checksum.load(std::memory_order_relaxed);
    auto ack = client->impl->SubmitFrame(pixels, width, height, stride,
                                         static_cast<bc::PixelFormat>(format), options);
    return FrameDone(ack, result_out, result_capacity, timings);
  } catch (...) {
    return Fail(BS_INTERNAL, "bs_submit_frame: out of memory");
  }
}

int bs_frame_acquire(bs_client* client, bs_frame** out, uint8_t** pixels, uint64_t* capacity) {
  try {
    if (client == nullptr || out == nullptr || pixels == nullptr) {
      return Fail(BS_INVALID_ARGUMENT, "bs_frame_acquire: NULL argument");
    }
    *out = nullptr;
    auto buffer = client->impl->AcquireFrameBuffer();
    if (!buffer.ok()) return Report(buffer.status());
    auto* frame = new bs_frame;
    frame->client = client;
    frame->buffer = std::move(buffer).value();
    *pixels = frame->buffer.data();
    if (capacity != nullptr) *capacity = frame->buffer.capacity();
    *out = frame;
    return Report(Status::Ok());
  } catch (...) {
    return Fail(BS_INTERNAL, "bs_frame_acquire: out of memory");
  }
}

int bs_frame_submit(bs_frame* frame, uint32_t width, uint32_t height, uint32_t stride,
                    uint32_t format, uint64_t timestamp_ns, char* result_out,
                    size_t result_capacity, bs_timings* timings) {
  return bs_frame_submit_request(frame, width, height, stride, format, timestamp_ns,
                                 BS_FRAME_VERIFY, nullptr, result_out, result_capacity, timings);
}

int bs_frame_submit_request(bs_frame* frame, uint32_t width, uint32_t height, uint32_t stride,
                            uint32_t format, uint64_t timestamp_ns, uint32_t request,
                            const char* query, char* result_out, size_t result_capacity,
                            bs_timings* timings) {
  try {
    if (frame == nullptr) return Fail(BS_INVALID_ARGUMENT, "bs_frame_submit: frame is NULL");
    std::unique_ptr<bs_frame> owned(frame);
    if (!ValidFormat(format)) return Fail(BS_INVALID_ARGUMENT, "bs_frame_submit: unknown format");
    bc::FrameOptions options;
    options.timestamp_ns = timestamp_ns;
    options.request = request;
    if (query != nullptr) options.query = query;
    options.corrupt_after_checksum =
        owned->client->corrupt_after_checksum.load(std::memory_order_relaxed);
    auto ack =
        owned->client->impl->SubmitFrameBuffer(std::move(owned->buffer), width, height, stride,
                                               static_cast<bc::PixelFormat>(format), options);
    return FrameDone(ack, result_out, result_capacity, timings);
  } catch (...) {
    return Fail(BS_INTERNAL, "bs_frame_submit: out of memory");
  }
}

void bs_frame_release(bs_frame* frame) {
  try {
    delete frame;
  } catch (...) {
  }
}

int bs_set_test_option(bs_client* client, const char* name, int64_t value) {
  if (client == nullptr || name == nullptr) {
    return Fail(BS_INVALID_ARGUMENT, "bs_set_test_option: NULL argument");
  }
  if (std::strcmp(name, "corrupt_after_checksum") == 0) {
    client->corrupt_after_checksum.store(value != 0, std::memory_order_relaxed);
    return Report(Status::Ok());
  }
  return Fail(BS_INVALID_ARGUMENT,
              std::string("bs_set_test_option: unknown option '") + name + "'");
}

}  // extern "C"
