// Rejects replayed or stale messages, per sender, in bounded memory.
//
// Each authenticated message carries the sender's CLOCK_REALTIME timestamp and a random nonce.
// A message is accepted when:
//   - its timestamp is within `max_skew` of the receiver's clock (bounds what an attacker can
//     replay to a node that just restarted and remembers nothing), and
//   - it is not older than `window` behind the newest timestamp accepted from that sender, and
//   - its (timestamp, nonce) has not been accepted before from that sender.
// Remembered pairs older than the window are forgotten; at most `max_entries_per_sender` pairs
// and `max_senders` senders are kept (the oldest go first), so memory stays bounded even under
// a flood of authenticated traffic.
//
// Thread safety: Check() may be called from any thread; an internal mutex guards the state.
#ifndef INSTAFACE_WIRE_REPLAY_WINDOW_H_
#define INSTAFACE_WIRE_REPLAY_WINDOW_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "instaface/wire/codec.h"

namespace instaface::wire {

struct ReplayWindowOptions {
  std::chrono::nanoseconds window = std::chrono::seconds(5);
  std::chrono::nanoseconds max_skew = std::chrono::seconds(30);
  size_t max_entries_per_sender = 4096;
  size_t max_senders = 1024;
};

class ReplayWindow {
 public:
  explicit ReplayWindow(ReplayWindowOptions options = {});

  // Returns no value when the message is fresh (and records it), else kReplayed or kTooOld.
  // `now_realtime_ns` is the receiver's CLOCK_REALTIME.
  std::optional<RejectReason> Check(const std::string& sender, uint64_t timestamp_ns,
                                    uint64_t nonce, uint64_t now_realtime_ns);

  size_t senders() const;

 private:
  struct Sender {
    uint64_t newest = 0;
    std::set<std::pair<uint64_t, uint64_t>> seen;  // (timestamp, nonce), ordered by time
    uint64_t last_use = 0;
  };
  void EvictSenderIfFull();  // must hold mu_

  const ReplayWindowOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Sender> senders_;  // guarded by mu_
  uint64_t use_clock_ = 0;                 // guarded by mu_
};

}  // namespace instaface::wire

#endif  // INSTAFACE_WIRE_REPLAY_WINDOW_H_
