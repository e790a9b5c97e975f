// MetricsServer's address handling and HTTP exposition, and AgentMetrics' series, read back
// from a real scrape of /metrics. One exposer for the whole binary: each takes ~2 s to stop.
#include "instaface/metrics/metrics_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "instaface/metrics/agent_metrics.h"
#include "support/free_port.h"
#include "support/http_get.h"

namespace instaface::metrics {
namespace {

TEST(ParseHostPortTest, AcceptsHostPortAndBracketedV6) {
  auto v4 = ParseHostPort("127.0.0.1:9100");
  ASSERT_TRUE(v4.ok()) << v4.status().message();
  EXPECT_EQ(v4->first, "127.0.0.1");
  EXPECT_EQ(v4->second, 9100);
  auto any = ParseHostPort("0.0.0.0:0");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->second, 0);
  auto v6 = ParseHostPort("[::1]:9200");
  ASSERT_TRUE(v6.ok()) << v6.status().message();
  EXPECT_EQ(v6->first, "::1");
  EXPECT_EQ(v6->second, 9200);
}

TEST(ParseHostPortTest, RejectsMalformedAddresses) {
  for (const char* bad : {"", "9100", ":9100", "host:", "host:65536", "host:12x", "::1:9100",
                          "[::1]", "[::1]9100", "host:1234567"}) {
    auto parsed = ParseHostPort(bad);
    EXPECT_FALSE(parsed.ok()) << "accepted '" << bad << "'";
    if (!parsed.ok()) {
      EXPECT_NE(parsed.status().message().find("metrics"), std::string::npos);
    }
  }
}

TEST(MetricsServerTest, PortInUseIsAnErrorValue) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string taken = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto server = MetricsServer::Start(taken);
  close(fd);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find(taken), std::string::npos) << server.status().message();
}

TEST(MetricsServerTest, BadAddressIsAnErrorValue) {
  EXPECT_FALSE(MetricsServer::Start("nonsense").ok());
}

// Parses the text exposition into "name{labels}" -> value.
std::map<std::string, double> ParseExposition(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

TEST(AgentMetricsScrapeTest, SeriesAreExposedWithConventionalNamesAndValues) {
  auto server = MetricsServer::Start("127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.status().message();
  ASSERT_NE((*server)->port(), 0);
  EXPECT_EQ((*server)->address(), "127.0.0.1:" + std::to_string((*server)->port()));
  AgentMetrics m(*(*server)->registry());

  m.SetTerm(12);
  m.SetRole("pre-candidate");
  m.SetRole("leader");
  m.SetRole("emperor");  // unknown: ignored
  m.LeaderChanged();
  m.LeaderChanged();
  m.ElectionStarted();
  m.ElectionWon();
  m.VoteGranted();
  for (int i = 0; i < 3; ++i) m.HeartbeatSent("n2");
  m.HeartbeatSent("n3");
  m.HeartbeatFailed("n3");
  m.SetPeersRegistered(3);
  m.SetPeersReachable(2);
  m.ObserveElectionDuration(0.3);
  m.ObserveElectionDuration(1.2);
  m.SyncRedisErrors(5);
  m.SyncRedisErrors(4);  // a smaller total never lowers a counter
  m.RedisError();
  m.MessageRejected("bad_mac");
  m.MessageRejected("bad_mac");
  m.SetLeaseRemaining(-1);
  m.SetUnplugged(true);

  testing::HttpResponse scrape = testing::HttpGet((*server)->port(), "/metrics");
  ASSERT_EQ(scrape.status, 200) << scrape.error;
  auto series = ParseExposition(scrape.body);
  EXPECT_EQ(series["instaface_term"], 12);
  EXPECT_EQ(series["instaface_role{role=\"leader\"}"], 1);
  EXPECT_EQ(series["instaface_role{role=\"follower\"}"], 0);
  EXPECT_EQ(series["instaface_role{role=\"pre_candidate\"}"], 0);
  EXPECT_EQ(series["instaface_role{role=\"candidate\"}"], 0);
  EXPECT_EQ(series.count("instaface_role{role=\"emperor\"}"), 0u);
  EXPECT_EQ(series["instaface_leader_changes_total"], 2);
  EXPECT_EQ(series["instaface_elections_started_total"], 1);
  EXPECT_EQ(series["instaface_elections_won_total"], 1);
  EXPECT_EQ(series["instaface_votes_granted_total"], 1);
  EXPECT_EQ(series["instaface_heartbeats_sent_total{peer=\"n2\"}"], 3);
  EXPECT_EQ(series["instaface_heartbeats_sent_total{peer=\"n3\"}"], 1);
  EXPECT_EQ(series["instaface_heartbeats_failed_total{peer=\"n3\"}"], 1);
  EXPECT_EQ(series["instaface_peers_registered"], 3);
  EXPECT_EQ(series["instaface_peers_reachable"], 2);
  EXPECT_EQ(series["instaface_election_duration_seconds_count"], 2);
  EXPECT_DOUBLE_EQ(series["instaface_election_duration_seconds_sum"], 1.5);
  EXPECT_EQ(series["instaface_election_duration_seconds_bucket{le=\"0.5\"}"], 1);
  EXPECT_EQ(series["instaface_election_duration_seconds_bucket{le=\"+Inf\"}"], 2);
  EXPECT_EQ(series["instaface_redis_errors_total"], 6);
  EXPECT_EQ(series["instaface_messages_rejected_total{reason=\"bad_mac\"}"], 2);
  EXPECT_EQ(series["instaface_lease_remaining_seconds"], 0);
  EXPECT_EQ(series["instaface_unplugged"], 1);
  // Counters carry TYPE counter and a _total name; every family has HELP.
  EXPECT_NE(scrape.body.find("# TYPE instaface_leader_changes_total counter"), std::string::npos);
  EXPECT_NE(scrape.body.find("# TYPE instaface_election_duration_seconds histogram"),
            std::string::npos);
  std::regex type_line("# TYPE (\\S+) ");
  for (auto it = std::sregex_iterator(scrape.body.begin(), scrape.body.end(), type_line);
       it != std::sregex_iterator(); ++it) {
    std::string name = (*it)[1];
    if (name.rfind("exposer_", 0) == 0) continue;  // prometheus-cpp's own
    EXPECT_EQ(name.rfind("instaface_", 0), 0u) << name;
    EXPECT_NE(scrape.body.find("# HELP " + name + " "), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace instaface::metrics
