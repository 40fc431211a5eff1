// client_probe: a small program over the C++ client that the integration tests drive
// (test_clients.py). Prints one JSON object on stdout; exit 0 on success, 1 on a client error
// (the JSON then has "code" and "error").
//
//   client_probe predict URL [rows...]   rows as comma-separated floats; prints the actions
//   client_probe threads URL N ITER ROW  N threads x ITER calls of ROW; all answers must agree
//   client_probe frame URL W H           one BGRA frame of pseudo-random pixels
//   client_probe corrupt URL ROW         one call with corrupt_after_checksum
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "brainstem/client.h"

namespace bc = brainstem::client;

namespace {

std::string Num(float v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, end);
}

std::vector<float> ParseRow(const char* text) {
  std::vector<float> row;
  const char* p = text;
  const char* end = text + std::strlen(text);
  while (p < end) {
    float v = 0;
    auto [next, ec] = std::from_chars(p, end, v);
    if (ec != std::errc()) break;
    row.push_back(v);
    p = next;
    if (p < end && *p == ',') ++p;
  }
  return row;
}

int Fail(const brainstem::Status& s) {
  std::printf("{\"code\":\"%s\",\"error\":\"",
              std::string(brainstem::StatusCodeName(s.code())).c_str());
  for (char c : s.message()) {
    if (c == '"' || c == '\\') std::putchar('\\');
    if (static_cast<unsigned char>(c) >= 0x20) std::putchar(c);
  }
  std::printf("\"}\n");
  return 1;
}

std::string Timings(const bc::CallTimings& t) {
  return "{\"total_ns\":" + std::to_string(t.total_ns) +
         ",\"request_ns\":" + std::to_string(t.request_ns) +
         ",\"queue_ns\":" + std::to_string(t.queue_ns) +
         ",\"compute_ns\":" + std::to_string(t.compute_ns) +
         ",\"response_ns\":" + std::to_string(t.response_ns) +
         ",\"server_ns\":" + std::to_string(t.server_ns) + "}";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: client_probe predict|threads|frame|corrupt URL ...\n");
    return 2;
  }
  const std::string mode = argv[1];
  auto connected = bc::Connect(argv[2]);
  if (!connected.ok()) return Fail(connected.status());
  bc::Client& client = **connected;
  const int32_t in = client.input_width(), out = client.output_width();

  if (mode == "predict" || mode == "corrupt") {
    std::vector<float> rows;
    for (int i = 3; i < argc; ++i) {
      auto row = ParseRow(argv[i]);
      if (static_cast<int32_t>(row.size()) != in) {
        std::fprintf(stderr, "row %d has %zu values, the model takes %d\n", i - 3, row.size(), in);
        return 2;
      }
      rows.insert(rows.end(), row.begin(), row.end());
    }
    const int32_t n = static_cast<int32_t>(rows.size() / static_cast<size_t>(in));
    std::vector<float> actions(static_cast<size_t>(n) * static_cast<size_t>(out));
    bc::CallTimings timings;
    bc::PredictOptions options;
    options.timings = &timings;
    options.corrupt_after_checksum = mode == "corrupt";
    brainstem::Status s = client.PredictRaw(rows.data(), n, actions.data(), options);
    if (!s.ok()) return Fail(s);
    std::string json = "{\"transport\":\"" + std::string(client.transport()) +
                       "\",\"generation\":" + std::to_string(client.generation()) +
                       ",\"timings\":" + Timings(timings) + ",\"actions\":[";
    for (int32_t r = 0; r < n; ++r) {
      json += r ? ",[" : "[";
      for (int32_t a = 0; a < out; ++a) {
        if (a) json += ",";
        json += Num(actions[static_cast<size_t>(r * out + a)]);
      }
      json += "]";
    }
    std::printf("%s]}\n", json.c_str());
    return 0;
  }

  if (mode == "threads" && argc >= 6) {
    const int threads = std::atoi(argv[3]);
    const int iterations = std::atoi(argv[4]);
    const std::vector<float> row = ParseRow(argv[5]);
    if (static_cast<int32_t>(row.size()) != in) return 2;
    std::vector<float> reference(static_cast<size_t>(out));
    brainstem::Status s = client.PredictRaw(row.data(), 1, reference.data());
    if (!s.ok()) return Fail(s);
    std::vector<std::string> errors(static_cast<size_t>(threads));
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        std::vector<float> got(static_cast<size_t>(out));
        for (int i = 0; i < iterations; ++i) {
          brainstem::Status st = client.PredictRaw(row.data(), 1, got.data());
          if (!st.ok()) {
            errors[static_cast<size_t>(t)] = st.ToString();
            return;
          }
          // Concurrent calls may share a batch; a backend's kernels may round a row of a larger
          // batch differently in the last bits, so compare with a tolerance here.
          for (int32_t a = 0; a < out; ++a) {
            if (std::fabs(got[static_cast<size_t>(a)] - reference[static_cast<size_t>(a)]) >
                1e-5f) {
              errors[static_cast<size_t>(t)] = "answer differs from the reference";
              return;
            }
          }
        }
      });
    }
    for (auto& th : pool) th.join();
    for (const auto& e : errors) {
      if (!e.empty()) return Fail(brainstem::InternalError(e));
    }
    std::printf("{\"calls\":%d}\n", threads * iterations);
    return 0;
  }

  if (mode == "frame" && argc >= 5) {
    const uint32_t w = static_cast<uint32_t>(std::atoi(argv[3]));
    const uint32_t h = static_cast<uint32_t>(std::atoi(argv[4]));
    auto buffer = client.AcquireFrameBuffer();
    if (!buffer.ok()) return Fail(buffer.status());
    if (uint64_t{w} * h * 4 > buffer->capacity())
      return Fail(brainstem::InvalidArgumentError("too big"));
    uint32_t x = 12345;
    for (uint64_t i = 0; i < uint64_t{w} * h * 4; ++i) {
      x = x * 1103515245u + 12345u;
      buffer->data()[i] = static_cast<uint8_t>(x >> 24);
    }
    auto ack =
        client.SubmitFrameBuffer(std::move(buffer).value(), w, h, w * 4, bc::PixelFormat::kBgra8);
    if (!ack.ok()) return Fail(ack.status());
    std::printf("{\"sequence\":%llu,\"result_length\":%zu,\"timings\":%s}\n",
                static_cast<unsigned long long>(ack->sequence), ack->result.size(),
                Timings(ack->timings).c_str());
    return 0;
  }
  std::fprintf(stderr, "unknown mode or missing arguments\n");
  return 2;
}
