#include "status_sinks.h"

namespace instaface::runtime {

MetricsSink::MetricsSink(metrics::AgentMetrics& metrics, const transport::Transport& transport,
                         const discovery::RedisDiscovery* discovery, Nanos reachable_window)
    : metrics_(metrics),
      transport_(transport),
      discovery_(discovery),
      reachable_window_(reachable_window) {
  metrics_.SetTerm(0);
  metrics_.SetRole(election::RoleName(election::Role::kFollower));
}

void MetricsSink::Publish(const PublishedStatus& status) {
  const election::Status& s = status.election;
  last_ = s;
  metrics_.SetTerm(s.term);
  metrics_.SetRole(election::RoleName(s.role));
  metrics_.SetUnplugged(s.unplugged);
  const bool campaigning =
      s.role == election::Role::kCandidate || s.role == election::Role::kPreCandidate;
  if (campaigning && !campaign_started_) campaign_started_ = status.at;
  if (!campaigning && campaign_started_) {
    metrics_.ObserveElectionDuration(
        std::chrono::duration<double>(status.at - *campaign_started_).count());
    campaign_started_.reset();
  }
}

void MetricsSink::Housekeep(Nanos now, const Driver& driver) {
  const election::Stats& stats = driver.core().stats();
  for (uint64_t i = last_stats_.leader_changes; i < stats.leader_changes; ++i) {
    metrics_.LeaderChanged();
  }
  for (uint64_t i = last_stats_.elections_started; i < stats.elections_started; ++i) {
    metrics_.ElectionStarted();
  }
  for (uint64_t i = last_stats_.elections_won; i < stats.elections_won; ++i) metrics_.ElectionWon();
  for (uint64_t i = last_stats_.votes_granted; i < stats.votes_granted; ++i) metrics_.VoteGranted();
  for (uint64_t i = last_stats_.leader_deaths_seen; i < stats.leader_deaths_seen; ++i) {
    metrics_.LeaderDeathSeen();
  }
  for (uint64_t i = last_stats_.early_campaigns; i < stats.early_campaigns; ++i) {
    metrics_.EarlyElectionStarted();
  }
  last_stats_ = stats;

  size_t reachable = 0;
  for (const PeerReachability& p : Reachability(driver, transport_, now, reachable_window_)) {
    reachable += p.reachable ? 1 : 0;
  }
  for (const transport::PeerCounters& p : transport_.peer_counters()) {
    auto& [sent, failed] = last_peer_counts_[p.id];
    for (; sent < p.sent; ++sent) metrics_.HeartbeatSent(p.id);
    for (; failed < p.failed; ++failed) metrics_.HeartbeatFailed(p.id);
  }
  metrics_.SetPeersReachable(reachable);
  const auto rejected = transport_.rejected();
  for (size_t i = 0; i < rejected.size(); ++i) {
    for (; last_rejected_[i] < rejected[i]; ++last_rejected_[i]) {
      metrics_.MessageRejected(wire::RejectReasonName(static_cast<wire::RejectReason>(i)));
    }
  }
  metrics_.SetLeaseRemaining(last_.role == election::Role::kLeader && last_.lease_until > now
                                 ? std::chrono::duration<double>(last_.lease_until - now).count()
                                 : 0.0);
  if (discovery_ != nullptr) {
    metrics_.SetPeersRegistered(discovery_->registered_peers());
    metrics_.SyncRedisErrors(discovery_->redis_errors());
  }
}

}  // namespace instaface::runtime
