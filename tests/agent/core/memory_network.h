// An in-memory cluster of election cores for scenario tests: one explicit clock, a message
// queue with a fixed latency (plus optional seeded jitter), and faults — cut links, isolate a
// node, drop by predicate, crash and restart with the durable state kept.
//
// Time only moves when a test asks (run_for / run_until). The network is event-driven: it jumps
// to the next message delivery or the next node deadline (Election::next_deadline), so a wrong
// deadline shows up as a timer that never fires.
//
// After every event it checks the invariants the simulator also checks, and records each
// breach in violations(): one leader per term; no two unexpired leases at the same time; a
// node's term never decreases and it never votes twice in a term, restarts included; every
// vote or candidacy leaves only with the hard state it depends on persisted; no deadline in the
// past after a tick; no same-term heartbeat at a leader.
//
// Thread safety: none; one test thread owns it.
#ifndef INSTAFACE_TESTS_AGENT_CORE_MEMORY_NETWORK_H_
#define INSTAFACE_TESTS_AGENT_CORE_MEMORY_NETWORK_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "instaface/election/election.h"

namespace instaface::election::testing {

class MemoryNetwork {
 public:
  struct Options {
    Config config;
    int nodes = 3;
    uint64_t seed = 1;
    Nanos latency = std::chrono::milliseconds(1);
    Nanos jitter{0};            // extra delay, uniform in [0, jitter], seeded: reorders messages
    int duplicate_percent = 0;  // messages delivered twice, each copy with its own delay
  };

  explicit MemoryNetwork(Options options);

  // Node ids are "n1" .. "nN".
  const std::vector<NodeId>& ids() const { return ids_; }
  Election& node(const NodeId& id);
  bool alive(const NodeId& id) const;
  Nanos now() const { return now_; }

  // Advances the clock by `duration`, delivering messages and firing timers on the way.
  void run_for(Nanos duration);
  // Runs until `done` holds (checked after every event) or `limit` has passed; returns `done`.
  bool run_until(const std::function<bool()>& done, Nanos limit);

  // The live leaders; more than one only while a deposed leader has not heard yet.
  std::vector<NodeId> leaders() const;
  // The live leader of the highest term, if any.
  std::optional<NodeId> leader() const;
  // Runs until exactly one live node leads and every connected live node follows it.
  std::optional<NodeId> elect(Nanos limit = std::chrono::seconds(10));

  // Faults. Cut and isolate are symmetric; heal() restores every link and clears drop rules.
  void cut(const NodeId& a, const NodeId& b);
  void isolate(const NodeId& id);
  void partition(const std::vector<NodeId>& side);  // `side` vs everyone else
  void heal();
  // Drops every message for which `rule` returns true (until heal()).
  void drop_if(std::function<bool(const Message&)> rule);
  // Puts `message` on the wire again, as a late or replayed copy: delivered after the latency,
  // past the drop rules (they already let it go once, or the test wants it through).
  void inject(const Message& message);
  // Crash loses everything but the persisted hard state and the record of the node's lease
  // promises (Ready::promised_until); restart rebuilds from them.
  enum class PromiseRecord {
    kNone,       // no record (a first start, a reboot): the window is a whole election_min
    kKept,       // what the agent's promise file gives: the window ends with those promises
    kForgotten,  // UNSAFE: a record that says every promise has ended
  };
  void crash(const NodeId& id);
  void restart(const NodeId& id, PromiseRecord record = PromiseRecord::kNone);
  // Actions on a node that produce output (transfer, step-down, unplug) go through here so
  // the output is collected and checked like any other.
  void with_node(const NodeId& id, const std::function<void(Election&, Nanos)>& action);

  HardState persisted(const NodeId& id) const { return nodes_.at(id).persisted; }
  const std::vector<std::string>& violations() const { return violations_; }
  // Every message handed to the network (sent, before faults), in order.
  const std::vector<Message>& sent() const { return sent_; }
  uint64_t delivered_count() const { return delivered_; }

 private:
  struct Node {
    std::unique_ptr<Election> election;
    HardState persisted;
    std::optional<Nanos> promised_until;  // survives crashes, like the agent's promise file
    std::optional<Status> published;      // kept after a crash: its lease still counts
    uint64_t incarnation = 0;
  };
  struct InFlight {
    Nanos at;
    uint64_t seq;
    Message message;
    bool operator>(const InFlight& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };

  void drain(const NodeId& id);
  void check_global();
  bool link_up(const NodeId& from, const NodeId& to) const;
  Nanos next_event() const;
  void violation(std::string what);

  Options options_;
  std::vector<NodeId> ids_;
  std::map<NodeId, Node> nodes_;
  Nanos now_{0};
  std::mt19937_64 rng_;
  uint64_t seq_ = 0;
  uint64_t delivered_ = 0;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<InFlight>> queue_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::vector<std::function<bool(const Message&)>> drop_rules_;
  std::map<Term, NodeId> leader_of_term_;
  std::map<std::pair<NodeId, Term>, NodeId> vote_of_;  // (voter, term) -> candidate, all time
  std::vector<Message> sent_;
  std::vector<std::string> violations_;
};

}  // namespace instaface::election::testing

#endif  // INSTAFACE_TESTS_AGENT_CORE_MEMORY_NETWORK_H_
