// The lease clock is CLOCK_BOOTTIME, and readers judge leases and staleness on it rather than on
// another clock (here CLOCK_MONOTONIC_RAW, which neither NTP nor a suspend moves).
#include "instaface/clock.h"

#include <gtest/gtest.h>
#include <time.h>

#include <chrono>
#include <cstdint>

#include "instaface/shm_writer.h"
#include "instaface/view.h"

namespace instaface {
namespace {

using namespace std::chrono_literals;

int64_t Now(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

TEST(LeaseClockTest, IsBootTime) {
  const int64_t before = Now(CLOCK_BOOTTIME);
  const int64_t now = LeaseClockNowNs();
  const int64_t after = Now(CLOCK_BOOTTIME);
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
}

// A lease end and a stamp placed halfway between the two clocks' readings: valid and fresh on
// one clock, expired and stale on the other. The clocks drift apart by the NTP corrections and
// suspends since boot, so on a host where they are still close there is nothing to tell apart.
TEST(LeaseClockTest, ReadersJudgeLeasesAndStalenessOnTheLeaseClock) {
  constexpr int64_t kAtLeastApart = 20'000'000;  // far above the time this test takes
  const int64_t raw = Now(CLOCK_BOOTTIME);
  const int64_t other = Now(CLOCK_MONOTONIC_RAW);
  const int64_t apart = other - raw;
  if (apart < kAtLeastApart && apart > -kAtLeastApart) {
    GTEST_SKIP() << "CLOCK_BOOTTIME and CLOCK_MONOTONIC_RAW are only " << apart
                 << " ns apart on this host";
  }
  const int64_t halfway = raw + apart / 2;
  // With the other clock ahead, the lease holds on the lease clock and not on the other one;
  // with it behind, the other way round.
  const bool raw_says_valid = apart > 0;

  constexpr auto kStaleAfter = 10s;
  shm::Writer writer = shm::Writer::CreateInProcess(kStaleAfter);
  View view = writer.view();
  shm::PublishedState state;
  state.role = Role::kLeader;
  state.term = 4;
  state.lease_until_ns = static_cast<uint64_t>(halfway);
  writer.Publish(state);
  EXPECT_EQ(view.is_leader(), raw_says_valid);
  EXPECT_EQ(view.leadership().has_value(), raw_says_valid);
  EXPECT_EQ(view.snapshot().lease_valid, raw_says_valid);

  // The stamp ages past stale_after at `halfway` on whichever clock reaches it first.
  state.lease_until_ns = static_cast<uint64_t>(raw + 3600'000'000'000LL);
  writer.Publish(state);
  writer.StampLiveness(
      static_cast<uint64_t>(halfway - std::chrono::nanoseconds(kStaleAfter).count()));
  EXPECT_EQ(view.snapshot().stale, !raw_says_valid);
  EXPECT_EQ(view.is_leader(), raw_says_valid);
}

}  // namespace
}  // namespace instaface
