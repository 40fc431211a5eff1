#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>

namespace brainstem {
namespace {

namespace fs = std::filesystem;

// Writes `text` to a unique file under the temp directory and removes it afterwards.
class TempYaml {
 public:
  explicit TempYaml(const std::string& text) {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("brainstem_config_test_" + std::to_string(::getpid()) +
                                         "_" + std::to_string(counter++) + ".yaml");
    std::ofstream(path_) << text;
  }
  ~TempYaml() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

Result<Config> Load(const std::optional<fs::path>& file,
                    std::map<std::string, std::string> env = {},
                    std::vector<std::pair<std::string, std::string>> overrides = {}) {
  ConfigInputs inputs;
  inputs.file = file;
  inputs.env = std::move(env);
  inputs.overrides = std::move(overrides);
  return LoadConfig(inputs);
}

// Expects kInvalidArgument whose message contains every needle.
void ExpectError(const Result<Config>& config, std::initializer_list<std::string> needles) {
  ASSERT_FALSE(config.ok()) << "unexpectedly loaded";
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  for (const auto& needle : needles) {
    EXPECT_NE(config.status().message().find(needle), std::string::npos)
        << "'" << needle << "' not in: " << config.status().message();
  }
}

TEST(ConfigTest, Defaults) {
  Result<Config> config = Load(std::nullopt);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server.host, "127.0.0.1");
  EXPECT_EQ(config->server.port, 8080);
  EXPECT_EQ(config->server.io_threads, 1);
  EXPECT_FALSE(config->server.cors_enabled);
  EXPECT_EQ(config->model.artifact_dir, fs::path("artifacts"));
  EXPECT_FALSE(config->model.format.has_value());
  EXPECT_EQ(config->model.device, Device::kCpu);
  EXPECT_EQ(config->scheduler.max_batch_size, 64);
  EXPECT_EQ(config->logging.level, "info");
  EXPECT_EQ(config->sources.at("server.port"), "default");
  EXPECT_EQ(config->sources.at("server.cors.allow_origins"), "default");
  EXPECT_EQ(config->sources.size(), 64u);  // every key has a source
}

TEST(ConfigTest, FileNestedMaps) {
  TempYaml file(R"(
server:
  host: 0.0.0.0
  port: 9000
  cors:
    enabled: yes
    allow_origins: ["http://localhost:3000", "https://example.com"]
model:
  device: mps
  format: onnx
  precision: fp16
  allow_prerelease: true
scheduler:
  max_batch_size: 128
  preferred_batch_sizes: [32, 8, 16, 8]
  instances: 4
logging:
  level: debug
  format: json
)");
  Result<Config> config = Load(file.path());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server.host, "0.0.0.0");
  EXPECT_EQ(config->server.port, 9000);
  EXPECT_TRUE(config->server.cors_enabled);
  EXPECT_EQ(config->server.cors_allow_origins,
            (std::vector<std::string>{"http://localhost:3000", "https://example.com"}));
  EXPECT_EQ(config->model.device, Device::kMps);
  EXPECT_EQ(config->model.format, ModelFormat::kOnnx);
  EXPECT_EQ(config->model.precision, Precision::kFp16);
  EXPECT_TRUE(config->model.allow_prerelease);
  EXPECT_EQ(config->scheduler.max_batch_size, 128);
  EXPECT_EQ(config->scheduler.preferred_batch_sizes, (std::vector<int64_t>{8, 16, 32}));
  EXPECT_EQ(config->scheduler.instances, 4);
  EXPECT_EQ(config->logging.format, "json");
  EXPECT_EQ(config->sources.at("server.port"), "file:" + file.path().string());
  EXPECT_EQ(config->sources.at("server.cors.enabled"), "file:" + file.path().string());
  EXPECT_EQ(config->sources.at("server.io_threads"), "default");
}

TEST(ConfigTest, EmptyFileMeansDefaults) {
  TempYaml file("# nothing here\n");
  Result<Config> config = Load(file.path());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server.port, 8080);
}

TEST(ConfigTest, MissingFileIsNotFound) {
  Result<Config> config = Load(fs::path("/nonexistent/brainstem.yaml"));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kNotFound);
  EXPECT_NE(config.status().message().find("/nonexistent/brainstem.yaml"), std::string::npos);
}

TEST(ConfigTest, EnvOverridesFile) {
  TempYaml file("server: {port: 9000, host: 0.0.0.0}\nmodel: {device: cuda}\n");
  Result<Config> config = Load(file.path(), {{"PORT", "9100"},
                                             {"MODEL_DEVICE", "CPU"},
                                             {"MODEL_PRECISION", "fp16"},
                                             {"MODEL_BATCH_SIZE", "4"},
                                             {"MODEL_MAX_BATCH_SIZE", "32"},
                                             {"SERVER_WORKERS", "3"},
                                             {"LOGGING_LEVEL", "warn"},
                                             {"ARTIFACT_DIR", "/srv/models"},
                                             {"MODEL_VERSION", "0.2.0"},
                                             {"MODEL_FORMAT", "torchscript"},
                                             {"MODEL_NAME", "lane-keeping"},
                                             {"UNRELATED", "ignored"},
                                             {"SERVER_HOST", ""}});  // empty = unset
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server.port, 9100);
  EXPECT_EQ(config->sources.at("server.port"), "env:PORT");
  EXPECT_EQ(config->server.host, "0.0.0.0");
  EXPECT_EQ(config->sources.at("server.host"), "file:" + file.path().string());
  EXPECT_EQ(config->model.device, Device::kCpu);
  EXPECT_EQ(config->sources.at("model.device"), "env:MODEL_DEVICE");
  EXPECT_EQ(config->model.precision, Precision::kFp16);
  EXPECT_EQ(config->scheduler.batch_size, 4);
  EXPECT_EQ(config->scheduler.max_batch_size, 32);
  EXPECT_EQ(config->server.io_threads, 3);
  EXPECT_EQ(config->logging.level, "warn");
  EXPECT_EQ(config->model.artifact_dir, fs::path("/srv/models"));
  EXPECT_EQ(config->model.version, "0.2.0");
  EXPECT_EQ(config->model.format, ModelFormat::kTorchScript);
  EXPECT_EQ(config->model.name, "lane-keeping");
  EXPECT_EQ(config->sources.at("model.name"), "env:MODEL_NAME");
}

TEST(ConfigTest, OverrideBeatsEnv) {
  Result<Config> config =
      Load(std::nullopt, {{"PORT", "9100"}, {"LOGGING_LEVEL", "warn"}},
           {{"server.port", "9200"}, {"server.cors.allow_origins", "a.example, b.example"}});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server.port, 9200);
  EXPECT_EQ(config->sources.at("server.port"), "flag");
  EXPECT_EQ(config->logging.level, "warn");
  EXPECT_EQ(config->server.cors_allow_origins,
            (std::vector<std::string>{"a.example", "b.example"}));
}

TEST(ConfigTest, UseGpu) {
  Result<Config> config = Load(std::nullopt, {{"USE_GPU", "true"}});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->model.device, Device::kAuto);
  EXPECT_EQ(config->sources.at("model.device"), "env:USE_GPU");

  config = Load(std::nullopt, {{"USE_GPU", "1"}, {"MODEL_DEVICE", "cuda"}});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->model.device, Device::kCuda);  // MODEL_DEVICE wins
  EXPECT_EQ(config->sources.at("model.device"), "env:MODEL_DEVICE");

  TempYaml file("model: {device: mps}\n");
  config = Load(file.path(), {{"USE_GPU", "false"}});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->model.device, Device::kCpu);

  ExpectError(Load(std::nullopt, {{"USE_GPU", "maybe"}}),
              {"env USE_GPU: 'maybe' is not a boolean", "true, false, 1, 0, yes, no"});
}

TEST(ConfigTest, ErrorsNameTheKey) {
  TempYaml port("server:\n  port: 70000\n");
  ExpectError(Load(port.path()),
              {"config: server.port: '70000' is out of range (allowed: 0..65535)"});
  ExpectError(Load(std::nullopt, {{"MODEL_DEVICE", "tpu"}}),
              {"env MODEL_DEVICE: 'tpu' is not allowed (allowed: auto, cpu, cuda, mps)"});
  TempYaml typo("server:\n  prot: 8080\n");
  ExpectError(Load(typo.path()),
              {"config: unknown key 'server.prot' (known keys: server.host, server.port",
               "did you mean 'server.port'?"});
  TempYaml top("goals:\n  - p99_us: 100\n");
  ExpectError(Load(top.path()), {"unknown key 'goals'", "server.*, model.*"});
  TempYaml nested("server:\n  cors:\n    enabeld: true\n");
  ExpectError(Load(nested.path()), {"unknown key 'server.cors.enabeld'"});
  ExpectError(Load(std::nullopt, {}, {{"scheduler.instanses", "2"}}),
              {"flag: unknown key 'scheduler.instanses'"});
  ExpectError(Load(std::nullopt, {}, {{"scheduler.instances", "65"}}),
              {"flag scheduler.instances: '65' is out of range (allowed: 1..64)"});
  ExpectError(Load(std::nullopt, {{"SERVER_WORKERS", "0"}}),
              {"env SERVER_WORKERS: '0' is out of range (allowed: 1..256)"});
  ExpectError(Load(std::nullopt, {{"PORT", "80a"}}), {"env PORT: '80a' is not an integer"});
  ExpectError(Load(std::nullopt, {{"MODEL_PRECISION", "int8"}}),
              {"env MODEL_PRECISION", "allowed: fp32, fp16"});
  ExpectError(Load(std::nullopt, {{"MODEL_FORMAT", "tflite"}}),
              {"env MODEL_FORMAT", "allowed: auto, torchscript, onnx"});
  ExpectError(Load(std::nullopt, {{"LOGGING_LEVEL", "verbose"}}),
              {"env LOGGING_LEVEL", "trace, debug, info, warn, error, off"});
  ExpectError(Load(std::nullopt, {}, {{"logging.format", "xml"}}),
              {"flag logging.format", "allowed: text, json"});
  ExpectError(Load(std::nullopt, {}, {{"scheduler.queue_capacity", "0"}}),
              {"scheduler.queue_capacity", "out of range"});
  ExpectError(Load(std::nullopt, {}, {{"scheduler.max_batch_size", "5000"}}),
              {"scheduler.max_batch_size", "allowed: 1..4096"});
  ExpectError(Load(std::nullopt, {}, {{"server.cors.enabled", "perhaps"}}),
              {"flag server.cors.enabled", "not a boolean"});
  TempYaml list("server:\n  port: [1, 2]\n");
  ExpectError(Load(list.path()), {"config: server.port", "single value"});
  TempYaml section("server: 8080\n");
  ExpectError(Load(section.path()), {"config: server", "mapping"});
  TempYaml dup("server:\n  port: 1\n  port: 2\n");
  ExpectError(Load(dup.path()), {"duplicate key 'server.port'"});
  TempYaml syntax("server: {port: 1\n");
  ExpectError(Load(syntax.path()), {"YAML"});
}

TEST(ConfigTest, ShmKeys) {
  Result<Config> defaults = Load(std::nullopt);
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  const ShmConfig& shm = defaults->shm;
  EXPECT_TRUE(shm.enabled);
  EXPECT_EQ(shm.name, "default");
  EXPECT_EQ(shm.path, "");
  EXPECT_EQ(shm.max_tensor_slots, 64);
  EXPECT_EQ(shm.max_rows, 1024);
  EXPECT_EQ(shm.max_frame_slots, 4);
  EXPECT_EQ(shm.max_frame_bytes, 33554432);
  EXPECT_EQ(shm.checksum, "xxh3");
  EXPECT_EQ(shm.spin_us, 50);
  EXPECT_FALSE(shm.allow_other_uids);
  EXPECT_EQ(shm.rendezvous, "socket");

  TempYaml file(
      "shm:\n  enabled: false\n  name: sim-1\n  path: /run/bs/x.sock\n  max_tensor_slots: 8\n"
      "  max_rows: 16\n  max_frame_slots: 0\n  max_frame_bytes: 4096\n  checksum: CRC32C\n"
      "  spin_us: 0\n  allow_other_uids: yes\n  rendezvous: both\n");
  Result<Config> set = Load(file.path());
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_FALSE(set->shm.enabled);
  EXPECT_EQ(set->shm.name, "sim-1");
  EXPECT_EQ(set->shm.path, "/run/bs/x.sock");
  EXPECT_EQ(set->shm.max_tensor_slots, 8);
  EXPECT_EQ(set->shm.max_rows, 16);
  EXPECT_EQ(set->shm.max_frame_slots, 0);
  EXPECT_EQ(set->shm.max_frame_bytes, 4096);
  EXPECT_EQ(set->shm.checksum, "crc32c");
  EXPECT_EQ(set->shm.spin_us, 0);
  EXPECT_TRUE(set->shm.allow_other_uids);
  EXPECT_EQ(set->shm.rendezvous, "both");
  EXPECT_EQ(set->sources.at("shm.checksum"), "file:" + file.path().string());

  ExpectError(Load(std::nullopt, {}, {{"shm.name", "../etc"}}), {"flag shm.name", "not a valid"});
  ExpectError(Load(std::nullopt, {}, {{"shm.name", ""}}), {"flag shm.name"});
  ExpectError(Load(std::nullopt, {}, {{"shm.name", ".hidden"}}), {"flag shm.name"});
  ExpectError(Load(std::nullopt, {}, {{"shm.path", "/tmp/" + std::string(200, 'x')}}),
              {"flag shm.path", "at most 107"});
  ExpectError(Load(std::nullopt, {}, {{"shm.path", "/tmp/dir/"}}), {"flag shm.path", "directory"});
  ExpectError(Load(std::nullopt, {}, {{"shm.rendezvous", "tcp"}}),
              {"flag shm.rendezvous", "allowed: socket, named, both"});
  ExpectError(Load(std::nullopt, {}, {{"shm.checksum", "md5"}}),
              {"flag shm.checksum", "allowed: none, xxh3, crc32c, sha256"});
  ExpectError(Load(std::nullopt, {}, {{"shm.max_tensor_slots", "257"}}),
              {"shm.max_tensor_slots", "allowed: 1..256"});
  ExpectError(Load(std::nullopt, {}, {{"shm.max_rows", "1025"}}),
              {"shm.max_rows", "allowed: 1..1024"});
  ExpectError(Load(std::nullopt, {}, {{"shm.max_frame_slots", "17"}}),
              {"shm.max_frame_slots", "allowed: 0..16"});
  ExpectError(Load(std::nullopt, {}, {{"shm.max_frame_bytes", "0"}}),
              {"shm.max_frame_bytes", "allowed: 1..268435456"});
  ExpectError(Load(std::nullopt, {}, {{"shm.spin_us", "-1"}}), {"shm.spin_us", "out of range"});
  ExpectError(Load(std::nullopt, {}, {{"shm.enabled", "sometimes"}}),
              {"flag shm.enabled", "not a boolean"});
}

TEST(ConfigTest, TargetKeys) {
  TempYaml file(
      "targets:\n  startup_ms: 300\n  idle_cpu_percent: 2.5\n  idle_rss_mb: 64\n"
      "  http_p50_us: 150\n  http_p99_us: 900\n  shm_p50_us: 20\n  shm_p99_us: 400\n"
      "  shm_throughput_rps: 50000\n");
  Result<Config> set = Load(file.path());
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  const TargetsConfig& t = set->targets;
  EXPECT_EQ(t.startup_ms, 300);
  EXPECT_DOUBLE_EQ(t.idle_cpu_percent, 2.5);
  EXPECT_EQ(t.idle_rss_mb, 64);
  EXPECT_EQ(t.http_p50_us, 150);
  EXPECT_EQ(t.http_p99_us, 900);
  EXPECT_EQ(t.shm_p50_us, 20);
  EXPECT_EQ(t.shm_p99_us, 400);
  EXPECT_EQ(t.shm_throughput_rps, 50000);
  EXPECT_EQ(set->sources.at("targets.idle_cpu_percent"), "file:" + file.path().string());

  Result<Config> zero = Load(std::nullopt, {}, {{"targets.http_p50_us", "0"}});
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  EXPECT_EQ(zero->targets.http_p50_us, 0);
  ExpectError(Load(std::nullopt, {}, {{"targets.idle_cpu_percent", "lots"}}),
              {"flag targets.idle_cpu_percent", "not a number"});
  ExpectError(Load(std::nullopt, {}, {{"targets.idle_cpu_percent", "-1"}}),
              {"targets.idle_cpu_percent", "out of range"});
  ExpectError(Load(std::nullopt, {}, {{"targets.idle_cpu_percent", "nan"}}),
              {"targets.idle_cpu_percent", "not a number"});
  ExpectError(Load(std::nullopt, {}, {{"targets.http_p99_us", "1.5"}}),
              {"targets.http_p99_us", "not an integer"});
  ExpectError(Load(std::nullopt, {}, {{"targets.shm_p50_ms", "10"}}),
              {"unknown key 'targets.shm_p50_ms'", "did you mean 'targets.shm_p50_us'"});
}

TEST(ConfigTest, CrossKeyRules) {
  ExpectError(Load(std::nullopt, {{"MODEL_BATCH_SIZE", "128"}}),
              {"scheduler.batch_size: 128 is greater than scheduler.max_batch_size (64)",
               "env:MODEL_BATCH_SIZE"});
  ExpectError(Load(std::nullopt, {}, {{"scheduler.preferred_batch_sizes", "8,128"}}),
              {"scheduler.preferred_batch_sizes: 128", "max_batch_size (64)"});
  // Order of layers does not matter: raising max in a later layer makes it valid.
  Result<Config> config =
      Load(std::nullopt, {{"MODEL_BATCH_SIZE", "128"}}, {{"scheduler.max_batch_size", "256"}});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->scheduler.batch_size, 128);
}

TEST(ConfigTest, PrintShowsSourcesAndReloads) {
  TempYaml file("server: {port: 9000}\n");
  Result<Config> config =
      Load(file.path(), {{"MODEL_DEVICE", "cuda"}}, {{"logging.level", "debug"}});
  ASSERT_TRUE(config.ok());
  const std::string printed = PrintConfig(*config);
  EXPECT_NE(
      printed.find("server:\n  host: \"127.0.0.1\"  # from default\n  port: 9000  # from file:" +
                   file.path().string()),
      std::string::npos)
      << printed;
  EXPECT_NE(printed.find("  device: cuda  # from env:MODEL_DEVICE\n"), std::string::npos)
      << printed;
  EXPECT_NE(printed.find("  level: debug  # from flag\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("  cors:\n    enabled: false  # from default\n"), std::string::npos)
      << printed;

  // The printed text is itself a valid config file with the same values.
  TempYaml again(printed);
  Result<Config> reloaded = Load(again.path());
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString() << "\n" << printed;
  EXPECT_EQ(reloaded->server.port, 9000);
  EXPECT_EQ(reloaded->model.device, Device::kCuda);
  EXPECT_EQ(reloaded->logging.level, "debug");
  EXPECT_EQ(reloaded->server.cors_allow_origins, config->server.cors_allow_origins);
}

TEST(ConfigTest, CurrentEnvironmentSeesProcessEnv) {
  ASSERT_EQ(::setenv("BRAINSTEM_CONFIG_TEST_VAR", "x=y", 1), 0);
  auto env = CurrentEnvironment();
  EXPECT_EQ(env["BRAINSTEM_CONFIG_TEST_VAR"], "x=y");
  ::unsetenv("BRAINSTEM_CONFIG_TEST_VAR");
}

TEST(ConfigTest, EveryShippedConfigLoads) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(BRAINSTEM_CONFIG_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    ++count;
    Result<Config> config = Load(entry.path());
    EXPECT_TRUE(config.ok()) << entry.path() << ": " << config.status().ToString();
  }
  EXPECT_GE(count, 3) << "expected the shipped configs in " << BRAINSTEM_CONFIG_DIR;
}

TEST(ConfigTest, DefaultYamlMatchesBuiltInDefaults) {
  // config/default.yaml documents every key; it must agree with the compiled-in defaults.
  Result<Config> from_file = Load(fs::path(BRAINSTEM_CONFIG_DIR) / "default.yaml");
  Result<Config> built_in = Load(std::nullopt);
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  ASSERT_TRUE(built_in.ok());
  Config a = *from_file;
  Config b = *built_in;
  a.sources.clear();
  b.sources.clear();
  EXPECT_EQ(PrintConfig(a), PrintConfig(b));
  // And it sets every key explicitly.
  for (const auto& [key, source] : from_file->sources) {
    EXPECT_NE(source, "default") << key << " is missing from config/default.yaml";
  }
}

}  // namespace
}  // namespace brainstem
