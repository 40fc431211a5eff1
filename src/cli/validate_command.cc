// `brainstem validate`: measures a running server (--url) or one it starts itself (--self)
// against the targets of the config's `targets:` section and prints one line per check
// (measured, target, PASS/FAIL), then total, passed, success rate and PASSED/FAILED; --json
// prints the same as one JSON object. Exit 0 when every check passed, 1 when any failed, 2 for
// usage and config errors. docs/operations.md describes each check.
#include <brainstem/client.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/load_generator.h"
#include "cli/status_client.h"
#include "cli/validation.h"
#include "common/clock.h"

extern char** environ;

namespace brainstem {
namespace {

struct ValidateFlags {
  ConfigFlags config;
  std::string url;
  bool self = false;
  bool json = false;
  double duration_s = 2.0;  // each latency / throughput run
  double idle_s = 2.0;      // the idle CPU window
};

// A `brainstem serve` child started by --self; stopped (SIGTERM, then SIGKILL) on destruction.
class SelfServer {
 public:
  static Result<std::unique_ptr<SelfServer>> Start(const ValidateFlags& flags) {
    auto server = std::unique_ptr<SelfServer>(new SelfServer());
    char pattern[] = "/tmp/brainstem-validate-XXXXXX";
    if (mkdtemp(pattern) == nullptr) return InternalError("mkdtemp failed");
    server->dir_ = pattern;
    std::error_code ec;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return InternalError("cannot find my own executable: " + ec.message());
    const std::filesystem::path port_file = server->dir_ / "port";
    std::vector<std::string> args = {
        exe.string(),  "serve",
        "--port",      "0",
        "--port-file", port_file.string(),
        "--set",       "shm.path=" + (server->dir_ / "v.sock").string()};
    if (!flags.config.file.empty()) {
      args.push_back("--config");
      args.push_back(flags.config.file);
    }
    for (const std::string& set : flags.config.sets) {
      args.push_back("--set");
      args.push_back(set);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = (server->dir_ / "serve.log").string();
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    server->spawned_ = Clock::now();
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return InternalError("cannot start " + exe.string() + ": " + std::strerror(rc));
    server->pid_ = pid;
    const TimePoint deadline = Clock::now() + std::chrono::seconds(30);
    while (true) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) {
        server->ready_seconds_ = NanosBetween(server->spawned_, Clock::now()) / 1e9;
        server->url_ = "http://127.0.0.1:" + std::to_string(port);
        return server;
      }
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        server->pid_ = 0;
        return UnavailableError(
            "brainstem serve exited (" + std::string(WIFEXITED(status) ? "code " : "signal ") +
            std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status)) +
            ") before it was ready:\n" + server->Log());
      }
      if (Clock::now() > deadline) {
        return UnavailableError("brainstem serve was not ready within 30 s:\n" + server->Log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  ~SelfServer() {
    (void)Stop();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // SIGTERM and wait; returns the exit code (-1: had to be killed or died of a signal).
  int Stop() {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, SIGTERM);
    int status = 0;
    const TimePoint deadline = Clock::now() + std::chrono::seconds(20);
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        pid_ = 0;
        return exit_code_ = -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = 0;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return exit_code_;
  }

  std::string Log() const {
    std::ifstream in(dir_ / "serve.log");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }
  const std::string& url() const { return url_; }
  double ready_seconds() const { return ready_seconds_; }

 private:
  SelfServer() = default;
  std::filesystem::path dir_;
  pid_t pid_ = 0;
  int exit_code_ = -1;
  TimePoint spawned_;
  double ready_seconds_ = 0;
  std::string url_;
};

// CPU time of a local process in seconds: the sum of its threads' run time in nanoseconds
// (/proc/<pid>/task/*/schedstat), far finer than the 10 ms ticks of /proc/<pid>/stat that
// process_cpu_seconds_total is made of; a 2 s idle window at 1% is 20 ms, only two ticks.
std::optional<double> LocalCpuSeconds(int64_t pid) {
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/task", ec);
  if (ec) return std::nullopt;
  double total = 0;
  for (const auto& entry : it) {
    std::ifstream in(entry.path() / "schedstat");
    uint64_t run_ns = 0;
    if (in >> run_ns) total += static_cast<double>(run_ns) / 1e9;
  }
  return total;
}

std::optional<double> MetricsCpuSeconds(const HttpEndpoint& endpoint) {
  Result<std::string> text = HttpGet(endpoint, "/metrics");
  if (!text.ok()) return std::nullopt;
  return PrometheusValue(*text, "process_cpu_seconds_total");
}

Check IdleCpu(const HttpEndpoint& endpoint, int64_t pid, double seconds, double target) {
  // Let what start-up or an earlier request left behind (spinning pollers back off within a
  // few ms) settle before the window opens.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  bool local = LocalCpuSeconds(pid).has_value();
  auto read = [&]() { return local ? LocalCpuSeconds(pid) : MetricsCpuSeconds(endpoint); };
  const std::optional<double> before = read();
  const TimePoint start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const std::optional<double> after = read();
  const double wall = NanosBetween(start, Clock::now()) / 1e9;
  if (!before || !after) {
    return CheckFailed("idle_cpu", "<= " + std::to_string(target) + "%",
                       "cannot read the server's CPU time");
  }
  Check c = CheckAtMost("idle_cpu", 100.0 * (*after - *before) / wall, target, "%", 2);
  c.detail = "server CPU over " + std::to_string(static_cast<int>(wall * 10) / 10.0).substr(0, 3) +
             " s with no load, percent of one core (" +
             (local ? "per-thread schedstat" : "process_cpu_seconds_total") + ")";
  return c;
}

void LatencyChecks(const std::string& transport, const std::string& url, double duration_s,
                   int64_t p50_target, int64_t p99_target, std::vector<Check>* checks) {
  LoadOptions options;
  options.url = url;
  options.clients = 1;
  options.duration_s = duration_s;
  options.warmup_s = 0.3;
  Result<LoadReport> report = RunLoad(options);
  const std::string p50 = transport + "_p50";
  const std::string p99 = transport + "_p99";
  if (!report.ok() || report->requests == 0 || report->errors > 0) {
    const std::string why = !report.ok() ? report.status().message()
                            : report->errors > 0
                                ? std::to_string(report->errors) + " errors: " + report->first_error
                                : "no request completed";
    checks->push_back(CheckFailed(p50, "<= " + std::to_string(p50_target) + " us", why));
    checks->push_back(CheckFailed(p99, "<= " + std::to_string(p99_target) + " us", why));
    return;
  }
  const std::string detail =
      "batch 1, 1 client, closed loop, " + std::to_string(report->requests) + " requests";
  checks->push_back(CheckAtMost(p50, report->p50_us, static_cast<double>(p50_target), "us"));
  checks->back().detail = detail;
  checks->push_back(CheckAtMost(p99, report->p99_us, static_cast<double>(p99_target), "us"));
  checks->back().detail = detail;
}

Check Throughput(const std::string& url, double duration_s, int64_t target) {
  LoadOptions options;
  options.url = url;
  options.clients = 2;
  options.duration_s = duration_s;
  options.warmup_s = 0.3;
  Result<LoadReport> report = RunLoad(options);
  const std::string target_text = ">= " + std::to_string(target) + " req/s";
  if (!report.ok()) return CheckFailed("shm_throughput", target_text, report.status().message());
  if (report->errors > 0) {
    return CheckFailed("shm_throughput", target_text,
                       std::to_string(report->errors) + " errors: " + report->first_error);
  }
  Check c =
      CheckAtLeast("shm_throughput", report->requests_per_s, static_cast<double>(target), "req/s");
  c.detail = "batch 1, 2 shm clients, closed loop, p99 " +
             std::to_string(static_cast<int64_t>(report->p99_us)) + " us";
  return c;
}

// A frame with a checksum must be acknowledged; the same frame corrupted after its checksum
// was computed must be refused with a checksum error, and counted in /metrics.
Check ShmIntegrity(const HttpEndpoint& endpoint, const std::string& shm_url) {
  const std::string target = "ack; corrupt refused";
  Result<std::unique_ptr<client::Client>> connected = client::Connect(shm_url);
  if (!connected.ok()) return CheckFailed("shm_integrity", target, connected.status().message());
  client::Client& c = **connected;
  constexpr uint32_t kWidth = 64, kHeight = 48;
  std::vector<uint8_t> pixels(kWidth * kHeight);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 31 + 7);
  client::FrameOptions options;
  options.timeout_ms = 5000;
  Result<client::FrameAck> good =
      c.SubmitFrame(pixels.data(), kWidth, kHeight, kWidth, client::PixelFormat::kGray8, options);
  if (!good.ok()) {
    return CheckFailed("shm_integrity", target,
                       "an intact frame was refused: " + good.status().message());
  }
  Result<std::string> before_text = HttpGet(endpoint, "/metrics");
  const std::optional<double> before =
      before_text.ok() ? PrometheusValue(*before_text, "brainstem_shm_checksum_failures_total")
                       : std::nullopt;
  options.corrupt_after_checksum = true;
  Result<client::FrameAck> bad =
      c.SubmitFrame(pixels.data(), kWidth, kHeight, kWidth, client::PixelFormat::kGray8, options);
  Result<std::string> after_text = HttpGet(endpoint, "/metrics");
  const std::optional<double> after =
      after_text.ok() ? PrometheusValue(*after_text, "brainstem_shm_checksum_failures_total")
                      : std::nullopt;
  Check check;
  check.name = "shm_integrity";
  check.target = target;
  if (bad.ok()) {
    check.measured = "corrupt frame accepted";
    check.detail =
        "the server acknowledged a frame whose payload did not match its checksum "
        "(is shm.checksum none?)";
    return check;
  }
  if (bad.status().code() != StatusCode::kDataLoss) {
    check.measured = "wrong error";
    check.detail = "expected a checksum error, got: " + bad.status().ToString();
    return check;
  }
  const double failures_before = before.value_or(-1);
  const double failures_after = after.value_or(-1);
  if (failures_before < 0 || failures_after < failures_before + 1) {
    check.measured = "not counted";
    check.detail = "brainstem_shm_checksum_failures_total did not increase";
    return check;
  }
  check.measured = "ack " + std::to_string(good->sequence) + "; corrupt refused";
  check.verdict = Verdict::kPass;
  check.detail = "64x48 gray frame with checksum acknowledged; corrupted copy refused (" +
                 bad.status().message() + "), checksum failures " +
                 std::to_string(static_cast<int64_t>(failures_before)) + " -> " +
                 std::to_string(static_cast<int64_t>(failures_after));
  return check;
}

// Targets the caller set explicitly (--config / --set / env) override the server's, so that
// `validate --url ... --set targets.http_p50_us=100` asks a stricter question of a running
// server without restarting it.
void ApplyLocalTargets(const Config& local, TargetsConfig* targets) {
  auto set = [&](const char* key) { return local.IsSet(key); };
  const TargetsConfig& l = local.targets;
  if (set("targets.startup_ms")) targets->startup_ms = l.startup_ms;
  if (set("targets.idle_cpu_percent")) targets->idle_cpu_percent = l.idle_cpu_percent;
  if (set("targets.idle_rss_mb")) targets->idle_rss_mb = l.idle_rss_mb;
  if (set("targets.http_p50_us")) targets->http_p50_us = l.http_p50_us;
  if (set("targets.http_p99_us")) targets->http_p99_us = l.http_p99_us;
  if (set("targets.shm_p50_us")) targets->shm_p50_us = l.shm_p50_us;
  if (set("targets.shm_p99_us")) targets->shm_p99_us = l.shm_p99_us;
  if (set("targets.shm_throughput_rps")) targets->shm_throughput_rps = l.shm_throughput_rps;
}

int Validate(const ValidateFlags& flags) {
  if (flags.self == !flags.url.empty()) {
    std::cerr << "brainstem validate: give exactly one of --url URL or --self\n";
    return 2;
  }
  if (flags.duration_s <= 0 || flags.idle_s <= 0) {
    std::cerr << "brainstem validate: --duration and --idle must be > 0\n";
    return 2;
  }
  Result<ConfigInputs> inputs = flags.config.ToInputs();
  Result<Config> local = inputs.ok() ? LoadConfig(*inputs) : Result<Config>(inputs.status());
  if (!local.ok()) {
    std::cerr << "brainstem validate: " << local.status().message() << "\n";
    return 2;
  }
  std::unique_ptr<SelfServer> self;
  std::string url = flags.url;
  if (flags.self) {
    Result<std::unique_ptr<SelfServer>> started = SelfServer::Start(flags);
    if (!started.ok()) {
      std::cerr << "brainstem validate: " << started.status().message() << "\n";
      return 1;
    }
    self = std::move(started).value();
    url = self->url();
  }
  Result<HttpEndpoint> endpoint = ParseHttpEndpoint(url);
  if (!endpoint.ok()) {
    std::cerr << "brainstem validate: --url " << endpoint.status().message() << "\n";
    return 2;
  }
  Result<ServerStatus> status = FetchStatus(*endpoint, 5);
  if (!status.ok()) {
    std::cerr << "brainstem validate: " << status.status().message() << "\n";
    return 1;
  }
  TargetsConfig targets = status->targets;
  ApplyLocalTargets(*local, &targets);

  std::vector<Check> checks;
  checks.push_back(CheckAtMost("startup", status->startup_seconds * 1000,
                               static_cast<double>(targets.startup_ms), "ms"));
  checks.back().detail = "process start (kernel) to ready, from /v1/status";
  if (self) {
    checks.back().detail += "; spawn to port file " +
                            std::to_string(static_cast<int64_t>(self->ready_seconds() * 1000)) +
                            " ms";
  }
  checks.push_back(IdleCpu(*endpoint, status->pid, flags.idle_s, targets.idle_cpu_percent));
  // RSS after the idle window, before any load (load grows arenas and maps shm regions).
  Result<ServerStatus> idle = FetchStatus(*endpoint, 5);
  if (idle.ok()) {
    checks.push_back(CheckAtMost("idle_rss", static_cast<double>(idle->rss_bytes) / 1048576.0,
                                 static_cast<double>(targets.idle_rss_mb), "MiB"));
    checks.back().detail = "resident memory with no load";
  } else {
    checks.push_back(CheckFailed("idle_rss", "<= " + std::to_string(targets.idle_rss_mb) + " MiB",
                                 idle.status().message()));
  }
  LatencyChecks("http", endpoint->url, flags.duration_s, targets.http_p50_us, targets.http_p99_us,
                &checks);
  if (status->shm_enabled) {
    LatencyChecks("shm", status->shm_url, flags.duration_s, targets.shm_p50_us, targets.shm_p99_us,
                  &checks);
    checks.push_back(Throughput(status->shm_url, flags.duration_s, targets.shm_throughput_rps));
    checks.push_back(ShmIntegrity(*endpoint, status->shm_url));
  } else {
    const std::string why =
        "the server's shared-memory transport is off (shm.enabled or the "
        "socket was taken)";
    checks.push_back(
        CheckFailed("shm_p50", "<= " + std::to_string(targets.shm_p50_us) + " us", why));
    checks.push_back(
        CheckFailed("shm_p99", "<= " + std::to_string(targets.shm_p99_us) + " us", why));
    checks.push_back(CheckFailed(
        "shm_throughput", ">= " + std::to_string(targets.shm_throughput_rps) + " req/s", why));
    checks.push_back(CheckFailed("shm_integrity", "ack; corrupt refused", why));
  }
  Result<std::map<std::string, std::vector<int>>> threads = ReadThreadAffinities(status->pid);
  if (threads.ok()) {
    checks.push_back(ComparePlacement(status->threads, status->pinning, *threads));
    if (!status->placement_rule.empty()) {
      checks.back().detail = status->placement_rule + (checks.back().detail.empty() ? "" : "; ") +
                             checks.back().detail;
    }
  } else {
    checks.push_back(CheckFailed("placement", "as planned",
                                 "server pid " + std::to_string(status->pid) +
                                     " not visible here: " + threads.status().message()));
  }
  if (self) {
    const int rc = self->Stop();
    Check shutdown;
    shutdown.name = "clean_shutdown";
    shutdown.measured = "exit " + std::to_string(rc);
    shutdown.target = "exit 0";
    shutdown.verdict = rc == 0 ? Verdict::kPass : Verdict::kFail;
    shutdown.detail = "SIGTERM to the self-started server";
    checks.push_back(shutdown);
  }

  const std::string title = "brainstem validate: " + status->model + " " + status->version + " (" +
                            status->format + ") at " + endpoint->url +
                            (flags.self ? " (self-started)" : "") + ", pid " +
                            std::to_string(status->pid);
  if (flags.json) {
    std::string extra = "\"url\":\"" + endpoint->url +
                        "\",\"self\":" + (flags.self ? "true" : "false") +
                        ",\"pid\":" + std::to_string(status->pid);
    std::cout << FormatReportJson(checks, extra) << "\n";
  } else {
    std::cout << FormatReport(checks, title);
  }
  return Summarize(checks).ok ? 0 : 1;
}

}  // namespace

std::function<int()> RegisterValidate(CLI::App* app) {
  CLI::App* command =
      app->add_subcommand("validate",
                          "Check a server against the configured targets (startup, idle CPU/RSS, "
                          "latency, throughput, shm integrity, placement)");
  auto flags = std::make_shared<ValidateFlags>();
  flags->config.AddTo(command);
  command->add_option("--url", flags->url, "A running server, http://HOST:PORT");
  command->add_flag("--self", flags->self,
                    "Start `brainstem serve` with the same --config/--set, validate it, stop it");
  command->add_flag("--json", flags->json, "Print the report as JSON");
  command->add_option("--duration", flags->duration_s, "Seconds per latency/throughput run")
      ->capture_default_str();
  command->add_option("--idle", flags->idle_s, "Seconds of the idle CPU window")
      ->capture_default_str();
  return [flags]() { return Validate(*flags); };
}

}  // namespace brainstem
