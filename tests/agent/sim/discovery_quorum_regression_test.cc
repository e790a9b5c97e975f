// Regression: quorum counted from discovered peers elects two leaders in one term.
//
// Seed 1 (5 nodes, quiet network, flaky discovery, 12 s): at ~10.87 s n1 knows only n2 and n4
// (quorum 2 of 3) and wins term 6 with {n1, n2}; 30 ms later n5 knows only n3 and n4 and wins
// term 6 with {n5, n3}. Two disjoint "majorities", one term, two leaders. With the quorum taken
// from the configured cluster size the same seed is safe, flaky discovery or not.
#include <gtest/gtest.h>

#include "instaface/sim/simulator.h"

namespace instaface::sim {
namespace {

constexpr uint64_t kCounterexampleSeed = 1;

SimOptions CounterexampleOptions() {
  SimOptions options;
  options.nodes = 5;
  options.duration = std::chrono::seconds(12);
  options.faults = *FaultPreset("none");
  return options;
}

bool Has(const SeedResult& result, const char* check) {
  for (const auto& v : result.violations) {
    if (v.check == check) return true;
  }
  return false;
}

TEST(DiscoveryQuorumRegressionTest, QuorumFromDiscoveryElectsTwoLeadersInOneTerm) {
  SimOptions options = CounterexampleOptions();
  options.quorum_from_discovery = true;
  const SeedResult result = RunSeed(options, kCounterexampleSeed);
  EXPECT_TRUE(Has(result, kOneLeaderPerTerm)) << result.violation_count << " violations";
}

TEST(DiscoveryQuorumRegressionTest, ConfiguredQuorumIsSafeOnTheSameSeed) {
  const SeedResult result = RunSeed(CounterexampleOptions(), kCounterexampleSeed);
  EXPECT_EQ(result.violation_count, 0u);
  EXPECT_GE(result.elections, 1u);
}

TEST(DiscoveryQuorumRegressionTest, ConfiguredQuorumIsSafeEvenWithTheSameFlakyDiscovery) {
  SimOptions options = CounterexampleOptions();
  options.faults.flaky_discovery = true;  // the same changing peer lists, quorum from config
  const SeedResult result = RunSeed(options, kCounterexampleSeed);
  EXPECT_EQ(result.violation_count, 0u);
}

}  // namespace
}  // namespace instaface::sim
