// MetricsServer: a Prometheus registry served over HTTP at /metrics (prometheus-cpp's pull
// Exposer), shared by instaface-agent and instaface-graphserver. Each process makes one, passes
// registry() to its metric sets (AgentMetrics, a graphserver's own), and keeps the server alive
// as long as it should be scraped.
//
//   auto server = MetricsServer::Start("127.0.0.1:9100");
//   if (!server.ok()) { std::cerr << server.status().message() << "\n"; return 2; }
//   AgentMetrics metrics(*(*server)->registry());
//
// Note: destroying the server takes about 2 s (civetweb joins its threads), so tests should make
// one per test binary.
//
// Thread safety: all methods may be called from any thread; the registry is thread-safe.
#ifndef INSTAFACE_METRICS_METRICS_SERVER_H_
#define INSTAFACE_METRICS_METRICS_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "instaface/common/status.h"

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace instaface::metrics {

class MetricsServer {
 public:
  // `listen` is host:port ("127.0.0.1:9100", "0.0.0.0:9100", "[::1]:9100"); port 0 picks a
  // free one. An unparsable address or a port in use is an error, never an exception.
  // With no registry a new one is made.
  static common::StatusOr<std::unique_ptr<MetricsServer>> Start(
      std::string_view listen, std::shared_ptr<prometheus::Registry> registry = nullptr);

  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }
  uint16_t port() const { return port_; }
  // host:port actually bound, e.g. "127.0.0.1:40123".
  const std::string& address() const { return address_; }

 private:
  MetricsServer() = default;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  uint16_t port_ = 0;
  std::string address_;
};

// Splits "host:port" / "[v6]:port"; for flag validation before anything binds.
common::StatusOr<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view listen);

}  // namespace instaface::metrics

#endif  // INSTAFACE_METRICS_METRICS_SERVER_H_
