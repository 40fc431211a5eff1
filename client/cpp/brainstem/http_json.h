// The JSON the HTTP client writes and reads: the /predict request body built with
// std::to_chars (shortest round-trip floats, so the server parses exactly the float32 values a
// shm client would hand over), and the /metadata, /predict and error bodies parsed with
// simdjson. Separate from the socket code so it can be tested without a server.
// Thread-compatible: a JsonReader owns a simdjson parser; use one per thread.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "brainstem/client.h"
#include "common/result.h"

namespace brainstem::client {

struct ModelInfo {
  std::string name;
  std::string version;
  std::vector<InputFeature> inputs;
  std::vector<std::string> actions;
  int32_t input_width = 0;
};

// Appends {"observations":[...],"deterministic":..[,"seed":N]} to `out`. Features of size 1
// (other than "sensors") are written as numbers, the others as arrays.
// Errors: kInvalidArgument for a non-finite value (JSON has no form for it), naming its place.
// REQUIRES: rows holds n_rows * (sum of feature sizes) values.
Status AppendPredictBody(const float* rows, int32_t n_rows, std::span<const InputFeature> features,
                         bool deterministic, std::optional<uint64_t> seed, std::string* out);

class JsonReader {
 public:
  // GET /metadata's body. Errors: kInternal when fields are missing or of the wrong type.
  Result<ModelInfo> ParseMetadata(std::string_view body);

  // A 200 answer of /predict: writes n_rows * action_names.size() values to `actions_out`,
  // columns by name. `server_ms` receives timingMs when present.
  Status ParsePredictResponse(std::string_view body, std::span<const std::string> action_names,
                              int32_t n_rows, float* actions_out, double* server_ms);

  // The pipeline's own time in a 200 answer of /v1/ocr or /v1/ocr/find (timing_ms.total), in
  // milliseconds; 0 when absent.
  double OcrServerMs(std::string_view body);

  // A non-200 answer: the Status whose code matches the HTTP status (422/400 invalid argument,
  // 404 not found, 413 resource exhausted, 503 unavailable, 504 deadline, else internal) and
  // whose message is the server's "message" (or the raw body when it is not the error JSON).
  Status ErrorFromResponse(int http_status, std::string_view body);

 private:
  simdjson::dom::parser parser_;
};

}  // namespace brainstem::client
