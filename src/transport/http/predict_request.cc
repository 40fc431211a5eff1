#include "transport/http/predict_request.h"

#include <cmath>
#include <string>

namespace brainstem {
namespace {

namespace od = simdjson::ondemand;

std::string TypeName(od::json_type type) {
  switch (type) {
    case od::json_type::array:
      return "an array";
    case od::json_type::object:
      return "an object";
    case od::json_type::number:
      return "a number";
    case od::json_type::string:
      return "a string";
    case od::json_type::boolean:
      return "a boolean";
    case od::json_type::null:
      return "null";
  }
  return "unknown";
}

// Per-field range for the CarlaRL schema; other card fields only need to be finite.
struct Range {
  double low;
  double high;
};
Range RangeFor(std::string_view feature) {
  if (feature == "speed") return {0, kMaxSpeed};
  if (feature == "steering") return {-1, 1};
  if (feature == "sensors") return {-kMaxSensorMagnitude, kMaxSensorMagnitude};
  return {-HUGE_VAL, HUGE_VAL};
}

std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

class Reader {
 public:
  Reader(const PolicyIo& io, PredictRequest* out) : io_(io), out_(out) {}

  void Error(std::string field, std::string message) {
    if (out_->errors.size() < kMaxReportedErrors) {
      out_->errors.push_back({std::move(field), std::move(message)});
    }
  }

  // Reads one number into *value; false (with an error recorded) if it is not a finite number
  // within range. `broken` is set when the JSON itself cannot be read further.
  bool ReadNumber(od::value value, const std::string& field, Range range, double* result) {
    od::json_type type;
    if (value.type().get(type)) {
      Error(field, "must be a finite number (got an invalid JSON token)");
      broken_ = true;
      return false;
    }
    if (type != od::json_type::number) {
      Error(field, "must be a number (got " + TypeName(type) + ")");
      return false;
    }
    double v;
    if (value.get_double().get(v) || !std::isfinite(v)) {
      Error(field, "must be a finite number");
      return false;
    }
    if (v < range.low || v > range.high) {
      Error(field, "must be within [" + FormatNumber(range.low) + ", " + FormatNumber(range.high) +
                       "] (got " + FormatNumber(v) + ")");
      return false;
    }
    *result = v;
    return true;
  }

  void ReadFeature(od::value value, size_t feature_index, const std::string& field, float* row) {
    const InputFeature& feature = io_.features()[feature_index];
    const int64_t column = io_.feature_offset(feature_index);
    const Range range = RangeFor(feature.name);
    if (feature.size == 1 && feature.name != "sensors") {
      double v;
      if (ReadNumber(value, field, range, &v)) {
        row[column] = io_.Preprocess(column, static_cast<float>(v));
      }
      return;
    }
    od::array array;
    if (value.get_array().get(array)) {
      od::json_type type{};
      bool typed = !value.type().get(type);
      Error(field, "must be an array of " + std::to_string(feature.size) + " numbers (got " +
                       (typed ? TypeName(type) : std::string("an invalid JSON token")) + ")");
      if (!typed) broken_ = true;
      return;
    }
    int64_t count = 0;
    for (auto element : array) {
      od::value item;
      if (std::move(element).get(item)) {
        broken_ = true;
        return;
      }
      if (count < feature.size) {
        double v;
        if (ReadNumber(item, field + "[" + std::to_string(count) + "]", range, &v)) {
          row[column + count] = io_.Preprocess(column + count, static_cast<float>(v));
        }
        if (broken_) return;
      }
      ++count;
    }
    if (feature.name == "sensors" && (count < 1 || count > kMaxSensors)) {
      Error(field, "must hold 1 to " + std::to_string(kMaxSensors) + " values (got " +
                       std::to_string(count) + ")");
    } else if (count != feature.size) {
      Error(field, "must hold exactly " + std::to_string(feature.size) +
                       " values for this model (got " + std::to_string(count) + ")");
    }
  }

  void ReadObservation(od::value value, int64_t index) {
    const std::string path = "observations[" + std::to_string(index) + "]";
    od::object object;
    if (value.get_object().get(object)) {
      Error(path, "must be an object with fields speed, steering, sensors");
      return;
    }
    const size_t width = static_cast<size_t>(io_.input_width());
    out_->inputs.resize(out_->inputs.size() + width, 0.0f);
    float* row = out_->inputs.data() + out_->inputs.size() - width;
    uint64_t seen = 0;
    for (auto field_result : object) {
      od::field field;
      std::string_view key;
      if (std::move(field_result).get(field) || field.unescaped_key().get(key)) {
        broken_ = true;
        return;
      }
      size_t feature = 0;
      while (feature < io_.features().size() && io_.features()[feature].name != key) ++feature;
      const std::string field_path = path + "." + std::string(key);
      if (feature == io_.features().size()) {
        Error(field_path, "unknown field (allowed: " + FeatureList() + ")");
        continue;
      }
      if (seen & (1ull << feature)) {
        Error(field_path, "duplicate field");
        continue;
      }
      seen |= 1ull << feature;
      ReadFeature(field.value(), feature, field_path, row);
      if (broken_) return;
    }
    for (size_t f = 0; f < io_.features().size(); ++f) {
      if (!(seen & (1ull << f))) Error(path + "." + io_.features()[f].name, "field required");
    }
  }

  void ReadObservations(od::value value) {
    od::array array;
    if (value.get_array().get(array)) {
      Error("observations", "must be an array of observation objects");
      return;
    }
    int64_t count = 0;
    for (auto element : array) {
      od::value item;
      if (std::move(element).get(item)) {
        broken_ = true;
        return;
      }
      if (count < kMaxObservations) ReadObservation(item, count);
      if (broken_) return;
      ++count;
    }
    out_->batch = count;
    if (count == 0) Error("observations", "must hold at least 1 observation");
    if (count > kMaxObservations) {
      Error("observations", "must hold at most " + std::to_string(kMaxObservations) +
                                " observations (got " + std::to_string(count) + ")");
    }
  }

  std::string FeatureList() const {
    std::string list;
    for (const auto& f : io_.features()) list += (list.empty() ? "" : ", ") + f.name;
    return list;
  }

  bool broken() const { return broken_; }

 private:
  const PolicyIo& io_;
  PredictRequest* out_;
  bool broken_ = false;
};

}  // namespace

PredictRequest PredictParser::Parse(std::string_view body, const PolicyIo& io) {
  PredictRequest out;
  Reader reader(io, &out);
  if (io.features().size() > 64) {
    reader.Error("model", "more than 64 input fields are not supported");
    return out;
  }
  padded_.assign(body);
  padded_.resize(body.size() + simdjson::SIMDJSON_PADDING, '\0');
  od::document doc;
  if (auto error = parser_.iterate(padded_.data(), body.size(), padded_.size()).get(doc)) {
    reader.Error("body", std::string("malformed JSON: ") + simdjson::error_message(error));
    return out;
  }
  od::object root;
  if (auto error = doc.get_object().get(root)) {
    reader.Error("body", error == simdjson::INCORRECT_TYPE
                             ? std::string("must be a JSON object")
                             : std::string("malformed JSON: ") + simdjson::error_message(error));
    return out;
  }
  bool have_observations = false;
  for (auto field_result : root) {
    od::field field;
    std::string_view key;
    if (std::move(field_result).get(field) || field.unescaped_key().get(key)) {
      reader.Error("body", "malformed JSON");
      return out;
    }
    if (key == "observations") {
      have_observations = true;
      reader.ReadObservations(field.value());
    } else if (key == "deterministic") {
      bool v;
      if (field.value().get_bool().get(v)) {
        reader.Error("deterministic", "must be a boolean");
      } else {
        out.deterministic = v;
      }
    } else if (key == "seed") {
      uint64_t v;
      if (field.value().get_uint64().get(v)) {
        reader.Error("seed", "must be an unsigned 64-bit integer");
      } else {
        out.seed = v;
      }
    } else if (key == "version") {
      std::string_view v;
      if (field.value().get_string().get(v)) {
        reader.Error("version", "must be a string");
      } else {
        out.version = std::string(v);
      }
    } else {
      reader.Error(std::string(key),
                   "unknown field (allowed: observations, deterministic, seed, version)");
    }
    if (reader.broken()) {
      reader.Error("body", "malformed JSON after this point; stopped reading");
      return out;
    }
  }
  if (!have_observations) reader.Error("observations", "field required");
  if (!out.deterministic && !io.stochastic()) {
    reader.Error("deterministic",
                 "this model has no log_std in its card, so only deterministic:true is served");
  }
  return out;
}

}  // namespace brainstem
