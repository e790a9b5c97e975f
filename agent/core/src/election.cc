// The election state machine. Section numbers refer to the Raft paper (§5.x) and Ongaro's thesis
// (§4.x, §6.x, §9.x); "etcd" refers to etcd-io/raft, whose shape this follows.
#include "instaface/election/election.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <random>
#include <utility>

namespace instaface::election {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "unknown";
}

namespace {

// Clamp the drift bound so that the lease margin never exceeds election_min (and the margin
// arithmetic cannot overflow).
constexpr uint32_t kMaxDriftPpm = 500000;

struct PeerState {
  NodeId id;
  Nanos last_heard{0};       // receipt time of the newest message from this peer; 0: never
  Nanos heard_since{0};      // start of the current run of contact without a silence of
                             // election_min or more: the peer has been up at least this long
  Nanos last_acked_send{0};  // leader: send time of the newest lease-eligible heartbeat acked
  bool restarting = false;   // its newest message said it is in its restart window
};

}  // namespace

class Election::Impl {
 public:
  Impl(Config config, NodeId self, std::vector<NodeId> peers, HardState restored, uint64_t seed,
       Nanos now, std::optional<Nanos> earlier_promises_until)
      : config_(Sanitize(config)),
        self_(std::move(self)),
        hard_(std::move(restored)),
        persisted_(hard_),
        rng_(seed),
        // A restarted node may have acked a live leader's heartbeat just before it went down;
        // it cannot know whose, so it honours that possible lease (see election.h) for as long
        // as its earlier incarnation's promises may last.
        last_leader_contact_(now),
        lease_promise_until_(RestartWindowEnd(config_, now, earlier_promises_until)),
        restart_window_until_(lease_promise_until_),
        restored_term_(hard_.term) {
    SetPeers(std::move(peers));
    ResetElectionTimer(now);
  }

  // ---- inputs -------------------------------------------------------------------------------

  void Tick(Nanos now) {
    Advance(now);
    if (role_ == Role::kLeader) {
      if (transferring_ && now >= transfer_deadline_) AbortTransfer(now);
      if (!eligible_ && !transferring_) {
        // Its app is gone and the handover did not take (the target's app may be gone too): step
        // down, and the nodes that may lead elect one of themselves.
        BecomeFollower(hard_.term, NodeId(), now);
        return;
      }
      if (config_.check_quorum && now >= CheckQuorumDeadline()) {
        // §6.2: a leader cut off from a majority stops claiming leadership.
        ++stats_.check_quorum_step_downs;
        BecomeFollower(hard_.term, NodeId(), now);
        return;
      }
      if (now >= next_heartbeat_) BroadcastHeartbeat(now);
      return;
    }
    if (deferred_timeout_now_ && now >= restart_window_until_) {
      const Message m = *deferred_timeout_now_;
      deferred_timeout_now_.reset();
      OnTimeoutNow(m, now);  // as if it had arrived now: every check is made again
      if (role_ != Role::kFollower) return;
    }
    if (now >= election_deadline_) {
      if (!eligible_) {
        // A node whose app is gone does not stand; it still votes.
        ResetElectionTimer(now);
        return;
      }
      const bool early = early_stand_ && LeaderKnownDead();
      early_stand_ = false;
      if (early) ++stats_.early_campaigns;
      Campaign(now);
      // The voters' own evidence may trail ours by a moment: ask again soon rather than after
      // a whole election timeout (PreVote raises no term), for as long as the lease we gave up
      // would have lasted; after that, every voter is free anyway.
      if (early && role_ == Role::kPreCandidate &&
          now + config_.death_stand_step < dead_leader_seen_at_ + config_.election_min) {
        early_stand_ = true;
        election_deadline_ = now + config_.death_stand_step;
      }
    }
  }

  void Step(const Message& m, Nanos now) {
    Advance(now);
    if (m.to != self_ || m.from.empty() || m.from == self_) return;
    if (unplugged_) {
      ++stats_.messages_dropped_unplugged;
      return;
    }
    if (m.from == dead_leader_) dead_leader_.clear();  // it speaks: not dead, or back
    if (PeerState* peer = FindPeer(m.from)) {
      if (peer->last_heard == Nanos(0) || now - peer->last_heard >= config_.election_min) {
        peer->heard_since = now;
      }
      peer->last_heard = now;
      peer->restarting = m.restarting;
    }

    switch (m.type) {
      case MessageType::kPreVoteRequest:
        OnPreVoteRequest(m, now);
        return;
      case MessageType::kVoteRequest:
        OnVoteRequest(m, now);
        return;
      case MessageType::kHeartbeat:
        OnHeartbeat(m, now);
        return;
      case MessageType::kPreVoteResponse:
        OnPreVoteResponse(m, now);
        return;
      case MessageType::kVoteResponse:
        OnVoteResponse(m, now);
        return;
      case MessageType::kHeartbeatResponse:
        OnHeartbeatResponse(m, now);
        return;
      case MessageType::kTimeoutNow:
        OnTimeoutNow(m, now);
        return;
    }
  }

  void PeerDied(const NodeId& peer, Nanos observed_at, Nanos now) {
    Advance(now);
    if (unplugged_ || peer.empty() || peer != lease_holder_) return;
    // Anything heard from it since (a delayed heartbeat, a new incarnation) outweighs it.
    if (last_leader_contact_ >= observed_at) return;
    if (dead_leader_ == peer && dead_leader_seen_at_ >= observed_at) return;
    dead_leader_ = peer;
    dead_leader_seen_at_ = observed_at;
    ++stats_.leader_deaths_seen;
    if (role_ == Role::kFollower && eligible_) {
      early_stand_ = true;
      election_deadline_ = std::min(election_deadline_, now + EarlyStandDelay(peer));
    }
  }

  void SetPeers(std::vector<NodeId> ids) {
    std::vector<PeerState> next;
    next.reserve(ids.size());
    for (NodeId& id : ids) {
      if (id.empty() || id == self_) continue;
      bool duplicate =
          std::any_of(next.begin(), next.end(), [&](const PeerState& p) { return p.id == id; });
      if (duplicate) continue;
      PeerState state;
      if (const PeerState* old = FindPeer(id)) state = *old;
      state.id = std::move(id);
      next.push_back(std::move(state));
    }
    peers_ = std::move(next);
    if (role_ == Role::kLeader) RecomputeLease();
  }

  bool TransferLeadership(const NodeId& target, Nanos now) {
    Advance(now);
    if (role_ != Role::kLeader || transferring_) return false;
    NodeId chosen;
    if (target.empty()) {
      // The most up-to-date reachable peer: freshest ack among those heard within election_min.
      // A peer heard for less than election_min may have just restarted, and then ignores a
      // TimeoutNow in its restart window (TransferAnnounced): it is chosen only when no peer
      // has been up longer, or a rolling restart's handover would fall back to an election.
      const PeerState* best = nullptr;
      bool best_settled = false;
      for (const PeerState& p : peers_) {
        if (p.last_heard == Nanos(0) || now - p.last_heard >= config_.election_min) continue;
        // (A peer that came back within election_min of its last word says so itself.)
        const bool settled = now - p.heard_since >= config_.election_min && !p.restarting;
        if (best == nullptr || (settled && !best_settled) ||
            (settled == best_settled && p.last_acked_send > best->last_acked_send)) {
          best = &p;
          best_settled = settled;
        }
      }
      if (best == nullptr) return false;
      chosen = best->id;
    } else {
      if (target == self_ || FindPeer(target) == nullptr) return false;
      chosen = target;
    }
    ++stats_.transfers_started;
    transferring_ = true;
    transfer_target_ = chosen;
    transfer_deadline_ = now + config_.election_max;
    // The lease is given up at once: the target may win before any of our acks expire, and its
    // voters were told (transferring=true) that they may vote despite our lease.
    for (PeerState& p : peers_) p.last_acked_send = Nanos(0);
    lease_until_ = Nanos(0);
    // The TimeoutNow leaves first: it is what the handover waits for. It announces the transfer
    // as the heartbeat after it does, with the same send time, so it counts on its own; the
    // heartbeat tells the other voters before the target's vote request can reach them. The
    // target gets none: it would only have to be answered before the TimeoutNow is read.
    Message timeout_now;
    timeout_now.type = MessageType::kTimeoutNow;
    timeout_now.term = hard_.term;
    timeout_now.to = chosen;
    timeout_now.send_time = now;
    timeout_now.transferring = true;
    Send(std::move(timeout_now));
    BroadcastHeartbeat(now, /*except=*/chosen);
    return true;
  }

  bool StepDown(Nanos now) {
    Advance(now);
    if (role_ != Role::kLeader) return false;
    BecomeFollower(hard_.term, NodeId(), now);
    return true;
  }

  void SetUnplugged(bool unplugged) {
    unplugged_ = unplugged;
    if (unplugged_) {
      outbox_.clear();
      deferred_timeout_now_.reset();  // it hears nothing while unplugged: that one is lost too
    }
  }

  void SetEligible(bool eligible, Nanos now) {
    Advance(now);
    if (eligible_ == eligible) return;
    eligible_ = eligible;
    if (eligible_) return;
    ++stats_.became_ineligible;
    if (role_ == Role::kLeader) {
      if (!transferring_ && !TransferLeadership(NodeId(), now)) {
        BecomeFollower(hard_.term, NodeId(), now);
      }
    } else if (role_ != Role::kFollower) {
      BecomeFollower(hard_.term, NodeId(), now);  // a campaign in flight ends
    }
  }

  // ---- outputs ------------------------------------------------------------------------------

  Ready TakeReady() {
    Ready ready;
    if (!(hard_ == persisted_)) {
      ready.hard_state = hard_;
      persisted_ = hard_;
    }
    if (lease_promise_until_ > recorded_promise_) {
      ready.promised_until = lease_promise_until_;
      recorded_promise_ = lease_promise_until_;
    }
    if (!unplugged_) ready.messages = std::move(outbox_);
    outbox_.clear();
    Status now_status = CurrentStatus();
    if (!published_ || *published_ != now_status) {
      ready.status = now_status;
      published_ = now_status;
    }
    return ready;
  }

  bool HasReady() const {
    return !(hard_ == persisted_) || lease_promise_until_ > recorded_promise_ ||
           (!unplugged_ && !outbox_.empty()) || !published_ || *published_ != CurrentStatus();
  }

  Nanos NextDeadline() const {
    if (role_ != Role::kLeader) {
      return deferred_timeout_now_ ? std::min(election_deadline_, restart_window_until_)
                                   : election_deadline_;
    }
    Nanos next = next_heartbeat_;
    if (config_.check_quorum) next = std::min(next, CheckQuorumDeadline());
    if (transferring_) next = std::min(next, transfer_deadline_);
    return next;
  }

  Status CurrentStatus() const {
    Status s;
    s.role = role_;
    s.term = hard_.term;
    s.leader = leader_;
    s.lease_until = role_ == Role::kLeader ? lease_until_ : Nanos(0);
    s.unplugged = unplugged_;
    s.transferring = role_ == Role::kLeader && transferring_;
    return s;
  }

  std::vector<PeerProgress> Progress() const {
    std::vector<PeerProgress> out;
    out.reserve(peers_.size());
    for (const PeerState& p : peers_) {
      PeerProgress progress;
      progress.id = p.id;
      progress.last_heard = p.last_heard;
      progress.last_acked_send = role_ == Role::kLeader ? p.last_acked_send : Nanos(0);
      out.push_back(std::move(progress));
    }
    return out;
  }

  int Quorum() const {
    if (config_.quorum_from_discovery) return (static_cast<int>(peers_.size()) + 1) / 2 + 1;
    return config_.cluster_size / 2 + 1;
  }

  const NodeId& self() const { return self_; }
  const HardState& hard_state() const { return hard_; }
  const Stats& stats() const { return stats_; }

 private:
  // The earlier incarnation's promises, if recorded, end no later than election_min from now
  // (each lasts at most that long from a moment before now, the cluster's election_min being one
  // setting for every run), and a window cannot end in the past.
  static Nanos RestartWindowEnd(const Config& c, Nanos now, std::optional<Nanos> earlier) {
    const Nanos longest = now + c.election_min;
    if (!earlier) return longest;
    return std::clamp(*earlier, now, longest);
  }

  static Config Sanitize(Config c) {
    if (c.election_min < Nanos(1)) c.election_min = Nanos(1);
    if (c.election_max < c.election_min) c.election_max = c.election_min;
    if (c.heartbeat_interval < Nanos(1)) c.heartbeat_interval = Nanos(1);
    if (c.cluster_size < 1) c.cluster_size = 1;
    if (c.max_clock_drift_ppm > kMaxDriftPpm) c.max_clock_drift_ppm = kMaxDriftPpm;
    return c;
  }

  PeerState* FindPeer(const NodeId& id) {
    for (PeerState& p : peers_) {
      if (p.id == id) return &p;
    }
    return nullptr;
  }
  const PeerState* FindPeer(const NodeId& id) const {
    return const_cast<Impl*>(this)->FindPeer(id);
  }

  Nanos RandomElectionTimeout() {
    const int64_t span = (config_.election_max - config_.election_min).count();
    if (span <= 0) return config_.election_min;
    // Modulo, not a std distribution: the same seed must replay on every standard library.
    const uint64_t offset = rng_() % (static_cast<uint64_t>(span) + 1);
    return config_.election_min + Nanos(static_cast<int64_t>(offset));
  }

  void ResetElectionTimer(Nanos now) { election_deadline_ = now + RandomElectionTimeout(); }

  // Every input first: what this node's messages say about its restart window.
  void Advance(Nanos now) { restarting_ = now < restart_window_until_; }

  void Send(Message m) {
    if (unplugged_) return;  // the unplugged node's timers run, but nothing leaves it
    m.from = self_;
    m.restarting = restarting_;
    outbox_.push_back(std::move(m));
  }

  void Reply(const Message& request, MessageType type, bool granted, Term term,
             Nanos send_time = Nanos(0)) {
    Message m;
    m.type = type;
    m.term = term;
    m.to = request.from;
    m.granted = granted;
    m.send_time = send_time;
    Send(std::move(m));
  }

  void SetLeader(const NodeId& id) {
    if (id == leader_) return;
    leader_ = id;
    newest_leader_send_ = Nanos(0);
    newest_leader_transferring_ = false;
    if (!id.empty() && id != last_known_leader_) {
      last_known_leader_ = id;
      ++stats_.leader_changes;
    }
  }

  // A node that heard from a live leader within election_min will not help depose it
  // (thesis §4.2.3; etcd's "in lease"). A leader is its own live leader, and a leader that
  // stepped down honours the lease it published until that lease ends: its app may still be
  // acting on it.
  bool InLease(Nanos now) const {
    if (role_ == Role::kLeader) return true;
    if (InFormerLease(now)) return true;
    if (LeaderKnownDead()) return false;
    return now < lease_promise_until_;
  }
  // How long a granted vote binds the voter (Config::vote_promise): long enough for the new
  // leader's first heartbeats to come back acked, short enough that a lost election frees the
  // voters well before anyone stands again.
  Nanos VotePromise() const {
    return config_.vote_promise > Nanos(0) ? std::min(config_.vote_promise, config_.election_min)
                                           : config_.election_min / 4;
  }

  // This node's own evidence that the leader whose lease it honours has died (PeerDied).
  bool LeaderKnownDead() const { return !dead_leader_.empty() && dead_leader_ == lease_holder_; }

  // Rank among the live nodes this node knows, by id, times Config::death_stand_step.
  Nanos EarlyStandDelay(const NodeId& dead) const {
    int rank = 0;
    for (const PeerState& p : peers_) rank += p.id != dead && p.id < self_;
    return config_.death_stand_step * rank;
  }
  bool InFormerLease(Nanos now) const { return now < former_lease_until_; }

  // A TimeoutNow campaign may override the lease, but only when the leader itself announced
  // the handover in its newest heartbeat: otherwise a stale or rogue "transfer" would break it.
  // Not in its restart window either, in a term it may have known before: it may have acked a
  // newer heartbeat without the announcement before it went down, and no longer knows. (It acks
  // only heartbeats of a term it has persisted, so a term above the restored one is safe.)
  bool TransferAnnounced(Nanos now) const {
    if (role_ == Role::kLeader) return transferring_;
    if (now < restart_window_until_ && hard_.term <= restored_term_ &&
        !config_.unsafe.transfer_in_restart_window) {
      return false;
    }
    return !leader_.empty() && newest_leader_transferring_;
  }

  // ---- role changes (etcd's becomeFollower/becomePreCandidate/becomeCandidate/becomeLeader) --

  void BecomeFollower(Term term, const NodeId& leader, Nanos now) {
    if (role_ == Role::kLeader && !config_.unsafe.former_leader_votes_in_own_lease) {
      former_lease_until_ = std::max(former_lease_until_, lease_until_);
    }
    if (term > hard_.term) {
      hard_.term = term;
      hard_.voted_for.clear();
    }
    role_ = Role::kFollower;
    SetLeader(leader);
    votes_.clear();
    transferring_ = false;
    transfer_target_.clear();
    lease_until_ = Nanos(0);
    early_stand_ = false;
    ResetElectionTimer(now);
  }

  void Campaign(Nanos now) {
    if (config_.pre_vote) {
      BecomePreCandidate(now);
    } else {
      BecomeCandidate(/*transfer=*/false, now);
    }
  }

  // Thesis §9.6: ask first, without raising the term, so that a node rejoining from a
  // partition cannot force a healthy leader out by its inflated term.
  void BecomePreCandidate(Nanos now) {
    role_ = Role::kPreCandidate;
    SetLeader(NodeId());
    votes_.assign(1, self_);
    ResetElectionTimer(now);
    ++stats_.pre_votes_started;
    for (const PeerState& p : peers_) {
      Message m;
      m.type = MessageType::kPreVoteRequest;
      m.term = hard_.term + 1;
      m.to = p.id;
      Send(std::move(m));
    }
    if (HasQuorum()) BecomeCandidate(/*transfer=*/false, now);
  }

  // §5.2: increment the term, vote for self, ask everyone in parallel.
  void BecomeCandidate(bool transfer, Nanos now) {
    // A transfer's leader votes for its target at once: it is asked first.
    const NodeId ask_first = transfer ? leader_ : NodeId();
    role_ = Role::kCandidate;
    hard_.term += 1;
    hard_.voted_for = self_;
    SetLeader(NodeId());
    votes_.assign(1, self_);
    transferring_ = false;
    lease_until_ = Nanos(0);
    ResetElectionTimer(now);
    ++stats_.elections_started;
    campaign_sent_ = now;
    auto ask = [&](const PeerState& p) {
      Message m;
      m.type = MessageType::kVoteRequest;
      m.term = hard_.term;
      m.to = p.id;
      m.transfer = transfer;
      m.send_time = now;  // echoed by a granted vote: the start of the lease it promises
      Send(std::move(m));
    };
    for (PeerState& p : peers_) {
      p.last_acked_send = Nanos(0);
      if (p.id == ask_first) ask(p);
    }
    for (const PeerState& p : peers_) {
      if (p.id != ask_first) ask(p);
    }
    if (HasQuorum()) BecomeLeader(now);
  }

  void BecomeLeader(Nanos now) {
    role_ = Role::kLeader;
    SetLeader(self_);
    votes_.clear();
    ++stats_.elections_won;
    became_leader_at_ = now;
    // A granted vote is a lease promise like an acked heartbeat (OnVoteRequest): the votes that
    // made this node leader already hold a lease from the campaign's start, so the app may act
    // at once instead of a heartbeat round later.
    lease_counts_from_ = campaign_sent_;
    transferring_ = false;
    transfer_target_.clear();
    lease_until_ = Nanos(0);
    BroadcastHeartbeat(now);
  }

  bool HasQuorum() const { return static_cast<int>(votes_.size()) >= Quorum(); }

  void AddVote(const NodeId& voter) {
    if (std::find(votes_.begin(), votes_.end(), voter) == votes_.end()) votes_.push_back(voter);
  }

  // ---- message handlers ---------------------------------------------------------------------

  void OnPreVoteRequest(const Message& m, Nanos now) {
    // Never changes our term or vote: the requester has not raised its term yet.
    const bool grant = m.term > hard_.term && !InLease(now);
    // Two survivors whose evidence came a few ms apart can stand at once despite their ranks,
    // and two candidates in one term split the vote: an election timeout lost. The one that
    // ranks later gives way while it is still only asking, and asks again should the other not
    // take over (liveness only: a PreVote changes no term and no vote).
    if (grant && role_ == Role::kPreCandidate && early_stand_ && LeaderKnownDead() &&
        m.term == hard_.term + 1 && m.from < self_) {
      BecomeFollower(hard_.term, NodeId(), now);
      early_stand_ = true;
      election_deadline_ = now + 2 * config_.death_stand_step;
    }
    Reply(m, MessageType::kPreVoteResponse, grant, grant ? m.term : hard_.term);
  }

  void OnVoteRequest(const Message& m, Nanos now) {
    // The lease this node honours may be the requester's own (a vote already given, asked
    // again; its leader standing again): keeping it from that node protects nobody.
    const bool own_lease = role_ != Role::kLeader && !lease_holder_.empty() &&
                           m.from == lease_holder_ && !InFormerLease(now);
    const bool lease_allows =
        !InLease(now) || own_lease || (m.transfer && TransferAnnounced(now) && !InFormerLease(now));
    if (!lease_allows) {
      // Refused without adopting the higher term: adopting it would depose the leader whose
      // lease we acked just as surely as voting would.
      Reply(m, MessageType::kVoteResponse, false, hard_.term);
      return;
    }
    if (m.term > hard_.term) BecomeFollower(m.term, NodeId(), now);
    // §5.2: at most one vote per term, first come first served; voted_for is durable.
    const bool grant =
        m.term == hard_.term && (hard_.voted_for.empty() || hard_.voted_for == m.from);
    if (grant) {
      hard_.voted_for = m.from;
      ++stats_.votes_granted;
      ResetElectionTimer(now);
      // The vote is also this node's lease promise to the candidate, exactly as an ack of a
      // heartbeat sent at m.send_time would be: no vote for anyone else within election_min.
      if (!config_.unsafe.vote_without_lease_promise) {
        last_leader_contact_ = now;
        lease_holder_ = m.from;
        lease_promise_until_ = std::max(lease_promise_until_, now + VotePromise());
      }
    }
    Reply(m, MessageType::kVoteResponse, grant, hard_.term, grant ? m.send_time : Nanos(0));
  }

  void OnHeartbeat(const Message& m, Nanos now) {
    if (m.term < hard_.term) {
      // The seed's rule: a stale leader learns our term from the reply and steps down.
      Reply(m, MessageType::kHeartbeatResponse, false, hard_.term, m.send_time);
      return;
    }
    if (m.term > hard_.term) {
      BecomeFollower(m.term, m.from, now);
    } else if (role_ == Role::kLeader) {
      // Two leaders in one term: impossible with one vote per term. Stepping down is the safe
      // move; the counter lets the simulator assert that it never happens.
      ++stats_.same_term_heartbeats_as_leader;
      BecomeFollower(hard_.term, m.from, now);
    } else if (role_ != Role::kFollower) {
      // §5.2: a (pre)candidate that hears from a leader of at least its term accepts it.
      BecomeFollower(hard_.term, m.from, now);
    } else {
      SetLeader(m.from);
      ResetElectionTimer(now);
    }
    last_leader_contact_ = now;
    lease_holder_ = m.from;
    lease_promise_until_ = std::max(lease_promise_until_, now + config_.election_min);
    if (m.send_time >= newest_leader_send_) {
      newest_leader_send_ = m.send_time;
      newest_leader_transferring_ = m.transferring;
    }
    Reply(m, MessageType::kHeartbeatResponse, true, hard_.term, m.send_time);
  }

  void OnPreVoteResponse(const Message& m, Nanos now) {
    if (!m.granted) {
      if (m.term > hard_.term) BecomeFollower(m.term, NodeId(), now);
      return;
    }
    // A granted response carries the term we would stand in, not a term to adopt.
    if (role_ != Role::kPreCandidate || m.term != hard_.term + 1) return;
    AddVote(m.from);
    if (HasQuorum()) BecomeCandidate(/*transfer=*/false, now);
  }

  void OnVoteResponse(const Message& m, Nanos now) {
    if (m.term > hard_.term) {
      BecomeFollower(m.term, NodeId(), now);
      return;
    }
    if (role_ != Role::kCandidate || m.term != hard_.term || !m.granted) return;
    AddVote(m.from);
    // Only the echo of this campaign's requests is a promise about this campaign.
    // Its promise is shorter than a heartbeat ack's (VotePromise): counted as an ack of a send
    // that much earlier, the lease it gives ends with it.
    if (PeerState* peer = FindPeer(m.from); peer != nullptr && m.send_time == campaign_sent_) {
      peer->last_acked_send = campaign_sent_ - (config_.election_min - VotePromise());
    }
    if (HasQuorum()) BecomeLeader(now);
  }

  void OnHeartbeatResponse(const Message& m, Nanos now) {
    if (m.term > hard_.term) {
      BecomeFollower(m.term, NodeId(), now);
      return;
    }
    if (role_ != Role::kLeader || m.term != hard_.term || !m.granted) return;
    PeerState* peer = FindPeer(m.from);
    if (peer == nullptr) return;
    // Only acks of heartbeats we really sent in this leadership, outside a transfer, extend
    // the lease; an echo from the future would stretch it unsafely.
    if (transferring_ || m.send_time < lease_counts_from_ || m.send_time > last_heartbeat_sent_) {
      return;
    }
    if (m.send_time > peer->last_acked_send) {
      peer->last_acked_send = m.send_time;
      RecomputeLease();
    }
  }

  void OnTimeoutNow(const Message& m, Nanos now) {
    if (m.term > hard_.term) {
      BecomeFollower(m.term, NodeId(), now);
      return;
    }
    // Thesis §3.10: the leader asks us to stand at once, skipping PreVote. Only while its
    // newest heartbeat still announces the transfer: a TimeoutNow delayed past an aborted
    // transfer would otherwise start a campaign that overrides the rebuilt lease's voters.
    if (m.term != hard_.term || role_ == Role::kLeader || leader_ != m.from || !eligible_) return;
    // The TimeoutNow is the leader's announcement as of its send time: it counts unless a
    // newer heartbeat from the leader said the transfer was over.
    if (m.transferring && m.send_time >= newest_leader_send_) {
      newest_leader_send_ = m.send_time;
      newest_leader_transferring_ = true;
    }
    if (!TransferAnnounced(now) && !config_.unsafe.late_timeout_now) {
      // In its restart window a node cannot override a lease it may have acked before (see
      // TransferAnnounced). It keeps the request and reconsiders it when the window closes, as
      // if the network had delayed it until then; so a rolling restart's handover to a node
      // that just came back costs what is left of its window, not an election.
      if (now < restart_window_until_ && m.transferring) deferred_timeout_now_ = m;
      return;
    }
    deferred_timeout_now_.reset();
    BecomeCandidate(/*transfer=*/true, now);
  }

  // ---- leader -------------------------------------------------------------------------------

  void BroadcastHeartbeat(Nanos now, const NodeId& except = NodeId()) {
    last_heartbeat_sent_ = now;
    next_heartbeat_ = now + config_.heartbeat_interval;
    for (const PeerState& p : peers_) {
      if (p.id == except) continue;
      Message m;
      m.type = MessageType::kHeartbeat;
      m.term = hard_.term;
      m.to = p.id;
      m.send_time = now;
      m.transferring = transferring_;
      Send(std::move(m));
      ++stats_.heartbeats_sent;
    }
    RecomputeLease();
  }

  void AbortTransfer(Nanos now) {
    transferring_ = false;
    transfer_target_.clear();
    ++stats_.transfers_aborted;
    // Acks of heartbeats sent during the transfer must not count: their receivers were told
    // they may vote for the target.
    lease_counts_from_ = now;
    BroadcastHeartbeat(now);
  }

  // Lease end = the quorum-th newest acked send time (the leader's own newest send counts as
  // its ack) + election_min shortened by the worst-case drift of two clocks.
  void RecomputeLease() {
    Nanos lease(0);
    const int quorum = Quorum();
    if (role_ == Role::kLeader && !transferring_) {
      std::vector<Nanos>& acked = scratch_;
      acked.clear();
      acked.push_back(last_heartbeat_sent_);
      for (const PeerState& p : peers_) {
        if (p.last_acked_send != Nanos(0)) acked.push_back(p.last_acked_send);
      }
      if (static_cast<int>(acked.size()) >= quorum) {
        std::nth_element(acked.begin(), acked.begin() + (quorum - 1), acked.end(),
                         std::greater<>());
        const int64_t em = config_.election_min.count();
        const int64_t ppm2 = 2 * static_cast<int64_t>(config_.max_clock_drift_ppm);
        const int64_t margin = (em / 1000000) * ppm2 + ((em % 1000000) * ppm2 + 999999) / 1000000;
        lease = acked[quorum - 1] + Nanos(em - margin);
      }
    }
    lease_until_ = lease;
  }

  // The time at which fewer than a quorum (self included) will have been heard from within
  // election_max; silence is measured from becoming leader at first.
  Nanos CheckQuorumDeadline() const {
    const int needed = Quorum() - 1;
    if (needed <= 0) return Nanos::max();
    if (static_cast<int>(peers_.size()) < needed) return became_leader_at_;
    std::vector<Nanos>& heard = scratch_;
    heard.clear();
    for (const PeerState& p : peers_) heard.push_back(std::max(p.last_heard, became_leader_at_));
    std::nth_element(heard.begin(), heard.begin() + (needed - 1), heard.end(), std::greater<>());
    return heard[needed - 1] + config_.election_max;
  }

  // ---- state --------------------------------------------------------------------------------

  const Config config_;
  const NodeId self_;
  std::vector<PeerState> peers_;
  HardState hard_;
  HardState persisted_;  // the hard state last handed out by ready()
  std::mt19937_64 rng_;
  Stats stats_;

  Role role_ = Role::kFollower;
  NodeId leader_;
  NodeId last_known_leader_;
  bool unplugged_ = false;
  bool eligible_ = true;  // false while this node's app is gone: it neither stands nor leads
  Nanos election_deadline_{0};

  // Voter side of the lease.
  Nanos last_leader_contact_{0};   // receipt time of the newest heartbeat from a leader (or vote)
  Nanos lease_promise_until_{0};   // no vote or PreVote for anyone else before this
  Nanos recorded_promise_{0};      // lease_promise_until_ as last handed out by ready()
  Nanos restart_window_until_{0};  // the earlier incarnation's promises end: until then
                                   // transfers cannot override a lease it may have acked
  bool restarting_ = true;         // the last input came before restart_window_until_
  std::optional<Message> deferred_timeout_now_;  // one that arrived in the restart window
  Term restored_term_ = 0;                       // the durable term at start
  Nanos former_lease_until_{0};                  // the lease this node published when it last led
  Nanos newest_leader_send_{0};                  // send time of the newest heartbeat from leader_
  bool newest_leader_transferring_ = false;
  NodeId lease_holder_;  // sender of the newest heartbeat: whose lease InLease honours
  // PeerDied: the lease holder whose death this node saw, when, and whether to stand early.
  NodeId dead_leader_;
  Nanos dead_leader_seen_at_{0};
  bool early_stand_ = false;

  // (Pre)candidate: distinct granted voters, self included.
  std::vector<NodeId> votes_;

  // Leader.
  Nanos became_leader_at_{0};
  Nanos next_heartbeat_{0};
  Nanos last_heartbeat_sent_{0};
  Nanos lease_counts_from_{0};  // acks of heartbeats sent before this do not extend the lease
  Nanos campaign_sent_{0};      // candidate: send time of this term's vote requests
  Nanos lease_until_{0};
  bool transferring_ = false;
  NodeId transfer_target_;
  Nanos transfer_deadline_{0};

  std::vector<Message> outbox_;
  std::optional<Status> published_;
  // Reused by the lease and CheckQuorum computations, which run on every ack and deadline query
  // and should not allocate.
  mutable std::vector<Nanos> scratch_;
};

Election::Election(Config config, NodeId self, std::vector<NodeId> peers, HardState restored,
                   uint64_t seed, Nanos now, std::optional<Nanos> earlier_promises_until)
    : impl_(std::make_unique<Impl>(config, std::move(self), std::move(peers), std::move(restored),
                                   seed, now, earlier_promises_until)) {}

Election::~Election() = default;

void Election::tick(Nanos now) { impl_->Tick(now); }
void Election::step(const Message& message, Nanos now) { impl_->Step(message, now); }
void Election::set_peers(std::vector<NodeId> peers) { impl_->SetPeers(std::move(peers)); }
void Election::peer_died(const NodeId& peer, Nanos observed_at, Nanos now) {
  impl_->PeerDied(peer, observed_at, now);
}
bool Election::transfer_leadership(const NodeId& target, Nanos now) {
  return impl_->TransferLeadership(target, now);
}
bool Election::step_down(Nanos now) { return impl_->StepDown(now); }
void Election::set_unplugged(bool unplugged, Nanos /*now*/) { impl_->SetUnplugged(unplugged); }
void Election::set_eligible(bool eligible, Nanos now) { impl_->SetEligible(eligible, now); }
Ready Election::ready() { return impl_->TakeReady(); }
bool Election::has_ready() const { return impl_->HasReady(); }
Nanos Election::next_deadline() const { return impl_->NextDeadline(); }
const NodeId& Election::self() const { return impl_->self(); }
Status Election::status() const { return impl_->CurrentStatus(); }
HardState Election::hard_state() const { return impl_->hard_state(); }
const Stats& Election::stats() const { return impl_->stats(); }
std::vector<PeerProgress> Election::progress() const { return impl_->Progress(); }
int Election::quorum() const { return impl_->Quorum(); }

}  // namespace instaface::election
