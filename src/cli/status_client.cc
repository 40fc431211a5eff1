#include "cli/status_client.h"

#include <simdjson.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>

namespace brainstem {
namespace {

std::string Truncate(std::string_view text, size_t n = 200) {
  return std::string(text.substr(0, n)) + (text.size() > n ? "..." : "");
}

// Reads /v1/status by JSON pointer; the first missing field becomes the error.
class Reader {
 public:
  explicit Reader(simdjson::dom::element root) : root_(root) {}

  double Number(const char* pointer) {
    double value = 0;
    if (root_.at_pointer(pointer).get_double().get(value)) Missing(pointer);
    return value;
  }
  std::optional<double> OptionalNumber(const char* pointer) {
    simdjson::dom::element e;
    if (root_.at_pointer(pointer).get(e)) {
      Missing(pointer);
      return std::nullopt;
    }
    if (e.is_null()) return std::nullopt;
    double value = 0;
    if (e.get_double().get(value)) {
      Missing(pointer);
      return std::nullopt;
    }
    return value;
  }
  std::string Text(const char* pointer) {
    std::string_view value;
    if (root_.at_pointer(pointer).get_string().get(value)) Missing(pointer);
    return std::string(value);
  }
  bool Bool(const char* pointer) {
    bool value = false;
    if (root_.at_pointer(pointer).get_bool().get(value)) Missing(pointer);
    return value;
  }
  simdjson::dom::array Array(const char* pointer) {
    simdjson::dom::array value;
    if (root_.at_pointer(pointer).get_array().get(value)) Missing(pointer);
    return value;
  }
  simdjson::dom::element Element(const char* pointer) {
    simdjson::dom::element value;
    if (root_.at_pointer(pointer).get(value)) Missing(pointer);
    return value;
  }
  const std::string& missing() const { return missing_; }

 private:
  void Missing(const char* pointer) {
    if (missing_.empty()) missing_ = pointer;
  }
  simdjson::dom::element root_;
  std::string missing_;
};

}  // namespace

Result<HttpEndpoint> ParseHttpEndpoint(std::string_view url) {
  if (url.rfind("http://", 0) != 0) {
    return InvalidArgumentError("'" + std::string(url) + "': expected http://host:port");
  }
  std::string_view rest = url.substr(7);
  std::string_view host_port = rest.substr(0, rest.find('/'));
  if (host_port.empty()) return InvalidArgumentError("'" + std::string(url) + "': no host");
  HttpEndpoint endpoint;
  const size_t colon = host_port.rfind(':');
  endpoint.host = std::string(host_port.substr(0, colon));
  endpoint.port = colon == std::string_view::npos ? "80" : std::string(host_port.substr(colon + 1));
  int port = 0;
  auto [end, ec] =
      std::from_chars(endpoint.port.data(), endpoint.port.data() + endpoint.port.size(), port);
  if (endpoint.host.empty() || ec != std::errc() ||
      end != endpoint.port.data() + endpoint.port.size() || port < 1 || port > 65535) {
    return InvalidArgumentError("'" + std::string(url) + "': expected http://host:port");
  }
  endpoint.url = "http://" + std::string(host_port);
  return endpoint;
}

Result<std::string> HttpGet(const HttpEndpoint& endpoint, std::string_view target,
                            double timeout_s) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  namespace asio = boost::asio;
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
    beast::error_code ec;
    auto addresses = resolver.resolve(endpoint.host, endpoint.port, ec);
    if (ec) return UnavailableError(endpoint.url + ": cannot resolve: " + ec.message());
    stream.connect(addresses, ec);
    if (ec) return UnavailableError(endpoint.url + ": cannot connect: " + ec.message());
    http::request<http::empty_body> request(http::verb::get, std::string(target), 11);
    request.set(http::field::host, endpoint.host);
    http::write(stream, request, ec);
    if (ec) return UnavailableError(endpoint.url + ": write failed: " + ec.message());
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    response.body().reserve(16 << 10);
    http::read(stream, buffer, response, ec);
    if (ec) return UnavailableError(endpoint.url + ": read failed: " + ec.message());
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    if (response.result() != http::status::ok) {
      return InternalError("GET " + std::string(target) + ": HTTP " +
                           std::to_string(response.result_int()) + ": " +
                           Truncate(response.body()));
    }
    return std::move(response.body());
  } catch (const std::exception& e) {
    return UnavailableError(endpoint.url + ": " + e.what());
  }
}

Result<ServerStatus> ParseServerStatus(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root)) {
    return InvalidArgumentError("/v1/status is not JSON: " + Truncate(json));
  }
  Reader r(root);
  ServerStatus s;
  s.model = r.Text("/model");
  s.version = r.Text("/version");
  s.format = r.Text("/format");
  s.device = r.Text("/device");
  s.pid = static_cast<int64_t>(r.Number("/pid"));
  s.uptime_seconds = r.Number("/uptime_seconds");
  s.startup_seconds = r.Number("/startup_seconds");
  s.model_load_seconds = r.Number("/model_load_seconds");
  s.model_warmup_seconds = r.Number("/model_warmup_seconds");
  s.window_seconds = r.Number("/window_seconds");
  s.requests_total = static_cast<uint64_t>(r.Number("/requests/total"));
  s.http_requests = static_cast<uint64_t>(r.Number("/requests/http_predict"));
  s.shm_requests = static_cast<uint64_t>(r.Number("/requests/shm"));
  s.rejected_queue_full = static_cast<uint64_t>(r.Number("/requests/rejected_queue_full"));
  s.deadline_exceeded = static_cast<uint64_t>(r.Number("/requests/deadline_exceeded"));
  s.inference_errors = static_cast<uint64_t>(r.Number("/requests/inference_errors"));
  s.requests_per_s = r.Number("/rates/requests_per_s");
  s.observations_per_s = r.Number("/rates/observations_per_s");
  s.frames_per_s = r.Number("/rates/frames_per_s");
  s.http_p50_us = r.OptionalNumber("/latency_us/http/window/p50");
  s.http_p90_us = r.OptionalNumber("/latency_us/http/window/p90");
  s.http_p99_us = r.OptionalNumber("/latency_us/http/window/p99");
  s.compute_p50_us = r.OptionalNumber("/latency_us/compute/window/p50");
  s.queue_p50_us = r.OptionalNumber("/latency_us/queue/window/p50");
  s.batch_mean = r.OptionalNumber("/batch/window/mean");
  s.batch_p90 = r.OptionalNumber("/batch/window/p90");
  for (simdjson::dom::element bucket : r.Array("/batch/window_distribution")) {
    double le = 0;
    uint64_t count = 0;
    std::string label = bucket["le"].get_double().get(le)
                            ? "more"
                            : "<=" + std::to_string(static_cast<int64_t>(le));
    if (!bucket["count"].get_uint64().get(count) && count > 0) {
      s.batch_distribution.emplace_back(label, count);
    }
  }
  s.queue_depth = static_cast<int64_t>(r.Number("/queue/depth"));
  s.queue_capacity = static_cast<int64_t>(r.Number("/queue/capacity"));
  simdjson::dom::element system = r.Element("/system");
  if (!system.is_null()) {
    simdjson::dom::array kinds;
    if (!system["kinds"].get_array().get(kinds)) {
      for (simdjson::dom::element kind : kinds) {
        std::string_view name;
        double percent = 0;
        if (!kind["kind"].get_string().get(name) && !kind["percent"].get_double().get(percent)) {
          s.kind_load.emplace_back(std::string(name), percent);
        }
      }
    }
  }
  s.rss_bytes = static_cast<int64_t>(r.Number("/process/rss_bytes"));
  s.cpu_percent = r.Number("/process/cpu_percent");
  s.shm_enabled = r.Bool("/shm/enabled");
  if (s.shm_enabled) s.shm_url = r.Text("/shm/url");
  s.shm_sessions = static_cast<int64_t>(r.Number("/shm/sessions"));
  s.shm_bytes_mapped = static_cast<int64_t>(r.Number("/shm/bytes_mapped"));
  s.shm_frames = static_cast<uint64_t>(r.Number("/shm/frames"));
  s.shm_checksum_failures = static_cast<uint64_t>(r.Number("/shm/checksum_failures"));
  s.ocr_available = r.Bool("/ocr/available");
  s.ocr_images_per_s = r.OptionalNumber("/ocr/images_per_s");
  s.placement_rule = r.Text("/placement/rule");
  s.pinning = r.Bool("/placement/pinning");
  for (simdjson::dom::element thread : r.Array("/placement/threads")) {
    ServerStatus::PlannedThread t;
    std::string_view text;
    if (!thread["name"].get_string().get(text)) t.name = std::string(text);
    if (!thread["role"].get_string().get(text)) t.role = std::string(text);
    simdjson::dom::array cpus;
    if (!thread["cpus"].get_array().get(cpus)) {
      for (simdjson::dom::element cpu : cpus) {
        int64_t id = 0;
        if (!cpu.get_int64().get(id)) t.cpus.push_back(static_cast<int>(id));
      }
    }
    s.threads.push_back(std::move(t));
  }
  TargetsConfig& t = s.targets;
  t.startup_ms = static_cast<int64_t>(r.Number("/targets/startup_ms"));
  t.idle_cpu_percent = r.Number("/targets/idle_cpu_percent");
  t.idle_rss_mb = static_cast<int64_t>(r.Number("/targets/idle_rss_mb"));
  t.http_p50_us = static_cast<int64_t>(r.Number("/targets/http_p50_us"));
  t.http_p99_us = static_cast<int64_t>(r.Number("/targets/http_p99_us"));
  t.shm_p50_us = static_cast<int64_t>(r.Number("/targets/shm_p50_us"));
  t.shm_p99_us = static_cast<int64_t>(r.Number("/targets/shm_p99_us"));
  t.shm_throughput_rps = static_cast<int64_t>(r.Number("/targets/shm_throughput_rps"));
  if (!r.missing().empty()) {
    return InvalidArgumentError("/v1/status: field " + r.missing() +
                                " is missing or has the wrong type (is this a brainstem server "
                                "of the same version?)");
  }
  return s;
}

Result<ServerStatus> FetchStatus(const HttpEndpoint& endpoint, double window_s) {
  ASSIGN_OR_RETURN(std::string body,
                   HttpGet(endpoint, "/v1/status?window=" + std::to_string(window_s)));
  return ParseServerStatus(body);
}

std::optional<double> PrometheusValue(std::string_view text, std::string_view name) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.size() <= name.size() || line.substr(0, name.size()) != name) continue;
    const char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    std::string value(line.substr(line.rfind(' ') + 1));
    try {
      return std::stod(value);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace brainstem
