#include "instaface/graphserver/http_server.h"

#include <array>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <nlohmann/json.hpp>

namespace instaface::graphserver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpResponse JsonResponse(int status, std::string body, unsigned version, bool keep_alive) {
  HttpResponse res{static_cast<http::status>(status), version};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

HttpResponse JsonError(int status, const std::string& message, unsigned version, bool keep_alive) {
  nlohmann::json body = {{"error", message}};
  // Invalid UTF-8 from a request must not make the error path itself throw.
  return JsonResponse(status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                      version, keep_alive);
}

namespace {

// Answers in the request's HTTP version, and keeps the connection only if both the request and
// the response allow it. (The version is set first: what keep_alive() means depends on it.)
void MatchRequest(HttpResponse& res, unsigned version, bool request_keep_alive,
                  const HttpServerOptions& options) {
  const bool response_keep_alive = res.keep_alive();
  res.version(version);
  res.keep_alive(request_keep_alive && response_keep_alive);
  if (!options.allow_origin.empty()) {
    res.set(http::field::access_control_allow_origin, options.allow_origin);
  }
}

class Session;

// The queue of a Server-Sent Events answer. Producers on any thread append frames; the
// session's strand writes them, as one chunk per flush, in order.
class SseStream : public EventStream {
 public:
  SseStream(std::weak_ptr<Session> session, size_t backlog_limit)
      : session_(std::move(session)), backlog_limit_(backlog_limit) {}

  bool Send(std::string_view name, std::string_view data) override;
  bool open() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return !closed_;
  }

  // On the session's strand: everything queued so far, or empty when there is nothing.
  std::string Take() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out = std::move(pending_);
    pending_.clear();
    if (out.empty()) flushing_ = false;
    return out;
  }
  // The header has gone out; flush what was queued before it.
  bool Started() {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
    flushing_ = !pending_.empty();
    return flushing_;
  }
  void MarkClosed() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }

 private:
  const std::weak_ptr<Session> session_;
  const size_t backlog_limit_;
  mutable std::mutex mu_;
  std::string pending_;
  bool started_ = false;   // the header was written
  bool flushing_ = false;  // a flush is scheduled or writing on the strand
  bool closed_ = false;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServerOptions& options, const HttpServer::Handler& handler,
          const HttpServer::RejectObserver& on_reject, const HttpServer::FastPath& fast_path,
          const HttpServer::StreamPath& stream_path, asio::thread_pool& workers,
          std::atomic<int>& open)
      : stream_(std::move(socket)),
        options_(options),
        handler_(handler),
        on_reject_(on_reject),
        fast_path_(fast_path),
        stream_path_(stream_path),
        workers_(workers),
        open_(open) {
    ++open_;
  }

  // From any thread: write what the event stream has queued, on this connection's strand.
  void ScheduleFlush() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->FlushEvents(); });
  }
  void CloseFromAnyThread() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
  }
  ~Session() { --open_; }

  void Run() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

  // For a connection over the limit: answers 503 without reading a request, then closes.
  void Refuse() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      auto res = std::make_shared<HttpResponse>(
          JsonError(503, "too many open connections; retry", 11, false));
      res->set(http::field::retry_after, "1");
      self->SendRefusal(503, res);
    });
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(options_.request_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof) {
      return Close();
    }
    if (ec == beast::error::timeout) {
      // The stream has already closed the socket, so nothing can be answered: a silent idle
      // keep-alive connection just ends, and a half-sent request is counted as a 408.
      if (parser_->got_some() && on_reject_) on_reject_(408);
      return Close();
    }
    if (ec == http::error::body_limit) {
      return Reject(413, "request body exceeds the limit of " +
                             std::to_string(options_.body_limit) + " bytes");
    }
    if (ec == http::error::header_limit) return Reject(431, "request headers too large");
    if (ec) return Reject(400, "malformed HTTP request: " + ec.message());

    auto request = std::make_shared<HttpRequest>(parser_->release());
    if (!options_.allow_origin.empty() && request->method() == http::verb::options) {
      return Write(std::make_shared<HttpResponse>(Preflight(*request)));
    }
    if (stream_path_ && request->method() == http::verb::get) {
      auto events = std::make_shared<SseStream>(weak_from_this(), options_.stream_backlog_limit);
      if (stream_path_(*request, events)) return StartEvents(*request, std::move(events));
    }
    if (fast_path_) {
      const unsigned version = request->version();
      const bool keep_alive = request->keep_alive();
      auto respond = [self = shared_from_this(), version, keep_alive](HttpResponse res) {
        MatchRequest(res, version, keep_alive, self->options_);
        auto shared = std::make_shared<HttpResponse>(std::move(res));
        asio::post(self->stream_.get_executor(), [self, shared] { self->Write(shared); });
      };
      if (fast_path_(*request, std::move(respond))) return;
    }
    if (options_.worker_threads <= 0) {
      // Inline mode: this I/O thread runs the handler itself, saving two thread hand-offs per
      // request; a blocking handler then holds an I/O thread, so run enough of them.
      Write(Answer(*request));
      return;
    }
    // The handler may block, so it runs on the worker pool; the answer comes back to this
    // connection's strand to be written.
    asio::post(workers_, [self = shared_from_this(), request] {
      auto shared = self->Answer(*request);
      asio::post(self->stream_.get_executor(), [self, shared] { self->Write(shared); });
    });
  }

  std::shared_ptr<HttpResponse> Answer(HttpRequest& request) {
    bool keep_alive = request.keep_alive();
    unsigned version = request.version();
    HttpResponse res;
    try {
      res = handler_(std::move(request));
    } catch (const std::exception& e) {
      res = JsonError(500, std::string("internal error: ") + e.what(), version, keep_alive);
    }
    MatchRequest(res, version, keep_alive, options_);
    return std::make_shared<HttpResponse>(std::move(res));
  }

  // CORS preflight: a page on another origin may send these methods and headers here.
  HttpResponse Preflight(const HttpRequest& request) {
    HttpResponse res{http::status::no_content, request.version()};
    res.set(http::field::access_control_allow_methods, "GET, HEAD, POST, PUT, OPTIONS");
    res.set(http::field::access_control_allow_headers, "Content-Type, Idempotency-Key");
    res.set(http::field::access_control_max_age, "600");
    res.keep_alive(request.keep_alive());
    MatchRequest(res, request.version(), request.keep_alive(), options_);
    res.prepare_payload();
    return res;
  }

  // ---- Server-Sent Events --------------------------------------------------------------------

  void StartEvents(const HttpRequest& request, std::shared_ptr<SseStream> events) {
    events_ = std::move(events);
    sse_header_.emplace(http::status::ok, request.version());
    sse_header_->set(http::field::content_type, "text/event-stream");
    sse_header_->set(http::field::cache_control, "no-cache");
    if (!options_.allow_origin.empty()) {
      sse_header_->set(http::field::access_control_allow_origin, options_.allow_origin);
    }
    sse_header_->chunked(true);
    sse_serializer_.emplace(*sse_header_);
    // The stream lives as long as the client listens; a client that stops reading is cut off
    // by the backlog limit instead of a timer.
    stream_.expires_never();
    http::async_write_header(stream_, *sse_serializer_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->EndEvents();
                               self->WatchForHangUp();
                               if (self->events_->Started()) self->FlushEvents();
                             });
  }

  // A client of an event stream sends nothing more; the read completes when it hangs up.
  void WatchForHangUp() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->EndEvents();
                              self->WatchForHangUp();
                            });
  }

  void FlushEvents() {
    if (!events_) return;
    auto data = std::make_shared<std::string>(events_->Take());
    if (data->empty()) return;
    asio::async_write(stream_, http::make_chunk(asio::buffer(*data)),
                      [self = shared_from_this(), data](beast::error_code ec, size_t) {
                        if (ec) return self->EndEvents();
                        self->FlushEvents();
                      });
  }

  void EndEvents() {
    if (events_) events_->MarkClosed();
    Close();
  }

  void Reject(int status, const std::string& message) {
    SendRefusal(status, std::make_shared<HttpResponse>(JsonError(status, message, 11, false)));
  }

  // Sends the server's own refusal, then closes without resetting the connection under it.
  void SendRefusal(int status, std::shared_ptr<HttpResponse> res) {
    if (on_reject_) on_reject_(status);
    if (!options_.allow_origin.empty()) {
      res->set(http::field::access_control_allow_origin, options_.allow_origin);
    }
    stream_.expires_after(options_.request_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec) return self->Close();
                        self->LingerThenClose();
                      });
  }

  // A client refused mid-request (say, a body over the limit) is usually still sending. Closing
  // with its bytes unread makes the kernel answer with a reset, which can destroy our error
  // response before the client reads it. So stop sending, read and discard what is still in
  // flight for a bounded time and volume, then close.
  void LingerThenClose() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTime);
    linger_left_ = kLingerBytes;
    Discard();
  }

  void Discard() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec || n >= self->linger_left_) return self->Close();
                              self->linger_left_ -= n;
                              self->Discard();
                            });
  }

  void Write(std::shared_ptr<HttpResponse> res) {
    stream_.expires_after(options_.request_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !res->keep_alive()) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  static constexpr std::chrono::seconds kLingerTime{2};
  static constexpr size_t kLingerBytes = 16 << 20;

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::array<char, 16 * 1024> discard_;
  size_t linger_left_ = 0;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<SseStream> events_;  // set once this connection is an event stream
  std::optional<http::response<http::empty_body>> sse_header_;
  std::optional<http::response_serializer<http::empty_body>> sse_serializer_;
  const HttpServerOptions& options_;
  const HttpServer::Handler& handler_;
  const HttpServer::RejectObserver& on_reject_;
  const HttpServer::FastPath& fast_path_;
  const HttpServer::StreamPath& stream_path_;
  asio::thread_pool& workers_;
  std::atomic<int>& open_;  // the server's count of live sessions
};

bool SseStream::Send(std::string_view name, std::string_view data) {
  std::shared_ptr<Session> session = session_.lock();
  if (!session) return false;
  bool flush = false;
  bool overflow = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return false;
    const size_t frame = name.size() + data.size() + 16;
    if (pending_.size() + frame > backlog_limit_) {
      closed_ = true;
      overflow = true;
    } else {
      pending_.append("event: ").append(name).append("\ndata: ").append(data).append("\n\n");
      if (started_ && !flushing_) flush = flushing_ = true;
    }
  }
  if (overflow) {
    session->CloseFromAnyThread();
    return false;
  }
  if (flush) session->ScheduleFlush();
  return true;
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  RejectObserver on_reject;
  FastPath fast_path;
  StreamPath stream_path;
  asio::io_context ioc;
  std::optional<asio::thread_pool> workers;
  tcp::acceptor acceptor{ioc};
  asio::steady_timer accept_retry{ioc};
  std::vector<std::thread> threads;
  std::atomic<bool> stopped{false};
  std::atomic<int> open_sessions{0};
  uint16_t bound_port = 0;

  void Accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        // Out of file descriptors (or memory): the pending connection stays in the backlog and
        // an immediate retry would fail the same way in a busy loop, so wait a little.
        accept_retry.expires_after(std::chrono::milliseconds(50));
        accept_retry.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec) Accept();
        });
        return;
      }
      {
        beast::error_code ignored;
        s.set_option(tcp::no_delay(true), ignored);
        auto session = std::make_shared<Session>(std::move(s), options, handler, on_reject,
                                                 fast_path, stream_path, *workers, open_sessions);
        if (open_sessions.load() > std::max(1, options.max_connections)) {
          session->Refuse();
        } else {
          session->Run();
        }
      }
      Accept();
    });
  }
};

HttpServer::HttpServer(HttpServerOptions options, Handler handler, RejectObserver on_reject,
                       FastPath fast_path, StreamPath stream_path)
    : impl_(std::make_unique<Impl>()) {
  impl_->stream_path = std::move(stream_path);
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->on_reject = std::move(on_reject);
  impl_->fast_path = std::move(fast_path);
}

HttpServer::~HttpServer() { Stop(); }

common::Status HttpServer::Start() {
  beast::error_code ec;
  auto address = asio::ip::make_address(impl_->options.host, ec);
  if (ec) {
    return common::Status::Error("invalid listen address '" + impl_->options.host +
                                 "': " + ec.message());
  }
  tcp::endpoint endpoint(address, impl_->options.port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return common::Status::Error("cannot listen on " + impl_->options.host + ":" +
                                 std::to_string(impl_->options.port) + ": " + ec.message());
  }
  impl_->bound_port = acceptor.local_endpoint().port();
  impl_->workers.emplace(std::max(1, impl_->options.worker_threads));  // idle when inline
  impl_->Accept();
  for (int i = 0; i < std::max(1, impl_->options.io_threads); ++i) {
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  }
  return common::Status::Ok();
}

void HttpServer::Stop() {
  if (impl_->stopped.exchange(true)) return;
  asio::post(impl_->ioc, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->accept_retry.cancel();
  });
  if (impl_->workers) impl_->workers->join();
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

uint16_t HttpServer::port() const { return impl_->bound_port; }

}  // namespace instaface::graphserver
