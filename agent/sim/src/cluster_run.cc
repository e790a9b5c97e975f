// One seed's simulated world: N Drivers (the agent's own loop around the election core), their
// drifting clocks and durable state, a lossy network, and the fault schedule, driven by a single
// priority queue of events keyed by true time. Nothing advances in fixed steps: a node is ticked
// exactly at its Driver's next deadline.
//
// Each Driver gets simulated seams: its clock reads the node's drifting clock, its store is the
// node's durable state, its outbox hands messages to the network, and its one status sink is the
// shared-memory record that the node's app reads. The checker sees what the apps see: a status
// counts from the moment the sink took it, not from the moment the core produced it.
//
// A stalled driver (between any two steps of a Ready) and a paused node are modelled alike: the
// rest of its work takes effect later, and inputs that reach it meanwhile wait until it runs.
//
// A crash is a process exit, as the kernel carries it out: the app's view of the lease ends at
// once (the agent's life lock), and then the dead process's connections close in order. Each
// peer connected to it learns of that after a network delay and a redial that finds nothing
// listening (transport/death_watch.h): Driver::PeerDied, unless a partition cut it off from
// the dead node or the node is back by then. Pauses and partitions tell nobody anything.
// What the dead process recorded of its lease promises (runtime::PromiseRecord) survives it,
// unless the crash was a reboot, and sets its restart window when it comes back.
#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "drift_clock.h"
#include "instaface/election/election.h"
#include "instaface/runtime/driver.h"
#include "instaface/sim/simulator.h"
#include "invariant_checker.h"
#include "sim_random.h"

namespace instaface::sim {
namespace {

using election::HardState;
using election::Message;
using election::MessageType;
using election::NodeId;
using election::Role;
using election::Status;
using election::Term;
using std::chrono::milliseconds;

constexpr size_t kMaxListedViolationsPerSeed = 20;
// A driver whose deadline stays due after ticking it would spin the queue; after this many ticks
// at one instant the next one is pushed back and the trace says so.
constexpr int kMaxTicksAtOneInstant = 8;
// Old messages kept for replays.
constexpr size_t kReplayHistory = 512;

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
  kSendEffect,     // a stalled driver's send takes effect
  kPublishEffect,  // a stalled driver's publish takes effect
  kPersistEffect,  // a stalled driver's save completes (lost if the node crashes first)
  kReplay,
  kPause,
  kResume,
  kAppLoss,  // some node's app dies or hangs (at most one at a time)
  kAppGone,  // ... as that node's driver sees it
  kAppBack,
  kSlew,
  kPeerDied,    // node's transport saw `subject`'s connection close and a redial refused
  kStop,        // some node is stopped cleanly (FaultOptions::stops_per_minute)
  kStopBegin,   // ... its driver takes the stop (after the step it is in, as a Submit)
  kStopWaited,  // ... its handover wait is over: it steps down
  kStopHalt,    // ... its driver has stopped: it ends its connections
  kStopExit,    // ... its process exits
};

struct Event {
  Nanos at{0};
  uint64_t seq = 0;  // ties at one instant run in the order they were scheduled
  EventKind kind = EventKind::kTick;
  int node = -1;
  uint64_t tag = 0;   // incarnation, partition or liveness window the event belongs to
  Message message;    // kDeliver, kSendEffect
  Status status;      // kPublishEffect
  HardState durable;  // kPersistEffect
  int subject = -1;   // kPeerDied: the node whose death is seen, and its incarnation when it died
  uint64_t subject_incarnation = 0;
};

struct RunsLater {
  bool operator()(const Event& a, const Event& b) const {
    return a.at != b.at ? a.at > b.at : a.seq > b.seq;
  }
};

class World;

// The seams of one node's Driver, all calling back into the world.
class SimClock : public runtime::Clock {
 public:
  SimClock(World& world, int node) : world_(world), node_(node) {}
  Nanos Now() override;

 private:
  World& world_;
  int node_;
};

class SimOutbox : public runtime::Outbox {
 public:
  SimOutbox(World& world, int node) : world_(world), node_(node) {}
  void Send(const Message& message) override;

 private:
  World& world_;
  int node_;
};

class SimStore : public runtime::HardStateStore {
 public:
  SimStore(World& world, int node) : world_(world), node_(node) {}
  common::Status Save(const HardState& state) override;

 private:
  World& world_;
  int node_;
};

class SimPromises : public runtime::PromiseRecord {
 public:
  SimPromises(World& world, int node) : world_(world), node_(node) {}
  std::optional<Nanos> Earlier() const override;
  void Record(Nanos until) override;

 private:
  World& world_;
  int node_;
};

class SimShmSink : public runtime::StatusSink {
 public:
  SimShmSink(World& world, int node) : world_(world), node_(node) {}
  void Publish(const runtime::PublishedStatus& status) override;

 private:
  World& world_;
  int node_;
};

struct SimNode {
  std::string name;
  DriftClock clock;
  // Seams and driver of the current incarnation; the driver is null while the node is down.
  std::unique_ptr<SimClock> clock_seam;
  std::unique_ptr<SimOutbox> outbox;
  std::unique_ptr<SimStore> store;
  std::unique_ptr<SimPromises> promises;
  std::unique_ptr<SimShmSink> sink;
  std::unique_ptr<runtime::Driver> driver;
  HardState durable;  // survives crashes: what the node fsynced last
  // Survives crashes of the process, not reboots: the end of its newest lease promise, on its
  // clock (runtime::PromiseRecord); none when lost or never written.
  std::optional<Nanos> promised_until;
  uint64_t incarnation = 0;
  Nanos scheduled_tick{-1};  // true time of the pending tick, -1: none
  Nanos last_tick_at{-1};
  int ticks_at_last_instant = 0;
  Nanos busy_until{0};    // true time until which the driver is stalled or the node paused
  Nanos paused_until{0};  // true time until which the whole node is paused
  bool app_gone = false;  // its app is dead or hung: the node may not lead (set_eligible)
  bool stopping = false;  // a clean stop is under way (StopSomeone)
  int group = 0;          // partition group; messages flow only within a group
  Status status;          // what the app reads: last published by the current incarnation
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
        clock_rng_(MixSeed(seed, 3)),
        discovery_rng_(MixSeed(seed, 4)),
        stall_rng_(MixSeed(seed, 5)),
        reboot_rng_(MixSeed(seed, 6)),
        checker_(seed, Names(options.nodes), kMaxListedViolationsPerSeed) {
    result_.seed = seed;
    flaky_discovery_ = options.faults.flaky_discovery || options.quorum_from_discovery;
    quorum_ = options.nodes / 2 + 1;
    for (int i = 0; i < options.nodes; ++i) {
      SimNode node;
      node.name = Names(options.nodes)[i];
      // Arbitrary epochs catch any comparison of one node's clock with another's.
      const Nanos epoch = milliseconds(clock_rng_.Between(1000, 1000000));
      node.clock = DriftClock(epoch, DrawRate());
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
      if (options_.faults.slew && options_.faults.drift_ppm > 0) ScheduleSlew(i);
    }
    const FaultOptions& f = options_.faults;
    ScheduleNext(EventKind::kCrash, f.crashes_per_minute);
    ScheduleNext(EventKind::kPartition, f.partitions_per_minute);
    ScheduleNext(EventKind::kTransfer, f.transfers_per_minute);
    ScheduleNext(EventKind::kReplay, f.replays_per_minute);
    ScheduleNext(EventKind::kPause, f.pauses_per_minute);
    ScheduleNext(EventKind::kAppLoss, f.app_losses_per_minute);
    ScheduleNext(EventKind::kStop, f.stops_per_minute);
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
      if (node.driver) result_.elections_started += node.driver->core().stats().elections_started;
    }
    result_.elections = checker_.elections();
    result_.violation_count = checker_.violation_count();
    result_.violations = std::move(checker_.violations());
    result_.trace_hash = hash_;
    return std::move(result_);
  }

  // ---- seams (called by a node's Driver, inside an input the world started) ----

  Nanos SeamNow(int i) const { return nodes_[i].clock.Local(cursor_); }

  std::optional<Nanos> SeamEarlierPromises(int i) const { return nodes_[i].promised_until; }

  void SeamRecordPromises(int i, Nanos until) {
    nodes_[i].promised_until = until;
    Hash(0x9e, static_cast<uint64_t>(until.count()), 0);
  }

  // The save is durable when the stall before it ends; a crash before then loses it, as a
  // process killed in its fdatasync may. The driver goes on as if it were durable (it returned),
  // which is what the agent does once its save returns: the node is busy until then, so no
  // input reaches it before.
  common::Status SeamSave(int i, const HardState& state) {
    MaybeStall(i, "persist");
    if (cursor_ == now_) {
      Persist(i, state);
    } else {
      Event event;
      event.at = cursor_;
      event.kind = EventKind::kPersistEffect;
      event.node = i;
      event.tag = nodes_[i].incarnation;
      event.durable = state;
      PushEvent(std::move(event));
    }
    return common::Status::Ok();
  }

  void Persist(int i, const HardState& state) {
    SimNode& node = nodes_[i];
    checker_.OnPersist(i, now_, state);
    node.durable = state;
    Hash(0x5e, node.durable.term, node.durable.voted_for.size());
    Trace(&node, "persist term %" PRIu64 " vote '%s'", state.term, state.voted_for.c_str());
  }

  void SeamSend(int i, const Message& message) {
    MaybeStall(i, "send");
    if (cursor_ == now_) {
      SendNow(i, message);
    } else {
      Push(cursor_, EventKind::kSendEffect, i, nodes_[i].incarnation, message);
    }
  }

  void SeamPublish(int i, const runtime::PublishedStatus& published) {
    MaybeStall(i, "publish");
    if (cursor_ == now_) {
      Publish(i, published.election);
    } else {
      Push(cursor_, EventKind::kPublishEffect, i, nodes_[i].incarnation, {}, published.election);
    }
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

  // The drift bound itself is hit a quarter of the time, since that is where a lease margin
  // fails.
  int32_t DrawRate() {
    const auto drift = static_cast<int64_t>(options_.faults.drift_ppm);
    if (drift == 0) return 0;
    const double u = clock_rng_.Unit();
    return static_cast<int32_t>(u < 0.125  ? -drift
                                : u < 0.25 ? drift
                                           : clock_rng_.Between(-drift, drift));
  }

  // ---- event queue ----

  void Push(Nanos at, EventKind kind, int node, uint64_t tag = 0, Message message = {},
            Status status = {}) {
    Event event;
    event.at = at;
    event.kind = kind;
    event.node = node;
    event.tag = tag;
    event.message = std::move(message);
    event.status = std::move(status);
    PushEvent(std::move(event));
  }
  void PushEvent(Event event) {
    event.seq = next_seq_++;
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

  void ScheduleSlew(int node) {
    Push(now_ + Nanos(clock_rng_.Between(Nanos(milliseconds(100)).count(),
                                         Nanos(milliseconds(2000)).count())),
         EventKind::kSlew, node);
  }

  // An input for a node that is stalled or paused waits until it runs again.
  bool DeferIfBusy(const Event& event) {
    SimNode& node = nodes_[event.node];
    if (node.busy_until <= now_) return false;
    Event copy = event;
    copy.at = node.busy_until;
    copy.seq = next_seq_++;
    if (copy.kind == EventKind::kTick) node.scheduled_tick = copy.at;
    queue_.push_back(std::move(copy));
    std::push_heap(queue_.begin(), queue_.end(), RunsLater());
    return true;
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
        if (DeferIfBusy(event)) return;
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
        if (event.tag == partition_id_) Heal();
        return;
      case EventKind::kTransfer:
        Transfer();
        ScheduleNext(EventKind::kTransfer, options_.faults.transfers_per_minute);
        return;
      case EventKind::kDiscovery:
        if (DeferIfBusy(event)) return;
        Rediscover(event.node);
        ScheduleDiscovery(event.node);
        return;
      case EventKind::kLivenessCheck:
        if (event.tag == window_id_) CloseLivenessWindow();
        return;
      case EventKind::kSendEffect:
        if (event.tag == nodes_[event.node].incarnation && nodes_[event.node].driver) {
          SendNow(event.node, event.message);
        }
        return;
      case EventKind::kPublishEffect:
        if (event.tag == nodes_[event.node].incarnation && nodes_[event.node].driver) {
          Publish(event.node, event.status);
        }
        return;
      case EventKind::kPersistEffect:
        if (event.tag == nodes_[event.node].incarnation) {
          Persist(event.node, event.durable);
        } else {
          ++result_.injected.lost_saves;
          Trace(&nodes_[event.node], "crashed before its save of term %" PRIu64 " completed",
                event.durable.term);
        }
        return;
      case EventKind::kReplay:
        Replay();
        ScheduleNext(EventKind::kReplay, options_.faults.replays_per_minute);
        return;
      case EventKind::kPause:
        PauseSomeone();
        ScheduleNext(EventKind::kPause, options_.faults.pauses_per_minute);
        return;
      case EventKind::kResume:
        TopologyChanged();
        return;
      case EventKind::kAppLoss:
        LoseSomeonesApp();
        ScheduleNext(EventKind::kAppLoss, options_.faults.app_losses_per_minute);
        return;
      case EventKind::kAppGone:
      case EventKind::kAppBack:
        if (DeferIfBusy(event)) return;
        SetAppGone(event.node, event.kind == EventKind::kAppGone);
        return;
      case EventKind::kSlew:
        Slew(event.node);
        ScheduleSlew(event.node);
        return;
      case EventKind::kPeerDied:
        if (DeferIfBusy(event)) return;
        SeeDeath(event);
        return;
      case EventKind::kStop:
        StopSomeone();
        ScheduleNext(EventKind::kStop, options_.faults.stops_per_minute);
        return;
      case EventKind::kStopBegin:
        if (event.tag != nodes_[event.node].incarnation || !nodes_[event.node].driver) return;
        if (DeferIfBusy(event)) return;
        BeginStop(event.node);
        return;
      case EventKind::kStopWaited:
        if (event.tag != nodes_[event.node].incarnation || !nodes_[event.node].driver) return;
        if (DeferIfBusy(event)) return;
        StepDownToStop(event.node);
        return;
      case EventKind::kStopHalt:
        if (event.tag != nodes_[event.node].incarnation || !nodes_[event.node].driver) return;
        if (DeferIfBusy(event)) return;  // paused meanwhile: the stop finishes after the pause
        HaltToStop(event.node);
        return;
      case EventKind::kStopExit:
        if (event.tag == nodes_[event.node].incarnation) Exit(event.node, /*reboot=*/false);
        return;
    }
  }

  // ---- driver inputs ----

  // Runs one input of node i's driver: the seams see true time start at now_ and move on with
  // every stall; afterwards the node is busy until its last step took effect.
  template <typename F>
  void Input(int i, F&& run) {
    SimNode& node = nodes_[i];
    cursor_ = now_;
    if constexpr (std::is_invocable_v<F, runtime::Driver*&>) {
      runtime::Driver* none = nullptr;
      run(none);  // starts the driver
    } else {
      run(*node.driver);
    }
    node.busy_until = std::max(node.busy_until, cursor_);
    cursor_ = now_;
    if (!node.driver) return;
    checker_.OnStats(i, now_, node.driver->core().stats());
    ScheduleTick(i);
  }

  void MaybeStall(int i, const char* step) {
    const FaultOptions& f = options_.faults;
    if (f.stall_percent <= 0 || f.stall_max.count() <= 0) return;
    if (!stall_rng_.Percent(f.stall_percent)) return;
    const Nanos stall(stall_rng_.Between(1, f.stall_max.count()));
    cursor_ += stall;
    ++result_.injected.stalls;
    Trace(&nodes_[i], "driver stalls %.3f ms before %s", static_cast<double>(stall.count()) / 1e6,
          step);
  }

  // ---- nodes ----

  Nanos LocalNow(int i) const { return nodes_[i].clock.Local(now_); }

  std::map<NodeId, runtime::PeerAddresses> PeerMap(int i) const {
    std::map<NodeId, runtime::PeerAddresses> peers;
    for (const NodeId& id : nodes_[i].known_peers) peers[id] = {id, id};
    return peers;
  }

  void StartNode(int i) {
    SimNode& node = nodes_[i];
    const uint64_t core_seed = MixSeed(seed_, 100 + static_cast<uint64_t>(i), node.incarnation);
    node.status = Status{};
    node.stopping = false;
    node.scheduled_tick = Nanos(-1);
    node.busy_until = now_;
    node.clock_seam = std::make_unique<SimClock>(*this, i);
    node.outbox = std::make_unique<SimOutbox>(*this, i);
    node.store = std::make_unique<SimStore>(*this, i);
    node.promises = std::make_unique<SimPromises>(*this, i);
    node.sink = std::make_unique<SimShmSink>(*this, i);
    Trace(&node, "start (incarnation %" PRIu64 ", durable term %" PRIu64 " vote '%s')",
          node.incarnation, node.durable.term, node.durable.voted_for.c_str());
    runtime::DriverOptions d;
    d.config = config_;
    d.self_id = node.name;
    d.self_peer_address = node.name;
    d.self_app_address = node.name;
    d.housekeeping_interval = options_.heartbeat_interval / 2;
    d.unsafe_send_before_publish = options_.unsafe_send_before_publish;
    d.unsafe_send_before_persist = options_.unsafe_send_before_persist;
    // Construction publishes and SetPeers may send: one input, stalls included.
    Input(i, [&](runtime::Driver*& /*none yet*/) {
      node.driver = std::make_unique<runtime::Driver>(
          std::move(d), node.durable, core_seed, *node.clock_seam, *node.outbox, node.store.get(),
          node.promises.get(), std::vector<runtime::StatusSink*>{node.sink.get()});
      node.driver->SetPeers(PeerMap(i));
      if (node.app_gone) node.driver->SetEligible(false);  // restarted beside a dead app
    });
    if (node.incarnation > 0 && options_.faults.replays_per_minute > 0) ReplayTo(i);
    TopologyChanged();
  }

  void Crash(int i) {
    Halt(i, "crash");
    // The app reads the record its agent left, but the kernel marked the agent's life lock as
    // the process exited: the app stops seeing a lease now (sdk/include/instaface/shm_layout.h).
    TellOfDeath(i, /*only_connected=*/true);
    Exit(i, /*reboot=*/true);
  }

  // Node i's driver stops for good: nothing more leaves it, and what it had not sent or saved
  // yet (a stalled step's effects) is lost. Its app still reads what it published last.
  void Halt(int i, const char* why) {
    SimNode& node = nodes_[i];
    const bool was_leader = node.status.role == Role::kLeader;
    Trace(&node, "%s%s", why, was_leader ? " (leader)" : "");
    if (was_leader) {
      ++result_.leader_crashes;
      // A deposed leader that had not noticed yet (cut off, then crashed) needs no failover:
      // a newer leader already serves.
      bool newer_leader = false;
      for (const SimNode& other : nodes_) {
        newer_leader |= other.driver && other.status.role == Role::kLeader &&
                        other.status.term > node.status.term;
      }
      if (!newer_leader) {
        if (failover_.active) ++result_.unresolved_failovers;
        failover_ = {true, now_, i, node.status.term};
      }
    }
    node.elections_started_before += node.driver->core().stats().elections_started;
    node.driver.reset();
    ++node.incarnation;
    node.scheduled_tick = Nanos(-1);
    node.busy_until = now_;
    node.paused_until = now_;
  }

  // Node i's process exits (its driver halted already): the kernel marks the agent's life lock,
  // and the app stops seeing a lease now (sdk/include/instaface/shm_layout.h). It restarts
  // later.
  void Exit(int i, bool reboot) {
    SimNode& node = nodes_[i];
    node.status = Status{};
    ReportLease(i);
    // A quarter of the crashes take the machine with them: the promise record in its page cache
    // is lost and the restarted node waits out a whole election_min (kept as short a downtime
    // as the others, which is harder than any real reboot). Drawn from a stream of its own.
    if (reboot && reboot_rng_.Unit() < 0.25) {
      node.promised_until.reset();
      ++result_.injected.reboots;
      Trace(&node, "the machine went down too: its promise record is lost");
    }
    const int64_t down =
        fault_rng_.Between(Nanos(milliseconds(100)).count(), 3 * options_.election_max.count());
    Push(now_ + Nanos(down), EventKind::kRestart, i, node.incarnation);
    TopologyChanged();
  }

  // The dead (or, with the unsafe switch, silent) node's connections close: each live node
  // that can reach it sees that after the FIN's trip and a redial's round trip.
  void TellOfDeath(int dead, bool only_connected) {
    for (int j = 0; j < options_.nodes; ++j) {
      if (j == dead || !nodes_[j].driver) continue;
      const bool cut = Cut(dead, j) || Cut(j, dead);
      if (only_connected == cut) continue;
      const FaultOptions& f = options_.faults;
      const Nanos trip(net_rng_.Between(f.delay_min.count(), f.delay_max.count()) +
                       2 * net_rng_.Between(f.delay_min.count(), f.delay_max.count()));
      Event event;
      event.at = now_ + trip;
      event.kind = EventKind::kPeerDied;
      event.node = j;
      event.tag = nodes_[j].incarnation;
      event.subject = dead;
      event.subject_incarnation = nodes_[dead].incarnation;
      PushEvent(std::move(event));
    }
  }

  void SeeDeath(const Event& event) {
    SimNode& node = nodes_[event.node];
    const SimNode& dead = nodes_[event.subject];
    if (!node.driver || event.tag != node.incarnation) return;  // its connection died with it
    if (!options_.unsafe_partition_is_death) {
      // A redial reaches whatever listens now: a restarted process is no evidence.
      if (dead.driver || dead.incarnation != event.subject_incarnation) return;
      // The FIN or the redial's refusal did not get through a partition that came meanwhile.
      if (Cut(event.subject, event.node) || Cut(event.node, event.subject)) return;
    }
    ++result_.injected.deaths_seen;
    Trace(&node, "sees %s's process gone", dead.name.c_str());
    const NodeId& id = dead.name;
    const Nanos observed_at = LocalNow(event.node);
    Input(event.node, [&](runtime::Driver& driver) { driver.PeerDied(id, observed_at); });
  }

  // ---- clean stops (runtime/node.cc, Node::Stop with a handover) ----

  // A leader hands over and waits for a new leader, up to election_min (any part of it: the
  // wait ends early once one is known); a follower goes on at once.
  void StopSomeone() {
    const int victim = PickVictim();
    if (victim < 0 || nodes_[victim].stopping) return;
    nodes_[victim].stopping = true;
    Push(now_, EventKind::kStopBegin, victim, nodes_[victim].incarnation);
  }

  void BeginStop(int i) {
    SimNode& node = nodes_[i];
    Nanos wait{0};
    if (node.status.role == Role::kLeader && !options_.unsafe_stop_in_order_while_leading) {
      bool started = false;
      Input(i, [&](runtime::Driver& driver) { started = driver.TransferLeadership(""); });
      Trace(&node, "stopping: handover %s", started ? "started" : "refused");
      wait = Nanos(fault_rng_.Between(0, options_.election_min.count()));
    } else {
      Trace(&node, "stopping");
    }
    Push(now_ + wait, EventKind::kStopWaited, i, node.incarnation);
  }

  // It steps down: what it publishes then reaches its app before anything below.
  void StepDownToStop(int i) {
    if (!options_.unsafe_stop_in_order_while_leading) {
      Input(i, [](runtime::Driver& driver) { driver.StepDown(); });
    }
    // The driver thread is joined once its current step, and each stalled effect of it, is
    // done: the status it published last is the one HaltToStop reads.
    Push(std::max(now_, nodes_[i].busy_until), EventKind::kStopHalt, i, nodes_[i].incarnation);
  }

  // Its driver has stopped. Claiming no lease (or with the unsafe switch), it ends its
  // watchers' connections in order: they see it gone at once, while its process, and its app's
  // view of the last status, live on for a moment. Otherwise they are reset: no evidence.
  void HaltToStop(int i) {
    SimNode& node = nodes_[i];
    const bool in_order =
        node.status.role != Role::kLeader || options_.unsafe_stop_in_order_while_leading;
    Halt(i, in_order ? "stopped, connections ended in order" : "stopped, connections reset");
    if (in_order) {
      ++result_.injected.clean_stops;
      TellOfDeath(i, /*only_connected=*/true);
    }
    TopologyChanged();
    // The rest of the stop (deregistering, unlinking the segment, destructors, the logger's
    // flush) usually takes a few ms, but a stalled disk or a loaded machine can stretch it.
    const Nanos exit_after(fault_rng_.Between(0, options_.election_max.count()));
    Push(now_ + exit_after, EventKind::kStopExit, i, node.incarnation);
  }

  // Half of the crashes and pauses hit the leader: those are the ones that need a failover.
  int PickVictim() {
    std::vector<int> alive;
    int leader = -1;
    for (int i = 0; i < options_.nodes; ++i) {
      if (!nodes_[i].driver) continue;
      alive.push_back(i);
      if (nodes_[i].status.role == Role::kLeader) leader = i;
    }
    if (alive.empty()) return -1;
    const bool hit_leader = fault_rng_.Unit() < 0.5;
    return hit_leader && leader >= 0
               ? leader
               : alive[fault_rng_.Between(0, static_cast<int64_t>(alive.size()) - 1)];
  }

  void CrashSomeone() {
    const int victim = PickVictim();
    if (victim >= 0) Crash(victim);
  }

  // The app beside one node dies or hangs for a while; its agent sees it and stops leading and
  // standing (Election::set_eligible). One at a time, so that a connected quorum always has a
  // node that may lead.
  void LoseSomeonesApp() {
    for (const SimNode& n : nodes_) {
      if (n.app_gone) return;
    }
    const int victim = PickVictim();
    if (victim < 0) return;
    nodes_[victim].app_gone = true;
    ++result_.injected.app_losses;
    const Nanos gone(
        fault_rng_.Between(options_.election_min.count() / 2, 3 * options_.election_max.count()));
    Trace(&nodes_[victim], "app gone for %.3f ms%s", static_cast<double>(gone.count()) / 1e6,
          nodes_[victim].status.role == Role::kLeader ? " (leader)" : "");
    Push(now_, EventKind::kAppGone, victim);
    Push(now_ + gone, EventKind::kAppBack, victim);
  }

  void SetAppGone(int i, bool gone) {
    SimNode& node = nodes_[i];
    node.app_gone = gone;
    if (!gone) Trace(&node, "app back");
    if (node.driver) Input(i, [gone](runtime::Driver& driver) { driver.SetEligible(!gone); });
  }

  void PauseSomeone() {
    const int victim = PickVictim();
    if (victim < 0) return;
    SimNode& node = nodes_[victim];
    const Nanos pause(
        fault_rng_.Between(options_.election_min.count() / 2, 3 * options_.election_max.count()));
    node.paused_until = now_ + pause;
    node.busy_until = std::max(node.busy_until, node.paused_until);
    ++result_.injected.pauses;
    Trace(&node, "paused for %.3f ms%s", static_cast<double>(pause.count()) / 1e6,
          node.status.role == Role::kLeader ? " (leader)" : "");
    if (options_.unsafe_partition_is_death) TellOfDeath(victim, /*only_connected=*/true);
    TopologyChanged();
    Push(node.paused_until, EventKind::kResume, victim);
  }

  void Slew(int i) {
    SimNode& node = nodes_[i];
    const int32_t rate = DrawRate();
    node.clock.SetRate(now_, rate);
    Trace(&node, "clock now %+d ppm", rate);
    // The app's lease now ends at another true time.
    if (node.status.role == Role::kLeader) ReportLease(i);
    if (node.driver) ScheduleTick(i);
  }

  void Tick(const Event& event) {
    SimNode& node = nodes_[event.node];
    if (!node.driver || event.tag != node.incarnation || event.at != node.scheduled_tick) return;
    if (DeferIfBusy(event)) return;
    node.scheduled_tick = Nanos(-1);
    if (node.last_tick_at == now_) {
      ++node.ticks_at_last_instant;
    } else {
      node.last_tick_at = now_;
      node.ticks_at_last_instant = 1;
    }
    Input(event.node, [](runtime::Driver& driver) { driver.Tick(); });
  }

  void ScheduleTick(int i) {
    SimNode& node = nodes_[i];
    const Nanos deadline = node.driver->NextDeadline();
    if (deadline >= Nanos::max() / 2) return;  // nothing to wait for
    Nanos at = std::max({node.clock.TrueAt(deadline), now_, node.busy_until});
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

  // What the node's app now reads.
  void Publish(int i, const Status& status) {
    SimNode& node = nodes_[i];
    const bool became_leader = status.role == Role::kLeader && (node.status.role != Role::kLeader ||
                                                                node.status.term != status.term);
    node.status = status;
    const Nanos lease_end = LeaseEnd(i);
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
    if (status.role == Role::kLeader) LeaderSeen(i);
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
  }

  // A leader that serves the liveness window's group ends its wait.
  void LeaderSeen(int i) {
    if (window_active_ && !window_saw_leader_ && Usable(i) && nodes_[i].group == window_group_) {
      window_saw_leader_ = true;
      result_.longest_wait_for_leader =
          std::max(result_.longest_wait_for_leader, now_ - window_start_);
    }
  }

  // The true time at which the lease node i's app reads runs out at the clock's present rate,
  // or zero when it reads none.
  Nanos LeaseEnd(int i) const {
    const SimNode& node = nodes_[i];
    if (node.status.role != Role::kLeader || node.status.lease_until <= LocalNow(i)) {
      return Nanos(0);
    }
    return node.clock.TrueAt(node.status.lease_until);
  }

  void ReportLease(int i) { checker_.OnLeaseMoved(i, now_, nodes_[i].status, LeaseEnd(i)); }

  // ---- network ----

  void SendNow(int from, Message message) {
    const int to = IndexOf(message.to);
    checker_.OnSend(from, now_, message, nodes_[from].durable);
    ++result_.messages_sent;
    Hash(0x53, static_cast<uint64_t>(message.type), message.term,
         static_cast<uint64_t>(to + 1) | (message.granted ? 0x100 : 0));
    Trace(&nodes_[from], "send %s", Describe(message).c_str());
    if (to < 0 || to == from) return;
    if (history_.size() < kReplayHistory) {
      history_.push_back(message);
    } else {
      history_[history_next_++ % kReplayHistory] = message;
    }
    const FaultOptions& faults = options_.faults;
    const int copies = net_rng_.Percent(faults.duplicate_percent) ? 2 : 1;
    for (int copy = 0; copy < copies; ++copy) {
      if (net_rng_.Percent(faults.loss_percent)) {
        Trace(&nodes_[from], "  lost on the way to %s", message.to.c_str());
        continue;
      }
      Nanos delay(net_rng_.Between(faults.delay_min.count(), faults.delay_max.count()));
      // A second copy may come long after the first.
      if (net_rng_.Percent(faults.late_percent) || (copy == 1 && net_rng_.Percent(50))) {
        delay += Nanos(net_rng_.Between(options_.election_max.count(),
                                        std::max(faults.late_max, options_.election_max).count()));
        ++result_.injected.late_messages;
      }
      Push(now_ + delay, EventKind::kDeliver, to, 0, message);
    }
  }

  void Deliver(const Message& message) {
    const int to = IndexOf(message.to);
    const int from = IndexOf(message.from);
    SimNode& node = nodes_[to];
    if (!node.driver) {
      Trace(&node, "dropped (down) %s", Describe(message).c_str());
      return;
    }
    if (from >= 0 && Cut(from, to)) {
      if (net_rng_.Percent(options_.faults.reconnect_percent)) {
        held_.push_back(message);
        Trace(&node, "held (partition) %s", Describe(message).c_str());
      } else {
        Trace(&node, "dropped (partition) %s", Describe(message).c_str());
      }
      return;
    }
    Hash(0x44, static_cast<uint64_t>(message.type), message.term);
    Trace(&node, "recv %s", Describe(message).c_str());
    Input(to, [&](runtime::Driver& driver) { driver.Step(message); });
  }

  void Replay() {
    if (history_.empty()) return;
    const Message& old = history_[net_rng_.Between(0, static_cast<int64_t>(history_.size()) - 1)];
    const int to = IndexOf(old.to);
    if (to < 0) return;
    ++result_.injected.replays;
    Trace(nullptr, "replay %s", Describe(old).c_str());
    Push(now_ + Nanos(net_rng_.Between(options_.faults.delay_min.count(),
                                       options_.faults.delay_max.count())),
         EventKind::kDeliver, to, 0, old);
  }

  // Whether the partition drops messages from `from` to `to`. A one-way cut (a firewall rule
  // on one side) drops only what leaves group 1.
  bool Cut(int from, int to) const {
    if (nodes_[from].group == nodes_[to].group) return false;
    return !one_way_ || nodes_[from].group == 1;
  }

  // A restarted node's peers resend what they had in flight to it (nng's REQ resends on
  // reconnect), and old copies still in the network arrive: its newest inbound messages again.
  void ReplayTo(int i) {
    int replayed = 0;
    for (size_t k = 0; k < history_.size() && replayed < 8; ++k) {
      const Message& old = history_[(history_next_ + history_.size() - 1 - k) % history_.size()];
      if (IndexOf(old.to) != i || !net_rng_.Percent(50)) continue;
      ++replayed;
      ++result_.injected.replays;
      Push(now_ + Nanos(net_rng_.Between(0, 2 * options_.faults.delay_max.count())),
           EventKind::kDeliver, i, 0, old);
    }
    if (replayed > 0) Trace(&nodes_[i], "%d old messages replayed to the restarted node", replayed);
  }

  void Partition() {
    // Isolate one node, split in two, or split in three; a fifth of the two-way splits of one
    // node or two groups cut one way only.
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
    one_way_ = kind < 0.8 && fault_rng_.Unit() < 0.2;
    if (one_way_) layout += " (one way: group 1 cannot send)";
    ++partition_id_;
    const int64_t lasts =
        fault_rng_.Between(options_.election_min.count() / 2, 5 * options_.election_max.count());
    Push(now_ + Nanos(lasts), EventKind::kHeal, -1, partition_id_);
    Trace(nullptr, "partition for %.3f ms, groups%s", static_cast<double>(lasts) / 1e6,
          layout.c_str());
    if (options_.unsafe_partition_is_death) {
      for (int i = 0; i < n; ++i) TellOfDeath(i, /*only_connected=*/false);
    }
    TopologyChanged();
  }

  // Messages held across the partition arrive after it, in any order.
  void Heal() {
    for (auto& node : nodes_) node.group = 0;
    one_way_ = false;
    Trace(nullptr, "partition healed; %zu held messages follow", held_.size());
    for (Message& m : held_) {
      const int to = IndexOf(m.to);
      Push(now_ + Nanos(net_rng_.Between(0, options_.faults.delay_max.count())),
           EventKind::kDeliver, to, 0, std::move(m));
    }
    held_.clear();
    TopologyChanged();
  }

  void Transfer() {
    int leader = -1;
    for (int i = 0; i < options_.nodes; ++i) {
      if (nodes_[i].driver && nodes_[i].status.role == Role::kLeader &&
          (leader < 0 || nodes_[i].status.term > nodes_[leader].status.term)) {
        leader = i;
      }
    }
    if (leader < 0 || nodes_[leader].busy_until > now_) return;
    bool started = false;
    Input(leader, [&](runtime::Driver& driver) { started = driver.TransferLeadership(""); });
    Trace(&nodes_[leader], "asked to transfer leadership: %s", started ? "started" : "refused");
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
    if (!node.driver) return;
    Input(i, [&](runtime::Driver& driver) { driver.SetPeers(PeerMap(i)); });
  }

  // ---- liveness ----

  // A window is a quorum of nodes that are up, running and all in one partition group. It lasts
  // while its members stay so, whatever happens to the others; a leader must appear in that
  // group (a member, or a node that joined it since) within the bound. Only a change that breaks
  // the window starts a new one.
  bool Usable(int i) const { return nodes_[i].driver && nodes_[i].paused_until <= now_; }

  void TopologyChanged() {
    if (flaky_discovery_) return;  // nodes may not even know each other: no liveness promise
    if (window_active_) {
      bool intact = true;
      int group = -1;
      for (int i = 0; i < options_.nodes; ++i) {
        if (!(window_members_ >> i & 1)) continue;
        if (!Usable(i) || (group >= 0 && nodes_[i].group != group)) intact = false;
        group = nodes_[i].group;
      }
      if (intact) {
        window_group_ = group;
        for (int i = 0; i < options_.nodes; ++i) {
          if (nodes_[i].status.role == Role::kLeader) LeaderSeen(i);
        }
        return;
      }
    }
    ++window_id_;
    window_active_ = false;
    std::vector<int> count(3, 0);
    for (int i = 0; i < options_.nodes; ++i) {
      if (Usable(i)) ++count[nodes_[i].group];
    }
    for (int g = 0; g < 3; ++g) {
      if (count[g] < quorum_) continue;
      window_active_ = true;
      window_start_ = now_;
      window_members_ = 0;
      window_group_ = g;
      window_saw_leader_ = false;
      for (int i = 0; i < options_.nodes; ++i) {
        if (!Usable(i) || nodes_[i].group != g) continue;
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
    window_active_ = false;
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
  SimRandom clock_rng_;
  SimRandom discovery_rng_;
  SimRandom stall_rng_;
  SimRandom reboot_rng_;
  InvariantChecker checker_;
  bool flaky_discovery_ = false;
  int quorum_ = 1;

  std::vector<SimNode> nodes_;
  std::vector<Event> queue_;  // a heap under RunsLater
  uint64_t next_seq_ = 0;
  Nanos now_{0};
  Nanos cursor_{0};  // inside a driver input: the true time its current step takes effect
  uint64_t partition_id_ = 0;
  bool one_way_ = false;
  std::vector<Message> held_;     // cut by the partition, delivered after it heals
  std::vector<Message> history_;  // recent messages, for replays
  size_t history_next_ = 0;
  PendingFailover failover_;

  uint64_t window_id_ = 0;
  bool window_active_ = false;
  bool window_saw_leader_ = false;
  Nanos window_start_{0};
  uint64_t window_members_ = 0;
  int window_group_ = 0;

  uint64_t hash_ = 0xcbf29ce484222325ULL;
  SeedResult result_;
};

Nanos SimClock::Now() { return world_.SeamNow(node_); }
void SimOutbox::Send(const Message& message) { world_.SeamSend(node_, message); }
common::Status SimStore::Save(const HardState& state) { return world_.SeamSave(node_, state); }
std::optional<Nanos> SimPromises::Earlier() const { return world_.SeamEarlierPromises(node_); }
void SimPromises::Record(Nanos until) { world_.SeamRecordPromises(node_, until); }
void SimShmSink::Publish(const runtime::PublishedStatus& status) {
  world_.SeamPublish(node_, status);
}

}  // namespace

SeedResult RunSeed(const SimOptions& options, uint64_t seed, const TraceSink& trace) {
  World world(options, seed, trace);
  return world.Run();
}

}  // namespace instaface::sim
