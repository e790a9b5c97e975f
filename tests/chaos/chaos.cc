// instaface-chaos: a Jepsen-style run against a whole cluster (GraphCluster: a private MariaDB and
// Redis, three agents, three graphservers) in network namespaces of its own (ChaosNetwork: a hub
// with MariaDB, Redis and this program; one namespace per node for its agent and graphserver),
// under faults drawn from a seed.
//
// Writers create entities with unique payloads, each under its own Idempotency-Key, through any
// live node, and retry every unknown outcome under the same key, as a careful client does. A
// sampler reads every node's shared memory every 10 ms, as the apps do, and counts any moment
// at which two nodes each hold a valid lease. Each round injects one fault, holds it, heals it,
// and waits until a write succeeds again. Afterwards every acknowledged write is looked up in
// MariaDB (its id, its key, its payload), every payload must be there exactly once, and every
// commit is checked against the fence in commit order (FenceAudit, from the binary log).
//
// Faults: the leader's agent killed (-9) or paused (SIGSTOP); the leader's graphserver killed or
// paused (the agents watch their app: --app-liveness-ms); the leader's link down; every packet to
// and from the leader dropped silently, or refused (TCP resets, ICMP unreachable); a split of the
// nodes with the leader in the minority, or in the majority; a one-way cut, the leader's packets
// to its peers lost (it still hears them), or theirs to it; a follower isolated; a new leader cut
// off from MariaDB's answers while it raises the fence (its statements arrive, their replies do
// not: the server keeps its session and its locks), then isolated; MariaDB restarted; Redis
// stopped.
//
// Prints one JSON report: per fault kind, the rounds, how long until a leader held a valid lease
// again, the longest gap between acknowledged writes, and the 503s by reason; then the totals.
// Exits 1 on any lost or duplicated write, any commit off the fence, any overlap of valid leases,
// or any round that did not recover, and 2 when the network or the cluster cannot be made. A
// stall (no write acknowledged for 3 s) prints a report of where it is to stderr while it lasts.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "chaos_network.h"
#include "fence_audit.h"
#include "graph_cluster.h"
#include "instaface/control/control_client.h"
#include "instaface/graphserver/http_client.h"
#include "instaface/graphserver/idempotency_key.h"
#include "instaface/view.h"

namespace instaface::testing {
namespace {

namespace http = boost::beast::http;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double MillisBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

enum class Fault {
  kKillLeaderAgent,
  kPauseLeaderAgent,
  kKillLeaderApp,
  kPauseLeaderApp,
  kLeaderLinkDown,
  kDropLeader,
  kRejectLeader,
  kSplitLeaderInMinority,
  kSplitLeaderInMajority,
  kOneWayFromLeader,
  kOneWayToLeader,
  kIsolateFollower,
  kCutDuringFenceRaise,
  kRestartDatabase,
  kStopRedis,
};

constexpr Fault kFaults[] = {
    Fault::kKillLeaderAgent,     Fault::kPauseLeaderAgent,      Fault::kKillLeaderApp,
    Fault::kPauseLeaderApp,      Fault::kLeaderLinkDown,        Fault::kDropLeader,
    Fault::kRejectLeader,        Fault::kSplitLeaderInMinority, Fault::kSplitLeaderInMajority,
    Fault::kOneWayFromLeader,    Fault::kOneWayToLeader,        Fault::kIsolateFollower,
    Fault::kCutDuringFenceRaise, Fault::kRestartDatabase,       Fault::kStopRedis};

// Faults after which another node must lead (the others leave the leader in place).
bool Deposes(Fault f) {
  return f != Fault::kSplitLeaderInMajority && f != Fault::kIsolateFollower &&
         f != Fault::kRestartDatabase && f != Fault::kStopRedis;
}

const char* FaultName(Fault f) {
  switch (f) {
    case Fault::kKillLeaderAgent:
      return "leader_agent_killed";
    case Fault::kPauseLeaderAgent:
      return "leader_agent_paused";
    case Fault::kKillLeaderApp:
      return "leader_app_killed";
    case Fault::kPauseLeaderApp:
      return "leader_app_paused";
    case Fault::kLeaderLinkDown:
      return "leader_link_down";
    case Fault::kDropLeader:
      return "leader_dropped";
    case Fault::kRejectLeader:
      return "leader_rejected";
    case Fault::kSplitLeaderInMinority:
      return "split_leader_in_minority";
    case Fault::kSplitLeaderInMajority:
      return "split_leader_in_majority";
    case Fault::kOneWayFromLeader:
      return "one_way_from_leader";
    case Fault::kOneWayToLeader:
      return "one_way_to_leader";
    case Fault::kIsolateFollower:
      return "follower_isolated";
    case Fault::kCutDuringFenceRaise:
      return "leader_cut_during_fence_raise";
    case Fault::kRestartDatabase:
      return "mariadb_restarted";
    case Fault::kStopRedis:
      return "redis_stopped";
  }
  return "?";
}

// What the writers saw, shared with the rounds.
struct Ledger {
  std::mutex mu;
  std::map<std::string, int64_t> acked;                             // key -> id, under mu
  std::vector<Clock::time_point> ack_times;                         // under mu
  std::map<std::string, uint64_t> unavailable;                      // 503 reasons, under mu
  std::vector<std::pair<Clock::time_point, std::string>> refusals;  // under mu
  uint64_t retries = 0;                                             // under mu
  uint64_t given_up = 0;  // writes still unknown when their writer gave up, under mu
};

// Short, stable names for the graphserver's 503 messages.
std::string ReasonOf(const std::string& body) {
  json parsed = json::parse(body, nullptr, false);
  std::string error = parsed.is_object() ? parsed.value("error", std::string()) : body;
  static const std::pair<const char*, const char*> kReasons[] = {
      {"could not reach the leader", "leader_unreachable"},
      {"the leader could not write", "leader_could_not_write"},
      {"no leader elected", "no_leader"},
      {"not responding", "agent_stale"},
      {"lease is not valid", "lease_not_valid"},
      {"does not hold the lease", "lease_not_held"},
      {"newer leader", "fence_lost"},
      {"forwarded write but is not the leader", "forwarded_to_non_leader"},
      {"shutting down", "shutting_down"},
      {"database", "database"},
      {"connect", "database"},
  };
  for (const auto& [needle, name] : kReasons) {
    if (error.find(needle) != std::string::npos) return name;
  }
  return "other";
}

// A careful client, as behind a load balancer with outlier ejection: each attempt waits at most
// `attempt_timeout`, and a node that gave no answer is passed over for a second, since a
// dropped packet gives no other sign. Sending again elsewhere is safe: the key writes once.
class Writer {
 public:
  Writer(GraphCluster& cluster, Ledger& ledger, int index, uint64_t seed,
         std::chrono::milliseconds attempt_timeout, const std::atomic<bool>& stop,
         const std::vector<std::atomic<bool>>& app_down)
      : cluster_(cluster),
        ledger_(ledger),
        index_(index),
        rng_(seed * 1000003 + static_cast<uint64_t>(index)),
        attempt_timeout_(attempt_timeout),
        stop_(stop),
        app_down_(app_down),
        passed_over_until_(static_cast<size_t>(cluster.size())) {}

  void Run() {
    for (uint64_t n = 0; !stop_; ++n) {
      const std::string key = "chaos-" + std::to_string(rng_()) + "-" + std::to_string(index_) +
                              "-" + std::to_string(n);
      const json body = {{"key", key}, {"writer", index_}, {"n", n}};
      Write(key, body.dump());
    }
  }

 private:
  // One create, sent again under its key while its outcome is unknown (up to 60 s, even past
  // the end of the run: it has been acknowledged to no one yet).
  void Write(const std::string& key, const std::string& body) {
    const auto give_up = Clock::now() + 60s;
    bool unknown = false;
    for (int attempt = 0; Clock::now() < give_up; ++attempt) {
      const int node = PickNode();
      graphserver::HttpClient& client = Client(node);
      graphserver::ClientResult r =
          client.Send(http::verb::post, "/api/graph/entities/chaos/create", body, attempt_timeout_,
                      {{graphserver::kIdempotencyKeyHeader, key}});
      if (!r.ok) passed_over_until_[static_cast<size_t>(node)] = Clock::now() + 1s;
      if (r.ok && r.response.result_int() == 200) {
        json id = json::parse(r.response.body(), nullptr, false);
        std::lock_guard<std::mutex> lock(ledger_.mu);
        ledger_.acked[key] = id.is_number_integer() ? id.get<int64_t>() : -1;
        ledger_.ack_times.push_back(Clock::now());
        if (attempt > 0) ledger_.retries += static_cast<uint64_t>(attempt);
        return;
      }
      if (r.ok) {
        const bool maybe = r.response[graphserver::kWriteOutcomeHeader] == "unknown";
        std::lock_guard<std::mutex> lock(ledger_.mu);
        if (r.response.result_int() == 503) ++ledger_.unavailable[ReasonOf(r.response.body())];
        unknown = unknown || maybe;
        if (!maybe && !unknown && r.response.result_int() != 503) {
          // A definite refusal that is not about availability: the run's own bug.
          ledger_.refusals.emplace_back(Clock::now(), r.response.body());
          return;
        }
      } else {
        // No answer: a connect that failed sent nothing, anything later may have arrived.
        unknown = unknown || r.error.rfind("connect", 0) != 0;
      }
      if (stop_ && !unknown) return;  // never sent, and the run is over
      std::this_thread::sleep_for(20ms);
    }
    std::lock_guard<std::mutex> lock(ledger_.mu);
    ++ledger_.given_up;
  }

  int PickNode() {
    std::vector<int> up, answering;
    const Clock::time_point now = Clock::now();
    for (int i = 0; i < cluster_.size(); ++i) {
      if (app_down_[static_cast<size_t>(i)]) continue;
      up.push_back(i);
      if (passed_over_until_[static_cast<size_t>(i)] <= now) answering.push_back(i);
    }
    const std::vector<int>& from = answering.empty() ? up : answering;
    if (from.empty()) return 0;
    return from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(rng_)];
  }

  graphserver::HttpClient& Client(int node) {
    auto it = clients_.find(node);
    if (it == clients_.end()) {
      it = clients_
               .emplace(node, std::make_unique<graphserver::HttpClient>(cluster_.node_host(node),
                                                                        cluster_.app_port(node)))
               .first;
    }
    return *it->second;
  }

  GraphCluster& cluster_;
  Ledger& ledger_;
  const int index_;
  std::mt19937_64 rng_;
  const std::chrono::milliseconds attempt_timeout_;
  const std::atomic<bool>& stop_;
  const std::vector<std::atomic<bool>>& app_down_;
  std::vector<Clock::time_point> passed_over_until_;
  std::map<int, std::unique_ptr<graphserver::HttpClient>> clients_;
};

// Reads every node's shared memory every 10 ms, as the apps read it.
class LeaseSampler {
 public:
  explicit LeaseSampler(GraphCluster& cluster) : cluster_(cluster) {}

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t overlaps() const { return overlaps_.load(); }
  uint64_t samples() const { return samples_.load(); }
  // The first sample at or after `since` in which a node other than `except` (-1: any) held a
  // valid lease.
  std::optional<Clock::time_point> FirstLeaseSince(Clock::time_point since, int except) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [t, holders] : lease_samples_) {
      if (t < since) continue;
      for (int h : holders) {
        if (h != except) return t;
      }
    }
    return std::nullopt;
  }
  std::string last_overlap() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_overlap_;
  }

 private:
  void Run() {
    while (!stop_) {
      // Opened afresh each time: a restarted agent makes a new segment under the same name.
      std::vector<int> holders;
      std::string described;
      for (int i = 0; i < cluster_.size(); ++i) {
        auto view = View::Open(cluster_.shm_name(i));
        if (!view.ok()) continue;
        const Snapshot s = view->snapshot();
        if (!s.stale && s.role == Role::kLeader && s.lease_valid) {
          holders.push_back(i);
          described += "n" + std::to_string(i) + " in term " + std::to_string(s.term) + "; ";
        }
      }
      ++samples_;
      const Clock::time_point now = Clock::now();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!holders.empty()) lease_samples_.emplace_back(now, holders);
        if (holders.size() > 1) {
          ++overlaps_;
          last_overlap_ = described;
        }
      }
      std::this_thread::sleep_for(10ms);
    }
  }

  GraphCluster& cluster_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> overlaps_{0};
  std::atomic<uint64_t> samples_{0};
  std::mutex mu_;
  std::vector<std::pair<Clock::time_point, std::vector<int>>> lease_samples_;  // under mu_
  std::string last_overlap_;                                                   // under mu_
  std::thread thread_;
};

struct RoundResult {
  Fault fault;
  int target = -1;
  // Fault to the first valid lease of another node (faults that depose the leader), or of any
  // node (the others: the leader keeps its lease).
  double reelection_ms = -1;
  double longest_gap_ms = 0;  // between acknowledged writes, fault to recovery
  bool recovered = false;
  std::map<std::string, uint64_t> unavailable;
};

struct Options {
  int rounds = 10;
  uint64_t seed = 0;
  bool seed_timings = false;
  int writers = 8;
  int hold_ms = 0;  // 0: by the timings
  int attempt_timeout_ms = 300;
  std::string report;
  std::vector<std::string> faults;
};

class Chaos {
 public:
  Chaos(GraphCluster& cluster, ChaosNetwork& network, const Options& options)
      : cluster_(cluster),
        network_(network),
        options_(options),
        rng_(options.seed),
        app_down_(cluster.size()) {
    for (auto& d : app_down_) d = false;
  }

  int Run() {
    sampler_ = std::make_unique<LeaseSampler>(cluster_);
    sampler_->Start();
    std::vector<std::thread> writers;
    for (int w = 0; w < options_.writers; ++w) {
      writers.emplace_back([this, w] {
        Writer(cluster_, ledger_, w, options_.seed,
               std::chrono::milliseconds(options_.attempt_timeout_ms), stop_writers_, app_down_)
            .Run();
      });
    }
    std::thread stall_watch([this] { WatchForStalls(); });
    std::this_thread::sleep_for(1s);  // writes flowing before the first fault
    // Every enabled kind once per block of rounds, in an order the seed draws.
    const std::vector<Fault> kinds = EnabledFaults();
    std::vector<Fault> order;
    for (int round = 0; round < options_.rounds; ++round) {
      if (order.empty()) {
        order = kinds;
        std::shuffle(order.begin(), order.end(), rng_);
      }
      const Fault fault = order.back();
      order.pop_back();
      results_.push_back(RunRound(fault));
      const RoundResult& r = results_.back();
      fprintf(stderr, "round %d: %s on n%d: %s, lease again after %.0f ms, longest gap %.0f ms\n",
              round + 1, FaultName(fault), r.target, r.recovered ? "recovered" : "NOT RECOVERED",
              r.reelection_ms, r.longest_gap_ms);
      if (!r.recovered) break;
    }
    stop_writers_ = true;
    for (auto& w : writers) w.join();
    stall_watch.join();
    sampler_->Stop();
    return Report();
  }

 private:
  // A stall: no write acknowledged for 3 s, longer than any election. Reported once per stall,
  // while it lasts, with what tells where it is: each node's view, readiness and an answer to a
  // write of its own (type probe, outside the ledger), each agent's status, what MariaDB is
  // running and waiting on, and the tails of the logs.
  void WatchForStalls() {
    bool reported = false;
    while (!stop_writers_) {
      std::this_thread::sleep_for(200ms);
      Clock::time_point last;
      {
        std::lock_guard<std::mutex> lock(ledger_.mu);
        if (ledger_.ack_times.empty()) continue;
        last = ledger_.ack_times.back();
      }
      if (Clock::now() - last < 3s) {
        reported = false;
        continue;
      }
      if (reported) continue;
      reported = true;
      fprintf(stderr, "STALL: no write acknowledged for %.0f ms\n%s",
              MillisBetween(last, Clock::now()), StallReport().c_str());
    }
  }

  std::string StallReport() {
    std::string report;
    for (int i = 0; i < cluster_.size(); ++i) {
      const std::string node = "n" + std::to_string(i);
      if (auto view = View::Open(cluster_.shm_name(i)); view.ok()) {
        const Snapshot v = view->snapshot();
        report += node + " view: role " + RoleName(v.role) + ", term " + std::to_string(v.term) +
                  ", leader '" + v.leader_id + "', lease " +
                  (v.lease_valid ? "valid" : "not valid") + (v.stale ? ", stale" : "") + "\n";
      }
      control::Request status;
      auto agent = control::CallOnce(cluster_.control_socket(i), status, 1s);
      report += node + " agent: " + (agent.ok() ? agent->dump() : agent.status().message()) + "\n";
      graphserver::HttpClient client(cluster_.node_host(i), cluster_.app_port(i));
      for (const auto& [method, target, body] :
           {std::tuple{http::verb::get, "/readyz", std::string()},
            std::tuple{http::verb::post, "/api/graph/entities/probe/create",
                       std::string(R"({"probe":true})")}}) {
        const Clock::time_point t = Clock::now();
        auto r = client.Send(method, target, body, 2s);
        report += node + " " + target + ": " +
                  (r.ok ? std::to_string(r.response.result_int()) + " " + r.response.body()
                        : "no answer: " + r.error) +
                  " (" + std::to_string(static_cast<int>(MillisBetween(t, Clock::now()))) +
                  " ms)\n";
      }
    }
    std::string out, err;
    cluster_.db().Execute(
        "SELECT ID, HOST, COMMAND, TIME, STATE, LEFT(INFO, 80) FROM information_schema.PROCESSLIST "
        "WHERE COMMAND <> 'Sleep' OR TIME < 100; SELECT * FROM "
        "information_schema.INNODB_LOCK_WAITS",
        &out, &err);
    report += "mariadb:\n" + out + err + "\n" + cluster_.Logs() + "\n";
    return report;
  }

  std::vector<Fault> EnabledFaults() const {
    std::vector<Fault> kinds;
    for (Fault f : kFaults) {
      if (options_.faults.empty() || std::find(options_.faults.begin(), options_.faults.end(),
                                               FaultName(f)) != options_.faults.end()) {
        kinds.push_back(f);
      }
    }
    return kinds;
  }

  std::chrono::milliseconds Hold() const {
    if (options_.hold_ms > 0) return std::chrono::milliseconds(options_.hold_ms);
    return options_.seed_timings ? 3000ms : 1000ms;
  }

  RoundResult RunRound(Fault fault) {
    RoundResult r;
    r.fault = fault;
    std::map<std::string, uint64_t> before = Unavailable();
    const int leader = cluster_.WaitForLeader(30s);
    if (leader < 0) return r;
    const int n = cluster_.size();
    const int follower = (leader + 1 + static_cast<int>(rng_() % (n - 1))) % n;
    r.target = fault == Fault::kIsolateFollower || fault == Fault::kCutDuringFenceRaise ? follower
                                                                                        : leader;
    // The node that must lose leadership, and when the fault that deposes it began.
    int deposed = leader;
    Clock::time_point t0 = Clock::now();
    Clock::time_point deposing = t0;
    std::string error;
    bool resumed_while_cut = true;  // only the fence-raise cut asks for more than a recovery
    auto net = [&](bool ok) {
      if (!ok) fprintf(stderr, "network: %s\n", error.c_str());
    };
    switch (fault) {
      case Fault::kKillLeaderAgent:
        cluster_.agent(leader).Kill();
        std::this_thread::sleep_for(Hold());
        cluster_.RestartAgent(leader, &error);
        break;
      case Fault::kPauseLeaderAgent:
        cluster_.agent(leader).Stop();
        std::this_thread::sleep_for(Hold());
        cluster_.agent(leader).Continue();
        break;
      case Fault::kKillLeaderApp:
        app_down_[static_cast<size_t>(leader)] = true;
        cluster_.graphserver(leader).Kill();
        std::this_thread::sleep_for(Hold());
        cluster_.RestartGraphserver(leader, &error);
        WaitForApp(leader);
        app_down_[static_cast<size_t>(leader)] = false;
        break;
      case Fault::kPauseLeaderApp:
        app_down_[static_cast<size_t>(leader)] = true;
        cluster_.graphserver(leader).Stop();
        std::this_thread::sleep_for(Hold());
        cluster_.graphserver(leader).Continue();
        app_down_[static_cast<size_t>(leader)] = false;
        break;
      case Fault::kLeaderLinkDown:
        net(network_.SetLink(leader, false, &error));
        std::this_thread::sleep_for(Hold());
        net(network_.Heal(leader, &error));
        break;
      case Fault::kDropLeader:
      case Fault::kRejectLeader:
      case Fault::kIsolateFollower: {
        Cut everything;
        everything.reject = fault == Fault::kRejectLeader;
        net(network_.Apply(r.target, {everything}, &error));
        std::this_thread::sleep_for(Hold());
        net(network_.Heal(r.target, &error));
        break;
      }
      case Fault::kSplitLeaderInMinority:
      case Fault::kSplitLeaderInMajority: {
        // The leader's side: a minority (n-1)/2 strong, or a majority n/2+1 strong, the rest of
        // its side drawn from the followers. Only traffic between the sides stops: both still
        // reach MariaDB, Redis and the clients.
        const int side = fault == Fault::kSplitLeaderInMinority ? (n - 1) / 2 : n / 2 + 1;
        std::vector<int> order;
        for (int i = 0; i < n; ++i) {
          if (i != leader) order.push_back(i);
        }
        std::shuffle(order.begin(), order.end(), rng_);
        order.insert(order.begin(), leader);
        Split(std::vector<int>(order.begin(), order.begin() + side),
              std::vector<int>(order.begin() + side, order.end()), &error);
        std::this_thread::sleep_for(Hold());
        for (int i = 0; i < n; ++i) net(network_.Heal(i, &error));
        break;
      }
      case Fault::kOneWayFromLeader:
      case Fault::kOneWayToLeader: {
        Cut one_way;
        for (int i = 0; i < n; ++i) {
          if (i != leader) one_way.peers.push_back(network_.node_host(i));
        }
        one_way.inbound = fault == Fault::kOneWayToLeader;
        one_way.outbound = fault == Fault::kOneWayFromLeader;
        net(network_.Apply(leader, {one_way}, &error));
        std::this_thread::sleep_for(Hold());
        net(network_.Heal(leader, &error));
        break;
      }
      case Fault::kCutDuringFenceRaise: {
        // The follower's COMMITs stop reaching MariaDB (every copy of the packet, by its bytes);
        // then it is made leader. Its fence raise runs the UPDATE, which takes the fence row's
        // exclusive lock, and its COMMIT never arrives: the server keeps that session and its
        // lock, as if the new leader had died mid-transaction. Then the node is cut off whole,
        // so that leadership moves on, and the next leader's raise must get past that lock
        // while the node is still cut off: the round recovers only if writes resume before it
        // is healed (a heal would let its COMMIT through and free the lock).
        Cut commits;
        commits.peers = {ChaosNetwork::hub_host()};
        commits.inbound = false;
        commits.port = cluster_.db().port();
        // A MySQL packet: 3-byte length (7), sequence 0, COM_QUERY (3), then the statement.
        commits.payload_prefix = std::string("\x07\x00\x00\x00\x03", 5) + "COMMIT";
        net(network_.Apply(follower, {commits}, &error));
        control::Request transfer;
        transfer.command = control::Command::kTransfer;
        transfer.transfer_to = "n" + std::to_string(follower);
        auto reply = control::CallOnce(cluster_.control_socket(leader), transfer, 2s);
        if (!reply.ok()) fprintf(stderr, "transfer: %s\n", reply.status().message().c_str());
        const auto led = Clock::now() + 2s;
        while (!Leads(follower) && Clock::now() < led) std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(200ms);  // its raise is out, and stuck before COMMIT
        deposed = follower;
        deposing = Clock::now();
        Cut everything;
        net(network_.Apply(follower, {everything}, &error));
        std::this_thread::sleep_for(Hold());
        resumed_while_cut = FirstAckSince(deposing, deposing + 30s).has_value();
        net(network_.Heal(follower, &error));
        break;
      }
      case Fault::kRestartDatabase:
        cluster_.db().Stop();
        if (!cluster_.db().Start(&error)) fprintf(stderr, "mariadb restart: %s\n", error.c_str());
        break;
      case Fault::kStopRedis:
        cluster_.redis().Stop();
        std::this_thread::sleep_for(Hold());
        if (!cluster_.redis().Start(&error)) fprintf(stderr, "redis restart: %s\n", error.c_str());
        break;
    }
    if (!error.empty()) fprintf(stderr, "heal: %s\n", error.c_str());
    // Recovered: a write acknowledged after the heal, within 30 s.
    const Clock::time_point healed = Clock::now();
    r.recovered = resumed_while_cut && FirstAckSince(healed, healed + 30s).has_value();
    std::this_thread::sleep_for(300ms);  // the writes settle before the next fault
    const Clock::time_point end = Clock::now();
    if (auto lease = sampler_->FirstLeaseSince(deposing, Deposes(fault) ? deposed : -1)) {
      r.reelection_ms = MillisBetween(deposing, *lease);
    }
    r.longest_gap_ms = LongestGap(t0, end);
    std::map<std::string, uint64_t> after = Unavailable();
    for (const auto& [reason, count] : after) {
      const uint64_t was = before.count(reason) ? before[reason] : 0;
      if (count > was) r.unavailable[reason] = count - was;
    }
    return r;
  }

  // Waits until `deadline` for a write acknowledged after `since`.
  std::optional<Clock::time_point> FirstAckSince(Clock::time_point since,
                                                 Clock::time_point deadline) {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(ledger_.mu);
        std::optional<Clock::time_point> first;
        for (auto it = ledger_.ack_times.rbegin(); it != ledger_.ack_times.rend(); ++it) {
          if (*it <= since) break;
          first = *it;
        }
        if (first) return first;
      }
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(20ms);
    }
  }

  // No packets between the two sides' nodes; each keeps the hub.
  void Split(const std::vector<int>& a, const std::vector<int>& b, std::string* error) {
    auto hosts = [&](const std::vector<int>& nodes) {
      std::vector<std::string> out;
      for (int i : nodes) out.push_back(network_.node_host(i));
      return out;
    };
    for (const auto& [side, other] : {std::pair{a, b}, std::pair{b, a}}) {
      Cut cut;
      cut.peers = hosts(other);
      if (cut.peers.empty()) continue;
      for (int i : side) {
        if (!network_.Apply(i, {cut}, error)) fprintf(stderr, "split: %s\n", error->c_str());
      }
    }
  }

  bool Leads(int node) {
    auto view = View::Open(cluster_.shm_name(node));
    return view.ok() && view->is_leader();
  }

  void WaitForApp(int node) {
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
      auto r = cluster_.Send(node, http::verb::get, "/healthz", "", 500ms);
      if (r.ok && r.response.result_int() == 200) return;
      std::this_thread::sleep_for(20ms);
    }
  }

  std::map<std::string, uint64_t> Unavailable() {
    std::lock_guard<std::mutex> lock(ledger_.mu);
    return ledger_.unavailable;
  }

  double LongestGap(Clock::time_point from, Clock::time_point to) {
    std::lock_guard<std::mutex> lock(ledger_.mu);
    std::vector<Clock::time_point> times;
    for (Clock::time_point t : ledger_.ack_times) {
      if (t >= from && t <= to) times.push_back(t);
    }
    std::sort(times.begin(), times.end());
    double longest = 0;
    Clock::time_point last = from;
    for (Clock::time_point t : times) {
      longest = std::max(longest, MillisBetween(last, t));
      last = t;
    }
    return std::max(longest, MillisBetween(last, to));
  }

  // Every acknowledged write in MariaDB, with its key and payload, and every payload once.
  int Report() {
    std::lock_guard<std::mutex> lock(ledger_.mu);
    uint64_t lost = 0;
    std::string lost_example;
    const std::string db = cluster_.database();
    // Every row of the run at once: id, key, the key in its payload.
    std::string out, err;
    std::map<std::string, std::pair<int64_t, std::string>> stored;  // key -> (id, payload key)
    if (!cluster_.db().Execute("SELECT idempotency_key, id, JSON_VALUE(attributes, '$.key') FROM " +
                                   db + ".entities WHERE type = 'chaos'",
                               &out, &err)) {
      fprintf(stderr, "chaos: reading the rows back failed: %s\n", err.c_str());
      lost = ledger_.acked.size();
    }
    size_t pos = 0;
    while (pos < out.size()) {
      size_t end = out.find('\n', pos);
      if (end == std::string::npos) end = out.size();
      const std::string line = out.substr(pos, end - pos);
      pos = end + 1;
      const size_t a = line.find('\t');
      const size_t b = a == std::string::npos ? a : line.find('\t', a + 1);
      if (b == std::string::npos) continue;
      stored[line.substr(0, a)] = {std::stoll(line.substr(a + 1, b - a - 1)), line.substr(b + 1)};
    }
    for (const auto& [key, id] : ledger_.acked) {
      auto it = stored.find(key);
      if (it == stored.end() || it->second.first != id || it->second.second != key) {
        ++lost;
        if (lost_example.empty()) {
          lost_example = key + " acknowledged as " + std::to_string(id) +
                         (it == stored.end() ? ", no row has its key"
                                             : ", its row is " + std::to_string(it->second.first));
        }
      }
    }
    const std::string duplicates =
        cluster_.QueryOne("SELECT COUNT(*) FROM (SELECT JSON_VALUE(attributes, '$.key') k FROM " +
                          db + ".entities WHERE type = 'chaos' GROUP BY k HAVING COUNT(*) > 1) d");
    const std::string rows =
        cluster_.QueryOne("SELECT COUNT(*) FROM " + db + ".entities WHERE type = 'chaos'");
    const FenceAuditResult audit = AuditFence();
    uint64_t unrecovered = 0;
    json by_fault = json::object();
    for (const RoundResult& r : results_) {
      json& f = by_fault[FaultName(r.fault)];
      if (f.is_null()) {
        f = {{"rounds", 0},
             {"reelection_ms", json::array()},
             {"longest_gap_ms", json::array()},
             {"unavailable", json::object()}};
      }
      f["rounds"] = f["rounds"].get<int>() + 1;
      f["reelection_ms"].push_back(static_cast<int64_t>(r.reelection_ms));
      f["longest_gap_ms"].push_back(static_cast<int64_t>(r.longest_gap_ms));
      for (const auto& [reason, n] : r.unavailable) {
        f["unavailable"][reason] = f["unavailable"].value(reason, uint64_t{0}) + n;
      }
      if (!r.recovered) ++unrecovered;
    }
    for (auto& [name, f] : by_fault.items()) {
      for (const char* series : {"reelection_ms", "longest_gap_ms"}) {
        std::vector<int64_t> v = f[series].get<std::vector<int64_t>>();
        std::sort(v.begin(), v.end());
        f[std::string(series) + "_median"] = v.empty() ? 0 : v[v.size() / 2];
        f[std::string(series) + "_max"] = v.empty() ? 0 : v.back();
      }
    }
    const uint64_t dup =
        duplicates.empty() || duplicates.rfind("ERROR", 0) == 0 ? 1 : std::stoull(duplicates);
    json report = {{"seed", options_.seed},
                   {"timings", options_.seed_timings ? "seed 500/750/1000" : "fast 50/150/300"},
                   {"rounds", results_.size()},
                   {"writers", options_.writers},
                   {"attempt_timeout_ms", options_.attempt_timeout_ms},
                   {"faults", by_fault},
                   {"acknowledged", ledger_.acked.size()},
                   {"rows", rows},
                   {"lost", lost},
                   {"duplicates", dup},
                   {"fence_audit",
                    {{"rows", audit.rows},
                     {"below_fence", audit.below_fence},
                     {"above_fence", audit.above_fence},
                     {"without_term", audit.without_term},
                     {"fence_changes", audit.fence_changes},
                     {"highest_fence", audit.highest_fence}}},
                   {"lease_overlaps", sampler_->overlaps()},
                   {"lease_samples", sampler_->samples()},
                   {"unrecovered_rounds", unrecovered},
                   {"retries", ledger_.retries},
                   {"writes_left_unknown", ledger_.given_up},
                   {"refused_other", ledger_.refusals.size()}};
    if (!lost_example.empty()) report["lost_example"] = lost_example;
    if (!audit.first_violation.empty()) report["fence_violation"] = audit.first_violation;
    if (sampler_->overlaps() > 0) report["last_overlap"] = sampler_->last_overlap();
    if (!ledger_.refusals.empty()) report["refusal_example"] = ledger_.refusals.front().second;
    const std::string text = report.dump(2);
    printf("%s\n", text.c_str());
    if (!options_.report.empty()) {
      if (FILE* f = fopen(options_.report.c_str(), "w")) {
        fprintf(f, "%s\n", text.c_str());
        fclose(f);
      }
    }
    const bool off_fence = audit.below_fence + audit.above_fence + audit.without_term > 0 ||
                           audit.rows < ledger_.acked.size();
    const bool failed = lost > 0 || dup > 0 || off_fence || sampler_->overlaps() > 0 ||
                        unrecovered > 0 || results_.size() < static_cast<size_t>(options_.rounds) ||
                        ledger_.given_up > 0 || !ledger_.refusals.empty();
    if (failed) fprintf(stderr, "chaos: FAILED (seed %llu)\n", (unsigned long long)options_.seed);
    return failed ? 1 : 0;
  }

  // Every commit of the run against the fence, in commit order, from the primary's binary log.
  FenceAuditResult AuditFence() {
    const std::string db = cluster_.database();
    std::map<std::string, int> columns;
    for (const char* table : {"entities", "associations"}) {
      const std::string position = cluster_.QueryOne(
          "SELECT ORDINAL_POSITION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '" + db +
          "' AND TABLE_NAME = '" + table + "' AND COLUMN_NAME = 'leader_term'");
      columns[table] = std::atoi(position.c_str());
    }
    FenceAuditor auditor(db, columns);
    std::string error;
    if (!AuditBinlog(cluster_.db().BinlogFiles(), scratch_.path(), auditor, &error)) {
      fprintf(stderr, "chaos: the fence audit failed: %s\n", error.c_str());
      FenceAuditResult failed;
      failed.first_violation = error;
      failed.without_term = 1;  // fails the run
      return failed;
    }
    return auditor.result();
  }

  GraphCluster& cluster_;
  ChaosNetwork& network_;
  TempDir scratch_{"ifx-chaos"};
  const Options options_;
  std::mt19937_64 rng_;
  Ledger ledger_;
  std::vector<std::atomic<bool>> app_down_;
  std::atomic<bool> stop_writers_{false};
  std::unique_ptr<LeaseSampler> sampler_;
  std::vector<RoundResult> results_;
};

}  // namespace
}  // namespace instaface::testing

int main(int argc, char** argv) {
  using namespace instaface::testing;
  Options options;
  options.seed = static_cast<uint64_t>(Clock::now().time_since_epoch().count()) % 1000000;
  std::string agent = INSTAFACE_AGENT_BINARY;
  std::string graphserver = INSTAFACE_GRAPHSERVER_BINARY;
  CLI::App app{
      "instaface-chaos: faults drawn from a seed against a whole cluster (MariaDB, Redis, and an "
      "agent and a graphserver per node) in network namespaces of its own, writers that retry "
      "unknown outcomes under their Idempotency-Key, a lease sampler every 10 ms; then every "
      "acknowledged write is checked in MariaDB and every commit against the fence in the "
      "binary log. Needs root, ip (iproute2) and nft (nftables). Prints a JSON report; exits 1 "
      "on a lost or duplicated write, a commit off the fence, an overlap of valid leases or a "
      "round that did not recover, 2 when the network or the cluster cannot be made."};
  int nodes = 3;
  app.add_option("--rounds", options.rounds, "faults to inject, one per round")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--seed", options.seed, "draws the faults (default: from the clock; printed)");
  app.add_flag("--seed-timings", options.seed_timings,
               "the agents' default timings (heartbeat 500 ms, election 750-1000 ms) instead of "
               "fast ones (50, 150-300)");
  app.add_option("--nodes", nodes, "nodes (an agent and a graphserver each)")
      ->check(CLI::Range(3, 9))
      ->capture_default_str();
  app.add_option("--writers", options.writers, "concurrent writers")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--hold-ms", options.hold_ms,
                 "how long a fault lasts before it is healed (default 1000, 3000 with "
                 "--seed-timings)")
      ->check(CLI::Range(0, 600000));
  app.add_option("--attempt-timeout-ms", options.attempt_timeout_ms,
                 "how long a writer waits for one attempt before it sends the write again, "
                 "under its key, to another node")
      ->check(CLI::Range(10, 60000))
      ->capture_default_str();
  app.add_option("--faults", options.faults,
                 "only these fault kinds: leader_agent_killed, leader_agent_paused, "
                 "leader_app_killed, leader_app_paused, leader_link_down, leader_dropped, "
                 "leader_rejected, split_leader_in_minority, split_leader_in_majority, "
                 "one_way_from_leader, one_way_to_leader, follower_isolated, "
                 "leader_cut_during_fence_raise, mariadb_restarted, redis_stopped")
      ->delimiter(',');
  app.add_option("--report", options.report, "also write the JSON report to this file");
  app.add_option("--agent", agent, "instaface-agent binary")->capture_default_str();
  app.add_option("--graphserver", graphserver, "instaface-graphserver binary")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  for (const std::string& f : options.faults) {
    bool known = false;
    for (Fault k : kFaults) known = known || f == FaultName(k);
    if (!known) {
      fprintf(stderr, "instaface-chaos: unknown fault kind '%s' (see --help)\n", f.c_str());
      return 2;
    }
  }

  // The hosts first, and this thread into the hub before any other thread starts: every thread
  // and server started from here on is there.
  ChaosNetwork network;
  std::string error;
  if (!network.Create(nodes, &error) || !network.EnterHub(&error)) {
    fprintf(stderr, "instaface-chaos: the network could not be made: %s\n", error.c_str());
    return 2;
  }
  GraphClusterOptions o;
  o.nodes = nodes;
  for (int i = 0; i < nodes; ++i) o.node_netns.push_back(network.node_netns(i));
  o.node_hosts = network.node_hosts();
  o.server_host = ChaosNetwork::hub_host();
  o.db_binlog = true;
  o.agent_binary = agent;
  o.graphserver_binary = graphserver;
  o.database = "chaos";
  if (options.seed_timings) {
    o.heartbeat_ms = 500;
    o.election_min_ms = 750;
    o.election_max_ms = 1000;
  }
  o.extra_graphserver_args = {"--write-retry-ms", "1500"};
  // Leadership follows a live app: a killed or hung graphserver's agent hands over.
  o.extra_agent_args = {"--app-liveness-ms", options.seed_timings ? "500" : "200"};
  GraphCluster cluster(o);
  if (!cluster.Start(&error)) {
    fprintf(stderr, "instaface-chaos: the cluster did not start: %s\n", error.c_str());
    return 2;
  }
  fprintf(stderr, "instaface-chaos: seed %llu, %d rounds, %d writers\n",
          static_cast<unsigned long long>(options.seed), options.rounds, options.writers);
  Chaos chaos(cluster, network, options);
  const int status = chaos.Run();
  if (status != 0) fprintf(stderr, "%s\n", cluster.Logs().c_str());
  return status;
}
