#include "instaface/sim/report.h"

#include <algorithm>
#include <cstdio>

namespace instaface::sim {
namespace {

// Enough to diagnose; a broken mode can produce thousands, all of them in the count.
constexpr size_t kMaxJsonViolations = 100;
constexpr size_t kMaxTextViolations = 20;

double Ms(Nanos t) { return static_cast<double>(t.count()) / 1e6; }

}  // namespace

nlohmann::json SummaryToJson(const Summary& s, const SimOptions& o) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& v : s.violations) {
    if (list.size() == kMaxJsonViolations) break;
    list.push_back({{"seed", v.seed},
                    {"time_ms", Ms(v.at)},
                    {"check", v.check},
                    {"description", v.description},
                    {"replay", ReplayCommand(o, v.seed)}});
  }
  const FaultOptions& f = o.faults;
  return {
      {"seeds", {{"first", s.first_seed}, {"count", s.seeds}}},
      {"violations", s.violation_count},
      {"violation_list", list},
      {"elections", s.elections},
      {"elections_started", s.elections_started},
      {"leader_crashes", s.leader_crashes},
      {"failovers", s.failovers.size()},
      {"unresolved_failovers", s.unresolved_failovers},
      {"failover_ms",
       {{"median", Ms(s.FailoverPercentile(50))},
        {"p99", Ms(s.FailoverPercentile(99))},
        {"max", Ms(s.failovers.empty() ? Nanos(0) : s.failovers.back())},
        {"max_seed", s.slowest_failover_seed}}},
      {"liveness",
       {{"bound_ms", Ms(o.EffectiveLivenessBound())},
        {"checked", !(f.flaky_discovery || o.quorum_from_discovery)},
        {"longest_wait_for_leader_ms", Ms(s.longest_wait_for_leader)}}},
      {"events", s.events},
      {"messages_sent", s.messages_sent},
      {"injected",
       {{"driver_stalls", s.injected.stalls},
        {"node_pauses", s.injected.pauses},
        {"app_losses", s.injected.app_losses},
        {"late_messages", s.injected.late_messages},
        {"replays", s.injected.replays},
        {"deaths_seen", s.injected.deaths_seen},
        {"reboots", s.injected.reboots},
        {"lost_saves", s.injected.lost_saves},
        {"clean_stops", s.injected.clean_stops}}},
      {"wall_seconds", s.wall_seconds},
      {"options",
       {{"nodes", o.nodes},
        {"duration_s", static_cast<double>(o.duration.count()) / 1e9},
        {"heartbeat_ms", Ms(o.heartbeat_interval)},
        {"election_min_ms", Ms(o.election_min)},
        {"election_max_ms", Ms(o.election_max)},
        {"loss_percent", f.loss_percent},
        {"duplicate_percent", f.duplicate_percent},
        {"delay_ms", {Ms(f.delay_min), Ms(f.delay_max)}},
        {"partitions_per_minute", f.partitions_per_minute},
        {"crashes_per_minute", f.crashes_per_minute},
        {"transfers_per_minute", f.transfers_per_minute},
        {"stops_per_minute", f.stops_per_minute},
        {"drift_ppm", f.drift_ppm},
        {"slew", f.slew},
        {"late_percent", f.late_percent},
        {"late_max_ms", Ms(f.late_max)},
        {"replays_per_minute", f.replays_per_minute},
        {"reconnect_percent", f.reconnect_percent},
        {"stall_percent", f.stall_percent},
        {"stall_max_ms", Ms(f.stall_max)},
        {"pauses_per_minute", f.pauses_per_minute},
        {"app_losses_per_minute", f.app_losses_per_minute},
        {"unsafe", UnsafeNames(o)},
        {"flaky_discovery", f.flaky_discovery},
        {"quorum_from_discovery", o.quorum_from_discovery}}},
  };
}

std::string SummaryToText(const Summary& s, const SimOptions& o) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line,
                "seeds %llu..%llu, %d nodes, %g s each, %.2f s wall, %llu events\n",
                static_cast<unsigned long long>(s.first_seed),
                static_cast<unsigned long long>(s.first_seed + s.seeds - 1), o.nodes,
                static_cast<double>(o.duration.count()) / 1e9, s.wall_seconds,
                static_cast<unsigned long long>(s.events));
  out += line;
  std::snprintf(line, sizeof line, "elections won %llu (candidacies %llu)\n",
                static_cast<unsigned long long>(s.elections),
                static_cast<unsigned long long>(s.elections_started));
  out += line;
  std::snprintf(line, sizeof line,
                "leader crashes %llu; failover (crash -> survivor leads) over %zu: median %.1f ms, "
                "p99 %.1f ms, max %.1f ms (seed %llu); %llu not measured (crashed node won "
                "again or run ended)\n",
                static_cast<unsigned long long>(s.leader_crashes), s.failovers.size(),
                Ms(s.FailoverPercentile(50)), Ms(s.FailoverPercentile(99)),
                Ms(s.failovers.empty() ? Nanos(0) : s.failovers.back()),
                static_cast<unsigned long long>(s.slowest_failover_seed),
                static_cast<unsigned long long>(s.unresolved_failovers));
  out += line;
  if (o.faults.flaky_discovery || o.quorum_from_discovery) {
    out += "liveness not checked (flaky discovery)\n";
  } else {
    std::snprintf(line, sizeof line,
                  "liveness bound %.1f ms; longest wait for a leader in a connected quorum "
                  "%.1f ms\n",
                  Ms(o.EffectiveLivenessBound()), Ms(s.longest_wait_for_leader));
    out += line;
  }
  std::snprintf(line, sizeof line, "violations: %llu\n",
                static_cast<unsigned long long>(s.violation_count));
  out += line;
  for (size_t i = 0; i < s.violations.size() && i < kMaxTextViolations; ++i) {
    const Violation& v = s.violations[i];
    std::snprintf(line, sizeof line, "  seed %llu at %.3f ms [%s] ",
                  static_cast<unsigned long long>(v.seed), Ms(v.at), v.check.c_str());
    out += line + v.description + "\n    replay: " + ReplayCommand(o, v.seed) + "\n";
  }
  const size_t shown = std::min(s.violations.size(), kMaxTextViolations);
  if (s.violation_count > shown) {
    std::snprintf(line, sizeof line, "  ... %llu more (--json lists up to %zu)\n",
                  static_cast<unsigned long long>(s.violation_count - shown), kMaxJsonViolations);
    out += line;
  }
  return out;
}

}  // namespace instaface::sim
