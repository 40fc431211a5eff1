#include "transport/http/carla_api.h"

#include <atomic>
#include <charconv>
#include <memory>
#include <random>

#include "transport/http/dashboard_page.h"
#include "transport/http/error_response.h"
#ifdef BRAINSTEM_HAVE_OCR
#include "transport/http/ocr_api.h"
#endif
#include "common/json_writer.h"
#include "transport/http/ocr_model_json.h"
#include "transport/http/predict_request.h"

#ifndef BRAINSTEM_GIT_SHA
#define BRAINSTEM_GIT_SHA "unknown"
#endif

namespace brainstem {
namespace {

std::string_view PathOf(const HttpRequest& request) {
  auto target = request.target();
  std::string_view path(target.data(), target.size());
  return path.substr(0, path.find('?'));
}

std::string StripV(std::string_view version) {
  if (!version.empty() && (version[0] == 'v' || version[0] == 'V')) version.remove_prefix(1);
  return std::string(version);
}

void AppendCardJson(const ModelCard& card, std::string* out) {
  out->append("{\"name\":");
  AppendJsonString(out, card.name);
  out->append(",\"version\":");
  AppendJsonString(out, card.version);
  out->append(",\"description\":");
  AppendJsonString(out, card.description);
  out->append(",\"formats\":{");
  bool first = true;
  for (const auto& [format, file] : card.files) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, ModelFormatName(format));
    out->push_back(':');
    AppendJsonString(out, file);
  }
  out->append("},\"inputs\":[");
  for (size_t i = 0; i < card.inputs.size(); ++i) {
    if (i) out->push_back(',');
    out->append("{\"name\":");
    AppendJsonString(out, card.inputs[i].name);
    out->append(",\"size\":");
    AppendJsonNumber(out, card.inputs[i].size);
    out->push_back('}');
  }
  out->append("],\"actions\":[");
  for (size_t i = 0; i < card.actions.size(); ++i) {
    if (i) out->push_back(',');
    out->append("{\"name\":");
    AppendJsonString(out, card.actions[i].name);
    out->append(",\"low\":");
    AppendJsonNumber(out, card.actions[i].low);
    out->append(",\"high\":");
    AppendJsonNumber(out, card.actions[i].high);
    out->push_back('}');
  }
  out->append("],\"stochastic\":");
  out->append(card.log_std.empty() ? "false" : "true");
  out->append(",\"artifact_hashes\":");
  AppendJsonStringMap(out, card.artifact_hashes);
  out->append(",\"info\":");
  AppendJsonStringMap(out, card.info);
  out->append("}");
}

HttpResponse MethodNotAllowed(std::string_view allowed, const std::string& request_id) {
  HttpResponse response = MakeErrorResponse(
      http::status::method_not_allowed, "METHOD_NOT_ALLOWED",
      "method not allowed here (allowed: " + std::string(allowed) + ")", request_id);
  response.set(http::field::allow, std::string(allowed));
  return response;
}

}  // namespace

CarlaApi::CarlaApi(const Config* config, LoadedModel* model, ServerMetrics* metrics)
    : config_(config),
      model_(model),
      metrics_(metrics),
      git_(BRAINSTEM_GIT_SHA),
      status_(config, model, metrics) {
  std::string& m = metadata_json_;
  m.append("{\"modelName\":");
  AppendJsonString(&m, model_->name);
  m.append(",\"version\":");
  AppendJsonString(&m, model_->version);
  m.append(",\"device\":");
  AppendJsonString(&m, DeviceName(model_->device));
  m.append(",\"precision\":");
  AppendJsonString(&m, PrecisionName(model_->precision));
  m.append(",\"format\":");
  AppendJsonString(&m, ModelFormatName(model_->format));
  m.append(",\"inputShape\":[");
  AppendJsonNumber(&m, model_->io.input_width());
  m.append("],\"inputs\":[");
  for (size_t i = 0; i < model_->io.features().size(); ++i) {
    if (i) m.push_back(',');
    m.append("{\"name\":");
    AppendJsonString(&m, model_->io.features()[i].name);
    m.append(",\"size\":");
    AppendJsonNumber(&m, model_->io.features()[i].size);
    m.push_back('}');
  }
  m.append("],\"actionSpace\":{");
  for (size_t i = 0; i < model_->io.actions().size(); ++i) {
    const ActionSpec& a = model_->io.actions()[i];
    if (i) m.push_back(',');
    AppendJsonString(&m, a.name);
    m.append(":{\"low\":");
    AppendJsonNumber(&m, a.low);
    m.append(",\"high\":");
    AppendJsonNumber(&m, a.high);
    m.push_back('}');
  }
  m.append("},\"stochastic\":");
  m.append(model_->io.stochastic() ? "true" : "false");
  m.append(",\"maxBatchSize\":");
  AppendJsonNumber(&m, config_->scheduler.max_batch_size);
  m.append(",\"instances\":");
  AppendJsonNumber(&m, static_cast<int64_t>(config_->scheduler.instances));
  m.append("}");
}

HttpResponse CarlaApi::EarlyError(http::status status, const std::string& message,
                                  const std::string& request_id) {
  std::string_view name =
      status == http::status::payload_too_large ? "PAYLOAD_TOO_LARGE" : "BAD_REQUEST";
  return MakeErrorResponse(status, name, message, request_id);
}

void CarlaApi::Handle(HttpRequest&& request, Responder responder) {
  const std::string_view path = PathOf(request);
  const http::verb method = request.method();
  if (method == http::verb::options) {
    responder.set_route("OPTIONS");
    Preflight(request, responder);
    return;
  }
  struct Route {
    std::string_view path;
    http::verb method;
  };
  static constexpr Route kRoutes[] = {
      {"/predict", http::verb::post},     {"/healthz", http::verb::get},
      {"/metadata", http::verb::get},     {"/warmup", http::verb::post},
      {"/versions", http::verb::get},     {"/metrics", http::verb::get},
      {"/openapi.json", http::verb::get}, {"/v1/status", http::verb::get},
      {"/dashboard", http::verb::get},    {"/v1/ocr", http::verb::post},
      {"/v1/ocr/find", http::verb::post}, {"/v1/ocr/info", http::verb::get},
  };
  for (const Route& route : kRoutes) {
    if (route.path != path) continue;
    responder.set_route(std::string(route.path));
    if (method != route.method &&
        !(method == http::verb::head && route.method == http::verb::get)) {
      responder.Send(MethodNotAllowed(
          route.method == http::verb::post ? "POST, OPTIONS" : "GET, HEAD, OPTIONS",
          responder.request_id()));
      return;
    }
    if (path == "/predict") return Predict(std::move(request), responder);
    if (path == "/healthz") return Healthz(responder);
    if (path == "/metadata") return Metadata(responder);
    if (path == "/warmup") return Warmup(std::move(request), responder);
    if (path == "/versions") return Versions(responder);
    if (path == "/metrics") return Metrics(responder);
    if (path == "/v1/status") return StatusRoute(request, responder);
    if (path == "/dashboard") return Dashboard(responder);
    if (path.starts_with("/v1/ocr")) return Ocr(path, std::move(request), responder);
    return OpenApi(responder);
  }
  responder.set_route("unknown");
  responder.Send(
      MakeErrorResponse(http::status::not_found, "NOT_FOUND",
                        "no route " + std::string(path) +
                            " (routes: /healthz, /metadata, /predict, /warmup, "
                            "/versions, /metrics, /openapi.json, /v1/status, /dashboard, "
                            "/v1/ocr, /v1/ocr/find, /v1/ocr/info)",
                        responder.request_id()));
}

void CarlaApi::Ocr(std::string_view path, HttpRequest&& request, Responder& responder) {
#ifdef BRAINSTEM_HAVE_OCR
  if (ocr_ != nullptr) {
    if (path == "/v1/ocr") return ocr_->Ocr(std::move(request), responder);
    if (path == "/v1/ocr/find") return ocr_->Find(std::move(request), responder);
    return ocr_->Info(responder);
  }
#else
  (void)request;
#endif
  (void)path;
  responder.Send(MakeErrorResponse(http::status::service_unavailable, "SERVICE_UNAVAILABLE",
                                   "OCR is not enabled on this server (ocr.enabled is false, or "
                                   "brainstem was built without Tesseract: BRAINSTEM_WITH_OCR)",
                                   responder.request_id()));
}

void CarlaApi::Healthz(Responder& responder) {
  std::string body = "{\"status\":\"ok\",\"version\":";
  AppendJsonString(&body, model_->version);
  body.append(",\"git\":");
  AppendJsonString(&body, git_);
  body.append(",\"device\":");
  AppendJsonString(&body, DeviceName(model_->device));
  body.append(",\"model\":");
  AppendJsonString(&body, model_->name);
  body.append(",\"format\":");
  AppendJsonString(&body, ModelFormatName(model_->format));
  body.append(",\"timestamp\":");
  AppendJsonString(&body, Iso8601Now());
  body.append("}");
  responder.Send(MakeJsonResponse(http::status::ok, std::move(body)));
}

void CarlaApi::Metadata(Responder& responder) {
  responder.Send(MakeJsonResponse(http::status::ok, metadata_json_));
}

void CarlaApi::Predict(HttpRequest&& request, Responder& responder) {
  thread_local PredictParser parser;
  PredictRequest parsed = parser.Parse(request.body(), model_->io);
  if (!parsed.errors.empty()) {
    responder.Send(MakeValidationErrorResponse(parsed.errors, responder.request_id()));
    return;
  }
  if (parsed.version.has_value() && StripV(*parsed.version) != model_->version) {
    responder.Send(MakeErrorResponse(
        http::status::not_found, "NOT_FOUND",
        "version '" + *parsed.version + "' is not served here (serving " + model_->version +
            "; see GET /versions, and select with MODEL_VERSION at startup)",
        responder.request_id(), "\"field\":\"version\""));
    return;
  }
  auto infer = std::make_unique<InferRequest>();
  infer->inputs = std::move(parsed.inputs);
  infer->batch = parsed.batch;
  // A client may shorten or lengthen its own deadline with X-Request-Timeout-Ms.
  int64_t timeout_ms = config_->server.request_timeout_ms;
  if (auto header = request["X-Request-Timeout-Ms"]; !header.empty()) {
    int64_t value = 0;
    auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), value);
    if (ec != std::errc() || end != header.data() + header.size() || value < 1 || value > 3600000) {
      responder.Send(MakeValidationErrorResponse(
          {{"X-Request-Timeout-Ms", "must be an integer number of milliseconds in [1, 3600000]"}},
          responder.request_id()));
      return;
    }
    timeout_ms = value;
  }
  if (timeout_ms > 0) infer->deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const bool deterministic = parsed.deterministic;
  uint64_t seed = 0;
  if (!deterministic) seed = parsed.seed.has_value() ? *parsed.seed : std::random_device{}();
  infer->done = [this, responder, deterministic, seed](InferResult&& result) {
    if (!result.status.ok()) {
      responder.Send(MakeErrorResponse(result.status, responder.request_id()));
      return;
    }
    const PolicyIo& io = model_->io;
    const size_t width = static_cast<size_t>(io.output_width());
    const size_t rows = result.outputs.size() / width;
    std::mt19937_64 rng(seed);
    float actions[64];
    std::string body;
    body.reserve(64 + rows * 24 * width);
    body.append("{\"actions\":[");
    for (size_t r = 0; r < rows; ++r) {
      Status s = io.Decode(result.outputs.subspan(r * width, width), deterministic, &rng,
                           std::span<float>(actions, width));
      if (!s.ok()) {
        metrics_->inference_errors_total.fetch_add(1, std::memory_order_relaxed);
        responder.Send(MakeErrorResponse(s, responder.request_id()));
        return;
      }
      if (r) body.push_back(',');
      body.push_back('{');
      for (size_t a = 0; a < width; ++a) {
        if (a) body.push_back(',');
        AppendJsonString(&body, io.actions()[a].name);
        body.push_back(':');
        AppendJsonNumber(&body, actions[a]);
      }
      body.push_back('}');
    }
    body.append("],\"version\":");
    AppendJsonString(&body, model_->version);
    body.append(",\"timingMs\":");
    AppendJsonNumber(&body, MicrosBetween(responder.started(), Clock::now()) / 1e3);
    body.append(",\"deterministic\":");
    body.append(deterministic ? "true" : "false");
    if (!deterministic) {
      body.append(",\"seed\":");
      AppendJsonNumber(&body, seed);
    }
    body.push_back('}');
    responder.Send(MakeJsonResponse(http::status::ok, std::move(body)));
  };
  Status submitted = model_->scheduler->Submit(std::move(infer));
  if (!submitted.ok()) responder.Send(MakeErrorResponse(submitted, responder.request_id()));
}

void CarlaApi::Warmup(HttpRequest&& request, Responder& responder) {
  (void)request;
  // Runs a batch-1 call and a max-batch call through the scheduler, like real traffic.
  struct State {
    std::atomic<int> remaining{2};
    std::atomic<bool> failed{false};
    std::string error;
    TimePoint start = Clock::now();
  };
  auto state = std::make_shared<State>();
  const int64_t width = model_->scheduler->input_width();
  for (int64_t batch : {int64_t{1}, config_->scheduler.max_batch_size}) {
    auto infer = std::make_unique<InferRequest>();
    infer->batch = batch;
    infer->inputs.assign(static_cast<size_t>(batch * width), 0.0f);
    infer->done = [state, responder](InferResult&& result) {
      if (!result.status.ok() && !state->failed.exchange(true)) {
        responder.Send(MakeErrorResponse(result.status, responder.request_id()));
      }
      if (state->remaining.fetch_sub(1) == 1 && !state->failed.load()) {
        std::string body = "{\"status\":\"ok\",\"timingMs\":";
        AppendJsonNumber(&body, MicrosBetween(state->start, Clock::now()) / 1e3);
        body.append("}");
        responder.Send(MakeJsonResponse(http::status::ok, std::move(body)));
      }
    };
    Status s = model_->scheduler->Submit(std::move(infer));
    if (!s.ok()) {
      if (!state->failed.exchange(true)) {
        responder.Send(MakeErrorResponse(s, responder.request_id()));
      }
      return;
    }
  }
}

void CarlaApi::Versions(Responder& responder) {
  // Rescanned on every call so that versions added while serving show up.
  Result<Repository> repository = Repository::Scan(config_->model.artifact_dir);
  if (!repository.ok()) {
    responder.Send(MakeErrorResponse(repository.status(), responder.request_id()));
    return;
  }
  std::string body = "{\"model\":";
  AppendJsonString(&body, model_->name);
  body.append(",\"current\":");
  AppendJsonString(&body, model_->version);
  body.append(",\"versions\":[");
  bool first = true;
  for (const VersionEntry& entry : repository->Versions(model_->name)) {
    if (!first) body.push_back(',');
    first = false;
    const std::string version = entry.version.ToString();
    body.append("{\"version\":");
    AppendJsonString(&body, version);
    body.append(",\"stable\":");
    body.append(entry.version.is_prerelease() ? "false" : "true");
    body.append(",\"current\":");
    body.append(version == model_->version ? "true" : "false");
    body.append(",\"path\":");
    AppendJsonString(&body, entry.dir.filename().string());
    if (entry.card.ok()) {
      body.append(",\"card\":");
      AppendCardJson(*entry.card, &body);
    } else {
      body.append(",\"error\":");
      AppendJsonString(&body, entry.card.status().message());
    }
    body.push_back('}');
  }
  body.append("]");
  AppendOcrVersions(*repository, &body);
  body.append("}");
  responder.Send(MakeJsonResponse(http::status::ok, std::move(body)));
}

void CarlaApi::AppendOcrVersions(const Repository& repository, std::string* body) const {
  // The policy fields above are the CarlaRL schema and stay as they are; the OCR model is one
  // extra object: the model the server runs (or would run: ocr.model) and every version.
  const bool loaded = ocr_model_ != nullptr && ocr_model_->card.has_value();
  const std::string name = loaded ? ocr_model_->name : config_->ocr.model;
  body->append(",\"ocr\":{\"name\":");
  AppendJsonString(body, name);
  body->append(",\"loaded\":");
  if (loaded) {
    AppendJsonString(body, ocr_model_->version);
  } else {
    body->append("null");
  }
  body->append(",\"hash_verified\":");
  body->append(loaded && ocr_model_->hash_verified ? "true" : "false");
  body->append(",\"versions\":[");
  bool first = true;
  for (const VersionEntry& entry : repository.Versions(name)) {
    if (entry.kind != CardKind::kOcr) continue;
    if (!first) body->push_back(',');
    first = false;
    const std::string version = entry.version.ToString();
    body->append("{\"version\":");
    AppendJsonString(body, version);
    body->append(",\"stable\":");
    body->append(entry.version.is_prerelease() ? "false" : "true");
    body->append(",\"current\":");
    body->append(loaded && version == ocr_model_->version ? "true" : "false");
    body->append(",\"path\":");
    AppendJsonString(body, entry.dir.filename().string());
    if (entry.ocr_card.ok()) {
      body->append(",\"card\":");
      AppendOcrCardJson(*entry.ocr_card, body);
    } else {
      body->append(",\"error\":");
      AppendJsonString(body, entry.ocr_card.status().message());
    }
    body->push_back('}');
  }
  body->append("]}");
}

void CarlaApi::Metrics(Responder& responder) {
  HttpResponse response(http::status::ok, 11);
  response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  response.body() = metrics_->RenderPrometheus(model_->name, model_->version);
  responder.Send(std::move(response));
}

void CarlaApi::StatusRoute(const HttpRequest& request, Responder& responder) {
  // ?window=S picks how far back rates and recent percentiles look (monitor passes its
  // interval); anything unparsable keeps the default.
  double window = 5.0;
  auto target = request.target();
  std::string_view query(target.data(), target.size());
  if (size_t q = query.find('?'); q != std::string_view::npos) {
    query.remove_prefix(q + 1);
    for (size_t start = 0; start < query.size();) {
      size_t end = query.find('&', start);
      if (end == std::string_view::npos) end = query.size();
      std::string_view pair = query.substr(start, end - start);
      if (pair.rfind("window=", 0) == 0) {
        std::string_view text = pair.substr(7);
        double value = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec == std::errc() && ptr == text.data() + text.size()) window = value;
      }
      start = end + 1;
    }
  }
  HttpResponse response = MakeJsonResponse(http::status::ok, status_.Render(window));
  response.set(http::field::cache_control, "no-store");
  responder.Send(std::move(response));
}

void CarlaApi::Dashboard(Responder& responder) {
  HttpResponse response(http::status::ok, 11);
  response.set(http::field::content_type, "text/html; charset=utf-8");
  response.set(http::field::cache_control, "no-cache");
  response.body() = DashboardPage();
  responder.Send(std::move(response));
}

void CarlaApi::OpenApi(Responder& responder) {
  responder.Send(MakeJsonResponse(http::status::ok, OpenApiDocument()));
}

void CarlaApi::Preflight(const HttpRequest& request, Responder& responder) {
  (void)request;
  HttpResponse response(http::status::no_content, 11);
  response.set(http::field::allow, "GET, HEAD, POST, OPTIONS");
  if (config_->server.cors_enabled) {
    response.set(http::field::access_control_allow_methods, "GET, HEAD, POST, OPTIONS");
    response.set(http::field::access_control_allow_headers,
                 "Content-Type, X-Request-ID, X-Request-Timeout-Ms");
    response.set(http::field::access_control_max_age, "600");
  }
  responder.Send(std::move(response));
}

}  // namespace brainstem
