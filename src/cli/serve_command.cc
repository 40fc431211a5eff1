// `brainstem serve`: load the configured model version, start the HTTP server, run until
// SIGINT/SIGTERM. Startup (process start to ready) is measured and exported.
#include <pthread.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "engine/model_loader.h"
#include "engine/ocr_model.h"
#include "telemetry/process_stats.h"
#include "telemetry/system_sampler.h"
#include "topology/placement.h"
#include "topology/topology.h"
#include "transport/http/carla_api.h"
#include "transport/shm/shm_server.h"
#ifdef BRAINSTEM_HAVE_OCR
#include "perception/ocr_service.h"
#include "perception/shm_frame_consumer.h"
#include "transport/http/ocr_api.h"
#endif

namespace brainstem {
namespace {

struct ServeFlags {
  ConfigFlags config;
  std::optional<std::string> host;
  std::optional<int> port;
  std::optional<std::string> artifact_dir;
  std::optional<std::string> model_version;
  std::optional<std::string> format;
  std::string port_file;
};

void ConfigureLogging(const Config& config) {
  // Logs go to stderr: stdout stays free for data, and start-up failures land where
  // supervisors and scripts look for them.
  spdlog::set_default_logger(spdlog::stderr_color_mt("brainstem"));
  spdlog::set_level(spdlog::level::from_str(config.logging.level));
  if (config.logging.format == "json") {
    spdlog::set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","thread":%t,"message":"%v"})",
        spdlog::pattern_time_type::utc);
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
}

int Serve(const ServeFlags& flags) {
  // Signals are taken by sigwait below; block them before any thread starts so that no
  // worker or library thread receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::vector<std::pair<std::string, std::string>> overrides;
  if (flags.host) overrides.emplace_back("server.host", *flags.host);
  if (flags.port) overrides.emplace_back("server.port", std::to_string(*flags.port));
  if (flags.artifact_dir) overrides.emplace_back("model.artifact_dir", *flags.artifact_dir);
  if (flags.model_version) overrides.emplace_back("model.version", *flags.model_version);
  if (flags.format) overrides.emplace_back("model.format", *flags.format);
  Result<ConfigInputs> inputs = flags.config.ToInputs(std::move(overrides));
  if (!inputs.ok()) {
    std::cerr << "brainstem: " << inputs.status().message() << "\n";
    return 2;
  }
  Result<Config> loaded = LoadConfig(*inputs);
  if (!loaded.ok()) {
    std::cerr << "brainstem: " << loaded.status().message() << "\n";
    return 2;
  }
  const Config config = std::move(loaded).value();
  ConfigureLogging(config);

  // Placement is planned before any library starts its thread pools (LibTorch loads with the
  // model), so their sizes are set first.
  CpuTopology topology = DetectTopology();
  if (Status s =
          ApplyCpuOverrides(config.cpu.performance_cores, config.cpu.efficiency_cores, &topology);
      !s.ok()) {
    std::cerr << "brainstem: " << s.message() << "\n";
    return 2;
  }
  PlanRequest plan_request;
  plan_request.io_threads = config.server.io_threads;
  plan_request.model_workers = config.scheduler.instances;
  plan_request.shm_threads = config.shm.enabled ? 1 : 0;
  plan_request.pinning = config.cpu.pinning == "off" ? PinningMode::kOff : PinningMode::kAuto;
  const PlacementPlan plan = MakePlan(topology, plan_request);
  for (const std::string& set : ConfineLibraryThreads(plan, config.model.intra_op_threads)) {
    spdlog::debug("library pools: {}", set);
  }
  spdlog::info("placement: {} (pinning {})", plan.rule, plan.pinning ? "on" : "off");
  for (const std::string& note : plan.notes) spdlog::info("placement: {}", note);

  ServerMetrics metrics;
  std::unique_ptr<SystemSampler> sampler;  // outlives the transports that render it
  Result<std::unique_ptr<LoadedModel>> model = LoadModel(config, &metrics);
  if (!model.ok()) {
    spdlog::error("cannot load model: {}", model.status().ToString());
    return 1;
  }
  CarlaApi api(&config, model->get(), &metrics);
#ifdef BRAINSTEM_HAVE_OCR
  // Screen perception: its workers outlive both transports (declared before them), like the
  // scheduler. A failure to start is fatal only when ocr.enabled was set explicitly.
  OcrModel ocr_model;  // read by the OCR routes while serving
  std::unique_ptr<perception::OcrService> ocr_service;
  std::unique_ptr<OcrApi> ocr_api;
  std::unique_ptr<perception::OcrFrameConsumer> ocr_consumer;
  if (config.ocr.enabled) {
    // The OCR model's card supplies the settings (explicit ocr.* keys win) and pins the
    // traineddata by hash; it is resolved before any engine loads. A named model or version
    // that does not exist stops start-up; a hash mismatch does not (ocr_model.h says why).
    Result<OcrModel> resolved = ResolveOcrModel(config);
    if (!resolved.ok()) {
      spdlog::error("cannot start OCR: {}", resolved.status().message());
      return 1;
    }
    ocr_model = std::move(resolved).value();
    for (const std::string& warning : ocr_model.warnings) spdlog::warn("{}", warning);
    const OcrConfig& ocr = ocr_model.effective;
    perception::OcrServiceOptions ocr_options;
    ocr_options.workers = ocr.workers;
    ocr_options.preload = ocr.preload;
    ocr_options.queue_capacity = ocr.queue_capacity;
    ocr_options.max_image_pixels = static_cast<uint64_t>(ocr.max_image_pixels);
    ocr_options.engine.language = ocr.language;
    ocr_options.engine.tessdata_dir = ocr.tessdata_dir;
    ocr_options.pipeline.tile_size = ocr.tile_size;
    ocr_options.pipeline.whole_psm = ocr.psm;
    ocr_options.pipeline.xy_cut = ocr.segmentation == "xycut";
    ocr_options.pipeline.polarity_fix = ocr.polarity_fix;
    ocr_options.pipeline.line_width_scale = ocr.line_width_scale;
    ocr_options.on_worker_start = [&plan](int index) {
      // OCR workers are model workers of another model: same placement rule.
      if (Status s =
              PinCurrentThread(plan, Role::kModelWorker, index, "bs-ocr-" + std::to_string(index));
          !s.ok()) {
        spdlog::warn("{}", s.message());
      }
    };
    auto created = perception::OcrService::Create(std::move(ocr_options), &metrics);
    if (!created.ok()) {
      if (config.IsSet("ocr.enabled")) {
        spdlog::error("cannot start OCR: {}", created.status().message());
        return 1;
      }
      spdlog::warn("OCR disabled: {}", created.status().message());
    } else {
      ocr_service = std::move(created).value();
      ocr_api = std::make_unique<OcrApi>(ocr_service.get(), &metrics, ocr.timeout_ms, &ocr_model);
      ocr_consumer =
          std::make_unique<perception::OcrFrameConsumer>(ocr_service.get(), config.ocr.timeout_ms);
      api.set_ocr(ocr_api.get());
      api.set_ocr_model(&ocr_model);
      if (ocr_model.card.has_value()) {
        metrics.ocr_model_name = ocr_model.name;
        metrics.ocr_model_version = ocr_model.version;
        metrics.ocr_model_language = ocr.language;
        metrics.ocr_model_hash_verified = ocr_model.hash_verified;
      }
      spdlog::info(
          "OCR: {} {} ({}, {}{}), {} worker(s), POST /v1/ocr",
          ocr_model.card.has_value() ? ocr_model.name : "built-in settings", ocr_model.version,
          ocr_service->engine_version(), ocr.language,
          ocr_model.card.has_value()
              ? (ocr_model.hash_verified ? ", traineddata verified" : ", traineddata NOT verified")
              : "",
          ocr.workers);
    }
  }
#endif

  HttpServerOptions options;
  options.host = config.server.host;
  options.port = config.server.port;
  options.io_threads = config.server.io_threads;
  options.spin_us = config.server.io_spin_us;
  options.max_body_bytes = config.server.max_body_bytes;
  options.cors_enabled = config.server.cors_enabled;
  options.cors_allow_origins = config.server.cors_allow_origins;
  auto server = HttpServer::Create(
      options,
      [&api](HttpRequest&& request, Responder responder) {
        api.Handle(std::move(request), std::move(responder));
      },
      &CarlaApi::EarlyError,
      [&metrics](const std::string& route, int status, double seconds) {
        metrics.CountRequest(route, status);
        if (route == "/predict") metrics.request_seconds.Observe(seconds);
      });
  if (!server.ok()) {
    spdlog::error("{}", server.status().message());
    return 1;
  }
  // The shm transport feeds the same scheduler as HTTP; it starts once the model is loaded and
  // is declared after the model so that it is destroyed (and stopped) before the scheduler.
  std::unique_ptr<shm::ShmServer> shm_server;
  if (config.shm.enabled) {
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    auto shm_options = shm::ShmServerOptionsFromConfig(config, xdg != nullptr ? xdg : "");
    if (!shm_options.ok()) {
      spdlog::error("{}", shm_options.status().message());
      return 2;
    }
#ifdef BRAINSTEM_HAVE_OCR
    shm_options->frame_consumer = ocr_consumer.get();
#endif
    auto created =
        shm::ShmServer::Create(*shm_options, &(*model)->io, (*model)->scheduler.get(), &metrics);
    // With every shm key at its default, a second server on the host (tests, benchmarks) finds
    // the default socket taken; it then serves HTTP only and says so. Asked for explicitly,
    // shm must work or the server does not start.
    bool explicit_shm = false;
    for (const char* key : {"shm.enabled", "shm.name", "shm.path", "shm.rendezvous"}) {
      explicit_shm = explicit_shm || config.IsSet(key);
    }
    if (!created.ok() && explicit_shm) {
      spdlog::error("cannot start the shared-memory transport: {}", created.status().message());
      return 1;
    }
    if (!created.ok()) {
      spdlog::warn("shared memory disabled: {}", created.status().message());
    } else {
      shm_server = std::move(created).value();
    }
  }
  {
    // What GET /v1/status reports beyond the metrics: who we are, where shm listens, and the
    // plan (validate compares it with the threads' real affinity in /proc).
    StatusInfo info;
    info.pid = static_cast<int64_t>(getpid());
    if (shm_server != nullptr) info.shm_socket = shm_server->socket_path();
#ifdef BRAINSTEM_HAVE_OCR
    info.ocr_enabled = ocr_service != nullptr;
    if (info.ocr_enabled && ocr_model.card.has_value()) {
      info.ocr_model = ocr_model.name + " " + ocr_model.version;
    }
#endif
    info.placement_rule = plan.rule;
    info.pinning = plan.pinning;
    for (const ThreadPlacement& t : plan.threads) {
      info.threads.push_back(
          {DefaultThreadName(t.role, t.index), std::string(RoleName(t.role)), t.cpus, t.dedicated});
    }
    if (config.telemetry.sampler_interval_ms > 0) {
      info.threads.push_back(
          {"bs-sampler", std::string(RoleName(Role::kBackground)), plan.background_cpus, false});
    }
    info.background_cpus = plan.background_cpus;
    info.notes = plan.notes;
    api.SetStatusInfo(std::move(info));
  }
  (*server)->Start();
  if (shm_server != nullptr) {
    shm_server->Start();
    std::string where = shm_server->socket_path();
    if (!shm_server->lobby_shm_name().empty()) {
      where += (where.empty() ? "" : " and ") + std::string("lobby /dev/shm") +
               shm_server->lobby_shm_name();
    }
    spdlog::info(
        "shared memory on {} (checksum {}, up to {} tensor slots x {} rows, {} frame "
        "slots x {} bytes per client)",
        where, config.shm.checksum, config.shm.max_tensor_slots, config.shm.max_rows,
        config.shm.max_frame_slots, config.shm.max_frame_bytes);
  }
  const double startup = SecondsSinceProcessStart();
  metrics.startup_seconds.store(startup);
  const LoadedModel& m = **model;
  spdlog::info(
      "ready on http://{}:{} serving {} {} ({}, {}, {}, {} instance(s)); startup {:.3f} s, "
      "model load {:.3f} s",
      config.server.host, (*server)->port(), m.name, m.version, ModelFormatName(m.format),
      DeviceName(m.device), PrecisionName(m.precision), config.scheduler.instances, startup,
      m.load_seconds);
  // Off the critical path: pin the threads already running, then start the sampler.
  if (Result<int> pinned = PinNamedThreads(plan); !pinned.ok()) {
    spdlog::warn("{}", pinned.status().message());
  }
  if (config.telemetry.sampler_interval_ms > 0) {
    SystemSamplerOptions sampler_options;
    sampler_options.interval_ms = config.telemetry.sampler_interval_ms;
    sampler_options.cpu_kinds = topology.KindLabels();
    sampler_options.on_thread_start = [&plan] {
      if (Status s = PinCurrentThread(plan, Role::kBackground, 0, "bs-sampler"); !s.ok()) {
        spdlog::warn("{}", s.message());
      }
    };
    sampler = std::make_unique<SystemSampler>(std::move(sampler_options));
    sampler->Start();
    metrics.system_sampler.store(sampler.get());
  }
  if (!flags.port_file.empty()) {
    std::string tmp = flags.port_file + ".tmp";
    std::ofstream(tmp) << (*server)->port() << "\n";
    std::rename(tmp.c_str(), flags.port_file.c_str());
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  spdlog::info("signal {}: stopping", signal_number);
  // Transports first, then (when `model` goes out of scope) the scheduler drains its queue.
  if (shm_server != nullptr) shm_server->Stop();
  (*server)->Stop();
  metrics.system_sampler.store(nullptr);
  return 0;
}

}  // namespace

std::function<int()> RegisterServe(CLI::App* app) {
  CLI::App* command = app->add_subcommand("serve", "Serve the model over HTTP (CarlaRL API)");
  auto flags = std::make_shared<ServeFlags>();
  flags->config.AddTo(command);
  command->add_option("--host", flags->host, "Address to bind (server.host)");
  command->add_option("--port", flags->port, "TCP port, 0 for any free one (server.port)");
  command->add_option("--artifact-dir", flags->artifact_dir,
                      "Model repository (model.artifact_dir)");
  command->add_option("--model-version", flags->model_version, "Version to serve (model.version)");
  command->add_option("--format", flags->format, "auto|torchscript|onnx (model.format)");
  command->add_option("--port-file", flags->port_file,
                      "Write the bound port to this file once ready (for scripts and tests)");
  return [flags]() { return Serve(*flags); };
}

}  // namespace brainstem
