// instaface-graphserver: the social-graph HTTP service. Every instance serves reads; only the
// instance whose agent leads writes to MySQL, fenced by the term; the others forward writes.
//
//   export ConnectionStrings__DefaultConnection='server=127.0.0.1;database=instaface1;user=bob'
//     instaface-graphserver --listen 0.0.0.0:8080 --shm instaface --socket
//     /run/instaface/agent.sock
//
// Every flag can also come from the environment as INSTAFACE_GRAPH_<FLAG> (upper case, '-' as
// '_'), for example INSTAFACE_GRAPH_LISTEN.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "instaface/app_presence.h"
#include "instaface/graph/graph_service.h"
#include "instaface/graphdb/connection_string.h"
#include "instaface/graphdb/pool.h"
#include "instaface/graphdb/schema.h"
#include "instaface/graphserver/console_assets.h"
#include "instaface/graphserver/console_events.h"
#include "instaface/graphserver/graph_api.h"
#include "instaface/graphserver/graph_metrics.h"
#include "instaface/graphserver/http_client.h"
#include "instaface/graphserver/http_server.h"
#include "instaface/graphserver/leader_fence.h"
#include "instaface/view.h"

#ifdef INSTAFACE_GRAPH_EMBEDDED
#include <fstream>
#include <sstream>

#include "instaface/runtime/node.h"
#endif

namespace {

using namespace instaface;
using Clock = std::chrono::steady_clock;

void Log(const std::string& line) { std::cerr << "instaface-graphserver: " << line << std::endl; }

struct Flags {
  std::string listen = "0.0.0.0:8080";
  std::string app_address;
  std::string shm = "instaface";               // the agent's default segment
  std::string socket = "/tmp/instaface.sock";  // the agent's default socket
  std::string cors_origin = "*";
  int threads = 2;
  int workers = 16;
  int db_pool = 16;
  uint64_t body_limit = 1 << 20;
  int request_timeout_ms = 10000;
  int max_connections = 4096;
  int forward_timeout_ms = 5000;
  int write_retry_ms = 2000;
  int startup_wait_ms = 60000;
  std::string election = "sidecar";
  int max_batch = 128;
  int batches_in_flight = 1;
  int batch_linger_us = 500;
  // --election embedded: the agent's own settings, for the in-process node.
  std::string node_id, cluster, peer_listen, peer_advertise, redis, peers, secret_file, state_dir;
  int cluster_size = 3, heartbeat_ms = 500, election_min_ms = 750, election_max_ms = 1000;
};

// Retries `attempt`, which returns a common::Status, until it succeeds or the deadline passes,
// logging the first failure and then every few seconds; returns the last Status.
template <typename F>
common::Status RetryUntil(Clock::time_point deadline, const std::string& what, F attempt) {
  auto last_log = Clock::now() - std::chrono::hours(1);
  for (;;) {
    common::Status status = attempt();
    if (status.ok() || Clock::now() >= deadline) return status;
    if (Clock::now() - last_log > std::chrono::seconds(5)) {
      Log(what + ": " + status.ToString() + " (retrying)");
      last_log = Clock::now();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int Run(const Flags& flags) {
  auto listen = graphserver::ParseHttpAddress(flags.listen);
  if (!listen) {
    Log("--listen must be host:port, got '" + flags.listen + "'");
    return 2;
  }
#ifndef INSTAFACE_GRAPH_EMBEDDED
  if (flags.election != "sidecar") {
    Log("--election " + flags.election +
        ": only 'sidecar' is supported by this build; run instaface-agent beside the server");
    return 2;
  }
#endif
  if (flags.election == "embedded" && flags.state_dir.empty()) {
    // Without a durable (term, vote) a restarted server could vote twice in one term, and two
    // leaders of one term are not fenced apart by the database.
    Log("--election embedded needs --state-dir (where the term and vote are kept)");
    return 2;
  }
  std::string app_address = flags.app_address;
  if (app_address.empty()) {
    std::string host = listen->host == "0.0.0.0" ? "127.0.0.1" : listen->host;
    app_address = "http://" + host + ":" + std::to_string(listen->port);
  }

  auto primary_config = graphdb::ConnectionConfigFromEnvironment("DefaultConnection");
  if (!primary_config.ok()) {
    Log("database configuration: " + primary_config.status().ToString() +
        " (set ConnectionStrings__DefaultConnection)");
    return 2;
  }
  std::optional<graphdb::ConnectionConfig> replica_config;
  auto replica = graphdb::ConnectionConfigFromEnvironment("ReadReplica");
  if (replica.ok()) {
    replica_config = *replica;
  } else if (replica.status().code() != common::StatusCode::kNotFound) {
    Log("read replica configuration: " + replica.status().ToString());
    return 2;
  }

  auto deadline = Clock::now() + std::chrono::milliseconds(flags.startup_wait_ms);
  common::Status schema = RetryUntil(deadline, "database schema",
                                     [&] { return graphdb::EnsureSchema(*primary_config); });
  if (!schema.ok()) {
    Log("cannot prepare the database: " + schema.ToString());
    return 1;
  }

  std::optional<Result<View>> view;
#ifdef INSTAFACE_GRAPH_EMBEDDED
  std::unique_ptr<runtime::Node> node;
  if (flags.election == "embedded") {
    runtime::NodeOptions o;
    o.id = flags.node_id;
    o.cluster = flags.cluster;
    o.cluster_size = flags.cluster_size;
    o.listen_url = flags.peer_listen;
    o.advertise_url = flags.peer_advertise;
    o.app_address = app_address;
    o.redis_url = flags.redis;
    o.socket_path = flags.socket;
    o.state_dir = flags.state_dir;
    o.heartbeat = std::chrono::milliseconds(flags.heartbeat_ms);
    o.election_min = std::chrono::milliseconds(flags.election_min_ms);
    o.election_max = std::chrono::milliseconds(flags.election_max_ms);
    std::stringstream peers(flags.peers);
    for (std::string item; std::getline(peers, item, ',');) {
      size_t eq = item.find('=');
      if (eq == std::string::npos || eq == 0) {
        Log("bad --peers entry '" + item + "' (want id=url)");
        return 2;
      }
      o.static_peers[item.substr(0, eq)] = item.substr(eq + 1);
    }
    std::ifstream secret_in(flags.secret_file);
    std::stringstream secret;
    secret << secret_in.rdbuf();
    o.secret = secret.str();
    while (!o.secret.empty() && (o.secret.back() == '\n' || o.secret.back() == '\r')) {
      o.secret.pop_back();
    }
    if (!secret_in || o.secret.empty()) {
      Log("--secret-file '" + flags.secret_file + "' is missing or empty");
      return 2;
    }
    if (auto valid = runtime::ValidateNodeOptions(o); !valid.ok()) {
      Log("embedded election: " + valid.message());
      return 2;
    }
    auto started = runtime::Node::Start(o);
    if (!started.ok()) {
      Log("embedded election: " + started.status().message());
      return 1;
    }
    node = std::move(*started);
    view.emplace(node->view());
    Log("embedded election node " + o.id + " on " + node->listen_url());
  }
#endif
  if (!view) {
    common::Status opened = RetryUntil(deadline, "agent shared memory '" + flags.shm + "'", [&] {
      view.emplace(View::Open(flags.shm));
      return view->ok() ? common::Status::Ok() : common::Status::Error(view->error());
    });
    if (!opened.ok()) {
      Log("cannot open the agent's shared memory: " + opened.message() +
          " (is instaface-agent running?)");
      return 1;
    }
  }

  graphdb::PoolOptions pool_options;
  pool_options.max_connections = static_cast<size_t>(std::max(1, flags.db_pool));
  auto primary = std::make_shared<graphdb::Pool>(*primary_config, pool_options);
  std::shared_ptr<graphdb::Pool> replica_pool;
  if (replica_config) replica_pool = std::make_shared<graphdb::Pool>(*replica_config, pool_options);
  graph::GraphOptions graph_options;
  graph_options.write_retry_window = std::chrono::milliseconds(flags.write_retry_ms);
  graph::GraphService service(primary, replica_pool, graph_options);
  graphserver::LeaderFenceOptions fence_options;
  fence_options.log = [](const std::string& line) { Log(line); };
  graphserver::LeaderFence leader_fence(view->value(), primary, fence_options);
  leader_fence.Start();

  graphserver::GraphMetrics metrics;
  graphserver::GraphApiOptions api_options;
  api_options.self_app_address = app_address;
  api_options.control_socket = flags.socket;
  api_options.forward_timeout = std::chrono::milliseconds(flags.forward_timeout_ms);
  api_options.console_assets = &graphserver::ConsoleAssets();
  graphserver::GraphApi api(service, view->value(), metrics, api_options);
  graphserver::ConsoleEventsOptions events_options;
  events_options.self_app_address = app_address;
  events_options.control_socket = flags.socket;
  graphserver::ConsoleEvents events(view->value(), service, events_options);
  api.set_console_events(&events);
  // Without a replica, a follower's cache misses come from the leader, whose caches are warm.
  if (!replica_pool) service.set_miss_filler(api.MakeLeaderMissFiller());
  if (flags.max_batch > 1) {
    graph::EntityBatcherOptions batch_options;
    batch_options.max_batch = static_cast<size_t>(flags.max_batch);
    batch_options.max_in_flight = flags.batches_in_flight;
    batch_options.linger = std::chrono::microseconds(flags.batch_linger_us);
    service.EnableGroupCommit(batch_options);
  }

  graphserver::HttpServerOptions server_options;
  server_options.host = listen->host;
  server_options.port = listen->port;
  server_options.io_threads = flags.threads;
  server_options.worker_threads = flags.workers;
  server_options.body_limit = flags.body_limit;
  server_options.request_timeout = std::chrono::milliseconds(flags.request_timeout_ms);
  server_options.max_connections = flags.max_connections;
  server_options.allow_origin = flags.cors_origin;
  graphserver::HttpServer server(
      server_options, [&api](graphserver::HttpRequest&& req) { return api.Handle(std::move(req)); },
      [&metrics](int status) { metrics.ObserveRequest("rejected", status, 0); },
      [&api](graphserver::HttpRequest& req, graphserver::HttpServer::Respond respond) {
        return api.HandleFast(req, std::move(respond));
      },
      [&api](const graphserver::HttpRequest& req,
             std::shared_ptr<graphserver::EventStream> stream) {
        return api.HandleStream(req, std::move(stream));
      });
  events.Start();
  if (common::Status started = server.Start(); !started.ok()) {
    Log(started.message());
    return 1;
  }
  Log("serving on " + listen->host + ":" + std::to_string(server.port()) + " as " + app_address +
      " (database " + primary_config->server + ":" + std::to_string(primary_config->port) + "/" +
      primary_config->database + (replica_pool ? ", read replica" : "") + ", agent shm '" +
      flags.shm + "')");
  // Leadership follows this app when the agent watches for it (--app-liveness-ms): present
  // once it serves, gone when it dies, hangs or stops.
  std::unique_ptr<AppPresence> presence;
  if (!flags.shm.empty() && flags.election != "embedded") {
    auto registered = AppPresence::Register(flags.shm);
    if (registered.ok()) {
      presence = std::move(*registered);
    } else {
      Log("warning: cannot register this app's presence, so an agent that watches for it will "
          "not let this node lead: " +
          registered.error());
    }
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  int sig = 0;
  sigwait(&signals, &sig);
  Log(std::string("stopping on ") + (sig == SIGINT ? "SIGINT" : "SIGTERM"));
  // Gone first: the agent hands leadership over while this server still answers.
  presence.reset();
  // The batches and forwards in flight finish first, and their callers get answers while the
  // server still serves; a write arriving after that is refused with a 503. Their callbacks
  // must not outlive the server.
  service.StopGroupCommit();
  api.StopForwarding();
  events.Stop();
  server.Stop();
#ifdef INSTAFACE_GRAPH_EMBEDDED
  if (node) node->Stop(/*hand_over=*/true);
#endif
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Block the stop signals in every thread; main waits for them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Flags flags;
  CLI::App app{
      "instaface-graphserver: the social-graph service over MySQL, writing through the "
      "elected leader"};
  auto env = [](const char* name) { return std::string("INSTAFACE_GRAPH_") + name; };
  app.add_option("--listen", flags.listen, "host:port to serve HTTP on")
      ->envname(env("LISTEN"))
      ->capture_default_str();
  app.add_option("--app-address", flags.app_address,
                 "this server's address as the agent advertises it (default http://<listen>)")
      ->envname(env("APP_ADDRESS"));
  app.add_option("--shm", flags.shm, "the agent's shared-memory segment")
      ->envname(env("SHM"))
      ->capture_default_str();
  app.add_option("--socket", flags.socket,
                 "the agent's control socket (/unplugged, /unreachable, the console's peers)")
      ->envname(env("SOCKET"))
      ->capture_default_str();
  app.add_option("--cors-origin", flags.cors_origin,
                 "Access-Control-Allow-Origin on every answer (\"*\": any page, as the original "
                 "allows; empty: no CORS)")
      ->envname(env("CORS_ORIGIN"))
      ->capture_default_str();
  app.add_option("--threads", flags.threads, "network I/O threads")
      ->envname(env("THREADS"))
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--workers", flags.workers,
                 "request handler threads (database calls block); 0 runs handlers on the "
                 "--threads I/O threads")
      ->envname(env("WORKERS"))
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_option("--db-pool", flags.db_pool, "database connections per server")
      ->envname(env("DB_POOL"))
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--body-limit", flags.body_limit, "largest request body in bytes (413 above)")
      ->envname(env("BODY_LIMIT"))
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--max-connections", flags.max_connections,
                 "open client connections at most; one more is answered 503 and closed")
      ->envname(env("MAX_CONNECTIONS"))
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--request-timeout-ms", flags.request_timeout_ms,
                 "time to receive a request or send a reply; also the keep-alive idle limit")
      ->envname(env("REQUEST_TIMEOUT_MS"))
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--forward-timeout-ms", flags.forward_timeout_ms,
                 "how long a follower keeps sending a forwarded write to the leader (again under "
                 "its Idempotency-Key when an answer is lost or the leader changes) before it "
                 "answers 503")
      ->envname(env("FORWARD_TIMEOUT_MS"))
      ->check(CLI::Range(10, 600000))
      ->capture_default_str();
  app.add_option("--write-retry-ms", flags.write_retry_ms,
                 "how long the leader retries a create the database failed, when a retry is "
                 "safe: it was not applied (a restart), or it is keyed and its outcome unknown; "
                 "keep it below --forward-timeout-ms")
      ->envname(env("WRITE_RETRY_MS"))
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  app.add_option("--startup-wait-ms", flags.startup_wait_ms,
                 "how long to wait for the database and the agent at start")
      ->envname(env("STARTUP_WAIT_MS"))
      ->check(CLI::Range(0, 3600000))
      ->capture_default_str();
  app.add_option("--max-batch", flags.max_batch,
                 "entity creates committed together by the leader (group commit); 1 disables")
      ->envname(env("MAX_BATCH"))
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--batches-in-flight", flags.batches_in_flight,
                 "group-commit batches the leader runs at once, each on its own connection")
      ->envname(env("BATCHES_IN_FLIGHT"))
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--batch-linger-us", flags.batch_linger_us,
                 "how long a group-commit batch may wait to fill up to the size of the last one "
                 "(microseconds; 0 commits at once)")
      ->envname(env("BATCH_LINGER_US"))
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--election", flags.election,
                 "sidecar: read instaface-agent's shared memory; embedded: run the election in "
                 "this process (takes the agent's flags below)")
      ->envname(env("ELECTION"))
      ->check(CLI::IsMember({"sidecar", "embedded"}))
      ->capture_default_str();
  auto* embedded = app.add_option_group("embedded election", "with --election embedded");
  embedded->add_option("--id", flags.node_id, "this node's id")->envname(env("ID"));
  embedded->add_option("--cluster", flags.cluster, "cluster name")->envname(env("CLUSTER"));
  embedded->add_option("--cluster-size", flags.cluster_size, "configured voters")
      ->envname(env("CLUSTER_SIZE"))
      ->capture_default_str();
  embedded->add_option("--peer-listen", flags.peer_listen, "nng URL to answer peers on")
      ->envname(env("PEER_LISTEN"));
  embedded->add_option("--peer-advertise", flags.peer_advertise, "nng URL peers dial")
      ->envname(env("PEER_ADVERTISE"));
  embedded->add_option("--redis", flags.redis, "Redis for discovery")->envname(env("REDIS"));
  embedded->add_option("--peers", flags.peers, "static peers id=url,...")->envname(env("PEERS"));
  embedded->add_option("--secret-file", flags.secret_file, "the cluster secret")
      ->envname(env("SECRET_FILE"));
  embedded->add_option("--state-dir", flags.state_dir, "durable term and vote (required)")
      ->envname(env("STATE_DIR"));
  embedded->add_option("--heartbeat-ms", flags.heartbeat_ms, "leader heartbeat period")
      ->envname(env("HEARTBEAT_MS"))
      ->capture_default_str();
  embedded->add_option("--election-min-ms", flags.election_min_ms, "shortest election timeout")
      ->envname(env("ELECTION_MIN_MS"))
      ->capture_default_str();
  embedded->add_option("--election-max-ms", flags.election_max_ms, "longest election timeout")
      ->envname(env("ELECTION_MAX_MS"))
      ->capture_default_str();
  app.footer(std::string(R"(
The database comes from the environment, as in the original service (no flag):
  ConnectionStrings__DefaultConnection  the primary, which the leader writes (required)
  ConnectionStrings__ReadReplica        a read replica for cache misses (optional)
The seed's literal names "ConnectionStrings:DefaultConnection" and "ConnectionStrings:ReadReplica"
are read too, when set ("__" is how a shell spells ":"). The value is a connection string:
  server=127.0.0.1;port=3306;database=instaface1;user=bob;password=secret
Keys are case-insensitive: )") +
             graphdb::ValidConnectionStringKeys() + R"(.
Required: server, database, user. A value holding ';' is quoted with " or '.

The console is at http://<listen>/ (GET /api/graph/events streams what it shows).
Every flag can also come from the environment as INSTAFACE_GRAPH_<FLAG>.)");
  CLI11_PARSE(app, argc, argv);
  return Run(flags);
}
