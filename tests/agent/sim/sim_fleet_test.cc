// The bar: thousands of seeds x 5 nodes x 60 simulated seconds under every fault
// (loss, duplication, delay and reordering, partitions, crashes with restarts, transfers, clock
// drift) and not one invariant violated. Runs on all cores; takes seconds, not minutes.
#include <gtest/gtest.h>

#include "instaface/sim/report.h"
#include "instaface/sim/simulator.h"

#ifndef INSTAFACE_SIM_FLEET_SEEDS
#define INSTAFACE_SIM_FLEET_SEEDS 2000
#endif

namespace instaface::sim {
namespace {

TEST(SimFleetTest, AllFaultsFiveNodesSixtySecondsNoViolations) {
  SimOptions options;
  options.nodes = 5;
  options.duration = std::chrono::seconds(60);
  options.faults = *FaultPreset("all");
  const uint64_t seeds = INSTAFACE_SIM_FLEET_SEEDS;
  const Summary summary = RunSeeds(options, 1, seeds, 0);
  EXPECT_EQ(summary.violation_count, 0u) << SummaryToText(summary, options);
  // The faults really happened: leaders crashed and were replaced many times over.
  EXPECT_GT(summary.leader_crashes, seeds / 2);
  EXPECT_GT(summary.failovers.size(), seeds / 2);
  EXPECT_GT(summary.elections, seeds);
  std::printf("%s", SummaryToText(summary, options).c_str());
}

}  // namespace
}  // namespace instaface::sim
