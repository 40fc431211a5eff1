// LoadedModel and LoadModel: picks the version to serve from the repository (MODEL_VERSION or
// newest stable), verifies every artifact's sha256 before touching it, loads one backend
// instance per configured worker, warms them up and starts the scheduler. The result is what
// the transports serve. Loading is the expensive step; everything after it is cheap.
// Thread-safe after construction (the scheduler is thread-safe; the rest is immutable).
#pragma once

#include <memory>
#include <string>

#include "config/config.h"
#include "engine/policy_io.h"
#include "engine/scheduler.h"
#include "repository/repository.h"
#include "telemetry/server_metrics.h"

namespace brainstem {

struct LoadedModel {
  std::string name;
  std::string version;
  std::filesystem::path dir;
  ModelCard card;
  PolicyIo io;
  ModelFormat format = ModelFormat::kOnnx;
  Device device = Device::kCpu;
  Precision precision = Precision::kFp32;
  double load_seconds = 0;
  std::unique_ptr<Scheduler> scheduler;
};

// Errors: those of Repository::Scan/Select (kNotFound naming model/version and what exists),
// kFailedPrecondition (hash mismatch, naming the file), kUnimplemented (format/device not in
// this build, naming what is missing), kInvalidArgument (card and artifact disagree).
Result<std::unique_ptr<LoadedModel>> LoadModel(const Config& config, ServerMetrics* metrics);

}  // namespace brainstem
