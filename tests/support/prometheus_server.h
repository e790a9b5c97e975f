// PrometheusServer: a private Prometheus for one test, listening on 127.0.0.1 at a free port,
// with its config and TSDB in its own temp dir, scraping the given targets every
// scrape_interval; killed on destruction even when the test fails.
//
// Thread safety: none; the test's thread owns it.
#ifndef INSTAFACE_TESTS_SUPPORT_PROMETHEUS_SERVER_H_
#define INSTAFACE_TESTS_SUPPORT_PROMETHEUS_SERVER_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace instaface::testing {

struct PrometheusServerOptions {
  std::vector<std::string> targets;  // host:port serving /metrics
  std::string job = "instaface";
  std::string scrape_interval = "1s";
  std::string binary = "prometheus";
  std::chrono::milliseconds ready_timeout{20000};
};

class PrometheusServer {
 public:
  explicit PrometheusServer(PrometheusServerOptions options);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  // Writes the config, starts Prometheus and waits for /-/ready.
  bool Start(std::string* error = nullptr);
  void Stop();

  uint16_t port() const { return port_; }
  // Runs an instant query; returns the body (JSON) or nullopt on an HTTP failure.
  std::optional<std::string> Query(const std::string& promql) const;
  std::string log() const;

 private:
  PrometheusServerOptions options_;
  TempDir dir_;
  uint16_t port_ = 0;
  Subprocess process_;
};

}  // namespace instaface::testing

#endif  // INSTAFACE_TESTS_SUPPORT_PROMETHEUS_SERVER_H_
