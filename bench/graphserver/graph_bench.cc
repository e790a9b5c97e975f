// graphserver_bench: one run, one table. Starts a private MariaDB, Redis, three agents and three
// graphservers (tests/graphserver/e2e's GraphCluster), then measures on the same database:
//
//   1. write throughput: HTTP entity creates through the leader (keep-alive clients, C at once)
//      against a raw MariaDB Connector/C loop inserting into the same table with the same
//      concurrency and the same durability (autocommit, the server's defaults), at each
//      concurrency asked for. Each round runs raw, then HTTP from a Beast load generator
//      (http_load.h), then raw, then HTTP from wrk, so that machine noise hits both sides; the
//      ratio is over all rounds, and the spread of the per-round ratios is shown. Both HTTP
//      clients drive their connections from two event loops, so that on a small machine the
//      client takes little CPU from the server, as Connector/C takes little from MariaDB;
//   2. the added latency of a forwarded write: sequential creates through a follower against
//      the same through the leader, p50 and p99;
//   3. cached read throughput under wrk (POST /api/graph/entities on a follower, warm cache),
//      against wrk on /healthz of the same server as the HTTP ceiling;
//   4. optionally, the leader's write throughput without group commit (--max-batch 1).
//
//   graphserver_bench [--concurrency 8,16,32] [--seconds 4] [--rounds 2] [--inline]
//                     [--no-batch-compare] [--writes-only] [--graphserver-arg ARG]...
//   (--concurrency: a comma-separated list; 2. to 4. use the first;
//    --inline: the graphservers answer on their I/O threads, without the worker pool;
//    --writes-only: measure 1. and stop;
//    --graphserver-arg: one more flag for every graphserver, e.g. --batches-in-flight=1)
#include <mysql.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph_cluster.h"
#include "http_load.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace {

using namespace instaface;
namespace ift = instaface::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace http = boost::beast::http;

struct Rate {
  uint64_t ops = 0;
  uint64_t errors = 0;
  double seconds = 0;
  double per_second() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
  Rate& operator+=(const Rate& o) {
    ops += o.ops, errors += o.errors, seconds += o.seconds;
    return *this;
  }
};

// Runs `client(t, end, ops, errors)` on `concurrency` threads until `duration` has passed; each
// client counts its own successes and failures.
using Client = std::function<void(int t, Clock::time_point end, std::atomic<uint64_t>& ops,
                                  std::atomic<uint64_t>& errors)>;
Rate ClosedLoop(int concurrency, std::chrono::seconds duration, const Client& client) {
  std::atomic<uint64_t> ops{0}, errors{0};
  auto start = Clock::now();
  auto end = start + duration;
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] { client(t, end, ops, errors); });
  }
  for (auto& th : threads) th.join();
  return Rate{ops, errors, std::chrono::duration<double>(Clock::now() - start).count()};
}

// C threads of Connector/C: prepared INSERT, autocommit, as many as fit in `duration`.
Rate RawInserts(ift::GraphCluster& cluster, int concurrency, std::chrono::seconds duration) {
  return ClosedLoop(
      concurrency, duration, [&](int t, Clock::time_point end, auto& ops, auto& errors) {
        mysql_thread_init();
        MYSQL* db = mysql_init(nullptr);
        if (!mysql_real_connect(db, "127.0.0.1", "root", cluster.db().root_password().c_str(),
                                cluster.database().c_str(), cluster.db().port(), nullptr, 0)) {
          std::cerr << "raw connect: " << mysql_error(db) << "\n";
          ++errors;
          mysql_close(db);
          mysql_thread_end();
          return;
        }
        MYSQL_STMT* stmt = mysql_stmt_init(db);
        const char* sql =
            "INSERT INTO entities (type, created, attributes) VALUES (?, UTC_TIMESTAMP(6), ?)";
        if (mysql_stmt_prepare(stmt, sql, strlen(sql)) != 0) {
          std::cerr << "raw prepare: " << mysql_stmt_error(stmt) << "\n";
          ++errors;
        } else {
          std::string type = "raw";
          for (uint64_t i = 0; Clock::now() < end; ++i) {
            std::string attrs = "{\"n\":" + std::to_string(i) + ",\"t\":" + std::to_string(t) + "}";
            MYSQL_BIND bind[2] = {};
            unsigned long type_len = type.size(), attrs_len = attrs.size();
            bind[0].buffer_type = MYSQL_TYPE_STRING;
            bind[0].buffer = type.data();
            bind[0].buffer_length = type_len;
            bind[0].length = &type_len;
            bind[1].buffer_type = MYSQL_TYPE_STRING;
            bind[1].buffer = attrs.data();
            bind[1].buffer_length = attrs_len;
            bind[1].length = &attrs_len;
            if (mysql_stmt_bind_param(stmt, bind) != 0 || mysql_stmt_execute(stmt) != 0) {
              ++errors;
            } else {
              ++ops;
            }
          }
        }
        mysql_stmt_close(stmt);
        mysql_close(db);
        mysql_thread_end();
      });
}

// C keep-alive connections creating entities through node `node`, driven from two event loops
// (as wrk -t2 does).
Rate HttpCreates(ift::GraphCluster& cluster, int node, int concurrency,
                 std::chrono::seconds duration) {
  bench::HttpLoadOptions o;
  o.port = cluster.app_port(node);
  o.target = "/api/graph/entities/bench/create";
  o.body = [](int c, uint64_t n) {
    return "{\"n\":" + std::to_string(n) + ",\"c\":" + std::to_string(c) + "}";
  };
  o.connections = concurrency;
  o.threads = 2;
  o.duration = duration;
  bench::HttpLoadResult r = bench::RunHttpLoad(o);
  return Rate{r.ok, r.failed, r.seconds};
}

struct Latency {
  double p50 = 0, p99 = 0;
};

Latency SequentialWrites(ift::GraphCluster& cluster, int node, int count) {
  graphserver::HttpClient client("127.0.0.1", cluster.app_port(node));
  std::vector<double> ms;
  for (int i = 0; i < count; ++i) {
    auto t0 = Clock::now();
    auto r = client.Send(http::verb::post, "/api/graph/entities/lat/create", "{}", 10s);
    if (r.ok && r.response.result_int() == 200) {
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
  }
  Latency l;
  if (ms.empty()) return l;
  std::sort(ms.begin(), ms.end());
  l.p50 = ms[ms.size() / 2];
  l.p99 = ms[std::min(ms.size() - 1, static_cast<size_t>(std::ceil(ms.size() * 0.99)) - 1)];
  return l;
}

// Requests/sec that wrk reports, or 0.
double Wrk(const std::string& url, const std::string& lua, int seconds, const ift::TempDir& dir,
           int connections = 16) {
  std::vector<std::string> argv = {"wrk", "-t2", "-c" + std::to_string(connections),
                                   "-d" + std::to_string(seconds) + "s"};
  if (!lua.empty()) {
    std::ofstream(dir.File("post.lua")) << lua;
    argv.push_back("-s");
    argv.push_back(dir.File("post.lua"));
  }
  argv.push_back(url);
  ift::SubprocessOptions o;
  o.argv = argv;
  o.stdout_path = dir.File("wrk.out");
  o.stderr_path = dir.File("wrk.err");
  ift::Subprocess wrk(o);
  if (!wrk.ok()) {
    std::cerr << "wrk: " << wrk.error() << "\n";
    return 0;
  }
  wrk.Wait(std::chrono::seconds(seconds + 30));
  std::string out = wrk.ReadStdout();
  size_t at = out.find("Requests/sec:");
  if (at == std::string::npos) {
    std::cerr << "wrk output:\n" << out << wrk.ReadStderr() << "\n";
    return 0;
  }
  size_t non2xx = out.find("Non-2xx");
  if (non2xx != std::string::npos) std::cerr << "wrk saw errors: " << out.substr(non2xx, 60);
  return std::atof(out.c_str() + at + 13);
}

// The leader's group-commit totals from its /metrics: {batches, creates}.
std::pair<double, double> BatchTotals(ift::GraphCluster& cluster, int node) {
  graphserver::HttpClient client("127.0.0.1", cluster.app_port(node));
  auto r = client.Send(http::verb::get, "/metrics", "", 10s);
  auto value = [&](const std::string& name) {
    if (!r.ok) return 0.0;
    const std::string& text = r.response.body();
    size_t at = text.find("\n" + name + " ");
    return at == std::string::npos ? 0.0 : std::atof(text.c_str() + at + name.size() + 2);
  };
  return {value("instaface_graph_write_batches_total"),
          value("instaface_graph_batched_creates_total")};
}

std::string Fmt(const char* format, double a, double b = 0) {
  char buf[128];
  snprintf(buf, sizeof(buf), format, a, b);
  return buf;
}

void Row(const std::string& what, const std::string& value, const std::string& ratio) {
  printf("%-56s %16s %18s\n", what.c_str(), value.c_str(), ratio.c_str());
}

// "8,32" -> {8, 32}; empty on anything else.
std::vector<int> ParseLevels(const std::string& text) {
  std::vector<int> levels;
  size_t at = 0;
  while (at <= text.size()) {
    size_t comma = text.find(',', at);
    std::string part = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (part.empty() || part.size() > 4 ||
        part.find_first_not_of("0123456789") != std::string::npos) {
      return {};
    }
    int n = std::atoi(part.c_str());
    if (n < 1 || n > 512) return {};
    levels.push_back(n);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return levels;
}

// One side of a comparison, summed over rounds, with each round's ratio to its raw partner.
struct Pair {
  Rate raw, http;
  std::vector<double> round_ratios;
  void Add(const Rate& r, const Rate& h) {
    raw += r;
    http += h;
    round_ratios.push_back(r.per_second() > 0 ? h.per_second() / r.per_second() : 0);
  }
  double ratio() const { return raw.per_second() > 0 ? http.per_second() / raw.per_second() : 0; }
  std::string Spread() const {
    if (round_ratios.empty()) return "";
    auto [lo, hi] = std::minmax_element(round_ratios.begin(), round_ratios.end());
    return Fmt("%.2f", ratio()) + Fmt(" (%.2f-%.2f)", *lo, *hi);
  }
};

struct Level {
  int concurrency = 0;
  Pair beast, wrk;
  double batches = 0, batched = 0;  // the leader's group commits during the Beast runs
};

Level MeasureWrites(ift::GraphCluster& cluster, int leader, int concurrency, int rounds,
                    std::chrono::seconds phase) {
  Level level;
  level.concurrency = concurrency;
  std::cerr << "writes, " << concurrency << " at once: raw vs the leader, " << rounds
            << " rounds of 4 x " << phase.count() << " s...\n";
  HttpCreates(cluster, leader, concurrency, 1s);  // warm-up: connections, pools, statements
  ift::TempDir wrk_dir("ifbenchw");
  const std::string create_lua =
      "wrk.method = \"POST\"\nwrk.body = \"{\\\"by\\\":\\\"wrk\\\"}\"\n"
      "wrk.headers[\"Content-Type\"] = \"application/json\"\n";
  const std::string url = cluster.app_address(leader) + "/api/graph/entities/bench/create";
  for (int round = 0; round < rounds; ++round) {
    Rate r = RawInserts(cluster, concurrency, phase);
    auto before = BatchTotals(cluster, leader);
    Rate h = HttpCreates(cluster, leader, concurrency, phase);
    auto after = BatchTotals(cluster, leader);
    level.batches += after.first - before.first;
    level.batched += after.second - before.second;
    level.beast.Add(r, h);
    r = RawInserts(cluster, concurrency, phase);
    Rate w;
    w.seconds = static_cast<double>(phase.count());
    w.ops = static_cast<uint64_t>(
        Wrk(url, create_lua, static_cast<int>(phase.count()), wrk_dir, concurrency) * w.seconds);
    level.wrk.Add(r, w);
  }
  return level;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> levels = {8, 16, 32};
  int seconds = 4;
  int rounds = 2;
  bool batch_compare = true;
  bool inline_handlers = false;  // graphservers run handlers on their I/O threads
  bool writes_only = false;      // stop after the leader's write throughput
  std::vector<std::string> graphserver_args;
  const char* usage =
      "usage: graphserver_bench [--concurrency N[,N...]] [--seconds S] [--rounds R] [--inline] "
      "[--no-batch-compare] [--writes-only] [--graphserver-arg ARG]...\n";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--concurrency" && i + 1 < argc) {
      levels = ParseLevels(argv[++i]);
      if (levels.empty()) {
        std::cerr << "--concurrency: expected a comma-separated list of 1..512, got '" << argv[i]
                  << "'\n";
        return 2;
      }
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--inline") {
      inline_handlers = true;
    } else if (a == "--no-batch-compare") {
      batch_compare = false;
    } else if (a == "--writes-only") {
      writes_only = true;
      batch_compare = false;
    } else if (a == "--graphserver-arg" && i + 1 < argc) {
      graphserver_args.push_back(argv[++i]);
    } else if (a == "-h" || a == "--help") {
      std::cout << usage;
      return 0;
    } else {
      std::cerr << usage;
      return 2;
    }
  }
  const int concurrency = levels.front();
  const int most = *std::max_element(levels.begin(), levels.end());
  mysql_library_init(0, nullptr, nullptr);
  ift::GraphClusterOptions options;
  options.agent_binary = INSTAFACE_AGENT_BINARY;
  options.graphserver_binary = INSTAFACE_GRAPHSERVER_BINARY;
  options.database = "bench";
  options.graph_workers = std::max(16, most * 2);
  options.db_pool = std::max(16, most * 2);
  if (inline_handlers) {
    options.graph_workers = 0;
    options.extra_graphserver_args = {"--threads", std::to_string(std::max(16, most * 2))};
  }
  options.extra_graphserver_args.insert(options.extra_graphserver_args.end(),
                                        graphserver_args.begin(), graphserver_args.end());
  // Benchmark timings: the seed's defaults, so elections stay out of the measurement.
  options.heartbeat_ms = 100;
  options.election_min_ms = 300;
  options.election_max_ms = 600;
  std::cerr << "starting MariaDB, Redis, 3 agents and 3 graphservers...\n";
  ift::GraphCluster cluster(options);
  std::string error;
  if (!cluster.Start(&error)) {
    std::cerr << error << "\n";
    return 1;
  }
  int leader = cluster.WaitForLeader(10s);
  int follower = (leader + 1) % cluster.size();
  auto phase = std::chrono::seconds(seconds);

  std::vector<Level> measured;
  for (int c : levels) measured.push_back(MeasureWrites(cluster, leader, c, rounds, phase));

  Latency lat_leader, lat_follower;
  Rate via_follower;
  double reads = 0, healthz = 0;
  if (!writes_only) {
    std::cerr << "forwarded write latency...\n";
    SequentialWrites(cluster, follower, 50);  // warm-up
    lat_leader = SequentialWrites(cluster, leader, 500);
    lat_follower = SequentialWrites(cluster, follower, 500);
    via_follower = HttpCreates(cluster, follower, concurrency, phase);

    std::cerr << "cached reads under wrk...\n";
    ift::TempDir dir("ifbench");
    std::vector<int64_t> ids;
    graphserver::HttpClient setup("127.0.0.1", cluster.app_port(leader));
    for (int i = 0; i < 10; ++i) {
      auto r = setup.Send(http::verb::post, "/api/graph/entities/user/create",
                          "{\"name\":\"u" + std::to_string(i) + "\"}", 10s);
      if (r.ok && r.response.result_int() == 200) ids.push_back(std::stoll(r.response.body()));
    }
    std::string body = nlohmann::json(ids).dump();
    std::string lua = "wrk.method = \"POST\"\nwrk.body = \"" + body +
                      "\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n";
    std::string base = cluster.app_address(follower);
    graphserver::HttpClient(("127.0.0.1"), cluster.app_port(follower))
        .Send(http::verb::post, "/api/graph/entities", body, 10s);  // fill the cache
    reads = Wrk(base + "/api/graph/entities", lua, seconds, dir);
    healthz = Wrk(base + "/healthz", "", seconds, dir);
  }

  Rate unbatched;
  double unbatched_raw = 0;
  if (batch_compare) {
    std::cerr << "the leader without group commit (--max-batch 1)...\n";
    ift::GraphClusterOptions o2 = options;
    o2.database = "bench_nobatch";
    o2.extra_graphserver_args.push_back("--max-batch");
    o2.extra_graphserver_args.push_back("1");
    ift::GraphCluster second(o2);
    if (second.Start(&error)) {
      int l2 = second.WaitForLeader(10s);
      HttpCreates(second, l2, concurrency, 1s);
      unbatched_raw = RawInserts(second, concurrency, phase).per_second();
      unbatched = HttpCreates(second, l2, concurrency, phase);
    } else {
      std::cerr << error << "\n";
    }
  }

  printf("\n");
  Row("measurement", "value", "ratio (per round)");
  Row(std::string(56, '-'), std::string(16, '-'), std::string(18, '-'));
  for (const Level& l : measured) {
    const std::string c = std::to_string(l.concurrency);
    Row("raw Connector/C inserts, " + c + " connections (Beast pairs)",
        Fmt("%.0f/s", l.beast.raw.per_second()), "1.00");
    Row("HTTP creates via the leader, " + c + " connections (Beast)",
        Fmt("%.0f/s", l.beast.http.per_second()), l.beast.Spread());
    Row("raw Connector/C inserts, " + c + " connections (wrk pairs)",
        Fmt("%.0f/s", l.wrk.raw.per_second()), "1.00");
    Row("wrk creates via the leader, " + c + " connections", Fmt("%.0f/s", l.wrk.http.per_second()),
        l.wrk.Spread());
    Row("  creates per group commit (Beast load)",
        Fmt("%.1f", l.batches > 0 ? l.batched / l.batches : 0), "");
  }
  const double raw_rate = measured.front().beast.raw.per_second();
  if (!writes_only) {
    Row("HTTP creates via a follower, " + std::to_string(concurrency) + " connections (Beast)",
        Fmt("%.0f/s", via_follower.per_second()),
        Fmt("%.2f", raw_rate > 0 ? via_follower.per_second() / raw_rate : 0));
  }
  if (batch_compare) {
    Row("raw inserts, " + std::to_string(concurrency) + " connections (no-group-commit cluster)",
        Fmt("%.0f/s", unbatched_raw), "1.00");
    Row("HTTP creates via the leader, no group commit", Fmt("%.0f/s", unbatched.per_second()),
        Fmt("%.2f", unbatched_raw > 0 ? unbatched.per_second() / unbatched_raw : 0));
  }
  if (!writes_only) {
    Row("write latency via the leader, p50 / p99",
        Fmt("%.2f / %.2f ms", lat_leader.p50, lat_leader.p99), "");
    Row("write latency via a follower, p50 / p99",
        Fmt("%.2f / %.2f ms", lat_follower.p50, lat_follower.p99), "");
    Row("added by forwarding, p50 / p99",
        Fmt("%+.2f / %+.2f ms", lat_follower.p50 - lat_leader.p50,
            lat_follower.p99 - lat_leader.p99),
        Fmt("%.2fx", lat_leader.p50 > 0 ? lat_follower.p50 / lat_leader.p50 : 0));
    Row("wrk /healthz on a follower (HTTP ceiling)", Fmt("%.0f/s", healthz), "1.00");
    Row("wrk cached POST /api/graph/entities (10 ids)", Fmt("%.0f/s", reads),
        Fmt("%.2f", healthz > 0 ? reads / healthz : 0));
  }
  uint64_t raw_errors = 0, leader_errors = 0;
  for (const Level& l : measured) {
    raw_errors += l.beast.raw.errors + l.wrk.raw.errors;
    leader_errors += l.beast.http.errors;
  }
  printf("\nerrors: raw %llu, via leader %llu, via follower %llu\n",
         static_cast<unsigned long long>(raw_errors),
         static_cast<unsigned long long>(leader_errors),
         static_cast<unsigned long long>(via_follower.errors));
  for (const Level& l : measured) {
    printf(
        "target at %d: HTTP creates via the leader >= 0.80 of raw inserts: %s (Beast), %s (wrk)\n",
        l.concurrency, l.beast.ratio() >= 0.8 ? "met" : "NOT met",
        l.wrk.ratio() >= 0.8 ? "met" : "NOT met");
  }
  mysql_library_end();
  return 0;
}
