// CarlaApi: the CarlaRL Policy-as-a-Service HTTP API on top of a loaded model:
//   GET /healthz, GET /metadata, POST /predict, POST /warmup, GET /versions, GET /metrics,
//   GET /openapi.json, GET /v1/status (StatusApi), GET /dashboard (the live dashboard
//   page), OPTIONS (CORS preflight). It maps the wire schema onto the model's
//   columns (via PolicyIo), hands work to the scheduler and writes responses; it owns no
//   threads and never blocks an I/O thread on inference.
// Thread-safe: Handle may run on every I/O thread at once.
#pragma once

#include <string>

#include "config/config.h"
#include "engine/model_loader.h"
#include "engine/ocr_model.h"
#include "repository/repository.h"
#include "telemetry/server_metrics.h"
#include "transport/http/http_server.h"
#include "transport/http/status_api.h"

namespace brainstem {

class OcrApi;  // transport/http/ocr_api.h (screen perception, issue #4)

class CarlaApi {
 public:
  // All pointers must outlive the CarlaApi.
  CarlaApi(const Config* config, LoadedModel* model, ServerMetrics* metrics);

  // Start-up facts for GET /v1/status (pid, shm socket, placement plan).
  // REQUIRES: called before the server serves.
  void SetStatusInfo(StatusInfo info) { status_.SetInfo(std::move(info)); }

  void Handle(HttpRequest&& request, Responder responder);

  // Routes /v1/ocr, /v1/ocr/find and /v1/ocr/info to `ocr` (borrowed; must outlive this).
  // Without one (OCR not built or ocr.enabled false) those routes answer 503.
  void set_ocr(OcrApi* ocr) { ocr_ = ocr; }

  // The OCR model resolved at start-up (borrowed; must outlive this), listed by /versions
  // under "ocr". Null: OCR is off, and /versions lists the configured ocr.model unloaded.
  // REQUIRES: called before the server serves.
  void set_ocr_model(const OcrModel* model) { ocr_model_ = model; }

  // Answers requests the server rejected before routing (413, 400).
  static HttpResponse EarlyError(http::status status, const std::string& message,
                                 const std::string& request_id);

 private:
  void Healthz(Responder& responder);
  void Metadata(Responder& responder);
  void Predict(HttpRequest&& request, Responder& responder);
  void Warmup(HttpRequest&& request, Responder& responder);
  void Versions(Responder& responder);
  void AppendOcrVersions(const Repository& repository, std::string* body) const;
  void Metrics(Responder& responder);
  void Ocr(std::string_view path, HttpRequest&& request, Responder& responder);
  void OpenApi(Responder& responder);
  void Preflight(const HttpRequest& request, Responder& responder);
  void StatusRoute(const HttpRequest& request, Responder& responder);
  void Dashboard(Responder& responder);

  const Config* config_;
  LoadedModel* model_;
  ServerMetrics* metrics_;
  OcrApi* ocr_ = nullptr;
  const OcrModel* ocr_model_ = nullptr;
  const std::string git_;
  std::string metadata_json_;  // built once: nothing in it changes while serving
  StatusApi status_;
};

// The OpenAPI 3 document served at /openapi.json.
const std::string& OpenApiDocument();

}  // namespace brainstem
