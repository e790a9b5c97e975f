// Driver: the loop around one election core, the same in instaface-agent, in an app that embeds
// the election, and in instaface-sim. It owns the core and turns each input (a peer message, a
// timer, an admin command, a new peer set) into the core's Ready, which it carries out in the
// one order that keeps leases and votes safe:
//
//   1. persist (term, voted_for)        -- before any message that depends on it leaves,
//      and record the lease promises    -- likewise (PromiseRecord)
//   2. publish the status                -- a lease given up before any message that could
//                                           let a rival win; a lease gained (it rests on acks
//                                           and votes already received) without waiting
//   3. send the messages
//
// Everything outside the core sits behind a narrow seam: the lease Clock, the Outbox that sends,
// the HardStateStore that makes the vote durable, the PromiseRecord that outlives the process,
// and the StatusSinks that publish (shared
// memory, control-socket watchers, metrics, Redis's leader key: one each). The agent wires real
// ones (Node), the simulator simulated ones, so what the simulator checks is this code.
//
// Thread safety: none. One thread owns a Driver and calls everything; the seams are called on
// that thread and must not block for long.
#ifndef INSTAFACE_RUNTIME_DRIVER_H_
#define INSTAFACE_RUNTIME_DRIVER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "instaface/common/status.h"
#include "instaface/election/election.h"

namespace instaface::runtime {

using election::Nanos;

// The clock that leases are measured on (CLOCK_BOOTTIME in the agent and the SDK:
// instaface/clock.h).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Nanos Now() = 0;
};

// Sends one message to message.to without waiting for it to arrive.
class Outbox {
 public:
  virtual ~Outbox() = default;
  virtual void Send(const election::Message& message) = 0;
};

// Makes (term, voted_for) durable before it returns.
class HardStateStore {
 public:
  virtual ~HardStateStore() = default;
  virtual common::Status Save(const election::HardState& state) = 0;
};

// When this node's lease promises (acked heartbeats, granted votes: no vote for anyone else
// before then) end, kept where the process's death cannot erase it, so that a restarted node's
// window (election::Election's constructor) lasts as long as those promises and no longer.
// Surviving a crash of the process is enough: a reboot loses the record, and the node then
// waits out a whole election_min, as it would without one.
class PromiseRecord {
 public:
  virtual ~PromiseRecord() = default;
  // What an earlier incarnation recorded, on the lease clock, if it can be trusted.
  virtual std::optional<Nanos> Earlier() const = 0;
  // No promise made so far lasts past `until`. Called before any message that carries a newer
  // promise leaves; must not block.
  virtual void Record(Nanos until) = 0;
};

// Where a peer can be reached: its nng URL and its app's address.
struct PeerAddresses {
  std::string peer;
  std::string app;
  friend bool operator==(const PeerAddresses& a, const PeerAddresses& b) {
    return a.peer == b.peer && a.app == b.app;
  }
  friend bool operator!=(const PeerAddresses& a, const PeerAddresses& b) { return !(a == b); }
};

// What the driver publishes: the core's status with the addresses the app needs.
struct PublishedStatus {
  election::Status election;
  std::string self_id;
  std::string leader_peer_address;
  std::string leader_app_address;
  Nanos at{0};  // the lease clock when it was published
  // The status as the app sees it at `at`: this node leads and its lease has not ended.
  bool lease_valid() const {
    return election.role == election::Role::kLeader && election.lease_until > at;
  }
};

class Driver;

// One place the status goes. Publish is called for every change (see the order above);
// Housekeep every housekeeping interval, for what must be refreshed even when nothing changes
// (the shared-memory liveness stamp, metrics).
class StatusSink {
 public:
  virtual ~StatusSink() = default;
  virtual void Publish(const PublishedStatus& status) = 0;
  virtual void Housekeep(Nanos /*now*/, const Driver& /*driver*/) {}
};

struct DriverOptions {
  election::Config config;
  std::string self_id;
  std::string self_peer_address;  // published as the leader's addresses when this node leads
  std::string self_app_address;
  Nanos housekeeping_interval = std::chrono::milliseconds(250);
  // Called when the hard state cannot be saved. The core then believes in a term and vote
  // that the disk does not hold, so nothing more may leave: the agent logs and aborts (as etcd
  // does on a failed WAL write); the driver sends nothing after it in any case. (A candidacy's
  // vote requests may have left before the failed save: the candidate never counts its vote.)
  std::function<void(const std::string& error)> on_persist_failure;
  // UNSAFE, for the simulator and regression tests only: send a Ready's messages before
  // publishing its status, even one that gives up the lease (the order before the fix).
  bool unsafe_send_before_publish = false;
  // UNSAFE, likewise: send every message of a Ready before its hard state is saved, votes for
  // others and heartbeat acks among them (the order a candidacy alone may use).
  bool unsafe_send_before_persist = false;
};

class Driver {
 public:
  // `store` may be null: the hard state then lives in memory only (tests). `promises` may be
  // null: every start then waits out a whole restart window.
  Driver(DriverOptions options, election::HardState restored, uint64_t seed, Clock& clock,
         Outbox& outbox, HardStateStore* store, PromiseRecord* promises,
         std::vector<StatusSink*> sinks);
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // Inputs. Each reads the clock once, feeds the core and carries out what it produced.
  void Step(const election::Message& message);
  // Runs the core's timers and housekeeping that are due.
  void Tick();
  // The transport's evidence that `peer`'s process ended, gathered at `observed_at` on the
  // lease clock (election::Election::peer_died).
  void PeerDied(const election::NodeId& peer, Nanos observed_at);
  bool TransferLeadership(const election::NodeId& target);  // empty: the best peer
  bool StepDown();
  void SetUnplugged(bool unplugged);
  // Whether this node may lead (election::Election::set_eligible): false while its app is gone.
  void SetEligible(bool eligible);
  // The peers discovery and static configuration know, without this node.
  void SetPeers(std::map<election::NodeId, PeerAddresses> peers);

  // The lease clock reading at which Tick() has something to do.
  Nanos NextDeadline() const;
  const PublishedStatus& status() const { return published_; }
  const std::map<election::NodeId, PeerAddresses>& peers() const { return peers_; }
  const election::Election& core() const { return *core_; }
  // True once saving the hard state failed; the driver then ignores every input.
  bool failed() const { return failed_; }

 private:
  void Drain(Nanos now);
  bool IsCandidacy(const election::Ready& ready) const;
  void SendVoteRequests(election::Ready& ready);
  void PublishToSinks(const election::Status& status, Nanos now);
  void Housekeep(Nanos now);
  PeerAddresses AddressesOf(const election::NodeId& id) const;

  DriverOptions options_;
  Clock& clock_;
  Outbox& outbox_;
  HardStateStore* store_;
  PromiseRecord* promises_;
  std::vector<StatusSink*> sinks_;
  std::unique_ptr<election::Election> core_;
  std::map<election::NodeId, PeerAddresses> peers_;
  PublishedStatus published_;
  Nanos next_housekeeping_{0};
  bool failed_ = false;
};

}  // namespace instaface::runtime

#endif  // INSTAFACE_RUNTIME_DRIVER_H_
