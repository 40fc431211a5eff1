#include "engine/model_loader.h"

#include <string>

namespace brainstem {
namespace {

Result<ModelFormat> ChooseFormat(const Config& config, const ModelCard& card) {
  if (config.model.format.has_value()) {
    ModelFormat wanted = *config.model.format;
    if (!card.files.contains(wanted)) {
      return NotFoundError("model.format: version " + card.version + " has no " +
                           std::string(ModelFormatName(wanted)) + " artifact");
    }
    return wanted;
  }
  for (ModelFormat f : {ModelFormat::kTorchScript, ModelFormat::kOnnx}) {
    if (card.files.contains(f) && BackendBuiltIn(f)) return f;
  }
  return UnimplementedError("version " + card.version +
                            " has no artifact in a format this build can run (built in: " +
                            (BackendBuiltIn(ModelFormat::kTorchScript) ? "torchscript " : "") +
                            (BackendBuiltIn(ModelFormat::kOnnx) ? "onnx" : "") + ")");
}

}  // namespace

Result<std::unique_ptr<LoadedModel>> LoadModel(const Config& config, ServerMetrics* metrics) {
  const TimePoint start = Clock::now();
  ASSIGN_OR_RETURN(Repository repository, Repository::Scan(config.model.artifact_dir));
  std::string model_name = config.model.name;
  if (model_name.empty()) {
    // OCR models share the repository; "the only model" means the only policy.
    std::vector<std::string> names = repository.ModelNames(CardKind::kPolicy);
    if (names.empty()) {
      return NotFoundError("no models in artifact directory '" +
                           config.model.artifact_dir.string() + "'");
    }
    if (names.size() > 1) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      return InvalidArgumentError("model.name: the repository holds several models (" + list +
                                  "); choose one");
    }
    model_name = names[0];
  }
  std::optional<std::string> requested;
  if (!config.model.version.empty()) requested = config.model.version;
  ASSIGN_OR_RETURN(const VersionEntry* entry,
                   repository.Select(model_name, requested, config.model.allow_prerelease));
  if (entry->kind != CardKind::kPolicy) {
    return InvalidArgumentError("model.name: '" + model_name + "' is an " +
                                std::string(CardKindName(entry->kind)) +
                                " model, not a policy (see ocr.model)");
  }
  if (!entry->card.ok()) return entry->card.status();
  const ModelCard& card = *entry->card;
  RETURN_IF_ERROR(VerifyArtifactHashes(card, entry->dir));

  auto model = std::make_unique<LoadedModel>();
  model->name = model_name;
  model->version = entry->version.ToString();
  model->dir = entry->dir;
  model->card = card;
  ASSIGN_OR_RETURN(model->io, PolicyIo::FromCard(card));
  ASSIGN_OR_RETURN(model->format, ChooseFormat(config, card));

  BackendOptions options;
  options.device =
      config.model.device == Device::kAuto ? BestDevice(model->format) : config.model.device;
  options.precision = config.model.precision;
  options.intra_op_threads = config.model.intra_op_threads;
  options.warmup_iterations = config.model.warmup_iterations;
  options.max_batch_size = config.scheduler.max_batch_size;
  const std::filesystem::path file = entry->dir / card.files.at(model->format);

  const TimePoint warm_start = Clock::now();
  std::vector<std::unique_ptr<Backend>> instances;
  for (int i = 0; i < config.scheduler.instances; ++i) {
    ASSIGN_OR_RETURN(
        std::unique_ptr<Backend> backend,
        LoadBackend(model->format, file, card.input_width(), card.output_width(), options));
    instances.push_back(std::move(backend));
  }
  model->device = instances[0]->device();
  model->precision = instances[0]->precision();
  metrics->warmup_seconds.store(NanosBetween(warm_start, Clock::now()) / 1e9);

  SchedulerOptions scheduler_options;
  scheduler_options.max_batch_size = config.scheduler.max_batch_size;
  scheduler_options.preferred_batch_sizes = config.scheduler.preferred_batch_sizes;
  if (config.scheduler.batch_size > 1) {
    scheduler_options.preferred_batch_sizes.push_back(config.scheduler.batch_size);
  }
  scheduler_options.max_queue_delay_us = config.scheduler.max_queue_delay_us;
  scheduler_options.queue_capacity = config.scheduler.queue_capacity;
  scheduler_options.inline_when_idle = config.scheduler.inline_when_idle;
  ASSIGN_OR_RETURN(model->scheduler,
                   Scheduler::Create(scheduler_options, std::move(instances), metrics));
  model->load_seconds = NanosBetween(start, Clock::now()) / 1e9;
  metrics->model_load_seconds.store(model->load_seconds);
  return model;
}

}  // namespace brainstem
