#include "graph_cluster.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "instaface/view.h"
#include "support/free_port.h"

namespace instaface::testing {

namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

GraphCluster::GraphCluster(GraphClusterOptions options)
    : options_(std::move(options)), dir_("ifgc") {
  cluster_ = "e2e" + std::to_string(getpid()) + "x" +
             std::to_string(Clock::now().time_since_epoch().count() % 100000);
}

GraphCluster::~GraphCluster() {
  // Graphservers first so that nothing writes while the servers go.
  for (auto& g : graphservers_) g.Kill();
  for (auto& a : agents_) {
    a.Continue();
    a.Kill();
  }
  for (const auto& name : shm_names_) shm_unlink(("/" + name).c_str());
}

std::string GraphCluster::connection_string() const {
  return db_->ConnectionString(options_.database);
}

std::string GraphCluster::app_address(int i) const {
  return "http://" + node_host(i) + ":" + std::to_string(app_port(i));
}

const std::string& GraphCluster::node_host(int i) const {
  static const std::string kLoopback = "127.0.0.1";
  return options_.node_hosts.empty() ? kLoopback : options_.node_hosts[static_cast<size_t>(i)];
}

bool GraphCluster::Start(std::string* error) {
  const bool namespaced = !options_.node_netns.empty();
  if (namespaced && (options_.node_netns.size() != static_cast<size_t>(options_.nodes) ||
                     options_.node_hosts.size() != options_.node_netns.size())) {
    if (error) *error = "node_netns and node_hosts need one entry per node";
    return false;
  }
  MariaDbServerOptions db_options;
  db_options.host = options_.server_host;
  if (!options_.replica_readers.empty() || options_.db_binlog) db_options.server_id = 1;
  db_ = std::make_unique<MariaDbServer>(db_options);
  if (!db_->Start(error)) return false;
  if (!options_.replica_readers.empty()) {
    MariaDbServerOptions replica_options;
    replica_options.server_id = 2;
    replica_ = std::make_unique<MariaDbServer>(replica_options);
    if (!replica_->Start(error)) return false;
    if (!replica_->ReplicateFrom(*db_, error)) return false;
  }
  RedisServerOptions redis_options;
  redis_options.host = options_.server_host;
  redis_ = std::make_unique<RedisServer>(redis_options);
  if (!redis_->Start(error)) return false;
  redis_url_ = redis_->url();

  {
    std::ofstream secret(dir_.File("secret"));
    secret << "e2e-cluster-secret-" << cluster_ << "\n";
  }
  for (int i = 0; i < options_.nodes; ++i) {
    uint16_t peer_port = FreePort();
    uint16_t app_port = FreePort();
    app_ports_.push_back(app_port);
    std::string id = "n" + std::to_string(i);
    shm_names_.push_back(cluster_ + "-" + id);
    std::string state = dir_.File(id + "-state");
    SubprocessOptions o;
    o.argv = {options_.agent_binary,
              "--id",
              id,
              "--cluster",
              cluster_,
              "--cluster-size",
              std::to_string(options_.nodes),
              "--listen",
              "tcp://" + node_host(i) + ":" + std::to_string(peer_port),
              "--app-address",
              app_address(i),
              "--redis",
              redis_url_,
              "--shm",
              shm_names_.back(),
              "--socket",
              dir_.File(id + ".sock"),
              "--state-dir",
              state,
              "--secret-file",
              dir_.File("secret"),
              "--heartbeat-ms",
              std::to_string(options_.heartbeat_ms),
              "--election-min-ms",
              std::to_string(options_.election_min_ms),
              "--election-max-ms",
              std::to_string(options_.election_max_ms)};
    o.argv.insert(o.argv.end(), options_.extra_agent_args.begin(), options_.extra_agent_args.end());
    o.stderr_path = dir_.File(id + "-agent.log");
    if (namespaced) o.netns = options_.node_netns[static_cast<size_t>(i)];
    agent_options_.push_back(o);
    agents_.emplace_back(o);
    if (!agents_.back().ok()) {
      if (error) *error = "agent " + id + ": " + agents_.back().error();
      return false;
    }
  }
  // The graphservers wait for their agent's segment themselves; start them right away.
  for (int i = 0; i < options_.nodes; ++i) {
    if (!StartGraphserver(i, error)) return false;
  }
  auto deadline = Clock::now() + 60s;
  for (int i = 0; i < options_.nodes; ++i) {
    for (;;) {
      auto r = Send(i, http::verb::get, "/healthz", "", 1s);
      if (r.ok && r.response.result_int() == 200) break;
      if (!graphservers_[static_cast<size_t>(i)].Running() || Clock::now() > deadline) {
        if (error) *error = "graphserver " + std::to_string(i) + " did not come up\n" + Logs();
        return false;
      }
      std::this_thread::sleep_for(50ms);
    }
  }
  if (WaitForLeader(30s) < 0) {
    if (error) *error = "no leader elected\n" + Logs();
    return false;
  }
  return true;
}

bool GraphCluster::StartGraphserver(int i, std::string* error) {
  std::string id = "n" + std::to_string(i);
  SubprocessOptions o;
  o.argv = {options_.graphserver_binary,
            "--listen",
            node_host(i) + ":" + std::to_string(app_port(i)),
            "--app-address",
            app_address(i),
            "--shm",
            shm_names_[static_cast<size_t>(i)],
            "--socket",
            dir_.File(id + ".sock"),
            "--workers",
            std::to_string(options_.graph_workers),
            "--db-pool",
            std::to_string(options_.db_pool),
            "--forward-timeout-ms",
            "3000"};
  o.argv.insert(o.argv.end(), options_.extra_graphserver_args.begin(),
                options_.extra_graphserver_args.end());
  o.env = {{"ConnectionStrings__DefaultConnection", connection_string()}};
  if (std::find(options_.replica_readers.begin(), options_.replica_readers.end(), i) !=
      options_.replica_readers.end()) {
    o.env.push_back(
        {"ConnectionStrings__ReadReplica", replica_->ConnectionString(options_.database)});
  }
  o.stderr_path = dir_.File(id + "-graph.log");
  if (!options_.node_netns.empty()) o.netns = options_.node_netns[static_cast<size_t>(i)];
  graphserver_options_.push_back(o);
  graphservers_.emplace_back(o);
  if (!graphservers_.back().ok()) {
    if (error) *error = "graphserver " + id + ": " + graphservers_.back().error();
    return false;
  }
  return true;
}

bool GraphCluster::RestartAgent(int i, std::string* error) {
  Subprocess& a = agents_[static_cast<size_t>(i)];
  a.Continue();
  a.Kill();
  a = Subprocess(agent_options_[static_cast<size_t>(i)]);
  if (!a.ok()) {
    if (error) *error = "agent n" + std::to_string(i) + ": " + a.error();
    return false;
  }
  return true;
}

bool GraphCluster::RestartGraphserver(int i, std::string* error) {
  Subprocess& g = graphservers_[static_cast<size_t>(i)];
  g.Continue();
  g.Kill();
  g = Subprocess(graphserver_options_[static_cast<size_t>(i)]);
  if (!g.ok()) {
    if (error) *error = "graphserver n" + std::to_string(i) + ": " + g.error();
    return false;
  }
  return true;
}

std::string GraphCluster::control_socket(int i) const {
  return dir_.File("n" + std::to_string(i) + ".sock");
}

int GraphCluster::Leader(const std::vector<int>& ignore) const {
  for (int i = 0; i < options_.nodes; ++i) {
    if (std::find(ignore.begin(), ignore.end(), i) != ignore.end()) continue;
    auto view = View::Open(shm_names_[static_cast<size_t>(i)]);
    if (view.ok() && view->is_leader()) return i;
  }
  return -1;
}

int GraphCluster::WaitForLeader(std::chrono::milliseconds timeout,
                                const std::vector<int>& ignore) const {
  auto deadline = Clock::now() + timeout;
  do {
    int leader = Leader(ignore);
    if (leader >= 0) return leader;
    std::this_thread::sleep_for(20ms);
  } while (Clock::now() < deadline);
  return -1;
}

uint64_t GraphCluster::Term(int i) const {
  auto view = View::Open(shm_names_[static_cast<size_t>(i)]);
  return view.ok() ? view->snapshot().term : 0;
}

graphserver::ClientResult GraphCluster::Send(int i, http::verb method, const std::string& target,
                                             const std::string& body,
                                             std::chrono::milliseconds timeout) {
  graphserver::HttpClient client(node_host(i), app_port(i));
  return client.Send(method, target, body, timeout);
}

std::string GraphCluster::QueryOne(const std::string& sql) {
  std::string out, err;
  if (!db_->Execute(sql, &out, &err)) return "ERROR " + err;
  return out.substr(0, out.find_first_of("\t\n"));
}

std::string GraphCluster::Logs() {
  std::string all;
  for (int i = 0; i < options_.nodes; ++i) {
    std::string id = "n" + std::to_string(i);
    auto tail = [](std::string s) { return s.size() > 3000 ? s.substr(s.size() - 3000) : s; };
    all += "--- agent " + id + "\n" + tail(ReadFileOrEmpty(dir_.File(id + "-agent.log")));
    all += "--- graphserver " + id + "\n" + tail(ReadFileOrEmpty(dir_.File(id + "-graph.log")));
  }
  return all;
}

}  // namespace instaface::testing
