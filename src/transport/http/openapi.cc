// The OpenAPI 3.0 description of the CarlaRL-compatible API, served at /openapi.json.
#include <string>

#include "transport/http/carla_api.h"

namespace brainstem {

const std::string& OpenApiDocument() {
  static const std::string kDocument = R"json({
"openapi": "3.0.3",
"info": {"title": "brainstem Policy-as-a-Service", "version": "1.0.0",
  "description": "CarlaRL-compatible policy serving: observation in, action out."},
"paths": {
  "/healthz": {"get": {"summary": "Liveness and identity",
    "responses": {"200": {"description": "Serving", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}}},
  "/metadata": {"get": {"summary": "Model name, version, device, input shape and action space",
    "responses": {"200": {"description": "Metadata", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Metadata"}}}}}}},
  "/predict": {"post": {"summary": "Actions for 1 to 1000 observations",
    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}}},
    "responses": {
      "200": {"description": "Actions in observation order", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}}}},
      "404": {"description": "Requested version not served", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "413": {"description": "Body larger than server.max_body_bytes", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "422": {"description": "VALIDATION_ERROR; details.validation_errors lists each field", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "500": {"description": "INFERENCE_ERROR", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "503": {"description": "SERVICE_UNAVAILABLE (queue full); see Retry-After", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "504": {"description": "DEADLINE_EXCEEDED", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
  "/warmup": {"post": {"summary": "Run the model once at batch 1 and at the largest batch",
    "responses": {"200": {"description": "Warmed up"}}}},
  "/versions": {"get": {"summary": "Every policy version, which is current, its card; and the OCR model (ocr)",
    "responses": {"200": {"description": "Versions"}}}},
  "/metrics": {"get": {"summary": "Prometheus text exposition",
    "responses": {"200": {"description": "Metrics", "content": {"text/plain": {}}}}}},
  "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"}}}}
},
"components": {"schemas": {
  "Observation": {"type": "object", "required": ["speed", "steering", "sensors"],
    "properties": {
      "speed": {"type": "number", "minimum": 0, "maximum": 200},
      "steering": {"type": "number", "minimum": -1, "maximum": 1},
      "sensors": {"type": "array", "minItems": 1, "maxItems": 10000,
        "items": {"type": "number", "minimum": -1000, "maximum": 1000},
        "description": "Exactly as many values as the model's card declares (see /metadata)"}}},
  "PredictRequest": {"type": "object", "required": ["observations"],
    "properties": {
      "observations": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/components/schemas/Observation"}},
      "deterministic": {"type": "boolean", "default": true},
      "seed": {"type": "integer", "minimum": 0, "description": "Makes deterministic:false sampling reproducible"},
      "version": {"type": "string", "description": "Optional: fail unless this version is served"}}},
  "Action": {"type": "object", "properties": {
      "throttle": {"type": "number", "minimum": 0, "maximum": 1},
      "brake": {"type": "number", "minimum": 0, "maximum": 1},
      "steer": {"type": "number", "minimum": -1, "maximum": 1}}},
  "PredictResponse": {"type": "object", "properties": {
      "actions": {"type": "array", "items": {"$ref": "#/components/schemas/Action"}},
      "version": {"type": "string"}, "timingMs": {"type": "number"},
      "deterministic": {"type": "boolean"}, "seed": {"type": "integer"}}},
  "Health": {"type": "object", "properties": {"status": {"type": "string"}, "version": {"type": "string"},
      "git": {"type": "string"}, "device": {"type": "string"}, "timestamp": {"type": "string"}}},
  "Metadata": {"type": "object", "properties": {"modelName": {"type": "string"}, "version": {"type": "string"},
      "device": {"type": "string"}, "inputShape": {"type": "array", "items": {"type": "integer"}},
      "actionSpace": {"type": "object"}}},
  "Error": {"type": "object", "required": ["error", "message", "details", "timestamp"],
    "properties": {"error": {"type": "string", "enum": ["VALIDATION_ERROR", "NOT_FOUND", "METHOD_NOT_ALLOWED",
        "PAYLOAD_TOO_LARGE", "BAD_REQUEST", "SERVICE_UNAVAILABLE", "DEADLINE_EXCEEDED", "INFERENCE_ERROR"]},
      "message": {"type": "string"},
      "details": {"type": "object", "properties": {"request_id": {"type": "string"},
        "validation_errors": {"type": "array", "items": {"type": "object",
          "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}},
      "timestamp": {"type": "string", "format": "date-time"}}}
}}
})json";
  return kDocument;
}

}  // namespace brainstem
