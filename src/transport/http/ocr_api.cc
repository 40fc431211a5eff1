#include "transport/http/ocr_api.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <charconv>
#include <cstdlib>
#include <map>
#include <memory>

#include "common/json_writer.h"
#include "perception/ocr_json.h"
#include "transport/http/error_response.h"
#include "transport/http/ocr_model_json.h"

namespace brainstem {
namespace {

using perception::FrameView;
using perception::OcrOutcome;
using perception::PixelFormat;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() + 0 && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::map<std::string, std::string> QueryParams(const HttpRequest& request) {
  std::map<std::string, std::string> params;
  std::string_view target(request.target().data(), request.target().size());
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return params;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    const size_t eq = pair.find('=');
    params[PercentDecode(pair.substr(0, eq))] =
        eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return params;
}

Result<uint64_t> ParseU64(std::string_view text, const std::string& name, int base = 10) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return InvalidArgumentError(name + ": '" + std::string(text) + "' is not a " +
                                (base == 16 ? "hexadecimal" : "non-negative") + " integer");
  }
  return value;
}

bool Truthy(const std::string& v) { return v == "1" || v == "true" || v == "yes"; }

Result<OcrBox> ParseRegion(const std::string& text) {
  OcrBox box;
  int* fields[] = {&box.x, &box.y, &box.w, &box.h};
  std::string_view rest = text;
  for (int i = 0; i < 4; ++i) {
    const size_t comma = rest.find(',');
    if ((i < 3) == (comma == std::string_view::npos)) {
      return InvalidArgumentError("region: '" + text + "' is not x,y,w,h");
    }
    ASSIGN_OR_RETURN(uint64_t v, ParseU64(rest.substr(0, comma), "region"));
    if (v > perception::kMaxDimension) return InvalidArgumentError("region: out of range");
    *fields[i] = static_cast<int>(v);
    if (comma != std::string_view::npos) rest.remove_prefix(comma + 1);
  }
  return box;
}

}  // namespace

OcrApi::OcrApi(perception::OcrService* service, ServerMetrics* metrics, int64_t default_timeout_ms,
               const OcrModel* model)
    : service_(service),
      metrics_(metrics),
      default_timeout_ms_(default_timeout_ms),
      model_(model) {}

void OcrApi::Info(Responder& responder) {
  const auto& o = service_->options();
  std::string body = "{\"model\":\"ocr\",\"engine\":";
  perception::AppendJsonString(&body, service_->engine_version());
  body.append(",\"language\":");
  perception::AppendJsonString(&body, model_->effective.language);
  body.append(",\"workers\":" + std::to_string(o.workers));
  body.append(",\"queue_capacity\":" + std::to_string(o.queue_capacity));
  body.append(",\"tile_size\":" + std::to_string(o.pipeline.tile_size));
  body.append(",\"psm\":" + std::to_string(o.pipeline.whole_psm));
  body.append(",\"segmentation\":");
  body.append(o.pipeline.xy_cut ? "\"xycut\"" : "\"tesseract\"");
  body.append(",\"polarity_fix\":");
  body.append(o.pipeline.polarity_fix ? "true" : "false");
  body.append(",\"line_width_scale\":");
  AppendJsonNumber(&body, o.pipeline.line_width_scale);
  body.append(",\"max_image_pixels\":" + std::to_string(o.max_image_pixels));
  const char* omp = std::getenv("OMP_THREAD_LIMIT");
  body.append(",\"omp_thread_limit\":");
  perception::AppendJsonString(&body, omp != nullptr ? omp : "");
  // Tesseract's OpenMP regions run by the plugin itself (tesseract_engine.cc); 0 after OCR
  // ran would mean libgomp took them (and its per-region system call is back).
  body.append(",\"openmp_serial_regions\":");
  AppendJsonNumber(&body, service_->serial_openmp_regions());
  body.append(",\"formats\":[\"image/png\",\"bgra8\",\"rgba8\",\"rgb8\",\"gray8\"]");
  // The model card behind these settings; ocr.* keys set explicitly override its values.
  body.append(",\"ocr_model\":");
  AppendLoadedOcrModelJson(*model_, &body);
  body.append("}");
  responder.Send(MakeJsonResponse(http::status::ok, std::move(body)));
}

void OcrApi::Ocr(HttpRequest&& request, Responder& responder) {
  Run(std::move(request), responder, false);
}

void OcrApi::Find(HttpRequest&& request, Responder& responder) {
  Run(std::move(request), responder, true);
}

void OcrApi::Run(HttpRequest&& request, Responder& responder, bool find) {
  auto bad = [&](http::status status, std::string_view name, const std::string& message) {
    metrics_->ocr_bad_inputs_total.fetch_add(1, std::memory_order_relaxed);
    responder.Send(MakeErrorResponse(status, name, message, responder.request_id()));
  };
  const auto params = QueryParams(request);
  auto param = [&](const char* key) -> std::string {
    auto it = params.find(key);
    return it == params.end() ? std::string() : it->second;
  };
  const std::string query = param("query");
  const bool regex = Truthy(param("regex"));
  if (find && query.empty()) {
    return bad(http::status::unprocessable_entity, "VALIDATION_ERROR",
               "query: missing (POST /v1/ocr/find?query=<text>[&regex=1])");
  }
  int max_results = 20;
  if (std::string m = param("max"); !m.empty()) {
    Result<uint64_t> v = ParseU64(m, "max");
    if (!v.ok() || *v < 1 || *v > 1000) {
      return bad(http::status::unprocessable_entity, "VALIDATION_ERROR",
                 "max: must be an integer in [1, 1000]");
    }
    max_results = static_cast<int>(*v);
  }
  std::optional<OcrBox> region;
  if (std::string r = param("region"); !r.empty()) {
    Result<OcrBox> parsed = ParseRegion(r);
    if (!parsed.ok()) {
      return bad(http::status::unprocessable_entity, "VALIDATION_ERROR", parsed.status().message());
    }
    region = *parsed;
  }
  const bool words = param("words").empty() || Truthy(param("words"));
  std::string stream = param("stream");
  if (stream.empty()) stream = "default";
  if (stream.size() > 64) {
    return bad(http::status::unprocessable_entity, "VALIDATION_ERROR",
               "stream: at most 64 characters");
  }

  const uint64_t max_pixels = service_->options().max_image_pixels;
  std::string content_type(request[http::field::content_type]);
  if (const size_t semi = content_type.find(';'); semi != std::string::npos) {
    content_type.resize(semi);
  }
  auto body = std::make_shared<std::string>(std::move(request.body()));
  auto job = std::make_unique<perception::OcrJob>();
  if (content_type == "image/png") {
    Result<perception::OwnedFrame> decoded = perception::DecodePng(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(body->data()), body->size()),
        max_pixels);
    if (!decoded.ok()) {
      return bad(http::status::unprocessable_entity, "VALIDATION_ERROR",
                 decoded.status().message());
    }
    auto owned = std::make_shared<perception::OwnedFrame>(std::move(decoded).value());
    job->frame = owned->view();
    job->pixels = owned;
  } else if (content_type == "application/octet-stream") {
    auto header_u64 = [&](const char* name, bool required, uint64_t fallback) -> Result<uint64_t> {
      auto value = request[name];
      if (value.empty()) {
        if (required) return InvalidArgumentError(std::string(name) + ": missing header");
        return fallback;
      }
      return ParseU64(std::string_view(value.data(), value.size()), name);
    };
    PixelFormat format = PixelFormat::kBgra8;
    if (auto f = request["X-Format"]; !f.empty()) {
      Result<PixelFormat> parsed =
          perception::ParsePixelFormat(std::string_view(f.data(), f.size()));
      if (!parsed.ok()) {
        return bad(http::status::unprocessable_entity, "VALIDATION_ERROR",
                   "X-Format: " + parsed.status().message());
      }
      format = *parsed;
    }
    Result<uint64_t> width = header_u64("X-Width", true, 0);
    Result<uint64_t> height = header_u64("X-Height", true, 0);
    if (!width.ok() || !height.ok()) {
      return bad(http::status::unprocessable_entity, "VALIDATION_ERROR",
                 (!width.ok() ? width.status() : height.status()).message());
    }
    Result<uint64_t> stride =
        header_u64("X-Stride", false, *width * perception::BytesPerPixel(format));
    if (!stride.ok()) {
      return bad(http::status::unprocessable_entity, "VALIDATION_ERROR", stride.status().message());
    }
    if (*width > UINT32_MAX || *height > UINT32_MAX || *stride > UINT32_MAX) {
      return bad(http::status::unprocessable_entity, "VALIDATION_ERROR",
                 "X-Width/X-Height/X-Stride: out of range (each side 1.." +
                     std::to_string(perception::kMaxDimension) + ")");
    }
    FrameView frame{reinterpret_cast<const uint8_t*>(body->data()), static_cast<uint32_t>(*width),
                    static_cast<uint32_t>(*height), static_cast<uint32_t>(*stride), format};
    if (Status s = perception::ValidateFrame(frame, max_pixels, body->size()); !s.ok()) {
      return bad(http::status::unprocessable_entity, "VALIDATION_ERROR", s.message());
    }
    if (auto c = request["X-Checksum"]; !c.empty()) {
      Result<uint64_t> expected = ParseU64(std::string_view(c.data(), c.size()), "X-Checksum", 16);
      if (!expected.ok()) {
        return bad(http::status::unprocessable_entity, "VALIDATION_ERROR",
                   expected.status().message());
      }
      const uint64_t actual = XXH3_64bits(body->data(), body->size());
      if (actual != *expected) {
        char buf[80];
        std::snprintf(buf, sizeof(buf), "expected %016llx, body hashes to %016llx",
                      static_cast<unsigned long long>(*expected),
                      static_cast<unsigned long long>(actual));
        return bad(http::status::unprocessable_entity, "CHECKSUM_MISMATCH",
                   std::string("X-Checksum: the pixels do not match their xxh3-64 checksum (") +
                       buf + ")");
      }
    }
    job->frame = frame;
    job->pixels = body;
  } else {
    return bad(http::status::unsupported_media_type, "UNSUPPORTED_MEDIA_TYPE",
               "Content-Type: '" + content_type +
                   "' is not accepted (image/png, or application/octet-stream with X-Width, "
                   "X-Height, X-Stride, X-Format)");
  }
  job->stream = std::move(stream);
  int64_t timeout_ms = default_timeout_ms_;
  if (auto header = request["X-Request-Timeout-Ms"]; !header.empty()) {
    Result<uint64_t> v =
        ParseU64(std::string_view(header.data(), header.size()), "X-Request-Timeout-Ms");
    if (!v.ok() || *v < 1 || *v > 3600000) {
      return bad(http::status::unprocessable_entity, "VALIDATION_ERROR",
                 "X-Request-Timeout-Ms: must be an integer number of milliseconds in "
                 "[1, 3600000]");
    }
    timeout_ms = static_cast<int64_t>(*v);
  }
  if (timeout_ms > 0) job->deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  job->done = [responder, find, query, regex, max_results, region,
               words](Result<OcrOutcome>&& outcome) {
    if (!outcome.ok()) {
      responder.Send(MakeErrorResponse(outcome.status(), responder.request_id()));
      return;
    }
    std::string body;
    if (find) {
      perception::FindOptions options;
      options.regex = regex;
      options.max_results = max_results;
      auto matches = perception::Find(*outcome->page, query, options);
      if (!matches.ok()) {
        responder.Send(MakeErrorResponse(matches.status(), responder.request_id()));
        return;
      }
      body = perception::FindJson(*outcome, query, regex, *matches);
    } else if (region.has_value()) {
      body = perception::RegionJson(*outcome, *region,
                                    perception::RegionText(*outcome->page, *region));
    } else {
      body = perception::PageJson(*outcome, words);
    }
    responder.Send(MakeJsonResponse(http::status::ok, std::move(body)));
  };
  if (Status s = service_->Submit(std::move(job)); !s.ok()) {
    responder.Send(MakeErrorResponse(s, responder.request_id()));
  }
}

}  // namespace brainstem
