// The election core: a pure, deterministic Raft-style leader election.
//
// This is a state machine, not a service. It owns no sockets, threads, clocks, files or
// random devices. A driver (the agent runtime, the simulator, a test) feeds it time through
// tick() and peer messages through step(), then collects what it must do through ready():
//
//   Ready r = election.ready();
//   1. persist r.hard_state (fsync) if set      -- before any message in r.messages leaves
//      and record r.promised_until if set      -- likewise, where a process death keeps it
//   2. send r.messages
//   3. publish r.status if set
//
// The order matters: a vote in r.messages is only safe to send once the (term, voted_for) that
// it depends on is durable; otherwise a restarted node could vote twice in one term. A
// candidacy's vote requests are the exception a driver may take (runtime/driver.cc): they may
// leave before the save, as long as nothing that rests on the candidate's own vote (its
// replies stepped, its leadership published or announced) comes before the save.
//
// Thread safety: none. One thread owns an Election; everything else talks to that thread.
// Determinism: all randomness comes from the seed given to the constructor, and all time from
// the `now` arguments, so the same seed and inputs replay the same run.
#ifndef INSTAFACE_ELECTION_ELECTION_H_
#define INSTAFACE_ELECTION_ELECTION_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "instaface/election/message.h"

namespace instaface::election {

struct Config {
  // The seed's timings. A follower stands after a random period in [election_min, election_max]
  // without a heartbeat from its leader; a leader heartbeats every heartbeat_interval.
  Nanos heartbeat_interval = std::chrono::milliseconds(500);
  Nanos election_min = std::chrono::milliseconds(750);
  Nanos election_max = std::chrono::milliseconds(1000);

  // The configured number of voters (the Helm replica count). Quorum = cluster_size / 2 + 1.
  int cluster_size = 3;

  // Raft thesis §9.6: ask "would you vote for me?" before raising the term.
  bool pre_vote = true;
  // Raft thesis §6.2: a leader that has not heard from a quorum within election_max steps down.
  bool check_quorum = true;
  // Upper bound on the rate difference between any node's clock and true time, in parts per
  // million. The lease is shortened by this bound so that drift cannot make two leases overlap.
  uint32_t max_clock_drift_ppm = 1000;

  // A follower that learns its leader's process is gone (peer_died) stands this long times its
  // rank among the nodes it knows (by id, the dead one left out) instead of waiting out its
  // election timeout: rank 0 at once, the next one step later should rank 0 be gone too. Above
  // one vote round, a data sync included, so that the first candidate usually wins alone.
  Nanos death_stand_step = std::chrono::milliseconds(5);

  // A granted vote promises the candidate no vote for anyone else for this long, and the votes
  // that make a node leader are its first lease, ending this long after its campaign started
  // (less the drift margin), until its heartbeats' acks extend it. Zero: election_min / 4. At
  // most election_min.
  Nanos vote_promise{0};

  // UNSAFE, for the simulator only: count quorum from the peers this node currently knows
  // (known peers + itself) instead of cluster_size. Exists to demonstrate why it is wrong.
  bool quorum_from_discovery = false;

  // UNSAFE, for the simulator and regression tests only: each undoes one fix, so that a test
  // can show the fix is what keeps two leases apart.
  struct Unsafe {
    // Stand on a TimeoutNow whether or not the leader's newest heartbeat still announces the
    // transfer (a TimeoutNow that arrives after the transfer was aborted).
    bool late_timeout_now = false;
    // Let a transfer override the lease a restarted node may have acked before it went down.
    bool transfer_in_restart_window = false;
    // A leader that steps down votes at once, before its own lease has run out.
    bool former_leader_votes_in_own_lease = false;
    // A granted vote promises nothing, while the new leader still counts its votes as acks.
    bool vote_without_lease_promise = false;
  } unsafe;
};

// The durable part of the state: written and fsynced before any message that depends on it.
struct HardState {
  Term term = 0;
  NodeId voted_for;  // empty: no vote in `term`
  friend bool operator==(const HardState& a, const HardState& b) {
    return a.term == b.term && a.voted_for == b.voted_for;
  }
};

enum class Role : uint8_t { kFollower = 0, kPreCandidate = 1, kCandidate = 2, kLeader = 3 };
const char* RoleName(Role role);

// What the node publishes to its local app.
struct Status {
  Role role = Role::kFollower;
  Term term = 0;
  NodeId leader;         // empty: no known leader
  Nanos lease_until{0};  // on this node's clock; only meaningful when role == kLeader;
                         // zero means no lease
  bool unplugged = false;
  bool transferring = false;  // a leadership transfer is in progress
  friend bool operator==(const Status& a, const Status& b) {
    return a.role == b.role && a.term == b.term && a.leader == b.leader &&
           a.lease_until == b.lease_until && a.unplugged == b.unplugged &&
           a.transferring == b.transferring;
  }
  friend bool operator!=(const Status& a, const Status& b) { return !(a == b); }
};

struct Ready {
  std::optional<HardState> hard_state;  // set when it changed: persist before sending (but a
                                        // candidacy's vote requests: runtime/driver.cc)
  // Set when this node's lease promises (no vote for anyone else before this time) now reach
  // further than the last value handed out: record it before sending, where the process's death
  // cannot erase it (no sync needed; see the constructor's `earlier_promises_until`).
  std::optional<Nanos> promised_until;
  std::vector<Message> messages;  // to send, each to its own `to`
  std::optional<Status> status;   // set when it changed: publish after sending
  bool empty() const { return !hard_state && !promised_until && messages.empty() && !status; }
};

// Counters for metrics and the simulator. Monotonic over the node's lifetime (not restarts).
struct Stats {
  uint64_t pre_votes_started = 0;
  uint64_t elections_started = 0;  // candidacies (term raised)
  uint64_t elections_won = 0;
  uint64_t votes_granted = 0;   // real votes this node gave to others
  uint64_t leader_changes = 0;  // times the known leader changed
  uint64_t heartbeats_sent = 0;
  uint64_t check_quorum_step_downs = 0;
  uint64_t transfers_started = 0;
  uint64_t transfers_aborted = 0;
  // The seed's "same term heartbeat while leader" case. One vote per term makes it impossible;
  // the simulator asserts that it stays zero.
  uint64_t same_term_heartbeats_as_leader = 0;
  uint64_t messages_dropped_unplugged = 0;
  uint64_t became_ineligible = 0;  // times this node became ineligible (its app went)
  // Evidence that the leader's process is gone (peer_died) that this node acted on: it stopped
  // honouring that leader's lease, as a voter, and stood early when it was a follower.
  uint64_t leader_deaths_seen = 0;
  uint64_t early_campaigns = 0;  // PreVotes started on that evidence, before the timeout
};

struct PeerProgress {
  NodeId id;
  Nanos last_heard{0};       // local time of the last message received from this peer (0: never)
  Nanos last_acked_send{0};  // leader only: send time of the newest heartbeat this peer acked
};

class Election {
 public:
  // `peers` are the other nodes this node knows (discovery may change them with set_peers).
  // `restored` is the durable state read back at start (zero-valued on first start).
  // A (re)started node may have acked a live leader's heartbeat, or granted a vote, just before
  // it went down: it refuses ordinary votes, and transfers, until those promises have ended (its
  // restart window). `earlier_promises_until` is when they end, on this clock, as recorded by the
  // earlier incarnation (Ready::promised_until) where its death could not erase it; without it
  // (a first start, a reboot, a lost record) the window is a whole election_min from `now`, the
  // longest any promise lasts. A value beyond that is clamped to it.
  Election(Config config, NodeId self, std::vector<NodeId> peers, HardState restored, uint64_t seed,
           Nanos now, std::optional<Nanos> earlier_promises_until = std::nullopt);
  ~Election();
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  // Advances timers to `now` (election timeout, heartbeats, CheckQuorum, transfer abort).
  // `now` never goes backwards.
  void tick(Nanos now);
  // The one input path for peer messages. Messages not addressed to this node are ignored.
  void step(const Message& message, Nanos now);

  // Discovery changed the set of known peers. Quorum does not change (it is configured) unless
  // Config::quorum_from_discovery is set.
  void set_peers(std::vector<NodeId> peers);

  // Leader only: hand leadership to `target`, or, when empty, to the reachable peer whose ack
  // is freshest. The leader gives up its lease at once; the transfer is aborted if the target
  // has not taken over within election_max. Returns false (and does nothing) if this node is
  // not the leader, a transfer is already in progress, `target` is not a known peer, or (with
  // no target) no peer was heard from within election_min.
  bool transfer_leadership(const NodeId& target, Nanos now);
  // Leader only: step down to follower now (admin command). Returns false if not leader.
  bool step_down(Nanos now);
  // Fault injection, like the original's unplugging: while unplugged the node neither sends
  // nor receives (output not yet collected is dropped too); its timers still run, so an
  // unplugged leader steps down by CheckQuorum and an unplugged follower keeps pre-voting
  // without raising its term.
  void set_unplugged(bool unplugged, Nanos now);
  // Whether this node may lead: false while the app it serves is gone (dead or hung). An
  // ineligible node votes as before but never stands (no PreVote, no campaign, no TimeoutNow);
  // an ineligible leader hands over to its best peer at once (transfer_leadership), and steps
  // down when no peer can take it or the transfer is aborted (that peer's app may be gone too),
  // leaving the others to elect. Safe by construction: it only removes candidacies and uses the
  // transfer's and the step-down's own rules.
  void set_eligible(bool eligible, Nanos now);

  // The transport's evidence that `peer`'s process has ended, gathered at `observed_at` on this
  // node's clock: the peer's own kernel closed our connection to it in order (FIN, as at
  // process exit) and a redial then found nothing listening. A live process, however hung or
  // cut off, cannot produce it (transport/death_watch.h); and the process's app stopped seeing
  // a lease before its sockets closed (its life lock, shm_layout.h). So if `peer` is the leader
  // whose lease this node honours, and nothing from it has arrived since `observed_at`, the
  // lease is void here: this node votes as if it had run out, and a follower stands early (see
  // Config::death_stand_step). Every voter decides on its own evidence only; a node without any
  // keeps every lease rule as before. Evidence about any other peer is ignored.
  void peer_died(const NodeId& peer, Nanos observed_at, Nanos now);

  // Collects everything produced since the last call.
  Ready ready();
  bool has_ready() const;

  // The earliest `now` at which tick() has something to do; the driver may sleep until then.
  // Right after tick(now) it is always later than `now`.
  Nanos next_deadline() const;

  const NodeId& self() const;
  Status status() const;
  HardState hard_state() const;
  const Stats& stats() const;
  std::vector<PeerProgress> progress() const;
  int quorum() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace instaface::election

#endif  // INSTAFACE_ELECTION_ELECTION_H_
