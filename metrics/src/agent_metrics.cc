#include "instaface/metrics/agent_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace instaface::metrics {

namespace {

prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& r, const char* name,
                                                   const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

prometheus::Family<prometheus::Counter>& CounterFamily(prometheus::Registry& r, const char* name,
                                                       const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}

// Failover on the seed's timings takes 0.75-2 s, with tuned ones well under 0.5 s; the buckets
// resolve both.
const prometheus::Histogram::BucketBoundaries& ElectionBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0};
  return kBuckets;
}

}  // namespace

AgentMetrics::AgentMetrics(prometheus::Registry& registry)
    : term_(GaugeFamily(registry, "instaface_term", "Current election term of this node").Add({})),
      role_(GaugeFamily(registry, "instaface_role",
                        "1 for this node's current role, 0 for the others")),
      leader_changes_(CounterFamily(registry, "instaface_leader_changes_total",
                                    "Times the leader known to this node changed")
                          .Add({})),
      elections_started_(CounterFamily(registry, "instaface_elections_started_total",
                                       "Elections this node started as a candidate")
                             .Add({})),
      elections_won_(
          CounterFamily(registry, "instaface_elections_won_total", "Elections this node won")
              .Add({})),
      votes_granted_(CounterFamily(registry, "instaface_votes_granted_total",
                                   "Votes this node granted to candidates")
                         .Add({})),
      leader_deaths_seen_(CounterFamily(registry, "instaface_leader_deaths_seen_total",
                                        "Times the process of this node's leader was seen to end")
                              .Add({})),
      early_elections_(CounterFamily(registry, "instaface_early_elections_total",
                                     "Elections started on a leader's death, before the timeout")
                           .Add({})),
      heartbeats_sent_(CounterFamily(registry, "instaface_heartbeats_sent_total",
                                     "Heartbeats sent by this node as leader, per peer")),
      heartbeats_failed_(CounterFamily(registry, "instaface_heartbeats_failed_total",
                                       "Heartbeats that timed out or failed, per peer")),
      peers_registered_(GaugeFamily(registry, "instaface_peers_registered",
                                    "Live nodes registered in Redis, this one included")
                            .Add({})),
      peers_reachable_(GaugeFamily(registry, "instaface_peers_reachable",
                                   "Peers that answered this node recently")
                           .Add({})),
      election_duration_(prometheus::BuildHistogram()
                             .Name("instaface_election_duration_seconds")
                             .Help("From standing for election to winning or giving up")
                             .Register(registry)
                             .Add({}, ElectionBuckets())),
      redis_errors_(CounterFamily(registry, "instaface_redis_errors_total",
                                  "Failed Redis connects and commands")
                        .Add({})),
      messages_rejected_(CounterFamily(registry, "instaface_messages_rejected_total",
                                       "Peer messages dropped, by reason")),
      lease_remaining_(GaugeFamily(registry, "instaface_lease_remaining_seconds",
                                   "Time left on this node's leader lease; 0 when none")
                           .Add({})),
      unplugged_(GaugeFamily(registry, "instaface_unplugged",
                             "1 while this node is unplugged by fault injection")
                     .Add({})) {
  // Every role series exists from the start, so a dashboard sees 0 rather than nothing.
  for (const char* role : kRoles) role_.Add({{"role", role}}).Set(0);
  role_.Add({{"role", "follower"}}).Set(1);
}

void AgentMetrics::SetTerm(uint64_t term) { term_.Set(static_cast<double>(term)); }

void AgentMetrics::SetRole(std::string_view role) {
  std::string name(role);
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  bool known = false;
  for (const char* r : kRoles) known = known || name == r;
  if (!known) return;
  for (const char* r : kRoles) role_.Add({{"role", r}}).Set(name == r ? 1 : 0);
}

void AgentMetrics::LeaderChanged() { leader_changes_.Increment(); }
void AgentMetrics::ElectionStarted() { elections_started_.Increment(); }
void AgentMetrics::ElectionWon() { elections_won_.Increment(); }
void AgentMetrics::VoteGranted() { votes_granted_.Increment(); }
void AgentMetrics::LeaderDeathSeen() { leader_deaths_seen_.Increment(); }
void AgentMetrics::EarlyElectionStarted() { early_elections_.Increment(); }

void AgentMetrics::HeartbeatSent(const std::string& peer) {
  heartbeats_sent_.Add({{"peer", peer}}).Increment();
}

void AgentMetrics::HeartbeatFailed(const std::string& peer) {
  heartbeats_failed_.Add({{"peer", peer}}).Increment();
}

void AgentMetrics::SetPeersRegistered(size_t count) {
  peers_registered_.Set(static_cast<double>(count));
}
void AgentMetrics::SetPeersReachable(size_t count) {
  peers_reachable_.Set(static_cast<double>(count));
}

void AgentMetrics::ObserveElectionDuration(double seconds) { election_duration_.Observe(seconds); }

void AgentMetrics::RedisError() {
  std::lock_guard<std::mutex> lock(redis_sync_mu_);
  ++redis_errors_synced_;
  redis_errors_.Increment();
}

void AgentMetrics::SyncRedisErrors(uint64_t total) {
  std::lock_guard<std::mutex> lock(redis_sync_mu_);
  if (total <= redis_errors_synced_) return;
  redis_errors_.Increment(static_cast<double>(total - redis_errors_synced_));
  redis_errors_synced_ = total;
}

void AgentMetrics::MessageRejected(const std::string& reason) {
  messages_rejected_.Add({{"reason", reason}}).Increment();
}

void AgentMetrics::SetLeaseRemaining(double seconds) {
  lease_remaining_.Set(seconds > 0 ? seconds : 0);
}

void AgentMetrics::SetUnplugged(bool unplugged) { unplugged_.Set(unplugged ? 1 : 0); }

}  // namespace instaface::metrics
