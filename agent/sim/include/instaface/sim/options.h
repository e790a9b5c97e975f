// What one simulated cluster looks like: its size, its election timings and the faults its
// network, processes and clocks suffer. Plain values; copy freely between threads.
#ifndef INSTAFACE_SIM_OPTIONS_H_
#define INSTAFACE_SIM_OPTIONS_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "instaface/election/election.h"

namespace instaface::sim {

using election::Nanos;

struct FaultOptions {
  double loss_percent = 0;       // each copy of a message is dropped with this probability
  double duplicate_percent = 0;  // a message is sent twice with this probability
  // Each copy is delivered after a delay drawn uniformly from [delay_min, delay_max]; a spread
  // between the two reorders messages.
  Nanos delay_min = std::chrono::milliseconds(1);
  Nanos delay_max = std::chrono::milliseconds(1);
  // Rates are events per simulated minute for the whole cluster (Poisson arrivals).
  double partitions_per_minute = 0;  // the cluster splits into groups for a while, then heals
  double crashes_per_minute = 0;     // a node (the leader half the time) stops, later restarts
  double transfers_per_minute = 0;   // the leader is asked to hand over (a rolling deploy)
  // A node (the leader half the time) is stopped cleanly, as SIGTERM stops an agent
  // (runtime/node.cc): a leader hands over and waits, then every stopped node steps down and,
  // claiming no lease, ends its connections in order, so that its peers see it gone as after a
  // crash while its process still runs for a moment. Restarts later.
  double stops_per_minute = 0;
  // Each node's clock runs at a rate off true time by up to this many parts per million.
  uint32_t drift_ppm = 0;
  // The rate wanders: every 100 ms to 2 s each clock takes a new rate within drift_ppm, as NTP
  // slewing it would.
  bool slew = false;
  // Discovery is flaky: every node knows only a random, changing subset of its peers.
  bool flaky_discovery = false;

  // Late messages: this share of copies is held for an extra delay in [election_max, late_max]
  // (a queue behind a stalled peer, a retransmission after a long outage).
  double late_percent = 0;
  Nanos late_max = std::chrono::seconds(3);
  // Old messages delivered again, also to nodes that restarted since (per minute).
  double replays_per_minute = 0;
  // This share of the messages a partition cuts arrives after it heals, in any order (what a
  // transport that buffers and resends across a reconnect does).
  double reconnect_percent = 0;
  // A driver thread stalls between two steps of its work (persist, publish, each send) with this
  // probability per step, for up to stall_max.
  double stall_percent = 0;
  Nanos stall_max{0};
  // A node stops for a while (SIGSTOP, a frozen cgroup, a paused VM) with its app, while its
  // clock runs on (per minute); when it resumes, its clock has jumped by the pause.
  double pauses_per_minute = 0;
  // A node's app dies or hangs for a while (per minute, one at a time): its agent may then
  // neither lead nor stand (leadership follows a live app).
  double app_losses_per_minute = 0;
};

// "all": a mix of every fault; "none": a quiet network with a fixed 1 ms delay.
// Returns nothing for any other name.
std::optional<FaultOptions> FaultPreset(std::string_view name);

struct SimOptions {
  int nodes = 5;
  Nanos duration = std::chrono::seconds(60);  // simulated time per seed
  Nanos heartbeat_interval = std::chrono::milliseconds(500);
  Nanos election_min = std::chrono::milliseconds(750);
  Nanos election_max = std::chrono::milliseconds(1000);
  FaultOptions faults;
  // UNSAFE mode under test: quorum counted from the peers a node currently knows. Implies
  // flaky discovery, because with a complete peer list the two rules agree.
  bool quorum_from_discovery = false;
  // Liveness: once a quorum is up and connected, a leader must appear among it within this
  // bound. Zero selects DefaultLivenessBound().
  Nanos liveness_bound{0};
  // The drift bound the cores are told about; normally faults.drift_ppm. Setting it lower than
  // the real drift breaks the lease on purpose (the checker's own test uses it).
  std::optional<uint32_t> config_drift_ppm;
  // UNSAFE, to show that each fix is what keeps leases apart: undo one rule of the core
  // (election::Config::Unsafe) or one of the driver's orders: publish before send, persist
  // before send.
  election::Config::Unsafe unsafe;
  bool unsafe_send_before_publish = false;
  bool unsafe_send_before_persist = false;
  // UNSAFE: a stopped leader neither hands over nor steps down, and still ends its connections
  // in order: its peers see it gone while its app may still see its lease.
  bool unsafe_stop_in_order_while_leading = false;
  // UNSAFE: take a lost connection for a dead process, as a transport that cannot tell a
  // process's exit from a partition or a pause would: every node cut off from another, or
  // beside a paused one, is told that it died (election::Election::peer_died).
  bool unsafe_partition_is_death = false;

  election::Config MakeConfig() const;
  // Sets the unsafe switch called `name` (see kUnsafeSwitches); false for an unknown name.
  bool SetUnsafe(std::string_view name);
  Nanos EffectiveLivenessBound() const;
  // Empty when the options are usable, else what is wrong with them.
  std::string Validate() const;
};

// The names of the unsafe switches, as --unsafe takes them.
inline constexpr const char* kUnsafeSwitches[] = {
    "late-timeout-now",     "transfer-in-restart-window", "former-leader-votes",
    "send-before-publish",  "send-before-persist",        "partition-is-death",
    "vote-without-promise", "stop-in-order-while-leading"};
// The switches set in `options`, by name.
std::vector<std::string> UnsafeNames(const SimOptions& options);

// election_min (voters honour a lease that long) + 5 x election_max (time-outs, PreVote and vote
// rounds, split votes and lost messages) + 4 x the largest ordinary message delay, + stall_max
// when drivers stall. Late and replayed messages are noise the bound does not wait for.
Nanos DefaultLivenessBound(const SimOptions& options);

}  // namespace instaface::sim

#endif  // INSTAFACE_SIM_OPTIONS_H_
