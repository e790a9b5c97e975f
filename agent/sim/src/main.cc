// instaface-sim: runs election cores under simulated faults and checks the invariants.
// Exit status: 0 no violation, 1 violations found, 2 bad flags.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "instaface/sim/report.h"
#include "instaface/sim/simulator.h"

namespace {

using instaface::sim::Nanos;

Nanos FromMs(double ms) { return Nanos(static_cast<int64_t>(ms * 1e6)); }

// "MIN,MAX" or a single "MS" for a fixed delay.
bool ParseDelay(const std::string& text, double& min_ms, double& max_ms) {
  try {
    size_t used = 0;
    const auto comma = text.find(',');
    min_ms = std::stod(text.substr(0, comma), &used);
    if (used != (comma == std::string::npos ? text.size() : comma)) return false;
    if (comma == std::string::npos) {
      max_ms = min_ms;
      return true;
    }
    const std::string rest = text.substr(comma + 1);
    max_ms = std::stod(rest, &used);
    return used == rest.size();
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Runs N Raft-style election cores on a simulated clock and network under faults, and checks "
      "after every step: one leader per term, no overlapping leases in true time, terms never "
      "decrease, one vote per term (restarts included), no same-term heartbeat to a leader, and "
      "a leader within --liveness-bound-ms once a quorum is up and connected. Exit status: 0 "
      "clean, 1 violations, 2 bad flags.",
      "instaface-sim"};

  int nodes = 5;
  uint64_t seeds = 100;
  uint64_t seed = 0;
  bool trace = false;
  double duration_s = 60;
  double heartbeat_ms = 500, election_min_ms = 750, election_max_ms = 1000;
  std::string faults_name = "all";
  double loss = 0, duplicate = 0, partitions = 0, crashes = 0, transfers = 0, stops = 0;
  std::string delay;
  double delay_min_ms = 0, delay_max_ms = 0;
  uint32_t drift_ppm = 0, config_drift_ppm = 0;
  bool flaky_discovery = false, quorum_from_discovery = false, json = false, slew = false;
  double late = 0, late_max_ms = 0, replays = 0, reconnect = 0, stall = 0, stall_max_ms = 0,
         pauses = 0, app_losses = 0;
  std::vector<std::string> unsafe;
  double liveness_bound_ms = 0;
  int jobs = 0;

  app.add_option("--nodes", nodes, "Cluster size (configured quorum = nodes/2+1)")
      ->capture_default_str();
  auto* seeds_opt = app.add_option("--seeds", seeds, "Run seeds 1..N")->capture_default_str();
  auto* seed_opt = app.add_option("--seed", seed, "Run this one seed (use with --trace)");
  seed_opt->excludes(seeds_opt);
  app.add_flag("--trace", trace, "Print every event of the run (needs --seed)")->needs(seed_opt);
  app.add_option("--duration", duration_s, "Simulated seconds per seed")->capture_default_str();
  app.add_option("--heartbeat-ms", heartbeat_ms, "Leader heartbeat interval")
      ->capture_default_str();
  app.add_option("--election-min-ms", election_min_ms, "Election timeout lower bound")
      ->capture_default_str();
  app.add_option("--election-max-ms", election_max_ms, "Election timeout upper bound")
      ->capture_default_str();
  app.add_option("--faults", faults_name,
                 "Fault preset the knobs below start from: 'all' (loss 5%, duplicate 2%, delay "
                 "1-20 ms, 2 partitions/min, 3 crashes/min, 4 transfers/min, drift 2000 ppm "
                 "with slew, 1% of messages late by up to 3 s, 30 replays/min, 30% of cut "
                 "messages delivered after the partition, 0.5% driver stalls of up to 400 ms, "
                 "1 node pause/min) or 'none' (fixed 1 ms delay, nothing else)")
      ->check(CLI::IsMember({"all", "none"}))
      ->capture_default_str();
  auto* loss_opt =
      app.add_option("--loss", loss, "Percent of messages lost")->check(CLI::Range(0.0, 100.0));
  auto* dup_opt = app.add_option("--duplicate", duplicate, "Percent of messages sent twice")
                      ->check(CLI::Range(0.0, 100.0));
  auto* delay_opt =
      app.add_option("--delay-ms", delay, "Message delay MIN,MAX (uniform; reorders) or one value");
  auto* delay_min_opt =
      app.add_option("--delay-min-ms", delay_min_ms, "Message delay minimum")->excludes(delay_opt);
  auto* delay_max_opt =
      app.add_option("--delay-max-ms", delay_max_ms, "Message delay maximum")->excludes(delay_opt);
  auto* partitions_opt =
      app.add_option("--partitions", partitions, "Network partitions per simulated minute");
  auto* crashes_opt = app.add_option(
      "--crashes", crashes,
      "Crashes per simulated minute (half hit the leader); restarts keep durable HardState");
  auto* transfers_opt = app.add_option("--transfers", transfers,
                                       "Leadership transfers requested per simulated minute");
  auto* stops_opt = app.add_option(
      "--stops", stops,
      "Clean stops (SIGTERM) per simulated minute, half of the leader: a leader hands over and "
      "waits, then the node steps down and ends its connections in order; restarts later");
  auto* drift_opt = app.add_option(
      "--drift-ppm", drift_ppm,
      "Each clock's rate is off by up to this (ppm); also the cores' configured drift bound");
  auto* config_drift_opt = app.add_option(
      "--config-drift-ppm", config_drift_ppm,
      "Tell the cores a different drift bound than the real one (to see the lease check fail)");
  auto* slew_opt =
      app.add_flag("--slew", slew, "Clock rates wander within --drift-ppm (NTP slewing them)");
  auto* late_opt = app.add_option("--late", late, "Percent of messages late by seconds")
                       ->check(CLI::Range(0.0, 100.0));
  auto* late_max_opt =
      app.add_option("--late-max-ms", late_max_ms, "Latest a late message arrives");
  auto* replays_opt =
      app.add_option("--replays", replays, "Old messages delivered again per simulated minute");
  auto* reconnect_opt =
      app.add_option("--reconnect", reconnect,
                     "Percent of messages cut by a partition that arrive after it heals")
          ->check(CLI::Range(0.0, 100.0));
  auto* stall_opt = app.add_option("--stall", stall, "Percent of driver steps preceded by a stall")
                        ->check(CLI::Range(0.0, 100.0));
  auto* stall_max_opt = app.add_option("--stall-max-ms", stall_max_ms, "Longest driver stall");
  auto* pauses_opt = app.add_option(
      "--pauses", pauses, "Node pauses (process and app stopped, clock running) per minute");
  auto* app_losses_opt = app.add_option(
      "--app-losses", app_losses,
      "Apps that die or hang beside their running agent, per minute (one at a time); the agent "
      "then neither leads nor stands");
  app.add_option("--unsafe", unsafe,
                 "UNSAFE: undo one fix to see the checker catch it (repeatable): "
                 "late-timeout-now, transfer-in-restart-window, former-leader-votes, "
                 "send-before-publish, send-before-persist (votes and acks leave before their "
                 "fdatasync), partition-is-death (a lost connection is taken for a "
                 "dead process), vote-without-promise (a new leader counts its votes as lease "
                 "acks but the voters promise nothing; shows with --loss 30), "
                 "stop-in-order-while-leading (a stopped leader keeps its lease and still ends its "
                 "connections in order; shows with --stops)")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(instaface::sim::kUnsafeSwitches),
                                                     std::end(instaface::sim::kUnsafeSwitches))));
  auto* flaky_opt = app.add_flag("--flaky-discovery", flaky_discovery,
                                 "Nodes know only a random, changing subset of their peers");
  app.add_flag("--quorum-from-discovery", quorum_from_discovery,
               "UNSAFE: count quorum from the peers a node currently knows (implies "
               "--flaky-discovery); expect two leaders in one term");
  app.add_option("--liveness-bound-ms", liveness_bound_ms,
                 "Longest a connected quorum may go without a leader (default: election_min + "
                 "5 x election_max + 4 x max delay + the longest driver stall)");
  app.add_flag("--json", json, "Print one JSON object instead of text");
  app.add_option("--jobs", jobs, "Worker threads (default: hardware concurrency)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  (void)flaky_opt;

  instaface::sim::SimOptions options;
  options.nodes = nodes;
  options.duration = Nanos(static_cast<int64_t>(duration_s * 1e9));
  options.heartbeat_interval = FromMs(heartbeat_ms);
  options.election_min = FromMs(election_min_ms);
  options.election_max = FromMs(election_max_ms);
  options.faults = *instaface::sim::FaultPreset(faults_name);
  auto& f = options.faults;
  if (*loss_opt) f.loss_percent = loss;
  if (*dup_opt) f.duplicate_percent = duplicate;
  if (*delay_opt) {
    double lo = 0, hi = 0;
    if (!ParseDelay(delay, lo, hi)) {
      std::cerr << "--delay-ms: expected MIN,MAX or MS, got '" << delay << "'\n";
      return 2;
    }
    f.delay_min = FromMs(lo);
    f.delay_max = FromMs(hi);
  }
  if (*delay_min_opt) f.delay_min = FromMs(delay_min_ms);
  if (*delay_max_opt) f.delay_max = FromMs(delay_max_ms);
  if (*delay_min_opt && !*delay_max_opt && f.delay_max < f.delay_min) f.delay_max = f.delay_min;
  if (*partitions_opt) f.partitions_per_minute = partitions;
  if (*crashes_opt) f.crashes_per_minute = crashes;
  if (*transfers_opt) f.transfers_per_minute = transfers;
  if (*stops_opt) f.stops_per_minute = stops;
  if (*drift_opt) f.drift_ppm = drift_ppm;
  if (*slew_opt) f.slew = slew;
  if (*late_opt) f.late_percent = late;
  if (*late_max_opt) f.late_max = FromMs(late_max_ms);
  if (*replays_opt) f.replays_per_minute = replays;
  if (*reconnect_opt) f.reconnect_percent = reconnect;
  if (*stall_opt) f.stall_percent = stall;
  if (*stall_max_opt) f.stall_max = FromMs(stall_max_ms);
  if (*pauses_opt) f.pauses_per_minute = pauses;
  if (*app_losses_opt) f.app_losses_per_minute = app_losses;
  for (const std::string& name : unsafe) options.SetUnsafe(name);
  if (flaky_discovery) f.flaky_discovery = true;
  if (*config_drift_opt) options.config_drift_ppm = config_drift_ppm;
  options.quorum_from_discovery = quorum_from_discovery;
  options.liveness_bound = FromMs(liveness_bound_ms);
  if (const std::string problem = options.Validate(); !problem.empty()) {
    std::cerr << "instaface-sim: " << problem << "\n";
    return 2;
  }
  if (!*seed_opt && seeds == 0) {
    std::cerr << "instaface-sim: --seeds must be at least 1\n";
    return 2;
  }

  instaface::sim::Summary summary;
  if (*seed_opt) {
    // One seed, on this thread, optionally traced.
    std::ostream& out = json ? std::cerr : std::cout;
    instaface::sim::TraceSink sink;
    if (trace) sink = [&out](const std::string& line) { out << line << '\n'; };
    const auto started = std::chrono::steady_clock::now();
    auto result = instaface::sim::RunSeed(options, seed, sink);
    summary.first_seed = seed;
    summary.seeds = 1;
    summary.violation_count = result.violation_count;
    summary.violations = std::move(result.violations);
    summary.elections = result.elections;
    summary.elections_started = result.elections_started;
    summary.leader_crashes = result.leader_crashes;
    summary.unresolved_failovers = result.unresolved_failovers;
    summary.failovers = std::move(result.failovers);
    summary.slowest_failover_seed = seed;
    std::sort(summary.failovers.begin(), summary.failovers.end());
    summary.longest_wait_for_leader = result.longest_wait_for_leader;
    summary.events = result.events;
    summary.messages_sent = result.messages_sent;
    summary.injected = result.injected;
    summary.wall_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (trace) {
      char hash[32];
      std::snprintf(hash, sizeof hash, "%016llx",
                    static_cast<unsigned long long>(result.trace_hash));
      out << "trace hash " << hash << '\n';
    }
  } else {
    summary = instaface::sim::RunSeeds(options, 1, seeds, jobs);
  }

  if (json) {
    std::cout << instaface::sim::SummaryToJson(summary, options).dump(2) << '\n';
  } else {
    std::cout << instaface::sim::SummaryToText(summary, options);
  }
  return summary.violation_count == 0 ? 0 : 1;
}
