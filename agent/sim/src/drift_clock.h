// A node's clock in the simulation: an arbitrary epoch plus true time scaled by a rate error
// that may change over time (NTP slewing it, a crystal warming up), always within the bound the
// run allows. Piecewise linear, exact integer math, so conversions replay bit for bit.
// Thread safety: none; one simulated world owns it.
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
  DriftClock(Nanos epoch, int32_t ppm) : local0_(epoch.count()), ppm_(ppm) {}

  // The node's reading at true time `t`, for t at or after the last rate change. Non-decreasing.
  Nanos Local(Nanos t) const {
    const int64_t dt = t.count() - t0_;
    const __int128 scaled = static_cast<__int128>(dt) * ppm_;
    __int128 drift = scaled / 1000000;
    if (scaled < 0 && drift * 1000000 != scaled) --drift;  // floor, not truncation
    return Nanos(static_cast<int64_t>(local0_ + dt + drift));
  }

  // The earliest true time at which the clock reads at least `local`, if the rate stays as it
  // is (the last rate change or time zero, if it reads that already).
  Nanos TrueAt(Nanos local) const {
    if (Local(Nanos(t0_)) >= local) return Nanos(t0_);
    const __int128 delta = static_cast<__int128>(local.count() - local0_);
    int64_t t = t0_ + static_cast<int64_t>(delta * 1000000 / (1000000 + ppm_));
    if (t < t0_) t = t0_;
    while (Local(Nanos(t)) < local) ++t;
    while (t > t0_ && Local(Nanos(t - 1)) >= local) --t;
    return Nanos(t);
  }

  // From true time `t` on, the clock runs at `ppm`.
  void SetRate(Nanos t, int32_t ppm) {
    local0_ = Local(t).count();
    t0_ = t.count();
    ppm_ = ppm;
  }

  int32_t ppm() const { return ppm_; }

 private:
  int64_t t0_ = 0;      // true time of the last rate change
  int64_t local0_ = 0;  // the reading then
  int32_t ppm_ = 0;
};

}  // namespace instaface::sim

#endif  // INSTAFACE_SIM_DRIFT_CLOCK_H_
