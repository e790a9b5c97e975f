// The lease clock: the one clock in which the shared-memory record's times are written and
// read (lease_until_ns, liveness_ns), by the agent, its election core, the writer and every
// reader. Anything that computes a lease end or a liveness stamp must take it from here.
//
// It is CLOCK_MONOTONIC_RAW, because a lease is only as safe as the bound on its clock's rate.
// CLOCK_MONOTONIC is slewed by NTP: the kernel lets adjtimex move its frequency by ±500 ppm and
// its tick by ±10 %, and chrony slews by up to 83 333 ppm by default, so a lease margin of a
// few hundred or a thousand ppm does not hold on it. CLOCK_MONOTONIC_RAW is never adjusted: its
// rate error is the oscillator's (tens of ppm), which is what the election's drift margin
// (max_clock_drift_ppm) bounds. Like CLOCK_MONOTONIC it counts from boot, so it is one clock
// for every process and container on a host (one kernel), and the vDSO serves it without a
// system call. There is no coarse variant of it, so readers always read it precisely.
//
// Thread safety: callable from any thread.
#ifndef INSTAFACE_CLOCK_H_
#define INSTAFACE_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace instaface {

// Nanoseconds of CLOCK_MONOTONIC_RAW. Should the clock ever be unavailable (kernels before
// 2.6.28), this reads as the end of time: every lease has ended and every stamp is stale, so
// nothing leads.
inline int64_t LeaseClockNowNs() noexcept {
  timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC_RAW, &ts) != 0) return INT64_MAX;
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<int64_t>(ts.tv_nsec);
}

}  // namespace instaface

#endif  // INSTAFACE_CLOCK_H_
