// End to end in one process: a ShmServer on a Scheduler with a FakeBackend, driven by the raw
// test client over a real Unix socket and a real memfd region.
#include "transport/shm/shm_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "config/config.h"
#include "engine/test_util/fake_backend.h"
#include "transport/shm/checksum.h"
#include "transport/shm/test_util/fake_stack.h"
#include "transport/shm/test_util/raw_client.h"
#include "transport/shm/test_util/wait_for.h"

namespace brainstem::shm {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using test_util::FakeScheduler;
using test_util::ShmTestCard;

// What the server must answer for one raw row: FakeBackend outputs sum(row) * (column + 1) of
// the preprocessed row, then the card's bounds clip.
std::vector<float> Expected(const PolicyIo& io, std::span<const float> raw) {
  float sum = 0;
  for (size_t c = 0; c < raw.size(); ++c) sum += io.Preprocess(static_cast<int64_t>(c), raw[c]);
  std::vector<float> out;
  for (size_t a = 0; a < io.actions().size(); ++a) {
    out.push_back(
        std::clamp(sum * static_cast<float>(a + 1), io.actions()[a].low, io.actions()[a].high));
  }
  return out;
}

using ::brainstem::shm::test_util::WaitFor;

class ShmServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::path("/tmp") /
           ("bs-shm-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    options_.socket_path = (dir_ / "s.sock").string();
    options_.own_directory = true;
    options_.limits.max_tensor_slots = 16;
    options_.limits.max_rows = 64;
    options_.limits.max_frame_slots = 2;
    options_.limits.max_frame_bytes = 1 << 20;
  }

  void TearDown() override {
    server_.reset();
    scheduler_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void StartServer(bool stochastic = false, bool inline_when_idle = true) {
    auto io = PolicyIo::FromCard(ShmTestCard(stochastic));
    ASSERT_TRUE(io.ok()) << io.status().ToString();
    io_ = std::make_unique<PolicyIo>(std::move(io).value());
    auto scheduler = FakeScheduler(inline_when_idle, &metrics_, &backend_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status().ToString();
    scheduler_ = std::move(scheduler).value();
    auto server = ShmServer::Create(options_, io_.get(), scheduler_.get(), &metrics_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    server_->Start();
  }

  std::unique_ptr<RawClient> Connect(const HelloMessage& hello = RawClient::MakeHello()) {
    auto client = RawClient::Connect(options_.socket_path, hello);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    if (!client.ok()) return nullptr;
    return std::move(client).value();
  }

  // One request on `slot`, checked against Expected.
  void RoundTrip(RawClient& client, uint32_t slot, std::vector<float> raw, uint32_t rows) {
    client.SubmitTensor(slot, raw, rows);
    ASSERT_TRUE(client.WaitTensor(slot));
    ASSERT_EQ(client.TensorStatus(slot), ShmStatus::kOk) << client.TensorError(slot);
    const TensorSlot* s = client.view().tensor_slot(slot);
    EXPECT_EQ(s->response.response_sequence, s->sequence);
    const float* out = client.view().tensor_output(slot);
    for (uint32_t r = 0; r < rows; ++r) {
      auto want = Expected(*io_, std::span<const float>(raw).subspan(r * 3, 3));
      for (size_t a = 0; a < want.size(); ++a) {
        EXPECT_FLOAT_EQ(out[r * 2 + a], want[a]) << "row " << r << " action " << a;
      }
    }
    client.ReleaseTensor(slot);
  }

  fs::path dir_;
  ShmServerOptions options_;
  ServerMetrics metrics_;
  std::unique_ptr<PolicyIo> io_;
  FakeBackend* backend_ = nullptr;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ShmServer> server_;
};

TEST_F(ShmServerTest, SocketAndDirectoryPermissions) {
  StartServer();
  struct stat st {};
  ASSERT_EQ(stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(lstat(options_.socket_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  server_->Stop();
  EXPECT_FALSE(fs::exists(options_.socket_path)) << "the socket file outlived the server";
}

TEST_F(ShmServerTest, HelloWelcomeAndRoundTrip) {
  StartServer();
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->accepted()) << client->welcome_message();
  const RegionHeader* h = client->header();
  EXPECT_EQ(h->magic, kMagic);
  EXPECT_EQ(h->generation, server_->generation());
  EXPECT_NE(h->generation, 0u);
  EXPECT_EQ(h->input_width, 3u);
  EXPECT_EQ(h->output_width, 2u);
  EXPECT_EQ(h->max_rows, 16u);
  EXPECT_EQ(h->tensor_slot_count, 4u);
  EXPECT_EQ(h->checksum_kind, static_cast<uint32_t>(ChecksumKind::kXxh3));  // server default
  EXPECT_EQ(h->server_state.load(), 1u);
  EXPECT_TRUE(WaitFor([&] { return metrics_.shm_sessions.load() == 1; }));
  EXPECT_EQ(metrics_.shm_bytes_mapped.load(), static_cast<int64_t>(h->region_size));

  RoundTrip(*client, 0, {45, 0.1f, 0.2f}, 1);
  // Several rows, and a row whose actions clip.
  RoundTrip(*client, 1, {30, 0.1f, 0.1f, 60, 0.5f, -0.25f, 0, 0, 0}, 3);

  const TensorSlot* s = client->view().tensor_slot(0);
  EXPECT_LE(s->t_submit_ns, s->response.t_received_ns);
  EXPECT_LE(s->response.t_received_ns, s->response.t_compute_start_ns);
  EXPECT_LE(s->response.t_compute_start_ns, s->response.t_compute_end_ns);
  EXPECT_LE(s->response.t_compute_end_ns, s->response.t_done_ns);
  EXPECT_EQ(metrics_.shm_requests_total.load(), 2u);
  EXPECT_EQ(metrics_.observations_total.load(), 4u);

  // Informational: batch-1 round trip, client submit to client sees DONE.
  // Where the time goes, from the slot's own timestamps: pickup (submit -> received), server
  // (received -> done) and wake (done -> the client saw it).
  std::vector<double> micros, pickup, server, wake;
  const std::vector<float> raw = {45, 0.1f, 0.2f};
  for (int i = 0; i < 3000; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    client->SubmitTensor(0, raw, 1);
    ASSERT_TRUE(client->WaitTensor(0));
    const auto t1 = std::chrono::steady_clock::now();
    const uint64_t seen_ns = MonotonicNowNs();
    ASSERT_EQ(client->TensorStatus(0), ShmStatus::kOk);
    if (i >= 500) {
      micros.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      pickup.push_back(static_cast<double>(s->response.t_received_ns - s->t_submit_ns) / 1e3);
      server.push_back(static_cast<double>(s->response.t_done_ns - s->response.t_received_ns) /
                       1e3);
      wake.push_back(static_cast<double>(seen_ns - s->response.t_done_ns) / 1e3);
    }
    client->ReleaseTensor(0);
  }
  auto p50 = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::sort(micros.begin(), micros.end());
  std::printf(
      "[ info ] shm batch-1 round trip (in-process, fake backend): p50 %.2f us, p99 %.2f "
      "us over %zu; p50 pickup %.2f, server %.2f, wake %.2f us\n",
      micros[micros.size() / 2], micros[micros.size() * 99 / 100], micros.size(), p50(pickup),
      p50(server), p50(wake));
}

TEST_F(ShmServerTest, RefusesBadHellosWithAMessage) {
  StartServer();
  HelloMessage bad = RawClient::MakeHello();
  bad.magic = 42;
  auto c1 = Connect(bad);
  ASSERT_NE(c1, nullptr);
  EXPECT_FALSE(c1->accepted());
  EXPECT_EQ(c1->welcome().status, static_cast<uint32_t>(ShmStatus::kInvalidArgument));
  EXPECT_NE(c1->welcome_message().find("hello.magic"), std::string::npos) << c1->welcome_message();

  auto c2 = Connect(RawClient::MakeHello(/*tensor_slots=*/17));
  ASSERT_NE(c2, nullptr);
  EXPECT_FALSE(c2->accepted());
  EXPECT_NE(c2->welcome_message().find("hello.tensor_slot_count: 17 is over the limit"),
            std::string::npos)
      << c2->welcome_message();

  HelloMessage abi = RawClient::MakeHello();
  abi.abi_version = 99;
  auto c3 = Connect(abi);
  ASSERT_NE(c3, nullptr);
  EXPECT_EQ(c3->welcome().status, static_cast<uint32_t>(ShmStatus::kUnsupported));

  auto c4 = Connect(RawClient::MakeHello(4, 16, 3, 1024));  // 3 frame slots, limit 2
  ASSERT_NE(c4, nullptr);
  EXPECT_NE(c4->welcome_message().find("hello.frame_slot_count"), std::string::npos);

  // A client that connects and says nothing, and one that sends half a hello and leaves.
  const int silent = socket(AF_UNIX, SOCK_STREAM, 0);
  const int partial = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, options_.socket_path.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(connect(silent, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(connect(partial, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  HelloMessage half = RawClient::MakeHello();
  ASSERT_EQ(send(partial, &half, 10, 0), 10);
  close(partial);

  // None of that disturbed the server.
  auto good = Connect();
  ASSERT_NE(good, nullptr);
  ASSERT_TRUE(good->accepted());
  RoundTrip(*good, 0, {30, 1, 2}, 1);
  EXPECT_EQ(metrics_.shm_sessions_total.load(), 1u);
  close(silent);
}

TEST_F(ShmServerTest, ChecksumMismatchIsRefusedAndCounted) {
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(client && client->accepted());
  const std::vector<float> raw = {45, 0.1f, 0.2f};
  const uint64_t right = Checksum(ChecksumKind::kXxh3, raw.data(), raw.size() * sizeof(float));
  client->SubmitTensor(0, raw, 1, 0, 0, right ^ 1);
  ASSERT_TRUE(client->WaitTensor(0));
  EXPECT_EQ(client->TensorStatus(0), ShmStatus::kChecksumMismatch);
  EXPECT_NE(client->TensorError(0).find("checksum"), std::string::npos);
  EXPECT_EQ(metrics_.shm_checksum_failures_total.load(), 1u);
  EXPECT_EQ(backend_->calls.load(), 0) << "a corrupted request reached the model";
  client->ReleaseTensor(0);
  RoundTrip(*client, 0, raw, 1);

  // Every kind the client may pick works end to end.
  for (ChecksumKind kind : {ChecksumKind::kNone, ChecksumKind::kCrc32c, ChecksumKind::kSha256}) {
    auto other = Connect(RawClient::MakeHello(2, 4, 0, 0, static_cast<uint32_t>(kind)));
    ASSERT_TRUE(other && other->accepted());
    EXPECT_EQ(other->checksum(), kind);
    RoundTrip(*other, 1, raw, 1);
    if (kind != ChecksumKind::kNone) {
      other->SubmitTensor(0, raw, 1, 0, 0, 12345);
      ASSERT_TRUE(other->WaitTensor(0));
      EXPECT_EQ(other->TensorStatus(0), ShmStatus::kChecksumMismatch) << ChecksumKindName(kind);
    }
  }
  EXPECT_EQ(metrics_.shm_checksum_failures_total.load(), 3u);
  const std::string text = metrics_.RenderPrometheus("m", "v");
  EXPECT_NE(text.find("brainstem_shm_checksum_failures_total 3"), std::string::npos);
}

TEST_F(ShmServerTest, ForgedTensorSlotsFailOnlyThatRequest) {
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(client && client->accepted());
  struct Forgery {
    uint32_t rows;
    uint32_t flags;
    std::string field;
  };
  const std::vector<Forgery> forgeries = {{0, 0, "rows: 0"},
                                          {17, 0, "rows: 17"},
                                          {0xFFFFFFFF, 0, "rows: 4294967295"},
                                          {1, 0x80, "flags: unknown bits"},
                                          {1, kFlagStochastic, "flags: stochastic"}};
  for (const Forgery& f : forgeries) {
    TensorSlot* s = client->view().tensor_slot(2);
    s->rows = f.rows;
    s->flags = f.flags;
    s->checksum = 0;
    client->SubmitTensorRaw(2);
    ASSERT_TRUE(client->WaitTensor(2));
    EXPECT_EQ(client->TensorStatus(2), ShmStatus::kInvalidArgument) << f.field;
    EXPECT_NE(client->TensorError(2).find(f.field), std::string::npos) << client->TensorError(2);
    client->ReleaseTensor(2);
  }
  // A non-finite observation names its row and column.
  const std::vector<float> nan_row = {30, 1, 2, 30, NAN, 2};
  client->SubmitTensor(3, nan_row, 2);
  ASSERT_TRUE(client->WaitTensor(3));
  EXPECT_EQ(client->TensorStatus(3), ShmStatus::kInvalidArgument);
  EXPECT_NE(client->TensorError(3).find("input[1][1]"), std::string::npos)
      << client->TensorError(3);
  client->ReleaseTensor(3);

  EXPECT_EQ(metrics_.shm_bad_slots_total.load(), forgeries.size() + 1);
  EXPECT_EQ(backend_->calls.load(), 0);
  RoundTrip(*client, 0, {30, 1, 2}, 1);  // the session still works
}

TEST_F(ShmServerTest, StochasticFlagSamplesWithTheSeed) {
  StartServer(/*stochastic=*/true);
  auto client = Connect();
  ASSERT_TRUE(client && client->accepted());
  const std::vector<float> raw = {30, 0.2f, 0.1f};
  float first[2], second[2], other[2];
  for (auto [seed, out] : {std::pair<uint64_t, float*>{7, first}, {7, second}, {8, other}}) {
    client->SubmitTensor(0, raw, 1, kFlagStochastic, seed);
    ASSERT_TRUE(client->WaitTensor(0));
    ASSERT_EQ(client->TensorStatus(0), ShmStatus::kOk) << client->TensorError(0);
    std::memcpy(out, client->view().tensor_output(0), sizeof(float) * 2);
    client->ReleaseTensor(0);
  }
  EXPECT_EQ(first[0], second[0]);
  EXPECT_EQ(first[1], second[1]);
  EXPECT_TRUE(first[0] != other[0] || first[1] != other[1]);
}

TEST_F(ShmServerTest, FramesAreVerifiedInPlace) {
  StartServer();
  auto client = Connect(RawClient::MakeHello(1, 1, 2, 64 << 10));
  ASSERT_TRUE(client && client->accepted());
  const uint32_t width = 60, height = 40, stride = 256;  // BGRA rows padded to 256 bytes
  std::vector<uint8_t> pixels(size_t{stride} * height);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7);
  client->SubmitFrame(0, pixels, width, height, stride, PixelFormat::kBgra8);
  ASSERT_TRUE(client->WaitFrame(0));
  ASSERT_EQ(client->FrameStatus(0), ShmStatus::kOk);
  const FrameSlot* f = client->view().frame_slot(0);
  const std::string result(f->result, f->result_length);
  EXPECT_NE(result.find("\"bytes\":10240"), std::string::npos) << result;
  EXPECT_NE(result.find("\"verify_us\":"), std::string::npos) << result;
  EXPECT_EQ(f->response.response_sequence, f->sequence);
  client->ReleaseFrame(0);
  EXPECT_EQ(metrics_.shm_frames_total.load(), 1u);
  EXPECT_EQ(metrics_.shm_frame_bytes_total.load(), 10240u);

  // Corrupt one byte after the checksum was taken.
  client->SubmitFrame(1, pixels, width, height, stride, PixelFormat::kBgra8,
                      Checksum(ChecksumKind::kXxh3, pixels.data(), pixels.size()) + 1);
  ASSERT_TRUE(client->WaitFrame(1));
  EXPECT_EQ(client->FrameStatus(1), ShmStatus::kChecksumMismatch);
  client->ReleaseFrame(1);

  struct Forgery {
    uint32_t width, height, stride, format;
    uint64_t payload_bytes;
    uint32_t request;
    ShmStatus status;
    std::string field;
  };
  const std::vector<Forgery> forgeries = {
      {60, 40, 256, 1, (64 << 10) + 256, 0, ShmStatus::kInvalidArgument, "payload_bytes"},
      {60, 300, 256, 1, 256 * 300, 0, ShmStatus::kInvalidArgument, "exceeds the frame capacity"},
      {60, 40, 200, 1, 200 * 40, 0, ShmStatus::kInvalidArgument, "stride: 200"},
      {60, 40, 256, 9, 256 * 40, 0, ShmStatus::kInvalidArgument, "format: 9"},
      {0, 40, 256, 1, 256 * 40, 0, ShmStatus::kInvalidArgument, "width: 0"},
      {60, 40, 256, 1, 256 * 40, 5, ShmStatus::kUnsupported, "request: 5"},
  };
  for (const Forgery& g : forgeries) {
    FrameSlot* s = client->view().frame_slot(0);
    s->width = g.width;
    s->height = g.height;
    s->stride = g.stride;
    s->format = g.format;
    s->payload_bytes = g.payload_bytes;
    s->request = g.request;
    client->SubmitFrameRaw(0);
    ASSERT_TRUE(client->WaitFrame(0));
    EXPECT_EQ(client->FrameStatus(0), g.status) << g.field;
    const std::string error(s->response.error, s->response.error_length);
    EXPECT_NE(error.find(g.field), std::string::npos) << error;
    client->ReleaseFrame(0);
  }
  EXPECT_EQ(metrics_.shm_bad_slots_total.load(), forgeries.size());
  EXPECT_EQ(metrics_.shm_frames_total.load(), 1u);
  client->SubmitFrame(0, pixels, width, height, stride, PixelFormat::kBgra8);
  ASSERT_TRUE(client->WaitFrame(0));
  EXPECT_EQ(client->FrameStatus(0), ShmStatus::kOk);
}

TEST_F(ShmServerTest, ClientDeathMidRequestKeepsTheRegionUntilTheCompletionRan) {
  // Not inline: the request must wait in the scheduler, held, while its client dies.
  StartServer(false, /*inline_when_idle=*/false);
  backend_->hold->store(true);
  auto doomed = Connect();
  ASSERT_TRUE(doomed && doomed->accepted());
  const int64_t region_bytes = metrics_.shm_bytes_mapped.load();
  ASSERT_GT(region_bytes, 0);
  const std::vector<float> raw = {30, 1, 2};
  doomed->SubmitTensor(0, raw, 1);
  TensorSlot* slot = doomed->view().tensor_slot(0);
  ASSERT_TRUE(
      WaitFor([&] { return slot->state.load() == static_cast<uint32_t>(SlotState::kProcessing); }));
  doomed->CloseSocket();  // dies mid-request; its mapping stays so we can watch the slot
  ASSERT_TRUE(WaitFor([&] { return metrics_.shm_client_deaths_total.load() == 1; }));
  EXPECT_EQ(metrics_.shm_sessions.load(), 0);
  // The completion has not run: the server still maps the region.
  EXPECT_EQ(metrics_.shm_bytes_mapped.load(), region_bytes);

  backend_->hold->store(false);
  ASSERT_TRUE(WaitFor([&] { return metrics_.shm_bytes_mapped.load() == 0; }));
  // The completion wrote into the region before the server let go of it.
  EXPECT_EQ(slot->state.load(), static_cast<uint32_t>(SlotState::kDone));
  EXPECT_EQ(slot->response.status, static_cast<uint32_t>(ShmStatus::kOk));

  // The server keeps serving.
  auto next = Connect();
  ASSERT_TRUE(next && next->accepted());
  RoundTrip(*next, 0, raw, 1);
}

TEST_F(ShmServerTest, ShmAndDirectRequestsShareABatch) {
  StartServer(false, /*inline_when_idle=*/false);
  auto client = Connect();
  ASSERT_TRUE(client && client->accepted());
  backend_->hold->store(true);
  // A first request occupies the instance (held inside the backend)...
  auto first = std::make_unique<InferRequest>();
  first->batch = 1;
  first->inputs = {0, 0, 0};
  std::atomic<int> direct_done{0};
  first->done = [&](InferResult&&) { direct_done.fetch_add(1); };
  ASSERT_TRUE(scheduler_->Submit(std::move(first)).ok());
  ASSERT_TRUE(WaitFor([&] { return metrics_.queue_depth.load() == 0; }));
  // ...while an HTTP-like request and an shm request queue up behind it.
  auto direct = std::make_unique<InferRequest>();
  direct->batch = 1;
  direct->inputs = {1, 1, 1};
  direct->done = [&](InferResult&& r) {
    EXPECT_EQ(r.timings.batch_requests, 2);
    direct_done.fetch_add(1);
  };
  ASSERT_TRUE(scheduler_->Submit(std::move(direct)).ok());
  const std::vector<float> raw = {30, 0.1f, 0.2f};
  client->SubmitTensor(0, raw, 1);
  ASSERT_TRUE(WaitFor([&] { return metrics_.queue_depth.load() == 2; }));
  backend_->hold->store(false);
  ASSERT_TRUE(client->WaitTensor(0));
  EXPECT_EQ(client->TensorStatus(0), ShmStatus::kOk);
  ASSERT_TRUE(WaitFor([&] { return direct_done.load() == 2; }));
  EXPECT_EQ(backend_->calls.load(), 2) << "three requests, two backend calls";
}

TEST_F(ShmServerTest, ManyClientsAtOnce) {
  options_.spin_us = 20;
  StartServer();
  constexpr int kClients = 8;
  constexpr int kSteps = 300;
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(Connect());
    ASSERT_TRUE(clients.back() && clients.back()->accepted());
  }
  EXPECT_TRUE(WaitFor([&] { return metrics_.shm_sessions.load() == kClients; }));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      RawClient& client = *clients[static_cast<size_t>(i)];
      for (int step = 0; step < kSteps; ++step) {
        const uint32_t slot = static_cast<uint32_t>(step % 4);
        const std::vector<float> raw = {30.0f + static_cast<float>(i), 0.001f * step, 0.01f};
        client.SubmitTensor(slot, raw, 1);
        if (!client.WaitTensor(slot) || client.TensorStatus(slot) != ShmStatus::kOk) {
          failures.fetch_add(1);
          return;
        }
        const auto want = Expected(*io_, raw);
        const float* out = client.view().tensor_output(slot);
        if (out[0] != want[0] || out[1] != want[1]) failures.fetch_add(1);
        client.ReleaseTensor(slot);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(metrics_.shm_requests_total.load(), uint64_t{kClients} * kSteps);
  clients.clear();
  EXPECT_TRUE(WaitFor([&] { return metrics_.shm_sessions.load() == 0; }));
  EXPECT_TRUE(WaitFor([&] { return metrics_.shm_bytes_mapped.load() == 0; }));
}

TEST_F(ShmServerTest, SleepingServerIsWokenByTheDoorbell) {
  options_.spin_us = 0;  // sleep as soon as there is no work
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(client && client->accepted());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(WaitFor([&] { return client->header()->server_sleeping.load() == 1; }));
    RoundTrip(*client, static_cast<uint32_t>(i % 4), {30, 0.01f * i, 0}, 1);
  }
}

TEST_F(ShmServerTest, StopMarksRegionsClosingAndInFlightRequestsStillComplete) {
  StartServer(false, /*inline_when_idle=*/false);
  auto client = Connect();
  ASSERT_TRUE(client && client->accepted());
  backend_->hold->store(true);
  client->SubmitTensor(0, std::vector<float>{30, 1, 1}, 1);
  ASSERT_TRUE(WaitFor([&] {
    return client->view().tensor_slot(0)->state.load() ==
           static_cast<uint32_t>(SlotState::kProcessing);
  }));
  server_->Stop();
  backend_->hold->store(false);
  ASSERT_TRUE(client->WaitTensor(0));
  EXPECT_EQ(client->TensorStatus(0), ShmStatus::kOk);
  ASSERT_TRUE(WaitFor([&] { return metrics_.shm_bytes_mapped.load() == 0; }));
  EXPECT_EQ(client->header()->server_state.load(), 2u);
  char byte;
  EXPECT_EQ(recv(client->socket_fd(), &byte, 1, 0), 0) << "the session socket stays open";
  EXPECT_EQ(metrics_.shm_sessions.load(), 0);
  EXPECT_FALSE(fs::exists(options_.socket_path));
}

TEST_F(ShmServerTest, StaleSocketIsReplacedLiveOneIsNot) {
  // A socket file left by a dead server: bound, never unlinked, nobody listening.
  fs::create_directories(dir_);
  fs::permissions(dir_, fs::perms::owner_all);
  const int stale = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, options_.socket_path.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(bind(stale, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  close(stale);
  ASSERT_TRUE(fs::exists(options_.socket_path));
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(client && client->accepted());

  auto second = ShmServer::Create(options_, io_.get(), scheduler_.get(), &metrics_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(
      second.status().message().find("another server is listening on " + options_.socket_path),
      std::string::npos)
      << second.status().message();
  RoundTrip(*client, 0, {30, 1, 1}, 1);  // the first server was not disturbed
}

TEST_F(ShmServerTest, NotASocketIsRefused) {
  fs::create_directories(dir_);
  std::FILE* f = std::fopen(options_.socket_path.c_str(), "w");
  std::fclose(f);
  auto io = PolicyIo::FromCard(ShmTestCard());
  auto scheduler = FakeScheduler(true, &metrics_, &backend_);
  auto server = ShmServer::Create(options_, &*io, scheduler->get(), &metrics_);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("is not a socket"), std::string::npos);
}

TEST(ShmServerOptionsTest, FromConfigAndLimitsAgreeWithTheLayout) {
  ConfigInputs inputs;
  auto config = LoadConfig(inputs);
  ASSERT_TRUE(config.ok());
  auto options = ShmServerOptionsFromConfig(*config, "");
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->socket_path, "/tmp/brainstem-" + std::to_string(geteuid()) + "/default.sock");
  EXPECT_TRUE(options->own_directory);
  EXPECT_EQ(options->limits.default_checksum, ChecksumKind::kXxh3);
  EXPECT_EQ(options->limits.max_tensor_slots, 64u);
  EXPECT_EQ(options->limits.max_frame_bytes, 32u << 20);
  EXPECT_EQ(options->spin_us, 50);
  EXPECT_EQ(ShmServerOptionsFromConfig(*config, "/run/user/7")->socket_path,
            "/run/user/7/brainstem/default.sock");

  inputs.overrides = {{"shm.path", "/var/run/x.sock"}, {"shm.checksum", "sha256"}};
  auto custom = ShmServerOptionsFromConfig(*LoadConfig(inputs), "/run/user/7");
  ASSERT_TRUE(custom.ok());
  EXPECT_EQ(custom->socket_path, "/var/run/x.sock");
  EXPECT_FALSE(custom->own_directory);
  EXPECT_EQ(custom->limits.default_checksum, ChecksumKind::kSha256);
  EXPECT_TRUE(options->listen_socket);
  EXPECT_EQ(options->lobby_name, "") << "no lobby unless shm.rendezvous asks for one";

  // shm.rendezvous: named publishes the lobby of shm.name instead of the socket, both does both.
  inputs.overrides = {{"shm.rendezvous", "named"}, {"shm.name", "car-2"}};
  auto named = ShmServerOptionsFromConfig(*LoadConfig(inputs), "");
  ASSERT_TRUE(named.ok());
  EXPECT_FALSE(named->listen_socket);
  EXPECT_EQ(named->lobby_name, "car-2");
  inputs.overrides = {{"shm.rendezvous", "both"}};
  auto both = ShmServerOptionsFromConfig(*LoadConfig(inputs), "");
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE(both->listen_socket);
  EXPECT_EQ(both->lobby_name, "default");

  // The config's ranges are the protocol's ceilings (config cannot include the layout).
  auto with = [](const std::string& key, uint64_t value) {
    ConfigInputs in;
    in.overrides = {{key, std::to_string(value)}};
    return LoadConfig(in).ok();
  };
  EXPECT_TRUE(with("shm.max_tensor_slots", kMaxTensorSlots));
  EXPECT_FALSE(with("shm.max_tensor_slots", kMaxTensorSlots + 1));
  EXPECT_TRUE(with("shm.max_rows", kMaxRowsPerSlot));
  EXPECT_FALSE(with("shm.max_rows", kMaxRowsPerSlot + 1));
  EXPECT_TRUE(with("shm.max_frame_slots", kMaxFrameSlots));
  EXPECT_FALSE(with("shm.max_frame_slots", kMaxFrameSlots + 1));
  EXPECT_TRUE(with("shm.max_frame_bytes", kMaxFrameBytes));
  EXPECT_FALSE(with("shm.max_frame_bytes", kMaxFrameBytes + 1));
}

}  // namespace
}  // namespace brainstem::shm
