// ParsePredictRequest: reads a CarlaRL /predict body
//   {"observations":[{"speed":..,"steering":..,"sensors":[..]}], "deterministic":true,
//    "seed":123, "version":"0.1.0"}
// straight into preprocessed model columns (simdjson on-demand, no DOM), checking every field
// against the CarlaRL limits and the model card's layout. Every problem is collected with the
// field's path ("observations[3].speed") so a client learns all of them at once.
// Thread-compatible: one parser object per thread.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/policy_io.h"

namespace brainstem {

struct FieldError {
  std::string field;
  std::string message;
};

struct PredictRequest {
  std::vector<float> inputs;  // batch * input_width preprocessed values
  int64_t batch = 0;
  bool deterministic = true;
  std::optional<uint64_t> seed;
  std::optional<std::string> version;
  std::vector<FieldError> errors;  // empty when the request is valid
};

// CarlaRL schema limits.
inline constexpr int64_t kMaxObservations = 1000;
inline constexpr int64_t kMaxSensors = 10000;
inline constexpr double kMaxSpeed = 200;
inline constexpr double kMaxSensorMagnitude = 1000;
inline constexpr size_t kMaxReportedErrors = 50;

class PredictParser {
 public:
  // Parses `body`. Never fails outright: problems land in PredictRequest::errors.
  PredictRequest Parse(std::string_view body, const PolicyIo& io);

 private:
  simdjson::ondemand::parser parser_;
  std::string padded_;  // body copy with SIMDJSON_PADDING spare bytes, reused across calls
};

}  // namespace brainstem
