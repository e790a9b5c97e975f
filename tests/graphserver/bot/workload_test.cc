// The load bot's workload, run in process against a whole cluster: a private MariaDB, a private
// Redis, three instaface-agents and three instaface-graphservers. It must write the original
// Instaface's data (checked in the database afterwards) and count every answer as what it is.
#include "workload.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "graph_cluster_environment.h"
#include "instaface/graphserver/http_client.h"
#include "instaface/graphserver/http_server.h"
#include "instaface/graphserver/idempotency_key.h"

namespace instaface::testing {
namespace {

namespace http = boost::beast::http;
using namespace std::chrono_literals;
using graphserver::HttpRequest;
using graphserver::HttpResponse;

GraphCluster* cluster = nullptr;

GraphClusterOptions Options() {
  GraphClusterOptions o;
  o.agent_binary = INSTAFACE_AGENT_BINARY;
  o.graphserver_binary = INSTAFACE_GRAPHSERVER_BINARY;
  o.database = "bot";
  // Elections are not under test here: timings slow enough that a busy machine does not
  // depose the leader in the middle of a run.
  o.heartbeat_ms = 100;
  o.election_min_ms = 500;
  o.election_max_ms = 1000;
  return o;
}

::testing::Environment* const kCluster =
    ::testing::AddGlobalTestEnvironment(new GraphClusterEnvironment(Options(), &cluster));

std::string Describe(const bot::WorkloadResult& r) {
  return bot::FormatResult(r) + bot::ResultJson(r);
}

uint64_t CountOf(const std::map<std::string, uint64_t>& counts, const std::string& key) {
  auto it = counts.find(key);
  return it == counts.end() ? 0 : it->second;
}

// Stands between the bot and the leader and passes every request on, but sends each
// association create twice: first on its own, as a network does that replays a write whose
// answer was lost, then the bot's. So every association the bot asks for already exists when
// its own request arrives, and the bot is handed the server's real 409.
class ReplayingProxy {
 public:
  explicit ReplayingProxy(std::string upstream) : upstream_(std::move(upstream)) {
    graphserver::HttpServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.io_threads = 1;
    o.worker_threads = 4;
    server_ = std::make_unique<graphserver::HttpServer>(
        o, [this](HttpRequest&& req) { return Handle(std::move(req)); });
  }

  common::Status Start() { return server_->Start(); }
  void Stop() { server_->Stop(); }
  std::string address() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  // Answers relayed to the bot, by HTTP status.
  std::map<int, uint64_t> relayed() {
    std::lock_guard<std::mutex> lock(mu_);
    return relayed_;
  }
  uint64_t associations_replayed() {
    std::lock_guard<std::mutex> lock(mu_);
    return replayed_;
  }
  uint64_t replays_refused() {
    std::lock_guard<std::mutex> lock(mu_);
    return replays_refused_;
  }

 private:
  HttpResponse Handle(HttpRequest&& req) {
    const bool association = std::string(req.target()).rfind("/api/graph/associations/", 0) == 0;
    if (association) {
      graphserver::ClientResult first = Pass(req);
      std::lock_guard<std::mutex> lock(mu_);
      ++replayed_;
      if (!first.ok || first.response.result_int() != 200) ++replays_refused_;
    }
    graphserver::ClientResult r = Pass(req);
    HttpResponse res;
    if (r.ok) {
      res = HttpResponse{r.response.result(), req.version()};
      res.set(http::field::content_type, "application/json");
      res.body() = std::move(r.response.body());
    } else {
      res = graphserver::JsonError(502, "upstream: " + r.error, req.version());
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    std::lock_guard<std::mutex> lock(mu_);
    ++relayed_[res.result_int()];
    return res;
  }

  graphserver::ClientResult Pass(const HttpRequest& req) {
    HttpRequest out{req.method(), req.target(), 11};
    out.set(http::field::content_type, "application/json");
    out.body() = req.body();
    return pool_.Send(upstream_, std::move(out), 5s);
  }

  const std::string upstream_;
  graphserver::ClientPool pool_;
  std::unique_ptr<graphserver::HttpServer> server_;
  std::mutex mu_;
  std::map<int, uint64_t> relayed_;  // under mu_
  uint64_t replayed_ = 0;            // under mu_
  uint64_t replays_refused_ = 0;     // under mu_
};

// Stands between the bot and the leader and passes every request on, with its Idempotency-Key,
// but loses the leader's answer to every other write: the write is committed, and the bot gets
// the 503 with an unknown outcome that a follower answers when its forward's answer is lost.
class AnswerLosingProxy {
 public:
  explicit AnswerLosingProxy(std::string upstream) : upstream_(std::move(upstream)) {
    graphserver::HttpServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.io_threads = 1;
    o.worker_threads = 4;
    server_ = std::make_unique<graphserver::HttpServer>(
        o, [this](HttpRequest&& req) { return Handle(std::move(req)); });
  }

  common::Status Start() { return server_->Start(); }
  void Stop() { server_->Stop(); }
  std::string address() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  uint64_t answers_lost() {
    std::lock_guard<std::mutex> lock(mu_);
    return lost_;
  }

 private:
  HttpResponse Handle(HttpRequest&& req) {
    const std::string target(req.target());
    const bool write = target.find("/create") != std::string::npos ||
                       target.rfind("/api/graph/associations/", 0) == 0;
    HttpRequest out{req.method(), req.target(), 11};
    out.set(http::field::content_type, "application/json");
    auto key = req.find(graphserver::kIdempotencyKeyHeader);
    if (key != req.end()) out.set(graphserver::kIdempotencyKeyHeader, key->value());
    out.body() = req.body();
    graphserver::ClientResult r = pool_.Send(upstream_, std::move(out), 5s);
    bool lose = false;
    if (write && r.ok && r.response.result_int() == 200) {
      std::lock_guard<std::mutex> lock(mu_);
      lose = writes_++ % 2 == 0;
      if (lose) ++lost_;
    }
    HttpResponse res;
    if (lose) {
      res = graphserver::JsonError(503, "the leader's answer was lost", req.version());
      res.set(graphserver::kWriteOutcomeHeader, "unknown");
    } else if (r.ok) {
      res = HttpResponse{r.response.result(), req.version()};
      res.set(http::field::content_type, "application/json");
      res.body() = std::move(r.response.body());
    } else {
      res = graphserver::JsonError(502, "upstream: " + r.error, req.version());
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
  }

  const std::string upstream_;
  graphserver::ClientPool pool_;
  std::unique_ptr<graphserver::HttpServer> server_;
  std::mutex mu_;
  uint64_t writes_ = 0;  // under mu_
  uint64_t lost_ = 0;    // under mu_
};

class BotWorkloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(cluster, nullptr);
    leader_ = cluster->WaitForLeader(10s);
    ASSERT_GE(leader_, 0) << cluster->Logs();
  }

  // The first column of the first row of `sql`, run in the cluster's database, as a number.
  int64_t Number(const std::string& sql) {
    std::string n = cluster->QueryOne("USE " + cluster->database() + "; " + sql);
    EXPECT_EQ(n.rfind("ERROR", 0), std::string::npos) << sql << ": " << n;
    return n.rfind("ERROR", 0) == 0 || n.empty() ? -1 : std::stoll(n);
  }

  // Associations of `type` whose reverse, of type `reverse`, is missing.
  int64_t WithoutReverse(const std::string& type, const std::string& reverse) {
    return Number("SELECT COUNT(*) FROM associations a LEFT JOIN associations b ON b.type = '" +
                  reverse + "' AND b.from_id = a.to_id AND b.to_id = a.from_id WHERE a.type = '" +
                  type + "' AND b.type IS NULL");
  }

  // Associations of `type` that do not lead from a `from` entity to a `to` entity.
  int64_t MisdirectedOf(const std::string& type, const std::string& from, const std::string& to) {
    return Number(
        "SELECT COUNT(*) FROM associations a JOIN entities f ON f.id = a.from_id JOIN entities t "
        "ON t.id = a.to_id WHERE a.type = '" +
        type + "' AND (f.type <> '" + from + "' OR t.type <> '" + to + "')");
  }

  int64_t OfType(const std::string& table, const std::string& type) {
    return Number("SELECT COUNT(*) FROM " + table + " WHERE type = '" + type + "'");
  }

  int leader_ = -1;
};

TEST_F(BotWorkloadTest, WritesTheOriginalsUsersFriendshipsStatusesAndLikes) {
  bot::Targets targets;
  for (int i = 0; i < cluster->size(); ++i) targets.all.push_back(cluster->app_address(i));
  targets.leader = cluster->app_address(leader_);
  bot::WorkloadOptions options;
  options.rate = 200;
  options.duration = 8s;
  options.concurrency = 4;
  options.report_every = 0s;
  options.seed = 11;
  bot::WorkloadResult r = bot::RunWorkload(targets, options, nullptr);

  // Fresh users befriend and like only what existed before them: no association can collide.
  EXPECT_EQ(r.failed, 0u) << Describe(r) << cluster->Logs();
  EXPECT_EQ(r.conflicts, 0u) << Describe(r);
  for (const char* op : {"sample_users", "create_user", "befriend", "sample_statuses",
                         "post_status", "like", "timeline", "friends_posts"}) {
    EXPECT_GT(CountOf(r.ok_by_operation, op), 0u) << op << "\n" << Describe(r);
  }

  // Only users and statuses; a user is {"firstName", "lastName"}, a status {"text"}.
  EXPECT_GT(OfType("entities", "user"), 0);
  EXPECT_GT(OfType("entities", "status"), 0);
  EXPECT_EQ(Number("SELECT COUNT(*) FROM entities WHERE type NOT IN ('user', 'status')"), 0);
  EXPECT_EQ(Number("SELECT COUNT(*) FROM entities WHERE type = 'user' AND NOT ("
                   "JSON_LENGTH(attributes) = 2"
                   " AND JSON_TYPE(JSON_EXTRACT(attributes, '$.firstName')) <=> 'STRING'"
                   " AND JSON_TYPE(JSON_EXTRACT(attributes, '$.lastName')) <=> 'STRING')"),
            0);
  EXPECT_EQ(Number("SELECT COUNT(*) FROM entities WHERE type = 'status' AND NOT ("
                   "JSON_LENGTH(attributes) = 1"
                   " AND JSON_TYPE(JSON_EXTRACT(attributes, '$.text')) <=> 'STRING')"),
            0);

  // The original's association types, each made with its reverse, between the right kinds.
  EXPECT_EQ(Number("SELECT COUNT(*) FROM associations WHERE type NOT IN "
                   "('friend', 'posted', 'postedby', 'liked', 'likedby')"),
            0);
  for (const char* type : {"friend", "posted", "postedby", "liked", "likedby"}) {
    EXPECT_GT(OfType("associations", type), 0) << type;
  }
  EXPECT_EQ(WithoutReverse("friend", "friend"), 0);
  EXPECT_EQ(WithoutReverse("posted", "postedby"), 0);
  EXPECT_EQ(WithoutReverse("postedby", "posted"), 0);
  EXPECT_EQ(WithoutReverse("liked", "likedby"), 0);
  EXPECT_EQ(WithoutReverse("likedby", "liked"), 0);
  EXPECT_EQ(MisdirectedOf("friend", "user", "user"), 0);
  EXPECT_EQ(MisdirectedOf("posted", "user", "status"), 0);
  EXPECT_EQ(MisdirectedOf("postedby", "status", "user"), 0);
  EXPECT_EQ(MisdirectedOf("liked", "user", "status"), 0);
  EXPECT_EQ(MisdirectedOf("likedby", "status", "user"), 0);
  EXPECT_EQ(Number("SELECT COUNT(*) FROM associations WHERE type = 'friend' AND from_id = to_id"),
            0);
  // Every status was posted by exactly one user.
  EXPECT_EQ(Number("SELECT COUNT(*) FROM entities s WHERE s.type = 'status' AND (SELECT COUNT(*) "
                   "FROM associations a WHERE a.type = 'postedby' AND a.from_id = s.id) <> 1"),
            0);
}

TEST_F(BotWorkloadTest, A409IsCountedAsAConflictNotAsOk) {
  ReplayingProxy proxy(cluster->app_address(leader_));
  ASSERT_TRUE(proxy.Start().ok());
  bot::Targets targets;
  targets.all = {proxy.address()};
  bot::WorkloadOptions options;
  options.rate = 100;
  options.duration = 4s;
  options.concurrency = 2;
  options.report_every = 0s;
  options.seed = 29;
  bot::WorkloadResult r = bot::RunWorkload(targets, options, nullptr);
  proxy.Stop();

  std::map<int, uint64_t> relayed = proxy.relayed();
  ASSERT_GT(proxy.associations_replayed(), 0u) << Describe(r);
  EXPECT_EQ(proxy.replays_refused(), 0u);
  // Every association the bot asked for came back 409, and each is a conflict, not ok.
  EXPECT_EQ(relayed[409], proxy.associations_replayed());
  EXPECT_EQ(r.conflicts, relayed[409]) << Describe(r);
  EXPECT_EQ(CountOf(r.errors_by_kind, "409"), relayed[409]) << Describe(r);
  EXPECT_EQ(r.ok, relayed[200]) << Describe(r);
  EXPECT_EQ(r.failed, 0u) << Describe(r) << cluster->Logs();
  EXPECT_EQ(CountOf(r.ok_by_operation, "befriend"), 0u) << Describe(r);
  EXPECT_EQ(CountOf(r.ok_by_operation, "like"), 0u) << Describe(r);
  EXPECT_NE(bot::ResultJson(r).find("\"conflicts\":" + std::to_string(r.conflicts)),
            std::string::npos)
      << bot::ResultJson(r);
}

// A write whose outcome is unknown is sent again under its key, and written once: the database
// ends with one row per acknowledged create, and no association retry is taken for a duplicate.
TEST_F(BotWorkloadTest, AWriteWithAnUnknownOutcomeIsSentAgainAndWrittenOnce) {
  AnswerLosingProxy proxy(cluster->app_address(leader_));
  ASSERT_TRUE(proxy.Start().ok());
  const int64_t users_before = OfType("entities", "user");
  const int64_t statuses_before = OfType("entities", "status");
  bot::Targets targets;
  targets.all = {proxy.address()};
  bot::WorkloadOptions options;
  options.rate = 50;
  options.duration = 3s;
  options.concurrency = 4;
  options.report_every = 0s;
  options.seed = 31;
  bot::WorkloadResult r = bot::RunWorkload(targets, options, nullptr);
  proxy.Stop();

  ASSERT_GT(proxy.answers_lost(), 0u);
  EXPECT_EQ(r.write_retries, proxy.answers_lost()) << Describe(r);
  EXPECT_EQ(r.failed, 0u) << Describe(r) << cluster->Logs();
  EXPECT_EQ(r.conflicts, 0u) << Describe(r);
  EXPECT_EQ(OfType("entities", "user") - users_before,
            static_cast<int64_t>(CountOf(r.ok_by_operation, "create_user")))
      << Describe(r);
  // A status is created, then linked twice (posted, postedby), all counted as post_status.
  EXPECT_EQ(3 * (OfType("entities", "status") - statuses_before),
            static_cast<int64_t>(CountOf(r.ok_by_operation, "post_status")))
      << Describe(r);
}

}  // namespace
}  // namespace instaface::testing
