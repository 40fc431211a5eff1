#include "cli/load_generator.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <random>
#include <thread>

#include "brainstem/client.h"
#include "common/clock.h"

namespace brainstem {
namespace {

struct ThreadResult {
  std::vector<int64_t> latencies_ns;
  std::vector<client::CallTimings> timings;
  int64_t errors = 0;
  std::string first_error;
};

// Plausible CarlaRL observations (raw units), fixed by the seed.
std::vector<float> MakeRows(int rows, int width, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> speed(0, 60), unit(-1, 1), sensor(-2, 2);
  std::vector<float> values(static_cast<size_t>(rows) * static_cast<size_t>(width));
  for (int r = 0; r < rows; ++r) {
    float* row = values.data() + static_cast<size_t>(r) * static_cast<size_t>(width);
    row[0] = speed(rng);
    if (width > 1) row[1] = unit(rng);
    for (int c = 2; c < width; ++c) row[c] = sensor(rng);
  }
  return values;
}

double Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t index = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size()))) - 1;
  return static_cast<double>(sorted[std::min(index, sorted.size() - 1)]) / 1e3;
}

double MedianUs(std::vector<uint64_t> values) {
  if (values.empty()) return 0;
  std::nth_element(values.begin(), values.begin() + static_cast<long>(values.size() / 2),
                   values.end());
  return static_cast<double>(values[values.size() / 2]) / 1e3;
}

// One frame handed over in place: the pixels are already in the slot (a producer such as a
// screen grabber writes them there), so the measured cost is the hand-off itself: header
// fields, checksum when the region has one, the server's validation, and the answer.
Status SubmitOneFrame(client::Client& c, const LoadOptions& options, client::CallTimings* timings) {
  const uint32_t width = static_cast<uint32_t>(options.frame_width);
  const uint32_t height = static_cast<uint32_t>(options.frame_height);
  ASSIGN_OR_RETURN(client::FrameBuffer buffer, c.AcquireFrameBuffer());
  const uint64_t bytes = uint64_t{width} * height * 4;
  if (bytes > buffer.capacity()) {
    return InvalidArgumentError("frame of " + std::to_string(bytes) + " bytes exceeds the slot (" +
                                std::to_string(buffer.capacity()) +
                                "); raise ?frame_bytes= in the URL");
  }
  ASSIGN_OR_RETURN(client::FrameAck ack,
                   c.SubmitFrameBuffer(std::move(buffer), width, height, width * 4,
                                       client::PixelFormat::kBgra8));
  *timings = ack.timings;
  return Status::Ok();
}

}  // namespace

Result<LoadReport> RunLoad(const LoadOptions& options) {
  if (options.clients < 1) return InvalidArgumentError("--clients must be >= 1");
  if (options.observations < 1) return InvalidArgumentError("--observations must be >= 1");
  std::vector<std::unique_ptr<client::Client>> clients;
  for (int i = 0; i < options.clients; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<client::Client> c, client::Connect(options.url));
    clients.push_back(std::move(c));
  }
  const int width = clients[0]->input_width();
  const int outputs = clients[0]->output_width();
  const bool open_loop = options.rate > 0;
  const bool frames = options.frame_width > 0 && options.frame_height > 0;
  if (frames && clients[0]->transport() != "shm") {
    return InvalidArgumentError("--frame needs a shm:// URL (the HTTP API has no frame route)");
  }

  std::atomic<bool> measuring{false}, stop{false};
  std::atomic<int64_t> issued{0};
  TimePoint measure_start{}, measure_end{};
  std::vector<ThreadResult> results(static_cast<size_t>(options.clients));
  std::vector<std::thread> threads;
  const TimePoint origin = Clock::now() + std::chrono::milliseconds(20);
  for (int t = 0; t < options.clients; ++t) {
    threads.emplace_back([&, t] {
      client::Client& c = *clients[static_cast<size_t>(t)];
      ThreadResult& out = results[static_cast<size_t>(t)];
      std::vector<float> rows = MakeRows(options.observations, width, options.seed + t);
      std::vector<float> actions(static_cast<size_t>(options.observations * outputs));
      client::CallTimings timings;
      client::PredictOptions predict;
      predict.timings = &timings;
      // Open loop: this thread owns sends t, t+N, t+2N, ... of a global schedule.
      const double interval_ns = open_loop ? 1e9 / options.rate : 0;
      for (int64_t k = t;; k += options.clients) {
        if (stop.load(std::memory_order_relaxed)) break;
        TimePoint start = Clock::now();
        if (open_loop) {
          start = origin + std::chrono::nanoseconds(static_cast<int64_t>(k * interval_ns));
          std::this_thread::sleep_until(start);
          if (stop.load(std::memory_order_relaxed)) break;
        }
        const bool measured = measuring.load(std::memory_order_acquire);
        if (measured && options.requests > 0 &&
            issued.fetch_add(1, std::memory_order_relaxed) >= options.requests) {
          break;
        }
        Status s = frames
                       ? SubmitOneFrame(c, options, &timings)
                       : c.PredictRaw(rows.data(), options.observations, actions.data(), predict);
        const int64_t latency = NanosBetween(start, Clock::now());
        if (!measured) continue;
        if (!s.ok()) {
          if (out.errors++ == 0) out.first_error = s.ToString();
          continue;
        }
        out.latencies_ns.push_back(latency);
        if (c.transport() == "shm") out.timings.push_back(timings);
      }
    });
  }

  std::this_thread::sleep_for(std::chrono::duration<double>(options.warmup_s));
  measure_start = Clock::now();
  measuring.store(true, std::memory_order_release);
  if (options.requests == 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(options.duration_s));
    stop.store(true);
  }
  for (auto& thread : threads) thread.join();  // by count: threads stop themselves
  measure_end = Clock::now();

  LoadReport report;
  report.transport = std::string(clients[0]->transport());
  report.clients = options.clients;
  report.observations = options.observations;
  report.rate = options.rate;
  report.seconds = NanosBetween(measure_start, measure_end) / 1e9;
  std::vector<int64_t> all;
  std::vector<uint64_t> handoff, queue, compute, answer, server;
  for (const ThreadResult& r : results) {
    all.insert(all.end(), r.latencies_ns.begin(), r.latencies_ns.end());
    report.errors += r.errors;
    if (report.first_error.empty()) report.first_error = r.first_error;
    for (const client::CallTimings& t : r.timings) {
      handoff.push_back(t.request_ns);
      queue.push_back(t.queue_ns);
      compute.push_back(t.compute_ns);
      answer.push_back(t.response_ns);
      server.push_back(t.server_ns);
    }
  }
  std::sort(all.begin(), all.end());
  report.requests = static_cast<int64_t>(all.size());
  report.requests_per_s = report.seconds > 0 ? static_cast<double>(all.size()) / report.seconds : 0;
  report.observations_per_s = report.requests_per_s * options.observations;
  report.p50_us = Percentile(all, 0.50);
  report.p90_us = Percentile(all, 0.90);
  report.p95_us = Percentile(all, 0.95);
  report.p99_us = Percentile(all, 0.99);
  report.p999_us = Percentile(all, 0.999);
  report.max_us = all.empty() ? 0 : static_cast<double>(all.back()) / 1e3;
  double sum = 0;
  for (int64_t v : all) sum += static_cast<double>(v);
  report.mean_us = all.empty() ? 0 : sum / static_cast<double>(all.size()) / 1e3;
  if (!handoff.empty()) {
    report.has_breakdown = true;
    report.handoff_us = MedianUs(std::move(handoff));
    report.queue_us = MedianUs(std::move(queue));
    report.compute_us = MedianUs(std::move(compute));
    report.answer_us = MedianUs(std::move(answer));
    report.server_us = MedianUs(std::move(server));
  }
  return report;
}

}  // namespace brainstem
