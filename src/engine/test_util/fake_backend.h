// FakeBackend: a Backend for scheduler tests whose output is a known function of each row
// (sum of the row, then row index-free constants) and that can be made slow or held on a gate,
// so batching, queueing and deadlines can be observed. Real backends are tested in backends/.
// Thread-compatible, as every Backend.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "backends/backend.h"

namespace brainstem {

class FakeBackend : public Backend {
 public:
  FakeBackend(int64_t input_width, int64_t output_width) : in_(input_width), out_(output_width) {}

  Status Run(std::span<const float> input, int64_t batch, std::span<float> output) override {
    started.fetch_add(1);
    while (hold->load()) std::this_thread::sleep_for(std::chrono::microseconds(50));
    if (delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    calls.fetch_add(1);
    for (int64_t r = 0; r < batch; ++r) {
      float sum = 0;
      for (int64_t c = 0; c < in_; ++c) sum += input[static_cast<size_t>(r * in_ + c)];
      for (int64_t c = 0; c < out_; ++c) {
        output[static_cast<size_t>(r * out_ + c)] = sum * static_cast<float>(c + 1);
      }
    }
    return fail ? InternalError("fake failure") : Status::Ok();
  }
  int64_t input_width() const override { return in_; }
  int64_t output_width() const override { return out_; }
  ModelFormat format() const override { return ModelFormat::kOnnx; }
  Device device() const override { return Device::kCpu; }
  Precision precision() const override { return Precision::kFp32; }

  // Shared so a test thread can release the gate even after the scheduler (which owns this
  // backend) is gone.
  std::shared_ptr<std::atomic<bool>> hold = std::make_shared<std::atomic<bool>>(false);
  std::atomic<int> started{0};  // calls that entered Run (possibly held at the gate)
  std::atomic<int> calls{0};
  int delay_us = 0;
  bool fail = false;

 private:
  int64_t in_, out_;
};

}  // namespace brainstem
