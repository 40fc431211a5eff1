// PolicyIo: the numeric contract between wire observations and the model, compiled from a
// model card: per-column preprocessing folded into one multiply-add and a clamp, and the
// decoding of model outputs into bounded actions (deterministic mean, or a Gaussian sample
// when the card gives log-std). Transports fill columns; they never see normalization rules.
// Thread-safe after construction (immutable); the RNG passed to Decode is the caller's.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "repository/model_card.h"

namespace brainstem {

class PolicyIo {
 public:
  static Result<PolicyIo> FromCard(const ModelCard& card);

  int64_t input_width() const { return static_cast<int64_t>(mul_.size()); }
  int64_t output_width() const { return static_cast<int64_t>(actions_.size()); }
  const std::vector<InputFeature>& features() const { return features_; }
  // First model column of features()[i].
  int64_t feature_offset(size_t i) const { return offsets_[i]; }
  const std::vector<ActionSpec>& actions() const { return actions_; }
  bool stochastic() const { return !std_.empty(); }

  // The model's value for a raw wire value in `column`.
  float Preprocess(int64_t column, float raw) const {
    const size_t c = static_cast<size_t>(column);
    float x = raw * mul_[c] + add_[c];
    return x < low_[c] ? low_[c] : (x > high_[c] ? high_[c] : x);
  }

  // Turns one row of model outputs into actions within their bounds. When !deterministic
  // (REQUIRES: stochastic()), adds exp(log_std) * N(0,1) noise drawn from `rng` first.
  // Errors: kInternal naming the action when the model produced a non-finite value.
  Status Decode(std::span<const float> means, bool deterministic, std::mt19937_64* rng,
                std::span<float> actions) const;

 private:
  std::vector<InputFeature> features_;
  std::vector<int64_t> offsets_;
  std::vector<float> mul_, add_, low_, high_;  // per model column
  std::vector<ActionSpec> actions_;
  std::vector<float> std_;  // exp(log_std), empty when deterministic only
};

}  // namespace brainstem
