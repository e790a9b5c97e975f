// Cluster: N real instaface-agent processes and a private redis-server on loopback, for tests
// and benchmarks that need the whole agent (nng, Redis discovery, shared memory, the control
// socket). Each agent gets its own port, state dir, shm segment and socket; all share a secret
// unless a test gives one its own. State is read through the SDK's View, without syscalls, so
// polling it every millisecond costs nothing.
//
// Thread safety: none; one thread owns a Cluster.
#ifndef INSTAFACE_TESTS_AGENT_CLUSTER_CLUSTER_H_
#define INSTAFACE_TESTS_AGENT_CLUSTER_CLUSTER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "instaface/view.h"
#include "support/redis_server.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace instaface::testing {

struct Timings {
  int heartbeat_ms = 50;
  int election_min_ms = 150;
  int election_max_ms = 300;
};
inline constexpr Timings kSeedTimings{500, 750, 1000};
inline constexpr Timings kFastTimings{50, 150, 300};

struct ClusterOptions {
  int cluster_size = 3;  // --cluster-size: the configured number of voters
  Timings timings = kFastTimings;
  bool metrics = false;      // serve /metrics on a free port per agent
  std::string agent_binary;  // empty: INSTAFACE_AGENT or the build's instaface-agent
  // Hosts of their own (tests/chaos/chaos_network.h): agent i runs in network namespace
  // netns[i] and listens on hosts[i]; Redis listens on redis_host, which every namespace
  // reaches. Empty: everything on loopback.
  std::vector<std::string> netns;
  std::vector<std::string> hosts;
  std::string redis_host = "127.0.0.1";
};

struct AgentProcess {
  int index = 0;
  std::string id;
  uint16_t port = 0;
  uint16_t metrics_port = 0;
  std::string shm;
  std::string socket;
  std::string state_dir;
  std::string secret_file;
  Subprocess process;
  std::optional<View> view;
};

// What one agent publishes, as seen at one instant.
struct Observation {
  bool readable = false;  // the segment exists and maps
  Snapshot snapshot;
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options = {});
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Starts Redis, then `count` agents. Returns false with *error set on failure.
  bool Start(int count, std::string* error);
  // Adds (and starts) one more agent; a non-empty `secret` gives it its own secret file.
  AgentProcess& AddAgent(const std::string& secret = "");
  // Starts agent i again after it exited or was killed, with the same id, port and state dir.
  void Restart(int i);

  AgentProcess& agent(int i) { return *agents_.at(i); }
  int size() const { return static_cast<int>(agents_.size()); }
  RedisServer& redis() { return redis_; }
  const ClusterOptions& options() const { return options_; }

  Observation Observe(int i);
  // The index of the agent that leads, when every agent in `among` that is readable and not
  // stale names the same leader in the same term and that leader itself holds a valid lease;
  // nullopt otherwise.
  std::optional<int> AgreedLeader(const std::vector<int>& among, uint64_t* term = nullptr);
  // Polls AgreedLeader every millisecond until one exists whose term is > after_term.
  std::optional<int> WaitForAgreedLeader(const std::vector<int>& among,
                                         std::chrono::milliseconds timeout, uint64_t after_term = 0,
                                         uint64_t* term = nullptr);
  std::vector<int> All() const;
  std::vector<int> AllBut(int excluded) const;

  // Runs instafacectl against agent i; returns its exit status and stdout.
  ExitStatus Ctl(int i, const std::vector<std::string>& args, std::string* out = nullptr);
  // Logs of every agent, for failure messages.
  std::string Logs();

 private:
  void Spawn(AgentProcess& a);

  ClusterOptions options_;
  TempDir dir_{"ifc"};
  RedisServer redis_;
  std::string secret_file_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

}  // namespace instaface::testing

#endif  // INSTAFACE_TESTS_AGENT_CLUSTER_CLUSTER_H_
