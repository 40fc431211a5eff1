#include "transport/http/http_server.h"

#include <pthread.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <charconv>
#include <optional>
#include <random>

#include "common/cpu_relax.h"

namespace brainstem {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

std::string NewRequestId() {
  static const uint64_t process_prefix = std::random_device{}();
  static std::atomic<uint64_t> counter{0};
  uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
  char buf[40];
  int len = std::snprintf(buf, sizeof(buf), "%08x-%012llx",
                          static_cast<unsigned>(process_prefix & 0xffffffffu),
                          static_cast<unsigned long long>(n));
  return std::string(buf, static_cast<size_t>(len));
}

// A client-supplied id is echoed back only when it is short and printable.
bool UsableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// Runs `context` until stopped: handlers run as they become ready; after the last one the
// thread polls for `spin` before blocking (see HttpServerOptions::spin_us).
void RunContext(asio::io_context& context, std::chrono::microseconds spin) {
  if (spin.count() <= 0) {
    context.run();
    return;
  }
  while (!context.stopped()) {
    if (context.run_one() == 0) return;  // blocks until one handler ran (or stopped)
    TimePoint until = Clock::now() + spin;
    while (!context.stopped() && Clock::now() < until) {
      if (context.poll() > 0) {
        until = Clock::now() + spin;  // more work arrived: the window starts again
      } else {
        CpuRelax();
      }
    }
  }
}

}  // namespace

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(tcp::socket socket, asio::io_context* context, HttpServer* server)
      : socket_(std::move(socket)), context_(context), server_(server) {
    // Beast reads at most the buffer's free capacity (at least 512 bytes) per call; an empty
    // flat_buffer never grows past what one message's headers need, so an 8 MB frame arrived
    // in ~16,000 reads of 512 bytes (strace), 40 ms of system calls on this VM.
    buffer_.reserve(kReadBufferBytes);
  }

  void Start() { DoRead(); }

  // Runs on the connection's thread.
  void Write(HttpResponse&& response, bool keep_alive) {
    response_ = std::move(response);
    response_.keep_alive(keep_alive);
    response_.prepare_payload();
    http::async_write(socket_, response_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        self->OnWrite(ec, keep_alive);
                      });
  }

  bool OnOwnThread() const { return context_->get_executor().running_in_this_thread(); }
  asio::io_context& context() { return *context_; }
  HttpServer* server() const { return server_; }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->body_limit(static_cast<uint64_t>(server_->options_.max_body_bytes));
    parser_->header_limit(64 * 1024);
    http::async_read(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      Close();
      return;
    }
    TimePoint started = Clock::now();
    if (ec) {
      // The request could not be read whole: answer once, then close (the stream position is
      // unknown, so the connection cannot be reused).
      http::status status = ec == http::error::body_limit ? http::status::payload_too_large
                                                          : http::status::bad_request;
      std::string message = ec == http::error::body_limit
                                ? "request body exceeds the limit of " +
                                      std::to_string(server_->options_.max_body_bytes) + " bytes"
                                : "malformed HTTP request: " + ec.message();
      std::string id = NewRequestId();
      Responder responder(shared_from_this(), id, started, /*keep_alive=*/false, "");
      responder.set_route("invalid");
      responder.Send(server_->error_factory_(status, message, id));
      return;
    }
    HttpRequest request = parser_->release();
    auto header_id = request["X-Request-ID"];
    std::string_view client_id(header_id.data(), header_id.size());
    std::string id = UsableRequestId(client_id) ? std::string(client_id) : NewRequestId();
    auto origin_header = request[http::field::origin];
    std::string origin(origin_header.data(), origin_header.size());
    Responder responder(shared_from_this(), std::move(id), started, request.keep_alive(),
                        std::move(origin));
    server_->handler_(std::move(request), std::move(responder));
  }

  void OnWrite(beast::error_code ec, bool keep_alive) {
    if (ec || !keep_alive) {
      Close();
      return;
    }
    DoRead();
  }

  void Close() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    socket_.close(ignored);
  }

  tcp::socket socket_;
  asio::io_context* context_;  // the one thread this connection runs on
  HttpServer* server_;
  static constexpr size_t kReadBufferBytes = 64 * 1024;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpResponse response_;
};

Responder::Responder(std::shared_ptr<HttpConnection> connection, std::string request_id,
                     TimePoint started, bool keep_alive, std::string origin)
    : connection_(std::move(connection)),
      request_id_(std::move(request_id)),
      started_(started),
      keep_alive_(keep_alive),
      origin_(std::move(origin)) {}

void Responder::Send(HttpResponse&& response) const {
  HttpServer* server = connection_->server();
  const TimePoint now = Clock::now();
  const double seconds = NanosBetween(started_, now) / 1e9;
  response.set("X-Request-ID", request_id_);
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), seconds, std::chars_format::fixed, 6);
  response.set("X-Process-Time", std::string(buf, static_cast<size_t>(end - buf)));
  response.set(http::field::server, "brainstem");
  const HttpServerOptions& options = server->options();
  if (options.cors_enabled && !origin_.empty()) {
    for (const std::string& allowed : options.cors_allow_origins) {
      if (allowed == "*" || allowed == origin_) {
        response.set(http::field::access_control_allow_origin, allowed == "*" ? "*" : origin_);
        response.set(http::field::vary, "Origin");
        response.set(http::field::access_control_expose_headers, "X-Request-ID, X-Process-Time");
        break;
      }
    }
  }
  if (server->observer_) server->observer_(route_, response.result_int(), seconds);
  if (connection_->OnOwnThread()) {
    connection_->Write(std::move(response), keep_alive_);
    return;
  }
  asio::post(connection_->context(), [connection = connection_, response = std::move(response),
                                      keep_alive = keep_alive_]() mutable {
    connection->Write(std::move(response), keep_alive);
  });
}

Result<std::unique_ptr<HttpServer>> HttpServer::Create(HttpServerOptions options,
                                                       HttpHandler handler,
                                                       HttpErrorFactory error_factory,
                                                       HttpObserver observer) {
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(options), std::move(handler),
                                                    std::move(error_factory), std::move(observer)));
  const HttpServerOptions& o = server->options_;
  beast::error_code ec;
  auto address = asio::ip::make_address(o.host, ec);
  if (ec) return InvalidArgumentError("server.host: '" + o.host + "' is not an IP address");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(o.port));
  auto& acceptor = *server->acceptor_;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return UnavailableError("cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " +
                            ec.message());
  }
  server->port_ = acceptor.local_endpoint().port();
  return server;
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler,
                       HttpErrorFactory error_factory, HttpObserver observer)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      error_factory_(std::move(error_factory)),
      observer_(std::move(observer)) {
  const int threads = std::max(1, options_.io_threads);
  for (int i = 0; i < threads; ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
        contexts_.back()->get_executor()));
  }
  acceptor_ = std::make_unique<tcp::acceptor>(*contexts_[0]);
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Start() {
  Accept();
  for (size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i] {
      std::string name = "bs-io-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      RunContext(*contexts_[i], std::chrono::microseconds(options_.spin_us));
    });
  }
}

void HttpServer::Stop() {
  if (threads_.empty()) return;
  asio::post(*contexts_[0], [this] {
    beast::error_code ignored;
    acceptor_->close(ignored);
  });
  guards_.clear();
  for (auto& context : contexts_) context->stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
}

void HttpServer::Accept() {
  asio::io_context& target = *contexts_[next_context_];
  next_context_ = (next_context_ + 1) % contexts_.size();
  acceptor_->async_accept(target, [this, &target](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<HttpConnection>(std::move(socket), &target, this)->Start();
    }
    Accept();
  });
}

}  // namespace brainstem
