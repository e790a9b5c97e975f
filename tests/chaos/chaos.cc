// instaface-chaos: a Jepsen-style run against a whole cluster on loopback (GraphCluster: a
// private MariaDB and Redis, three agents, three graphservers), under faults drawn from a seed.
//
// Writers create entities with unique payloads, each under its own Idempotency-Key, through any
// live node, and retry every unknown outcome under the same key, as a careful client does. A
// sampler reads every node's shared memory every 10 ms, as the apps do, and counts any moment
// at which two nodes each hold a valid lease. Each round injects one fault, holds it, heals it,
// and waits until a write succeeds again. Afterwards every acknowledged write is looked up in
// MariaDB (its id, its key, its payload), and every payload must be there exactly once.
//
// Faults: the leader's agent killed (-9) or paused (SIGSTOP), the leader's graphserver killed or
// paused (the agents watch their app: --app-liveness-ms), the leader or a follower taken out of the
// election (the agent's unplug: it neither sends nor answers, a partition of that node from its
// peers), MariaDB restarted, Redis stopped.
//
// Prints one JSON report: per fault kind, the rounds, how long until a leader held a valid lease
// again, the longest gap between acknowledged writes, and the 503s by reason; then the totals.
// Exits 1 on any lost or duplicated write, any overlap of valid leases, or any round that did not
// recover, and 2 when the cluster cannot be started.
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
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

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
  kIsolateLeader,
  kIsolateFollower,
  kRestartDatabase,
  kStopRedis,
};

constexpr Fault kFaults[] = {Fault::kKillLeaderAgent, Fault::kPauseLeaderAgent,
                             Fault::kKillLeaderApp,   Fault::kPauseLeaderApp,
                             Fault::kIsolateLeader,   Fault::kIsolateFollower,
                             Fault::kRestartDatabase, Fault::kStopRedis};

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
    case Fault::kIsolateLeader:
      return "leader_isolated";
    case Fault::kIsolateFollower:
      return "follower_isolated";
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

class Writer {
 public:
  Writer(GraphCluster& cluster, Ledger& ledger, int index, uint64_t seed,
         const std::atomic<bool>& stop, const std::vector<std::atomic<bool>>& app_down)
      : cluster_(cluster),
        ledger_(ledger),
        index_(index),
        rng_(seed * 1000003 + static_cast<uint64_t>(index)),
        stop_(stop),
        app_down_(app_down) {}

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
          client.Send(http::verb::post, "/api/graph/entities/chaos/create", body, 5s,
                      {{graphserver::kIdempotencyKeyHeader, key}});
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
    std::vector<int> up;
    for (int i = 0; i < cluster_.size(); ++i) {
      if (!app_down_[static_cast<size_t>(i)]) up.push_back(i);
    }
    if (up.empty()) return 0;
    return up[std::uniform_int_distribution<size_t>(0, up.size() - 1)(rng_)];
  }

  graphserver::HttpClient& Client(int node) {
    auto it = clients_.find(node);
    if (it == clients_.end()) {
      it = clients_
               .emplace(node, std::make_unique<graphserver::HttpClient>("127.0.0.1",
                                                                        cluster_.app_port(node)))
               .first;
    }
    return *it->second;
  }

  GraphCluster& cluster_;
  Ledger& ledger_;
  const int index_;
  std::mt19937_64 rng_;
  const std::atomic<bool>& stop_;
  const std::vector<std::atomic<bool>>& app_down_;
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
  std::string report;
  std::vector<std::string> faults;
};

class Chaos {
 public:
  Chaos(GraphCluster& cluster, const Options& options)
      : cluster_(cluster), options_(options), rng_(options.seed), app_down_(cluster.size()) {
    for (auto& d : app_down_) d = false;
  }

  int Run() {
    sampler_ = std::make_unique<LeaseSampler>(cluster_);
    sampler_->Start();
    std::vector<std::thread> writers;
    for (int w = 0; w < options_.writers; ++w) {
      writers.emplace_back([this, w] {
        Writer(cluster_, ledger_, w, options_.seed, stop_writers_, app_down_).Run();
      });
    }
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
    sampler_->Stop();
    return Report();
  }

 private:
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
    int follower = (leader + 1) % cluster_.size();
    r.target = fault == Fault::kIsolateFollower ? follower : leader;
    const Clock::time_point t0 = Clock::now();
    std::string error;
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
      case Fault::kIsolateLeader:
      case Fault::kIsolateFollower:
        Unplug(r.target, true);
        std::this_thread::sleep_for(Hold());
        Unplug(r.target, false);
        break;
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
    const Clock::time_point healed = Clock::now();
    // Recovered: a write acknowledged after the heal, within 30 s.
    const auto deadline = healed + 30s;
    std::optional<Clock::time_point> first_ack;
    while (Clock::now() < deadline && !first_ack) {
      std::this_thread::sleep_for(20ms);
      std::lock_guard<std::mutex> lock(ledger_.mu);
      for (auto it = ledger_.ack_times.rbegin(); it != ledger_.ack_times.rend(); ++it) {
        if (*it <= healed) break;
        first_ack = *it;
      }
    }
    r.recovered = first_ack.has_value();
    std::this_thread::sleep_for(300ms);  // the writes settle before the next fault
    const Clock::time_point end = Clock::now();
    // With the apps watched, losing the leader's app deposes it too.
    const bool deposes = fault == Fault::kKillLeaderAgent || fault == Fault::kPauseLeaderAgent ||
                         fault == Fault::kIsolateLeader || fault == Fault::kKillLeaderApp ||
                         fault == Fault::kPauseLeaderApp;
    if (auto lease = sampler_->FirstLeaseSince(t0, deposes ? leader : -1)) {
      r.reelection_ms = MillisBetween(t0, *lease);
    }
    r.longest_gap_ms = LongestGap(t0, end);
    std::map<std::string, uint64_t> after = Unavailable();
    for (const auto& [reason, n] : after) {
      const uint64_t was = before.count(reason) ? before[reason] : 0;
      if (n > was) r.unavailable[reason] = n - was;
    }
    return r;
  }

  void Unplug(int node, bool on) {
    control::Request request;
    request.command = control::Command::kUnplug;
    request.unplug_on = on;
    auto reply = control::CallOnce(cluster_.control_socket(node), request, 2s);
    if (!reply.ok()) fprintf(stderr, "unplug n%d: %s\n", node, reply.status().message().c_str());
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
                   {"faults", by_fault},
                   {"acknowledged", ledger_.acked.size()},
                   {"rows", rows},
                   {"lost", lost},
                   {"duplicates", dup},
                   {"lease_overlaps", sampler_->overlaps()},
                   {"lease_samples", sampler_->samples()},
                   {"unrecovered_rounds", unrecovered},
                   {"retries", ledger_.retries},
                   {"writes_left_unknown", ledger_.given_up},
                   {"refused_other", ledger_.refusals.size()}};
    if (!lost_example.empty()) report["lost_example"] = lost_example;
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
    const bool failed = lost > 0 || dup > 0 || sampler_->overlaps() > 0 || unrecovered > 0 ||
                        results_.size() < static_cast<size_t>(options_.rounds) ||
                        ledger_.given_up > 0 || !ledger_.refusals.empty();
    if (failed) fprintf(stderr, "chaos: FAILED (seed %llu)\n", (unsigned long long)options_.seed);
    return failed ? 1 : 0;
  }

  GraphCluster& cluster_;
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
      "instaface-chaos: faults drawn from a seed against a whole cluster on loopback (MariaDB, "
      "Redis, 3 agents, 3 graphservers), writers that retry unknown outcomes under their "
      "Idempotency-Key, a lease sampler every 10 ms; then every acknowledged write is checked "
      "in MariaDB. Prints a JSON report; exits 1 on a lost or duplicated write, an overlap of "
      "valid leases or a round that did not recover."};
  app.add_option("--rounds", options.rounds, "faults to inject, one per round")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--seed", options.seed, "draws the faults (default: from the clock; printed)");
  app.add_flag("--seed-timings", options.seed_timings,
               "the agents' default timings (heartbeat 500 ms, election 750-1000 ms) instead of "
               "fast ones (50, 150-300)");
  app.add_option("--writers", options.writers, "concurrent writers")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--hold-ms", options.hold_ms,
                 "how long a fault lasts before it is healed (default 1000, 3000 with "
                 "--seed-timings)")
      ->check(CLI::Range(0, 600000));
  app.add_option("--faults", options.faults,
                 "only these fault kinds: leader_agent_killed, leader_agent_paused, "
                 "leader_app_killed, leader_app_paused, leader_isolated, follower_isolated, "
                 "mariadb_restarted, redis_stopped")
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

  GraphClusterOptions o;
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
  std::string error;
  if (!cluster.Start(&error)) {
    fprintf(stderr, "instaface-chaos: the cluster did not start: %s\n", error.c_str());
    return 2;
  }
  fprintf(stderr, "instaface-chaos: seed %llu, %d rounds, %d writers\n",
          static_cast<unsigned long long>(options.seed), options.rounds, options.writers);
  Chaos chaos(cluster, options);
  const int status = chaos.Run();
  if (status != 0) fprintf(stderr, "%s\n", cluster.Logs().c_str());
  return status;
}
