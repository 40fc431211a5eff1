// ONNX backend on OpenCV DNN.
//
// OpenCV plans (allocates and shape-infers) every layer's buffers for one input shape and
// re-plans on each shape change. Measured on the tiny fixture MLP, 1 thread: batch 1 alone
// ~5-7 µs per call, batch 8 alone ~9-10 µs, alternating 1 and 8 on one network ~30 µs per call.
// So each batch size gets its own planned cv::dnn::Net (parsed from the same bytes), up to
// kMaxPlannedNets sizes; rarer sizes share one spill network that re-plans as needed. Warm-up
// plans 1, 2, the powers of two below max_batch_size and max_batch_size itself.

#include "backends/onnx/onnx_backend.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace brainstem {
namespace {

// Bounds memory: each planned network holds its own copy of the weights and buffers.
constexpr size_t kMaxPlannedNets = 16;

std::string FirstLine(const char* text) {
  std::string s = text;
  const auto newline = s.find('\n');
  if (newline != std::string::npos) s.resize(newline);
  return s;
}

Result<cv::dnn::Net> ParseNet(const std::vector<char>& bytes) {
  try {
    cv::dnn::Net net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
    if (net.empty()) return InvalidArgumentError("OpenCV DNN produced an empty network");
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return net;
  } catch (const std::exception& e) {
    return InvalidArgumentError(FirstLine(e.what()));
  }
}

class OnnxBackend final : public Backend {
 public:
  OnnxBackend(std::vector<char> bytes, cv::dnn::Net spill, int64_t input_width,
              int64_t output_width)
      : bytes_(std::move(bytes)),
        input_width_(input_width),
        output_width_(output_width),
        spill_(std::move(spill)) {}

  Status Run(std::span<const float> input, int64_t batch, std::span<float> output) override {
    if (batch < 1 || input.size() != static_cast<size_t>(batch * input_width_) ||
        output.size() != static_cast<size_t>(batch * output_width_)) {
      return InvalidArgumentError(
          "Run: batch " + std::to_string(batch) + " needs " + std::to_string(batch * input_width_) +
          " inputs and " + std::to_string(batch * output_width_) + " outputs, got " +
          std::to_string(input.size()) + " and " + std::to_string(output.size()));
    }
    try {
      cv::dnn::Net& net = NetFor(batch);
      // A header over the caller's rows; setInput copies them once into OpenCV's input blob.
      const int sizes[2] = {static_cast<int>(batch), static_cast<int>(input_width_)};
      const cv::Mat blob(2, sizes, CV_32F, const_cast<float*>(input.data()));
      net.setInput(blob);
      // The returned Mat views OpenCV's output buffer, valid until the next forward.
      const cv::Mat y = net.forward();
      if (y.type() != CV_32F || y.dims < 2 || y.size[0] != batch ||
          y.total() != static_cast<size_t>(batch * output_width_)) {
        return InvalidArgumentError("ONNX output has shape " + ShapeString(y) + ", expected [" +
                                    std::to_string(batch) + ", " + std::to_string(output_width_) +
                                    "] float32");
      }
      if (y.isContinuous()) {
        std::memcpy(output.data(), y.ptr<float>(), output.size() * sizeof(float));
      } else {
        cv::Mat out(y.dims, y.size.p, CV_32F, output.data());
        y.copyTo(out);
      }
      return Status::Ok();
    } catch (const std::exception& e) {
      return InternalError("ONNX run failed: " + FirstLine(e.what()));
    }
  }

  int64_t input_width() const override { return input_width_; }
  int64_t output_width() const override { return output_width_; }
  ModelFormat format() const override { return ModelFormat::kOnnx; }
  Device device() const override { return Device::kCpu; }
  Precision precision() const override { return Precision::kFp32; }

 private:
  static std::string ShapeString(const cv::Mat& m) {
    std::string s = "[";
    for (int i = 0; i < m.dims; ++i) {
      if (i > 0) s += ", ";
      s += std::to_string(m.size[i]);
    }
    return s + "]";
  }

  // The network planned for `batch`, creating it while there is room; else the spill network.
  cv::dnn::Net& NetFor(int64_t batch) {
    if (auto it = nets_.find(batch); it != nets_.end()) return it->second;
    if (nets_.size() < kMaxPlannedNets) {
      // The bytes parsed once already (the spill network), so this cannot fail for them.
      Result<cv::dnn::Net> net = ParseNet(bytes_);
      if (net.ok()) return nets_.emplace(batch, std::move(net).value()).first->second;
    }
    return spill_;
  }

  // Constant after construction.
  const std::vector<char> bytes_;
  const int64_t input_width_ = 0;
  const int64_t output_width_ = 0;
  // Mutated only by Run (one caller at a time per backend.h).
  cv::dnn::Net spill_;
  std::unordered_map<int64_t, cv::dnn::Net> nets_;
};

Status RunZeros(Backend& backend, int64_t rows) {
  std::vector<float> in(static_cast<size_t>(rows * backend.input_width()), 0.0f);
  std::vector<float> out(static_cast<size_t>(rows * backend.output_width()), 0.0f);
  return backend.Run(in, rows, out);
}

}  // namespace

Result<std::unique_ptr<Backend>> LoadOnnxBackend(const std::filesystem::path& file,
                                                 int64_t input_width, int64_t output_width,
                                                 const BackendOptions& options) {
  // TBB's arena size is process-wide; every ONNX instance asks for the same count.
  cv::setNumThreads(options.intra_op_threads);

  std::ifstream stream(file, std::ios::binary);
  if (!stream) return NotFoundError("cannot open model file: " + file.string());
  std::vector<char> bytes((std::istreambuf_iterator<char>(stream)),
                          std::istreambuf_iterator<char>());
  if (bytes.empty()) return InvalidArgumentError("empty ONNX file: " + file.string());

  Result<cv::dnn::Net> spill = ParseNet(bytes);
  if (!spill.ok()) {
    return InvalidArgumentError("not an ONNX graph OpenCV DNN can import: " + file.string() + ": " +
                                spill.status().message());
  }
  auto backend = std::make_unique<OnnxBackend>(std::move(bytes), std::move(spill).value(),
                                               input_width, output_width);

  if (Status trial = RunZeros(*backend, std::min<int64_t>(2, options.max_batch_size));
      !trial.ok()) {
    return InvalidArgumentError("ONNX model " + file.string() + " does not map " +
                                std::to_string(input_width) + " inputs to " +
                                std::to_string(output_width) + " outputs: " + trial.message());
  }
  for (int i = 0; i < options.warmup_iterations; ++i) RETURN_IF_ERROR(RunZeros(*backend, 1));
  // The first call at a new batch size parses and plans a network (0.2-0.4 ms measured), so
  // plan the powers of two and the largest size now; other sizes pay it once, on first use.
  if (options.warmup_iterations > 0) {
    for (int64_t batch = 4; batch < options.max_batch_size; batch *= 2) {
      RETURN_IF_ERROR(RunZeros(*backend, batch));
    }
  }
  for (int i = 0; i < 3; ++i) RETURN_IF_ERROR(RunZeros(*backend, options.max_batch_size));
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace brainstem
