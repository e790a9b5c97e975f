#include "support/prometheus_server.h"

#include <fstream>
#include <thread>

#include "support/free_port.h"
#include "support/http_get.h"

namespace instaface::testing {

PrometheusServer::PrometheusServer(PrometheusServerOptions options)
    : options_(std::move(options)), dir_("instaface-prom") {}

PrometheusServer::~PrometheusServer() { process_.Kill(); }

std::string PrometheusServer::log() const { return ReadFileOrEmpty(dir_.File("prometheus.log")); }

bool PrometheusServer::Start(std::string* error) {
  auto fail = [&](std::string message) {
    if (error) *error = std::move(message);
    return false;
  };
  {
    std::ofstream config(dir_.File("prometheus.yml"));
    config << "global:\n"
           << "  scrape_interval: " << options_.scrape_interval << "\n"
           << "  scrape_timeout: " << options_.scrape_interval << "\n"
           << "scrape_configs:\n"
           << "  - job_name: " << options_.job << "\n"
           << "    static_configs:\n"
           << "      - targets: [";
    for (size_t i = 0; i < options_.targets.size(); ++i) {
      config << (i ? ", " : "") << "'" << options_.targets[i] << "'";
    }
    config << "]\n";
    if (!config) return fail("cannot write " + dir_.File("prometheus.yml"));
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePort();
    if (port_ == 0) return fail("no free port");
    SubprocessOptions options;
    options.argv = {options_.binary, "--config.file=" + dir_.File("prometheus.yml"),
                    "--storage.tsdb.path=" + dir_.File("data"),
                    "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"};
    options.stderr_path = dir_.File("prometheus.log");
    options.working_dir = dir_.path();
    process_ = Subprocess(options);
    if (!process_.ok()) return fail(process_.error());
    auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
    while (std::chrono::steady_clock::now() < deadline && process_.Running()) {
      HttpResponse ready = HttpGet(port_, "/-/ready", std::chrono::milliseconds(500));
      if (ready.status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    process_.Kill();
  }
  return fail("prometheus did not become ready: " + log());
}

void PrometheusServer::Stop() {
  if (!process_.Running()) return;
  process_.Terminate();
  if (!process_.Wait(std::chrono::seconds(5))) process_.Kill();
}

std::optional<std::string> PrometheusServer::Query(const std::string& promql) const {
  HttpResponse response = HttpGet(port_, "/api/v1/query?query=" + UrlEncode(promql));
  if (response.status != 200) return std::nullopt;
  return response.body;
}

}  // namespace instaface::testing
