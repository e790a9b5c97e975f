#include "instaface/graphserver/http_server.h"

#include <array>
#include <atomic>
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
void MatchRequest(HttpResponse& res, unsigned version, bool request_keep_alive) {
  const bool response_keep_alive = res.keep_alive();
  res.version(version);
  res.keep_alive(request_keep_alive && response_keep_alive);
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServerOptions& options, const HttpServer::Handler& handler,
          const HttpServer::RejectObserver& on_reject, const HttpServer::FastPath& fast_path,
          asio::thread_pool& workers, std::atomic<int>& open)
      : stream_(std::move(socket)),
        options_(options),
        handler_(handler),
        on_reject_(on_reject),
        fast_path_(fast_path),
        workers_(workers),
        open_(open) {
    ++open_;
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
    if (fast_path_) {
      const unsigned version = request->version();
      const bool keep_alive = request->keep_alive();
      auto respond = [self = shared_from_this(), version, keep_alive](HttpResponse res) {
        MatchRequest(res, version, keep_alive);
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
    MatchRequest(res, version, keep_alive);
    return std::make_shared<HttpResponse>(std::move(res));
  }

  void Reject(int status, const std::string& message) {
    SendRefusal(status, std::make_shared<HttpResponse>(JsonError(status, message, 11, false)));
  }

  // Sends the server's own refusal, then closes without resetting the connection under it.
  void SendRefusal(int status, std::shared_ptr<HttpResponse> res) {
    if (on_reject_) on_reject_(status);
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
  const HttpServerOptions& options_;
  const HttpServer::Handler& handler_;
  const HttpServer::RejectObserver& on_reject_;
  const HttpServer::FastPath& fast_path_;
  asio::thread_pool& workers_;
  std::atomic<int>& open_;  // the server's count of live sessions
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  RejectObserver on_reject;
  FastPath fast_path;
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
                                                 fast_path, *workers, open_sessions);
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
                       FastPath fast_path)
    : impl_(std::make_unique<Impl>()) {
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
