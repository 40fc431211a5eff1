// The one place where Status codes become HTTP statuses and CarlaRL error bodies:
//   {"error":"VALIDATION_ERROR","message":..,"details":{"request_id":..,..},"timestamp":..}
// invalid argument -> 422 VALIDATION_ERROR, not found -> 404 NOT_FOUND, unavailable -> 503
// SERVICE_UNAVAILABLE (+ Retry-After), resource exhausted -> 413 PAYLOAD_TOO_LARGE, deadline ->
// 504 DEADLINE_EXCEEDED, everything else -> 500 INFERENCE_ERROR.
// Thread-safe: free functions.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "transport/http/http_server.h"
#include "transport/http/predict_request.h"

namespace brainstem {

http::status HttpStatusFor(StatusCode code);
std::string_view ErrorNameFor(StatusCode code);

// `details_json` is extra members for "details" without braces (e.g. `"model":"x"`), or empty.
HttpResponse MakeErrorResponse(http::status status, std::string_view error_name,
                               const std::string& message, const std::string& request_id,
                               const std::string& details_json = "");
HttpResponse MakeErrorResponse(const Status& status, const std::string& request_id);
// 422 with details.validation_errors = [{field, message}, ...].
HttpResponse MakeValidationErrorResponse(const std::vector<FieldError>& errors,
                                         const std::string& request_id);

HttpResponse MakeJsonResponse(http::status status, std::string body);

}  // namespace brainstem
