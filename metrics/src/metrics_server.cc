#include "instaface/metrics/metrics_server.h"

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <exception>

namespace instaface::metrics {

using common::Status;
using common::StatusOr;

StatusOr<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view listen) {
  std::string host;
  std::string_view port;
  if (!listen.empty() && listen.front() == '[') {
    size_t close = listen.find(']');
    if (close == std::string_view::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return Status::Error("metrics address must be host:port or [v6]:port (got '" +
                           std::string(listen) + "')");
    }
    host = std::string(listen.substr(1, close - 1));
    port = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string_view::npos || listen.find(':') != colon) {
      return Status::Error("metrics address must be host:port (got '" + std::string(listen) + "')");
    }
    host = std::string(listen.substr(0, colon));
    port = listen.substr(colon + 1);
  }
  if (host.empty())
    return Status::Error("metrics address has no host (got '" + std::string(listen) + "')");
  if (port.empty() || port.size() > 5) {
    return Status::Error("metrics port must be 0..65535 (got '" + std::string(port) + "')");
  }
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') {
      return Status::Error("metrics port must be 0..65535 (got '" + std::string(port) + "')");
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535)
    return Status::Error("metrics port must be 0..65535 (got '" + std::string(port) + "')");
  return std::make_pair(std::move(host), static_cast<uint16_t>(value));
}

StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    std::string_view listen, std::shared_ptr<prometheus::Registry> registry) {
  auto parsed = ParseHostPort(listen);
  if (!parsed.ok()) return parsed.status();
  const auto& [host, port] = *parsed;
  // civetweb spells an IPv6 listener as [addr]:port too.
  std::string bind =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->registry_ = registry ? std::move(registry) : std::make_shared<prometheus::Registry>();
  try {
    // One thread: scrapes are rare and small.
    server->exposer_ = std::make_unique<prometheus::Exposer>(bind, 1);
  } catch (const std::exception& e) {
    return Status::Error("cannot serve metrics on " + std::string(listen) + ": " + e.what() +
                         " (is the port in use?)");
  }
  server->exposer_->RegisterCollectable(server->registry_);
  std::vector<int> ports = server->exposer_->GetListeningPorts();
  server->port_ = ports.empty() ? port : static_cast<uint16_t>(ports.front());
  server->address_ = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                     std::to_string(server->port_);
  return server;
}

MetricsServer::~MetricsServer() = default;

}  // namespace instaface::metrics
