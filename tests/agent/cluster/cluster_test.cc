// The agent as a whole, as operators see it: real instaface-agent processes electing over nng,
// finding each other in a private Redis, publishing through shared memory, steered by
// instafacectl. Deadlines below are liveness bounds, generous for a loaded machine; how fast
// failover really is is measured by scripts/bench-failover, not asserted here.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "cluster.h"
#include "support/http_get.h"
#include "support/prometheus_server.h"

namespace instaface::testing {
namespace {

using namespace std::chrono_literals;
constexpr auto kElect = 10s;

// Records every (term -> agents claiming to lead in it) seen while sampling, to catch two
// leaders in one term at any sampled instant, including stale claims of a stopped agent.
class LeaderClaims {
 public:
  void Sample(Cluster& c) {
    for (int i : c.All()) {
      Observation o = c.Observe(i);
      if (o.readable && o.snapshot.role == Role::kLeader) claims_[o.snapshot.term].insert(i);
    }
  }
  void SampleFor(Cluster& c, std::chrono::milliseconds period) {
    const auto end = std::chrono::steady_clock::now() + period;
    while (std::chrono::steady_clock::now() < end) {
      Sample(c);
      std::this_thread::sleep_for(1ms);
    }
  }
  std::string TermsWithTwoLeaders() const {
    std::string out;
    for (const auto& [term, who] : claims_) {
      if (who.size() > 1) out += " term " + std::to_string(term);
    }
    return out;
  }

 private:
  std::map<uint64_t, std::set<int>> claims_;
};

// The value of one sample line of a Prometheus text exposition, or -1 when absent.
double MetricValue(const std::string& exposition, const std::string& series) {
  size_t at = 0;
  while ((at = exposition.find(series, at)) != std::string::npos) {
    const bool line_start = at == 0 || exposition[at - 1] == '\n';
    const size_t end = at + series.size();
    if (line_start && end < exposition.size() && exposition[end] == ' ') {
      return std::stod(exposition.substr(end + 1));
    }
    at = end;
  }
  return -1;
}

class ClusterTest : public ::testing::Test {
 protected:
  void StartCluster(int count, ClusterOptions options = {}) {
    cluster_ = std::make_unique<Cluster>(std::move(options));
    std::string error;
    ASSERT_TRUE(cluster_->Start(count, &error)) << error;
  }
  int ElectedLeader(uint64_t* term = nullptr) {
    auto leader = cluster_->WaitForAgreedLeader(cluster_->All(), kElect, 0, term);
    EXPECT_TRUE(leader.has_value()) << cluster_->Logs();
    return leader.value_or(-1);
  }
  void TearDown() override {
    if (HasFailure() && cluster_) std::cerr << cluster_->Logs();
  }
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(ClusterTest, ThreeAgentsAgreeOnOneLeaderAndTerm) {
  StartCluster(3);
  uint64_t term = 0;
  int leader = ElectedLeader(&term);
  ASSERT_GE(leader, 0);
  EXPECT_GE(term, 1u);
  std::string out;
  ExitStatus s = cluster_->Ctl(leader, {"status", "--json"}, &out);
  ASSERT_TRUE(s.success()) << out;
  EXPECT_NE(out.find("\"role\":\"leader\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"lease_valid\":true"), std::string::npos) << out;
}

TEST_F(ClusterTest, FiveAgentsAgreeOnOneLeaderAndTerm) {
  ClusterOptions o;
  o.cluster_size = 5;
  StartCluster(5, o);
  ASSERT_GE(ElectedLeader(), 0);
}

TEST_F(ClusterTest, KillNineOfTheLeaderElectsANewOneInAHigherTerm) {
  StartCluster(3);
  uint64_t term = 0;
  int leader = ElectedLeader(&term);
  ASSERT_GE(leader, 0);
  cluster_->agent(leader).process.Kill();
  uint64_t new_term = 0;
  auto next = cluster_->WaitForAgreedLeader(cluster_->AllBut(leader), kElect, term, &new_term);
  ASSERT_TRUE(next.has_value()) << cluster_->Logs();
  EXPECT_NE(*next, leader);
  EXPECT_GT(new_term, term);
}

TEST_F(ClusterTest, StoppedLeaderIsReplacedAndStepsDownWhenResumedWithoutTwoLeadersInATerm) {
  StartCluster(3);
  uint64_t term = 0;
  int leader = ElectedLeader(&term);
  ASSERT_GE(leader, 0);
  LeaderClaims claims;
  claims.Sample(*cluster_);
  ASSERT_TRUE(cluster_->agent(leader).process.Stop());
  auto next = cluster_->WaitForAgreedLeader(cluster_->AllBut(leader), kElect, term);
  ASSERT_TRUE(next.has_value()) << cluster_->Logs();
  claims.Sample(*cluster_);
  ASSERT_TRUE(cluster_->agent(leader).process.Continue());
  // Sample densely while the old leader wakes up believing it still leads.
  claims.SampleFor(*cluster_, 1500ms);
  EXPECT_EQ(claims.TermsWithTwoLeaders(), "");
  auto settled = cluster_->WaitForAgreedLeader(cluster_->All(), kElect, term);
  ASSERT_TRUE(settled.has_value()) << cluster_->Logs();
  Observation old = cluster_->Observe(leader);
  EXPECT_FALSE(old.snapshot.stale);
  if (*settled != leader) {
    EXPECT_NE(old.snapshot.role, Role::kLeader);
  }
}

TEST_F(ClusterTest, RedisDownForTenSecondsChangesNoLeaderAndANewAgentJoinsAfter) {
  ClusterOptions o;
  o.cluster_size = 4;  // the fourth voter joins after Redis is back
  // The seed's timings: a 10 s watch for an unchanged leader must not hinge on a loaded test
  // machine never stalling an agent for 150 ms.
  o.timings = kSeedTimings;
  StartCluster(3, o);
  uint64_t term = 0;
  int leader = ElectedLeader(&term);
  ASSERT_GE(leader, 0);

  cluster_->redis().Kill();
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < end) {
    uint64_t t = 0;
    auto l = cluster_->AgreedLeader(cluster_->All(), &t);
    // A sample may fall between a heartbeat and its ack; what must never change is who leads.
    if (l) {
      ASSERT_EQ(*l, leader);
      ASSERT_EQ(t, term);
    }
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(cluster_->AgreedLeader(cluster_->All()).value_or(-1), leader) << cluster_->Logs();

  std::string error;
  ASSERT_TRUE(cluster_->redis().Start(&error)) << error;
  AgentProcess& joined = cluster_->AddAgent();
  // The newcomer knows its peers only through Redis; it follows the leader only once the
  // leader has found it there too and heartbeats it.
  auto agreed = cluster_->WaitForAgreedLeader(cluster_->All(), 20s);
  ASSERT_TRUE(agreed.has_value()) << cluster_->Logs();
  EXPECT_EQ(*agreed, leader);
  EXPECT_EQ(cluster_->Observe(joined.index).snapshot.leader_id, cluster_->agent(leader).id);
}

TEST_F(ClusterTest, MessagesUnderTheWrongSecretAreRejectedAndCounted) {
  ClusterOptions o;
  o.metrics = true;
  StartCluster(3, o);
  uint64_t term = 0;
  int leader = ElectedLeader(&term);
  ASSERT_GE(leader, 0);
  AgentProcess& rogue = cluster_->AddAgent("not-the-cluster-secret");

  // The rogue registers in Redis like anyone else, so the others dial it and it dials them;
  // everything it sends fails authentication.
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  double rejected = 0;
  while (std::chrono::steady_clock::now() < deadline && rejected <= 0) {
    std::this_thread::sleep_for(200ms);
    rejected = 0;
    for (int i : {0, 1, 2}) {
      HttpResponse r = HttpGet(cluster_->agent(i).metrics_port, "/metrics");
      ASSERT_EQ(r.status, 200) << r.error;
      rejected += std::max(
          0.0, MetricValue(r.body, "instaface_messages_rejected_total{reason=\"bad_mac\"}"));
    }
  }
  EXPECT_GT(rejected, 0) << cluster_->Logs();
  uint64_t after = 0;
  EXPECT_EQ(cluster_->AgreedLeader({0, 1, 2}, &after).value_or(-1), leader);
  EXPECT_EQ(after, term) << "forged messages must not move the term";
  Observation r = cluster_->Observe(rogue.index);
  EXPECT_NE(r.snapshot.role, Role::kLeader);
  EXPECT_TRUE(r.snapshot.leader_id.empty()) << "the rogue never hears a valid heartbeat";
}

TEST_F(ClusterTest, UnpluggedLeaderLosesLeadershipAndRejoinsWhenPluggedBackIn) {
  StartCluster(3);
  uint64_t term = 0;
  int leader = ElectedLeader(&term);
  ASSERT_GE(leader, 0);
  std::string out;
  ASSERT_TRUE(cluster_->Ctl(leader, {"unplug", "on"}, &out).success()) << out;
  auto next = cluster_->WaitForAgreedLeader(cluster_->AllBut(leader), kElect, term);
  ASSERT_TRUE(next.has_value()) << cluster_->Logs();
  EXPECT_NE(*next, leader);
  // CheckQuorum: cut off from everyone, the old leader stops claiming leadership.
  const auto deadline = std::chrono::steady_clock::now() + kElect;
  while (cluster_->Observe(leader).snapshot.role == Role::kLeader &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_NE(cluster_->Observe(leader).snapshot.role, Role::kLeader);
  ASSERT_TRUE(cluster_->Ctl(leader, {"unplug", "off"}, &out).success()) << out;
  ASSERT_TRUE(cluster_->WaitForAgreedLeader(cluster_->All(), kElect).has_value())
      << cluster_->Logs();
}

TEST_F(ClusterTest, TransferHandsLeadershipToTheNamedPeer) {
  StartCluster(3);
  uint64_t term = 0;
  int leader = ElectedLeader(&term);
  ASSERT_GE(leader, 0);
  const int target = (leader + 1) % 3;
  std::string out;
  ASSERT_TRUE(
      cluster_->Ctl(leader, {"transfer", "--to", cluster_->agent(target).id}, &out).success())
      << out;
  auto next = cluster_->WaitForAgreedLeader(cluster_->All(), kElect, term);
  ASSERT_TRUE(next.has_value()) << cluster_->Logs();
  EXPECT_EQ(*next, target);
}

TEST_F(ClusterTest, RestartedAgentKeepsItsTermAndDoesNotDisruptTheLeader) {
  StartCluster(3);
  uint64_t term = 0;
  int leader = ElectedLeader(&term);
  ASSERT_GE(leader, 0);
  const int follower = (leader + 1) % 3;
  cluster_->agent(follower).process.Kill();
  cluster_->Restart(follower);
  // The first state the restarted agent publishes already carries the term it persisted.
  const auto deadline = std::chrono::steady_clock::now() + kElect;
  Observation first;
  while (!(first = cluster_->Observe(follower)).readable &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(first.readable);
  EXPECT_GE(first.snapshot.term, term);
  uint64_t after = 0;
  auto settled = cluster_->WaitForAgreedLeader(cluster_->All(), kElect, 0, &after);
  ASSERT_TRUE(settled.has_value()) << cluster_->Logs();
  EXPECT_EQ(*settled, leader);
  EXPECT_EQ(after, term);
}

TEST_F(ClusterTest, SigtermOfTheLeaderHandsOverThenExitsCleanlyAndDeregisters) {
  StartCluster(3);
  uint64_t term = 0;
  int leader = ElectedLeader(&term);
  ASSERT_GE(leader, 0);
  ASSERT_TRUE(cluster_->agent(leader).process.Terminate());
  auto next = cluster_->WaitForAgreedLeader(cluster_->AllBut(leader), kElect, term);
  ASSERT_TRUE(next.has_value()) << cluster_->Logs();
  auto exit = cluster_->agent(leader).process.Wait(10s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->success()) << exit->ToString();

  redisContext* redis = redisConnect("127.0.0.1", cluster_->redis().port());
  ASSERT_TRUE(redis != nullptr && redis->err == 0);
  auto* reply = static_cast<redisReply*>(redisCommand(
      redis, "ZSCORE instaface:cluster-test:nodes %s", cluster_->agent(leader).id.c_str()));
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(reply->type, REDIS_REPLY_NIL) << "the stopped agent is still registered";
  freeReplyObject(reply);
  redisFree(redis);
}

TEST_F(ClusterTest, PrometheusScrapesTheAgentsAndSeesTheirTerm) {
  ClusterOptions o;
  o.metrics = true;
  StartCluster(3, o);
  uint64_t term = 0;
  ASSERT_GE(ElectedLeader(&term), 0);
  PrometheusServerOptions p;
  for (int i : cluster_->All()) {
    p.targets.push_back("127.0.0.1:" + std::to_string(cluster_->agent(i).metrics_port));
  }
  PrometheusServer prometheus(p);
  std::string error;
  ASSERT_TRUE(prometheus.Start(&error)) << error;
  // Prometheus reloads targets on a timer: poll until every agent has been scraped.
  const std::regex term_value("\"value\":\\[[0-9.]+,\"([0-9]+)\"\\]");
  std::string body;
  int seen = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    body = prometheus.Query("instaface_term").value_or("");
    seen = 0;
    for (auto it = std::sregex_iterator(body.begin(), body.end(), term_value);
         it != std::sregex_iterator(); ++it) {
      EXPECT_EQ((*it)[1].str(), std::to_string(term)) << body;
      ++seen;
    }
    if (seen == 3) break;
    std::this_thread::sleep_for(500ms);
  }
  EXPECT_EQ(seen, 3) << body << "\n" << prometheus.log();
}

}  // namespace
}  // namespace instaface::testing
