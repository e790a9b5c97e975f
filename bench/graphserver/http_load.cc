#include "http_load.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace instaface::bench {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Tally {
  uint64_t ok = 0, failed = 0;
};

// One keep-alive connection's request loop. Its io_context runs on one thread, so the tally
// needs no lock.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& ioc, const HttpLoadOptions& options, tcp::endpoint endpoint, int id,
             Clock::time_point end, Tally& tally)
      : ioc_(ioc), options_(options), endpoint_(endpoint), id_(id), end_(end), tally_(tally) {}

  void Connect() {
    stream_.emplace(ioc_);
    buffer_.clear();
    stream_->expires_after(options_.timeout);
    stream_->async_connect(endpoint_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Fail();
      beast::error_code ignored;
      self->stream_->socket().set_option(tcp::no_delay(true), ignored);
      self->Send();
    });
  }

 private:
  void Send() {
    if (Clock::now() >= end_) return;
    request_ = {http::verb::post, options_.target, 11};
    request_.set(http::field::host, options_.host);
    request_.set(http::field::content_type, "application/json");
    request_.body() = options_.body(id_, sent_++);
    request_.prepare_payload();
    response_ = {};
    stream_->expires_after(options_.timeout);
    http::async_write(
        *stream_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
          if (ec) return self->Fail();
          http::async_read(
              *self->stream_, self->buffer_, self->response_,
              [self](beast::error_code read_ec, size_t) { self->OnResponse(read_ec); });
        });
  }

  void OnResponse(beast::error_code ec) {
    if (ec) return Fail();
    if (response_.result_int() == 200) {
      ++tally_.ok;
    } else {
      ++tally_.failed;
    }
    if (!response_.keep_alive()) {
      Close();
      if (Clock::now() < end_) Connect();
      return;
    }
    Send();
  }

  void Fail() {
    ++tally_.failed;
    Close();
    if (Clock::now() < end_) Connect();
  }

  void Close() {
    beast::error_code ignored;
    stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_->socket().close(ignored);
  }

  asio::io_context& ioc_;
  const HttpLoadOptions& options_;
  tcp::endpoint endpoint_;
  int id_;
  Clock::time_point end_;
  Tally& tally_;
  uint64_t sent_ = 0;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

HttpLoadResult RunHttpLoad(const HttpLoadOptions& options) {
  const int threads = std::max(1, std::min(options.threads, options.connections));
  const tcp::endpoint endpoint(asio::ip::make_address(options.host), options.port);
  std::vector<std::unique_ptr<asio::io_context>> loops;
  std::vector<Tally> tallies(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) loops.push_back(std::make_unique<asio::io_context>(1));
  const auto start = Clock::now();
  const auto end = start + options.duration;
  for (int c = 0; c < options.connections; ++c) {
    const size_t t = static_cast<size_t>(c % threads);
    std::make_shared<Connection>(*loops[t], options, endpoint, c, end, tallies[t])->Connect();
  }
  std::vector<std::thread> workers;
  for (auto& loop : loops) workers.emplace_back([&loop] { loop->run(); });
  for (auto& w : workers) w.join();
  HttpLoadResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const Tally& t : tallies) {
    result.ok += t.ok;
    result.failed += t.failed;
  }
  return result;
}

}  // namespace instaface::bench
