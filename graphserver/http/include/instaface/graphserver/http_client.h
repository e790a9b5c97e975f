// A blocking HTTP/1.1 client for one server (host:port) that keeps its connection alive between
// requests and bounds every request by a timeout. Used to forward writes to the leader, and by
// the load bot, the benchmarks and the end-to-end tests.
//
// Internally each client owns a private io_context and runs Beast's asynchronous operations on
// the calling thread, because only the asynchronous operations honour a deadline.
//
// Thread safety: none; one thread at a time per client. Use one client per thread, or a
// ClientPool.
#ifndef INSTAFACE_GRAPHSERVER_HTTP_CLIENT_H_
#define INSTAFACE_GRAPHSERVER_HTTP_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "instaface/graphserver/http_server.h"

namespace instaface::graphserver {

// host and port of an "http://host:port[/...]" or "host:port" address.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
std::optional<HostPort> ParseHttpAddress(const std::string& address);

struct ClientResult {
  bool ok = false;
  std::string error;  // when !ok: why no answer arrived (connect failed, timeout, ...)
  bool timed_out = false;
  HttpResponse response;
};

class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `request` (Host, Content-Length and keep-alive are filled in). A kept-alive connection
  // that the server closed while idle is reopened once, transparently.
  ClientResult Send(HttpRequest request, std::chrono::milliseconds timeout);
  // Convenience: method, target, body (JSON) plus extra headers.
  ClientResult Send(boost::beast::http::verb method, const std::string& target,
                    const std::string& body, std::chrono::milliseconds timeout,
                    const std::vector<std::pair<std::string, std::string>>& headers = {});
  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }

 private:
  struct Impl;
  std::string host_;
  uint16_t port_;
  std::unique_ptr<Impl> impl_;
};

// Reusable keep-alive clients, keyed by address, shared between threads.
class ClientPool {
 public:
  explicit ClientPool(size_t max_idle_per_address = 64) : max_idle_(max_idle_per_address) {}
  // Sends to the "http://host:port" address with a pooled client.
  ClientResult Send(const std::string& address, HttpRequest request,
                    std::chrono::milliseconds timeout);

 private:
  size_t max_idle_;
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<HttpClient>>> idle_;  // under mu_
};

}  // namespace instaface::graphserver

#endif  // INSTAFACE_GRAPHSERVER_HTTP_CLIENT_H_
