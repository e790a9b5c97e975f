// instaface-failover-probe: how fast real instaface-agent processes (with a private Redis on
// loopback) agree on a leader after a start, a kill -9 of the leader, a SIGTERM of the leader
// and a SIGSTOP of the leader (then SIGCONT), and what an idle agent costs in CPU and memory.
// Agreement is read from each agent's shared-memory View, polled in-process every 0.5 ms
// (Cluster::AgreedLeader: every agent in the set names the same leader and term, and that
// leader holds a valid lease).
//
//   instaface-failover-probe [--trials=20] [--idle-seconds=30] [--idle-nodes=5]
//                            [--only=start,kill,term,idle,stop,scale] [--stop-ms=N]
//                            [--scale-nodes=3,51,101,201]
//                            [--samples=PATH]
//
// Without --only it measures start, kill, term and idle; stop runs only when named, since each
// of its trials holds the leader stopped for --stop-ms (default: the timings' election_max plus
// 2000 ms, long enough for a new leader). --samples writes every trial's figure in ms as one
// JSON object keyed by measurement ("seed.kill", "fast.stop.failover", ...; "<key>.failed"
// counts failed trials, "seed.stop.hold_ms" is the hold), for scripts that do their own
// statistics (scripts/bench-peers).
//
// Prints one line per measurement: median, p90 and max over the trials, and the agents'
// command line. This is a benchmark, not a test: it asserts nothing about the numbers.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "cluster.h"

namespace instaface::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr auto kGiveUp = 10s;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Every trial's figure by measurement key, for --samples.
struct Samples {
  std::map<std::string, std::vector<double>> ms;
  std::map<std::string, int> failed;
};
Samples& AllSamples() {
  static Samples samples;
  return samples;
}

bool WriteSamples(const std::string& path) {
  std::ofstream out(path);
  out << "{";
  const char* sep = "";
  for (const auto& [key, values] : AllSamples().ms) {
    out << sep << "\"" << key << "\": [";
    for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
    out << "]";
    sep = ", ";
  }
  for (const auto& [key, n] : AllSamples().failed) {
    out << sep << "\"" << key << ".failed\": " << n;
    sep = ", ";
  }
  out << "}\n";
  return static_cast<bool>(out);
}

// Polls every 0.5 ms until `among` agree on a leader in a term above `after_term`.
std::optional<int> PollAgreement(Cluster& c, const std::vector<int>& among, uint64_t after_term,
                                 uint64_t* term) {
  const auto deadline = Clock::now() + kGiveUp;
  while (Clock::now() < deadline) {
    uint64_t t = 0;
    if (auto l = c.AgreedLeader(among, &t); l && t > after_term) {
      if (term) *term = t;
      return l;
    }
    std::this_thread::sleep_for(500us);
  }
  return std::nullopt;
}

std::string TimingFlags(const Timings& t) {
  return "--heartbeat-ms " + std::to_string(t.heartbeat_ms) + " --election-min-ms " +
         std::to_string(t.election_min_ms) + " --election-max-ms " +
         std::to_string(t.election_max_ms);
}

// Prints one measurement; an empty `target` prints none, and `key` (when set) keeps the samples
// for --samples.
void Report(const std::string& what, const Timings& t, std::vector<double> ms, int failures,
            const std::string& target, const std::string& key = "", bool show_agents = true) {
  if (!key.empty()) {
    AllSamples().ms[key] = ms;
    AllSamples().failed[key] = failures;
  }
  std::sort(ms.begin(), ms.end());
  std::printf("%-44s", what.c_str());
  if (ms.empty()) {
    std::printf(" no successful trial (%d failed)\n", failures);
  } else {
    auto at = [&](double q) {
      size_t i = static_cast<size_t>(q * static_cast<double>(ms.size() - 1) + 0.5);
      return ms[std::min(i, ms.size() - 1)];
    };
    std::printf(" median %7.1f ms  p90 %7.1f ms  max %7.1f ms  (n=%zu, failed %d%s%s)\n", at(0.5),
                at(0.9), ms.back(), ms.size(), failures, target.empty() ? "" : "; target ",
                target.c_str());
  }
  if (show_agents) {
    std::printf("    agents: instaface-agent --cluster-size 3 %s\n", TimingFlags(t).c_str());
  }
  std::fflush(stdout);
}

ClusterOptions Options(const Timings& t, int size = 3) {
  ClusterOptions o;
  o.cluster_size = size;
  o.timings = t;
  return o;
}

// Once the agents are started on a Redis that is already up: the time to the first agreement.
void MeasureStart(const Timings& t, int trials, const std::string& name, const std::string& key) {
  std::vector<double> ms;
  int failures = 0;
  for (int trial = 0; trial < trials; ++trial) {
    Cluster c(Options(t));
    std::string error;
    if (!c.Start(0, &error)) {
      std::cerr << "redis: " << error << "\n";
      ++failures;
      continue;
    }
    const auto t0 = Clock::now();
    for (int i = 0; i < 3; ++i) c.AddAgent();
    if (PollAgreement(c, c.All(), 0, nullptr)) {
      ms.push_back(Ms(Clock::now() - t0));
    } else {
      ++failures;
      std::cerr << "start trial " << trial << ": no agreement\n" << c.Logs();
    }
  }
  Report(name, t, ms, failures, "< 2000 ms", key);
}

// Restarts agent i after it was killed or stopped, dropping the cached mapping of its old
// segment (a restarted agent publishes a new one under the same name).
void Revive(Cluster& c, int i) {
  c.agent(i).process.Wait(5s);
  c.agent(i).view.reset();
  c.Restart(i);
}

// Kill -9 (signal SIGKILL) or SIGTERM of the leader, then the time until the others agree on a
// new leader in a higher term. The leader is revived between trials.
void MeasureFailover(const Timings& t, int signal, int trials, const std::string& name,
                     const std::string& target, const std::string& key) {
  std::vector<double> ms;
  int failures = 0;
  Cluster c(Options(t));
  std::string error;
  if (!c.Start(3, &error)) {
    std::cerr << "cluster: " << error << "\n";
    return;
  }
  for (int trial = 0; trial < trials; ++trial) {
    uint64_t term = 0;
    auto leader = PollAgreement(c, c.All(), 0, &term);
    if (!leader) {
      ++failures;
      std::cerr << name << " trial " << trial << ": no leader before the signal\n" << c.Logs();
      break;
    }
    // Let the followers' lease refusal and heartbeats settle into the steady state.
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * t.heartbeat_ms));
    const std::vector<int> survivors = c.AllBut(*leader);
    const auto t0 = Clock::now();
    if (signal == SIGKILL) {
      c.agent(*leader).process.Kill();
    } else {
      c.agent(*leader).process.Signal(signal);
    }
    if (PollAgreement(c, survivors, term, nullptr)) {
      ms.push_back(Ms(Clock::now() - t0));
    } else {
      ++failures;
      std::cerr << name << " trial " << trial << ": no new leader\n" << c.Logs();
    }
    Revive(c, *leader);
  }
  Report(name, t, ms, failures, target, key);
}

// SIGSTOP of the leader's agent for `hold`, then SIGCONT. While it is stopped: the time until
// the others agree on a new leader in a higher term, and the last moment the old leader's
// leadership() (what its app, still running, acts on) answered yes: its lease runs out in the
// shared record although its agent cannot run. After SIGCONT: how long the old agent's record
// still says role leader, and how long its leadership() still answers yes (0 when the lease had
// already ended). The two "both" figures are how long the old leader (its agent's role after
// SIGCONT, as a stopped candidate can only claim anything once resumed; or its app's
// leadership() at any time) and the new one claimed leadership at once.
void MeasureStop(const Timings& t, int trials, std::chrono::milliseconds hold,
                 const std::string& name, const std::string& key) {
  std::vector<double> failover, app_after, agent_after, app_both, agent_both;
  int failures = 0, unresolved = 0;
  Cluster c(Options(t));
  std::string error;
  if (!c.Start(3, &error)) {
    std::cerr << "cluster: " << error << "\n";
    return;
  }
  for (int trial = 0; trial < trials; ++trial) {
    uint64_t term = 0;
    auto leader = PollAgreement(c, c.All(), 0, &term);
    if (!leader) {
      ++failures;
      std::cerr << name << " trial " << trial << ": no leader before the signal\n" << c.Logs();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * t.heartbeat_ms));
    const int old = *leader;
    const std::vector<int> survivors = c.AllBut(old);
    View& old_view = *c.agent(old).view;  // mapped by AgreedLeader
    const auto t0 = Clock::now();
    c.agent(old).process.Stop();
    std::optional<Clock::time_point> new_at;
    Clock::time_point old_app_last = t0;  // the last time its leadership() answered yes
    for (auto now = t0; now < t0 + hold; now = Clock::now()) {
      if (old_view.leadership()) old_app_last = now;
      uint64_t new_term = 0;
      if (!new_at) {
        if (auto l = c.AgreedLeader(survivors, &new_term); l && new_term > term) new_at = now;
      }
      std::this_thread::sleep_for(500us);
    }
    const auto t_cont = Clock::now();
    c.agent(old).process.Continue();
    std::optional<Clock::time_point> agent_end;
    bool app_done = false;
    for (auto now = t_cont; now < t_cont + kGiveUp && !(agent_end && app_done);
         now = Clock::now()) {
      const bool leads = old_view.leadership().has_value();
      if (leads) old_app_last = now;
      app_done = app_done || !leads;
      if (!agent_end && old_view.snapshot().role != Role::kLeader) agent_end = now;
      std::this_thread::sleep_for(500us);
    }
    if (!new_at) {
      ++failures;
      std::cerr << name << " trial " << trial << ": no new leader while stopped\n" << c.Logs();
    } else {
      failover.push_back(Ms(*new_at - t0));
      app_both.push_back(std::max(0.0, Ms(old_app_last - *new_at)));
    }
    app_after.push_back(std::max(0.0, Ms(old_app_last - t_cont)));
    if (agent_end) {
      agent_after.push_back(Ms(*agent_end - t_cont));
      if (new_at) agent_both.push_back(std::max(0.0, Ms(*agent_end - std::max(t_cont, *new_at))));
    } else {
      ++unresolved;
      std::cerr << name << " trial " << trial << ": old agent still says leader\n" << c.Logs();
    }
    // The resumed agent rejoins as a follower; one that does not is started anew.
    if (!PollAgreement(c, c.All(), 0, nullptr)) Revive(c, old);
  }
  AllSamples().ms[key + ".hold_ms"] = {static_cast<double>(hold.count())};
  const std::string held = " (held " + std::to_string(hold.count()) + " ms)";
  Report(name + held, t, failover, failures, "", key + ".failover");
  Report("    old leader's leadership() after SIGCONT", t, app_after, 0, "",
         key + ".app_after_cont", false);
  Report("    old agent's role leader after SIGCONT", t, agent_after, unresolved, "",
         key + ".agent_after_cont", false);
  Report("    both lead after SIGCONT (agents' roles)", t, agent_both, unresolved, "",
         key + ".agent_both", false);
  Report("    both lead (apps' leadership(), any time)", t, app_both, failures, "",
         key + ".app_both", false);
}

struct ProcSample {
  double cpu_seconds = 0;
  long rss_kib = 0;
  int threads = 0;
};

ProcSample SampleProc(pid_t pid) {
  ProcSample s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  // Fields after the command name (which may hold spaces) start at field 3; utime and stime
  // are fields 14 and 15.
  size_t close = line.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int f = 3; f <= 15 && rest >> field; ++f) {
      if (f == 14) utime = std::stoull(field);
      if (f == 15) stime = std::stoull(field);
    }
    s.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::stol(line.substr(6));
    if (line.rfind("Threads:", 0) == 0) s.threads = std::stoi(line.substr(8));
  }
  return s;
}

void MeasureIdle(int nodes, int seconds) {
  Cluster c(Options(kSeedTimings, nodes));
  std::string error;
  if (!c.Start(nodes, &error)) {
    std::cerr << "cluster: " << error << "\n";
    return;
  }
  auto leader = PollAgreement(c, c.All(), 0, nullptr);
  if (!leader) {
    std::cerr << "idle: no leader\n" << c.Logs();
    return;
  }
  std::this_thread::sleep_for(2s);  // past start-up work (Redis registration, first dials)
  std::vector<ProcSample> before;
  for (int i : c.All()) before.push_back(SampleProc(c.agent(i).process.pid()));
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  std::printf("idle %d-node cluster, seed timings, over %d s (CPU as %% of one core):\n", nodes,
              seconds);
  double follower_cpu_sum = 0;
  long rss_max = 0;
  for (int i : c.All()) {
    ProcSample after = SampleProc(c.agent(i).process.pid());
    double pct = 100.0 * (after.cpu_seconds - before[i].cpu_seconds) / seconds;
    if (i != *leader) follower_cpu_sum += pct;
    rss_max = std::max(rss_max, after.rss_kib);
    std::printf("    %s%-9s cpu %5.2f %%  VmRSS %6ld KiB\n", c.agent(i).id.c_str(),
                i == *leader ? " (leader)" : "", pct, after.rss_kib);
  }
  std::printf("    follower mean cpu %.2f %%, max VmRSS %ld KiB\n", follower_cpu_sum / (nodes - 1),
              rss_max);
  std::printf("    agents: instaface-agent --cluster-size %d %s\n", nodes,
              TimingFlags(kSeedTimings).c_str());
  std::fflush(stdout);
}

// `nodes` agents started at once (seed timings): the time until all of them name one leader, then
// `seconds` of holding it, sampled every 10 ms for any change of leader or term; what each agent
// costs meanwhile (CPU, RSS, threads).
void MeasureScale(int nodes, int seconds) {
  Cluster c(Options(kSeedTimings, nodes));
  std::string error;
  const auto t0 = Clock::now();
  if (!c.Start(nodes, &error)) {
    std::cerr << "scale " << nodes << ": " << error << "\n";
    return;
  }
  uint64_t term = 0;
  std::optional<int> leader;
  while (!leader && Clock::now() - t0 < std::chrono::seconds(60)) {
    leader = c.AgreedLeader(c.All(), &term);
    if (!leader) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!leader) {
    std::map<std::string, int> views;
    for (int i : c.All()) {
      Observation o = c.Observe(i);
      views[!o.readable ? "unreadable"
                        : (o.snapshot.stale ? "stale " : "") +
                              std::string(RoleName(o.snapshot.role)) + " of '" +
                              o.snapshot.leader_id + "' term " + std::to_string(o.snapshot.term)]++;
    }
    std::string seen;
    for (const auto& [view, count] : views) seen += " " + std::to_string(count) + "x " + view + ";";
    std::printf("scale %3d agents: no agreed leader within 60 s of the start (views:%s)\n", nodes,
                seen.c_str());
    std::fflush(stdout);
    return;
  }
  const double elect_ms = Ms(Clock::now() - t0);
  std::vector<ProcSample> before;
  for (int i : c.All()) before.push_back(SampleProc(c.agent(i).process.pid()));
  int changes = 0;
  const auto hold_end = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < hold_end) {
    uint64_t now_term = 0;
    auto now_leader = c.AgreedLeader({*leader}, &now_term);
    if (!now_leader || now_term != term) ++changes;
    if (now_term > term) term = now_term;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  double cpu_sum = 0;
  long rss_sum = 0, rss_max = 0;
  int threads_max = 0;
  for (int i : c.All()) {
    ProcSample after = SampleProc(c.agent(i).process.pid());
    cpu_sum += 100.0 * (after.cpu_seconds - before[i].cpu_seconds) / seconds;
    rss_sum += after.rss_kib;
    rss_max = std::max(rss_max, after.rss_kib);
    threads_max = std::max(threads_max, after.threads);
  }
  std::printf(
      "scale %3d agents: all agree in %7.1f ms; %d samples of %d s without the leader's lease in "
      "its first term; per agent cpu %.2f %% of a core, VmRSS mean %ld KiB max %ld KiB, threads "
      "%d\n",
      nodes, elect_ms, changes, seconds, cpu_sum / nodes, rss_sum / nodes, rss_max, threads_max);
  std::fflush(stdout);
}

bool Wants(const std::string& only, const char* what) {
  if (only.empty()) return true;
  std::string list = "," + only + ",";
  return list.find("," + std::string(what) + ",") != std::string::npos;
}

int Main(int argc, char** argv) {
  int trials = 20, idle_seconds = 30, idle_nodes = 5, stop_ms = 0;
  std::vector<int> scale_nodes = {3, 51, 101, 201};
  std::string only, samples;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      std::string prefix = std::string("--") + name + "=";
      return a.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("trials")) {
      trials = std::max(1, std::atoi(v));
    } else if (const char* v = value("idle-seconds")) {
      idle_seconds = std::max(1, std::atoi(v));
    } else if (const char* v = value("idle-nodes")) {
      idle_nodes = std::max(1, std::atoi(v));
    } else if (const char* v = value("only")) {
      only = v;
    } else if (const char* v = value("stop-ms")) {
      stop_ms = std::max(1, std::atoi(v));
    } else if (const char* v = value("samples")) {
      samples = v;
    } else if (const char* v = value("scale-nodes")) {
      scale_nodes.clear();
      std::istringstream list(v);
      std::string n;
      while (std::getline(list, n, ',')) scale_nodes.push_back(std::max(1, std::atoi(n.c_str())));
    } else {
      std::cerr << "usage: " << argv[0]
                << " [--trials=N] [--idle-seconds=S] [--idle-nodes=N]"
                   " [--only=start,kill,term,idle,stop,scale] [--stop-ms=N] [--samples=PATH]"
                   " [--scale-nodes=3,51,101,201]\n"
                   "  without --only: start,kill,term,idle; stop holds the leader stopped for"
                   " --stop-ms\n  (default election_max + 2000 ms); scale starts each of"
                   " --scale-nodes agents at once and holds for --idle-seconds\n";
      return 2;
    }
  }
  std::printf(
      "instaface-failover-probe: %d trials each, 3 agents + private Redis on loopback; "
      "agreement polled every 0.5 ms through each agent's shm View\n",
      trials);
  std::fflush(stdout);
  if (Wants(only, "start")) {
    MeasureStart(kSeedTimings, trials, "(a) start -> agreement (seed)", "seed.start");
    MeasureStart(kFastTimings, trials, "(a) start -> agreement (fast)", "fast.start");
  }
  if (Wants(only, "kill")) {
    MeasureFailover(kSeedTimings, SIGKILL, trials, "(b) kill -9 leader -> new leader (seed)",
                    "< 1500 ms", "seed.kill");
    MeasureFailover(kFastTimings, SIGKILL, trials, "(c) kill -9 leader -> new leader (fast)",
                    "< 600 ms", "fast.kill");
  }
  if (Wants(only, "term")) {
    MeasureFailover(kFastTimings, SIGTERM, trials, "(d) SIGTERM leader -> new leader (fast)",
                    "< 100 ms", "fast.term");
    MeasureFailover(kSeedTimings, SIGTERM, trials, "(d) SIGTERM leader -> new leader (seed)",
                    "< 100 ms", "seed.term");
  }
  if (Wants(only, "idle")) MeasureIdle(idle_nodes, idle_seconds);
  if (!only.empty() && Wants(only, "scale")) {
    for (int n : scale_nodes) MeasureScale(n, idle_seconds);
  }
  if (!only.empty() && Wants(only, "stop")) {
    for (const auto& [t, label, key] : {std::tuple{kSeedTimings, "seed", "seed.stop"},
                                        std::tuple{kFastTimings, "fast", "fast.stop"}}) {
      const int hold = stop_ms > 0 ? stop_ms : t.election_max_ms + 2000;
      MeasureStop(t, trials, std::chrono::milliseconds(hold),
                  std::string("(e) SIGSTOP leader -> new leader (") + label + ")", key);
    }
  }
  if (!samples.empty() && !WriteSamples(samples)) {
    std::cerr << "cannot write " << samples << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace instaface::testing

int main(int argc, char** argv) { return instaface::testing::Main(argc, argv); }
