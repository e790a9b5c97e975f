// A real Prometheus server scrapes AgentMetrics through MetricsServer; the values it stores
// must be the ones the agent set.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "instaface/metrics/agent_metrics.h"
#include "instaface/metrics/metrics_server.h"
#include "support/prometheus_server.h"

namespace instaface::metrics {
namespace {

using std::chrono::milliseconds;

// Prometheus re-reads targets on a 5 s timer, then scrapes every second: 30 s is a liveness
// deadline, not a performance expectation.
constexpr milliseconds kDeadline{30000};

// The value of the single series an instant query returns, or nullopt while there is none.
std::optional<double> QueryValue(const testing::PrometheusServer& prometheus,
                                 const std::string& promql) {
  auto body = prometheus.Query(promql);
  if (!body) return std::nullopt;
  auto json = nlohmann::json::parse(*body, nullptr, false);
  if (json.is_discarded() || json.value("status", "") != "success") return std::nullopt;
  const auto& result = json["data"]["result"];
  if (!result.is_array() || result.size() != 1) return std::nullopt;
  return std::stod(result[0]["value"][1].get<std::string>());
}

std::optional<double> WaitForValue(const testing::PrometheusServer& prometheus,
                                   const std::string& promql, double expected) {
  auto end = std::chrono::steady_clock::now() + kDeadline;
  std::optional<double> last;
  while (std::chrono::steady_clock::now() < end) {
    last = QueryValue(prometheus, promql);
    if (last && *last == expected) return last;
    std::this_thread::sleep_for(milliseconds(200));
  }
  return last;
}

TEST(AgentMetricsPrometheusTest, RealPrometheusScrapesTheAgentSeries) {
  auto server = MetricsServer::Start("127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.status().message();
  AgentMetrics metrics(*(*server)->registry());
  metrics.SetTerm(41);
  metrics.SetRole("leader");
  metrics.HeartbeatSent("n2");
  metrics.HeartbeatSent("n2");
  metrics.MessageRejected("bad_mac");

  testing::PrometheusServerOptions options;
  options.targets = {(*server)->address()};
  options.job = "instaface-agent";
  testing::PrometheusServer prometheus(options);
  std::string error;
  ASSERT_TRUE(prometheus.Start(&error)) << error;

  auto up = WaitForValue(prometheus, "up{job=\"instaface-agent\"}", 1);
  ASSERT_TRUE(up && *up == 1) << "target never came up; prometheus log:\n" << prometheus.log();
  auto term = WaitForValue(prometheus, "instaface_term", 41);
  ASSERT_TRUE(term) << "no instaface_term series";
  EXPECT_EQ(*term, 41);
  EXPECT_EQ(QueryValue(prometheus, "instaface_role{role=\"leader\"}"), 1.0);
  EXPECT_EQ(QueryValue(prometheus, "instaface_role{role=\"follower\"}"), 0.0);
  EXPECT_EQ(QueryValue(prometheus, "instaface_heartbeats_sent_total{peer=\"n2\"}"), 2.0);
  EXPECT_EQ(QueryValue(prometheus, "instaface_messages_rejected_total{reason=\"bad_mac\"}"), 1.0);

  // A change is seen by a later scrape: the values are live, not a one-off.
  metrics.SetTerm(42);
  metrics.SetRole("follower");
  auto next = WaitForValue(prometheus, "instaface_term", 42);
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, 42);
  EXPECT_EQ(WaitForValue(prometheus, "instaface_role{role=\"follower\"}", 1), 1.0);
}

}  // namespace
}  // namespace instaface::metrics
