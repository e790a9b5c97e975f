// The early path of a failover, as real agents take it and refuse it: each agent in a network
// namespace of its own (tests/chaos/chaos_network.h), so that a firewall rule can cut one off.
// A leader whose process is killed is seen dead (its connections close, a redial is refused) and
// replaced at once, as is one stopped cleanly whose handover did not complete; a leader that is
// stopped (SIGSTOP), or cut off by a rule that rejects (resets) or drops, is alive as far as
// anyone can tell, and is replaced only once its lease has run out: no agent may count any of
// those as a death. What is asserted is which path the election took
// (the agents' own counters), not how long it took: scripts/bench-failover measures that.
//
// Needs root, `ip` and `nft` (scripts/setup installs them); skipped otherwise.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "chaos_network.h"
#include "cluster.h"
#include "instaface/control/control_client.h"

namespace instaface::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kElect = 10s;

struct Evidence {
  uint64_t deaths_seen = 0;
  uint64_t early_elections = 0;
};

class DeathEvidenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    network_ = new ChaosNetwork();
    std::string error;
    if (!network_->Create(3, &error) || !network_->EnterHub(&error)) {
      setup_error_ = error;
      delete network_;
      network_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete network_;
    network_ = nullptr;
  }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces and nftables";
    ASSERT_NE(network_, nullptr) << setup_error_;
    ClusterOptions o;
    o.timings = kFastTimings;
    o.redis_host = ChaosNetwork::hub_host();
    for (int i = 0; i < network_->size(); ++i) {
      o.netns.push_back(network_->node_netns(i));
      o.hosts.push_back(network_->node_host(i));
    }
    cluster_ = std::make_unique<Cluster>(o);
    std::string error;
    ASSERT_TRUE(cluster_->Start(network_->size(), &error)) << error;
  }

  void TearDown() override {
    if (network_ == nullptr) return;
    for (int i = 0; i < network_->size(); ++i) {
      std::string error;
      network_->Heal(i, &error);
    }
    cluster_.reset();
  }

  int ElectedLeader(uint64_t* term) {
    auto leader = cluster_->WaitForAgreedLeader(cluster_->All(), kElect, 0, term);
    EXPECT_TRUE(leader.has_value()) << cluster_->Logs();
    // Every follower watches the leader once it has heard from it; give the watch a moment.
    std::this_thread::sleep_for(300ms);
    return leader.value_or(-1);
  }

  Evidence EvidenceOf(int i) {
    auto status = control::QueryStatusOnce(cluster_->agent(i).socket, 2s);
    EXPECT_TRUE(status.ok()) << status.status().message();
    if (!status.ok()) return {};
    return {status->leader_deaths_seen, status->early_elections};
  }

  // The survivors elect a new leader without `leader`, in a term above `term`.
  void ExpectANewLeaderWithout(int leader, uint64_t term) {
    auto next = cluster_->WaitForAgreedLeader(cluster_->AllBut(leader), kElect, term);
    ASSERT_TRUE(next.has_value()) << cluster_->Logs();
    EXPECT_NE(*next, leader);
  }

  // Nobody took the early path: every survivor waited out the leader's lease.
  void ExpectNoEvidenceAnywhere(int leader) {
    // The counters are refreshed every heartbeat/2.
    std::this_thread::sleep_for(100ms);
    for (int i : cluster_->AllBut(leader)) {
      const Evidence e = EvidenceOf(i);
      EXPECT_EQ(e.deaths_seen, 0u) << "agent " << i << "\n" << cluster_->Logs();
      EXPECT_EQ(e.early_elections, 0u) << "agent " << i;
    }
  }

  // Cuts `leader` off from every peer and Redis with one nftables rule set.
  void CutOff(int leader, bool reject) {
    Cut cut;
    cut.reject = reject;
    std::string error;
    ASSERT_TRUE(network_->Apply(leader, {cut}, &error)) << error;
  }

  // A leader cut off by a rule that rejects (resets, ICMP errors) or drops is replaced by the
  // timeout, and nobody takes it for dead, neither then nor once the rule is gone.
  void ExpectACutOffLeaderIsNotTakenForDead(bool reject) {
    uint64_t term = 0;
    const int leader = ElectedLeader(&term);
    ASSERT_GE(leader, 0);
    CutOff(leader, reject);
    ExpectANewLeaderWithout(leader, term);
    ExpectNoEvidenceAnywhere(leader);
    std::string error;
    ASSERT_TRUE(network_->Heal(leader, &error)) << error;
    std::this_thread::sleep_for(500ms);
    ExpectNoEvidenceAnywhere(leader);
  }

  static ChaosNetwork* network_;
  static std::string setup_error_;
  std::unique_ptr<Cluster> cluster_;
};

ChaosNetwork* DeathEvidenceTest::network_ = nullptr;
std::string DeathEvidenceTest::setup_error_;

TEST_F(DeathEvidenceTest, AKilledLeaderIsSeenDeadAndReplacedEarly) {
  uint64_t term = 0;
  const int leader = ElectedLeader(&term);
  ASSERT_GE(leader, 0);
  ASSERT_TRUE(cluster_->Observe(leader).snapshot.lease_valid);
  cluster_->agent(leader).process.Kill();
  // The dead agent's own app must stop seeing itself lead before any peer leads: each round
  // reads the survivors first, then the dead one's record, so a survivor leading while that
  // record still claims is caught however the reads interleave with the failover.
  const auto deadline = std::chrono::steady_clock::now() + kElect;
  bool new_leader = false;
  while (!new_leader && std::chrono::steady_clock::now() < deadline) {
    for (int i : cluster_->AllBut(leader)) {
      const Observation o = cluster_->Observe(i);
      new_leader |= o.readable && o.snapshot.role == Role::kLeader && o.snapshot.term > term;
    }
    if (new_leader) {
      const Snapshot old = cluster_->Observe(leader).snapshot;
      EXPECT_FALSE(old.lease_valid && !old.stale) << "a peer leads while the dead agent's app "
                                                     "still sees a valid lease";
      EXPECT_FALSE(cluster_->agent(leader).view->is_leader());
    }
  }
  ASSERT_TRUE(new_leader) << cluster_->Logs();
  ExpectANewLeaderWithout(leader, term);
  std::this_thread::sleep_for(100ms);
  uint64_t seen = 0, early = 0;
  for (int i : cluster_->AllBut(leader)) {
    const Evidence e = EvidenceOf(i);
    seen += e.deaths_seen;
    early += e.early_elections;
  }
  EXPECT_GE(seen, 1u) << "the survivors watched the leader and saw it die\n" << cluster_->Logs();
  EXPECT_GE(early, 1u) << cluster_->Logs();
}

// SIGTERM of a leader whose handover cannot complete: every link of the cluster is unplugged,
// so that nobody can win an election meanwhile and each follower goes on watching it. Once its
// wait is over it steps down and ends its watchers' connections in order: both followers see
// it gone (and stand at once) instead of waiting out its lease; reset, they would see nothing.
// (An unplug drops the election's messages, not the death watch's connections: what fails here
// is the handover, not the network. A firewall would withhold the FIN too.)
TEST_F(DeathEvidenceTest, ALeaderStoppedWithoutAHandoverIsSeenGone) {
  uint64_t term = 0;
  const int leader = ElectedLeader(&term);
  ASSERT_GE(leader, 0);
  const std::vector<int> followers = cluster_->AllBut(leader);
  auto unplug = [&](int at, int peer, const char* state) {
    std::string out;
    ASSERT_TRUE(
        cluster_->Ctl(at, {"unplug", state, "--peer", cluster_->agent(peer).id}, &out).success())
        << out;
  };
  for (int f : followers) unplug(leader, f, "on");
  unplug(followers[0], followers[1], "on");
  unplug(followers[1], followers[0], "on");
  ASSERT_TRUE(cluster_->agent(leader).process.Terminate());
  auto exit = cluster_->agent(leader).process.Wait(10s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->success()) << exit->ToString();
  bool all_saw = false;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!all_saw && std::chrono::steady_clock::now() < deadline) {
    all_saw = true;
    for (int f : followers) all_saw &= EvidenceOf(f).deaths_seen >= 1;
    if (!all_saw) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(all_saw) << "each follower watched the stopped leader and saw it gone\n"
                       << cluster_->Logs();
  unplug(followers[0], followers[1], "off");
  unplug(followers[1], followers[0], "off");
  ExpectANewLeaderWithout(leader, term);
}

TEST_F(DeathEvidenceTest, AStoppedLeaderIsNotTakenForDead) {
  uint64_t term = 0;
  const int leader = ElectedLeader(&term);
  ASSERT_GE(leader, 0);
  ASSERT_TRUE(cluster_->agent(leader).process.Stop());
  ExpectANewLeaderWithout(leader, term);
  ExpectNoEvidenceAnywhere(leader);
  ASSERT_TRUE(cluster_->agent(leader).process.Continue());
  // Woken, it learns of the new term and steps down: still alive, still no death anywhere.
  std::this_thread::sleep_for(500ms);
  ExpectNoEvidenceAnywhere(leader);
}

TEST_F(DeathEvidenceTest, ALeaderBehindARejectingFirewallIsNotTakenForDead) {
  ExpectACutOffLeaderIsNotTakenForDead(/*reject=*/true);
}

TEST_F(DeathEvidenceTest, ALeaderBehindADroppingFirewallIsNotTakenForDead) {
  ExpectACutOffLeaderIsNotTakenForDead(/*reject=*/false);
}

}  // namespace
}  // namespace instaface::testing
