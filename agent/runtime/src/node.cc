// Node: the wiring around one Driver. It starts the real seams (the nng transport, the state
// file, the shared-memory record, Redis discovery, the control socket, metrics), owns the one
// thread that calls the Driver, and queues everything else (decoded messages, admin commands,
// peer-set changes) to that thread.
#include "instaface/runtime/node.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "instaface/app_presence.h"
#include "instaface/clock.h"
#include "instaface/common/thread_annotations.h"
#include "instaface/control/control_server.h"
#include "instaface/discovery/redis_discovery.h"
#include "instaface/discovery/redis_url.h"
#include "instaface/metrics/agent_metrics.h"
#include "instaface/metrics/metrics_server.h"
#include "instaface/runtime/driver.h"
#include "instaface/shm_writer.h"
#include "instaface/state/promise_file.h"
#include "instaface/state/state_store.h"
#include "instaface/transport/transport.h"
#include "instaface/wire/codec.h"
#include "status_sinks.h"

namespace instaface::runtime {
namespace {

// How often the driver thread looks at its app's presence (with NodeOptions::app_liveness).
constexpr std::chrono::milliseconds kAppPollInterval{5};

using common::Status;
using std::chrono::milliseconds;

// The lease clock (instaface/clock.h): the core's time, the record's lease ends and liveness
// stamps, the transport's ack times.
class LeaseClock : public Clock {
 public:
  Nanos Now() override { return Nanos(LeaseClockNowNs()); }
};

class TransportOutbox : public Outbox {
 public:
  explicit TransportOutbox(transport::Transport& transport) : transport_(transport) {}
  void Send(const election::Message& message) override { transport_.Send(message); }

 private:
  transport::Transport& transport_;
};

class FileHardStateStore : public HardStateStore {
 public:
  explicit FileHardStateStore(state::StateStore& store) : store_(store) {}
  common::Status Save(const election::HardState& state) override { return store_.Save(state); }

 private:
  state::StateStore& store_;
};

class FilePromiseRecord : public PromiseRecord {
 public:
  explicit FilePromiseRecord(state::PromiseFile& file) : file_(file) {}
  std::optional<Nanos> Earlier() const override {
    if (auto ns = file_.earlier_until_ns()) return Nanos(*ns);
    return std::nullopt;
  }
  void Record(Nanos until) override { file_.Record(until.count()); }

 private:
  state::PromiseFile& file_;
};

bool ValidId(const std::string& s) { return !s.empty() && s.size() <= election::kMaxNodeIdLength; }

}  // namespace

Status ValidateNodeOptions(const NodeOptions& o) {
  if (!ValidId(o.id)) {
    return Status::Error("node id must be 1 to " + std::to_string(election::kMaxNodeIdLength) +
                         " bytes");
  }
  if (Status st = wire::ValidateCodecArguments(o.cluster, o.secret); !st.ok()) return st;
  if (o.cluster_size < 1) return Status::Error("cluster size must be at least 1");
  if (o.heartbeat.count() <= 0) return Status::Error("heartbeat must be positive");
  if (o.election_min > o.election_max) {
    return Status::Error("election minimum (" + std::to_string(o.election_min.count()) +
                         " ms) is above the maximum (" + std::to_string(o.election_max.count()) +
                         " ms)");
  }
  if (o.heartbeat >= o.election_min) {
    return Status::Error("heartbeat (" + std::to_string(o.heartbeat.count()) +
                         " ms) must be below the election minimum (" +
                         std::to_string(o.election_min.count()) + " ms)");
  }
  if (o.max_clock_drift_ppm > kMaxClockDriftPpm) {
    return Status::Error("clock drift bound (" + std::to_string(o.max_clock_drift_ppm) +
                         " ppm) is above the most the lease can absorb (" +
                         std::to_string(kMaxClockDriftPpm) + " ppm)");
  }
  // Each lease lasts election_min less the margin after the ack it rests on; shorter than a
  // heartbeat period, it would lapse between renewals.
  const auto lease = o.election_min - o.election_min * 2 * o.max_clock_drift_ppm / 1000000;
  if (o.heartbeat >= lease) {
    return Status::Error("heartbeat (" + std::to_string(o.heartbeat.count()) +
                         " ms) must be below the lease (" + std::to_string(lease.count()) +
                         " ms: the election minimum less twice the " +
                         std::to_string(o.max_clock_drift_ppm) + " ppm clock drift bound)");
  }
  if (o.app_liveness.count() < 0) return Status::Error("app liveness bound must not be negative");
  if (o.app_liveness.count() > 0 && o.shm_name.empty()) {
    return Status::Error(
        "app liveness needs a shared-memory segment (--shm): the app registers "
        "beside it");
  }
  if (o.listen_url.empty()) return Status::Error("no listen URL given");
  for (const auto& [id, url] : o.static_peers) {
    if (!ValidId(id)) return Status::Error("peer id '" + id + "' must be 1 to 64 bytes");
    if (url.empty()) return Status::Error("peer " + id + " has no URL");
    if (id == o.id) return Status::Error("static peers must not include this node (" + id + ")");
  }
  if (o.shm_mode != 0600 && o.shm_mode != 0660) {
    return Status::Error("shm mode must be 0600 or 0660");
  }
  if (!o.redis_url.empty()) {
    auto url = discovery::ParseRedisUrl(o.redis_url);
    if (!url.ok()) return Status::Error("bad Redis URL: " + url.status().message());
  }
  if (!o.metrics_address.empty()) {
    auto hp = metrics::ParseHostPort(o.metrics_address);
    if (!hp.ok()) return Status::Error("bad metrics address: " + hp.status().message());
  }
  return Status::Ok();
}

class Node::Impl : public control::Handler, public StatusSink {
 public:
  // An admin command: runs on the driver thread; its promise is kept once the Ready it caused
  // has been carried out, so status() already reflects it when the future is ready.
  struct Command {
    std::function<bool(Driver&)> run;
    std::shared_ptr<std::promise<bool>> done;
  };

  explicit Impl(NodeOptions o) : options(std::move(o)) {
    if (options.advertise_url.empty()) options.advertise_url = options.listen_url;
  }

  common::Status Init();
  void Run();
  void Stop(bool hand_over);
  void ApplyPeers();
  void WatchApp();
  void WatchLeader();

  std::future<bool> Submit(std::function<bool(Driver&)> fn) {
    auto promise = std::make_shared<std::promise<bool>>();
    std::future<bool> future = promise->get_future();
    {
      common::MutexLock lock(mu);
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
    common::MutexLock lock(status_mu);
    return published;
  }

  // ---- StatusSink: what status() and WaitForStatus() return ----------------------------------

  void Publish(const PublishedStatus& s) override {
    {
      common::MutexLock lock(status_mu);
      published.election = s.election;
      published.leader_peer_address = s.leader_peer_address;
      published.leader_app_address = s.leader_app_address;
      published.lease_valid = s.lease_valid();
    }
    status_cv.notify_all();
  }
  void Housekeep(Nanos now, const Driver& d) override {
    uint64_t rejected_total = 0;
    for (uint64_t n : transport->rejected()) rejected_total += n;
    // Computed before the lock: status readers (the control socket) never wait on it.
    std::vector<PeerReachability> peers = Reachability(d, *transport, now, options.election_max);
    {
      common::MutexLock lock(status_mu);
      published.messages_rejected = rejected_total;
      published.leader_deaths_seen = d.core().stats().leader_deaths_seen;
      published.early_elections = d.core().stats().early_campaigns;
      published.peers_known = d.peers().size();
      published.peers = std::move(peers);
      published.lease_valid = d.status().election.role == election::Role::kLeader &&
                              d.status().election.lease_until > now;
    }
    status_cv.notify_all();
  }

  // ---- control::Handler ----------------------------------------------------------------------

  static control::AgentStatus Describe(const NodeStatus& s) {
    control::AgentStatus a;
    a.role = election::RoleName(s.election.role);
    a.term = s.election.term;
    a.self_id = s.self_id;
    a.leader_id = s.election.leader;
    a.leader_app_address = s.leader_app_address;
    a.leader_peer_address = s.leader_peer_address;
    a.lease_valid = s.lease_valid;
    a.unplugged = s.election.unplugged;
    a.unplugged_peers.assign(s.unplugged_peers.begin(), s.unplugged_peers.end());
    a.transferring = s.election.transferring;
    a.messages_rejected = s.messages_rejected;
    a.leader_deaths_seen = s.leader_deaths_seen;
    a.early_elections = s.early_elections;
    for (const PeerReachability& p : s.peers) {
      control::PeerStatus peer;
      peer.id = p.id;
      peer.app_address = p.app_address;
      peer.reachable = p.reachable;
      if (p.last_heard_ago) {
        peer.last_heard_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(*p.last_heard_ago).count();
      }
      a.peers.push_back(std::move(peer));
    }
    return a;
  }
  control::AgentStatus Status() override { return Describe(Snapshot()); }
  nlohmann::json Answer(std::future<bool> f, const char* refused) {
    if (f.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
      return {{"ok", false}, {"error", "the agent did not answer in time"}};
    }
    if (!f.get()) return {{"ok", false}, {"error", refused}};
    return {{"ok", true}};
  }
  nlohmann::json StepDown() override {
    return Answer(Submit([](Driver& d) { return d.StepDown(); }), "not the leader");
  }
  nlohmann::json Transfer(std::optional<std::string> to) override {
    std::string target = to.value_or("");
    return Answer(Submit([target](Driver& d) { return d.TransferLeadership(target); }),
                  "not the leader, or no suitable peer is reachable");
  }
  nlohmann::json Unplug(bool on, const std::optional<std::string>& peer) override {
    if (peer) {
      return Answer(SubmitLinkUnplugged(*peer, on), "a node cannot cut its link to itself");
    }
    return Answer(Submit([on](Driver& d) {
                    d.SetUnplugged(on);
                    return true;
                  }),
                  "refused");
  }
  std::future<bool> SubmitLinkUnplugged(std::string peer, bool on) {
    return Submit([this, peer = std::move(peer), on](Driver&) {
      if (peer == options.id || !ValidId(peer)) return false;
      if (on) {
        cut_links.insert(peer);
      } else {
        cut_links.erase(peer);
      }
      // The transport drops both directions, below the acknowledgements, so the peer sees this
      // node fall silent exactly as behind a firewall.
      transport->SetBlocked(cut_links);
      spdlog::info("link to {} {}", peer, on ? "unplugged" : "plugged in");
      common::MutexLock lock(status_mu);
      published.unplugged_peers = cut_links;
      return true;
    });
  }

  NodeOptions options;
  std::string listen_url;

  // The seams, set up by Init. The driver and the sinks are touched by the driver thread only
  // (the transport, discovery and control server are thread-safe).
  LeaseClock clock;
  std::unique_ptr<state::StateStore> store;
  std::optional<FileHardStateStore> store_seam;
  std::unique_ptr<state::PromiseFile> promise_file;
  std::optional<FilePromiseRecord> promise_seam;
  std::unique_ptr<transport::Transport> transport;
  std::optional<TransportOutbox> outbox;
  std::set<std::string> cut_links;  // links cut by fault injection; driver thread only
  std::optional<shm::Writer> writer;
  std::unique_ptr<discovery::RedisDiscovery> discovery;
  std::unique_ptr<control::ControlServer> control;
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  std::unique_ptr<metrics::AgentMetrics> metrics;
  std::vector<std::unique_ptr<StatusSink>> sinks;
  std::unique_ptr<Driver> driver;
  // Its app's presence, when options.app_liveness is set; read on the driver thread.
  std::unique_ptr<AppPresenceReader> app;
  bool app_alive = true;  // what the driver was last told
  std::string watched;    // whose process the transport watches: the leader, if another node
  election::HardState restored;

  // Inputs to the driver thread.
  mutable common::Mutex mu;
  std::condition_variable cv;
  std::deque<election::Message> inbox GUARDED_BY(mu);
  // The transport's evidence of a peer's death: (peer, lease clock when its connection ended).
  std::deque<std::pair<std::string, Nanos>> deaths GUARDED_BY(mu);
  std::deque<Command> commands GUARDED_BY(mu);
  std::optional<std::map<std::string, PeerAddresses>> discovered GUARDED_BY(mu);
  std::map<std::string, std::string> static_peers GUARDED_BY(mu);
  bool peers_dirty GUARDED_BY(mu) = true;
  bool stopping_driver GUARDED_BY(mu) = false;
  bool step_down_at_stop GUARDED_BY(mu) = false;  // a clean stop: the driver's last act
  std::thread driver_thread;

  // What the driver last published.
  mutable common::Mutex status_mu;
  mutable std::condition_variable status_cv;
  NodeStatus published GUARDED_BY(status_mu);

  std::atomic<bool> stopped{false};
};

common::Status Node::Impl::Init() {
  if (!options.state_dir.empty()) {
    auto opened = state::StateStore::Open(options.state_dir);
    if (!opened.ok()) return opened.status();
    store = std::move(*opened);
    auto loaded = store->Load();
    if (!loaded.ok()) return loaded.status();
    restored = *loaded;
    store_seam.emplace(*store);
    auto promises = state::PromiseFile::Open(options.state_dir);
    if (!promises.ok()) return promises.status();
    promise_file = std::move(*promises);
    promise_seam.emplace(*promise_file);
    if (auto until = promise_file->earlier_until_ns()) {
      const int64_t left = *until - clock.Now().count();
      spdlog::info("restart window: the promises of the last run end in {:.1f} ms",
                   static_cast<double>(std::max<int64_t>(left, 0)) / 1e6);
    }
  }

  transport::TransportOptions t;
  t.listen_url = options.listen_url;
  t.self_id = options.id;
  t.death_watch = options.death_watch;
  t.death_watch_port = options.death_watch_port;
  t.cluster = options.cluster;
  t.secret = options.secret;
  // Below election_min, so a dead peer never holds a campaign past its deadline.
  t.request_timeout = std::max(milliseconds(1), options.election_min / 2);
  t.requests_per_peer = 8;
  // A peer that restarts must hear from this node, its votes included, within a fraction of an
  // election timeout of being back: nng's redials of it pause at most election_min / 8.
  t.reconnect_max = std::clamp(std::chrono::duration_cast<milliseconds>(options.election_min / 8),
                               milliseconds(20), milliseconds(500));
  auto deliver = [this](election::Message m) {
    {
      common::MutexLock lock(mu);
      inbox.push_back(std::move(m));
    }
    cv.notify_one();
  };
  auto peer_died = [this](const std::string& peer, int64_t observed_at_ns) {
    {
      common::MutexLock lock(mu);
      deaths.emplace_back(peer, Nanos(observed_at_ns));
    }
    cv.notify_one();
  };
  auto started = transport::Transport::Start(t, deliver, peer_died);
  if (!started.ok()) return started.status();
  transport = std::move(*started);
  outbox.emplace(*transport);
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
  sinks.push_back(std::make_unique<ShmSink>(*writer));

  if (!options.metrics_address.empty()) {
    auto server = metrics::MetricsServer::Start(options.metrics_address);
    if (!server.ok()) return Status::Error("metrics: " + server.status().message());
    metrics_server = std::move(*server);
    metrics = std::make_unique<metrics::AgentMetrics>(*metrics_server->registry());
  }
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
    if (!created.ok()) return Status::Error("discovery: " + created.status().message());
    discovery = std::move(*created);
    discovery->SetPeersCallback([this](const std::vector<discovery::PeerInfo>& peers) {
      std::map<std::string, PeerAddresses> copy;
      for (const auto& p : peers) copy[p.id] = {p.peer_address, p.app_address};
      {
        common::MutexLock lock(mu);
        discovered = std::move(copy);
        peers_dirty = true;
      }
      cv.notify_one();
    });
    sinks.push_back(
        std::make_unique<LeaderKeySink>(*discovery, options.id, options.app_address,
                                        std::max(milliseconds(2000), 4 * options.election_max)));
  }
  if (metrics) {
    sinks.push_back(
        std::make_unique<MetricsSink>(*metrics, *transport, discovery.get(), options.election_max));
  }
  if (!options.socket_path.empty()) {
    control::ControlServerOptions c;
    c.path = options.socket_path;
    c.mode = options.socket_mode;
    control = std::make_unique<control::ControlServer>(c, *this);
    sinks.push_back(std::make_unique<ControlSink>(*control, [this](const PublishedStatus&) {
      return control::ToJson(Describe(Snapshot()));
    }));
  }
  sinks.push_back(std::make_unique<LogSink>());

  {
    common::MutexLock lock(status_mu);
    published.self_id = options.id;
  }
  DriverOptions d;
  d.config.heartbeat_interval = options.heartbeat;
  d.config.election_min = options.election_min;
  d.config.election_max = options.election_max;
  d.config.cluster_size = options.cluster_size;
  d.config.pre_vote = options.pre_vote;
  d.config.check_quorum = options.check_quorum;
  d.config.max_clock_drift_ppm = options.max_clock_drift_ppm;
  d.self_id = options.id;
  d.self_peer_address = options.advertise_url;
  d.self_app_address = options.app_address;
  d.housekeeping_interval = options.heartbeat / 2;
  d.on_persist_failure = [](const std::string& error) {
    // See DriverOptions::on_persist_failure: a restart resumes from the last state saved.
    spdlog::critical("cannot persist election state, stopping: {}", error);
    std::abort();
  };
  std::vector<StatusSink*> sink_list;
  sink_list.push_back(this);  // first, so that the control sink's status is current
  for (auto& sink : sinks) sink_list.push_back(sink.get());
  const uint64_t seed = options.seed != 0 ? options.seed : std::random_device{}() * 0x9e3779b9ULL;
  driver = std::make_unique<Driver>(std::move(d), restored, seed, clock, *outbox,
                                    store_seam ? &*store_seam : nullptr,
                                    promise_seam ? &*promise_seam : nullptr, std::move(sink_list));
  if (options.app_liveness.count() > 0) {
    app = std::make_unique<AppPresenceReader>(options.shm_name);
    WatchApp();  // not eligible until the app is there: told before the first timer runs
  }
  {
    common::MutexLock lock(mu);
    static_peers = options.static_peers;
  }

  // Discovery and the control socket start last: their callbacks reach the driver.
  if (discovery) {
    if (auto st = discovery->Start(); !st.ok()) return Status::Error("discovery: " + st.message());
  }
  if (control) {
    if (auto st = control->Start(); !st.ok()) {
      control.reset();
      return Status::Error("control socket: " + st.message());
    }
  }
  driver_thread = std::thread([this] { Run(); });
  return Status::Ok();
}

void Node::Impl::Run() {
  bool step_down = false;
  for (;;) {
    std::deque<election::Message> messages;
    std::deque<std::pair<std::string, Nanos>> died;
    std::deque<Command> todo;
    bool peers_changed = false;
    {
      common::MutexLock lock(mu);
      Nanos wait = std::max(driver->NextDeadline() - clock.Now(), Nanos(0));
      // The app's presence is polled: two loads every few ms, no system call.
      if (app) wait = std::min(wait, Nanos(kAppPollInterval));
      const auto wake = std::chrono::steady_clock::now() + wait;
      while (!stopping_driver && inbox.empty() && deaths.empty() && commands.empty() &&
             !peers_dirty) {
        if (cv.wait_until(lock.native(), wake) == std::cv_status::timeout) break;
      }
      if (stopping_driver && commands.empty()) {
        step_down = step_down_at_stop;
        break;
      }
      messages.swap(inbox);
      died.swap(deaths);
      todo.swap(commands);
      peers_changed = peers_dirty;
      peers_dirty = false;
    }
    if (peers_changed) ApplyPeers();
    bool unknown_sender = false;
    for (const election::Message& m : messages) {
      unknown_sender |= driver->peers().count(m.from) == 0;
      driver->Step(m);
    }
    // Answers go back as requests to known peers only, so a newcomer we have not read from Redis
    // yet would go unanswered until the next periodic refresh.
    if (unknown_sender && discovery) discovery->RefreshSoon();
    for (const auto& [peer, observed_at] : died) {
      spdlog::info("[{}] the process of {} has ended (its connection closed, a redial refused)",
                   options.id, peer);
      driver->PeerDied(peer, observed_at);
    }
    for (Command& c : todo) c.done->set_value(c.run(*driver));
    if (app) WatchApp();
    driver->Tick();
    WatchLeader();
  }
  // A clean stop's last step, with nothing after it that could make this node lead again:
  // whatever became of its handover, it leads no more, and its app sees that (published first,
  // as always) before Stop can tell a peer that it is gone. (A candidate stays one: no lease.)
  if (step_down) driver->StepDown();
}

void Node::Impl::WatchLeader() {
  // The leader it last knew, kept while it stands or waits for a new one: that is the process
  // whose death would free this node's vote.
  const election::Status& s = driver->status().election;
  std::string next = watched;
  if (s.role == election::Role::kLeader) {
    next.clear();
  } else if (!s.leader.empty() && s.leader != options.id) {
    next = s.leader;
  }
  if (next == watched) return;
  watched = next;
  transport->WatchPeer(watched);
}

void Node::Impl::WatchApp() {
  app->Refresh();
  const bool alive = app->Alive(static_cast<uint64_t>(clock.Now().count()), options.app_liveness);
  if (alive == app_alive) return;
  app_alive = alive;
  spdlog::info("[{}] {}", options.id,
               alive ? "its app is present: this node may lead"
                     : "its app is gone or hung: this node hands over and does not stand");
  driver->SetEligible(alive);
}

void Node::Impl::ApplyPeers() {
  std::map<std::string, PeerAddresses> merged;
  {
    common::MutexLock lock(mu);
    if (discovered) {
      for (const auto& [id, addresses] : *discovered) {
        if (id != options.id && ValidId(id)) merged[id] = addresses;
      }
    }
    for (const auto& [id, url] : static_peers) merged[id].peer = url;
  }
  if (merged != driver->peers()) {
    std::string ids;
    for (const auto& entry : merged) ids += (ids.empty() ? "" : ",") + entry.first;
    spdlog::info("peers: {}", ids.empty() ? "none" : ids);
  }
  std::map<std::string, std::string> urls;
  for (const auto& [id, addresses] : merged) urls[id] = addresses.peer;
  transport->SetPeers(urls);
  driver->SetPeers(std::move(merged));
  {
    common::MutexLock lock(status_mu);
    published.peers_known = driver->peers().size();
  }
  status_cv.notify_all();
}

void Node::Impl::Stop(bool hand_over) {
  if (stopped.exchange(true)) return;
  if (hand_over && driver_thread.joinable()) {
    const NodeStatus s = Snapshot();
    if (s.election.role == election::Role::kLeader) {
      auto started = Submit([](Driver& d) { return d.TransferLeadership(""); });
      if (started.wait_for(options.election_min) == std::future_status::ready && started.get()) {
        common::MutexLock lock(status_mu);
        const auto deadline = std::chrono::steady_clock::now() + options.election_min;
        auto handed = [&]() REQUIRES(status_mu) {
          return !published.election.leader.empty() && published.election.leader != options.id;
        };
        while (!handed() &&
               status_cv.wait_until(lock.native(), deadline) == std::cv_status::no_timeout) {
        }
        spdlog::info(
            handed() ? "handed leadership to {}" : "no new leader within {} ms",
            handed() ? published.election.leader : std::to_string(options.election_min.count()));
      } else {
        spdlog::warn("could not start a leadership transfer");
      }
    }
  }
  if (control) control->Stop();
  {
    common::MutexLock lock(mu);
    stopping_driver = true;
    step_down_at_stop = hand_over;  // Run's last act (see there)
  }
  cv.notify_one();
  if (driver_thread.joinable()) driver_thread.join();
  // Commands that raced with the stop are answered, never left hanging.
  std::deque<Command> left;
  {
    common::MutexLock lock(mu);
    left.swap(commands);
  }
  for (Command& c : left) c.done->set_value(false);
  if (discovery) discovery->Stop();
  // A clean stop that leaves its app no lease to see, now that the driver has published all it
  // ever will, ends its watchers' connections in order, as its exit would: they stand at once
  // (death_watch.h) instead of waiting out their timeouts, which is what a handover that did
  // not complete would otherwise cost. Any other stop resets them: no evidence.
  if (transport && hand_over && Snapshot().election.role != election::Role::kLeader) {
    transport->StopAsIfExited();
  }
  transport.reset();
  if (writer && !options.shm_name.empty()) {
    // Readers that still map it see it go stale; new readers cannot open it.
    if (auto st = writer->Unlink(); !st.ok()) spdlog::warn("cannot unlink shm: {}", st.error());
  }
}

common::StatusOr<std::unique_ptr<Node>> Node::Start(NodeOptions options) {
  if (Status st = ValidateNodeOptions(options); !st.ok()) return st;
  // spdlog creates its registry on first use; do it here, before any of our threads exist.
  spdlog::default_logger_raw();
  auto impl = std::make_unique<Impl>(std::move(options));
  if (common::Status st = impl->Init(); !st.ok()) {
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
  common::MutexLock lock(impl_->status_mu);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred(impl_->published) &&
         impl_->status_cv.wait_until(lock.native(), deadline) == std::cv_status::no_timeout) {
  }
  return impl_->published;
}

std::future<bool> Node::StepDown() {
  return impl_->Submit([](Driver& d) { return d.StepDown(); });
}
std::future<bool> Node::TransferLeadership(std::string target) {
  return impl_->Submit(
      [target = std::move(target)](Driver& d) { return d.TransferLeadership(target); });
}
std::future<bool> Node::SetUnplugged(bool unplugged) {
  return impl_->Submit([unplugged](Driver& d) {
    d.SetUnplugged(unplugged);
    return true;
  });
}

std::future<bool> Node::SetLinkUnplugged(std::string peer, bool unplugged) {
  return impl_->SubmitLinkUnplugged(std::move(peer), unplugged);
}

void Node::SetStaticPeers(std::map<std::string, std::string> peers) {
  {
    common::MutexLock lock(impl_->mu);
    impl_->static_peers = std::move(peers);
    impl_->peers_dirty = true;
  }
  impl_->cv.notify_one();
}

const std::string& Node::listen_url() const { return impl_->listen_url; }
const NodeOptions& Node::options() const { return impl_->options; }

}  // namespace instaface::runtime
