// `brainstem monitor`: polls GET /v1/status every --interval seconds for --duration seconds and
// shows latency, throughput, batch sizes, queue depth, per-core-kind load, memory, shared
// memory and OCR images/s. On a terminal the view is redrawn in place (ANSI clear); piped, each
// refresh is appended as a block, so logs and tests read it line by line. At the end: a report
// comparing what it saw (median and max over the samples) with the server's configured targets.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/status_client.h"
#include "cli/validation.h"
#include "common/clock.h"

namespace brainstem {
namespace {

struct MonitorFlags {
  std::string url = "http://127.0.0.1:8080";
  double duration_s = 10;
  double interval_s = 1;
  bool no_clear = false;
};

std::string Num(std::optional<double> v, int digits = 1) {
  if (!v.has_value()) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, *v);
  return buf;
}

std::string Mib(int64_t bytes) { return Num(static_cast<double>(bytes) / 1048576.0) + " MiB"; }

std::optional<double> Median(std::vector<double> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::optional<double> Max(const std::vector<double>& v) {
  if (v.empty()) return std::nullopt;
  return *std::max_element(v.begin(), v.end());
}

std::string View(const ServerStatus& s, const std::string& url, int sample, double elapsed) {
  std::ostringstream o;
  o << "brainstem monitor  " << url << "  " << s.model << " " << s.version << " (" << s.format
    << ")  pid " << s.pid << "  sample " << sample << " at " << Num(elapsed) << " s\n";
  o << "  latency      HTTP p50 " << Num(s.http_p50_us) << " us  p90 " << Num(s.http_p90_us)
    << " us  p99 " << Num(s.http_p99_us) << " us  | queue p50 " << Num(s.queue_p50_us)
    << " us  compute p50 " << Num(s.compute_p50_us) << " us\n";
  o << "  throughput   " << Num(s.requests_per_s) << " requests/s  " << Num(s.observations_per_s)
    << " observations/s  (total " << s.requests_total << ": http " << s.http_requests << ", shm "
    << s.shm_requests << ")\n";
  o << "  batches      mean " << Num(s.batch_mean) << "  p90 " << Num(s.batch_p90, 0) << "  sizes";
  if (s.batch_distribution.empty()) o << " -";
  for (const auto& [label, count] : s.batch_distribution) o << " " << label << ":" << count;
  o << "\n";
  o << "  queue        depth " << s.queue_depth << " / " << s.queue_capacity << "  rejected (full) "
    << s.rejected_queue_full << "  deadline exceeded " << s.deadline_exceeded << "\n";
  o << "  cpu load    ";
  if (s.kind_load.empty()) o << " n/a (sampler off)";
  for (const auto& [kind, percent] : s.kind_load) o << " " << kind << " " << Num(percent) << "%";
  o << "  | server " << Num(s.cpu_percent) << "% of one core\n";
  o << "  memory       RSS " << Mib(s.rss_bytes) << "\n";
  o << "  shm          ";
  if (s.shm_enabled) {
    o << s.shm_sessions << " sessions  " << Mib(s.shm_bytes_mapped) << " mapped  frames "
      << s.shm_frames << " (" << Num(s.frames_per_s) << "/s)  checksum failures "
      << s.shm_checksum_failures << "\n";
  } else {
    o << "disabled\n";
  }
  o << "  ocr          images/s "
    << (s.ocr_available ? Num(s.ocr_images_per_s) : std::string("n/a (OCR off)")) << "\n";
  return o.str();
}

int Monitor(const MonitorFlags& flags) {
  if (flags.duration_s <= 0 || flags.interval_s <= 0) {
    std::cerr << "brainstem monitor: --duration and --interval must be > 0\n";
    return 2;
  }
  Result<HttpEndpoint> endpoint = ParseHttpEndpoint(flags.url);
  if (!endpoint.ok()) {
    std::cerr << "brainstem monitor: --url " << endpoint.status().message() << "\n";
    return 2;
  }
  const bool tty = isatty(STDOUT_FILENO) && !flags.no_clear;
  std::vector<ServerStatus> samples;
  std::optional<ServerStatus> first;
  std::string last_error;
  const TimePoint start = Clock::now();
  const auto interval = std::chrono::duration<double>(flags.interval_s);
  for (int i = 0;; ++i) {
    const TimePoint tick = start + std::chrono::duration_cast<Clock::duration>(interval * i);
    std::this_thread::sleep_until(tick);
    const double elapsed = NanosBetween(start, Clock::now()) / 1e9;
    if (elapsed > flags.duration_s + 0.5 * flags.interval_s) break;
    // The window equals the interval, so each sample describes the time since the last one.
    Result<ServerStatus> status = FetchStatus(*endpoint, flags.interval_s);
    if (!status.ok()) {
      last_error = status.status().message();
      std::cout << (tty ? "\x1b[H\x1b[2J" : "") << "brainstem monitor: " << last_error << "\n"
                << std::flush;
      continue;
    }
    if (!first) {
      first = *status;
    } else {
      samples.push_back(*status);  // the first sample's rates cover the time before monitoring
    }
    std::cout << (tty ? "\x1b[H\x1b[2J" : "") << View(*status, endpoint->url, i, elapsed)
              << (tty ? "" : "\n") << std::flush;
  }
  if (!first) {
    std::cerr << "brainstem monitor: no sample from " << endpoint->url << ": " << last_error
              << "\n";
    return 1;
  }
  if (samples.empty()) samples.push_back(*first);

  // Report: what was seen against the server's targets. A line with nothing to judge (no HTTP
  // traffic, no idle sample) is n/a and does not count.
  const TargetsConfig& t = first->targets;
  std::vector<double> p50, p99, rss, rps, idle_cpu, ocr_ips;
  for (const ServerStatus& s : samples) {
    if (s.http_p50_us) p50.push_back(*s.http_p50_us);
    if (s.http_p99_us) p99.push_back(*s.http_p99_us);
    rss.push_back(static_cast<double>(s.rss_bytes) / 1048576.0);
    rps.push_back(s.requests_per_s);
    if (s.ocr_available && s.ocr_images_per_s) ocr_ips.push_back(*s.ocr_images_per_s);
    if (s.requests_per_s == 0) idle_cpu.push_back(s.cpu_percent);
  }
  const ServerStatus& last = samples.back();
  std::vector<Check> checks;
  checks.push_back(CheckAtMost("startup", first->startup_seconds * 1000,
                               static_cast<double>(t.startup_ms), "ms"));
  auto judged = [&](const char* name, std::optional<double> v, double limit, const char* unit,
                    const char* how) {
    if (!v) {
      Check c;
      c.name = name;
      c.measured = "n/a";
      c.target = "<= " + Num(limit, 1) + " " + unit;
      c.verdict = Verdict::kNotApplicable;
      c.detail = std::string("nothing observed (") + how + ")";
      checks.push_back(c);
      return;
    }
    checks.push_back(CheckAtMost(name, *v, limit, unit));
    checks.back().detail = how;
  };
  judged("http_p50 (median)", Median(p50), static_cast<double>(t.http_p50_us), "us",
         "median of the per-interval HTTP p50");
  judged("http_p99 (max)", Max(p99), static_cast<double>(t.http_p99_us), "us",
         "worst per-interval HTTP p99");
  judged("idle_cpu (median)", Median(idle_cpu), t.idle_cpu_percent, "%",
         "server CPU in intervals without requests");
  judged("rss (max)", Max(rss), static_cast<double>(t.idle_rss_mb), "MiB",
         "largest resident memory seen, against the idle target");
  {
    Check c = CheckAtMost(
        "rejected (queue full)",
        static_cast<double>(last.rejected_queue_full - first->rejected_queue_full), 0, "", 0);
    c.detail = "requests refused with 503 while monitoring";
    checks.push_back(c);
  }
  {
    Check c = CheckAtMost(
        "shm checksum failures",
        static_cast<double>(last.shm_checksum_failures - first->shm_checksum_failures), 0, "", 0);
    c.detail = "payloads that did not match their checksum while monitoring";
    checks.push_back(c);
  }
  {
    // Throughput is judged only when the traffic reached the target: the monitor watches load,
    // it does not make any (brainstem validate does).
    Check c = CheckAtLeast("requests/s (max)", Max(rps).value_or(0),
                           static_cast<double>(t.shm_throughput_rps), "req/s");
    if (c.verdict == Verdict::kFail) {
      c.verdict = Verdict::kNotApplicable;
      c.detail = "below the throughput target; the monitor does not drive load (see validate)";
    } else {
      c.detail = "peak over the samples";
    }
    checks.push_back(c);
  }
  std::ostringstream title;
  title << "report over " << samples.size() << " samples (median requests/s " << Num(Median(rps))
        << ", max " << Num(Max(rps)) << "; OCR images/s "
        << (ocr_ips.empty() ? std::string("n/a")
                            : "median " + Num(Median(ocr_ips)) + ", max " + Num(Max(ocr_ips)))
        << "):";
  std::cout << "\n" << FormatReport(checks, title.str()) << std::flush;
  return Summarize(checks).ok ? 0 : 1;
}

}  // namespace

std::function<int()> RegisterMonitor(CLI::App* app) {
  CLI::App* command = app->add_subcommand(
      "monitor",
      "Live view of a server's latency, throughput, load, memory and shm, then a "
      "report against its targets");
  auto flags = std::make_shared<MonitorFlags>();
  command->add_option("--url", flags->url, "The server, http://HOST:PORT")->capture_default_str();
  command->add_option("-d,--duration", flags->duration_s, "Seconds to watch")
      ->capture_default_str();
  command->add_option("-i,--interval", flags->interval_s, "Seconds between refreshes")
      ->capture_default_str();
  command->add_flag("--no-clear", flags->no_clear,
                    "Append each refresh instead of redrawing, even on a terminal");
  return [flags]() { return Monitor(*flags); };
}

}  // namespace brainstem
