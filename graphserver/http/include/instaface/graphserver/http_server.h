// An asynchronous HTTP/1.1 server (Boost.Beast) that hands each complete request to a blocking
// handler on a worker pool.
//
// Network I/O runs on `io_threads` threads sharing one io_context: connections, keep-alive, the
// body size limit (413) and the per-request timeout. Handlers may block (database calls, a
// forwarded request), so they run on a separate pool of `worker_threads`; a slow database never
// stalls accepting or reading. A request whose body exceeds the limit, or that does not parse,
// is answered by the server itself with a JSON error and the connection is closed. An optional
// fast path sees each request first on its I/O thread and may take it to answer later, from any
// thread, without a worker waiting on it (the leader's group-committed creates use it). A
// stream path may keep a GET open as a Server-Sent Events stream (text/event-stream), fed from
// any thread. With `allow_origin` set, every answer carries Access-Control-Allow-Origin and the
// server answers CORS preflight (OPTIONS) itself.
//
// Thread safety: Start and Stop are called from one thread; the handler is called concurrently
// from worker threads and must be thread-safe.
#ifndef INSTAFACE_GRAPHSERVER_HTTP_SERVER_H_
#define INSTAFACE_GRAPHSERVER_HTTP_SERVER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/beast/http.hpp>

#include "instaface/common/status.h"

namespace instaface::graphserver {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8080;  // 0 picks a free port; see HttpServer::port()
  int io_threads = 2;
  int worker_threads = 16;  // 0: handlers run on the I/O threads (give enough of them)
  uint64_t body_limit = 1 << 20;
  std::chrono::milliseconds request_timeout{10000};  // also the keep-alive idle limit
  // Open connections at most; one more is answered 503 (Retry-After: 1) and closed, so a flood
  // of clients cannot exhaust file descriptors and memory.
  int max_connections = 4096;
  // CORS: the value of Access-Control-Allow-Origin on every answer ("*": any page may call);
  // empty: no CORS headers, and OPTIONS is an ordinary (unrouted) request.
  std::string allow_origin;
  // A Server-Sent Events stream holds at most this many bytes not yet written; a client that
  // falls further behind is disconnected (its EventSource reconnects and starts afresh).
  size_t stream_backlog_limit = 1 << 20;
};

// One Server-Sent Events answer held open. Send() may be called from any thread; it only
// queues. Once the client has gone (or fell too far behind) Send() returns false and the
// stream should be dropped.
class EventStream {
 public:
  virtual ~EventStream() = default;
  // Queues one event: "event: <name>\ndata: <data>\n\n". `data` must not hold a newline
  // (compact JSON never does).
  virtual bool Send(std::string_view name, std::string_view data) = 0;
  virtual bool open() const = 0;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(HttpRequest&&)>;
  // Called (from an I/O thread) for a request the server refused itself: 400, 413, 431, 503
  // for a connection over max_connections, or 408 for a half-sent request that timed out
  // (closed without an answer).
  using RejectObserver = std::function<void(int status)>;

  // A fast path is offered each complete request on its I/O thread, before the worker pool.
  // Returning true takes the request: `respond` must then be called exactly once, from any
  // thread (it only queues the answer on the connection). It must not block; false hands the
  // request, untouched, to the handler on the worker pool.
  using Respond = std::function<void(HttpResponse)>;
  using FastPath = std::function<bool(HttpRequest& request, Respond respond)>;
  // Offered each GET first, on its I/O thread; returning true keeps the connection as an event
  // stream (the server sends the header at once; events sent before it go after it). It must
  // not block.
  using StreamPath =
      std::function<bool(const HttpRequest& request, std::shared_ptr<EventStream> stream)>;

  HttpServer(HttpServerOptions options, Handler handler, RejectObserver on_reject = nullptr,
             FastPath fast_path = nullptr, StreamPath stream_path = nullptr);
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts the threads; an error says why not (for example the port is taken).
  common::Status Start();
  // Stops accepting, closes connections, joins all threads. Idempotent.
  void Stop();
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A JSON error body {"error": message} with the given status; keep-alive follows `request`.
HttpResponse JsonError(int status, const std::string& message, unsigned version = 11,
                       bool keep_alive = true);
// A JSON body with status 200 (or the given one).
HttpResponse JsonResponse(int status, std::string body, unsigned version = 11,
                          bool keep_alive = true);

}  // namespace instaface::graphserver

#endif  // INSTAFACE_GRAPHSERVER_HTTP_SERVER_H_
