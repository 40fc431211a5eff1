#include "brainstem/http_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

namespace brainstem::client {
namespace {

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// One parser per calling thread: its buffers are reused from call to call.
JsonReader& ThreadJsonReader() {
  thread_local JsonReader reader;
  return reader;
}

// RFC 3986 percent-encoding of everything but the unreserved characters, for query values.
std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace

struct HttpClient::Connection {
  int fd = -1;
  bool reused = false;
  std::string out;  // request being sent
  std::string in;   // bytes received and not yet consumed
  JsonReader json;
  std::vector<float> scratch;
  ~Connection() {
    if (fd >= 0) ::close(fd);
  }

  // Waits until fd is readable or `deadline_ns` (0: forever) passes.
  Status WaitReadable(uint64_t deadline_ns) {
    for (;;) {
      int timeout = -1;
      if (deadline_ns != 0) {
        uint64_t now = NowNs();
        if (now >= deadline_ns) return DeadlineExceededError("http: no answer before the deadline");
        timeout = static_cast<int>((deadline_ns - now + 999999) / 1000000);
      }
      pollfd p{fd, POLLIN, 0};
      int n = ::poll(&p, 1, timeout);
      if (n > 0) return Status::Ok();
      if (n < 0 && errno != EINTR)
        return UnavailableError(std::string("http: poll: ") + std::strerror(errno));
    }
  }

  Status SendAll(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return UnavailableError(std::string("http: send: ") + std::strerror(errno));
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }

  // Reads more bytes into `in`; kUnavailable on EOF or error.
  Status ReadMore(uint64_t deadline_ns) {
    RETURN_IF_ERROR(WaitReadable(deadline_ns));
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n > 0) {
        in.append(buf, static_cast<size_t>(n));
        return Status::Ok();
      }
      if (n == 0) return UnavailableError("http: the server closed the connection");
      if (errno == EINTR) continue;
      return UnavailableError(std::string("http: recv: ") + std::strerror(errno));
    }
  }

  // Reads one response; sets *close when the server will close the connection.
  Status ReadResponse(uint64_t deadline_ns, Reply* reply, bool* close) {
    size_t header_end;
    while ((header_end = in.find("\r\n\r\n")) == std::string::npos) {
      if (in.size() > 65536) return InternalError("http: response header larger than 64 KiB");
      RETURN_IF_ERROR(ReadMore(deadline_ns));
    }
    std::string_view head(in.data(), header_end);
    // "HTTP/1.1 200 OK"
    if (head.size() < 12 || !head.starts_with("HTTP/1.")) {
      return InternalError("http: malformed status line");
    }
    int status = 0;
    auto [p, ec] = std::from_chars(head.data() + 9, head.data() + 12, status);
    if (ec != std::errc()) return InternalError("http: malformed status code");
    size_t content_length = 0;
    bool have_length = false;
    *close = head.starts_with("HTTP/1.0");
    size_t line_start = head.find("\r\n");
    while (line_start != std::string_view::npos) {
      line_start += 2;
      size_t line_end = head.find("\r\n", line_start);
      std::string_view line =
          head.substr(line_start, line_end == std::string_view::npos ? std::string_view::npos
                                                                     : line_end - line_start);
      size_t colon = line.find(':');
      if (colon != std::string_view::npos) {
        std::string_view name = Trim(line.substr(0, colon));
        std::string_view value = Trim(line.substr(colon + 1));
        if (EqualsIgnoreCase(name, "content-length")) {
          auto [e, ec2] =
              std::from_chars(value.data(), value.data() + value.size(), content_length);
          if (ec2 != std::errc()) return InternalError("http: malformed Content-Length");
          have_length = true;
        } else if (EqualsIgnoreCase(name, "connection")) {
          *close = EqualsIgnoreCase(value, "close");
        } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
          return UnimplementedError("http: chunked responses are not supported");
        }
      }
      line_start = line_end;
    }
    if (!have_length) return InternalError("http: response without Content-Length");
    const size_t body_start = header_end + 4;
    while (in.size() < body_start + content_length) RETURN_IF_ERROR(ReadMore(deadline_ns));
    reply->status = status;
    reply->body.assign(in, body_start, content_length);
    in.erase(0, body_start + content_length);
    return Status::Ok();
  }
};

HttpClient::HttpClient(std::string host, uint16_t port) : host_(std::move(host)), port_(port) {
  host_header_ = (host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_) + ":" +
                 std::to_string(port_);
}

HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::Create(std::string host, uint16_t port) {
  std::unique_ptr<HttpClient> client(new HttpClient(std::move(host), port));
  ASSIGN_OR_RETURN(Reply reply, client->Exchange("GET", "/metadata", {}, 10000));
  if (reply.status != 200) {
    JsonReader json;
    return json.ErrorFromResponse(reply.status, reply.body);
  }
  JsonReader json;
  ASSIGN_OR_RETURN(client->info_, json.ParseMetadata(reply.body));
  return client;
}

Result<std::unique_ptr<HttpClient::Connection>> HttpClient::Open() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(port_);
  int rc = ::getaddrinfo(host_.c_str(), port.c_str(), &hints, &list);
  if (rc != 0) {
    return UnavailableError("http: cannot resolve " + host_ + ": " + ::gai_strerror(rc));
  }
  std::string last_error = "no address";
  auto connection = std::make_unique<Connection>();
  for (addrinfo* a = list; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      connection->fd = fd;
      break;
    }
    last_error = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(list);
  if (connection->fd < 0) {
    return UnavailableError("http: cannot connect to " + host_header_ + ": " + last_error);
  }
  return connection;
}

Result<std::unique_ptr<HttpClient::Connection>> HttpClient::Borrow() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      c->reused = true;
      return c;
    }
  }
  return Open();
}

void HttpClient::Return(std::unique_ptr<Connection> connection) {
  connection->in.clear();
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(connection));
}

Result<HttpClient::Reply> HttpClient::Exchange(std::string_view method, std::string_view path,
                                               std::string_view body, int64_t timeout_ms,
                                               std::string_view content_type,
                                               std::string_view extra_headers) {
  // Small bodies go out with the header in one send (one segment with TCP_NODELAY); a frame's
  // megabytes are sent from where they lie instead of being copied behind the header.
  constexpr size_t kInlineBody = 64 * 1024;
  const bool inline_body = body.size() <= kInlineBody;
  const uint64_t deadline = timeout_ms > 0 ? NowNs() + uint64_t(timeout_ms) * 1000000 : 0;
  // A kept-alive connection may have been closed by the server while idle; then the first
  // attempt fails before any answer byte and a fresh connection is tried once.
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> c, Borrow());
    c->out.clear();
    c->out.append(method).append(" ").append(path).append(" HTTP/1.1\r\nHost: ");
    c->out.append(host_header_).append("\r\n");
    if (!body.empty() || method == "POST") {
      c->out.append("Content-Type: ").append(content_type).append("\r\nContent-Length: ");
      c->out.append(std::to_string(body.size())).append("\r\n");
    }
    if (timeout_ms > 0) {
      c->out.append("X-Request-Timeout-Ms: ").append(std::to_string(timeout_ms)).append("\r\n");
    }
    c->out.append(extra_headers).append("\r\n");
    if (inline_body) c->out.append(body);
    Reply reply;
    bool close = false;
    Status s = c->SendAll(c->out);
    if (s.ok() && !inline_body) s = c->SendAll(body);
    if (s.ok()) s = c->ReadResponse(deadline, &reply, &close);
    if (s.ok()) {
      if (!close) Return(std::move(c));
      return reply;
    }
    if (s.code() == StatusCode::kUnavailable && c->reused && c->in.empty() && attempt == 0) {
      continue;
    }
    return s;
  }
}

Status HttpClient::PredictRaw(const float* rows, int32_t n_rows, float* actions_out,
                              const PredictOptions& options) {
  const uint64_t start = NowNs();
  if (n_rows < 1) return InvalidArgumentError("predict: need at least one row");
  std::string body;
  body.reserve(64 + static_cast<size_t>(n_rows) * static_cast<size_t>(input_width()) * 12);
  std::optional<uint64_t> seed = options.deterministic ? std::nullopt : options.seed;
  RETURN_IF_ERROR(
      AppendPredictBody(rows, n_rows, info_.inputs, options.deterministic, seed, &body));
  ASSIGN_OR_RETURN(Reply reply, Exchange("POST", "/predict", body, options.timeout_ms));
  JsonReader& json = ThreadJsonReader();
  if (reply.status != 200) return json.ErrorFromResponse(reply.status, reply.body);
  double server_ms = 0;
  RETURN_IF_ERROR(
      json.ParsePredictResponse(reply.body, info_.actions, n_rows, actions_out, &server_ms));
  if (options.timings != nullptr) {
    *options.timings = CallTimings{};
    options.timings->total_ns = NowNs() - start;
    options.timings->server_ns = static_cast<uint64_t>(server_ms * 1e6);
  }
  return Status::Ok();
}

Result<FrameAck> HttpClient::SubmitFrame(const uint8_t* pixels, uint32_t width, uint32_t height,
                                         uint32_t stride, PixelFormat format,
                                         const FrameOptions& options) {
  const uint64_t start = NowNs();
  if (pixels == nullptr) return InvalidArgumentError("frame: pixels is null");
  std::string_view format_name;
  switch (format) {
    case PixelFormat::kBgra8:
      format_name = "bgra8";
      break;
    case PixelFormat::kRgba8:
      format_name = "rgba8";
      break;
    case PixelFormat::kRgb8:
      format_name = "rgb8";
      break;
    case PixelFormat::kGray8:
      format_name = "gray8";
      break;
    default:
      return InvalidArgumentError("frame: unknown pixel format");
  }
  std::string path;
  switch (options.request) {
    // words=0: lines and blocks with their boxes, not every word (the answer stays small).
    case kFrameOcrText:
      path = "/v1/ocr?words=0";
      break;
    case kFrameOcrFind:
      path = "/v1/ocr/find?query=" + PercentEncode(options.query);
      break;
    case kFrameOcrRegion:
      path = "/v1/ocr?words=0&region=" + PercentEncode(options.query);
      break;
    case kFrameVerify:
      return UnimplementedError(
          "http: request 0 (verify) exists only over shm; over http use an OCR kind (1 text, "
          "2 find, 3 region)");
    default:
      return InvalidArgumentError("frame: request " + std::to_string(options.request) +
                                  " is not a frame request kind (0 verify, 1 OCR text, 2 find, "
                                  "3 region)");
  }
  const std::string headers = "X-Width: " + std::to_string(width) +
                              "\r\nX-Height: " + std::to_string(height) +
                              "\r\nX-Stride: " + std::to_string(stride) +
                              "\r\nX-Format: " + std::string(format_name) + "\r\n";
  const std::string_view body(reinterpret_cast<const char*>(pixels),
                              static_cast<size_t>(uint64_t{stride} * height));
  ASSIGN_OR_RETURN(Reply reply, Exchange("POST", path, body, options.timeout_ms,
                                         "application/octet-stream", headers));
  JsonReader& json = ThreadJsonReader();
  if (reply.status != 200) return json.ErrorFromResponse(reply.status, reply.body);
  FrameAck ack;
  ack.timings.total_ns = NowNs() - start;
  ack.timings.server_ns = static_cast<uint64_t>(json.OcrServerMs(reply.body) * 1e6);
  ack.result = std::move(reply.body);
  return ack;
}

Result<FrameBuffer> HttpClient::AcquireFrameBuffer() {
  return UnimplementedError(
      "http: zero-copy frame buffers need the shm transport (use SubmitFrame over http)");
}

Result<FrameAck> HttpClient::SubmitFrameBuffer(FrameBuffer, uint32_t, uint32_t, uint32_t,
                                               PixelFormat, const FrameOptions&) {
  return UnimplementedError(
      "http: zero-copy frame buffers need the shm transport (use SubmitFrame over http)");
}

}  // namespace brainstem::client
