#include "instaface/runtime/node.h"

#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "instaface/shm_writer.h"
#include "instaface/state/state_store.h"
#include "instaface/transport/transport.h"
#include "instaface/wire/codec.h"

#if INSTAFACE_HAVE_DISCOVERY
#include "instaface/discovery/redis_discovery.h"
#include "instaface/discovery/redis_url.h"
#endif
#if INSTAFACE_HAVE_CONTROL
#include <nlohmann/json.hpp>

#include "instaface/control/control_server.h"
#endif
#if INSTAFACE_HAVE_METRICS
#include "instaface/metrics/agent_metrics.h"
#include "instaface/metrics/metrics_server.h"
#endif

namespace instaface::runtime {
namespace {

using agent::Status;
using election::Nanos;
using std::chrono::milliseconds;

// The core's clock is CLOCK_MONOTONIC (steady_clock on Linux), the clock the shared-memory
// record's lease and liveness stamps use, so lease ends need no conversion between processes.
Nanos Now() { return std::chrono::steady_clock::now().time_since_epoch(); }

instaface::Role ToPublishedRole(election::Role role) {
  switch (role) {
    case election::Role::kLeader:
      return instaface::Role::kLeader;
    case election::Role::kCandidate:
    case election::Role::kPreCandidate:
      return instaface::Role::kCandidate;
    case election::Role::kFollower:
      break;
  }
  return instaface::Role::kFollower;
}

bool ValidId(const std::string& s) { return !s.empty() && s.size() <= election::kMaxNodeIdLength; }

}  // namespace

std::string ValidateNodeOptions(const NodeOptions& o) {
  if (!ValidId(o.id)) {
    return "node id must be 1 to " + std::to_string(election::kMaxNodeIdLength) + " bytes";
  }
  if (std::string err = wire::ValidateCodecArguments(o.cluster, o.secret); !err.empty()) {
    return err;
  }
  if (o.cluster_size < 1) return "cluster size must be at least 1";
  if (o.heartbeat.count() <= 0) return "heartbeat must be positive";
  if (o.election_min > o.election_max) {
    return "election minimum (" + std::to_string(o.election_min.count()) +
           " ms) is above the maximum (" + std::to_string(o.election_max.count()) + " ms)";
  }
  if (o.heartbeat >= o.election_min) {
    return "heartbeat (" + std::to_string(o.heartbeat.count()) +
           " ms) must be below the election minimum (" + std::to_string(o.election_min.count()) +
           " ms)";
  }
  if (o.listen_url.empty()) return "no listen URL given";
  for (const auto& [id, url] : o.static_peers) {
    if (!ValidId(id)) return "peer id '" + id + "' must be 1 to 64 bytes";
    if (url.empty()) return "peer " + id + " has no URL";
    if (id == o.id) return "static peers must not include this node (" + id + ")";
  }
  if (o.shm_mode != 0600 && o.shm_mode != 0660) return "shm mode must be 0600 or 0660";
#if INSTAFACE_HAVE_DISCOVERY
  if (!o.redis_url.empty()) {
    auto url = discovery::ParseRedisUrl(o.redis_url);
    if (!url.ok()) return "bad Redis URL: " + url.error();
  }
#else
  if (!o.redis_url.empty()) return "this build has no Redis discovery";
#endif
#if INSTAFACE_HAVE_METRICS
  if (!o.metrics_address.empty()) {
    auto hp = metrics::ParseHostPort(o.metrics_address);
    if (!hp.ok()) return "bad metrics address: " + hp.error();
  }
#else
  if (!o.metrics_address.empty()) return "this build has no metrics endpoint";
#endif
#if !INSTAFACE_HAVE_CONTROL
  if (!o.socket_path.empty()) return "this build has no control socket";
#endif
  return {};
}

class Node::Impl
#if INSTAFACE_HAVE_CONTROL
    : public control::Handler
#endif
{
 public:
  // An admin command: runs on the driver thread; its promise is kept only after the Ready it
  // caused has been published, so status() already reflects it when the future is ready.
  struct Command {
    std::function<bool(Nanos now)> run;
    std::shared_ptr<std::promise<bool>> done;
  };

  explicit Impl(NodeOptions o) : options(std::move(o)) {
    if (options.advertise_url.empty()) options.advertise_url = options.listen_url;
  }

  agent::Status Init();
  void Run();
  void Stop(bool hand_over);

  template <typename F>
  std::future<bool> Submit(F fn) {
    auto promise = std::make_shared<std::promise<bool>>();
    std::future<bool> future = promise->get_future();
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping_driver) {
        promise->set_value(false);
        return future;
      }
      commands.push_back(Command{std::move(fn), promise});
    }
    cv.notify_one();
    return future;
  }

  NodeStatus Snapshot() const {
    std::lock_guard<std::mutex> lock(status_mu);
    return published;
  }

#if INSTAFACE_HAVE_CONTROL
  nlohmann::json StatusJson(const NodeStatus& s) const {
    return {{"role", election::RoleName(s.election.role)},
            {"term", s.election.term},
            {"leader_id", s.election.leader},
            {"leader_app_address", s.leader_app_address},
            {"leader_peer_address", s.leader_peer_address},
            {"lease_valid", s.lease_valid},
            {"stale", false},
            {"self_id", s.self_id},
            {"unplugged", s.election.unplugged},
            {"transferring", s.election.transferring},
            {"peers", s.peers_known}};
  }
  nlohmann::json Status() override { return StatusJson(Snapshot()); }
  nlohmann::json Answer(std::future<bool> f, const char* refused) {
    if (f.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
      return {{"ok", false}, {"error", "the agent did not answer in time"}};
    }
    if (!f.get()) return {{"ok", false}, {"error", refused}};
    return {{"ok", true}};
  }
  nlohmann::json StepDown() override {
    return Answer(Submit([this](Nanos now) { return election->step_down(now); }), "not the leader");
  }
  nlohmann::json Transfer(std::optional<std::string> to) override {
    std::string target = to.value_or("");
    return Answer(
        Submit([this, target](Nanos now) { return election->transfer_leadership(target, now); }),
        "not the leader, or no suitable peer is reachable");
  }
  nlohmann::json Unplug(bool on) override {
    return Answer(Submit([this, on](Nanos now) {
                    election->set_unplugged(on, now);
                    return true;
                  }),
                  "refused");
  }
#endif

  // Driver thread only.
  void DrainReady(Nanos now);
  void Publish(const election::Status& s, Nanos now);
  void ApplyPeers();
  void Housekeeping(Nanos now);
  std::pair<std::string, std::string> AddressesOf(const std::string& id) const;

  NodeOptions options;
  std::string listen_url;

  // Set up by Init, then owned by the driver thread (the transport is thread-safe).
  std::unique_ptr<election::Election> election;
  std::unique_ptr<state::StateStore> store;
  std::unique_ptr<transport::Transport> transport;
  std::optional<shm::Writer> writer;
  std::map<std::string, std::pair<std::string, std::string>> peer_addresses;  // id -> (peer, app)
#if INSTAFACE_HAVE_DISCOVERY
  std::unique_ptr<discovery::RedisDiscovery> discovery;
#endif
#if INSTAFACE_HAVE_CONTROL
  std::unique_ptr<control::ControlServer> control;
#endif
#if INSTAFACE_HAVE_METRICS
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  std::unique_ptr<metrics::AgentMetrics> metrics;
  election::Stats last_stats;
  std::map<std::string, std::pair<uint64_t, uint64_t>> last_peer_counts;
  std::array<uint64_t, wire::kRejectReasonCount> last_rejected{};
  std::optional<Nanos> campaign_started;
#endif
  election::Status last_status;
  bool leader_key_published = false;
  Nanos next_housekeeping{0};

  // Inputs to the driver thread.
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<election::Message> inbox;  // guarded by mu
  std::deque<Command> commands;         // guarded by mu
  std::optional<std::vector<std::pair<std::string, std::pair<std::string, std::string>>>>
      discovered;                                   // guarded by mu; id -> (peer, app)
  std::map<std::string, std::string> static_peers;  // guarded by mu
  bool peers_dirty = true;                          // guarded by mu
  bool stopping_driver = false;                     // guarded by mu
  std::thread driver;

  // What the driver last published.
  mutable std::mutex status_mu;
  mutable std::condition_variable status_cv;
  NodeStatus published;  // guarded by status_mu

  std::atomic<bool> stopped{false};
};

agent::Status Node::Impl::Init() {
  const Nanos now = Now();
  election::HardState restored;
  if (!options.state_dir.empty()) {
    auto opened = state::StateStore::Open(options.state_dir);
    if (!opened.ok()) return opened.status();
    store = std::move(*opened);
    auto loaded = store->Load();
    if (!loaded.ok()) return loaded.status();
    restored = *loaded;
  }

  transport::TransportOptions t;
  t.listen_url = options.listen_url;
  t.cluster = options.cluster;
  t.secret = options.secret;
  // Below election_min, so a dead peer never holds a campaign past its deadline.
  t.request_timeout = std::max(milliseconds(1), options.election_min / 2);
  t.requests_per_peer = 8;
  auto started = transport::Transport::Start(t, [this](election::Message m) {
    {
      std::lock_guard<std::mutex> lock(mu);
      inbox.push_back(std::move(m));
    }
    cv.notify_one();
  });
  if (!started.ok()) return started.status();
  transport = std::move(*started);
  listen_url = transport->bound_url();
  if (options.advertise_url == options.listen_url) options.advertise_url = listen_url;

  const auto stale_after = std::chrono::duration_cast<Nanos>(3 * options.heartbeat);
  if (options.shm_name.empty()) {
    writer.emplace(shm::Writer::CreateInProcess(stale_after));
  } else {
    auto created = shm::Writer::Create(options.shm_name, options.shm_mode, stale_after);
    if (!created.ok()) return Status::Error(created.error());
    writer.emplace(std::move(*created));
  }

  election::Config config;
  config.heartbeat_interval = options.heartbeat;
  config.election_min = options.election_min;
  config.election_max = options.election_max;
  config.cluster_size = options.cluster_size;
  config.pre_vote = options.pre_vote;
  config.check_quorum = options.check_quorum;
  const uint64_t seed = options.seed != 0 ? options.seed : std::random_device{}() * 0x9e3779b9ULL;
  election = std::make_unique<election::Election>(
      config, options.id, std::vector<election::NodeId>{}, restored, seed, now);
  static_peers = options.static_peers;
  last_status = election->status();
  {
    std::lock_guard<std::mutex> lock(status_mu);
    published.election = last_status;
    published.self_id = options.id;
  }
  shm::PublishedState initial;
  initial.self_id = options.id;
  initial.term = last_status.term;
  writer->Publish(initial);
  writer->StampLiveness();

#if INSTAFACE_HAVE_METRICS
  if (!options.metrics_address.empty()) {
    auto server = metrics::MetricsServer::Start(options.metrics_address);
    if (!server.ok()) return Status::Error("metrics: " + server.error());
    metrics_server = std::move(*server);
    metrics = std::make_unique<metrics::AgentMetrics>(*metrics_server->registry());
    metrics->SetTerm(last_status.term);
    metrics->SetRole("follower");
  }
#endif
#if INSTAFACE_HAVE_DISCOVERY
  if (!options.redis_url.empty()) {
    discovery::DiscoveryOptions d;
    d.redis_url = options.redis_url;
    d.cluster = options.cluster;
    d.self_id = options.id;
    d.peer_address = options.advertise_url;
    d.app_address = options.app_address;
    d.version = options.version;
    d.ttl = std::max(milliseconds(3000), 4 * options.election_max);
    d.refresh_interval = std::max(milliseconds(200), std::min(milliseconds(1000), d.ttl / 3));
    d.log = [](std::string_view line) { spdlog::warn("discovery: {}", line); };
    auto created = discovery::RedisDiscovery::Create(d);
    if (!created.ok()) return Status::Error("discovery: " + created.error());
    discovery = std::move(*created);
    discovery->SetPeersCallback([this](const std::vector<discovery::PeerInfo>& peers) {
      std::vector<std::pair<std::string, std::pair<std::string, std::string>>> copy;
      for (const auto& p : peers) copy.push_back({p.id, {p.peer_address, p.app_address}});
      {
        std::lock_guard<std::mutex> lock(mu);
        discovered = std::move(copy);
        peers_dirty = true;
      }
      cv.notify_one();
    });
    if (auto st = discovery->Start(); !st.ok()) return Status::Error("discovery: " + st.message());
  }
#endif
#if INSTAFACE_HAVE_CONTROL
  if (!options.socket_path.empty()) {
    control::ControlServerOptions c;
    c.path = options.socket_path;
    c.mode = options.socket_mode;
    control = std::make_unique<control::ControlServer>(c, *this);
    if (auto st = control->Start(); !st.ok()) {
      control.reset();
      return Status::Error("control socket: " + st.message());
    }
  }
#endif
  driver = std::thread([this] { Run(); });
  return Status::Ok();
}

void Node::Impl::Run() {
  for (;;) {
    std::deque<election::Message> messages;
    std::deque<Command> todo;
    bool peers_changed = false;
    {
      std::unique_lock<std::mutex> lock(mu);
      const Nanos wake = std::min(election->next_deadline(), next_housekeeping);
      const auto until = std::chrono::steady_clock::time_point(
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(wake));
      cv.wait_until(lock, until, [this] {
        return stopping_driver || !inbox.empty() || !commands.empty() || peers_dirty;
      });
      if (stopping_driver && commands.empty()) break;
      messages.swap(inbox);
      todo.swap(commands);
      peers_changed = peers_dirty;
      peers_dirty = false;
    }
    if (peers_changed) ApplyPeers();
    Nanos now = Now();
    bool unknown_sender = false;
    for (const election::Message& m : messages) {
      unknown_sender |= peer_addresses.count(m.from) == 0;
      election->step(m, now);
    }
#if INSTAFACE_HAVE_DISCOVERY
    // Answers go back as requests to known peers only, so a newcomer we have not read from Redis
    // yet would go unanswered until the next periodic refresh.
    if (unknown_sender && discovery) discovery->RefreshSoon();
#endif
    std::vector<bool> results;
    for (Command& c : todo) results.push_back(c.run(now));
    election->tick(now);
    DrainReady(now);
    for (size_t i = 0; i < todo.size(); ++i) todo[i].done->set_value(results[i]);
    if (now >= next_housekeeping) Housekeeping(now);
  }
}

void Node::Impl::ApplyPeers() {
  std::map<std::string, std::pair<std::string, std::string>> merged;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (discovered) {
      for (const auto& [id, addresses] : *discovered) {
        if (id != options.id && ValidId(id)) merged[id] = addresses;
      }
    }
    for (const auto& [id, url] : static_peers) {
      std::string app = merged.count(id) ? merged[id].second : std::string();
      merged[id] = {url, app};
    }
  }
  std::map<std::string, std::string> urls;
  std::vector<election::NodeId> ids;
  for (const auto& [id, addresses] : merged) {
    urls[id] = addresses.first;
    ids.push_back(id);
  }
  if (merged != peer_addresses) {
    spdlog::info(
        "peers: {}", ids.empty() ? std::string("none") : [&] {
          std::string s;
          for (const auto& id : ids) s += (s.empty() ? "" : ",") + id;
          return s;
        }());
  }
  peer_addresses = std::move(merged);
  transport->SetPeers(urls);
  election->set_peers(std::move(ids));
  std::lock_guard<std::mutex> lock(status_mu);
  published.peers_known = peer_addresses.size();
}

std::pair<std::string, std::string> Node::Impl::AddressesOf(const std::string& id) const {
  if (id.empty()) return {};
  if (id == options.id) return {options.advertise_url, options.app_address};
  auto it = peer_addresses.find(id);
  return it == peer_addresses.end() ? std::pair<std::string, std::string>{} : it->second;
}

void Node::Impl::DrainReady(Nanos now) {
  while (election->has_ready()) {
    election::Ready ready = election->ready();
    if (ready.hard_state && store) {
      if (agent::Status st = store->Save(*ready.hard_state); !st.ok()) {
        // The core now believes in a term and vote that the disk does not hold, and it will not
        // offer them for saving again. Going on could let a later message depend on them and a
        // restart vote twice in one term, so stop here, before anything leaves (as etcd does on
        // a failed WAL write). A restart resumes from the last state that was saved.
        spdlog::critical("cannot persist election state, stopping: {}", st.message());
        std::abort();
      }
    }
    for (const election::Message& m : ready.messages) transport->Send(m);
    if (ready.status) Publish(*ready.status, now);
  }
}

void Node::Impl::Publish(const election::Status& s, Nanos now) {
  const auto [leader_peer, leader_app] = AddressesOf(s.leader);
  const bool lease_valid = s.role == election::Role::kLeader && s.lease_until > now;

  shm::PublishedState state;
  state.role = ToPublishedRole(s.role);
  state.term = s.term;
  state.lease_until_ns =
      s.role == election::Role::kLeader && s.lease_until.count() > 0 ? s.lease_until.count() : 0;
  state.self_id = options.id;
  state.leader_id = s.leader;
  state.leader_peer_address = leader_peer;
  state.leader_app_address = leader_app;
  writer->Publish(state);

  const bool visible_change =
      s.role != last_status.role || s.term != last_status.term || s.leader != last_status.leader ||
      s.unplugged != last_status.unplugged || s.transferring != last_status.transferring;
  if (visible_change) {
    spdlog::info("role {} term {} leader {}{}{}", election::RoleName(s.role), s.term,
                 s.leader.empty() ? "none" : s.leader, s.unplugged ? " (unplugged)" : "",
                 s.transferring ? " (transferring)" : "");
  }
  NodeStatus snapshot;
  {
    std::lock_guard<std::mutex> lock(status_mu);
    published.election = s;
    published.leader_peer_address = leader_peer;
    published.leader_app_address = leader_app;
    published.lease_valid = lease_valid;
    snapshot = published;
  }
  status_cv.notify_all();

#if INSTAFACE_HAVE_CONTROL
  if (visible_change && control) {
    nlohmann::json event = StatusJson(snapshot);
    event["event"] = "change";
    control->Broadcast(event);
  }
#else
  (void)snapshot;
#endif
#if INSTAFACE_HAVE_METRICS
  if (metrics) {
    metrics->SetTerm(s.term);
    std::string role = election::RoleName(s.role);
    metrics->SetRole(role);
    metrics->SetUnplugged(s.unplugged);
    const bool campaigning =
        s.role == election::Role::kCandidate || s.role == election::Role::kPreCandidate;
    if (campaigning && !campaign_started) campaign_started = now;
    if (!campaigning && campaign_started) {
      metrics->ObserveElectionDuration(
          std::chrono::duration<double>(now - *campaign_started).count());
      campaign_started.reset();
    }
  }
#endif
#if INSTAFACE_HAVE_DISCOVERY
  if (discovery) {
    const bool leading = s.role == election::Role::kLeader;
    if (leading && (!leader_key_published || s.term != last_status.term)) {
      discovery->PublishLeader(options.id, s.term, options.app_address,
                               std::max(milliseconds(2000), 4 * options.election_max));
      leader_key_published = true;
    } else if (!leading && leader_key_published) {
      discovery->ClearLeader();
      leader_key_published = false;
    }
  }
#endif
  last_status = s;
}

// Every heartbeat/2: liveness for readers of the record, and the slower-moving metrics.
void Node::Impl::Housekeeping(Nanos now) {
  writer->StampLiveness(static_cast<uint64_t>(now.count()));
  next_housekeeping = now + options.heartbeat / 2;

  uint64_t rejected_total = 0;
  const auto rejected = transport->rejected();
  for (uint64_t n : rejected) rejected_total += n;
  {
    std::lock_guard<std::mutex> lock(status_mu);
    published.messages_rejected = rejected_total;
    published.lease_valid =
        last_status.role == election::Role::kLeader && last_status.lease_until > now;
  }
  status_cv.notify_all();
#if INSTAFACE_HAVE_METRICS
  if (!metrics) return;
  const election::Stats& stats = election->stats();
  for (uint64_t i = last_stats.leader_changes; i < stats.leader_changes; ++i) {
    metrics->LeaderChanged();
  }
  for (uint64_t i = last_stats.elections_started; i < stats.elections_started; ++i) {
    metrics->ElectionStarted();
  }
  for (uint64_t i = last_stats.elections_won; i < stats.elections_won; ++i) metrics->ElectionWon();
  for (uint64_t i = last_stats.votes_granted; i < stats.votes_granted; ++i) metrics->VoteGranted();
  last_stats = stats;
  size_t reachable = 0;
  const Nanos window = options.election_max;
  for (const transport::PeerCounters& p : transport->peer_counters()) {
    auto& [sent, failed] = last_peer_counts[p.id];
    for (; sent < p.sent; ++sent) metrics->HeartbeatSent(p.id);
    for (; failed < p.failed; ++failed) metrics->HeartbeatFailed(p.id);
    if (p.last_ack_ns > 0 && now - Nanos(p.last_ack_ns) < window) ++reachable;
  }
  for (const election::PeerProgress& p : election->progress()) {
    // Followers rarely send; a peer we heard from recently is reachable too.
    if (p.last_heard.count() > 0 && now - p.last_heard < window) {
      bool counted = false;
      for (const transport::PeerCounters& c : transport->peer_counters()) {
        if (c.id == p.id && c.last_ack_ns > 0 && now - Nanos(c.last_ack_ns) < window) {
          counted = true;
        }
      }
      if (!counted) ++reachable;
    }
  }
  metrics->SetPeersReachable(reachable);
  for (size_t i = 0; i < rejected.size(); ++i) {
    for (; last_rejected[i] < rejected[i]; ++last_rejected[i]) {
      metrics->MessageRejected(wire::RejectReasonName(static_cast<wire::RejectReason>(i)));
    }
  }
  metrics->SetLeaseRemaining(
      last_status.role == election::Role::kLeader && last_status.lease_until > now
          ? std::chrono::duration<double>(last_status.lease_until - now).count()
          : 0.0);
#if INSTAFACE_HAVE_DISCOVERY
  if (discovery) {
    metrics->SetPeersRegistered(discovery->registered_peers());
    metrics->SyncRedisErrors(discovery->redis_errors());
  }
#endif
#endif
}

void Node::Impl::Stop(bool hand_over) {
  if (stopped.exchange(true)) return;
  if (hand_over && driver.joinable()) {
    const NodeStatus s = Snapshot();
    if (s.election.role == election::Role::kLeader) {
      auto started = Submit([this](Nanos now) { return election->transfer_leadership("", now); });
      if (started.wait_for(options.election_min) == std::future_status::ready && started.get()) {
        std::unique_lock<std::mutex> lock(status_mu);
        const bool handed = status_cv.wait_for(lock, options.election_min, [&] {
          return !published.election.leader.empty() && published.election.leader != options.id;
        });
        spdlog::info(
            handed ? "handed leadership to {}" : "no new leader within {} ms",
            handed ? published.election.leader : std::to_string(options.election_min.count()));
      } else {
        spdlog::warn("could not start a leadership transfer");
      }
    }
  }
#if INSTAFACE_HAVE_CONTROL
  if (control) control->Stop();
#endif
  {
    std::lock_guard<std::mutex> lock(mu);
    stopping_driver = true;
  }
  cv.notify_one();
  if (driver.joinable()) driver.join();
  // Commands that raced with the stop are answered, never left hanging.
  for (Command& c : commands) c.done->set_value(false);
  commands.clear();
#if INSTAFACE_HAVE_DISCOVERY
  if (discovery) discovery->Stop();
#endif
  transport.reset();
  if (writer && !options.shm_name.empty()) {
    // Readers that still map it see it go stale; new readers cannot open it.
    if (auto st = writer->Unlink(); !st.ok()) spdlog::warn("cannot unlink shm: {}", st.error());
  }
}

agent::StatusOr<std::unique_ptr<Node>> Node::Start(NodeOptions options) {
  if (std::string err = ValidateNodeOptions(options); !err.empty()) return Status::Error(err);
  // spdlog creates its registry on first use; do it here, before any of our threads exist.
  spdlog::default_logger_raw();
  auto impl = std::make_unique<Impl>(std::move(options));
  if (agent::Status st = impl->Init(); !st.ok()) {
    impl->Stop(false);
    return st;
  }
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() { impl_->Stop(false); }
void Node::Stop(bool hand_over) { impl_->Stop(hand_over); }

View Node::view() const { return impl_->writer->view(); }
NodeStatus Node::status() const { return impl_->Snapshot(); }

NodeStatus Node::WaitForStatus(const std::function<bool(const NodeStatus&)>& pred,
                               std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(impl_->status_mu);
  impl_->status_cv.wait_for(lock, timeout, [&] { return pred(impl_->published); });
  return impl_->published;
}

std::future<bool> Node::StepDown() {
  return impl_->Submit([this](Nanos now) { return impl_->election->step_down(now); });
}
std::future<bool> Node::TransferLeadership(std::string target) {
  return impl_->Submit([this, target = std::move(target)](Nanos now) {
    return impl_->election->transfer_leadership(target, now);
  });
}
std::future<bool> Node::SetUnplugged(bool unplugged) {
  return impl_->Submit([this, unplugged](Nanos now) {
    impl_->election->set_unplugged(unplugged, now);
    return true;
  });
}

void Node::SetStaticPeers(std::map<std::string, std::string> peers) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->static_peers = std::move(peers);
    impl_->peers_dirty = true;
  }
  impl_->cv.notify_one();
}

const std::string& Node::listen_url() const { return impl_->listen_url; }
const NodeOptions& Node::options() const { return impl_->options; }

}  // namespace instaface::runtime
