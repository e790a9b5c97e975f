// The simulator as a whole: it replays a seed exactly, does not depend on its thread count,
// injects the faults it claims to, keeps a quiet cluster live with one leader, and its lease
// check catches a core that is told a smaller drift bound than its clocks really have.
#include "instaface/sim/simulator.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "instaface/sim/report.h"

namespace instaface::sim {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

SimOptions AllFaults(Nanos duration = seconds(60)) {
  SimOptions options;
  options.duration = duration;
  options.faults = *FaultPreset("all");
  return options;
}

SimOptions NoFaults(Nanos duration) {
  SimOptions options;
  options.duration = duration;
  options.faults = *FaultPreset("none");
  return options;
}

std::vector<std::string> Trace(const SimOptions& options, uint64_t seed, uint64_t* hash) {
  std::vector<std::string> lines;
  const SeedResult result =
      RunSeed(options, seed, [&lines](const std::string& line) { lines.push_back(line); });
  *hash = result.trace_hash;
  return lines;
}

bool AnyLineHas(const std::vector<std::string>& lines, const std::string& text) {
  for (const auto& line : lines) {
    if (line.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(SimulatorTest, SameSeedAndOptionsReplayTheSameTrace) {
  const SimOptions options = AllFaults(seconds(20));
  uint64_t first_hash = 0, second_hash = 0, other_hash = 0;
  const auto first = Trace(options, 7, &first_hash);
  const auto second = Trace(options, 7, &second_hash);
  ASSERT_GT(first.size(), 100u);
  EXPECT_EQ(first, second);
  EXPECT_EQ(first_hash, second_hash);
  // Tracing only observes: an untraced run of the seed has the same hash.
  EXPECT_EQ(RunSeed(options, 7).trace_hash, first_hash);
  Trace(options, 8, &other_hash);
  EXPECT_NE(other_hash, first_hash);
}

TEST(SimulatorTest, SummaryDoesNotDependOnTheNumberOfThreads) {
  const SimOptions options = AllFaults(seconds(20));
  const Summary one = RunSeeds(options, 1, 24, 1);
  const Summary two = RunSeeds(options, 1, 24, 2);
  EXPECT_EQ(one.events, two.events);
  EXPECT_EQ(one.elections, two.elections);
  EXPECT_EQ(one.leader_crashes, two.leader_crashes);
  EXPECT_EQ(one.failovers, two.failovers);
  EXPECT_EQ(one.violation_count, two.violation_count);
}

TEST(SimulatorTest, AllFaultsPresetInjectsEveryKindOfFault) {
  uint64_t hash = 0;
  std::vector<std::string> lines;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    auto more = Trace(AllFaults(), seed, &hash);
    lines.insert(lines.end(), more.begin(), more.end());
  }
  EXPECT_TRUE(AnyLineHas(lines, "lost on the way"));
  EXPECT_TRUE(AnyLineHas(lines, "partition for"));
  EXPECT_TRUE(AnyLineHas(lines, "partition healed"));
  EXPECT_TRUE(AnyLineHas(lines, "dropped (partition)"));
  EXPECT_TRUE(AnyLineHas(lines, "crash"));
  EXPECT_TRUE(AnyLineHas(lines, "start (incarnation 1"));
  EXPECT_TRUE(AnyLineHas(lines, "asked to transfer leadership: started"));
  EXPECT_TRUE(AnyLineHas(lines, "clock +2000 ppm") || AnyLineHas(lines, "clock -2000 ppm"));
  EXPECT_TRUE(AnyLineHas(lines, "clock now"));
  EXPECT_TRUE(AnyLineHas(lines, "send TimeoutNow"));
  EXPECT_TRUE(AnyLineHas(lines, "driver stalls"));
  EXPECT_TRUE(AnyLineHas(lines, "paused for"));
  EXPECT_TRUE(AnyLineHas(lines, "replay "));
  EXPECT_TRUE(AnyLineHas(lines, "old messages replayed to the restarted node"));
  EXPECT_TRUE(AnyLineHas(lines, "held (partition)"));
  EXPECT_TRUE(AnyLineHas(lines, "process gone"));
  EXPECT_TRUE(AnyLineHas(lines, "(one way: group 1 cannot send)"));
}

TEST(SimulatorTest, QuietClusterElectsOneLeaderAndKeepsIt) {
  const SimOptions options = NoFaults(seconds(30));
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const SeedResult result = RunSeed(options, seed);
    EXPECT_EQ(result.violation_count, 0u) << "seed " << seed;  // includes the liveness check
    EXPECT_EQ(result.elections, 1u) << "seed " << seed;
    EXPECT_GT(result.longest_wait_for_leader, Nanos(0)) << "seed " << seed;
    EXPECT_LE(result.longest_wait_for_leader, options.EffectiveLivenessBound());
  }
}

TEST(SimulatorTest, EveryLeaderCrashOnAQuietNetworkFailsOverOnTheEvidenceOfDeath) {
  SimOptions options = NoFaults(seconds(60));
  options.faults.crashes_per_minute = 6;
  const Summary summary = RunSeeds(options, 1, 50, 0);
  EXPECT_EQ(summary.violation_count, 0u);
  ASSERT_GT(summary.failovers.size(), 20u);
  // The survivors see the process gone and elect at once: no one waits out the dead leader's
  // lease (election_min after its last heartbeat), let alone an election timeout. With a fixed
  // 1 ms delay: the FIN and a refused redial, a PreVote and a vote round, about 7 ms. Only a
  // quorum that needs a voter still in its restart window (it cannot know whose lease it acked
  // before it went down, so no evidence frees it) waits that window out.
  const auto fast = std::count_if(summary.failovers.begin(), summary.failovers.end(),
                                  [&](Nanos f) { return f < options.election_min / 10; });
  EXPECT_GE(fast * 10, static_cast<int64_t>(summary.failovers.size()) * 9);
  EXPECT_LE(summary.failovers[summary.failovers.size() / 2], milliseconds(10));
  EXPECT_LE(summary.failovers.back(), options.EffectiveLivenessBound());
  EXPECT_GT(summary.injected.deaths_seen, summary.failovers.size());
}

TEST(SimulatorTest, PausesAndPartitionsAloneNeverTellOfADeath) {
  SimOptions options = NoFaults(seconds(60));
  options.faults.pauses_per_minute = 6;
  options.faults.partitions_per_minute = 6;
  const Summary summary = RunSeeds(options, 1, 50, 0);
  EXPECT_EQ(summary.violation_count, 0u);
  EXPECT_EQ(summary.injected.deaths_seen, 0u);
  // ... which is what keeps the leases apart: told otherwise, the cores overlap them.
  options.unsafe_partition_is_death = true;
  EXPECT_GT(RunSeeds(options, 1, 50, 0).violation_count, 0u);
}

TEST(SimulatorTest, LeaseCheckCatchesCoresToldTooSmallADriftBound) {
  SimOptions options = AllFaults(seconds(60));
  options.faults.drift_ppm = 100000;  // 10 %
  options.config_drift_ppm = 0;       // the cores believe clocks are perfect
  const Summary broken = RunSeeds(options, 1, 100, 0);
  bool lease_overlap = false;
  for (const auto& v : broken.violations) lease_overlap |= v.check == kLeaseOverlap;
  EXPECT_TRUE(lease_overlap) << broken.violation_count << " violations, none a lease overlap";

  options.config_drift_ppm.reset();  // told the truth, the same clocks are safe
  EXPECT_EQ(RunSeeds(options, 1, 100, 0).violation_count, 0u);
}

TEST(SimulatorTest, JsonReportCarriesCountsAndReplayCommands) {
  SimOptions options = NoFaults(seconds(15));
  options.quorum_from_discovery = true;
  const Summary summary = RunSeeds(options, 1, 4, 1);
  const auto json = SummaryToJson(summary, options);
  EXPECT_EQ(json["violations"].get<uint64_t>(), summary.violation_count);
  ASSERT_GT(summary.violation_count, 0u);
  const std::string replay = json["violation_list"][0]["replay"];
  EXPECT_NE(replay.find("--seed " + std::to_string(summary.violations[0].seed) + " --trace"),
            std::string::npos);
  EXPECT_NE(replay.find("--quorum-from-discovery"), std::string::npos);
  EXPECT_TRUE(json["failover_ms"].contains("median"));
  EXPECT_TRUE(json["failover_ms"].contains("p99"));
  EXPECT_TRUE(json["failover_ms"].contains("max"));
}

}  // namespace
}  // namespace instaface::sim
