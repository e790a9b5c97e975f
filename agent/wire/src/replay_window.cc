#include "instaface/wire/replay_window.h"

#include <limits>

namespace instaface::wire {

ReplayWindow::ReplayWindow(ReplayWindowOptions options) : options_(options) {}

std::optional<RejectReason> ReplayWindow::Check(const std::string& sender, uint64_t timestamp_ns,
                                                uint64_t nonce, uint64_t now_realtime_ns) {
  const uint64_t skew = static_cast<uint64_t>(options_.max_skew.count());
  const uint64_t window = static_cast<uint64_t>(options_.window.count());
  const uint64_t distance = timestamp_ns > now_realtime_ns ? timestamp_ns - now_realtime_ns
                                                           : now_realtime_ns - timestamp_ns;
  if (distance > skew) return RejectReason::kTooOld;

  std::lock_guard<std::mutex> lock(mu_);
  auto it = senders_.find(sender);
  if (it == senders_.end()) {
    EvictSenderIfFull();
    it = senders_.emplace(sender, Sender{}).first;
  }
  Sender& s = it->second;
  s.last_use = ++use_clock_;
  if (s.newest > window && timestamp_ns < s.newest - window) return RejectReason::kTooOld;
  const auto key = std::make_pair(timestamp_ns, nonce);
  if (s.seen.count(key) != 0) return RejectReason::kReplayed;
  // A full set drops its oldest pair; a message older than every remembered pair is then
  // refused, so forgetting can never let a replay through.
  if (s.seen.size() >= options_.max_entries_per_sender) {
    if (key < *s.seen.begin()) return RejectReason::kTooOld;
    s.seen.erase(s.seen.begin());
  }
  s.seen.insert(key);
  if (timestamp_ns > s.newest) {
    s.newest = timestamp_ns;
    const uint64_t horizon = s.newest > window ? s.newest - window : 0;
    while (!s.seen.empty() && s.seen.begin()->first < horizon) s.seen.erase(s.seen.begin());
  }
  return std::nullopt;
}

void ReplayWindow::EvictSenderIfFull() {
  if (senders_.size() < options_.max_senders) return;
  auto oldest = senders_.begin();
  for (auto it = senders_.begin(); it != senders_.end(); ++it) {
    if (it->second.last_use < oldest->second.last_use) oldest = it;
  }
  senders_.erase(oldest);
}

size_t ReplayWindow::senders() const {
  std::lock_guard<std::mutex> lock(mu_);
  return senders_.size();
}

}  // namespace instaface::wire
