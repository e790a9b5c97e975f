// AgentMetrics: the instaface-agent's Prometheus metrics (DESIGN.md "Metrics"), registered in a
// caller's registry. The runtime calls these from its driver thread as the election moves.
//
//   instaface_term                              gauge    the current term
//   instaface_role{role}                        gauge    1 for the current role, 0 for the others
//   instaface_leader_changes_total              counter  times the known leader changed
//   instaface_elections_started_total           counter  candidacies (real, not pre-votes)
//   instaface_elections_won_total               counter
//   instaface_votes_granted_total               counter
//   instaface_leader_deaths_seen_total          counter  the leader's process seen to end
//   instaface_early_elections_total             counter  PreVotes started on that evidence
//   instaface_heartbeats_sent_total{peer}       counter
//   instaface_heartbeats_failed_total{peer}     counter  timed out or refused
//   instaface_peers_registered                  gauge    live members in Redis, self included
//   instaface_peers_reachable                   gauge    peers that answered recently
//   instaface_election_duration_seconds         histogram  from standing to winning or giving up
//   instaface_redis_errors_total                counter
//   instaface_messages_rejected_total{reason}   counter  failed to decode or authenticate
//   instaface_lease_remaining_seconds           gauge    0 unless leading with a valid lease
//   instaface_unplugged                         gauge    1 while unplugged (fault injection)
//
// Labels stay low-cardinality: peer is a configured node id, reason a fixed word.
//
// Thread safety: every method may be called from any thread (prometheus-cpp metrics are atomic).
#ifndef INSTAFACE_METRICS_AGENT_METRICS_H_
#define INSTAFACE_METRICS_AGENT_METRICS_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace instaface::metrics {

class AgentMetrics {
 public:
  // Roles that instaface_role knows; others are ignored by SetRole.
  static constexpr const char* kRoles[] = {"follower", "pre_candidate", "candidate", "leader"};

  // `registry` must outlive this object.
  explicit AgentMetrics(prometheus::Registry& registry);

  void SetTerm(uint64_t term);
  // One of kRoles; a "-" is read as "_" ("pre-candidate").
  void SetRole(std::string_view role);
  void LeaderChanged();
  void ElectionStarted();
  void ElectionWon();
  void VoteGranted();
  void LeaderDeathSeen();
  void EarlyElectionStarted();
  void HeartbeatSent(const std::string& peer);
  void HeartbeatFailed(const std::string& peer);
  void SetPeersRegistered(size_t count);
  void SetPeersReachable(size_t count);
  void ObserveElectionDuration(double seconds);
  void RedisError();
  // Brings instaface_redis_errors_total up to `total` (e.g. RedisDiscovery::redis_errors());
  // a smaller total is ignored.
  void SyncRedisErrors(uint64_t total);
  void MessageRejected(const std::string& reason);
  void SetLeaseRemaining(double seconds);
  void SetUnplugged(bool unplugged);

 private:
  prometheus::Gauge& term_;
  prometheus::Family<prometheus::Gauge>& role_;
  prometheus::Counter& leader_changes_;
  prometheus::Counter& elections_started_;
  prometheus::Counter& elections_won_;
  prometheus::Counter& votes_granted_;
  prometheus::Counter& leader_deaths_seen_;
  prometheus::Counter& early_elections_;
  prometheus::Family<prometheus::Counter>& heartbeats_sent_;
  prometheus::Family<prometheus::Counter>& heartbeats_failed_;
  prometheus::Gauge& peers_registered_;
  prometheus::Gauge& peers_reachable_;
  prometheus::Histogram& election_duration_;
  prometheus::Counter& redis_errors_;
  prometheus::Family<prometheus::Counter>& messages_rejected_;
  prometheus::Gauge& lease_remaining_;
  prometheus::Gauge& unplugged_;

  std::mutex redis_sync_mu_;
  uint64_t redis_errors_synced_ = 0;  // guarded by redis_sync_mu_
};

}  // namespace instaface::metrics

#endif  // INSTAFACE_METRICS_AGENT_METRICS_H_
