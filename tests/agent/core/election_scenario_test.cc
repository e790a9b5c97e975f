// Whole clusters of election cores on the in-memory network: elections, crashes, partitions,
// healing, PreVote, CheckQuorum, leases, transfer and unplugging. Time is driven explicitly;
// the network checks the safety invariants after every event (see memory_network.h), and every
// test ends by asserting that none was broken.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

#include "instaface/election/election.h"
#include "memory_network.h"

namespace instaface::election {
namespace {

using namespace std::chrono_literals;
using testing::MemoryNetwork;

MemoryNetwork::Options Cluster(int nodes, uint64_t seed = 1) {
  MemoryNetwork::Options o;
  o.nodes = nodes;
  o.seed = seed;
  o.config.cluster_size = nodes;
  return o;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

#define EXPECT_NO_VIOLATIONS(net) \
  EXPECT_TRUE((net).violations().empty()) << Joined((net).violations())

std::vector<NodeId> Except(const std::vector<NodeId>& all, const std::vector<NodeId>& out) {
  std::vector<NodeId> rest;
  for (const NodeId& id : all) {
    if (std::find(out.begin(), out.end(), id) == out.end()) rest.push_back(id);
  }
  return rest;
}

TEST(ElectionScenario, ElectsExactlyOneLeader) {
  for (int nodes : {1, 2, 3, 5, 7}) {
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      MemoryNetwork net(Cluster(nodes, seed));
      std::optional<NodeId> leader = net.elect();
      ASSERT_TRUE(leader) << nodes << " nodes, seed " << seed;
      net.run_for(5s);
      EXPECT_EQ(net.leader(), leader) << "a stable cluster keeps its leader";
      EXPECT_EQ(net.leaders().size(), 1u);
      EXPECT_NO_VIOLATIONS(net);
    }
  }
}

TEST(ElectionScenario, StableLeaderHoldsAContinuousLease) {
  MemoryNetwork net(Cluster(3));
  std::optional<NodeId> leader = net.elect();
  ASSERT_TRUE(leader);
  net.run_for(100ms);
  for (int i = 0; i < 50; ++i) {
    net.run_for(97ms);
    EXPECT_GT(net.node(*leader).status().lease_until, net.now()) << "lease lapsed at " << i;
  }
  EXPECT_NO_VIOLATIONS(net);
}

TEST(ElectionScenario, LeaderCrashElectsNewLeaderWhichOldOneFollows) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    MemoryNetwork net(Cluster(5, seed));
    std::optional<NodeId> old_leader = net.elect();
    ASSERT_TRUE(old_leader);
    const Term old_term = net.node(*old_leader).status().term;
    net.run_for(300ms);
    net.crash(*old_leader);
    const Nanos crashed_at = net.now();
    std::optional<NodeId> next = net.elect();
    ASSERT_TRUE(next) << "seed " << seed;
    EXPECT_NE(*next, *old_leader);
    EXPECT_GT(net.node(*next).status().term, old_term);
    // Generous liveness bound: lease wait + a few election timeouts.
    EXPECT_LT(net.now() - crashed_at, 5s);

    net.restart(*old_leader);
    net.run_for(3s);
    EXPECT_EQ(net.leader(), next) << "the restarted node must not disrupt";
    EXPECT_EQ(net.node(*old_leader).status().leader, *next);
    EXPECT_NO_VIOLATIONS(net);
  }
}

TEST(ElectionScenario, MinorityPartitionKeepsLeader) {
  MemoryNetwork net(Cluster(5));
  std::optional<NodeId> leader = net.elect();
  ASSERT_TRUE(leader);
  const Term term = net.node(*leader).status().term;
  std::vector<NodeId> followers = Except(net.ids(), {*leader});
  net.partition({followers[0], followers[1]});
  net.run_for(10s);
  EXPECT_EQ(net.leader(), leader);
  EXPECT_EQ(net.node(*leader).status().term, term);
  for (const NodeId& cut_off : {followers[0], followers[1]}) {
    EXPECT_NE(net.node(cut_off).status().role, Role::kLeader);
    EXPECT_EQ(net.node(cut_off).status().term, term) << "PreVote: no term inflation";
  }
  net.heal();
  net.run_for(3s);
  EXPECT_EQ(net.leader(), leader);
  EXPECT_EQ(net.node(followers[0]).status().leader, *leader);
  EXPECT_NO_VIOLATIONS(net);
}

TEST(ElectionScenario, LeaderInMinorityStepsDownAndMajorityElects) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    MemoryNetwork net(Cluster(5, seed));
    std::optional<NodeId> old_leader = net.elect();
    ASSERT_TRUE(old_leader);
    std::vector<NodeId> others = Except(net.ids(), {*old_leader});
    const std::vector<NodeId> minority = {*old_leader, others[0]};
    net.partition(minority);
    const Nanos cut_at = net.now();
    bool majority_elected = net.run_until(
        [&] {
          for (const NodeId& id : Except(net.ids(), minority)) {
            if (net.node(id).status().role == Role::kLeader) return true;
          }
          return false;
        },
        10s);
    ASSERT_TRUE(majority_elected) << "seed " << seed;
    net.run_until([&] { return net.node(*old_leader).status().role != Role::kLeader; }, 5s);
    EXPECT_NE(net.node(*old_leader).status().role, Role::kLeader);
    EXPECT_EQ(net.node(*old_leader).stats().check_quorum_step_downs, 1u);
    EXPECT_LE(net.now() - cut_at, 5s);

    net.heal();
    std::optional<NodeId> leader = net.elect();
    ASSERT_TRUE(leader);
    EXPECT_EQ(std::find(minority.begin(), minority.end(), *leader), minority.end())
        << "the majority's leader stays";
    EXPECT_NO_VIOLATIONS(net);
  }
}

TEST(ElectionScenario, EvenSplitElectsNobodyUntilHealed) {
  MemoryNetwork net(Cluster(4));
  ASSERT_TRUE(net.elect());
  net.partition({"n1", "n2"});
  net.run_for(5s);
  EXPECT_TRUE(net.leaders().empty()) << "2 of 4 is no quorum";
  net.heal();
  EXPECT_TRUE(net.elect());
  EXPECT_NO_VIOLATIONS(net);
}

TEST(ElectionScenario, RejoiningPartitionedNodeDoesNotDisruptLeader) {
  MemoryNetwork net(Cluster(3));
  std::optional<NodeId> leader = net.elect();
  ASSERT_TRUE(leader);
  const Term term = net.node(*leader).status().term;
  const NodeId loner = Except(net.ids(), {*leader})[0];
  net.isolate(loner);
  net.run_for(20s);
  EXPECT_GE(net.node(loner).stats().pre_votes_started, 10u);
  EXPECT_EQ(net.node(loner).stats().elections_started, 0u);
  net.heal();
  net.run_for(5s);
  EXPECT_EQ(net.leader(), leader);
  EXPECT_EQ(net.node(*leader).status().term, term);
  EXPECT_EQ(net.node(loner).status().leader, *leader);
  EXPECT_NO_VIOLATIONS(net);
}

// Why PreVote exists: without it the rejoining node's inflated term deposes a healthy leader.
TEST(ElectionScenario, WithoutPreVoteRejoiningNodeForcesNewTerm) {
  MemoryNetwork::Options o = Cluster(3);
  o.config.pre_vote = false;
  MemoryNetwork net(o);
  std::optional<NodeId> leader = net.elect();
  ASSERT_TRUE(leader);
  const Term term = net.node(*leader).status().term;
  const NodeId loner = Except(net.ids(), {*leader})[0];
  net.isolate(loner);
  net.run_for(20s);
  EXPECT_GT(net.node(loner).status().term, term + 5);
  net.heal();
  ASSERT_TRUE(net.elect());
  EXPECT_GT(net.node(*net.leader()).status().term, term + 5);
  EXPECT_NO_VIOLATIONS(net);
}

// One-way failures: the leader's heartbeats still go out, but nothing comes back to it.
TEST(ElectionScenario, LeaderThatCannotHearStepsDownAndIsReplaced) {
  MemoryNetwork net(Cluster(3));
  std::optional<NodeId> deaf = net.elect();
  ASSERT_TRUE(deaf);
  const NodeId leader_id = *deaf;
  net.drop_if([&](const Message& m) { return m.to == leader_id; });
  ASSERT_TRUE(net.run_until(
      [&] {
        std::optional<NodeId> current = net.leader();
        return current && *current != leader_id;
      },
      10s));
  net.run_for(10s);
  EXPECT_NE(net.leader(), deaf);
  EXPECT_EQ(net.leaders().size(), 1u);
  EXPECT_EQ(net.node(leader_id).stats().check_quorum_step_downs, 1u);
  EXPECT_NO_VIOLATIONS(net);
}

TEST(ElectionScenario, FollowerThatCannotHearDoesNotDisrupt) {
  MemoryNetwork net(Cluster(3));
  std::optional<NodeId> leader = net.elect();
  ASSERT_TRUE(leader);
  const Term term = net.node(*leader).status().term;
  const NodeId deaf = Except(net.ids(), {*leader})[0];
  net.drop_if([&](const Message& m) { return m.to == deaf; });
  net.run_for(20s);
  EXPECT_EQ(net.leader(), leader);
  EXPECT_EQ(net.node(*leader).status().term, term);
  EXPECT_GT(net.node(deaf).stats().pre_votes_started, 10u);
  EXPECT_NO_VIOLATIONS(net);
}

// A follower that restarts cannot remember whose lease it acked, so it must honour one for
// election_min. Here the leader's lease rests on n_ack's acks alone (its heartbeats to the
// other follower are lost); n_ack restarts while the leader is cut off, still holding its lease.
TEST(ElectionScenario, RestartedFollowerHonoursLeaseItMayHaveAcked) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    MemoryNetwork net(Cluster(3, seed));
    std::optional<NodeId> leader = net.elect();
    ASSERT_TRUE(leader);
    const std::vector<NodeId> followers = Except(net.ids(), {*leader});
    const NodeId acker = followers[0];
    const NodeId starved = followers[1];
    net.drop_if([&](const Message& m) {
      return m.from == *leader && m.to == starved && m.type == MessageType::kHeartbeat;
    });
    net.run_for(std::chrono::milliseconds(1500 + 97 * seed));
    ASSERT_EQ(net.leader(), leader);
    ASSERT_GT(net.node(*leader).status().lease_until, net.now());
    net.isolate(*leader);
    net.crash(acker);
    net.restart(acker);
    ASSERT_TRUE(net.run_until(
        [&] {
          return net.node(acker).status().role == Role::kLeader ||
                 net.node(starved).status().role == Role::kLeader;
        },
        10s));
    net.run_for(1s);  // the new leader's first acks arrive
    EXPECT_NO_VIOLATIONS(net) << "seed " << seed;
  }
}

TEST(ElectionScenario, IsolatedLeaderStepsDownByCheckQuorum) {
  const Config c;
  MemoryNetwork net(Cluster(3));
  std::optional<NodeId> leader = net.elect();
  ASSERT_TRUE(leader);
  net.isolate(*leader);
  const Nanos cut_at = net.now();
  net.run_until([&] { return net.node(*leader).status().role != Role::kLeader; }, 5s);
  EXPECT_EQ(net.node(*leader).status().role, Role::kFollower);
  EXPECT_LE(net.now() - cut_at, c.election_max + c.heartbeat_interval);
  EXPECT_EQ(net.node(*leader).stats().check_quorum_step_downs, 1u);
  EXPECT_NO_VIOLATIONS(net);
}

// The lease check runs after every event; this drives many seeds through reordering, crashes
// and partitions to give it chances to fire, and checks that leases are held at all.
TEST(ElectionScenario, LeasesNeverOverlapUnderFaults) {
  int lease_observations = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    MemoryNetwork::Options o = Cluster(5, seed);
    o.latency = 2ms;
    o.jitter = 30ms;
    MemoryNetwork net(o);
    std::mt19937_64 rng(seed);
    for (int round = 0; round < 12; ++round) {
      const NodeId a = net.ids()[rng() % 5];
      const NodeId b = net.ids()[rng() % 5];
      switch (rng() % 5) {
        case 0:
          if (net.alive(a)) net.crash(a);
          break;
        case 1:
          net.partition({a, b});
          break;
        case 2:
          net.isolate(a);
          break;
        case 3:
          net.drop_if([&](const Message& m) { return m.from == b && m.to == a; });
          break;
        default:
          break;
      }
      net.run_for(std::chrono::milliseconds(200 + rng() % 1500));
      for (const NodeId& id : net.ids()) {
        if (net.alive(id) && net.node(id).status().lease_until > net.now()) {
          ++lease_observations;
        }
      }
      net.heal();
      for (const NodeId& id : net.ids()) {
        if (!net.alive(id)) net.restart(id);
      }
      net.run_for(std::chrono::milliseconds(rng() % 1500));
    }
    EXPECT_TRUE(net.elect()) << "seed " << seed;
    EXPECT_NO_VIOLATIONS(net) << "seed " << seed;
  }
  EXPECT_GT(lease_observations, 100) << "leases were held, so the check had something to check";
}

TEST(ElectionScenario, RestartsNeverCauseDoubleVotes) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    MemoryNetwork::Options o = Cluster(3, seed);
    o.jitter = 5ms;
    MemoryNetwork net(o);
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 30; ++i) {
      const NodeId victim = net.ids()[rng() % 3];
      net.run_for(std::chrono::milliseconds(rng() % 1200));
      net.crash(victim);
      net.run_for(std::chrono::milliseconds(rng() % 50));
      net.restart(victim);
    }
    EXPECT_TRUE(net.elect()) << "seed " << seed;
    EXPECT_NO_VIOLATIONS(net) << "seed " << seed;
  }
}

TEST(ElectionScenario, TransferMovesLeadershipWithinMilliseconds) {
  const Config c;
  MemoryNetwork net(Cluster(5));
  std::optional<NodeId> leader = net.elect();
  ASSERT_TRUE(leader);
  net.run_for(200ms);
  const Term term = net.node(*leader).status().term;
  const NodeId target = Except(net.ids(), {*leader})[2];
  bool accepted = false;
  net.with_node(*leader,
                [&](Election& e, Nanos now) { accepted = e.transfer_leadership(target, now); });
  ASSERT_TRUE(accepted);
  const Nanos started = net.now();
  ASSERT_TRUE(net.run_until([&] { return net.leader() == target; }, 2s));
  EXPECT_LT(net.now() - started, c.election_min) << "faster than any election timeout";
  EXPECT_EQ(net.node(target).status().term, term + 1);
  EXPECT_EQ(net.elect(), target);
  EXPECT_EQ(net.node(*leader).stats().transfers_aborted, 0u);
  EXPECT_NO_VIOLATIONS(net);
}

// A rolling restart: a follower comes back, and the leader is asked to hand over right after.
// The restarted node may not act on a TimeoutNow in its restart window (it cannot know whose
// lease it acked before). The leader prefers a peer it has heard from for longer, and when it
// cannot tell (the restart was quicker than election_min), the restarted node keeps the
// request and stands when its window closes. Either way leadership moves well within an
// election timeout, not by an election.
TEST(ElectionScenario, TransferRightAfterAFollowerRestartIsAHandoverNotAnElection) {
  const Config c;
  for (const auto down : {10ms, 900ms}) {  // quicker than election_min, and slower
    for (int pick = 0; pick < 2; ++pick) {
      MemoryNetwork net(Cluster(3));
      std::optional<NodeId> leader = net.elect();
      ASSERT_TRUE(leader);
      net.run_for(200ms);
      // Either follower: whichever the leader would pick on a tie of fresh acks.
      const NodeId restarted = Except(net.ids(), {*leader})[pick];
      net.crash(restarted);
      net.run_for(down);
      net.restart(restarted);
      const Nanos restarted_at = net.now();
      ASSERT_TRUE(
          net.run_until([&] { return net.node(restarted).status().leader == *leader; }, 1s));
      net.run_for(5ms);  // its ack of that heartbeat arrives: as fresh as the other's
      ASSERT_LT(net.now() - restarted_at, c.election_min);
      bool accepted = false;
      net.with_node(*leader, [&](Election& e, Nanos now) {
        accepted = e.transfer_leadership(NodeId(), now);
      });
      ASSERT_TRUE(accepted);
      const Nanos started = net.now();
      ASSERT_TRUE(net.run_until([&] { return net.leader() && *net.leader() != *leader; }, 3s));
      EXPECT_LT(net.now() - started, c.election_min)
          << "down " << down.count() << " ms, pick " << pick << ": leadership went to "
          << *net.leader() << " by an election";
      EXPECT_EQ(net.node(*leader).stats().transfers_aborted, 0u);
      EXPECT_NO_VIOLATIONS(net);
    }
  }
}

TEST(ElectionScenario, TransferToUnreachableTargetAbortsAndKeepsLeader) {
  const Config c;
  MemoryNetwork net(Cluster(3));
  std::optional<NodeId> leader = net.elect();
  ASSERT_TRUE(leader);
  const NodeId target = Except(net.ids(), {*leader})[0];
  net.drop_if([&](const Message& m) { return m.type == MessageType::kTimeoutNow; });
  net.with_node(*leader,
                [&](Election& e, Nanos now) { ASSERT_TRUE(e.transfer_leadership(target, now)); });
  EXPECT_EQ(net.node(*leader).status().lease_until, Nanos(0));
  net.run_for(c.election_max + 10ms);
  EXPECT_EQ(net.leader(), leader);
  EXPECT_FALSE(net.node(*leader).status().transferring);
  EXPECT_EQ(net.node(*leader).stats().transfers_aborted, 1u);
  net.run_for(c.heartbeat_interval);
  EXPECT_GT(net.node(*leader).status().lease_until, net.now()) << "lease regained";
  EXPECT_NO_VIOLATIONS(net);
}

// The whole cluster, end to end, for "a late TimeoutNow breaks the lease": the leader's
// TimeoutNow is held past the abort; the target acks the leader's later heartbeats (so it backs
// the rebuilt lease) while the third node hears none of them. The TimeoutNow then arrives.
TEST(ElectionScenario, LateTimeoutNowCannotOverlapTheRebuiltLease) {
  for (bool unsafe : {false, true}) {
    const Config c;
    MemoryNetwork::Options o = Cluster(3);
    o.config.unsafe.late_timeout_now = unsafe;
    MemoryNetwork net(o);
    std::optional<NodeId> leader = net.elect();
    ASSERT_TRUE(leader);
    const NodeId target = Except(net.ids(), {*leader})[0];
    const NodeId other = Except(net.ids(), {*leader})[1];
    net.drop_if([](const Message& m) { return m.type == MessageType::kTimeoutNow; });
    net.with_node(*leader, [&](Election& e, Nanos now) { e.transfer_leadership(target, now); });
    net.run_for(5ms);  // the announcement reaches both
    net.drop_if([&](const Message& m) { return m.from == *leader && m.to == other; });
    // So that the leader learns of the new term only from its own next heartbeat's answer.
    net.drop_if([&](const Message& m) {
      return m.from == target && m.to == *leader && m.type == MessageType::kHeartbeat;
    });
    net.run_for(c.election_max + c.heartbeat_interval);  // aborted; lease rebuilt with target
    ASSERT_GT(net.node(*leader).status().lease_until, net.now());
    std::optional<Message> timeout_now;
    for (const Message& m : net.sent()) {
      if (m.type == MessageType::kTimeoutNow) timeout_now = m;
    }
    ASSERT_TRUE(timeout_now);
    net.inject(*timeout_now);
    net.run_for(c.election_min);
    if (unsafe) {
      EXPECT_FALSE(net.violations().empty()) << "the switch must bring the overlap back";
    } else {
      EXPECT_NO_VIOLATIONS(net);
      EXPECT_EQ(net.leader(), leader);
    }
  }
}

// The restart variant on the voter's side: the third node backs the rebuilt lease, restarts,
// and then gets an old "transferring" heartbeat; the target, cut off from the leader since the
// announcement, stands on the late TimeoutNow and asks it for its vote.
TEST(ElectionScenario, RestartedVoterCannotHandATransferTheLeaseItBacked) {
  for (bool unsafe : {false, true}) {
    const Config c;
    MemoryNetwork::Options o = Cluster(3);
    o.config.unsafe.transfer_in_restart_window = unsafe;
    MemoryNetwork net(o);
    std::optional<NodeId> leader = net.elect();
    ASSERT_TRUE(leader);
    const NodeId target = Except(net.ids(), {*leader})[0];
    const NodeId voter = Except(net.ids(), {*leader})[1];
    net.drop_if([](const Message& m) { return m.type == MessageType::kTimeoutNow; });
    net.with_node(*leader, [&](Election& e, Nanos now) { e.transfer_leadership(target, now); });
    // The target hears the transfer's second announcement, so its election timer runs past the
    // abort; then leader and target no longer hear each other, while the voter hears the leader.
    net.run_for(c.heartbeat_interval + 5ms);
    net.drop_if([&](const Message& m) {
      return (m.from == *leader && m.to == target) || (m.from == target && m.to == *leader);
    });
    net.run_for(c.election_max - c.heartbeat_interval + 20ms);  // aborted; lease rebuilt
    ASSERT_GT(net.node(*leader).status().lease_until, net.now());
    net.crash(voter);
    net.run_for(10ms);
    net.restart(voter);
    std::optional<Message> announcement, timeout_now;
    for (const Message& m : net.sent()) {
      if (m.type == MessageType::kHeartbeat && m.to == voter && m.transferring) announcement = m;
      if (m.type == MessageType::kTimeoutNow) timeout_now = m;
    }
    ASSERT_TRUE(announcement && timeout_now);
    net.inject(*announcement);
    net.run_for(2ms);
    net.inject(*timeout_now);
    net.run_for(c.election_min / 2);
    if (unsafe) {
      EXPECT_FALSE(net.violations().empty()) << "the switch must bring the overlap back";
    } else {
      EXPECT_NO_VIOLATIONS(net);
    }
  }
}

// The restart window, from the record: a voter that acked the leader's heartbeat and then
// crashed comes back, and a candidate that has not heard the leader for a while asks it for its
// vote. Kept, the record makes it refuse until that ack's promise has ended (and the leader's
// lease with it); a record that forgets lets the candidate win inside the leader's lease.
TEST(ElectionScenario, ARestartedVoterHonoursTheLeaseItAckedAsLongAsItsRecordSays) {
  using Record = MemoryNetwork::PromiseRecord;
  for (Record record : {Record::kKept, Record::kForgotten}) {
    const Config c;
    MemoryNetwork net(Cluster(3));
    std::optional<NodeId> leader = net.elect();
    ASSERT_TRUE(leader);
    const NodeId voter = Except(net.ids(), {*leader})[0];
    const NodeId candidate = Except(net.ids(), {*leader})[1];
    net.cut(*leader, candidate);  // the candidate stops hearing the leader; the voter does not
    net.run_for(c.heartbeat_interval + 5ms);  // the voter has acked a heartbeat since
    ASSERT_GT(net.node(*leader).status().lease_until, net.now());
    net.crash(voter);
    net.run_for(10ms);
    // Back, but the leader's heartbeats no longer reach it: only its record stands for the lease.
    net.drop_if([&](const Message& m) { return m.from == *leader && m.to == voter; });
    net.restart(voter, record);
    net.run_for(2 * c.election_max + c.election_min);
    if (record == Record::kForgotten) {
      EXPECT_FALSE(net.violations().empty()) << "a forgotten promise must let the leases overlap";
    } else {
      EXPECT_NO_VIOLATIONS(net);
      EXPECT_FALSE(net.leaders().empty());
    }
  }
}

// And a leader that dies had promised nobody anything: restarted from its record, it votes at
// once, where without one it would wait out a whole election_min.
TEST(ElectionScenario, ARestartedLeaderVotesAtOnceFromItsRecord) {
  using Record = MemoryNetwork::PromiseRecord;
  for (Record record : {Record::kKept, Record::kNone}) {
    const Config c;
    MemoryNetwork net(Cluster(3));
    std::optional<NodeId> leader = net.elect();
    ASSERT_TRUE(leader);
    net.run_for(c.election_min + 5ms);  // past the promises it made as a voter in that election
    const NodeId old = *leader;
    net.crash(old);
    net.run_for(c.election_min + 5ms);  // the old lease ends
    net.restart(old, record);
    Message ask;
    ask.type = MessageType::kVoteRequest;
    ask.from = Except(net.ids(), {old})[0];
    ask.to = old;
    ask.term = net.node(old).hard_state().term + 1;
    bool granted = false;
    net.with_node(old, [&](Election& e, Nanos now) {
      e.step(ask, now);
      for (const Message& m : e.ready().messages) granted |= m.granted;
    });
    EXPECT_EQ(granted, record == Record::kKept);
  }
}

TEST(ElectionScenario, StepDownHandsOverByElection) {
  MemoryNetwork net(Cluster(3));
  std::optional<NodeId> leader = net.elect();
  ASSERT_TRUE(leader);
  const Term term = net.node(*leader).status().term;
  net.with_node(*leader, [&](Election& e, Nanos now) { ASSERT_TRUE(e.step_down(now)); });
  std::optional<NodeId> next = net.elect();
  ASSERT_TRUE(next);
  EXPECT_GT(net.node(*next).status().term, term);
  EXPECT_NO_VIOLATIONS(net);
}

// A leader whose app is gone hands over by transfer, faster than any election timeout, and a
// node whose app is gone never stands, however long it waits; it still votes.
TEST(ElectionScenario, LeadershipLeavesANodeWhoseAppIsGone) {
  const Config c;
  MemoryNetwork net(Cluster(3));
  std::optional<NodeId> leader = net.elect();
  ASSERT_TRUE(leader);
  net.run_for(200ms);
  const Nanos started = net.now();
  net.with_node(*leader, [&](Election& e, Nanos now) { e.set_eligible(false, now); });
  ASSERT_TRUE(net.run_until([&] { return net.leader() && net.leader() != leader; }, 2s));
  EXPECT_LT(net.now() - started, c.election_min) << "handed over, not timed out";
  EXPECT_EQ(net.node(*leader).stats().became_ineligible, 1u);
  // The new leader's app goes too: the third node takes over, and the first never stands.
  const NodeId second = *net.leader();
  net.with_node(second, [&](Election& e, Nanos now) { e.set_eligible(false, now); });
  ASSERT_TRUE(net.run_until(
      [&] { return net.leader() && net.leader() != leader && net.leader() != second; }, 2s));
  const NodeId third = *net.leader();
  const uint64_t campaigns =
      net.node(*leader).stats().pre_votes_started + net.node(*leader).stats().elections_started;
  net.crash(third);  // only the two without an app are left: nobody may lead
  net.run_for(10s);
  EXPECT_FALSE(net.leader().has_value());
  EXPECT_EQ(
      net.node(*leader).stats().pre_votes_started + net.node(*leader).stats().elections_started,
      campaigns);
  // The first one's app is back: it stands, and the other votes for it.
  net.with_node(*leader, [&](Election& e, Nanos now) { e.set_eligible(true, now); });
  ASSERT_TRUE(net.run_until([&] { return net.leader() == leader; }, 5s));
  EXPECT_NO_VIOLATIONS(net);
}

TEST(ElectionScenario, UnpluggedLeaderIsReplacedAndRejoinsQuietly) {
  MemoryNetwork net(Cluster(3));
  std::optional<NodeId> leader = net.elect();
  ASSERT_TRUE(leader);
  const Term term = net.node(*leader).status().term;
  net.with_node(*leader, [](Election& e, Nanos now) { e.set_unplugged(true, now); });
  const std::vector<NodeId> others = Except(net.ids(), {*leader});
  ASSERT_TRUE(net.run_until(
      [&] {
        return net.node(others[0]).status().role == Role::kLeader ||
               net.node(others[1]).status().role == Role::kLeader;
      },
      5s));
  net.run_until([&] { return net.node(*leader).status().role != Role::kLeader; }, 5s);
  EXPECT_EQ(net.node(*leader).stats().check_quorum_step_downs, 1u);
  net.run_for(10s);
  EXPECT_EQ(net.node(*leader).status().term, term) << "pre-votes forever, never a new term";
  EXPECT_GT(net.node(*leader).stats().messages_dropped_unplugged, 0u);
  const std::optional<NodeId> new_leader = net.leader();
  ASSERT_TRUE(new_leader);
  const Term new_term = net.node(*new_leader).status().term;

  net.with_node(*leader, [](Election& e, Nanos now) { e.set_unplugged(false, now); });
  net.run_for(3s);
  EXPECT_EQ(net.leader(), new_leader);
  EXPECT_EQ(net.node(*new_leader).status().term, new_term);
  EXPECT_EQ(net.node(*leader).status().leader, *new_leader);
  EXPECT_NO_VIOLATIONS(net);
}

TEST(ElectionScenario, LossyNetworkStillElectsAndStaysSafe) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    MemoryNetwork::Options o = Cluster(5, seed);
    o.jitter = 20ms;
    MemoryNetwork net(o);
    std::mt19937_64 rng(seed);
    net.drop_if([&rng](const Message&) { return rng() % 100 < 20; });
    net.run_for(30s);
    EXPECT_FALSE(net.leaders().empty()) << "seed " << seed;
    EXPECT_NO_VIOLATIONS(net) << "seed " << seed;
  }
}

TEST(ElectionScenario, DuplicatedAndReorderedMessagesAreHarmless) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    MemoryNetwork::Options o = Cluster(5, seed);
    o.jitter = 40ms;
    o.duplicate_percent = 30;
    MemoryNetwork net(o);
    ASSERT_TRUE(net.elect()) << "seed " << seed;
    const std::optional<NodeId> first = net.leader();
    net.crash(*first);
    ASSERT_TRUE(net.elect()) << "seed " << seed;
    net.restart(*first);
    net.run_for(10s);
    EXPECT_EQ(net.leaders().size(), 1u);
    EXPECT_NO_VIOLATIONS(net) << "seed " << seed;
  }
}

// One seed replays a whole cluster exactly: the cores draw all randomness from their seeds.
TEST(ElectionScenario, SameSeedReplaysTheWholeCluster) {
  auto run = [](uint64_t seed) {
    MemoryNetwork::Options o = Cluster(5, seed);
    o.jitter = 10ms;
    MemoryNetwork net(o);
    net.run_for(3s);
    if (std::optional<NodeId> leader = net.leader()) net.crash(*leader);
    net.run_for(3s);
    return net.sent();
  };
  const std::vector<Message> a = run(7);
  EXPECT_GT(a.size(), 50u);
  EXPECT_TRUE(a == run(7));
  EXPECT_FALSE(a == run(8));
}

// The regression the design warns about: counting quorum from discovered peers lets two
// disjoint groups both reach "a majority" of what they see in the same term. Five real nodes;
// n1 has discovered only n3, n2 has discovered everyone.
TEST(ElectionScenario, DiscoveryQuorumElectsTwoLeadersInOneTerm) {
  auto run = [](bool quorum_from_discovery) {
    Config c;
    c.cluster_size = 5;
    c.pre_vote = false;
    c.quorum_from_discovery = quorum_from_discovery;
    const std::map<NodeId, std::vector<NodeId>> known = {{"n1", {"n3"}},
                                                         {"n2", {"n1", "n3", "n4", "n5"}},
                                                         {"n3", {"n1", "n2", "n4", "n5"}},
                                                         {"n4", {"n1", "n2", "n3", "n5"}},
                                                         {"n5", {"n1", "n2", "n3", "n4"}}};
    std::map<NodeId, std::unique_ptr<Election>> nodes;
    uint64_t seed = 1;
    for (const auto& [id, peers] : known) {
      nodes[id] = std::make_unique<Election>(c, id, peers, HardState(), seed++, Nanos(0));
    }
    const Nanos t = 3s;  // after every start-up lease and first election timeout
    // n1 and n2 stand at the same moment; n2's requests to n1 and n3 are lost.
    nodes["n1"]->tick(t);
    nodes["n2"]->tick(t);
    std::vector<Message> in_flight;
    for (auto& [id, e] : nodes) {
      for (Message& m : e->ready().messages) {
        if (!(m.from == "n2" && (m.to == "n3" || m.to == "n1"))) in_flight.push_back(m);
      }
    }
    while (!in_flight.empty()) {
      std::vector<Message> next;
      for (const Message& m : in_flight) {
        nodes[m.to]->step(m, t + 10ms);
        for (Message& reply : nodes[m.to]->ready().messages) next.push_back(reply);
      }
      in_flight = std::move(next);
    }
    // Only term 1 was ever contested, so every win is a win in term 1.
    uint64_t wins = 0;
    for (auto& [id, e] : nodes) wins += e->stats().elections_won;
    return wins;
  };
  EXPECT_EQ(run(/*quorum_from_discovery=*/true), 2u) << "the unsafe mode must show the split";
  EXPECT_EQ(run(/*quorum_from_discovery=*/false), 1u) << "the configured quorum prevents it";
}

}  // namespace
}  // namespace instaface::election
