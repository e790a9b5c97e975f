// GraphCluster: a whole Instaface deployment on loopback for end-to-end tests and benchmarks —
// a private MariaDB (and optionally a GTID read replica), a private Redis, N instaface-agents and
// N instaface-graphservers as child processes, with fast election timings. Every process and
// file is removed when the cluster is destroyed, even when a test fails.
//
// Thread safety: none; the test's main thread owns a cluster. Send() may be called from any
// thread (each call uses its own connection).
#ifndef INSTAFACE_TESTS_GRAPHSERVER_E2E_GRAPH_CLUSTER_H_
#define INSTAFACE_TESTS_GRAPHSERVER_E2E_GRAPH_CLUSTER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "instaface/graphserver/http_client.h"
#include "support/mariadb_server.h"
#include "support/redis_server.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace instaface::testing {

struct GraphClusterOptions {
  int nodes = 3;
  std::string agent_binary;        // path of instaface-agent
  std::string graphserver_binary;  // path of instaface-graphserver
  std::string database = "e2e";
  // Nodes whose graphserver reads from a GTID replica of the primary (empty: none, and no
  // replica server is started).
  std::vector<int> replica_readers;
  int heartbeat_ms = 50;
  int election_min_ms = 150;
  int election_max_ms = 300;
  int graph_workers = 8;
  int db_pool = 8;
  std::vector<std::string> extra_graphserver_args;
  std::vector<std::string> extra_agent_args;
  // Nodes in network namespaces of their own (the chaos suite's): node i's agent and
  // graphserver run in node_netns[i] (a path, /run/netns/NAME) and listen on node_hosts[i];
  // MariaDB and Redis listen on server_host as well as loopback, in the namespace of the thread
  // that starts the cluster. Empty: everything on 127.0.0.1 in this namespace.
  std::vector<std::string> node_netns;
  std::vector<std::string> node_hosts;
  std::string server_host = "127.0.0.1";
  // A binary log on the primary (ROW format, GTIDs): the commit order, for an audit.
  bool db_binlog = false;
};

class GraphCluster {
 public:
  explicit GraphCluster(GraphClusterOptions options);
  ~GraphCluster();
  GraphCluster(const GraphCluster&) = delete;
  GraphCluster& operator=(const GraphCluster&) = delete;

  // Starts everything and waits until every graphserver answers /healthz and a leader is known.
  bool Start(std::string* error);

  int size() const { return options_.nodes; }
  MariaDbServer& db() { return *db_; }
  MariaDbServer* replica() { return replica_.get(); }
  const std::string& database() const { return options_.database; }
  std::string connection_string() const;
  std::string app_address(int i) const;
  const std::string& node_host(int i) const;
  uint16_t app_port(int i) const { return app_ports_[static_cast<size_t>(i)]; }
  Subprocess& agent(int i) { return agents_[static_cast<size_t>(i)]; }
  Subprocess& graphserver(int i) { return graphservers_[static_cast<size_t>(i)]; }
  // Starts node i's agent or graphserver again, as it was started (after a kill). Call from the
  // thread that started the cluster: a child dies with the thread that started it.
  bool RestartAgent(int i, std::string* error);
  bool RestartGraphserver(int i, std::string* error);
  RedisServer& redis() { return *redis_; }
  const std::string& shm_name(int i) const { return shm_names_[static_cast<size_t>(i)]; }
  std::string control_socket(int i) const;
  const std::string& redis_url() const { return redis_url_; }
  const std::string& cluster_name() const { return cluster_; }

  // The node whose agent publishes itself as leader with a valid lease; -1 if none. Nodes
  // listed in `ignore` (killed or stopped) are skipped.
  int Leader(const std::vector<int>& ignore = {}) const;
  // Waits for a leader other than the ignored nodes; -1 on timeout.
  int WaitForLeader(std::chrono::milliseconds timeout, const std::vector<int>& ignore = {}) const;
  // The term node i's agent publishes.
  uint64_t Term(int i) const;

  // A request to node i's graphserver on a fresh connection.
  graphserver::ClientResult Send(int i, boost::beast::http::verb method, const std::string& target,
                                 const std::string& body = "",
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // SELECT through the mariadb client on the primary; the first column of the first row.
  std::string QueryOne(const std::string& sql);
  // Stderr of every child, for failure messages.
  std::string Logs();

 private:
  bool StartGraphserver(int i, std::string* error);

  GraphClusterOptions options_;
  TempDir dir_;
  std::unique_ptr<MariaDbServer> db_;
  std::unique_ptr<MariaDbServer> replica_;
  std::unique_ptr<RedisServer> redis_;
  std::string redis_url_;
  std::string cluster_;
  std::vector<uint16_t> app_ports_;
  std::vector<std::string> shm_names_;
  std::vector<SubprocessOptions> agent_options_;
  std::vector<SubprocessOptions> graphserver_options_;
  std::vector<Subprocess> agents_;
  std::vector<Subprocess> graphservers_;
};

}  // namespace instaface::testing

#endif  // INSTAFACE_TESTS_GRAPHSERVER_E2E_GRAPH_CLUSTER_H_
