// HttpServer: an HTTP/1.1 server on Boost.Beast/Asio with keep-alive, a body-size limit and a
// configurable number of I/O threads (one io_context each; connections are spread round-robin
// and stay on their thread). It knows no routes: every parsed request goes to one handler,
// which answers through a Responder, from any thread, now or later.
// Thread-safe: Start/Stop from one controlling thread; Responder::Send from any thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace brainstem {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

class HttpConnection;

// Sends the one response to one request. Stamps X-Request-ID and X-Process-Time, keep-alive
// and CORS headers, and reports the request to the observer. Copyable; call Send exactly once
// per request. If the client is gone the response is dropped quietly.
class Responder {
 public:
  Responder(std::shared_ptr<HttpConnection> connection, std::string request_id, TimePoint started,
            bool keep_alive, std::string origin);

  void Send(HttpResponse&& response) const;

  const std::string& request_id() const { return request_id_; }
  TimePoint started() const { return started_; }
  // Route label used for metrics, e.g. "/predict"; set by the router.
  void set_route(std::string route) { route_ = std::move(route); }
  const std::string& route() const { return route_; }

 private:
  std::shared_ptr<HttpConnection> connection_;
  std::string request_id_;
  TimePoint started_;
  bool keep_alive_;
  std::string origin_;  // the request's Origin header, for CORS
  std::string route_ = "other";
};

using HttpHandler = std::function<void(HttpRequest&& request, Responder responder)>;
// Called once per answered request: route label, status code, seconds from parse to send.
using HttpObserver = std::function<void(const std::string& route, int status, double seconds)>;
// Builds a response for errors found before the handler runs (413, 400): status and message.
using HttpErrorFactory = std::function<HttpResponse(http::status status, const std::string& message,
                                                    const std::string& request_id)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 = ephemeral; see HttpServer::port()
  int io_threads = 1;
  // After handling work an I/O thread keeps polling (non-blocking) this long before it blocks
  // in epoll_wait. On a VM a halted vCPU takes ~100 us to wake, which would dominate a ~20 us
  // request; a short window keeps it awake across back-to-back requests and costs nothing when
  // the server is idle. 0 blocks at once.
  int spin_us = 100;
  int64_t max_body_bytes = 64 << 20;
  // Headers added to every response when CORS is on (Access-Control-Allow-Origin etc.).
  bool cors_enabled = false;
  std::vector<std::string> cors_allow_origins;
};

class HttpServer {
 public:
  // Binds and listens (errors: kUnavailable naming host:port and the reason) but serves
  // nothing until Start().
  static Result<std::unique_ptr<HttpServer>> Create(HttpServerOptions options, HttpHandler handler,
                                                    HttpErrorFactory error_factory,
                                                    HttpObserver observer);
  ~HttpServer();  // Stops and joins the I/O threads.

  void Start();
  void Stop();
  int port() const { return port_; }
  const HttpServerOptions& options() const { return options_; }

 private:
  friend class HttpConnection;
  friend class Responder;
  HttpServer(HttpServerOptions options, HttpHandler handler, HttpErrorFactory error_factory,
             HttpObserver observer);
  void Accept();

  const HttpServerOptions options_;
  const HttpHandler handler_;
  const HttpErrorFactory error_factory_;
  const HttpObserver observer_;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<
      std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>>
      guards_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::vector<std::thread> threads_;
  size_t next_context_ = 0;
  int port_ = 0;
};

}  // namespace brainstem
