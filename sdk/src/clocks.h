// The SDK's two clocks, each with one job.
//
// The lease clock (instaface/clock.h: CLOCK_BOOTTIME) for everything in the record:
// lease ends, liveness stamps, staleness. Readers read it in full precision on every call; the
// coarse clock that layout version 1 allowed is gone, since no coarse variant of the boot-time
// clock exists and mixing clocks is how a lease outlives its bound.
//
// CLOCK_MONOTONIC only for how long a wait sleeps: FUTEX_WAIT_BITSET takes an absolute deadline
// on CLOCK_MONOTONIC (or CLOCK_REALTIME) and knows no boot-time clock. A slewed wait only wakes a
// little early or late, and every waiter re-reads the record when it wakes.
#ifndef INSTAFACE_SDK_SRC_CLOCKS_H_
#define INSTAFACE_SDK_SRC_CLOCKS_H_

#include <time.h>

#include <cstdint>

#include "instaface/clock.h"

namespace instaface::internal {

// The lease clock as the record stores it. It counts from boot, so it is never negative.
inline uint64_t LeaseNowNs() { return static_cast<uint64_t>(LeaseClockNowNs()); }

// CLOCK_MONOTONIC, for futex deadlines only.
inline uint64_t MonotonicNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// Stale when the lease clock has moved more than stale_after past the stamp. A stamp from the
// future (a writer's clock read after ours) is fresh.
inline bool IsStale(uint64_t now_ns, uint64_t liveness_ns, uint64_t stale_after_ns) {
  return now_ns > liveness_ns && now_ns - liveness_ns > stale_after_ns;
}

}  // namespace instaface::internal

#endif  // INSTAFACE_SDK_SRC_CLOCKS_H_
