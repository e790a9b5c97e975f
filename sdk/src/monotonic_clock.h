// The two clocks of the record. Liveness stamps and lease ends are CLOCK_MONOTONIC (one clock
// for every container of a pod). is_leader() reads CLOCK_MONOTONIC_COARSE, which the vDSO
// serves several times faster, on its fast path.
//
// The coarse clock never leads the precise one, but how far it lags is not bounded by its
// resolution in practice: on the 2-vCPU VMs this project runs on (clock_getres says 4 ms) it
// lagged 3 to 7 ms in steady state and up to 19 ms under load, since it only advances when the
// timekeeping tick runs. Subtracting the resolution from the lease end (the writer does) is
// therefore not enough on its own. The fast path only answers "leader" when the lease end and
// the staleness limit are both more than kCoarseLagGuardNs away on the coarse clock; closer to
// either edge it decides with CLOCK_MONOTONIC. A healthy leader renews its lease every
// heartbeat, far from the edge, so the precise clock is only read as a lease runs out.
#ifndef INSTAFACE_SDK_SRC_MONOTONIC_CLOCK_H_
#define INSTAFACE_SDK_SRC_MONOTONIC_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace instaface::internal {

inline uint64_t ToNs(const timespec& ts) {
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t MonotonicNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ToNs(ts);
}

inline uint64_t CoarseNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return ToNs(ts);
}

// The largest lag of the coarse clock that the fast path tolerates: five times the worst seen.
inline constexpr uint64_t kCoarseLagGuardNs = 100'000'000;

inline uint64_t CoarseResolutionNs() {
  timespec ts;
  if (clock_getres(CLOCK_MONOTONIC_COARSE, &ts) != 0) return 10000000;  // assume HZ=100
  return ToNs(ts);
}

// Stale when the clock has moved more than stale_after past the stamp. The coarse clock may
// read a little behind a fresh precise stamp; that is not stale.
inline bool IsStale(uint64_t now_ns, uint64_t liveness_ns, uint64_t stale_after_ns) {
  return now_ns > liveness_ns && now_ns - liveness_ns > stale_after_ns;
}

}  // namespace instaface::internal

#endif  // INSTAFACE_SDK_SRC_MONOTONIC_CLOCK_H_
