// OcrApi: the HTTP routes of screen perception (docs/perception.md), delegated to by CarlaApi:
//   POST /v1/ocr        body: a PNG (Content-Type image/png) or raw pixels
//                       (application/octet-stream with X-Width, X-Height, X-Stride, X-Format,
//                       optional X-Checksum = xxh3-64 hex of the body); query: words=0|1,
//                       region=x,y,w,h (text inside a rectangle), stream=<name> (which cache)
//   POST /v1/ocr/find   same body; query: query=<text> (required), regex=0|1, max=N
//   GET  /v1/ocr/info   engine, language, workers, limits, the loaded OCR model and its card
// Bodies are decoded on the I/O thread (PNG) or used in place (raw: the request body is the
// frame, no copy); recognition runs on the OCR worker pool and the response is sent from there.
// Thread-safe: every method may run on every I/O thread at once.
#pragma once

#include <cstdint>
#include <string>

#include "engine/ocr_model.h"
#include "perception/ocr_service.h"
#include "telemetry/server_metrics.h"
#include "transport/http/http_server.h"

namespace brainstem {

class OcrApi {
 public:
  // Pointers are borrowed and must outlive the OcrApi. `model` (its card, hash check and the
  // effective language) is reported by /v1/ocr/info.
  OcrApi(perception::OcrService* service, ServerMetrics* metrics, int64_t default_timeout_ms,
         const OcrModel* model);

  void Ocr(HttpRequest&& request, Responder& responder);
  void Find(HttpRequest&& request, Responder& responder);
  void Info(Responder& responder);

 private:
  void Run(HttpRequest&& request, Responder& responder, bool find);

  perception::OcrService* const service_;
  ServerMetrics* const metrics_;
  const int64_t default_timeout_ms_;
  const OcrModel* const model_;
};

}  // namespace brainstem
