// One seed's simulated world: N election cores, their drifting clocks and durable state, a lossy
// network, and the fault schedule, driven by a single priority queue of events keyed by true
// time. Nothing advances in fixed steps: a node is ticked exactly at its core's next_deadline().
#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "drift_clock.h"
#include "instaface/election/election.h"
#include "instaface/sim/simulator.h"
#include "invariant_checker.h"
#include "sim_random.h"

namespace instaface::sim {
namespace {

using election::Election;
using election::HardState;
using election::Message;
using election::MessageType;
using election::NodeId;
using election::Ready;
using election::Role;
using election::Status;
using election::Term;
using std::chrono::milliseconds;

constexpr size_t kMaxListedViolationsPerSeed = 20;
// A core whose deadline stays due after ticking it would spin the queue; after this many ticks at
// one instant the next one is pushed back and the trace says so.
constexpr int kMaxTicksAtOneInstant = 8;

enum class EventKind : uint8_t {
  kStart,
  kDeliver,
  kTick,
  kCrash,
  kRestart,
  kPartition,
  kHeal,
  kTransfer,
  kDiscovery,
  kLivenessCheck,
};

struct Event {
  Nanos at{0};
  uint64_t seq = 0;  // ties at one instant run in the order they were scheduled
  EventKind kind = EventKind::kTick;
  int node = -1;
  uint64_t tag = 0;  // incarnation, partition or liveness window the event belongs to
  Message message;   // kDeliver only
};

struct RunsLater {
  bool operator()(const Event& a, const Event& b) const {
    return a.at != b.at ? a.at > b.at : a.seq > b.seq;
  }
};

struct SimNode {
  std::string name;
  DriftClock clock;
  std::unique_ptr<Election> core;  // null while down
  HardState durable;               // survives crashes: what the node fsynced last
  uint64_t incarnation = 0;
  Nanos scheduled_tick{-1};  // true time of the pending tick, -1: none
  Nanos last_tick_at{-1};
  int ticks_at_last_instant = 0;
  int group = 0;  // partition group; messages flow only within a group
  Status status;  // last published by the current incarnation
  std::vector<NodeId> known_peers;
  uint64_t elections_started_before = 0;  // by earlier incarnations
};

struct PendingFailover {
  bool active = false;
  Nanos crashed_at{0};
  int crashed = -1;
  Term term = 0;
};

class World {
 public:
  World(const SimOptions& options, uint64_t seed, const TraceSink& trace)
      : options_(options),
        config_(options.MakeConfig()),
        seed_(seed),
        trace_(trace),
        net_rng_(MixSeed(seed, 1)),
        fault_rng_(MixSeed(seed, 2)),
        discovery_rng_(MixSeed(seed, 4)),
        checker_(seed, Names(options.nodes), kMaxListedViolationsPerSeed) {
    result_.seed = seed;
    flaky_discovery_ = options.faults.flaky_discovery || options.quorum_from_discovery;
    quorum_ = options.nodes / 2 + 1;
    SimRandom clock_rng(MixSeed(seed, 3));
    const auto drift = static_cast<int64_t>(options.faults.drift_ppm);
    for (int i = 0; i < options.nodes; ++i) {
      SimNode node;
      node.name = Names(options.nodes)[i];
      // Arbitrary epochs catch any comparison of one node's clock with another's; the drift
      // bound itself is hit a quarter of the time, since that is where a lease margin fails.
      int64_t ppm = 0;
      if (drift > 0) {
        const double u = clock_rng.Unit();
        ppm = u < 0.125 ? -drift : u < 0.25 ? drift : clock_rng.Between(-drift, drift);
      }
      const Nanos epoch = milliseconds(clock_rng.Between(1000, 1000000));
      node.clock = DriftClock(epoch, static_cast<int32_t>(ppm));
      for (int j = 0; j < options.nodes; ++j) {
        if (j != i) node.known_peers.push_back(Names(options.nodes)[j]);
      }
      nodes_.push_back(std::move(node));
    }
  }

  SeedResult Run() {
    for (int i = 0; i < options_.nodes; ++i) {
      // Staggered starts, as when pods come up one by one.
      Push(Nanos(fault_rng_.Between(0, options_.heartbeat_interval.count())), EventKind::kStart, i);
      Trace(nullptr, "%s clock %+d ppm", nodes_[i].name.c_str(), nodes_[i].clock.ppm());
    }
    ScheduleNext(EventKind::kCrash, options_.faults.crashes_per_minute);
    ScheduleNext(EventKind::kPartition, options_.faults.partitions_per_minute);
    ScheduleNext(EventKind::kTransfer, options_.faults.transfers_per_minute);
    if (flaky_discovery_) {
      for (int i = 0; i < options_.nodes; ++i) ScheduleDiscovery(i);
    }

    while (!queue_.empty()) {
      std::pop_heap(queue_.begin(), queue_.end(), RunsLater());
      Event event = std::move(queue_.back());
      queue_.pop_back();
      if (event.at > options_.duration) break;
      now_ = event.at;
      ++result_.events;
      Hash(static_cast<uint64_t>(now_.count()), static_cast<uint64_t>(event.kind),
           static_cast<uint64_t>(event.node + 1));
      Handle(event);
    }

    if (failover_.active) ++result_.unresolved_failovers;
    for (auto& node : nodes_) {
      result_.elections_started += node.elections_started_before;
      if (node.core) result_.elections_started += node.core->stats().elections_started;
    }
    result_.elections = checker_.elections();
    result_.violation_count = checker_.violation_count();
    result_.violations = std::move(checker_.violations());
    result_.trace_hash = hash_;
    return std::move(result_);
  }

 private:
  static std::vector<std::string> Names(int n) {
    std::vector<std::string> names;
    for (int i = 1; i <= n; ++i) names.push_back("n" + std::to_string(i));
    return names;
  }

  int IndexOf(const NodeId& id) const {
    // Names are "n<k>"; anything else is not a node of this cluster.
    if (id.size() < 2 || id[0] != 'n') return -1;
    int k = 0;
    for (size_t i = 1; i < id.size(); ++i) {
      if (id[i] < '0' || id[i] > '9' || k > options_.nodes) return -1;
      k = k * 10 + (id[i] - '0');
    }
    return k >= 1 && k <= options_.nodes ? k - 1 : -1;
  }

  // ---- event queue ----

  void Push(Nanos at, EventKind kind, int node, uint64_t tag = 0, Message message = {}) {
    Event event;
    event.at = at;
    event.seq = next_seq_++;
    event.kind = kind;
    event.node = node;
    event.tag = tag;
    event.message = std::move(message);
    queue_.push_back(std::move(event));
    std::push_heap(queue_.begin(), queue_.end(), RunsLater());
  }

  void ScheduleNext(EventKind kind, double per_minute) {
    if (per_minute <= 0) return;
    const double minutes = fault_rng_.Exponential(per_minute);
    const double ns = std::min(minutes * 60e9, 1e18);
    Push(now_ + Nanos(static_cast<int64_t>(ns)), kind, -1);
  }

  void ScheduleDiscovery(int node) {
    Push(now_ + Nanos(discovery_rng_.Between(Nanos(milliseconds(300)).count(),
                                             Nanos(milliseconds(1500)).count())),
         EventKind::kDiscovery, node);
  }

  void Handle(const Event& event) {
    switch (event.kind) {
      case EventKind::kStart:
      case EventKind::kRestart:
        if (event.kind == EventKind::kRestart && event.tag != nodes_[event.node].incarnation) {
          return;
        }
        StartNode(event.node);
        return;
      case EventKind::kDeliver:
        Deliver(event.message);
        return;
      case EventKind::kTick:
        Tick(event);
        return;
      case EventKind::kCrash:
        CrashSomeone();
        ScheduleNext(EventKind::kCrash, options_.faults.crashes_per_minute);
        return;
      case EventKind::kPartition:
        Partition();
        ScheduleNext(EventKind::kPartition, options_.faults.partitions_per_minute);
        return;
      case EventKind::kHeal:
        if (event.tag == partition_id_) {
          for (auto& node : nodes_) node.group = 0;
          Trace(nullptr, "partition healed");
          TopologyChanged();
        }
        return;
      case EventKind::kTransfer:
        Transfer();
        ScheduleNext(EventKind::kTransfer, options_.faults.transfers_per_minute);
        return;
      case EventKind::kDiscovery:
        Rediscover(event.node);
        ScheduleDiscovery(event.node);
        return;
      case EventKind::kLivenessCheck:
        if (event.tag == window_id_) CloseLivenessWindow();
        return;
    }
  }

  // ---- nodes ----

  Nanos LocalNow(int i) const { return nodes_[i].clock.Local(now_); }

  void StartNode(int i) {
    SimNode& node = nodes_[i];
    const uint64_t core_seed = MixSeed(seed_, 100 + static_cast<uint64_t>(i), node.incarnation);
    node.core = std::make_unique<Election>(config_, node.name, node.known_peers, node.durable,
                                           core_seed, LocalNow(i));
    node.status = Status{};
    node.scheduled_tick = Nanos(-1);
    Trace(&node, "start (incarnation %" PRIu64 ", durable term %" PRIu64 " vote '%s')",
          node.incarnation, node.durable.term, node.durable.voted_for.c_str());
    Drain(i);
    TopologyChanged();
  }

  void Crash(int i) {
    SimNode& node = nodes_[i];
    const bool was_leader = node.status.role == Role::kLeader;
    Trace(&node, "crash%s", was_leader ? " (leader)" : "");
    if (was_leader) {
      ++result_.leader_crashes;
      // A deposed leader that had not noticed yet (cut off, then crashed) needs no failover:
      // a newer leader already serves.
      bool newer_leader = false;
      for (const SimNode& other : nodes_) {
        newer_leader |= other.core && other.status.role == Role::kLeader &&
                        other.status.term > node.status.term;
      }
      if (!newer_leader) {
        if (failover_.active) ++result_.unresolved_failovers;
        failover_ = {true, now_, i, node.status.term};
      }
    }
    node.elections_started_before += node.core->stats().elections_started;
    node.core.reset();
    node.status = Status{};
    ++node.incarnation;
    node.scheduled_tick = Nanos(-1);
    const int64_t down =
        fault_rng_.Between(Nanos(milliseconds(100)).count(), 3 * options_.election_max.count());
    Push(now_ + Nanos(down), EventKind::kRestart, i, node.incarnation);
    TopologyChanged();
  }

  void CrashSomeone() {
    std::vector<int> alive;
    int leader = -1;
    for (int i = 0; i < options_.nodes; ++i) {
      if (!nodes_[i].core) continue;
      alive.push_back(i);
      if (nodes_[i].status.role == Role::kLeader) leader = i;
    }
    if (alive.empty()) return;
    // Half the crashes hit the leader: those are the ones that need a failover.
    const bool hit_leader = fault_rng_.Unit() < 0.5;
    const int victim = hit_leader && leader >= 0
                           ? leader
                           : alive[fault_rng_.Between(0, static_cast<int64_t>(alive.size()) - 1)];
    Crash(victim);
  }

  void Tick(const Event& event) {
    SimNode& node = nodes_[event.node];
    if (!node.core || event.tag != node.incarnation || event.at != node.scheduled_tick) return;
    node.scheduled_tick = Nanos(-1);
    if (node.last_tick_at == now_) {
      ++node.ticks_at_last_instant;
    } else {
      node.last_tick_at = now_;
      node.ticks_at_last_instant = 1;
    }
    node.core->tick(LocalNow(event.node));
    Drain(event.node);
  }

  void ScheduleTick(int i) {
    SimNode& node = nodes_[i];
    const Nanos deadline = node.core->next_deadline();
    if (deadline >= Nanos::max() / 2) return;  // nothing to wait for
    Nanos at = std::max(node.clock.TrueAt(deadline), now_);
    if (at == now_ && node.last_tick_at == now_ &&
        node.ticks_at_last_instant >= kMaxTicksAtOneInstant) {
      Trace(&node, "deadline still due after %d ticks; next tick pushed back 1 ms",
            node.ticks_at_last_instant);
      at = now_ + milliseconds(1);
    }
    if (at == node.scheduled_tick) return;
    node.scheduled_tick = at;
    Push(at, EventKind::kTick, i, node.incarnation);
  }

  // Collects a core's output in the order its API demands: persist, then send, then publish.
  void Drain(int i) {
    SimNode& node = nodes_[i];
    for (int round = 0; node.core->has_ready() && round < 1000; ++round) {
      Ready ready = node.core->ready();
      if (ready.hard_state) {
        checker_.OnPersist(i, now_, *ready.hard_state);
        node.durable = *ready.hard_state;
        Hash(0x5e, node.durable.term, node.durable.voted_for.size());
        Trace(&node, "persist term %" PRIu64 " vote '%s'", node.durable.term,
              node.durable.voted_for.c_str());
      }
      for (Message& message : ready.messages) {
        checker_.OnSend(i, now_, message, node.durable);
        Send(i, std::move(message));
      }
      if (ready.status) Publish(i, *ready.status);
    }
    checker_.OnStats(i, now_, node.core->stats());
    ScheduleTick(i);
  }

  void Publish(int i, const Status& status) {
    SimNode& node = nodes_[i];
    const bool became_leader = status.role == Role::kLeader && (node.status.role != Role::kLeader ||
                                                                node.status.term != status.term);
    node.status = status;
    const Nanos local = LocalNow(i);
    Nanos lease_end{0};
    if (status.role == Role::kLeader && status.lease_until > local) {
      lease_end = node.clock.TrueAt(status.lease_until);
    }
    Hash(0x57, static_cast<uint64_t>(status.role), status.term,
         static_cast<uint64_t>(lease_end.count()));
    if (trace_) {
      char lease[48] = "";
      if (lease_end.count() > 0) {
        std::snprintf(lease, sizeof lease, " lease +%.3f ms",
                      static_cast<double>((lease_end - now_).count()) / 1e6);
      }
      Trace(&node, "status %s term %" PRIu64 " leader '%s'%s%s", election::RoleName(status.role),
            status.term, status.leader.c_str(), lease, status.transferring ? " transferring" : "");
    }
    checker_.OnStatus(i, now_, status, lease_end);
    if (!became_leader) return;

    if (failover_.active) {
      if (i == failover_.crashed) {
        // The crashed node came back and won before any survivor: not a survivor failover.
        ++result_.unresolved_failovers;
      } else {
        result_.failovers.push_back(now_ - failover_.crashed_at);
      }
      failover_.active = false;
    }
    if (window_active_ && !window_saw_leader_ && (window_members_ >> i & 1)) {
      window_saw_leader_ = true;
      result_.longest_wait_for_leader =
          std::max(result_.longest_wait_for_leader, now_ - window_start_);
    }
  }

  // ---- network ----

  void Send(int from, Message message) {
    ++result_.messages_sent;
    const int to = IndexOf(message.to);
    Hash(0x53, static_cast<uint64_t>(message.type), message.term,
         static_cast<uint64_t>(to + 1) | (message.granted ? 0x100 : 0));
    Trace(&nodes_[from], "send %s", Describe(message).c_str());
    if (to < 0 || to == from) return;
    const FaultOptions& faults = options_.faults;
    const int copies = net_rng_.Percent(faults.duplicate_percent) ? 2 : 1;
    for (int copy = 0; copy < copies; ++copy) {
      if (net_rng_.Percent(faults.loss_percent)) {
        Trace(&nodes_[from], "  lost on the way to %s", message.to.c_str());
        continue;
      }
      const Nanos delay(net_rng_.Between(faults.delay_min.count(), faults.delay_max.count()));
      Push(now_ + delay, EventKind::kDeliver, to, 0, message);
    }
  }

  void Deliver(const Message& message) {
    const int to = IndexOf(message.to);
    const int from = IndexOf(message.from);
    SimNode& node = nodes_[to];
    if (!node.core) {
      Trace(&node, "dropped (down) %s", Describe(message).c_str());
      return;
    }
    if (from >= 0 && nodes_[from].group != node.group) {
      Trace(&node, "dropped (partition) %s", Describe(message).c_str());
      return;
    }
    Hash(0x44, static_cast<uint64_t>(message.type), message.term);
    Trace(&node, "recv %s", Describe(message).c_str());
    node.core->step(message, LocalNow(to));
    Drain(to);
  }

  void Partition() {
    // Isolate one node, split in two, or split in three.
    const double kind = fault_rng_.Unit();
    const int n = options_.nodes;
    std::vector<int> group(n, 0);
    if (kind < 0.4) {
      group[fault_rng_.Between(0, n - 1)] = 1;
    } else {
      const int groups = kind < 0.8 || n < 3 ? 2 : 3;
      for (int i = 0; i < n; ++i) group[i] = static_cast<int>(fault_rng_.Between(0, groups - 1));
    }
    std::string layout;
    for (int i = 0; i < n; ++i) {
      nodes_[i].group = group[i];
      layout += " " + nodes_[i].name + ":" + std::to_string(group[i]);
    }
    ++partition_id_;
    const int64_t lasts =
        fault_rng_.Between(options_.election_min.count() / 2, 5 * options_.election_max.count());
    Push(now_ + Nanos(lasts), EventKind::kHeal, -1, partition_id_);
    Trace(nullptr, "partition for %.3f ms, groups%s", static_cast<double>(lasts) / 1e6,
          layout.c_str());
    TopologyChanged();
  }

  void Transfer() {
    int leader = -1;
    for (int i = 0; i < options_.nodes; ++i) {
      if (nodes_[i].core && nodes_[i].status.role == Role::kLeader &&
          (leader < 0 || nodes_[i].status.term > nodes_[leader].status.term)) {
        leader = i;
      }
    }
    if (leader < 0) return;
    const bool started = nodes_[leader].core->transfer_leadership("", LocalNow(leader));
    Trace(&nodes_[leader], "asked to transfer leadership: %s", started ? "started" : "refused");
    Drain(leader);
  }

  void Rediscover(int i) {
    SimNode& node = nodes_[i];
    // A flaky registry: the node sees between one peer and all of them.
    std::vector<NodeId> others;
    for (int j = 0; j < options_.nodes; ++j) {
      if (j != i) others.push_back(nodes_[j].name);
    }
    const int64_t keep = discovery_rng_.Between(std::min<int64_t>(1, others.size()),
                                                static_cast<int64_t>(others.size()));
    for (size_t k = 0; k + 1 < others.size(); ++k) {
      const auto pick =
          discovery_rng_.Between(static_cast<int64_t>(k), static_cast<int64_t>(others.size()) - 1);
      std::swap(others[k], others[pick]);
    }
    others.resize(static_cast<size_t>(keep));
    std::sort(others.begin(), others.end());
    node.known_peers = others;
    if (trace_) {
      std::string list;
      for (const auto& id : others) list += " " + id;
      Trace(&node, "discovery now knows%s", list.c_str());
    }
    if (!node.core) return;
    node.core->set_peers(node.known_peers);
    Drain(i);
  }

  // ---- liveness ----

  // Crashes, restarts and partitions end the current liveness window; if a quorum of up nodes
  // can all reach each other, a new window starts and a leader must appear among them in time.
  void TopologyChanged() {
    ++window_id_;
    window_active_ = false;
    if (flaky_discovery_) return;  // nodes may not even know each other: no liveness promise
    std::vector<int> count(3, 0);
    for (auto& node : nodes_) {
      if (node.core) ++count[node.group];
    }
    for (int g = 0; g < 3; ++g) {
      if (count[g] < quorum_) continue;
      window_active_ = true;
      window_start_ = now_;
      window_members_ = 0;
      window_saw_leader_ = false;
      for (int i = 0; i < options_.nodes; ++i) {
        if (!nodes_[i].core || nodes_[i].group != g) continue;
        window_members_ |= uint64_t{1} << i;
        if (nodes_[i].status.role == Role::kLeader) window_saw_leader_ = true;
      }
      Push(now_ + options_.EffectiveLivenessBound(), EventKind::kLivenessCheck, -1, window_id_);
      return;
    }
  }

  void CloseLivenessWindow() {
    if (!window_saw_leader_) {
      std::string members;
      for (int i = 0; i < options_.nodes; ++i) {
        if (window_members_ >> i & 1) members += " " + nodes_[i].name;
      }
      char buf[160];
      std::snprintf(buf, sizeof buf, "no leader among connected quorum {%s } for %.3f ms",
                    members.c_str(), static_cast<double>((now_ - window_start_).count()) / 1e6);
      checker_.OnLivenessFailure(now_, buf);
      Trace(nullptr, "LIVENESS VIOLATION: %s", buf);
    }
    // The quorum stays connected: the next bound-long stretch must have a leader too.
    TopologyChanged();
  }

  // ---- trace and hash ----

  static std::string Describe(const Message& m) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s term %" PRIu64 " %s->%s%s%s%s",
                  election::MessageTypeName(m.type), m.term, m.from.c_str(), m.to.c_str(),
                  m.granted ? " granted" : "", m.transfer ? " transfer" : "",
                  m.transferring ? " transferring" : "");
    return buf;
  }

  void Trace(const SimNode* node, const char* format, ...) __attribute__((format(printf, 3, 4))) {
    if (!trace_) return;
    char body[512];
    va_list args;
    va_start(args, format);
    std::vsnprintf(body, sizeof body, format, args);
    va_end(args);
    char line[640];
    std::snprintf(line, sizeof line, "%12.3f ms  %-4s %s", static_cast<double>(now_.count()) / 1e6,
                  node ? node->name.c_str() : "--", body);
    trace_(line);
  }

  template <typename... Values>
  void Hash(Values... values) {
    for (uint64_t v : {static_cast<uint64_t>(values)...}) {
      hash_ ^= v;
      hash_ *= 0x100000001b3ULL;
      hash_ ^= hash_ >> 29;
    }
  }

  const SimOptions& options_;
  const election::Config config_;
  const uint64_t seed_;
  const TraceSink& trace_;
  SimRandom net_rng_;
  SimRandom fault_rng_;
  SimRandom discovery_rng_;
  InvariantChecker checker_;
  bool flaky_discovery_ = false;
  int quorum_ = 1;

  std::vector<SimNode> nodes_;
  std::vector<Event> queue_;  // a heap under RunsLater
  uint64_t next_seq_ = 0;
  Nanos now_{0};
  uint64_t partition_id_ = 0;
  PendingFailover failover_;

  uint64_t window_id_ = 0;
  bool window_active_ = false;
  bool window_saw_leader_ = false;
  Nanos window_start_{0};
  uint64_t window_members_ = 0;

  uint64_t hash_ = 0xcbf29ce484222325ULL;
  SeedResult result_;
};

}  // namespace

SeedResult RunSeed(const SimOptions& options, uint64_t seed, const TraceSink& trace) {
  World world(options, seed, trace);
  return world.Run();
}

}  // namespace instaface::sim
