#include "instaface/sim/options.h"

#include <algorithm>

namespace instaface::sim {

using std::chrono::milliseconds;

std::optional<FaultOptions> FaultPreset(std::string_view name) {
  FaultOptions faults;
  if (name == "none") return faults;
  if (name != "all") return std::nullopt;
  // Enough of each fault that a 60 s run sees several of every kind. Ordinary delays stay well
  // below the default election timeout so the cluster can make progress; a few messages are
  // late by seconds, replayed, or held across a partition, as real networks do.
  faults.loss_percent = 5;
  faults.duplicate_percent = 2;
  faults.delay_min = milliseconds(1);
  faults.delay_max = milliseconds(20);
  faults.partitions_per_minute = 2;
  faults.crashes_per_minute = 3;
  faults.transfers_per_minute = 4;
  faults.drift_ppm = 2000;
  faults.slew = true;
  faults.late_percent = 1;
  faults.late_max = std::chrono::seconds(3);
  faults.replays_per_minute = 30;
  faults.reconnect_percent = 30;
  faults.stall_percent = 0.5;
  faults.stall_max = milliseconds(400);
  faults.pauses_per_minute = 1;
  faults.app_losses_per_minute = 2;
  return faults;
}

election::Config SimOptions::MakeConfig() const {
  election::Config config;
  config.heartbeat_interval = heartbeat_interval;
  config.election_min = election_min;
  config.election_max = election_max;
  config.cluster_size = nodes;
  config.pre_vote = true;
  config.check_quorum = true;
  config.max_clock_drift_ppm = config_drift_ppm.value_or(faults.drift_ppm);
  config.quorum_from_discovery = quorum_from_discovery;
  config.unsafe = unsafe;
  return config;
}

bool SimOptions::SetUnsafe(std::string_view name) {
  if (name == "late-timeout-now") {
    unsafe.late_timeout_now = true;
  } else if (name == "transfer-in-restart-window") {
    unsafe.transfer_in_restart_window = true;
  } else if (name == "former-leader-votes") {
    unsafe.former_leader_votes_in_own_lease = true;
  } else if (name == "send-before-publish") {
    unsafe_send_before_publish = true;
  } else if (name == "send-before-persist") {
    unsafe_send_before_persist = true;
  } else if (name == "vote-without-promise") {
    unsafe.vote_without_lease_promise = true;
  } else if (name == "stop-in-order-while-leading") {
    unsafe_stop_in_order_while_leading = true;
  } else if (name == "partition-is-death") {
    unsafe_partition_is_death = true;
  } else {
    return false;
  }
  return true;
}

std::vector<std::string> UnsafeNames(const SimOptions& o) {
  std::vector<std::string> names;
  if (o.unsafe.late_timeout_now) names.emplace_back("late-timeout-now");
  if (o.unsafe.transfer_in_restart_window) names.emplace_back("transfer-in-restart-window");
  if (o.unsafe.former_leader_votes_in_own_lease) names.emplace_back("former-leader-votes");
  if (o.unsafe_send_before_publish) names.emplace_back("send-before-publish");
  if (o.unsafe_send_before_persist) names.emplace_back("send-before-persist");
  if (o.unsafe_partition_is_death) names.emplace_back("partition-is-death");
  if (o.unsafe_stop_in_order_while_leading) names.emplace_back("stop-in-order-while-leading");
  if (o.unsafe.vote_without_lease_promise) names.emplace_back("vote-without-promise");
  return names;
}

Nanos DefaultLivenessBound(const SimOptions& options) {
  return options.election_min + 5 * options.election_max + 4 * options.faults.delay_max +
         options.faults.stall_max;
}

Nanos SimOptions::EffectiveLivenessBound() const {
  return liveness_bound.count() > 0 ? liveness_bound : DefaultLivenessBound(*this);
}

std::string SimOptions::Validate() const {
  if (nodes < 1 || nodes > 64) return "--nodes must be between 1 and 64";
  if (duration.count() <= 0) return "--duration must be positive";
  if (duration > std::chrono::hours(24)) return "--duration must be at most a day";
  if (heartbeat_interval.count() <= 0) return "--heartbeat-ms must be positive";
  if (election_min.count() <= 0) return "--election-min-ms must be positive";
  if (election_max < election_min) return "--election-max-ms must be at least --election-min-ms";
  if (heartbeat_interval >= election_min) {
    return "--heartbeat-ms must be below --election-min-ms (followers would time out between "
           "heartbeats)";
  }
  const FaultOptions& f = faults;
  if (f.loss_percent < 0 || f.loss_percent > 100) return "--loss must be a percentage";
  if (f.duplicate_percent < 0 || f.duplicate_percent > 100) {
    return "--duplicate must be a percentage";
  }
  if (f.delay_min.count() < 0 || f.delay_max < f.delay_min) {
    return "message delay needs 0 <= min <= max";
  }
  if (f.partitions_per_minute < 0 || f.crashes_per_minute < 0 || f.transfers_per_minute < 0 ||
      f.stops_per_minute < 0 || f.replays_per_minute < 0 || f.pauses_per_minute < 0 ||
      f.app_losses_per_minute < 0) {
    return "fault rates must not be negative";
  }
  for (double percent : {f.late_percent, f.reconnect_percent, f.stall_percent}) {
    if (percent < 0 || percent > 100) return "fault shares must be percentages";
  }
  if (f.late_max.count() < 0 || f.stall_max.count() < 0) return "fault delays must not be negative";
  if (f.drift_ppm > 100000) return "--drift-ppm must be at most 100000";
  if (config_drift_ppm && *config_drift_ppm > 100000) return "--config-drift-ppm too large";
  return "";
}

}  // namespace instaface::sim
