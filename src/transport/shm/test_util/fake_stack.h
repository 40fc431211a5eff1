// Tests only: the model side that the shm server tests serve, shared by the socket and lobby
// fixtures: a small policy card and a Scheduler over one FakeBackend.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "engine/scheduler.h"
#include "engine/test_util/fake_backend.h"
#include "repository/model_card.h"
#include "telemetry/server_metrics.h"

namespace brainstem::shm::test_util {

// speed (1, normalized (x-30)/15) and sensors (2, raw): 3 inputs; throttle and steer out.
inline ModelCard ShmTestCard(bool stochastic = false) {
  ModelCard card;
  InputFeature speed{"speed", 1, {}};
  speed.preprocess.mean = {30};
  speed.preprocess.std = {15};
  InputFeature sensors{"sensors", 2, {}};
  card.inputs = {speed, sensors};
  card.actions = {{"throttle", 0, 1}, {"steer", -1, 1}};
  if (stochastic) card.log_std = {-1, -1};
  return card;
}

// A Scheduler over one FakeBackend (3 inputs, 2 outputs; it outputs sum(row) * (column + 1)),
// batching without delay. `*backend` receives the instance, owned by the scheduler.
inline Result<std::unique_ptr<Scheduler>> FakeScheduler(bool inline_when_idle,
                                                        ServerMetrics* metrics,
                                                        FakeBackend** backend) {
  auto instance = std::make_unique<FakeBackend>(3, 2);
  *backend = instance.get();
  std::vector<std::unique_ptr<Backend>> instances;
  instances.push_back(std::move(instance));
  SchedulerOptions options;
  options.inline_when_idle = inline_when_idle;
  options.max_queue_delay_us = 0;
  return Scheduler::Create(options, std::move(instances), metrics);
}

}  // namespace brainstem::shm::test_util
