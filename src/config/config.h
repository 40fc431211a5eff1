// Config: every setting of a brainstem process in one struct, filled in layers: built-in
// defaults, then a YAML file, then environment variables, then command-line overrides. Every
// value remembers which layer set it (for `brainstem config --print`). Unknown keys and bad
// values are errors that name the key and the allowed values; nothing is silently ignored.
// Thread-compatible: a loaded Config is an immutable value.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "common/result.h"

namespace brainstem {

struct ServerConfig {
  std::string host = "127.0.0.1";  // env SERVER_HOST
  int port = 8080;                 // env PORT; 0 picks an ephemeral port
  int io_threads = 1;              // env SERVER_WORKERS
  int io_spin_us = 100;            // poll this long before blocking (vCPU wake-up costs ~100 us)
  int64_t max_body_bytes = 64 << 20;
  int request_timeout_ms = 5000;  // default per-request deadline; 0 = none
  bool cors_enabled = false;
  std::vector<std::string> cors_allow_origins = {"*"};
};

struct ModelConfig {
  std::filesystem::path artifact_dir = "artifacts";  // env ARTIFACT_DIR
  std::string name;     // empty: the repository's only model (error when several)
  std::string version;  // env MODEL_VERSION; empty: newest stable
  bool allow_prerelease = false;
  std::optional<ModelFormat> format;       // "auto" (unset): torchscript when built in, else onnx
  Device device = Device::kCpu;            // env MODEL_DEVICE; USE_GPU=true means auto
  Precision precision = Precision::kFp32;  // env MODEL_PRECISION
  int intra_op_threads = 1;
  int warmup_iterations = 20;
};

struct SchedulerConfig {
  int64_t batch_size = 1;       // env MODEL_BATCH_SIZE: preferred batch size
  int64_t max_batch_size = 64;  // env MODEL_MAX_BATCH_SIZE (observations per backend call)
  std::vector<int64_t> preferred_batch_sizes;
  int64_t max_queue_delay_us = 200;
  int64_t queue_capacity = 1024;  // requests waiting; beyond it: 503 + Retry-After
  int instances = 1;              // model instances, one worker thread each
  bool inline_when_idle = true;   // an idle instance runs a lone request on the caller's thread
};

// The shared-memory transport (docs/shm-protocol.md). The counts and sizes are ceilings: each
// client asks for what it needs in its hello, up to these.
struct ShmConfig {
  bool enabled = true;
  std::string name = "default";  // socket <name>.sock in the default directory
  std::string path;  // "" = $XDG_RUNTIME_DIR/brainstem/<name>.sock, else /tmp/brainstem-<uid>/
  int64_t max_tensor_slots = 64;       // per client (1..256)
  int64_t max_rows = 1024;             // observations per tensor slot (1..1024)
  int64_t max_frame_slots = 4;         // per client (0..16)
  int64_t max_frame_bytes = 32 << 20;  // pixel bytes per frame slot (1..256 MiB)
  std::string checksum = "xxh3";       // when the client asks for the server's default
  int64_t spin_us = 50;                // polling after the last request before sleeping
  bool allow_other_uids = false;       // accept clients running as another user (socket only)
  // How clients find the server: socket (the Unix socket), named (a lobby in /dev/shm for
  // containers sharing only the IPC namespace; docs/shm-protocol.md section 8) or both.
  std::string rendezvous = "socket";
};

// Where threads run (docs/topology.md). CPU lists use the kernel syntax ("0-3,8").
struct CpuConfig {
  std::string performance_cores;  // "" = detected
  std::string efficiency_cores;   // "" = detected
  std::string pinning = "auto";   // auto|off
};

struct TelemetryConfig {
  int sampler_interval_ms = 1000;  // system sampler period; 0 = off
};

// What `brainstem validate` and `brainstem monitor` check the server against
// (docs/operations.md explains each default).
struct TargetsConfig {
  int64_t startup_ms = 1500;      // process start (kernel) to ready
  double idle_cpu_percent = 1.0;  // server CPU with no load, percent of one core
  int64_t idle_rss_mb = 256;      // resident memory with no load
  int64_t http_p50_us = 200;      // HTTP round trip at batch 1, one client
  int64_t http_p99_us = 2000;
  int64_t shm_p50_us = 50;  // shared-memory round trip at batch 1, one client
  int64_t shm_p99_us = 1000;
  int64_t shm_throughput_rps = 10000;  // requests/s at batch 1, two shm clients
};

// Screen perception (docs/perception.md): the OCR worker pool behind /v1/ocr and shm frame
// requests. Ignored by a build without OCR (BRAINSTEM_WITH_OCR off).
struct OcrConfig {
  bool enabled = true;
  // The OCR model in model.artifact_dir (kind: ocr card). Its card supplies the defaults of
  // language, tile_size, psm, segmentation, polarity_fix and max_image_pixels; those keys,
  // when set explicitly (file, env, flag), win over the card.
  std::string model = "screen-ocr";  // "" = no card: the built-in defaults below
  std::string version;               // "" = newest stable (same rules as model.version)
  bool preload = false;              // load Tesseract at start-up instead of on the first frame
  int workers = 1;                   // threads, one Tesseract engine each
  std::string language = "eng";      // traineddata name(s), e.g. "eng" or "eng+deu"
  std::string tessdata_dir;          // "" = Tesseract's default directory
  int tile_size = 128;               // change detection granularity, pixels
  int psm = 11;  // Tesseract page segmentation mode for pieces taller than a line
  std::string segmentation = "xycut";  // xycut (lines read one by one) | tesseract (whole regions)
  bool polarity_fix = true;            // invert light-on-dark areas before reading
  double line_width_scale = 1.0;       // lines narrowed to this fraction before reading
  int64_t max_image_pixels = 8192 * 8192;
  int64_t queue_capacity = 16;  // frames waiting; beyond it: 503
  int timeout_ms = 10000;       // default deadline per frame; 0 = none
};

struct LoggingConfig {
  std::string level = "info";   // env LOGGING_LEVEL: trace|debug|info|warn|error|off
  std::string format = "text";  // text|json
};

struct Config {
  ServerConfig server;
  ModelConfig model;
  SchedulerConfig scheduler;
  ShmConfig shm;
  CpuConfig cpu;
  TelemetryConfig telemetry;
  TargetsConfig targets;
  OcrConfig ocr;
  LoggingConfig logging;

  // "server.port" -> "default" | "file:<path>" | "env:PORT" | "flag:--set".
  std::map<std::string, std::string> sources;

  // Whether `key` was given by a file, the environment or a flag rather than left at its
  // default (an operator's explicit choice).
  bool IsSet(const std::string& key) const {
    auto it = sources.find(key);
    return it != sources.end() && it->second != "default";
  }
};

struct ConfigInputs {
  std::optional<std::filesystem::path> file;  // YAML file; none = defaults only
  std::map<std::string, std::string> env;     // environment (pass CurrentEnvironment())
  // Overrides as key=value pairs in dotted form, e.g. {"server.port", "9000"}, applied last.
  std::vector<std::pair<std::string, std::string>> overrides;
};

// Builds the effective config. Errors: kInvalidArgument naming the key (dotted, or the env
// variable), the bad value and the allowed values; kNotFound for a missing config file.
Result<Config> LoadConfig(const ConfigInputs& inputs);

// The process environment as a map.
std::map<std::string, std::string> CurrentEnvironment();

// YAML text of the effective config with each value's source as a trailing comment.
std::string PrintConfig(const Config& config);

}  // namespace brainstem
