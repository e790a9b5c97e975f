// instaface-bot: the original Instaface's load generator, through the HTTP API. New members
// join as users {"firstName", "lastName"}, befriend existing users ("friend" both ways), post
// statuses {"text"} ("posted" and "postedby") and like them ("liked" and "likedby"); timelines
// are read with query templates from followers; writes go through any node (followers forward
// to the leader) or only the leader. docs/graphserver.md ("The load bot") has the details.
//
//   instaface-bot --targets http://127.0.0.1:8081,http://127.0.0.1:8082 --rate 200 --duration 30
//   instaface-bot --redis redis://127.0.0.1:6379 --cluster demo --concurrency 16 --rate 0
//
// Prints progress every --report-every seconds, then throughput, conflicts (409: the
// association already existed) and failures apart, latency percentiles, the outcomes other than
// ok by kind, and a last line "bot-summary {json}" for scripts. Exits 1 when not a single request
// succeeded.
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "workload.h"

#ifdef INSTAFACE_BOT_HAVE_DISCOVERY
#include "instaface/discovery/redis_connection.h"
#include "instaface/discovery/redis_discovery.h"
#include "instaface/discovery/redis_url.h"
#endif

namespace {

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    if (item.rfind("http://", 0) != 0) item = "http://" + item;
    out.push_back(item);
  }
  return out;
}

#ifdef INSTAFACE_BOT_HAVE_DISCOVERY
// The app addresses of the registered nodes and of the leader, from the agents' Redis keys.
instaface::bot::Targets FromRedis(const std::string& url_text, const std::string& cluster,
                                  std::string& error) {
  using namespace instaface::discovery;
  instaface::bot::Targets t;
  auto url = ParseRedisUrl(url_text);
  if (!url.ok()) {
    error = url.status().message();
    return t;
  }
  auto redis = RedisConnection::Connect(*url, std::chrono::milliseconds(500),
                                        std::chrono::milliseconds(500));
  if (!redis.ok()) {
    error = redis.status().message();
    return t;
  }
  auto ids = redis->Command({"ZRANGE", NodesKey(cluster), "0", "-1"});
  if (!ids.ok()) {
    error = ids.status().message();
    return t;
  }
  for (const RedisReply& id : ids->elements) {
    auto app = redis->Command({"HGET", NodeKey(cluster, id.str), "app"});
    if (app.ok() && !app->is_nil() && !app->str.empty()) t.all.push_back(app->str);
  }
  auto leader = ReadLeader(*redis, cluster);
  if (leader.ok() && leader->has_value()) t.leader = (*leader)->app_address;
  if (t.all.empty()) error = "no graphserver registered under " + NodesKey(cluster);
  return t;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"instaface-bot: social-graph load through the graphserver API"};
  std::string targets_text, redis_url, cluster;
  instaface::bot::WorkloadOptions options;
  int duration_s = 30, report_s = 5, timeout_ms = 5000;
  bool leader_only = false;
  app.add_option("--targets", targets_text, "graphserver addresses, comma separated");
  app.add_option("--redis", redis_url, "discover the graphservers from the agents' Redis keys");
  app.add_option("--cluster", cluster, "the cluster name in Redis (with --redis)");
  app.add_option("--rate", options.rate, "operations per second in total; 0: unthrottled")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_option("--duration", duration_s, "seconds to run")
      ->check(CLI::Range(1, 86400 * 7))
      ->capture_default_str();
  app.add_option("--concurrency", options.concurrency, "parallel workers")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--report-every", report_s, "seconds between progress lines; 0: none")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "per-request timeout")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  app.add_flag("--writes-to-leader", leader_only,
               "send writes to the leader (when known) instead of any node");
  app.add_option("--seed", options.seed, "random seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  options.duration = std::chrono::seconds(duration_s);
  options.report_every = std::chrono::seconds(report_s);
  options.request_timeout = std::chrono::milliseconds(timeout_ms);
  options.writes_to_leader_only = leader_only;

  instaface::bot::Targets targets;
  if (!targets_text.empty()) {
    targets.all = SplitList(targets_text);
  } else if (!redis_url.empty()) {
#ifdef INSTAFACE_BOT_HAVE_DISCOVERY
    if (cluster.empty()) {
      std::cerr << "instaface-bot: --redis needs --cluster\n";
      return 2;
    }
    std::string error;
    targets = FromRedis(redis_url, cluster, error);
    if (targets.all.empty()) {
      std::cerr << "instaface-bot: " << error << "\n";
      return 2;
    }
    options.refresh_targets = [redis_url, cluster] {
      std::string ignored;
      return FromRedis(redis_url, cluster, ignored);
    };
#else
    std::cerr << "instaface-bot: built without Redis discovery; use --targets\n";
    return 2;
#endif
  } else {
    std::cerr << "instaface-bot: give --targets or --redis and --cluster\n";
    return 2;
  }
  if (targets.all.empty()) {
    std::cerr << "instaface-bot: no targets\n";
    return 2;
  }

  std::cout << "instaface-bot: " << targets.all.size() << " graphservers"
            << (targets.leader.empty() ? "" : ", leader " + targets.leader) << ", rate "
            << (options.rate > 0 ? std::to_string(static_cast<int>(options.rate)) + "/s"
                                 : std::string("unthrottled"))
            << ", " << options.concurrency << " workers, " << duration_s << " s" << std::endl;
  auto result = instaface::bot::RunWorkload(
      targets, options, [](const std::string& line) { std::cout << line << std::endl; });
  std::cout << instaface::bot::FormatResult(result);
  std::cout << "bot-summary " << instaface::bot::ResultJson(result) << std::endl;
  return result.ok > 0 ? 0 : 1;
}
