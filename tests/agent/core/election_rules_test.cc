// One test per rule of the election: the Raft paper's §5.2 (leader election), the seed's rules
// for a leader that receives a heartbeat, and the thesis' PreVote, CheckQuorum, lease and
// leadership transfer. Each test drives a single core by hand: messages in, Ready out.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <set>

#include "instaface/election/election.h"

namespace instaface::election {
namespace {

using namespace std::chrono_literals;

constexpr Nanos kT0 = 10s;  // an arbitrary clock epoch, not zero
// After the start-up lease (election_min) and any election timeout (election_max).
constexpr Nanos kAfterStart = kT0 + 1s + 1ms;

Config NoPreVote() {
  Config c;
  c.pre_vote = false;
  return c;
}

std::unique_ptr<Election> MakeNode(Config config = Config(), HardState restored = HardState(),
                                   Nanos now = kT0, std::vector<NodeId> peers = {"b", "c"},
                                   uint64_t seed = 1) {
  return std::make_unique<Election>(config, "a", std::move(peers), std::move(restored), seed, now);
}

Message Make(MessageType type, const NodeId& from, Term term, bool granted = false) {
  Message m;
  m.type = type;
  m.from = from;
  m.to = "a";
  m.term = term;
  m.granted = granted;
  return m;
}

Message Heartbeat(const NodeId& from, Term term, Nanos send_time, bool transferring = false) {
  Message m = Make(MessageType::kHeartbeat, from, term);
  m.send_time = send_time;
  m.transferring = transferring;
  return m;
}

Message Ack(const NodeId& from, Term term, Nanos send_time) {
  Message m = Make(MessageType::kHeartbeatResponse, from, term, true);
  m.send_time = send_time;
  return m;
}

std::vector<Message> OfType(const std::vector<Message>& all, MessageType type) {
  std::vector<Message> out;
  std::copy_if(all.begin(), all.end(), std::back_inserter(out),
               [&](const Message& m) { return m.type == type; });
  return out;
}

// The single reply a node produced, which the test expects to be of `type`.
Message OnlyReply(Election& e, MessageType type) {
  std::vector<Message> out = e.ready().messages;
  EXPECT_EQ(out.size(), 1u);
  if (out.empty()) return Message();
  EXPECT_EQ(out[0].type, type) << MessageTypeName(out[0].type);
  return out[0];
}

// Makes "a" leader of term 1 with b's vote; returns the time it won. Output is consumed.
Nanos MakeLeader(Election& e) {
  const Nanos t = e.next_deadline();
  e.tick(t);
  if (e.status().role == Role::kPreCandidate) {
    e.step(Make(MessageType::kPreVoteResponse, "b", e.hard_state().term + 1, true), t);
  }
  e.step(Make(MessageType::kVoteResponse, "b", e.hard_state().term, true), t);
  EXPECT_EQ(e.status().role, Role::kLeader);
  e.ready();
  return t;
}

// ---- §5.2 Leader election -------------------------------------------------------------------

TEST(ElectionRules, NodeStartsAsFollowerWithoutLeader) {
  auto e = MakeNode();
  Ready r = e->ready();
  ASSERT_TRUE(r.status);
  EXPECT_EQ(r.status->role, Role::kFollower);
  EXPECT_TRUE(r.status->leader.empty());
  EXPECT_FALSE(r.hard_state) << "a fresh zero state needs no write";
  EXPECT_TRUE(r.messages.empty());
}

TEST(ElectionRules, FollowerStandsAfterElectionTimeout) {
  auto e = MakeNode(NoPreVote());
  e->tick(kT0 + Config().election_min - 1ns);
  EXPECT_EQ(e->status().role, Role::kFollower) << "no election before election_min";
  e->tick(kT0 + Config().election_max);
  EXPECT_EQ(e->status().role, Role::kCandidate);
  EXPECT_EQ(e->hard_state().term, 1u);
}

TEST(ElectionRules, ElectionTimeoutIsRandomWithinBounds) {
  const Config c;
  std::set<int64_t> seen;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto e = MakeNode(c, HardState(), kT0, {"b", "c"}, seed);
    const Nanos deadline = e->next_deadline();
    EXPECT_GE(deadline, kT0 + c.election_min);
    EXPECT_LE(deadline, kT0 + c.election_max);
    seen.insert(deadline.count());
  }
  EXPECT_GT(seen.size(), 10u) << "timeouts must differ between seeds";
}

TEST(ElectionRules, SameSeedReplaysTheSameRun) {
  auto run = [](uint64_t seed) {
    auto e = MakeNode(NoPreVote(), HardState(), kT0, {"b", "c"}, seed);
    std::vector<int64_t> trace;
    for (int i = 0; i < 5; ++i) {
      Nanos t = e->next_deadline();
      trace.push_back(t.count());
      e->tick(t);  // stands again and again: no one answers
    }
    return trace;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(ElectionRules, CandidateVotesForItself) {
  auto e = MakeNode(NoPreVote());
  e->tick(e->next_deadline());
  Ready r = e->ready();
  ASSERT_TRUE(r.hard_state);
  EXPECT_EQ(r.hard_state->term, 1u);
  EXPECT_EQ(r.hard_state->voted_for, "a");
  EXPECT_EQ(e->stats().elections_started, 1u);
}

TEST(ElectionRules, CandidateAsksEveryPeerInParallel) {
  auto e = MakeNode(NoPreVote(), HardState(), kT0, {"b", "c", "d", "e"});
  e->tick(e->next_deadline());
  std::vector<Message> requests = OfType(e->ready().messages, MessageType::kVoteRequest);
  std::set<NodeId> to;
  for (const Message& m : requests) {
    EXPECT_EQ(m.term, 1u);
    EXPECT_FALSE(m.transfer);
    to.insert(m.to);
  }
  EXPECT_EQ(to, (std::set<NodeId>{"b", "c", "d", "e"}));
}

TEST(ElectionRules, CandidateWinsWithQuorumOfVotes) {
  auto e = MakeNode(NoPreVote());
  const Nanos t = e->next_deadline();
  e->tick(t);
  e->ready();
  e->step(Make(MessageType::kVoteResponse, "c", 1, false), t);
  EXPECT_EQ(e->status().role, Role::kCandidate) << "a refusal does not count";
  e->step(Make(MessageType::kVoteResponse, "b", 1, true), t);
  EXPECT_EQ(e->status().role, Role::kLeader);
  EXPECT_EQ(e->status().leader, "a");
  EXPECT_EQ(e->stats().elections_won, 1u);
}

TEST(ElectionRules, VotesAreCountedFromDistinctNodes) {
  Config c = NoPreVote();
  c.cluster_size = 5;
  auto e = MakeNode(c, HardState(), kT0, {"b", "c", "d", "e"});
  const Nanos t = e->next_deadline();
  e->tick(t);
  e->step(Make(MessageType::kVoteResponse, "b", 1, true), t);
  e->step(Make(MessageType::kVoteResponse, "b", 1, true), t);
  EXPECT_EQ(e->status().role, Role::kCandidate) << "a duplicated vote counted twice";
  e->step(Make(MessageType::kVoteResponse, "c", 1, true), t);
  EXPECT_EQ(e->status().role, Role::kLeader);
}

TEST(ElectionRules, VotesOfAnotherTermDoNotCount) {
  auto e = MakeNode(NoPreVote(), HardState{4, ""});
  const Nanos t = e->next_deadline();
  e->tick(t);
  ASSERT_EQ(e->hard_state().term, 5u);
  e->step(Make(MessageType::kVoteResponse, "b", 4, true), t);
  EXPECT_EQ(e->status().role, Role::kCandidate);
}

TEST(ElectionRules, CandidateStartsOverAfterElectionTimeout) {
  auto e = MakeNode(NoPreVote());
  e->tick(e->next_deadline());
  const Nanos retry = e->next_deadline();
  EXPECT_GE(retry - e->next_deadline(), 0ns);
  e->tick(retry);
  EXPECT_EQ(e->status().role, Role::kCandidate);
  EXPECT_EQ(e->hard_state().term, 2u) << "a new term for the new candidacy";
}

TEST(ElectionRules, CandidateStartsOverWithPreVote) {
  auto e = MakeNode();
  Nanos t = e->next_deadline();
  e->tick(t);
  e->step(Make(MessageType::kPreVoteResponse, "b", 1, true), t);
  ASSERT_EQ(e->status().role, Role::kCandidate);
  const Nanos retry = e->next_deadline();
  EXPECT_GE(retry, t + Config().election_min);
  EXPECT_LE(retry, t + Config().election_max);
  e->ready();
  e->tick(retry);
  EXPECT_EQ(e->status().role, Role::kPreCandidate);
  EXPECT_EQ(e->hard_state().term, 1u);
  EXPECT_EQ(OfType(e->ready().messages, MessageType::kPreVoteRequest).size(), 2u);
}

TEST(ElectionRules, AtMostOneVotePerTerm) {
  auto e = MakeNode();
  e->step(Make(MessageType::kVoteRequest, "b", 1), kAfterStart);
  EXPECT_TRUE(OnlyReply(*e, MessageType::kVoteResponse).granted);
  e->step(Make(MessageType::kVoteRequest, "c", 1), kAfterStart);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kVoteResponse).granted);
  e->step(Make(MessageType::kVoteRequest, "b", 1), kAfterStart);
  EXPECT_TRUE(OnlyReply(*e, MessageType::kVoteResponse).granted) << "a repeated request";
  EXPECT_EQ(e->hard_state().voted_for, "b");
}

TEST(ElectionRules, VoteRefusedForLowerTerm) {
  auto e = MakeNode(Config(), HardState{5, ""});
  e->step(Make(MessageType::kVoteRequest, "b", 4), kAfterStart);
  Message reply = OnlyReply(*e, MessageType::kVoteResponse);
  EXPECT_FALSE(reply.granted);
  EXPECT_EQ(reply.term, 5u);
}

TEST(ElectionRules, VoteRequestWithHigherTermOutsideLeaseAdoptsTerm) {
  auto e = MakeNode(Config(), HardState{3, "c"});
  e->step(Make(MessageType::kVoteRequest, "b", 7), kAfterStart);
  Ready r = e->ready();
  ASSERT_TRUE(r.hard_state);
  EXPECT_EQ(r.hard_state->term, 7u);
  EXPECT_EQ(r.hard_state->voted_for, "b") << "the old term's vote does not bind the new term";
}

TEST(ElectionRules, VoteSurvivesRestart) {
  auto e = MakeNode();
  e->step(Make(MessageType::kVoteRequest, "b", 5), kAfterStart);
  Ready r = e->ready();
  ASSERT_TRUE(r.hard_state);
  const HardState persisted = *r.hard_state;

  const Nanos restart = kAfterStart + 1s;
  auto again = MakeNode(Config(), persisted, restart);
  EXPECT_EQ(again->hard_state(), persisted);
  const Nanos after_restart_lease = restart + Config().election_min;
  again->step(Make(MessageType::kVoteRequest, "c", 5), after_restart_lease);
  EXPECT_FALSE(OnlyReply(*again, MessageType::kVoteResponse).granted);
  again->step(Make(MessageType::kVoteRequest, "b", 5), after_restart_lease);
  EXPECT_TRUE(OnlyReply(*again, MessageType::kVoteResponse).granted);
}

TEST(ElectionRules, RestartedNodeRefusesVotesWithinElectionMin) {
  auto e = MakeNode(Config(), HardState{2, ""});
  e->step(Make(MessageType::kVoteRequest, "b", 3), kT0 + Config().election_min - 1ns);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kVoteResponse).granted);
  EXPECT_EQ(e->hard_state().term, 2u) << "a refused request must not raise the term";
  e->step(Make(MessageType::kVoteRequest, "b", 3), kT0 + Config().election_min);
  EXPECT_TRUE(OnlyReply(*e, MessageType::kVoteResponse).granted);
}

TEST(ElectionRules, GrantingAVoteRestartsTheElectionTimer) {
  auto e = MakeNode();
  e->step(Make(MessageType::kVoteRequest, "b", 1), kAfterStart);
  EXPECT_GE(e->next_deadline(), kAfterStart + Config().election_min);
}

// ---- Heartbeats: the seed's rules ---------------------------------------------------------

TEST(ElectionRules, LeaderHeartbeatsAtOnceAndEveryInterval) {
  const Config c;
  auto e = MakeNode();
  const Nanos t = e->next_deadline();
  e->tick(t);
  e->step(Make(MessageType::kPreVoteResponse, "b", 1, true), t);
  e->step(Make(MessageType::kVoteResponse, "b", 1, true), t);
  std::vector<Message> first = OfType(e->ready().messages, MessageType::kHeartbeat);
  ASSERT_EQ(first.size(), 2u);
  for (const Message& m : first) {
    EXPECT_EQ(m.send_time, t);
    EXPECT_EQ(m.term, 1u);
  }
  // Acks from b keep CheckQuorum quiet; c never answers and the leader does not wait for it.
  e->step(Ack("b", 1, t), t + 1ms);
  e->tick(t + c.heartbeat_interval - 1ns);
  EXPECT_TRUE(OfType(e->ready().messages, MessageType::kHeartbeat).empty());
  e->tick(t + c.heartbeat_interval);
  std::vector<Message> second = OfType(e->ready().messages, MessageType::kHeartbeat);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].send_time, t + c.heartbeat_interval);
  EXPECT_EQ(e->stats().heartbeats_sent, 4u);
}

TEST(ElectionRules, FollowerAcceptsHeartbeatAndRestartsItsTimer) {
  const Config c;
  auto e = MakeNode();
  const Nanos t = kAfterStart;  // later than the first timeout: the heartbeat must rearm it
  e->step(Heartbeat("b", 1, t - 2ms), t);
  Message ack = OnlyReply(*e, MessageType::kHeartbeatResponse);
  EXPECT_TRUE(ack.granted);
  EXPECT_EQ(ack.send_time, t - 2ms) << "the ack echoes the heartbeat's send time";
  EXPECT_EQ(e->status().leader, "b");
  EXPECT_EQ(e->hard_state().term, 1u);
  EXPECT_GE(e->next_deadline(), t + c.election_min);
  e->tick(t + c.election_min - 1ns);
  EXPECT_EQ(e->status().role, Role::kFollower);
  EXPECT_EQ(e->stats().leader_changes, 1u);
}

TEST(ElectionRules, LeaderStepsDownOnHigherTermHeartbeat) {
  auto e = MakeNode();
  const Nanos t = MakeLeader(*e);
  e->step(Heartbeat("c", 2, t), t + 1ms);
  EXPECT_EQ(e->status().role, Role::kFollower);
  EXPECT_EQ(e->status().leader, "c");
  Ready r = e->ready();
  ASSERT_TRUE(r.hard_state);
  EXPECT_EQ(r.hard_state->term, 2u);
  EXPECT_TRUE(r.hard_state->voted_for.empty());
}

TEST(ElectionRules, LeaderAnswersLowerTermHeartbeatWithItsTerm) {
  auto e = MakeNode(Config(), HardState{4, ""});
  const Nanos t = MakeLeader(*e);
  ASSERT_EQ(e->hard_state().term, 5u);
  e->step(Heartbeat("c", 3, t), t + 1ms);
  EXPECT_EQ(e->status().role, Role::kLeader);
  Message reply = OnlyReply(*e, MessageType::kHeartbeatResponse);
  EXPECT_FALSE(reply.granted);
  EXPECT_EQ(reply.term, 5u);
  EXPECT_EQ(reply.to, "c");
}

TEST(ElectionRules, FollowerAnswersLowerTermHeartbeatWithItsTerm) {
  auto e = MakeNode(Config(), HardState{4, ""});
  e->step(Heartbeat("c", 3, kT0), kT0 + 1ms);
  Message reply = OnlyReply(*e, MessageType::kHeartbeatResponse);
  EXPECT_FALSE(reply.granted);
  EXPECT_EQ(reply.term, 4u);
  EXPECT_TRUE(e->status().leader.empty());
}

TEST(ElectionRules, LeaderBecomesFollowerOnSameTermHeartbeat) {
  auto e = MakeNode();
  const Nanos t = MakeLeader(*e);
  e->step(Heartbeat("c", 1, t), t + 1ms);
  EXPECT_EQ(e->status().role, Role::kFollower);
  EXPECT_EQ(e->status().leader, "c");
  EXPECT_EQ(e->hard_state().term, 1u);
  EXPECT_EQ(e->stats().same_term_heartbeats_as_leader, 1u);
}

TEST(ElectionRules, StaleLeaderStepsDownOnRejectedHeartbeat) {
  auto e = MakeNode();
  const Nanos t = MakeLeader(*e);
  Message reject = Make(MessageType::kHeartbeatResponse, "c", 6, false);
  reject.send_time = t;
  e->step(reject, t + 1ms);
  EXPECT_EQ(e->status().role, Role::kFollower);
  EXPECT_EQ(e->hard_state().term, 6u);
  EXPECT_TRUE(e->status().leader.empty());
}

TEST(ElectionRules, CandidateBecomesFollowerOnHeartbeatOfItsTerm) {
  auto e = MakeNode(NoPreVote());
  const Nanos t = e->next_deadline();
  e->tick(t);
  ASSERT_EQ(e->status().role, Role::kCandidate);
  e->step(Heartbeat("b", 1, t), t + 1ms);
  EXPECT_EQ(e->status().role, Role::kFollower);
  EXPECT_EQ(e->status().leader, "b");
  EXPECT_EQ(e->hard_state().voted_for, "a") << "the vote of the term stays";
}

TEST(ElectionRules, PreCandidateBecomesFollowerOnHeartbeatOfItsTerm) {
  auto e = MakeNode(Config(), HardState{3, ""});
  const Nanos t = e->next_deadline();
  e->tick(t);
  ASSERT_EQ(e->status().role, Role::kPreCandidate);
  e->step(Heartbeat("b", 3, t), t + 1ms);
  EXPECT_EQ(e->status().role, Role::kFollower);
  EXPECT_EQ(e->status().leader, "b");
}

TEST(ElectionRules, HigherTermInVoteResponseIsAdopted) {
  auto e = MakeNode(NoPreVote());
  const Nanos t = e->next_deadline();
  e->tick(t);
  e->step(Make(MessageType::kVoteResponse, "b", 9, false), t);
  EXPECT_EQ(e->status().role, Role::kFollower);
  EXPECT_EQ(e->hard_state(), (HardState{9, ""}));
}

// ---- Quorum --------------------------------------------------------------------------------

TEST(ElectionRules, QuorumIsFromConfiguredClusterSize) {
  Config c = NoPreVote();
  c.cluster_size = 5;
  auto e = MakeNode(c);  // knows only b and c
  EXPECT_EQ(e->quorum(), 3);
  e->set_peers({"b"});
  EXPECT_EQ(e->quorum(), 3) << "discovery must not change the quorum";
  const Nanos t = e->next_deadline();
  e->tick(t);
  e->step(Make(MessageType::kVoteResponse, "b", 1, true), t);
  EXPECT_EQ(e->status().role, Role::kCandidate) << "2 of 5 is no majority";
  e->step(Make(MessageType::kVoteResponse, "d", 1, true), t);
  EXPECT_EQ(e->status().role, Role::kLeader) << "a vote from a peer not yet discovered counts";
}

TEST(ElectionRules, QuorumFromDiscoveryCountsKnownPeers) {
  Config c = NoPreVote();
  c.cluster_size = 5;
  c.quorum_from_discovery = true;
  auto e = MakeNode(c, HardState(), kT0, {"b", "c"});
  EXPECT_EQ(e->quorum(), 2);
  e->set_peers({"b", "c", "d", "e"});
  EXPECT_EQ(e->quorum(), 3);
}

TEST(ElectionRules, QuorumForEvenAndOddSizes) {
  for (int size : {1, 2, 3, 4, 5, 6, 7}) {
    Config c;
    c.cluster_size = size;
    auto e = MakeNode(c);
    EXPECT_EQ(e->quorum(), size / 2 + 1) << size;
  }
}

TEST(ElectionRules, SingleNodeClusterElectsItself) {
  Config c;
  c.cluster_size = 1;
  auto e = MakeNode(c, HardState(), kT0, {});
  e->tick(e->next_deadline());
  EXPECT_EQ(e->status().role, Role::kLeader);
  EXPECT_EQ(e->hard_state().term, 1u);
  EXPECT_GT(e->status().lease_until, Nanos(0)) << "its own quorum";
}

// ---- PreVote (thesis §9.6) -----------------------------------------------------------------

TEST(ElectionRules, PreVoteDoesNotRaiseTerm) {
  auto e = MakeNode(Config(), HardState{3, "x"});
  e->tick(e->next_deadline());
  EXPECT_EQ(e->status().role, Role::kPreCandidate);
  Ready r = e->ready();
  EXPECT_FALSE(r.hard_state) << "no term or vote change while pre-voting";
  std::vector<Message> requests = OfType(r.messages, MessageType::kPreVoteRequest);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].term, 4u) << "the term it would stand in";
  EXPECT_EQ(e->hard_state(), (HardState{3, "x"}));
  EXPECT_EQ(e->stats().pre_votes_started, 1u);
  EXPECT_EQ(e->stats().elections_started, 0u);
}

TEST(ElectionRules, PreCandidateStandsOnQuorumOfPreVotes) {
  auto e = MakeNode(Config(), HardState{3, ""});
  const Nanos t = e->next_deadline();
  e->tick(t);
  e->step(Make(MessageType::kPreVoteResponse, "b", 4, true), t);
  EXPECT_EQ(e->status().role, Role::kCandidate);
  EXPECT_EQ(e->hard_state(), (HardState{4, "a"}));
}

TEST(ElectionRules, PreVotesForAnotherRoundDoNotCount) {
  auto e = MakeNode(Config(), HardState{3, ""});
  const Nanos t = e->next_deadline();
  e->tick(t);
  e->step(Make(MessageType::kPreVoteResponse, "b", 3, true), t);
  EXPECT_EQ(e->status().role, Role::kPreCandidate);
}

TEST(ElectionRules, PreVoteGrantedOnlyForHigherTermAndNeverChangesVoter) {
  auto e = MakeNode(Config(), HardState{3, "c"});
  e->step(Make(MessageType::kPreVoteRequest, "b", 3), kAfterStart);
  Message refused = OnlyReply(*e, MessageType::kPreVoteResponse);
  EXPECT_FALSE(refused.granted);
  EXPECT_EQ(refused.term, 3u);
  e->step(Make(MessageType::kPreVoteRequest, "b", 4), kAfterStart);
  Ready r = e->ready();
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_TRUE(r.messages[0].granted);
  EXPECT_EQ(r.messages[0].term, 4u) << "a granted pre-vote carries the request's term";
  EXPECT_FALSE(r.hard_state);
  EXPECT_EQ(e->hard_state(), (HardState{3, "c"}));
  EXPECT_EQ(e->stats().votes_granted, 0u);
}

TEST(ElectionRules, PreVoteRejectionWithHigherTermIsAdopted) {
  auto e = MakeNode(Config(), HardState{3, ""});
  const Nanos t = e->next_deadline();
  e->tick(t);
  e->step(Make(MessageType::kPreVoteResponse, "b", 8, false), t);
  EXPECT_EQ(e->status().role, Role::kFollower);
  EXPECT_EQ(e->hard_state().term, 8u);
}

// ---- Lease (thesis §4.2.3, §6.4) -----------------------------------------------------------

TEST(ElectionRules, FollowerInLeaseRefusesVotes) {
  const Config c;
  auto e = MakeNode(Config(), HardState{1, ""});
  const Nanos heard = kAfterStart;
  e->step(Heartbeat("b", 1, heard), heard);
  e->ready();
  e->step(Make(MessageType::kVoteRequest, "c", 2), heard + c.election_min - 1ns);
  Message refused = OnlyReply(*e, MessageType::kVoteResponse);
  EXPECT_FALSE(refused.granted);
  EXPECT_EQ(e->hard_state().term, 1u) << "the higher term is not adopted in lease";
  EXPECT_EQ(e->status().leader, "b");
  e->step(Make(MessageType::kVoteRequest, "c", 2), heard + c.election_min);
  EXPECT_TRUE(OnlyReply(*e, MessageType::kVoteResponse).granted);
  EXPECT_EQ(e->hard_state().term, 2u);
}

TEST(ElectionRules, FollowerInLeaseRefusesPreVotes) {
  const Config c;
  auto e = MakeNode(Config(), HardState{1, ""});
  const Nanos heard = kAfterStart;
  e->step(Heartbeat("b", 1, heard), heard);
  e->ready();
  e->step(Make(MessageType::kPreVoteRequest, "c", 2), heard + c.election_min - 1ns);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kPreVoteResponse).granted);
  e->step(Make(MessageType::kPreVoteRequest, "c", 2), heard + c.election_min);
  EXPECT_TRUE(OnlyReply(*e, MessageType::kPreVoteResponse).granted);
}

// ---- The leader's death, from the transport (peer_died) -------------------------------------

TEST(ElectionRules, EvidenceOfTheLeadersDeathVoidsItsLeaseForThisVoter) {
  auto e = MakeNode(Config(), HardState{1, ""});
  const Nanos heard = kAfterStart;
  e->step(Heartbeat("b", 1, heard), heard);
  e->ready();
  e->step(Make(MessageType::kVoteRequest, "c", 2), heard + 1ms);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kVoteResponse).granted) << "in lease";
  e->peer_died("b", heard + 2ms, heard + 2ms);
  e->ready();
  e->step(Make(MessageType::kPreVoteRequest, "c", 2), heard + 3ms);
  EXPECT_TRUE(OnlyReply(*e, MessageType::kPreVoteResponse).granted);
  e->step(Make(MessageType::kVoteRequest, "c", 2), heard + 3ms);
  EXPECT_TRUE(OnlyReply(*e, MessageType::kVoteResponse).granted);
  EXPECT_EQ(e->hard_state(), (HardState{2, "c"}));
  EXPECT_EQ(e->stats().leader_deaths_seen, 1u);
}

TEST(ElectionRules, EvidenceAboutAnyoneButTheLeaseHolderIsIgnored) {
  auto e = MakeNode(Config(), HardState{1, ""});
  const Nanos heard = kAfterStart;
  e->step(Heartbeat("b", 1, heard), heard);
  e->ready();
  e->peer_died("c", heard + 1ms, heard + 1ms);  // c is not whose lease a honours
  e->ready();
  e->step(Make(MessageType::kVoteRequest, "c", 2), heard + 2ms);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kVoteResponse).granted);
  EXPECT_EQ(e->stats().leader_deaths_seen, 0u);
}

TEST(ElectionRules, EvidenceOlderThanTheLeadersNewestHeartbeatIsIgnored) {
  auto e = MakeNode(Config(), HardState{1, ""});
  const Nanos heard = kAfterStart;
  e->step(Heartbeat("b", 1, heard), heard);
  e->ready();
  // Gathered before that heartbeat was taken in: the heartbeat came from a live process.
  e->peer_died("b", heard - 1ms, heard + 1ms);
  e->ready();
  e->step(Make(MessageType::kVoteRequest, "c", 2), heard + 2ms);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kVoteResponse).granted);
}

TEST(ElectionRules, AnyMessageFromTheDeadLeaderRestoresItsLease) {
  auto e = MakeNode(Config(), HardState{1, ""});
  const Nanos heard = kAfterStart;
  e->step(Heartbeat("b", 1, heard), heard);
  e->ready();
  e->peer_died("b", heard + 1ms, heard + 1ms);
  e->ready();
  e->step(Make(MessageType::kHeartbeatResponse, "b", 1, true), heard + 2ms);
  e->ready();
  e->step(Make(MessageType::kVoteRequest, "c", 2), heard + 3ms);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kVoteResponse).granted);
}

TEST(ElectionRules, ARestartedNodeCannotVoidTheLeaseItMayHaveAcked) {
  // It does not know whose lease it may have acked before it went down; no evidence can be
  // about that one.
  auto e = MakeNode(Config(), HardState{1, ""});
  e->peer_died("b", kT0 + 1ms, kT0 + 1ms);
  e->ready();
  e->step(Make(MessageType::kVoteRequest, "c", 2), kT0 + 2ms);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kVoteResponse).granted);
}

TEST(ElectionRules, AFollowerStandsOnItsLeadersDeathByRank) {
  Config c;
  auto first = MakeNode(c, HardState{1, ""});  // "a" ranks first among a and c
  const Nanos heard = kAfterStart;
  first->step(Heartbeat("b", 1, heard), heard);
  first->ready();
  first->peer_died("b", heard + 1ms, heard + 1ms);
  EXPECT_EQ(first->next_deadline(), heard + 1ms) << "rank 0 stands at once";
  first->tick(heard + 1ms);
  EXPECT_EQ(first->status().role, Role::kPreCandidate);
  EXPECT_EQ(first->stats().early_campaigns, 1u);
  Ready r = first->ready();
  EXPECT_EQ(OfType(r.messages, MessageType::kPreVoteRequest).size(), 2u);
  // Its voters' evidence may come a moment later: it asks again a step later.
  EXPECT_EQ(first->next_deadline(), heard + 1ms + c.death_stand_step);

  auto second =
      std::make_unique<Election>(c, "z", std::vector<NodeId>{"b", "c"}, HardState{1, ""}, 1, kT0);
  Message hb = Heartbeat("b", 1, heard);
  hb.to = "z";
  second->step(hb, heard);
  second->ready();
  second->peer_died("b", heard + 1ms, heard + 1ms);
  EXPECT_EQ(second->next_deadline(), heard + 1ms + c.death_stand_step) << "c ranks before z";
}

// Two survivors that stood on the same death a few ms apart would split the vote as candidates;
// while both only ask, the one that ranks later gives way, and asks again should the other fail.
TEST(ElectionRules, AnEarlyPreCandidateGivesWayToOneThatRanksBefore) {
  Config c;
  auto later =
      std::make_unique<Election>(c, "z", std::vector<NodeId>{"b", "c"}, HardState{1, ""}, 1, kT0);
  const Nanos heard = kAfterStart;
  Message hb = Heartbeat("b", 1, heard);
  hb.to = "z";
  later->step(hb, heard);
  later->ready();
  later->peer_died("b", heard + 1ms, heard + 1ms);
  const Nanos stood = heard + 1ms + c.death_stand_step;
  later->tick(stood);
  ASSERT_EQ(later->status().role, Role::kPreCandidate);
  later->ready();
  Message ask = Make(MessageType::kPreVoteRequest, "c", 2);
  ask.to = "z";
  later->step(ask, stood + 1ms);
  EXPECT_EQ(later->status().role, Role::kFollower) << "c ranks before z: z gives way";
  Message reply = OnlyReply(*later, MessageType::kPreVoteResponse);
  EXPECT_TRUE(reply.granted);
  EXPECT_EQ(later->next_deadline(), stood + 1ms + 2 * c.death_stand_step) << "and asks again";
  later->tick(later->next_deadline());
  EXPECT_EQ(later->status().role, Role::kPreCandidate) << "c did not take over";

  // The one that ranks first does not give way to a later one.
  auto first = MakeNode(c, HardState{1, ""});  // "a"
  first->step(Heartbeat("b", 1, heard), heard);
  first->ready();
  first->peer_died("b", heard + 1ms, heard + 1ms);
  first->tick(heard + 1ms);
  ASSERT_EQ(first->status().role, Role::kPreCandidate);
  first->ready();
  first->step(Make(MessageType::kPreVoteRequest, "c", 2), heard + 2ms);
  EXPECT_EQ(first->status().role, Role::kPreCandidate);
  EXPECT_TRUE(OnlyReply(*first, MessageType::kPreVoteResponse).granted);
}

TEST(ElectionRules, AnIneligibleFollowerDoesNotStandOnItsLeadersDeath) {
  auto e = MakeNode(Config(), HardState{1, ""});
  const Nanos heard = kAfterStart;
  e->step(Heartbeat("b", 1, heard), heard);
  e->set_eligible(false, heard);
  e->ready();
  e->peer_died("b", heard + 1ms, heard + 1ms);
  EXPECT_GT(e->next_deadline(), heard + 100ms);
  e->step(Make(MessageType::kVoteRequest, "c", 2), heard + 2ms);
  EXPECT_TRUE(OnlyReply(*e, MessageType::kVoteResponse).granted) << "it still votes";
}

TEST(ElectionRules, LeaderRefusesVotesWhileLeading) {
  auto e = MakeNode();
  const Nanos t = MakeLeader(*e);
  e->step(Make(MessageType::kVoteRequest, "c", 2), t + 1ms);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kVoteResponse).granted);
  EXPECT_EQ(e->status().role, Role::kLeader);
  EXPECT_EQ(e->hard_state().term, 1u);
}

TEST(ElectionRules, TransferVoteOverridesLeaseOnlyWhenLeaderAnnouncedIt) {
  auto e = MakeNode(Config(), HardState{1, ""});
  const Nanos t = kAfterStart;
  Message transfer_vote = Make(MessageType::kVoteRequest, "c", 2);
  transfer_vote.transfer = true;

  e->step(Heartbeat("b", 1, t), t);
  e->ready();
  e->step(transfer_vote, t + 1ms);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kVoteResponse).granted) << "no transfer announced";

  e->step(Heartbeat("b", 1, t + 2ms, /*transferring=*/true), t + 2ms);
  // A reordered older heartbeat without the flag does not hide the announcement.
  e->step(Heartbeat("b", 1, t + 1ms), t + 3ms);
  e->ready();
  e->step(transfer_vote, t + 4ms);
  EXPECT_TRUE(OnlyReply(*e, MessageType::kVoteResponse).granted);
  EXPECT_EQ(e->hard_state(), (HardState{2, "c"}));
}

TEST(ElectionRules, TransferVoteRefusedAfterLeaderAbortedTransfer) {
  auto e = MakeNode(Config(), HardState{1, ""});
  const Nanos t = kAfterStart;
  e->step(Heartbeat("b", 1, t, /*transferring=*/true), t);
  e->step(Heartbeat("b", 1, t + 5ms), t + 5ms);  // newer, transfer over
  e->ready();
  Message transfer_vote = Make(MessageType::kVoteRequest, "c", 2);
  transfer_vote.transfer = true;
  e->step(transfer_vote, t + 6ms);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kVoteResponse).granted);
}

TEST(ElectionRules, LeaseFromQuorumAcks) {
  Config c;
  c.cluster_size = 5;
  c.max_clock_drift_ppm = 1000;
  auto e = MakeNode(c, HardState(), kT0, {"b", "c", "d", "e"});
  const Nanos won = e->next_deadline();
  e->tick(won);
  e->step(Make(MessageType::kPreVoteResponse, "b", 1, true), won);
  e->step(Make(MessageType::kPreVoteResponse, "c", 1, true), won);
  e->step(Make(MessageType::kVoteResponse, "b", 1, true), won);
  e->step(Make(MessageType::kVoteResponse, "c", 1, true), won);
  ASSERT_EQ(e->status().role, Role::kLeader);
  EXPECT_EQ(e->status().lease_until, Nanos(0)) << "no lease before a quorum acked";

  const Nanos hb2 = won + c.heartbeat_interval;
  e->step(Ack("b", 1, won), won + 1ms);
  EXPECT_EQ(e->status().lease_until, Nanos(0)) << "2 of 5";
  e->tick(hb2);
  e->step(Ack("c", 1, hb2), hb2 + 1ms);
  // Acked send times: self hb2, c hb2, b won -> the 3rd newest is `won`.
  const Nanos margin = c.election_min * 2 * c.max_clock_drift_ppm / 1000000;
  EXPECT_EQ(e->status().lease_until, won + c.election_min - margin);
  e->step(Ack("d", 1, hb2), hb2 + 2ms);
  EXPECT_EQ(e->status().lease_until, hb2 + c.election_min - margin);
  EXPECT_LT(e->status().lease_until, hb2 + 2ms + c.election_min)
      << "the lease ends before any acking follower's refusal window";
}

TEST(ElectionRules, ANewLeadersVotesAreItsFirstLease) {
  Config c;
  c.cluster_size = 5;
  const Nanos margin = c.election_min * 2 * c.max_clock_drift_ppm / 1000000;
  // Stands, and wins with the votes of b and `third`, which echoes `third_echo`.
  auto campaign = [&](const NodeId& third, bool third_echoes) {
    auto e = MakeNode(c, HardState(), kT0, {"b", "c", "d", "e"});
    const Nanos stood = e->next_deadline();
    e->tick(stood);
    e->step(Make(MessageType::kPreVoteResponse, "b", 1, true), stood);
    e->step(Make(MessageType::kPreVoteResponse, "c", 1, true), stood);
    const auto requests = OfType(e->ready().messages, MessageType::kVoteRequest);
    EXPECT_EQ(requests.size(), 4u);
    EXPECT_EQ(requests.empty() ? Nanos(0) : requests[0].send_time, stood)
        << "vote requests carry the campaign's send time";
    Message b = Make(MessageType::kVoteResponse, "b", 1, true);
    b.send_time = stood;
    e->step(b, stood + 1ms);
    Message other = Make(MessageType::kVoteResponse, third, 1, true);
    other.send_time = third_echoes ? stood : stood - 1ns;
    e->step(other, stood + 2ms);
    EXPECT_EQ(e->status().role, Role::kLeader);
    return std::make_pair(stood, e->status().lease_until);
  };
  const auto [stood, lease] = campaign("c", true);
  EXPECT_EQ(lease, stood + c.election_min / 4 - margin)
      << "self, b and c promised a vote's worth (election_min / 4) from the campaign's start: a "
         "lease before any heartbeat";
  EXPECT_EQ(campaign("d", false).second, Nanos(0))
      << "a vote that echoes another time is a vote, and no promise about this campaign";
}

TEST(ElectionRules, AGrantedVoteIsALeasePromiseToTheCandidate) {
  const Config c;
  auto e = MakeNode();
  Message request = Make(MessageType::kVoteRequest, "b", 2);
  request.send_time = 123ms;
  e->step(request, kAfterStart);
  const Message granted = OnlyReply(*e, MessageType::kVoteResponse);
  ASSERT_TRUE(granted.granted);
  EXPECT_EQ(granted.send_time, 123ms) << "the echo the candidate's lease starts from";
  e->step(Make(MessageType::kPreVoteRequest, "c", 3), kAfterStart + 1ms);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kPreVoteResponse).granted);
  e->step(Make(MessageType::kVoteRequest, "c", 3), kAfterStart + 1ms);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kVoteResponse).granted);
  EXPECT_EQ(e->hard_state(), (HardState{2, "b"}));
  // The candidate itself may ask again, in a later term too: its own lease protects nobody.
  e->step(Make(MessageType::kVoteRequest, "b", 3), kAfterStart + 2ms);
  EXPECT_TRUE(OnlyReply(*e, MessageType::kVoteResponse).granted);
  e->step(Make(MessageType::kVoteRequest, "c", 4), kAfterStart + 1ms + c.election_min / 4);
  EXPECT_FALSE(OnlyReply(*e, MessageType::kVoteResponse).granted) << "b's second vote renewed it";
  e->step(Make(MessageType::kVoteRequest, "c", 4), kAfterStart + 2ms + c.election_min / 4);
  EXPECT_TRUE(OnlyReply(*e, MessageType::kVoteResponse).granted)
      << "a vote binds for election_min / 4, not a heartbeat's election_min";
}

TEST(ElectionRules, LeaseIgnoresStaleAndUnsentAcks) {
  auto e = MakeNode();
  const Nanos t = MakeLeader(*e);
  e->step(Ack("b", 0, t), t + 1ms);
  EXPECT_EQ(e->status().lease_until, Nanos(0)) << "an ack of another term";
  e->step(Ack("b", 1, t + 1h), t + 1ms);
  EXPECT_EQ(e->status().lease_until, Nanos(0)) << "an ack of a heartbeat never sent";
  e->step(Ack("b", 1, t), t + 1ms);
  EXPECT_GT(e->status().lease_until, t);
}

TEST(ElectionRules, LeaseIsPublishedWhenItChanges) {
  auto e = MakeNode();
  const Nanos t = MakeLeader(*e);
  e->step(Ack("b", 1, t), t + 1ms);
  Ready r = e->ready();
  ASSERT_TRUE(r.status);
  EXPECT_EQ(r.status->lease_until, e->status().lease_until);
  EXPECT_GT(r.status->lease_until, t);
}

// ---- CheckQuorum (thesis §6.2) -------------------------------------------------------------

TEST(ElectionRules, CheckQuorumStepsDown) {
  const Config c;
  auto e = MakeNode();
  const Nanos won = MakeLeader(*e);
  // b's vote was the last thing heard; silence is measured from becoming leader.
  e->tick(won + c.election_max - 1ns);
  EXPECT_EQ(e->status().role, Role::kLeader);
  e->tick(won + c.election_max);
  EXPECT_EQ(e->status().role, Role::kFollower);
  EXPECT_EQ(e->hard_state().term, 1u) << "same term";
  EXPECT_TRUE(e->status().leader.empty());
  EXPECT_EQ(e->stats().check_quorum_step_downs, 1u);
}

TEST(ElectionRules, CheckQuorumKeepsLeaderThatHearsAQuorum) {
  const Config c;
  auto e = MakeNode();
  const Nanos won = MakeLeader(*e);
  Nanos t = won;
  for (int i = 0; i < 10; ++i) {
    t += c.heartbeat_interval;
    e->tick(t);
    e->step(Ack("c", 1, t), t + 1ms);  // only c: with self a quorum of 3
  }
  EXPECT_EQ(e->status().role, Role::kLeader);
  EXPECT_EQ(e->stats().check_quorum_step_downs, 0u);
}

TEST(ElectionRules, WithoutCheckQuorumAnIsolatedLeaderStays) {
  Config c;
  c.check_quorum = false;
  auto e = MakeNode(c);
  const Nanos won = MakeLeader(*e);
  e->tick(won + 10 * c.election_max);
  EXPECT_EQ(e->status().role, Role::kLeader);
}

// ---- Leadership transfer (thesis §3.10) ----------------------------------------------------

TEST(ElectionRules, TransferTargetStandsAtOnce) {
  auto e = MakeNode(Config(), HardState{1, ""});
  const Nanos t = kAfterStart;
  e->step(Heartbeat("b", 1, t, /*transferring=*/true), t);
  e->ready();
  e->step(Make(MessageType::kTimeoutNow, "b", 1), t + 1ms);
  EXPECT_EQ(e->status().role, Role::kCandidate) << "no PreVote, no timeout";
  Ready r = e->ready();
  ASSERT_TRUE(r.hard_state);
  EXPECT_EQ(*r.hard_state, (HardState{2, "a"}));
  std::vector<Message> requests = OfType(r.messages, MessageType::kVoteRequest);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_TRUE(requests[0].transfer);
  EXPECT_TRUE(requests[1].transfer);
}

TEST(ElectionRules, TimeoutNowFromANonLeaderIsIgnored) {
  auto e = MakeNode(Config(), HardState{1, ""});
  const Nanos t = kAfterStart;
  e->step(Heartbeat("b", 1, t), t);
  e->step(Make(MessageType::kTimeoutNow, "c", 1), t + 1ms);
  EXPECT_EQ(e->status().role, Role::kFollower);
  EXPECT_EQ(e->hard_state().term, 1u);
}

TEST(ElectionRules, TransferGivesUpLeaseAndSendsTimeoutNowFirst) {
  auto e = MakeNode();
  const Nanos t = MakeLeader(*e);
  e->step(Ack("b", 1, t), t + 1ms);
  ASSERT_GT(e->status().lease_until, Nanos(0));
  e->ready();
  ASSERT_TRUE(e->transfer_leadership("c", t + 2ms));
  EXPECT_EQ(e->status().lease_until, Nanos(0));
  EXPECT_TRUE(e->status().transferring);
  Ready r = e->ready();
  ASSERT_TRUE(r.status);
  EXPECT_TRUE(r.status->transferring);
  // The TimeoutNow, then a heartbeat to every other voter; none to the target, which would
  // have to answer it before it reads the TimeoutNow.
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].type, MessageType::kTimeoutNow) << "what the handover waits for";
  EXPECT_EQ(r.messages[0].to, "c");
  EXPECT_TRUE(r.messages[0].transferring);
  EXPECT_EQ(r.messages[1].type, MessageType::kHeartbeat);
  EXPECT_EQ(r.messages[1].to, "b");
  EXPECT_TRUE(r.messages[1].transferring);
  EXPECT_EQ(r.messages[0].send_time, r.messages[1].send_time) << "the announcement's send time";
  EXPECT_EQ(e->stats().transfers_started, 1u);
  // Acks during the transfer do not bring the lease back.
  e->step(Ack("b", 1, t + 2ms), t + 3ms);
  EXPECT_EQ(e->status().lease_until, Nanos(0));
}

TEST(ElectionRules, TransferWithoutTargetPicksFreshestReachablePeer) {
  const Config c;
  auto e = MakeNode();
  const Nanos t = MakeLeader(*e);
  const Nanos t2 = t + c.heartbeat_interval;
  e->step(Ack("b", 1, t), t + 1ms);
  e->tick(t2);
  e->step(Ack("c", 1, t2), t2 + 1ms);
  e->ready();
  ASSERT_TRUE(e->transfer_leadership("", t2 + 2ms));
  std::vector<Message> timeout_now = OfType(e->ready().messages, MessageType::kTimeoutNow);
  ASSERT_EQ(timeout_now.size(), 1u);
  EXPECT_EQ(timeout_now[0].to, "c");
}

TEST(ElectionRules, TransferWithoutTargetSkipsAPeerThatSaysItJustRestarted) {
  // c came back so fast that the leader never noticed a silence, and it acks the newest
  // heartbeats (b lags one behind): only its own word tells that it would defer a TimeoutNow.
  const Config c;
  auto e = MakeNode();
  const Nanos won = MakeLeader(*e);
  Nanos previous = won;
  Nanos at = won;
  for (int i = 0; i < 6; ++i) {
    at += c.heartbeat_interval;
    e->tick(at);
    const auto beats = OfType(e->ready().messages, MessageType::kHeartbeat);
    ASSERT_FALSE(beats.empty());
    const Nanos sent = beats[0].send_time;
    e->step(Ack("b", 1, previous), at + 1ms);
    Message from_c = Ack("c", 1, sent);
    from_c.restarting = i >= 4;
    e->step(from_c, at + 1ms);
    previous = sent;
  }
  e->ready();
  ASSERT_TRUE(e->transfer_leadership("", at + 2ms));
  const auto sent = OfType(e->ready().messages, MessageType::kTimeoutNow);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].to, "b");
}

TEST(ElectionRules, MessagesSayWhetherTheSenderIsInItsRestartWindow) {
  const Config c;
  auto e = MakeNode(NoPreVote());
  e->tick(kT0 + c.election_max + 1ms);  // stands: past its window
  for (const Message& m : e->ready().messages) EXPECT_FALSE(m.restarting);
  auto fresh = MakeNode();
  fresh->step(Make(MessageType::kVoteRequest, "b", 5), kT0 + 1ms);
  const Message refused = OnlyReply(*fresh, MessageType::kVoteResponse);
  EXPECT_FALSE(refused.granted);
  EXPECT_TRUE(refused.restarting);
}

TEST(ElectionRules, TransferRefusedWithoutLeadershipOrReachablePeer) {
  const Config c;
  auto follower = MakeNode();
  EXPECT_FALSE(follower->transfer_leadership("b", kAfterStart));
  auto e = MakeNode();
  const Nanos t = MakeLeader(*e);
  // b was heard (its vote) at t; after election_min nobody counts as reachable.
  EXPECT_FALSE(e->transfer_leadership("", t + c.election_min));
  EXPECT_FALSE(e->transfer_leadership("a", t)) << "not to itself";
  EXPECT_FALSE(e->transfer_leadership("zz", t)) << "not to an unknown node";
  EXPECT_TRUE(e->transfer_leadership("", t + 1ms));
  EXPECT_FALSE(e->transfer_leadership("c", t + 2ms)) << "one transfer at a time";
}

TEST(ElectionRules, TransferAbortsAfterElectionTimeout) {
  const Config c;
  auto e = MakeNode();
  const Nanos t = MakeLeader(*e);
  ASSERT_TRUE(e->transfer_leadership("c", t));
  e->ready();
  // b keeps acking so CheckQuorum holds; the target never takes over.
  Nanos now = t;
  while (now + c.heartbeat_interval < t + c.election_max) {
    now += c.heartbeat_interval;
    e->tick(now);
    e->step(Ack("b", 1, now), now + 1ms);
  }
  EXPECT_TRUE(e->status().transferring);
  EXPECT_EQ(e->next_deadline(), std::min(t + c.election_max, now + c.heartbeat_interval));
  const Nanos abort = t + c.election_max;
  e->tick(abort);
  EXPECT_EQ(e->status().role, Role::kLeader);
  EXPECT_FALSE(e->status().transferring);
  EXPECT_EQ(e->stats().transfers_aborted, 1u);
  EXPECT_EQ(e->status().lease_until, Nanos(0));
  std::vector<Message> heartbeats = OfType(e->ready().messages, MessageType::kHeartbeat);
  ASSERT_FALSE(heartbeats.empty()) << "announces the end of the transfer at once";
  EXPECT_FALSE(heartbeats.back().transferring);
  EXPECT_EQ(heartbeats.back().send_time, abort);
  e->step(Ack("b", 1, now), abort + 1ms);
  EXPECT_EQ(e->status().lease_until, Nanos(0)) << "an ack of a transferring heartbeat";
  e->step(Ack("b", 1, abort), abort + 1ms);
  EXPECT_GT(e->status().lease_until, abort);
}

// Regression: leader b transfers to a and aborts; its TimeoutNow, delayed past the abort,
// arrives after a has acked a heartbeat that no longer announces the transfer, and so counts
// towards b's rebuilt lease. Standing then would win with the votes of nodes whose newest
// heartbeat still said "transferring", while b holds that lease.
TEST(ElectionRules, LateTimeoutNowAfterAbortedTransferIsIgnored) {
  for (bool unsafe : {false, true}) {
    Config c;
    c.unsafe.late_timeout_now = unsafe;
    auto e = MakeNode(c, HardState{1, ""});
    const Nanos t = kAfterStart;
    e->step(Heartbeat("b", 1, t, /*transferring=*/true), t);
    e->step(Heartbeat("b", 1, t + c.election_max), t + c.election_max);  // aborted
    e->ready();
    e->step(Make(MessageType::kTimeoutNow, "b", 1), t + c.election_max + 1ms);
    EXPECT_EQ(e->status().role, unsafe ? Role::kCandidate : Role::kFollower)
        << (unsafe ? "the switch must restore the old behaviour" : "a stale TimeoutNow");
    EXPECT_EQ(e->hard_state().term, unsafe ? 2u : 1u);
  }
}

// Requests to one peer travel on several connections at once, so a TimeoutNow may arrive before
// the heartbeat that announced its transfer; it carries that announcement itself.
TEST(ElectionRules, TimeoutNowThatOvertakesItsAnnouncementStillCounts) {
  auto e = MakeNode(Config(), HardState{1, ""});
  const Nanos t = kAfterStart;
  e->step(Heartbeat("b", 1, t), t);
  Message timeout_now = Make(MessageType::kTimeoutNow, "b", 1);
  timeout_now.send_time = t + 5ms;
  timeout_now.transferring = true;
  e->step(timeout_now, t + 6ms);
  EXPECT_EQ(e->status().role, Role::kCandidate);
}

// Regression, the restart variant on the target's side: a restarted a cannot know that it acked
// a newer, non-transferring heartbeat before it went down, so an old "transferring" heartbeat
// and TimeoutNow that reach it within election_min of its start must not make it stand.
TEST(ElectionRules, RestartedTargetIgnoresOldTransferWithinElectionMin) {
  for (bool unsafe : {false, true}) {
    Config c;
    c.unsafe.transfer_in_restart_window = unsafe;
    auto e = MakeNode(c, HardState{1, ""}, kT0);
    e->step(Heartbeat("b", 1, kT0 - 1s, /*transferring=*/true), kT0 + 1ms);
    e->ready();
    e->step(Make(MessageType::kTimeoutNow, "b", 1), kT0 + 2ms);
    EXPECT_EQ(e->status().role, unsafe ? Role::kCandidate : Role::kFollower);
  }
  // A term above the restored one is one it had never acked in before going down.
  {
    auto fresh = MakeNode(Config(), HardState{1, ""}, kT0);
    fresh->step(Heartbeat("b", 2, kT0, /*transferring=*/true), kT0 + 1ms);
    fresh->step(Make(MessageType::kTimeoutNow, "b", 2), kT0 + 2ms);
    EXPECT_EQ(fresh->status().role, Role::kCandidate);
  }
  // Once election_min has passed, any lease it acked before the restart has ended.
  const Config c;
  auto e = MakeNode(c, HardState{1, ""}, kT0);
  const Nanos later = kT0 + c.election_min;
  e->step(Heartbeat("b", 1, later, /*transferring=*/true), later);
  e->step(Make(MessageType::kTimeoutNow, "b", 1), later + 1ms);
  EXPECT_EQ(e->status().role, Role::kCandidate);
}

// Regression, the restart variant on the voter's side: the start-up lease a restarted node
// honours cannot be overridden by an announcement it heard only after the restart.
TEST(ElectionRules, RestartedVoterRefusesTransferVoteWithinElectionMin) {
  for (bool unsafe : {false, true}) {
    Config c;
    c.unsafe.transfer_in_restart_window = unsafe;
    auto e = MakeNode(c, HardState{1, ""}, kT0);
    e->step(Heartbeat("b", 1, kT0 - 1s, /*transferring=*/true), kT0 + 1ms);
    e->ready();
    Message transfer_vote = Make(MessageType::kVoteRequest, "c", 2);
    transfer_vote.transfer = true;
    e->step(transfer_vote, kT0 + 2ms);
    EXPECT_EQ(OnlyReply(*e, MessageType::kVoteResponse).granted, unsafe);
  }
}

// Regression: a leader that steps down keeps honouring the lease it published, since its app
// may act on it until it ends; voting at once could let a rival lead inside it.
TEST(ElectionRules, FormerLeaderRefusesVotesUntilItsOwnLeaseEnds) {
  for (bool unsafe : {false, true}) {
    Config c;
    c.unsafe.former_leader_votes_in_own_lease = unsafe;
    auto e = MakeNode(c);
    const Nanos t = MakeLeader(*e);
    e->step(Ack("b", 1, t), t + 1ms);
    const Nanos lease = e->status().lease_until;
    ASSERT_GT(lease, t + 2ms);
    ASSERT_TRUE(e->step_down(t + 2ms));
    e->ready();
    e->step(Make(MessageType::kPreVoteRequest, "c", 2), t + 3ms);
    EXPECT_EQ(OnlyReply(*e, MessageType::kPreVoteResponse).granted, unsafe);
    e->step(Make(MessageType::kVoteRequest, "c", 2), t + 3ms);
    EXPECT_EQ(OnlyReply(*e, MessageType::kVoteResponse).granted, unsafe);
    if (unsafe) continue;
    e->step(Make(MessageType::kVoteRequest, "c", 2), lease);
    EXPECT_TRUE(OnlyReply(*e, MessageType::kVoteResponse).granted) << "once the lease has ended";
  }
}

TEST(ElectionRules, StepDownKeepsTermAndClearsLeader) {
  auto e = MakeNode();
  const Nanos t = MakeLeader(*e);
  EXPECT_TRUE(e->step_down(t + 1ms));
  EXPECT_EQ(e->status().role, Role::kFollower);
  EXPECT_TRUE(e->status().leader.empty());
  EXPECT_EQ(e->hard_state().term, 1u);
  EXPECT_EQ(e->status().lease_until, Nanos(0));
  EXPECT_FALSE(e->step_down(t + 2ms));
}

// ---- Unplugging ----------------------------------------------------------------------------

TEST(ElectionRules, UnpluggedNodeNeitherSendsNorReceives) {
  auto e = MakeNode(Config(), HardState{2, ""});
  e->set_unplugged(true, kT0);
  EXPECT_TRUE(e->status().unplugged);
  e->step(Heartbeat("b", 3, kT0), kT0 + 1ms);
  EXPECT_EQ(e->hard_state().term, 2u);
  EXPECT_EQ(e->stats().messages_dropped_unplugged, 1u);
  // Timers run: it pre-votes again and again, but nothing leaves and its term stays.
  Nanos t = kT0;
  for (int i = 0; i < 5; ++i) {
    t = e->next_deadline();
    e->tick(t);
    Ready r = e->ready();
    EXPECT_TRUE(r.messages.empty());
    EXPECT_FALSE(r.hard_state);
  }
  EXPECT_EQ(e->status().role, Role::kPreCandidate);
  EXPECT_EQ(e->stats().pre_votes_started, 5u);
  EXPECT_EQ(e->hard_state().term, 2u);

  e->set_unplugged(false, t);
  EXPECT_FALSE(e->status().unplugged);
  e->tick(e->next_deadline());
  EXPECT_EQ(OfType(e->ready().messages, MessageType::kPreVoteRequest).size(), 2u);
}

TEST(ElectionRules, UnpluggedLeaderStepsDownByCheckQuorum) {
  const Config c;
  auto e = MakeNode();
  const Nanos won = MakeLeader(*e);
  e->set_unplugged(true, won);
  e->step(Ack("b", 1, won), won + 1ms);  // dropped: does not keep it in power
  e->tick(won + c.election_max);
  EXPECT_EQ(e->status().role, Role::kFollower);
  EXPECT_TRUE(e->ready().messages.empty());
}

// ---- Ready ---------------------------------------------------------------------------------

TEST(ElectionRules, HardStateComesBeforeMessagesThatDependOnIt) {
  // A candidacy: the VoteRequests and the (term, self-vote) they promise, in one Ready.
  auto candidate = MakeNode(NoPreVote());
  candidate->tick(candidate->next_deadline());
  Ready r = candidate->ready();
  ASSERT_TRUE(r.hard_state);
  ASSERT_FALSE(OfType(r.messages, MessageType::kVoteRequest).empty());
  EXPECT_EQ(r.hard_state->term, OfType(r.messages, MessageType::kVoteRequest)[0].term);

  // A vote: the granted VoteResponse and the vote it records, in one Ready.
  auto voter = MakeNode();
  voter->step(Make(MessageType::kVoteRequest, "b", 3), kAfterStart);
  r = voter->ready();
  ASSERT_TRUE(r.hard_state);
  EXPECT_EQ(*r.hard_state, (HardState{3, "b"}));
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_TRUE(r.messages[0].granted);
}

TEST(ElectionRules, ReadyCarriesOnlyChanges) {
  auto e = MakeNode();
  EXPECT_TRUE(e->has_ready());
  e->ready();
  EXPECT_FALSE(e->has_ready());
  EXPECT_TRUE(e->ready().empty());
  e->step(Heartbeat("b", 0, kT0), kT0 + 1ms);  // same term 0: new leader, nothing durable
  EXPECT_TRUE(e->has_ready());
  Ready r = e->ready();
  EXPECT_FALSE(r.hard_state);
  ASSERT_TRUE(r.status);
  EXPECT_EQ(r.status->leader, "b");
  e->step(Heartbeat("b", 0, kT0 + 1ms), kT0 + 2ms);
  r = e->ready();
  EXPECT_FALSE(r.status) << "nothing published changed";
  EXPECT_EQ(r.messages.size(), 1u);
}

TEST(ElectionRules, NextDeadlineIsTheEarliestTimer) {
  const Config c;
  auto e = MakeNode();
  const Nanos follower_deadline = e->next_deadline();
  e->tick(follower_deadline - 1ns);
  EXPECT_EQ(e->status().role, Role::kFollower) << "nothing to do before the deadline";
  const Nanos won = MakeLeader(*e);
  EXPECT_EQ(e->next_deadline(), won + c.heartbeat_interval);
  Config late_heartbeats;
  late_heartbeats.heartbeat_interval = 5s;
  auto slow = MakeNode(late_heartbeats);
  const Nanos slow_won = MakeLeader(*slow);
  EXPECT_EQ(slow->next_deadline(), slow_won + late_heartbeats.election_max) << "CheckQuorum";
}

TEST(ElectionRules, MessagesForAnotherNodeAreIgnored) {
  auto e = MakeNode();
  Message m = Heartbeat("b", 5, kT0);
  m.to = "z";
  e->step(m, kT0 + 1ms);
  EXPECT_EQ(e->hard_state().term, 0u);
  m.to = "a";
  m.from = "a";
  e->step(m, kT0 + 1ms);
  EXPECT_EQ(e->hard_state().term, 0u) << "not from itself";
}

TEST(ElectionRules, ProgressTracksPeers) {
  auto e = MakeNode();
  const Nanos t = MakeLeader(*e);
  e->step(Ack("b", 1, t), t + 3ms);
  std::vector<PeerProgress> progress = e->progress();
  ASSERT_EQ(progress.size(), 2u);
  auto b = std::find_if(progress.begin(), progress.end(),
                        [](const PeerProgress& p) { return p.id == "b"; });
  ASSERT_NE(b, progress.end());
  EXPECT_EQ(b->last_heard, t + 3ms);
  EXPECT_EQ(b->last_acked_send, t);
}

TEST(ElectionRules, SetPeersKeepsProgressAndSkipsSelfAndDuplicates) {
  auto e = MakeNode();
  const Nanos t = MakeLeader(*e);
  e->step(Ack("b", 1, t), t + 1ms);
  e->set_peers({"b", "a", "d", "b", ""});
  std::vector<PeerProgress> progress = e->progress();
  ASSERT_EQ(progress.size(), 2u);
  EXPECT_EQ(progress[0].id, "b");
  EXPECT_EQ(progress[0].last_acked_send, t) << "a retained peer keeps its progress";
  EXPECT_EQ(progress[1].id, "d");
  EXPECT_EQ(progress[1].last_heard, Nanos(0));
  e->tick(t + Config().heartbeat_interval);
  std::vector<Message> heartbeats = OfType(e->ready().messages, MessageType::kHeartbeat);
  ASSERT_EQ(heartbeats.size(), 2u);
  EXPECT_EQ(heartbeats[1].to, "d") << "heartbeats follow discovery";
}

TEST(ElectionRules, RequestFromUndiscoveredPeerIsAnswered) {
  auto e = MakeNode();
  Message request = Make(MessageType::kVoteRequest, "z", 1);
  e->step(request, kAfterStart);
  Message reply = OnlyReply(*e, MessageType::kVoteResponse);
  EXPECT_EQ(reply.to, "z");
  EXPECT_TRUE(reply.granted);
}

// Whatever arrives, in whatever order, a node's own promises hold: its term never decreases,
// it never changes its vote within a term, and its timers always point to the future.
TEST(ElectionRules, ArbitraryInputsKeepLocalPromises) {
  std::mt19937_64 rng(2024);
  const std::vector<NodeId> ids = {"a", "b", "c", "d", "z", ""};
  for (int node = 0; node < 20; ++node) {
    Config c;
    c.cluster_size = 1 + static_cast<int>(rng() % 5);
    c.pre_vote = rng() % 2 == 0;
    auto e = MakeNode(c, HardState{rng() % 3, ""}, kT0, {"b", "c", "d"}, rng());
    HardState last = e->hard_state();
    Nanos now = kT0;
    for (int i = 0; i < 5000; ++i) {
      now += Nanos(static_cast<int64_t>(rng() % 50'000'000));
      switch (rng() % 8) {
        case 0:
          e->tick(now);
          EXPECT_GT(e->next_deadline(), now);
          break;
        case 1:
          e->transfer_leadership(ids[rng() % ids.size()], now);
          break;
        case 2:
          if (rng() % 10 == 0) e->set_unplugged(rng() % 2 == 0, now);
          break;
        default: {
          Message m;
          m.type = static_cast<MessageType>(1 + rng() % 7);
          m.from = ids[rng() % ids.size()];
          m.to = rng() % 10 == 0 ? "b" : "a";
          m.term = last.term + rng() % 3 - (last.term > 0 ? 1 : 0);
          m.granted = rng() % 2 == 0;
          m.transfer = rng() % 4 == 0;
          m.transferring = rng() % 4 == 0;
          m.send_time = now - Nanos(static_cast<int64_t>(rng() % 100'000'000));
          e->step(m, now);
        }
      }
      Ready r = e->ready();
      const HardState hs = e->hard_state();
      ASSERT_GE(hs.term, last.term);
      if (hs.term == last.term && !last.voted_for.empty()) {
        ASSERT_EQ(hs.voted_for, last.voted_for) << "two votes in term " << hs.term;
      }
      if (!(hs == last)) {
        ASSERT_TRUE(r.hard_state) << "a changed hard state must be handed out";
      }
      last = hs;
      if (r.status && r.status->role == Role::kLeader && r.status->lease_until > Nanos(0)) {
        EXPECT_LE(r.status->lease_until, now + c.election_min) << "a lease from the future";
      }
    }
  }
}

TEST(ElectionRules, NamesForLogs) {
  EXPECT_STREQ(RoleName(Role::kPreCandidate), "pre-candidate");
  EXPECT_STREQ(MessageTypeName(MessageType::kTimeoutNow), "TimeoutNow");
}

}  // namespace
}  // namespace instaface::election
