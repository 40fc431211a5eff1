// Tests for LoadBackend and each built backend against the tiny MLP fixture, whose expected
// outputs were computed by torch (tests/fixtures/make_tiny_mlp.py). Backends that this build
// lacks are skipped, except for the test that checks the "not built" error itself.

#include "backends/backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace brainstem {
namespace {

const std::filesystem::path kFixtureDir =
    std::filesystem::path(BRAINSTEM_SOURCE_DIR) / "tests" / "fixtures" / "tiny_mlp";

struct Expected {
  int64_t input_width = 0;
  int64_t output_width = 0;
  int64_t rows = 0;
  std::vector<float> inputs;   // rows * input_width
  std::vector<float> outputs;  // rows * output_width
};

// Reads expected.txt: two comment lines, "in out rows", then "inputs... | outputs..." per row.
Expected ReadExpected() {
  Expected e;
  std::ifstream f(kFixtureDir / "expected.txt");
  EXPECT_TRUE(f.good()) << "missing fixture; run /usr/bin/python3 tests/fixtures/make_tiny_mlp.py";
  std::string line;
  while (std::getline(f, line) && (line.empty() || line[0] == '#')) {
  }
  std::istringstream header(line);
  header >> e.input_width >> e.output_width >> e.rows;
  for (int64_t r = 0; r < e.rows && std::getline(f, line); ++r) {
    std::istringstream row(line);
    float v = 0;
    for (int64_t i = 0; i < e.input_width && row >> v; ++i) e.inputs.push_back(v);
    std::string bar;
    row >> bar;
    EXPECT_EQ(bar, "|");
    for (int64_t i = 0; i < e.output_width && row >> v; ++i) e.outputs.push_back(v);
  }
  EXPECT_EQ(e.inputs.size(), static_cast<size_t>(e.rows * e.input_width));
  EXPECT_EQ(e.outputs.size(), static_cast<size_t>(e.rows * e.output_width));
  return e;
}

std::filesystem::path ModelFile(ModelFormat format) {
  return kFixtureDir / (format == ModelFormat::kTorchScript ? "model.pt" : "model.onnx");
}

BackendOptions SmallOptions() {
  BackendOptions options;
  options.warmup_iterations = 2;
  options.max_batch_size = 8;
  return options;
}

class BackendTest : public ::testing::TestWithParam<ModelFormat> {
 protected:
  void SetUp() override {
    if (!BackendBuiltIn(GetParam())) {
      GTEST_SKIP() << ModelFormatName(GetParam()) << " backend not built";
    }
    expected_ = ReadExpected();
  }

  Result<std::unique_ptr<Backend>> Load(const BackendOptions& options = SmallOptions()) {
    return LoadBackend(GetParam(), ModelFile(GetParam()), expected_.input_width,
                       expected_.output_width, options);
  }

  // Runs rows [first, first + batch) of the fixture and returns the outputs.
  std::vector<float> RunRows(Backend& backend, int64_t first, int64_t batch) {
    std::span<const float> in(expected_.inputs.data() + first * expected_.input_width,
                              static_cast<size_t>(batch * expected_.input_width));
    std::vector<float> out(static_cast<size_t>(batch * expected_.output_width), NAN);
    Status s = backend.Run(in, batch, out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  void ExpectMatchesTorch(const std::vector<float>& out, int64_t first) {
    for (size_t i = 0; i < out.size(); ++i) {
      EXPECT_NEAR(out[i], expected_.outputs[first * expected_.output_width + i], 1e-5)
          << "value " << i;
    }
  }

  Expected expected_;
};

TEST_P(BackendTest, LoadsAndReportsWhatItRuns) {
  auto backend = Load();
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  EXPECT_EQ((*backend)->format(), GetParam());
  EXPECT_EQ((*backend)->input_width(), expected_.input_width);
  EXPECT_EQ((*backend)->output_width(), expected_.output_width);
  EXPECT_EQ((*backend)->device(), Device::kCpu);
  EXPECT_EQ((*backend)->precision(), Precision::kFp32);
}

TEST_P(BackendTest, BatchOneMatchesTorch) {
  auto backend = Load();
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  for (int64_t r = 0; r < expected_.rows; ++r) ExpectMatchesTorch(RunRows(**backend, r, 1), r);
}

TEST_P(BackendTest, BatchOfAllRowsMatchesTorch) {
  auto backend = Load();
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  ASSERT_EQ(expected_.rows, 7);
  ExpectMatchesTorch(RunRows(**backend, 0, expected_.rows), 0);
}

TEST_P(BackendTest, BatchResultsEqualPerRowResults) {
  auto backend = Load();
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  const std::vector<float> batched = RunRows(**backend, 0, expected_.rows);
  for (int64_t r = 0; r < expected_.rows; ++r) {
    const std::vector<float> single = RunRows(**backend, r, 1);
    for (int64_t c = 0; c < expected_.output_width; ++c) {
      EXPECT_NEAR(single[c], batched[r * expected_.output_width + c], 1e-6)
          << "row " << r << " col " << c;
    }
  }
}

// Alternating sizes exercises the per-batch-size paths (ONNX keeps one network per size).
TEST_P(BackendTest, AlternatingBatchSizesStayCorrect) {
  auto backend = Load();
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  for (int round = 0; round < 3; ++round) {
    for (int64_t batch : {1, 3, 7, 2, 1, 5}) {
      ExpectMatchesTorch(RunRows(**backend, 0, batch), 0);
    }
  }
}

// More distinct sizes than the ONNX backend keeps planned networks for (16), so the later ones
// go through its shared re-planning network. Rows are the fixture's, repeated.
TEST_P(BackendTest, ManyDistinctBatchSizesStayCorrect) {
  BackendOptions options = SmallOptions();
  options.max_batch_size = 24;
  auto backend = Load(options);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  const int64_t in_w = expected_.input_width;
  const int64_t out_w = expected_.output_width;
  for (int round = 0; round < 2; ++round) {
    for (int64_t batch = 24; batch >= 1; --batch) {
      std::vector<float> in;
      std::vector<float> want;
      for (int64_t r = 0; r < batch; ++r) {
        const int64_t src = (r * 3 + batch) % expected_.rows;
        in.insert(in.end(), expected_.inputs.begin() + src * in_w,
                  expected_.inputs.begin() + (src + 1) * in_w);
        want.insert(want.end(), expected_.outputs.begin() + src * out_w,
                    expected_.outputs.begin() + (src + 1) * out_w);
      }
      std::vector<float> out(want.size(), NAN);
      ASSERT_TRUE((*backend)->Run(in, batch, out).ok()) << "batch " << batch;
      for (size_t i = 0; i < out.size(); ++i) {
        ASSERT_NEAR(out[i], want[i], 1e-5) << "batch " << batch << " value " << i;
      }
    }
  }
}

TEST_P(BackendTest, BatchLargerThanWarmedUpStillRuns) {
  BackendOptions options = SmallOptions();
  options.max_batch_size = 2;
  auto backend = Load(options);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  ExpectMatchesTorch(RunRows(**backend, 0, expected_.rows), 0);
}

TEST_P(BackendTest, WrongInputWidthIsInvalidArgument) {
  auto backend = LoadBackend(GetParam(), ModelFile(GetParam()), expected_.input_width + 2,
                             expected_.output_width, SmallOptions());
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kInvalidArgument) << backend.status().ToString();
}

TEST_P(BackendTest, WrongOutputWidthIsInvalidArgument) {
  auto backend = LoadBackend(GetParam(), ModelFile(GetParam()), expected_.input_width,
                             expected_.output_width + 1, SmallOptions());
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kInvalidArgument) << backend.status().ToString();
}

TEST_P(BackendTest, RunWithWrongSpanSizesFailsAndInstanceStaysUsable) {
  auto backend = Load();
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  std::vector<float> in(static_cast<size_t>(2 * expected_.input_width), 0.0f);
  std::vector<float> out(static_cast<size_t>(2 * expected_.output_width), 0.0f);
  EXPECT_EQ((*backend)->Run(in, 3, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*backend)->Run(in, 0, std::span<float>()).code(), StatusCode::kInvalidArgument);
  ExpectMatchesTorch(RunRows(**backend, 4, 1), 4);
}

TEST_P(BackendTest, MissingFileIsNotFound) {
  auto backend = LoadBackend(GetParam(), kFixtureDir / "no_such_model.bin", expected_.input_width,
                             expected_.output_width, SmallOptions());
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kNotFound) << backend.status().ToString();
}

TEST_P(BackendTest, CorruptFileIsAnErrorNotACrash) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("brainstem_corrupt_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
       "_" + std::string(ModelFormatName(GetParam())));
  {
    std::ofstream f(path, std::ios::binary);
    for (int i = 0; i < 4096; ++i) f.put(static_cast<char>((i * 131 + 7) % 251));
  }
  auto backend =
      LoadBackend(GetParam(), path, expected_.input_width, expected_.output_width, SmallOptions());
  std::filesystem::remove(path);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kInvalidArgument) << backend.status().ToString();
}

TEST_P(BackendTest, EmptyFileIsAnError) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("brainstem_empty_" + std::string(ModelFormatName(GetParam())));
  { std::ofstream f(path, std::ios::binary); }
  auto backend =
      LoadBackend(GetParam(), path, expected_.input_width, expected_.output_width, SmallOptions());
  std::filesystem::remove(path);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kInvalidArgument) << backend.status().ToString();
}

TEST_P(BackendTest, CudaWithoutCudaIsUnimplemented) {
  if (BestDevice(GetParam()) == Device::kCuda) GTEST_SKIP() << "this build has CUDA";
  BackendOptions options = SmallOptions();
  options.device = Device::kCuda;
  auto backend = Load(options);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(backend.status().message().find("cuda"), std::string::npos)
      << backend.status().message();
}

TEST_P(BackendTest, MpsIsUnimplementedOnLinux) {
  BackendOptions options = SmallOptions();
  options.device = Device::kMps;
  auto backend = Load(options);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(backend.status().message().find("mps"), std::string::npos)
      << backend.status().message();
}

TEST_P(BackendTest, Fp16OnCpuIsUnimplemented) {
  BackendOptions options = SmallOptions();
  options.precision = Precision::kFp16;
  auto backend = Load(options);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(backend.status().message().find("fp16"), std::string::npos)
      << backend.status().message();
}

TEST_P(BackendTest, AutoPicksTheBestDevice) {
  BackendOptions options = SmallOptions();
  options.device = Device::kAuto;
  auto backend = Load(options);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  EXPECT_EQ((*backend)->device(), BestDevice(GetParam()));
  EXPECT_NE((*backend)->device(), Device::kAuto);
}

TEST_P(BackendTest, BadOptionsAreInvalidArgument) {
  BackendOptions options = SmallOptions();
  options.max_batch_size = 0;
  EXPECT_EQ(Load(options).status().code(), StatusCode::kInvalidArgument);
  options = SmallOptions();
  options.intra_op_threads = 0;
  EXPECT_EQ(Load(options).status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(AllFormats, BackendTest,
                         ::testing::Values(ModelFormat::kTorchScript, ModelFormat::kOnnx),
                         [](const ::testing::TestParamInfo<ModelFormat>& info) {
                           return std::string(
                               info.param == ModelFormat::kTorchScript ? "TorchScript" : "Onnx");
                         });

TEST(BackendNamesTest, NamesMatchTheConfigSpelling) {
  EXPECT_EQ(ModelFormatName(ModelFormat::kTorchScript), "torchscript");
  EXPECT_EQ(ModelFormatName(ModelFormat::kOnnx), "onnx");
  EXPECT_EQ(DeviceName(Device::kAuto), "auto");
  EXPECT_EQ(DeviceName(Device::kCpu), "cpu");
  EXPECT_EQ(DeviceName(Device::kCuda), "cuda");
  EXPECT_EQ(DeviceName(Device::kMps), "mps");
  EXPECT_EQ(PrecisionName(Precision::kFp32), "fp32");
  EXPECT_EQ(PrecisionName(Precision::kFp16), "fp16");
}

TEST(BackendBuiltInTest, FormatsNotBuiltSayHowToBuildThem) {
  for (ModelFormat format : {ModelFormat::kTorchScript, ModelFormat::kOnnx}) {
    if (BackendBuiltIn(format)) continue;
    auto backend = LoadBackend(format, ModelFile(format), 5, 3, BackendOptions());
    ASSERT_FALSE(backend.ok());
    EXPECT_EQ(backend.status().code(), StatusCode::kUnimplemented);
    EXPECT_NE(backend.status().message().find("not built"), std::string::npos);
  }
}

TEST(BackendBuiltInTest, OnnxNeverPicksAGpu) {
  EXPECT_EQ(BestDevice(ModelFormat::kOnnx), Device::kCpu);
}

}  // namespace
}  // namespace brainstem
