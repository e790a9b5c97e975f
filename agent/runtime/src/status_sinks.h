// The agent's StatusSinks: where the Driver's published status goes. One file each:
//   shm_sink.cc         the shared-memory record the app reads (and its liveness stamp)
//   control_sink.cc     `watch` streams on the control socket
//   metrics_sink.cc     Prometheus gauges and counters
//   leader_key_sink.cc  Redis's `leader` key, for observers such as the load bot
//   log_sink.cc         one log line per visible change
// All are called on the driver thread and never block on a peer (Redis writes are queued to the
// discovery thread, control lines to each watcher's bounded queue).
#ifndef INSTAFACE_RUNTIME_SRC_STATUS_SINKS_H_
#define INSTAFACE_RUNTIME_SRC_STATUS_SINKS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "instaface/control/control_server.h"
#include "instaface/discovery/redis_discovery.h"
#include "instaface/metrics/agent_metrics.h"
#include "instaface/runtime/driver.h"
#include "instaface/runtime/node.h"
#include "instaface/shm_writer.h"
#include "instaface/transport/transport.h"
#include "instaface/wire/codec.h"

namespace instaface::runtime {

// A change an operator or watcher would notice (not a lease renewal).
bool VisibleChange(const election::Status& before, const election::Status& after);

// Every known peer, reachable when it acked us (the transport's view) or we heard from it (the
// core's: followers rarely send, so this is how a follower sees its peers) within `window`.
std::vector<PeerReachability> Reachability(const Driver& driver,
                                           const transport::Transport& transport, Nanos now,
                                           Nanos window);

class ShmSink : public StatusSink {
 public:
  explicit ShmSink(shm::Writer& writer) : writer_(writer) {}
  void Publish(const PublishedStatus& status) override;
  void Housekeep(Nanos now, const Driver& driver) override;

 private:
  shm::Writer& writer_;
};

class ControlSink : public StatusSink {
 public:
  // `describe` renders a status as the control socket's status object.
  ControlSink(control::ControlServer& server,
              std::function<nlohmann::json(const PublishedStatus&)> describe)
      : server_(server), describe_(std::move(describe)) {}
  void Publish(const PublishedStatus& status) override;

 private:
  control::ControlServer& server_;
  std::function<nlohmann::json(const PublishedStatus&)> describe_;
  election::Status last_;
};

class MetricsSink : public StatusSink {
 public:
  MetricsSink(metrics::AgentMetrics& metrics, const transport::Transport& transport,
              const discovery::RedisDiscovery* discovery, Nanos reachable_window);
  void Publish(const PublishedStatus& status) override;
  void Housekeep(Nanos now, const Driver& driver) override;

 private:
  metrics::AgentMetrics& metrics_;
  const transport::Transport& transport_;
  const discovery::RedisDiscovery* discovery_;
  const Nanos reachable_window_;
  election::Status last_;
  std::optional<Nanos> campaign_started_;
  election::Stats last_stats_;
  std::map<std::string, std::pair<uint64_t, uint64_t>> last_peer_counts_;
  std::array<uint64_t, wire::kRejectReasonCount> last_rejected_{};
};

class LeaderKeySink : public StatusSink {
 public:
  LeaderKeySink(discovery::RedisDiscovery& discovery, std::string self_id, std::string app_address,
                std::chrono::milliseconds ttl)
      : discovery_(discovery),
        self_id_(std::move(self_id)),
        app_address_(std::move(app_address)),
        ttl_(ttl) {}
  void Publish(const PublishedStatus& status) override;

 private:
  discovery::RedisDiscovery& discovery_;
  const std::string self_id_;
  const std::string app_address_;
  const std::chrono::milliseconds ttl_;
  bool published_ = false;
  election::Term term_ = 0;
};

class LogSink : public StatusSink {
 public:
  void Publish(const PublishedStatus& status) override;

 private:
  election::Status last_;
};

}  // namespace instaface::runtime

#endif  // INSTAFACE_RUNTIME_SRC_STATUS_SINKS_H_
