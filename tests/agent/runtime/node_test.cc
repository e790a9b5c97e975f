// Three Nodes in one process, each publishing into its own in-process record (embedded mode),
// talking nng over ipc:// in a temporary directory.
#include "instaface/runtime/node.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

namespace instaface::runtime {
namespace {

using namespace std::chrono_literals;
using election::Role;

// Generous liveness deadline: only a cluster that never converges fails, never a slow one.
constexpr auto kLiveness = 15s;

class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/instaface-node-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    for (const char* id : {"a", "b", "c"}) ids_.push_back(id);
  }
  void TearDown() override {
    nodes_.clear();
    std::filesystem::remove_all(dir_);
  }

  std::string Url(const std::string& id) const { return "ipc://" + dir_ + "/" + id + ".ipc"; }

  NodeOptions Options(const std::string& id) const {
    NodeOptions o;
    o.id = id;
    o.cluster = "graph";
    o.cluster_size = 3;
    o.secret = "s3cret";
    o.listen_url = Url(id);
    o.app_address = "http://" + id + ".example:8080";
    o.state_dir = dir_ + "/state-" + id;
    o.heartbeat = 30ms;
    o.election_min = 150ms;
    o.election_max = 300ms;
    o.seed = std::hash<std::string>{}(id) + 1;
    for (const auto& peer : ids_) {
      if (peer != id) o.static_peers[peer] = Url(peer);
    }
    return o;
  }

  void StartNode(const std::string& id) {
    auto node = Node::Start(Options(id));
    ASSERT_TRUE(node.ok()) << node.status().message();
    nodes_[id] = std::move(*node);
  }
  void StartAll() {
    for (const auto& id : ids_) StartNode(id);
  }

  // Waits until every running node agrees on one leader in one term; returns the leader's id.
  std::string WaitForAgreement() {
    const auto deadline = std::chrono::steady_clock::now() + kLiveness;
    while (std::chrono::steady_clock::now() < deadline) {
      std::set<std::pair<std::string, uint64_t>> views;
      int leaders = 0;
      for (const auto& [id, node] : nodes_) {
        const NodeStatus s = node->status();
        views.insert({s.election.leader, s.election.term});
        if (s.election.role == Role::kLeader) ++leaders;
      }
      if (views.size() == 1 && !views.begin()->first.empty() && leaders == 1) {
        return views.begin()->first;
      }
      std::this_thread::sleep_for(5ms);
    }
    ADD_FAILURE() << "no agreement on a leader";
    return {};
  }

  std::string dir_;
  std::vector<std::string> ids_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
};

TEST_F(NodeTest, ThreeNodesElectOneLeaderAndPublishIt) {
  StartAll();
  const std::string leader = WaitForAgreement();
  ASSERT_FALSE(leader.empty());
  // The app-facing view says the same thing on every node.
  const auto deadline = std::chrono::steady_clock::now() + kLiveness;
  bool consistent = false;
  while (!consistent && std::chrono::steady_clock::now() < deadline) {
    consistent = true;
    for (const auto& [id, node] : nodes_) {
      const View view = node->view();
      const Snapshot s = view.snapshot();
      // Static peers carry no app address (discovery does), so only the leader knows its own.
      consistent &=
          s.leader_id == leader && !s.stale && s.self_id == id &&
          s.leader_peer_address == Url(leader) &&
          (id != leader || s.leader_app_address == "http://" + leader + ".example:8080") &&
          view.is_leader() == (id == leader) && s.lease_valid == (id == leader);
    }
    if (!consistent) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(consistent);
  EXPECT_TRUE(nodes_[leader]->status().lease_valid);
}

TEST_F(NodeTest, TransferMovesLeadershipToTheTarget) {
  StartAll();
  const std::string leader = WaitForAgreement();
  ASSERT_FALSE(leader.empty());
  const std::string target = leader == "a" ? "b" : "a";
  ASSERT_TRUE(nodes_[leader]->TransferLeadership(target).get());
  const NodeStatus s = nodes_[target]->WaitForStatus(
      [](const NodeStatus& s) { return s.election.role == Role::kLeader; }, kLiveness);
  EXPECT_EQ(s.election.role, Role::kLeader);
  EXPECT_EQ(WaitForAgreement(), target);
}

TEST_F(NodeTest, StepDownIsRefusedByFollowersAndHonouredByTheLeader) {
  StartAll();
  const std::string leader = WaitForAgreement();
  ASSERT_FALSE(leader.empty());
  const uint64_t term = nodes_[leader]->status().election.term;
  for (const auto& [id, node] : nodes_) {
    if (id != leader) {
      EXPECT_FALSE(node->StepDown().get());
    }
  }
  ASSERT_TRUE(nodes_[leader]->StepDown().get());
  // Someone leads again, in a later term.
  WaitForAgreement();
  EXPECT_GT(nodes_[leader]->status().election.term, term);
}

TEST_F(NodeTest, GracefulStopOfTheLeaderHandsOver) {
  StartAll();
  const std::string leader = WaitForAgreement();
  ASSERT_FALSE(leader.empty());
  const uint64_t term = nodes_[leader]->status().election.term;
  nodes_[leader]->Stop(/*hand_over=*/true);
  nodes_.erase(leader);
  const std::string next = WaitForAgreement();
  EXPECT_NE(next, leader);
  EXPECT_GT(nodes_[next]->status().election.term, term);
}

TEST_F(NodeTest, UnpluggedLeaderIsReplacedAndRejoinsAsFollower) {
  StartAll();
  const std::string leader = WaitForAgreement();
  ASSERT_FALSE(leader.empty());
  ASSERT_TRUE(nodes_[leader]->SetUnplugged(true).get());
  // The other two elect a new leader among themselves.
  std::unique_ptr<Node> unplugged = std::move(nodes_[leader]);
  nodes_.erase(leader);
  const std::string next = WaitForAgreement();
  EXPECT_NE(next, leader);
  // CheckQuorum: the cut-off leader stops claiming leadership.
  const NodeStatus cut = unplugged->WaitForStatus(
      [](const NodeStatus& s) { return s.election.role != Role::kLeader; }, kLiveness);
  EXPECT_NE(cut.election.role, Role::kLeader);
  EXPECT_FALSE(unplugged->view().is_leader());

  ASSERT_TRUE(unplugged->SetUnplugged(false).get());
  nodes_[leader] = std::move(unplugged);
  WaitForAgreement();
}

// Cutting the leader's links to both followers, on the leader alone, silences it both ways:
// the followers elect one of themselves, and the cut-off leader stops leading.
TEST_F(NodeTest, LeaderWhoseLinksAreCutIsReplaced) {
  StartAll();
  const std::string leader = WaitForAgreement();
  ASSERT_FALSE(leader.empty());
  EXPECT_FALSE(nodes_[leader]->SetLinkUnplugged(leader, true).get());
  std::set<std::string> followers;
  for (const auto& id : ids_) {
    if (id != leader) followers.insert(id);
  }
  for (const auto& id : followers) ASSERT_TRUE(nodes_[leader]->SetLinkUnplugged(id, true).get());
  EXPECT_EQ(nodes_[leader]->status().unplugged_peers, followers);
  EXPECT_FALSE(nodes_[leader]->status().election.unplugged);

  std::unique_ptr<Node> cut = std::move(nodes_[leader]);
  nodes_.erase(leader);
  const std::string next = WaitForAgreement();
  EXPECT_NE(next, leader);
  const NodeStatus alone = cut->WaitForStatus(
      [](const NodeStatus& s) {
        bool none_reachable = !s.peers.empty();
        for (const PeerReachability& p : s.peers) none_reachable &= !p.reachable;
        return s.election.role != Role::kLeader && none_reachable;
      },
      kLiveness);
  EXPECT_NE(alone.election.role, Role::kLeader);
  for (const PeerReachability& p : alone.peers) EXPECT_FALSE(p.reachable) << p.id;

  for (const auto& id : followers) ASSERT_TRUE(cut->SetLinkUnplugged(id, false).get());
  EXPECT_TRUE(cut->status().unplugged_peers.empty());
  nodes_[leader] = std::move(cut);
  WaitForAgreement();
}

TEST_F(NodeTest, RestartedNodeResumesFromItsDurableTerm) {
  StartAll();
  const std::string leader = WaitForAgreement();
  ASSERT_FALSE(leader.empty());
  const std::string follower = leader == "c" ? "b" : "c";
  const uint64_t term = nodes_[follower]->status().election.term;
  ASSERT_GT(term, 0u);
  nodes_.erase(follower);  // the destructor stops it without handing anything over
  StartNode(follower);
  // Before hearing from anyone, the restarted node already knows the term it reached.
  EXPECT_GE(nodes_[follower]->status().election.term, term);
  WaitForAgreement();
}

// A node under another secret can neither vote nor lead here: its messages are rejected and
// counted, and the cluster keeps its leader.
TEST_F(NodeTest, MessagesUnderTheWrongSecretAreRejectedAndCounted) {
  StartAll();
  const std::string leader = WaitForAgreement();
  ASSERT_FALSE(leader.empty());
  const uint64_t term = nodes_[leader]->status().election.term;
  NodeOptions o = Options("intruder");
  o.secret = "not-the-cluster-secret";
  o.static_peers.clear();
  for (const auto& id : ids_) o.static_peers[id] = Url(id);
  auto intruder = Node::Start(o);
  ASSERT_TRUE(intruder.ok()) << intruder.status().message();
  const NodeStatus s = nodes_[leader]->WaitForStatus(
      [](const NodeStatus& s) { return s.messages_rejected > 0; }, kLiveness);
  EXPECT_GT(s.messages_rejected, 0u);
  EXPECT_EQ(WaitForAgreement(), leader);
  EXPECT_EQ(nodes_[leader]->status().election.term, term);
}

TEST_F(NodeTest, ASecondNodeOnTheSameStateDirectoryIsRefused) {
  StartNode("a");
  NodeOptions o = Options("a");
  o.listen_url = Url("a2");
  auto second = Node::Start(o);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
}

}  // namespace
}  // namespace instaface::runtime
