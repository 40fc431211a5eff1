#include "transport/http/error_response.h"

#include "common/clock.h"
#include "common/json_writer.h"

namespace brainstem {

http::status HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return http::status::ok;
    case StatusCode::kInvalidArgument:
      return http::status::unprocessable_entity;
    case StatusCode::kNotFound:
      return http::status::not_found;
    case StatusCode::kUnavailable:
      return http::status::service_unavailable;
    case StatusCode::kFailedPrecondition:
      return http::status::service_unavailable;
    case StatusCode::kResourceExhausted:
      return http::status::payload_too_large;
    case StatusCode::kDeadlineExceeded:
      return http::status::gateway_timeout;
    case StatusCode::kDataLoss:
      return http::status::unprocessable_entity;
    case StatusCode::kUnimplemented:
      return http::status::not_implemented;
    case StatusCode::kInternal:
      return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

std::string_view ErrorNameFor(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
      return "VALIDATION_ERROR";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kUnavailable:
    case StatusCode::kFailedPrecondition:
      return "SERVICE_UNAVAILABLE";
    case StatusCode::kResourceExhausted:
      return "PAYLOAD_TOO_LARGE";
    case StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case StatusCode::kDataLoss:
      return "CHECKSUM_MISMATCH";
    case StatusCode::kUnimplemented:
      return "NOT_IMPLEMENTED";
    default:
      return "INFERENCE_ERROR";
  }
}

HttpResponse MakeJsonResponse(http::status status, std::string body) {
  HttpResponse response(status, 11);
  response.set(http::field::content_type, "application/json");
  response.body() = std::move(body);
  return response;
}

HttpResponse MakeErrorResponse(http::status status, std::string_view error_name,
                               const std::string& message, const std::string& request_id,
                               const std::string& details_json) {
  std::string body;
  body.reserve(256 + message.size() + details_json.size());
  body.append("{\"error\":");
  AppendJsonString(&body, error_name);
  body.append(",\"message\":");
  AppendJsonString(&body, message);
  body.append(",\"details\":{\"request_id\":");
  AppendJsonString(&body, request_id);
  if (!details_json.empty()) body.append(",").append(details_json);
  body.append("},\"timestamp\":");
  AppendJsonString(&body, Iso8601Now());
  body.append("}");
  HttpResponse response = MakeJsonResponse(status, std::move(body));
  if (status == http::status::service_unavailable) response.set(http::field::retry_after, "1");
  return response;
}

HttpResponse MakeErrorResponse(const Status& status, const std::string& request_id) {
  return MakeErrorResponse(HttpStatusFor(status.code()), ErrorNameFor(status.code()),
                           status.message(), request_id);
}

HttpResponse MakeValidationErrorResponse(const std::vector<FieldError>& errors,
                                         const std::string& request_id) {
  std::string details = "\"validation_errors\":[";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i) details.push_back(',');
    details.append("{\"field\":");
    AppendJsonString(&details, errors[i].field);
    details.append(",\"message\":");
    AppendJsonString(&details, errors[i].message);
    details.push_back('}');
  }
  details.push_back(']');
  std::string message =
      "request validation failed: " + errors.front().field + ": " + errors.front().message;
  if (errors.size() > 1) message += " (and " + std::to_string(errors.size() - 1) + " more)";
  return MakeErrorResponse(http::status::unprocessable_entity, "VALIDATION_ERROR", message,
                           request_id, details);
}

}  // namespace brainstem
