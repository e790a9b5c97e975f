#include "cluster.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include "support/free_port.h"

namespace instaface::testing {
namespace {

std::string BinaryFromEnvOr(const char* env, const char* built) {
  if (const char* v = std::getenv(env); v != nullptr && *v != '\0') return v;
  return built;
}

RedisServerOptions RedisOptions(const ClusterOptions& options) {
  RedisServerOptions r;
  r.host = options.redis_host;
  return r;
}

}  // namespace

Cluster::Cluster(ClusterOptions options)
    : options_(std::move(options)), redis_(RedisOptions(options_)) {
  if (options_.agent_binary.empty()) {
    options_.agent_binary = BinaryFromEnvOr("INSTAFACE_AGENT", INSTAFACE_AGENT_BINARY);
  }
  secret_file_ = dir_.File("secret");
  std::ofstream(secret_file_) << "cluster-test-secret\n";
}

Cluster::~Cluster() {
  for (auto& a : agents_) {
    if (a->process.ok() && a->process.Running()) {
      a->process.Continue();
      a->process.Kill();
    }
    a->view.reset();
    shm_unlink(("/" + a->shm).c_str());
  }
}

bool Cluster::Start(int count, std::string* error) {
  if (!redis_.Start(error)) return false;
  for (int i = 0; i < count; ++i) {
    AgentProcess& a = AddAgent();
    if (!a.process.ok()) {
      if (error) *error = a.process.error();
      return false;
    }
  }
  return true;
}

AgentProcess& Cluster::AddAgent(const std::string& secret) {
  auto a = std::make_unique<AgentProcess>();
  a->index = static_cast<int>(agents_.size());
  a->id = "node-" + std::to_string(a->index);
  a->port = FreePort();
  if (options_.metrics) a->metrics_port = FreePort();
  // The pid keeps names unique across test binaries running at once.
  a->shm = "ifc-" + std::to_string(getpid()) + "-" + std::to_string(a->index);
  a->socket = dir_.File(a->id + ".sock");
  a->state_dir = dir_.File(a->id + ".state");
  mkdir(a->state_dir.c_str(), 0700);
  a->secret_file = secret_file_;
  if (!secret.empty()) {
    a->secret_file = dir_.File(a->id + ".secret");
    std::ofstream(a->secret_file) << secret << "\n";
  }
  Spawn(*a);
  agents_.push_back(std::move(a));
  return *agents_.back();
}

void Cluster::Spawn(AgentProcess& a) {
  const Timings& t = options_.timings;
  const size_t i = static_cast<size_t>(a.index);
  const std::string host = i < options_.hosts.size() ? options_.hosts[i] : "127.0.0.1";
  SubprocessOptions o;
  if (i < options_.netns.size()) o.netns = options_.netns[i];
  o.argv = {options_.agent_binary,
            "--id=" + a.id,
            "--cluster=cluster-test",
            "--cluster-size=" + std::to_string(options_.cluster_size),
            "--listen=tcp://" + host + ":" + std::to_string(a.port),
            "--app-address=http://" + host + ":" + std::to_string(10000 + a.index),
            "--redis=" + redis_.url(),
            "--shm=" + a.shm,
            "--socket=" + a.socket,
            "--state-dir=" + a.state_dir,
            "--secret-file=" + a.secret_file,
            "--heartbeat-ms=" + std::to_string(t.heartbeat_ms),
            "--election-min-ms=" + std::to_string(t.election_min_ms),
            "--election-max-ms=" + std::to_string(t.election_max_ms),
            "--log-level=info"};
  if (a.metrics_port != 0)
    o.argv.push_back("--metrics=127.0.0.1:" + std::to_string(a.metrics_port));
  o.stderr_path = dir_.File(a.id + ".log");
  a.process = Subprocess(o);
}

void Cluster::Restart(int i) {
  AgentProcess& a = agent(i);
  if (a.process.Running()) a.process.Kill();
  // The new agent may create a fresh segment under the same name; map it anew.
  a.view.reset();
  Spawn(a);
}

Observation Cluster::Observe(int i) {
  AgentProcess& a = agent(i);
  Observation o;
  if (!a.view) {
    auto opened = View::Open(a.shm);
    if (!opened.ok()) return o;
    a.view.emplace(std::move(*opened));
  }
  o.readable = true;
  o.snapshot = a.view->snapshot();
  return o;
}

std::optional<int> Cluster::AgreedLeader(const std::vector<int>& among, uint64_t* term) {
  std::optional<std::string> leader;
  uint64_t agreed_term = 0;
  std::map<std::string, int> index_of;
  for (int i : among) {
    index_of[agent(i).id] = i;
    Observation o = Observe(i);
    if (!o.readable || o.snapshot.stale || o.snapshot.leader_id.empty()) return std::nullopt;
    if (!leader) {
      leader = o.snapshot.leader_id;
      agreed_term = o.snapshot.term;
    } else if (*leader != o.snapshot.leader_id || agreed_term != o.snapshot.term) {
      return std::nullopt;
    }
  }
  if (!leader) return std::nullopt;
  auto it = index_of.find(*leader);
  if (it == index_of.end()) return std::nullopt;
  Observation l = Observe(it->second);
  if (l.snapshot.role != Role::kLeader || !l.snapshot.lease_valid) return std::nullopt;
  if (term) *term = agreed_term;
  return it->second;
}

std::optional<int> Cluster::WaitForAgreedLeader(const std::vector<int>& among,
                                                std::chrono::milliseconds timeout,
                                                uint64_t after_term, uint64_t* term) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    uint64_t t = 0;
    if (auto l = AgreedLeader(among, &t); l && t > after_term) {
      if (term) *term = t;
      return l;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  } while (std::chrono::steady_clock::now() < deadline);
  return std::nullopt;
}

std::vector<int> Cluster::All() const {
  std::vector<int> all;
  for (int i = 0; i < static_cast<int>(agents_.size()); ++i) all.push_back(i);
  return all;
}

std::vector<int> Cluster::AllBut(int excluded) const {
  std::vector<int> rest;
  for (int i : All()) {
    if (i != excluded) rest.push_back(i);
  }
  return rest;
}

ExitStatus Cluster::Ctl(int i, const std::vector<std::string>& args, std::string* out) {
  SubprocessOptions o;
  o.argv = {BinaryFromEnvOr("INSTAFACE_CTL", INSTAFACE_CTL_BINARY), "--shm=" + agent(i).shm,
            "--socket=" + agent(i).socket};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.stdout_path = dir_.File("ctl.out");
  o.stderr_path = dir_.File("ctl.err");
  Subprocess ctl(o);
  ExitStatus status;
  if (!ctl.ok()) return status;
  if (auto s = ctl.Wait(std::chrono::seconds(10))) status = *s;
  if (out) *out = ctl.ReadStdout() + ctl.ReadStderr();
  return status;
}

std::string Cluster::Logs() {
  std::string logs;
  for (auto& a : agents_) {
    logs += "---- " + a->id + " ----\n" + a->process.ReadStderr();
  }
  return logs;
}

}  // namespace instaface::testing
