// The simulator's random source: xoshiro256** seeded through splitmix64, with its own
// distributions so that a seed replays the same run with any standard library.
// Not thread-safe; each simulated world owns its generators.
#ifndef INSTAFACE_SIM_SIM_RANDOM_H_
#define INSTAFACE_SIM_SIM_RANDOM_H_

#include <cmath>
#include <cstdint>

namespace instaface::sim {

inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Mixes several values into one seed, so each node incarnation gets its own stream.
inline uint64_t MixSeed(uint64_t a, uint64_t b, uint64_t c = 0) {
  uint64_t s = a;
  uint64_t x = SplitMix64(s);
  s = x ^ b;
  x = SplitMix64(s);
  s = x ^ c;
  return SplitMix64(s);
}

class SimRandom {
 public:
  explicit SimRandom(uint64_t seed) {
    for (auto& word : s_) word = SplitMix64(seed);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [lo, hi], both included. The modulo bias is below 2^-40 for the ranges used here.
  int64_t Between(int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
    return lo + static_cast<int64_t>(Next() % span);
  }
  bool Percent(double percent) { return percent > 0 && Unit() * 100.0 < percent; }
  // Exponential inter-arrival time for a Poisson process of `rate` per unit.
  double Exponential(double rate) { return -std::log(1.0 - Unit()) / rate; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace instaface::sim

#endif  // INSTAFACE_SIM_SIM_RANDOM_H_
