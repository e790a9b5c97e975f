// The graphserver's HTTP API in process, against a private MariaDB: two servers ("a" leads,
// "b" follows) whose election state is published by the test through in-process records, so
// every leadership situation (leader, follower, no leader, dead agent, deposed term) is set
// exactly. The end-to-end suite repeats the important cases with real agents.
#include "instaface/graphserver/graph_api.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "instaface/clock.h"
#include "instaface/graphdb/connection_string.h"
#include "instaface/graphdb/fence.h"
#include "instaface/graphdb/schema.h"
#include "instaface/graphserver/http_client.h"
#include "instaface/graphserver/http_server.h"
#include "instaface/graphserver/idempotency_key.h"
#include "instaface/graphserver/leader_fence.h"
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
  // `fast_path`: writes take the server's fast path (GraphApi::HandleFast) as in the
  // graphserver, rather than a worker thread.
  Node(const graphdb::ConnectionConfig& config, const std::string& id,
       std::chrono::milliseconds forward_timeout = 5s, bool fast_path = false)
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
    HttpServer::FastPath fast;
    if (fast_path) {
      fast = [this](HttpRequest& r, HttpServer::Respond respond) {
        return api->HandleFast(r, std::move(respond));
      };
    }
    server = std::make_unique<HttpServer>(
        options, [this](HttpRequest&& r) { return api->Handle(std::move(r)); }, nullptr,
        std::move(fast));
    const common::Status started = server->Start();
    EXPECT_TRUE(started.ok()) << started.message();
    address = "http://127.0.0.1:" + std::to_string(server->port());
    GraphApiOptions api_options;
    api_options.self_app_address = address;
    api_options.forward_timeout = forward_timeout;
    api = std::make_unique<GraphApi>(service, view, metrics, api_options);
    service.set_miss_filler(api->MakeLeaderMissFiller());
    writer.StampLiveness(LeaseNs());
  }
  // Forwards answer through the server's connections: they end first, as in the graphserver.
  ~Node() {
    api->StopForwarding();
    server->Stop();
  }

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
    config_ = *config;
    a_ = std::make_unique<Node>(*config, "a");
    b_ = std::make_unique<Node>(*config, "b");
    a_->Publish(Role::kLeader, 5, "a", a_->address);
    b_->Publish(Role::kFollower, 5, "a", a_->address);
  }

  // GET; expects `status` and returns the JSON body.
  json Get(Node& node, const std::string& target, int status = 200) {
    ClientResult r = Send(node, http::verb::get, target);
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.response.result_int(), status) << target << " -> " << r.response.body();
    json parsed = json::parse(r.response.body(), nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << r.response.body();
    return parsed;
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

  graphdb::ConnectionConfig config_;
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

// A new leader raises the fence as it takes over, before any write of its own: the deposed
// leader, which still believes it leads in its old term, is refused from then on.
TEST_F(GraphApiTest, NewLeaderRaisesTheFenceBeforeItsFirstWrite) {
  Post(*a_, "/api/graph/entities/user/create", R"({"by":"a in term 5"})");
  LeaderFence fence(b_->view, b_->pool);
  fence.Start();
  b_->Publish(Role::kLeader, 6, "b", b_->address);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (fence.raised_term() < 6 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(fence.raised_term(), 6u);
  auto term = graphdb::ReadFenceTerm(*a_->pool);
  ASSERT_TRUE(term.ok()) << term.status().ToString();
  EXPECT_EQ(*term, 6u);
  // a has not heard of term 6: it still publishes itself leader of term 5.
  Post(*a_, "/api/graph/entities/user/create", R"({"by":"deposed a"})", 503);
  EXPECT_EQ(CountRows("entities", "attributes LIKE '%deposed a%'"), 0);
  fence.Stop();
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
    json tree = Post(*n, "/api/graph/query", q.dump())["entities"];
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
  Post(*a_, "/api/graph/query", R"({"ids":[1]})", 400);
  Post(*a_, "/api/graph/query", "", 400);
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

// The original TimelineWebServer's route: a user's own posts with who liked them, and what
// they liked with who posted it, in the query envelope with the timings; the same from the
// follower, which fills its misses from the leader.
TEST_F(GraphApiTest, TimelineIsTheOriginalsShapeOnEveryNode) {
  auto create = [&](const std::string& type, const json& attributes) {
    return Post(*a_, "/api/graph/entities/" + type + "/create", attributes.dump()).get<int64_t>();
  };
  auto link = [&](const std::string& type, int64_t from, int64_t to) {
    Post(*a_,
         "/api/graph/associations/" + type + "/from/" + std::to_string(from) + "/to/" +
             std::to_string(to),
         "{}");
  };
  const int64_t ann = create("user", {{"firstName", "Ann"}, {"lastName", "Lee"}});
  const int64_t bob = create("user", {{"firstName", "Bob"}, {"lastName", "Ray"}});
  const int64_t quiet = create("user", {{"firstName", "Cy"}, {"lastName", "Oh"}});
  const int64_t mine = create("status", {{"text", "mine"}});
  const int64_t his = create("status", {{"text", "his"}});
  link("posted", ann, mine);
  link("postedby", mine, ann);
  link("posted", bob, his);
  link("postedby", his, bob);
  link("liked", bob, mine);
  link("likedby", mine, bob);
  link("liked", ann, his);
  link("likedby", his, ann);

  for (Node* n : {a_.get(), b_.get()}) {
    json t = Get(*n, "/api/timeline/" + std::to_string(ann));
    ASSERT_TRUE(t["stats"].is_object()) << t;
    EXPECT_TRUE(t["stats"]["timeRunning"].is_number());
    EXPECT_TRUE(t["stats"]["calls"].is_number_integer());
    EXPECT_TRUE(t["stats"]["timeFetching"].is_number());
    EXPECT_TRUE(t["overallTime"].is_number());
    ASSERT_EQ(t["entities"].size(), 1u) << t;
    const json& owner = t["entities"][0];
    EXPECT_EQ(owner["firstName"], "Ann");
    ASSERT_EQ(owner["posted"].size(), 1u) << t;
    EXPECT_EQ(owner["posted"][0]["text"], "mine");
    EXPECT_TRUE(owner["posted"][0]["linked"].is_string());
    ASSERT_EQ(owner["posted"][0]["likedby"].size(), 1u) << t;
    EXPECT_EQ(owner["posted"][0]["likedby"][0]["firstName"], "Bob");
    ASSERT_EQ(owner["liked"].size(), 1u) << t;
    EXPECT_EQ(owner["liked"][0]["text"], "his");
    EXPECT_EQ(owner["liked"][0]["postedby"][0]["lastName"], "Ray");

    // Nothing posted or liked: the keys are absent, as the original answers.
    json none = Get(*n, "/api/timeline/" + std::to_string(quiet));
    ASSERT_EQ(none["entities"].size(), 1u) << none;
    EXPECT_FALSE(none["entities"][0].contains("posted")) << none;
    EXPECT_FALSE(none["entities"][0].contains("liked")) << none;

    json missing = Get(*n, "/api/timeline/987654321", 404);
    EXPECT_TRUE(missing["error"].is_string());
  }
}

// The query body as the original's .NET clients send it, and bodies it cannot use.
TEST_F(GraphApiTest, QueryTakesTheOriginalsPascalCaseAndRefusesWhatItCannotUse) {
  json ann = Post(*a_, "/api/graph/entities/user/create", R"({"firstName":"Ann"})");
  json q = {{"Entities", {ann}}, {"Template", {{"friend", nullptr}}}};
  for (Node* n : {a_.get(), b_.get()}) {
    json answer = Post(*n, "/api/graph/query", q.dump());
    ASSERT_EQ(answer["entities"].size(), 1u) << answer;
    EXPECT_EQ(answer["entities"][0]["firstName"], "Ann");
    EXPECT_FALSE(answer["entities"][0].contains("friend"));
    EXPECT_TRUE(answer["stats"].is_object());
    json refused = Post(*n, "/api/graph/query", R"({"ids":[1]})", 400);
    EXPECT_NE(refused["error"].get<std::string>().find("ids"), std::string::npos) << refused;
    Post(*n, "/api/graph/query", "", 400);
    Post(*n, "/api/graph/query", "[1]", 400);
  }
}

// Without an agent socket there are no peers to speak of; the lists are empty, not errors, and
// the cluster names the leader the shared memory names.
TEST_F(GraphApiTest, ClusterRoutesWithoutAnAgentSocket) {
  EXPECT_EQ(Get(*b_, "/api/graph/unreachable"), json::array());
  EXPECT_EQ(Get(*b_, "/api/graph/unplugged"), json::array());
  json cluster = Get(*b_, "/api/timeline/cluster");
  EXPECT_EQ(cluster["leader"], a_->address);
  EXPECT_EQ(cluster["followers"], json::array({b_->address}));
  EXPECT_EQ(cluster["unreachable"], json::array());
  EXPECT_EQ(cluster["unplugged"], json::array());
  ClientResult r = Send(*b_, http::verb::put, "/api/graph/unplugged",
                        json{{"node", a_->address}, {"unplugged", true}}.dump());
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.response.result_int(), 503) << r.response.body();
}

TEST_F(GraphApiTest, ConsoleFilesAreServedByNameAndNothingElse) {
  const std::vector<ConsoleAsset> assets = {
      {"app.js", "text/javascript; charset=utf-8", "export const x = 1;\n"},
      {"index.html", "text/html; charset=utf-8", "<!doctype html><title>t</title>"}};
  GraphApiOptions options;
  options.self_app_address = a_->address;
  options.console_assets = &assets;
  GraphApi api(a_->service, a_->view, a_->metrics, options);
  auto get = [&](const std::string& target) {
    return api.Handle(HttpRequest{http::verb::get, target, 11});
  };
  HttpResponse index = get("/");
  EXPECT_EQ(index.result_int(), 200);
  EXPECT_EQ(index[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(index.body(), "<!doctype html><title>t</title>");
  HttpResponse js = get("/console/app.js");
  EXPECT_EQ(js.result_int(), 200);
  EXPECT_EQ(js[http::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_EQ(get("/console/nope.css").result_int(), 404);
  EXPECT_EQ(get("/console/..%2fsecret").result_int(), 404);
  // The server built without a console answers 404, not a crash.
  GraphApi bare(a_->service, a_->view, a_->metrics, GraphApiOptions{});
  EXPECT_EQ(bare.Handle(HttpRequest{http::verb::get, "/", 11}).result_int(), 404);
}

// Collects what a ConsoleEvents sends, as the HTTP server's stream would carry it.
class RecordingStream : public EventStream {
 public:
  bool Send(std::string_view name, std::string_view data) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.emplace_back(std::string(name), json::parse(data));
    cv_.notify_all();
    return true;
  }
  bool open() const override { return true; }
  // Waits for an event named `name` that satisfies `pred`; null json when none comes.
  json WaitFor(const std::string& name, const std::function<bool(const json&)>& pred) {
    std::unique_lock<std::mutex> lock(mu_);
    json found;
    cv_.wait_for(lock, 10s, [&] {
      for (const auto& [n, data] : events_) {
        if (n == name && pred(data)) {
          found = data;
          return true;
        }
      }
      return false;
    });
    return found;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, json>> events_;
};

TEST_F(GraphApiTest, ConsoleEventsFollowTheElectionAndCountTheTraffic) {
  ConsoleEventsOptions options;
  options.self_app_address = b_->address;
  options.stats_interval = 100ms;
  ConsoleEvents events(b_->view, b_->service, options);
  b_->api->set_console_events(&events);
  events.Start();
  auto stream = std::make_shared<RecordingStream>();
  events.Subscribe(stream);

  json first = stream->WaitFor("status", [](const json&) { return true; });
  EXPECT_EQ(first["node"], b_->address);
  EXPECT_EQ(first["role"], "follower");
  EXPECT_EQ(first["leader"], a_->address);

  // Leadership moves to b: an election event and a new status, at once.
  b_->Publish(Role::kLeader, 6, "b", b_->address);
  json election = stream->WaitFor("election", [](const json& e) { return e["term"] == 6; });
  ASSERT_FALSE(election.is_null()) << "no election event";
  EXPECT_EQ(election["kind"], "leader");
  EXPECT_EQ(election["leader"], b_->address);
  json status = stream->WaitFor("status", [](const json& e) { return e["term"] == 6; });
  ASSERT_FALSE(status.is_null());
  EXPECT_EQ(status["role"], "leader");
  EXPECT_EQ(status["lease_valid"], true);
  EXPECT_TRUE(status["lease_remaining_ms"].is_number_integer());

  // b now leads: its writes and queries show in its stats.
  a_->Publish(Role::kFollower, 6, "b", b_->address);
  json id = Post(*b_, "/api/graph/entities/user/create", "{}");
  Post(*b_, "/api/graph/query", json{{"entities", {id}}}.dump());
  json stats = stream->WaitFor("stats", [](const json& e) { return e["writes"] == 1; });
  ASSERT_FALSE(stats.is_null()) << "no stats event counted the write";
  EXPECT_EQ(stats["node"], b_->address);
  EXPECT_TRUE(stats["entity_cache"]["hits"].is_number_integer());
  EXPECT_FALSE(stream->WaitFor("stats", [](const json& e) { return e["queries"] == 1; }).is_null());
  EXPECT_FALSE(
      stream->WaitFor("query", [](const json& e) { return e["entities"] == 1; }).is_null());
  b_->api->set_console_events(nullptr);
  events.Stop();
}

// A peer that accepts connections and reads what it is sent but never answers: a leader that
// hangs, or is cut off after the request went out.
class SilentPeer {
 public:
  SilentPeer() : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    Accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~SilentPeer() {
    ioc_.stop();
    thread_.join();
  }
  std::string address() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  size_t bytes_received() const { return received_.load(); }

 private:
  struct Connection {
    explicit Connection(boost::asio::io_context& ioc) : socket(ioc) {}
    boost::asio::ip::tcp::socket socket;
    std::array<char, 4096> buffer{};
  };
  void Accept() {
    auto c = std::make_shared<Connection>(ioc_);
    acceptor_.async_accept(c->socket, [this, c](boost::system::error_code ec) {
      if (ec) return;
      Read(c);
      Accept();
    });
  }
  void Read(std::shared_ptr<Connection> c) {
    c->socket.async_read_some(boost::asio::buffer(c->buffer),
                              [this, c](boost::system::error_code ec, size_t n) {
                                received_ += n;
                                if (!ec) Read(c);
                              });
  }
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<size_t> received_{0};
  std::thread thread_;
};

// Passes requests on to a real node, but drops the answer to the first `lose` of them and
// closes the connection: a leader that committed and crashed, or a network that lost the reply.
class AnswerLosingProxy {
 public:
  AnswerLosingProxy(uint16_t target_port, int lose)
      : target_port_(target_port),
        lose_(lose),
        acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~AnswerLosingProxy() {
    stopping_ = true;
    boost::system::error_code ignored;
    // Wake the accept with a connection of our own.
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket wake(ioc);
    wake.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
  }
  std::string address() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  int requests() const { return requests_.load(); }

 private:
  void Serve() {
    while (!stopping_) {
      boost::asio::ip::tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      boost::beast::flat_buffer buffer;
      HttpRequest request;
      while (true) {
        boost::beast::http::read(socket, buffer, request, ec);
        if (ec) break;
        HttpClient client("127.0.0.1", target_port_);
        ClientResult r = client.Send(std::move(request), 10s);
        if (requests_++ < lose_ || !r.ok) break;  // the answer is lost with the connection
        boost::beast::http::write(socket, r.response, ec);
        if (ec) break;
        request = {};
      }
      socket.close(ec);
    }
  }
  const uint16_t target_port_;
  const int lose_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST_F(GraphApiTest, AKeyedCreateIsWrittenOnceThroughEitherNode) {
  const std::vector<std::pair<std::string, std::string>> key = {
      {kIdempotencyKeyHeader, "\"order-66\""}};
  std::set<std::string> ids;
  for (Node* node : {a_.get(), b_.get(), a_.get(), b_.get()}) {
    ClientResult r =
        Send(*node, http::verb::post, "/api/graph/entities/user/create", R"({"n":1})", key);
    ASSERT_TRUE(r.ok) << r.error;
    ASSERT_EQ(r.response.result_int(), 200) << r.response.body();
    EXPECT_EQ(r.response[kIdempotencyKeyHeader], "\"order-66\"");
    ids.insert(r.response.body());
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(CountRows("entities"), 1);
  // A bare key is the same key.
  ClientResult bare = Send(*b_, http::verb::post, "/api/graph/entities/user/create", R"({"n":1})",
                           {{kIdempotencyKeyHeader, "order-66"}});
  EXPECT_EQ(bare.response.body(), *ids.begin());
  EXPECT_EQ(CountRows("entities"), 1);
}

TEST_F(GraphApiTest, BadAndReusedKeysAreRefusedWithReasons) {
  const std::string path = "/api/graph/entities/user/create";
  for (const std::string& bad :
       {std::string("\"unclosed"), std::string("\"a\" trailing"), std::string("\"bad\\escape\""),
        std::string(129, 'k'), std::string("\"\""), std::string("a,b")}) {
    for (Node* node : {a_.get(), b_.get()}) {
      ClientResult r = Send(*node, http::verb::post, path, "{}", {{kIdempotencyKeyHeader, bad}});
      ASSERT_TRUE(r.ok);
      EXPECT_EQ(r.response.result_int(), 400) << bad << " -> " << r.response.body();
      EXPECT_NE(r.response.body().find("Idempotency-Key"), std::string::npos) << r.response.body();
      EXPECT_EQ(r.response[kWriteOutcomeHeader], "none");
    }
  }
  // Two keys on one request.
  HttpRequest twice{http::verb::post, path, 11};
  twice.insert(kIdempotencyKeyHeader, "one");
  twice.insert(kIdempotencyKeyHeader, "two");
  twice.body() = "{}";
  HttpClient client("127.0.0.1", a_->server->port());
  EXPECT_EQ(client.Send(std::move(twice), 10s).response.result_int(), 400);
  EXPECT_EQ(CountRows("entities"), 0);

  // A used key with another body is 422, through either node, and writes nothing.
  Post(*a_, path, R"({"v":1})", 200);
  ASSERT_EQ(Send(*a_, http::verb::post, path, R"({"v":1})", {{kIdempotencyKeyHeader, "k"}})
                .response.result_int(),
            200);
  for (Node* node : {a_.get(), b_.get()}) {
    ClientResult r =
        Send(*node, http::verb::post, path, R"({"v":2})", {{kIdempotencyKeyHeader, "k"}});
    EXPECT_EQ(r.response.result_int(), 422) << r.response.body();
    EXPECT_EQ(r.response[kWriteOutcomeHeader], "none");
  }
  EXPECT_EQ(CountRows("entities"), 2);
}

// A client that sent no key learns the one its create went under, and can retry with it.
TEST_F(GraphApiTest, ACreateWithoutAKeyIsAnsweredWithTheKeyItWentUnder) {
  for (Node* node : {a_.get(), b_.get()}) {
    ClientResult r = Send(*node, http::verb::post, "/api/graph/entities/user/create", "{}");
    ASSERT_EQ(r.response.result_int(), 200) << r.response.body();
    const std::string key(r.response[kIdempotencyKeyHeader]);
    ASSERT_GT(key.size(), 2u);
    ClientResult retry = Send(*node, http::verb::post, "/api/graph/entities/user/create", "{}",
                              {{kIdempotencyKeyHeader, key}});
    EXPECT_EQ(retry.response.body(), r.response.body());
  }
  EXPECT_EQ(CountRows("entities"), 2);
}

// The leader hangs with a forward in flight and the view names a new one: the forward goes to
// the new leader at once. Without that it would wait out its 60 s timeout, and the client's
// 10 s would end first.
TEST_F(GraphApiTest, AForwardFollowsANewLeaderInsteadOfWaitingForTheOldOne) {
  for (bool fast_path : {false, true}) {
    SCOPED_TRACE(fast_path ? "fast path" : "worker thread");
    SilentPeer hung;
    Node c(config_, "c", 60s, fast_path);
    c.Publish(Role::kFollower, 5, "hung", hung.address());
    ClientResult answer;
    std::thread client([&] {
      answer = Send(c, http::verb::post, "/api/graph/entities/user/create", R"({"who":"c"})",
                    {{kIdempotencyKeyHeader, fast_path ? "fast" : "slow"}});
    });
    while (hung.bytes_received() == 0) std::this_thread::sleep_for(5ms);
    c.Publish(Role::kFollower, 6, "a", a_->address);
    client.join();
    ASSERT_TRUE(answer.ok) << answer.error;
    EXPECT_EQ(answer.response.result_int(), 200) << answer.response.body();
  }
  EXPECT_EQ(CountRows("entities", "attributes LIKE '%\"c\"%'"), 2);
}

// No answer from the leader: the 503 says whether the write may have been applied.
TEST_F(GraphApiTest, AForwardWithoutAnAnswerSaysWhetherItMayHaveBeenApplied) {
  Node c(config_, "c", 300ms);
  {
    SilentPeer hung;  // the request went out: it may have been applied
    c.Publish(Role::kFollower, 5, "hung", hung.address());
    ClientResult r = Send(c, http::verb::post, "/api/graph/entities/user/create", "{}");
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.response.result_int(), 503) << r.response.body();
    EXPECT_EQ(r.response[kWriteOutcomeHeader], "unknown");
    EXPECT_EQ(json::parse(r.response.body())["outcome"], "unknown") << r.response.body();
    EXPECT_FALSE(r.response[kIdempotencyKeyHeader].empty());
  }
  // Nothing listens: the request never went out.
  const std::string closed = "http://127.0.0.1:1";
  c.Publish(Role::kFollower, 5, "gone", closed);
  ClientResult r = Send(c, http::verb::post, "/api/graph/entities/user/create", "{}");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.response.result_int(), 503) << r.response.body();
  EXPECT_EQ(r.response[kWriteOutcomeHeader], "none") << r.response.body();
  EXPECT_EQ(CountRows("entities"), 0);
}

// The leader commits and its answer is lost: the follower sends the write again under the same
// key, and the client gets the id of the one row.
TEST_F(GraphApiTest, AForwardWhoseAnswerWasLostIsSentAgainAndWrittenOnce) {
  AnswerLosingProxy lossy(a_->server->port(), 1);
  Node c(config_, "c", 10s, /*fast_path=*/true);
  c.Publish(Role::kFollower, 5, "a", lossy.address());
  ClientResult r = Send(c, http::verb::post, "/api/graph/entities/user/create", R"({"once":1})");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.response.result_int(), 200) << r.response.body();
  EXPECT_EQ(lossy.requests(), 2);
  EXPECT_EQ(CountRows("entities"), 1);
  EXPECT_EQ(CountRows("entities", "id = " + r.response.body()), 1);
}

}  // namespace
}  // namespace instaface::graphserver
