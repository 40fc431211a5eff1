// ModelCard: the declarative description of one model version, read from model_card.yaml:
// which files hold the model in which formats, how wire fields map onto the model's input
// features (layout and preprocessing), what the outputs mean (action names and bounds,
// optional log-std of a Gaussian policy) and the sha256 of every artifact file.
// Thread-compatible: a parsed card is an immutable value.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "common/result.h"

namespace brainstem {

// Per-feature preprocessing, applied element-wise in this order:
//   x = (x - mean) / std        when mean/std are given
//   x = x * scale + offset      when scale/offset are given
//   x = clamp(x, clip_low, clip_high)  when clip is given
// mean/std/scale/offset hold either one value (broadcast) or `size` values.
struct Preprocess {
  std::vector<float> mean;
  std::vector<float> std;
  std::vector<float> scale;
  std::vector<float> offset;
  std::optional<float> clip_low;
  std::optional<float> clip_high;
};

// One named input field, `size` consecutive model features wide. For the CarlaRL schema the
// features are speed (1), steering (1), sensors (N), in that order.
struct InputFeature {
  std::string name;
  int64_t size = 1;
  Preprocess preprocess;
};

struct ActionSpec {
  std::string name;
  float low = -1.0f;
  float high = 1.0f;
};

struct ModelCard {
  std::string name;
  std::string version;  // semver text as written in the card, e.g. "0.1.0"
  std::string description;
  // Artifact file per format, relative to the version directory.
  std::map<ModelFormat, std::string> files;
  std::vector<InputFeature> inputs;
  std::vector<ActionSpec> actions;
  // Gaussian policy: per-action log standard deviation. Empty means the policy is
  // deterministic only and deterministic:false is refused.
  std::vector<float> log_std;
  // sha256 (lowercase hex) of each file in the version directory, by relative path.
  std::map<std::string, std::string> artifact_hashes;
  // Free-form key/value facts shown by /versions (training data, metrics, author...).
  std::map<std::string, std::string> info;

  int64_t input_width() const;   // sum of InputFeature::size
  int64_t output_width() const;  // actions.size()
};

// Parses and validates a card. Errors: kInvalidArgument naming the key and the problem
// (unknown key, wrong type, inconsistent sizes, low > high, missing required key).
Result<ModelCard> ParseModelCard(const std::string& yaml_text);
Result<ModelCard> LoadModelCard(const std::filesystem::path& card_file);

// The card as YAML again (for /versions and tools that write cards).
std::string ModelCardToYaml(const ModelCard& card);

}  // namespace brainstem
