// app_failover: kill -9 of the leader's app (its graphserver), and the time until a node whose
// app is alive leads, with a valid lease, as its own shared-memory record says (the agents run
// with --app-liveness-ms: leadership follows a live app). Real MariaDB, Redis, agents and
// graphservers on loopback (the end-to-end tests' GraphCluster); the killed app is restarted
// between trials. Prints the median, p90 and max, and every trial with --samples.
//
//   app_failover [--trials N] [--liveness-ms MS] [--samples]
#include <mysql.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "graph_cluster.h"
#include "instaface/view.h"

namespace ift = instaface::testing;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// The node other than `old` whose record says it leads with a valid lease, polled every 0.2 ms
// through views opened once; -1 after `timeout`.
int PollNewLeader(ift::GraphCluster& cluster, int old, std::chrono::milliseconds timeout) {
  std::vector<std::optional<instaface::View>> views(cluster.size());
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    for (int i = 0; i < cluster.size(); ++i) {
      if (i == old) continue;
      if (!views[i]) {
        auto opened = instaface::View::Open(cluster.shm_name(i));
        if (opened.ok()) views[i].emplace(std::move(*opened));
      }
      if (views[i] && views[i]->is_leader()) return i;
    }
    std::this_thread::sleep_for(200us);
  }
  return -1;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

}  // namespace

int main(int argc, char** argv) {
  int trials = 20;
  int liveness_ms = 200;
  bool samples = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--trials" && i + 1 < argc) {
      trials = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--liveness-ms" && i + 1 < argc) {
      liveness_ms = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--samples") {
      samples = true;
    } else {
      std::cerr << "usage: app_failover [--trials N] [--liveness-ms MS] [--samples]\n";
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  mysql_library_init(0, nullptr, nullptr);
  ift::GraphClusterOptions options;
  options.agent_binary = INSTAFACE_AGENT_BINARY;
  options.graphserver_binary = INSTAFACE_GRAPHSERVER_BINARY;
  options.database = "app_failover";
  options.heartbeat_ms = 50;
  options.election_min_ms = 150;
  options.election_max_ms = 300;
  options.extra_agent_args = {"--app-liveness-ms", std::to_string(liveness_ms)};
  std::cerr << "starting MariaDB, Redis, 3 agents and 3 graphservers...\n";
  ift::GraphCluster cluster(options);
  std::string error;
  if (!cluster.Start(&error)) {
    std::cerr << error << "\n";
    return 1;
  }
  std::vector<double> ms;
  int failed = 0;
  for (int trial = 0; trial < trials; ++trial) {
    const int leader = cluster.WaitForLeader(10s);
    if (leader < 0) {
      std::cerr << "trial " << trial << ": no leader\n" << cluster.Logs();
      return 1;
    }
    std::this_thread::sleep_for(300ms);  // the apps' presence and the acks settle
    const auto t0 = Clock::now();
    cluster.graphserver(leader).Kill();
    const int next = PollNewLeader(cluster, leader, 10s);
    if (next >= 0) {
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    } else {
      ++failed;
      std::cerr << "trial " << trial << ": no leader with a live app\n";
    }
    if (!cluster.RestartGraphserver(leader, &error)) {
      std::cerr << "restart: " << error << "\n";
      return 1;
    }
  }
  if (ms.empty()) return 1;
  std::printf(
      "kill -9 of the leader's app -> a node with a live app leads (agents --heartbeat-ms 50 "
      "--election-min-ms 150 --election-max-ms 300 --app-liveness-ms %d)\n"
      "    median %.1f ms  p90 %.1f ms  max %.1f ms  (n=%zu, failed %d)\n",
      liveness_ms, Percentile(ms, 0.5), Percentile(ms, 0.9), Percentile(ms, 1.0), ms.size(),
      failed);
  if (samples) {
    for (double v : ms) std::printf("    %.2f\n", v);
  }
  return failed == 0 ? 0 : 1;
}
