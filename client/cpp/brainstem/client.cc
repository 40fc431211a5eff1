#include "brainstem/client.h"

#include "brainstem/http_client.h"
#include "brainstem/shm_client.h"
#include "brainstem/url.h"

namespace brainstem::client {

Result<std::vector<Action>> Client::Predict(std::span<const Observation> observations,
                                            const PredictOptions& options) {
  const auto& names = output_names();
  int throttle = -1, brake = -1, steer = -1;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "throttle") throttle = static_cast<int>(i);
    if (names[i] == "brake") brake = static_cast<int>(i);
    if (names[i] == "steer") steer = static_cast<int>(i);
  }
  if (throttle < 0 || brake < 0 || steer < 0) {
    return FailedPreconditionError(
        "predict: the model's actions are not throttle, brake, "
        "steer; use PredictRaw");
  }
  const auto& features = input_features();
  const int32_t width = input_width();
  const int32_t n = static_cast<int32_t>(observations.size());
  if (n < 1) return InvalidArgumentError("predict: need at least one observation");
  std::vector<float> rows(static_cast<size_t>(n) * static_cast<size_t>(width));
  for (int32_t r = 0; r < n; ++r) {
    const Observation& o = observations[static_cast<size_t>(r)];
    float* row = rows.data() + static_cast<size_t>(r) * static_cast<size_t>(width);
    int32_t column = 0;
    for (const InputFeature& f : features) {
      if (f.name == "speed" && f.size == 1) {
        row[column] = o.speed;
      } else if (f.name == "steering" && f.size == 1) {
        row[column] = o.steering;
      } else if (f.name == "sensors") {
        if (static_cast<int32_t>(o.sensors.size()) != f.size) {
          return InvalidArgumentError("observations[" + std::to_string(r) +
                                      "].sensors: must hold exactly " + std::to_string(f.size) +
                                      " values for this model (got " +
                                      std::to_string(o.sensors.size()) + ")");
        }
        std::copy(o.sensors.begin(), o.sensors.end(), row + column);
      } else {
        return FailedPreconditionError("predict: the model's input '" + f.name +
                                       "' is not part of the CarlaRL observation; use "
                                       "PredictRaw");
      }
      column += f.size;
    }
  }
  const size_t out_width = names.size();
  std::vector<float> out(static_cast<size_t>(n) * out_width);
  RETURN_IF_ERROR(PredictRaw(rows.data(), n, out.data(), options));
  std::vector<Action> actions(static_cast<size_t>(n));
  for (size_t r = 0; r < actions.size(); ++r) {
    const float* a = out.data() + r * out_width;
    actions[r] = Action{a[throttle], a[brake], a[steer]};
  }
  return actions;
}

Result<std::unique_ptr<Client>> Connect(std::string_view url) {
  ASSIGN_OR_RETURN(Endpoint endpoint, ParseUrl(url));
  if (endpoint.kind == Endpoint::Kind::kHttp) {
    ASSIGN_OR_RETURN(auto client, HttpClient::Create(endpoint.host, endpoint.port));
    return std::unique_ptr<Client>(std::move(client));
  }
  ASSIGN_OR_RETURN(auto client, ShmClient::Create(endpoint));
  return std::unique_ptr<Client>(std::move(client));
}

}  // namespace brainstem::client
