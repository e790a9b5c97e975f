// instaface-agent: the leader-election sidecar. See README.md and `instaface-agent --help`.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "instaface/runtime/node.h"
#include "instaface/wire/secret.h"

namespace {

constexpr int kConfigError = 2;

int Fail(int code, const std::string& line) {
  std::cerr << "instaface-agent: " << line << "\n";
  return code;
}

std::string EnvName(const std::string& flag) {
  std::string name = "INSTAFACE_";
  for (char c : flag) name += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return name;
}

// "a=tcp://h:1,b=tcp://h:2" -> {a: ..., b: ...}
bool ParsePeers(const std::string& text, std::map<std::string, std::string>& out,
                std::string& error) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      error = "bad --peers entry '" + item + "' (want id=url)";
      return false;
    }
    out[item.substr(0, eq)] = item.substr(eq + 1);
    start = end + 1;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "instaface-agent: elects one leader among the replicas of an app and publishes it to the "
      "local app (shared memory and a Unix socket). Every flag can also be set through the "
      "environment variable named after it, e.g. --heartbeat-ms through "
      "INSTAFACE_HEARTBEAT_MS.",
      "instaface-agent"};
  instaface::runtime::NodeOptions o;
  std::string secret_file, peers, log_level = "info";
  int cluster_size = 3, heartbeat_ms = 500, min_ms = 750, max_ms = 1000, app_liveness_ms = 0;
  o.shm_name = "instaface";
  o.socket_path = "/tmp/instaface.sock";

  auto flag = [&app](const std::string& name, auto& var, const std::string& help) {
    return app.add_option("--" + name, var, help)->envname(EnvName(name));
  };
  flag("id", o.id, "This node's id, unique in the cluster (1-64 bytes)")->required();
  flag("cluster", o.cluster,
       "Cluster name (1-64 bytes): authenticates messages and namespaces "
       "the Redis keys")
      ->required();
  flag("cluster-size", cluster_size,
       "Configured number of voters (the replica count); quorum = size/2+1")
      ->capture_default_str();
  flag("listen", o.listen_url, "nng URL to answer peers on, e.g. tcp://0.0.0.0:7400")->required();
  flag("advertise", o.advertise_url, "nng URL peers dial to reach this node (default: --listen)");
  flag("app-address", o.app_address,
       "Address of the local app, published when this node leads (e.g. http://10.0.0.5:8080)");
  flag("redis", o.redis_url,
       "Redis for discovery: redis://[:password@]host:port[/db]; empty: --peers only");
  flag("peers", peers, "Static peers as id=url,id=url (in addition to Redis discovery)");
  flag("shm", o.shm_name, "Name of the shared-memory segment to publish")->capture_default_str();
  flag("socket", o.socket_path, "Path of the control socket; empty disables it")
      ->capture_default_str();
  flag("metrics", o.metrics_address, "host:port to serve Prometheus /metrics on; empty disables");
  flag("state-dir", o.state_dir, "Directory for the durable term and vote")->required();
  flag("secret-file", secret_file, "File holding the cluster secret (trailing newline trimmed)")
      ->required();
  flag("heartbeat-ms", heartbeat_ms, "Leader heartbeat period")->capture_default_str();
  flag("election-min-ms", min_ms, "Shortest election timeout")->capture_default_str();
  flag("election-max-ms", max_ms, "Longest election timeout")->capture_default_str();
  flag("max-clock-drift-ppm", o.max_clock_drift_ppm,
       "Bound on how fast or slow NTP may make any agent's clock (CLOCK_BOOTTIME) run, in parts "
       "per million; each lease is shortened by twice this share of the election minimum. The "
       "default is the most Linux lets any daemon slew; 1000 suffices under ntpd or "
       "systemd-timesyncd. Too low a bound can let two leases overlap: see docs/election.md")
      ->capture_default_str()
      ->check(CLI::Range(0u, instaface::runtime::kMaxClockDriftPpm));
  flag("app-liveness-ms", app_liveness_ms,
       "Leadership follows a live app: lead and stand only while the app has registered its "
       "presence (libinstaface AppPresence, beside --shm) and stamped it within this many ms; "
       "hand leadership to a peer at once when it dies or hangs. 0: the app is not watched")
      ->capture_default_str()
      ->check(CLI::Range(0, 600000));
  flag("death-watch-port", o.death_watch_port,
       "TCP port on the --listen host where this agent's death can be watched: a follower "
       "connected there sees its leader's process end (an orderly close, then a refused redial) "
       "and elects at once instead of waiting out the lease. 0: any free port; every message "
       "advertises it, so only a firewall needs it fixed")
      ->capture_default_str();
  app.add_flag("!--no-death-watch", o.death_watch,
               "Run no death watch: a dead leader is then replaced only when its lease and an "
               "election timeout have run out")
      ->envname(EnvName("no-death-watch"));
  flag("log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return Fail(kConfigError, e.what());
  }

  const auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    return Fail(kConfigError, "unknown --log-level '" + log_level + "'");
  }
  auto logger = spdlog::stderr_color_mt("instaface-agent");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f %^%l%$ [" + o.id + "] %v");
  logger->set_level(level);
  spdlog::set_default_logger(logger);

  o.cluster_size = cluster_size;
  o.heartbeat = std::chrono::milliseconds(heartbeat_ms);
  o.election_min = std::chrono::milliseconds(min_ms);
  o.election_max = std::chrono::milliseconds(max_ms);
  o.app_liveness = std::chrono::milliseconds(app_liveness_ms);
  std::string error;
  if (!peers.empty() && !ParsePeers(peers, o.static_peers, error)) return Fail(kConfigError, error);
  auto secret = instaface::wire::LoadSecretFile(secret_file);
  if (!secret.ok()) return Fail(kConfigError, secret.status().message());
  o.secret = *secret;
  if (auto valid = instaface::runtime::ValidateNodeOptions(o); !valid.ok()) {
    return Fail(kConfigError, valid.message());
  }
  if (o.advertise_url.empty() && o.listen_url.find("0.0.0.0") != std::string::npos) {
    return Fail(kConfigError,
                "--listen binds every address; set --advertise to one peers can dial");
  }

  // Signals are taken synchronously by this thread; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto node = instaface::runtime::Node::Start(o);
  if (!node.ok()) return Fail(1, node.status().message());
  spdlog::info("started: cluster {} size {} listening on {} shm {} socket {}", o.cluster,
               o.cluster_size, (*node)->listen_url(), o.shm_name,
               o.socket_path.empty() ? "none" : o.socket_path);

  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("{}: shutting down", received == SIGTERM ? "SIGTERM" : "SIGINT");
  // Shutdown is bounded: whatever hangs below must not keep a terminating pod alive.
  const auto limit = o.election_min + std::chrono::seconds(5);
  std::thread([limit] {
    std::this_thread::sleep_for(limit);
    spdlog::error("shutdown did not finish within {} ms; exiting",
                  std::chrono::duration_cast<std::chrono::milliseconds>(limit).count());
    spdlog::default_logger_raw()->flush();
    std::_Exit(1);
  }).detach();
  (*node)->Stop(/*hand_over=*/true);
  spdlog::info("stopped");
  return 0;
}
