// The simulated clock: drift stays within its rate, and converting a local reading back to true
// time finds the first instant the clock shows it (what the lease check relies on).
#include "drift_clock.h"

#include <gtest/gtest.h>

namespace instaface::sim {
namespace {

using election::Nanos;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(DriftClockTest, FastClockGainsItsPpmOverASecond) {
  const DriftClock clock(seconds(100), 500);
  EXPECT_EQ(clock.Local(seconds(0)), seconds(100));
  EXPECT_EQ(clock.Local(seconds(1)) - clock.Local(seconds(0)), Nanos(1000500000));
}

TEST(DriftClockTest, SlowClockLosesItsPpmAndNeverGoesBackwards) {
  const DriftClock clock(seconds(7), -1000);
  EXPECT_EQ(clock.Local(seconds(1)) - clock.Local(seconds(0)), Nanos(999000000));
  Nanos previous = clock.Local(Nanos(0));
  for (int64_t t = 1; t < 5000; ++t) {
    const Nanos now = clock.Local(Nanos(t));
    ASSERT_GE(now, previous) << "at " << t;
    previous = now;
  }
}

TEST(DriftClockTest, TrueAtIsTheFirstInstantTheClockReachesAReading) {
  for (int32_t ppm : {-100000, -777, 0, 1, 333, 100000}) {
    const DriftClock clock(milliseconds(123456), ppm);
    for (int64_t local_ms : {123456, 123457, 124000, 190000}) {
      const Nanos local = milliseconds(local_ms) + Nanos(17);
      const Nanos t = clock.TrueAt(local);
      EXPECT_GE(clock.Local(t), local) << ppm << " ppm, " << local_ms;
      if (t > Nanos(0)) {
        EXPECT_LT(clock.Local(t - Nanos(1)), local) << ppm << " ppm";
      }
    }
  }
}

TEST(DriftClockTest, ReadingsBeforeTheEpochMapToTimeZero) {
  const DriftClock clock(seconds(5), 250);
  EXPECT_EQ(clock.TrueAt(seconds(1)), Nanos(0));
}

}  // namespace
}  // namespace instaface::sim
