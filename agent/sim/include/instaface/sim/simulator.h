// instaface-sim as a library: runs N election cores on a simulated clock and network, injects
// faults, and checks the election's invariants after every step.
//
// One seed is one deterministic run: the same options and seed give the same events in the same
// order, and so the same trace and trace hash. RunSeed is re-entrant (each call owns its whole
// world), so RunSeeds runs seeds on several threads; the options are read-only while it runs.
#ifndef INSTAFACE_SIM_SIMULATOR_H_
#define INSTAFACE_SIM_SIMULATOR_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "instaface/sim/options.h"

namespace instaface::sim {

// The invariants, by the name reports use.
inline constexpr const char* kOneLeaderPerTerm = "one-leader-per-term";
inline constexpr const char* kLeaseOverlap = "lease-overlap";
inline constexpr const char* kTermDecreased = "term-decreased";
inline constexpr const char* kDoubleVote = "double-vote";
inline constexpr const char* kUnpersistedSend = "sent-before-persist";
inline constexpr const char* kSameTermHeartbeat = "same-term-heartbeat-as-leader";
inline constexpr const char* kLiveness = "liveness";
// An app holds a valid lease in a term older than one whose leader has already published: its
// fence token is stale while it acts.
inline constexpr const char* kStaleFence = "stale-fence-token";

// How often the faults without counters of their own struck.
struct InjectedFaults {
  uint64_t stalls = 0;         // driver stalls between two steps of its work
  uint64_t pauses = 0;         // whole-node pauses
  uint64_t app_losses = 0;     // apps that died or hung beside their agent
  uint64_t late_messages = 0;  // copies delayed past election_max
  uint64_t replays = 0;        // old messages delivered again
  uint64_t deaths_seen = 0;    // a peer's transport saw a crashed process's connection close
  uint64_t reboots = 0;        // crashes that took the machine down: the promise record is lost
  uint64_t lost_saves = 0;     // crashes during a save (a stalled one): it never became durable
  uint64_t clean_stops = 0;    // stops that ended their connections in order (stops_per_minute)
  InjectedFaults& operator+=(const InjectedFaults& o) {
    clean_stops += o.clean_stops;
    lost_saves += o.lost_saves;
    deaths_seen += o.deaths_seen;
    reboots += o.reboots;
    stalls += o.stalls;
    pauses += o.pauses;
    app_losses += o.app_losses;
    late_messages += o.late_messages;
    replays += o.replays;
    return *this;
  }
};

struct Violation {
  uint64_t seed = 0;
  Nanos at{0};        // true (simulated) time
  std::string check;  // one of the names above
  std::string description;
};

struct SeedResult {
  uint64_t seed = 0;
  uint64_t violation_count = 0;
  std::vector<Violation> violations;  // the first few of violation_count
  uint64_t elections = 0;             // terms in which some node became leader
  uint64_t elections_started = 0;     // candidacies (terms raised), all nodes and restarts
  uint64_t leader_crashes = 0;
  uint64_t unresolved_failovers = 0;  // leader crashes not followed by a survivor leading
  std::vector<Nanos> failovers;       // leader crash -> a surviving node leads
  Nanos longest_wait_for_leader{0};   // worst liveness window: quorum connected -> leader
  uint64_t events = 0;
  uint64_t messages_sent = 0;
  InjectedFaults injected;
  uint64_t trace_hash = 0;  // digest of every event; equal runs have equal hashes
};

// Receives one line per event (no trailing newline) when a trace is wanted.
using TraceSink = std::function<void(const std::string& line)>;

SeedResult RunSeed(const SimOptions& options, uint64_t seed, const TraceSink& trace = nullptr);

struct Summary {
  uint64_t first_seed = 0;
  uint64_t seeds = 0;
  uint64_t violation_count = 0;
  std::vector<Violation> violations;  // the first few per seed, in seed order
  uint64_t elections = 0;
  uint64_t elections_started = 0;
  uint64_t leader_crashes = 0;
  uint64_t unresolved_failovers = 0;
  std::vector<Nanos> failovers;        // sorted
  uint64_t slowest_failover_seed = 0;  // the seed to replay to see failovers.back()
  Nanos longest_wait_for_leader{0};
  uint64_t events = 0;
  uint64_t messages_sent = 0;
  InjectedFaults injected;
  double wall_seconds = 0;

  Nanos FailoverPercentile(double p) const;  // nearest rank; zero when there are none
};

// Runs seeds first..first+count-1 on `jobs` threads (0: hardware concurrency). The summary does
// not depend on `jobs`.
Summary RunSeeds(const SimOptions& options, uint64_t first, uint64_t count, int jobs);

// The command line that replays one seed with a trace, spelling out every option.
std::string ReplayCommand(const SimOptions& options, uint64_t seed);

}  // namespace instaface::sim

#endif  // INSTAFACE_SIM_SIMULATOR_H_
