// Leadership follows a live app, with real processes: agents started with --app-liveness-ms and
// graphservers that register their presence (AppPresence). When the leader's graphserver is
// killed or stopped, its agent hands leadership to a node whose app is alive; the node without
// an app does not lead again until its app is back.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "graph_cluster.h"

namespace instaface::testing {
namespace {

using namespace std::chrono_literals;

class AppLivenessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GraphClusterOptions o;
    o.agent_binary = INSTAFACE_AGENT_BINARY;
    o.graphserver_binary = INSTAFACE_GRAPHSERVER_BINARY;
    o.database = "liveness";
    o.extra_agent_args = {"--app-liveness-ms", "200"};
    cluster_ = std::make_unique<GraphCluster>(o);
    std::string error;
    ASSERT_TRUE(cluster_->Start(&error)) << error;
  }

  std::unique_ptr<GraphCluster> cluster_;
};

TEST_F(AppLivenessTest, KillingTheLeadersAppMovesLeadershipToALiveApp) {
  const int leader = cluster_->WaitForLeader(10s);
  ASSERT_GE(leader, 0);
  cluster_->graphserver(leader).Kill();
  // Its agent is alive and connected: without the app watch it would lead on.
  const int next = cluster_->WaitForLeader(20s, {leader});
  ASSERT_GE(next, 0) << "leadership stayed with the node whose app died\n" << cluster_->Logs();
  EXPECT_NE(next, leader);
  // A write through the new leader's app works.
  auto r =
      cluster_->Send(next, boost::beast::http::verb::post, "/api/graph/entities/user/create", "{}");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.response.result_int(), 200) << r.response.body();
  // Without its app the old node does not stand: it stays a follower.
  std::this_thread::sleep_for(1s);
  EXPECT_NE(cluster_->Leader(), leader);
}

TEST_F(AppLivenessTest, StoppingTheLeadersAppMovesLeadershipAndItMayLeadAgainLater) {
  const int leader = cluster_->WaitForLeader(10s);
  ASSERT_GE(leader, 0);
  cluster_->graphserver(leader).Stop();
  const int next = cluster_->WaitForLeader(20s, {leader});
  cluster_->graphserver(leader).Continue();
  ASSERT_GE(next, 0) << "leadership stayed with the node whose app hung\n" << cluster_->Logs();
  // Every other app goes: only the first node's app is left, so it must lead again.
  for (int i = 0; i < cluster_->size(); ++i) {
    if (i != leader) cluster_->graphserver(i).Kill();
  }
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (cluster_->Leader() != leader && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(cluster_->Leader(), leader) << cluster_->Logs();
}

}  // namespace
}  // namespace instaface::testing
