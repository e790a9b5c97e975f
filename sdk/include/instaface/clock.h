// The lease clock: the one clock in which the shared-memory record's times are written and
// read (lease_until_ns, liveness_ns), by the agent, its election core, the writer and every
// reader. Anything that computes a lease end or a liveness stamp must take it from here.
//
// It is CLOCK_BOOTTIME, because a lease is only as safe as the bound on its clock's rate and
// the clock must not stop while true time runs on. CLOCK_BOOTTIME keeps counting while the host
// is suspended, so a suspended leader's lease ends in true time and its app wakes up to an
// expired lease; CLOCK_MONOTONIC and CLOCK_MONOTONIC_RAW stop. NTP slews it, as it slews
// CLOCK_MONOTONIC: Linux lets adjtimex move the rate by ±10 % through the tick plus ±500 ppm
// through the frequency (chrony slews by up to 83 333 ppm by default), so the election's drift
// bound (max_clock_drift_ppm, the agent's --max-clock-drift-ppm) defaults to that worst case;
// docs/election.md weighs the choice. It counts from boot, so it is one clock for every process
// and container on a host (one kernel), and the vDSO serves it without a system call. There is
// no coarse variant of it, so readers always read it precisely.
//
// Thread safety: callable from any thread.
#ifndef INSTAFACE_CLOCK_H_
#define INSTAFACE_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace instaface {

// Nanoseconds of CLOCK_BOOTTIME. Should the clock ever be unavailable (kernels before 2.6.39),
// this reads as the end of time: every lease has ended and every stamp is stale, so
// nothing leads.
inline int64_t LeaseClockNowNs() noexcept {
  timespec ts;
  if (clock_gettime(CLOCK_BOOTTIME, &ts) != 0) return INT64_MAX;
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<int64_t>(ts.tv_nsec);
}

}  // namespace instaface

#endif  // INSTAFACE_CLOCK_H_
