#include "engine/policy_io.h"

#include <cmath>
#include <limits>

namespace brainstem {
namespace {

// One value of a broadcastable per-feature vector (size 1 or `size`), or `fallback`.
float Pick(const std::vector<float>& values, int64_t i, float fallback) {
  if (values.empty()) return fallback;
  return values.size() == 1 ? values[0] : values[static_cast<size_t>(i)];
}

}  // namespace

Result<PolicyIo> PolicyIo::FromCard(const ModelCard& card) {
  PolicyIo io;
  io.features_ = card.inputs;
  io.actions_ = card.actions;
  int64_t offset = 0;
  for (const InputFeature& feature : card.inputs) {
    io.offsets_.push_back(offset);
    const ::brainstem::Preprocess& p = feature.preprocess;
    for (const auto* v : {&p.mean, &p.std, &p.scale, &p.offset}) {
      if (!v->empty() && v->size() != 1 && static_cast<int64_t>(v->size()) != feature.size) {
        return InvalidArgumentError("model card: input '" + feature.name +
                                    "': preprocess vectors must have 1 or size values");
      }
    }
    for (int64_t i = 0; i < feature.size; ++i) {
      const float mean = Pick(p.mean, i, 0.0f);
      const float std = Pick(p.std, i, 1.0f);
      if (std == 0.0f) {
        return InvalidArgumentError("model card: input '" + feature.name + "': std is zero");
      }
      const float scale = Pick(p.scale, i, 1.0f);
      const float shift = Pick(p.offset, i, 0.0f);
      // ((x - mean) / std) * scale + shift  ==  x * mul + add
      io.mul_.push_back(scale / std);
      io.add_.push_back(shift - mean * scale / std);
      io.low_.push_back(p.clip_low.value_or(-std::numeric_limits<float>::infinity()));
      io.high_.push_back(p.clip_high.value_or(std::numeric_limits<float>::infinity()));
    }
    offset += feature.size;
  }
  if (!card.log_std.empty()) {
    if (card.log_std.size() != card.actions.size()) {
      return InvalidArgumentError("model card: output.log_std must have one value per action");
    }
    for (float log_std : card.log_std) io.std_.push_back(std::exp(log_std));
  }
  return io;
}

Status PolicyIo::Decode(std::span<const float> means, bool deterministic, std::mt19937_64* rng,
                        std::span<float> actions) const {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t a = 0; a < actions_.size(); ++a) {
    float value = means[a];
    if (!std::isfinite(value)) {
      return InternalError("model produced a non-finite value for action '" + actions_[a].name +
                           "'");
    }
    if (!deterministic) value += std_[a] * normal(*rng);
    actions[a] = value < actions_[a].low ? actions_[a].low
                                         : (value > actions_[a].high ? actions_[a].high : value);
  }
  return Status::Ok();
}

}  // namespace brainstem
