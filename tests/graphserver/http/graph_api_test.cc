// The graphserver's HTTP API in process, against a private MariaDB: two servers ("a" leads,
// "b" follows) whose election state is published by the test through in-process records, so
// every leadership situation (leader, follower, no leader, dead agent, deposed term) is set
// exactly. The end-to-end suite repeats the important cases with real agents.
#include "instaface/graphserver/graph_api.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

#include "instaface/clock.h"
#include "instaface/graphdb/connection_string.h"
#include "instaface/graphdb/schema.h"
#include "instaface/graphserver/http_client.h"
#include "instaface/graphserver/http_server.h"
#include "instaface/shm_writer.h"
#include "support/mariadb_server.h"

namespace instaface::graphserver {
namespace {

using json = nlohmann::json;
using ::instaface::testing::MariaDbEnvironment;
namespace http = boost::beast::http;
using namespace std::chrono_literals;

::testing::Environment* const kMariaDb =
    ::testing::AddGlobalTestEnvironment(new MariaDbEnvironment);

constexpr uint64_t kBodyLimit = 4096;

// The clock of the record's lease ends and liveness stamps.
uint64_t LeaseNs() { return static_cast<uint64_t>(instaface::LeaseClockNowNs()); }

// One graphserver: its own pool, service, published election record and HTTP server.
struct Node {
  Node(const graphdb::ConnectionConfig& config, const std::string& id)
      : writer(shm::Writer::CreateInProcess(std::chrono::seconds(30))),
        view(writer.view()),
        pool(std::make_shared<graphdb::Pool>(config)),
        service(pool, nullptr),
        self_id(id) {
    HttpServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.worker_threads = 4;
    options.body_limit = kBodyLimit;
    options.request_timeout = 5s;
    server = std::make_unique<HttpServer>(
        options, [this](HttpRequest&& r) { return api->Handle(std::move(r)); });
    const common::Status started = server->Start();
    EXPECT_TRUE(started.ok()) << started.message();
    address = "http://127.0.0.1:" + std::to_string(server->port());
    GraphApiOptions api_options;
    api_options.self_app_address = address;
    api_options.forward_timeout = 5s;
    api = std::make_unique<GraphApi>(service, view, metrics, api_options);
    service.set_miss_filler(api->MakeLeaderMissFiller());
    writer.StampLiveness(LeaseNs());
  }
  ~Node() { server->Stop(); }

  void Publish(Role role, uint64_t term, const std::string& leader_id,
               const std::string& leader_address) {
    shm::PublishedState s;
    s.role = role;
    s.term = term;
    s.self_id = self_id;
    s.leader_id = leader_id;
    s.leader_app_address = leader_address;
    s.lease_until_ns = role == Role::kLeader ? LeaseNs() + 3600ULL * 1000000000ULL : 0;
    writer.Publish(s);
    writer.StampLiveness(LeaseNs());
  }

  shm::Writer writer;
  View view;
  std::shared_ptr<graphdb::Pool> pool;
  graph::GraphService service;
  GraphMetrics metrics;
  std::string self_id;
  std::unique_ptr<GraphApi> api;  // created after the server knows its port
  std::unique_ptr<HttpServer> server;
  std::string address;
};

class GraphApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    database_ = std::string("h_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto config =
        graphdb::ParseConnectionString(MariaDbEnvironment::server()->ConnectionString(database_));
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    ASSERT_TRUE(graphdb::EnsureSchema(*config).ok());
    a_ = std::make_unique<Node>(*config, "a");
    b_ = std::make_unique<Node>(*config, "b");
    a_->Publish(Role::kLeader, 5, "a", a_->address);
    b_->Publish(Role::kFollower, 5, "a", a_->address);
  }

  ClientResult Send(Node& node, http::verb method, const std::string& target,
                    const std::string& body = "",
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpClient client("127.0.0.1", static_cast<uint16_t>(std::stoi(node.address.substr(17))));
    return client.Send(method, target, body, 10s, headers);
  }
  // POST; expects `status` and returns the JSON body.
  json Post(Node& node, const std::string& target, const std::string& body, int status = 200) {
    ClientResult r = Send(node, http::verb::post, target, body);
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.response.result_int(), status) << target << " -> " << r.response.body();
    json parsed = json::parse(r.response.body(), nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << r.response.body();
    if (status >= 400) {
      EXPECT_TRUE(parsed.is_object() && parsed.contains("error") && parsed["error"].is_string())
          << r.response.body();
    }
    return parsed;
  }
  int64_t CountRows(const std::string& table, const std::string& where = "1") {
    std::string out, err;
    EXPECT_TRUE(MariaDbEnvironment::server()->Execute(
        "SELECT COUNT(*) FROM " + database_ + "." + table + " WHERE " + where, &out, &err))
        << err;
    return out.empty() ? -1 : std::stoll(out);
  }

  std::string database_;
  std::unique_ptr<Node> a_;
  std::unique_ptr<Node> b_;
};

TEST_F(GraphApiTest, LeaderWritesAndEveryNodeReadsBack) {
  json id = Post(*a_, "/api/graph/entities/user/create", R"({"name":"ann"})");
  ASSERT_TRUE(id.is_number_integer());
  for (Node* n : {a_.get(), b_.get()}) {
    json got = Post(*n, "/api/graph/entities", "[" + id.dump() + "]");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["id"], id);
    EXPECT_EQ(got[0]["type"], "user");
    EXPECT_EQ(got[0]["attributes"]["name"], "ann");
  }
}

TEST_F(GraphApiTest, FollowerForwardsWritesToTheLeader) {
  json u1 = Post(*b_, "/api/graph/entities/user/create", R"({"name":"bo"})");
  json u2 = Post(*b_, "/api/graph/entities/user/create", R"({"name":"cy"})");
  ASSERT_TRUE(u1.is_number_integer() && u2.is_number_integer());
  Post(*b_, "/api/graph/associations/friend/from/" + u1.dump() + "/to/" + u2.dump(),
       R"({"since":2020})");
  EXPECT_EQ(CountRows("entities"), 2);
  json friends = Post(*b_, "/api/graph/entities/friend", "[" + u1.dump() + "]");
  ASSERT_EQ(friends.size(), 1u);
  EXPECT_EQ(friends[0]["to"], u2);
  std::string metrics = Send(*b_, http::verb::get, "/metrics").response.body();
  EXPECT_NE(metrics.find(R"(instaface_graph_writes_forwarded_total{outcome="ok"} 3)"),
            std::string::npos)
      << metrics;
}

TEST_F(GraphApiTest, DuplicateAssociationIs409ThroughEitherNode) {
  json u1 = Post(*a_, "/api/graph/entities/user/create", "{}");
  json u2 = Post(*a_, "/api/graph/entities/user/create", "{}");
  std::string path = "/api/graph/associations/friend/from/" + u1.dump() + "/to/" + u2.dump();
  Post(*a_, path, "{}");
  Post(*a_, path, "{}", 409);
  Post(*b_, path, "{}", 409);
  EXPECT_EQ(CountRows("associations"), 1);
}

TEST_F(GraphApiTest, ForwardedWriteToANonLeaderIsRefusedNotForwardedAgain) {
  ClientResult r = Send(*b_, http::verb::post, "/api/graph/entities/user/create", "{}",
                        {{kForwardedHeader, "c"}});
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.response.result_int(), 503);
  EXPECT_EQ(r.response[http::field::retry_after], "1");
  EXPECT_EQ(CountRows("entities"), 0);
}

TEST_F(GraphApiTest, NoLeaderMeans503WithRetryAfter) {
  b_->Publish(Role::kCandidate, 6, "", "");
  ClientResult r = Send(*b_, http::verb::post, "/api/graph/entities/user/create", "{}");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.response.result_int(), 503);
  EXPECT_EQ(r.response[http::field::retry_after], "1");
  r = Send(*b_, http::verb::get, "/readyz");
  EXPECT_EQ(r.response.result_int(), 503);
  EXPECT_EQ(Send(*a_, http::verb::get, "/readyz").response.result_int(), 200);
  EXPECT_EQ(CountRows("entities"), 0);
}

TEST_F(GraphApiTest, DeadAgentIsNeverTakenForALeader) {
  a_->writer.StampLiveness(LeaseNs() - 60ULL * 1000000000ULL);  // the agent went silent
  ClientResult r = Send(*a_, http::verb::post, "/api/graph/entities/user/create", "{}");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.response.result_int(), 503);
  EXPECT_EQ(CountRows("entities"), 0);
}

TEST_F(GraphApiTest, DeposedLeaderIsRefusedByTheFence) {
  Post(*a_, "/api/graph/entities/user/create", "{}");  // term 5 is now in the fence
  // "b" won term 6 and wrote; "a" still believes it leads in term 5.
  b_->Publish(Role::kLeader, 6, "b", b_->address);
  Post(*b_, "/api/graph/entities/user/create", "{}");
  ClientResult r =
      Send(*a_, http::verb::post, "/api/graph/entities/user/create", R"({"from":"old leader"})");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.response.result_int(), 503) << r.response.body();
  EXPECT_EQ(r.response[http::field::retry_after], "1");
  EXPECT_EQ(CountRows("entities"), 2);
  EXPECT_EQ(CountRows("entities", "attributes LIKE '%old leader%'"), 0);
}

TEST_F(GraphApiTest, QueryTemplateTwoLevelsDeep) {
  json ann = Post(*a_, "/api/graph/entities/user/create", R"({"name":"ann"})");
  json bob = Post(*a_, "/api/graph/entities/user/create", R"({"name":"bob"})");
  json post = Post(*a_, "/api/graph/entities/status/create", R"({"text":"hello"})");
  Post(*a_, "/api/graph/associations/friend/from/" + ann.dump() + "/to/" + bob.dump(), "{}");
  Post(*a_, "/api/graph/associations/posted/from/" + bob.dump() + "/to/" + post.dump(), "{}");
  json q = {{"entities", {ann}}, {"template", {{"friend", {{"posted", json::object()}}}}}};
  for (Node* n : {a_.get(), b_.get()}) {
    json tree = Post(*n, "/api/graph/query", q.dump());
    ASSERT_EQ(tree.size(), 1u) << tree;
    EXPECT_EQ(tree[0]["name"], "ann");
    ASSERT_EQ(tree[0]["friend"].size(), 1u) << tree;
    EXPECT_EQ(tree[0]["friend"][0]["id"], bob);
    EXPECT_EQ(tree[0]["friend"][0]["name"], "bob");
    ASSERT_EQ(tree[0]["friend"][0]["posted"].size(), 1u) << tree;
    EXPECT_EQ(tree[0]["friend"][0]["posted"][0]["text"], "hello");
  }
}

TEST_F(GraphApiTest, MalformedJsonAndWrongTypesAre400) {
  Post(*a_, "/api/graph/entities", "[1, 2", 400);
  Post(*a_, "/api/graph/entities", R"(["one"])", 400);
  Post(*a_, "/api/graph/entities", R"({"ids":[1]})", 400);
  Post(*a_, "/api/graph/entities", "[-4]", 400);
  Post(*a_, "/api/graph/entities", "[1.5]", 400);
  Post(*a_, "/api/graph/query", R"({"entities":"x","template":{}})", 400);
  Post(*b_, "/api/graph/entities/user/create", "{\"name\":", 400);
  Post(*b_, "/api/graph/entities/user/create", "[1,2]", 400);
  EXPECT_EQ(CountRows("entities"), 0);
}

TEST_F(GraphApiTest, BadPathsAreRefusedWithJsonErrors) {
  Post(*a_, "/api/graph/associations/friend/from/-1/to/2", "{}", 400);
  Post(*a_, "/api/graph/associations/friend/from/1/to/99999999999999999999", "{}", 400);
  Post(*a_, "/api/graph/entities/much_too_long/create", "{}", 400);
  Post(*a_, "/api/graph/nothing", "{}", 404);
  Post(*a_, "/elsewhere", "{}", 404);
  ClientResult r = Send(*a_, http::verb::get, "/api/graph/entities");
  EXPECT_EQ(r.response.result_int(), 405);
  EXPECT_EQ(r.response[http::field::allow], "POST");
  // An association to entities that do not exist is refused, not half-written.
  r = Send(*a_, http::verb::post, "/api/graph/associations/friend/from/123456/to/654321", "{}");
  EXPECT_GE(r.response.result_int(), 400);
  EXPECT_LT(r.response.result_int(), 500);
  EXPECT_EQ(CountRows("associations"), 0);
}

TEST_F(GraphApiTest, OversizedBodyIs413) {
  std::string big = R"({"blob":")" + std::string(kBodyLimit * 2, 'x') + R"("})";
  ClientResult r = Send(*b_, http::verb::post, "/api/graph/entities/user/create", big);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.response.result_int(), 413);
  EXPECT_TRUE(json::parse(r.response.body(), nullptr, false).contains("error"));
  EXPECT_EQ(CountRows("entities"), 0);
}

TEST_F(GraphApiTest, SqlMetacharactersAreStoredVerbatim) {
  const std::string nasty = "Robert'); DROP TABLE entities; -- \"\\ %_ `x` \xE2\x9C\x93";
  json attrs = {{"name", nasty}, {nasty, 1}};
  json id = Post(*b_, "/api/graph/entities/user/create", attrs.dump());
  ASSERT_TRUE(id.is_number_integer());
  json got = Post(*a_, "/api/graph/entities", "[" + id.dump() + "]");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["attributes"]["name"], nasty);
  EXPECT_EQ(got[0]["attributes"][nasty], 1);
  EXPECT_EQ(CountRows("entities"), 1);
}

TEST_F(GraphApiTest, RandomReturnsIdsOfTheType) {
  std::set<int64_t> users;
  for (int i = 0; i < 5; ++i)
    users.insert(Post(*a_, "/api/graph/entities/user/create", "{}").get<int64_t>());
  Post(*a_, "/api/graph/entities/status/create", "{}");
  json ids = Post(*b_, "/api/graph/random/user/3", "");
  ASSERT_TRUE(ids.is_array());
  EXPECT_EQ(ids.size(), 3u);
  for (const json& id : ids) EXPECT_EQ(users.count(id.get<int64_t>()), 1u) << id;
}

TEST_F(GraphApiTest, MetricsLabelRouteTemplatesNotPaths) {
  json u = Post(*a_, "/api/graph/entities/user/create", "{}");
  Post(*a_, "/api/graph/entities/friend", "[" + u.dump() + "]");
  Post(*a_, "/api/graph/nope/nope", "{}", 404);
  ClientResult r = Send(*a_, http::verb::get, "/metrics");
  ASSERT_EQ(r.response.result_int(), 200);
  const std::string& m = r.response.body();
  EXPECT_NE(m.find(R"(route="/api/graph/entities/{type}/create")"), std::string::npos) << m;
  EXPECT_NE(m.find(R"(route="/api/graph/entities/{type}")"), std::string::npos);
  EXPECT_NE(m.find(R"(route="unmatched")"), std::string::npos);
  EXPECT_EQ(m.find("/api/graph/entities/user"), std::string::npos);
  EXPECT_EQ(m.find("nope"), std::string::npos);
  EXPECT_NE(m.find("instaface_graph_request_duration_seconds_bucket"), std::string::npos);
  EXPECT_NE(m.find("instaface_graph_cache_hits_total"), std::string::npos);
  EXPECT_EQ(Send(*a_, http::verb::get, "/healthz").response.result_int(), 200);
}

TEST_F(GraphApiTest, KeepAliveServesManyRequestsOnOneConnection) {
  HttpClient client("127.0.0.1", static_cast<uint16_t>(std::stoi(a_->address.substr(17))));
  for (int i = 0; i < 50; ++i) {
    ClientResult r = client.Send(http::verb::get, "/healthz", "", 5s);
    ASSERT_TRUE(r.ok) << r.error;
    ASSERT_EQ(r.response.result_int(), 200);
    EXPECT_TRUE(r.response.keep_alive());
  }
}

}  // namespace
}  // namespace instaface::graphserver
