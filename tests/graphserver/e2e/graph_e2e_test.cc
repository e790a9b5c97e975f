// End to end: a private MariaDB (with a GTID replica), a private Redis, three instaface-agents
// and three instaface-graphservers as real processes, with fast election timings. One cluster
// per test binary; tests that kill or stop a leader run last and leave a working majority.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "graph_cluster_environment.h"
#include "instaface/graph/graph_service.h"
#include "instaface/graphdb/connection_string.h"
#include "instaface/graphdb/pool.h"

namespace instaface::testing {
namespace {

using json = nlohmann::json;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

GraphCluster* cluster = nullptr;

// How long the replica may take to apply what the primary has committed: a liveness bound
// (only a replica that never catches up fails), as generous as the replica tests' own.
constexpr auto kReplication = 30s;

GraphClusterOptions Options() {
  GraphClusterOptions o;
  o.agent_binary = INSTAFACE_AGENT_BINARY;
  o.graphserver_binary = INSTAFACE_GRAPHSERVER_BINARY;
  o.replica_readers = {2};
  return o;
}

::testing::Environment* const kCluster =
    ::testing::AddGlobalTestEnvironment(new GraphClusterEnvironment(Options(), &cluster));

class GraphE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(cluster, nullptr);
    leader_ = cluster->WaitForLeader(10s, down_);
    ASSERT_GE(leader_, 0) << cluster->Logs();
    for (int i = 0; i < cluster->size(); ++i) {
      bool down = std::find(down_.begin(), down_.end(), i) != down_.end();
      if (i != leader_ && !down && follower_ < 0) follower_ = i;
    }
    ASSERT_GE(follower_, 0);
  }

  // POST with the expected status; the body as JSON.
  json Post(int node, const std::string& target, const std::string& body, int status = 200) {
    auto r = cluster->Send(node, http::verb::post, target, body);
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.response.result_int(), status) << target << ": " << r.response.body();
    json parsed = json::parse(r.response.body(), nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << r.response.body();
    if (status >= 400) {
      EXPECT_TRUE(parsed.contains("error")) << r.response.body();
    }
    return parsed;
  }
  // A write retried through 503s (an election in progress), up to a generous deadline.
  json PostRetrying(int node, const std::string& target, const std::string& body) {
    auto deadline = Clock::now() + 15s;
    for (;;) {
      auto r = cluster->Send(node, http::verb::post, target, body, 5s);
      if (r.ok && r.response.result_int() == 200) return json::parse(r.response.body());
      if (Clock::now() > deadline) {
        ADD_FAILURE() << target << ": " << (r.ok ? r.response.body() : r.error);
        return json();
      }
      std::this_thread::sleep_for(50ms);
    }
  }
  int64_t Count(const std::string& where) {
    std::string n = cluster->QueryOne("SELECT COUNT(*) FROM " + cluster->database() +
                                      ".entities WHERE " + where);
    return n.rfind("ERROR", 0) == 0 ? -1 : std::stoll(n);
  }

  static inline std::vector<int> down_;  // nodes a previous test killed
  int leader_ = -1;
  int follower_ = -1;
};

TEST_F(GraphE2eTest, WriteThroughFollowerIsReadBackFromEveryNode) {
  json ann = Post(follower_, "/api/graph/entities/user/create", R"({"name":"ann"})");
  json bob = Post(follower_, "/api/graph/entities/user/create", R"({"name":"bob"})");
  ASSERT_TRUE(ann.is_number_integer() && bob.is_number_integer());
  Post(follower_, "/api/graph/associations/friend/from/" + ann.dump() + "/to/" + bob.dump(),
       R"({"since":"today"})");
  ASSERT_TRUE(cluster->replica()->WaitForReplication(cluster->db(), kReplication))
      << cluster->replica()->ReplicationReport();
  for (int i = 0; i < cluster->size(); ++i) {
    json got = Post(i, "/api/graph/entities", "[" + ann.dump() + "," + bob.dump() + "]");
    ASSERT_EQ(got.size(), 2u) << "node " << i << ": " << got;
    EXPECT_EQ(got[0]["attributes"]["name"], "ann");
    EXPECT_EQ(got[1]["attributes"]["name"], "bob");
    json friends = Post(i, "/api/graph/entities/friend", "[" + ann.dump() + "]");
    ASSERT_EQ(friends.size(), 1u) << "node " << i << ": " << friends;
    EXPECT_EQ(friends[0]["to"], bob);
    EXPECT_EQ(friends[0]["attributes"]["since"], "today");
  }
  auto metrics = cluster->Send(follower_, http::verb::get, "/metrics");
  EXPECT_NE(metrics.response.body().find(R"(instaface_graph_writes_forwarded_total{outcome="ok"})"),
            std::string::npos);
}

TEST_F(GraphE2eTest, QueryTemplateTwoLevelsDeep) {
  json ann = Post(leader_, "/api/graph/entities/user/create", R"({"name":"ann"})");
  json bob = Post(follower_, "/api/graph/entities/user/create", R"({"name":"bob"})");
  json post = Post(follower_, "/api/graph/entities/status/create", R"({"text":"hi"})");
  Post(follower_, "/api/graph/associations/friend/from/" + ann.dump() + "/to/" + bob.dump(), "{}");
  Post(leader_, "/api/graph/associations/posted/from/" + bob.dump() + "/to/" + post.dump(),
       R"({"mood":"good"})");
  ASSERT_TRUE(cluster->replica()->WaitForReplication(cluster->db(), kReplication))
      << cluster->replica()->ReplicationReport();
  json q = {{"entities", {ann}}, {"template", {{"friend", {{"posted", json::object()}}}}}};
  for (int i = 0; i < cluster->size(); ++i) {
    json tree = Post(i, "/api/graph/query", q.dump())["entities"];
    ASSERT_EQ(tree.size(), 1u) << tree;
    ASSERT_EQ(tree[0]["friend"].size(), 1u) << "node " << i << ": " << tree;
    const json& f = tree[0]["friend"][0];
    EXPECT_EQ(f["id"], bob);
    EXPECT_EQ(f["name"], "bob");
    ASSERT_EQ(f["posted"].size(), 1u) << tree;
    EXPECT_EQ(f["posted"][0]["id"], post);
    EXPECT_EQ(f["posted"][0]["text"], "hi");
    EXPECT_EQ(f["posted"][0]["mood"], "good");
  }
}

TEST_F(GraphE2eTest, ReplicaServesReadsOfTheNodeConfiguredWithIt) {
  // A row that exists only on the replica can only be seen by reading the replica.
  std::string error;
  ASSERT_TRUE(cluster->replica()->Execute(
      "SET sql_log_bin=0; INSERT INTO " + cluster->database() +
          ".entities (id, type, created, attributes) VALUES "
          "(900000001, 'user', UTC_TIMESTAMP(6), '{\"only\":\"replica\"}')",
      nullptr, &error))
      << error;
  json on_replica_reader = Post(2, "/api/graph/entities", "[900000001]");
  ASSERT_EQ(on_replica_reader.size(), 1u) << on_replica_reader;
  EXPECT_EQ(on_replica_reader[0]["attributes"]["only"], "replica");
  EXPECT_EQ(Count("id = 900000001"), 0);  // the primary never had it
}

TEST_F(GraphE2eTest, BadInputIsRefusedOnEveryNodeAndStoredNothing) {
  int64_t before = Count("1");
  for (int i = 0; i < cluster->size(); ++i) {
    Post(i, "/api/graph/entities/user/create", "{\"name\": ", 400);
    Post(i, "/api/graph/entities/user/create", "[\"not\", \"an object\"]", 400);
    // On the leader this reaches the group commit's fast path, which must refuse it the same.
    Post(i, "/api/graph/entities/much_too_long/create", "{}", 400);
    Post(i, "/api/graph/entities", R"(["seven"])", 400);
    Post(i, "/api/graph/associations/friend/from/-5/to/1", "{}", 400);
    Post(i, "/api/graph/associations/friend/from/1/to/9223372036854775808", "{}", 400);
    Post(i, "/api/graph/no/such/route", "{}", 404);
    std::string big = R"({"x":")" + std::string(2 << 20, 'a') + R"("})";
    Post(i, "/api/graph/entities/user/create", big, 413);
  }
  EXPECT_EQ(Count("1"), before);
  const std::string nasty = "x'); DELETE FROM entities; -- \\\" `";
  json id = Post(follower_, "/api/graph/entities/user/create", json{{"name", nasty}}.dump());
  ASSERT_TRUE(id.is_number_integer());
  EXPECT_EQ(Count("1"), before + 1);
  ASSERT_TRUE(cluster->replica()->WaitForReplication(cluster->db(), kReplication))
      << cluster->replica()->ReplicationReport();
  json got = Post(leader_, "/api/graph/entities", "[" + id.dump() + "]");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["attributes"]["name"], nasty);
}

TEST_F(GraphE2eTest, UnpluggedAndUnreachableTalkToTheAgent) {
  const std::string self = cluster->app_address(follower_);
  auto put = [&](const std::string& body) {
    auto r = cluster->Send(follower_, http::verb::put, "/api/graph/unplugged", body);
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.response.result_int(), 200) << r.response.body();
    return json::parse(r.response.body(), nullptr, false);
  };
  auto get = [&] {
    auto r = cluster->Send(follower_, http::verb::get, "/api/graph/unplugged");
    return json::parse(r.response.body(), nullptr, false);
  };
  // Our own short form: the node itself.
  EXPECT_EQ(put("true")["unplugged"], json::array({self}));
  EXPECT_EQ(get(), json::array({self}));
  EXPECT_EQ(put(R"({"unplugged": false})")["unplugged"], json::array());
  EXPECT_EQ(get(), json::array());
  auto bad = cluster->Send(follower_, http::verb::put, "/api/graph/unplugged", R"("yes")");
  EXPECT_EQ(bad.response.result_int(), 400);
  auto unknown = cluster->Send(follower_, http::verb::put, "/api/graph/unplugged",
                               R"({"node": "http://nowhere:1", "unplugged": true})");
  EXPECT_EQ(unknown.response.result_int(), 404) << unknown.response.body();
  auto r = cluster->Send(follower_, http::verb::get, "/api/graph/unreachable");
  ASSERT_EQ(r.response.result_int(), 200) << r.response.body();
  EXPECT_TRUE(json::parse(r.response.body()).is_array()) << r.response.body();
  // Plugged back in, the follower still forwards writes.
  PostRetrying(follower_, "/api/graph/entities/user/create", "{}");
}

// Runs before the kill test: it needs all three nodes.
TEST_F(GraphE2eTest, StoppedLeaderIsFencedAfterANewLeaderWrites) {
  int old = leader_;
  uint64_t old_term = cluster->Term(old);
  ASSERT_TRUE(cluster->agent(old).Stop());
  ASSERT_TRUE(cluster->graphserver(old).Stop());
  int fresh = cluster->WaitForLeader(10s, {old});
  ASSERT_GE(fresh, 0) << cluster->Logs();
  EXPECT_GT(cluster->Term(fresh), old_term);
  // The new leader writes, raising the fence to its term.
  json id = PostRetrying(fresh, "/api/graph/entities/user/create", R"({"by":"new leader"})");
  ASSERT_TRUE(id.is_number_integer());

  // Resume the old leader and at once ask it to write, before it can hear the new term.
  cluster->graphserver(old).Continue();
  cluster->agent(old).Continue();
  auto r = cluster->Send(old, http::verb::post, "/api/graph/entities/user/create",
                         R"({"by":"deposed leader"})");
  ASSERT_TRUE(r.ok) << r.error;
  // Either refused (503, nothing written) or, if it already learned of the new leader,
  // forwarded there: never written in the old term.
  if (r.response.result_int() != 200) {
    EXPECT_EQ(r.response.result_int(), 503) << r.response.body();
    EXPECT_EQ(r.response[http::field::retry_after], "1");
    EXPECT_EQ(Count("attributes LIKE '%deposed leader%'"), 0);
  }

  // The fence itself: a write in the old term is refused by the database, and leaves no row.
  auto config = graphdb::ParseConnectionString(cluster->connection_string());
  ASSERT_TRUE(config.ok());
  graph::GraphService stale(std::make_shared<graphdb::Pool>(*config), nullptr);
  auto refused = stale.CreateEntity("user", {{"by", "old term"}}, old_term);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), common::StatusCode::kFenceLost);
  EXPECT_EQ(Count("attributes LIKE '%old term%'"), 0);

  // The old node rejoins as a follower and forwards again.
  json later = PostRetrying(old, "/api/graph/entities/user/create", R"({"by":"rejoined"})");
  EXPECT_TRUE(later.is_number_integer());
}

TEST_F(GraphE2eTest, KillingTheLeaderUnderLoadLosesNoAcknowledgedWrite) {
  int victim = leader_;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> acked_after_kill{0};
  std::atomic<bool> killed{false};
  std::mutex mu;
  std::map<int64_t, std::string> acked;  // id -> marker, under mu
  std::atomic<int> seq{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      int node = w % cluster->size();
      while (!stop) {
        std::string marker = "load-" + std::to_string(seq++);
        auto r = cluster->Send(node, http::verb::post, "/api/graph/entities/load/create",
                               json{{"marker", marker}}.dump(), 3s);
        if (r.ok && r.response.result_int() == 200) {
          std::lock_guard<std::mutex> lock(mu);
          acked[std::stoll(r.response.body())] = marker;
          if (killed) ++acked_after_kill;
        } else {
          node = (node + 1) % cluster->size();  // that node may be dead; try another
          std::this_thread::sleep_for(20ms);
        }
      }
    });
  }
  std::this_thread::sleep_for(1s);
  cluster->agent(victim).Kill();
  cluster->graphserver(victim).Kill();
  killed = true;
  down_.push_back(victim);
  int fresh = cluster->WaitForLeader(10s, down_);
  EXPECT_GE(fresh, 0) << cluster->Logs();
  auto deadline = Clock::now() + 15s;
  while (acked_after_kill < 50 && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
  stop = true;
  for (auto& t : writers) t.join();
  EXPECT_GE(acked_after_kill.load(), 50) << "writes did not resume after the election";

  std::lock_guard<std::mutex> lock(mu);
  ASSERT_FALSE(acked.empty());
  // Each acknowledged id holds the write that was acknowledged for it.
  std::string out, err;
  ASSERT_TRUE(cluster->db().Execute("SELECT id, JSON_VALUE(attributes, '$.marker') FROM " +
                                        cluster->database() + ".entities WHERE type = 'load'",
                                    &out, &err))
      << err;
  std::map<int64_t, std::string> stored;
  std::istringstream rows(out);
  std::string line;
  while (std::getline(rows, line)) {
    size_t tab = line.find('\t');
    if (tab != std::string::npos) stored[std::stoll(line.substr(0, tab))] = line.substr(tab + 1);
  }
  size_t missing = 0;
  for (const auto& [id, marker] : acked) {
    auto it = stored.find(id);
    if (it == stored.end() || it->second != marker) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged writes";
}

}  // namespace
}  // namespace instaface::testing
