#include "instaface/graphserver/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>

namespace instaface::graphserver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::optional<HostPort> ParseHttpAddress(const std::string& address) {
  std::string rest = address;
  const std::string scheme = "http://";
  if (rest.compare(0, scheme.size(), scheme) == 0) rest = rest.substr(scheme.size());
  rest = rest.substr(0, rest.find('/'));
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= rest.size()) return std::nullopt;
  std::string host = rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned long port = 0;
  for (size_t i = colon + 1; i < rest.size(); ++i) {
    if (rest[i] < '0' || rest[i] > '9') return std::nullopt;
    port = port * 10 + static_cast<unsigned long>(rest[i] - '0');
    if (port > 65535) return std::nullopt;
  }
  if (port == 0) return std::nullopt;
  return HostPort{host, static_cast<uint16_t>(port)};
}

struct HttpClient::Impl {
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::optional<tcp::endpoint> endpoint;  // resolved once

  void Reset() {
    if (stream) {
      beast::error_code ignored;
      stream->socket().close(ignored);
    }
    stream.reset();
    buffer.clear();
  }
};

HttpClient::HttpClient(std::string host, uint16_t port)
    : host_(std::move(host)), port_(port), impl_(std::make_unique<Impl>()) {}

HttpClient::~HttpClient() = default;

ClientResult HttpClient::Send(HttpRequest request, std::chrono::milliseconds timeout) {
  request.set(http::field::host, host_ + ":" + std::to_string(port_));
  request.keep_alive(true);
  request.prepare_payload();

  auto& impl = *impl_;
  for (int attempt = 0; attempt < 2; ++attempt) {
    ClientResult result;
    bool reused = impl.stream.has_value();
    beast::error_code ec;
    if (!impl.endpoint) {
      tcp::resolver resolver(impl.ioc);
      auto results = resolver.resolve(host_, std::to_string(port_), ec);
      if (ec || results.empty()) {
        result.error = "cannot resolve " + host_ + ": " + ec.message();
        return result;
      }
      impl.endpoint = results.begin()->endpoint();
    }
    if (!impl.stream) {
      impl.stream.emplace(impl.ioc);
      impl.stream->expires_after(timeout);
      impl.stream->async_connect(*impl.endpoint, [&](beast::error_code e) { ec = e; });
      impl.ioc.restart();
      impl.ioc.run();
      if (ec) {
        result.timed_out = ec == beast::error::timeout;
        result.error = "connect to " + host_ + ":" + std::to_string(port_) + ": " + ec.message();
        impl.Reset();
        return result;
      }
      impl.stream->socket().set_option(tcp::no_delay(true), ec);
    }
    impl.stream->expires_after(timeout);
    bool wrote = false;
    size_t read_bytes = 0;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::async_write(*impl.stream, request, [&](beast::error_code e, size_t) {
      ec = e;
      if (e) return;
      wrote = true;
      http::async_read(*impl.stream, impl.buffer, parser, [&](beast::error_code e2, size_t n) {
        ec = e2;
        read_bytes = n;
      });
    });
    impl.ioc.restart();
    impl.ioc.run();
    if (!ec) {
      result.ok = true;
      result.response = parser.release();
      if (!result.response.keep_alive()) impl.Reset();
      return result;
    }
    impl.Reset();
    // An idle kept-alive connection the server has since closed fails at once with nothing
    // read; that request never reached a handler, so it is safe to send again.
    bool stale = reused && read_bytes == 0 &&
                 (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                  ec == asio::error::broken_pipe || ec == asio::error::eof || !wrote);
    if (stale && ec != beast::error::timeout && attempt == 0) continue;
    result.timed_out = ec == beast::error::timeout;
    result.error = (wrote ? "read from " : "write to ") + host_ + ":" + std::to_string(port_) +
                   ": " + ec.message();
    return result;
  }
  return ClientResult{false, "unreachable", false, {}};
}

ClientResult HttpClient::Send(http::verb method, const std::string& target, const std::string& body,
                              std::chrono::milliseconds timeout,
                              const std::vector<std::pair<std::string, std::string>>& headers) {
  HttpRequest req{method, target, 11};
  if (!body.empty() || method == http::verb::post || method == http::verb::put) {
    req.set(http::field::content_type, "application/json");
  }
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = body;
  return Send(std::move(req), timeout);
}

ClientResult ClientPool::Send(const std::string& address, HttpRequest request,
                              std::chrono::milliseconds timeout) {
  std::unique_ptr<HttpClient> client;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& idle = idle_[address];
    if (!idle.empty()) {
      client = std::move(idle.back());
      idle.pop_back();
    }
  }
  if (!client) {
    auto hp = ParseHttpAddress(address);
    if (!hp) return ClientResult{false, "invalid address '" + address + "'", false, {}};
    client = std::make_unique<HttpClient>(hp->host, hp->port);
  }
  ClientResult result = client->Send(std::move(request), timeout);
  if (result.ok) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& idle = idle_[address];
    if (idle.size() < max_idle_) idle.push_back(std::move(client));
  }
  return result;
}

}  // namespace instaface::graphserver
