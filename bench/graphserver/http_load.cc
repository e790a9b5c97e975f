#include "http_load.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace instaface::bench {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

class Connection;

// One event loop and the connections it drives; touched only from its own thread.
struct Loop {
  asio::io_context ioc{1};
  asio::steady_timer watchdog{ioc};
  std::vector<std::shared_ptr<Connection>> connections;
  int active = 0;  // connections still sending
  uint64_t ok = 0, failed = 0;
};

// One keep-alive connection's request loop. There is no timer per request (arming one costs
// system calls on every request); the loop's watchdog closes whatever is still waiting `timeout`
// after the end.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Loop& loop, const HttpLoadOptions& options, tcp::endpoint endpoint, int id,
             Clock::time_point end)
      : loop_(loop), options_(options), endpoint_(endpoint), id_(id), end_(end) {}

  void Connect() {
    socket_.emplace(loop_.ioc);
    buffer_.clear();
    socket_->async_connect(endpoint_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Fail();
      beast::error_code ignored;
      self->socket_->set_option(tcp::no_delay(true), ignored);
      self->Send();
    });
  }

  void Close() {
    if (!socket_) return;
    beast::error_code ignored;
    socket_->shutdown(tcp::socket::shutdown_both, ignored);
    socket_->close(ignored);
  }

 private:
  void Send() {
    if (Clock::now() >= end_) return Stop();
    request_ = {http::verb::post, options_.target, 11};
    request_.set(http::field::host, options_.host);
    request_.set(http::field::content_type, "application/json");
    request_.body() = options_.body(id_, sent_++);
    request_.prepare_payload();
    response_ = {};
    http::async_write(
        *socket_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
          if (ec) return self->Fail();
          http::async_read(
              *self->socket_, self->buffer_, self->response_,
              [self](beast::error_code read_ec, size_t) { self->OnResponse(read_ec); });
        });
  }

  void OnResponse(beast::error_code ec) {
    if (ec) return Fail();
    if (response_.result_int() == 200) {
      ++loop_.ok;
    } else {
      ++loop_.failed;
    }
    if (response_.keep_alive()) return Send();
    Close();
    Reconnect();
  }

  void Fail() {
    ++loop_.failed;
    Close();
    Reconnect();
  }

  void Reconnect() {
    if (Clock::now() >= end_) return Stop();
    Connect();
  }

  // This connection sends no more; the last one to stop releases the watchdog, and the loop ends.
  void Stop() {
    Close();
    if (--loop_.active == 0) loop_.watchdog.cancel();
  }

  Loop& loop_;
  const HttpLoadOptions& options_;
  tcp::endpoint endpoint_;
  int id_;
  Clock::time_point end_;
  uint64_t sent_ = 0;
  std::optional<tcp::socket> socket_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

HttpLoadResult RunHttpLoad(const HttpLoadOptions& options) {
  const int threads = std::max(1, std::min(options.threads, options.connections));
  const tcp::endpoint endpoint(asio::ip::make_address(options.host), options.port);
  std::vector<std::unique_ptr<Loop>> loops;
  for (int t = 0; t < threads; ++t) loops.push_back(std::make_unique<Loop>());
  const auto start = Clock::now();
  const auto end = start + options.duration;
  for (int c = 0; c < options.connections; ++c) {
    Loop& loop = *loops[static_cast<size_t>(c % threads)];
    loop.connections.push_back(std::make_shared<Connection>(loop, options, endpoint, c, end));
    ++loop.active;
    loop.connections.back()->Connect();
  }
  for (auto& loop : loops) {
    loop->watchdog.expires_at(end + options.timeout);
    loop->watchdog.async_wait([&loop = *loop](beast::error_code ec) {
      if (ec) return;                               // every connection stopped in time
      for (auto& c : loop.connections) c->Close();  // a request still unanswered fails
    });
  }
  std::vector<std::thread> workers;
  for (auto& loop : loops) workers.emplace_back([&loop] { loop->ioc.run(); });
  for (auto& w : workers) w.join();
  HttpLoadResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const auto& loop : loops) {
    result.ok += loop->ok;
    result.failed += loop->failed;
  }
  return result;
}

}  // namespace instaface::bench
