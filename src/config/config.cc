#include "config/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>

#include "topology/topology.h"

extern char** environ;

namespace brainstem {
namespace {

// A value as it arrives from any layer: YAML scalars, environment variables and overrides are
// text; YAML sequences are lists. List keys also accept comma-separated text so that they can
// be set from the environment or a flag.
struct RawValue {
  bool is_list = false;
  std::string text;
  std::vector<std::string> items;
};

// Every setter reports errors with `where` in front: "config: server.port" for the file,
// "env PORT" for the environment, "flag server.port" for overrides.
using Setter = std::function<Status(Config&, const RawValue&, const std::string& where)>;
using Printer = std::function<std::string(const Config&)>;

struct KeySpec {
  std::string key;
  Setter set;
  Printer print;
};

std::string Trim(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string Lower(std::string_view s) {
  std::string out;
  for (char c : s) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

std::string JoinStrings(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

// "a, b,c" or "[a, b]" -> {"a", "b", "c"}; "" or "[]" -> {}.
std::vector<std::string> SplitList(const std::string& text) {
  std::string t = Trim(text);
  if (t.size() >= 2 && t.front() == '[' && t.back() == ']') t = Trim(t.substr(1, t.size() - 2));
  std::vector<std::string> items;
  if (t.empty()) return items;
  size_t start = 0;
  while (true) {
    size_t comma = t.find(',', start);
    items.push_back(Trim(t.substr(start, comma == std::string::npos ? comma : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

Status Bad(const std::string& where, const std::string& problem) {
  return InvalidArgumentError(where + ": " + problem);
}

Result<std::string> ScalarOf(const RawValue& v, const std::string& where) {
  if (v.is_list) return Bad(where, "must be a single value, not a list");
  return Trim(v.text);
}

Result<int64_t> ParseInt(const RawValue& v, const std::string& where, int64_t lo, int64_t hi) {
  ASSIGN_OR_RETURN(std::string text, ScalarOf(v, where));
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec == std::errc::invalid_argument || ptr != text.data() + text.size()) {
    return Bad(where, "'" + text + "' is not an integer");
  }
  if (ec == std::errc::result_out_of_range || value < lo || value > hi) {
    return Bad(where, "'" + text + "' is out of range (allowed: " + std::to_string(lo) + ".." +
                          std::to_string(hi) + ")");
  }
  return value;
}

Result<bool> ParseBool(const RawValue& v, const std::string& where) {
  ASSIGN_OR_RETURN(std::string text, ScalarOf(v, where));
  const std::string lower = Lower(text);
  if (lower == "true" || lower == "1" || lower == "yes") return true;
  if (lower == "false" || lower == "0" || lower == "no") return false;
  return Bad(where, "'" + text + "' is not a boolean (allowed: true, false, 1, 0, yes, no)");
}

// Returns the index of the matching choice. Matching ignores case ("CUDA" works) because
// environment variables are often written in capitals.
Result<size_t> ParseEnum(const RawValue& v, const std::string& where,
                         const std::vector<std::string>& choices) {
  ASSIGN_OR_RETURN(std::string text, ScalarOf(v, where));
  const std::string lower = Lower(text);
  for (size_t i = 0; i < choices.size(); ++i) {
    if (choices[i] == lower) return i;
  }
  return Bad(where, "'" + text + "' is not allowed (allowed: " + JoinStrings(choices) + ")");
}

// Quotes a string for YAML output; always double-quoted so that "yes", "1.0" or "" stay strings.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

const std::vector<std::string> kDevices = {"auto", "cpu", "cuda", "mps"};
const std::vector<std::string> kPrecisions = {"fp32", "fp16"};
const std::vector<std::string> kFormats = {"auto", "torchscript", "onnx"};
const std::vector<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "off"};
const std::vector<std::string> kLogFormats = {"text", "json"};
const std::vector<std::string> kOcrSegmentations = {"xycut", "tesseract"};
const std::vector<std::string> kChecksums = {"none", "xxh3", "crc32c", "sha256"};
const std::vector<std::string> kRendezvous = {"socket", "named", "both"};
const std::vector<std::string> kPinning = {"auto", "off"};

constexpr int64_t kMaxBatchLimit = 4096;

// Ceilings of the shm protocol, ABI 1 (kMaxTensorSlots, kMaxRowsPerSlot, kMaxFrameSlots,
// kMaxFrameBytes in transport/shm/shm_layout.h, which the config module does not depend on;
// shm_server_test checks that these agree).
constexpr int64_t kShmMaxTensorSlots = 256;
constexpr int64_t kShmMaxRows = 1024;
constexpr int64_t kShmMaxFrameSlots = 16;
constexpr int64_t kShmMaxFrameBytes = int64_t{256} << 20;
// sizeof(sockaddr_un::sun_path) - 1 on Linux.
constexpr size_t kMaxSocketPath = 107;

// Builders for the common key shapes; `field` picks the member the key sets.
template <typename T>
KeySpec IntKey(std::string key, T Config::*section, auto field, int64_t lo, int64_t hi) {
  return KeySpec{std::move(key),
                 [=](Config& c, const RawValue& v, const std::string& where) -> Status {
                   ASSIGN_OR_RETURN(int64_t value, ParseInt(v, where, lo, hi));
                   (c.*section).*field =
                       static_cast<std::remove_reference_t<decltype((c.*section).*field)>>(value);
                   return Status::Ok();
                 },
                 [=](const Config& c) { return std::to_string((c.*section).*field); }};
}

// A non-negative decimal number (targets such as idle_cpu_percent: 1.5).
Result<double> ParseDouble(const RawValue& v, const std::string& where, double lo, double hi) {
  ASSIGN_OR_RETURN(std::string text, ScalarOf(v, where));
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() ||
      !std::isfinite(value)) {
    return Bad(where, "'" + text + "' is not a number");
  }
  if (value < lo || value > hi) {
    std::ostringstream range;
    range << lo << ".." << hi;
    return Bad(where, "'" + text + "' is out of range (allowed: " + range.str() + ")");
  }
  return value;
}

template <typename T>
KeySpec DoubleKey(std::string key, T Config::*section, double T::*field, double lo, double hi) {
  return KeySpec{std::move(key),
                 [=](Config& c, const RawValue& v, const std::string& where) -> Status {
                   ASSIGN_OR_RETURN(double value, ParseDouble(v, where, lo, hi));
                   (c.*section).*field = value;
                   return Status::Ok();
                 },
                 [=](const Config& c) {
                   std::ostringstream out;
                   out << (c.*section).*field;
                   return out.str();
                 }};
}

template <typename T>
KeySpec BoolKey(std::string key, T Config::*section, bool T::*field) {
  return KeySpec{
      std::move(key),
      [=](Config& c, const RawValue& v, const std::string& where) -> Status {
        ASSIGN_OR_RETURN(bool value, ParseBool(v, where));
        (c.*section).*field = value;
        return Status::Ok();
      },
      [=](const Config& c) { return std::string((c.*section).*field ? "true" : "false"); }};
}

template <typename T>
KeySpec StringKey(std::string key, T Config::*section, std::string T::*field, bool non_empty) {
  return KeySpec{std::move(key),
                 [=](Config& c, const RawValue& v, const std::string& where) -> Status {
                   ASSIGN_OR_RETURN(std::string value, ScalarOf(v, where));
                   if (non_empty && value.empty()) return Bad(where, "must not be empty");
                   (c.*section).*field = value;
                   return Status::Ok();
                 },
                 [=](const Config& c) { return Quote((c.*section).*field); }};
}

template <typename T>
KeySpec ChoiceKey(std::string key, T Config::*section, std::string T::*field,
                  const std::vector<std::string>& choices) {
  return KeySpec{std::move(key),
                 [=, &choices](Config& c, const RawValue& v, const std::string& where) -> Status {
                   ASSIGN_OR_RETURN(size_t i, ParseEnum(v, where, choices));
                   (c.*section).*field = choices[i];
                   return Status::Ok();
                 },
                 [=](const Config& c) { return (c.*section).*field; }};
}

// The table of every key, in the order PrintConfig writes them. Keys of one section (and of one
// subsection, like server.cors) must be contiguous for the printer.
const std::vector<KeySpec>& Keys() {
  static const std::vector<KeySpec> keys = [] {
    std::vector<KeySpec> k;
    k.push_back(StringKey("server.host", &Config::server, &ServerConfig::host, true));
    k.push_back(IntKey("server.port", &Config::server, &ServerConfig::port, 0, 65535));
    k.push_back(IntKey("server.io_threads", &Config::server, &ServerConfig::io_threads, 1, 256));
    k.push_back(
        IntKey("server.io_spin_us", &Config::server, &ServerConfig::io_spin_us, 0, 1'000'000));
    k.push_back(IntKey("server.max_body_bytes", &Config::server, &ServerConfig::max_body_bytes, 1,
                       int64_t{1} << 30));
    k.push_back(IntKey("server.request_timeout_ms", &Config::server,
                       &ServerConfig::request_timeout_ms, 0, 3'600'000));
    k.push_back(BoolKey("server.cors.enabled", &Config::server, &ServerConfig::cors_enabled));
    k.push_back(KeySpec{"server.cors.allow_origins",
                        [](Config& c, const RawValue& v, const std::string& where) -> Status {
                          std::vector<std::string> items = v.is_list ? v.items : SplitList(v.text);
                          for (auto& item : items) {
                            item = Trim(item);
                            if (item.empty())
                              return Bad(where, "origins must not be empty strings");
                          }
                          c.server.cors_allow_origins = std::move(items);
                          return Status::Ok();
                        },
                        [](const Config& c) {
                          std::vector<std::string> quoted;
                          for (const auto& o : c.server.cors_allow_origins)
                            quoted.push_back(Quote(o));
                          return "[" + JoinStrings(quoted) + "]";
                        }});

    k.push_back(KeySpec{"model.artifact_dir",
                        [](Config& c, const RawValue& v, const std::string& where) -> Status {
                          ASSIGN_OR_RETURN(std::string value, ScalarOf(v, where));
                          if (value.empty()) return Bad(where, "must not be empty");
                          c.model.artifact_dir = value;
                          return Status::Ok();
                        },
                        [](const Config& c) { return Quote(c.model.artifact_dir.string()); }});
    k.push_back(StringKey("model.name", &Config::model, &ModelConfig::name, false));
    k.push_back(StringKey("model.version", &Config::model, &ModelConfig::version, false));
    k.push_back(BoolKey("model.allow_prerelease", &Config::model, &ModelConfig::allow_prerelease));
    k.push_back(
        KeySpec{"model.format",
                [](Config& c, const RawValue& v, const std::string& where) -> Status {
                  ASSIGN_OR_RETURN(size_t i, ParseEnum(v, where, kFormats));
                  if (i == 0) {
                    c.model.format.reset();
                  } else {
                    c.model.format = i == 1 ? ModelFormat::kTorchScript : ModelFormat::kOnnx;
                  }
                  return Status::Ok();
                },
                [](const Config& c) -> std::string {
                  if (!c.model.format.has_value()) return "auto";
                  return *c.model.format == ModelFormat::kTorchScript ? "torchscript" : "onnx";
                }});
    k.push_back(KeySpec{"model.device",
                        [](Config& c, const RawValue& v, const std::string& where) -> Status {
                          ASSIGN_OR_RETURN(size_t i, ParseEnum(v, where, kDevices));
                          static constexpr Device kByIndex[] = {Device::kAuto, Device::kCpu,
                                                                Device::kCuda, Device::kMps};
                          c.model.device = kByIndex[i];
                          return Status::Ok();
                        },
                        [](const Config& c) {
                          // kDevices lists the names in Device's declaration order.
                          return kDevices[static_cast<size_t>(c.model.device)];
                        }});
    k.push_back(KeySpec{"model.precision",
                        [](Config& c, const RawValue& v, const std::string& where) -> Status {
                          ASSIGN_OR_RETURN(size_t i, ParseEnum(v, where, kPrecisions));
                          c.model.precision = i == 0 ? Precision::kFp32 : Precision::kFp16;
                          return Status::Ok();
                        },
                        [](const Config& c) {
                          return std::string(c.model.precision == Precision::kFp32 ? "fp32"
                                                                                   : "fp16");
                        }});
    k.push_back(
        IntKey("model.intra_op_threads", &Config::model, &ModelConfig::intra_op_threads, 1, 256));
    k.push_back(IntKey("model.warmup_iterations", &Config::model, &ModelConfig::warmup_iterations,
                       0, 100'000));

    k.push_back(IntKey("scheduler.batch_size", &Config::scheduler, &SchedulerConfig::batch_size, 1,
                       kMaxBatchLimit));
    k.push_back(IntKey("scheduler.max_batch_size", &Config::scheduler,
                       &SchedulerConfig::max_batch_size, 1, kMaxBatchLimit));
    k.push_back(KeySpec{"scheduler.preferred_batch_sizes",
                        [](Config& c, const RawValue& v, const std::string& where) -> Status {
                          std::vector<std::string> items = v.is_list ? v.items : SplitList(v.text);
                          std::vector<int64_t> sizes;
                          for (const auto& item : items) {
                            RawValue one;
                            one.text = item;
                            ASSIGN_OR_RETURN(int64_t size, ParseInt(one, where, 1, kMaxBatchLimit));
                            sizes.push_back(size);
                          }
                          std::sort(sizes.begin(), sizes.end());
                          sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
                          c.scheduler.preferred_batch_sizes = std::move(sizes);
                          return Status::Ok();
                        },
                        [](const Config& c) {
                          std::vector<std::string> items;
                          for (int64_t s : c.scheduler.preferred_batch_sizes)
                            items.push_back(std::to_string(s));
                          return "[" + JoinStrings(items) + "]";
                        }});
    k.push_back(IntKey("scheduler.max_queue_delay_us", &Config::scheduler,
                       &SchedulerConfig::max_queue_delay_us, 0, 10'000'000));
    k.push_back(IntKey("scheduler.queue_capacity", &Config::scheduler,
                       &SchedulerConfig::queue_capacity, 1, 1'000'000));
    k.push_back(
        IntKey("scheduler.instances", &Config::scheduler, &SchedulerConfig::instances, 1, 64));
    k.push_back(BoolKey("scheduler.inline_when_idle", &Config::scheduler,
                        &SchedulerConfig::inline_when_idle));

    k.push_back(BoolKey("shm.enabled", &Config::shm, &ShmConfig::enabled));
    k.push_back(KeySpec{"shm.name",
                        [](Config& c, const RawValue& v, const std::string& where) -> Status {
                          ASSIGN_OR_RETURN(std::string value, ScalarOf(v, where));
                          // It becomes a file name: no separators, no hidden or relative names.
                          bool ok = !value.empty() && value.size() <= 64 && value[0] != '.';
                          for (char ch : value) {
                            ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' ||
                                        ch == '_' || ch == '.');
                          }
                          if (!ok) {
                            return Bad(where, "'" + value +
                                                  "' is not a valid name (allowed: 1..64 of "
                                                  "A-Z a-z 0-9 . _ -, not starting with '.')");
                          }
                          c.shm.name = value;
                          return Status::Ok();
                        },
                        [](const Config& c) { return Quote(c.shm.name); }});
    k.push_back(KeySpec{"shm.path",
                        [](Config& c, const RawValue& v, const std::string& where) -> Status {
                          ASSIGN_OR_RETURN(std::string value, ScalarOf(v, where));
                          if (value.size() > kMaxSocketPath) {
                            return Bad(where, "'" + value + "' is " + std::to_string(value.size()) +
                                                  " bytes; a Unix socket path holds at most " +
                                                  std::to_string(kMaxSocketPath));
                          }
                          if (!value.empty() && value.back() == '/') {
                            return Bad(where, "'" + value +
                                                  "' names a directory; give the "
                                                  "socket file's path");
                          }
                          c.shm.path = value;
                          return Status::Ok();
                        },
                        [](const Config& c) { return Quote(c.shm.path); }});
    k.push_back(IntKey("shm.max_tensor_slots", &Config::shm, &ShmConfig::max_tensor_slots, 1,
                       kShmMaxTensorSlots));
    k.push_back(IntKey("shm.max_rows", &Config::shm, &ShmConfig::max_rows, 1, kShmMaxRows));
    k.push_back(IntKey("shm.max_frame_slots", &Config::shm, &ShmConfig::max_frame_slots, 0,
                       kShmMaxFrameSlots));
    k.push_back(IntKey("shm.max_frame_bytes", &Config::shm, &ShmConfig::max_frame_bytes, 1,
                       kShmMaxFrameBytes));
    k.push_back(ChoiceKey("shm.checksum", &Config::shm, &ShmConfig::checksum, kChecksums));
    k.push_back(IntKey("shm.spin_us", &Config::shm, &ShmConfig::spin_us, 0, 1'000'000));
    k.push_back(BoolKey("shm.allow_other_uids", &Config::shm, &ShmConfig::allow_other_uids));
    k.push_back(ChoiceKey("shm.rendezvous", &Config::shm, &ShmConfig::rendezvous, kRendezvous));

    auto cpu_list = [](std::string key, std::string CpuConfig::*field) {
      return KeySpec{key,
                     [field](Config& c, const RawValue& v, const std::string& where) -> Status {
                       ASSIGN_OR_RETURN(std::string value, ScalarOf(v, where));
                       Result<std::vector<int>> cpus = ParseCpuList(value);
                       if (!value.empty() && !cpus.ok()) return Bad(where, cpus.status().message());
                       c.cpu.*field = value;
                       return Status::Ok();
                     },
                     [field](const Config& c) { return Quote(c.cpu.*field); }};
    };
    k.push_back(cpu_list("cpu.performance_cores", &CpuConfig::performance_cores));
    k.push_back(cpu_list("cpu.efficiency_cores", &CpuConfig::efficiency_cores));
    k.push_back(ChoiceKey("cpu.pinning", &Config::cpu, &CpuConfig::pinning, kPinning));
    k.push_back(IntKey("telemetry.sampler_interval_ms", &Config::telemetry,
                       &TelemetryConfig::sampler_interval_ms, 0, 60'000));

    // Targets are ceilings (floors for throughput); 0 is allowed so that a check can be made
    // impossible on purpose (tests use it to see validate fail).
    k.push_back(
        IntKey("targets.startup_ms", &Config::targets, &TargetsConfig::startup_ms, 0, 3'600'000));
    k.push_back(DoubleKey("targets.idle_cpu_percent", &Config::targets,
                          &TargetsConfig::idle_cpu_percent, 0.0, 25600.0));
    k.push_back(IntKey("targets.idle_rss_mb", &Config::targets, &TargetsConfig::idle_rss_mb, 0,
                       int64_t{1} << 30));
    k.push_back(IntKey("targets.http_p50_us", &Config::targets, &TargetsConfig::http_p50_us, 0,
                       3'600'000'000));
    k.push_back(IntKey("targets.http_p99_us", &Config::targets, &TargetsConfig::http_p99_us, 0,
                       3'600'000'000));
    k.push_back(IntKey("targets.shm_p50_us", &Config::targets, &TargetsConfig::shm_p50_us, 0,
                       3'600'000'000));
    k.push_back(IntKey("targets.shm_p99_us", &Config::targets, &TargetsConfig::shm_p99_us, 0,
                       3'600'000'000));
    k.push_back(IntKey("targets.shm_throughput_rps", &Config::targets,
                       &TargetsConfig::shm_throughput_rps, 0, 1'000'000'000));

    k.push_back(BoolKey("ocr.enabled", &Config::ocr, &OcrConfig::enabled));
    k.push_back(StringKey("ocr.model", &Config::ocr, &OcrConfig::model, false));
    k.push_back(StringKey("ocr.version", &Config::ocr, &OcrConfig::version, false));
    k.push_back(BoolKey("ocr.preload", &Config::ocr, &OcrConfig::preload));
    k.push_back(IntKey("ocr.workers", &Config::ocr, &OcrConfig::workers, 1, 64));
    k.push_back(StringKey("ocr.language", &Config::ocr, &OcrConfig::language, true));
    k.push_back(StringKey("ocr.tessdata_dir", &Config::ocr, &OcrConfig::tessdata_dir, false));
    k.push_back(IntKey("ocr.tile_size", &Config::ocr, &OcrConfig::tile_size, 16, 1024));
    k.push_back(IntKey("ocr.psm", &Config::ocr, &OcrConfig::psm, 3, 13));
    k.push_back(
        ChoiceKey("ocr.segmentation", &Config::ocr, &OcrConfig::segmentation, kOcrSegmentations));
    k.push_back(BoolKey("ocr.polarity_fix", &Config::ocr, &OcrConfig::polarity_fix));
    k.push_back(
        DoubleKey("ocr.line_width_scale", &Config::ocr, &OcrConfig::line_width_scale, 0.3, 1.0));
    k.push_back(IntKey("ocr.max_image_pixels", &Config::ocr, &OcrConfig::max_image_pixels, 1,
                       int64_t{16384} * 16384));
    k.push_back(IntKey("ocr.queue_capacity", &Config::ocr, &OcrConfig::queue_capacity, 1, 100'000));
    k.push_back(IntKey("ocr.timeout_ms", &Config::ocr, &OcrConfig::timeout_ms, 0, 3'600'000));

    k.push_back(ChoiceKey("logging.level", &Config::logging, &LoggingConfig::level, kLevels));
    k.push_back(ChoiceKey("logging.format", &Config::logging, &LoggingConfig::format, kLogFormats));
    return k;
  }();
  return keys;
}

const KeySpec* FindKey(const std::string& key) {
  for (const auto& spec : Keys()) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

// True when `prefix` names a section that holds keys ("server", "server.cors").
bool IsSection(const std::string& prefix) {
  for (const auto& spec : Keys()) {
    if (spec.key.size() > prefix.size() && spec.key.compare(0, prefix.size(), prefix) == 0 &&
        spec.key[prefix.size()] == '.') {
      return true;
    }
  }
  return false;
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "config: unknown key 'server.prot' (known keys: server.host, ...); did you mean 'server.port'?"
// Lists the keys of the same top-level section when there is one, else the sections, so the
// message stays short enough to read.
Status UnknownKey(const std::string& prefix, const std::string& key) {
  const std::string section = key.substr(0, key.find('.'));
  std::vector<std::string> known;
  if (section != key && IsSection(section)) {
    for (const auto& spec : Keys()) {
      if (spec.key.compare(0, section.size() + 1, section + ".") == 0) known.push_back(spec.key);
    }
  } else {
    for (const auto& spec : Keys()) {
      std::string s = spec.key.substr(0, spec.key.find('.')) + ".*";
      if (std::find(known.begin(), known.end(), s) == known.end()) known.push_back(s);
    }
  }
  std::string message =
      prefix + ": unknown key '" + key + "' (known keys: " + JoinStrings(known) + ")";
  const KeySpec* best = nullptr;
  size_t best_distance = 3;  // suggest only close typos
  for (const auto& spec : Keys()) {
    size_t d = EditDistance(key, spec.key);
    if (d < best_distance) {
      best_distance = d;
      best = &spec;
    }
  }
  if (best != nullptr) message += "; did you mean '" + best->key + "'?";
  return InvalidArgumentError(message);
}

Status Apply(Config& config, const std::string& key, const RawValue& value,
             const std::string& where, const std::string& source) {
  const KeySpec* spec = FindKey(key);
  if (spec == nullptr) return InternalError("config: no key '" + key + "' (table bug)");
  RETURN_IF_ERROR(spec->set(config, value, where));
  config.sources[key] = source;
  return Status::Ok();
}

// Walks nested maps; `prefix` is the dotted path of `node`.
Status ApplyYamlMap(Config& config, const YAML::Node& node, const std::string& prefix,
                    const std::string& source) {
  std::set<std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      return InvalidArgumentError("config: " + (prefix.empty() ? "top level" : prefix) +
                                  ": keys must be plain strings");
    }
    const std::string name = kv.first.Scalar();
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    if (!seen.insert(name).second) {
      // yaml-cpp keeps both entries; taking either one silently would hide a mistake.
      return InvalidArgumentError("config: duplicate key '" + key + "'");
    }
    const YAML::Node& value = kv.second;
    const std::string where = "config: " + key;
    if (FindKey(key) != nullptr) {
      RawValue raw;
      if (value.IsSequence()) {
        raw.is_list = true;
        for (const auto& item : value) {
          if (!item.IsScalar()) return Bad(where, "list items must be plain values");
          raw.items.push_back(item.Scalar());
        }
      } else if (value.IsMap()) {
        return Bad(where, "must be a value, not a mapping");
      } else if (value.IsScalar()) {
        raw.text = value.Scalar();
      }  // null ("key:" with nothing): empty text, which each key's parser judges
      RETURN_IF_ERROR(Apply(config, key, raw, where, source));
    } else if (IsSection(key)) {
      if (value.IsNull()) continue;  // an empty section changes nothing
      if (!value.IsMap()) return Bad(where, "must be a mapping of keys");
      RETURN_IF_ERROR(ApplyYamlMap(config, value, key, source));
    } else {
      return UnknownKey("config", key);
    }
  }
  return Status::Ok();
}

Status ApplyFile(Config& config, const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    return NotFoundError("config file not found: " + file.string());
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("config: " + file.string() + ": YAML error: " + e.what());
  }
  if (root.IsNull()) return Status::Ok();  // an empty file means defaults
  if (!root.IsMap()) {
    return InvalidArgumentError("config: " + file.string() + ": the document must be a mapping");
  }
  try {
    return ApplyYamlMap(config, root, "", "file:" + file.string());
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("config: " + file.string() + ": " + e.what());
  }
}

// Environment variable -> key, applied in this order.
const std::vector<std::pair<std::string, std::string>>& EnvKeys() {
  static const std::vector<std::pair<std::string, std::string>> env = {
      {"ARTIFACT_DIR", "model.artifact_dir"},
      {"MODEL_NAME", "model.name"},
      {"MODEL_VERSION", "model.version"},
      {"MODEL_FORMAT", "model.format"},
      {"MODEL_DEVICE", "model.device"},
      {"MODEL_PRECISION", "model.precision"},
      {"MODEL_BATCH_SIZE", "scheduler.batch_size"},
      {"MODEL_MAX_BATCH_SIZE", "scheduler.max_batch_size"},
      {"SERVER_HOST", "server.host"},
      {"PORT", "server.port"},
      {"SERVER_WORKERS", "server.io_threads"},
      {"LOGGING_LEVEL", "logging.level"},
  };
  return env;
}

// An empty variable counts as unset: container tooling often passes VAR= for "not given".
std::optional<std::string> EnvValue(const std::map<std::string, std::string>& env,
                                    const std::string& name) {
  auto it = env.find(name);
  if (it == env.end() || Trim(it->second).empty()) return std::nullopt;
  return it->second;
}

Status ApplyEnv(Config& config, const std::map<std::string, std::string>& env) {
  // USE_GPU is coarse: it picks "auto" (best available accelerator) or "cpu", and yields to an
  // explicit MODEL_DEVICE, which the loop below applies.
  if (auto use_gpu = EnvValue(env, "USE_GPU"); use_gpu.has_value()) {
    RawValue raw;
    raw.text = *use_gpu;
    ASSIGN_OR_RETURN(bool on, ParseBool(raw, "env USE_GPU"));
    if (!EnvValue(env, "MODEL_DEVICE").has_value()) {
      config.model.device = on ? Device::kAuto : Device::kCpu;
      config.sources["model.device"] = "env:USE_GPU";
    }
  }
  for (const auto& [name, key] : EnvKeys()) {
    auto value = EnvValue(env, name);
    if (!value.has_value()) continue;
    RawValue raw;
    raw.text = *value;
    RETURN_IF_ERROR(Apply(config, key, raw, "env " + name, "env:" + name));
  }
  return Status::Ok();
}

Status ApplyOverrides(Config& config,
                      const std::vector<std::pair<std::string, std::string>>& overrides) {
  for (const auto& [key, value] : overrides) {
    if (FindKey(key) == nullptr) return UnknownKey("flag", key);
    RawValue raw;
    raw.text = value;
    RETURN_IF_ERROR(Apply(config, key, raw, "flag " + key, "flag"));
  }
  return Status::Ok();
}

// Rules that involve more than one key, checked once every layer is applied so that the order
// of layers cannot make a valid final config fail. Errors name both keys and where they came from.
Status ValidateTogether(const Config& config) {
  const auto& s = config.scheduler;
  auto from = [&](const std::string& key) {
    auto it = config.sources.find(key);
    return it == config.sources.end() ? std::string("default") : it->second;
  };
  if (s.batch_size > s.max_batch_size) {
    return InvalidArgumentError("config: scheduler.batch_size: " + std::to_string(s.batch_size) +
                                " is greater than scheduler.max_batch_size (" +
                                std::to_string(s.max_batch_size) + ") (batch_size from " +
                                from("scheduler.batch_size") + ", max_batch_size from " +
                                from("scheduler.max_batch_size") + ")");
  }
  for (int64_t size : s.preferred_batch_sizes) {
    if (size > s.max_batch_size) {
      return InvalidArgumentError(
          "config: scheduler.preferred_batch_sizes: " + std::to_string(size) +
          " is greater than scheduler.max_batch_size (" + std::to_string(s.max_batch_size) +
          ") (preferred_batch_sizes from " + from("scheduler.preferred_batch_sizes") +
          ", max_batch_size from " + from("scheduler.max_batch_size") + ")");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Config> LoadConfig(const ConfigInputs& inputs) {
  Config config;
  for (const auto& spec : Keys()) config.sources[spec.key] = "default";
  if (inputs.file.has_value()) RETURN_IF_ERROR(ApplyFile(config, *inputs.file));
  RETURN_IF_ERROR(ApplyEnv(config, inputs.env));
  RETURN_IF_ERROR(ApplyOverrides(config, inputs.overrides));
  RETURN_IF_ERROR(ValidateTogether(config));
  return config;
}

std::map<std::string, std::string> CurrentEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

std::string PrintConfig(const Config& config) {
  std::ostringstream out;
  std::vector<std::string> open;  // the section path currently printed
  for (const auto& spec : Keys()) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
      size_t dot = spec.key.find('.', start);
      parts.push_back(spec.key.substr(start, dot == std::string::npos ? dot : dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    const std::vector<std::string> sections(parts.begin(), parts.end() - 1);
    size_t common = 0;
    while (common < open.size() && common < sections.size() && open[common] == sections[common]) {
      ++common;
    }
    for (size_t i = common; i < sections.size(); ++i) {
      out << std::string(2 * i, ' ') << sections[i] << ":\n";
    }
    open = sections;
    auto it = config.sources.find(spec.key);
    const std::string source = it == config.sources.end() ? "default" : it->second;
    out << std::string(2 * sections.size(), ' ') << parts.back() << ": " << spec.print(config)
        << "  # from " << source << "\n";
  }
  return out.str();
}

}  // namespace brainstem
