// `brainstem bench`: one load generator for both transports (see load_generator.h), with the
// server's CPU and RSS read from its /metrics, the batch-size table (1, 4, 8, 16, 32
// observations per request) and --json for machines.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "cli/commands.h"
#include "cli/load_generator.h"
#include "common/clock.h"

namespace brainstem {
namespace {

struct BenchFlags {
  LoadOptions load;
  std::string metrics_url;
  bool batch_table = false;
  bool json = false;
};

struct ServerSample {
  double cpu_seconds = 0;
  double rss_bytes = 0;
  TimePoint at;
};

// Reads process_cpu_seconds_total and process_resident_memory_bytes from a /metrics page.
std::optional<ServerSample> SampleServer(const std::string& url) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  namespace asio = boost::asio;
  if (url.rfind("http://", 0) != 0) return std::nullopt;
  std::string rest = url.substr(7);
  std::string host_port = rest.substr(0, rest.find('/'));
  std::string host = host_port.substr(0, host_port.find(':'));
  std::string port =
      host_port.find(':') == std::string::npos ? "80" : host_port.substr(host_port.find(':') + 1);
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.connect(resolver.resolve(host, port));
    http::request<http::empty_body> request(http::verb::get, "/metrics", 11);
    request.set(http::field::host, host);
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    ServerSample sample;
    sample.at = Clock::now();
    std::istringstream lines(response.body());
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("process_cpu_seconds_total ", 0) == 0) {
        sample.cpu_seconds = std::stod(line.substr(line.find(' ') + 1));
      } else if (line.rfind("process_resident_memory_bytes ", 0) == 0) {
        sample.rss_bytes = std::stod(line.substr(line.find(' ') + 1));
      }
    }
    return sample;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

struct RunResult {
  LoadReport report;
  std::optional<double> server_cpu_percent;
  std::optional<double> server_rss_mb;
};

Result<RunResult> RunOnce(const LoadOptions& options, const std::string& metrics_url) {
  RunResult result;
  std::optional<ServerSample> before;
  if (!metrics_url.empty()) before = SampleServer(metrics_url);
  ASSIGN_OR_RETURN(result.report, RunLoad(options));
  if (before) {
    std::optional<ServerSample> after = SampleServer(metrics_url);
    if (after) {
      // The warm-up is inside the window too; it runs at the same load, so the ratio holds.
      const double wall = NanosBetween(before->at, after->at) / 1e9;
      result.server_cpu_percent = 100.0 * (after->cpu_seconds - before->cpu_seconds) / wall;
      result.server_rss_mb = after->rss_bytes / (1 << 20);
    }
  }
  return result;
}

void PrintHuman(const RunResult& r) {
  const LoadReport& p = r.report;
  std::printf(
      "%s  clients=%d  obs/request=%d  %s\n", p.transport.c_str(), p.clients, p.observations,
      p.rate > 0
          ? ("open loop at " + std::to_string(static_cast<int64_t>(p.rate)) + " req/s").c_str()
          : "closed loop");
  std::printf("  requests %lld in %.2f s, errors %lld%s%s\n", static_cast<long long>(p.requests),
              p.seconds, static_cast<long long>(p.errors), p.errors ? ": " : "",
              p.first_error.c_str());
  std::printf("  latency us: p50 %.1f  p90 %.1f  p95 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
              p.p50_us, p.p90_us, p.p95_us, p.p99_us, p.p999_us, p.max_us);
  std::printf("  throughput: %.0f requests/s, %.0f observations/s\n", p.requests_per_s,
              p.observations_per_s);
  if (p.has_breakdown) {
    std::printf(
        "  where the time goes (medians, us): handoff %.1f, queue %.1f, compute %.1f, "
        "answer %.1f (server total %.1f)\n",
        p.handoff_us, p.queue_us, p.compute_us, p.answer_us, p.server_us);
  }
  if (r.server_cpu_percent) {
    std::printf("  server: CPU %.0f%% of one core, RSS %.1f MB\n", *r.server_cpu_percent,
                *r.server_rss_mb);
  }
}

std::string Json(const RunResult& r) {
  const LoadReport& p = r.report;
  char buf[1024];
  std::snprintf(buf, sizeof(buf),
                "{\"transport\":\"%s\",\"clients\":%d,\"observations\":%d,\"rate\":%g,"
                "\"requests\":%lld,\"errors\":%lld,\"seconds\":%.3f,\"requests_per_s\":%.1f,"
                "\"observations_per_s\":%.1f,\"p50_us\":%.2f,\"p90_us\":%.2f,\"p95_us\":%.2f,"
                "\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f",
                p.transport.c_str(), p.clients, p.observations, p.rate,
                static_cast<long long>(p.requests), static_cast<long long>(p.errors), p.seconds,
                p.requests_per_s, p.observations_per_s, p.p50_us, p.p90_us, p.p95_us, p.p99_us,
                p.p999_us, p.max_us, p.mean_us);
  std::string out = buf;
  if (p.has_breakdown) {
    std::snprintf(buf, sizeof(buf),
                  ",\"breakdown_us\":{\"handoff\":%.2f,\"queue\":%.2f,\"compute\":%.2f,"
                  "\"answer\":%.2f,\"server\":%.2f}",
                  p.handoff_us, p.queue_us, p.compute_us, p.answer_us, p.server_us);
    out += buf;
  }
  if (r.server_cpu_percent) {
    std::snprintf(buf, sizeof(buf), ",\"server_cpu_percent\":%.1f,\"server_rss_mb\":%.1f",
                  *r.server_cpu_percent, *r.server_rss_mb);
    out += buf;
  }
  return out + "}";
}

int Bench(const BenchFlags& flags) {
  std::vector<RunResult> runs;
  std::vector<int> sizes = {flags.load.observations};
  if (flags.batch_table) sizes = {1, 4, 8, 16, 32};
  for (int size : sizes) {
    LoadOptions options = flags.load;
    options.observations = size;
    Result<RunResult> run = RunOnce(options, flags.metrics_url);
    if (!run.ok()) {
      std::cerr << "brainstem bench: " << run.status().ToString() << "\n";
      return 1;
    }
    if (!flags.json) PrintHuman(*run);
    runs.push_back(std::move(run).value());
  }
  if (flags.batch_table && !flags.json) {
    std::printf("\nobservations/request  p50 us  p99 us  requests/s  observations/s\n");
    for (const RunResult& r : runs) {
      std::printf("%20d  %6.1f  %6.1f  %10.0f  %14.0f\n", r.report.observations, r.report.p50_us,
                  r.report.p99_us, r.report.requests_per_s, r.report.observations_per_s);
    }
  }
  if (flags.json) {
    std::cout << "{\"url\":\"" << flags.load.url << "\",\"runs\":[";
    for (size_t i = 0; i < runs.size(); ++i) std::cout << (i ? "," : "") << Json(runs[i]);
    std::cout << "]}\n";
  }
  int64_t errors = 0;
  for (const RunResult& r : runs) errors += r.report.errors;
  return errors == 0 ? 0 : 3;
}

}  // namespace

std::function<int()> RegisterBench(CLI::App* app) {
  CLI::App* command = app->add_subcommand("bench", "Load-test a server over shm or http");
  auto flags = std::make_shared<BenchFlags>();
  flags->load.url = "shm://default";
  command->add_option("--url", flags->load.url, "shm://NAME, shm:///path.sock or http://HOST:PORT")
      ->capture_default_str();
  command->add_option("-c,--clients", flags->load.clients, "Concurrent clients")
      ->capture_default_str();
  command->add_option("--rate", flags->load.rate,
                      "Open loop: total requests/s on a fixed schedule (0 = closed loop)");
  command->add_option("-d,--duration", flags->load.duration_s, "Measured seconds")
      ->capture_default_str();
  command->add_option("-n,--requests", flags->load.requests,
                      "Stop after this many measured requests instead");
  command->add_option("--warmup", flags->load.warmup_s, "Unmeasured seconds first")
      ->capture_default_str();
  command->add_option("--observations", flags->load.observations, "Observations per request")
      ->capture_default_str();
  command->add_option("--metrics-url", flags->metrics_url,
                      "Server base URL for CPU and RSS from /metrics, e.g. http://127.0.0.1:8080");
  auto frame = command->add_option_function<std::string>(
      "--frame",
      [flags](const std::string& size) {
        unsigned w = 0, h = 0;
        if (std::sscanf(size.c_str(), "%ux%u", &w, &h) != 2 || w == 0 || h == 0) {
          throw CLI::ValidationError("--frame", "expected WIDTHxHEIGHT, e.g. 1920x1080");
        }
        flags->load.frame_width = static_cast<int>(w);
        flags->load.frame_height = static_cast<int>(h);
      },
      "Hand WIDTHxHEIGHT BGRA frames over shm in place instead of policy steps");
  (void)frame;
  command->add_flag("--batch-table", flags->batch_table,
                    "Run 1, 4, 8, 16 and 32 observations per request");
  command->add_flag("--json", flags->json, "Print one JSON object instead of text");
  return [flags]() { return Bench(*flags); };
}

}  // namespace brainstem
