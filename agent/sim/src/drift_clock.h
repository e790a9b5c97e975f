// A node's monotonic clock in the simulation: an arbitrary epoch plus true time scaled by a
// constant rate error. Exact integer math, so conversions replay bit for bit.
// Thread safety: immutable after construction.
#ifndef INSTAFACE_SIM_DRIFT_CLOCK_H_
#define INSTAFACE_SIM_DRIFT_CLOCK_H_

#include <cstdint>

#include "instaface/election/message.h"

namespace instaface::sim {

class DriftClock {
 public:
  using Nanos = election::Nanos;

  DriftClock() = default;
  // local(t) = epoch + t + floor(t * ppm / 1e6); ppm may be negative (a slow clock).
  DriftClock(Nanos epoch, int32_t ppm) : epoch_(epoch.count()), ppm_(ppm) {}

  // The node's reading at true time `t` (t >= 0). Non-decreasing in t.
  Nanos Local(Nanos t) const {
    const __int128 scaled = static_cast<__int128>(t.count()) * ppm_;
    __int128 drift = scaled / 1000000;
    if (scaled < 0 && drift * 1000000 != scaled) --drift;  // floor, not truncation
    return Nanos(static_cast<int64_t>(epoch_ + t.count() + drift));
  }

  // The earliest true time at which the node's clock reads at least `local`.
  Nanos TrueAt(Nanos local) const {
    if (Local(Nanos(0)) >= local) return Nanos(0);
    const __int128 delta = static_cast<__int128>(local.count() - epoch_);
    int64_t t = static_cast<int64_t>(delta * 1000000 / (1000000 + ppm_));
    if (t < 0) t = 0;
    while (Local(Nanos(t)) < local) ++t;
    while (t > 0 && Local(Nanos(t - 1)) >= local) --t;
    return Nanos(t);
  }

  int32_t ppm() const { return ppm_; }

 private:
  int64_t epoch_ = 0;
  int32_t ppm_ = 0;
};

}  // namespace instaface::sim

#endif  // INSTAFACE_SIM_DRIFT_CLOCK_H_
