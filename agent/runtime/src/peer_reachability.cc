#include "status_sinks.h"

namespace instaface::runtime {

std::vector<PeerReachability> Reachability(const Driver& driver,
                                           const transport::Transport& transport, Nanos now,
                                           Nanos window) {
  const auto counters = transport.peer_counters();
  std::vector<PeerReachability> out;
  for (const election::PeerProgress& p : driver.core().progress()) {
    Nanos heard = p.last_heard;
    for (const transport::PeerCounters& c : counters) {
      if (c.id == p.id) heard = std::max(heard, Nanos(c.last_ack_ns));
    }
    PeerReachability peer;
    peer.id = p.id;
    if (auto it = driver.peers().find(p.id); it != driver.peers().end()) {
      peer.app_address = it->second.app;
    }
    if (heard.count() > 0) {
      peer.last_heard_ago = std::max(Nanos(0), now - heard);
      peer.reachable = *peer.last_heard_ago < window;
    }
    out.push_back(std::move(peer));
  }
  return out;
}

}  // namespace instaface::runtime
