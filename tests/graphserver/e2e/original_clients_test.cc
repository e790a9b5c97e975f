// The original Instaface's clients against ours, end to end: the requests its Bot (through its
// Refit client), its TimelineWebServer and its browser client send, replayed byte for byte in
// shape against a real cluster (private MariaDB and Redis, three instaface-agents, three
// instaface-graphservers), on the leader and the followers alike, checking the answers have
// the shapes those clients parse. One cluster for the binary; the tests that unplug run last.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "graph_cluster_environment.h"
#include "instaface/graphserver/http_client.h"

namespace instaface::testing {
namespace {

using json = nlohmann::json;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

GraphCluster* cluster = nullptr;

GraphClusterOptions Options() {
  GraphClusterOptions o;
  o.agent_binary = INSTAFACE_AGENT_BINARY;
  o.graphserver_binary = INSTAFACE_GRAPHSERVER_BINARY;
  o.database = "original";
  // The answers' shapes are under test, not election speed: timings slow enough that a busy
  // machine does not move the leadership between a test's reads.
  o.heartbeat_ms = 100;
  o.election_min_ms = 500;
  o.election_max_ms = 1000;
  return o;
}

::testing::Environment* const kCluster =
    ::testing::AddGlobalTestEnvironment(new GraphClusterEnvironment(Options(), &cluster));

// What Refit sends: JSON bodies with this content type.
constexpr const char kRefitContentType[] = "application/json; charset=utf-8";

class OriginalClientsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(cluster, nullptr);
    leader_ = cluster->WaitForLeader(10s);
    ASSERT_GE(leader_, 0) << cluster->Logs();
    WaitUntilSettled();
  }

  // A leader is elected before every agent has read every peer from Redis and heard from it;
  // the tests begin once every node knows all three and reaches those it should.
  void WaitUntilSettled() {
    const auto deadline = Clock::now() + 15s;
    std::string last;
    while (Clock::now() < deadline) {
      bool settled = true;
      for (int node = 0; node < cluster->size() && settled; ++node) {
        auto r = Request(node, http::verb::get, "/api/timeline/cluster");
        json state = r.ok ? json::parse(r.response.body(), nullptr, false) : json();
        settled = state.is_object() && state["nodes"].size() == 3u &&
                  state["leader"] == cluster->app_address(leader_) &&
                  state["unreachable"] == json::array();
        if (!settled) last = r.ok ? r.response.body() : r.error;
      }
      if (settled) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "the cluster did not settle: " << last;
  }

  graphserver::ClientResult Request(int node, http::verb method, const std::string& target,
                                    const std::string& body = "", const std::string& origin = "") {
    graphserver::HttpClient client("127.0.0.1", cluster->app_port(node));
    std::vector<std::pair<std::string, std::string>> headers;
    if (!body.empty()) headers.emplace_back("Content-Type", kRefitContentType);
    if (!origin.empty()) headers.emplace_back("Origin", origin);
    return client.Send(method, target, body, 10s, headers);
  }
  // Expects `status`; returns the body as JSON.
  json Call(int node, http::verb method, const std::string& target, const std::string& body = "",
            int status = 200) {
    auto r = Request(node, method, target, body);
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.response.result_int(), status)
        << "node " << node << " " << target << ": " << r.response.body();
    json parsed = json::parse(r.response.body(), nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << r.response.body();
    return parsed;
  }
  // A write, retried through the 503s of an election.
  json Write(int node, const std::string& target, const std::string& body) {
    const auto deadline = Clock::now() + 15s;
    for (;;) {
      auto r = Request(node, http::verb::post, target, body);
      if (r.ok && r.response.result_int() == 200) return json::parse(r.response.body());
      if (r.ok && r.response.result_int() != 503) {
        ADD_FAILURE() << target << ": " << r.response.result_int() << " " << r.response.body();
        return json();
      }
      if (Clock::now() > deadline) {
        ADD_FAILURE() << target << ": " << (r.ok ? r.response.body() : r.error);
        return json();
      }
      std::this_thread::sleep_for(50ms);
    }
  }
  std::string Link(const std::string& type, int64_t from, int64_t to) {
    return "/api/graph/associations/" + type + "/from/" + std::to_string(from) + "/to/" +
           std::to_string(to);
  }

  int leader_ = -1;
};

// The original Bot's loop, as its Refit client sends it, through every node.
TEST_F(OriginalClientsTest, TheBotsRequestsGetTheShapesItParses) {
  for (int node = 0; node < cluster->size(); ++node) {
    // IGraphDataRead.GetRandomEntities: Task<IReadOnlyCollection<int>>.
    json friends = Call(node, http::verb::post, "/api/graph/random/user/5");
    ASSERT_TRUE(friends.is_array()) << friends;
    for (const json& id : friends) EXPECT_TRUE(id.is_number_integer()) << friends;
    // IGraphDataWrite.CreateEntity: Task<int>, the bare number.
    json self =
        Write(node, "/api/graph/entities/user/create", R"({"firstName":"Ada","lastName":"Quill"})");
    ASSERT_TRUE(self.is_number_integer()) << self;
    json other =
        Write(node, "/api/graph/entities/user/create", R"({"firstName":"Bo","lastName":"Reed"})");
    ASSERT_TRUE(other.is_number_integer());
    // CreateAssociation(from, to, "friend", "friend"): two creates with an empty JObject body;
    // Refit only checks for a success status.
    Write(node, Link("friend", self, other), "{}");
    Write(node, Link("friend", other, self), "{}");
    json status = Write(node, "/api/graph/entities/status/create", R"({"text":"a thought"})");
    Write(node, Link("posted", self, status), "{}");
    Write(node, Link("postedby", status, self), "{}");
    Write(node, Link("liked", other, status), "{}");
    Write(node, Link("likedby", status, other), "{}");
    // A second identical association is a 409 here; the original's database answered an
    // error too (its Bot never sends one twice). docs/graphserver.md has the table.
    auto again = Request(node, http::verb::post, Link("friend", self, other), "{}");
    EXPECT_EQ(again.response.result_int(), 409) << again.response.body();

    // IGraphDataRead.GetEntities: [{id, type, created, attributes}].
    json entities = Call(node, http::verb::post, "/api/graph/entities", json{self}.dump());
    ASSERT_EQ(entities.size(), 1u) << entities;
    EXPECT_EQ(entities[0]["id"], self);
    EXPECT_EQ(entities[0]["type"], "user");
    EXPECT_TRUE(entities[0]["created"].is_string());
    EXPECT_EQ(entities[0]["attributes"]["firstName"], "Ada");
    // IGraphDataRead.GetAssociations: [{type, from, to, created, attributes}].
    json links = Call(node, http::verb::post, "/api/graph/entities/friend", json{self}.dump());
    ASSERT_EQ(links.size(), 1u) << links;
    EXPECT_EQ(links[0]["from"], self);
    EXPECT_EQ(links[0]["to"], other);
    EXPECT_EQ(links[0]["type"], "friend");
  }
}

// The TimelineWebServer asks IGraphQuery.Query with Refit's default (PascalCase) names, and
// the browser client reads /api/timeline/{id}: the same envelope, plus overallTime.
TEST_F(OriginalClientsTest, TheTimelineServersQueryAndTheTimelineRoute) {
  const int64_t ann =
      Write(leader_, "/api/graph/entities/user/create", R"({"firstName":"Ann","lastName":"Lee"})");
  const int64_t bob =
      Write(leader_, "/api/graph/entities/user/create", R"({"firstName":"Bob","lastName":"Ray"})");
  const int64_t post = Write(leader_, "/api/graph/entities/status/create", R"({"text":"hello"})");
  Write(leader_, Link("posted", ann, post), "{}");
  Write(leader_, Link("likedby", post, bob), "{}");
  const json query = {
      {"Entities", {ann}},
      {"Template", {{"posted", {{"likedby", nullptr}}}, {"liked", {{"postedby", nullptr}}}}}};
  for (int node = 0; node < cluster->size(); ++node) {
    json answer = Call(node, http::verb::post, "/api/graph/query", query.dump());
    ASSERT_TRUE(answer["stats"].is_object()) << answer;
    for (const char* key : {"timeRunning", "calls", "timeFetching"}) {
      EXPECT_TRUE(answer["stats"][key].is_number()) << key << ": " << answer;
    }
    ASSERT_EQ(answer["entities"].size(), 1u) << answer;
    const json& owner = answer["entities"][0];
    EXPECT_EQ(owner["type"], "user");
    EXPECT_TRUE(owner["created"].is_string());
    EXPECT_EQ(owner["firstName"], "Ann");
    ASSERT_EQ(owner["posted"].size(), 1u) << answer;
    EXPECT_EQ(owner["posted"][0]["id"], post);
    EXPECT_TRUE(owner["posted"][0]["linked"].is_string());
    EXPECT_EQ(owner["posted"][0]["likedby"][0]["lastName"], "Ray");
    // Ann liked nothing: the original has no "liked" key then.
    EXPECT_FALSE(owner.contains("liked")) << answer;

    json timeline = Call(node, http::verb::get, "/api/timeline/" + std::to_string(ann));
    EXPECT_TRUE(timeline["overallTime"].is_number()) << timeline;
    EXPECT_EQ(timeline["entities"], answer["entities"]);
  }
}

// The browser client: /api/timeline/cluster names every node by URL, and a page of another
// origin may call any node (CORS, with the preflight its PUT needs).
TEST_F(OriginalClientsTest, TheBrowserClientsClusterStateAndCors) {
  std::set<std::string> urls;
  for (int i = 0; i < cluster->size(); ++i) urls.insert(cluster->app_address(i));
  for (int node = 0; node < cluster->size(); ++node) {
    json state = Call(node, http::verb::get, "/api/timeline/cluster");
    EXPECT_EQ(state["leader"], cluster->app_address(leader_)) << state;
    std::set<std::string> followers;
    for (const json& f : state["followers"]) followers.insert(f.get<std::string>());
    std::set<std::string> expected = urls;
    expected.erase(cluster->app_address(leader_));
    EXPECT_EQ(followers, expected) << state;
    EXPECT_TRUE(state["unreachable"].is_array());
    EXPECT_EQ(state["unplugged"], json::array());
    EXPECT_EQ(state["nodes"].size(), 3u) << state;

    auto get = Request(node, http::verb::get, "/api/graph/unreachable", "", "http://console.test");
    EXPECT_EQ(get.response[http::field::access_control_allow_origin], "*");
    EXPECT_EQ(json::parse(get.response.body()), json::array()) << get.response.body();

    graphserver::HttpClient client("127.0.0.1", cluster->app_port(node));
    auto preflight = client.Send(http::verb::options, "/api/graph/unplugged", "", 5s,
                                 {{"Origin", "http://console.test"},
                                  {"Access-Control-Request-Method", "PUT"},
                                  {"Access-Control-Request-Headers", "content-type"}});
    ASSERT_TRUE(preflight.ok) << preflight.error;
    EXPECT_EQ(preflight.response.result_int(), 204);
    EXPECT_NE(
        std::string(preflight.response[http::field::access_control_allow_methods]).find("PUT"),
        std::string::npos);
  }
}

// The console's live feed: a real event stream whose first event is this node's status.
TEST_F(OriginalClientsTest, EventsStreamTheNodesStatus) {
  const int node = (leader_ + 1) % cluster->size();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(cluster->app_port(node));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string request = "GET /api/graph/events HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string got;
  char buf[4096];
  // The first status, and a stats event a second later.
  while (got.find("event: stats") == std::string::npos) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  EXPECT_NE(got.find("Content-Type: text/event-stream"), std::string::npos) << got;
  const size_t at = got.find("event: status\ndata: ");
  ASSERT_NE(at, std::string::npos) << got;
  const size_t start = at + std::string("event: status\ndata: ").size();
  json status = json::parse(got.substr(start, got.find('\n', start) - start), nullptr, false);
  ASSERT_FALSE(status.is_discarded()) << got;
  EXPECT_EQ(status["node"], cluster->app_address(node));
  EXPECT_EQ(status["role"], "follower");
  EXPECT_EQ(status["leader"], cluster->app_address(leader_));
  ASSERT_EQ(status["peers"].size(), 2u) << status;
  for (const json& p : status["peers"])
    EXPECT_TRUE(p["url"].get<std::string>().rfind("http", 0) == 0);
  EXPECT_NE(got.find("event: stats"), std::string::npos) << got;
}

// One link: a follower that unplugs its leader, on itself alone, cuts that link both ways. It
// lists the leader as unplugged and unreachable at once; the leader, which switched nothing,
// learns it from the silence. The other follower and the leadership are untouched.
TEST_F(OriginalClientsTest, UnpluggingAPeerOnOneNodeCutsThatLink) {
  const int a = (leader_ + 1) % cluster->size();
  const int b = (leader_ + 2) % cluster->size();
  const std::string leader_url = cluster->app_address(leader_);
  const std::string a_url = cluster->app_address(a);
  json put = Call(a, http::verb::put, "/api/graph/unplugged",
                  json{{"node", leader_url}, {"unplugged", true}}.dump());
  EXPECT_EQ(put["unplugged"], json::array({leader_url}));
  EXPECT_EQ(Call(a, http::verb::get, "/api/graph/unplugged"), json::array({leader_url}));
  EXPECT_EQ(Call(a, http::verb::get, "/api/graph/unreachable"), json::array({leader_url}));
  EXPECT_EQ(Call(leader_, http::verb::get, "/api/graph/unplugged"), json::array());
  auto wait_for = [&](int node, const json& want) {
    json got;
    for (auto deadline = Clock::now() + 10s; Clock::now() < deadline;) {
      got = Call(node, http::verb::get, "/api/graph/unreachable");
      if (got == want) break;
      std::this_thread::sleep_for(50ms);
    }
    return got;
  };
  EXPECT_EQ(wait_for(leader_, json::array({a_url})), json::array({a_url}));
  EXPECT_EQ(Call(b, http::verb::get, "/api/graph/unreachable"), json::array());
  EXPECT_EQ(cluster->Leader(), leader_);

  // Keys in any case, as the original's model binder reads them.
  Call(a, http::verb::put, "/api/graph/unplugged",
       json{{"Node", leader_url}, {"Unplugged", false}}.dump());
  EXPECT_EQ(Call(a, http::verb::get, "/api/graph/unplugged"), json::array());
  EXPECT_EQ(wait_for(leader_, json::array()), json::array());
  EXPECT_EQ(wait_for(a, json::array()), json::array());
}

// The original Monitor's switch: the same PUT {node: leader, unplugged: true} to every node
// isolates the leader, and the others elect one of themselves. Runs last.
TEST_F(OriginalClientsTest, TheMonitorsUnplugSwitchMovesLeadership) {
  const int old = leader_;
  const std::string old_url = cluster->app_address(old);
  for (int node = 0; node < cluster->size(); ++node) {
    Call(node, http::verb::put, "/api/graph/unplugged",
         json{{"node", old_url}, {"unplugged", true}}.dump());
  }
  EXPECT_EQ(Call(old, http::verb::get, "/api/graph/unplugged"), json::array({old_url}));
  const int fresh = cluster->WaitForLeader(15s, {old});
  ASSERT_GE(fresh, 0) << cluster->Logs();
  EXPECT_NE(fresh, old);
  const int other = 3 - old - fresh;
  json state;
  for (auto deadline = Clock::now() + 10s; Clock::now() < deadline;) {
    state = Call(other, http::verb::get, "/api/timeline/cluster");
    if (state["leader"] == cluster->app_address(fresh)) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(state["leader"], cluster->app_address(fresh)) << state;
  EXPECT_EQ(state["unplugged"], json::array({old_url})) << state;
  // Writes go on through the new leader, from any node that can reach it.
  EXPECT_TRUE(Write(other, "/api/graph/entities/user/create", R"({"firstName":"After"})")
                  .is_number_integer());

  for (int node = 0; node < cluster->size(); ++node) {
    Call(node, http::verb::put, "/api/graph/unplugged",
         json{{"node", old_url}, {"unplugged", false}}.dump());
  }
  EXPECT_GE(cluster->WaitForLeader(15s), 0) << cluster->Logs();
  EXPECT_TRUE(
      Write(old, "/api/graph/entities/user/create", R"({"firstName":"Back"})").is_number_integer());
}

}  // namespace
}  // namespace instaface::testing
