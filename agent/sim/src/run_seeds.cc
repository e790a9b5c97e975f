// Runs many seeds on worker threads and folds their results, in seed order, into one summary.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include "instaface/sim/simulator.h"

namespace instaface::sim {

Nanos Summary::FailoverPercentile(double p) const {
  if (failovers.empty()) return Nanos(0);
  // Nearest rank: the smallest sample with at least p% of the samples at or below it.
  const double rank = std::ceil(p / 100.0 * static_cast<double>(failovers.size()));
  const size_t index = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return failovers[std::min(index, failovers.size() - 1)];
}

Summary RunSeeds(const SimOptions& options, uint64_t first, uint64_t count, int jobs) {
  const auto started = std::chrono::steady_clock::now();
  if (jobs <= 0) jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  jobs = static_cast<int>(
      std::min<uint64_t>(static_cast<uint64_t>(jobs), std::max<uint64_t>(count, 1)));

  // Each worker writes only its own slots; the vector is sized before the threads start.
  std::vector<SeedResult> results(count);
  std::atomic<uint64_t> next{0};
  auto work = [&] {
    for (uint64_t i = next++; i < count; i = next++) results[i] = RunSeed(options, first + i);
  };
  std::vector<std::thread> workers;
  for (int j = 1; j < jobs; ++j) workers.emplace_back(work);
  work();
  for (auto& worker : workers) worker.join();

  Summary summary;
  Nanos slowest{0};
  summary.first_seed = first;
  summary.seeds = count;
  for (auto& r : results) {
    summary.violation_count += r.violation_count;
    for (auto& v : r.violations) summary.violations.push_back(std::move(v));
    summary.elections += r.elections;
    summary.elections_started += r.elections_started;
    summary.leader_crashes += r.leader_crashes;
    summary.unresolved_failovers += r.unresolved_failovers;
    for (Nanos failover : r.failovers) {
      if (summary.failovers.empty() || failover > slowest) {
        slowest = failover;
        summary.slowest_failover_seed = r.seed;
      }
      summary.failovers.push_back(failover);
    }
    summary.longest_wait_for_leader =
        std::max(summary.longest_wait_for_leader, r.longest_wait_for_leader);
    summary.events += r.events;
    summary.messages_sent += r.messages_sent;
    summary.injected += r.injected;
  }
  std::sort(summary.failovers.begin(), summary.failovers.end());
  summary.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return summary;
}

std::string ReplayCommand(const SimOptions& o, uint64_t seed) {
  auto ms = [](Nanos t) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", static_cast<double>(t.count()) / 1e6);
    return std::string(buf);
  };
  char duration[32];
  std::snprintf(duration, sizeof duration, "%g", static_cast<double>(o.duration.count()) / 1e9);
  const FaultOptions& f = o.faults;
  char faults[512];
  std::snprintf(
      faults, sizeof faults,
      "--faults none --loss %g --duplicate %g --delay-ms %s,%s --partitions %g "
      "--crashes %g --transfers %g --stops %g --drift-ppm %u --late %g --late-max-ms %s "
      "--replays %g --reconnect %g --stall %g --stall-max-ms %s --pauses %g --app-losses %g",
      f.loss_percent, f.duplicate_percent, ms(f.delay_min).c_str(), ms(f.delay_max).c_str(),
      f.partitions_per_minute, f.crashes_per_minute, f.transfers_per_minute, f.stops_per_minute,
      f.drift_ppm, f.late_percent, ms(f.late_max).c_str(), f.replays_per_minute,
      f.reconnect_percent, f.stall_percent, ms(f.stall_max).c_str(), f.pauses_per_minute,
      f.app_losses_per_minute);
  std::string command = "instaface-sim --seed " + std::to_string(seed) + " --trace --nodes " +
                        std::to_string(o.nodes) + " --duration " + duration + " --heartbeat-ms " +
                        ms(o.heartbeat_interval) + " --election-min-ms " + ms(o.election_min) +
                        " --election-max-ms " + ms(o.election_max) + " " + faults;
  if (f.slew) command += " --slew";
  if (f.flaky_discovery) command += " --flaky-discovery";
  for (const std::string& name : UnsafeNames(o)) command += " --unsafe " + name;
  if (o.quorum_from_discovery) command += " --quorum-from-discovery";
  if (o.liveness_bound.count() > 0) command += " --liveness-bound-ms " + ms(o.liveness_bound);
  if (o.config_drift_ppm) command += " --config-drift-ppm " + std::to_string(*o.config_drift_ppm);
  return command;
}

}  // namespace instaface::sim
