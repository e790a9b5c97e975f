#include "status_servers.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <thread>

namespace instaface::bench {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;

std::string StatusJson(const Snapshot& s) {
  const bool leading = s.role == Role::kLeader && s.lease_valid && !s.stale;
  return nlohmann::json{
      {"role", RoleName(s.role)},     {"term", s.term},
      {"leader_id", s.leader_id},     {"leader_app_address", s.leader_app_address},
      {"lease_valid", s.lease_valid}, {"stale", s.stale},
      {"is_leader", leading}}
      .dump();
}

namespace {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(asio::ip::tcp::socket socket, const View& view)
      : socket_(std::move(socket)), view_(view) {}
  void Read() {
    request_ = {};
    http::async_read(socket_, buffer_, request_,
                     [self = shared_from_this()](error_code ec, size_t) {
                       if (!ec) self->Respond();
                     });
  }

 private:
  void Respond() {
    response_ = {};
    response_.result(http::status::ok);
    response_.version(request_.version());
    response_.set(http::field::content_type, "application/json");
    response_.keep_alive(request_.keep_alive());
    response_.body() = StatusJson(view_.snapshot());
    response_.prepare_payload();
    http::async_write(socket_, response_, [self = shared_from_this()](error_code ec, size_t) {
      if (!ec) self->Read();
    });
  }

  asio::ip::tcp::socket socket_;
  const View& view_;
  boost::beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

class NdjsonSession : public std::enable_shared_from_this<NdjsonSession> {
 public:
  NdjsonSession(asio::local::stream_protocol::socket socket, const View& view)
      : socket_(std::move(socket)), view_(view) {}
  void Read() {
    asio::async_read_until(socket_, input_, '\n',
                           [self = shared_from_this()](error_code ec, size_t n) {
                             if (ec) return;
                             self->input_.consume(n);
                             self->reply_ = StatusJson(self->view_.snapshot()) + "\n";
                             asio::async_write(self->socket_, asio::buffer(self->reply_),
                                               [self](error_code ec2, size_t) {
                                                 if (!ec2) self->Read();
                                               });
                           });
  }

 private:
  asio::local::stream_protocol::socket socket_;
  const View& view_;
  asio::streambuf input_;
  std::string reply_;
};

}  // namespace

struct HttpStatusServer::Impl {
  explicit Impl(const View& v) : view(v), acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}) {}
  void Accept() {
    acceptor.async_accept([this](error_code ec, asio::ip::tcp::socket socket) {
      if (ec) return;
      socket.set_option(asio::ip::tcp::no_delay(true));
      std::make_shared<HttpSession>(std::move(socket), view)->Read();
      Accept();
    });
  }
  const View& view;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor;
  std::thread thread;
};

HttpStatusServer::HttpStatusServer(const View& view) : impl_(std::make_unique<Impl>(view)) {
  impl_->Accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

HttpStatusServer::~HttpStatusServer() {
  impl_->io.stop();
  impl_->thread.join();
}

uint16_t HttpStatusServer::port() const { return impl_->acceptor.local_endpoint().port(); }

struct NdjsonStatusServer::Impl {
  Impl(const View& v, const std::string& path) : view(v), acceptor(io, {path}) {}
  void Accept() {
    acceptor.async_accept([this](error_code ec, asio::local::stream_protocol::socket socket) {
      if (ec) return;
      std::make_shared<NdjsonSession>(std::move(socket), view)->Read();
      Accept();
    });
  }
  const View& view;
  asio::io_context io;
  asio::local::stream_protocol::acceptor acceptor;
  std::thread thread;
};

NdjsonStatusServer::NdjsonStatusServer(const View& view, const std::string& path)
    : impl_(std::make_unique<Impl>(view, path)) {
  impl_->Accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

NdjsonStatusServer::~NdjsonStatusServer() {
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace instaface::bench
