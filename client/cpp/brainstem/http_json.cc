#include "brainstem/http_json.h"

#include <charconv>
#include <cmath>

namespace brainstem::client {
namespace {

void AppendFloat(std::string* out, float value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, static_cast<size_t>(end - buf));
}

void AppendKey(std::string* out, std::string_view key) {
  out->push_back('"');
  for (char c : key) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->append("\":");
}

std::string Truncate(std::string_view text, size_t limit = 300) {
  if (text.size() <= limit) return std::string(text);
  return std::string(text.substr(0, limit)) + "...";
}

StatusCode CodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 400:
    case 422:
      return StatusCode::kInvalidArgument;
    case 404:
      return StatusCode::kNotFound;
    case 413:
      return StatusCode::kResourceExhausted;
    case 503:
      return StatusCode::kUnavailable;
    case 504:
      return StatusCode::kDeadlineExceeded;
    default:
      return StatusCode::kInternal;
  }
}

}  // namespace

Status AppendPredictBody(const float* rows, int32_t n_rows, std::span<const InputFeature> features,
                         bool deterministic, std::optional<uint64_t> seed, std::string* out) {
  int32_t width = 0;
  for (const auto& f : features) width += f.size;
  out->append("{\"observations\":[");
  for (int32_t r = 0; r < n_rows; ++r) {
    if (r) out->push_back(',');
    out->push_back('{');
    const float* row = rows + static_cast<int64_t>(r) * width;
    int32_t column = 0;
    for (size_t i = 0; i < features.size(); ++i) {
      const InputFeature& f = features[i];
      if (i) out->push_back(',');
      AppendKey(out, f.name);
      const bool scalar = f.size == 1 && f.name != "sensors";
      if (!scalar) out->push_back('[');
      for (int32_t k = 0; k < f.size; ++k, ++column) {
        if (!std::isfinite(row[column])) {
          std::string where = "observations[";
          where.append(std::to_string(r)).append("].").append(f.name);
          if (!scalar) where.append("[").append(std::to_string(k)).append("]");
          where.append(": must be a finite number");
          return InvalidArgumentError(std::move(where));
        }
        if (k) out->push_back(',');
        AppendFloat(out, row[column]);
      }
      if (!scalar) out->push_back(']');
    }
    out->push_back('}');
  }
  out->append("],\"deterministic\":");
  out->append(deterministic ? "true" : "false");
  if (seed.has_value()) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), *seed);
    out->append(",\"seed\":");
    out->append(buf, static_cast<size_t>(end - buf));
  }
  out->push_back('}');
  return Status::Ok();
}

Result<ModelInfo> JsonReader::ParseMetadata(std::string_view body) {
  simdjson::dom::element doc;
  if (parser_.parse(body.data(), body.size()).get(doc)) {
    return InternalError("GET /metadata: not JSON: " + Truncate(body));
  }
  ModelInfo info;
  std::string_view text;
  if (!doc["modelName"].get(text)) info.name = std::string(text);
  if (!doc["version"].get(text)) info.version = std::string(text);
  simdjson::dom::array inputs;
  simdjson::dom::object actions;
  if (doc["inputs"].get(inputs) || doc["actionSpace"].get(actions)) {
    return InternalError("GET /metadata: no inputs or actionSpace: " + Truncate(body));
  }
  for (simdjson::dom::element input : inputs) {
    std::string_view name;
    int64_t size = 0;
    if (input["name"].get(name) || input["size"].get(size) || size < 1 || size > 1000000) {
      return InternalError("GET /metadata: malformed inputs entry: " + Truncate(body));
    }
    info.inputs.push_back({std::string(name), static_cast<int32_t>(size)});
    info.input_width += static_cast<int32_t>(size);
  }
  for (auto field : actions) info.actions.emplace_back(field.key);
  if (info.inputs.empty() || info.actions.empty()) {
    return InternalError("GET /metadata: the model declares no inputs or no actions");
  }
  return info;
}

Status JsonReader::ParsePredictResponse(std::string_view body,
                                        std::span<const std::string> action_names, int32_t n_rows,
                                        float* actions_out, double* server_ms) {
  simdjson::dom::element doc;
  if (parser_.parse(body.data(), body.size()).get(doc)) {
    return InternalError("POST /predict: answer is not JSON: " + Truncate(body));
  }
  simdjson::dom::array actions;
  if (doc["actions"].get(actions)) {
    return InternalError("POST /predict: answer has no actions array: " + Truncate(body));
  }
  if (actions.size() != static_cast<size_t>(n_rows)) {
    return InternalError("POST /predict: " + std::to_string(actions.size()) + " actions for " +
                         std::to_string(n_rows) + " observations");
  }
  const size_t width = action_names.size();
  size_t r = 0;
  for (simdjson::dom::element action : actions) {
    simdjson::dom::object object;
    if (action.get(object)) return InternalError("POST /predict: an action is not an object");
    size_t found = 0;
    for (auto field : object) {
      for (size_t a = 0; a < width; ++a) {
        if (field.key != action_names[a]) continue;
        double v;
        if (field.value.get(v)) {
          return InternalError("POST /predict: actions[" + std::to_string(r) + "]." +
                               action_names[a] + " is not a number");
        }
        actions_out[r * width + a] = static_cast<float>(v);
        ++found;
        break;
      }
    }
    if (found != width) {
      return InternalError("POST /predict: actions[" + std::to_string(r) +
                           "] lacks some of the model's actions: " + Truncate(body));
    }
    ++r;
  }
  double ms = 0;
  if (server_ms != nullptr) *server_ms = doc["timingMs"].get(ms) ? 0.0 : ms;
  return Status::Ok();
}

double JsonReader::OcrServerMs(std::string_view body) {
  simdjson::dom::element doc;
  double total = 0;
  if (parser_.parse(body.data(), body.size()).get(doc)) return 0;
  if (doc["timing_ms"]["total"].get(total)) return 0;
  return total;
}

Status JsonReader::ErrorFromResponse(int http_status, std::string_view body) {
  const StatusCode code = CodeForHttpStatus(http_status);
  std::string prefix = "HTTP " + std::to_string(http_status);
  simdjson::dom::element doc;
  std::string_view error, message;
  if (!parser_.parse(body.data(), body.size()).get(doc) && !doc["message"].get(message)) {
    if (!doc["error"].get(error)) prefix.append(" ").append(error);
    return Status(code, prefix + ": " + std::string(message));
  }
  return Status(code, prefix + ": " + Truncate(body));
}

}  // namespace brainstem::client
